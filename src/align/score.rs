//! Pronunciation scoring: for each phone of an aligned text, how clearly the network heard that phone
//! rather than another, and what it heard instead.
//!
//! What is computed, exactly. A CTC network does not spread a phone's evidence over the phone's
//! frames, as the HMM posteriors of Witt & Young's GOP (2000) do: it fires a spike of a frame or two
//! and outputs blank around it. So instead of averaging frame posteriors over the phone, each phone's
//! evidence is its **peak**: over the phone's frames `F` (its aligned span, plus the frames the Viterbi
//! path gave it, minus the frames the path gave any other phone), `peak(c) = max_{t∈F} log P(c | t)`
//! for every phone class `c` (blank excluded). Then
//!
//! - **GOP** of the expected phone `p` = `peak(p) − max_{q≠p} peak(q)` (natural log): positive when
//!   `p` is the strongest phone there (≈ +3 for a clear spike), negative when another phone is
//!   stronger (a substitution), and low when nothing fires (a deletion: `peak(p)` itself is low).
//!   The most likely competitor is the phone "heard" — or nothing, when no phone reaches
//!   [`HEARD_MIN_PROB`] there.
//! - A phone is flagged as mispronounced when its GOP is below the threshold, or when nothing is
//!   heard over its frames (no phone reaches [`HEARD_MIN_PROB`]: a phone not said, whose GOP can
//!   still be near 0 when every peak is small). On the held-out voice's mispronunciations this
//!   flags 94.9 % of deleted phones instead of 82.3 % (substituted 96.8 % instead of 94.6 %) for
//!   8.2 % of correct ones instead of 7.9 % (models/README.md, "Pronunciation scoring").
//! - A **word's** score is the lowest GOP of its phones (one wrong phone makes a wrong word).

use std::ops::Range;

use ndarray::ArrayView2;

use super::Alignment;
use crate::ctc::AlignedPhone;
use crate::phones::{PhoneId, BLANK};

/// A phone's peak must reach this probability for the phone to count as heard.
pub const HEARD_MIN_PROB: f32 = 0.1;

/// Default GOP threshold below which a phone is flagged: between the equal-error points of
/// substitutions (−1.9) and deletions (−0.24) on the held-out voice; there it flags 94 % of
/// substituted and 85 % of deleted phones and 8.7 % of correct ones by the GOP alone (default-v9;
/// with phones where nothing is heard flagged too, default-v14: 96.8 %, 94.9 % and 8.2 %;
/// models/README.md, "Pronunciation scoring").
pub const DEFAULT_GOP_THRESHOLD: f32 = -1.0;

/// The score of one expected phone.
#[derive(Clone, Debug, PartialEq)]
pub struct PhoneScore {
    /// The phone the text expects.
    pub expected: PhoneId,
    /// Its aligned span in seconds.
    pub start_s: f32,
    /// End of the span.
    pub end_s: f32,
    /// Goodness of pronunciation (see the module documentation).
    pub gop: f32,
    /// The most likely phone over its frames, blank aside (`None` when none reaches
    /// [`HEARD_MIN_PROB`]).
    pub heard: Option<PhoneId>,
    /// Whether the GOP is below the threshold, or nothing is heard.
    pub mispronounced: bool,
}

/// The score of one word.
#[derive(Clone, Debug, PartialEq)]
pub struct WordScore {
    /// The word.
    pub word: String,
    /// Start time in seconds.
    pub start_s: f32,
    /// End time in seconds.
    pub end_s: f32,
    /// The lowest GOP of its phones.
    pub score: f32,
    /// Whether any of its phones is flagged.
    pub mispronounced: bool,
    /// Its phones: indices into [`PronunciationScores::phones`].
    pub phones: Range<usize>,
}

/// A recording scored against its text.
#[derive(Clone, Debug, PartialEq)]
pub struct PronunciationScores {
    /// The alignment the scores are computed on.
    pub alignment: Alignment,
    /// One score per expected phone, in order.
    pub phones: Vec<PhoneScore>,
    /// One score per word (empty when a phone sequence was aligned).
    pub words: Vec<WordScore>,
    /// The threshold the flags use.
    pub threshold: f32,
}

