//! `phonrec probs`: one audio file -> the network's per-frame phone probabilities, as a table (TSV, CSV,
//! JSON), an NPY array with a JSON sidecar, a PNG posteriorgram and/or an interactive HTML page.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use phonrec::choice::Choice;
use phonrec::inspect::{
    write_html, write_npy_sidecar, write_png, write_probs, Inspection, PictureOptions, ProbsFormat,
    TableOptions,
};
use phonrec::phones::Alphabet;

use super::choice::choice;
use super::common::{write_stdout, ChannelArg, DecodeArgs, Kept};
use super::output_file::{refuse_overwriting_inputs, OutputFile};

/// Show per-frame phone probabilities: a table (TSV/CSV/JSON/NPY), a PNG posteriorgram, an HTML page.
///
/// Runs the model on one audio file. By default prints a table on stdout: one row per frame, its start time in seconds, then the
/// probability of every phone (the header names them, the CTC blank `<blk>` first; each row sums to 1).
/// --png draws a posteriorgram picture and --html writes a self-contained interactive page (play the
/// audio over the posteriorgram, hover for a frame's top phones, zoom); when either is given, the table
/// is written only if --output or --format asks for it. --start and --end show a part of a long
/// recording, with the probabilities the network gives in the whole file and times in its timeline.
#[derive(Args, Debug)]
pub struct ProbsArgs {
    /// Audio file: WAV (PCM or float, 8-192 kHz, any channel count), NIST SPHERE, Sun .au, FLAC,
    /// Ogg Vorbis or Opus, MP3, AIFF, CAF, MP4/M4A, WebM/Matroska or AMR; `-` for standard input.
    pub file: PathBuf,

    /// Model file made by `phonrec train` [default: the built-in model].
    #[arg(long)]
    pub model: Option<PathBuf>,

    #[command(flatten)]
    pub channel: ChannelArg,

    /// Table format: tsv, csv, json, or npy (float32 [frames, phones + 1], plus a sidecar OUTPUT.json
    /// naming the columns and giving the frame shift) [default: from the --output extension, else tsv].
    #[arg(long, value_parser = choice::<ProbsFormat>())]
    pub format: Option<ProbsFormat>,

    /// Where the table goes; `-` is stdout (NPY on stdout has no sidecar) [default: stdout].
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Natural-log probabilities instead of probabilities (tables and NPY).
    #[arg(long)]
    pub log: bool,

    /// Only the K most probable phones of each frame, with their probabilities (tables only).
    #[arg(long, value_name = "K")]
    pub top: Option<usize>,

    /// Draw a posteriorgram to PATH (PNG): waveform, decoded phones, phones × time in colour.
    #[arg(long, value_name = "PATH")]
    pub png: Option<PathBuf>,

    /// Horizontal scale of the PNG in pixels per second (recordings over 100 s are squeezed to 4000 px).
    #[arg(long, default_value_t = 400.0, value_name = "PX")]
    pub pixels_per_second: f32,

    /// Write an interactive page to PATH (HTML, self-contained, with the audio embedded).
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,

    /// Show only the part of the recording from this time on, in seconds (tables, PNG and HTML). The
    /// network still hears the whole recording, so the probabilities are those it gives with the
    /// context around the part; times stay in the recording's timeline [default: 0].
    #[arg(long, value_name = "SECONDS")]
    pub start: Option<f64>,

    /// Show only the part of the recording before this time, in seconds [default: its end].
    #[arg(long, value_name = "SECONDS")]
    pub end: Option<f64>,

    /// Phone symbols in the table's columns and the HTML page (the PNG keeps the model's names: its
    /// bundled font is ASCII).
    #[arg(long, value_parser = choice::<Alphabet>(), default_value = Alphabet::Arpabet.name())]
    pub alphabet: Alphabet,

    /// How the phones drawn in the PNG and HTML and listed under `decoded` in JSON are decoded: the
    /// same options and defaults as `transcribe`, so both show the same phones.
    #[command(flatten)]
    pub decode: DecodeArgs,
}

impl ProbsArgs {
    /// The table's format: `--format`, else the output's extension, else TSV.
    fn table_format(&self) -> ProbsFormat {
        if let Some(format) = self.format {
            return format;
        }
        let extension = self
            .output
            .as_deref()
            .and_then(Path::extension)
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("npy") => ProbsFormat::Npy,
            Some("csv") => ProbsFormat::Csv,
            Some("json") => ProbsFormat::Json,
            _ => ProbsFormat::Tsv,
        }
    }

    /// Whether a table is wanted: always, unless only pictures were asked for.
    fn wants_table(&self) -> bool {
        let pictures = self.png.is_some() || self.html.is_some();
        !pictures || self.output.is_some() || self.format.is_some()
    }
}

/// Audio longer than this (seconds) makes an HTML page of tens of megabytes: a note suggests
/// showing a part.
const LONG_PAGE_S: f64 = 600.0;

