//! Stage 4 (timing), CTC forced alignment: log-probs [frames, classes] + phone sequence -> one frame span
//! per phone.
//!
//! A Viterbi pass over the CTC topology (blank, l1, blank, l2, ..., blank; a blank may be skipped between
//! different phones) finds the single most likely frame labelling that spells the sequence. CTC
//! posteriors are peaky, so that labelling gives each phone only its few "spike" frames and blanks the
//! rest; a phone's span therefore also takes half of each blank gap next to it (see [`AlignedPhone`]),
//! giving contiguous start/end times rather than a spike. Blank frames before the first phone and after
//! the last belong to no phone.

use std::ops::RangeInclusive;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::loss::min_frames;
use super::topology::Topology;
use crate::error::{Error, Result};
use crate::phones::{PhoneId, BLANK};

/// One phone of a forced alignment, in frames.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlignedPhone {
    /// The phone.
    pub phone: PhoneId,
    /// First frame of the span: the phone's first Viterbi frame, minus the later half of the blank gap
    /// before it (none for the first phone).
    pub start_frame: usize,
    /// One past the last frame of the span: the phone's last Viterbi frame, plus the earlier half of the
    /// blank gap after it (an odd middle frame goes to the earlier phone; none after the last phone).
    /// Spans of consecutive phones touch: `end_frame` of one is `start_frame` of the next.
    pub end_frame: usize,
    /// Mean posterior probability of the phone over the frames the Viterbi path labels with it (its
    /// spike frames, not the absorbed blanks), in [0, 1]. High when the network is sure of the phone.
    pub confidence: f32,
}

/// Viterbi forced alignment of `phones` to natural-log posteriors `log_probs` `[frames, classes]`
/// (blank = class 0). Returns one [`AlignedPhone`] per phone, in order.
///
/// Errors if a phone is the blank or has no column, if the log-probs contain NaN, or if no alignment
/// exists (fewer frames than phones plus repeated neighbours, or every path has probability zero).
pub fn force_align(log_probs: ArrayView2<f32>, phones: &[PhoneId]) -> Result<Vec<AlignedPhone>> {
    Ok(force_align_with_spikes(log_probs, phones, None)?
        .into_iter()
        .map(|(aligned, _)| aligned)
        .collect())
}

/// [`force_align`], each phone with its spike frames: the frames the Viterbi path labels with it
/// (those its confidence is the mean posterior over). With `max_blank_frames_per_side`, a phone
/// takes at most that many blank frames on each side, and the middle of a longer blank run (a
/// pause) belongs to no phone.
pub(crate) fn force_align_with_spikes(
    log_probs: ArrayView2<f32>,
    phones: &[PhoneId],
    max_blank_frames_per_side: Option<usize>,
) -> Result<Vec<(AlignedPhone, RangeInclusive<usize>)>> {
    let (num_frames, num_classes) = log_probs.dim();
    if let Some(bad) = phones
        .iter()
        .find(|p| **p == BLANK || p.index() >= num_classes)
    {
        return Err(Error::InvalidPhoneId {
            id: bad.0,
            num_classes,
        });
    }
    if phones.is_empty() {
        return Ok(Vec::new());
    }
    if log_probs.iter().any(|x| x.is_nan()) {
        return Err(Error::NanLogProbs);
    }
    let impossible = || Error::AlignmentImpossible {
        num_phones: phones.len(),
        num_frames,
        min_frames: min_frames(phones),
    };
    if num_frames < min_frames(phones) {
        return Err(impossible());
    }

    let topology = Topology::new(phones);
    let num_states = topology.num_states();
    let classes = topology.classes();

    // score[s]: best log-probability of a path ending in state s at the current frame (f64 accumulation).
    let mut score = vec![f64::NEG_INFINITY; num_states];
    let mut next_score = vec![f64::NEG_INFINITY; num_states];
    // came_from[t * num_states + s]: how many states back the best path to (t, s) came from (0, 1 or 2).
    let mut came_from = vec![0_u8; num_frames * num_states];
    score[0] = f64::from(log_probs[[0, BLANK.index()]]);
    score[1] = f64::from(log_probs[[0, phones[0].index()]]);
    for t in 1..num_frames {
        for s in 0..num_states {
            let mut best = (score[s], 0_u8);
            if s >= 1 && score[s - 1] > best.0 {
                best = (score[s - 1], 1);
            }
            if topology.may_skip(s) && score[s - 2] > best.0 {
                best = (score[s - 2], 2);
            }
            next_score[s] = best.0 + f64::from(log_probs[[t, classes[s]]]);
            came_from[t * num_states + s] = best.1;
        }
        std::mem::swap(&mut score, &mut next_score);
    }
    let mut state = if score[num_states - 2] > score[num_states - 1] {
        num_states - 2
    } else {
        num_states - 1
    };
    if score[state] == f64::NEG_INFINITY {
        return Err(impossible());
    }

    // Backtrack; a finite score means every state on the path is reachable, so each phone gets frames.
    let mut first_frame = vec![usize::MAX; phones.len()];
    let mut last_frame = vec![0_usize; phones.len()];
    let mut posterior_sum = vec![0.0_f64; phones.len()];
    for t in (0..num_frames).rev() {
        if Topology::is_label(state) {
            let i = Topology::label_index(state);
            first_frame[i] = t;
            last_frame[i] = last_frame[i].max(t);
            posterior_sum[i] += f64::from(log_probs[[t, phones[i].index()]]).exp();
        }
        state -= usize::from(came_from[t * num_states + state]);
    }

    let bounds = spans_from_spikes(&first_frame, &last_frame, max_blank_frames_per_side);
    Ok(phones
        .iter()
        .zip(bounds)
        .enumerate()
        .map(|(i, (&phone, (start_frame, end_frame)))| {
            let aligned = AlignedPhone {
                phone,
                start_frame,
                end_frame,
                confidence: (posterior_sum[i] / (last_frame[i] + 1 - first_frame[i]) as f64) as f32,
            };
            (aligned, first_frame[i]..=last_frame[i])
        })
        .collect())
}

