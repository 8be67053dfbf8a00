//! Digital silence filled with the recording's own noise floor, before features.
//!
//! No microphone produces digital silence: every real recording has a noise floor (room, preamp,
//! quantisation). Runs of exact zeros come from editing — padding a clip, joining clips with gaps,
//! muting. Where a recording with an audible floor (FSDD's 8-bit-like clips sit at about −40 dBFS)
//! meets such a run, the floor starts and stops abruptly, and the network hears the step as a
//! fricative: padded FSDD digits gained a trailing `z`/`s`, and their PER went from 0.32 to 0.56.
//! Filling the runs with noise shaped like the recording's quietest frames puts the recording back
//! the way a microphone would have delivered it, so the padded clip sounds like the clip alone.
//!
//! The fill is deterministic (a fixed seed per run position) and changes nothing in a recording
//! without runs of digital silence. A recording that is silent throughout stays silent.
//!
//! The same step arises without digital zeros where a clip's pauses are far quieter than the floor
//! under its speech: a noise gate or a phone's discontinuous transmission lowering the background
//! between words, or a clip pasted into a quieter recording. [`fill_quiet_gaps`] brings such gaps
//! up to the floor under the speech, so the floor no longer starts and stops at every word (FSDD
//! digits padded with a −55 dBFS floor, their own being −40 dBFS: PER 0.219 against 0.187 as clips;
//! `models/README.md`).

use crate::util::fft_plans;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use realfft::num_complex::Complex;

use crate::util::mix_seed;

/// Samples whose magnitude is at most this (int16 scale: one least significant bit, so that
/// ±1-LSB dither counts too) are digital silence.
pub const DIGITAL_SILENCE_LEVEL: f32 = 1.0;

/// Runs of digital silence shorter than this (seconds) are left alone: they are too short to sound
/// like a step (a waveform crossing zero in low-resolution audio can sit at 0 for a few samples).
pub const MIN_DIGITAL_SILENCE_S: f64 = 0.02;

/// Length of the frames the floor's spectrum is measured on (seconds).
const FLOOR_FRAME_S: f64 = 0.025;

/// The floor is the mean spectrum of this fraction of the live frames, the quietest.
const FLOOR_QUANTILE: f64 = 0.1;

/// Fewer live frames than this: too little recording to learn a floor from; nothing is filled.
const MIN_LIVE_FRAMES: usize = 8;

/// Bands the floor's spectral shape is checked in.
const SHAPE_BANDS: usize = 8;

/// The quietest frames are a floor only if their spectral shape holds still: the level of each of
/// [`SHAPE_BANDS`] bands relative to the frame's mean level varies across them by at most this
/// (standard deviation, dB, mean over bands). Measured (`models/README.md`): the floors of FSDD and of
/// the real evaluation recordings 0.8–3.7 dB (FSDD ≤ 2.5), the quietest frames of synthetic speech
/// that has no floor at all — espeak-ng writes its stop closures and pauses as exact zeros, so its
/// quietest live frames are weak speech sounds — 3.1–8.2 dB (median 5.5). Filling such a voice's
/// closures with noise shaped like its weak consonants made phones out of nothing (synthetic dev PER
/// 3.2 % → 5.8 %).
const MAX_FLOOR_SHAPE_STD_DB: f64 = 3.0;

/// Seed stream of the fill noise (combined with each run's start sample).
const FILL_SEED: u64 = 0xF1_11_5E_ED;

/// Seed stream of [`fill_quiet_gaps`]'s noise.
const GAP_SEED: u64 = 0x6A_95_EE_D5;

/// A frame belongs to a quiet gap when its level is within this many dB of the recording's quiet
/// level (the 5th percentile of its frames' levels): a stationary background varies by about a
/// decibel from frame to frame, speech by tens.
const GAP_LEVEL_SPREAD_DB: f64 = 3.0;

/// The floor under the speech is measured on frames at least this much (dB) above the quiet level.
const FLOOR_ABOVE_GAP_DB: f64 = 6.0;

