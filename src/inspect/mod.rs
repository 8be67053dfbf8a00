//! Per-frame views of one recording: the network's posteriors `[frames, phones + blank]` as tables
//! (TSV, CSV, JSON), as a float32 NPY array with a JSON sidecar, as a PNG posteriorgram, and as a
//! self-contained HTML page that plays the audio over the posteriorgram.
//!
//! An [`Inspection`] holds what every view shows: the audio at the model's rate, the [`Posteriorgram`],
//! the decoded [`PhoneSpan`]s and the speech regions, all from one pass of the
//! [`Recognizer`] that `transcribe` uses. Every writer takes `&mut dyn Write` (style guide point 14) and
//! works with any phone inventory: column and row names come from the model.
//!
//! ```no_run
//! use phonrec::inspect::{write_png, Inspection, PictureOptions};
//! use phonrec::recognize::{Recognizer, RecognizerOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = phonrec::model::Model::load("model.safetensors".as_ref())?;
//! let recognizer = Recognizer::new(model, RecognizerOptions::default())?;
//! let wave = phonrec::audio::read_audio("speech.wav".as_ref())?;
//! let inspection = Inspection::compute(&recognizer, wave, "speech.wav")?;
//! let mut file = std::fs::File::create("speech.png")?;
//! write_png(&inspection, &PictureOptions::default(), &mut file)?;
//! # Ok(()) }
//! ```

mod colormap;
mod html;
mod npy;
mod png;
mod table;
mod text;

use std::io::Write;

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::audio::Waveform;
use crate::choice::{Choice, Named};
use crate::ctc::PhoneSpan;
use crate::error::{Error, Result};
use crate::recognize::Recognizer;

pub use colormap::viridis;
pub use html::write_html;
pub use npy::{write_npy, write_npy_sidecar};
pub use png::{write_png, PictureLayout, PictureOptions};

/// Per-frame phone posteriors with the names of their columns and the time between rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Posteriorgram {
    log_probs: Array2<f32>,
    phone_names: Vec<String>,
    frame_shift_s: f64,
}

impl Posteriorgram {
    /// Wrap natural-log posteriors `[frames, classes]` whose columns are named by `phone_names` (the
    /// CTC blank first, as [`PhoneSet::names`](crate::phones::PhoneSet::names) gives them); row `t`
    /// starts at `t · frame_shift_s` seconds. Fails if the names do not match the columns or the shift
    /// is not positive.
    pub fn new(
        log_probs: Array2<f32>,
        phone_names: Vec<String>,
        frame_shift_s: f64,
    ) -> Result<Self> {
        if log_probs.ncols() != phone_names.len() {
            return Err(Error::Shape(format!(
                "posteriors have {} columns but {} phone names were given",
                log_probs.ncols(),
                phone_names.len()
            )));
        }
        if !(frame_shift_s > 0.0 && frame_shift_s.is_finite()) {
            return Err(Error::InvalidOptions {
                what: "posteriorgram",
                reason: format!("the frame shift must be positive, got {frame_shift_s} s"),
            });
        }
        Ok(Posteriorgram {
            log_probs,
            phone_names,
            frame_shift_s,
        })
    }

    /// Natural-log posteriors `[frames, classes]`.
    pub fn log_probs(&self) -> ArrayView2<'_, f32> {
        self.log_probs.view()
    }

    /// Posteriors `[frames, classes]`: each row sums to 1.
    pub fn probs(&self) -> Array2<f32> {
        self.log_probs.mapv(f32::exp)
    }

    /// Column names, the CTC blank first.
    pub fn phone_names(&self) -> &[String] {
        &self.phone_names
    }

    /// Seconds between two rows.
    pub fn frame_shift_s(&self) -> f64 {
        self.frame_shift_s
    }

    /// Number of rows (network output frames).
    pub fn num_frames(&self) -> usize {
        self.log_probs.nrows()
    }

    /// Number of columns: the phones and the blank.
    pub fn num_classes(&self) -> usize {
        self.log_probs.ncols()
    }

    /// Start of row `frame` in seconds.
    pub fn frame_time_s(&self, frame: usize) -> f64 {
        frame as f64 * self.frame_shift_s
    }

    /// Length covered by all rows, in seconds.
    pub fn duration_s(&self) -> f64 {
        self.frame_time_s(self.num_frames())
    }

    /// The `k` most probable classes of row `frame` as `(column, log-probability)`, most probable
    /// first (ties by column). Panics if `frame >= num_frames()`.
    pub fn top_classes(&self, frame: usize, k: usize) -> Vec<(usize, f32)> {
        top_k(self.log_probs.row(frame), k)
    }
}

/// The `k` largest values of `row` as `(index, value)`, largest first; NaN sorts last.
fn top_k(row: ArrayView1<f32>, k: usize) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or_else(|| a.1.is_nan().cmp(&b.1.is_nan()))
            .then(a.0.cmp(&b.0))
    });
    ranked.truncate(k);
    ranked
}

