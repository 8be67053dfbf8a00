//! Posteriors as text tables, one row per frame: TSV and CSV (a header line, then `time_s` and either
//! every column or the top k phones) and one JSON document.
//!
//! Probabilities are printed with 6 decimals and log-probabilities with 4: enough that every row sums
//! to 1 within 1e-5, few enough to read.

use std::io::Write;

use serde::Serialize;

use super::{Inspection, Posteriorgram, TableOptions};
use crate::ctc::PhoneSpan;
use crate::output::json::{round3, JsonSpan};

/// Decimals of a printed time: a millisecond, finer than any frame shift.
const TIME_DECIMALS: usize = 3;
/// Decimals of a printed probability.
const PROB_DECIMALS: usize = 6;
/// Decimals of a printed log-probability.
const LOG_PROB_DECIMALS: usize = 4;

/// A value as stored (natural log) turned into what the table shows, formatted.
fn format_value(log_prob: f32, log: bool) -> String {
    if log {
        let text = format!("{log_prob:.LOG_PROB_DECIMALS$}");
        // A probability within rounding of 1 is log 0, not "-0.0000".
        match text.strip_prefix('-') {
            Some(magnitude) if magnitude.bytes().all(|b| b == b'0' || b == b'.') => {
                magnitude.to_string()
            }
            _ => text,
        }
    } else {
        format!("{:.PROB_DECIMALS$}", log_prob.exp())
    }
}

