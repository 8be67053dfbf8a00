//! Praat TextGrid, long text format ("ooTextFile"): interval tiers that cover the whole recording,
//! silences as intervals with an empty label. Praat, parselmouth, the `textgrid` and `tgt` Python
//! packages and the Montreal Forced Aligner read it. [`read_textgrid`] reads the same format back (for
//! the round-trip test and for tools that post-process phonrec's output).

use std::io::Write;

use crate::error::{Error, Result};

/// One labelled interval, in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// Start time.
    pub start_s: f64,
    /// End time.
    pub end_s: f64,
    /// The label; empty for silence.
    pub label: String,
}

/// A named interval tier.
#[derive(Clone, Debug, PartialEq)]
pub struct IntervalTier {
    /// The tier's name (`words`, `phones`).
    pub name: String,
    /// Intervals in time order, touching, from 0 to the recording's end.
    pub intervals: Vec<Interval>,
}

/// The width a zero-length span (a deleted phone) is given in a tier: 10 ms, taken from what
/// follows it.
pub const POINT_WIDTH_S: f64 = 0.01;

/// Times are written rounded to 0.1 ms: every boundary phonrec makes is a multiple of a frame shift.
fn round_time(t: f64) -> f64 {
    (t * 10_000.0).round() / 10_000.0
}

impl IntervalTier {
    /// A tier from labelled spans `(start, end, label)` in time order: clipped to `[0, duration_s]`,
    /// gaps filled with empty intervals, overlaps resolved in favour of the earlier span (the later
    /// one starts where the earlier ends). A span with `start == end` (a phone the text expects and
    /// the audio does not have: the alignment gives it no frame) gets `POINT_WIDTH_S` (10 ms), as a
    /// TextGrid interval cannot be empty and a dropped one would hide the deletion and shift every
    /// later phone of its word against the transcript; spans left empty by an overlap are dropped.
    pub fn from_spans(
        name: &str,
        spans: impl IntoIterator<Item = (f64, f64, String)>,
        duration_s: f64,
    ) -> Self {
        let duration_s = round_time(duration_s);
        let mut intervals: Vec<Interval> = Vec::new();
        let mut cursor = 0.0;
        for (start, end, label) in spans {
            let point = start == end;
            let start = round_time(start).clamp(cursor, duration_s);
            let end = if point {
                round_time(start + POINT_WIDTH_S).min(duration_s)
            } else {
                round_time(end).clamp(start, duration_s)
            };
            if end <= start {
                continue;
            }
            if start > cursor {
                intervals.push(Interval {
                    start_s: cursor,
                    end_s: start,
                    label: String::new(),
                });
            }
            intervals.push(Interval {
                start_s: start,
                end_s: end,
                label,
            });
            cursor = end;
        }
        if cursor < duration_s || intervals.is_empty() {
            intervals.push(Interval {
                start_s: cursor,
                end_s: duration_s,
                label: String::new(),
            });
        }
        IntervalTier {
            name: name.to_string(),
            intervals,
        }
    }
}

/// Praat's string quoting: `"` doubled inside double quotes.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Write `tiers` (each covering `[0, duration_s]`) as a long-format TextGrid.
pub fn write_textgrid(
    tiers: &[IntervalTier],
    duration_s: f64,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let xmax = round_time(duration_s);
    writeln!(out, "File type = \"ooTextFile\"")?;
    writeln!(out, "Object class = \"TextGrid\"")?;
    writeln!(out)?;
    writeln!(out, "xmin = 0 ")?;
    writeln!(out, "xmax = {xmax} ")?;
    writeln!(out, "tiers? <exists> ")?;
    writeln!(out, "size = {} ", tiers.len())?;
    writeln!(out, "item []: ")?;
    for (i, tier) in tiers.iter().enumerate() {
        writeln!(out, "    item [{}]:", i + 1)?;
        writeln!(out, "        class = \"IntervalTier\" ")?;
        writeln!(out, "        name = {} ", quote(&tier.name))?;
        writeln!(out, "        xmin = 0 ")?;
        writeln!(out, "        xmax = {xmax} ")?;
        writeln!(out, "        intervals: size = {} ", tier.intervals.len())?;
        for (j, interval) in tier.intervals.iter().enumerate() {
            writeln!(out, "        intervals [{}]:", j + 1)?;
            writeln!(out, "            xmin = {} ", interval.start_s)?;
            writeln!(out, "            xmax = {} ", interval.end_s)?;
            writeln!(out, "            text = {} ", quote(&interval.label))?;
        }
    }
    Ok(())
}