/// Run `phonrec probs`.
pub fn run(args: ProbsArgs) -> anyhow::Result<ExitCode> {
    let format = args.table_format();
    if args.top == Some(0) {
        bail!("--top must be at least 1");
    }
    if args.top.is_some() && format == ProbsFormat::Npy {
        bail!("--top selects phones per row of a table; NPY always holds every column (drop --top, or use --format tsv/csv/json)");
    }
    if !(args.pixels_per_second > 0.0 && args.pixels_per_second.is_finite()) {
        bail!(
            "--pixels-per-second must be positive, got {}",
            args.pixels_per_second
        );
    }
    let start_s = args.start.unwrap_or(0.0);
    if !(start_s.is_finite() && start_s >= 0.0) {
        bail!("--start must be a time of 0 seconds or later, got {start_s}");
    }
    if let Some(end_s) = args.end {
        if end_s.is_nan() || end_s <= start_s {
            bail!("--end ({end_s} s) must come after --start ({start_s} s)");
        }
    }
    let picture_options = PictureOptions {
        pixels_per_second: args.pixels_per_second,
        ..PictureOptions::default()
    };
    // Checked before the network runs, not after.
    picture_options
        .validate()
        .map_err(|reason| anyhow::anyhow!("--pixels-per-second: {reason}"))?;
    // Each output and the option that names it.
    let mut outputs: Vec<(&str, PathBuf)> = [("--png", &args.png), ("--html", &args.html)]
        .into_iter()
        .filter_map(|(flag, path)| Some((flag, path.clone()?)))
        .collect();
    if args.wants_table() {
        if let Some(table) = args.output.as_deref().filter(|p| p.as_os_str() != "-") {
            outputs.push(("-o", table.to_path_buf()));
            if format == ProbsFormat::Npy {
                outputs.push(("the NPY table's sidecar", sidecar_path(table)));
            }
        }
    }
    for (index, (flag, output)) in outputs.iter().enumerate() {
        refuse_overwriting_inputs(output, [args.file.as_path()])?;
        // Two outputs on one path: the second written would silently replace the first.
        if let Some((earlier, _)) = outputs[..index]
            .iter()
            .find(|(_, e)| same_destination(e, output))
        {
            bail!(
                "{flag} and {earlier} both name {}: give each output its own file",
                output.display()
            );
        }
    }
    let recognizer = args
        .decode
        .load_recognizer(args.model.as_deref(), Kept::default())?;
    let wave = super::common::read_audio_arg(&args.file, args.channel.choice())?;
    let title = args.file.display().to_string();
    let inspection = Inspection::compute(&recognizer, wave, title)
        .with_context(|| format!("computing the probabilities of {}", args.file.display()))?;
    let inspection = if args.start.is_some() || args.end.is_some() {
        inspection
            .window(start_s, args.end)
            .with_context(|| format!("--start/--end in {}", args.file.display()))?
    } else {
        inspection
    };
    if args.html.is_some() && inspection.wave.duration_s() > LONG_PAGE_S {
        // The page embeds the audio as 16-bit PCM and a byte per probability, both in base64.
        let bytes = (inspection.wave.samples.len() * 2
            + inspection.posteriors.num_frames() * inspection.posteriors.num_classes())
            as f64
            * 4.0
            / 3.0;
        eprintln!(
            "phonrec: note: the page holds {:.0} minutes of audio and probabilities (about {:.0} MB); \
             --start and --end make a smaller page of a part",
            inspection.wave.duration_s() / 60.0,
            bytes / 1e6
        );
    }
    if let Some(path) = &args.png {
        write_file(path, |out| write_png(&inspection, &picture_options, out))?;
    }
    let (names, unknown) = recognizer.phones().in_alphabet(args.alphabet);
    if !unknown.is_empty() {
        eprintln!(
            "phonrec: note: no IPA for {} (not ARPAbet): written as the model names them",
            unknown.join(" ")
        );
    }
    let inspection = inspection.renamed(&names)?;

    if args.wants_table() {
        let options = TableOptions {
            log: args.log,
            top: args.top,
        };
        match args.output.as_deref() {
            None => write_stdout(|out| write_probs(format, &inspection, &options, out))?,
            Some(path) if path.as_os_str() == "-" => {
                write_stdout(|out| write_probs(format, &inspection, &options, out))?
            }
            Some(path) => {
                write_file(path, |out| write_probs(format, &inspection, &options, out))?;
                if format == ProbsFormat::Npy {
                    let sidecar = sidecar_path(path);
                    let array_name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    write_file(&sidecar, |out| {
                        write_npy_sidecar(&inspection, args.log, &array_name, out)
                    })?;
                }
            }
        }
    }
    if let Some(path) = &args.html {
        write_file(path, |out| write_html(&inspection, out))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `OUT.json` beside `OUT` (`probs.npy` -> `probs.npy.json`).
fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

fn write_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = OutputFile::create(path)?;
    write(&mut out).with_context(|| format!("writing {}", path.display()))?;
    out.commit()
}

/// Whether two output paths name one file (spelled alike, or the same existing file).
fn same_destination(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => {
            // Not written yet: compare the folder's canonical form and the file name.
            let parts = |p: &Path| {
                let folder = p.parent().filter(|f| !f.as_os_str().is_empty());
                let folder =
                    folder.map_or_else(|| std::fs::canonicalize("."), std::fs::canonicalize);
                (folder.ok(), p.file_name().map(|n| n.to_os_string()))
            };
            parts(a) == parts(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_sits_beside_the_array() {
        assert_eq!(
            sidecar_path(Path::new("out/x.npy")),
            PathBuf::from("out/x.npy.json")
        );
    }
}