/// A CSV field, quoted when it holds the delimiter, a quote or a line break (RFC 4180).
fn csv_field(field: &str, delimiter: u8) -> String {
    let needs_quotes = field
        .bytes()
        .any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r');
    if delimiter == b',' && needs_quotes {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// TSV (`delimiter` = tab) or CSV (comma); row times count from `start_s` (where the rows start
/// in the recording).
pub(super) fn write_delimited(
    posteriors: &Posteriorgram,
    start_s: f64,
    options: &TableOptions,
    delimiter: u8,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let sep = char::from(delimiter);
    let value_name = if options.log { "log_prob" } else { "prob" };
    let mut header = vec!["time_s".to_string()];
    match options.top {
        Some(k) => {
            for rank in 1..=k.min(posteriors.num_classes()) {
                header.push(format!("phone{rank}"));
                header.push(format!("{value_name}{rank}"));
            }
        }
        None => header.extend(posteriors.phone_names().iter().cloned()),
    }
    let header: Vec<String> = header.iter().map(|h| csv_field(h, delimiter)).collect();
    writeln!(out, "{}", header.join(&sep.to_string()))?;

    let mut line = String::new();
    for (frame, row) in posteriors.log_probs().rows().into_iter().enumerate() {
        line.clear();
        line.push_str(&format!(
            "{:.TIME_DECIMALS$}",
            start_s + posteriors.frame_time_s(frame)
        ));
        match options.top {
            Some(k) => {
                for (column, log_prob) in posteriors.top_classes(frame, k) {
                    line.push(sep);
                    line.push_str(&csv_field(&posteriors.phone_names()[column], delimiter));
                    line.push(sep);
                    line.push_str(&format_value(log_prob, options.log));
                }
            }
            None => {
                for &log_prob in row {
                    line.push(sep);
                    line.push_str(&format_value(log_prob, options.log));
                }
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The JSON document's head; `frames` follows, written frame by frame.
#[derive(Serialize)]
struct JsonHead<'a> {
    /// `probability` or `log_probability` (natural log).
    values: &'static str,
    /// Where row 0 starts in the recording, seconds (0 unless a part is shown).
    start_s: f64,
    frame_shift_s: f64,
    num_frames: usize,
    phones: &'a [String],
    /// The decoded phones, as `transcribe --format json` writes them.
    decoded: Vec<JsonSpan<'a>>,
    /// The speech regions that were decoded, `[start, end]` seconds.
    segments: Vec<[f32; 2]>,
}

#[derive(Serialize)]
struct JsonTopPhone<'a> {
    phone: &'a str,
    value: f32,
}

/// One frame: every column, or the top k.
#[derive(Serialize)]
#[serde(untagged)]
enum JsonFrame<'a> {
    All {
        time_s: f64,
        values: Vec<f32>,
    },
    Top {
        time_s: f64,
        top: Vec<JsonTopPhone<'a>>,
    },
}

/// `{"values": "probability", "start_s": .., "frame_shift_s": .., "num_frames": .., "phones": [..],
/// "decoded": [{"phone", "start", "end", "confidence"}, ..], "segments": [[start, end], ..], "frames":
/// [..]}`, where each frame is `{"time_s", "values": [one per phone]}` or, with `top`,
/// `{"time_s", "top": [{"phone", "value"}, ..]}`. Every time is in the recording's timeline.
pub(super) fn write_json(
    inspection: &Inspection,
    options: &TableOptions,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let posteriors = &inspection.posteriors;
    let start_s = inspection.start_s;
    let in_recording = |time_s: f32| (f64::from(time_s) + start_s) as f32;
    let head = JsonHead {
        values: if options.log {
            "log_probability"
        } else {
            "probability"
        },
        start_s,
        frame_shift_s: posteriors.frame_shift_s(),
        num_frames: posteriors.num_frames(),
        phones: posteriors.phone_names(),
        decoded: inspection
            .spans
            .iter()
            .map(|span| {
                let shifted = PhoneSpan {
                    start_s: in_recording(span.start_s),
                    end_s: in_recording(span.end_s),
                    ..span.clone()
                };
                JsonSpan::new(&shifted, inspection.span_name(span))
            })
            .collect(),
        segments: inspection
            .segments
            .iter()
            .map(|&(start, end)| [round3(in_recording(start)), round3(in_recording(end))])
            .collect(),
    };
    let head = serde_json::to_string(&head)?;
    // Splice the frames array into the head's object without building the whole document in memory.
    write!(out, "{},\"frames\":[", &head[..head.len() - 1])?;
    let shown = |log_prob: f32| {
        if options.log {
            log_prob
        } else {
            log_prob.exp()
        }
    };
    for (frame, row) in posteriors.log_probs().rows().into_iter().enumerate() {
        if frame > 0 {
            out.write_all(b",")?;
        }
        out.write_all(b"\n")?;
        let time_s = ((start_s + posteriors.frame_time_s(frame)) * 1e3).round() / 1e3;
        let record = match options.top {
            Some(k) => JsonFrame::Top {
                time_s,
                top: posteriors
                    .top_classes(frame, k)
                    .into_iter()
                    .map(|(column, log_prob)| JsonTopPhone {
                        phone: &posteriors.phone_names()[column],
                        value: shown(log_prob),
                    })
                    .collect(),
            },
            None => JsonFrame::All {
                time_s,
                values: row.iter().map(|&v| shown(v)).collect(),
            },
        };
        serde_json::to_writer(&mut *out, &record)?;
    }
    writeln!(out, "\n]}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phones::PhoneId;
    use ndarray::array;

    #[test]
    fn log_values_near_zero_print_without_a_sign() {
        assert_eq!(format_value(-0.00001, true), "0.0000");
        assert_eq!(format_value(-0.0, true), "0.0000");
        assert_eq!(format_value(-0.00006, true), "-0.0001");
        assert_eq!(format_value(-2.5, true), "-2.5000");
        assert_eq!(format_value(0.0, false), "1.000000");
    }

    fn example() -> Posteriorgram {
        let probs = array![[0.7f32, 0.2, 0.1], [0.1, 0.1, 0.8]];
        Posteriorgram::new(
            probs.mapv(f32::ln),
            vec!["<blk>".into(), "a,b".into(), "c".into()],
            0.03,
        )
        .unwrap()
    }

    fn render(write: impl Fn(&mut dyn Write) -> std::io::Result<()>) -> String {
        let mut buffer = Vec::new();
        write(&mut buffer).unwrap();
        String::from_utf8(buffer).unwrap()
    }

    #[test]
    fn tsv_has_times_and_all_columns() {
        let text =
            render(|out| write_delimited(&example(), 0.0, &TableOptions::default(), b'\t', out));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "time_s\t<blk>\ta,b\tc");
        assert_eq!(lines[1], "0.000\t0.700000\t0.200000\t0.100000");
        assert_eq!(lines[2], "0.030\t0.100000\t0.100000\t0.800000");
    }

    #[test]
    fn csv_quotes_names_with_commas_and_top_ranks() {
        let options = TableOptions {
            log: false,
            top: Some(2),
        };
        let text = render(|out| write_delimited(&example(), 0.0, &options, b',', out));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "time_s,phone1,prob1,phone2,prob2");
        assert_eq!(lines[1], "0.000,<blk>,0.700000,\"a,b\",0.200000");
        assert_eq!(lines[2], "0.030,c,0.800000,<blk>,0.100000");
    }

    #[test]
    fn json_is_one_parseable_document() {
        let options = TableOptions {
            log: true,
            top: None,
        };
        let inspection = Inspection {
            title: "example".into(),
            start_s: 0.0,
            wave: crate::audio::Waveform {
                samples: vec![0.0; 960],
                sample_rate_hz: 16_000,
            },
            posteriors: example(),
            spans: vec![PhoneSpan {
                phone: PhoneId(2),
                start_s: 0.03,
                end_s: 0.06,
                confidence: 0.8,
                alternatives: Vec::new(),
            }],
            segments: vec![(0.0, 0.06)],
        };
        let text = render(|out| write_json(&inspection, &options, out));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["values"], "log_probability");
        assert_eq!(
            value["decoded"],
            serde_json::json!([{"phone": "c", "start": 0.03, "end": 0.06, "confidence": 0.8}])
        );
        assert_eq!(value["segments"], serde_json::json!([[0.0, 0.06]]));
        assert_eq!(value["phones"][1], "a,b");
        assert_eq!(value["frames"].as_array().unwrap().len(), 2);
        let v = value["frames"][1]["values"][2].as_f64().unwrap();
        assert!((v - 0.8f64.ln()).abs() < 1e-6);
        assert_eq!(value["frames"][1]["time_s"], 0.03);
    }
}
