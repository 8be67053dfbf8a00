//! Clips cut tight: speech at a recording's first or last sample.
//!
//! Many recordings are cut at the speech (FSDD's digits start within 20 dB of their speech level
//! in 96 % of the clips; so do word lists and corpora trimmed by a detector). The network was
//! trained on utterances with some quiet around them, and at a cut it loses phones: it places a
//! word's first spike a little before the sound starts, where a cut clip has no frame. So a loud
//! edge (one of the first or last [`EDGE_WINDOW_FRAMES`] frames at least [`HOT_EDGE_DB`] over the
//! recording's quiet level) gets [`EDGE_PAD_FRAMES`] frames of the recording's own floor in front
//! of it (or after it) before anything else measures the recording. The phones are decoded with
//! the pads and their times moved back into the recording ([`fit_times`]); the posteriors and
//! audio handed back are the recording's own frames ([`EdgePad::trim`]). An edge already at the floor (quiet around the
//! speech, or a steady hum or noise) is left alone: there a pad would add a step the network could
//! hear as speech (padding every recording gave a 50 Hz hum three phones).

use ndarray::{s, Array2};

use crate::audio::{floor_noise, power_and_mean};
use crate::util::mix_seed;

/// Output frames of floor put before (after) a loud edge: 0.08 s at 20 ms. Measured
/// (`models/README.md`, "Clips cut tight"): FSDD's held-out speaker 0.183 → 0.118 (0.121 with 3
/// frames, 0.124 with 6; each frame costs short clips' recognition time); 0.2–0.3 s gave less in
/// a first probe.
pub const EDGE_PAD_FRAMES: usize = 4;

/// An edge is loud when one of its first (last) frames is this many dB over the recording's quiet
/// level.
pub const HOT_EDGE_DB: f32 = 10.0;

/// Output frames at each end looked at for loudness.
const EDGE_WINDOW_FRAMES: usize = 3;

/// The recording's quiet level is this quantile of its frames' levels.
const QUIET_QUANTILE: f64 = 0.1;

/// Seed stream of the pads' noise (combined with the recording's length).
const EDGE_SEED: u64 = 0xED_6E_5E_ED;

/// Output frames of floor added before and after a recording whose edges are loud.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdgePad {
    /// Frames added before the first sample.
    pub start: usize,
    /// Frames added after the last sample.
    pub end: usize,
}

impl EdgePad {
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.start == 0 && self.end == 0
    }

    /// Samples added before the first sample, at `hop` samples per output frame.
    pub fn start_samples(&self, hop: usize) -> usize {
        self.start * hop
    }

    /// `samples` (`hop` per output frame) without the pads.
    pub fn trim_samples(&self, samples: &mut Vec<f32>, hop: usize) {
        let end = samples.len().saturating_sub(self.end * hop);
        samples.truncate(end);
        samples.drain(..(self.start * hop).min(end));
    }

    /// `rows` (one per output frame of the padded recording) without the pads' rows.
    pub fn trim(&self, rows: Array2<f32>) -> Array2<f32> {
        if self.is_empty() {
            return rows;
        }
        let n = rows.nrows();
        let start = self.start.min(n);
        let end = n.saturating_sub(self.end).max(start);
        rows.slice(s![start..end, ..]).to_owned()
    }
}

/// The levels (dB, any reference) of `samples` in frames of `hop`, each frame's mean removed: a
/// DC offset is not loudness.
fn frame_levels_db(samples: &[f32], hop: usize) -> Vec<f32> {
    samples
        .chunks(hop.max(1))
        .map(|frame| {
            // One LSB squared keeps digital silence finite.
            (10.0 * (power_and_mean(frame).0 + 1.0).log10()) as f32
        })
        .collect()
}

/// Which ends of `samples` (`hop` samples per output frame) are loud: `(start, end)`.
pub fn loud_edges(samples: &[f32], hop: usize) -> (bool, bool) {
    let levels = frame_levels_db(samples, hop);
    // Too short to have a quiet level apart from its edges.
    if levels.len() < 2 * EDGE_WINDOW_FRAMES + 2 {
        return (false, false);
    }
    let mut sorted = levels.clone();
    sorted.sort_by(f32::total_cmp);
    let quiet = sorted[((sorted.len() as f64 * QUIET_QUANTILE) as usize).min(sorted.len() - 1)];
    let loud = |frames: &[f32]| frames.iter().any(|&l| l >= quiet + HOT_EDGE_DB);
    (
        loud(&levels[..EDGE_WINDOW_FRAMES]),
        loud(&levels[levels.len() - EDGE_WINDOW_FRAMES..]),
    )
}

/// `samples` (int16 scale, `sample_rate_hz`; the network's output frames `frame_shift_s` apart)
/// with [`EDGE_PAD_FRAMES`] frames of its own floor ([`floor_noise`]; digital silence if it has
/// none) before a loud start and after a loud end, and what was added; `None` when neither end is
/// loud.
pub fn pad_loud_edges(
    samples: &[f32],
    sample_rate_hz: u32,
    frame_shift_s: f64,
) -> Option<(Vec<f32>, EdgePad)> {
    let hop = ((frame_shift_s * f64::from(sample_rate_hz)).round() as usize).max(1);
    let (start, end) = loud_edges(samples, hop);
    if !start && !end {
        return None;
    }
    let pad = EdgePad {
        start: if start { EDGE_PAD_FRAMES } else { 0 },
        end: if end { EDGE_PAD_FRAMES } else { 0 },
    };
    // Whole frames at the common rates (0.08 s is 640 samples at 8 kHz, 882 at 11,025 Hz).
    let frames_len = |frames: usize| {
        (frames as f64 * frame_shift_s * f64::from(sample_rate_hz)).round() as usize
    };
    let (before, after) = (frames_len(pad.start), frames_len(pad.end));
    let noise = floor_noise(
        samples,
        sample_rate_hz,
        before + after,
        mix_seed(EDGE_SEED, samples.len() as u64, 0),
    );
    let mut padded = Vec::with_capacity(samples.len() + before + after);
    padded.extend_from_slice(&noise[..before]);
    padded.extend_from_slice(samples);
    padded.extend_from_slice(&noise[before..]);
    Some((padded, pad))
}

