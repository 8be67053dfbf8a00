//! Stage 4, CTC: log-posteriors `[frames, phones + blank]` -> phone sequences with timestamps and
//! confidences, and the training loss.
//!
//! - training: [`ctc_loss`], the fused candle op (log_softmax + forward–backward, gradient w.r.t. the
//!   logits), with its slow twin [`ctc_loss_reference`];
//! - decoding: [`GreedyDecoder`] and [`PrefixBeamDecoder`] (optionally with a [`PhoneLm`]), both
//!   [`Decoder`]s;
//! - timing: [`force_align`] (Viterbi over the CTC topology) and [`decode_spans`], which decodes then
//!   aligns into [`PhoneSpan`]s;
//! - alignment to a known text: [`force_align_words`], a pruned Viterbi over the lattice of the words'
//!   pronunciations.
//!
//! The blank is class 0 ([`BLANK`](crate::phones::BLANK)) everywhere. Scores are natural logs
//! accumulated in f64.

mod align;
mod beam;
mod boundaries;
mod decoder;
mod greedy;
mod lattice;
mod lm;
mod lm_trie;
mod logmath;
mod loss;
#[cfg(test)]
mod testing;
mod topology;

pub use align::{force_align, AlignedPhone};
pub use beam::{BeamOptions, Hypothesis, PrefixBeamDecoder, MAX_BEAM_WIDTH};
pub use boundaries::{place_by_frames, BoundaryModel};
pub use decoder::{
    decode_spans, decode_spans_with_alternatives, decode_spans_with_hypotheses, Decoder, PhoneSpan,
};
pub use greedy::GreedyDecoder;
pub use lattice::{
    force_align_words, AlignedWord, LatticeAlignment, LatticeOptions, Pronunciations,
    MAX_UNPRUNED_CELLS, RETRY_BEAM_FACTOR,
};
pub use lm::{LmState, PhoneLm, MAX_LM_ORDER};
// The crate's one log-sum-exp (style guide point 16), for any stage that needs one.
#[allow(unused_imports)] // only `ctc` itself uses it so far
pub(crate) use logmath::log_add;
pub use loss::{
    ctc_loss, ctc_loss_log_probs, ctc_loss_reference, min_frames, CtcOutput, Reduction,
};
