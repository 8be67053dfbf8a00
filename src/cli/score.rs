//! `phonrec score`: audio + the text it should say -> how well each phone and word was pronounced.

use std::process::ExitCode;

use clap::Args;
use phonrec::align::DEFAULT_GOP_THRESHOLD;
use phonrec::choice::Choice;
use phonrec::output::{write_scores, ScoreFormat, SCORE_TSV_HEADER};

use super::align::{run_jobs, Output, TargetArgs};
use super::choice::choice;

/// Score pronunciation: how clearly each phone the text expects was said, and what was heard
///
/// One file:   phonrec score learner.wav --text "the words it should say" --format tsv
/// A corpus:   phonrec score corpus/ --output-dir scores/      (speaker/utt.wav beside utt.lab)
///
/// The audio is aligned to the text as `phonrec align` does (same lexicon, options and checks). For
/// each expected phone p, over its aligned frames (without the frames another phone's spike holds),
/// the peak log posterior of every phone is taken; the goodness of pronunciation (GOP) is
/// peak(p) − max over other phones q of peak(q): about +3 for a clear p, negative when another phone
/// is stronger there (a substitution), low when nothing fires (a deletion). The phone with the highest
/// peak is what was "heard" (nothing, if no phone reaches 10 %). Phones with a GOP below --threshold,
/// and phones where nothing is heard, are flagged as mispronounced; a word's score is its lowest
/// phone GOP. Evaluation on synthesised
/// mispronunciations: models/README.md, "Pronunciation scoring".
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Output format.
    #[arg(long, value_parser = choice::<ScoreFormat>(), default_value = ScoreFormat::Json.name())]
    pub format: ScoreFormat,

    /// GOP below which a phone is flagged as mispronounced (higher flags more).
    #[arg(long, default_value_t = DEFAULT_GOP_THRESHOLD, allow_hyphen_values = true, value_name = "GOP")]
    pub threshold: f32,
}

pub fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let (format, threshold) = (args.format, args.threshold);
    if !threshold.is_finite() {
        anyhow::bail!("--threshold must be a finite number");
    }
    run_jobs(
        &args.target,
        Output {
            one_recording_per_file: format == ScoreFormat::TextGrid,
            extension: format.extension(),
            header: (format == ScoreFormat::Tsv).then_some(SCORE_TSV_HEADER),
            keyed_lines: format == ScoreFormat::Tsv,
        },
        |recognizer, job, wave, target| {
            let mut scores = recognizer.score(wave, target, threshold)?;
            job.label(&mut scores.alignment);
            Ok(scores)
        },
        |scores| &scores.alignment,
        |scores, phones, out| write_scores(format, scores, phones, out),
    )
}