/// Holes of at most this many frames in a gap (a stationary background straying above the gap
/// level, below the floor) are filled with the gap.
const MAX_GAP_HOLE_FRAMES: usize = 2;

/// The quantile of the frames' levels taken as the recording's quiet level.
const GAP_LEVEL_QUANTILE: f64 = 0.05;

/// Gaps shorter than this (seconds) are left alone: a stop closure or a short pause inside a
/// word is not where a gate closes.
const MIN_GAP_S: f64 = 0.2;

/// Gaps are filled only when the floor under the speech is at least this much louder (dB): a
/// smaller step is what any recording's background does on its own.
const MIN_GAP_STEP_DB: f64 = 10.0;

/// What [`fill_digital_silence`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SilenceFill {
    /// Runs of digital silence filled.
    pub runs: usize,
    /// Samples filled.
    pub samples: usize,
    /// RMS level of the noise put in, dBFS (0 = int16 full scale); `None` when nothing was filled.
    pub level_dbfs: Option<f32>,
}

/// Replace each run of at least [`MIN_DIGITAL_SILENCE_S`] of digital silence in `samples` (int16
/// scale, `sample_rate_hz`) with stationary noise that has the spectrum, level and DC offset of the
/// quietest 10 % of the rest of the recording.
pub fn fill_digital_silence(samples: &mut [f32], sample_rate_hz: u32) -> SilenceFill {
    let min_run = (MIN_DIGITAL_SILENCE_S * f64::from(sample_rate_hz))
        .ceil()
        .max(1.0) as usize;
    let runs = silent_runs(samples, min_run);
    if runs.is_empty() {
        return SilenceFill::default();
    }
    let frame_len = floor_frame_len(sample_rate_hz);
    let Some(floor) = NoiseFloor::measure(samples, &runs, frame_len) else {
        return SilenceFill::default();
    };
    let mut filled = 0;
    for &(start, end) in &runs {
        let mut rng = StdRng::seed_from_u64(mix_seed(FILL_SEED, start as u64, end as u64));
        let noise = floor.synthesise(end - start, &mut rng);
        for (x, n) in samples[start..end].iter_mut().zip(noise) {
            *x = n;
        }
        filled += end - start;
    }
    SilenceFill {
        runs: runs.len(),
        samples: filled,
        level_dbfs: Some(floor.level_dbfs()),
    }
}

/// `len` samples of noise with the spectrum, level and DC offset of the quietest 10 % of
/// `samples` (int16 scale, `sample_rate_hz`), as [`fill_digital_silence`] fills a run with, seeded
/// by `seed`; digital silence (`len` zeros) when the recording has no steady floor to learn (too
/// short, or its quietest frames are weak speech, as a synthetic voice's are).
pub fn floor_noise(samples: &[f32], sample_rate_hz: u32, len: usize, seed: u64) -> Vec<f32> {
    let frame_len = floor_frame_len(sample_rate_hz);
    match NoiseFloor::measure(samples, &[], frame_len) {
        Some(floor) => floor.synthesise(len, &mut StdRng::seed_from_u64(seed)),
        None => vec![0.0; len],
    }
}

