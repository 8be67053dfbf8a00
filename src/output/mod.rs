//! Transcript output formats, one file each; writers take any `Write`.

mod ctm;
mod json;
mod text;

use std::io::Write;

use crate::phones::PhoneSet;
use crate::recognize::Transcript;

/// How transcripts are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One line per file: `path<TAB>phones` (space-separated).
    Text,
    /// One JSON object per line (JSON Lines) with each phone's start, end and confidence.
    Json,
    /// NIST CTM: `file 1 start duration phone confidence`, one line per phone.
    Ctm,
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
