//! Mel filterbank: power spectrum [padded/2 + 1] -> mel energies [num_bins], and the `Fbank` computer.
//! Matches Kaldi src/feat/mel-computations.cc: mel = 1127 ln(1 + f/700), triangles linear in mel between
//! `low_freq` and `high_freq`, no area normalisation, the Nyquist bin unused. Weights are stored sparsely
//! (first FFT bin + the nonzero run), as Kaldi's `MelBanks::bins_`.

use ndarray::Array2;

use super::options::{FbankOptions, FrameOptions, MelOptions, MAX_ENERGY_FLOOR, MAX_MEL_BINS};
use super::window::{compute_rows, num_frames, FrameAnalyzer, LOG_FLOOR};
use super::FeatureExtractor;
use crate::error::{Error, Result};

/// The HTK mel scale.
pub(crate) fn mel_scale(freq_hz: f64) -> f64 {
    1127.0 * (1.0 + freq_hz / 700.0).ln()
}

/// Kaldi's piecewise-linear VTLN warp of `freq_hz` (`MelBanks::VtlnWarpFreq`): frequencies between the
/// inflection points scale by `1 / warp`; below `low` and above `high` a line joins them to the fixed band
/// edges, so the band `[low_freq, high_freq]` maps onto itself.
fn vtln_warp_freq(
    vtln_low: f64,
    vtln_high: f64,
    low_freq: f64,
    high_freq: f64,
    warp: f64,
    freq_hz: f64,
) -> f64 {
    if freq_hz < low_freq || freq_hz > high_freq {
        return freq_hz;
    }
    let scale = 1.0 / warp;
    let l = vtln_low * warp.max(1.0);
    let h = vtln_high * warp.min(1.0);
    let (fl, fh) = (scale * l, scale * h);
    if freq_hz < l {
        low_freq + (fl - low_freq) / (l - low_freq) * (freq_hz - low_freq)
    } else if freq_hz < h {
        scale * freq_hz
    } else {
        high_freq + (fh - high_freq) / (h - high_freq) * (freq_hz - high_freq)
    }
}

/// The inverse of [`mel_scale`].
fn inverse_mel_scale(mel: f64) -> f64 {
    700.0 * ((mel / 1127.0).exp() - 1.0)
}

/// One triangular filter: weights for FFT bins `first_bin..first_bin + weights.len()`.
#[derive(Clone, Debug)]
struct MelTriangle {
    first_bin: usize,
    weights: Vec<f32>,
}

/// A bank of triangular mel filters over the bins of one FFT size.
#[derive(Clone, Debug)]
pub struct MelBank {
    triangles: Vec<MelTriangle>,
}