/// What the per-frame views show about one recording, or about a part of it ([`Inspection::window`]).
///
/// Every time inside counts from the start of what is shown: the first sample of `wave`, row 0 of
/// `posteriors`, and the spans' and segments' times. `start_s` says where that is in the recording;
/// the writers label times in the recording's timeline by adding it.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// A name for the recording, shown in pictures and pages (usually the file name).
    pub title: String,
    /// Where the shown part starts in the recording, seconds: 0 for the whole recording.
    pub start_s: f64,
    /// The audio at the model's sample rate (drawn as a waveform, embedded in the HTML page).
    pub wave: Waveform,
    /// The network's posteriors.
    pub posteriors: Posteriorgram,
    /// The decoded phones with their aligned times.
    pub spans: Vec<PhoneSpan>,
    /// The speech regions that were decoded, as (start, end) seconds.
    pub segments: Vec<(f32, f32)>,
}

impl Inspection {
    /// Run `recognizer` on `wave` (any rate; resampled to the model's): the same features, windowed
    /// network, segmentation and decoder as `transcribe`, so the views show what it would output.
    pub fn compute(
        recognizer: &Recognizer,
        wave: Waveform,
        title: impl Into<String>,
    ) -> Result<Self> {
        let recognition = recognizer.recognize(wave)?;
        Ok(Inspection {
            title: title.into(),
            start_s: 0.0,
            wave: recognition.wave,
            posteriors: Posteriorgram::new(
                recognition.log_probs,
                recognizer.phones().names().to_vec(),
                recognizer.output_frame_shift_s(),
            )?,
            spans: recognition.transcript.spans,
            segments: recognition.transcript.segments,
        })
    }

    /// The part of the inspection from `start_s` to `end_s` seconds (to the end with `None`), in
    /// the recording's timeline: the frames from the first one starting at or after `start_s` (the
    /// shown part begins on a frame boundary, so its rows keep their times) to the last one
    /// starting before `end_s`, their audio, the decoded phones whose middle lies in that time and
    /// the speech regions cut to it. The probabilities are those the network gave with the whole
    /// recording heard; only the view is narrower. An `end_s` past the recording's end means its
    /// end. Fails when the window is empty or starts at or after the end of the recording.
    pub fn window(mut self, start_s: f64, end_s: Option<f64>) -> Result<Self> {
        let duration_s = self.posteriors.duration_s().max(self.wave.duration_s());
        let invalid = |reason: String| Error::InvalidOptions {
            what: "probability view",
            reason,
        };
        let end_s = end_s.unwrap_or(f64::INFINITY);
        if !(start_s.is_finite() && start_s >= 0.0) {
            return Err(invalid(format!(
                "the start must be a time of 0 s or later, got {start_s}"
            )));
        }
        if end_s.is_nan() || end_s <= start_s {
            return Err(invalid(format!(
                "the end ({end_s} s) must come after the start ({start_s} s)"
            )));
        }
        let shift = self.posteriors.frame_shift_s();
        // Local times: the inspection may itself be a window.
        let (local_start, local_end) = (start_s - self.start_s, end_s - self.start_s);
        let frames = self.posteriors.num_frames();
        // A frame starting within a microsecond of the start counts as starting at it.
        let first = ((local_start / shift - 1e-6).ceil().max(0.0) as usize).min(frames);
        let last = ((local_end / shift - 1e-6).ceil().max(0.0) as usize).min(frames);
        if first >= frames || local_start >= duration_s {
            return Err(invalid(format!(
                "the recording ends at {:.2} s; a start of {start_s} s is past its last frame",
                self.start_s + duration_s
            )));
        }
        if last <= first {
            return Err(invalid(format!(
                "no frame starts between {start_s} s and {end_s} s (frames are {:.0} ms apart)",
                shift * 1e3
            )));
        }
        let offset = first as f64 * shift;
        let end = last as f64 * shift;
        let rate = f64::from(self.wave.sample_rate_hz);
        let samples = self.wave.samples.len();
        let first_sample = ((offset * rate).round() as usize).min(samples);
        let last_sample = if last == frames {
            // The last frame keeps the audio's tail that no frame starts in.
            samples
        } else {
            ((end * rate).round() as usize).clamp(first_sample, samples)
        };
        self.wave.samples = self.wave.samples[first_sample..last_sample].to_vec();
        self.posteriors.log_probs = self
            .posteriors
            .log_probs
            .slice(ndarray::s![first..last, ..])
            .to_owned();
        let shown_end = if last == frames { f64::INFINITY } else { end };
        self.spans.retain(|span| {
            let middle = (f64::from(span.start_s) + f64::from(span.end_s)) / 2.0;
            (offset..shown_end).contains(&middle)
        });
        for span in &mut self.spans {
            span.start_s = (f64::from(span.start_s) - offset) as f32;
            span.end_s = (f64::from(span.end_s) - offset) as f32;
        }
        let length = (last_sample - first_sample) as f64 / rate;
        let shown_length = (end - offset).max(length);
        self.segments = self
            .segments
            .iter()
            .filter_map(|&(a, b)| {
                let a = (f64::from(a) - offset).max(0.0);
                let b = (f64::from(b) - offset).min(shown_length);
                (b > a).then_some((a as f32, b as f32))
            })
            .collect();
        self.start_s += offset;
        Ok(self)
    }

