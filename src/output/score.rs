//! Writers for [`PronunciationScores`] (`phonrec score`): JSON Lines, TSV and TextGrid.

use std::io::Write;

use serde::Serialize;

use super::alignment::{alignment_tiers, key};
use super::json::round3;
use super::textgrid::{write_textgrid, IntervalTier};
use crate::align::{PhoneScore, PronunciationScores};
use crate::choice::{Choice, Named};
use crate::phones::PhoneSet;

/// How pronunciation scores are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreFormat {
    /// One JSON object per recording: words with their score and phones (expected, heard, GOP,
    /// flag).
    Json,
    /// Tab-separated with a header: `file tier start end expected heard score mispronounced`.
    Tsv,
    /// Praat TextGrid: tiers `words`, `phones` (expected), `heard`, `mispronounced` (`*` on flagged
    /// phones); a phone not said at all (no frame of its own: start = end in the other formats)
    /// gets a 10 ms interval where it belongs.
    TextGrid,
}

impl Choice for ScoreFormat {
    const CHOICES: &'static [Named<Self>] = &[
        Named {
            value: ScoreFormat::Json,
            name: "json",
            help: "One JSON object per recording: words, their phones, expected and heard, GOP, flags",
        },
        Named {
            value: ScoreFormat::Tsv,
            name: "tsv",
            help: "Tab-separated with a header: `file tier start end expected heard score mispronounced`",
        },
        Named {
            value: ScoreFormat::TextGrid,
            name: "textgrid",
            help: "Praat TextGrid: tiers words, phones (expected), heard, mispronounced (one file per recording; a phone not said at all gets a 10 ms interval)",
        },
    ];
}

impl ScoreFormat {
    /// The file extension `--output-dir` gives each recording's output.
    pub fn extension(self) -> &'static str {
        match self {
            ScoreFormat::Json => "json",
            ScoreFormat::Tsv => "tsv",
            ScoreFormat::TextGrid => "TextGrid",
        }
    }
}

/// Header line of the TSV format.
pub const SCORE_TSV_HEADER: &str = "file\ttier\tstart\tend\texpected\theard\tscore\tmispronounced";

#[derive(Serialize)]
struct JsonPhone<'a> {
    expected: &'a str,
    heard: Option<&'a str>,
    start: f32,
    end: f32,
    gop: f32,
    mispronounced: bool,
}

#[derive(Serialize)]
struct JsonWord<'a> {
    word: &'a str,
    start: f32,
    end: f32,
    score: f32,
    mispronounced: bool,
    phones: Vec<JsonPhone<'a>>,
}

#[derive(Serialize)]
struct JsonScores<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    utterance: Option<&'a str>,
    /// Where a Kaldi segment starts in `file` (its times count from there).
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<f64>,
    duration: f64,
    matches_text: bool,
    threshold: f32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    words: Vec<JsonWord<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    phones: Vec<JsonPhone<'a>>,
}

/// GOP rounded for output; a phone with no evidence at all (−∞) is written as −99.
fn finite(gop: f32) -> f32 {
    round3(gop.max(-99.0))
}

fn json_phone<'a>(p: &PhoneScore, phones: &'a PhoneSet) -> JsonPhone<'a> {
    JsonPhone {
        expected: phones.name(p.expected),
        heard: p.heard.map(|h| phones.name(h)),
        start: round3(p.start_s),
        end: round3(p.end_s),
        gop: finite(p.gop),
        mispronounced: p.mispronounced,
    }
}

/// Write one recording's scores in `format` (TSV without its header).
pub fn write_scores(
    format: ScoreFormat,
    scores: &PronunciationScores,
    phones: &PhoneSet,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let alignment = &scores.alignment;
    match format {
        ScoreFormat::Json => {
            let record = JsonScores {
                file: alignment.source.display().to_string(),
                utterance: alignment.id.as_deref(),
                offset: alignment.offset_s,
                duration: (alignment.duration_s * 1000.0).round() / 1000.0,
                matches_text: alignment.matches_text,
                threshold: scores.threshold,
                words: scores
                    .words
                    .iter()
                    .map(|w| JsonWord {
                        word: &w.word,
                        start: round3(w.start_s),
                        end: round3(w.end_s),
                        score: finite(w.score),
                        mispronounced: w.mispronounced,
                        phones: scores.phones[w.phones.clone()]
                            .iter()
                            .map(|p| json_phone(p, phones))
                            .collect(),
                    })
                    .collect(),
                phones: if scores.words.is_empty() {
                    scores
                        .phones
                        .iter()
                        .map(|p| json_phone(p, phones))
                        .collect()
                } else {
                    Vec::new()
                },
            };
            serde_json::to_writer(&mut *out, &record)?;
            writeln!(out)
        }
        ScoreFormat::Tsv => {
            let file = key(alignment);
            for w in &scores.words {
                writeln!(
                    out,
                    "{file}\tword\t{:.3}\t{:.3}\t{}\t\t{:.3}\t{}",
                    round3(w.start_s),
                    round3(w.end_s),
                    w.word,
                    finite(w.score),
                    u8::from(w.mispronounced)
                )?;
            }
            for p in &scores.phones {
                writeln!(
                    out,
                    "{file}\tphone\t{:.3}\t{:.3}\t{}\t{}\t{:.3}\t{}",
                    round3(p.start_s),
                    round3(p.end_s),
                    phones.name(p.expected),
                    p.heard.map_or("", |h| phones.name(h)),
                    finite(p.gop),
                    u8::from(p.mispronounced)
                )?;
            }
            Ok(())
        }
        ScoreFormat::TextGrid => {
            let duration = alignment.duration_s;
            let span =
                |p: &PhoneScore, label: String| (f64::from(p.start_s), f64::from(p.end_s), label);
            // words and phones (expected) are the alignment's tiers; heard and flags are added.
            let mut tiers = alignment_tiers(alignment, phones);
            tiers.push(IntervalTier::from_spans(
                "heard",
                scores.phones.iter().map(|p| {
                    span(
                        p,
                        p.heard
                            .map_or(String::new(), |h| phones.name(h).to_string()),
                    )
                }),
                duration,
            ));
            tiers.push(IntervalTier::from_spans(
                "mispronounced",
                scores
                    .phones
                    .iter()
                    .filter(|p| p.mispronounced)
                    .map(|p| span(p, "*".to_string())),
                duration,
            ));
            write_textgrid(&tiers, duration, out)
        }
    }
}
