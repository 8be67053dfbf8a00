//! `phonrec fit-frame-head`: fit the frame head `phonrec align` places boundaries with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use phonrec::audio::read_audio;
use phonrec::model::{frame_classes, FitOptions, FrameExamples, FrameHead};
use phonrec::phones::PhoneId;
use phonrec::recognize::{Recognizer, RecognizerOptions};
use rayon::prelude::*;
use serde::Deserialize;

use super::common::load_model;
use super::output_file::write_atomically;
use phonrec::model::Precision;

/// Fit a frame head for `phonrec align` on speech with exact phone timings.
///
/// A CTC network times spikes, not phones. A frame head is a softmax layer on the network's last
/// hidden layer that labels each frame with its phone or silence (the network itself frozen);
/// `phonrec align --boundaries HEAD.safetensors` then puts each boundary where the labels change.
/// The built-in model has one (`models/default-frames.safetensors`, fitted with this command on
/// three synthetic training voices: `models/README.md`, "Alignment"); fit your own for a model you
/// trained, on timed speech it was trained on or like it (e.g. TTS voices that report phone
/// timings, or a corpus with hand-checked phone boundaries such as TIMIT's `.phn` files).
#[derive(Args, Debug)]
pub struct FitFrameHeadArgs {
    /// Timed phones, one recording per line as JSON: `{"audio": PATH, "phones": [[PHONE, START_S,
    /// END_S], ...]}` (relative paths are relative to this file's folder; time no phone covers is
    /// silence; phones in the model's set, CMUdict stress digits and TIMIT symbols folded as for
    /// training labels). `recipes/align/make_timed.py` writes this as `reference.jsonl`.
    #[arg(long, value_name = "JSONL")]
    pub reference: PathBuf,

    /// Model file made by `phonrec train` [default: the built-in model].
    #[arg(long)]
    pub model: Option<PathBuf>,

    /// Where to write the frame head (`.safetensors`).
    #[arg(long, short)]
    pub output: PathBuf,

    /// L2 penalty on the head's weights (chosen for the built-in model by leaving one fitting voice
    /// out).
    #[arg(long, default_value_t = FitOptions::default().weight_decay, value_parser = parse_weight_decay)]
    pub weight_decay: f64,

    /// Full-batch Adam steps (at least 1).
    #[arg(long, default_value_t = FitOptions::default().iterations, value_parser = parse_iterations)]
    pub iterations: usize,
}

/// How far one phone may reach into the next, or past the recording's end (rounding in the tool
/// that wrote the times), in seconds.
const OVERLAP_TOLERANCE_S: f64 = 0.005;

/// `--weight-decay`: a finite number ≥ 0.
fn parse_weight_decay(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(decay) if decay.is_finite() && decay >= 0.0 => Ok(decay),
        _ => Err("expected a finite number ≥ 0".to_string()),
    }
}

/// `--iterations`: at least one step (none would write an untrained head).
fn parse_iterations(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(steps) if steps >= 1 => Ok(steps),
        _ => Err("expected a number of steps ≥ 1".to_string()),
    }
}

/// One line of the reference file.
#[derive(Deserialize)]
struct TimedRecording {
    audio: PathBuf,
    phones: Vec<(String, f64, f64)>,
}

