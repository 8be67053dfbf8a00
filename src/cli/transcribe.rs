//! `phonrec transcribe`: audio files -> phonemes (text, JSON Lines or CTM).

use std::io::Write;

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use phonrec::choice::Choice;
use phonrec::output::{write_transcript, OutputFormat};
use phonrec::phones::Alphabet;
use phonrec::recognize::{plan_rounds, Transcript};

use super::choice::choice;
use super::common::{
    audio_size, error_chain, expand_inputs, inputs_noun, manifest_inputs, no_audio_found,
    read_inputs, ChannelArg, DecodeArgs, DereverbArg, Input, InputProgress, Kept,
};
use super::output_file::{
    data_dir_files, refuse_overwriting_inputs, write_atomically, Destination,
};
use super::shard::ShardArgs;

/// Print the phonemes of audio files.
///
/// Reads WAV (8–32-bit PCM, 32/64-bit float, µ-law/A-law, ADPCM, GSM 6.10; 8–192 kHz, any channel count, resampled to the
/// model's rate), NIST SPHERE, Sun .au (µ-law telephone audio), FLAC, Ogg Vorbis or Opus (voice
/// messages), MP3, AIFF, CAF, MP4/M4A (AAC, ALAC), raw AAC (ADTS), WebM/Matroska (Opus from browsers; AAC, Vorbis,
/// MP3, FLAC or PCM), AMR and GSM 06.10 (`.gsm`: Asterisk's call recordings), recognised by content. Folders are searched for .wav, .sph, .au, .snd,
/// .flac, .ogg, .oga, .opus, .webm, .mka, .mkv (OBS's recordings: their first audio track),
/// .mp3, .aif(f), .aifc, .caf, .m4a, .m4b (audiobooks), .mp4 and .mov (phones' videos: their first audio track), .aac and .amr and .3gp (AMR-NB/WB: Android voice recordings, MMS), .gsm files (symlinks followed, each folder once, hidden `.` names such as macOS `._x.wav` passed over); `-` reads
/// standard input: an audio stream (`sox in.aiff -t wav - | phonrec transcribe -`) or else a list of
/// paths, one per line.
/// A file that fails is reported on stderr and skipped; the exit status is then non-zero.
#[derive(Args, Debug)]
pub struct TranscribeArgs {
    /// Audio files, folders, Kaldi data dirs (a folder with wav.scp; with a segments file, its
    /// segments, times counting from each segment's start) or wav.scp files (output then keyed by
    /// utterance id), or `-` for standard input (audio, or a list of paths).
    #[arg(required_unless_present = "manifest")]
    pub files: Vec<PathBuf>,

    /// A list of recordings, one per line: a path (relative to the list's folder), optionally
    /// followed by a tab and anything else (so training manifests `audio<TAB>phones` and align
    /// manifests `audio<TAB>text` serve as they are); or JSON Lines with `"audio"` and an optional
    /// `"id"` that keys the output. `#` starts a comment line; a first line `audio<TAB>...` is a
    /// header.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    #[command(flatten)]
    pub shard: ShardArgs,

    #[command(flatten)]
    pub channel: ChannelArg,

