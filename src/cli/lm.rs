//! `phonrec lm`: estimate a phone n-gram LM from labeled data and phone text, for `transcribe --lm`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use phonrec::ctc::PhoneLm;
use phonrec::data::{load_phone_text, TimitSplit};
use phonrec::phones::PhoneSet;

use super::common::{data_source, load_data};

/// Estimate a phone n-gram LM from labeled data, for `transcribe --lm`; or convert one.
///
/// Witten–Bell smoothing with back-off, from the label sequences of labeled data sets and/or phone text. All sources are pooled: each utterance or line counts once. The output is ARPA text (`x.arpa`, gzipped as `x.arpa.gz`), which other tools read (SRILM; KenLM, whose default build takes orders 2–6), or phonrec's binary format (`x.bin`), which loads in no time: `transcribe --lm` reads both.
///
/// Convert: phonrec lm --input phones.arpa.gz --output phones.bin (and back with --output x.arpa).
#[derive(Args, Debug)]
pub struct LmArgs {
    /// Labeled data: a manifest, a TIMIT root (TRAIN/ is used), or a Kaldi data dir (words to
    /// phones by --lexicon, else the built-in CMUdict; a `text` of phones, as Kaldi's TIMIT recipe
    /// writes, is read as phones). Repeat to pool several.
    #[arg(long, required_unless_present_any = ["text", "input"])]
    pub data: Vec<PathBuf>,

    /// An LM to convert instead of estimating one: ARPA (plain or gzipped) or binary.
    #[arg(long, conflicts_with_all = ["data", "text", "order", "min_count"])]
    pub input: Option<PathBuf>,

    /// Phone text: one utterance per line, space-separated phones (`#` comments and blank lines are
    /// skipped), e.g. prompt sentences run through a lexicon. Repeat to pool several.
    #[arg(long)]
    pub text: Vec<PathBuf>,

    /// Pronunciation lexicon for a Kaldi data dir's words: added to the built-in CMUdict, its
    /// pronunciations replacing the built-in ones of the same words (as in `align`).
    #[arg(long)]
    pub lexicon: Option<PathBuf>,

    /// Use only --lexicon, not the built-in CMUdict.
    #[arg(long, requires = "lexicon")]
    pub no_builtin_lexicon: bool,

    /// N-gram order (1 to 8). Long orders act like a word-level model over frequent words.
    #[arg(long, default_value_t = 3)]
    pub order: usize,

    /// Drop the n-grams of order 3 and above seen fewer than this many times (count cut-off, like
    /// SRILM's -gtNmin); back-off weights are renormalised. 2 shrinks a long-order model several-fold.
    #[arg(long, default_value_t = 1)]
    pub min_count: u64,

    /// Custom phone inventory (one phone per line) [default: the 39 TIMIT-folded phones].
    #[arg(long)]
    pub phones: Option<PathBuf>,

    /// Where to write the LM: binary if the name ends in `.bin`, else ARPA (gzipped if `.gz`).
    #[arg(long, short)]
    pub output: PathBuf,
}

pub fn run(args: LmArgs) -> anyhow::Result<ExitCode> {
    let phones = match &args.phones {
        Some(path) => PhoneSet::from_file(path)?,
        None => PhoneSet::timit39(),
    };
    super::output_file::refuse_stream_for_model(&args.output)?;
    super::output_file::refuse_overwriting_inputs(
        &args.output,
        args.data
            .iter()
            .chain(&args.text)
            .chain(&args.input)
            .chain(&args.lexicon)
            .chain(&args.phones)
            .map(|p| p.as_path())
            .chain(
                super::output_file::data_dir_files(args.data.iter().map(|p| p.as_path()))
                    .iter()
                    .map(|p| p.as_path()),
            ),
    )?;
    if let Some(input) = &args.input {
        let lm = PhoneLm::load(input, &phones)?;
        lm.save(&args.output, &phones)?;
        eprintln!(
            "phonrec: {}-gram LM {} written to {}",
            lm.order(),
            input.display(),
            args.output.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut sequences = Vec::new();
    for path in &args.data {
        let source = data_source(
            path,
            args.lexicon.as_deref(),
            !args.no_builtin_lexicon,
            TimitSplit::Train,
        )?;
        let data = load_data(&source, &phones, "LM training")?;
        super::output_file::refuse_overwriting_inputs(
            &args.output,
            data.utterances.iter().map(|u| u.audio.as_path()),
        )?;
        // Recordings without speech have no phone sequence to learn from.
        sequences.extend(
            data.utterances
                .into_iter()
                .map(|u| u.phones)
                .filter(|p| !p.is_empty()),
        );
    }
    for path in &args.text {
        let text = load_phone_text(path, &phones)
            .with_context(|| format!("reading the phone text {}", path.display()))?;
        if text.is_empty() {
            anyhow::bail!("{} holds no phone sequences", path.display());
        }
        sequences.extend(text);
    }
    if sequences.is_empty() {
        anyhow::bail!(
            "the data has no phone sequences to estimate an LM from (every label is empty)"
        );
    }
    let lm = PhoneLm::estimate_pruned(&sequences, &phones, args.order, args.min_count)?;
    lm.save(&args.output, &phones)?;
    eprintln!(
        "phonrec: {}-gram LM from {} utterances (training perplexity {:.2}) written to {}",
        args.order,
        sequences.len(),
        lm.perplexity(&sequences),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
