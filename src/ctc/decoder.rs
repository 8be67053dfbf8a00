//! Stage 4 (decoding) interface: log-probs [frames, classes] -> phone sequence -> timed phone spans.
//!
//! The [`Decoder`] trait is implemented by [`GreedyDecoder`](super::GreedyDecoder) and
//! [`PrefixBeamDecoder`](super::PrefixBeamDecoder); [`decode_spans`] runs either, then times the result
//! with a Viterbi forced alignment ([`force_align`](super::force_align)).

use ndarray::{s, ArrayView2};
use serde::{Deserialize, Serialize};

use super::align::{force_align_with_spikes, AlignedPhone};
use super::beam::Hypothesis;
use crate::error::Result;
use crate::phones::PhoneId;

/// Turns a posteriorgram into the most likely phone sequence.
pub trait Decoder: Send + Sync {
    /// Best phone sequence (blanks removed, repeats collapsed) for natural-log posteriors
    /// `log_probs` `[frames, classes]`, blank = class 0.
    fn decode(&self, log_probs: ArrayView2<f32>) -> Vec<PhoneId>;

    /// The decoder's best hypotheses with their scores, best first, never empty: the beam search's
    /// n-best list ([`BeamOptions::num_best`](super::BeamOptions::num_best) of them), greedy
    /// decoding's one best path. The first one's phones are [`decode`](Self::decode)'s.
    fn hypotheses(&self, log_probs: ArrayView2<f32>) -> Vec<Hypothesis>;
}

/// One decoded phone with its time span, as the transcription outputs print it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// The phones the network found most probable over the same frames, most probable first, each
    /// with its mean posterior there (the decoded phone's is its `confidence`; the blank is left
    /// out): a second opinion where the decoder or the LM chose a less probable phone. Empty unless
    /// asked for ([`decode_spans_with_alternatives`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<(PhoneId, f32)>,
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
            alternatives: Vec::new(),
        }
    }
}

/// Decodes `log_probs` `[frames, classes]` with `decoder`, then aligns the result to time it: one
/// [`PhoneSpan`] per decoded phone. `frame_shift_s` as in [`PhoneSpan::from_aligned`]. As in
/// [`force_align`](super::force_align), a phone's span takes blank frames beside its spike, but at
/// most 80 ms on each side: a longer pause between two phones belongs to neither.
pub fn decode_spans(
    decoder: &dyn Decoder,
    log_probs: ArrayView2<f32>,
    frame_shift_s: f32,
) -> Result<Vec<PhoneSpan>> {
    decode_spans_with_alternatives(decoder, log_probs, frame_shift_s, 0)
}

/// [`decode_spans`], each span also with its `alternatives` most probable phones over its spike
/// frames (Allosaurus's `--topk`; see [`PhoneSpan::alternatives`]). 0 gives none.
pub fn decode_spans_with_alternatives(
    decoder: &dyn Decoder,
    log_probs: ArrayView2<f32>,
    frame_shift_s: f32,
    alternatives: usize,
) -> Result<Vec<PhoneSpan>> {
    let phones = decoder.decode(log_probs);
    timed_spans(log_probs, &phones, frame_shift_s, alternatives)
}

/// [`decode_spans_with_alternatives`] that also returns the decoder's whole list of
/// [`hypotheses`](Decoder::hypotheses) (the spans are its first one's phones, timed).
pub fn decode_spans_with_hypotheses(
    decoder: &dyn Decoder,
    log_probs: ArrayView2<f32>,
    frame_shift_s: f32,
    alternatives: usize,
) -> Result<(Vec<PhoneSpan>, Vec<Hypothesis>)> {
    let hypotheses = decoder.hypotheses(log_probs);
    let best = hypotheses.first().map_or(&[][..], |h| &h.phones[..]);
    let spans = timed_spans(log_probs, best, frame_shift_s, alternatives)?;
    Ok((spans, hypotheses))
}

/// `phones` aligned to `log_probs` and timed, each with its `alternatives` most probable phones.
fn timed_spans(
    log_probs: ArrayView2<f32>,
    phones: &[PhoneId],
    frame_shift_s: f32,
    alternatives: usize,
) -> Result<Vec<PhoneSpan>> {
    // A pause inside a speech region stays a pause: a phone takes at most this much of the blank
    // frames on each side (split evenly, a phone before a 0.4 s pause ran up to 0.2 s past its end
    // and the next began as early). Against flite's own timings (recipes/align's 200 held-out
    // files, and 60 of them joined in pairs with 0.2-0.6 s pauses; models/README.md), 80 ms kept
    // the mean boundary error (20.5 -> 20.4 ms) and cut it at the pauses' edges (73 -> 65 ms).
    const MAX_BLANK_S_PER_SIDE: f32 = 0.08;
    let per_side = (MAX_BLANK_S_PER_SIDE / frame_shift_s).round().max(1.0) as usize;
    let aligned = force_align_with_spikes(log_probs, phones, Some(per_side))?;
    Ok(aligned
        .into_iter()
        .map(|(aligned, spike)| {
            let mut span = PhoneSpan::from_aligned(&aligned, frame_shift_s);
            if alternatives > 0 {
                span.alternatives =
                    most_probable_phones(log_probs.slice(s![spike, ..]), alternatives);
            }
            span
        })
        .collect())
}

/// The `count` non-blank classes with the highest mean posterior over the frames of `log_probs`
/// (natural logs), most probable first (ties to the lower id), with that mean.
fn most_probable_phones(log_probs: ArrayView2<f32>, count: usize) -> Vec<(PhoneId, f32)> {
    let frames = log_probs.nrows().max(1) as f64;
    let mut means: Vec<(PhoneId, f32)> = (1..log_probs.ncols())
        .map(|class| {
            let sum: f64 = log_probs
                .column(class)
                .iter()
                .map(|&lp| f64::from(lp).exp())
                .sum();
            (PhoneId(class as u16), (sum / frames) as f32)
        })
        .collect();
    means.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0 .0.cmp(&b.0 .0)));
    means.truncate(count);
    means
}