    /// The same inspection with the columns named by `phones` (the same inventory in another
    /// alphabet, e.g. [`PhoneSet::in_alphabet`](crate::phones::PhoneSet::in_alphabet)).
    pub fn renamed(mut self, phones: &crate::phones::PhoneSet) -> Result<Self> {
        let shift = self.posteriors.frame_shift_s();
        self.posteriors =
            Posteriorgram::new(self.posteriors.log_probs, phones.names().to_vec(), shift)?;
        Ok(self)
    }

    /// The name of a span's phone (`?` if the id has no column).
    pub fn span_name(&self, span: &PhoneSpan) -> &str {
        self.posteriors
            .phone_names()
            .get(span.phone.index())
            .map(String::as_str)
            .unwrap_or("?")
    }
}

/// The forms `phonrec probs` writes posteriors in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbsFormat {
    /// Tab-separated table: a header, then one row per frame starting with its time in seconds.
    Tsv,
    /// Comma-separated table, as TSV (fields quoted when they need it).
    Csv,
    /// One JSON document: column names, frame shift, and one entry per frame.
    Json,
    /// NumPy `.npy`: float32 `[frames, phones + 1]`; names and frame shift go to a JSON sidecar.
    Npy,
}

impl Choice for ProbsFormat {
    const CHOICES: &'static [Named<Self>] = &[
        Named {
            value: ProbsFormat::Tsv,
            name: "tsv",
            help: "Tab-separated table: a header, then one row per frame starting with its time in seconds",
        },
        Named {
            value: ProbsFormat::Csv,
            name: "csv",
            help: "Comma-separated table, as TSV (fields quoted when they need it)",
        },
        Named {
            value: ProbsFormat::Json,
            name: "json",
            help: "One JSON document: column names, frame shift, one entry per frame, the decoded phones",
        },
        Named {
            value: ProbsFormat::Npy,
            name: "npy",
            help: "NumPy .npy: float32 [frames, phones + 1]; names and frame shift go to a JSON sidecar",
        },
    ];
}

/// What a table holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableOptions {
    /// Natural-log probabilities instead of probabilities. Default false.
    pub log: bool,
    /// Only the `k` most probable phones of each frame with their probabilities, instead of every
    /// column. Default None (all columns). Not available for NPY.
    pub top: Option<usize>,
}

/// Write the inspection's posteriors in `format` (JSON also holds the decoded phones and the speech
/// regions). NPY writes only the array; see [`write_npy_sidecar`] for its column names. Fails with
/// [`std::io::ErrorKind::InvalidInput`] for NPY with `top`.
pub fn write_probs(
    format: ProbsFormat,
    inspection: &Inspection,
    options: &TableOptions,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let posteriors = &inspection.posteriors;
    match format {
        ProbsFormat::Tsv => {
            table::write_delimited(posteriors, inspection.start_s, options, b'\t', out)
        }
        ProbsFormat::Csv => {
            table::write_delimited(posteriors, inspection.start_s, options, b',', out)
        }
        ProbsFormat::Json => table::write_json(inspection, options, out),
        ProbsFormat::Npy => {
            if options.top.is_some() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "NPY holds every column; a top-k selection is only available in tables",
                ));
            }
            write_npy(posteriors, options.log, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn top_k_orders_by_value_then_column() {
        let row = array![0.1f32, 0.5, 0.2, 0.5, f32::NAN];
        assert_eq!(top_k(row.view(), 3), vec![(1, 0.5), (3, 0.5), (2, 0.2)]);
        assert_eq!(top_k(row.view(), 10).last().unwrap().0, 4);
    }

    #[test]
    fn names_must_match_columns() {
        let log_probs = Array2::<f32>::zeros((2, 3));
        let names = vec!["<blk>".to_string(), "a".to_string()];
        assert!(Posteriorgram::new(log_probs.clone(), names, 0.01).is_err());
        let names = vec!["<blk>".into(), "a".into(), "b".into()];
        assert!(Posteriorgram::new(log_probs.clone(), names.clone(), 0.0).is_err());
        let posteriors = Posteriorgram::new(log_probs, names, 0.01).unwrap();
        assert!((posteriors.duration_s() - 0.02).abs() < 1e-12);
    }
}
