//! Stage 4 (decoding), best-path decoding: log-probs [frames, classes] -> phones.
//!
//! Takes the most likely class of each frame, collapses runs of the same class and drops blanks
//! (Graves et al. 2006, "best path decoding"). Fast and usually within a fraction of a point of PER of
//! the beam search when no language model is used.

use ndarray::ArrayView2;

use super::beam::Hypothesis;
use super::decoder::Decoder;
use crate::phones::{PhoneId, BLANK};

/// Best-path (greedy) CTC decoder. Has no options.
#[derive(Clone, Copy, Debug, Default)]
pub struct GreedyDecoder;

impl Decoder for GreedyDecoder {
    fn decode(&self, log_probs: ArrayView2<f32>) -> Vec<PhoneId> {
        let mut phones = Vec::new();
        let mut previous = None;
        for row in log_probs.rows() {
            let best = argmax(row.iter().copied());
            if best != previous && best != Some(BLANK) {
                if let Some(phone) = best {
                    phones.push(phone);
                }
            }
            previous = best;
        }
        phones
    }

    /// The best path alone, scored by its log-probability (the sum of each frame's largest).
    fn hypotheses(&self, log_probs: ArrayView2<f32>) -> Vec<Hypothesis> {
        let path_log_prob: f64 = log_probs
            .rows()
            .into_iter()
            .map(|row| {
                row.iter()
                    .copied()
                    .filter(|v| !v.is_nan())
                    .fold(f32::NEG_INFINITY, f32::max)
            })
            .map(f64::from)
            .sum();
        vec![Hypothesis {
            phones: self.decode(log_probs),
            score: path_log_prob,
            acoustic_log_prob: path_log_prob,
            lm_log_prob: 0.0,
        }]
    }
}

/// Index of the largest value (the first one on ties; NaN never wins), `None` for an empty row.
fn argmax(row: impl Iterator<Item = f32>) -> Option<PhoneId> {
    let mut best: Option<(usize, f32)> = None;
    for (index, value) in row.enumerate() {
        if value.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| value > b) {
            best = Some((index, value));
        }
    }
    // Output rows never exceed the PhoneSet's u16 range.
    best.map(|(index, _)| PhoneId(index as u16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctc::testing::peaky;
    use ndarray::Array2;

    #[test]
    fn collapses_repeats_and_drops_blanks() {
        // "- a a - a b b -": a blank separates the two a's.
        let log_probs = peaky(&[0, 1, 1, 0, 1, 2, 2, 0], 3);
        let phones = GreedyDecoder.decode(log_probs.view());
        assert_eq!(phones, vec![PhoneId(1), PhoneId(1), PhoneId(2)]);
    }

    #[test]
    fn empty_and_all_blank_inputs_decode_to_nothing() {
        assert!(GreedyDecoder
            .decode(Array2::zeros((0, 4)).view())
            .is_empty());
        assert!(GreedyDecoder
            .decode(Array2::zeros((5, 0)).view())
            .is_empty());
        assert!(GreedyDecoder.decode(peaky(&[0, 0, 0], 3).view()).is_empty());
    }

    #[test]
    fn nan_never_wins() {
        let mut log_probs = peaky(&[2], 3);
        log_probs[[0, 0]] = f32::NAN;
        assert_eq!(GreedyDecoder.decode(log_probs.view()), vec![PhoneId(2)]);
    }
}
