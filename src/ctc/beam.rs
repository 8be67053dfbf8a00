//! Stage 4 (decoding), CTC prefix beam search: log-probs [frames, classes] -> n-best phone sequences.
//!
//! Follows Hannun et al. (2014), "First-pass large vocabulary continuous speech recognition using
//! bi-directional recurrent DNNs": each prefix keeps two probabilities, of the paths ending in a blank
//! and of those ending in its last phone, so every alignment of a prefix is summed, not only the best.
//! A phone n-gram LM joins by shallow fusion: a prefix is ranked by
//! `ln P_ctc(prefix) + α · ln P_lm(prefix) + β · |prefix|`, the LM's `</s>` added at the end.
//! Prefixes are nodes of a trie, so extending one never copies its phones.

use ndarray::ArrayView2;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::decoder::Decoder;
use super::lm::{LmState, PhoneLm};
use super::logmath::log_add;
use crate::error::{Error, Result};
use crate::phones::{PhoneId, BLANK};

/// Options of [`PrefixBeamDecoder`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BeamOptions {
    /// Prefixes kept after each frame. Default 16: for ~40 phones, wider beams rarely change the result
    /// without an LM; with one, 32–64 can gain a little at proportional cost.
    pub beam_width: usize,
    /// Hypotheses returned by [`PrefixBeamDecoder::decode_nbest`] (at most `beam_width`). Default 1.
    pub num_best: usize,
    /// Frames whose blank log-prob (natural log) exceeds this are passed over as pure blank frames, which
    /// saves most of the work on peaky CTC output. Default `None` (every frame searched); `Some(-0.001)`
    /// (blank above 99.9%) is a safe start.
    pub blank_skip_log_prob: Option<f32>,
    /// Phones whose log-prob (natural log) at a frame is below this are not tried as extensions at that
    /// frame: on peaky CTC output most phones are, and the search gets several times faster. Default
    /// `Some(-10.0)` (probability 4.5e-5, which cannot win against the alternatives); `None` tries every
    /// phone at every frame (exact within the beam).
    pub min_phone_log_prob: Option<f32>,
    /// LM weight α: how much the phone LM's log-probability counts against the acoustic one. Default 0.5;
    /// tune on dev data. Ignored without an LM.
    pub lm_weight: f32,
    /// Insertion bonus β, in nats per phone, added to every prefix's score; counters the LM's preference
    /// for short outputs (raise it when deletions dominate). Default 0.0. Used with or without an LM.
    pub insertion_bonus: f32,
}

impl Default for BeamOptions {
    fn default() -> Self {
        BeamOptions {
            beam_width: 16,
            num_best: 1,
            blank_skip_log_prob: None,
            min_phone_log_prob: Some(-10.0),
            lm_weight: 0.5,
            insertion_bonus: 0.0,
        }
    }
}

/// One entry of an n-best list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    /// The phones, blanks removed and repeats collapsed.
    pub phones: Vec<PhoneId>,
    /// The ranking score: `acoustic_log_prob + α · lm_log_prob + β · phones.len()`.
    pub score: f64,
    /// ln P(phones | audio) under the CTC model, summed over the alignments the beam kept.
    pub acoustic_log_prob: f64,
    /// ln P_lm(phones, `</s>`); 0 without an LM.
    pub lm_log_prob: f64,
}

/// Widest beam: beyond a few hundred hypotheses the result no longer changes, only the time.
pub const MAX_BEAM_WIDTH: usize = 4096;

/// CTC prefix beam search with an optional phone n-gram LM.
#[derive(Clone, Debug)]
pub struct PrefixBeamDecoder {
    options: BeamOptions,
    lm: Option<PhoneLm>,
}

