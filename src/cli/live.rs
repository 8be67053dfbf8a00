//! `phonrec live`: phones of a live audio stream, an utterance at a time as each ends.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::Context;
use clap::Args;
use phonrec::audio::WavStream;
use phonrec::choice::Choice;
use phonrec::output::{write_transcript, OutputFormat};
use phonrec::phones::{Alphabet, PhoneSet};
use phonrec::recognize::live::{EndpointOptions, Endpointer, LiveUtterance};
use phonrec::recognize::Recognizer;

use super::choice::{choice, choice_among};
use super::common::{error_chain, ChannelArg, DecodeArgs, Kept};

/// Transcribe live audio as it arrives: an utterance's phones are printed when it ends.
///
/// Reads a WAV stream from standard input (or INPUT: a named pipe, or a file read as if it were
/// arriving), e.g. `arecord -f S16_LE -r 16000 -c 1 | phonrec live` or `sox -d -t wav - | phonrec
/// live`, or headerless 16-bit PCM with --raw-rate. The stream is cut into utterances at pauses
/// (--min-pause; an utterance longer than --max-utterance is cut at its quietest moment), each
/// recognised whole (the network is bidirectional) while the next one is heard, as pocketsphinx's
/// `live` mode does. Text output: `start<TAB>end<TAB>phones` per utterance, seconds from the start
/// of the stream; JSON: `transcribe`'s records, `offset` the utterance's start. Utterances in which
/// no phones are heard (a cough, a door) print nothing. WAV files joined by `cat` (`cat *.wav |
/// phonrec live`) are read one after another, as one stream.
#[derive(Args, Debug)]
pub struct LiveArgs {
    /// The stream: `-` (standard input, the default), or a file or named pipe.
    #[arg(default_value = "-")]
    pub input: PathBuf,

    /// The stream is headerless 16-bit little-endian PCM at this rate (`arecord -t raw`, `parec`).
    #[arg(long, value_name = "HZ", value_parser = clap::value_parser!(u32).range(4000..=384000))]
    pub raw_rate: Option<u32>,

    /// Channels of the headerless stream (with --raw-rate); mixed to one unless --channel says
    /// which to take.
    #[arg(long, default_value_t = 1, requires = "raw_rate", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub raw_channels: u16,

    #[command(flatten)]
    pub channel: ChannelArg,

    /// A pause at least this long ends an utterance, seconds.
    #[arg(long, default_value_t = 0.5)]
    pub min_pause: f32,

    /// An utterance this long is cut at its quietest moment of its last seconds, seconds.
    #[arg(long, default_value_t = 20.0)]
    pub max_utterance: f32,

    /// A frame is speech when its level stands this many dB above the background (the lowest
    /// level of the last 30 s); lower hears quieter speech in noise, and more of the noise.
    #[arg(long, value_name = "DB", default_value_t = EndpointOptions::default().threshold_db)]
    pub speech_above: f32,

    /// Output: text (`start<TAB>end<TAB>phones`) or json (one object per utterance and line).
    #[arg(long, value_parser = choice_among::<OutputFormat>(&["text", "json"]).with_help(&[
        ("text", "One line per utterance: `start<TAB>end<TAB>phones` (seconds from the stream's start)"),
        ("json", "One JSON object per utterance and line: transcribe's records, `offset` the utterance's start"),
    ]), default_value = OutputFormat::Text.name())]
    pub format: OutputFormat,

    /// Phone symbols in the output: the model's ARPAbet, or IPA.
    #[arg(long, value_parser = choice::<Alphabet>(), default_value = Alphabet::Arpabet.name())]
    pub alphabet: Alphabet,

    /// Model file made by `phonrec train` [default: the built-in model].
    #[arg(long)]
    pub model: Option<PathBuf>,

    #[command(flatten)]
    pub decode: DecodeArgs,
}

/// Blocks of samples as the reader thread delivers them.
type Block = phonrec::Result<Vec<f32>>;

