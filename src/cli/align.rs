//! `phonrec align`: audio + its transcript -> word and phone times (forced alignment).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use phonrec::align::{AlignTarget, Alignment, OovPolicy};
use phonrec::audio::{AudioPiece, AudioSpan, Waveform};
use phonrec::builtin;
use phonrec::choice::Choice;
use phonrec::ctc::{BoundaryModel, LatticeOptions};
use phonrec::data::Lexicon;
use phonrec::error::Error;
use phonrec::model::{FrameHead, Model, Precision};
use phonrec::output::{write_alignment, AlignFormat, ALIGNMENT_TSV_HEADER};
use phonrec::phones::{Alphabet, PhoneSet};
use phonrec::recognize::{
    Recognizer, RecognizerOptions, DEFAULT_MIN_MATCH_SCORE, DEFAULT_MIN_WORST_SECOND_SCORE,
    MIN_SPEECH_SHARE,
};
use rayon::prelude::*;

use super::choice::choice;
use super::common::{
    built_in_boundaries, error_chain, find_audio_files, load_model, read_audio_arg,
    refuse_problems, ChannelArg,
};
use super::output_file::{
    data_dir_files, refuse_overwriting_inputs, write_atomically, Destination,
};
use super::shard::ShardArgs;

/// Align audio to its transcript: the time of every word and phone (forced alignment)
///
/// One file:   phonrec align speech.wav --text "the words it says" > speech.TextGrid
///             phonrec align speech.wav --phones "dh ah w er d z" --format json
///             phonrec align lecture.wav --text-file lecture.txt -o lecture.TextGrid  (long texts)
/// A corpus:   phonrec align corpus/ --output-dir aligned/
///             (the Montreal Forced Aligner's layout: speaker/utt.wav beside utt.lab or utt.txt;
///             aligned/speaker/utt.TextGrid is written for each)
/// A manifest: phonrec align --manifest list.tsv --output-dir aligned/ --format ctm
/// Kaldi:      phonrec align data/train --format ctm -o train.ctm
///             (wav.scp, text and perhaps segments; output keyed by utterance id, times from each
///             segment's start as in Kaldi's per-utterance CTMs)
///
/// Words become phones through the built-in English lexicon (the Carnegie Mellon Pronouncing
/// Dictionary, 126k words, folded to phonrec's 39 phones; Copyright (C) 1993-2015 Carnegie Mellon
/// University, BSD-style licence in models/cmudict.LICENSE) and --lexicon. Where a word has several
/// pronunciations the audio chooses. Text is lowercased, split at whitespace and punctuation; quotes
/// and dashes around words are dropped; hyphenated words the lexicon lacks are split. Words the
/// lexicon does not have stop the run with a list of them (file:line) unless --oov says otherwise.
///
/// The whole file is aligned at once (leading and trailing silence and pauses need no trimming);
/// silence shows as gaps (empty TextGrid intervals). Each alignment gets a match score: how much
/// likelihood per frame forcing the text costs against what the network hears freely, over the
/// whole recording and over its worst second. Below --min-match or --min-worst-second the audio
/// probably does not say the text (a wrong file, words it does not say), and so when fewer than
/// half of the text's phones fall where speech is heard (JSON "speech_share": silence, a noise
/// floor, a muted microphone): that is reported on stderr, marked in JSON ("matches_text": false),
/// and the exit status is non-zero. Words the audio says but the text lacks are mostly not caught.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct AlignArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Output format.
    #[arg(long, value_parser = choice::<AlignFormat>(), default_value = AlignFormat::TextGrid.name())]
    pub format: AlignFormat,
}