/// Raise the gated gaps of a recording to the noise floor under its speech. A gap is a stretch of
/// at least 0.2 s at the recording's quiet level (within 3 dB of its 5th-percentile frame level).
/// The gaps are filled only when they look like a gate's or a cut's: nothing inside the speech
/// falls to their level (else the background is under everything and what lies above it is weak
/// speech: noisy recordings, synthetic voices padded with a floor); the floor under the speech
/// (the quietest 10 % of the frames at least 6 dB above the gaps, with a steady spectral shape, as
/// [`fill_digital_silence`] measures it) is at least 10 dB louder; and the level steps at the
/// gaps' edges within a frame, dropping into at least one of them (speech and rooms fade out; a
/// gate or a cut does not). Noise with the floor's spectrum is then added to the gaps at the power
/// that makes up the difference. A recording whose background is as loud in its pauses as under
/// its speech (nearly every microphone recording) is unchanged; run after
/// [`fill_digital_silence`], which fills exact zeros.
pub fn fill_quiet_gaps(samples: &mut [f32], sample_rate_hz: u32) -> SilenceFill {
    let frame_len = floor_frame_len(sample_rate_hz);
    let hop = frame_len / 2;
    let frames = frame_powers(samples, frame_len);
    let min_gap_frames = ((MIN_GAP_S * f64::from(sample_rate_hz)) as usize).div_ceil(hop);
    if frames.len() < min_gap_frames + MIN_LIVE_FRAMES {
        return SilenceFill::default();
    }
    let mut powers: Vec<f64> = frames.iter().map(|f| f.0).collect();
    let quantile = ((powers.len() as f64 * GAP_LEVEL_QUANTILE) as usize).min(powers.len() - 1);
    let (_, &mut quiet, _) = powers.select_nth_unstable_by(quantile, f64::total_cmp);
    // Digital silence is [`fill_digital_silence`]'s to fill (or, all through, nothing's).
    if quiet <= f64::from(DIGITAL_SILENCE_LEVEL).powi(2) {
        return SilenceFill::default();
    }
    let gap_limit = quiet * 10f64.powf(GAP_LEVEL_SPREAD_DB / 10.0);
    let floor_limit = quiet * 10f64.powf(FLOOR_ABOVE_GAP_DB / 10.0);
    let gaps = gap_runs(&frames, gap_limit, floor_limit, min_gap_frames);
    let mut in_gap = vec![false; frames.len()];
    for gap in &gaps {
        in_gap[gap.clone()].fill(true);
    }
    // Nothing inside the speech as quiet as the gaps.
    if frames
        .iter()
        .zip(&in_gap)
        .any(|(frame, &gap)| frame.0 <= gap_limit && !gap)
    {
        return SilenceFill::default();
    }
    // The floor under the speech, on the frames clearly above the gaps' level (a background that
    // strays a little above it is the gaps' own).
    let floor_frames: Vec<(f64, f32, usize)> = frames
        .iter()
        .zip(&in_gap)
        .enumerate()
        .filter(|&(_, (frame, &gap))| frame.0 >= floor_limit && !gap)
        .map(|(f, (frame, _))| (frame.0, frame.1 as f32, f * hop))
        .collect();
    let Some(floor) = NoiseFloor::from_frames(samples, floor_frames, frame_len) else {
        return SilenceFill::default();
    };
    let gap_frames = gaps.iter().flat_map(|gap| &frames[gap.clone()]);
    let count = gaps.iter().map(|gap| gap.len()).sum::<usize>() as f64;
    let (gap_power, gap_dc) = gap_frames.fold((0.0, 0.0), |(p, m), f| (p + f.0, m + f.1));
    let (gap_power, gap_dc) = (gap_power / count, gap_dc / count);
    let step = gap_power * 10f64.powf(MIN_GAP_STEP_DB / 10.0);
    if floor.power < step {
        return SilenceFill::default();
    }
    // Each edge a step of the full height: the frame next to a gap straddles the edge, the one
    // beyond it lies wholly outside. (A room's tail decays into the quiet over tens of
    // milliseconds; the quiet before a reverberant recording's first word passes for a gap, but
    // speech starts abruptly on its own: at least one gap must be dropped into.)
    let abrupt = |gap: &&std::ops::Range<usize>| {
        gap.start.checked_sub(2).is_none_or(|f| frames[f].0 >= step)
            && frames.get(gap.end + 1).is_none_or(|f| f.0 >= step)
    };
    let gaps: Vec<&std::ops::Range<usize>> = gaps.iter().filter(abrupt).collect();
    if !gaps.iter().any(|gap| gap.start >= 2) {
        return SilenceFill::default();
    }
    // Noise that brings the gaps' power and offset to the floor's.
    let added = NoiseFloor {
        power: floor.power - gap_power,
        dc: floor.dc - gap_dc as f32,
        ..floor
    };
    let mut filled = 0;
    for gap in &gaps {
        let start = gap.start * hop;
        // The last frame may stop short of the end: a gap there runs to the end.
        let end = if gap.end == frames.len() {
            samples.len()
        } else {
            (gap.end - 1) * hop + frame_len
        };
        let mut rng = StdRng::seed_from_u64(mix_seed(GAP_SEED, start as u64, end as u64));
        for (x, n) in samples[start..end]
            .iter_mut()
            .zip(added.synthesise(end - start, &mut rng))
        {
            *x += n;
        }
        filled += end - start;
    }
    SilenceFill {
        runs: gaps.len(),
        samples: filled,
        level_dbfs: Some(added.level_dbfs()),
    }
}

