//! The short-time Fourier transform of the spectral repairs (dereverberation, spectral holes):
//! analysis into Hann-windowed frames and the least-squares overlap-add back to samples.

use crate::util::fft_plans;
use ndarray::Array1;
use realfft::num_complex::Complex;

/// A Hann-windowed STFT whose frames cover every sample of the recording equally: the recording is
/// taken as padded with `len - hop` zeros at both ends.
pub(crate) struct Stft {
    pub(crate) len: usize,
    pub(crate) hop: usize,
    window: Vec<f32>,
}

impl Stft {
    /// Frames of about `frame_s` seconds every `hop_s` seconds at `sample_rate_hz`.
    pub(crate) fn from_durations(frame_s: f64, hop_s: f64, sample_rate_hz: u32) -> Self {
        let rate = f64::from(sample_rate_hz);
        let hop = ((hop_s * rate).round() as usize).max(1);
        // A whole number of hops, counted from the durations: rounding each to samples first gave
        // one hop of 706 and a frame of 1411 samples at 44.1 kHz, so a single hop, no overlap, and
        // the window's zero ends in the output.
        let len = ((frame_s / hop_s).round() as usize).max(1) * hop;
        let window = super::hann(len);
        Stft { len, hop, window }
    }

    pub(crate) fn pad(&self) -> usize {
        self.len - self.hop
    }

    /// Frames covering `samples` samples (the padded signal, to its last sample).
    pub(crate) fn frames(&self, samples: usize) -> usize {
        (samples + self.pad()).div_ceil(self.hop)
    }

    /// The frames `range` of `samples`, one array per frequency bin (bins × frames).
    pub(crate) fn spectra(
        &self,
        samples: &[f32],
        range: std::ops::Range<usize>,
    ) -> Vec<Array1<Complex<f32>>> {
        self.some_spectra(samples, range, 0, 1)
    }

    /// Calls `visit(t, spectrum)` for the frames `range` of `samples` in order, `t` counting from
    /// the range's start; `spectrum` holds the `len / 2 + 1` bins.
    pub(crate) fn for_each_spectrum(
        &self,
        samples: &[f32],
        range: std::ops::Range<usize>,
        mut visit: impl FnMut(usize, &[Complex<f32>]),
    ) {
        let fft = fft_plans::forward(self.len);
        let mut input = fft.make_input_vec();
        let mut spectrum = fft.make_output_vec();
        for (t, frame) in range.enumerate() {
            // Frame `frame` starts at sample frame·hop − pad of the recording.
            let start = (frame * self.hop) as isize - self.pad() as isize;
            match usize::try_from(start) {
                Ok(start) if start + self.len <= samples.len() => {
                    let frame = &samples[start..start + self.len];
                    for ((slot, &x), &w) in input.iter_mut().zip(frame).zip(&self.window) {
                        *slot = x * w;
                    }
                }
                _ => {
                    for (i, slot) in input.iter_mut().enumerate() {
                        let at = start + i as isize;
                        let x = if at >= 0 && (at as usize) < samples.len() {
                            samples[at as usize]
                        } else {
                            0.0
                        };
                        *slot = x * self.window[i];
                    }
                }
            }
            // The lengths come from the plan, so the transform cannot fail.
            if fft.process(&mut input, &mut spectrum).is_ok() {
                visit(t, &spectrum);
            }
        }
    }

    /// As [`spectra`](Self::spectra), only bins `first_bin`, `first_bin + bin_step`, ...
    pub(crate) fn some_spectra(
        &self,
        samples: &[f32],
        range: std::ops::Range<usize>,
        first_bin: usize,
        bin_step: usize,
    ) -> Vec<Array1<Complex<f32>>> {
        let kept = (self.len / 2 + 1)
            .saturating_sub(first_bin)
            .div_ceil(bin_step);
        let mut bins = vec![Array1::<Complex<f32>>::zeros(range.len()); kept];
        self.for_each_spectrum(samples, range, |t, spectrum| {
            let kept = spectrum.iter().skip(first_bin).step_by(bin_step);
            for (bin, &v) in bins.iter_mut().zip(kept) {
                bin[t] = v;
            }
        });
        bins
    }
}

/// Overlap-add of modified frames back to samples, normalised by the summed squared window (the
/// least-squares inverse of the windowed STFT).
pub(crate) struct Synthesis {
    out: Vec<f32>,
    /// The summed squared window at padded positions `0..hop`, which repeats: every position of
    /// the recording is covered by `len / hop` whole frames (the padding gives the first samples
    /// theirs), so one period is all of it, where a per-sample sum would double the memory of an
    /// hour-long recording's dereverberation.
    norm: Vec<f32>,
    hop: usize,
    /// Where the recording starts in `out`.
    pad: usize,
    /// The recording's length.
    len: usize,
}

impl Synthesis {
    pub(crate) fn new(stft: &Stft, len: usize) -> Self {
        let padded = len + 2 * stft.pad() + stft.len;
        let norm = (0..stft.hop)
            .map(|j| {
                stft.window
                    .iter()
                    .skip(j)
                    .step_by(stft.hop)
                    .map(|w| w * w)
                    .sum()
            })
            .collect();
        Synthesis {
            out: vec![0.0; padded],
            norm,
            hop: stft.hop,
            pad: stft.pad(),
            len,
        }
    }

    /// Frames `first..` (one array per bin, as [`Stft::spectra`] gives) added in. Every frame of
    /// the recording must be added once before [`finish`](Self::finish).
    pub(crate) fn add(&mut self, stft: &Stft, first: usize, bins: &[Array1<Complex<f32>>]) {
        let inverse = fft_plans::inverse(stft.len);
        let mut spectrum = inverse.make_input_vec();
        let mut frame = inverse.make_output_vec();
        let frames = bins.first().map_or(0, |b| b.len());
        let last = spectrum.len() - 1;
        let scale = 1.0 / stft.len as f32;
        for t in 0..frames {
            for (k, (slot, bin)) in spectrum.iter_mut().zip(bins).enumerate() {
                // A real signal's DC and Nyquist bins are real.
                *slot = if k == 0 || k == last {
                    Complex::new(bin[t].re, 0.0)
                } else {
                    bin[t]
                };
            }
            if inverse.process(&mut spectrum, &mut frame).is_err() {
                continue;
            }
            // Padded position of frame first + t.
            let start = (first + t) * stft.hop;
            for ((o, &v), &w) in self.out[start..].iter_mut().zip(&frame).zip(&stft.window) {
                *o += v * scale * w;
            }
        }
    }

    /// The recording's samples, in the overlap-add's own buffer (no second copy).
    pub(crate) fn finish(mut self) -> Vec<f32> {
        self.out.drain(..self.pad);
        self.out.truncate(self.len);
        for (i, v) in self.out.iter_mut().enumerate() {
            let norm = self.norm[(self.pad + i) % self.hop];
            *v = if norm > 1e-6 { *v / norm } else { 0.0 };
        }
        self.out
    }
}