pub fn run(args: LiveArgs) -> anyhow::Result<ExitCode> {
    if !matches!(args.format, OutputFormat::Text | OutputFormat::Json) {
        anyhow::bail!(
            "live output is --format text or json, not {}",
            args.format.name()
        );
    }
    let options = EndpointOptions {
        min_pause_s: args.min_pause,
        max_utterance_s: args.max_utterance,
        threshold_db: args.speech_above,
        ..EndpointOptions::default()
    };
    options
        .validate()
        .context("--min-pause, --max-utterance or --speech-above")?;
    let recognizer = args
        .decode
        .load_recognizer(args.model.as_deref(), Kept::default())?;
    let (names, _unknown) = recognizer.phones().in_alphabet(args.alphabet);
    let reader: Box<dyn Read + Send> = if args.input == Path::new("-") {
        if std::io::stdin().is_terminal() {
            // Waiting silently for audio that a keyboard will never send looks like a hang.
            eprintln!(
                "phonrec: reading a WAV stream from standard input: pipe audio in, e.g. `arecord \
                 -f S16_LE -r 16000 -c 1 | phonrec live` (Ctrl-C stops)"
            );
        }
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&args.input)
                .with_context(|| format!("cannot open {}", args.input.display()))?,
        )
    };
    let name = args.input.clone();
    let stream = match args.raw_rate {
        Some(rate) => WavStream::raw_s16le(reader, rate, usize::from(args.raw_channels), &name),
        None => WavStream::open(reader, &name)?,
    };
    let mut stream = stream.with_channel(args.channel.choice())?;
    let mut endpointer = Endpointer::new(stream.sample_rate_hz(), options)?;
    // The stream is read on its own thread, so audio keeps being taken from the pipe (which holds
    // only a second or two) while an utterance is recognised.
    let (send, blocks) = mpsc::channel::<Block>();
    let reading = std::thread::spawn(move || loop {
        match stream.next_block() {
            Ok(Some(block)) => {
                if send.send(Ok(block)).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(error) => {
                let _ = send.send(Err(error));
                return;
            }
        }
    });
    let mut out = std::io::stdout().lock();
    let source = args.input.clone();
    let mut print = |utterance: LiveUtterance| -> anyhow::Result<()> {
        print_utterance(
            &recognizer,
            &names,
            &source,
            utterance,
            args.format,
            &mut out,
        )
    };
    let mut failed = None;
    for block in blocks {
        match block.and_then(|samples| endpointer.push(&samples)) {
            Ok(utterances) => {
                for utterance in utterances {
                    print(utterance)?;
                }
            }
            Err(error) => {
                failed = Some(error);
                break;
            }
        }
    }
    if let Some(utterance) = endpointer.finish() {
        print(utterance)?;
    }
    let _ = reading.join();
    if let Some(error) = failed {
        let chain = error_chain(&error);
        let input = args.input.display().to_string();
        // The reader's errors name the input already; say it once.
        if chain.starts_with(&format!("{input}:")) {
            eprintln!("phonrec: error: reading {chain}");
        } else {
            eprintln!("phonrec: error: reading {input}: {chain}");
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Recognise one utterance and print it (nothing when no phones are heard).
fn print_utterance(
    recognizer: &Recognizer,
    names: &PhoneSet,
    source: &Path,
    utterance: LiveUtterance,
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let duration_s = utterance.wave.duration_s();
    let mut transcript = match recognizer.transcribe_wave(utterance.wave) {
        Ok(transcript) => transcript,
        Err(error) => {
            // One utterance the recogniser refuses does not stop the stream.
            eprintln!(
                "phonrec: error: the utterance at {:.2} s: {}",
                utterance.start_s,
                error_chain(&error)
            );
            return Ok(());
        }
    };
    if transcript.spans.is_empty() {
        return Ok(());
    }
    transcript.source = source.to_path_buf();
    transcript.offset_s = Some(utterance.start_s);
    match format {
        OutputFormat::Json => write_transcript(format, &transcript, names, out)?,
        _ => {
            let phones: Vec<&str> = transcript
                .spans
                .iter()
                .map(|s| names.name(s.phone))
                .collect();
            writeln!(
                out,
                "{:.2}\t{:.2}\t{}",
                utterance.start_s,
                utterance.start_s + duration_s,
                phones.join(" ")
            )?;
        }
    }
    // Each utterance as soon as it is recognised, whatever stdout is connected to.
    out.flush()?;
    Ok(())
}