impl PrefixBeamDecoder {
    /// Checks the options; `lm` enables shallow fusion with weight `options.lm_weight`.
    pub fn new(options: BeamOptions, lm: Option<PhoneLm>) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidOptions {
            what: "beam search",
            reason,
        };
        if !(1..=MAX_BEAM_WIDTH).contains(&options.beam_width) {
            return Err(invalid(format!(
                "beam_width must be in 1..={MAX_BEAM_WIDTH}, got {}",
                options.beam_width
            )));
        }
        if options.num_best == 0 || options.num_best > options.beam_width {
            return Err(invalid(format!(
                "num_best must be in 1..={} (the beam width), got {}",
                options.beam_width, options.num_best
            )));
        }
        if !options.lm_weight.is_finite() || !options.insertion_bonus.is_finite() {
            return Err(invalid(
                "lm_weight and insertion_bonus must be finite".to_string(),
            ));
        }
        for (name, value) in [
            ("blank_skip_log_prob", options.blank_skip_log_prob),
            ("min_phone_log_prob", options.min_phone_log_prob),
        ] {
            if value.is_some_and(|x| x.is_nan() || x > 0.0) {
                return Err(invalid(format!("{name} is a log-probability: at most 0")));
            }
        }
        Ok(PrefixBeamDecoder { options, lm })
    }

    /// The options in use.
    pub fn options(&self) -> &BeamOptions {
        &self.options
    }

    /// The best `options.num_best` hypotheses for natural-log posteriors `log_probs` `[frames, classes]`
    /// (blank = class 0), best first. Never empty: with no frames the single hypothesis is empty.
    pub fn decode_nbest(&self, log_probs: ArrayView2<f32>) -> Vec<Hypothesis> {
        let mut search = Search::new(self);
        // Rows of a non-standard-layout view are copied here, into one reused buffer.
        let mut copied_row = Vec::new();
        for row in log_probs.rows() {
            let row = match row.to_slice() {
                Some(slice) => slice,
                None => {
                    copied_row.clear();
                    copied_row.extend(row.iter().copied());
                    &copied_row
                }
            };
            search.advance(row);
        }
        search.finish()
    }
}

impl Decoder for PrefixBeamDecoder {
    fn decode(&self, log_probs: ArrayView2<f32>) -> Vec<PhoneId> {
        self.decode_nbest(log_probs)
            .into_iter()
            .next()
            .map(|best| best.phones)
            .unwrap_or_default()
    }

    fn hypotheses(&self, log_probs: ArrayView2<f32>) -> Vec<Hypothesis> {
        self.decode_nbest(log_probs)
    }
}

/// A prefix in the trie: its last phone and its parent.
struct Node {
    parent: usize,
    phone: PhoneId,
    length: usize,
    lm_state: Option<LmState>,
    /// ln P_lm(phones of this prefix), without `</s>`.
    lm_log_prob: f64,
}

/// A prefix alive in the beam, with the two CTC probabilities of Hannun et al.
#[derive(Clone, Copy)]
struct Beam {
    node: usize,
    /// ln P(prefix, the last frame was a blank).
    blank: f64,
    /// ln P(prefix, the last frame was its last phone).
    non_blank: f64,
}

/// A prefix reached at the next frame: a node already in the trie, or an extension not yet materialised.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Prefix {
    Node(usize),
    Extension { parent: usize, phone: PhoneId },
}

/// The state of one decoding: the trie and the beam. Buffers are reused from frame to frame.
struct Search<'a> {
    decoder: &'a PrefixBeamDecoder,
    nodes: Vec<Node>,
    children: FxHashMap<(usize, PhoneId), usize>,
    beam: Vec<Beam>,
    /// Probabilities (blank, non-blank) of the prefixes reached at the next frame.
    next: FxHashMap<Prefix, (f64, f64)>,
    /// The ranked candidates of `next`.
    ranked: Vec<(f64, Prefix, f64, f64)>,
    /// ln P_lm(phone | LM state) and the state after it, for each (state, phone) already scored:
    /// a prefix in the beam is extended by the same phones at every frame it stays there, and
    /// prefixes that differ only before the LM's context share their scores. Each score is a
    /// search of the LM's trie (7 % of an hour of short clips' time before this memo).
    lm_memo: FxHashMap<(LmState, PhoneId), (f64, LmState)>,
}

