//! Alignment to a known text: text -> words (normalised) -> pronunciations (lexicon, out-of-vocabulary
//! policy) -> an [`AlignTarget`], which [`Recognizer::align`](crate::recognize::Recognizer::align)
//! aligns to the audio -> an [`Alignment`] of timed words and phones; and pronunciation scores on
//! top of it ([`PronunciationScores`]).
//!
//! Text normalisation (in this order; tested below):
//! 1. Typographic apostrophes (’ ‘ ʼ) and the backtick become `'`; everything is lowercased.
//!    Transcribers' non-speech and unknown-word marks, whole tokens in brackets (`[noise]`,
//!    `[laughter]`), angle brackets (`<unk>`, `<sil>`), plus signs (`+breath+`) and `!sil`, are
//!    dropped: they are not words said (as `eval` drops them in Kaldi dirs), and split at their
//!    brackets they became the words "noise" and "unk".
//! 2. Words are split at whitespace and at every character that is not a letter, a digit, `'` or `-`
//!    (so punctuation never sticks to a word: `"Hello," she said.` → hello she said).
//! 3. A token the lexicon has is kept as it is (`'em`, `rock-n-roll`, `don't`). Otherwise leading and
//!    trailing `'` and `-` are stripped (quotes, dashes), and a token that still has a hyphen and is not
//!    in the lexicon is split at its hyphens (`well-known` → well known when the lexicon lacks the
//!    compound).
//! 4. What is left is looked up; out-of-vocabulary words follow the [`OovPolicy`].

mod score;

pub use score::{
    score_pronunciation, PhoneScore, PronunciationScores, WordScore, DEFAULT_GOP_THRESHOLD,
    HEARD_MIN_PROB,
};

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::choice::{Choice, Named};
use crate::ctc::PhoneSpan;
use crate::data::Lexicon;
use crate::error::{Error, Result};
use crate::phones::{PhoneId, PhoneSet};

/// What to do with words the lexicon does not have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OovPolicy {
    /// Refuse the text, listing every missing word (the default: an aligner should not guess).
    #[default]
    Error,
    /// Spell the word out: each letter as its name in the lexicon (`abc` → ey b iy s iy) and each
    /// digit as its word (`42` → four two). Right for acronyms and numbers read digit by digit.
    Spell,
    /// Leave the word out of the target: its audio goes to the neighbouring words' edges or to
    /// silence, and the word tier does not list it. The skipped words are reported.
    Skip,
}

impl Choice for OovPolicy {
    const CHOICES: &'static [Named<Self>] = &[
        Named {
            value: OovPolicy::Error,
            name: "error",
            help: "Refuse the text and list the missing words",
        },
        Named {
            value: OovPolicy::Spell,
            name: "spell",
            help:
                "Pronounce each letter by its name and each digit as its word (acronyms, numbers)",
        },
        Named {
            value: OovPolicy::Skip,
            name: "skip",
            help:
                "Leave the word out (its audio goes to its neighbours or to silence) and report it",
        },
    ];
}

/// One word to align, with every pronunciation the aligner may choose from.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetWord {
    /// The word as normalised (lowercase), or a phone name for [`AlignTarget::from_phones`].
    pub text: String,
    /// Its pronunciations as phone ids of the model's inventory (at least one, none empty).
    pub pronunciations: Vec<Vec<PhoneId>>,
}

/// What to align: words with their pronunciations, or a bare phone sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct AlignTarget {
    /// The words in order.
    pub words: Vec<TargetWord>,
    /// Whether the words are words of a text (false for a phone sequence: every "word" is one phone,
    /// and outputs have no word tier).
    pub has_words: bool,
    /// Out-of-vocabulary words left out under [`OovPolicy::Skip`] (each once).
    pub skipped: Vec<String>,
}