/// Score every phone of `alignment` on the posteriors it was aligned on. `spikes` are the frames the
/// Viterbi path gave each phone (one per phone of the alignment, in order).
pub fn score_pronunciation(
    alignment: Alignment,
    log_probs: ArrayView2<f32>,
    spikes: &[AlignedPhone],
    frame_shift_s: f32,
    threshold: f32,
) -> PronunciationScores {
    let (num_frames, num_classes) = log_probs.dim();
    // Which phone's spike each frame is, if any.
    let mut owner = vec![usize::MAX; num_frames];
    for (i, spike) in spikes.iter().enumerate() {
        for slot in owner
            .iter_mut()
            .take(spike.end_frame.min(num_frames))
            .skip(spike.start_frame)
        {
            *slot = i;
        }
    }
    let phones: Vec<PhoneScore> = alignment
        .phones
        .iter()
        .enumerate()
        .map(|(i, span)| {
            let first = ((span.start_s / frame_shift_s).floor() as usize).min(num_frames);
            let last = ((span.end_s / frame_shift_s).ceil() as usize).min(num_frames);
            let own = spikes
                .get(i)
                .map_or(first..first, |s| s.start_frame..s.end_frame);
            let frames = (first.min(own.start)..last.max(own.end))
                .filter(|&t| t < num_frames && (owner[t] == i || owner[t] == usize::MAX));
            let mut peak = vec![f32::NEG_INFINITY; num_classes];
            for t in frames {
                for (c, value) in peak.iter_mut().enumerate().skip(1) {
                    *value = value.max(log_probs[[t, c]]);
                }
            }
            let expected = span.phone;
            let (best_other, best_other_value) = peak
                .iter()
                .enumerate()
                .filter(|&(c, _)| c != BLANK.index() && c != expected.index())
                .fold((0, f32::NEG_INFINITY), |best, (c, &v)| {
                    if v > best.1 {
                        (c, v)
                    } else {
                        best
                    }
                });
            let own_value = peak[expected.index()];
            let gop = if own_value.is_finite() {
                own_value - best_other_value.max(-1e4)
            } else {
                f32::NEG_INFINITY
            };
            let (heard, heard_value) = if own_value >= best_other_value {
                (expected.index(), own_value)
            } else {
                (best_other, best_other_value)
            };
            PhoneScore {
                expected,
                start_s: span.start_s,
                end_s: span.end_s,
                gop,
                heard: (heard_value >= HEARD_MIN_PROB.ln()).then_some(PhoneId(heard as u16)),
                mispronounced: gop < threshold || heard_value < HEARD_MIN_PROB.ln(),
            }
        })
        .collect();
    let words = alignment
        .words
        .iter()
        .map(|word| {
            let scores = &phones[word.phones.clone()];
            let score = scores.iter().map(|p| p.gop).fold(f32::INFINITY, f32::min);
            WordScore {
                word: word.word.clone(),
                start_s: word.start_s,
                end_s: word.end_s,
                score,
                mispronounced: scores.iter().any(|p| p.mispronounced),
                phones: word.phones.clone(),
            }
        })
        .collect();
    PronunciationScores {
        alignment,
        phones,
        words,
        threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::TimedWord;
    use crate::ctc::PhoneSpan;
    use ndarray::Array2;

    /// 3 classes + blank over 9 frames at 10 ms, blank (0.97) everywhere but frame 2, which spikes
    /// class 1 (0.9). Probabilities, not logs.
    fn one_clear_spike() -> Array2<f32> {
        let mut p = Array2::from_elem((9, 4), 0.01_f32);
        for t in 0..9 {
            p[[t, 0]] = 0.97;
        }
        p[[2, 0]] = 0.07;
        p[[2, 1]] = 0.9;
        p
    }

    /// [`one_clear_spike`], and frame 6 spikes class 3 (0.8) where class 2 was expected; logs.
    fn posteriors() -> Array2<f32> {
        let mut p = one_clear_spike();
        p[[6, 0]] = 0.17;
        p[[6, 3]] = 0.8;
        p[[6, 2]] = 0.02;
        p.mapv(f32::ln)
    }

    fn alignment() -> Alignment {
        let span = |phone: u16, start_s: f32, end_s: f32| PhoneSpan {
            phone: PhoneId(phone),
            start_s,
            end_s,
            confidence: 0.5,
            alternatives: Vec::new(),
        };
        Alignment {
            source: Default::default(),
            id: None,
            offset_s: None,
            duration_s: 0.09,
            words: vec![TimedWord {
                word: "ab".into(),
                start_s: 0.0,
                end_s: 0.09,
                confidence: 0.5,
                phones: 0..2,
            }],
            phones: vec![span(1, 0.0, 0.04), span(2, 0.04, 0.09)],
            match_score: 0.0,
            worst_second_score: 0.0,
            speech_share: 1.0,
            matches_text: true,
            skipped: Vec::new(),
        }
    }

    /// The alignment's spikes: phone 1 at frame 2, phone 2 at frame 6 (with `second_confidence`).
    fn spikes(second_confidence: f32) -> [AlignedPhone; 2] {
        [
            AlignedPhone {
                phone: PhoneId(1),
                start_frame: 2,
                end_frame: 3,
                confidence: 0.9,
            },
            AlignedPhone {
                phone: PhoneId(2),
                start_frame: 6,
                end_frame: 7,
                confidence: second_confidence,
            },
        ]
    }

    #[test]
    fn a_clear_phone_scores_high_and_a_substitution_low() {
        let scores =
            score_pronunciation(alignment(), posteriors().view(), &spikes(0.02), 0.01, 0.0);
        let [first, second] = &scores.phones[..] else {
            panic!("two phones")
        };
        assert!(
            (first.gop - (0.9_f32 / 0.01).ln()).abs() < 1e-4,
            "{}",
            first.gop
        );
        assert_eq!(first.heard, Some(PhoneId(1)));
        assert!(!first.mispronounced);
        assert!(
            (second.gop - (0.02_f32 / 0.8).ln()).abs() < 1e-4,
            "{}",
            second.gop
        );
        assert_eq!(second.heard, Some(PhoneId(3)));
        assert!(second.mispronounced);
        assert_eq!(scores.words[0].score, second.gop);
        assert!(scores.words[0].mispronounced);
    }

    #[test]
    fn a_phone_where_nothing_is_heard_is_flagged_whatever_its_gop() {
        // Frames 4-8 all blank: every phone peaks at 0.01 there, so the second phone's GOP is 0
        // (above the threshold), but nothing was said.
        let p = one_clear_spike().mapv(f32::ln);
        let scores = score_pronunciation(alignment(), p.view(), &spikes(0.01), 0.01, -1.0);
        let second = &scores.phones[1];
        assert!(second.gop > -1.0, "{}", second.gop);
        assert_eq!(second.heard, None);
        assert!(second.mispronounced);
        assert!(!scores.phones[0].mispronounced);
    }
}
