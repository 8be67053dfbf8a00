//! Output formats, one file each; writers take any `Write`: transcripts (text, JSON Lines, CTM, Kaldi
//! text, TextGrid), alignments (TextGrid, CTM, TSV, JSON Lines), pronunciation scores (JSON Lines,
//! TSV, TextGrid) and feature matrices (NPY, CSV, TSV, Kaldi text archives).

mod alignment;
mod ctm;
pub(crate) mod json;
mod matrix;
mod score;
mod text;
mod textgrid;

use std::io::Write;

pub use alignment::{alignment_tiers, write_alignment, AlignFormat, ALIGNMENT_TSV_HEADER};
pub use matrix::{kaldi_key, write_matrix, MatrixFormat};
pub use score::{write_scores, ScoreFormat, SCORE_TSV_HEADER};
pub use textgrid::{read_textgrid, write_textgrid, Interval, IntervalTier};

use crate::choice::{Choice, Named};
use crate::phones::{PhoneId, PhoneSet};
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
    /// Praat TextGrid (long format), one tier `phones` covering the file; one file per recording.
    TextGrid,
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
        Named {
            value: OutputFormat::TextGrid,
            name: "textgrid",
            help: "Praat TextGrid, tier `phones` covering the file, silences empty (one file per \
                   recording: use --output-dir for several)",
        },
    ];
}

impl OutputFormat {
    /// The extension of one recording's output file (`transcribe --output-dir`).
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Text => "txt",
            OutputFormat::Json => "json",
            OutputFormat::Ctm => "ctm",
            OutputFormat::Kaldi => "text",
            OutputFormat::TextGrid => "TextGrid",
        }
    }
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
        OutputFormat::TextGrid => write_textgrid(
            &[IntervalTier::from_spans(
                "phones",
                transcript.spans.iter().map(|s| {
                    (
                        f64::from(s.start_s),
                        f64::from(s.end_s),
                        phones.name(s.phone).to_string(),
                    )
                }),
                transcript.duration_s,
            )],
            transcript.duration_s,
            out,
        ),
    }
}

/// `ids` named and joined by spaces.
/// A CTM line's start and duration, in whole milliseconds as printed: both from the rounded
/// start and end, so that a span ends where the next begins (rounded apart, `0.6717 0.2617` gave
/// `0.672 0.262`: an end at 0.934 past the next word's start at 0.933).
/// The ends are rounded as JSON rounds them ([`json::round3`], in f32), so that every format
/// of one result gives the same milliseconds (`{:.3}` of the f64 made 2.1975 2.197, JSON 2.198).
fn ctm_start_duration(start_s: f32, end_s: f32) -> (f64, f64) {
    let start_ms = f64::from((start_s * 1000.0).round());
    let end_ms = f64::from((end_s * 1000.0).round()).max(start_ms);
    (start_ms / 1000.0, (end_ms - start_ms) / 1000.0)
}

fn phone_names(ids: &[PhoneId], phones: &PhoneSet) -> String {
    ids.iter()
        .map(|&id| phones.name(id))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a transcript is named in whitespace-separated formats (Kaldi text, CTM): its utterance id, or
/// its path with whitespace replaced by `_` (see [`kaldi_key`]).
fn transcript_key(transcript: &Transcript) -> String {
    line_key(transcript.id.as_deref(), &transcript.source)
}

/// How a result is keyed in line formats (Kaldi text, CTM, TSV): its utterance id, or else the
/// path of its recording, each through [`kaldi_key`].
pub fn line_key(id: Option<&str>, source: &std::path::Path) -> String {
    match id {
        Some(id) => kaldi_key(id),
        None => kaldi_key(&source.display().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::ctm_start_duration;

    #[test]
    fn ctm_spans_that_touch_still_touch_when_printed() {
        // Two words meeting at 0.9334 s: the first printed as 0.672 + 0.261, ending at 0.933
        // where the second starts (rounded apart, its duration was 0.262: an overlap).
        let (start, duration) = ctm_start_duration(0.6717, 0.9334);
        assert_eq!(format!("{start:.3} {duration:.3}"), "0.672 0.261");
        let (next, _) = ctm_start_duration(0.9334, 1.2);
        assert_eq!(format!("{:.3}", start + duration), format!("{next:.3}"));
        // An end before the start (never written by phonrec) prints a duration of 0, not < 0.
        assert_eq!(ctm_start_duration(1.0, 0.5).1, 0.0);
    }
}
