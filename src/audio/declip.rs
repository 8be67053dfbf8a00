//! Clipped peaks restored before features.
//!
//! A recording made with the input gain set too high has its peaks cut flat at the converter's
//! full scale. The flat tops add harmonics across the whole spectrum, and the network hears them
//! as other phones: the real evaluation sets peak-normalised and then amplified by 12 dB (4–7 % of
//! the samples clipped) lost 6–9 points of PER, by 18 dB (10–20 %) 14–20 points (`models/README.md`).
//!
//! The lost samples are estimated back by sparse declipping, A-SPADE (Kitić, Bertin and Gribonval,
//! "Sparsity and cosparsity for audio declipping: a flexible non-convex approach", 2015, in the form
//! of Záviška, Rajmic, Mokrý and Průša, "A proper version of synthesis-based sparse audio
//! declipping", 2019): speech is sparse in short-time spectra, and flat tops are not. In each
//! windowed frame that holds clipped samples the estimate alternates between keeping only the `k`
//! largest coefficients of its (twice oversampled) spectrum and the nearest signal consistent with
//! the recording: the recorded samples as they were, each clipped one at least as far out as the
//! rail it was cut at. `k` grows every iteration until the two agree; the frames are overlap-added.
//! Where clipping is sparse (under a tenth of a frame's samples cut: a recording a few dB too hot,
//! or the edges of a loud passage), an autoregressive interpolation (Janssen et al. 1986,
//! [`autoregressive`]) restores the clipped samples as well at a fraction of the cost; on densely
//! clipped frames it left 2–4 times A-SPADE's loss (`models/README.md`, "Declipping: A-SPADE" and
//! "Declipping: sparse frames by interpolation").
//!
//! A rail counts as clipping only when the samples pile up on it: many samples at one extreme value,
//! several times more than in a band of the same values' neighbours just inside it. The peaks of
//! a recording that was never clipped thin out towards its extreme, whatever its resolution, and
//! are left exactly as they are; so are recordings that are mostly digital silence.

use std::sync::Arc;

mod autoregressive;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealToComplex};

/// A rail holds at least this fraction of the samples (and [`MIN_CLIPPED_SAMPLES`]) to count as
/// clipping: below it the flat tops are too few to matter (peak-normalised speech amplified by 6 dB
/// clips 0.2–1.2 % of its samples and lost 1–2 points of PER).
const MIN_CLIPPED_FRACTION: f64 = 0.0005;

/// A rail holds at least this many samples to count as clipping.
const MIN_CLIPPED_SAMPLES: usize = 8;

/// A sample within this fraction of the rail's magnitude is on the rail (converters clip to one
/// value; the tolerance admits the rounding of a float pipeline).
pub(super) const RAIL_TOLERANCE: f32 = 1e-3;

/// The band just inside the rail that its samples are compared with: this fraction of the rail's
/// magnitude (or two quantisation steps of coarse audio, if wider).
const INNER_BAND: f32 = 0.02;

/// The rail holds at least this many times the samples of the band just inside it.
const MIN_PILE_UP: f64 = 2.0;

/// A rail counts only when the waveform also swings to the other side of zero by at least this
/// fraction of the rail: a clipped recording is sound, which swings both ways, while a constant
/// offset with a few values below it is not (GSM 06.10's decoding of digital silence is 16 in 97 %
/// of its samples, 8 or 0 in the rest, and was "restored" into 2 phones a second).
const MIN_OPPOSITE_SWING: f32 = 0.1;

/// Frame length of the sparse restoration, samples (Hann window, hop a quarter of it). Counted in
/// samples, not seconds, as the probe that chose A-SPADE did: 64 ms at 16 kHz, 128 ms on 8 kHz
/// telephone digits, 23 ms at 44.1 kHz.
const FRAME: usize = 1024;

/// Hop between frames: a quarter frame, where periodic Hann windows add up to a constant (2).
const HOP: usize = FRAME / 4;

/// Length of the frame's DFT: twice the frame (zero-padded), a redundancy-2 Parseval frame.
const SPECTRUM: usize = 2 * FRAME;

/// Spectral coefficients (counted over the whole two-sided spectrum) added to the kept set per
/// iteration.
const STEP: usize = 4;

/// Iterations per frame at most ([`repair_clipping`]). Nearly every frame runs to the cap: on the
/// probe's clipped sets 100 / 300 / 600 gave FSDD 0.251 / 0.220 / 0.216.
const MAX_ITERATIONS: usize = 300;

