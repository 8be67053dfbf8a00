//! Training and evaluation input: labeled utterances from a manifest (TSV or JSON Lines), a TIMIT-layout
//! corpus, or a Kaldi data directory with a pronunciation lexicon; and phone text without audio, for
//! phone LMs.
//!
//! Loading labeled data never stops at a bad line: each one becomes a [`DataProblem`] naming the file and line, the
//! utterance is skipped, and the caller decides how to report them.

mod kaldi;
mod lexicon;
mod manifest;
mod phone_text;
mod timit;

use std::path::{Path, PathBuf};

pub use kaldi::load_kaldi_dir;
pub use lexicon::Lexicon;
pub use manifest::{load_manifest, write_manifest};
pub use phone_text::load_phone_text;
pub use timit::{load_timit, TimitSplit, TIMIT_CORE_TEST_SPEAKERS};

use crate::error::{Error, Result};
use crate::phones::{PhoneId, PhoneSet};

/// One labeled utterance.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    /// A name unique within its dataset (the manifest line, TIMIT speaker/sentence, Kaldi utterance id).
    pub id: String,
    /// The audio file.
    pub audio: PathBuf,
    /// The reference phone sequence (no blanks).
    pub phones: Vec<PhoneId>,
}

/// A line or utterance that was skipped, and why.
#[derive(Debug)]
pub struct DataProblem(pub Error);

impl std::fmt::Display for DataProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Utterances that loaded, plus the problems met on the way.
#[derive(Debug, Default)]
pub struct Dataset {
    /// Utterances ready to use.
    pub utterances: Vec<Utterance>,
    /// Skipped lines and utterances.
    pub problems: Vec<DataProblem>,
}

impl Dataset {
    /// Number of usable utterances.
    pub fn len(&self) -> usize {
        self.utterances.len()
    }

    /// True when nothing usable was loaded.
    pub fn is_empty(&self) -> bool {
        self.utterances.is_empty()
    }

    /// Fail with the first problem if nothing at all could be loaded.
    pub fn require_some(self, source: &Path) -> Result<Self> {
        if self.utterances.is_empty() {
            let reason = match self.problems.first() {
                Some(p) => format!("no usable utterances (first problem: {p})"),
                None => "no utterances".to_string(),
            };
            return Err(Error::Parse {
                path: source.to_path_buf(),
                line: 0,
                reason,
            });
        }
        Ok(self)
    }
}

/// Where training or evaluation data comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// A TSV (`audio<TAB>phones`) or JSON Lines (`{"audio": ..., "phones": ...}`) manifest.
    Manifest(PathBuf),
    /// A TIMIT-layout root folder and which part of it.
    Timit {
        /// The folder holding TRAIN/ and TEST/.
        root: PathBuf,
        /// Which part.
        split: TimitSplit,
    },
    /// A Kaldi data directory (`wav.scp`, `text`) and a CMUdict-format lexicon.
    Kaldi {
        /// The data directory.
        dir: PathBuf,
        /// The pronunciation lexicon.
        lexicon: PathBuf,
    },
}

impl DataSource {
    /// Load the utterances, labels checked against `phones`.
    pub fn load(&self, phones: &PhoneSet) -> Result<Dataset> {
        match self {
            DataSource::Manifest(path) => load_manifest(path, phones),
            DataSource::Timit { root, split } => load_timit(root, *split, phones),
            DataSource::Kaldi { dir, lexicon } => {
                let lexicon = Lexicon::load(lexicon)?;
                load_kaldi_dir(dir, &lexicon, phones)
            }
        }
    }
}

/// Read a text file, mapping the error to one that names it.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}
