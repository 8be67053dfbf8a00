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

pub use kaldi::{
    decoded_file, kaldi_dir_audio, load_kaldi_dir, read_segments, read_wav_scp,
    transcripts_are_phones, KaldiDirAudio, KaldiSegment, KaldiUtteranceAudio, ScpEntry, Segments,
    WavScp,
};
pub use lexicon::Lexicon;
pub use manifest::{load_manifest, write_manifest, UtteranceIds};
pub use phone_text::load_phone_text;
pub use timit::{load_timit, TimitSplit, TIMIT_CORE_TEST_SPEAKERS};

use crate::audio::{AudioPiece, AudioSpan};
use crate::error::{Error, Result};
use crate::phones::{PhoneId, PhoneSet};

/// One labeled utterance.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    /// A name unique within its dataset (the manifest line, TIMIT speaker/sentence, Kaldi utterance id).
    pub id: String,
    /// The audio file.
    pub audio: PathBuf,
    /// The stretch of the file that is this utterance (a Kaldi `segments` line); `None` for the
    /// whole file.
    pub span: Option<AudioSpan>,
    /// The reference phone sequence (no blanks).
    pub phones: Vec<PhoneId>,
    /// One channel of the file (counted from 0), as a Kaldi `wav.scp` line `sph2pipe -c 2 FILE |`
    /// asks; `None`: the channels mixed (or the reader's choice).
    pub channel: Option<usize>,
}

impl Utterance {
    /// What to read for this utterance ([`crate::audio::read_audio_pieces`] reads many at once,
    /// each file once).
    pub fn piece(&self) -> AudioPiece<'_> {
        AudioPiece {
            path: &self.audio,
            span: self.span,
            channel: self.channel,
        }
    }
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
    /// How the data was read where that was decided from its content (e.g. a Kaldi `text` of
    /// phones rather than words), for the user to check.
    pub notes: Vec<String>,
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
                line: None,
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
        /// A pronunciation lexicon: its words' pronunciations replace the built-in CMUdict's
        /// ([`Lexicon::built_in`]) and its other words are added, as in `align`.
        lexicon: Option<PathBuf>,
        /// Whether the built-in CMUdict is used at all (false: `lexicon` alone).
        built_in_lexicon: bool,
    },
}

impl DataSource {
    /// Load the utterances, labels checked against `phones`.
    pub fn load(&self, phones: &PhoneSet) -> Result<Dataset> {
        match self {
            DataSource::Manifest(path) => load_manifest(path, phones),
            DataSource::Timit { root, split } => load_timit(root, *split, phones),
            DataSource::Kaldi {
                dir,
                lexicon,
                built_in_lexicon,
            } => {
                let mut merged = if *built_in_lexicon {
                    Lexicon::built_in()?
                } else {
                    Lexicon::default()
                };
                if let Some(path) = lexicon {
                    merged.override_with(Lexicon::load(path)?);
                }
                let lexicon = merged;
                load_kaldi_dir(dir, &lexicon, phones)
            }
        }
    }
}

/// Read a text file (manifests, lists, lexicons, transcripts): a leading UTF-8 byte-order mark (as
/// Windows editors write) is dropped; a UTF-16 file (Notepad's "Unicode") and bytes that are not
/// UTF-8 are errors that say how to convert, naming the line for the latter.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: None,
            reason: "the file is UTF-16 text; save it as UTF-8 (e.g. `iconv -f utf-16 -t utf-8`)"
                .into(),
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let column =
                good.len() - good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
            Err(Error::Parse {
                path: path.to_path_buf(),
                line: Some(line),
                reason: format!(
                    "byte 0x{:02x} at column {column} is not UTF-8; save the file as UTF-8 (e.g. \
                     `iconv -f latin1 -t utf-8`)",
                    bytes[e.valid_up_to()]
                ),
            })
        }
    }
}

/// Why `path` cannot be read as an audio file, or `None` when it is a readable regular file.
pub(crate) fn audio_file_problem(path: &Path) -> Option<String> {
    let shown = path.display();
    if crate::audio::archive_entry(path).is_some() {
        return None; // a WAV inside a Kaldi archive (ARCHIVE:OFFSET): checked when read
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("audio file {shown} does not exist"))
        }
        Err(e) => Some(format!("audio file {shown} cannot be read: {e}")),
        Ok(meta) if meta.is_dir() => Some(format!("audio path {shown} is a folder, not a file")),
        Ok(meta) if !meta.is_file() => Some(format!(
            "audio path {shown} is not a regular file (a device, pipe or socket)"
        )),
        Ok(_) => match std::fs::File::open(path) {
            Ok(_) => None,
            Err(e) => Some(format!("audio file {shown} cannot be opened: {e}")),
        },
    }
}
