//! Posteriors as a NumPy `.npy` array, float32 `[frames, phones + 1]`, plus a JSON sidecar that names
//! the columns and gives the frame shift (an `.npy` file has no room for either).
//!
//! ```python
//! probs = numpy.load("x.npy"); meta = json.load(open("x.npy.json"))
//! times = meta["start_s"] + numpy.arange(len(probs)) * meta["frame_shift_s"]; columns = meta["phones"]
//! ```

use std::io::Write;

use ndarray_npy::WriteNpyExt;
use serde::Serialize;

use super::{Inspection, Posteriorgram};

/// Write the posteriors (or with `log`, the natural-log posteriors) as float32 `[frames, classes]`.
pub fn write_npy(
    posteriors: &Posteriorgram,
    log: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let values = if log {
        posteriors.log_probs().to_owned()
    } else {
        posteriors.probs()
    };
    values
        .write_npy(out)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// The sidecar's content.
#[derive(Serialize)]
struct Sidecar<'a> {
    /// The `.npy` file this describes.
    array: &'a str,
    /// `[frames, classes]`.
    shape: [usize; 2],
    dtype: &'static str,
    /// `probability` or `log_probability` (natural log).
    values: &'static str,
    /// Where row 0 starts in the recording, seconds (0 unless a part is shown).
    start_s: f64,
    /// Seconds between rows; row `t` starts at `start_s + t * frame_shift_s`.
    frame_shift_s: f64,
    /// Column names, the CTC blank first.
    phones: &'a [String],
}

/// Write the JSON sidecar of the inspection's array written by [`write_npy`] to the file named
/// `array_name`: `{"array", "shape", "dtype": "float32", "values", "start_s", "frame_shift_s",
/// "phones": [column names]}`.
pub fn write_npy_sidecar(
    inspection: &Inspection,
    log: bool,
    array_name: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let posteriors = &inspection.posteriors;
    let sidecar = Sidecar {
        array: array_name,
        shape: [posteriors.num_frames(), posteriors.num_classes()],
        dtype: "float32",
        values: if log {
            "log_probability"
        } else {
            "probability"
        },
        start_s: inspection.start_s,
        frame_shift_s: posteriors.frame_shift_s(),
        phones: posteriors.phone_names(),
    };
    serde_json::to_writer_pretty(&mut *out, &sidecar)?;
    writeln!(out)
}
