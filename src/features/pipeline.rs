//! The whole feature stage as one computer: base features (fbank or MFCC), then deltas, then CMVN.

use ndarray::Array2;

use super::cmvn::{apply_cmvn, filterbank_loudness};
use super::deltas::add_deltas;
use super::mel::Fbank;
use super::mfcc::Mfcc;
use super::options::{
    BaseFeatures, CmvnOptions, CmvnStatistics, FeatureOptions, MAX_DELTA_ORDER, MAX_DELTA_WINDOW,
};
use super::FeatureExtractor;
use crate::error::{Error, Result};

/// Computes a model's input features from a waveform, as [`FeatureOptions`] describe.
pub struct FeaturePipeline {
    options: FeatureOptions,
    base: Box<dyn FeatureExtractor>,
}

impl FeaturePipeline {
    /// Check the options and plan every step once.
    pub fn new(options: FeatureOptions) -> Result<Self> {
        if let Some(CmvnOptions {
            statistics: CmvnStatistics::Loud { within_db },
            ..
        }) = &options.cmvn
        {
            if !(within_db.is_finite() && (1.0..=200.0).contains(within_db)) {
                return Err(Error::InvalidOptions {
                    what: "CMVN",
                    reason: format!("loud-frame range {within_db} dB is outside 1..200 dB"),
                });
            }
        }
        if let Some(deltas) = &options.deltas {
            // A window of 0 frames would make every delta 0 (Kaldi's add-deltas refuses it too).
            if deltas.order > MAX_DELTA_ORDER || !(1..=MAX_DELTA_WINDOW).contains(&deltas.window) {
                return Err(Error::InvalidOptions {
                    what: "delta",
                    reason: format!(
                        "order must be at most {MAX_DELTA_ORDER} and window 1 to \
                         {MAX_DELTA_WINDOW} frames, got order {} and window {}",
                        deltas.order, deltas.window
                    ),
                });
            }
        }
        let base: Box<dyn FeatureExtractor> = match &options.base {
            BaseFeatures::Fbank(o) => Box::new(Fbank::new(o.clone())?),
            BaseFeatures::Mfcc(o) => Box::new(Mfcc::new(o.clone())?),
        };
        Ok(FeaturePipeline { options, base })
    }

    /// The options this pipeline was built with.
    pub fn options(&self) -> &FeatureOptions {
        &self.options
    }

    /// Seconds between frames.
    pub fn frame_shift_s(&self) -> f64 {
        self.options.frame().frame_shift_s()
    }

    /// Natural-log energy of each frame of base features (before deltas and CMVN): column 0 where it
    /// holds the log energy or C0 (MFCC, fbank with `use_energy`), else the log of the summed
    /// filterbank power.
    pub fn loudness(&self, base: &Array2<f32>) -> Vec<f32> {
        let energy_column = match &self.options.base {
            BaseFeatures::Fbank(o) => o.use_energy,
            BaseFeatures::Mfcc(_) => true,
        };
        if energy_column && base.ncols() > 0 {
            base.column(0).to_vec()
        } else {
            filterbank_loudness(base.view())
        }
    }

    /// [`compute`](FeatureExtractor::compute), with the frames that start inside `excluded` (sample
    /// ranges, sorted) left out of the normalisation's statistics: the loud-frame statistics
    /// (`CmvnStatistics::Loud`) never count them, though they are normalised with the rest. With
    /// all-frame statistics, or nothing excluded, the same as `compute`. The recogniser leaves out
    /// what it raised to the speech level (a far talker, or a jingle taken for one): the speech
    /// around is normalised as it would have been.
    pub fn compute_excluding(
        &self,
        wave: &[f32],
        excluded: &[std::ops::Range<usize>],
    ) -> Array2<f32> {
        let loud_statistics = matches!(
            &self.options.cmvn,
            Some(cmvn) if cmvn.statistics != CmvnStatistics::All
        );
        if excluded.is_empty() || !loud_statistics {
            return self.compute(wave);
        }
        let shift = self.options.frame().window_shift().max(1);
        let mut features = self.base.compute(wave);
        let mut loudness = self.loudness(&features);
        for range in excluded {
            let first = range.start.div_ceil(shift);
            let end = range.end.div_ceil(shift).min(loudness.len());
            for value in loudness.iter_mut().take(end).skip(first) {
                *value = f32::NEG_INFINITY;
            }
        }
        self.finish(&mut features, &loudness);
        features
    }

    /// Deltas, then CMVN with `loudness` per frame, on base features.
    fn finish(&self, features: &mut Array2<f32>, loudness: &[f32]) {
        if let Some(deltas) = &self.options.deltas {
            *features = add_deltas(features.view(), deltas);
        }
        if let Some(cmvn) = &self.options.cmvn {
            apply_cmvn(features, loudness, cmvn);
        }
    }

    /// The sample rate the input must have.
    pub fn sample_rate_hz(&self) -> u32 {
        self.options.sample_rate_hz()
    }
}

impl FeatureExtractor for FeaturePipeline {
    fn dim(&self) -> usize {
        let order = self.options.deltas.as_ref().map_or(0, |d| d.order);
        self.base.dim() * (order + 1)
    }

    fn compute(&self, wave: &[f32]) -> Array2<f32> {
        let mut features = self.base.compute(wave);
        let loudness = match &self.options.cmvn {
            Some(cmvn) if cmvn.statistics != CmvnStatistics::All => self.loudness(&features),
            _ => Vec::new(),
        };
        self.finish(&mut features, &loudness);
        features
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::test_noise as noise;

    #[test]
    fn frames_left_out_do_not_move_the_loud_frame_statistics() {
        let options = FeatureOptions {
            cmvn: Some(CmvnOptions {
                statistics: CmvnStatistics::Loud { within_db: 30.0 },
                ..CmvnOptions::default()
            }),
            ..FeatureOptions::default()
        };
        let pipeline = FeaturePipeline::new(options).unwrap();
        let quiet = noise(16_000, 300.0, 1);
        let wave = [quiet.clone(), noise(16_000, 3_000.0, 2)].concat();
        // Nothing left out: as `compute`.
        assert_eq!(
            pipeline.compute_excluding(&wave, &[]),
            pipeline.compute(&wave)
        );
        // The loud second left out (every frame that starts at 0.975 s or later, the first that
        // reaches into it): the quiet second is normalised as when it is alone...
        let alone = pipeline.compute(&quiet);
        let loud_second = 15_600..32_000;
        let excluding = pipeline.compute_excluding(&wave, std::slice::from_ref(&loud_second));
        let frames = alone.nrows();
        let difference = (&excluding.slice(ndarray::s![..frames, ..]) - &alone)
            .iter()
            .fold(0.0f32, |m, d| m.max(d.abs()));
        assert!(difference < 1e-4, "{difference}");
        // ...where with it counted the quiet frames sit far under their mean.
        let whole = pipeline.compute(&wave);
        assert!(
            whole[[10, 40]] < alone[[10, 40]] - 1.0,
            "{}",
            whole[[10, 40]]
        );
        // All-frame statistics leave nothing out.
        let all = FeaturePipeline::new(FeatureOptions::default()).unwrap();
        assert_eq!(
            all.compute_excluding(&wave, std::slice::from_ref(&loud_second)),
            all.compute(&wave)
        );
    }
}
