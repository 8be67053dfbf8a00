//! `phonrec transcribe`: audio files -> phonemes (text, JSON Lines or CTM).

use std::io::Write;

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use phonrec::choice::Choice;
use phonrec::output::{write_transcript, OutputFormat};
use rayon::prelude::*;

use super::choice::choice;
use super::common::{error_chain, expand_inputs, load_model, DecodeArgs, Input};

/// Print the phonemes of audio files.
///
/// Reads WAV (8/16/24/32-bit PCM, 32-bit float; any sample rate and channel count, resampled to the
/// model's rate), NIST SPHERE, FLAC, Ogg Vorbis and MP3, recognised by content. Folders are searched
/// for .wav, .sph, .flac, .ogg and .mp3 files (symlinks followed, each folder once); `-` reads
/// standard input: an audio stream (`sox in.aiff -t wav - | phonrec transcribe -`) or else a list of
/// paths, one per line.
/// A file that fails is reported on stderr and skipped; the exit status is then non-zero.
#[derive(Args, Debug)]
pub struct TranscribeArgs {
    /// Audio files, folders, Kaldi data dirs (a folder with wav.scp) or wav.scp files (output then
    /// keyed by utterance id), or `-` for standard input (audio, or a list of paths).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// Write the output to this file instead of standard output (e.g. `-o hyp.txt --format kaldi`
    /// for a Kaldi `text` file). Lines are written as files finish, in input order.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Model file made by `phonrec train` [default: the built-in model].
    #[arg(long)]
    pub model: Option<PathBuf>,

    #[command(flatten)]
    pub decode: DecodeArgs,

    /// Output: text (`path<TAB>phones`, or the utterance id for wav.scp inputs), json (one object per
    /// line, with times and confidences), ctm (`file 1 start duration phone confidence`), or kaldi
    /// (Kaldi `text`: `key phone phone ...`).
    #[arg(long, value_parser = choice::<OutputFormat>(), default_value = OutputFormat::Text.name())]
    pub format: OutputFormat,

    /// Keep `sil` in the output (it is dropped by default). Only a model trained on labels with `sil`
    /// outputs it; the built-in model was not (its training labels have no silence), so with it this
    /// changes nothing: silence shows as the gaps between phones and, in JSON, as the speech
    /// `segments` around it.
    #[arg(long)]
    pub keep_sil: bool,
}

/// Files decoded in parallel before their results are printed, in input order.
const FILES_PER_ROUND: usize = 8;

pub fn run(args: TranscribeArgs) -> anyhow::Result<ExitCode> {
    let model = load_model(args.model.as_deref())?;
    if args.keep_sil && args.model.is_none() {
        eprintln!(
            "phonrec: note: the built-in model never outputs sil (its training labels have none), so \
             --keep-sil changes nothing; silence shows as gaps between phones and as JSON `segments`"
        );
    }
    let recognizer = args
        .decode
        .recognizer(model, args.model.is_none(), args.keep_sil)?;
    let files = expand_inputs(&args.files)?;
    if files.is_empty() {
        anyhow::bail!("no audio files found in the given inputs");
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut failures = 0;
    for round in files.chunks(FILES_PER_ROUND) {
        let results: Vec<_> = round
            .par_iter()
            .map(|input| match input {
                Input::File(path) => recognizer.transcribe_file(path),
                Input::Utterance { id, path } => {
                    let mut transcript = recognizer.transcribe_file(path)?;
                    transcript.id = Some(id.clone());
                    Ok(transcript)
                }
                Input::Stdin(bytes) => {
                    let name = input.name();
                    let wave = phonrec::audio::read_audio_bytes(bytes, &name)?;
                    let mut transcript = recognizer.transcribe_wave(wave)?;
                    transcript.source = name;
                    Ok(transcript)
                }
            })
            .collect();
        for result in results {
            match result {
                Ok(transcript) => {
                    write_transcript(args.format, &transcript, recognizer.phones(), &mut out)?;
                }
                Err(error) => {
                    failures += 1;
                    eprintln!("phonrec: error: {}", error_chain(&error));
                }
            }
        }
        out.flush()?;
    }
    if failures > 0 {
        eprintln!("phonrec: {failures} of {} files failed", files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
