//! `phonrec eval`: phone error rate of a model on labeled data, with the error breakdown.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use phonrec::data::{Dataset, Utterance};
use phonrec::eval::PerStats;
use phonrec::phones::{PhoneId, PhoneSet};
use phonrec::recognize::plan_rounds;
use serde_json::json;

use super::common::{
    data_source, load_data, write_stdout, ChannelArg, DataArgs, DecodeArgs, InputProgress, Kept,
};
use super::output_file::{data_dir_files, refuse_overwriting_inputs, write_atomically};

/// Score a model on labeled data: phone error rate and its breakdown.
///
/// Prints PER = (S + D + I) / N with substitutions, deletions, insertions, per-phone error rates and the
/// most frequent confusions. With --hyp, scores another system's hypotheses on the same data instead.
///
/// `sil` is removed from references and hypotheses before scoring unless --score-sil is given.
/// Lines of the data that cannot be used (missing audio, unknown phones) are reported and skipped,
/// and utterances that cannot be read are reported: the PER then covers the rest, the report says
/// so ("incomplete: ..."; JSON `skipped_lines`, `failed_utterances`) and the exit status is 1.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model file [default: the built-in model].
    #[arg(long)]
    pub model: Option<PathBuf>,

    /// Labeled data: a manifest (TSV `audio<TAB>phones` or JSON Lines), a TIMIT root (its TEST part
    /// is scored), or a Kaldi data dir (words to phones by --lexicon or the built-in CMUdict; a
    /// `text` of phones is read as phones).
    #[arg(long)]
    pub data: PathBuf,

    #[command(flatten)]
    pub data_args: DataArgs,

    #[command(flatten)]
    pub channel: ChannelArg,

    #[command(flatten)]
    pub decode: DecodeArgs,

    /// Score these hypotheses instead of running a model: a Kaldi `text` file (`utterance-id phone
    /// ...`, keyed as `-o` writes them: the utterance id, or the manifest's `file:line`, whitespace
    /// as `_`; or keyed by a manifest line's recording, as `transcribe --manifest --format kaldi
    /// -o` writes them), in ARPAbet with CMUdict's stress digits and TIMIT's 61/48 symbols folded as the
    /// references are, or in IPA (`--alphabet ipa` output, or another recognizer's broad IPA:
    /// diacritics and length marks ignored, `ʔ` dropped); Kaldi's word-position suffixes (`AH1_I`)
    /// are stripped and noise and filler tokens (`SPN`, `<unk>`, `[noise]`, `+NSN+`) dropped. For
    /// another recognizer's output on the same data (pocketsphinx, Allosaurus, an older model). An
    /// utterance the file lacks counts as an empty hypothesis (all deletions), with a warning.
    /// Nothing is decoded: the model and decoding options are refused with it.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "model", "beam", "lm", "no_lm", "lm_weight", "insertion_bonus", "vtln_warps", "vtln",
        "no_segment", "speech_threshold", "extend_threshold", "min_silence", "segment_padding",
        "energy_floor", "isolate_below", "unsure_below", "keep_digital_silence", "keep_edges", "keep_clipping", "keep_dropouts",
        "keep_spectral_holes", "keep_clicks", "keep_levels", "floor_below", "dereverb", "precision",
    ])]
    pub hyp: Option<PathBuf>,

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

    /// Number of confusions (and worst phones) to list; 0 lists none (the totals alone).
    #[arg(long, default_value_t = 10)]
    pub top: usize,

    /// Do not draw a progress bar (drawn on a terminal for more than a few seconds' work).
    #[arg(long)]
    pub quiet: bool,
}

