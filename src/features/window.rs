//! Framing and per-frame conditioning, as Kaldi's src/feat/feature-window.cc: frame counts and offsets,
//! window shapes, dither, DC removal, pre-emphasis, and the power spectrum of one frame.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::RealToComplex;

use super::dither::Dither;
use super::options::{FrameOptions, WindowType};

/// Floor under every log (Kaldi and torchaudio use the f32 machine epsilon).
pub(crate) const LOG_FLOOR: f32 = f32::EPSILON;

/// Number of frames Kaldi computes for `num_samples` samples (Kaldi's `NumFrames` with `flush = true`).
pub fn num_frames(num_samples: usize, frame: &FrameOptions) -> usize {
    let size = frame.window_size();
    let shift = frame.window_shift();
    if frame.snip_edges {
        if num_samples < size {
            0
        } else {
            1 + (num_samples - size) / shift
        }
    } else {
        // Frames centred on multiples of the shift: round(num_samples / shift).
        (num_samples + shift / 2) / shift
    }
}

/// Index of the first sample of frame `index`; negative when the frame starts before the signal
/// (only with `snip_edges = false`).
pub(crate) fn first_sample_of_frame(index: usize, frame: &FrameOptions) -> i64 {
    let shift = frame.window_shift() as i64;
    if frame.snip_edges {
        index as i64 * shift
    } else {
        let midpoint = shift * index as i64 + shift / 2;
        midpoint - frame.window_size() as i64 / 2
    }
}

/// Copy frame `index` of `wave` into `out` (length = window size), reflecting the signal at its ends
/// where the frame reaches past them (Kaldi's `ExtractWindow`).
pub(crate) fn extract_frame(wave: &[f32], index: usize, frame: &FrameOptions, out: &mut [f32]) {
    let start = first_sample_of_frame(index, frame);
    let n = wave.len() as i64;
    if start >= 0 && start + out.len() as i64 <= n {
        out.copy_from_slice(&wave[start as usize..start as usize + out.len()]);
        return;
    }
    for (s, value) in out.iter_mut().enumerate() {
        let mut i = start + s as i64;
        // Reflect without repeating the edge sample's mirror twice: -1 -> 0, n -> n - 1.
        while i < 0 || i >= n {
            i = if i < 0 { -i - 1 } else { 2 * n - 1 - i };
        }
        *value = wave[i as usize];
    }
}

/// The window function of a type and length (symmetric, as Kaldi's `FeatureWindowFunction`).
pub(crate) fn window_function(window_type: WindowType, size: usize) -> Vec<f32> {
    let a = 2.0 * std::f64::consts::PI / (size as f64 - 1.0);
    (0..size)
        .map(|i| {
            let i = i as f64;
            let value = match window_type {
                WindowType::Hanning => 0.5 - 0.5 * (a * i).cos(),
                WindowType::Hamming => 0.54 - 0.46 * (a * i).cos(),
                WindowType::Povey => (0.5 - 0.5 * (a * i).cos()).powf(0.85),
                WindowType::Rectangular => 1.0,
                WindowType::Blackman => 0.42 - 0.5 * (a * i).cos() + 0.08 * (2.0 * a * i).cos(),
            };
            value as f32
        })
        .collect()
}

/// Sum of `values`, in eight interleaved partial sums so that the compiler vectorises it (a plain
/// `sum()` of floats must add in order, one at a time).
fn lane_sum(values: &[f32], term: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let mut blocks = values.chunks_exact(8);
    for block in &mut blocks {
        for (lane, &x) in lanes.iter_mut().zip(block) {
            *lane += term(x);
        }
    }
    let tail: f32 = blocks.remainder().iter().map(|&x| term(x)).sum();
    lanes.iter().sum::<f32>() + tail
}

/// The mean of a frame (0 for an empty one).
fn frame_mean(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return 0.0;
    }
    lane_sum(frame, |x| x) / frame.len() as f32
}

/// log(max(Σ(x − offset)², ε)) of a frame.
fn log_energy(frame: &[f32], offset: f32) -> f32 {
    lane_sum(frame, |x| (x - offset) * (x - offset))
        .max(LOG_FLOOR)
        .ln()
}

/// Kaldi's per-frame conditioning in one pass: subtract `offset` (the frame's mean, or 0), pre-emphasise
/// (`y[i] = x[i] − coeff · x[i−1]`, and `y[0] = x[0] − coeff · x[0]`, Kaldi's convention) and multiply by
/// the window. `out` and `window` have the frame's length.
pub(crate) fn condition_frame(
    frame: &[f32],
    offset: f32,
    coeff: f32,
    window: &[f32],
    out: &mut [f32],
) {
    let n = frame.len().min(out.len()).min(window.len());
    if n == 0 {
        return;
    }
    out[0] = (frame[0] - offset) * (1.0 - coeff) * window[0];
    for i in 1..n {
        out[i] = ((frame[i] - offset) - coeff * (frame[i - 1] - offset)) * window[i];
    }
}