/// Frame spans `(start, end)` of phones whose spike frames run `first[i]..=last[i]` (in order, not
/// overlapping): each phone takes the earlier half of the blank run after it and the later half of the
/// run before it (an odd middle frame goes to the earlier phone); nothing before the first spike or
/// after the last. With `max_per_side`, a phone takes at most that many frames of a run on each side
/// and the middle of a longer run belongs to no phone (a pause).
pub(crate) fn spans_from_spikes(
    first: &[usize],
    last: &[usize],
    max_per_side: Option<usize>,
) -> Vec<(usize, usize)> {
    let n = first.len();
    // Frames of the run between spike i-1 and spike i that go to the earlier and the later phone.
    let split = |gap: usize| {
        let earlier = gap.div_ceil(2);
        match max_per_side {
            Some(m) if gap > 2 * m => (m, m),
            _ => (earlier, gap - earlier),
        }
    };
    (0..n)
        .map(|i| {
            let start = if i == 0 {
                first[0]
            } else {
                first[i] - split(first[i] - (last[i - 1] + 1)).1
            };
            let end = if i + 1 == n {
                last[i] + 1
            } else {
                last[i] + 1 + split(first[i + 1] - (last[i] + 1)).0
            };
            (start, end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctc::testing::{peaky, PEAK_PROB};

    /// Confidences are means of f32 posteriors.
    const CONFIDENCE_TOLERANCE: f32 = 1e-6;

    fn phones(ids: &[u16]) -> Vec<PhoneId> {
        ids.iter().map(|&i| PhoneId(i)).collect()
    }

    fn spans(aligned: &[AlignedPhone]) -> Vec<(u16, usize, usize)> {
        aligned
            .iter()
            .map(|a| (a.phone.0, a.start_frame, a.end_frame))
            .collect()
    }

    #[test]
    fn spans_split_blank_gaps_and_skip_edges() -> Result<()> {
        // frames:  0 1 2 3 4 5 6 7 8 9
        // path:    - - a a - - - b - -
        let log_probs = peaky(&[0, 0, 1, 1, 0, 0, 0, 2, 0, 0], 3);
        let aligned = force_align(log_probs.view(), &phones(&[1, 2]))?;
        // The 3-frame gap 4..7 splits 2 (to a, the odd frame) + 1 (to b).
        assert_eq!(spans(&aligned), vec![(1, 2, 6), (2, 6, 8)]);
        for a in &aligned {
            assert!((a.confidence - PEAK_PROB).abs() < CONFIDENCE_TOLERANCE);
        }
        Ok(())
    }

    #[test]
    fn repeated_phones_are_separated_by_a_blank() -> Result<()> {
        // The posteriors say "a a a" without blanks, but "a a" must align as a, blank, a.
        let log_probs = peaky(&[1, 1, 1, 1], 3);
        let aligned = force_align(log_probs.view(), &phones(&[1, 1]))?;
        assert_eq!(aligned.len(), 2);
        assert!(aligned[0].end_frame <= aligned[1].start_frame);
        // Exactly min_frames: a - a.
        let log_probs = peaky(&[1, 0, 1], 3);
        let aligned = force_align(log_probs.view(), &phones(&[1, 1]))?;
        assert_eq!(spans(&aligned), vec![(1, 0, 2), (1, 2, 3)]);
        Ok(())
    }

    #[test]
    fn alignment_follows_the_posteriors_not_the_sequence_order_alone() -> Result<()> {
        // b's spike is late; forcing "a b" must put b there.
        let log_probs = peaky(&[1, 0, 0, 0, 0, 0, 2, 0], 3);
        let aligned = force_align(log_probs.view(), &phones(&[1, 2]))?;
        assert_eq!(spans(&aligned), vec![(1, 0, 4), (2, 4, 7)]);
        // A phone the network never fires for still gets a frame, with low confidence.
        let aligned = force_align(log_probs.view(), &phones(&[1, 2, 1]))?;
        assert_eq!(aligned.len(), 3);
        assert!(aligned[2].confidence < 0.1);
        Ok(())
    }

    #[test]
    fn impossible_and_invalid_inputs_are_errors() {
        let log_probs = peaky(&[1, 1, 2], 3);
        assert!(matches!(
            force_align(log_probs.view(), &phones(&[1, 1, 2])),
            Err(Error::AlignmentImpossible { min_frames: 4, .. })
        ));
        assert!(matches!(
            force_align(log_probs.view(), &phones(&[3])),
            Err(Error::InvalidPhoneId { id: 3, .. })
        ));
        assert!(force_align(log_probs.view(), &phones(&[0])).is_err());
        let mut nan = log_probs.clone();
        nan[[1, 1]] = f32::NAN;
        assert!(matches!(
            force_align(nan.view(), &phones(&[1])),
            Err(Error::NanLogProbs)
        ));
        let mut zero = log_probs.clone();
        zero.column_mut(2).fill(f32::NEG_INFINITY);
        assert!(force_align(zero.view(), &phones(&[2])).is_err());
        assert_eq!(
            force_align(log_probs.view(), &[]).map(|a| a.len()).ok(),
            Some(0)
        );
    }
}