/// `(power with the DC removed, mean)` of every whole frame of `frame_len`, hop half a frame.
fn frame_powers(samples: &[f32], frame_len: usize) -> Vec<(f64, f64)> {
    let hop = frame_len / 2;
    if samples.len() < frame_len {
        return Vec::new();
    }
    (0..=(samples.len() - frame_len) / hop)
        .map(|f| power_and_mean(&samples[f * hop..f * hop + frame_len]))
        .collect()
}

/// A frame's power with its DC removed, and its mean (the DC).
pub(crate) fn power_and_mean(frame: &[f32]) -> (f64, f64) {
    let n = frame.len().max(1) as f64;
    let mean = frame.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let power = frame
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (power, mean)
}

/// The length of the frames a floor is measured on at `sample_rate_hz`: [`FLOOR_FRAME_S`] rounded
/// up to a power of two (for the FFT).
fn floor_frame_len(sample_rate_hz: u32) -> usize {
    ((FLOOR_FRAME_S * f64::from(sample_rate_hz)) as usize)
        .next_power_of_two()
        .max(16)
}

/// The runs of at least `min_frames` consecutive frames at most `gap_limit` in power, as frame
/// ranges. A frame or two of a stationary background that strays above the limit would split a
/// gap and leave an unfilled dip: such holes, still below `floor_limit`, join the gap.
fn gap_runs(
    frames: &[(f64, f64)],
    gap_limit: f64,
    floor_limit: f64,
    min_frames: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut is_gap: Vec<bool> = frames.iter().map(|f| f.0 <= gap_limit).collect();
    let mut f = 0;
    while f < is_gap.len() {
        if is_gap[f] {
            f += 1;
            continue;
        }
        let hole_end = (f..is_gap.len())
            .find(|&g| is_gap[g])
            .unwrap_or(is_gap.len());
        if f > 0
            && hole_end < is_gap.len()
            && hole_end - f <= MAX_GAP_HOLE_FRAMES
            && frames[f..hole_end]
                .iter()
                .all(|frame| frame.0 < floor_limit)
        {
            is_gap[f..hole_end].fill(true);
        }
        f = hole_end;
    }
    let mut runs = Vec::new();
    let mut run_start = None;
    for (f, gap) in is_gap.iter().copied().chain([false]).enumerate() {
        match (gap, run_start) {
            (true, None) => run_start = Some(f),
            (false, Some(start)) => {
                if f - start >= min_frames {
                    runs.push(start..f);
                }
                run_start = None;
            }
            _ => {}
        }
    }
    runs
}

/// `(start, end)` sample ranges where every sample is digital silence, at least `min_len` long.
fn silent_runs(samples: &[f32], min_len: usize) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, x) in samples.iter().enumerate() {
        let silent = x.abs() <= DIGITAL_SILENCE_LEVEL;
        match (silent, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s >= min_len {
                    runs.push((s, i));
                }
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        if samples.len() - s >= min_len {
            runs.push((s, samples.len()));
        }
    }
    runs
}