/// A transcriber's mark for non-speech or an unknown word, a whole token: `[noise]`, `<unk>`,
/// `+breath+`, `!sil` (trailing punctuation after it allowed).
fn is_transcription_mark(token: &str) -> bool {
    let token = token.trim_end_matches([',', '.', ';', ':', '!', '?']);
    let bracketed = |open: char, close: char| {
        token.len() > 2 && token.starts_with(open) && token.ends_with(close)
    };
    bracketed('[', ']') || bracketed('<', '>') || bracketed('+', '+') || token == "!sil"
}

/// The words of `text`, normalised as the module documentation says.
pub fn normalize_text(text: &str, lexicon: &Lexicon) -> Vec<String> {
    let text: String = text
        .chars()
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' => '\'',
            c => c,
        })
        .collect::<String>()
        .to_lowercase();
    let text: Vec<&str> = text
        .split_whitespace()
        .filter(|token| !is_transcription_mark(token))
        .collect();
    let text = text.join(" ");
    let mut words = Vec::new();
    for token in text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-')) {
        if token.is_empty() || lexicon.contains(token) {
            if !token.is_empty() {
                words.push(token.to_string());
            }
            continue;
        }
        let trimmed = token.trim_matches(|c| c == '\'' || c == '-');
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.contains('-') && !lexicon.contains(trimmed) {
            words.extend(
                trimmed
                    .split('-')
                    .map(|part| part.trim_matches('\''))
                    .filter(|part| !part.is_empty())
                    .map(str::to_string),
            );
        } else {
            words.push(trimmed.to_string());
        }
    }
    words
}