    /// Write the output to this file instead of standard output (e.g. `-o hyp.txt --format kaldi`
    /// for a Kaldi `text` file). Lines are written as files finish, in input order.
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "output_dir")]
    pub output: Option<PathBuf>,

    /// Write one file per input here instead (`NAME.txt`, `.json`, `.ctm`, `.text` for kaldi, `.TextGrid`; NAME is the
    /// file name without extension, or the utterance id). Each file is written whole or not at all.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Phone symbols in the output: the model's ARPAbet, or IPA.
    #[arg(long, value_parser = choice::<Alphabet>(), default_value = Alphabet::Arpabet.name())]
    pub alphabet: Alphabet,

    /// Model file made by `phonrec train` [default: the built-in model].
    #[arg(long)]
    pub model: Option<PathBuf>,

    #[command(flatten)]
    pub decode: DecodeArgs,

    /// Output: text (`path<TAB>phones`, or the utterance id for wav.scp inputs), json (one object per
    /// line, with times and confidences), ctm (`file 1 start duration phone confidence`), kaldi
    /// (Kaldi `text`: `key phone phone ...`), or textgrid (Praat; one per file, so with several
    /// inputs use --output-dir).
    #[arg(long, value_parser = choice::<OutputFormat>(), default_value = OutputFormat::Text.name())]
    pub format: OutputFormat,

    /// Keep `sil` in the output (it is dropped by default). Only a model trained on labels with `sil`
    /// outputs it; the built-in model was not (its training labels have no silence), so with it this
    /// changes nothing: silence shows as the gaps between phones and, in JSON, as the speech
    /// `segments` around it.
    #[arg(long)]
    pub keep_sil: bool,

    /// Also give, for each phone, the K phones the network found most probable over its frames, with
    /// their mean posteriors (the decoded phone's is its confidence): where the LM or the beam chose
    /// a less probable phone, or two phones were close, this shows it. As Allosaurus's `--topk`: the
    /// text output becomes `path<TAB>ae (0.812) eh (0.102) | t (0.953) d (0.021) | ...`; JSON spans
    /// get `"alternatives": [{"phone", "p"}, ...]`. Text and JSON output only
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub alternatives: Option<u16>,

    /// Also give the N best phone sequences the beam search found for each recording, with their
    /// scores (natural-log: the network's probability of the sequence, plus the LM's weighted
    /// log-probability and the insertion bonus; higher is better), as pocketsphinx's `-nbest`. Text
    /// output prints one line per sequence: `path<TAB>rank<TAB>score<TAB>phones`; Kaldi output keys
    /// them `utt-1`, `utt-2`, ... as Kaldi's n-best tools do; JSON adds `"nbest": [{"phones",
    /// "score", "acoustic", "lm", "p"}, ...]` (`p`: each sequence's share of the list). At most
    /// --beam (16 with the built-in model); needs the beam search. Speech regions are searched one
    /// by one, so a recording's list joins theirs. CTM and TextGrid have no place for it
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub nbest: Option<u16>,

    /// Do not draw a progress bar (drawn on a terminal for more than a few seconds' work: input of
    /// 32 MB or 200 files and more).
    #[arg(long)]
    pub quiet: bool,
}

/// A recording without phones whose loudest sample is below this (dBFS) gets a note: speech
/// recorded even 40 dB too quietly peaks above it (the built-in model still recognises speech
/// peaking at −64 dBFS), and no microphone's own noise floor stays below it.
const NEARLY_SILENT_DBFS: f32 = -70.0;

/// The file each input's output goes to under --output-dir: its utterance id or file stem, with the
/// format's extension; two inputs that would share a name are an error.
fn output_names(inputs: &[Input]) -> anyhow::Result<Vec<PathBuf>> {
    let mut seen = std::collections::HashMap::new();
    let mut names = Vec::with_capacity(inputs.len());
    for input in inputs {
        let stem = match input {
            Input::Utterance { id, .. } => super::common::id_as_file_stem(id)?.to_string(),
            Input::File { path, .. } => path
                .file_stem()
                .map_or_else(|| "audio".to_string(), |s| s.to_string_lossy().into_owned()),
            Input::Stdin(_) => "stdin".to_string(),
        };
        if let Some(other) = seen.insert(stem.clone(), input.name()) {
            anyhow::bail!(
                "--output-dir: {} and {} would both write {stem}.*; give them different names",
                other.display(),
                input.name().display()
            );
        }
        names.push(PathBuf::from(stem));
    }
    Ok(names)
}

