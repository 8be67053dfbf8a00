//! Stage 4 (alignment to a known text): log-probs `[frames, classes]` + words, each with one or more
//! pronunciations -> the pronunciation the audio supports for each word, and a frame span per phone
//! and per word.
//!
//! The CTC topology of [`force_align`](super::force_align) generalised to a lattice: for each word
//! the states of every pronunciation side by side (phone, blank, phone, ..., phone), a blank between
//! words that may be skipped (unless the phones either side are equal), and paths that enter any
//! pronunciation of a word from the end of any pronunciation of the word before. One Viterbi pass
//! chooses the pronunciations and the timing together.
//!
//! The pass is beam-pruned so that an hour of audio with its transcript aligns in one piece: only
//! states within [`LatticeOptions::beam`] of the frame's best score are extended. States are numbered
//! in the lattice's left-to-right order and every edge goes forward, so the live states at a frame
//! are one contiguous window that slides along the text; memory is frames × window width, not frames
//! × states. If pruning loses every complete path, the pass is repeated with a beam
//! [`RETRY_BEAM_FACTOR`] times wider, then without pruning when that fits in
//! [`MAX_UNPRUNED_CELLS`]; else it is an error ([`Error::AlignmentLost`]).

use std::ops::Range;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::align::{spans_from_spikes, AlignedPhone};
use crate::error::{Error, Result};
use crate::phones::{PhoneId, BLANK};

/// The pronunciations of one word of an alignment target (at least one, none empty).
pub type Pronunciations = Vec<Vec<PhoneId>>;

/// How to align.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatticeOptions {
    /// Viterbi beam in nats: states more than this below the frame's best are dropped. Default 200:
    /// a wrong path loses several nats per frame against the network's peaky posteriors, but where
    /// audio and text disagree (a word said differently, spelled out, missing) the right path can
    /// fall far behind for a while; 60 lost every path on an hour with a few such words, 240 kept it
    /// at the same speed. `f64::INFINITY` turns pruning off.
    pub beam: f64,
    /// A phone next to a pause takes at most this many frames of the blank run beside it; the rest of
    /// a long blank run between two phones belongs to neither (silence). Default 3 (60 ms at 20 ms
    /// frames). Short runs are split between the two phones, as [`force_align`](super::force_align)
    /// does.
    pub max_blank_frames_per_side: usize,
}

impl Default for LatticeOptions {
    fn default() -> Self {
        LatticeOptions {
            beam: 200.0,
            max_blank_frames_per_side: 3,
        }
    }
}

/// How much wider the beam is on the second try.
pub const RETRY_BEAM_FACTOR: f64 = 5.0;

/// Without pruning, the Viterbi back-pointers take frames × states cells of 4 bytes; beyond this
/// (1 GB) an alignment that the beam lost is an error rather than a retry.
pub const MAX_UNPRUNED_CELLS: usize = 250_000_000;

/// One word of a [`LatticeAlignment`], in frames.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlignedWord {
    /// Which of the word's pronunciations the audio chose (index into its [`Pronunciations`]).
    pub pronunciation: usize,
    /// The word's phones: indices into [`LatticeAlignment::phones`].
    pub phones: Range<usize>,
    /// First frame (its first phone's start).
    pub start_frame: usize,
    /// One past the last frame (its last phone's end).
    pub end_frame: usize,
}

/// The best path through the lattice of a word sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct LatticeAlignment {
    /// The phones of the chosen pronunciations, in order, with spans and confidences.
    pub phones: Vec<AlignedPhone>,
    /// One entry per input word, in order.
    pub words: Vec<AlignedWord>,
    /// Log-probability of the best path that spells the words (natural log).
    pub log_likelihood: f64,
    /// Log-probability of the best path with no constraint (each frame's most likely class): the
    /// forced path can only be worse, and is much worse when the audio does not say the words.
    pub unconstrained_log_likelihood: f64,
    /// Per frame, what the forced path loses against the frame's most likely class (≥ 0): where the
    /// audio and the text disagree.
    pub frame_costs: Vec<f32>,
}

impl LatticeAlignment {
    /// Mean log-probability per frame that the text costs against what the network hears freely:
    /// `(forced - unconstrained) / frames`, ≤ 0. Near 0 when the audio says the text; far below when
    /// it does not (wrong file, missing or extra words).
    pub fn match_score(&self, num_frames: usize) -> f64 {
        if num_frames == 0 {
            return 0.0;
        }
        (self.log_likelihood - self.unconstrained_log_likelihood) / num_frames as f64
    }

