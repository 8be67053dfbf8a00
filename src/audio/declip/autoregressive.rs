//! The autoregressive interpolation of short clipped stretches (Janssen, Veldhuis and Vries,
//! "Adaptive interpolation of discrete-time signals that can be modeled as autoregressive
//! processes", 1986): around each stretch of clipped samples the signal is modelled as an
//! autoregressive process, the clipped samples are chosen to minimise its prediction error, and
//! every estimate is kept at least as far out as the rail it was cut at, re-estimating the model
//! from the restored signal a few times.
//!
//! A-SPADE restores a frame in hundreds of iterations however few of its samples were cut; a
//! stretch of a few samples is restored as well by this, at a sixth of the cost (`models/README.md`,
//! "Declipping: short stretches").

use rayon::prelude::*;

use super::{Rails, MAX_OVERSHOOT};
use crate::audio::lsar::{autoregression, least_squares_fill};

/// Order of the autoregressive model. Order, context and block length are counted in samples,
/// not seconds. Chosen on clipped copies of the synthetic dev set (16 and 22.05 kHz): orders 16–48
/// with contexts of 320 or 640 samples all took back most of the loss, within 1 point of each
/// other. Counts scaled with the rate restored 44.1 kHz recordings worse (seen on the dc_tts
/// evaluation set clipped by 18 dB, PER 0.220 against 0.197; no 44.1 kHz dev set was at hand).
const ORDER: usize = 32;

/// Unclipped context on each side of a block of clipped samples, samples.
const CONTEXT: usize = 320;

/// Longest span (samples) of clipped stretches and the gaps between them restored as one block;
/// longer spans are cut between stretches into blocks of about this length.
const MAX_BLOCK: usize = 2000;

/// Rounds of model estimation and restoration per block.
const ROUNDS: usize = 3;

/// Restore the samples `missing` (sorted indices) of `samples`, whose rails (in the samples' scale)
/// are `rails`; every other sample is context. Blocks whose windows reach no other block's samples
/// are restored on their own copies of their spans, on all cores: the result is exactly what
/// restoring the blocks one after another gives.
pub(super) fn restore(samples: &mut [f32], missing: &[usize], rails: Rails) {
    if missing.is_empty() {
        return;
    }
    let blocks = blocks(missing, CONTEXT / 2, MAX_BLOCK);
    let groups = independent_groups(&blocks);
    let restored: Vec<(usize, Vec<f32>)> = groups
        .par_iter()
        .map(|group| {
            let span_start = window(group[0], samples.len()).start;
            let span_end = window(group[group.len() - 1], samples.len()).end;
            let mut span = samples[span_start..span_end].to_vec();
            for block in group.iter() {
                let range = window(block, samples.len());
                let start = range.start;
                let window = &mut span[start - span_start..range.end - span_start];
                restore_block(window, block, start, ORDER, rails);
            }
            (span_start, span)
        })
        .collect();
    // Only a group's own missing samples changed in its copy; the rest of it is shared context.
    for (group, (span_start, span)) in groups.iter().zip(&restored) {
        for &i in group.iter().flat_map(|block| block.iter()) {
            samples[i] = span[i - span_start];
        }
    }
}

/// The clipped sample indices (sorted) in blocks restored together: stretches less than `max_gap`
/// samples apart join one block, up to `max_block` samples long.
fn blocks(clipped: &[usize], max_gap: usize, max_block: usize) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=clipped.len() {
        // A block ends between stretches, never inside one (its two parts would each take the
        // other's clipped samples as recorded values).
        let ends = i == clipped.len()
            || clipped[i] - clipped[i - 1] >= max_gap
            || (clipped[i] - clipped[i - 1] > 1 && clipped[i] - clipped[start] >= max_block);
        if ends {
            out.push(&clipped[start..i]);
            start = i;
        }
    }
    out
}

/// The samples a block is restored from: its clipped stretch with [`CONTEXT`] samples each side,
/// within a recording of `len` samples.
fn window(block: &[usize], len: usize) -> std::ops::Range<usize> {
    block[0].saturating_sub(CONTEXT)..(block[block.len() - 1] + 1 + CONTEXT).min(len)
}