pub fn run(args: FitFrameHeadArgs) -> anyhow::Result<ExitCode> {
    let text = phonrec::data::read_text(&args.reference)
        .with_context(|| format!("cannot read {}", args.reference.display()))?;
    let folder = args.reference.parent().unwrap_or(Path::new("."));
    let mut recordings = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", args.reference.display(), index + 1);
        let mut recording: TimedRecording = serde_json::from_str(line)
            .with_context(|| format!("{}: expected {{\"audio\": ..., \"phones\": [...]}}", at()))?;
        if let Some((phone, start, end)) = recording.phones.iter().find(|(_, start, end)| {
            !(start.is_finite() && end.is_finite() && 0.0 <= *start && start <= end)
        }) {
            bail!("{}: phone '{phone}' has times {start}..{end}", at());
        }
        // Overlapping phones are a wrong pairing or wrong units, not timings to learn from.
        if let Some(pair) = recording
            .phones
            .windows(2)
            .find(|pair| pair[1].1 + OVERLAP_TOLERANCE_S < pair[0].2)
        {
            bail!(
                "{}: phone '{}' starts at {} s, before '{}' ends at {} s: phones are listed in \
                 time order without overlaps",
                at(),
                pair[1].0,
                pair[1].1,
                pair[0].0,
                pair[0].2
            );
        }
        if recording.audio.is_relative() {
            recording.audio = folder.join(&recording.audio);
        }
        recordings.push((at(), index + 1, recording));
    }
    if recordings.is_empty() {
        bail!("{} lists no recordings", args.reference.display());
    }
    super::output_file::refuse_stream_for_model(&args.output)?;
    super::output_file::refuse_overwriting_inputs(
        &args.output,
        recordings
            .iter()
            .map(|(_, _, r)| r.audio.as_path())
            .chain([args.reference.as_path()])
            .chain(args.model.as_deref()),
    )?;
    let model = load_model(args.model.as_deref(), Precision::F32)?;
    let hidden_width = 2 * model.network().config().hidden_size;
    let recognizer = Recognizer::new(model, RecognizerOptions::default())?;
    let phones = recognizer.phones().clone();
    let shift = recognizer.output_frame_shift_s();
    let centre = recognizer.output_frame_centre_s();
    // Every phone name checked before the network runs over the recordings.
    for (_, line, recording) in &recordings {
        for (name, _, _) in &recording.phones {
            phones.parse_sequence(name, &args.reference, *line)?;
        }
    }
    eprintln!(
        "phonrec: computing the network's hidden layer on {} recordings",
        recordings.len()
    );
    let examples = recordings
        .par_iter()
        .map(|(at, line, recording)| -> anyhow::Result<FrameExamples> {
            let mut timed = Vec::with_capacity(recording.phones.len());
            for (name, start, end) in &recording.phones {
                let ids = phones.parse_sequence(name, &args.reference, *line)?;
                let phone: Option<&PhoneId> = ids.first();
                if let Some(&phone) = phone {
                    timed.push((phone, *start, *end));
                }
            }
            let wave = read_audio(&recording.audio)
                .with_context(|| format!("{at}: {}", recording.audio.display()))?;
            let duration = wave.duration_s();
            if let Some((name, _, end)) = recording
                .phones
                .iter()
                .find(|(_, _, end)| *end > duration + OVERLAP_TOLERANCE_S)
            {
                bail!(
                    "{at}: phone '{name}' ends at {end} s, past the end of {} ({duration:.3} s): \
                     a wrong recording, or times in other units than seconds?",
                    recording.audio.display()
                );
            }
            let hidden = recognizer
                .hidden_states(wave)
                .with_context(|| format!("{at}: {}", recording.audio.display()))?;
            let classes = frame_classes(&timed, &phones, hidden.nrows(), shift, centre);
            Ok(FrameExamples { hidden, classes })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let frames: usize = examples.iter().map(|e| e.classes.len()).sum();
    eprintln!(
        "phonrec: fitting a {}-class head on {frames} frames ({} hidden values each)",
        phones.len(),
        hidden_width
    );
    let options = FitOptions {
        weight_decay: args.weight_decay,
        iterations: args.iterations,
        ..FitOptions::default()
    };
    let head = FrameHead::fit(&examples, &phones, &options)?;
    let correct: usize = examples
        .iter()
        .map(|e| -> phonrec::Result<usize> {
            let log_probs = head.log_probs(e.hidden.view())?;
            Ok(log_probs
                .rows()
                .into_iter()
                .zip(&e.classes)
                .filter(|(row, &class)| {
                    let best = (0..row.len())
                        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                        .unwrap_or(0);
                    best == usize::from(class)
                })
                .count())
        })
        .sum::<phonrec::Result<usize>>()?;
    write_atomically(&args.output, &head.to_bytes(&phones)?)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "phonrec: frame head written to {} ({:.1} % of the fitting frames labelled right)",
        args.output.display(),
        100.0 * correct as f64 / frames.max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}