/// A frame is done when its sparse spectrum and its consistent signal differ by at most this
/// (norm of the spectral difference, the recording scaled to its rail = 1).
const TOLERANCE: f32 = 0.1;

/// A restored sample lies at most this many times as far out as its rail: 20 dB over the rail is
/// beyond any recoverable clipping, and a frame stopped before it agreed can overshoot.
const MAX_OVERSHOOT: f32 = 10.0;

/// Frames restored per batch (in parallel): bounds the memory of restored frames held at once.
const BATCH: usize = 4096;

/// A frame where at least this share of the samples was cut is restored by A-SPADE; a clipped sample
/// in no such frame, by the autoregressive interpolation. On the robustness recipe's clipped copies
/// (the 2–6 dB `clipmild` and the 9–15 dB `clip`) every share from 2 to 10 % scored as A-SPADE
/// everywhere did, within the sets' noise; 20 % lost a point on the held-out voice
/// (`models/README.md`, "Declipping: sparse frames by interpolation").
const DENSE_SHARE: f64 = 0.1;

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
    repair_clipping_within(samples, MAX_ITERATIONS)
}

/// [`repair_clipping`] with at most `max_iterations` per frame: the cost is about proportional to
/// it (roughly 1 ms of one core per frame of 1024 samples and 100 iterations).
pub fn repair_clipping_within(samples: &mut [f32], max_iterations: usize) -> ClipRepair {
    repair(samples, max_iterations, DENSE_SHARE)
}

/// [`repair_clipping_within`], restoring by A-SPADE the clipped samples in frames where at least
/// `dense_share` of the samples was cut (and all their frames' clipped samples), the others by the
/// autoregressive interpolation.
fn repair(samples: &mut [f32], max_iterations: usize, dense_share: f64) -> ClipRepair {
    let (positive, negative) = clipped_rails(samples);
    if positive.is_none() && negative.is_none() {
        return ClipRepair::default();
    }
    let clipped: Vec<usize> = (0..samples.len())
        .filter(|&i| on_rail((positive, negative), samples[i]))
        .collect();
    // The recording scaled to its rail = 1, where TOLERANCE is set.
    let scale = positive.unwrap_or(0.0).max(-negative.unwrap_or(0.0));
    let rails = Rails {
        positive: positive.map(|r| r / scale),
        negative: negative.map(|r| r / scale),
    };

    // Frames start every HOP samples, the first one FRAME − HOP before the recording (samples
    // outside it are recorded zeros), so that every sample lies in FRAME / HOP of them.
    let first = -((FRAME - HOP) as i64);
    let frames_of = |indices: &[usize]| {
        let mut frames: Vec<i64> = Vec::new();
        for &i in indices {
            let last_start = i as i64 - (i as i64 - first).rem_euclid(HOP as i64);
            let mut start = (last_start - (FRAME - HOP) as i64).max(first);
            if let Some(&previous) = frames.last() {
                start = start.max(previous + HOP as i64);
            }
            while start <= last_start {
                frames.push(start);
                start += HOP as i64;
            }
        }
        frames
    };
    // The clipped samples of dense frames: A-SPADE restores them, and every frame they lie in, so
    // that their overlap-add sees nothing unrestored (in those frames every clipped sample is held
    // beyond its rail). Nearly every frame A-SPADE restores runs to the iteration cap, however few
    // of its samples were cut; the interpolation restores sparse ones as well for a fraction of it.
    let dense_count = ((dense_share * FRAME as f64).ceil() as usize).max(1);
    let mut dense: Vec<usize> = Vec::new();
    for start in frames_of(&clipped) {
        let range = clipped_in(&clipped, start);
        if range.len() >= dense_count {
            dense.extend_from_slice(&clipped[range]);
        }
    }
    dense.sort_unstable();
    dense.dedup();
    let frames = frames_of(&dense);

    let declipper = Declipper::new();
    let mut sum = vec![0.0f32; clipped.len()];
    let mut covered = vec![0u8; clipped.len()];
    for batch in frames.chunks(BATCH) {
        let restored: Vec<Vec<f32>> = batch
            .par_iter()
            .map_init(
                || declipper.scratch(),
                |scratch, &start| {
                    let inside = &clipped[clipped_in(&clipped, start)];
                    let frame = Frame::cut(samples, scale, start, rails, inside, &declipper.window);
                    declipper.restore(&frame, max_iterations, scratch)
                },
            )
            .collect();
        for (&start, frame) in batch.iter().zip(&restored) {
            let range = clipped_in(&clipped, start);
            for ((slot, count), &i) in sum[range.clone()]
                .iter_mut()
                .zip(&mut covered[range.clone()])
                .zip(&clipped[range])
            {
                *slot += frame[(i as i64 - start) as usize];
                *count += 1;
            }
        }
    }
    // Periodic Hann windows a quarter frame apart add up to 2 at every sample; a clipped sample
    // that not all of its frames restored is left to the autoregressive interpolation.
    let mut sparse: Vec<usize> = Vec::new();
    for ((&i, &total), &count) in clipped.iter().zip(&sum).zip(&covered) {
        if usize::from(count) < FRAME / HOP {
            sparse.push(i);
            continue;
        }
        let value = total / 2.0;
        let rail = rails.of(samples[i]).unwrap_or(samples[i] / scale);
        // At least as far out as the rail (the converter recorded that much), at most
        // MAX_OVERSHOOT times as far.
        let bound = rail * MAX_OVERSHOOT;
        let value = if rail >= 0.0 {
            value.clamp(rail, bound)
        } else {
            value.clamp(bound, rail)
        };
        samples[i] = value * scale;
    }
    // The interpolation reads the restored dense stretches as context.
    autoregressive::restore(samples, &sparse, Rails { positive, negative });
    ClipRepair {
        samples: clipped.len(),
        positive_rail: positive,
        negative_rail: negative,
    }
}

