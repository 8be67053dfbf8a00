//! What several subcommands share: finding the model and reading data sources.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use phonrec::audio::{AudioPiece, AudioSpan, ChannelChoice, Dereverb, PieceReader};
use phonrec::builtin;
use phonrec::ctc::PhoneLm;
use phonrec::data::{DataSource, Dataset, TimitSplit};
pub use phonrec::error::error_chain;
use phonrec::features::{BaseFeatures, FbankOptions, MfccOptions};
use phonrec::model::{Model, ModelFile, Precision};
use phonrec::phones::PhoneSet;
use phonrec::recognize::{Recognizer, RecognizerOptions, SegmentOptions, DEFAULT_VTLN_WARPS};

use super::choice::choice;

/// The built-in model's boundary model (TSV), if this binary has the built-in model.
pub fn built_in_boundaries() -> Option<&'static str> {
    builtin::boundaries_tsv()
}

/// Write to stdout through a buffer. Errors come back as `io::Error`s (a closed pipe, as in
/// `phonrec eval ... | head`, then ends the program quietly in `main`) instead of `println!`'s panic.
pub(crate) fn write_stdout(
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write(&mut out).context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(())
}

/// The built-in default model's file bytes, if this binary has one.
pub fn built_in_model_bytes() -> Option<&'static [u8]> {
    builtin::model_bytes()
}

/// A short fingerprint of the built-in model's bytes (FNV-1a, 64 bits, in hex), if this binary has
/// one: a training run that starts from the built-in model records it, so that resuming the run
/// with a phonrec holding another model can say so.
pub fn built_in_model_fingerprint() -> Option<String> {
    built_in_model_bytes().map(|bytes| format!("{:016x}", fnv1a_64(bytes)))
}

/// FNV-1a over `bytes`: an identity check between two builds' model bytes, not a security hash.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Load `--model`, or the built-in default model, its LSTM computing in `precision`.
pub fn load_model(path: Option<&Path>, precision: Precision) -> anyhow::Result<Model> {
    match path {
        Some(path) => Ok(Model::from_file_in(ModelFile::load(path)?, precision)?),
        None if builtin::model_bytes().is_none() => bail!(
            "this phonrec was built without a default model (models/default.safetensors was \
             missing at build time); pass --model PATH, e.g. a model made by `phonrec train`"
        ),
        None => builtin::model_in(precision)
            .context("the built-in default model does not load (a broken build?)"),
    }
}

/// How labeled data is read; the flags `train` and `eval` share.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Pronunciation lexicon (CMUdict format: `WORD  P1 P2 ...`, stress digits folded) for a Kaldi
    /// data dir's words: its words replace the built-in CMUdict's pronunciations of those words,
    /// the rest are added (as in `align`) [default: the built-in CMUdict alone].
    #[arg(long)]
    pub lexicon: Option<PathBuf>,

    /// Use only --lexicon, not the built-in CMUdict.
    #[arg(long, requires = "lexicon")]
    pub no_builtin_lexicon: bool,

    /// With a TIMIT root: its test part is the 24-speaker core test set (eval --data, train --dev).
    #[arg(long)]
    pub timit_core_test: bool,
}

impl DataArgs {
    /// Which part of a TIMIT root is the test set.
    pub fn test_split(&self) -> TimitSplit {
        if self.timit_core_test {
            TimitSplit::CoreTest
        } else {
            TimitSplit::Test
        }
    }
}

/// Base features (`features --kind`, `train --features`).
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum FeatureKind {
    /// Log-mel filterbank energies (Kaldi `compute-fbank-feats`; recommended for LSTMs).
    Fbank,
    /// Mel-frequency cepstral coefficients (Kaldi `compute-mfcc-feats`).
    Mfcc,
}

impl FeatureKind {
    /// The library's default options of this kind (80 mel bins for fbank, Kaldi's 23 for MFCC).
    pub fn defaults(self) -> BaseFeatures {
        match self {
            FeatureKind::Fbank => BaseFeatures::Fbank(FbankOptions::default()),
            FeatureKind::Mfcc => BaseFeatures::Mfcc(MfccOptions::default()),
        }
    }
}

/// Interpret a data argument: a TIMIT root (a folder with TRAIN/ and TEST/), a Kaldi data dir (a folder
/// with wav.scp; its words become phones through `lexicon`, else the built-in CMUdict), or a
/// manifest file.
pub fn data_source(
    path: &Path,
    lexicon: Option<&Path>,
    built_in_lexicon: bool,
    timit_split: TimitSplit,
) -> anyhow::Result<DataSource> {
    if path.is_dir() {
        let has = |name: &str| {
            std::fs::read_dir(path)
                .map(|entries| {
                    entries
                        .flatten()
                        .any(|e| e.file_name().to_string_lossy().eq_ignore_ascii_case(name))
                })
                .unwrap_or(false)
        };
        if path.join("wav.scp").is_file() {
            return Ok(DataSource::Kaldi {
                dir: path.to_path_buf(),
                lexicon: lexicon.map(Path::to_path_buf),
                built_in_lexicon,
            });
        }
        if has("train") || has("test") {
            return Ok(DataSource::Timit {
                root: path.to_path_buf(),
                split: timit_split,
            });
        }
        bail!(
            "{} is a folder but neither a Kaldi data dir (no wav.scp) nor a TIMIT root (no TRAIN/ or \
             TEST/)",
            path.display()
        );
    }
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    Ok(DataSource::Manifest(path.to_path_buf()))
}

/// Load a data source, print its problems (each with its file and line) to stderr, and fail if nothing
/// usable is left.
pub fn load_data(source: &DataSource, phones: &PhoneSet, what: &str) -> anyhow::Result<Dataset> {
    let data = source
        .load(phones)
        .with_context(|| format!("loading the {what} data"))?;
    for note in &data.notes {
        eprintln!("phonrec: note: {note}");
    }
    const SHOWN: usize = 20;
    for problem in data.problems.iter().take(SHOWN) {
        eprintln!("phonrec: warning: {problem}");
    }
    if data.problems.len() > SHOWN {
        eprintln!(
            "phonrec: warning: ... and {} more problems in the {what} data",
            data.problems.len() - SHOWN
        );
    }
    if data.is_empty() {
        match data.problems.len() {
            0 => bail!("the {what} data has no utterances: {}", where_none(source)),
            1 => bail!("no usable utterances in the {what} data (the problem above)"),
            n => bail!("no usable utterances in the {what} data ({n} problems reported above)"),
        }
    }
    let without_phones = data
        .utterances
        .iter()
        .filter(|u| u.phones.is_empty())
        .count();
    if without_phones > 0 {
        // An empty label is a legitimate "no speech here" (noise, music), but also what a broken
        // export writes: say how many, so the second is noticed.
        eprintln!(
            "phonrec: note: {without_phones} of the {} utterances of the {what} data have no \
             phones: taken as recordings without speech (eval counts phones heard in them as \
             insertions; training teaches the network to hear none)",
            data.len()
        );
    }
    Ok(data)
}