    /// The worst local match: minus the highest mean [`frame_costs`](Self::frame_costs) over any
    /// `window` consecutive frames (the whole recording when it is shorter), ≤ 0. A word missing from
    /// the text or a word the audio does not say costs a second of audio a lot while the recording's
    /// mean hardly moves.
    pub fn local_match_score(&self, window: usize) -> f64 {
        let n = self.frame_costs.len();
        if n == 0 {
            return 0.0;
        }
        let window = window.clamp(1, n);
        let mut sum: f64 = self.frame_costs[..window]
            .iter()
            .map(|&c| f64::from(c))
            .sum();
        let mut worst = sum;
        for t in window..n {
            sum += f64::from(self.frame_costs[t]) - f64::from(self.frame_costs[t - window]);
            worst = worst.max(sum);
        }
        -(worst / window as f64).max(0.0)
    }
}

/// What a lattice state emits and, for phone states, where it comes from in the target.
#[derive(Clone, Copy, Debug)]
enum StateKind {
    Blank,
    Phone { word: usize, pronunciation: usize },
}

/// The lattice of a word sequence, states in topological (left-to-right) order.
struct Lattice {
    class: Vec<usize>,
    kind: Vec<StateKind>,
    /// Predecessors of state s (besides itself): `preds[pred_start[s]..pred_start[s + 1]]`.
    pred_start: Vec<usize>,
    preds: Vec<usize>,
    /// `reach[s]`: the highest state any of states 0..=s leads to (non-decreasing).
    reach: Vec<usize>,
    starts: Vec<usize>,
    finals: Vec<usize>,
}

impl Lattice {
    fn new(words: &[Pronunciations]) -> Self {
        let mut lattice = Lattice {
            class: Vec::new(),
            kind: Vec::new(),
            pred_start: vec![0],
            preds: Vec::new(),
            reach: Vec::new(),
            starts: vec![0],
            finals: Vec::new(),
        };
        let mut previous_blank = lattice.push(StateKind::Blank, BLANK.index(), &[]);
        // Last phone state of each pronunciation of the previous word, with its class.
        let mut previous_ends: Vec<(usize, usize)> = Vec::new();
        for (w, pronunciations) in words.iter().enumerate() {
            let mut ends = Vec::with_capacity(pronunciations.len());
            for (p, phones) in pronunciations.iter().enumerate() {
                let kind = StateKind::Phone {
                    word: w,
                    pronunciation: p,
                };
                let mut last_phone: Option<usize> = None;
                let mut last_blank = previous_blank;
                for (i, phone) in phones.iter().enumerate() {
                    let class = phone.index();
                    let mut preds = vec![last_blank];
                    match last_phone {
                        Some(prev) if lattice.class[prev] != class => preds.push(prev),
                        Some(_) => {}
                        None => preds.extend(
                            previous_ends
                                .iter()
                                .filter(|&&(_, c)| c != class)
                                .map(|&(s, _)| s),
                        ),
                    }
                    let state = lattice.push(kind, class, &preds);
                    if w == 0 && i == 0 {
                        lattice.starts.push(state);
                    }
                    if i + 1 < phones.len() {
                        last_blank = lattice.push(StateKind::Blank, BLANK.index(), &[state]);
                    }
                    last_phone = Some(state);
                }
                if let Some(state) = last_phone {
                    ends.push((state, lattice.class[state]));
                }
            }
            let ends_only: Vec<usize> = ends.iter().map(|&(s, _)| s).collect();
            previous_blank = lattice.push(StateKind::Blank, BLANK.index(), &ends_only);
            previous_ends = ends;
        }
        lattice.finals.push(previous_blank);
        lattice.finals.extend(previous_ends.iter().map(|&(s, _)| s));
        // reach: each state reaches itself and its successors; then a running maximum.
        let num_states = lattice.class.len();
        lattice.reach = (0..num_states).collect();
        for s in 0..num_states {
            for &p in &lattice.preds[lattice.pred_start[s]..lattice.pred_start[s + 1]] {
                lattice.reach[p] = lattice.reach[p].max(s);
            }
        }
        for s in 1..num_states {
            lattice.reach[s] = lattice.reach[s].max(lattice.reach[s - 1]);
        }
        lattice
    }

    fn push(&mut self, kind: StateKind, class: usize, preds: &[usize]) -> usize {
        self.class.push(class);
        self.kind.push(kind);
        self.preds.extend_from_slice(preds);
        self.pred_start.push(self.preds.len());
        self.class.len() - 1
    }