/// The positions in `clipped` (sorted sample indices) of the clipped samples inside the frame that
/// starts at `start`.
fn clipped_in(clipped: &[usize], start: i64) -> std::ops::Range<usize> {
    let from = clipped.partition_point(|&i| (i as i64) < start);
    let to = clipped.partition_point(|&i| (i as i64) < start + FRAME as i64);
    from..to
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

/// How many samples of `samples` [`repair_clipping`] would restore (0: not clipped).
pub(super) fn clipped_samples(samples: &[f32]) -> usize {
    let rails = clipped_rails(samples);
    if rails == (None, None) {
        return 0;
    }
    samples.iter().filter(|&&x| on_rail(rails, x)).count()
}

/// Whether `x` lies on one of the (positive, negative) rails [`clipped_rails`] found.
fn on_rail((positive, negative): (Option<f32>, Option<f32>), x: f32) -> bool {
    positive.is_some_and(|rail| x >= rail - RAIL_TOLERANCE * rail)
        || negative.is_some_and(|rail| x <= rail - RAIL_TOLERANCE * rail)
}

/// The fewest samples on a rail that count as clipping in a recording of `len` samples.
pub(super) fn min_clipped_samples(len: usize) -> usize {
    ((MIN_CLIPPED_FRACTION * len as f64).ceil() as usize).max(MIN_CLIPPED_SAMPLES)
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
    let minimum = min_clipped_samples(samples.len());
    // A clipped waveform passes through values between zero and the rail on its way there; a side
    // whose only non-zero value is its extreme is quantisation (±1 LSB dither on silence, a
    // square wave), not clipping: an hour of dithered digital silence had a twelfth of its
    // samples "restored" (25 s of work) before this.
    let candidate = |side: usize| {
        extremes[side] > 0.0
            && next_inside[side] > 0.0
            && on_rail[side] >= minimum
            && extremes[1 - side] >= MIN_OPPOSITE_SWING * extremes[side]
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

/// One windowed frame to restore: its samples, and for each the bounds a consistent signal must
/// keep (a recorded sample: exactly its value; a clipped one: beyond its windowed rail).
struct Frame {
    /// The windowed samples.
    samples: Vec<f32>,
    /// Lower and upper bound of each windowed sample (equal for a recorded one).
    bounds: Vec<(f32, f32)>,
}

impl Frame {
    /// The frame of `recording` starting at `start` (may lie before the recording or run past
    /// its end: zeros there), divided by `scale` (to rail = 1); `clipped` holds the indices of
    /// its clipped samples.
    fn cut(
        recording: &[f32],
        scale: f32,
        start: i64,
        rails: Rails,
        clipped: &[usize],
        window: &[f32],
    ) -> Frame {
        let samples: Vec<f32> = window
            .iter()
            .enumerate()
            .map(|(n, &w)| {
                let position = start + n as i64;
                let inside = position >= 0 && (position as usize) < recording.len();
                if inside {
                    recording[position as usize] / scale * w
                } else {
                    0.0
                }
            })
            .collect();
        // Recorded samples are kept as they are; a clipped one lies beyond its (windowed) rail.
        let mut bounds: Vec<(f32, f32)> = samples.iter().map(|&x| (x, x)).collect();
        for &i in clipped {
            let n = (i as i64 - start) as usize;
            let w = window[n];
            bounds[n] = match rails.of(recording[i]) {
                Some(rail) if rail > 0.0 => (rail * w, f32::INFINITY),
                Some(rail) => (f32::NEG_INFINITY, rail * w),
                None => bounds[n],
            };
        }
        Frame { samples, bounds }
    }
}

/// A-SPADE on one frame at a time: the FFT plans and window, shared by all threads.
struct Declipper {
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    /// Periodic Hann window of FRAME samples.
    window: Vec<f32>,
}

/// One thread's buffers for [`Declipper::restore`].
struct Scratch {
    time: Vec<f32>,
    /// The analysis of the current estimate.
    analysis: Vec<Complex<f32>>,
    /// The sparse spectrum.
    sparse: Vec<Complex<f32>>,
    /// The dual variable: the running sum of (analysis − sparse spectrum).
    dual: Vec<Complex<f32>>,
    /// The spectrum synthesised (the inverse FFT overwrites it).
    synthesis: Vec<Complex<f32>>,
    /// Squared magnitudes, for choosing the largest coefficients.
    power: Vec<f32>,
    /// A copy of `power` reordered by [`kth_largest`].
    ranked: Vec<f32>,
    /// The FFTs' own scratch.
    fft: Vec<Complex<f32>>,
}

impl Declipper {
    fn new() -> Declipper {
        let window = (0..FRAME)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * n as f64 / FRAME as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        Declipper {
            forward: crate::util::fft_plans::forward(SPECTRUM),
            inverse: crate::util::fft_plans::inverse(SPECTRUM),
            window,
        }
    }

    fn scratch(&self) -> Scratch {
        let bins = SPECTRUM / 2 + 1;
        let zeros = vec![Complex::new(0.0f32, 0.0); bins];
        Scratch {
            time: vec![0.0; SPECTRUM],
            analysis: zeros.clone(),
            sparse: zeros.clone(),
            dual: zeros.clone(),
            synthesis: zeros,
            power: vec![0.0; bins],
            ranked: vec![0.0; bins],
            fft: vec![
                Complex::new(0.0, 0.0);
                self.forward
                    .get_scratch_len()
                    .max(self.inverse.get_scratch_len())
            ],
        }
    }

    /// The frame's spectrum into `scratch.analysis`: the DFT of `signal` zero-padded to SPECTRUM
    /// (raw units; see [`Declipper::restore`]). Only the non-negative frequencies: the signal is
    /// real, so the rest are their conjugates.
    fn analyse(&self, signal: &[f32], scratch: &mut Scratch) {
        self.analyse_into(
            signal,
            &mut scratch.time,
            &mut scratch.analysis,
            &mut scratch.fft,
        );
    }

    fn analyse_into(
        &self,
        signal: &[f32],
        time: &mut [f32],
        analysis: &mut [Complex<f32>],
        fft: &mut [Complex<f32>],
    ) {
        time[..FRAME].copy_from_slice(signal);
        time[FRAME..].fill(0.0);
        let scratch_len = self.forward.get_scratch_len();
        // The lengths come from the plan itself, so the FFT cannot fail.
        let _ = self
            .forward
            .process_with_scratch(time, analysis, &mut fft[..scratch_len]);
    }

    /// The restored (windowed) frame.
    ///
    /// Spectra are kept in the raw FFT's units (analysis √SPECTRUM times the Parseval frame's,
    /// synthesis divided by SPECTRUM): the selection does not depend on the scale, and the
    /// tolerance is scaled once instead of every spectrum every iteration.
    fn restore(&self, frame: &Frame, max_iterations: usize, scratch: &mut Scratch) -> Vec<f32> {
        let mut estimate = frame.samples.clone();
        self.analyse(&estimate, scratch);
        let Scratch {
            time,
            analysis,
            sparse,
            dual,
            synthesis,
            power,
            ranked,
            fft,
        } = scratch;
        dual.fill(Complex::new(0.0, 0.0));
        let tolerance = TOLERANCE * TOLERANCE * SPECTRUM as f32;
        let inverse_scratch = self.inverse.get_scratch_len();
        for iteration in 0..max_iterations {
            // Keep the k largest coefficients of (analysis + dual); k counts both halves of the
            // two-sided spectrum, so half as many of the one-sided bins.
            let keep = (STEP * (iteration + 1)).div_ceil(2);
            for (((s, p), &a), &u) in sparse
                .iter_mut()
                .zip(power.iter_mut())
                .zip(analysis.iter())
                .zip(dual.iter())
            {
                *s = a + u;
                *p = s.norm_sqr();
            }
            let threshold = kth_largest(power, ranked, keep);
            // The consistent estimate nearest the synthesis of (sparse − dual).
            for (((s, c), &p), &u) in sparse
                .iter_mut()
                .zip(synthesis.iter_mut())
                .zip(power.iter())
                .zip(dual.iter())
            {
                // Branch-free: which bins survive is unpredictable.
                *s *= f32::from(u8::from(p >= threshold));
                *c = *s - u;
            }
            // A real signal's spectrum is real at 0 and at half the rate.
            synthesis[0].im = 0.0;
            synthesis[SPECTRUM / 2].im = 0.0;
            // The lengths come from the plan itself, so the FFT cannot fail.
            let _ = self
                .inverse
                .process_with_scratch(synthesis, time, &mut fft[..inverse_scratch]);
            let norm = 1.0 / SPECTRUM as f32;
            for ((e, &t), &(low, high)) in estimate.iter_mut().zip(time.iter()).zip(&frame.bounds) {
                *e = (t * norm).max(low).min(high);
            }
            self.analyse_into(&estimate, time, analysis, fft);
            // dual += analysis − sparse; done when they agree.
            // (Summed in eight lanes, which the compiler can keep in one vector register.)
            let mut lanes = [0.0f32; 8];
            for ((u, a), s) in dual
                .chunks_mut(8)
                .zip(analysis.chunks(8))
                .zip(sparse.chunks(8))
            {
                for (lane, ((u, &a), &s)) in lanes.iter_mut().zip(u.iter_mut().zip(a).zip(s)) {
                    let r = a - s;
                    *u += r;
                    *lane += r.norm_sqr();
                }
            }
            let residual: f32 = lanes.iter().sum();
            // Interior bins stand for two coefficients of the two-sided spectrum.
            let edges = (analysis[0] - sparse[0]).norm_sqr()
                + (analysis[SPECTRUM / 2] - sparse[SPECTRUM / 2]).norm_sqr();
            if 2.0 * residual - edges <= tolerance {
                break;
            }
        }
        estimate
    }
}

/// The `keep`-th largest of `power` (all of them: the smallest). `ranked` is scratch of the same
/// length. (A histogram on the values' top bits, ranking only the bucket that holds it, was no
/// faster on 1025 values.)
fn kth_largest(power: &[f32], ranked: &mut [f32], keep: usize) -> f32 {
    if keep >= power.len() {
        return f32::NEG_INFINITY;
    }
    ranked.copy_from_slice(power);
    let (_, &mut threshold, _) =
        ranked.select_nth_unstable_by(power.len() - keep, |a, b| a.total_cmp(b));
    threshold
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
        // The phase is the running sum of the gliding frequency (a true glide: `f0 · t` would
        // sweep ever faster).
        let mut phase = 0.0f32;
        let raw: Vec<f32> = (0..len)
            .map(|i| {
                let t = i as f32 / rate;
                let f0 = 140.0 + 20.0 * (2.0 * std::f32::consts::PI * 0.7 * t).sin();
                phase += 2.0 * std::f32::consts::PI * f0 / rate;
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

    /// The indices of `x`'s samples on its rails (as the repair finds them).
    fn on_rails(x: &[f32]) -> (Vec<usize>, Rails) {
        let (positive, negative) = clipped_rails(x);
        let near = |rail: Option<f32>, v: f32| {
            rail.is_some_and(|r| (v - r).abs() <= RAIL_TOLERANCE * r.abs())
        };
        let indices = (0..x.len())
            .filter(|&i| near(positive, x[i]) || near(negative, x[i]))
            .collect();
        (indices, Rails { positive, negative })
    }

    #[test]
    fn sparse_clipping_is_interpolated_and_dense_clipping_sparsely_restored() {
        // Cut just below the peak: a few samples per frame, all restored by the interpolation.
        let original = voiced(16_000, 16_000, 30_000.0, 11);
        let mildly = clip_at(&original, 27_000.0);
        let (indices, rails) = on_rails(&mildly);
        assert!(!indices.is_empty());
        let mut repaired = mildly.clone();
        assert_eq!(repair_clipping(&mut repaired).samples, indices.len());
        let mut interpolated = mildly.clone();
        autoregressive::restore(&mut interpolated, &indices, rails);
        assert_eq!(repaired, interpolated);

        // Cut at a third of the peak: every clipped sample lies in dense frames, so the repair is
        // A-SPADE's everywhere (as with every frame counted dense).
        let heavily = clip_at(&original, 10_000.0);
        let mut repaired = heavily.clone();
        repair_clipping(&mut repaired);
        let mut sparse = heavily.clone();
        repair(&mut sparse, MAX_ITERATIONS, 0.0);
        assert_eq!(repaired, sparse);
        assert_ne!(repaired, heavily);
    }

    #[test]
    fn distant_clipped_stretches_are_restored_as_if_alone() {
        // Two clipped syllables, further apart than a frame: each frame sees one of them only, so
        // the recording restores each exactly as the syllable alone is restored (frame positions
        // line up: lengths are multiples of the hop).
        let first = clip_at(&voiced(12 * HOP, 16_000, 30_000.0, 1), 12_000.0);
        let second = clip_at(&voiced(20 * HOP, 16_000, 30_000.0, 2), 12_000.0);
        let gap = vec![0.0f32; 6 * HOP];
        let mut whole: Vec<f32> = [&first[..], &gap, &second].concat();
        let report = repair_clipping(&mut whole);
        let (mut alone_first, mut alone_second) = (first.clone(), second.clone());
        let reports = [
            repair_clipping(&mut alone_first),
            repair_clipping(&mut alone_second),
        ];
        assert_eq!(report.samples, reports[0].samples + reports[1].samples);
        assert!(reports.iter().all(|r| r.positive_rail == Some(12_000.0)));
        assert_eq!(&whole[..first.len()], &alone_first[..]);
        assert_eq!(&whole[first.len() + gap.len()..], &alone_second[..]);
        assert_ne!(alone_first, first);
    }

    #[test]
    fn recordings_shorter_than_a_frame_are_restored() {
        // Every frame reaches past both ends of the recording (zeros there, as recorded samples).
        // Consistent and bounded; not necessarily closer to the original: this test voice starts
        // and stops at full amplitude, and the jump to the zeros around it is not sparse (300
        // samples came back with 1.3 times the clipped error, 40 and 1025 with less).
        for len in [40, 300, FRAME - 1, FRAME + 1] {
            // 40 samples of the voice at 16 kHz are less than half its period and never swing
            // below zero, which is not taken for clipping ([`MIN_OPPOSITE_SWING`]): as if at 4 kHz.
            let rate = if len < 100 { 4_000 } else { 16_000 };
            let original = voiced(len, rate, 30_000.0, len as u64);
            let clipped = clip_at(&original, 15_000.0);
            let mut repaired = clipped.clone();
            let report = repair_clipping(&mut repaired);
            assert!(report.samples > 0, "{len} samples");
            for (&c, &r) in clipped.iter().zip(&repaired) {
                if c.abs() < 15_000.0 * (1.0 - RAIL_TOLERANCE) {
                    assert_eq!(r, c);
                } else {
                    assert!(r.is_finite() && r.abs() >= c.abs() * (1.0 - RAIL_TOLERANCE));
                    assert!(r.abs() <= 15_000.0 * MAX_OVERSHOOT && r.signum() == c.signum());
                }
            }
        }
    }

    #[test]
    fn analysis_and_synthesis_form_a_parseval_frame() {
        // Synthesis inverts analysis and both keep the energy: the projection step's premise.
        let declipper = Declipper::new();
        let mut scratch = declipper.scratch();
        let signal: Vec<f32> = voiced(FRAME, 16_000, 1.0, 3);
        declipper.analyse(&signal, &mut scratch);
        let energy: f32 = signal.iter().map(|x| x * x).sum();
        let last = scratch.analysis.len() - 1;
        let spectral: f32 = scratch
            .analysis
            .iter()
            .enumerate()
            .map(|(bin, c)| if bin == 0 || bin == last { 1.0 } else { 2.0 } * c.norm_sqr())
            .sum();
        // Raw FFT units: SPECTRUM times the energy.
        let spectral = spectral / SPECTRUM as f32;
        assert!(
            (spectral - energy).abs() < 1e-4 * energy,
            "{spectral} vs {energy}"
        );
        // A frame without clipped samples: consistent as it is, so restoring returns it.
        let frame = Frame {
            samples: signal.clone(),
            bounds: signal.iter().map(|&x| (x, x)).collect(),
        };
        assert_eq!(
            declipper.restore(&frame, MAX_ITERATIONS, &mut scratch),
            signal
        );
    }

    #[test]
    fn a_sparse_frame_is_recovered_almost_exactly() {
        // Three sinusoids on DFT bins: sparse in the frame's spectrum, which A-SPADE recovers from
        // the two thirds of its samples that were recorded.
        let declipper = Declipper::new();
        let mut scratch = declipper.scratch();
        let original: Vec<f32> = (0..FRAME)
            .map(|n| {
                let t = n as f32 / SPECTRUM as f32 * 2.0 * std::f32::consts::PI;
                (0.6 * (24.0 * t).sin() + 0.5 * (56.0 * t + 1.0).sin() + 0.3 * (90.0 * t).cos())
                    * declipper.window[n]
            })
            .collect();
        let rail = 0.6;
        let bounds: Vec<(f32, f32)> = original
            .iter()
            .zip(&declipper.window)
            .map(|(&x, &w)| {
                if x >= rail * w {
                    (rail * w, f32::INFINITY)
                } else if x <= -rail * w {
                    (f32::NEG_INFINITY, -rail * w)
                } else {
                    (x, x)
                }
            })
            .collect();
        let clipped: Vec<f32> = original
            .iter()
            .zip(&bounds)
            .map(|(&x, &(low, high))| {
                if low == high {
                    x
                } else if high.is_finite() {
                    high
                } else {
                    low
                }
            })
            .collect();
        let cut = bounds.iter().filter(|(l, h)| l != h).count();
        assert!(cut > FRAME / 5, "{cut} samples cut");
        let frame = Frame {
            samples: clipped.clone(),
            bounds,
        };
        let restored = declipper.restore(&frame, MAX_ITERATIONS, &mut scratch);
        let before = rms_error(&clipped, &original);
        let after = rms_error(&restored, &original);
        assert!(
            after < 0.05 * before,
            "error {after} against {before} clipped"
        );
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
        // A constant offset with a few values below it (GSM 06.10's digital silence) and the same
        // below zero: nothing swings to the other side.
        let offset: Vec<f32> = (0..8_000)
            .map(|i| match i % 40 {
                0 => 0.0,
                1 => 8.0,
                _ => 16.0,
            })
            .collect();
        let negative = offset.iter().map(|x| -x).collect();
        for original in [dithered, square, offset, negative] {
            let mut samples = original.clone();
            assert_eq!(repair_clipping(&mut samples), ClipRepair::default());
            assert_eq!(samples, original);
        }
    }

    #[test]
    fn clipped_peaks_are_restored_towards_the_original() {
        // A sixth of the samples are cut. The same cut spans more samples at higher rates, and a
        // frame counted in samples holds fewer periods of the voice, so less comes back (the
        // noise in the test voice is not sparse either; real speech: `models/README.md`).
        for (rate, seed, bound) in [
            (8_000u32, 5u64, 0.2),
            (16_000, 6, 0.45),
            (22_050, 7, 0.6),
            (44_100, 8, 0.8),
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
    fn kth_largest_matches_a_sort() {
        let mut rng = StdRng::seed_from_u64(11);
        // Powers over many decades, with ties and zeros, as a sparse spectrum's are.
        let power: Vec<f32> = (0..1025)
            .map(|i| match i % 7 {
                0 => 0.0,
                1 => 4.0,
                _ => 10f32.powf(rng.gen_range(-6.0f32..6.0)),
            })
            .collect();
        let mut sorted = power.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let mut ranked = vec![0.0; power.len()];
        for keep in [1, 2, 3, 50, 146, 147, 148, 600, 1024] {
            assert_eq!(
                kth_largest(&power, &mut ranked, keep),
                sorted[keep - 1],
                "keep {keep}"
            );
        }
        assert_eq!(kth_largest(&power, &mut ranked, 1025), f32::NEG_INFINITY);
    }
}