/// Where a data source that yielded nothing (and reported no problem) looked.
fn where_none(source: &DataSource) -> String {
    match source {
        DataSource::Manifest(path) => format!("{} lists none", path.display()),
        DataSource::Timit { root, split } => {
            let part = match split {
                phonrec::data::TimitSplit::Train => "TRAIN",
                phonrec::data::TimitSplit::Test | phonrec::data::TimitSplit::CoreTest => "TEST",
            };
            let core = if *split == phonrec::data::TimitSplit::CoreTest {
                " of the 24 core-test speakers"
            } else {
                ""
            };
            format!(
                "no .PHN transcription{core} found under {}'s {part}/ besides the SA1/SA2 \
                 sentences (left out as TIMIT's recipes leave them: every speaker reads them)",
                root.display()
            )
        }
        DataSource::Kaldi { dir, .. } => {
            format!("{} lists none", dir.join("text").display())
        }
    }
}

/// One input of `transcribe`: a file, or audio that arrived on standard input.
pub enum Input {
    /// An audio file, and how it was listed: the path as a manifest gives it, or relative to the
    /// folder that was walked (what --shard hashes, so that `list.tsv`, `./list.tsv` and an
    /// absolute path to it, or a corpus mounted elsewhere, split the same way).
    File { path: PathBuf, listed: String },
    /// A WAV or SPHERE stream read from stdin (`-`).
    Stdin(Vec<u8>),
    /// An audio file listed under an utterance id in a Kaldi `wav.scp`, or a stretch of one (a
    /// Kaldi `segments` line).
    Utterance {
        /// The utterance id.
        id: String,
        /// The audio file.
        path: PathBuf,
        /// The stretch of the file; `None` for the whole file.
        span: Option<AudioSpan>,
        /// One channel of the file (`sph2pipe -c N` in `wav.scp`); `None`: `--channel`'s choice.
        channel: Option<usize>,
    },
}

impl Input {
    /// How the input is named in output and errors.
    pub fn name(&self) -> PathBuf {
        match self {
            Input::File { path, .. } | Input::Utterance { path, .. } => path.clone(),
            Input::Stdin(_) => PathBuf::from("-"),
        }
    }

    /// The file the audio is read from (`None` for standard input).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Input::File { path, .. } | Input::Utterance { path, .. } => Some(path),
            Input::Stdin(_) => None,
        }
    }

    /// What `--shard` hashes: the utterance id, else the path as listed.
    pub fn key(&self) -> String {
        match self {
            Input::Utterance { id, .. } => id.clone(),
            Input::File { listed, .. } => listed.clone(),
            Input::Stdin(_) => "-".to_string(),
        }
    }

    /// A file given by its path (on the command line or standard input): listed as given.
    pub fn file(path: PathBuf) -> Input {
        let listed = path.to_string_lossy().into_owned();
        Input::File { path, listed }
    }
}

/// What a run's inputs are called in its summary lines ("3 of 40 utterances failed"): utterances
/// when every input is one (a Kaldi data dir or wav.scp), files otherwise.
pub fn inputs_noun<'a>(mut inputs: impl Iterator<Item = &'a Input>) -> &'static str {
    if inputs.all(|input| matches!(input, Input::Utterance { .. })) {
        "utterances"
    } else {
        "files"
    }
}

/// One JSON Lines record of a recordings list.
#[derive(serde::Deserialize)]
struct ListedRecording {
    audio: String,
    #[serde(default)]
    id: Option<String>,
}

/// The recordings a manifest lists (`transcribe --manifest`, `features --manifest`): per line a
/// path relative to the manifest's folder, optionally followed by a tab and other columns (which
/// are ignored), or JSON Lines with `audio` and an optional `id`. `#` lines are comments; a first
/// line whose path is `audio` is a header. A line with no path is an error naming file and line.
pub fn manifest_inputs(manifest: &Path) -> anyhow::Result<Vec<Input>> {
    let text = phonrec::data::read_text(manifest)
        .with_context(|| format!("cannot read the manifest {}", manifest.display()))?;
    let base = manifest.parent().unwrap_or(Path::new(""));
    let mut inputs = Vec::new();
    let mut seen_data = false;
    let mut ids = phonrec::data::UtteranceIds::default();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let first_data = !std::mem::replace(&mut seen_data, true);
        let at = || format!("{}:{}", manifest.display(), index + 1);
        let (audio, id) = if line.trim_start().starts_with('{') {
            let record: ListedRecording = serde_json::from_str(line)
                .with_context(|| format!("{}: not a JSON object with \"audio\"", at()))?;
            (record.audio, record.id)
        } else {
            let audio = line.split('\t').next().unwrap_or_default().trim();
            if first_data && audio == "audio" {
                continue;
            }
            (audio.to_string(), None)
        };
        if audio.is_empty() {
            bail!("{}: no audio path", at());
        }
        if let Some(Err(reason)) = id.as_deref().map(|id| ids.add(id, index + 1)) {
            bail!("{}: {reason}", at());
        }
        let path = base.join(&audio);
        inputs.push(match id {
            Some(id) => Input::Utterance {
                id,
                path,
                span: None,
                channel: None,
            },
            None => Input::File {
                path,
                listed: audio,
            },
        });
    }
    Ok(inputs)
}

/// Audio file extensions a folder walk picks up (any case); files given by name are read whatever
/// their name, by their content.
pub const AUDIO_EXTENSIONS: [&str; 24] = [
    "wav", "sph", "au", "snd", "flac", "ogg", "oga", "opus", "webm", "mka", "mkv", "mp3", "aif",
    "aiff", "aifc", "caf", "m4a", "m4b", "mp4", "mov", "aac", "amr", "3gp", "gsm",
];

