//! Evaluation: reference and hypothesis phone sequences -> phone error rate (PER) with substitution,
//! deletion and insertion counts, per-phone error rates and the most frequent confusions.
//!
//! Sequences are aligned by Levenshtein distance with unit costs, as NIST sclite and Kaldi
//! `compute-wer` do; PER = (S + D + I) / N with N the number of reference phones. Among alignments of
//! equal cost the backtrace prefers substitutions over deletions over insertions, so counts are
//! reproducible.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

use crate::phones::PhoneId;

/// One step of an alignment of a reference with a hypothesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EditOp {
    /// The same phone on both sides.
    Match(PhoneId),
    /// A reference phone recognised as another.
    Substitution {
        /// The phone that was said.
        reference: PhoneId,
        /// The phone that was recognised.
        hypothesis: PhoneId,
    },
    /// A reference phone missing from the hypothesis.
    Deletion(PhoneId),
    /// A hypothesis phone with no reference counterpart.
    Insertion(PhoneId),
}

/// A minimum-edit-distance alignment of `reference` with `hypothesis`, in order.
pub fn align_sequences(reference: &[PhoneId], hypothesis: &[PhoneId]) -> Vec<EditOp> {
    let (n, m) = (reference.len(), hypothesis.len());
    let width = m + 1;
    // distance[i * width + j]: edit distance between reference[..i] and hypothesis[..j].
    let mut distance = vec![0_usize; (n + 1) * width];
    for i in 0..=n {
        distance[i * width] = i;
    }
    for (j, first_row) in distance[..width].iter_mut().enumerate() {
        *first_row = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let diagonal = distance[(i - 1) * width + j - 1]
                + usize::from(reference[i - 1] != hypothesis[j - 1]);
            let deletion = distance[(i - 1) * width + j] + 1;
            let insertion = distance[i * width + j - 1] + 1;
            distance[i * width + j] = diagonal.min(deletion).min(insertion);
        }
    }
    let mut ops = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        let here = distance[i * width + j];
        if i > 0 && j > 0 {
            let same = reference[i - 1] == hypothesis[j - 1];
            if here == distance[(i - 1) * width + j - 1] + usize::from(!same) {
                ops.push(if same {
                    EditOp::Match(reference[i - 1])
                } else {
                    EditOp::Substitution {
                        reference: reference[i - 1],
                        hypothesis: hypothesis[j - 1],
                    }
                });
                i -= 1;
                j -= 1;
                continue;
            }
        }
        if i > 0 && here == distance[(i - 1) * width + j] + 1 {
            ops.push(EditOp::Deletion(reference[i - 1]));
            i -= 1;
        } else {
            ops.push(EditOp::Insertion(hypothesis[j - 1]));
            j -= 1;
        }
    }
    ops.reverse();
    ops
}

/// Edit counts of one or many utterances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditCounts {
    /// N: phones in the references.
    pub reference_phones: usize,
    /// Reference phones recognised correctly.
    pub matches: usize,
    /// S: reference phones recognised as another phone.
    pub substitutions: usize,
    /// D: reference phones missing from the hypothesis.
    pub deletions: usize,
    /// I: hypothesis phones with no reference counterpart.
    pub insertions: usize,
}

impl EditCounts {
    /// Counts the operations of an alignment.
    pub fn from_ops(ops: &[EditOp]) -> Self {
        let mut counts = EditCounts::default();
        for op in ops {
            match op {
                EditOp::Match(_) => counts.matches += 1,
                EditOp::Substitution { .. } => counts.substitutions += 1,
                EditOp::Deletion(_) => counts.deletions += 1,
                EditOp::Insertion(_) => counts.insertions += 1,
            }
        }
        counts.reference_phones = counts.matches + counts.substitutions + counts.deletions;
        counts
    }

    /// S + D + I.
    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// Phone error rate (S + D + I) / N, a fraction (may exceed 1 with many insertions). With no
    /// reference phones at all the denominator is taken as 1, so the rate stays finite.
    pub fn per(&self) -> f64 {
        self.errors() as f64 / self.reference_phones.max(1) as f64
    }

    fn add(&mut self, other: &EditCounts) {
        self.reference_phones += other.reference_phones;
        self.matches += other.matches;
        self.substitutions += other.substitutions;
        self.deletions += other.deletions;
        self.insertions += other.insertions;
    }
}

/// Errors involving one phone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneErrors {
    /// Times the phone occurs in the references.
    pub occurrences: usize,
    /// Times it was recognised as another phone.
    pub substitutions: usize,
    /// Times it was missed.
    pub deletions: usize,
    /// Times it was inserted where the reference had nothing.
    pub insertions: usize,
}