const ROOT: usize = 0;

impl<'a> Search<'a> {
    fn new(decoder: &'a PrefixBeamDecoder) -> Self {
        let root = Node {
            parent: ROOT,
            phone: BLANK,
            length: 0,
            lm_state: decoder.lm.as_ref().map(PhoneLm::start),
            lm_log_prob: 0.0,
        };
        Search {
            decoder,
            nodes: vec![root],
            children: FxHashMap::default(),
            beam: vec![Beam {
                node: ROOT,
                blank: 0.0,
                non_blank: f64::NEG_INFINITY,
            }],
            next: FxHashMap::default(),
            ranked: Vec::new(),
            lm_memo: FxHashMap::default(),
        }
    }

    /// Consumes one frame of log-probs.
    fn advance(&mut self, row: &[f32]) {
        if row.is_empty() {
            return;
        }
        let blank_log_prob = f64::from(row[BLANK.index()]);
        if let Some(threshold) = self.decoder.options.blank_skip_log_prob {
            if row[BLANK.index()] > threshold {
                // Treat the frame as blank-only: every prefix now ends in a blank.
                for beam in &mut self.beam {
                    beam.blank = log_add(beam.blank, beam.non_blank) + blank_log_prob;
                    beam.non_blank = f64::NEG_INFINITY;
                }
                return;
            }
        }
        let min_phone_log_prob = self
            .decoder
            .options
            .min_phone_log_prob
            .unwrap_or(f32::NEG_INFINITY);
        self.next.clear();
        for &Beam {
            node,
            blank,
            non_blank,
        } in &self.beam
        {
            let total = log_add(blank, non_blank);
            let last = self.nodes[node].phone;
            // Stay on the same prefix through a blank ...
            add(
                &mut self.next,
                Prefix::Node(node),
                total + blank_log_prob,
                f64::NEG_INFINITY,
            );
            // ... or by repeating its last phone (collapsed).
            if node != ROOT {
                let repeat = non_blank + f64::from(row[last.index()]);
                add(
                    &mut self.next,
                    Prefix::Node(node),
                    f64::NEG_INFINITY,
                    repeat,
                );
            }
            for (class, &log_prob) in row.iter().enumerate().skip(1) {
                if log_prob < min_phone_log_prob {
                    continue;
                }
                // Posterior rows never exceed the PhoneSet's u16 range.
                let phone = PhoneId(class as u16);
                // A repeated phone only starts a new one after a blank.
                let source = if phone == last && node != ROOT {
                    blank
                } else {
                    total
                };
                let extended = source + f64::from(log_prob);
                let prefix = match self.children.get(&(node, phone)) {
                    Some(&child) => Prefix::Node(child),
                    None => Prefix::Extension {
                        parent: node,
                        phone,
                    },
                };
                add(&mut self.next, prefix, f64::NEG_INFINITY, extended);
            }
        }
        self.prune();
    }