/// The longest line a list of paths on standard input may have (Linux's PATH_MAX).
const MAX_LISTED_PATH_BYTES: usize = 4096;

/// Inputs from the command line: files as given; a Kaldi data dir (a folder with `wav.scp`, and
/// perhaps `segments`) or a `*.scp` file as the utterances it lists, by id; other folders walked
/// (symlinks followed, each folder once, so a link cycle ends; hidden `.` entries passed over) for audio files by extension; `-` is
/// standard input, read as audio when it starts like an audio file, else as a list of paths, one
/// per line.
pub fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    let mut files = Vec::new();
    let mut stdin_used = false;
    for input in inputs {
        if input.as_os_str() == "-" {
            if std::mem::replace(&mut stdin_used, true) {
                bail!("`-` (standard input) is given more than once");
            }
            let bytes = read_stdin()?;
            if phonrec::audio::looks_like_audio(&bytes) {
                files.push(Input::Stdin(bytes));
                continue;
            }
            // A list saved by a Windows editor starts with a byte-order mark.
            let list = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
            let neither = || {
                anyhow::anyhow!(
                    "standard input is neither audio (WAV, SPHERE, .au, FLAC, Ogg, MP3, AIFF, CAF, MP4, WebM) nor a UTF-8 list of paths \
                     (headerless samples need a header: e.g. `sox -t raw -r 16000 -e signed -b 16 -c 1 - -t wav -`)"
                )
            };
            let text = std::str::from_utf8(list).map_err(|_| neither())?;
            // A path holds no NUL byte and no line of a list is longer than a path can be:
            // anything else is binary data (say, headerless PCM starting with silence).
            if text.contains('\0') || text.lines().any(|line| line.len() > MAX_LISTED_PATH_BYTES) {
                return Err(neither());
            }
            files.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Input::file(PathBuf::from(l))),
            );
        } else if input.is_dir() && input.join("wav.scp").is_file() {
            files.extend(kaldi_dir_inputs(input)?);
        } else if input.extension().is_some_and(|e| e == "scp") && input.is_file() {
            files.extend(scp_inputs(input)?);
        } else if input.is_dir() {
            files.extend(find_audio_files(input)?.into_iter().map(|path| {
                let listed = path
                    .strip_prefix(input)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                Input::File { path, listed }
            }));
        } else {
            files.push(Input::file(input.clone()));
        }
    }
    // Two data dirs with an utterance id in common would write one key twice (Kaldi's
    // combine_data.sh refuses them too).
    let mut ids = std::collections::HashSet::new();
    for file in &files {
        if let Input::Utterance { id, .. } = file {
            if !ids.insert(id.as_str()) {
                bail!(
                    "utterance id '{id}' is listed by two of the inputs: outputs keyed by id would \
                     hold it twice; give the data dirs distinct ids (e.g. a prefix per corpus)"
                );
            }
        }
    }
    Ok(files)
}

/// The error for inputs that named no audio: which of them were folders without audio files.
pub fn no_audio_found(inputs: &[PathBuf]) -> anyhow::Error {
    let folders: Vec<String> = inputs
        .iter()
        .filter(|p| p.is_dir())
        .map(|p| p.display().to_string())
        .collect();
    if folders.is_empty() {
        return anyhow::anyhow!("no audio files found in the given inputs");
    }
    let kaldi_dirs: Vec<String> = inputs
        .iter()
        .filter(|p| p.is_dir() && p.join("wav.scp").is_file())
        .map(|p| p.display().to_string())
        .collect();
    if kaldi_dirs.len() == folders.len() {
        return anyhow::anyhow!(
            "no utterances found: the Kaldi data dir{} {} list{} none (an empty wav.scp, or an \
             empty segments file)",
            if kaldi_dirs.len() == 1 { "" } else { "s" },
            kaldi_dirs.join(", "),
            if kaldi_dirs.len() == 1 { "s" } else { "" }
        );
    }
    anyhow::anyhow!(
        "no audio files found: the folder{} {} hold{} no .wav, .sph, .flac, .ogg, .webm, .mka, .mkv, .mp3, .aif(f/c), .caf, .m4a, .m4b, .mp4, .mov, .amr or .3gp files",
        if folders.len() == 1 { "" } else { "s" },
        folders.join(", "),
        if folders.len() == 1 { "s" } else { "" }
    )
}

/// The utterances a `wav.scp` lists; a line phonrec cannot use (a pipe command, a repeated id) is an
/// error naming the file and line, so that no utterance goes missing from the output unnoticed.
fn scp_inputs(scp: &Path) -> anyhow::Result<Vec<Input>> {
    let read = phonrec::data::read_wav_scp(scp)?;
    refuse_problems(&read.problems)?;
    Ok(read
        .entries
        .into_iter()
        .map(|entry| Input::Utterance {
            id: entry.id,
            path: entry.audio,
            span: None,
            channel: entry.channel,
        })
        .collect())
}

/// The utterances of a Kaldi data dir: `wav.scp`'s, or with a `segments` file its segments, each a
/// stretch of a recording. Unusable lines are errors, as in [`scp_inputs`]; segments of no length
/// are skipped with a warning, as Kaldi's `extract-segments` skips them.
fn kaldi_dir_inputs(dir: &Path) -> anyhow::Result<Vec<Input>> {
    let audio = phonrec::data::kaldi_dir_audio(dir)?;
    refuse_problems(&audio.problems)?;
    warn_of_empty_segments(&audio.empty);
    Ok(audio
        .utterances
        .into_iter()
        .map(|utterance| Input::Utterance {
            id: utterance.id,
            path: utterance.audio,
            span: utterance.span,
            channel: utterance.channel,
        })
        .collect())
}

/// A warning for each segment of no length that a Kaldi data dir's `segments` lists (skipped).
pub fn warn_of_empty_segments(empty: &[phonrec::data::DataProblem]) {
    for note in empty {
        eprintln!("phonrec: warning: {note}");
    }
}

