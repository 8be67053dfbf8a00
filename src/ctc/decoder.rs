//! Stage 4 (decoding) interface: log-probs [frames, classes] -> phone sequence -> timed phone spans.
//!
//! The [`Decoder`] trait is implemented by [`GreedyDecoder`](super::GreedyDecoder) and
//! [`PrefixBeamDecoder`](super::PrefixBeamDecoder); [`decode_spans`] runs either, then times the result
//! with a Viterbi forced alignment ([`force_align`](super::force_align)).

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::align::{force_align, AlignedPhone};
use crate::error::Result;
use crate::phones::PhoneId;

/// Turns a posteriorgram into the most likely phone sequence.
pub trait Decoder: Send + Sync {
    /// Best phone sequence (blanks removed, repeats collapsed) for natural-log posteriors
    /// `log_probs` `[frames, classes]`, blank = class 0.
    fn decode(&self, log_probs: ArrayView2<f32>) -> Vec<PhoneId>;
}

/// One decoded phone with its time span, as the transcription outputs print it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhoneSpan {
    /// The phone.
    pub phone: PhoneId,
    /// Start time in seconds from the start of the audio (frame index × frame shift).
    pub start_s: f32,
    /// End time in seconds, exclusive.
    pub end_s: f32,
    /// Mean posterior of the phone over the frames the alignment labels with it, in [0, 1]
    /// (see [`AlignedPhone::confidence`]).
    pub confidence: f32,
}

impl PhoneSpan {
    /// Converts frame indices to seconds; `frame_shift_s` is the time between two rows of the
    /// posteriorgram (0.01 for 10 ms frames, times any subsampling factor of the model).
    pub fn from_aligned(aligned: &AlignedPhone, frame_shift_s: f32) -> Self {
        PhoneSpan {
            phone: aligned.phone,
            start_s: aligned.start_frame as f32 * frame_shift_s,
            end_s: aligned.end_frame as f32 * frame_shift_s,
            confidence: aligned.confidence,
        }
    }
}

/// Decodes `log_probs` `[frames, classes]` with `decoder`, then aligns the result to time it: one
/// [`PhoneSpan`] per decoded phone. `frame_shift_s` as in [`PhoneSpan::from_aligned`].
pub fn decode_spans(
    decoder: &dyn Decoder,
    log_probs: ArrayView2<f32>,
    frame_shift_s: f32,
) -> Result<Vec<PhoneSpan>> {
    let phones = decoder.decode(log_probs);
    let aligned = force_align(log_probs, &phones)?;
    Ok(aligned
        .iter()
        .map(|a| PhoneSpan::from_aligned(a, frame_shift_s))
        .collect())
}
