//! The whole feature stage as one computer: base features (fbank or MFCC), then deltas, then CMVN.

use ndarray::Array2;

use super::cmvn::apply_cmvn;
use super::deltas::add_deltas;
use super::mel::Fbank;
use super::mfcc::Mfcc;
use super::options::{BaseFeatures, FeatureOptions};
use super::FeatureExtractor;
use crate::error::Result;

/// Computes a model's input features from a waveform, as [`FeatureOptions`] describe.
pub struct FeaturePipeline {
    options: FeatureOptions,
    base: Box<dyn FeatureExtractor>,
}

impl FeaturePipeline {
    /// Check the options and plan every step once.
    pub fn new(options: FeatureOptions) -> Result<Self> {
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
        if let Some(deltas) = &self.options.deltas {
            features = add_deltas(features.view(), deltas);
        }
        if let Some(cmvn) = &self.options.cmvn {
            apply_cmvn(&mut features, cmvn);
        }
        features
    }
}