/// What `align` and `score` share: the recordings and their transcripts, the lexicon, the model,
/// where output goes, and how alignment runs.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// Audio files (with --text or --phones: exactly one, `-` for an audio stream on standard
    /// input), corpus folders in MFA's layout, or Kaldi data dirs (wav.scp, text, perhaps segments).
    #[arg(required_unless_present = "manifest")]
    pub inputs: Vec<PathBuf>,

    /// The words the one audio file says.
    #[arg(long, conflicts_with_all = ["phones", "manifest", "text_file", "phones_file"])]
    pub text: Option<String>,

    /// The phones the one audio file says (ARPAbet; stress digits and TIMIT symbols are folded).
    #[arg(long, conflicts_with_all = ["manifest", "text_file", "phones_file"])]
    pub phones: Option<String>,

    /// As --text, read from a UTF-8 text file (line breaks are spaces): for long transcripts, which
    /// the command line cannot hold (an hour of speech is ~50 kB of text).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["manifest", "phones_file"])]
    pub text_file: Option<PathBuf>,

    /// As --phones, read from a file.
    #[arg(long, value_name = "FILE", conflicts_with = "manifest")]
    pub phones_file: Option<PathBuf>,

    #[command(flatten)]
    pub channel: ChannelArg,

    /// A list of recordings: `audio<TAB>text` per line (relative paths from the manifest's folder;
    /// `#` comments). A header line `audio<TAB>phones` makes the second column phones
    /// (`audio<TAB>text`: words); without a header, a list whose every token is a phone symbol,
    /// such as a training manifest, is read as phones.
    #[arg(long, value_name = "TSV")]
    pub manifest: Option<PathBuf>,

    /// A pronunciation lexicon (CMUdict format `WORD  P1 P2 ...`, or Kaldi's lexicon.txt): its
    /// words replace the built-in lexicon's pronunciations of those words, the rest are added.
    #[arg(long, value_name = "FILE")]
    pub lexicon: Option<PathBuf>,

    /// Use only --lexicon, not the built-in one.
    #[arg(long, requires = "lexicon")]
    pub no_builtin_lexicon: bool,

    /// What to do with words the lexicon does not have.
    #[arg(long, value_parser = choice::<OovPolicy>(), default_value = OovPolicy::Error.name())]
    pub oov: OovPolicy,

    /// Write all output to this file instead of standard output (not for TextGrid with several
    /// recordings: use --output-dir).
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "output_dir")]
    pub output: Option<PathBuf>,

    /// Write one file per recording here (`utt.TextGrid`, `utt.json`, ...; a corpus's speaker
    /// folders are kept). Each file is written whole or not at all.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    #[command(flatten)]
    pub shard: ShardArgs,

    /// Phone symbols in the output.
    #[arg(long, value_parser = choice::<Alphabet>(), default_value = Alphabet::Arpabet.name())]
    pub alphabet: Alphabet,

    /// Model file made by `phonrec train` [default: the built-in model].
    #[arg(long)]
    pub model: Option<PathBuf>,

    /// Match score (the log-likelihood per frame the text costs against what the network hears
    /// freely, ≤ 0) below which an alignment is reported as audio that does not say its text.
    #[arg(long, default_value_t = DEFAULT_MIN_MATCH_SCORE, allow_hyphen_values = true, value_name = "SCORE", value_parser = parse_score_floor)]
    pub min_match: f64,

    /// The same for the recording's worst second (catches words of the text the audio does not say).
    #[arg(long, default_value_t = DEFAULT_MIN_WORST_SECOND_SCORE, allow_hyphen_values = true, value_name = "SCORE", value_parser = parse_score_floor)]
    pub min_worst_second: f64,

    /// How phone boundaries are placed around the network's spikes: `builtin` (the built-in model's
    /// frame head: each frame labelled with its phone or silence, boundaries where the labels
    /// change), `extents` (the built-in model's per-phone extents around the spikes, coarser),
    /// `midpoint` (blank gaps split in the middle, up to 60 ms to each side of a pause), or a file
    /// fitted for your model: a frame head (`.safetensors`, from `phonrec fit-frame-head`) or
    /// extents (`.tsv`, from `recipes/align/fit_boundaries.py`) [default: builtin with the built-in
    /// model, else midpoint].
    #[arg(long, value_name = "builtin|extents|midpoint|FILE")]
    pub boundaries: Option<String>,

    /// Viterbi beam in nats (states further below the frame's best are dropped): a speed setting.
    /// The alignment is the exact one whenever its path stays within the beam; when the beam loses
    /// every path (audio and text far apart), the search is run again without it for recordings
    /// of up to about an hour of short text.
    #[arg(long, default_value_t = LatticeOptions::default().beam, value_name = "NATS", value_parser = parse_beam_nats)]
    pub viterbi_beam: f64,

    /// Phone spans are the frames the Viterbi path labels with each phone (the network's spikes),
    /// not boundaries: the data `recipes/align/fit_boundaries.py` fits the boundary model on.
    #[arg(long, hide = true)]
    pub spike_spans: bool,
}

/// What one recording says, as given (words, or phones), before the lexicon is applied.
enum Said {
    Text(String),
    Phones(String),
    /// A transcript from a list (a Kaldi `text`, a manifest without a header): words, unless
    /// every transcript of that list is phones (Kaldi's TIMIT recipe, a training manifest).
    Listed {
        text: String,
        list: PathBuf,
    },
}