/// Refuse an `-o` that names one of the recordings the data lists.
fn refuse_overwriting_audio(args: &EvalArgs, data: &Dataset) -> anyhow::Result<()> {
    match &args.output {
        Some(output) => {
            refuse_overwriting_inputs(output, data.utterances.iter().map(|u| u.audio.as_path()))
        }
        None => Ok(()),
    }
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    if let Some(output) = &args.output {
        let inputs = [
            Some(args.data.as_path()),
            args.hyp.as_deref(),
            args.data_args.lexicon.as_deref(),
        ];
        let data_files = data_dir_files([args.data.as_path()]);
        refuse_overwriting_inputs(
            output,
            inputs
                .into_iter()
                .flatten()
                .chain(data_files.iter().map(PathBuf::as_path)),
        )?;
    }
    if let Some(hyp) = &args.hyp {
        let phones = PhoneSet::timit39();
        let data = load_data(&eval_source(&args)?, &phones, "evaluation")?;
        refuse_overwriting_audio(&args, &data)?;
        let hypotheses = read_hypotheses(hyp, &phones, &data.utterances)?;
        let description = format!("hypotheses read from {}", hyp.display());
        let skipped = data.problems.len();
        return report(
            &args,
            &phones,
            &data.utterances,
            skipped,
            hypotheses,
            &description,
        );
    }
    let recognizer = args.decode.load_recognizer(
        args.model.as_deref(),
        Kept {
            keep_silence: true,
            ..Kept::default()
        },
    )?;
    let phones = recognizer.phones().clone();
    let data = load_data(&eval_source(&args)?, &phones, "evaluation")?;
    refuse_overwriting_audio(&args, &data)?;
    // Recognised in rounds, short utterances sharing network batches (as `transcribe` does).
    let sizes: Vec<u64> = data
        .utterances
        .iter()
        .map(|u| super::common::audio_size(&u.audio, u.span))
        .collect();
    let mut progress = InputProgress::new(&sizes, args.quiet);
    // Kept across rounds: a recording cut into many utterances is decoded once.
    let reader = args.channel.reader();
    let hypotheses: Vec<phonrec::Result<Vec<PhoneId>>> = plan_rounds(&sizes)
        .into_iter()
        .flat_map(|range| {
            let round_bytes: u64 = sizes[range.clone()].iter().sum();
            let round = &data.utterances[range];
            let pieces: Vec<_> = round.iter().map(|u| u.piece()).collect();
            let transcripts = recognizer.transcribe_waves(reader.read(&pieces));
            progress.advance(round.len(), round_bytes);
            transcripts.into_iter().map(|transcript| {
                transcript.map(|t| t.spans.iter().map(|span| span.phone).collect())
            })
        })
        .collect();
    progress.finish();
    // The built-in model decodes with its LM by default, a --model greedily unless --lm is given:
    // the report says which, so that two evaluations of the same weights are comparable.
    let decoding = format!(
        "{} ({})",
        recognizer.decoding(),
        match &args.model {
            None if args.decode.beam.is_none()
                && args.decode.lm.is_none()
                && !args.decode.no_lm
                && args.decode.lm_weight.is_none()
                && args.decode.insertion_bonus.is_none() =>
            {
                "the built-in model with its default decoding".to_string()
            }
            None => "the built-in model, decoding as given".to_string(),
            Some(path) => format!("--model {}", path.display()),
        }
    );
    let skipped = data.problems.len();
    report(
        &args,
        &phones,
        &data.utterances,
        skipped,
        hypotheses,
        &decoding,
    )
}

/// Where the labeled data comes from.
fn eval_source(args: &EvalArgs) -> anyhow::Result<phonrec::data::DataSource> {
    data_source(
        &args.data,
        args.data_args.lexicon.as_deref(),
        !args.data_args.no_builtin_lexicon,
        args.data_args.test_split(),
    )
}

/// Each utterance's hypothesis from a Kaldi `text` file (see `--hyp`), in the data's order; an
/// utterance the file lacks gets an empty one (with a warning), lines for utterances the data lacks
/// are counted in a warning.
fn read_hypotheses(
    path: &Path,
    phones: &PhoneSet,
    utterances: &[Utterance],
) -> anyhow::Result<Vec<phonrec::Result<Vec<PhoneId>>>> {
    let text = phonrec::data::read_text(path)
        .with_context(|| format!("cannot read the hypotheses {}", path.display()))?;
    let mut by_key: HashMap<&str, Vec<PhoneId>> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (key, said) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let ids = phones.parse_sequence(said, path, index + 1)?;
        if by_key.insert(key, ids).is_some() {
            bail!("{}:{}: '{key}' is listed twice", path.display(), index + 1);
        }
    }
    // An utterance is found by its id (as `eval -o` keys it), or by its recording's path where
    // that names it alone (as `transcribe --manifest -o` keys a manifest's lines).
    let mut recordings: HashMap<&Path, usize> = HashMap::new();
    for utt in utterances {
        *recordings.entry(utt.audio.as_path()).or_default() += 1;
    }
    let keys_of = |utt: &Utterance| -> Vec<String> {
        let mut keys = vec![phonrec::output::kaldi_key(&utt.id)];
        if utt.span.is_none() && recordings.get(utt.audio.as_path()) == Some(&1) {
            keys.push(phonrec::output::kaldi_key(&utt.audio.display().to_string()));
        }
        keys
    };
    if !utterances.is_empty()
        && !utterances.iter().any(|utt| {
            keys_of(utt)
                .iter()
                .any(|key| by_key.contains_key(key.as_str()))
        })
    {
        // Scoring every utterance as deleted would only measure the mismatch of the keys.
        let theirs = by_key
            .keys()
            .min()
            .copied()
            .unwrap_or("(the file is empty)");
        bail!(
            "no line of {} is keyed by an utterance of the data: the data's keys look like '{}', \
             the file's like '{theirs}' (write the hypotheses with `phonrec transcribe --format \
             kaldi -o` on the same data, or key them as `eval -o` does)",
            path.display(),
            phonrec::output::kaldi_key(&utterances[0].id)
        );
    }
    let mut missing = Vec::new();
    let hypotheses = utterances
        .iter()
        .map(|utt| {
            let keys = keys_of(utt);
            let found = keys.iter().find_map(|key| by_key.remove(key.as_str()));
            Ok(found.unwrap_or_else(|| {
                missing.push(keys[0].clone());
                Vec::new()
            }))
        })
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "phonrec: warning: {} has no line for {} of the {} utterances (scored as empty \
             hypotheses), e.g. '{}'",
            path.display(),
            missing.len(),
            utterances.len(),
            missing[0]
        );
    }
    if !by_key.is_empty() {
        let mut extra: Vec<&str> = by_key.keys().copied().collect();
        extra.sort_unstable();
        eprintln!(
            "phonrec: warning: {} has {} line{} for utterances the data does not have (left \
             out), e.g. '{}'",
            path.display(),
            extra.len(),
            if extra.len() == 1 { "" } else { "s" },
            extra[0]
        );
    }
    Ok(hypotheses)
}

