//! Subcommands, one file each: a clap `Args` struct (its doc comments are the `--help`) and a `run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod align;
mod average;
mod bench;
mod choice;
mod common;
mod convert;
mod eval;
mod features;
mod fit_frame_head;
mod live;
mod lm;
mod output_file;
mod probs;
mod score;
mod shard;
mod train;
mod transcribe;

pub(crate) use common::{error_chain, AUDIO_EXTENSIONS};

/// The command line as `main` parses it: [`Cli`] with negative numbers accepted as option values
/// everywhere (`--lm-weight -5` is then refused by its range check, with the flag named, instead
/// of clap's advice to write `-- -5`, which would make it a file name).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_subcommands(|sub| {
        let ids: Vec<clap::Id> = sub
            .get_arguments()
            .filter(|arg| arg.get_action().takes_values())
            .map(|arg| arg.get_id().clone())
            .collect();
        ids.into_iter().fold(sub, |sub, id| {
            sub.mut_arg(id, |arg| arg.allow_negative_numbers(true))
        })
    })
}

/// phonrec: phoneme recognition from audio.
///
/// Reads WAV (8–32-bit PCM, 32/64-bit float, µ-law/A-law, ADPCM, GSM 6.10; 8–192 kHz, any channel count), NIST
/// SPHERE, Sun .au, FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF, MP4/M4A (AAC, ALAC), raw AAC, WebM/Matroska, AMR and GSM files,
/// computes Kaldi-compatible features, and (with a model) turns speech into ARPAbet phonemes.
#[derive(Parser, Debug)]
#[command(name = "phonrec", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    // Subcommands without a doc comment here use their Args struct's doc as summary and long --help.
    Transcribe(transcribe::TranscribeArgs),
    // As for Probs: `LiveArgs`'s doc is the summary and the long --help.
    Live(live::LiveArgs),
    // As for Probs: `AlignArgs`'s doc is the summary and the long --help.
    Align(align::AlignArgs),
    // As for Probs: `ScoreArgs`'s doc is the summary and the long --help.
    Score(score::ScoreArgs),
    Train(train::TrainArgs),
    Eval(eval::EvalArgs),
    Features(features::FeaturesArgs),
    Lm(lm::LmArgs),
    // As for Probs: `AverageArgs`'s doc is the summary and the long --help.
    Average(average::AverageArgs),
    // As for Probs: `ConvertArgs`'s doc is the summary and the long --help.
    Convert(convert::ConvertArgs),
    // No doc comment here: `ProbsArgs`'s own doc is both the summary and the long --help.
    Probs(probs::ProbsArgs),
    // As for Probs: `BenchArgs`'s doc is the summary and the long --help.
    Bench(bench::BenchArgs),
    // As for Probs: `FitFrameHeadArgs`'s doc is the summary and the long --help.
    FitFrameHead(fit_frame_head::FitFrameHeadArgs),
}

/// Run the chosen subcommand; the exit code says whether every input succeeded. `matches` are the
/// parsed arguments `cli` came from (`train --resume` checks which options were given).
pub fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Transcribe(args) => transcribe::run(args),
        Command::Align(args) => align::run(args),
        Command::Score(args) => score::run(args),
        Command::Train(args) => train::run(args, matches.subcommand_matches("train")),
        Command::Eval(args) => eval::run(args),
        Command::Features(args) => features::run(args),
        Command::Lm(args) => lm::run(args),
        Command::Live(args) => live::run(args),
        Command::Average(args) => average::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Probs(args) => probs::run(args),
        Command::Bench(args) => bench::run(args),
        Command::FitFrameHead(args) => fit_frame_head::run(args),
    }
}

/// Parse Kaldi-style booleans: `true`/`false` (also `1`/`0`, `yes`/`no`).
pub(crate) fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("expected true or false, got '{other}'")),
    }
}