/// The recording's noise floor: a magnitude spectrum for frames of `frame_len`, a power and a DC offset.
struct NoiseFloor {
    /// Mean magnitude per real-FFT bin of the quietest frames (Hann-windowed, DC removed).
    magnitude: Vec<f32>,
    /// Mean power per sample of those frames (DC removed).
    power: f64,
    /// Mean of those frames (recordings with a DC offset keep it, so the fill joins without a step).
    dc: f32,
    frame_len: usize,
}

impl NoiseFloor {
    /// The floor's RMS level, dBFS (0 = int16 full scale).
    fn level_dbfs(&self) -> f32 {
        (10.0 * (self.power / f64::from(crate::audio::INT16_SCALE).powi(2)).log10()) as f32
    }

    /// Measure the floor on the frames (hop half a frame) that lie wholly outside `runs`; `None`
    /// when there are fewer than [`MIN_LIVE_FRAMES`] of them.
    fn measure(samples: &[f32], runs: &[(usize, usize)], frame_len: usize) -> Option<NoiseFloor> {
        let hop = frame_len / 2;
        let mut frames: Vec<(f64, f32, usize)> = Vec::new(); // (power, mean, start)
        let mut live_start = 0;
        let bounds = runs
            .iter()
            .copied()
            .chain(std::iter::once((samples.len(), samples.len())));
        for (run_start, run_end) in bounds {
            let mut start = live_start;
            while start + frame_len <= run_start {
                let (power, mean) = power_and_mean(&samples[start..start + frame_len]);
                frames.push((power, mean as f32, start));
                start += hop;
            }
            live_start = run_end;
        }
        Self::from_frames(samples, frames, frame_len)
    }

    /// The floor of the quietest [`FLOOR_QUANTILE`] of `frames` (`(power, mean, start)` of frames of
    /// `frame_len`), if there are at least [`MIN_LIVE_FRAMES`] and their spectral shape holds still.
    fn from_frames(
        samples: &[f32],
        mut frames: Vec<(f64, f32, usize)>,
        frame_len: usize,
    ) -> Option<NoiseFloor> {
        if frames.len() < MIN_LIVE_FRAMES {
            return None;
        }
        let quiet = ((frames.len() as f64 * FLOOR_QUANTILE).ceil() as usize).max(1);
        frames.select_nth_unstable_by(quiet - 1, |a, b| a.0.total_cmp(&b.0));
        let quietest = &frames[..quiet];
        let power = quietest.iter().map(|f| f.0).sum::<f64>() / quiet as f64;
        let dc = quietest.iter().map(|f| f.1).sum::<f32>() / quiet as f32;
        let fft = fft_plans::forward(frame_len);
        let window = super::hann(frame_len);
        let mut input = fft.make_input_vec();
        let mut spectrum = fft.make_output_vec();
        let mut energy = vec![0.0f64; spectrum.len()];
        let mut shapes: Vec<[f64; SHAPE_BANDS]> = Vec::with_capacity(quiet);
        for &(_, mean, start) in quietest {
            for ((slot, &x), w) in input.iter_mut().zip(&samples[start..]).zip(&window) {
                *slot = (x - mean) * w;
            }
            // The lengths come from the plan, so the transform cannot fail.
            if fft.process(&mut input, &mut spectrum).is_err() {
                return None;
            }
            for (e, c) in energy.iter_mut().zip(&spectrum) {
                *e += f64::from(c.norm_sqr());
            }
            shapes.push(band_shape(&spectrum));
        }
        if shape_spread_db(&shapes) > MAX_FLOOR_SHAPE_STD_DB {
            return None;
        }
        let magnitude = energy
            .iter()
            .map(|e| (e / quiet as f64).sqrt() as f32)
            .collect();
        Some(NoiseFloor {
            magnitude,
            power,
            dc,
            frame_len,
        })
    }

