//! # phonrec — audio to phoneme sequences
//!
//! The pipeline, one module per stage, data flowing one way:
//!
//! ```text
//! audio     WAV / SPHERE / .au / FLAC / MP3 file -> mono f32 samples (int16 scale) at the model's rate
//! features  samples -> Kaldi-compatible log-mel filterbank / MFCC frames [frames, dims] (+ deltas, CMVN)
//! model     frames -> deep bidirectional LSTM -> log-posteriors [frames, phones + blank]
//! ctc       log-posteriors -> phone sequence with timestamps and confidences (and the training loss)
//! ```
//!
//! ```no_run
//! use phonrec::audio;
//! use phonrec::features::{FeatureExtractor, FeatureOptions, FeaturePipeline};
//! # fn main() -> phonrec::Result<()> {
//! let wave = audio::read_audio("speech.wav".as_ref())?.resampled(16_000)?;
//! let pipeline = FeaturePipeline::new(FeatureOptions::default())?;
//! let frames = pipeline.compute(&wave.samples); // [num_frames, 80]
//! # Ok(()) }
//! ```

pub mod align;
pub mod audio;
pub mod builtin;
pub mod choice;
pub mod ctc;
pub mod data;
pub mod error;
pub mod eval;
pub mod features;
pub mod inspect;
pub mod model;
pub mod output;
pub mod phones;
pub mod recognize;
pub mod train;
mod util;

pub use error::{Error, Result};
