//! Clipped peaks restored before features.
//!
//! A recording made with the input gain set too high has its peaks cut flat at the converter's
//! full scale. The flat tops add harmonics across the whole spectrum, and the network hears them
//! as other phones: the real evaluation sets peak-normalised and then amplified by 12 dB (4–7 % of
//! the samples clipped) lost 6–9 points of PER, by 18 dB (10–20 %) 14–20 points (`models/README.md`).
//! The lost samples are estimated back from their neighbours, as audio restoration does it
//! (Janssen, Veldhuis and Vries, "Adaptive interpolation of discrete-time signals that can be modeled
//! as autoregressive processes", 1986): around each stretch of clipped samples the signal is modelled
//! as an autoregressive process, the clipped samples are chosen to minimise its prediction error,
//! and every estimate is kept at least as far out as the rail it was cut at (what the converter
//! did record: the true value was beyond it), re-estimating the model from the restored signal a
//! few times.
//!
//! A rail counts as clipping only when the samples pile up on it: many samples at one extreme value,
//! several times more than in a band of the same values' neighbours just inside it. The peaks of
//! a recording that was never clipped thin out towards its extreme, whatever its resolution, and
//! are left exactly as they are; so are recordings that are mostly digital silence.

use rayon::prelude::*;

/// A rail holds at least this fraction of the samples (and [`MIN_CLIPPED_SAMPLES`]) to count as
/// clipping: below it the flat tops are too few to matter (peak-normalised speech amplified by 6 dB
/// clips 0.2–1.2 % of its samples and lost 1–2 points of PER).
const MIN_CLIPPED_FRACTION: f64 = 0.0005;

/// A rail holds at least this many samples to count as clipping.
const MIN_CLIPPED_SAMPLES: usize = 8;

/// A sample within this fraction of the rail's magnitude is on the rail (converters clip to one
/// value; the tolerance admits the rounding of a float pipeline).
const RAIL_TOLERANCE: f32 = 1e-3;

/// The band just inside the rail that its samples are compared with: this fraction of the rail's
/// magnitude (or two quantisation steps of coarse audio, if wider).
const INNER_BAND: f32 = 0.02;

/// The rail holds at least this many times the samples of the band just inside it.
const MIN_PILE_UP: f64 = 2.0;

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

/// A restored sample lies at most this many times as far out as its rail: a model fitted to a
/// short context can extrapolate without bound, and 20 dB over the rail is beyond any recoverable
/// clipping.
const MAX_OVERSHOOT: f32 = 10.0;

/// What [`repair_clipping`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClipRepair {
    /// Samples restored (0: no rail was clipped).
    pub samples: usize,
    /// The positive rail, if it was clipped (in the samples' scale).
    pub positive_rail: Option<f32>,
    /// The negative rail, if it was clipped (in the samples' scale).
    pub negative_rail: Option<f32>,
}

/// Restore the clipped samples of `samples` (any scale and rate), if its peaks were cut flat at one
/// or both rails; otherwise change nothing.
pub fn repair_clipping(samples: &mut [f32]) -> ClipRepair {
    let (positive, negative) = clipped_rails(samples);
    if positive.is_none() && negative.is_none() {
        return ClipRepair::default();
    }
    let on_rail = |x: f32| {
        positive.is_some_and(|rail| x >= rail - RAIL_TOLERANCE * rail)
            || negative.is_some_and(|rail| x <= rail - RAIL_TOLERANCE * rail)
    };
    let clipped: Vec<usize> = (0..samples.len())
        .filter(|&i| on_rail(samples[i]))
        .collect();
    let rails = Rails { positive, negative };
    let blocks = blocks(&clipped, CONTEXT / 2, MAX_BLOCK);
    // Groups of blocks whose windows reach no other group's clipped samples are independent: each is
    // restored on its own copy of its span, on all cores, and the result is exactly what restoring
    // the blocks one after another gives (a heavily clipped hour takes half the time on 2 cores).
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
    // Only a group's own clipped samples changed in its copy; the rest of it is shared context.
    for (group, (span_start, span)) in groups.iter().zip(&restored) {
        for &i in group.iter().flat_map(|block| block.iter()) {
            samples[i] = span[i - span_start];
        }
    }
    ClipRepair {
        samples: clipped.len(),
        positive_rail: positive,
        negative_rail: negative,
    }
}