    fn num_states(&self) -> usize {
        self.class.len()
    }

    fn preds(&self, s: usize) -> &[usize] {
        &self.preds[self.pred_start[s]..self.pred_start[s + 1]]
    }
}

/// Align `words` (each with its pronunciations) to natural-log posteriors `log_probs` `[frames,
/// classes]` (blank = class 0): the best path chooses one pronunciation per word and times every
/// phone. Spans follow [`AlignedPhone`], except that a blank run longer than twice
/// [`LatticeOptions::max_blank_frames_per_side`] is silence beyond that many frames on each side.
///
/// Errors: a word without pronunciations, an empty pronunciation, a blank or out-of-range phone, NaN
/// log-probs, or no path (too few frames, or zero probability).
pub fn force_align_words(
    log_probs: ArrayView2<f32>,
    words: &[Pronunciations],
    options: &LatticeOptions,
) -> Result<LatticeAlignment> {
    let (num_frames, num_classes) = log_probs.dim();
    for (w, pronunciations) in words.iter().enumerate() {
        if pronunciations.is_empty() || pronunciations.iter().any(Vec::is_empty) {
            return Err(Error::InvalidOptions {
                what: "alignment target",
                reason: format!("word {} has an empty pronunciation", w + 1),
            });
        }
        if let Some(bad) = pronunciations
            .iter()
            .flatten()
            .find(|p| **p == BLANK || p.index() >= num_classes)
        {
            return Err(Error::InvalidPhoneId {
                id: bad.0,
                num_classes,
            });
        }
    }
    if log_probs.iter().any(|x| x.is_nan()) {
        return Err(Error::NanLogProbs);
    }
    let unconstrained_log_likelihood: f64 = log_probs
        .rows()
        .into_iter()
        .map(|row| f64::from(row.iter().copied().fold(f32::NEG_INFINITY, f32::max)))
        .sum();
    let lattice = Lattice::new(words);
    let path = match viterbi(log_probs, &lattice, options.beam) {
        Some(path) => path,
        None if options.beam.is_finite()
            && num_frames.saturating_mul(lattice.num_states()) <= MAX_UNPRUNED_CELLS =>
        {
            viterbi(log_probs, &lattice, f64::INFINITY)
                .ok_or_else(|| impossible(words, num_frames))?
        }
        None => return Err(impossible(words, num_frames)),
    };

    // Phone occurrences along the path: states are unique per occurrence, and the path visits them
    // in order.
    let mut occurrences: Vec<(usize, usize, usize, f64)> = Vec::new(); // state, first, last, posterior sum
    for (t, &s) in path.states.iter().enumerate() {
        if let StateKind::Phone { .. } = lattice.kind[s] {
            let posterior = f64::from(log_probs[[t, lattice.class[s]]]).exp();
            match occurrences.last_mut() {
                Some(o) if o.0 == s => {
                    o.2 = t;
                    o.3 += posterior;
                }
                _ => occurrences.push((s, t, t, posterior)),
            }
        }
    }
    let frame_costs: Vec<f32> = path
        .states
        .iter()
        .enumerate()
        .map(|(t, &s)| {
            let row = log_probs.row(t);
            let best = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            (best - row[lattice.class[s]]).max(0.0)
        })
        .collect();
    let first: Vec<usize> = occurrences.iter().map(|o| o.1).collect();
    let last: Vec<usize> = occurrences.iter().map(|o| o.2).collect();
    let bounds = spans_from_spikes(&first, &last, Some(options.max_blank_frames_per_side));
    let mut phones = Vec::with_capacity(occurrences.len());
    let mut aligned_words: Vec<AlignedWord> = Vec::with_capacity(words.len());
    for (i, &(s, first, last, posterior_sum)) in occurrences.iter().enumerate() {
        let (start_frame, end_frame) = bounds[i];
        phones.push(AlignedPhone {
            phone: PhoneId(lattice.class[s] as u16),
            start_frame,
            end_frame,
            confidence: (posterior_sum / (last + 1 - first) as f64) as f32,
        });
        let StateKind::Phone {
            word,
            pronunciation,
        } = lattice.kind[s]
        else {
            unreachable!("occurrences hold phone states only");
        };
        if word == aligned_words.len() {
            aligned_words.push(AlignedWord {
                pronunciation,
                phones: i..i + 1,
                start_frame,
                end_frame,
            });
        } else if let Some(current) = aligned_words.last_mut() {
            current.phones.end = i + 1;
            current.end_frame = end_frame;
        }
    }
    debug_assert_eq!(aligned_words.len(), words.len());
    Ok(LatticeAlignment {
        phones,
        words: aligned_words,
        log_likelihood: path.log_likelihood,
        unconstrained_log_likelihood,
        frame_costs,
    })
}