/// Read a long-format TextGrid of interval tiers: `(xmax, tiers)`. Point tiers and the short format
/// are refused with a message saying so.
pub fn read_textgrid(text: &str) -> Result<(f64, Vec<IntervalTier>)> {
    let bad = |line: usize, reason: String| Error::Parse {
        path: "TextGrid".into(),
        line: Some(line),
        reason,
    };
    let mut xmax = None;
    let mut tiers: Vec<IntervalTier> = Vec::new();
    let mut pending: Option<Interval> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        let value = value.trim();
        let number = || {
            value
                .parse::<f64>()
                .map_err(|_| bad(index + 1, format!("'{value}' is not a number")))
        };
        let string = || -> Result<String> {
            let inner = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| bad(index + 1, format!("{value} is not a quoted string")))?;
            Ok(inner.replace("\"\"", "\""))
        };
        match key {
            "File type" if string()? != "ooTextFile" => {
                return Err(bad(index + 1, "not a Praat text file".into()));
            }
            "class" if string()? != "IntervalTier" => {
                return Err(bad(index + 1, "only interval tiers are read".into()));
            }
            "name" => tiers.push(IntervalTier {
                name: string()?,
                intervals: Vec::new(),
            }),
            "xmin" if !tiers.is_empty() && raw.starts_with("            ") => {
                pending = Some(Interval {
                    start_s: number()?,
                    end_s: 0.0,
                    label: String::new(),
                });
            }
            "xmax" if tiers.is_empty() => xmax = Some(number()?),
            "xmax" => {
                if let Some(interval) = pending.as_mut() {
                    interval.end_s = number()?;
                }
            }
            "text" => {
                let mut interval = pending
                    .take()
                    .ok_or_else(|| bad(index + 1, "text outside an interval".into()))?;
                interval.label = string()?;
                if let Some(tier) = tiers.last_mut() {
                    tier.intervals.push(interval);
                }
            }
            _ => {}
        }
    }
    let xmax = xmax.ok_or_else(|| bad(1, "no xmax: not a long-format TextGrid".into()))?;
    Ok((xmax, tiers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_cover_the_recording_and_read_back() -> Result<()> {
        let words = IntervalTier::from_spans(
            "words",
            [
                (0.2, 0.5, "say".to_string()),
                (0.5, 0.9, "\"hi\"".to_string()),
            ],
            1.25,
        );
        let phones = IntervalTier::from_spans(
            "phones",
            [
                (0.2, 0.3, "s".to_string()),
                (0.28, 0.5, "ey".to_string()), // overlaps: starts where s ends
                (0.5, 0.7, "hh".to_string()),
                (0.7, 2.0, "ay".to_string()), // past the end: clipped
            ],
            1.25,
        );
        assert_eq!(words.intervals.len(), 4); // "", say, "hi", ""
        assert_eq!(phones.intervals[2].start_s, 0.3);
        assert_eq!(phones.intervals.last().unwrap().end_s, 1.25);
        for tier in [&words, &phones] {
            assert_eq!(tier.intervals[0].start_s, 0.0);
            for pair in tier.intervals.windows(2) {
                assert_eq!(pair[0].end_s, pair[1].start_s);
            }
        }
        let mut bytes = Vec::new();
        write_textgrid(&[words.clone(), phones.clone()], 1.25, &mut bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let (xmax, tiers) = read_textgrid(&text)?;
        assert_eq!(xmax, 1.25);
        assert_eq!(tiers, [words, phones]);
        // An empty recording still has one (empty) interval per tier.
        let empty = IntervalTier::from_spans("phones", [], 0.5);
        assert_eq!(empty.intervals.len(), 1);
        assert!(read_textgrid("xmin = 0\n").is_err());
        Ok(())
    }

    #[test]
    fn deleted_phones_keep_an_interval() {
        // "suits" said without its final s: the s has no frame (start == end), then a pause.
        let phones = IntervalTier::from_spans(
            "phones",
            [
                (0.9, 1.0, "t".to_string()),
                (1.0, 1.0, "s".to_string()),
                (1.0, 1.0, "z".to_string()),
                (1.2, 1.3, "ih".to_string()),
            ],
            2.0,
        );
        let labels: Vec<(&str, f64, f64)> = phones
            .intervals
            .iter()
            .map(|i| (i.label.as_str(), i.start_s, i.end_s))
            .collect();
        assert_eq!(
            labels,
            [
                ("", 0.0, 0.9),
                ("t", 0.9, 1.0),
                ("s", 1.0, 1.01),
                ("z", 1.01, 1.02),
                ("", 1.02, 1.2),
                ("ih", 1.2, 1.3),
                ("", 1.3, 2.0)
            ]
        );
    }
}
