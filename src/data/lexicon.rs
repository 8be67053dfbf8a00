//! A pronunciation lexicon in CMUdict format: `WORD  P1 P2 ...`, alternates as `WORD(2)`, `;;;` comments.
//! Stress digits are ignored and phones folded to the 39-phone set ([`fold_cmudict`]); the first
//! pronunciation of a word is used.

use std::collections::HashMap;
use std::path::Path;

use super::read_text;
use crate::error::{Error, Result};
use crate::phones::fold_cmudict;

/// Words (lowercase) to folded phone names.
#[derive(Clone, Debug, Default)]
pub struct Lexicon {
    entries: HashMap<String, Vec<String>>,
}

impl Lexicon {
    /// Load a CMUdict-format file. Lines without a pronunciation are errors naming the line.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_text(path)?;
        let mut entries = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with(";;;") {
                continue;
            }
            let mut fields = line.split_whitespace();
            let Some(word) = fields.next() else { continue };
            let phones: Vec<String> = fields.map(fold_cmudict).collect();
            if phones.is_empty() {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    line: Some(index + 1),
                    reason: format!("'{word}' has no pronunciation"),
                });
            }
            // `word(2)` is an alternate pronunciation; keep the first one seen.
            let word = match word.find('(') {
                Some(p) if word.ends_with(')') && p > 0 => &word[..p],
                _ => word,
            };
            entries.entry(word.to_lowercase()).or_insert(phones);
        }
        Ok(Lexicon { entries })
    }

    /// Build from (word, phones) pairs; phones are folded like file entries.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Lexicon {
            entries: entries
                .into_iter()
                .map(|(w, p)| {
                    (
                        w.to_lowercase(),
                        p.split_whitespace().map(fold_cmudict).collect(),
                    )
                })
                .collect(),
        }
    }

    /// The pronunciation of a word (case-insensitive).
    pub fn pronounce(&self, word: &str) -> Option<&[String]> {
        self.entries.get(&word.to_lowercase()).map(Vec::as_slice)
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
            lexicon
                .transcribe(["hello", "cat", "dog", "mouse"])
                .unwrap_err(),
            ["cat", "mouse"]
        );
        std::fs::write(&path, "WORD\n").unwrap();
        assert!(Lexicon::load(&path).unwrap_err().to_string().contains(":1"));
    }
}