    /// Keeps the `beam_width` best prefixes of `next`, materialising new ones in the trie.
    fn prune(&mut self) {
        let options = &self.decoder.options;
        self.ranked.clear();
        for (&prefix, &(blank, non_blank)) in &self.next {
            let (lm_log_prob, length) = match prefix {
                Prefix::Node(node) => (self.nodes[node].lm_log_prob, self.nodes[node].length),
                Prefix::Extension { parent, phone } => {
                    let node = &self.nodes[parent];
                    let step = lm_step(self.decoder, &mut self.lm_memo, node, phone).0;
                    (node.lm_log_prob + step, node.length + 1)
                }
            };
            // `ln P_ctc + α · ln P_lm + β · length` of the prefix (without `</s>`).
            let score = log_add(blank, non_blank)
                + f64::from(options.lm_weight) * lm_log_prob
                + f64::from(options.insertion_bonus) * length as f64;
            self.ranked.push((score, prefix, blank, non_blank));
        }
        // Best first; ties broken by the prefix so the result never depends on hash order.
        let order = |a: &(f64, Prefix, f64, f64), b: &(f64, Prefix, f64, f64)| {
            b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
        };
        if self.ranked.len() > options.beam_width {
            self.ranked
                .select_nth_unstable_by(options.beam_width - 1, order);
            self.ranked.truncate(options.beam_width);
        }
        self.ranked.sort_unstable_by(order);
        self.beam.clear();
        for index in 0..self.ranked.len() {
            let (_, prefix, blank, non_blank) = self.ranked[index];
            let node = match prefix {
                Prefix::Node(node) => node,
                Prefix::Extension { parent, phone } => self.add_node(parent, phone),
            };
            self.beam.push(Beam {
                node,
                blank,
                non_blank,
            });
        }
    }

    fn add_node(&mut self, parent: usize, phone: PhoneId) -> usize {
        let (lm_log_prob, lm_state) =
            lm_step(self.decoder, &mut self.lm_memo, &self.nodes[parent], phone);
        let node = Node {
            parent,
            phone,
            length: self.nodes[parent].length + 1,
            lm_state,
            lm_log_prob: self.nodes[parent].lm_log_prob + lm_log_prob,
        };
        self.nodes.push(node);
        let index = self.nodes.len() - 1;
        self.children.insert((parent, phone), index);
        index
    }

    /// The n-best list: the beam re-ranked with the LM's `</s>`.
    fn finish(self) -> Vec<Hypothesis> {
        let options = &self.decoder.options;
        let mut hypotheses: Vec<Hypothesis> = self
            .beam
            .iter()
            .map(|beam| {
                let node = &self.nodes[beam.node];
                let lm_log_prob = match (&self.decoder.lm, &node.lm_state) {
                    (Some(lm), Some(state)) => node.lm_log_prob + lm.score_end(state),
                    _ => 0.0,
                };
                let acoustic_log_prob = log_add(beam.blank, beam.non_blank);
                let mut phones = Vec::with_capacity(node.length);
                let mut at = beam.node;
                while at != ROOT {
                    phones.push(self.nodes[at].phone);
                    at = self.nodes[at].parent;
                }
                phones.reverse();
                Hypothesis {
                    score: acoustic_log_prob
                        + f64::from(options.lm_weight) * lm_log_prob
                        + f64::from(options.insertion_bonus) * phones.len() as f64,
                    phones,
                    acoustic_log_prob,
                    lm_log_prob,
                }
            })
            .collect();
        hypotheses.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.phones.cmp(&b.phones)));
        hypotheses.truncate(options.num_best);
        hypotheses
    }
}

/// ln P_lm(phone | parent's history) and the LM state after it (through `memo`); 0 without an LM.
fn lm_step(
    decoder: &PrefixBeamDecoder,
    memo: &mut FxHashMap<(LmState, PhoneId), (f64, LmState)>,
    parent: &Node,
    phone: PhoneId,
) -> (f64, Option<LmState>) {
    match (&decoder.lm, &parent.lm_state) {
        (Some(lm), Some(state)) => {
            let (log_prob, next) = *memo
                .entry((*state, phone))
                .or_insert_with(|| lm.score(state, phone));
            (log_prob, Some(next))
        }
        _ => (0.0, None),
    }
}

