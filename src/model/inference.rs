//! Stage 3 for inference: a loaded model turns a waveform into log-posteriors, computing its own
//! features as its file says: samples -> features `[frames, dim]` -> log-probs `[out_frames, phones + 1]`.

use std::path::Path;

use ndarray::Array2;

use super::bf16::Precision;
use super::file::{ModelConfig, ModelFile};
use super::network::Blstm;
use crate::error::Result;
use crate::features::{FeatureExtractor, FeaturePipeline};
use crate::phones::PhoneSet;

/// A trained model ready for inference: the feature pipeline, the network and the phone set, all as the
/// model file describes them. `Send + Sync`, so one model serves many threads.
pub struct Model {
    config: ModelConfig,
    features: FeaturePipeline,
    network: Blstm,
}

impl Model {
    /// Build the pipeline and the network of a checked model file.
    pub fn new(file: &ModelFile) -> Result<Self> {
        Self::with_network(file.config().clone(), file.network()?, Precision::F32)
    }

    /// As [`new`](Self::new), taking the file: its weights then belong to the network alone, so
    /// each layer's f32 copy is freed as soon as it is packed (a lower peak of memory).
    pub fn from_file(file: ModelFile) -> Result<Self> {
        Self::from_file_in(file, Precision::F32)
    }

    /// As [`from_file`](Self::from_file), computing the LSTM in `precision` ([`Precision::Bf16`]:
    /// faster at batch 1, posteriors close to but not equal to f32's).
    pub fn from_file_in(file: ModelFile, precision: Precision) -> Result<Self> {
        let network = file.network()?;
        let config = file.config().clone();
        drop(file);
        Self::with_network(config, network, precision)
    }

    fn with_network(config: ModelConfig, mut network: Blstm, precision: Precision) -> Result<Self> {
        // The weights of a loaded model never change: pack them for the kernel once, not per call.
        // A `Model` never trains: the packed copy is all it reads.
        network.prepare_for_inference_only(precision)?;
        Ok(Model {
            features: FeaturePipeline::new(config.features.clone())?,
            config,
            network,
        })
    }

    /// Load a model file (see [`ModelFile::load`]).
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_file(ModelFile::load(path)?)
    }

    /// Load a model held in memory, such as the compiled-in default (see [`ModelFile::load_from_bytes`]).
    pub fn load_from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        Self::from_file(ModelFile::load_from_bytes(bytes, name)?)
    }

    /// Log-posteriors `[out_frames, phones + 1]` (natural log, blank = column 0) of a mono waveform:
    /// int16-scale samples at [`sample_rate_hz`](Self::sample_rate_hz). Row `t` covers the audio from
    /// `t · frame_shift_s()`.
    /// Long audio goes through the network in windows ([`Blstm::log_probs_windowed`]).
    pub fn log_probs_for_wave(&self, samples: &[f32]) -> Result<Array2<f32>> {
        let features = self.features.compute(samples);
        self.network.log_probs_windowed(features.view())
    }

    /// The model's metadata.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The outputs' phones, blank first.
    pub fn phones(&self) -> &PhoneSet {
        &self.config.phones
    }

    /// The feature pipeline.
    pub fn features(&self) -> &FeaturePipeline {
        &self.features
    }

    /// The network.
    pub fn network(&self) -> &Blstm {
        &self.network
    }

    /// The sample rate the waveform must have.
    pub fn sample_rate_hz(&self) -> u32 {
        self.features.sample_rate_hz()
    }

    /// Seconds between output frames: the feature frame shift times the frames stacked per step.
    pub fn frame_shift_s(&self) -> f64 {
        self.features.frame_shift_s() * self.config.network.stack_frames as f64
    }
}