/// Phone times `(start, end)` of the padded recording (in order, `before` seconds of pad in front)
/// moved into the recording's `duration`: shifted back, clamped to it, and where a phone was
/// aligned wholly inside a pad (42 of 1,557 phones on FSDD's held-out speaker), given a `frame` of
/// its own at that end, its neighbours' edges moved aside for it.
pub fn fit_times(times: &mut [(f32, f32)], before: f32, duration: f32, frame: f32) {
    let mut floor = 0.0f32;
    for (start, end) in times.iter_mut() {
        *start = (*start - before).clamp(0.0, duration).max(floor);
        *end = (*end - before)
            .clamp(0.0, duration)
            .max((*start + frame).min(duration));
        floor = *end;
    }
    let mut ceiling = duration;
    for (start, end) in times.iter_mut().rev() {
        *end = end.min(ceiling);
        *start = start.min((*end - frame).max(0.0));
        ceiling = *start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::test_noise as noise;

    const HOP: usize = 320;

    /// `frames` frames of HOP of a faint floor, with a burst 40 dB louder from frame `from` to `to`.
    fn burst(frames: usize, from: usize, to: usize) -> Vec<f32> {
        let mut x = noise(frames * HOP, 30.0, 1);
        for (i, b) in noise((to - from) * HOP, 3000.0, 2).into_iter().enumerate() {
            x[from * HOP + i] += b;
        }
        x
    }

    #[test]
    fn speech_at_the_start_is_a_loud_edge_and_a_quiet_end_is_not() {
        assert_eq!(loud_edges(&burst(50, 0, 20), HOP), (true, false));
        assert_eq!(loud_edges(&burst(50, 30, 50), HOP), (false, true));
        assert_eq!(loud_edges(&burst(50, 10, 40), HOP), (false, false));
    }

    #[test]
    fn a_steady_sound_has_no_loud_edge() {
        // A hum or a noise throughout: its quiet level is its level.
        let hum: Vec<f32> = (0..50 * HOP)
            .map(|i| 3000.0 * (i as f32 * 2.0 * std::f32::consts::PI * 50.0 / 16_000.0).sin())
            .collect();
        assert_eq!(loud_edges(&hum, HOP), (false, false));
        assert_eq!(loud_edges(&noise(50 * HOP, 3000.0, 3), HOP), (false, false));
    }

    #[test]
    fn pads_hold_the_floor_and_trim_restores_the_frames() {
        let x = burst(50, 0, 50 - 10);
        let (padded, pad) = pad_loud_edges(&x, 16_000, 0.02).expect("the start is loud");
        assert_eq!(
            pad,
            EdgePad {
                start: EDGE_PAD_FRAMES,
                end: 0
            }
        );
        assert_eq!(padded.len(), x.len() + EDGE_PAD_FRAMES * HOP);
        assert_eq!(&padded[pad.start_samples(HOP)..], &x[..]);
        // The pad is at the floor's level (±6 dB), not silent and not loud.
        let power =
            |s: &[f32]| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / s.len() as f64;
        let ratio_db =
            10.0 * (power(&padded[..pad.start_samples(HOP)]) / power(&x[45 * HOP..])).log10();
        assert!(ratio_db.abs() < 6.0, "pad {ratio_db:.1} dB from the floor");
        let rows =
            Array2::<f32>::from_shape_fn((50 + EDGE_PAD_FRAMES, 2), |(r, c)| (r * 2 + c) as f32);
        let trimmed = pad.trim(rows);
        assert_eq!(trimmed.nrows(), 50);
        assert_eq!(trimmed[[0, 0]], (EDGE_PAD_FRAMES * 2) as f32);
        assert!(pad_loud_edges(&burst(50, 10, 40), 16_000, 0.02).is_none());
    }

    #[test]
    fn phones_inside_the_pads_get_a_frame_at_the_recordings_ends() {
        // 0.08 s of pad in front of a 0.3 s recording, frames of 0.02 s: the first phone lies
        // wholly in the front pad, the last wholly in the back pad.
        let mut times = vec![(0.02, 0.06), (0.06, 0.2), (0.2, 0.38), (0.38, 0.44)];
        fit_times(&mut times, 0.08, 0.3, 0.02);
        let expected = [(0.0, 0.02), (0.02, 0.12), (0.12, 0.28), (0.28, 0.3)];
        for ((start, end), (s, e)) in times.iter().zip(expected) {
            assert!(
                (start - s).abs() < 1e-6 && (end - e).abs() < 1e-6,
                "{times:?}"
            );
        }
        // Phones within the recording only move back by the pad.
        let mut inside = vec![(0.1, 0.2), (0.2, 0.3)];
        fit_times(&mut inside, 0.08, 0.3, 0.02);
        assert!((inside[0].0 - 0.02).abs() < 1e-6 && (inside[1].1 - 0.22).abs() < 1e-6);
    }
}
