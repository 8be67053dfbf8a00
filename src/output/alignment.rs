//! Writers for [`Alignment`]s (`phonrec align`): TextGrid (tiers `words` and `phones`), CTM, TSV and
//! JSON Lines.

use std::io::Write;

use serde::Serialize;

use super::json::{round3, JsonSpan};
use super::textgrid::{write_textgrid, IntervalTier};
use crate::align::Alignment;
use crate::choice::{Choice, Named};
use crate::phones::PhoneSet;

/// How alignments are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlignFormat {
    /// Praat TextGrid (long format): tiers `words` (when a text was aligned) and `phones`, covering
    /// the whole file, silences as empty intervals. One recording per TextGrid.
    TextGrid,
    /// NIST CTM: `file 1 start duration label confidence`, one line per word (per phone when a
    /// phone sequence was aligned).
    Ctm,
    /// Tab-separated with a header: `file tier start end label confidence`, words then phones.
    Tsv,
    /// One JSON object per recording and line: words with their phones, times, confidences and the
    /// match score.
    Json,
}

impl Choice for AlignFormat {
    const CHOICES: &'static [Named<Self>] = &[
        Named {
            value: AlignFormat::TextGrid,
            name: "textgrid",
            help: "Praat TextGrid, tiers `words` and `phones` covering the file (one file per recording)",
        },
        Named {
            value: AlignFormat::Ctm,
            name: "ctm",
            help: "NIST CTM, one line per word (per phone for --phones): `file 1 start duration label confidence`",
        },
        Named {
            value: AlignFormat::Tsv,
            name: "tsv",
            help: "Tab-separated with a header: `file tier start end label confidence`, words then phones",
        },
        Named {
            value: AlignFormat::Json,
            name: "json",
            help: "One JSON object per recording: words with their phones, times, confidences, match score",
        },
    ];
}

impl AlignFormat {
    /// The file extension `--output-dir` gives each recording's output.
    pub fn extension(self) -> &'static str {
        match self {
            AlignFormat::TextGrid => "TextGrid",
            AlignFormat::Ctm => "ctm",
            AlignFormat::Tsv => "tsv",
            AlignFormat::Json => "json",
        }
    }
}

/// Header line of the TSV format (written once per output file by the caller).
pub const ALIGNMENT_TSV_HEADER: &str = "file\ttier\tstart\tend\tlabel\tconfidence";

/// The tiers of an alignment: `words` (if it has words) and `phones`.
pub fn alignment_tiers(alignment: &Alignment, phones: &PhoneSet) -> Vec<IntervalTier> {
    let duration = alignment.duration_s;
    let mut tiers = Vec::new();
    if !alignment.words.is_empty() {
        tiers.push(IntervalTier::from_spans(
            "words",
            alignment
                .words
                .iter()
                .map(|w| (f64::from(w.start_s), f64::from(w.end_s), w.word.clone())),
            duration,
        ));
    }
    tiers.push(IntervalTier::from_spans(
        "phones",
        alignment.phones.iter().map(|p| {
            (
                f64::from(p.start_s),
                f64::from(p.end_s),
                phones.name(p.phone).to_string(),
            )
        }),
        duration,
    ));
    tiers
}

/// How a recording is named in line formats: its utterance id, or its path (whitespace replaced).
pub(super) fn key(alignment: &Alignment) -> String {
    super::line_key(alignment.id.as_deref(), &alignment.source)
}

#[derive(Serialize)]
struct JsonWord<'a> {
    word: &'a str,
    start: f32,
    end: f32,
    confidence: f32,
    phones: Vec<JsonSpan<'a>>,
}

#[derive(Serialize)]
struct JsonAlignment<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    utterance: Option<&'a str>,
    /// Where a Kaldi segment starts in `file` (its times count from there).
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<f64>,
    duration: f64,
    match_score: f64,
    worst_second_score: f64,
    speech_share: f64,
    matches_text: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    words: Vec<JsonWord<'a>>,
    phones: Vec<JsonSpan<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    skipped: &'a [String],
}

/// Write one alignment in `format` (TSV without its header).
pub fn write_alignment(
    format: AlignFormat,
    alignment: &Alignment,
    phones: &PhoneSet,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        AlignFormat::TextGrid => write_textgrid(
            &alignment_tiers(alignment, phones),
            alignment.duration_s,
            out,
        ),
        AlignFormat::Ctm => {
            let file = key(alignment);
            let lines: Vec<(f32, f32, &str, f32)> = if alignment.words.is_empty() {
                alignment
                    .phones
                    .iter()
                    .map(|p| (p.start_s, p.end_s, phones.name(p.phone), p.confidence))
                    .collect()
            } else {
                alignment
                    .words
                    .iter()
                    .map(|w| (w.start_s, w.end_s, w.word.as_str(), w.confidence))
                    .collect()
            };
            for (start, end, label, confidence) in lines {
                let (start, duration) = super::ctm_start_duration(start, end);
                writeln!(
                    out,
                    "{file} 1 {start:.3} {duration:.3} {label} {confidence:.3}"
                )?;
            }
            Ok(())
        }
        AlignFormat::Tsv => {
            let file = key(alignment);
            for w in &alignment.words {
                writeln!(
                    out,
                    "{file}\tword\t{:.3}\t{:.3}\t{}\t{:.3}",
                    round3(w.start_s),
                    round3(w.end_s),
                    w.word,
                    w.confidence
                )?;
            }
            for p in &alignment.phones {
                writeln!(
                    out,
                    "{file}\tphone\t{:.3}\t{:.3}\t{}\t{:.3}",
                    round3(p.start_s),
                    round3(p.end_s),
                    phones.name(p.phone),
                    p.confidence
                )?;
            }
            Ok(())
        }
        AlignFormat::Json => {
            let record = JsonAlignment {
                file: alignment.source.display().to_string(),
                utterance: alignment.id.as_deref(),
                offset: alignment.offset_s,
                duration: (alignment.duration_s * 1000.0).round() / 1000.0,
                // `+ 0.0` turns a rounded -0 into 0.
                match_score: (alignment.match_score * 1000.0).round() / 1000.0 + 0.0,
                worst_second_score: (alignment.worst_second_score * 1000.0).round() / 1000.0 + 0.0,
                speech_share: (alignment.speech_share * 1000.0).round() / 1000.0,
                matches_text: alignment.matches_text,
                words: alignment
                    .words
                    .iter()
                    .map(|w| JsonWord {
                        word: &w.word,
                        start: round3(w.start_s),
                        end: round3(w.end_s),
                        confidence: round3(w.confidence),
                        phones: alignment.phones[w.phones.clone()]
                            .iter()
                            .map(|p| JsonSpan::new(p, phones.name(p.phone)))
                            .collect(),
                    })
                    .collect(),
                phones: alignment
                    .phones
                    .iter()
                    .map(|p| JsonSpan::new(p, phones.name(p.phone)))
                    .collect(),
                skipped: &alignment.skipped,
            };
            serde_json::to_writer(&mut *out, &record)?;
            writeln!(out)
        }
    }
}
