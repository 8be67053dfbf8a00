//! `phonrec eval`: phone error rate of a model on labeled data, with the error breakdown.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use phonrec::eval::PerStats;
use phonrec::phones::{PhoneId, PhoneSet};
use phonrec::recognize::plan_rounds;
use serde_json::json;

use super::common::{data_source, load_data, write_stdout, DataArgs, DecodeArgs, InputProgress};

/// Score a model on labeled data: phone error rate and its breakdown.
///
/// Prints PER = (S + D + I) / N with substitutions, deletions, insertions, per-phone error rates and the
/// most frequent confusions.
///
/// `sil` is removed from references and hypotheses before scoring unless --score-sil is given.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model file [default: the built-in model].
    #[arg(long)]
    pub model: Option<PathBuf>,

    /// Labeled data: a manifest (TSV `audio<TAB>phones` or JSON Lines), a TIMIT root (its TEST part
    /// is scored), or a Kaldi data dir (with --lexicon).
    #[arg(long)]
    pub data: PathBuf,

    #[command(flatten)]
    pub data_args: DataArgs,

    #[command(flatten)]
    pub decode: DecodeArgs,

    /// Print one JSON object instead of the text report; its `per_utterance` list gives each
    /// utterance's id, audio, reference, hypothesis and edit counts.
    #[arg(long)]
    pub json: bool,

    /// Also write the hypotheses to this file in Kaldi `text` format (`utterance-id phone ...`, in
    /// the data's order), for Kaldi's scoring tools or a look at what went wrong.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Score `sil` too.
    #[arg(long)]
    pub score_sil: bool,

    /// Number of confusions (and worst phones) to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,

    /// Do not draw a progress bar (drawn on a terminal for more than a few seconds' work).
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let recognizer = args.decode.load_recognizer(args.model.as_deref(), true)?;
    let phones = recognizer.phones().clone();
    let source = data_source(
        &args.data,
        args.data_args.lexicon.as_deref(),
        args.data_args.test_split(),
    )?;
    let data = load_data(&source, &phones, "evaluation")?;
    let silence = (!args.score_sil).then(|| phones.silence()).flatten();
    let keep = |p: &PhoneId| Some(*p) != silence;
    // Recognised in rounds, short utterances sharing network batches (as `transcribe` does).
    let sizes: Vec<u64> = data
        .utterances
        .iter()
        .map(|u| super::common::audio_size(&u.audio, u.span))
        .collect();
    let mut progress = InputProgress::new(&sizes, args.quiet);
    // Kept across rounds: a recording cut into many utterances is decoded once.
    let reader = phonrec::audio::PieceReader::default();
    let results: Vec<_> = plan_rounds(&sizes)
        .into_iter()
        .flat_map(|range| {
            let round_bytes: u64 = sizes[range.clone()].iter().sum();
            let round = &data.utterances[range];
            let pieces: Vec<_> = round.iter().map(|u| u.piece()).collect();
            let transcripts = recognizer.transcribe_waves(reader.read(&pieces));
            progress.advance(round.len(), round_bytes);
            round.iter().zip(transcripts)
        })
        .collect();
    progress.finish();
    let mut stats = PerStats::new();
    let mut failures = 0;
    let mut utterances = Vec::new();
    let mut hypotheses = String::new();
    let names = |ids: &[PhoneId]| {
        ids.iter()
            .map(|&p| phones.name(p))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (utt, result) in results {
        match result {
            Ok(transcript) => {
                let reference: Vec<PhoneId> = utt.phones.iter().copied().filter(keep).collect();
                let hypothesis: Vec<PhoneId> = transcript
                    .spans
                    .iter()
                    .map(|s| s.phone)
                    .filter(keep)
                    .collect();
                let counts = stats.add(&reference, &hypothesis);
                let key = phonrec::output::kaldi_key(&utt.id);
                hypotheses.push_str(&key);
                for &phone in &hypothesis {
                    hypotheses.push(' ');
                    hypotheses.push_str(phones.name(phone));
                }
                hypotheses.push('\n');
                if args.json {
                    let mut record = json!({
                        "id": utt.id,
                        "audio": utt.audio.display().to_string(),
                        "reference": names(&reference),
                        "hypothesis": names(&hypothesis),
                        "reference_phones": counts.reference_phones,
                        "substitutions": counts.substitutions,
                        "deletions": counts.deletions,
                        "insertions": counts.insertions,
                        "per": counts.per(),
                    });
                    // A Kaldi segment: where in the recording (end null: to its end).
                    if let Some(span) = utt.span {
                        record["start"] = json!(span.start_s);
                        record["end"] = json!(span.end_s);
                    }
                    utterances.push(record);
                }
            }
            Err(error) => {
                failures += 1;
                eprintln!(
                    "phonrec: error: {} ({}): {}",
                    utt.id,
                    utt.audio.display(),
                    super::common::error_chain(&error)
                );
            }
        }
    }
    // The built-in model decodes with its LM by default, a --model greedily unless --lm is given:
    // the report says which, so that two evaluations of the same weights are comparable.
    let decoding = format!(
        "{} ({})",
        recognizer.decoding(),
        match &args.model {
            None => "the built-in model with its default decoding".to_string(),
            Some(path) => format!("--model {}", path.display()),
        }
    );
    if let Some(path) = &args.output {
        std::fs::write(path, &hypotheses)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        let mut report = report_json(&stats, &phones, args.top);
        report["decoding"] = json!(decoding);
        report["per_utterance"] = json!(utterances);
        let json = serde_json::to_string(&report)?;
        write_stdout(|out| writeln!(out, "{json}"))?;
    } else {
        write_stdout(|out| {
            print_report(&stats, &phones, args.top, out)?;
            writeln!(out, "\ndecoding: {decoding}")
        })?;
    }
    if failures > 0 {
        eprintln!("phonrec: {failures} utterances could not be scored");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Phones by error rate, worst first, among those that occur.
fn worst_phones(stats: &PerStats) -> Vec<(PhoneId, phonrec::eval::PhoneErrors)> {
    let mut rows: Vec<_> = stats
        .per_phone()
        .iter()
        .filter(|(_, e)| e.occurrences > 0)
        .map(|(p, e)| (*p, *e))
        .collect();
    rows.sort_by(|a, b| b.1.error_rate().total_cmp(&a.1.error_rate()));
    rows
}

fn report_json(stats: &PerStats, phones: &PhoneSet, top: usize) -> serde_json::Value {
    let c = stats.counts();
    json!({
        "per": stats.per(),
        "utterances": stats.num_utterances(),
        "reference_phones": c.reference_phones,
        "substitutions": c.substitutions,
        "deletions": c.deletions,
        "insertions": c.insertions,
        "per_phone": worst_phones(stats).iter().map(|(p, e)| json!({
            "phone": phones.name(*p),
            "occurrences": e.occurrences,
            "substitutions": e.substitutions,
            "deletions": e.deletions,
            "insertions": e.insertions,
            "error_rate": e.error_rate(),
        })).collect::<Vec<_>>(),
        "top_confusions": stats.top_confusions(top).iter().map(|c| json!({
            "reference": phones.name(c.reference),
            "hypothesis": phones.name(c.hypothesis),
            "count": c.count,
        })).collect::<Vec<_>>(),
    })
}

fn print_report(
    stats: &PerStats,
    phones: &PhoneSet,
    top: usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let c = stats.counts();
    writeln!(
        out,
        "PER {:.2}%  ({} utterances, N = {} phones: S {}, D {}, I {})",
        stats.per() * 100.0,
        stats.num_utterances(),
        c.reference_phones,
        c.substitutions,
        c.deletions,
        c.insertions
    )?;
    writeln!(out, "\nworst phones (error = (S + D) / count):")?;
    writeln!(
        out,
        "  {:<6}{:>7}{:>6}{:>6}{:>6}{:>8}",
        "phone", "count", "sub", "del", "ins", "error"
    )?;
    for (phone, e) in worst_phones(stats).iter().take(top) {
        writeln!(
            out,
            "  {:<6}{:>7}{:>6}{:>6}{:>6}{:>7.1}%",
            phones.name(*phone),
            e.occurrences,
            e.substitutions,
            e.deletions,
            e.insertions,
            e.error_rate() * 100.0
        )?;
    }
    writeln!(out, "\ntop confusions (said -> recognised):")?;
    for confusion in stats.top_confusions(top) {
        writeln!(
            out,
            "  {:>4} -> {:<4} {}",
            phones.name(confusion.reference),
            phones.name(confusion.hypothesis),
            confusion.count
        )?;
    }
    Ok(())
}