fn impossible(words: &[Pronunciations], num_frames: usize) -> Error {
    let shortest: Vec<PhoneId> = words
        .iter()
        .filter_map(|p| p.iter().min_by_key(|v| v.len()))
        .flatten()
        .copied()
        .collect();
    Error::AlignmentImpossible {
        num_phones: shortest.len(),
        num_frames,
        min_frames: super::min_frames(&shortest),
    }
}

/// The best path: its state at every frame and its log-probability.
struct Path {
    states: Vec<usize>,
    log_likelihood: f64,
}

/// Beam-pruned Viterbi over `lattice`; `None` when no complete path survives (or none exists).
fn viterbi(log_probs: ArrayView2<f32>, lattice: &Lattice, beam: f64) -> Option<Path> {
    let num_frames = log_probs.nrows();
    let num_states = lattice.num_states();
    if num_frames == 0 {
        return None;
    }
    let mut score = vec![f64::NEG_INFINITY; num_states];
    let mut next = vec![f64::NEG_INFINITY; num_states];
    for &s in &lattice.starts {
        score[s] = f64::from(log_probs[[0, lattice.class[s]]]);
    }
    // The live window [lo, hi) of the current frame.
    let mut lo = 0;
    let mut hi = lattice.starts.iter().max().map_or(1, |&s| s + 1);
    // Back-pointers of frame t (t ≥ 1) for states window_lo[t].. : back[back_start[t]..].
    let mut window_lo = vec![0_usize; num_frames];
    let mut back_start = vec![0_usize; num_frames + 1];
    let mut back: Vec<u32> = Vec::new();
    for t in 1..num_frames {
        let row = log_probs.row(t);
        let new_hi = lattice.reach[hi - 1] + 1;
        window_lo[t] = lo;
        back_start[t] = back.len();
        let mut frame_best = f64::NEG_INFINITY;
        for s in lo..new_hi {
            let (mut best, mut from) = (score[s], s);
            for &p in lattice.preds(s) {
                if p >= lo && score[p] > best {
                    best = score[p];
                    from = p;
                }
            }
            let value = best + f64::from(row[lattice.class[s]]);
            next[s] = value;
            back.push(from as u32);
            frame_best = frame_best.max(value);
        }
        back_start[t + 1] = back.len();
        if frame_best == f64::NEG_INFINITY {
            return None;
        }
        let threshold = frame_best - beam;
        let new_lo = (lo..new_hi).find(|&s| next[s] >= threshold).unwrap_or(lo);
        let pruned_hi = (new_lo..new_hi)
            .rev()
            .find(|&s| next[s] >= threshold)
            .map_or(new_hi, |s| s + 1);
        score[lo..hi].fill(f64::NEG_INFINITY);
        next[lo..new_lo].fill(f64::NEG_INFINITY);
        next[pruned_hi..new_hi].fill(f64::NEG_INFINITY);
        std::mem::swap(&mut score, &mut next);
        lo = new_lo;
        hi = pruned_hi;
    }
    let (end_state, log_likelihood) = lattice
        .finals
        .iter()
        .map(|&s| (s, score[s]))
        .filter(|&(_, v)| v > f64::NEG_INFINITY)
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let mut states = vec![0_usize; num_frames];
    let mut state = end_state;
    for t in (1..num_frames).rev() {
        states[t] = state;
        state = back[back_start[t] + (state - window_lo[t])] as usize;
    }
    states[0] = state;
    Some(Path {
        states,
        log_likelihood,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctc::force_align;
    use crate::ctc::testing::peaky;

    fn ids(ids: &[u16]) -> Vec<PhoneId> {
        ids.iter().map(|&i| PhoneId(i)).collect()
    }

    fn one(ids_: &[u16]) -> Pronunciations {
        vec![ids(ids_)]
    }

    #[test]
    fn a_single_pronunciation_aligns_as_the_plain_ctc_aligner_does() -> Result<()> {
        // frames:  0 1 2 3 4 5 6 7 8 9
        let log_probs = peaky(&[0, 0, 1, 1, 0, 0, 0, 2, 0, 0], 4);
        let options = LatticeOptions {
            max_blank_frames_per_side: 100,
            ..LatticeOptions::default()
        };
        let words = [one(&[1]), one(&[2])];
        let lattice = force_align_words(log_probs.view(), &words, &options)?;
        let plain = force_align(log_probs.view(), &ids(&[1, 2]))?;
        assert_eq!(lattice.phones, plain);
        assert_eq!(lattice.words.len(), 2);
        assert_eq!(
            (lattice.words[0].start_frame, lattice.words[0].end_frame),
            (2, 6)
        );
        assert_eq!(lattice.words[1].phones, 1..2);
        // Equal phones across a word boundary need the blank between them.
        let log_probs = peaky(&[1, 1, 0, 1], 4);
        let lattice = force_align_words(log_probs.view(), &[one(&[1]), one(&[1])], &options)?;
        assert_eq!(lattice.phones.len(), 2);
        assert!(lattice.phones[0].end_frame <= lattice.phones[1].start_frame);
        Ok(())
    }

    #[test]
    fn the_audio_chooses_the_pronunciation() -> Result<()> {
        // "1 3 2" is said; the first word is listed as "2 1" or "1 3".
        let log_probs = peaky(&[0, 1, 0, 3, 3, 0, 2, 0], 4);
        let words = [vec![ids(&[2, 1]), ids(&[1, 3])], one(&[2])];
        let lattice = force_align_words(log_probs.view(), &words, &LatticeOptions::default())?;
        assert_eq!(lattice.words[0].pronunciation, 1);
        assert_eq!(
            lattice.phones.iter().map(|p| p.phone.0).collect::<Vec<_>>(),
            [1, 3, 2]
        );
        // The path spells exactly what the posteriors say: nothing lost against the free path.
        assert!(lattice.match_score(8).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn long_blank_runs_become_silence_and_mismatches_score_low() -> Result<()> {
        let mut path = vec![0_u16; 30];
        path[2] = 1;
        path[25] = 2;
        let log_probs = peaky(&path, 4);
        let words = [one(&[1]), one(&[2])];
        let lattice = force_align_words(log_probs.view(), &words, &LatticeOptions::default())?;
        let spans: Vec<_> = lattice
            .phones
            .iter()
            .map(|p| (p.start_frame, p.end_frame))
            .collect();
        assert_eq!(spans, [(2, 6), (22, 26)]);
        let matched = lattice.match_score(30);
        let wrong = force_align_words(
            log_probs.view(),
            &[one(&[3]), one(&[3])],
            &LatticeOptions::default(),
        )?;
        assert!(
            wrong.match_score(30) < matched - 0.1,
            "{} vs {matched}",
            wrong.match_score(30)
        );
        // Locally: the two wrong frames cost a 2-frame window far more than the whole file.
        assert!(wrong.local_match_score(2) < 5.0 * wrong.match_score(30));
        assert!(lattice.local_match_score(2).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn pruning_keeps_the_best_path_on_a_long_target() -> Result<()> {
        // 400 words of 2 phones over 2000 frames: pruned and unpruned agree.
        let pattern = [0_u16, 1, 0, 0, 2, 0, 3, 3, 0, 0];
        let path: Vec<u16> = pattern.iter().cycle().take(2000).copied().collect();
        let log_probs = peaky(&path, 4);
        let words: Vec<Pronunciations> = (0..200)
            .flat_map(|_| [one(&[1, 2]), vec![ids(&[3]), ids(&[2, 3])]])
            .collect();
        let pruned = force_align_words(log_probs.view(), &words, &LatticeOptions::default())?;
        let full = force_align_words(
            log_probs.view(),
            &words,
            &LatticeOptions {
                beam: f64::INFINITY,
                ..LatticeOptions::default()
            },
        )?;
        assert_eq!(pruned, full);
        assert_eq!(pruned.phones.len(), 600);
        Ok(())
    }

    #[test]
    fn bad_targets_are_errors() {
        let log_probs = peaky(&[1, 2], 3);
        let options = LatticeOptions::default();
        assert!(force_align_words(log_probs.view(), &[vec![]], &options).is_err());
        assert!(force_align_words(log_probs.view(), &[vec![vec![]]], &options).is_err());
        assert!(force_align_words(log_probs.view(), &[one(&[0])], &options).is_err());
        assert!(force_align_words(log_probs.view(), &[one(&[5])], &options).is_err());
        assert!(matches!(
            force_align_words(log_probs.view(), &[one(&[1]), one(&[1])], &options),
            Err(Error::AlignmentImpossible { min_frames: 3, .. })
        ));
        let empty = force_align_words(log_probs.view(), &[], &options).unwrap();
        assert!(empty.phones.is_empty() && empty.words.is_empty());
    }
}
