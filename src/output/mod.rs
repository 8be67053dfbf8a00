//! Output formats, one file each; writers take any `Write`: transcripts (text, JSON Lines, CTM) and
//! feature matrices (NPY, CSV, TSV, Kaldi text archives).

mod ctm;
pub(crate) mod json;
mod matrix;
mod text;

use std::io::Write;

pub use matrix::{kaldi_key, write_matrix, MatrixFormat};

use crate::choice::{Choice, Named};
use crate::phones::PhoneSet;
use crate::recognize::Transcript;

/// How transcripts are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One line per file: `path<TAB>phones` (space-separated).
    Text,
    /// One JSON object per line (JSON Lines) with each phone's start, end and confidence.
    Json,
    /// NIST CTM: `file 1 start duration phone confidence`, one line per phone.
    Ctm,
    /// Kaldi `text`: `key phone phone ...` (the utterance id for wav.scp inputs, else the path).
    Kaldi,
}

impl Choice for OutputFormat {
    const CHOICES: &'static [Named<Self>] = &[
        Named {
            value: OutputFormat::Text,
            name: "text",
            help: "One line per file: `path<TAB>phones` (space-separated)",
        },
        Named {
            value: OutputFormat::Json,
            name: "json",
            help:
                "One JSON object per line (JSON Lines) with each phone's start, end and confidence",
        },
        Named {
            value: OutputFormat::Ctm,
            name: "ctm",
            help: "NIST CTM: `file 1 start duration phone confidence`, one line per phone",
        },
        Named {
            value: OutputFormat::Kaldi,
            name: "kaldi",
            help: "Kaldi `text` (`key phone phone ...`; the key is the utterance id for wav.scp \
                   inputs, else the path with whitespace replaced by _), as compute-wer reads it",
        },
    ];
}

/// Write one transcript in `format`.
pub fn write_transcript(
    format: OutputFormat,
    transcript: &Transcript,
    phones: &PhoneSet,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Text => text::write(transcript, phones, out),
        OutputFormat::Json => json::write(transcript, phones, out),
        OutputFormat::Ctm => ctm::write(transcript, phones, out),
        OutputFormat::Kaldi => text::write_kaldi(transcript, phones, out),
    }
}

/// How a transcript is named in whitespace-separated formats (Kaldi text, CTM): its utterance id, or
/// its path with whitespace replaced by `_` (see [`kaldi_key`]).
fn transcript_key(transcript: &Transcript) -> String {
    match &transcript.id {
        Some(id) => kaldi_key(id),
        None => kaldi_key(&transcript.source.display().to_string()),
    }
}
