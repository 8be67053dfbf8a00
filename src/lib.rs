//! # phonrec — audio to phoneme sequences
//!
//! The pipeline, one module per stage, data flowing one way:
//!
//! ```text
//! audio     WAV / NIST SPHERE file -> mono f32 samples (int16 scale) at the model's rate
//! features  samples -> Kaldi-compatible log-mel filterbank / MFCC frames [frames, dims] (+ deltas, CMVN)
//! model     frames -> deep bidirectional LSTM -> log-posteriors [frames, phones + blank]
//! ctc       log-posteriors -> phone sequence with timestamps and confidences (and the training loss)
//! ```
//!
//! ```no_run
//! use phonrec::{audio, features};
//! # fn main() -> phonrec::Result<()> {
//! let wave = audio::read_audio("speech.wav".as_ref())?;
//! let wave = wave.resampled(16_000)?;
//! let fbank = features::Fbank::new(features::FbankOptions::default(), wave.sample_rate_hz)?;
//! let frames = fbank.compute(&wave.samples); // [num_frames, 80]
//! # Ok(()) }
//! ```

pub mod audio;
pub mod ctc;
pub mod error;
pub mod eval;
pub mod features;
pub mod model;
pub mod phones;

pub use error::{Error, Result};