/// Refuse inputs whose outputs would share a key in one Kaldi `text`, CTM or TSV stream (`a b.wav`
/// and `a_b.wav` are both keyed `a_b.wav`): a reader that looks hypotheses up by key keeps one of
/// them, and phonrec's own `eval --hyp` refuses the file. `keyed` gives each input's name, for
/// the message, and its key.
pub fn refuse_shared_keys(
    keyed: impl IntoIterator<Item = (std::path::PathBuf, String)>,
    what: &str,
) -> anyhow::Result<()> {
    let mut seen: std::collections::HashMap<String, std::path::PathBuf> = Default::default();
    for (name, key) in keyed {
        if let Some(other) = seen.get(&key) {
            bail!(
                "{} and {} would both be keyed {key} in the {what} output (whitespace in names \
                 becomes `_`); rename one, list them in a wav.scp with an utterance id each, or \
                 write one file per input with --output-dir",
                other.display(),
                name.display()
            );
        }
        seen.insert(key, name);
    }
    Ok(())
}

/// An utterance id as the name of its output file under --output-dir. Ids are opaque tokens to
/// Kaldi; one with a path separator, or `.`/`..`, would name a file outside the folder (`../x`
/// wrote beside it, `/tmp/x` anywhere): refused.
pub fn id_as_file_stem(id: &str) -> anyhow::Result<&str> {
    if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\\']) {
        bail!(
            "--output-dir: utterance id '{id}' cannot name a file in the folder (it is empty, '.' \
             or '..', or holds a '/' or '\\'); give the utterance another id, or write one \
             file for all with -o"
        );
    }
    Ok(id)
}

/// An error for the first of a data file's unusable lines (and how many more there are).
pub fn refuse_problems(problems: &[phonrec::data::DataProblem]) -> anyhow::Result<()> {
    if let Some(problem) = problems.first() {
        bail!(
            "{problem}{}",
            match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more such lines)", n - 1),
            }
        );
    }
    Ok(())
}

/// What an input's audio weighs for planning rounds
/// ([`plan_rounds`](phonrec::recognize::plan_rounds)): its file's bytes, or for a stretch of a file
/// with a known end its length as 16 kHz 16-bit audio (so that a round holds many of a long
/// recording's utterances, not one each).
pub fn audio_size(path: &Path, span: Option<AudioSpan>) -> u64 {
    match span.and_then(|span| span.end_s.map(|end| end - span.start_s)) {
        Some(seconds) => (seconds * 32_000.0) as u64,
        None => std::fs::metadata(path).map_or(0, |m| m.len()),
    }
}

/// Read inputs' audio, in input order: files and stretches of them with `reader` (in parallel, each
/// file once), standard input from its bytes.
pub fn read_inputs(
    reader: &PieceReader,
    inputs: &[&Input],
) -> Vec<phonrec::Result<phonrec::audio::Waveform>> {
    let pieces: Vec<AudioPiece<'_>> = inputs
        .iter()
        .filter_map(|input| match input {
            Input::File { path, .. } => Some(AudioPiece {
                path,
                span: None,
                channel: None,
            }),
            Input::Utterance {
                path,
                span,
                channel,
                ..
            } => Some(AudioPiece {
                path,
                span: *span,
                channel: *channel,
            }),
            Input::Stdin(_) => None,
        })
        .collect();
    let mut read = reader.read(&pieces).into_iter();
    inputs
        .iter()
        .map(|input| match input {
            Input::Stdin(bytes) => {
                phonrec::audio::read_audio_bytes_channel(bytes, &input.name(), reader.channel())
            }
            _ => read
                .next()
                .unwrap_or_else(|| Err(phonrec::Error::Shape("an input was not read".into()))),
        })
        .collect()
}

/// All of standard input (bounded like any audio input).
pub fn read_stdin() -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(phonrec::audio::MAX_AUDIO_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("reading standard input")?;
    if bytes.len() as u64 > phonrec::audio::MAX_AUDIO_BYTES {
        bail!(
            "standard input is longer than {} bytes",
            phonrec::audio::MAX_AUDIO_BYTES
        );
    }
    Ok(bytes)
}

/// Read an audio argument, taking `channel` of it: a path, or `-` for an audio stream on standard
/// input.
pub fn read_audio_arg(
    path: &Path,
    channel: ChannelChoice,
) -> anyhow::Result<phonrec::audio::Waveform> {
    if path.as_os_str() == "-" {
        let bytes = read_stdin()?;
        return Ok(phonrec::audio::read_audio_bytes_channel(
            &bytes, path, channel,
        )?);
    }
    Ok(phonrec::audio::read_audio_channel(path, channel)?)
}

/// `--channel`: one channel of multichannel recordings, or (by default) all of them mixed.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct ChannelArg {
    /// Hear only this channel of multichannel recordings, counted from 0 as Kaldi's --channel
    /// counts (0 is a stereo file's left): one side of a call recorded with a channel per side.
    /// A recording without that channel is an error. Default: the channels mixed to one (their
    /// average, or one channel alone where the average would cancel the speech or add another
    /// channel's hiss to it).
    #[arg(long, value_name = "N")]
    pub channel: Option<usize>,
}

impl ChannelArg {
    /// What the readers take of each recording.
    pub fn choice(self) -> ChannelChoice {
        self.channel
            .map_or(ChannelChoice::Mixed, ChannelChoice::Only)
    }

    /// A reader of recordings that takes this choice.
    pub fn reader(self) -> phonrec::audio::PieceReader {
        phonrec::audio::PieceReader::with_channel(self.choice())
    }
}

/// The audio files under `dir` by extension ([`AUDIO_EXTENSIONS`]), sorted; symlinks followed, each
/// folder once. Hidden entries below `dir` (names starting with `.`) are passed over, as `fd` and
/// `rg` do: macOS leaves `._name.wav` AppleDouble metadata beside every file it copies to a USB stick
/// or zip, and `.git`/`.Trash` folders hold no recordings the user meant.
pub fn find_audio_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut visited = std::collections::HashSet::new();
    walk_audio(dir, &mut found, &mut visited)?;
    found.sort();
    Ok(found)
}