impl MelBank {
    /// Build the filters for frames of `frame` (its sample rate and padded FFT size).
    pub fn new(mel: &MelOptions, frame: &FrameOptions) -> Result<Self> {
        let bad = |reason: String| Error::InvalidOptions {
            what: "mel filterbank",
            reason,
        };
        if !(3..=MAX_MEL_BINS).contains(&mel.num_bins) {
            return Err(bad(format!(
                "need 3..={MAX_MEL_BINS} mel bins, got {}",
                mel.num_bins
            )));
        }
        let padded = frame.padded_window_size();
        let num_fft_bins = padded / 2;
        let sample_rate = frame.sample_rate_hz as f64;
        let nyquist = 0.5 * sample_rate;
        let low = mel.low_freq_hz as f64;
        let high = mel.resolved_high_freq_hz(frame.sample_rate_hz) as f64;
        if !(low >= 0.0 && high > low && high <= nyquist) {
            return Err(bad(format!(
                "need 0 ≤ low-freq < high-freq ≤ Nyquist ({nyquist} Hz); got low-freq {} Hz, \
                 high-freq {} Hz (high-freq ≤ 0 is an offset from Nyquist)",
                // Printed as the f32s given, not as their f64 widening (1.1 -> 1.100000023841858).
                mel.low_freq_hz,
                high as f32
            )));
        }
        let warp = mel.vtln_warp as f64;
        let vtln_low = mel.vtln_low_hz as f64;
        let vtln_high = mel.vtln_high.resolve(high as f32) as f64;
        if warp != 1.0
            && !(warp > 0.0 && low < vtln_low && vtln_low < vtln_high && vtln_high < high)
        {
            return Err(bad(format!(
                "VTLN needs a warp factor > 0 and low-freq < vtln-low < vtln-high < high-freq; got warp \
                 {}, {} < {} < {} < {} Hz",
                mel.vtln_warp,
                mel.low_freq_hz,
                mel.vtln_low_hz,
                vtln_high as f32,
                high as f32
            )));
        }
        // Kaldi warps the mel-scale edges of each triangle (MelBanks::VtlnWarpMelFreq).
        let warp_mel = |m: f64| -> f64 {
            if warp == 1.0 {
                m
            } else {
                mel_scale(vtln_warp_freq(
                    vtln_low,
                    vtln_high,
                    low,
                    high,
                    warp,
                    inverse_mel_scale(m),
                ))
            }
        };
        let fft_bin_width = sample_rate / padded as f64;
        let mel_low = mel_scale(low);
        let mel_high = mel_scale(high);
        let mel_delta = (mel_high - mel_low) / (mel.num_bins as f64 + 1.0);
        let mut triangles = Vec::with_capacity(mel.num_bins);
        for bin in 0..mel.num_bins {
            let unwarped_left = mel_low + bin as f64 * mel_delta;
            let left = warp_mel(unwarped_left);
            let center = warp_mel(unwarped_left + mel_delta);
            let right = warp_mel(unwarped_left + 2.0 * mel_delta);
            let mut first_bin = None;
            let mut weights = Vec::new();
            for i in 0..num_fft_bins {
                // Computed in f32 as Kaldi and torchaudio do, so bins on a triangle's edge agree.
                let freq = (fft_bin_width as f32 * i as f32) as f64;
                let m = mel_scale(freq);
                if m > left && m < right {
                    let weight = if m <= center {
                        (m - left) / (center - left)
                    } else {
                        (right - m) / (right - center)
                    };
                    first_bin.get_or_insert(i);
                    weights.push(weight as f32);
                } else if first_bin.is_some() {
                    break;
                }
            }
            let Some(first_bin) = first_bin else {
                return Err(bad(format!(
                    "mel bin {bin} covers no FFT bin: too many mel bins ({}) for a {padded}-point FFT \
                     between {} and {} Hz",
                    mel.num_bins,
                    mel.low_freq_hz,
                    high as f32
                )));
            };
            triangles.push(MelTriangle { first_bin, weights });
        }
        Ok(MelBank { triangles })
    }

    /// Number of filters.
    pub fn num_bins(&self) -> usize {
        self.triangles.len()
    }

    /// Weight of filter `bin` at FFT bin `fft_bin` (0 outside its support).
    pub fn weight(&self, bin: usize, fft_bin: usize) -> f32 {
        let t = &self.triangles[bin];
        fft_bin
            .checked_sub(t.first_bin)
            .and_then(|k| t.weights.get(k))
            .copied()
            .unwrap_or(0.0)
    }

    /// Mel energies of one spectrum into `out` (`num_bins()` values).
    pub fn apply(&self, spectrum: &[f32], out: &mut [f32]) {
        for (o, t) in out.iter_mut().zip(&self.triangles) {
            let bins = &spectrum[t.first_bin..t.first_bin + t.weights.len()];
            *o = bins.iter().zip(&t.weights).map(|(p, w)| p * w).sum();
        }
    }
}

/// Kaldi-compatible log-mel filterbank features.
pub struct Fbank {
    options: FbankOptions,
    analyzer: FrameAnalyzer,
    mel_bank: MelBank,
    log_energy_floor: Option<f32>,
}

/// Per-thread buffers of [`Fbank`].
pub(crate) struct FbankScratch {
    frame: super::window::FrameScratch,
    spectrum: Vec<f32>,
}

impl Fbank {
    /// Check the options and plan the FFT, window and filters once.
    pub fn new(options: FbankOptions) -> Result<Self> {
        options.frame.validate()?;
        if let Some(floor) = options.energy_floor {
            if !(floor.is_finite() && floor > 0.0 && floor <= MAX_ENERGY_FLOOR) {
                return Err(Error::InvalidOptions {
                    what: "energy",
                    reason: format!(
                        "energy floor must be in (0, {MAX_ENERGY_FLOOR:e}] (or none), got {floor}"
                    ),
                });
            }
        }
        let mel_bank = MelBank::new(&options.mel, &options.frame)?;
        let analyzer = FrameAnalyzer::new(&options.frame);
        let log_energy_floor = options.energy_floor.map(f32::ln);
        Ok(Fbank {
            options,
            analyzer,
            mel_bank,
            log_energy_floor,
        })
    }