/// Per-thread buffers for [`FrameAnalyzer::power_spectrum`]; no allocation per frame.
pub(crate) struct FrameScratch {
    samples: Vec<f32>,
    padded: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
}

/// Turns frame `i` of a signal into its power (or magnitude) spectrum, planned once: window, FFT.
pub(crate) struct FrameAnalyzer {
    options: FrameOptions,
    window: Vec<f32>,
    /// Single precision, as Kaldi (`BaseFloat`) and torchaudio compute: twice the lanes of f64.
    fft: Arc<dyn RealToComplex<f32>>,
    dither: Option<Dither>,
}

impl FrameAnalyzer {
    /// Plan for validated frame options.
    pub(crate) fn new(options: &FrameOptions) -> Self {
        let window = window_function(options.window_type, options.window_size());
        let fft = crate::util::fft_plans::forward(options.padded_window_size());
        let dither = (options.dither > 0.0)
            .then(|| Dither::new(options.dither, options.dither_seed, options.window_size()));
        FrameAnalyzer {
            options: options.clone(),
            window,
            fft,
            dither,
        }
    }

    /// Number of spectrum bins: `padded / 2 + 1`.
    pub(crate) fn num_bins(&self) -> usize {
        self.options.padded_window_size() / 2 + 1
    }

    pub(crate) fn make_scratch(&self) -> FrameScratch {
        FrameScratch {
            samples: vec![0.0; self.options.window_size()],
            padded: vec![0.0; self.options.padded_window_size()],
            spectrum: self.fft.make_output_vec(),
            fft_scratch: self.fft.make_scratch_vec(),
        }
    }

    /// Writes the spectrum of frame `index` into `out` (`num_bins()` values): power if `use_power`, else
    /// magnitude. Returns the frame's log energy: before pre-emphasis and windowing if `raw_energy`,
    /// after otherwise.
    pub(crate) fn power_spectrum(
        &self,
        wave: &[f32],
        index: usize,
        raw_energy: bool,
        use_power: bool,
        scratch: &mut FrameScratch,
        out: &mut [f32],
    ) -> f32 {
        let size = self.window.len();
        extract_frame(wave, index, &self.options, &mut scratch.samples);
        if let Some(dither) = &self.dither {
            // Seeded per frame, so the output does not depend on how frames are split across threads.
            dither.add(&mut scratch.samples, index);
        }
        let samples = &scratch.samples;
        let offset = if self.options.remove_dc_offset {
            frame_mean(samples)
        } else {
            0.0
        };
        // The energy before pre-emphasis and windowing (but after DC removal), or after both.
        let raw_log_energy = if raw_energy {
            log_energy(samples, offset)
        } else {
            0.0
        };
        let frame = &mut scratch.padded[..size];
        condition_frame(
            samples,
            offset,
            self.options.preemphasis_coefficient,
            &self.window,
            frame,
        );
        let log_energy = if raw_energy {
            raw_log_energy
        } else {
            log_energy(frame, 0.0)
        };
        scratch.padded[size..].fill(0.0);
        // The lengths come from the plan itself, so the FFT cannot fail.
        let _ = self.fft.process_with_scratch(
            &mut scratch.padded,
            &mut scratch.spectrum,
            &mut scratch.fft_scratch,
        );
        for (o, c) in out.iter_mut().zip(&scratch.spectrum) {
            let power = c.re * c.re + c.im * c.im;
            *o = if use_power { power } else { power.sqrt() };
        }
        log_energy
    }
}