fn walk_audio(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    visited: &mut std::collections::HashSet<PathBuf>,
) -> anyhow::Result<()> {
    // A folder reached twice (a `loop -> .` link, or two links to one place) is walked once.
    let canonical =
        std::fs::canonicalize(dir).with_context(|| format!("reading folder {}", dir.display()))?;
    if !visited.insert(canonical) {
        return Ok(());
    }
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("reading folder {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("reading folder {}", dir.display()))?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk_audio(&path, out, visited)?;
        } else if path.is_file() // not a named pipe or a device, which could block the run
            && path.extension().is_some_and(|e| {
            AUDIO_EXTENSIONS
                .iter()
                .any(|known| e.eq_ignore_ascii_case(known))
        }) {
            out.push(path);
        }
    }
    Ok(())
}

/// `--beam`: a width the search allows.
fn parse_beam_width(value: &str) -> Result<usize, String> {
    let max = phonrec::ctc::MAX_BEAM_WIDTH;
    match value.parse::<usize>() {
        Ok(width) if (1..=max).contains(&width) => Ok(width),
        _ => Err(format!("expected a width from 1 (greedy) to {max}")),
    }
}

/// `--lm-weight`: a finite weight of at least 0 (a negative one rewards what the LM finds unlikely).
fn parse_lm_weight(value: &str) -> Result<f32, String> {
    match parse_finite(value)? {
        weight if weight >= 0.0 => Ok(weight),
        _ => Err("expected a weight of at least 0 (0 ignores the LM)".to_string()),
    }
}

/// A finite number.
fn parse_finite(value: &str) -> Result<f32, String> {
    match value.parse::<f32>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err("expected a finite number".to_string()),
    }
}

