//! Stage 2, features: mono int16-scale samples -> Kaldi-compatible frames `Array2<f32>` [frames, dims].
//!
//! Matches Kaldi's `compute-fbank-feats` / `compute-mfcc-feats` (src/feat/) as ported by torchaudio's
//! `compliance.kaldi`, checked against `../shared/golden/features/`. The steps, each a small function:
//! framing (`window.rs`) → dither, DC removal, pre-emphasis, window → power spectrum (real FFT) →
//! mel filterbank (`mel.rs`) → log → (DCT + lifter, `mfcc.rs`) → (deltas) → (CMVN).

mod cmvn;
mod deltas;
mod dither;
mod kaldi_flags;
mod log;
mod mel;
mod mfcc;
mod options;
mod pipeline;
mod window;

pub use cmvn::apply_cmvn;
pub use deltas::add_deltas;
pub use kaldi_flags::KaldiFeatureFlags;
pub use mel::{Fbank, MelBank};
pub use mfcc::Mfcc;
pub use options::{
    BaseFeatures, CmvnOptions, CmvnStatistics, DeltaOptions, FbankOptions, FeatureOptions,
    FrameOptions, FrequencyEdge, MelOptions, MfccOptions, WindowType,
};
pub use pipeline::FeaturePipeline;
pub use window::num_frames;

/// Anything that turns a waveform into feature frames.
pub trait FeatureExtractor: Send + Sync {
    /// Dimension of one frame.
    fn dim(&self) -> usize;
    /// Features of a whole signal (int16-scale samples at the options' rate): [num_frames, dim].
    fn compute(&self, wave: &[f32]) -> ndarray::Array2<f32>;
}