/// Run `compute_frame(index, scratch, row)` for every frame, spreading long signals over the thread pool.
/// Rows are written in place; the result is [num_frames, dim].
pub(crate) fn compute_rows<S, M, F>(
    num_frames: usize,
    dim: usize,
    make_scratch: M,
    compute_frame: F,
) -> ndarray::Array2<f32>
where
    M: Fn() -> S + Sync,
    F: Fn(usize, &mut S, &mut [f32]) + Sync,
{
    use rayon::prelude::*;
    /// Below this many frames, threads cost more than they save.
    const FRAMES_PER_TASK: usize = 1024;
    let mut data = vec![0f32; num_frames * dim];
    if dim > 0 {
        data.par_chunks_mut(FRAMES_PER_TASK * dim)
            .enumerate()
            .for_each(|(chunk_index, chunk)| {
                let mut scratch = make_scratch();
                for (row_index, row) in chunk.chunks_exact_mut(dim).enumerate() {
                    compute_frame(chunk_index * FRAMES_PER_TASK + row_index, &mut scratch, row);
                }
            });
    }
    ndarray::Array2::from_shape_vec((num_frames, dim), data)
        .expect("the buffer holds num_frames × dim values")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(snip_edges: bool) -> FrameOptions {
        FrameOptions {
            snip_edges,
            ..FrameOptions::default()
        }
    }

    #[test]
    fn frame_counts_match_kaldi() {
        // 25 ms / 10 ms at 16 kHz: window 400, shift 160.
        let snip = options(true);
        let centred = options(false);
        assert_eq!(snip.window_size(), 400);
        assert_eq!(snip.window_shift(), 160);
        assert_eq!(snip.padded_window_size(), 512);
        for (n, expect_snip, expect_centred) in [
            (0, 0, 0),
            (399, 0, 2),
            (400, 1, 3),
            (559, 1, 3),
            (560, 2, 4),
            (16_000, 98, 100),
        ] {
            assert_eq!(num_frames(n, &snip), expect_snip, "snip_edges, {n} samples");
            assert_eq!(
                num_frames(n, &centred),
                expect_centred,
                "centred, {n} samples"
            );
        }
    }

    #[test]
    fn frames_reflect_at_the_edges() {
        let wave: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let frame = FrameOptions {
            sample_rate_hz: 1000,
            frame_length_ms: 6.0,
            frame_shift_ms: 2.0,
            snip_edges: false,
            ..FrameOptions::default()
        };
        // Frame 0 centre at 1, starts at 1 - 3 = -2.
        let mut out = vec![0.0; 6];
        extract_frame(&wave, 0, &frame, &mut out);
        assert_eq!(out, [1.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
        extract_frame(&wave, 4, &frame, &mut out);
        // Starts at 9 - 3 = 6: 6 7 8 9 | 9 8
        assert_eq!(out, [6.0, 7.0, 8.0, 9.0, 9.0, 8.0]);
    }

    #[test]
    fn window_shapes() {
        let n = 400;
        let hamming = window_function(WindowType::Hamming, n);
        assert!((hamming[0] - 0.08).abs() < 1e-6);
        assert!((hamming[n - 1] - 0.08).abs() < 1e-6);
        let hann = window_function(WindowType::Hanning, n);
        let povey = window_function(WindowType::Povey, n);
        assert_eq!(povey[0], 0.0);
        for i in 0..n {
            assert!((povey[i] - hann[i].powf(0.85)).abs() < 1e-6);
            // Symmetric.
            assert!((povey[i] - povey[n - 1 - i]).abs() < 1e-6);
        }
        let blackman = window_function(WindowType::Blackman, n);
        assert!(blackman[0].abs() < 1e-6);
        assert!(window_function(WindowType::Rectangular, n)
            .iter()
            .all(|&w| w == 1.0));
        // The peak of odd-length windows is 1 in the middle.
        let odd = window_function(WindowType::Hanning, 401);
        assert!((odd[200] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn preemphasis_follows_kaldi() {
        let mut out = [0.0; 3];
        condition_frame(&[1.0, 2.0, 4.0], 0.0, 0.5, &[1.0; 3], &mut out);
        assert_eq!(out, [0.5, 1.5, 3.0]);
    }

    #[test]
    fn dc_removal_zeroes_the_mean_before_preemphasis_and_window() {
        let frame = [1.0, 2.0, 3.0, 6.0];
        let mean = frame_mean(&frame);
        assert_eq!(mean, 3.0);
        let mut out = [0.0; 4];
        condition_frame(&frame, mean, 0.0, &[1.0; 4], &mut out);
        assert_eq!(out, [-2.0, -1.0, 0.0, 3.0]);
        condition_frame(&frame, mean, 0.5, &[2.0, 1.0, 1.0, 0.5], &mut out);
        // y = [-1, -1 + 1, 0 + 0.5, 3 - 0] times the window.
        assert_eq!(out, [-2.0, 0.0, 0.5, 1.5]);
        // Energies: of the mean-removed frame, and a sum long enough for every lane and a tail.
        assert!((log_energy(&frame, mean) - 14f32.ln()).abs() < 1e-6);
        let long: Vec<f32> = (0..21).map(|i| i as f32).collect();
        assert_eq!(lane_sum(&long, |x| x), 210.0);
        assert_eq!(log_energy(&[0.0; 5], 0.0), LOG_FLOOR.ln());
    }

    #[test]
    fn power_spectrum_of_a_bin_centred_cosine_peaks_at_its_bin() {
        let frame = FrameOptions {
            remove_dc_offset: false,
            preemphasis_coefficient: 0.0,
            window_type: WindowType::Rectangular,
            frame_length_ms: 32.0, // 512 samples: no padding
            ..FrameOptions::default()
        };
        let analyzer = FrameAnalyzer::new(&frame);
        let wave: Vec<f32> = (0..512)
            .map(|i| (2.0 * std::f32::consts::PI * 16.0 * i as f32 / 512.0).cos())
            .collect();
        let mut scratch = analyzer.make_scratch();
        let mut out = vec![0.0; analyzer.num_bins()];
        let log_e = analyzer.power_spectrum(&wave, 0, true, true, &mut scratch, &mut out);
        let peak = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        assert_eq!(peak, Some(16));
        // |X[16]|² = (N/2)² for a unit cosine; energy Σx² = N/2.
        assert!((out[16] - 256.0f32 * 256.0).abs() < 1.0);
        assert!((log_e - 256f32.ln()).abs() < 1e-4);
    }
}
