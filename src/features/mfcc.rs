//! MFCC: log mel energies [num_bins] -> DCT-II (orthonormal, Kaldi's `ComputeDctMatrix`) -> first
//! `num_ceps` coefficients -> cepstral lifter; C0 replaced by log energy if `use_energy`.
//! Matches Kaldi src/feat/feature-mfcc.cc and torchaudio's `compliance.kaldi.mfcc`.

use ndarray::Array2;

use super::mel::{Fbank, FbankScratch};
use super::options::{FbankOptions, MfccOptions, MAX_CEPSTRAL_LIFTER};
use super::window::compute_rows;
use super::FeatureExtractor;
use crate::error::{Error, Result};

/// Kaldi-compatible MFCC features.
pub struct Mfcc {
    options: MfccOptions,
    fbank: Fbank,
    /// [num_ceps × num_bins], row-major, liftering folded in.
    dct: Vec<f32>,
}

impl Mfcc {
    /// Check the options and precompute the filterbank and DCT.
    pub fn new(options: MfccOptions) -> Result<Self> {
        let num_bins = options.mel.num_bins;
        if options.num_ceps == 0 || options.num_ceps > num_bins {
            return Err(Error::InvalidOptions {
                what: "MFCC",
                reason: format!(
                    "num-ceps must be between 1 and num-mel-bins ({num_bins}), got {}",
                    options.num_ceps
                ),
            });
        }
        if let Some(lifter) = options.cepstral_lifter {
            if !(lifter.is_finite() && lifter > 0.0 && lifter <= MAX_CEPSTRAL_LIFTER) {
                return Err(Error::InvalidOptions {
                    what: "MFCC",
                    reason: format!(
                        "cepstral lifter must be in (0, {MAX_CEPSTRAL_LIFTER}] (or none), got {lifter}"
                    ),
                });
            }
        }
        let fbank = Fbank::new(FbankOptions {
            frame: options.frame.clone(),
            mel: options.mel.clone(),
            use_energy: options.use_energy,
            energy_floor: options.energy_floor,
            raw_energy: options.raw_energy,
            use_log_fbank: true,
            use_power: true,
        })?;
        let dct = dct_matrix(options.num_ceps, num_bins, options.cepstral_lifter);
        Ok(Mfcc {
            options,
            fbank,
            dct,
        })
    }

    /// The options this computer was built with.
    pub fn options(&self) -> &MfccOptions {
        &self.options
    }
}

/// Orthonormal DCT-II rows `0..num_ceps` over `num_bins` inputs, each row scaled by the lifter
/// `1 + Q/2 · sin(πk/Q)` (none without a lifter).
pub(crate) fn dct_matrix(num_ceps: usize, num_bins: usize, lifter: Option<f32>) -> Vec<f32> {
    let n = num_bins as f64;
    let mut matrix = Vec::with_capacity(num_ceps * num_bins);
    for k in 0..num_ceps {
        let norm = if k == 0 {
            (1.0 / n).sqrt()
        } else {
            (2.0 / n).sqrt()
        };
        let lift = lifter.map_or(1.0, |q| {
            1.0 + 0.5 * q as f64 * (std::f64::consts::PI * k as f64 / q as f64).sin()
        });
        for j in 0..num_bins {
            let value = norm * (std::f64::consts::PI / n * (j as f64 + 0.5) * k as f64).cos();
            matrix.push((value * lift) as f32);
        }
    }
    matrix
}

/// Per-thread buffers of [`Mfcc`].
struct MfccScratch {
    fbank: FbankScratch,
    row: Vec<f32>,
}

impl FeatureExtractor for Mfcc {
    fn dim(&self) -> usize {
        self.options.num_ceps
    }

    fn compute(&self, wave: &[f32]) -> Array2<f32> {
        let num_bins = self.options.mel.num_bins;
        let offset = usize::from(self.options.use_energy);
        compute_rows(
            self.fbank.num_frames(wave.len()),
            self.dim(),
            || MfccScratch {
                fbank: self.fbank.make_scratch(),
                row: vec![0.0; self.fbank.dim()],
            },
            |index, scratch, out| {
                self.fbank
                    .compute_frame(wave, index, &mut scratch.fbank, &mut scratch.row);
                let log_mel = &scratch.row[offset..offset + num_bins];
                for (k, o) in out.iter_mut().enumerate() {
                    let basis = &self.dct[k * num_bins..(k + 1) * num_bins];
                    *o = basis.iter().zip(log_mel).map(|(b, x)| b * x).sum();
                }
                if self.options.use_energy {
                    out[0] = scratch.row[0];
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dct_rows_are_orthonormal_without_lifter() {
        let n = 23;
        let m = dct_matrix(n, n, None);
        for a in 0..n {
            for b in 0..n {
                let dot: f32 = (0..n).map(|j| m[a * n + j] * m[b * n + j]).sum();
                let expected = if a == b { 1.0 } else { 0.0 };
                assert!((dot - expected).abs() < 1e-5, "rows {a},{b}: {dot}");
            }
        }
    }

    #[test]
    fn lifter_scales_rows() {
        let plain = dct_matrix(13, 23, None);
        let liftered = dct_matrix(13, 23, Some(22.0));
        let k = 5;
        let lift = 1.0 + 11.0 * (std::f32::consts::PI * 5.0 / 22.0).sin();
        assert!((liftered[k * 23 + 3] - plain[k * 23 + 3] * lift).abs() < 1e-5);
        assert_eq!(liftered[3], plain[3]);
    }

    #[test]
    fn too_many_cepstra_are_refused() {
        let options = MfccOptions {
            num_ceps: 40,
            ..MfccOptions::default()
        };
        assert!(Mfcc::new(options).is_err());
    }
}