    /// `len` samples of stationary noise with this floor's spectrum, power and DC: frames of random
    /// phase, sine-windowed and overlap-added at half a frame (the squared sine window sums to one, so
    /// the level does not ripple), then scaled to the floor's power.
    fn synthesise(&self, len: usize, rng: &mut impl Rng) -> Vec<f32> {
        let n = self.frame_len;
        let hop = n / 2;
        let inverse = fft_plans::inverse(n);
        let window: Vec<f32> = (0..n)
            .map(|i| (std::f32::consts::PI * (i as f32 + 0.5) / n as f32).sin())
            .collect();
        let mut out = vec![0.0f32; len + n];
        let mut spectrum = inverse.make_input_vec();
        let mut frame = inverse.make_output_vec();
        let last_bin = spectrum.len() - 1;
        let mut start = 0;
        while start < len + hop {
            for (k, (bin, &m)) in spectrum.iter_mut().zip(&self.magnitude).enumerate() {
                // DC and Nyquist bins of a real signal are real.
                *bin = if k == 0 || k == last_bin {
                    Complex::new(0.0, 0.0)
                } else {
                    Complex::from_polar(m, rng.gen_range(0.0..std::f32::consts::TAU))
                };
            }
            if inverse.process(&mut spectrum, &mut frame).is_err() {
                break;
            }
            for ((o, &x), &w) in out[start..].iter_mut().zip(&frame).zip(&window) {
                *o += x * w;
            }
            start += hop;
        }
        // Skip the first half frame, where only one window contributes.
        let mut noise: Vec<f32> = out[hop..hop + len].to_vec();
        let power = noise.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / len.max(1) as f64;
        let gain = if power > 0.0 {
            (self.power / power).sqrt() as f32
        } else {
            0.0
        };
        for x in &mut noise {
            *x = *x * gain + self.dc;
        }
        noise
    }
}

/// The levels (dB) of [`SHAPE_BANDS`] equal-width bands of a spectrum (DC left out), relative to
/// their mean: the spectrum's shape, whatever its level.
fn band_shape(spectrum: &[realfft::num_complex::Complex<f32>]) -> [f64; SHAPE_BANDS] {
    let bins = &spectrum[1.min(spectrum.len())..];
    let mut levels = [0.0f64; SHAPE_BANDS];
    for (band, level) in levels.iter_mut().enumerate() {
        let (from, to) = (
            band * bins.len() / SHAPE_BANDS,
            (band + 1) * bins.len() / SHAPE_BANDS,
        );
        let power: f64 = bins[from..to].iter().map(|c| f64::from(c.norm_sqr())).sum();
        *level = 10.0 * (power + 1e-9).log10();
    }
    let mean = levels.iter().sum::<f64>() / SHAPE_BANDS as f64;
    levels.map(|level| level - mean)
}