/// Decoding flags shared by `transcribe`, `eval` and `probs`.
///
/// With the built-in model the default is a prefix beam search (width 16) with the model's built-in
/// phone 6-gram LM at weight 0.4 and insertion bonus 1.0 (chosen on the synthetic dev set;
/// `models/README.md`); `--no-lm` or
/// `--beam 1` decode greedily instead. With `--model`, decoding is greedy unless `--lm` is given, or
/// the model was fine-tuned from the built-in one (`train --init-from builtin`): that decodes as the
/// built-in model does.
#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    /// Beam width of the prefix beam search; 1 means greedy decoding (fastest) [default: 16 with a
    /// phone LM, else 1].
    #[arg(long, value_name = "WIDTH", value_parser = parse_beam_width)]
    pub beam: Option<usize>,

    /// Phone n-gram LM in ARPA format (e.g. from `phonrec lm`), fused into the beam search, or
    /// `builtin` for the built-in model's LM with any model of the same phones (e.g. one fine-tuned
    /// with `train --init-from builtin`; a file named builtin is `./builtin`) [default: the
    /// built-in LM with the built-in model and models fine-tuned from it, none with another
    /// --model].
    #[arg(long, value_name = "ARPA|builtin")]
    pub lm: Option<PathBuf>,

    /// Decode without any phone LM (also without the built-in model's).
    #[arg(long, conflicts_with = "lm")]
    pub no_lm: bool,

    /// Weight α of the LM's log-probability against the acoustic one [default: 0.4 with the built-in
    /// LM, else 0.3].
    #[arg(long, value_parser = parse_lm_weight)]
    pub lm_weight: Option<f32>,

    /// Bonus β added per output phone in the beam search (raise it if phones are dropped, lower it
    /// if inserted) [default: 1.0 with the built-in LM, else 0].
    #[arg(long, allow_hyphen_values = true, value_parser = parse_finite)]
    pub insertion_bonus: Option<f32>,

    /// Speaker adaptation (vocal-tract-length normalisation): try each mel warp factor on a file's
    /// first 30 s and decode the file with the one the network is most confident under. Can help on
    /// voices unlike the training voices; one extra network pass over ≤ 30 s per factor.
    #[arg(long, value_delimiter = ',', value_name = "W1,W2,...")]
    pub vtln_warps: Vec<f32>,

    /// VTLN with the factors 0.9, 0.95, 1, 1.05, 1.1, 1.15 (the range a model trained with
    /// `--vtlp 0.1` has seen, and a little beyond).
    #[arg(long, conflicts_with = "vtln_warps")]
    pub vtln: bool,

    /// Decode the whole file instead of only its speech regions. By default phonrec segments each
    /// file first: a region is a run of the network's phone spikes (frames whose non-blank
    /// probability reaches --speech-threshold) with gaps shorter than --min-silence, widened by
    /// --segment-padding; frames quieter than --energy-floor are never speech. Silence, pauses and
    /// noise between regions then yield no phones (JSON output lists the regions as "segments").
    #[arg(long)]
    pub no_segment: bool,

    /// Non-blank probability from which a frame counts as a phone spike (speech).
    #[arg(long, default_value_t = phonrec::recognize::DEFAULT_SPEECH_THRESHOLD, value_name = "P")]
    pub speech_threshold: f32,

    /// A region started by a spike at --speech-threshold reaches out over weaker spikes down to this
    /// non-blank probability, so a weakly heard first or last phone (a soft `z`, `th` or `f`) stays
    /// with its word; weak spikes alone never start a region. Set it to --speech-threshold (or
    /// above: it is then --speech-threshold) for none.
    #[arg(long, default_value_t = phonrec::recognize::DEFAULT_EXTEND_THRESHOLD, value_name = "P")]
    pub extend_threshold: f32,

    /// Seconds without phone spikes that end a speech region.
    #[arg(long, default_value_t = 0.5, value_name = "SECONDS")]
    pub min_silence: f32,

    /// Seconds of context kept before and after each speech region.
    #[arg(long, default_value_t = 0.2, value_name = "SECONDS")]
    pub segment_padding: f32,

    /// Level (dBFS, RMS per network frame) below which audio is silence whatever the network says.
    /// In a quiet recording (loudest frame below -20 dBFS) the floor is lowered to 45 dB below its
    /// loudest frame, down to -80 dBFS, so speech recorded with the input gain far too low is kept.
    #[arg(long, default_value_t = phonrec::recognize::DEFAULT_ENERGY_FLOOR_DBFS, allow_hyphen_values = true, value_name = "DBFS")]
    pub energy_floor: f32,

    /// When the speech regions cover less than this fraction of a file (a short clip padded with
    /// seconds of silence or noise floor, words far apart), each region is recognised again on its
    /// own, as if cut out of the file; and when the whole file's pass hears no speech at all, each
    /// loud event (10 dB above the background) gets that second hearing. 0 never does either.
    #[arg(long, default_value_t = 0.6, value_name = "FRACTION")]
    pub isolate_below: f32,

    /// A speech region whose loudest frames stand less than this many dB over the sound around
    /// the regions, and whose phones the network is unsure of (mean confidence below 0.5), is
    /// dropped: music or noise taken for speech (music alone: 192 -> 93 phones in 240 s; of the
    /// evaluation sets' speech, even at 5 dB SNR or over music 10 dB down, only FSDD's digits at 5
    /// dB SNR changed, by 0.2 points; models/README.md, "Music"). 0 keeps every region.
    #[arg(long, default_value_t = phonrec::recognize::DEFAULT_UNSURE_BELOW_DB, value_name = "DB")]
    pub unsure_below: f32,

    /// Leave digital silence as it is. By default runs of ≥ 20 ms of zeros (or ±1 LSB: padding,
    /// gaps between joined clips, muting: editing, never a microphone) are filled with noise shaped like
    /// the recording's quietest frames, so the recording's noise floor does not start and stop
    /// abruptly where the network would hear a fricative; in a recording without such runs, gaps a
    /// noise gate or a cut made far quieter than the floor under the speech (≥ 10 dB, stepping down
    /// at once, nothing inside the speech as quiet) are raised to that floor. Other audio is
    /// unaffected.
    #[arg(long)]
    pub keep_digital_silence: bool,

    /// Do not pad loud edges. By default a recording that starts (ends) loud, as a clip cut tight
    /// at the speech does (one of its first or last three 20 ms frames at least 10 dB over its
    /// quiet level), is recognised with 0.08 s of its own floor before (after) it, and the times
    /// are clamped to the recording: FSDD's held-out speaker, whose clips are cut at the speech,
    /// went from PER 0.183 to 0.118 (models/README.md, "Clips cut tight"). A recording with quiet
    /// around its speech is unaffected.
    #[arg(long)]
    pub keep_edges: bool,

    /// Do not restore clipped peaks. By default a recording whose peaks were cut flat at full scale
    /// (input gain set too high) has the cut samples estimated back before the features (sparse
    /// declipping, A-SPADE: the short-time spectrum with the fewest large coefficients that agrees
    /// with the recorded samples; where under a tenth of the samples around were cut, an
    /// autoregressive interpolation, as good there and cheaper): real recordings amplified 9-15 dB
    /// past full scale went from PER 0.44 (FSDD) / 0.31 (pocketsphinx-testdata) unrepaired to 0.23
    /// / 0.24 (0.19 / 0.23 unclipped; models/README.md). It costs about a second per 20 s of
    /// heavily clipped audio on two cores, a third of that or less when under 3 % of the samples
    /// were cut. Audio whose peaks do not pile up at one extreme value is unaffected.
    #[arg(long)]
    pub keep_clipping: bool,

    /// Do not conceal dropped packets. By default a run of digital zeros of 5-100 ms cut into
    /// voiced speech (a packet lost by a network that did not conceal it) is filled with the pitch
    /// periods on either side before the features: with 5 % of 20 ms packets lost, PER 0.134 ->
    /// 0.103 on the held-out voice (0.090 intact; models/README.md). Pauses, padding, silence that
    /// fades out and most gaps beside unvoiced sounds (a synthesiser's stop closures, which it
    /// renders as exact zeros: 4 of the 8 in audio/espeak_quick_fox_22k.wav are filled, its
    /// phones unchanged) are left alone.
    #[arg(long)]
    pub keep_dropouts: bool,

    /// Do not fill spectral holes. By default a recording coded at a low bit rate by a perceptual
    /// coder (MP3 at 16-24 kbit/s: bands of the spectrum dropped for tens of milliseconds, which
    /// the network hears as other sounds) has each hole filled with noise just under the spectrum
    /// around it before the features: MP3 at 16 kbit/s of the real sentence sets, PER 0.27 / 0.40 /
    /// 0.41 -> 0.23 / 0.34 / 0.33 (0.17 / 0.23 / 0.26 uncoded; models/README.md). Recordings that
    /// do not measure as coded (holes 40 dB deep and three bins wide in 1 % of the speech) are
    /// unaffected.
    #[arg(long)]
    pub keep_spectral_holes: bool,

    /// Do not remove clicks. By default clicks (keys of a keyboard, a mouse, a pen tapped on the
    /// desk: a few milliseconds of broadband sound standing 25 dB over the upper half of the
    /// recording's band on both sides, and back down within 6 ms, which a plosive's burst is not)
    /// are replaced by an autoregressive interpolation of the sound around them before the
    /// features: key presses at 3-8 a second on the real sentence sets, PER 0.21 / 0.34 / 0.36 ->
    /// 0.19 / 0.26 / 0.28 (0.17 / 0.23 / 0.26 without clicks; models/README.md, "Clicks"). Clean
    /// recordings of those sets are unchanged.
    #[arg(long)]
    pub keep_clicks: bool,
    /// Recognise a recording at the rate it is stored at even when it holds nothing above 4 kHz.
    /// By default a recording stored above 8 kHz whose band ends at 4 kHz (a telephone call or an
    /// 8 kHz recording converted to 16 kHz by another tool, with only the converter's dither
    /// above 4 kHz) is brought back to 8 kHz first and recognised as the 8 kHz recording it is:
    /// telephone sentences stored at 16 kHz by sox, PER 0.288 / 0.287 -> 0.276 / 0.275; FSDD
    /// digits 0.132 -> 0.114 (0.110 as recorded at 8 kHz; models/README.md, "Narrowband audio
    /// stored at 16 kHz"). Wideband recordings are unchanged.
    #[arg(long)]
    pub keep_rate: bool,

    /// Do not even out talkers' levels. By default each stretch of sound of 1 s or more (runs of
    /// frames over the recording's floor, split at pauses of 0.3 s) more than 6 dB quieter than
    /// the recording's speech level, a talker far from the microphone beside a near one, is raised
    /// to that level before the features, the gain moving through the pauses between. The
    /// network's input is normalised once per recording, so a talker 10-25 dB under the other was
    /// heard as background: sentences joined with every second one 10-25 dB down, PER 0.29 / 0.46 /
    /// 0.29 -> 0.24 / 0.27 / 0.17 on the real sentence sets (0.23 / 0.26 / 0.16 at one level;
    /// models/README.md, "Talkers at different levels"). What is raised is left out of the input
    /// normalisation's statistics, and a speech region in it whose phones the network is unsure of
    /// is dropped (music before a talker). A recording of one talker at one level is unchanged,
    /// and sounds under 1 s in the pauses (a television's words) get no level of their own.
    #[arg(long)]
    pub keep_levels: bool,

    /// Add white noise this many dB under the recording's speech level (the mean level of its
    /// frames within 30 dB of the loud ones) just before the features, within the band the
    /// recording had, so that every floor is at least that loud and that flat: the network has
    /// heard floors of that kind in training, not a microphone's faint coloured hiss or a noise
    /// suppressor's gated silence. The band is the recording's (below half its rate, and below a
    /// coder's low-pass well inside that, as MP3's at 5.5 kHz). Measured (models/README.md, "A
    /// floor under the speech"): after sox's noise reducer the real sentence sets' PER 0.45 / 0.51 /
    /// 0.57 -> 0.34 / 0.46 / 0.50, MP3 at 16 kbit/s 0.23 / 0.34 / 0.33 -> 0.19 / 0.31 / 0.33, clean
    /// sets within a point, other conditions -0.2 points on average. 0 adds none.
    #[arg(long, default_value_t = phonrec::audio::DEFAULT_FLOOR_BELOW_DB, value_name = "DB")]
    pub floor_below: f32,

    /// Remove echoes and late reverberation before the features: `auto` cancels a discrete echo
    /// (the recording again 40-480 ms later, at least 20 dB down: a speakerphone, a hall's back
    /// wall, a delay effect; found in the power cepstrum) with its inverse filter, then measures
    /// how much more of the recording the last 0.2 s predict than the sound 0.6-0.8 s back does
    /// (a room's tail; steady hum and tones do not count) and dereverberates (weighted prediction
    /// error, WPE) recordings made in a reverberant room, away from the microphone, or with an
    /// echo left (recordings under 2 s are not measured; longer than 30 s, each 30 s is measured
    /// and repaired on its own); `on` cancels echoes and dereverberates every recording (on dry
    /// speech it costs 0.4-2 points of PER); `off` does neither.
    #[arg(long, value_enum, default_value_t = DereverbArg::Auto)]
    pub dereverb: DereverbArg,

    /// Arithmetic of the network's LSTM [default: int8 on x86-64 CPUs with AVX2, f32 elsewhere].
    /// `int8` stores the recurrent weights in 8-bit integers (and with AVX512-VNNI and no AMX,
    /// projects the upper layers' inputs in 8 bits): PER within 0.4 points of f32's on
    /// every evaluation set, 1.3-2.5x faster than f32 at batch 1 (an hour of speech in one file:
    /// 9 s against 16 s on an Intel Xeon). `f32` is the exact reference, the same numbers on every
    /// CPU. `bf16` stores the weights in bfloat16: on Intel Xeons with AMX (since Sapphire Rapids)
    /// the fastest for batches of files (2-3x f32), with AVX512-BF16 alone ~1.8x f32 at batch 1
    /// on AMD Zen 4 (on Intel CPUs without AMX ~1.1x at batch 1 and ~0.65x for batches); without
    /// AVX512-BF16 it is emulated, slower than f32. bf16 moved PER by at most 0.4 points (one
    /// phone of a small set) on our evaluation sets (BENCHMARKS.md).
    #[arg(long, value_parser = choice::<Precision>())]
    pub precision: Option<Precision>,
}