    /// The options this computer was built with.
    pub fn options(&self) -> &FbankOptions {
        &self.options
    }

    /// The filters.
    pub fn mel_bank(&self) -> &MelBank {
        &self.mel_bank
    }

    pub(crate) fn make_scratch(&self) -> FbankScratch {
        FbankScratch {
            frame: self.analyzer.make_scratch(),
            spectrum: vec![0.0; self.analyzer.num_bins()],
        }
    }

    /// One frame: `[log energy,] log mel energies` into `row` (`dim()` values).
    pub(crate) fn compute_frame(
        &self,
        wave: &[f32],
        index: usize,
        scratch: &mut FbankScratch,
        row: &mut [f32],
    ) {
        let log_energy = self.analyzer.power_spectrum(
            wave,
            index,
            self.options.raw_energy,
            self.options.use_power,
            &mut scratch.frame,
            &mut scratch.spectrum,
        );
        let mel_out = if self.options.use_energy {
            row[0] = match self.log_energy_floor {
                Some(floor) => log_energy.max(floor),
                None => log_energy,
            };
            &mut row[1..]
        } else {
            &mut row[..]
        };
        self.mel_bank.apply(&scratch.spectrum, mel_out);
        if self.options.use_log_fbank {
            for v in mel_out.iter_mut() {
                *v = super::log::ln(v.max(LOG_FLOOR));
            }
        }
    }

    /// Number of frames for a signal of `num_samples` samples.
    pub fn num_frames(&self, num_samples: usize) -> usize {
        num_frames(num_samples, &self.options.frame)
    }
}

impl FeatureExtractor for Fbank {
    fn dim(&self) -> usize {
        self.mel_bank.num_bins() + usize::from(self.options.use_energy)
    }

    fn compute(&self, wave: &[f32]) -> Array2<f32> {
        compute_rows(
            self.num_frames(wave.len()),
            self.dim(),
            || self.make_scratch(),
            |index, scratch, row| self.compute_frame(wave, index, scratch, row),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scale_is_htk() {
        assert!((mel_scale(700.0) - 1127.0 * 2f64.ln()).abs() < 1e-9);
        assert_eq!(mel_scale(0.0), 0.0);
    }

    #[test]
    fn triangles_peak_at_their_centres_and_overlap_by_half() -> Result<()> {
        let frame = FrameOptions::default();
        let mel = MelOptions {
            num_bins: 23,
            ..MelOptions::default()
        };
        let bank = MelBank::new(&mel, &frame)?;
        assert_eq!(bank.num_bins(), 23);
        for bin in 0..23 {
            let weights: Vec<f32> = (0..257).map(|k| bank.weight(bin, k)).collect();
            let max = weights.iter().cloned().fold(0.0, f32::max);
            assert!(max > 0.5 && max <= 1.0, "bin {bin} peaks at {max}");
            assert!(weights.iter().all(|&w| (0.0..=1.0).contains(&w)));
            // Nothing below 20 Hz (bin 0) or at Nyquist (bin 256).
            assert_eq!(weights[0], 0.0);
            assert_eq!(weights[256], 0.0);
        }
        // Neighbouring triangles sum to ~1 between their centres (linear in mel).
        let k = 60;
        let total: f32 = (0..23).map(|b| bank.weight(b, k)).sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        Ok(())
    }

    #[test]
    fn too_many_bins_or_bad_edges_are_refused() {
        let frame = FrameOptions {
            sample_rate_hz: 8000,
            ..FrameOptions::default()
        };
        let too_many = MelOptions {
            num_bins: 200,
            ..MelOptions::default()
        };
        assert!(MelBank::new(&too_many, &frame).is_err());
        let above_nyquist = MelOptions {
            high_freq: crate::features::FrequencyEdge::Hz(7600.0),
            ..MelOptions::default()
        };
        let err = MelBank::new(&above_nyquist, &frame)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Nyquist"), "{err}");
    }
}