/// Score `hypotheses` (one per utterance, in order) against the utterances' references and print
/// the report (text or JSON), writing the hypotheses with `-o`. `skipped` lines of the data were
/// unusable (reported as they were loaded): the report says so and the exit status is a failure,
/// as when an utterance cannot be recognised, since the PER then covers only part of the data.
fn report(
    args: &EvalArgs,
    phones: &PhoneSet,
    data: &[Utterance],
    skipped: usize,
    said: Vec<phonrec::Result<Vec<PhoneId>>>,
    decoding: &str,
) -> anyhow::Result<ExitCode> {
    let silence = (!args.score_sil).then(|| phones.silence()).flatten();
    let keep = |p: &PhoneId| Some(*p) != silence;
    let mut stats = PerStats::new();
    let mut failures = 0;
    let mut records = Vec::new();
    let mut hypotheses = String::new();
    let names = |ids: &[PhoneId]| {
        ids.iter()
            .map(|&p| phones.name(p))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (utt, result) in data.iter().zip(said) {
        match result {
            Ok(said) => {
                let reference: Vec<PhoneId> = utt.phones.iter().copied().filter(keep).collect();
                let hypothesis: Vec<PhoneId> = said.into_iter().filter(keep).collect();
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
                        // Undefined (null) without reference phones: a recording without
                        // speech is judged by its insertions.
                        "per": (counts.reference_phones > 0).then(|| counts.per()),
                    });
                    // A Kaldi segment: where in the recording (end null: to its end).
                    if let Some(span) = utt.span {
                        record["start"] = json!(span.start_s);
                        record["end"] = json!(span.end_s);
                    }
                    records.push(record);
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
    if stats.num_utterances() == 0 {
        bail!(
            "none of the {} utterances could be scored (the errors above)",
            data.len()
        );
    }
    if let Some(path) = &args.output {
        write_atomically(path, hypotheses.as_bytes())?;
    }
    // What the PER leaves out: unusable lines of the data, and utterances that failed.
    let unscored = (skipped > 0 || failures > 0).then(|| {
        format!(
            "the PER covers {} of the data's utterances: {skipped} line{} of the data skipped \
             and {failures} utterance{} not recognised (the messages above)",
            stats.num_utterances(),
            if skipped == 1 { "" } else { "s" },
            if failures == 1 { "" } else { "s" },
        )
    });
    if args.json {
        let mut report = report_json(&stats, phones, args.top);
        report["decoding"] = json!(decoding);
        report["skipped_lines"] = json!(skipped);
        report["failed_utterances"] = json!(failures);
        report["per_utterance"] = json!(records);
        let json = serde_json::to_string(&report)?;
        write_stdout(|out| writeln!(out, "{json}"))?;
    } else {
        write_stdout(|out| {
            print_report(&stats, phones, args.top, out)?;
            writeln!(out, "\ndecoding: {decoding}")?;
            match &unscored {
                Some(unscored) => writeln!(out, "incomplete: {unscored}"),
                None => Ok(()),
            }
        })?;
    }
    if let Some(unscored) = unscored {
        eprintln!("phonrec: {unscored}");
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
        "per": (c.reference_phones > 0).then(|| stats.per()),
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
    if c.reference_phones == 0 {
        // Only recordings without speech: there is no rate, only what was heard in them.
        return writeln!(
            out,
            "no reference phones ({} utterances without speech): {} phones heard in them \
             (insertions)",
            stats.num_utterances(),
            c.insertions
        );
    }
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
    if top == 0 {
        // --top 0: the totals alone.
        return Ok(());
    }
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
    let confusions = stats.top_confusions(top);
    if confusions.is_empty() {
        writeln!(out, "\nno phone was recognised as another")?;
    } else {
        writeln!(out, "\ntop confusions (said -> recognised):")?;
    }
    for confusion in confusions {
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