impl PhoneErrors {
    /// (substitutions + deletions) / occurrences: how often this phone, when said, was not recognised.
    /// 0 for a phone that never occurs in the references.
    pub fn error_rate(&self) -> f64 {
        if self.occurrences == 0 {
            0.0
        } else {
            (self.substitutions + self.deletions) as f64 / self.occurrences as f64
        }
    }
}

/// A reference phone recognised as another, and how often.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// The phone that was said.
    pub reference: PhoneId,
    /// The phone that was recognised.
    pub hypothesis: PhoneId,
    /// Times this substitution happened.
    pub count: usize,
}

/// PER statistics accumulated over many utterances. Serializes (e.g. to JSON) as the PER, the totals,
/// the per-phone errors with their rates and every confusion, most frequent first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerStats {
    num_utterances: usize,
    counts: EditCounts,
    per_phone: BTreeMap<PhoneId, PhoneErrors>,
    confusions: BTreeMap<(PhoneId, PhoneId), usize>,
}

impl PerStats {
    /// Empty statistics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Aligns one utterance's hypothesis with its reference, adds it in, and returns its own counts.
    pub fn add(&mut self, reference: &[PhoneId], hypothesis: &[PhoneId]) -> EditCounts {
        let ops = align_sequences(reference, hypothesis);
        for op in &ops {
            match *op {
                EditOp::Match(phone) => self.phone(phone).occurrences += 1,
                EditOp::Substitution {
                    reference,
                    hypothesis,
                } => {
                    let errors = self.phone(reference);
                    errors.occurrences += 1;
                    errors.substitutions += 1;
                    *self.confusions.entry((reference, hypothesis)).or_default() += 1;
                }
                EditOp::Deletion(phone) => {
                    let errors = self.phone(phone);
                    errors.occurrences += 1;
                    errors.deletions += 1;
                }
                EditOp::Insertion(phone) => self.phone(phone).insertions += 1,
            }
        }
        let counts = EditCounts::from_ops(&ops);
        self.counts.add(&counts);
        self.num_utterances += 1;
        counts
    }

    /// Adds statistics gathered elsewhere (e.g. on another thread).
    pub fn merge(&mut self, other: &PerStats) {
        self.num_utterances += other.num_utterances;
        self.counts.add(&other.counts);
        for (phone, errors) in &other.per_phone {
            let mine = self.phone(*phone);
            mine.occurrences += errors.occurrences;
            mine.substitutions += errors.substitutions;
            mine.deletions += errors.deletions;
            mine.insertions += errors.insertions;
        }
        for (pair, count) in &other.confusions {
            *self.confusions.entry(*pair).or_default() += count;
        }
    }

    /// The phone error rate over everything added (see [`EditCounts::per`]).
    pub fn per(&self) -> f64 {
        self.counts.per()
    }

    /// Total counts.
    pub fn counts(&self) -> &EditCounts {
        &self.counts
    }

    /// Utterances added.
    pub fn num_utterances(&self) -> usize {
        self.num_utterances
    }

    /// Errors of each phone seen in a reference or a hypothesis, by phone id.
    pub fn per_phone(&self) -> &BTreeMap<PhoneId, PhoneErrors> {
        &self.per_phone
    }

    /// The `n` most frequent substitutions, most frequent first (ties by phone ids).
    pub fn top_confusions(&self, n: usize) -> Vec<Confusion> {
        let mut confusions: Vec<Confusion> = self
            .confusions
            .iter()
            .map(|(&(reference, hypothesis), &count)| Confusion {
                reference,
                hypothesis,
                count,
            })
            .collect();
        // Stable sort: equal counts keep the map's (reference, hypothesis) order.
        confusions.sort_by_key(|c| std::cmp::Reverse(c.count));
        confusions.truncate(n);
        confusions
    }

    fn phone(&mut self, phone: PhoneId) -> &mut PhoneErrors {
        self.per_phone.entry(phone).or_default()
    }
}

/// The JSON shape of [`PerStats`].
#[derive(Serialize)]
struct PerStatsJson<'a> {
    per: f64,
    num_utterances: usize,
    counts: &'a EditCounts,
    per_phone: Vec<PhoneErrorsJson<'a>>,
    confusions: Vec<Confusion>,
}

#[derive(Serialize)]
struct PhoneErrorsJson<'a> {
    phone: PhoneId,
    error_rate: f64,
    #[serde(flatten)]
    errors: &'a PhoneErrors,
}