/// One recording to align.
pub(super) struct Job {
    pub audio: PathBuf,
    /// The stretch of `audio` to align (a Kaldi `segments` line); `None` for the whole file.
    span: Option<AudioSpan>,
    /// One channel of `audio` (a Kaldi `wav.scp` line `sph2pipe -c N`); `None`: `--channel`'s choice.
    channel: Option<usize>,
    /// The utterance id (Kaldi data dirs): output is keyed by it.
    id: Option<String>,
    transcript: Said,
    /// Where the transcript came from, for messages (`file`, `file:line`, or `--text`).
    origin: String,
    /// Output path under --output-dir, without extension.
    out_name: PathBuf,
}

impl Job {
    /// Name an alignment of this job's audio: its file, utterance id and offset in the file.
    pub(super) fn label(&self, alignment: &mut Alignment) {
        alignment.source = self.audio.clone();
        alignment.id = self.id.clone();
        alignment.offset_s = self.span.map(|span| span.start_s);
    }
}

/// Recordings aligned in parallel before their results are written, in input order.
const FILES_PER_ROUND: usize = 8;

pub fn run(args: AlignArgs) -> anyhow::Result<ExitCode> {
    let format = args.format;
    run_jobs(
        &args.target,
        Output {
            one_recording_per_file: format == AlignFormat::TextGrid,
            extension: format.extension(),
            header: (format == AlignFormat::Tsv).then_some(ALIGNMENT_TSV_HEADER),
            keyed_lines: matches!(format, AlignFormat::Ctm | AlignFormat::Tsv),
        },
        |recognizer, job, wave, target| {
            let mut alignment = recognizer.align(wave, target)?;
            job.label(&mut alignment);
            Ok(alignment)
        },
        |alignment| alignment,
        |alignment, phones, out| write_alignment(format, alignment, phones, out),
    )
}

/// How a subcommand's results are written.
pub(super) struct Output {
    /// The format holds one recording (TextGrid): several need --output-dir.
    pub one_recording_per_file: bool,
    /// File extension under --output-dir.
    pub extension: &'static str,
    /// A header line at the top of each output file or stream.
    pub header: Option<&'static str>,
    /// The format's lines are keyed by recording (CTM, TSV): two recordings must not share a
    /// key in one stream.
    pub keyed_lines: bool,
}

/// `--min-match`, `--min-worst-second`: a score floor, ≤ 0 as the scores are (above 0 every
/// recording would be reported as not saying its text).
fn parse_score_floor(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(score) if score <= 0.0 => Ok(score),
        _ => Err("expected a score ≤ 0 (match scores are log-likelihoods per frame)".to_string()),
    }
}

/// `--viterbi-beam`: a positive number of nats (`inf` for none).
fn parse_beam_nats(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(nats) if nats > 0.0 => Ok(nats),
        _ => Err("expected a positive number of nats (or inf)".to_string()),
    }
}

/// Whether a job's audio is standard input (`-`).
fn reads_stdin(job: &Job) -> bool {
    job.audio.as_os_str() == "-"
}