/// `blocks` (in order) in groups that can be restored independently: a block joins the previous
/// one's group when either's window of [`CONTEXT`] samples each side reaches the other's samples.
fn independent_groups<'a>(blocks: &'a [&'a [usize]]) -> Vec<&'a [&'a [usize]]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=blocks.len() {
        if i == blocks.len() || blocks[i][0] - blocks[i - 1][blocks[i - 1].len() - 1] > CONTEXT {
            out.push(&blocks[start..i]);
            start = i;
        }
    }
    out
}

/// Restore the samples `missing` (indices into the whole recording; `offset` is `window[0]`'s)
/// of `window`, which holds them with unclipped context around.
fn restore_block(window: &mut [f32], missing: &[usize], offset: usize, order: usize, rails: Rails) {
    let n = window.len();
    if n <= 2 * order {
        return;
    }
    let local: Vec<usize> = missing.iter().map(|&i| i - offset).collect();
    let mut is_missing = vec![false; n];
    for &i in &local {
        is_missing[i] = true;
    }
    // The rail each missing sample was cut at, from the recorded value's side.
    let limits: Vec<f32> = local
        .iter()
        .map(|&i| rails.of(window[i]).unwrap_or(window[i]))
        .collect();
    let mut s: Vec<f64> = window.iter().map(|&x| f64::from(x)).collect();
    for _ in 0..ROUNDS {
        let Some(a) = autoregression(&[&s], order) else {
            return;
        };
        let Some(u) = least_squares_fill(&s, &is_missing, &local, &a) else {
            return;
        };
        for ((&i, &value), &rail) in local.iter().zip(&u).zip(&limits) {
            let rail = f64::from(rail);
            // Kept at least as far out as the rail (the converter recorded that much), at most
            // MAX_OVERSHOOT times as far.
            let bound = rail * f64::from(MAX_OVERSHOOT);
            s[i] = if rail >= 0.0 {
                value.clamp(rail, bound)
            } else {
                value.clamp(bound, rail)
            };
        }
    }
    for &i in &local {
        window[i] = s[i] as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_restored_in_parallel_give_what_one_block_after_another_gives() {
        // Syllables of clipped voice between short quiet gaps: many independent groups, and blocks
        // inside each that read their neighbours' restored samples.
        let tau = 2.0 * std::f32::consts::PI;
        let mut original = Vec::new();
        for syllable in 0..12usize {
            let len = 4_800 + 700 * syllable;
            original.extend((0..len).map(|i| {
                let t = i as f32 / 16_000.0;
                let envelope = (std::f32::consts::PI * i as f32 / len as f32).sin();
                30_000.0
                    * envelope
                    * (0.6 * (tau * 150.0 * t + syllable as f32).sin()
                        + 0.3 * (tau * 310.0 * t).sin()
                        + 0.1 * (tau * 470.0 * t).sin())
            }));
            original.extend(vec![0.0f32; 200 + 150 * (syllable % 4)]);
        }
        let rail = 12_000.0f32;
        let clipped: Vec<f32> = original.iter().map(|x| x.clamp(-rail, rail)).collect();
        let missing: Vec<usize> = (0..clipped.len())
            .filter(|&i| clipped[i].abs() >= rail)
            .collect();
        let rails = Rails {
            positive: Some(rail),
            negative: Some(-rail),
        };
        let mut parallel = clipped.clone();
        restore(&mut parallel, &missing, rails);

        let blocks = blocks(&missing, CONTEXT / 2, MAX_BLOCK);
        let groups = independent_groups(&blocks);
        assert!(groups.len() >= 12, "{} groups", groups.len());
        assert!(
            groups.iter().any(|g| g.len() > 1),
            "no group of several blocks"
        );
        let mut sequential = clipped.clone();
        for block in &blocks {
            let range = window(block, sequential.len());
            let start = range.start;
            restore_block(&mut sequential[range], block, start, ORDER, rails);
        }
        assert_eq!(parallel, sequential);
        assert_ne!(parallel, clipped);
        // Restored towards the original: beyond the rail, and closer to it than the flat tops.
        let error = |x: &[f32]| -> f64 {
            missing
                .iter()
                .map(|&i| f64::from(x[i] - original[i]).powi(2))
                .sum()
        };
        assert!(error(&parallel) < 0.5 * error(&clipped));
    }
}