impl Serialize for PerStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PerStatsJson {
            per: self.per(),
            num_utterances: self.num_utterances,
            counts: &self.counts,
            per_phone: self
                .per_phone
                .iter()
                .map(|(&phone, errors)| PhoneErrorsJson {
                    phone,
                    error_rate: errors.error_rate(),
                    errors,
                })
                .collect(),
            confusions: self.top_confusions(usize::MAX),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rates are small fractions computed from exact counts.
    const RATE_TOLERANCE: f64 = 1e-12;

    /// Phones from letters: 'a' -> 1, 'b' -> 2, ...; spaces ignored.
    fn seq(letters: &str) -> Vec<PhoneId> {
        letters
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| PhoneId(c as u16 - 'a' as u16 + 1))
            .collect()
    }

    fn counts(reference: &str, hypothesis: &str) -> (usize, usize, usize, usize) {
        let c = EditCounts::from_ops(&align_sequences(&seq(reference), &seq(hypothesis)));
        (
            c.reference_phones,
            c.substitutions,
            c.deletions,
            c.insertions,
        )
    }

    #[test]
    fn hand_made_alignments() {
        // (N, S, D, I), worked out by hand.
        assert_eq!(counts("abcd", "abcd"), (4, 0, 0, 0));
        assert_eq!(counts("abcd", "axcde"), (4, 1, 0, 1));
        assert_eq!(counts("abc", ""), (3, 0, 3, 0));
        assert_eq!(counts("", "ab"), (0, 0, 0, 2));
        // kitten -> sitting: k/s and e/i substituted, g inserted.
        assert_eq!(counts("kitten", "sitting"), (6, 2, 0, 1));
        // A deletion in the middle: "a b c d e" -> "a b d e".
        assert_eq!(counts("abcde", "abde"), (5, 0, 1, 0));
    }

    #[test]
    fn alignment_ops_are_in_order() {
        let ops = align_sequences(&seq("abc"), &seq("xbcd"));
        assert_eq!(
            ops,
            vec![
                EditOp::Substitution {
                    reference: PhoneId(1),
                    hypothesis: PhoneId(24)
                },
                EditOp::Match(PhoneId(2)),
                EditOp::Match(PhoneId(3)),
                EditOp::Insertion(PhoneId(4)),
            ]
        );
    }

    #[test]
    fn per_accumulates_over_utterances() {
        let mut stats = PerStats::new();
        let first = stats.add(&seq("abcd"), &seq("axcde")); // 2 errors / 4
        assert!((first.per() - 0.5).abs() < RATE_TOLERANCE);
        stats.add(&seq("abab"), &seq("axab")); // b -> x again: 1 / 4
        stats.add(&seq("cc"), &seq("c")); // one c deleted: 1 / 2
        assert_eq!(stats.num_utterances(), 3);
        assert_eq!(stats.counts().reference_phones, 10);
        assert!((stats.per() - 4.0 / 10.0).abs() < RATE_TOLERANCE);

        let b = stats.per_phone()[&PhoneId(2)];
        assert_eq!((b.occurrences, b.substitutions), (3, 2));
        assert!((b.error_rate() - 2.0 / 3.0).abs() < RATE_TOLERANCE);
        assert_eq!(stats.per_phone()[&PhoneId(5)].insertions, 1);
        let top = stats.top_confusions(1);
        assert_eq!(
            top,
            vec![Confusion {
                reference: PhoneId(2),
                hypothesis: PhoneId(24),
                count: 2
            }]
        );

        let mut merged = PerStats::new();
        let mut other = PerStats::new();
        merged.add(&seq("abcd"), &seq("axcde"));
        other.add(&seq("abab"), &seq("axab"));
        other.add(&seq("cc"), &seq("c"));
        merged.merge(&other);
        assert_eq!(merged, stats);
    }

    #[test]
    fn no_reference_phones_keeps_per_finite() {
        let mut stats = PerStats::new();
        assert_eq!(stats.per(), 0.0);
        stats.add(&[], &seq("a"));
        assert_eq!(stats.per(), 1.0);
    }

    #[test]
    fn json_has_per_counts_and_confusions() {
        let mut stats = PerStats::new();
        stats.add(&seq("ab"), &seq("ac"));
        let json: serde_json::Value = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["per"], 0.5);
        assert_eq!(json["counts"]["substitutions"], 1);
        assert_eq!(json["confusions"][0]["reference"], 2);
        assert_eq!(json["confusions"][0]["hypothesis"], 3);
        assert_eq!(json["per_phone"][1]["phone"], 2);
        assert_eq!(json["per_phone"][1]["error_rate"], 1.0);
    }
}