/// Run `work` on every recording the arguments name (in parallel rounds) and `write` each result in
/// input order, to stdout, `-o FILE` or one file per recording under `--output-dir`. Recordings that
/// fail or whose alignment does not match their transcript are reported and make the exit status
/// non-zero.
pub(super) fn run_jobs<R: Send>(
    args: &TargetArgs,
    output: Output,
    work: impl Fn(&Recognizer, &Job, Waveform, &AlignTarget) -> phonrec::Result<R> + Sync,
    alignment_of: impl Fn(&R) -> &Alignment,
    write: impl Fn(&R, &PhoneSet, &mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<ExitCode> {
    let mut jobs = collect_jobs(args)?;
    if jobs.is_empty() {
        bail!("no audio files found in the given inputs");
    }
    if args.output_dir.is_some() {
        for job in &mut jobs {
            if let Some(id) = &job.id {
                super::common::id_as_file_stem(id)?;
            }
            // A manifest's `../wavs/a.wav` names its output `wavs/a`, inside the folder.
            let inside: PathBuf = job
                .out_name
                .components()
                .rev()
                .take_while(|c| matches!(c, std::path::Component::Normal(_)))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if inside.as_os_str().is_empty() {
                bail!(
                    "--output-dir: {} cannot name a file in the folder",
                    job.audio.display()
                );
            }
            job.out_name = inside;
        }
    }
    if output.keyed_lines && args.output_dir.is_none() {
        super::common::refuse_shared_keys(
            jobs.iter().map(|job| {
                let key = phonrec::output::line_key(job.id.as_deref(), &job.audio);
                (job.audio.clone(), key)
            }),
            output.extension,
        )?;
    }
    args.shard.check_resumable(jobs.iter().any(reads_stdin))?;
    let jobs = args.shard.select(
        jobs,
        // As transcribe and features shard: by utterance id where there is one, so a pipeline's
        // `--shard K/N` of each command takes the same utterances; else by the recording as
        // listed (relative to its manifest or folder), however the manifest's path is spelled.
        |job| {
            job.id
                .clone()
                .unwrap_or_else(|| job.out_name.to_string_lossy().into_owned())
        },
        |job| {
            args.output_dir
                .as_ref()
                .map(|dir| dir.join(format!("{}.{}", job.out_name.display(), output.extension)))
        },
    )?;
    if output.one_recording_per_file && args.output_dir.is_none() && jobs.len() > 1 {
        bail!(
            "a TextGrid holds one recording and there are {}: write one per recording with \
             --output-dir DIR, or choose another --format",
            jobs.len()
        );
    }
    let model = load_model(args.model.as_deref(), Precision::F32)?;
    let (frame_head, boundaries) = boundary_placement(args, &model)?;
    let recognizer = Recognizer::new(
        model,
        RecognizerOptions {
            min_match_score: args.min_match,
            min_worst_second_score: args.min_worst_second,
            align: LatticeOptions {
                max_blank_frames_per_side: if args.spike_spans {
                    0
                } else {
                    LatticeOptions::default().max_blank_frames_per_side
                },
                beam: args.viterbi_beam,
            },
            boundaries,
            frame_head,
            ..RecognizerOptions::default()
        },
    )?;
    let targets = build_targets(args, &jobs, recognizer.phones())?;
    let (output_phones, unknown) = recognizer.phones().in_alphabet(args.alphabet);
    if !unknown.is_empty() {
        eprintln!(
            "phonrec: note: no IPA for {} (not ARPAbet): written as the model names them",
            unknown.join(" ")
        );
    }

    let mut out: Option<Destination> = match (&args.output_dir, &args.output) {
        (Some(dir), _) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            None
        }
        (None, path) => {
            if let Some(path) = path {
                // The recordings, their transcripts (MFA's `.lab`/`.txt`), a Kaldi dir's files.
                let data_files = data_dir_files(args.inputs.iter().map(PathBuf::as_path));
                let inputs = jobs
                    .iter()
                    .flat_map(|job| [job.audio.as_path(), Path::new(&job.origin)])
                    .chain(data_files.iter().map(PathBuf::as_path))
                    .chain(args.lexicon.as_deref());
                refuse_overwriting_inputs(path, inputs.chain(args.manifest.as_deref()))?;
            }
            Some(Destination::to(path.as_deref())?)
        }
    };
    if let (Some(out), Some(header)) = (out.as_mut(), output.header) {
        writeln!(out, "{header}")?;
    }
    let (mut failures, mut mismatches) = (0, 0);
    let pairs: Vec<(&Job, &AlignTarget)> = jobs.iter().zip(&targets).collect();
    // Kept across rounds: a recording cut into many utterances (Kaldi segments) is decoded once.
    let reader = args.channel.reader();
    // `-` is standard input, as in transcribe: read once, before any file.
    let stdin_wave = match jobs.iter().any(reads_stdin) {
        true => Some(read_audio_arg(Path::new("-"), args.channel.choice())?),
        false => None,
    };
    for round in pairs.chunks(FILES_PER_ROUND) {
        // Files are read by the reader; standard input was read once above.
        let pieces: Vec<AudioPiece<'_>> = round
            .iter()
            .filter(|(job, _)| !reads_stdin(job))
            .map(|(job, _)| AudioPiece {
                path: &job.audio,
                span: job.span,
                channel: job.channel,
            })
            .collect();
        let mut from_files = reader.read(&pieces).into_iter();
        let waves: Vec<phonrec::Result<Waveform>> = round
            .iter()
            .map(|(job, _)| match (&stdin_wave, reads_stdin(job)) {
                (Some(stdin), true) => Ok(stdin.clone()),
                _ => from_files.next().unwrap_or_else(|| {
                    Err(phonrec::Error::io(
                        &job.audio,
                        std::io::Error::other("not read"),
                    ))
                }),
            })
            .collect();
        let results: Vec<_> = round
            .par_iter()
            .zip(waves)
            .map(|((job, target), wave)| work(&recognizer, job, wave?, target))
            .collect();
        for ((job, target), result) in round.iter().zip(results) {
            let result = match result {
                Ok(result) => result,
                Err(error) => {
                    failures += 1;
                    match &job.id {
                        // Several utterances may share a file: the id says which failed.
                        Some(id) => eprintln!("phonrec: error: {id}: {}", error_chain(&error)),
                        // Reading errors name the file; the aligner's ("cannot align 4
                        // phones to 0 frames") do not, and in a corpus the file is the point.
                        None => {
                            let message = error_chain(&error);
                            let path = job.audio.display().to_string();
                            if message.contains(&path) {
                                eprintln!("phonrec: error: {message}");
                            } else {
                                eprintln!("phonrec: error: {path}: {message}");
                            }
                        }
                    }
                    continue;
                }
            };
            if !target.skipped.is_empty() {
                eprintln!(
                    "phonrec: note: {}: left out (not in the lexicon): {}",
                    job.origin,
                    target.skipped.join(" ")
                );
            }
            let alignment = alignment_of(&result);
            if !alignment.matches_text && alignment.speech_share < MIN_SPEECH_SHARE {
                mismatches += 1;
                eprintln!(
                    "phonrec: warning: {}: the audio does not seem to say its transcript ({}): \
                     only {:.0} % of its phones fall where speech is heard; silence, a noise \
                     floor, or a wrong file?",
                    job.audio.display(),
                    job.origin,
                    100.0 * alignment.speech_share,
                );
            } else if !alignment.matches_text {
                mismatches += 1;
                eprintln!(
                    "phonrec: warning: {}: the audio does not seem to say its transcript ({}): \
                     match score {:.2} per frame (--min-match {}), worst second {:.2} \
                     (--min-worst-second {}); a wrong file, or words the audio does not say?",
                    job.audio.display(),
                    job.origin,
                    alignment.match_score,
                    args.min_match,
                    alignment.worst_second_score,
                    args.min_worst_second
                );
            }
            match (&mut out, &args.output_dir) {
                (Some(out), _) => write(&result, &output_phones, out)?,
                (None, Some(dir)) => {
                    let path = dir.join(format!("{}.{}", job.out_name.display(), output.extension));
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("cannot create {}", parent.display()))?;
                    }
                    let mut bytes = Vec::new();
                    if let Some(header) = output.header {
                        writeln!(bytes, "{header}")?;
                    }
                    write(&result, &output_phones, &mut bytes)?;
                    write_atomically(&path, &bytes)?;
                }
                (None, None) => unreachable!("either a stream or a folder is set up above"),
            }
        }
        if let Some(out) = out.as_mut() {
            out.flush()?;
        }
    }
    // An earlier output file is left as it was when every recording failed.
    if let Some(out) = out.filter(|_| failures < jobs.len()) {
        out.finish()?;
    }
    if failures + mismatches > 0 {
        eprintln!(
            "phonrec: of {} recordings, {failures} failed and {mismatches} do not match their transcript",
            jobs.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The recordings to align, from the arguments.
fn collect_jobs(args: &TargetArgs) -> anyhow::Result<Vec<Job>> {
    let stem = |path: &Path| PathBuf::from(path.file_stem().unwrap_or(path.as_os_str()));
    if let Some(manifest) = &args.manifest {
        if !args.inputs.is_empty() {
            bail!("give either --manifest or audio files and folders, not both");
        }
        return manifest_jobs(manifest);
    }
    let read = |path: &PathBuf| {
        phonrec::data::read_text(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let given = match (&args.text, &args.phones, &args.text_file, &args.phones_file) {
        (Some(text), ..) => Some((Said::Text(text.clone()), "--text".to_string())),
        (_, Some(phones), ..) => Some((Said::Phones(phones.clone()), "--phones".to_string())),
        (.., Some(file), _) => Some((Said::Text(read(file)?), file.display().to_string())),
        (.., Some(file)) => Some((Said::Phones(read(file)?), file.display().to_string())),
        _ => None,
    };
    if let Some((transcript, origin)) = given {
        let [audio] = args.inputs.as_slice() else {
            bail!(
                "--text and --phones (and their -file forms) align one audio file, and {} inputs \
                 were given; for several, use a corpus folder (utt.wav beside utt.lab) or --manifest",
                args.inputs.len()
            );
        };
        if audio.is_dir() {
            bail!(
                "{} is a folder: --text and --phones align one audio file",
                audio.display()
            );
        }
        return Ok(vec![Job {
            audio: audio.clone(),
            span: None,
            channel: None,
            id: None,
            transcript,
            origin,
            out_name: stem(audio),
        }]);
    }
    let mut jobs = Vec::new();
    let mut missing = Vec::new();
    for input in &args.inputs {
        if input.is_dir() && input.join("wav.scp").is_file() {
            jobs.extend(kaldi_jobs(input)?);
            continue;
        }
        let (files, root) = if input.is_dir() {
            (find_audio_files(input)?, Some(input.as_path()))
        } else {
            (vec![input.clone()], None)
        };
        for audio in files {
            let mut found = None;
            let mut label_track = None;
            for lab in ["lab", "txt"].map(|ext| audio.with_extension(ext)) {
                if !lab.is_file() {
                    continue;
                }
                let text = phonrec::data::read_text(&lab)
                    .with_context(|| format!("cannot read {}", lab.display()))?;
                // Audacity and pocketsphinx write .lab files that are label tracks, not words:
                // their times would become words of the transcript.
                if is_label_track(&text) {
                    label_track.get_or_insert(lab);
                    continue;
                }
                found = Some((lab, text));
                break;
            }
            let Some((lab, text)) = found else {
                if let Some(track) = label_track {
                    bail!(
                        "{} is a label track (`start<TAB>end<TAB>label` lines, as Audacity and \
                         pocketsphinx write them), not a transcript: put the words {} says in {}",
                        track.display(),
                        audio.display(),
                        audio.with_extension("txt").display()
                    );
                }
                missing.push(audio.display().to_string());
                continue;
            };
            let relative = root
                .and_then(|r| audio.strip_prefix(r).ok())
                .map_or_else(|| stem(&audio), |r| r.with_extension(""));
            jobs.push(Job {
                audio,
                span: None,
                channel: None,
                id: None,
                transcript: Said::Text(text),
                origin: lab.display().to_string(),
                out_name: relative,
            });
        }
    }
    if !missing.is_empty() {
        bail!(
            "no transcript beside {} audio file{} (utt.lab or utt.txt next to utt.wav, as in the \
             Montreal Forced Aligner's corpus layout; or use --text for one file): {}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        );
    }
    Ok(jobs)
}

/// Whether a transcript file's text is a label track: every line `start<TAB>end[<TAB>label]` with
/// times in seconds (Audacity's export, pocketsphinx's segmentation), so no line holds words alone.
fn is_label_track(text: &str) -> bool {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
    lines.peek().is_some()
        && lines.all(|line| {
            let mut fields = line.split('\t');
            let mut time = || {
                fields
                    .next()
                    .is_some_and(|f| f.trim().parse::<f64>().is_ok())
            };
            time() && time()
        })
}

/// The utterances of a Kaldi data dir (`wav.scp`, `text`, perhaps `segments`), by id, each with its
/// words. Unusable lines, and utterances without text or text without audio, are errors: an
/// alignment run should not drop utterances unnoticed.
fn kaldi_jobs(dir: &Path) -> anyhow::Result<Vec<Job>> {
    let audio = phonrec::data::kaldi_dir_audio(dir)?;
    refuse_problems(&audio.problems)?;
    super::common::warn_of_empty_segments(&audio.empty);
    let utterances = audio.utterances;
    let text_path = dir.join("text");
    let text = phonrec::data::read_text(&text_path).with_context(|| {
        format!(
            "cannot read {}: a Kaldi data dir to align needs its transcripts",
            text_path.display()
        )
    })?;
    let mut words: std::collections::HashMap<&str, (&str, usize)> = Default::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        let (id, said) = match line.split_once(char::is_whitespace) {
            Some((id, rest)) => (id, rest.trim()),
            None if !line.is_empty() => (line, ""),
            None => continue,
        };
        if let Some((_, first)) = words.insert(id, (said, index + 1)) {
            bail!(
                "{}:{}: utterance '{id}' is listed twice (first on line {first})",
                text_path.display(),
                index + 1
            );
        }
    }
    // An empty segment's transcript has no audio to align: skipped with the segment's warning.
    for id in &audio.empty_ids {
        words.remove(id.as_str());
    }
    let mut jobs = Vec::with_capacity(utterances.len());
    let mut untranscribed = Vec::new();
    for utterance in utterances {
        let Some((said, line)) = words.remove(utterance.id.as_str()) else {
            untranscribed.push(utterance.id);
            continue;
        };
        jobs.push(Job {
            audio: utterance.audio,
            span: utterance.span,
            channel: utterance.channel,
            out_name: PathBuf::from(phonrec::output::kaldi_key(&utterance.id)),
            id: Some(utterance.id),
            transcript: Said::Listed {
                text: said.to_string(),
                list: text_path.clone(),
            },
            origin: format!("{}:{line}", text_path.display()),
        });
    }
    if !untranscribed.is_empty() {
        bail!(
            "{}: no transcript for {} utterance{}: {}",
            text_path.display(),
            untranscribed.len(),
            if untranscribed.len() == 1 { "" } else { "s" },
            untranscribed.join(", ")
        );
    }
    if let Some((id, (_, line))) = words.iter().min_by_key(|(_, (_, line))| *line) {
        bail!(
            "{}:{line}: utterance '{id}' has no audio in {}",
            text_path.display(),
            if dir.join("segments").exists() {
                "segments"
            } else {
                "wav.scp"
            }
        );
    }
    Ok(jobs)
}

/// Recordings listed in a manifest: `audio<TAB>text` (or phones, after an `audio<TAB>phones` header).
fn manifest_jobs(manifest: &Path) -> anyhow::Result<Vec<Job>> {
    let text = phonrec::data::read_text(manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let base = manifest.parent().unwrap_or(Path::new(""));
    // The header's word for the second column, if there is a header.
    let mut column: Option<bool> = None;
    let mut jobs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((audio, transcript)) = line.split_once('\t') else {
            bail!(
                "{}:{}: expected `audio<TAB>text`",
                manifest.display(),
                index + 1
            );
        };
        if jobs.is_empty() && audio == "audio" && matches!(transcript, "text" | "phones") {
            column = Some(transcript == "phones");
            continue;
        }
        let audio_path = base.join(audio);
        let out_name = Path::new(audio).with_extension("");
        let out_name = if out_name.is_absolute() {
            PathBuf::from(out_name.file_name().unwrap_or(out_name.as_os_str()))
        } else {
            out_name
        };
        jobs.push(Job {
            audio: audio_path,
            span: None,
            channel: None,
            id: None,
            transcript: match column {
                Some(true) => Said::Phones(transcript.to_string()),
                Some(false) => Said::Text(transcript.to_string()),
                None => Said::Listed {
                    text: transcript.to_string(),
                    list: manifest.to_path_buf(),
                },
            },
            origin: format!("{}:{}", manifest.display(), index + 1),
            out_name,
        });
    }
    Ok(jobs)
}

/// Every job's alignment target. Out-of-vocabulary words are gathered over all jobs first and
/// reported together, each with the file and line it is on, before any audio is read.
fn build_targets(
    args: &TargetArgs,
    jobs: &[Job],
    phones: &PhoneSet,
) -> anyhow::Result<Vec<AlignTarget>> {
    // Lists of phones: a training manifest or a Kaldi `text` of phones, read as words, aligned
    // the words "s", "eh", "n" and their pronunciations.
    let mut listed: std::collections::BTreeMap<&Path, Vec<&str>> = Default::default();
    for job in jobs {
        if let Said::Listed { text, list } = &job.transcript {
            listed.entry(list).or_default().push(text);
        }
    }
    let phone_lists: std::collections::BTreeSet<&Path> = listed
        .into_iter()
        .filter(|(_, texts)| phonrec::data::transcripts_are_phones(texts.iter().copied(), phones))
        .map(|(list, _)| list)
        .collect();
    for list in &phone_lists {
        // A manifest (`x.tsv`) can say which it is; a Kaldi `text` cannot.
        let hint = if list.extension().is_some() {
            " (a first line `audio<TAB>text` says they are words)"
        } else {
            ""
        };
        eprintln!(
            "phonrec: note: {}: every token is a phone symbol, so its transcripts are read as \
             phones, not words{hint}",
            list.display()
        );
    }
    // Each job's transcript and whether it is phones.
    let transcripts: Vec<(&str, bool)> = jobs
        .iter()
        .map(|job| match &job.transcript {
            Said::Text(text) => (text.as_str(), false),
            Said::Phones(text) => (text.as_str(), true),
            Said::Listed { text, list } => (text.as_str(), phone_lists.contains(list.as_path())),
        })
        .collect();
    let needs_lexicon = transcripts.iter().any(|(_, is_phones)| !is_phones);
    let lexicon = if needs_lexicon {
        load_lexicon(args)?
    } else {
        Lexicon::default()
    };
    let mut targets = Vec::with_capacity(jobs.len());
    let mut oov_lines: Vec<String> = Vec::new();
    for (job, &(text, is_phones)) in jobs.iter().zip(&transcripts) {
        let target = match is_phones {
            true => AlignTarget::from_phones(text, phones)
                .map_err(|e| anyhow::anyhow!("{}: {}", job.origin, error_chain(&e)))?,
            false => match AlignTarget::from_text(text, &lexicon, phones, args.oov) {
                Ok(target) => target,
                Err(Error::OutOfVocabulary { words }) => {
                    for word in words {
                        oov_lines.push(format!(
                            "  {}  {word}",
                            locate_word(&job.origin, text, &word)
                        ));
                    }
                    continue;
                }
                Err(e) => bail!("{}: {}", job.origin, error_chain(&e)),
            },
        };
        targets.push(target);
    }
    if !oov_lines.is_empty() {
        bail!(
            "{} not in the lexicon:\n{}\nadd pronunciations with --lexicon FILE (CMUdict format: \
             `WORD  P1 P2 ...`), or choose --oov spell (letters and digits by name) or --oov skip",
            if oov_lines.len() == 1 {
                "1 word is".to_string()
            } else {
                format!("{} words are", oov_lines.len())
            },
            oov_lines.join("\n")
        );
    }
    if let (Some(job), Some(target)) = (jobs.first(), targets.first()) {
        // Nothing to align anywhere: said before the network runs. (In a corpus, a recording whose
        // transcript is empty is aligned with the rest and reported as not matching its audio.)
        if targets.iter().all(|target| target.words.is_empty()) {
            let why = if target.skipped.is_empty() {
                String::new()
            } else {
                format!(
                    " (--oov skip left out every word: {})",
                    target.skipped.join(" ")
                )
            };
            let which = if jobs.len() == 1 {
                format!("the transcript of {} is empty", job.audio.display())
            } else {
                format!(
                    "every transcript is empty, e.g. that of {}",
                    job.audio.display()
                )
            };
            bail!("{}: {which}{why}", job.origin);
        }
    }
    Ok(targets)
}

/// `origin:line` of the first line of `text` that holds `word` (when `origin` is a file of its own).
fn locate_word(origin: &str, text: &str, word: &str) -> String {
    if origin.starts_with("--") || origin.contains(':') {
        return origin.to_string();
    }
    text.lines()
        .position(|line| line.to_lowercase().contains(word))
        .map_or_else(|| origin.to_string(), |i| format!("{origin}:{}", i + 1))
}

/// What places boundaries: a frame head or a boundary model (extents), as `--boundaries` asks
/// (neither with --spike-spans, or for `midpoint`).
fn boundary_placement(
    args: &TargetArgs,
    model: &Model,
) -> anyhow::Result<(Option<FrameHead>, Option<BoundaryModel>)> {
    if args.spike_spans {
        return Ok((None, None));
    }
    let phones = model.phones();
    let hidden_width = 2 * model.network().config().hidden_size;
    let extents = || -> anyhow::Result<BoundaryModel> {
        let text = built_in_boundaries()
            .context("this phonrec has no built-in model, so no built-in boundary model either")?;
        BoundaryModel::parse_tsv(text, phones, "<built-in boundary model>")
            .context("the built-in boundary model does not fit this model's phones")
    };
    let built_in = || -> anyhow::Result<(Option<FrameHead>, Option<BoundaryModel>)> {
        let head = builtin::frame_head(phones, hidden_width)
            .context("the built-in frame head does not fit this model")?;
        Ok((head, Some(extents()?)))
    };
    match args.boundaries.as_deref() {
        None if args.model.is_none() => built_in(),
        None | Some("midpoint") => Ok((None, None)),
        Some("builtin") => built_in(),
        Some("extents") => Ok((None, Some(extents()?))),
        Some(path) if path.ends_with(".safetensors") => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read --boundaries {path}"))?;
            let head = FrameHead::from_bytes(&bytes, path, phones, hidden_width)?;
            Ok((Some(head), None))
        }
        Some(path) => {
            let text = phonrec::data::read_text(Path::new(path))
                .with_context(|| format!("cannot read --boundaries {path}"))?;
            Ok((None, Some(BoundaryModel::parse_tsv(&text, phones, path)?)))
        }
    }
}

fn load_lexicon(args: &TargetArgs) -> anyhow::Result<Lexicon> {
    let mut lexicon = if args.no_builtin_lexicon {
        Lexicon::default()
    } else {
        Lexicon::built_in().context("the built-in lexicon does not load (a broken build?)")?
    };
    if let Some(path) = &args.lexicon {
        lexicon.override_with(Lexicon::load(path)?);
    }
    Ok(lexicon)
}

#[cfg(test)]
mod tests {
    use super::is_label_track;

    #[test]
    fn label_tracks_are_told_from_transcripts() {
        assert!(is_label_track(
            "0.235689\t0.235689\tspeech\n1.5\t2.25\tspeech\n"
        ));
        assert!(is_label_track("0.5\t1.0\n"));
        assert!(!is_label_track("she had your dark suit\n"));
        assert!(!is_label_track("7\n"));
        assert!(!is_label_track("1.5\t2.0\tyes\nand then some words\n"));
        assert!(!is_label_track("\n"));
    }
}