/// How much the shapes differ across frames: the standard deviation of each band's relative level,
/// averaged over the bands (0 for one frame).
fn shape_spread_db(shapes: &[[f64; SHAPE_BANDS]]) -> f64 {
    if shapes.len() < 2 {
        return 0.0;
    }
    let n = shapes.len() as f64;
    (0..SHAPE_BANDS)
        .map(|band| {
            let mean = shapes.iter().map(|s| s[band]).sum::<f64>() / n;
            (shapes.iter().map(|s| (s[band] - mean).powi(2)).sum::<f64>() / n).sqrt()
        })
        .sum::<f64>()
        / SHAPE_BANDS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floor_noise(len: usize, level: f32, dc: f32, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..len)
            .map(|_| dc + level * rng.gen_range(-1.0f32..1.0))
            .collect()
    }

    fn rms(x: &[f32], dc: f32) -> f32 {
        (x.iter().map(|&v| (v - dc).powi(2)).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn audio_without_digital_silence_is_unchanged() {
        let original = floor_noise(16_000, 300.0, 0.0, 1);
        let mut samples = original.clone();
        assert_eq!(
            fill_digital_silence(&mut samples, 16_000),
            SilenceFill::default()
        );
        assert_eq!(samples, original);
    }

    #[test]
    fn padding_is_filled_at_the_recordings_floor_and_offset() {
        // A "clip": a floor of uniform noise (RMS 300/√3 ≈ 173) with a DC offset of −256 and a
        // loud tone in the middle, padded with 1 s of zeros on each side.
        let rate = 8_000;
        let mut clip = floor_noise(4_000, 300.0, -256.0, 2);
        for (i, x) in clip[1_000..3_000].iter_mut().enumerate() {
            *x += 8_000.0 * (i as f32 * 0.3).sin();
        }
        let mut samples = vec![0.0; rate];
        samples.extend(&clip);
        samples.extend(vec![0.0; rate]);
        let fill = fill_digital_silence(&mut samples, rate as u32);
        assert_eq!(fill.runs, 2);
        assert_eq!(fill.samples, 2 * rate);
        // The clip itself is untouched.
        assert_eq!(&samples[rate..rate + 4_000], &clip[..]);
        for pad in [&samples[..rate], &samples[rate + 4_000..]] {
            let mean = pad.iter().sum::<f32>() / pad.len() as f32;
            assert!((mean + 256.0).abs() < 15.0, "fill mean {mean}");
            let level = rms(pad, mean);
            let floor = 300.0 / 3f32.sqrt();
            assert!(
                (level / floor - 1.0).abs() < 0.15,
                "fill RMS {level} vs floor {floor}"
            );
            // Stationary: no half of the fill is much louder than the other.
            let (a, b) = pad.split_at(pad.len() / 2);
            assert!((rms(a, mean) / rms(b, mean) - 1.0).abs() < 0.15);
        }
        let level = fill.level_dbfs.expect("filled");
        assert!((-46.0..-44.0).contains(&level), "{level} dBFS");
    }

    #[test]
    fn synthetic_speech_without_a_floor_is_left_alone() {
        // espeak-like: words of changing timbre with stop closures and pauses of exact zeros; the
        // quietest live frames are speech, whose shape changes from frame to frame, not a floor.
        let rate = 16_000;
        let mut samples = Vec::new();
        for word in 0..12 {
            let pitch = 0.05 + 0.03 * word as f32;
            let brightness = 1.0 + (word % 4) as f32;
            samples.extend((0..3_000).map(|i| {
                let t = i as f32;
                let envelope = 200.0 + 6_000.0 * (std::f32::consts::PI * t / 3_000.0).sin();
                envelope * ((t * pitch).sin() + 0.5 * (t * pitch * brightness * 3.0).sin())
            }));
            samples.extend(vec![0.0; if word % 3 == 0 { 4_000 } else { 800 }]);
        }
        let original = samples.clone();
        assert_eq!(
            fill_digital_silence(&mut samples, rate),
            SilenceFill::default()
        );
        assert_eq!(samples, original);
    }

    /// A clip with its own floor (uniform noise at RMS `floor`) and a loud tone in the middle, as
    /// cut by an editor: the floor runs right up to the cut.
    fn clip_with_floor(len: usize, floor: f32, seed: u64) -> Vec<f32> {
        let mut clip = floor_noise(len, floor * 3f32.sqrt(), 0.0, seed);
        let (a, b) = (len / 4, 3 * len / 4);
        for (i, x) in clip[a..b].iter_mut().enumerate() {
            *x += 6_000.0 * (i as f32 * 0.2).sin();
        }
        clip
    }

    #[test]
    fn a_clip_pasted_into_a_quieter_floor_has_the_gaps_raised_to_its_own() {
        let rate = 8_000;
        let clip = clip_with_floor(4_000, 300.0, 6);
        let mut samples = floor_noise(rate, 20.0, 0.0, 7);
        samples.extend(&clip);
        samples.extend(floor_noise(2 * rate, 20.0, 0.0, 8));
        let fill = fill_quiet_gaps(&mut samples, rate as u32);
        assert_eq!(fill.runs, 2, "{fill:?}");
        for gap in [&samples[..rate - 300], &samples[rate + 4_300..]] {
            let level = rms(gap, 0.0);
            assert!(
                (level / 300.0 - 1.0).abs() < 0.25,
                "gap RMS {level}, floor 300"
            );
        }
        // Deterministic.
        let mut again = floor_noise(rate, 20.0, 0.0, 7);
        again.extend(&clip);
        again.extend(floor_noise(2 * rate, 20.0, 0.0, 8));
        fill_quiet_gaps(&mut again, rate as u32);
        assert_eq!(again, samples);
    }

    #[test]
    fn noise_under_everything_a_fading_room_and_digital_silence_are_left_alone() {
        let rate = 8_000;
        // Noise under everything: words of tone with pauses (long and short) at the noise level.
        let mut noisy = floor_noise(rate, 300.0, 0.0, 9);
        for word in 0..4 {
            let mut w = floor_noise(2_000, 300.0, 0.0, 10 + word);
            for (i, x) in w[200..1_800].iter_mut().enumerate() {
                *x += 6_000.0 * (i as f32 * 0.25).sin();
            }
            noisy.extend(w);
            noisy.extend(floor_noise(
                if word % 2 == 0 { 400 } else { 3_000 },
                300.0,
                0.0,
                20 + word,
            ));
        }
        // A room: a quiet lead-in, a word whose tail decays slowly (60 dB in 0.5 s) into the quiet.
        let mut room = floor_noise(rate, 10.0, 0.0, 30);
        let tone: Vec<f32> = (0..2_000)
            .map(|i| 6_000.0 * (i as f32 * 0.25).sin())
            .collect();
        room.extend(&tone);
        room.extend((0..2 * rate).map(|i| {
            let decay = 10f32.powf(-3.0 * i as f32 / (0.5 * rate as f32));
            6_000.0 * decay * ((i as f32) * 0.25).sin()
        }));
        for (x, n) in room
            .iter_mut()
            .zip(floor_noise(3 * rate + 2_000, 10.0, 0.0, 31))
        {
            *x += n;
        }
        let silent_padding = {
            let mut s = vec![0.0; rate];
            s.extend(clip_with_floor(4_000, 300.0, 32));
            s.extend(vec![0.0; rate]);
            s
        };
        for (name, original) in [("noisy", noisy), ("room", room), ("zeros", silent_padding)] {
            let mut samples = original.clone();
            assert_eq!(
                fill_quiet_gaps(&mut samples, rate as u32),
                SilenceFill::default(),
                "{name}"
            );
            assert_eq!(samples, original, "{name}");
        }
    }

    #[test]
    fn the_fill_is_deterministic() {
        let mut a = floor_noise(8_000, 100.0, 0.0, 3);
        a.extend(vec![0.0; 4_000]);
        let mut b = a.clone();
        fill_digital_silence(&mut a, 16_000);
        fill_digital_silence(&mut b, 16_000);
        assert_eq!(a, b);
    }

    #[test]
    fn short_gaps_and_all_silent_audio_are_left_alone() {
        // 10 ms of zeros at 16 kHz: shorter than a run.
        let mut samples = floor_noise(8_000, 100.0, 0.0, 4);
        samples[4_000..4_160].iter_mut().for_each(|x| *x = 0.0);
        let copy = samples.clone();
        assert_eq!(fill_digital_silence(&mut samples, 16_000).runs, 0);
        assert_eq!(samples, copy);
        // Nothing but silence: no floor to learn, stays silent.
        let mut silent = vec![0.0; 16_000];
        assert_eq!(fill_digital_silence(&mut silent, 16_000).runs, 0);
        assert!(silent.iter().all(|&x| x == 0.0));
        // ±1 LSB dither is digital silence too.
        let mut dithered = floor_noise(8_000, 200.0, 0.0, 5);
        dithered.extend((0..8_000).map(|i| if i % 3 == 0 { 1.0 } else { -1.0 }));
        let fill = fill_digital_silence(&mut dithered, 16_000);
        assert_eq!((fill.runs, fill.samples), (1, 8_000));
        assert!(rms(&dithered[8_000..], 0.0) > 50.0);
    }
}