/// What a recogniser keeps besides each recording's phones ([`RecognizerOptions`]): `sil`, each
/// phone's most probable phones, an n-best list.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kept {
    /// Keep `sil` in the output ([`RecognizerOptions::keep_silence`]).
    pub keep_silence: bool,
    /// [`RecognizerOptions::alternatives`].
    pub alternatives: usize,
    /// [`RecognizerOptions::nbest`].
    pub nbest: usize,
}

impl DecodeArgs {
    /// `--precision`, or this CPU's default ([`Precision::inference_default`]).
    pub fn precision(&self) -> Precision {
        self.precision.unwrap_or_else(Precision::inference_default)
    }

    /// Load `--model` (or the built-in model) and set up a recogniser with these decoding options
    /// (the built-in model's phone LM is used unless switched off; it is compiled in in a form that
    /// needs no loading), keeping what `kept` asks for besides the phones.
    pub fn load_recognizer(
        &self,
        model_path: Option<&Path>,
        kept: Kept,
    ) -> anyhow::Result<Recognizer> {
        let model = load_model(model_path, self.precision())?;
        // The built-in model, or one fine-tuned from it (same phones, posteriors of the same
        // kind): both decode by default with the built-in LM and its tuned weight and bonus.
        let built_in = model_path.is_none() || model.config().training.fine_tuned_from_built_in();
        let asks_built_in_lm = self.lm.as_deref() == Some(Path::new("builtin"));
        let load_built_in_lm = |phones: &PhoneSet| -> anyhow::Result<Option<PhoneLm>> {
            builtin::lm(phones)
                .context("the built-in phone LM does not load with this model's phones")
        };
        let lm = match (&self.lm, built_in && !self.no_lm && self.beam != Some(1)) {
            (Some(_), _) if asks_built_in_lm => match load_built_in_lm(model.phones())? {
                Some(lm) => Some(lm),
                None => bail!("--lm builtin: this phonrec was built without the built-in LM"),
            },
            (Some(path), _) => {
                let lm = PhoneLm::load(path, model.phones())?;
                let unlisted = lm.unlisted_phones(model.phones());
                if !unlisted.is_empty() {
                    eprintln!(
                        "phonrec: warning: {} has no unigram for {} of the model's phones ({}): \
                         they will never be output with it",
                        path.display(),
                        unlisted.len(),
                        model.phones().format_sequence(&unlisted)
                    );
                }
                Some(lm)
            }
            (None, true) => load_built_in_lm(model.phones())?,
            (None, false) => None,
        };
        let has_lm = lm.is_some();
        let built_in_lm = (self.lm.is_none() || asks_built_in_lm) && has_lm;
        let defaults = builtin::DecodingDefaults::new(has_lm, built_in_lm);
        let beam = self.beam.unwrap_or(defaults.beam);
        if beam == 0 {
            bail!("--beam must be at least 1");
        }
        if has_lm && beam <= 1 {
            bail!("--lm needs the beam search: use --beam 16 (or another width above 1), or leave --beam out");
        }
        if kept.nbest > 1 && beam <= 1 {
            bail!(
                "--nbest needs the beam search, and this decoding is greedy: add --beam {} (or \
                 wider)",
                kept.nbest.max(builtin::BEAM_WITH_LM)
            );
        }
        // Weights of a search that does not run would be dropped without a word: say so, as the
        // user evidently expects them to do something.
        if self.lm_weight.is_some() && !has_lm {
            eprintln!(
                "phonrec: warning: --lm-weight has no effect: {}",
                if self.no_lm {
                    "--no-lm decodes without a phone LM; leave it out to use the built-in one, or \
                     give --lm ARPA"
                } else if beam <= 1 {
                    "--beam 1 decodes greedily, without a phone LM; leave --beam 1 out for the \
                     beam search with the LM (a --model needs --lm ARPA too)"
                } else {
                    "no phone LM is given for this --model; add --lm ARPA or --lm builtin to use one"
                }
            );
        }
        if self.insertion_bonus.is_some() && beam <= 1 {
            eprintln!(
                "phonrec: warning: --insertion-bonus has no effect on greedy decoding (--beam 1): \
                 add --beam 16 to use it"
            );
        }
        if kept.nbest > beam {
            bail!(
                "--nbest {} is more than the beam keeps (--beam {beam}): add --beam {}",
                kept.nbest,
                kept.nbest
            );
        }
        let options = RecognizerOptions {
            beam,
            lm,
            lm_weight: self.lm_weight.unwrap_or(defaults.lm_weight),
            insertion_bonus: self.insertion_bonus.unwrap_or(defaults.insertion_bonus),
            keep_silence: kept.keep_silence,
            alternatives: kept.alternatives,
            nbest: kept.nbest,
            vtln_warps: if self.vtln {
                DEFAULT_VTLN_WARPS.to_vec()
            } else {
                self.vtln_warps.clone()
            },
            segment: SegmentOptions {
                enabled: !self.no_segment,
                speech_threshold: self.speech_threshold,
                extend_threshold: self.extend_threshold,
                min_silence_s: self.min_silence,
                padding_s: self.segment_padding,
                energy_floor_dbfs: self.energy_floor,
                isolate_below: self.isolate_below,
                unsure_below_db: self.unsure_below,
            },
            fill_digital_silence: !self.keep_digital_silence,
            pad_loud_edges: !self.keep_edges,
            repair_clipping: !self.keep_clipping,
            conceal_dropouts: !self.keep_dropouts,
            fill_spectral_holes: !self.keep_spectral_holes,
            remove_clicks: !self.keep_clicks,
            narrowband_as_8k: !self.keep_rate,
            equalise_levels: !self.keep_levels,
            noise_floor_below_db: self.floor_below,
            dereverb: self.dereverb.into(),
            ..RecognizerOptions::default()
        };
        Recognizer::new(model, options).context("setting up the decoder")
    }
}