/// The clipping rails of a recording.
#[derive(Clone, Copy)]
struct Rails {
    positive: Option<f32>,
    negative: Option<f32>,
}

impl Rails {
    /// The rail a sample at `x` was cut at (the one on its side).
    fn of(self, x: f32) -> Option<f32> {
        if x >= 0.0 {
            self.positive
        } else {
            self.negative
        }
    }
}

/// The clipping rails (positive, negative): each side's extreme value, if the samples pile up on it
/// the way clipping piles them. Two passes over a recording that is not clipped (its extremes, then
/// how many samples sit on them), a third for the band inside a rail that holds enough samples.
fn clipped_rails(samples: &[f32]) -> (Option<f32>, Option<f32>) {
    let (max, min) = samples
        .iter()
        .fold((0.0f32, 0.0f32), |(hi, lo), &x| (hi.max(x), lo.min(x)));
    // Per side (0: positive, 1: negative), as magnitudes: the extreme and the lowest value on the rail.
    let extremes = [max, -min];
    let floors = extremes.map(|e| e - RAIL_TOLERANCE * e);
    // Samples on each rail, and the next value inside it: coarse audio's quantisation step, so
    // that the band compared with the rail covers at least two of its steps (an 8-bit
    // recording's top levels are compared with the levels below them, not with the empty values
    // between).
    let mut on_rail = [0usize; 2];
    let mut next_inside = [f32::NEG_INFINITY; 2];
    for &x in samples {
        let (side, v) = if x >= 0.0 { (0, x) } else { (1, -x) };
        if v >= floors[side] {
            on_rail[side] += 1;
        } else if v > next_inside[side] {
            next_inside[side] = v;
        }
    }
    let minimum = (MIN_CLIPPED_FRACTION * samples.len() as f64).max(MIN_CLIPPED_SAMPLES as f64);
    // A clipped waveform passes through values between zero and the rail on its way there; a side
    // whose only non-zero value is its extreme is quantisation (±1 LSB dither on silence, a
    // square wave), not clipping: an hour of dithered digital silence had a twelfth of its
    // samples "restored" (25 s of work) before this.
    let candidate = |side: usize| {
        extremes[side] > 0.0 && next_inside[side] > 0.0 && on_rail[side] as f64 >= minimum
    };
    if !candidate(0) && !candidate(1) {
        return (None, None);
    }
    let bands = [0, 1].map(|side| {
        let step = if next_inside[side].is_finite() {
            extremes[side] - next_inside[side]
        } else {
            0.0
        };
        floors[side] - (INNER_BAND * extremes[side]).max(2.0 * step)
    });
    let mut inside = [0usize; 2];
    for &x in samples {
        let (side, v) = if x >= 0.0 { (0, x) } else { (1, -x) };
        if v < floors[side] && v >= bands[side] {
            inside[side] += 1;
        }
    }
    let rail = |side: usize, sign: f32| {
        (candidate(side) && on_rail[side] as f64 >= MIN_PILE_UP * inside[side].max(1) as f64)
            .then_some(sign * extremes[side])
    };
    (rail(0, 1.0), rail(1, -1.0))
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
        let Some(a) = autoregression(&s, order) else {
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

/// Prediction-error filter `a` (`a[0] = 1`, `order + 1` taps) of `s` by the autocorrelation method
/// (Levinson–Durbin); `None` for a signal without energy or a numerically singular one.
fn autoregression(s: &[f64], order: usize) -> Option<Vec<f64>> {
    let mut r = vec![0.0f64; order + 1];
    for (lag, r) in r.iter_mut().enumerate() {
        *r = s[lag..].iter().zip(s).map(|(x, y)| x * y).sum();
    }
    // A little white noise (−60 dB) keeps the recursion stable on nearly periodic windows.
    r[0] *= 1.0 + 1e-6;
    if r[0] <= 0.0 || !r[0].is_finite() {
        return None;
    }
    let mut a = vec![0.0f64; order + 1];
    a[0] = 1.0;
    let mut error = r[0];
    let mut previous = a.clone();
    for i in 1..=order {
        let acc: f64 = r[i] + (1..i).map(|j| a[j] * r[i - j]).sum::<f64>();
        let k = -acc / error;
        previous[..i].copy_from_slice(&a[..i]);
        for j in 1..i {
            a[j] = previous[j] + k * previous[i - j];
        }
        a[i] = k;
        error *= 1.0 - k * k;
        if error <= 0.0 || !error.is_finite() {
            return None;
        }
    }
    Some(a)
}

/// The values of the missing samples (`local`, sorted, flagged in `is_missing`) that minimise the
/// prediction error `Σ_t (Σ_k a_k s_{t−k})²` over the window's rows `t ≥ order`, the known samples
/// fixed: normal equations `M u = −b`, banded (two missing samples share a row only if at most
/// `order` apart), solved by a banded Cholesky factorisation.
fn least_squares_fill(
    s: &[f64],
    is_missing: &[bool],
    local: &[usize],
    a: &[f64],
) -> Option<Vec<f64>> {
    let n = s.len();
    let p = a.len() - 1;
    let m = local.len();
    // The prediction error of each row from its known samples only.
    let known_error: Vec<f64> = (0..n)
        .map(|t| {
            if t < p {
                return 0.0;
            }
            (0..=p)
                .filter(|&k| !is_missing[t - k])
                .map(|k| a[k] * s[t - k])
                .sum()
        })
        .collect();
    let rows = |i: usize| i.max(p)..=(i + p).min(n - 1);
    // Lower band of M: band[α][d] = M[α][α − d], d = 0..=p.
    let width = p + 1;
    let mut band = vec![0.0f64; m * width];
    let mut rhs = vec![0.0f64; m];
    for (alpha, &i) in local.iter().enumerate() {
        rhs[alpha] = -rows(i).map(|t| a[t - i] * known_error[t]).sum::<f64>();
        for d in 0..width.min(alpha + 1) {
            let j = local[alpha - d];
            if i - j > p {
                break;
            }
            // Rows that hold both samples: t ≥ i (the later one) and t ≤ j + p.
            let value: f64 = (i.max(p)..=(j + p).min(n - 1))
                .map(|t| a[t - i] * a[t - j])
                .sum();
            band[alpha * width + d] = value;
        }
    }
    // A tiny ridge: missing samples at the window's very start share few rows.
    let ridge = 1e-9 * (0..m).map(|x| band[x * width]).sum::<f64>() / m.max(1) as f64 + 1e-12;
    for alpha in 0..m {
        band[alpha * width] += ridge;
    }
    banded_cholesky_solve(&mut band, width, &mut rhs)?;
    Some(rhs)
}

/// Solve `M x = b` in place for a symmetric positive definite `M` given as its lower band
/// (`band[i·width + d] = M[i][i − d]`); `None` if `M` is not positive definite.
fn banded_cholesky_solve(band: &mut [f64], width: usize, b: &mut [f64]) -> Option<()> {
    let m = b.len();
    // Factor M = L Lᵀ in place (L's band overwrites M's).
    for i in 0..m {
        for d in (0..width.min(i + 1)).rev() {
            let j = i - d;
            let mut sum = band[i * width + d];
            // Σ_k L[i][k] L[j][k] over k < j within both bands.
            for k in i.saturating_sub(width - 1)..j {
                sum -= band[i * width + (i - k)] * band[j * width + (j - k)];
            }
            if d == 0 {
                if sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                band[i * width] = sum.sqrt();
            } else {
                band[i * width + d] = sum / band[j * width];
            }
        }
    }
    // L y = b, then Lᵀ x = y.
    for i in 0..m {
        let mut sum = b[i];
        for k in i.saturating_sub(width - 1)..i {
            sum -= band[i * width + (i - k)] * b[k];
        }
        b[i] = sum / band[i * width];
    }
    for i in (0..m).rev() {
        let mut sum = b[i];
        for k in i + 1..(i + width).min(m) {
            sum -= band[k * width + (k - i)] * b[k];
        }
        b[i] = sum / band[i * width];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Speech-like test audio: a few harmonics of a gliding 140 Hz voice under a slow envelope, plus a
    /// little noise; int16 scale, peak about `peak`.
    fn voiced(len: usize, rate: u32, peak: f32, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let rate = rate as f32;
        let raw: Vec<f32> = (0..len)
            .map(|i| {
                let t = i as f32 / rate;
                let f0 = 140.0 + 20.0 * (2.0 * std::f32::consts::PI * 0.7 * t).sin();
                let phase = 2.0 * std::f32::consts::PI * f0 * t;
                let voice: f32 = (1..=6)
                    .map(|h| (h as f32 * phase + h as f32).sin() / h as f32)
                    .sum();
                let envelope = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 3.0 * t).sin();
                envelope * voice + 0.01 * rng.gen_range(-1.0f32..1.0)
            })
            .collect();
        let max = raw.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        raw.iter().map(|&x| x * peak / max).collect()
    }

    fn rms_error(a: &[f32], b: &[f32]) -> f64 {
        let sum: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum();
        (sum / a.len() as f64).sqrt()
    }

    fn clip_at(x: &[f32], rail: f32) -> Vec<f32> {
        x.iter().map(|&v| v.clamp(-rail, rail)).collect()
    }

    #[test]
    fn groups_restored_in_parallel_give_what_one_block_after_another_gives() {
        // Syllables of clipped voice between short quiet gaps: many independent groups, and blocks
        // inside each that read their neighbours' restored samples.
        let rate = 16_000;
        let mut original = Vec::new();
        for seed in 0..12u64 {
            original.extend(voiced(4_800 + 700 * seed as usize, rate, 30_000.0, seed));
            original.extend(vec![0.0f32; 200 + 150 * (seed as usize % 4)]);
        }
        let clipped = clip_at(&original, 12_000.0);
        let mut parallel = clipped.clone();
        let repair = repair_clipping(&mut parallel);
        assert!(repair.samples > 0);

        let (positive, negative) = clipped_rails(&clipped);
        let rails = Rails { positive, negative };
        let indices: Vec<usize> = (0..clipped.len())
            .filter(|&i| clipped[i].abs() >= 12_000.0 * (1.0 - RAIL_TOLERANCE))
            .collect();
        assert_eq!(indices.len(), repair.samples);
        let blocks = blocks(&indices, CONTEXT / 2, MAX_BLOCK);
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
    }

    #[test]
    fn unclipped_audio_is_unchanged() {
        for (rate, seed) in [(16_000, 1), (8_000, 2), (44_100, 3)] {
            let original = voiced(rate as usize, rate, 30_000.0, seed);
            let mut samples = original.clone();
            assert_eq!(repair_clipping(&mut samples), ClipRepair::default());
            assert_eq!(samples, original);
        }
    }

    #[test]
    fn coarse_quantisation_is_not_clipping() {
        // 8-bit-like audio: every value a multiple of 256, so the top levels hold several samples
        // each, as in FSDD's recordings; the levels below the top hold more, so nothing piles up.
        let original: Vec<f32> = voiced(8_000, 8_000, 32_000.0, 4)
            .iter()
            .map(|&x| (x / 256.0).round() * 256.0)
            .collect();
        let mut samples = original.clone();
        assert_eq!(repair_clipping(&mut samples), ClipRepair::default());
        assert_eq!(samples, original);
    }

    #[test]
    fn silence_and_constant_signals_are_left_alone() {
        let mut zeros = vec![0.0f32; 16_000];
        assert_eq!(repair_clipping(&mut zeros), ClipRepair::default());
        assert!(zeros.iter().all(|&x| x == 0.0));
        let mut empty: Vec<f32> = Vec::new();
        assert_eq!(repair_clipping(&mut empty), ClipRepair::default());
        // Dithered digital silence (sox writes it so: three quarters zeros, the rest ±1 step), and
        // a square wave: each side's only non-zero value is its extreme.
        let mut state = 7u32;
        let dithered: Vec<f32> = (0..160_000)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                match state >> 29 {
                    0 => -1.0,
                    1 => 1.0,
                    _ => 0.0,
                }
            })
            .collect();
        let square: Vec<f32> = (0..16_000)
            .map(|i| if (i / 40) % 2 == 0 { 1000.0 } else { -1000.0 })
            .collect();
        for original in [dithered, square] {
            let mut samples = original.clone();
            assert_eq!(repair_clipping(&mut samples), ClipRepair::default());
            assert_eq!(samples, original);
        }
    }

    #[test]
    fn clipped_peaks_are_restored_towards_the_original() {
        for (rate, seed, bound) in [
            (8_000u32, 5u64, 0.35),
            (16_000, 6, 0.35),
            (22_050, 7, 0.35),
            // The same cut spans twice as many samples as at 22.05 kHz, where the fixed-order model
            // restores this synthetic voice less closely (speech at 48 kHz: `models/README.md`).
            (44_100, 8, 0.6),
        ] {
            let original = voiced(rate as usize, rate, 60_000.0, seed);
            // Cut at 32767, about half the peak: 6 dB of clipping.
            let clipped = clip_at(&original, 32_767.0);
            // On the rail: within its tolerance (a few unclipped samples just inside count too).
            let near = 32_767.0 * (1.0 - RAIL_TOLERANCE);
            let share = clipped.iter().filter(|x| x.abs() >= near).count();
            assert!(share > rate as usize / 50, "the test signal must clip");
            let mut repaired = clipped.clone();
            let report = repair_clipping(&mut repaired);
            assert_eq!(report.samples, share);
            assert_eq!(report.positive_rail, Some(32_767.0));
            assert_eq!(report.negative_rail, Some(-32_767.0));
            let before = rms_error(&clipped, &original);
            let after = rms_error(&repaired, &original);
            assert!(
                after < bound * before,
                "{rate} Hz: error {after:.1} after against {before:.1} clipped"
            );
            // The recorded samples are untouched; restored ones lie beyond the rail on their side.
            for ((&c, &r), &o) in clipped.iter().zip(&repaired).zip(&original) {
                if c.abs() < near {
                    assert_eq!(r, c);
                } else {
                    assert!(r.abs() >= near && r.signum() == o.signum());
                }
            }
        }
    }

    #[test]
    fn one_sided_clipping_repairs_only_that_side() {
        // A DC offset pushed the positive peaks into the rail; the negative ones stayed inside.
        let original: Vec<f32> = voiced(16_000, 16_000, 30_000.0, 8)
            .iter()
            .map(|&x| x + 12_000.0)
            .collect();
        let clipped: Vec<f32> = original.iter().map(|&x| x.min(32_767.0)).collect();
        let mut repaired = clipped.clone();
        let report = repair_clipping(&mut repaired);
        assert_eq!(report.positive_rail, Some(32_767.0));
        assert_eq!(report.negative_rail, None);
        assert!(rms_error(&repaired, &original) < 0.35 * rms_error(&clipped, &original));
    }

    #[test]
    fn clipping_at_any_level_is_found() {
        // Clipped at full scale, then the file attenuated by 20 dB: the rail is at 3277.
        let original = voiced(16_000, 16_000, 6_000.0, 9);
        let clipped = clip_at(&original, 3_276.7);
        let mut repaired = clipped.clone();
        let report = repair_clipping(&mut repaired);
        assert!(report.samples > 0);
        assert!(rms_error(&repaired, &original) < 0.35 * rms_error(&clipped, &original));
    }

    #[test]
    fn banded_solver_matches_a_dense_solution() {
        // M = tridiagonal(−1, 4, −1) plus a second band, 6 × 6; b = M · [1..6].
        let m = 6;
        let width = 3;
        let dense = |i: usize, j: usize| -> f64 {
            match i.abs_diff(j) {
                0 => 5.0,
                1 => -1.0,
                2 => 0.5,
                _ => 0.0,
            }
        };
        let x: Vec<f64> = (1..=m).map(|v| v as f64).collect();
        let mut b: Vec<f64> = (0..m)
            .map(|i| (0..m).map(|j| dense(i, j) * x[j]).sum())
            .collect();
        let mut band = vec![0.0; m * width];
        for i in 0..m {
            for d in 0..width.min(i + 1) {
                band[i * width + d] = dense(i, i - d);
            }
        }
        banded_cholesky_solve(&mut band, width, &mut b).unwrap();
        for (got, want) in b.iter().zip(&x) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
    }
}
