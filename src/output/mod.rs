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
    }
}