/// Which frames per-utterance mean normalisation is estimated on (`--cmvn-frames`).
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum CmvnFrames {
    /// Every frame (Kaldi's per-utterance apply-cmvn).
    All,
    /// Frames within 30 dB of the utterance's loud frames: robust to silence, pauses and noise floors.
    Loud,
}

impl CmvnFrames {
    /// The library's setting.
    pub fn statistics(self) -> phonrec::features::CmvnStatistics {
        match self {
            CmvnFrames::All => phonrec::features::CmvnStatistics::All,
            CmvnFrames::Loud => phonrec::features::CmvnStatistics::Loud {
                within_db: LOUD_FRAMES_WITHIN_DB,
            },
        }
    }
}

/// The loudness range of `--cmvn-frames loud`.
pub const LOUD_FRAMES_WITHIN_DB: f32 = 30.0;

/// `--dereverb`: when to remove late reverberation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DereverbArg {
    /// When the recording is measured reverberant.
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl From<DereverbArg> for Dereverb {
    fn from(arg: DereverbArg) -> Self {
        match arg {
            DereverbArg::Auto => Dereverb::Auto,
            DereverbArg::On => Dereverb::On,
            DereverbArg::Off => Dereverb::Off,
        }
    }
}

/// Input this large (bytes of audio files), or this many files, gets a progress bar: less is over
/// in a few seconds.
const PROGRESS_MIN_BYTES: u64 = 32 << 20;
const PROGRESS_MIN_FILES: usize = 200;

/// Progress of `transcribe` and `eval` over their inputs, on stderr: a bar measured in bytes of
/// audio (a fair measure of the work: an hour of 16 kHz audio is 115 MB, of FLAC about half), with
/// the files done, the elapsed time and an estimate of what is left. Drawn only on a terminal and
/// for more than a few seconds' work (nothing in logs, pipes or scripts), and never with `--quiet`.
pub struct InputProgress {
    bar: Option<indicatif::ProgressBar>,
    files: usize,
    done: usize,
}

impl InputProgress {
    /// A bar over inputs of these sizes (bytes), if one is wanted.
    pub fn new(sizes: &[u64], quiet: bool) -> Self {
        let total: u64 = sizes.iter().sum();
        let wanted = !quiet
            && std::io::IsTerminal::is_terminal(&std::io::stderr())
            && (total >= PROGRESS_MIN_BYTES || sizes.len() >= PROGRESS_MIN_FILES);
        let bar = wanted.then(|| {
            let bar = indicatif::ProgressBar::new(total.max(1));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {msg}  ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(format!("0/{} files", sizes.len()));
            // Ticks on its own, so the elapsed time moves while one long file is recognised.
            bar.enable_steady_tick(std::time::Duration::from_millis(500));
            bar
        });
        InputProgress {
            bar,
            files: sizes.len(),
            done: 0,
        }
    }

    /// `files` more inputs of `bytes` bytes are done.
    pub fn advance(&mut self, files: usize, bytes: u64) {
        self.done += files;
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(format!("{}/{} files", self.done, self.files));
        }
    }

    /// Run `f` (which writes to the terminal) with the bar cleared, then draw it again.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Remove the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fnv1a_64;

    #[test]
    fn the_fingerprint_is_fnv_1a() {
        // The published FNV-1a 64-bit test vectors.
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