/// Adds probability mass (log domain) to a prefix of the next frame.
fn add(next: &mut FxHashMap<Prefix, (f64, f64)>, prefix: Prefix, blank: f64, non_blank: f64) {
    let slot = next
        .entry(prefix)
        .or_insert((f64::NEG_INFINITY, f64::NEG_INFINITY));
    slot.0 = log_add(slot.0, blank);
    slot.1 = log_add(slot.1, non_blank);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctc::testing::peaky;
    use crate::ctc::GreedyDecoder;
    use crate::phones::PhoneSet;
    use ndarray::{array, Array2};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Sums of a handful of log-probs in f64.
    const LOG_PROB_TOLERANCE: f64 = 1e-9;

    fn phones(ids: &[u16]) -> Vec<PhoneId> {
        ids.iter().map(|&i| PhoneId(i)).collect()
    }

    /// ln P(sequence | log_probs) by brute force: every frame labelling, collapsed, that spells it.
    fn brute_force_log_prob(log_probs: &Array2<f32>, sequence: &[PhoneId]) -> f64 {
        let (frames, classes) = log_probs.dim();
        let mut total = f64::NEG_INFINITY;
        for code in 0..classes.pow(frames as u32) {
            let mut path = Vec::with_capacity(frames);
            let mut rest = code;
            for _ in 0..frames {
                path.push(rest % classes);
                rest /= classes;
            }
            let mut collapsed = Vec::new();
            let mut previous = None;
            for &class in &path {
                if Some(class) != previous && class != 0 {
                    collapsed.push(PhoneId(class as u16));
                }
                previous = Some(class);
            }
            if collapsed == sequence {
                let log_prob: f64 = path
                    .iter()
                    .enumerate()
                    .map(|(t, &k)| f64::from(log_probs[[t, k]]))
                    .sum();
                total = log_add(total, log_prob);
            }
        }
        total
    }

    fn random_log_probs(rng: &mut StdRng, frames: usize, classes: usize) -> Array2<f32> {
        let mut log_probs =
            Array2::from_shape_fn((frames, classes), |_| rng.gen_range(-3.0_f32..3.0));
        for mut row in log_probs.rows_mut() {
            let norm = row.mapv(f32::exp).sum().ln();
            row.mapv_inplace(|x| x - norm);
        }
        log_probs
    }

    #[test]
    fn prefix_probabilities_sum_all_alignments() -> Result<()> {
        // With a beam wide enough to keep every prefix, each hypothesis' acoustic score is the exact
        // CTC probability of its phones, which brute force over all 3^5 labellings gives too.
        let mut rng = StdRng::seed_from_u64(21);
        let log_probs = random_log_probs(&mut rng, 5, 3);
        let options = BeamOptions {
            beam_width: 100,
            num_best: 10,
            min_phone_log_prob: None,
            ..BeamOptions::default()
        };
        let decoder = PrefixBeamDecoder::new(options, None)?;
        let nbest = decoder.decode_nbest(log_probs.view());
        assert_eq!(nbest.len(), 10);
        for pair in nbest.windows(2) {
            assert!(pair[0].score >= pair[1].score);
        }
        for hypothesis in &nbest {
            let exact = brute_force_log_prob(&log_probs, &hypothesis.phones);
            assert!((hypothesis.acoustic_log_prob - exact).abs() < LOG_PROB_TOLERANCE);
            assert_eq!(hypothesis.score, hypothesis.acoustic_log_prob);
        }
        Ok(())
    }

    #[test]
    fn beam_beats_greedy_when_alignments_add_up() -> Result<()> {
        // Per frame, blank is the single best class (0.4 vs 0.35 for a vs 0.25 for b), so greedy outputs
        // nothing, but "a" summed over its alignments aa, a-, -a (0.35² + 2 · 0.35 · 0.4 ≈ 0.40) beats the
        // empty sequence (0.4² = 0.16).
        let row = [0.4_f32.ln(), 0.35_f32.ln(), 0.25_f32.ln()];
        let log_probs = Array2::from_shape_fn((2, 3), |(_, k)| row[k]);
        assert!(GreedyDecoder.decode(log_probs.view()).is_empty());
        let decoder = PrefixBeamDecoder::new(BeamOptions::default(), None)?;
        assert_eq!(decoder.decode(log_probs.view()), phones(&[1]));
        Ok(())
    }

    #[test]
    fn peaky_posteriors_decode_like_greedy_with_and_without_blank_skipping() -> Result<()> {
        let path = [0, 0, 1, 1, 0, 1, 2, 0, 0, 3, 3, 0];
        let log_probs = peaky(&path, 4);
        let want = GreedyDecoder.decode(log_probs.view());
        assert_eq!(want, phones(&[1, 1, 2, 3]));
        for skip in [None, Some(0.8_f32.ln())] {
            let options = BeamOptions {
                beam_width: 4,
                blank_skip_log_prob: skip,
                ..BeamOptions::default()
            };
            let decoder = PrefixBeamDecoder::new(options, None)?;
            assert_eq!(decoder.decode(log_probs.view()), want, "skip {skip:?}");
        }
        Ok(())
    }

    #[test]
    fn lm_and_insertion_bonus_change_the_ranking() -> Result<()> {
        // The acoustics slightly prefer "b" over "a" in one frame; an LM trained on "a" flips that.
        let log_probs = array![[0.05_f32.ln(), 0.45_f32.ln(), 0.5_f32.ln()]];
        let plain = PrefixBeamDecoder::new(BeamOptions::default(), None)?;
        assert_eq!(plain.decode(log_probs.view()), phones(&[2]));

        let set = PhoneSet::from_phones(["a".to_string(), "b".to_string()])?;
        let lm = PhoneLm::estimate(&vec![phones(&[1]); 20], &set, 2)?;
        let options = BeamOptions {
            lm_weight: 1.0,
            num_best: 2,
            ..BeamOptions::default()
        };
        let fused = PrefixBeamDecoder::new(options.clone(), Some(lm.clone()))?;
        let nbest = fused.decode_nbest(log_probs.view());
        assert_eq!(nbest[0].phones, phones(&[1]));
        let want_lm = lm.sentence_log_prob(&phones(&[1]));
        assert!((nbest[0].lm_log_prob - want_lm).abs() < LOG_PROB_TOLERANCE);
        assert!(
            (nbest[0].score - (nbest[0].acoustic_log_prob + want_lm)).abs() < LOG_PROB_TOLERANCE
        );

        // Blank dominates two frames: the empty output wins, until a large insertion bonus.
        let log_probs = array![[0.9_f32.ln(), 0.1_f32.ln()], [0.9_f32.ln(), 0.1_f32.ln()]];
        let plain = PrefixBeamDecoder::new(BeamOptions::default(), None)?;
        assert!(plain.decode(log_probs.view()).is_empty());
        let bonus = BeamOptions {
            insertion_bonus: 3.0,
            ..BeamOptions::default()
        };
        let eager = PrefixBeamDecoder::new(bonus, None)?;
        assert!(!eager.decode(log_probs.view()).is_empty());
        Ok(())
    }

    #[test]
    fn bad_options_are_refused_and_empty_input_decodes_to_nothing() -> Result<()> {
        let with = |options: BeamOptions| PrefixBeamDecoder::new(options, None);
        assert!(with(BeamOptions {
            beam_width: 0,
            ..BeamOptions::default()
        })
        .is_err());
        assert!(with(BeamOptions {
            num_best: 17,
            ..BeamOptions::default()
        })
        .is_err());
        assert!(with(BeamOptions {
            lm_weight: f32::NAN,
            ..BeamOptions::default()
        })
        .is_err());
        assert!(with(BeamOptions {
            blank_skip_log_prob: Some(0.5),
            ..BeamOptions::default()
        })
        .is_err());
        assert!(with(BeamOptions {
            min_phone_log_prob: Some(f32::NAN),
            ..BeamOptions::default()
        })
        .is_err());
        let decoder = with(BeamOptions::default())?;
        let nbest = decoder.decode_nbest(Array2::zeros((0, 5)).view());
        assert_eq!(nbest.len(), 1);
        assert!(nbest[0].phones.is_empty());
        Ok(())
    }
}