pub fn run(args: TranscribeArgs) -> anyhow::Result<ExitCode> {
    if args.keep_sil && args.model.is_none() {
        eprintln!(
            "phonrec: note: the built-in model never outputs sil (its training labels have none), so \
             --keep-sil changes nothing; silence shows as gaps between phones and as JSON `segments`"
        );
    }
    if args.alternatives.is_some()
        && !matches!(args.format, OutputFormat::Text | OutputFormat::Json)
    {
        anyhow::bail!(
            "--alternatives shows in --format text or json; {} has no place for them",
            args.format.name()
        );
    }
    if args.nbest.is_some()
        && !matches!(
            args.format,
            OutputFormat::Text | OutputFormat::Json | OutputFormat::Kaldi
        )
    {
        anyhow::bail!(
            "--nbest shows in --format text, json or kaldi; {} times one sequence only",
            args.format.name()
        );
    }
    if args.nbest.is_some() && args.alternatives.is_some() && args.format != OutputFormat::Json {
        anyhow::bail!(
            "--nbest and --alternatives together need --format json (a {} line holds one of them)",
            args.format.name()
        );
    }
    let recognizer = args.decode.load_recognizer(
        args.model.as_deref(),
        Kept {
            keep_silence: args.keep_sil,
            alternatives: args.alternatives.map_or(0, usize::from),
            nbest: args.nbest.map_or(0, usize::from),
        },
    )?;
    let mut files = expand_inputs(&args.files)?;
    if let Some(manifest) = &args.manifest {
        files.extend(manifest_inputs(manifest)?);
    }
    if files.is_empty() {
        return Err(no_audio_found(&args.files));
    }
    if let Some(output) = &args.output {
        let data_files = data_dir_files(args.files.iter().map(PathBuf::as_path));
        let inputs = files
            .iter()
            .filter_map(Input::path)
            .chain(data_files.iter().map(PathBuf::as_path));
        refuse_overwriting_inputs(output, inputs.chain(args.manifest.as_deref()))?;
    }
    if args.format == OutputFormat::TextGrid && args.output_dir.is_none() && files.len() > 1 {
        anyhow::bail!(
            "a TextGrid holds one recording and there are {}: write one per file with --output-dir \
             DIR, or choose another --format",
            files.len()
        );
    }
    let (names, unknown) = recognizer.phones().in_alphabet(args.alphabet);
    if !unknown.is_empty() {
        eprintln!(
            "phonrec: note: no IPA for {} (not ARPAbet): written as the model names them",
            unknown.join(" ")
        );
    }
    // Names are given (and checked for clashes) over all inputs, so every shard agrees on them.
    let output_names = match &args.output_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Some(output_names(&files)?)
        }
        None => {
            if matches!(args.format, OutputFormat::Kaldi | OutputFormat::Ctm) {
                super::common::refuse_shared_keys(
                    files.iter().map(|input| {
                        let id = match input {
                            Input::Utterance { id, .. } => Some(id.as_str()),
                            _ => None,
                        };
                        (input.name(), phonrec::output::line_key(id, &input.name()))
                    }),
                    args.format.name(),
                )?;
            }
            None
        }
    };
    args.shard
        .check_resumable(files.iter().any(|f| matches!(f, Input::Stdin(_))))?;
    let output_path = |name: &PathBuf| {
        args.output_dir
            .as_ref()
            .map(|dir| dir.join(format!("{}.{}", name.display(), args.format.extension())))
    };
    let (files, output_names): (Vec<Input>, Option<Vec<PathBuf>>) = match output_names {
        Some(names) => {
            let chosen = args.shard.select(
                files.into_iter().zip(names).collect(),
                |(input, _)| input.key(),
                |(_, name)| output_path(name),
            )?;
            let (files, names) = chosen.into_iter().unzip();
            (files, Some(names))
        }
        None => (args.shard.select(files, Input::key, |_| None)?, None),
    };
    let mut out = match &args.output_dir {
        Some(_) => Destination::Nowhere,
        None => Destination::to(args.output.as_deref())?,
    };
    let mut index = 0;
    let mut failures = 0;
    // Files whose clipped peaks were restored, and the largest share of restored samples.
    let (mut clipped, mut most_clipped) = (0usize, 0f32);
    let (mut with_dropouts, mut dropouts) = (0usize, 0usize);
    let mut coded = 0usize;
    // Files whose late reverberation was removed.
    let mut dereverberated = 0usize;
    // Files with no phones whose loudest sample is far below any microphone's noise floor.
    let mut nearly_silent = 0usize;
    let mut silent_video = false;
    // Files are recognised a round at a time (short ones sharing network batches), their results
    // printed in input order as each round ends.
    let sizes: Vec<u64> = files
        .iter()
        .map(|input| match input {
            Input::File { path, .. } => audio_size(path, None),
            Input::Utterance { path, span, .. } => audio_size(path, *span),
            Input::Stdin(bytes) => bytes.len() as u64,
        })
        .collect();
    let mut progress = InputProgress::new(&sizes, args.quiet);
    // Kept across rounds: a recording cut into many utterances (Kaldi segments) is decoded once.
    let reader = args.channel.reader();
    for range in plan_rounds(&sizes) {
        let round_bytes: u64 = sizes[range.clone()].iter().sum();
        let round = &files[range];
        // Read the round's audio in parallel, then recognise it together: short files share
        // network batches.
        let waves = read_inputs(&reader, &round.iter().collect::<Vec<_>>());
        let results: Vec<phonrec::Result<Transcript>> = recognizer
            .transcribe_waves(waves)
            .into_iter()
            .zip(round)
            .map(|(result, input)| {
                let mut transcript = result?;
                transcript.source = input.name();
                if let Input::Utterance { id, span, .. } = input {
                    transcript.id = Some(id.clone());
                    transcript.offset_s = span.map(|span| span.start_s);
                }
                Ok(transcript)
            })
            .collect();
        // Printed with the progress bar out of the way.
        progress.suspend(|| -> anyhow::Result<()> {
            for (result, input) in results.into_iter().zip(round) {
                index += 1;
                if let Ok(transcript) = &result {
                    dereverberated += usize::from(transcript.dereverberated);
                    if transcript.spans.is_empty() && transcript.peak_dbfs < NEARLY_SILENT_DBFS {
                        nearly_silent += 1;
                        // Video and Matroska files often hold several audio tracks (OBS writes
                        // one per source), of which the first is read.
                        let extension = transcript
                            .source
                            .extension()
                            .and_then(|e| e.to_str())
                            .map(str::to_ascii_lowercase);
                        silent_video |= matches!(
                            extension.as_deref(),
                            Some("mkv" | "mka" | "mp4" | "mov" | "webm" | "m4a")
                        );
                    }
                    if transcript.clipped_fraction > 0.0 {
                        clipped += 1;
                        most_clipped = most_clipped.max(transcript.clipped_fraction);
                    }
                    coded += usize::from(transcript.spectral_holes_filled);
                    if transcript.concealed_dropouts > 0 {
                        with_dropouts += 1;
                        dropouts += transcript.concealed_dropouts;
                    }
                }
                match result {
                    Ok(transcript) => match (&args.output_dir, &output_names) {
                        (Some(_), Some(names_by_input)) => {
                            let path = output_path(&names_by_input[index - 1])
                                .context("an output folder without a file name")?;
                            let mut bytes = Vec::new();
                            write_transcript(args.format, &transcript, &names, &mut bytes)?;
                            write_atomically(&path, &bytes)?;
                        }
                        _ => write_transcript(args.format, &transcript, &names, &mut out)?,
                    },
                    Err(error) => {
                        failures += 1;
                        match input {
                            // Several utterances may share a file: the id says which failed.
                            Input::Utterance { id, .. } => {
                                eprintln!("phonrec: error: {id}: {}", error_chain(&error))
                            }
                            _ => eprintln!("phonrec: error: {}", error_chain(&error)),
                        }
                    }
                }
            }
            out.flush()?;
            Ok(())
        })?;
        progress.advance(round.len(), round_bytes);
    }
    progress.finish();
    // What was written is kept when some files failed (their errors were said); when all did, an
    // earlier output file is left as it was.
    if failures < files.len() {
        out.finish()?;
    }
    let noun = inputs_noun(files.iter());
    if clipped > 0 {
        // The user should know: the recordings were made with the input gain too high.
        eprintln!(
            "phonrec: note: {clipped} of {} {noun} had their peaks cut flat at full scale (up to \
             {:.1} % of the samples of any one: the input gain was too high); the cut samples were \
             estimated back before recognition (--keep-clipping skips this)",
            files.len(),
            100.0 * most_clipped
        );
    }
    if with_dropouts > 0 {
        // A network or a recorder that dropped packets: the user may want to fix the source.
        eprintln!(
            "phonrec: note: {with_dropouts} of {} {noun} had short runs of digital silence inside \
             voiced speech ({dropouts} in all, as packets lost in transmission leave them, and \
             some speech synthesisers' stop closures), filled from the speech around them before \
             recognition (--keep-dropouts skips this)",
            files.len()
        );
    }
    if coded > 0 {
        // The user may have a better copy of the recording than the one coded at a low bit rate.
        eprintln!(
            "phonrec: note: {coded} of {} {noun} sounded coded at a low bit rate (holes in the \
             spectrum, as MP3 at 16-24 kbit/s leaves them); the holes were filled with noise \
             before recognition (--keep-spectral-holes skips this)",
            files.len()
        );
    }
    if dereverberated > 0 && args.decode.dereverb == DereverbArg::Auto {
        // Said once, so that a user who finds the output changed knows why and how to undo it.
        eprintln!(
            "phonrec: note: {dereverberated} of {} {noun} sounded reverberant (recorded in a room, \
             away from the microphone) or had an echo, and had the echo or late reverberation \
             removed before recognition (--dereverb off skips this)",
            files.len()
        );
    }
    if nearly_silent > 0 {
        // Empty output with no reason given looks like a broken recogniser.
        eprintln!(
            "phonrec: note: {nearly_silent} of {} {noun} gave no phones and are all but silent \
             (their loudest sample below {NEARLY_SILENT_DBFS} dBFS): a muted microphone, or the \
             input gain far too low{}",
            files.len(),
            if silent_video {
                "; of a file with several audio tracks (OBS, video editors), only the first is \
                 read: take another out with e.g. `ffmpeg -i in.mkv -map 0:a:1 track2.wav`"
            } else {
                ""
            }
        );
    }
    if failures > 0 {
        eprintln!("phonrec: {failures} of {} {noun} failed", files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