impl AlignTarget {
    /// Words of `text` with their pronunciations from `lexicon`, as phones of `phones`.
    ///
    /// Errors: [`Error::OutOfVocabulary`] listing every missing word under [`OovPolicy::Error`] (and
    /// under `Spell` for words that cannot be spelled: no letters or digits the lexicon knows); a
    /// lexicon phone the inventory does not have.
    pub fn from_text(
        text: &str,
        lexicon: &Lexicon,
        phones: &PhoneSet,
        oov: OovPolicy,
    ) -> Result<Self> {
        let mut words = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        let mut skipped = Vec::new();
        for word in normalize_text(text, lexicon) {
            let pronunciations = match (lexicon.pronunciations(&word), oov) {
                (Some(found), _) => found.to_vec(),
                (None, OovPolicy::Skip) => {
                    push_once(&mut skipped, word);
                    continue;
                }
                (None, OovPolicy::Spell) => match spell(&word, lexicon) {
                    Some(spelled) => vec![spelled],
                    None => {
                        push_once(&mut missing, word);
                        continue;
                    }
                },
                (None, OovPolicy::Error) => {
                    push_once(&mut missing, word);
                    continue;
                }
            };
            let pronunciations = pronunciations
                .iter()
                .map(|p| {
                    to_ids(&p.join(" "), phones).map_err(|error| match error {
                        // Named where the user can fix it: the lexicon's file and line.
                        Error::UnknownPhone { phone, .. } => {
                            let (path, line) = lexicon
                                .origin(&word)
                                .map_or((Path::new("the lexicon"), None), |(path, line)| {
                                    (path, Some(line))
                                });
                            Error::UnknownPhone {
                                phone,
                                path: path.to_path_buf(),
                                line,
                            }
                        }
                        Error::Parse { reason, .. } => match lexicon.origin(&word) {
                            Some((path, line)) => Error::Parse {
                                path: path.to_path_buf(),
                                line: Some(line),
                                reason: format!("the pronunciation of '{word}': {reason}"),
                            },
                            None => Error::Parse {
                                path: "the lexicon".into(),
                                line: None,
                                reason: format!("the pronunciation of '{word}': {reason}"),
                            },
                        },
                        other => other,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            // A word the lexicon pronounces as noise only (Kaldi's `<unk> SPN`, `um NSN`: the
            // phones fold to nothing) is not speech to align.
            let pronunciations: Vec<Vec<PhoneId>> = pronunciations
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
            if pronunciations.is_empty() {
                continue;
            }
            words.push(TargetWord {
                text: word,
                pronunciations,
            });
        }
        if !missing.is_empty() {
            return Err(Error::OutOfVocabulary { words: missing });
        }
        Ok(AlignTarget {
            words,
            has_words: true,
            skipped,
        })
    }

    /// A phone sequence (space-separated; ARPAbet with stress digits, any case, and TIMIT's 61
    /// symbols fold to the default inventory as manifests do).
    pub fn from_phones(text: &str, phones: &PhoneSet) -> Result<Self> {
        let words = to_ids(text, phones)?
            .into_iter()
            .map(|id| TargetWord {
                text: phones.name(id).to_string(),
                pronunciations: vec![vec![id]],
            })
            .collect();
        Ok(AlignTarget {
            words,
            has_words: false,
            skipped: Vec::new(),
        })
    }

    /// Every word's pronunciations, in the form the lattice aligner takes.
    pub fn pronunciations(&self) -> Vec<Vec<Vec<PhoneId>>> {
        self.words
            .iter()
            .map(|w| w.pronunciations.clone())
            .collect()
    }
}

fn push_once(list: &mut Vec<String>, word: String) {
    if !list.contains(&word) {
        list.push(word);
    }
}

/// Phone names to ids of `phones`, folding as manifests do; a phone without an id is an error.
fn to_ids(text: &str, phones: &PhoneSet) -> Result<Vec<PhoneId>> {
    let ids = phones.parse_sequence(text, Path::new("pronunciation"), 1)?;
    // `parse_sequence` drops TIMIT's glottal stop and keeps `sil`; the aligner has no silence phone
    // (pauses are the CTC blank), so `sil` in a pronunciation is dropped too.
    Ok(ids
        .into_iter()
        .filter(|id| Some(*id) != phones.silence())
        .collect())
}

/// The spelling pronunciation of `word`: letters by their names, digits as words, other characters
/// silent. `None` when nothing in it can be spelled.
fn spell(word: &str, lexicon: &Lexicon) -> Option<Vec<String>> {
    const DIGITS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    let mut phones = Vec::new();
    for c in word.chars() {
        let name = match c.to_digit(10) {
            Some(d) => DIGITS[d as usize].to_string(),
            None if c.is_alphabetic() => c.to_string(),
            None => continue,
        };
        phones.extend(lexicon.pronounce(&name)?.iter().cloned());
    }
    (!phones.is_empty()).then_some(phones)
}

/// One word of an [`Alignment`].
#[derive(Clone, Debug, PartialEq)]
pub struct TimedWord {
    /// The word (normalised).
    pub word: String,
    /// Start time in seconds (its first phone's start).
    pub start_s: f32,
    /// End time in seconds (its last phone's end).
    pub end_s: f32,
    /// Mean of its phones' confidences.
    pub confidence: f32,
    /// Its phones: indices into [`Alignment::phones`].
    pub phones: Range<usize>,
}

/// A recording aligned to its text.
#[derive(Clone, Debug, PartialEq)]
pub struct Alignment {
    /// Where the audio came from (empty for in-memory audio).
    pub source: PathBuf,
    /// The utterance id the input was listed under, if any.
    pub id: Option<String>,
    /// Where the audio starts in `source` when it is a stretch of it (a Kaldi segment), in
    /// seconds: the times count from there. `None` for a whole file.
    pub offset_s: Option<f64>,
    /// Length of the audio in seconds.
    pub duration_s: f64,
    /// The words in order (empty when a phone sequence was aligned).
    pub words: Vec<TimedWord>,
    /// Every phone in order, with its span and confidence; gaps between spans are silence.
    pub phones: Vec<PhoneSpan>,
    /// How well the audio matches the text: minus the mean log-probability per frame that forcing the
    /// text costs against the network's free choice (≤ 0, near 0 when they match; see
    /// [`LatticeAlignment::match_score`](crate::ctc::LatticeAlignment::match_score)).
    pub match_score: f64,
    /// The same over the worst second of the recording (see
    /// [`LatticeAlignment::local_match_score`](crate::ctc::LatticeAlignment::local_match_score)): low
    /// when a few words of the text are not in the audio.
    pub worst_second_score: f64,
    /// The share of the text's phones aligned where the recogniser hears speech (inside its
    /// segmentation's regions; 1 with segmentation off): near 1 when the audio says the text, 0
    /// for silence or a noise floor.
    pub speech_share: f64,
    /// Whether both scores reach the recogniser's thresholds
    /// ([`RecognizerOptions::min_match_score`](crate::recognize::RecognizerOptions::min_match_score)
    /// and [`RecognizerOptions::min_worst_second_score`](crate::recognize::RecognizerOptions::min_worst_second_score)),
    /// and [`speech_share`](Self::speech_share) reaches
    /// [`MIN_SPEECH_SHARE`](crate::recognize::MIN_SPEECH_SHARE); false means the audio probably
    /// does not say the text.
    pub matches_text: bool,
    /// Out-of-vocabulary words that were left out.
    pub skipped: Vec<String>,
}

/// The shortest span an aligned phone is given: one 10 ms frame at Kaldi's shift. A phone the text
/// expects but the audio lacks gets no frame from the aligner; left at `start == end` it could not
/// go into a TextGrid or ELAN tier (praatio refuses it), skewed duration statistics, and the
/// TextGrid's own widening put it outside its word. Its confidence (near 0) still says what it is.
pub const MIN_PHONE_S: f32 = 0.01;

impl Alignment {
    /// Give every phone at least [`MIN_PHONE_S`], taken from a neighbour in the same word that can
    /// spare it (the longer first), else from silence beside it; words keep spanning their
    /// phones. A phone with neither (squeezed between two phones of the minimum) is left as it is.
    pub fn widen_empty_phones(&mut self) {
        let groups: Vec<Range<usize>> = if self.words.is_empty() {
            std::iter::once(0..self.phones.len()).collect()
        } else {
            self.words.iter().map(|w| w.phones.clone()).collect()
        };
        let limit = self.duration_s as f32;
        for group in groups {
            for i in group.clone() {
                let need = MIN_PHONE_S - (self.phones[i].end_s - self.phones[i].start_s);
                if need <= 1e-6 {
                    continue;
                }
                self.widen_phone(i, need, &group, limit);
            }
        }
        for word in &mut self.words {
            if let (Some(first), Some(last)) = (
                self.phones.get(word.phones.start),
                word.phones
                    .end
                    .checked_sub(1)
                    .and_then(|i| self.phones.get(i)),
            ) {
                word.start_s = first.start_s;
                word.end_s = last.end_s;
            }
        }
    }

    fn widen_phone(&mut self, i: usize, need: f32, group: &Range<usize>, limit: f32) {
        let duration = |p: &PhoneSpan| p.end_s - p.start_s;
        // Neighbours in the word that touch the phone and can give `need` and keep the minimum.
        let left = (i > group.start)
            .then(|| i - 1)
            .filter(|&j| (self.phones[j].end_s - self.phones[i].start_s).abs() < 1e-4)
            .filter(|&j| duration(&self.phones[j]) - need >= MIN_PHONE_S);
        let right = (i + 1 < group.end)
            .then_some(i + 1)
            .filter(|&j| (self.phones[j].start_s - self.phones[i].end_s).abs() < 1e-4)
            .filter(|&j| duration(&self.phones[j]) - need >= MIN_PHONE_S);
        let take_left = match (left, right) {
            (Some(l), Some(r)) => duration(&self.phones[l]) >= duration(&self.phones[r]),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => {
                // Silence beside it: before it (after the previous phone, or the file's start),
                // else after it.
                let before = if i == 0 {
                    0.0
                } else {
                    self.phones[i - 1].end_s
                };
                let after = self.phones.get(i + 1).map_or(limit, |p| p.start_s);
                if self.phones[i].start_s - before >= need {
                    self.phones[i].start_s -= need;
                } else if after - self.phones[i].end_s >= need {
                    self.phones[i].end_s += need;
                }
                return;
            }
        };
        if take_left {
            self.phones[i - 1].end_s -= need;
            self.phones[i].start_s -= need;
        } else {
            self.phones[i + 1].start_s += need;
            self.phones[i].end_s += need;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start_s: f32, end_s: f32) -> PhoneSpan {
        PhoneSpan {
            phone: PhoneId(1),
            start_s,
            end_s,
            confidence: 0.5,
            alternatives: Vec::new(),
        }
    }

    fn word(phones: Range<usize>) -> TimedWord {
        TimedWord {
            word: "w".into(),
            start_s: 0.0,
            end_s: 0.0,
            confidence: 0.5,
            phones,
        }
    }

    #[test]
    fn an_empty_phone_takes_ten_ms_from_its_word_and_words_keep_their_phones() {
        let mut alignment = Alignment {
            source: PathBuf::new(),
            id: None,
            offset_s: None,
            duration_s: 2.0,
            // Word 1: a 100 ms phone, an empty one, an empty one, a 40 ms phone. Word 2, after
            // a pause: an empty first phone, then 50 ms. Word 3: one empty phone touching word 2.
            phones: vec![
                span(0.2, 0.3),
                span(0.3, 0.3),
                span(0.3, 0.3),
                span(0.3, 0.34),
                span(0.6, 0.6),
                span(0.6, 0.65),
                span(0.65, 0.65),
            ],
            words: vec![word(0..4), word(4..6), word(6..7)],
            match_score: 0.0,
            worst_second_score: 0.0,
            speech_share: 1.0,
            matches_text: true,
            skipped: Vec::new(),
        };
        alignment.widen_empty_phones();
        let times: Vec<(f32, f32)> = alignment
            .phones
            .iter()
            .map(|p| (p.start_s, p.end_s))
            .collect();
        let expected = [
            (0.2, 0.29), // gave 10 ms to the next (the longer neighbour)
            (0.29, 0.3), // from the left
            (0.3, 0.31), // its left neighbour had no time to spare: from the right
            (0.31, 0.34),
            (0.6, 0.61), // the first of its word: from its word before the pause beside it
            (0.61, 0.65),
            (0.65, 0.66), // alone in its word: from the silence after it
        ];
        for ((got, want), i) in times.iter().zip(expected).zip(0..) {
            assert!(
                (got.0 - want.0).abs() < 1e-5 && (got.1 - want.1).abs() < 1e-5,
                "phone {i}: {got:?} against {want:?}"
            );
        }
        for word in &alignment.words {
            assert_eq!(word.start_s, alignment.phones[word.phones.start].start_s);
            assert_eq!(word.end_s, alignment.phones[word.phones.end - 1].end_s);
        }
        assert!(alignment
            .phones
            .iter()
            .all(|p| p.end_s - p.start_s >= MIN_PHONE_S - 1e-6));
    }

    fn lexicon() -> Lexicon {
        Lexicon::from_entries([
            ("hello", "HH AH0 L OW1"),
            ("hello", "HH EH0 L OW1"),
            ("world", "W ER1 L D"),
            ("don't", "D OW1 N T"),
            ("'em", "AH0 M"),
            ("well", "W EH1 L"),
            ("known", "N OW1 N"),
            ("rock-n-roll", "R AA1 K AH0 N R OW1 L"),
            ("a", "EY1"),
            ("b", "B IY1"),
            ("c", "S IY1"),
            ("four", "F AO1 R"),
            ("two", "T UW1"),
        ])
    }

    #[test]
    fn words_the_lexicon_pronounces_as_noise_are_not_aligned() {
        let mut lexicon = lexicon();
        lexicon.override_with(Lexicon::from_entries([("um", "SPN"), ("uh", "NSN")]));
        let target = AlignTarget::from_text(
            "um hello uh world",
            &lexicon,
            &PhoneSet::timit39(),
            OovPolicy::Error,
        )
        .unwrap();
        let words: Vec<&str> = target.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(words, ["hello", "world"]);
    }

    #[test]
    fn transcribers_marks_are_not_words() {
        let lexicon = lexicon();
        assert_eq!(
            normalize_text(
                "[NOISE] Hello <UNK> world, [laughter]. +BREATH+ !SIL well",
                &lexicon
            ),
            ["hello", "world", "well"]
        );
    }

    #[test]
    fn a_lexicon_phone_the_model_lacks_is_named_by_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("my.dict");
        std::fs::write(&path, "foo F UW1\nxyzzy S EH1 V ZZ N\n").unwrap();
        let mut lexicon = lexicon();
        lexicon.override_with(Lexicon::load(&path).unwrap());
        let phones = PhoneSet::timit39();
        let error = AlignTarget::from_text("hello xyzzy", &lexicon, &phones, OovPolicy::Error)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("my.dict:2") && error.contains("'zz'"),
            "{error}"
        );
    }

    #[test]
    fn text_is_normalised_case_punctuation_apostrophes_hyphens() {
        let lexicon = lexicon();
        assert_eq!(
            normalize_text(
                "\"Hello,\" World! Don’t — tell 'em: rock-n-roll; well-known 'quoted'",
                &lexicon
            ),
            [
                "hello",
                "world",
                "don't",
                "tell",
                "'em",
                "rock-n-roll",
                "well",
                "known",
                "quoted"
            ]
        );
        assert_eq!(
            normalize_text("  ... -- ''  ", &lexicon),
            Vec::<String>::new()
        );
        assert_eq!(normalize_text("end.Next", &lexicon), ["end", "next"]);
    }

    #[test]
    fn every_pronunciation_reaches_the_target() -> Result<()> {
        let phones = PhoneSet::timit39();
        let target = AlignTarget::from_text("Hello world", &lexicon(), &phones, OovPolicy::Error)?;
        assert!(target.has_words);
        assert_eq!(target.words.len(), 2);
        assert_eq!(target.words[0].pronunciations.len(), 2);
        assert_eq!(
            phones.format_sequence(&target.words[1].pronunciations[0]),
            "w er l d"
        );
        Ok(())
    }

    #[test]
    fn out_of_vocabulary_words_error_spell_or_skip() -> Result<()> {
        let phones = PhoneSet::timit39();
        let lexicon = lexicon();
        let err = AlignTarget::from_text(
            "hello ABC world xyz abc",
            &lexicon,
            &phones,
            OovPolicy::Error,
        )
        .unwrap_err();
        assert!(matches!(&err, Error::OutOfVocabulary { words } if words == &["abc", "xyz"]));
        assert!(err.to_string().contains("--lexicon"), "{err}");
        let spelled = AlignTarget::from_text("abc 42", &lexicon, &phones, OovPolicy::Spell)?;
        assert_eq!(
            phones.format_sequence(&spelled.words[0].pronunciations[0]),
            "ey b iy s iy"
        );
        assert_eq!(
            phones.format_sequence(&spelled.words[1].pronunciations[0]),
            "f aa r t uw"
        );
        // "xyz" has letters the lexicon cannot name: still an error under spell.
        assert!(AlignTarget::from_text("xyz", &lexicon, &phones, OovPolicy::Spell).is_err());
        let skipped =
            AlignTarget::from_text("hello xyz world", &lexicon, &phones, OovPolicy::Skip)?;
        assert_eq!(skipped.words.len(), 2);
        assert_eq!(skipped.skipped, ["xyz"]);
        Ok(())
    }

    #[test]
    fn phone_targets_fold_like_manifests() -> Result<()> {
        let phones = PhoneSet::timit39();
        let target = AlignTarget::from_phones("HH AH0 L OW1 zh ix", &phones)?;
        assert!(!target.has_words);
        let names: Vec<_> = target.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(names, ["hh", "ah", "l", "ow", "sh", "ih"]);
        assert!(AlignTarget::from_phones("hh qqq", &phones).is_err());
        Ok(())
    }
}
