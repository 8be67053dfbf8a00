//! Kaldi data directories: `wav.scp` (`utt-id path`, or `recording-id path` with a `segments` file of
//! `utt-id recording-id start end` lines) and `text` (`utt-id words...`), words turned into phones with
//! a lexicon. phonrec never runs shell commands from data files: a `wav.scp` pipe that only decodes
//! a file phonrec reads itself is read as that file ([`decoded_file`](super::decoded_file)), other
//! pipes are refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{audio_file_problem, read_text, DataProblem, Dataset, Lexicon, Utterance};
use crate::audio::AudioSpan;
use crate::error::{Error, Result};
use crate::phones::{fold_cmudict, fold_timit61, is_filler_token, strip_word_position, PhoneSet};

/// One line of a `wav.scp`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScpEntry {
    /// The utterance (or recording) id.
    pub id: String,
    /// The audio file: absolute, or relative to the working directory if it exists there (as Kaldi
    /// reads it), else to the `wav.scp`'s folder.
    pub audio: PathBuf,
    /// One channel of it (counted from 0): `sph2pipe -c 2 FILE |` (sph2pipe counts from 1), as the
    /// Switchboard, Fisher and CallHome recipes list each side of a call; `None` for all of them.
    pub channel: Option<usize>,
    /// 1-based line number.
    pub line: usize,
}

/// A `wav.scp` read: its entries in file order, and the lines that were refused.
#[derive(Debug, Default)]
pub struct WavScp {
    /// Usable lines.
    pub entries: Vec<ScpEntry>,
    /// Lines refused (no path, pipe commands, repeated ids), with file and line.
    pub problems: Vec<DataProblem>,
}

/// Read a Kaldi `wav.scp` (`utterance-id path` per line). phonrec never runs shell commands from
/// data files: a pipe that only decodes a file phonrec reads itself (see
/// [`decoded_file`](super::decoded_file): Kaldi's LibriSpeech and TIMIT recipes write them) is read as
/// that file; other pipe commands are refused with the reason.
pub fn read_wav_scp(scp_path: &Path) -> Result<WavScp> {
    let dir = scp_path.parent().unwrap_or(Path::new("."));
    let mut scp = WavScp::default();
    let mut seen = std::collections::HashSet::new();
    for (index, line) in read_text(scp_path)?.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let problem = |reason: String| {
            DataProblem(Error::Parse {
                path: scp_path.to_path_buf(),
                line: Some(index + 1),
                reason,
            })
        };
        let Some((id, rest)) = line.split_once(char::is_whitespace) else {
            scp.problems
                .push(problem("expected `utterance-id path`".to_string()));
            continue;
        };
        let mut rest = rest.trim();
        let mut channel = None;
        if let Some(command) = rest.strip_suffix('|') {
            match decoded_file(command) {
                Some(Ok(decoded)) => {
                    rest = decoded.file;
                    channel = decoded.channel;
                }
                Some(Err(reason)) => {
                    scp.problems.push(problem(format!(
                        "'{id}': {reason}; phonrec does not run commands from wav.scp. Run it once \
                         to write a WAV file and list that file instead"
                    )));
                    continue;
                }
                None => {
                    scp.problems.push(problem(format!(
                        "'{id}' is a pipe command; phonrec does not run commands from wav.scp \
                         (it reads `flac -c -d -s FILE |`, `sph2pipe -f wav [-c N] FILE |` and \
                         `sox FILE -t wav - |` as FILE, since it decodes those files itself). Run it once to \
                         write a WAV file and list that file instead"
                    )));
                    continue;
                }
            }
        }
        if !seen.insert(id.to_string()) {
            scp.problems
                .push(problem(format!("utterance id '{id}' is listed twice")));
            continue;
        }
        let path = Path::new(rest);
        // Kaldi resolves relative paths against the working directory; so do we, then the dir.
        let audio = if path.is_absolute() || path.exists() {
            path.to_path_buf()
        } else {
            dir.join(path)
        };
        scp.entries.push(ScpEntry {
            id: id.to_string(),
            audio,
            channel,
            line: index + 1,
        });
    }
    Ok(scp)
}

/// What a `wav.scp` pipe command merely decodes: a file, perhaps one channel of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedFile<'a> {
    /// The file the command reads.
    pub file: &'a str,
    /// The one channel it takes (counted from 0), if it takes one.
    pub channel: Option<usize>,
}

/// The file a `wav.scp` pipe command (without its `|`) merely decodes to WAV, when phonrec reads
/// that file itself and gets the same samples: `flac -c -d -s FILE` (the LibriSpeech recipes),
/// `sph2pipe -f wav [-p] [-c N] FILE` (TIMIT, WSJ; with `-c N` one side of a call, as the
/// Switchboard, Fisher and CallHome recipes list them: channel N − 1 as phonrec counts;
/// shorten-compressed SPHERE is then refused when read, as any such file is) and
/// `sox FILE -t wav -` (optionally `-c 1`, a mix of the channels as phonrec makes it, `-b 16`,
/// `-e signed-integer`, `-q`, `-G`). `None` for any other command; an error for these decoders
/// asked for what phonrec does not do in reading (a stretch, another rate or encoding, effects).
pub fn decoded_file(command: &str) -> Option<std::result::Result<DecodedFile<'_>, String>> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let (program, args) = words.split_first()?;
    // The program may be given with its path (`$KALDI_ROOT/tools/sph2pipe_v2.5/sph2pipe`).
    let name = program.rsplit('/').next().unwrap_or(program);
    let refuse = |what: &str| {
        Some(Err(format!(
            "`{name}` with {what} is not read in its place"
        )))
    };
    match name {
        "flac" => {
            let mut decode = false;
            let mut file = None;
            for &arg in args {
                match arg {
                    "-d" | "--decode" => decode = true,
                    "-c" | "--stdout" | "-s" | "--silent" | "-f" | "--force" => {}
                    "-cds" | "-dcs" | "-cd" | "-dc" | "-sdc" | "-scd" | "-csd" | "-dsc" => {
                        decode = true
                    }
                    _ if arg.starts_with('-') => return refuse(&format!("option {arg}")),
                    _ if file.is_some() => return refuse("several files"),
                    _ => file = Some(arg),
                }
            }
            match (decode, file) {
                (true, Some(file)) => Some(Ok(DecodedFile {
                    file,
                    channel: None,
                })),
                _ => refuse("no file to decode (-d FILE)"),
            }
        }
        "sph2pipe" => {
            let mut file = None;
            let mut channel = None;
            let mut args = args.iter();
            while let Some(&arg) = args.next() {
                match arg {
                    // The output container and 16-bit PCM: phonrec decodes to samples anyway.
                    "-f" => {
                        args.next();
                    }
                    "-p" => {}
                    // sph2pipe counts channels from 1 (`-c 1`, `-c 2`).
                    "-c" => match args.next().and_then(|n| n.parse::<usize>().ok()) {
                        Some(n @ 1..) => channel = Some(n - 1),
                        _ => return refuse("-c without a channel number from 1"),
                    },
                    "-t" | "-s" => return refuse(&format!("{arg} (a stretch of the file)")),
                    _ if arg.starts_with('-') => return refuse(&format!("option {arg}")),
                    _ if file.is_some() => return refuse("an output file"),
                    _ => file = Some(arg),
                }
            }
            file.map(|file| Ok(DecodedFile { file, channel }))
                .or_else(|| refuse("no input file"))
        }
        "sox" => {
            // `sox [global] INFILE [format options] -t wav -`: the input, then the output `-`.
            let mut file = None;
            let mut output = false;
            let mut args = args.iter();
            while let Some(&arg) = args.next() {
                match arg {
                    "-q" | "-G" | "--no-show-progress" => {}
                    "-t" | "--type" => {
                        if args.next() != Some(&"wav") || file.is_none() {
                            return refuse("an input type or an output other than WAV");
                        }
                    }
                    // 16-bit signed output changes nothing phonrec reads; another rate, width or
                    // encoding would (features are computed at the file's own rate).
                    "-b" | "--bits" | "-e" | "--encoding" => {
                        let value = args.next().copied().unwrap_or_default();
                        if file.is_none() || !matches!(value, "16" | "signed" | "signed-integer") {
                            return refuse(&format!("{arg} {value}"));
                        }
                    }
                    "-c" | "--channels" => {
                        if args.next() != Some(&"1") || file.is_none() {
                            return refuse("-c other than the output's 1 (a mix of the channels)");
                        }
                    }
                    "-" if file.is_some() && !output => output = true,
                    _ if arg.starts_with('-') => return refuse(&format!("option {arg}")),
                    _ if output => return refuse(&format!("effects (`{arg}`)")),
                    _ if file.is_some() => return refuse("several input files"),
                    _ => file = Some(arg),
                }
            }
            match (file, output) {
                (Some(file), true) => Some(Ok(DecodedFile {
                    file,
                    channel: None,
                })),
                _ => refuse("no `-t wav -` output"),
            }
        }
        _ => None,
    }
}

/// One line of a Kaldi `segments` file: an utterance that is a stretch of a recording.
#[derive(Clone, Debug, PartialEq)]
pub struct KaldiSegment {
    /// The utterance id.
    pub id: String,
    /// The recording id (a `wav.scp` key).
    pub recording: String,
    /// Where in the recording the utterance lies.
    pub span: AudioSpan,
    /// 1-based line number.
    pub line: usize,
}

/// A `segments` file read: its entries in file order, and the lines that were refused.
#[derive(Debug, Default)]
pub struct Segments {
    /// Usable lines.
    pub entries: Vec<KaldiSegment>,
    /// Lines refused (wrong field count, bad times, a channel field, repeated ids), with file and
    /// line.
    pub problems: Vec<DataProblem>,
    /// Segments of no length (end time = start time), which tools that round their times write
    /// and Kaldi's `extract-segments` skips with a warning: skipped here too, each with a note of
    /// its file and line. Their ids are in [`Segments::empty_ids`].
    pub empty: Vec<DataProblem>,
    /// The utterance ids of [`Segments::empty`].
    pub empty_ids: Vec<String>,
}

/// Read a Kaldi `segments` file (`utt-id recording-id start end`, times in seconds, end −1 for the
/// recording's end), checked as Kaldi's `extract-segments` checks it. A fifth field (a channel) is
/// refused: phonrec mixes a recording's channels, so a channel's utterances need their own files.
pub fn read_segments(path: &Path) -> Result<Segments> {
    let mut segments = Segments::default();
    let mut seen = std::collections::HashSet::new();
    for (index, line) in read_text(path)?.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let problem = |reason: String| {
            DataProblem(Error::Parse {
                path: path.to_path_buf(),
                line: Some(index + 1),
                reason,
            })
        };
        let [id, recording, start, end] = match fields[..] {
            [id, recording, start, end] => [id, recording, start, end],
            [id, _, _, _, channel] => {
                // Kaldi counts channels from 0, sox's remix from 1.
                let remix = channel
                    .parse::<u32>()
                    .map_or_else(|_| "N".to_string(), |c| (c + 1).to_string());
                segments.problems.push(problem(format!(
                    "segment '{id}' names channel {channel}; phonrec mixes a recording's \
                     channels, so write each channel to a file of its own first (e.g. `sox \
                     rec.wav rec-{channel}.wav remix {remix}`) and list it in wav.scp as a \
                     recording"
                )));
                continue;
            }
            _ => {
                segments.problems.push(problem(
                    "expected `utterance-id recording-id start-seconds end-seconds`".to_string(),
                ));
                continue;
            }
        };
        let (Ok(start_s), Ok(end_s)) = (start.parse::<f64>(), end.parse::<f64>()) else {
            segments.problems.push(problem(format!(
                "segment '{id}': the times '{start} {end}' are not numbers of seconds"
            )));
            continue;
        };
        let end_s = (end_s != -1.0).then_some(end_s);
        if end_s == Some(start_s) && start_s >= 0.0 {
            segments.empty.push(problem(format!(
                "segment '{id}' is empty (it ends where it starts, at {start_s} s): skipped, as \
                 Kaldi's extract-segments skips it"
            )));
            segments.empty_ids.push(id.to_string());
            continue;
        }
        let span = match AudioSpan::new(start_s, end_s) {
            Ok(span) => span,
            Err(reason) => {
                segments
                    .problems
                    .push(problem(format!("segment '{id}': {reason}")));
                continue;
            }
        };
        if !seen.insert(id.to_string()) {
            segments
                .problems
                .push(problem(format!("utterance id '{id}' is listed twice")));
            continue;
        }
        segments.entries.push(KaldiSegment {
            id: id.to_string(),
            recording: recording.to_string(),
            span,
            line: index + 1,
        });
    }
    Ok(segments)
}

/// The audio of one utterance of a Kaldi data dir.
#[derive(Clone, Debug, PartialEq)]
pub struct KaldiUtteranceAudio {
    /// The utterance id.
    pub id: String,
    /// The audio file.
    pub audio: PathBuf,
    /// The stretch of it (with a `segments` file), else `None`: the whole file.
    pub span: Option<AudioSpan>,
    /// One channel of it (`sph2pipe -c N` in `wav.scp`), else `None`.
    pub channel: Option<usize>,
}

/// The utterances of a Kaldi data dir and their audio (see [`kaldi_dir_audio`]).
#[derive(Debug, Default)]
pub struct KaldiDirAudio {
    /// The usable utterances, in file order.
    pub utterances: Vec<KaldiUtteranceAudio>,
    /// Lines that cannot be used, with file and line.
    pub problems: Vec<DataProblem>,
    /// Segments of no length, skipped as Kaldi skips them ([`Segments::empty`]): notes to show.
    pub empty: Vec<DataProblem>,
    /// The utterance ids of [`KaldiDirAudio::empty`].
    pub empty_ids: Vec<String>,
}

/// The utterances of a Kaldi data dir and their audio, in file order: `wav.scp`'s entries, or with a
/// `segments` file its segments of `wav.scp`'s recordings. Lines that cannot be used (see
/// [`read_wav_scp`], [`read_segments`]; a segment of a recording `wav.scp` does not list) are
/// returned as problems, segments of no length as skipped.
pub fn kaldi_dir_audio(dir: &Path) -> Result<KaldiDirAudio> {
    let scp = read_wav_scp(&dir.join("wav.scp"))?;
    let mut problems = scp.problems;
    let segments_path = dir.join("segments");
    if !segments_path.exists() {
        let utterances = scp
            .entries
            .into_iter()
            .map(|entry| KaldiUtteranceAudio {
                id: entry.id,
                audio: entry.audio,
                span: None,
                channel: entry.channel,
            })
            .collect();
        return Ok(KaldiDirAudio {
            utterances,
            problems,
            ..KaldiDirAudio::default()
        });
    }
    let recordings: HashMap<String, (PathBuf, Option<usize>)> = scp
        .entries
        .into_iter()
        .map(|entry| (entry.id, (entry.audio, entry.channel)))
        .collect();
    let segments = read_segments(&segments_path)?;
    problems.extend(segments.problems);
    let mut utterances = Vec::with_capacity(segments.entries.len());
    for segment in segments.entries {
        match recordings.get(&segment.recording) {
            Some((audio, channel)) => utterances.push(KaldiUtteranceAudio {
                id: segment.id,
                audio: audio.clone(),
                span: Some(segment.span),
                channel: *channel,
            }),
            None => problems.push(DataProblem(Error::Parse {
                path: segments_path.clone(),
                line: Some(segment.line),
                reason: format!(
                    "segment '{}' is of recording '{}', which wav.scp does not list",
                    segment.id, segment.recording
                ),
            })),
        }
    }
    Ok(KaldiDirAudio {
        utterances,
        problems,
        empty: segments.empty,
        empty_ids: segments.empty_ids,
    })
}

/// Load a Kaldi data dir. Utterances with words missing from the lexicon are reported (with their ids and
/// the words) and skipped, as are bad lines.
pub fn load_kaldi_dir(dir: &Path, lexicon: &Lexicon, phones: &PhoneSet) -> Result<Dataset> {
    let text_path = dir.join("text");
    let mut dataset = Dataset::default();
    let audio = kaldi_dir_audio(dir)?;
    dataset.problems.extend(audio.problems);
    // An empty segment's utterance is skipped with its segments line's note, not again as text
    // without audio.
    dataset.problems.extend(audio.empty);
    let empty: std::collections::HashSet<String> = audio.empty_ids.into_iter().collect();
    let audio_by_id: HashMap<String, (PathBuf, Option<AudioSpan>, Option<usize>)> = audio
        .utterances
        .into_iter()
        .map(|u| (u.id, (u.audio, u.span, u.channel)))
        .collect();
    // Whether each file can be opened, checked once however many segments it holds.
    let mut file_problems: HashMap<PathBuf, Option<String>> = HashMap::new();
    // Kaldi's tools refuse a key listed twice; scored twice, one utterance counted double.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let text = read_text(&text_path)?;
    // Kaldi's phone recognition recipes (TIMIT's among them) keep phones, not words, in `text`;
    // read through the lexicon, `s eh v ah n` became the words "s", "eh", ... and their
    // pronunciations, a wrong reference with no error.
    let phone_level = transcripts_are_phones(
        text.lines().map(|line| {
            line.trim()
                .split_once(char::is_whitespace)
                .map_or("", |(_, said)| said)
        }),
        phones,
    );
    if phone_level {
        dataset.notes.push(format!(
            "{}: every token is a phone symbol, so it is read as phones, not words (the \
             lexicon is not used)",
            text_path.display()
        ));
    }
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let line_number = index + 1;
        let problem = |reason: String| {
            DataProblem(Error::Parse {
                path: text_path.clone(),
                line: Some(line_number),
                reason,
            })
        };
        let mut words = line.split_whitespace();
        let Some(id) = words.next() else { continue };
        if let Some(first) = seen.insert(id.to_string(), line_number) {
            dataset.problems.push(problem(format!(
                "utterance '{id}' is listed twice (first on line {first}); this line is skipped"
            )));
            continue;
        }
        if empty.contains(id) {
            continue;
        }
        let Some((audio, span, channel)) = audio_by_id.get(id) else {
            dataset.problems.push(problem(format!(
                "utterance '{id}' is not in {}",
                if dir.join("segments").exists() {
                    "segments"
                } else {
                    "wav.scp"
                }
            )));
            continue;
        };
        let phone_names = if phone_level {
            words.map(str::to_string).collect()
        } else {
            match lexicon.transcribe(words) {
                Ok(p) => p,
                Err(missing) => {
                    dataset.problems.push(problem(format!(
                        "utterance '{id}' skipped: words not in the lexicon: {}",
                        missing.join(" ")
                    )));
                    continue;
                }
            }
        };
        let ids = match phones.parse_sequence(&phone_names.join(" "), &text_path, line_number) {
            Ok(ids) => ids,
            Err(e) => {
                dataset.problems.push(DataProblem(e));
                continue;
            }
        };
        // No words (or only silence/noise markers that fold to nothing): no speech, kept as in
        // manifests.
        let file_problem = file_problems
            .entry(audio.clone())
            .or_insert_with(|| audio_file_problem(audio));
        if let Some(reason) = file_problem {
            dataset
                .problems
                .push(problem(format!("utterance '{id}': {reason}")));
            continue;
        }
        dataset.utterances.push(Utterance {
            id: id.to_string(),
            audio: audio.clone(),
            span: *span,
            phones: ids,
            channel: *channel,
        });
    }
    Ok(dataset)
}

/// Whether transcripts hold phones rather than words (a Kaldi `text` of phones, as Kaldi's TIMIT
/// recipe writes, or a training manifest given where words are expected): every token is one of
/// `phones` as labels spell them (ARPAbet with or without stress digits, TIMIT's 61 symbols,
/// `sil`; noise tokens such as `SPN` pass either way), and there is at least one. Words almost
/// never pass: "a", "i", "the" and digits are not phones, so a whole file of words that all are
/// is left to the lexicon only in texts too small to tell.
pub fn transcripts_are_phones<'a>(
    transcripts: impl IntoIterator<Item = &'a str>,
    phones: &PhoneSet,
) -> bool {
    let mut any_phone = false;
    for transcript in transcripts {
        for token in transcript.split_whitespace() {
            if is_filler_token(token) {
                continue;
            }
            if !is_phone_symbol(token, phones) {
                return false;
            }
            any_phone = true;
        }
    }
    any_phone
}

/// Whether `token` names a phone of `phones` as a label writes it: exactly, or for the default
/// inventory with CMUdict's stress digits and Kaldi's word-position suffixes (`AH1_B`), or as one
/// of TIMIT's 61 symbols. IPA is not taken here: `a` and `i` are words.
fn is_phone_symbol(token: &str, phones: &PhoneSet) -> bool {
    if phones
        .id(token)
        .is_some_and(|id| id != crate::phones::BLANK)
    {
        return true;
    }
    if !phones.is_timit39() {
        return false;
    }
    let stem = strip_word_position(token);
    // One stress digit at the end (`AH1`); digits elsewhere ("1", "2b") make a word.
    let base = stem.strip_suffix(['0', '1', '2']).unwrap_or(stem);
    if base.is_empty() || base.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    let cmudict = fold_cmudict(base);
    // TIMIT's `q` folds to nothing, and is a phone symbol all the same.
    phones.id(&cmudict).is_some() || fold_timit61(&cmudict).is_none_or(|t| phones.id(&t).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_phones_and_problems_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.wav"), b"RIFF").unwrap();
        std::fs::write(
            d.join("wav.scp"),
            format!(
                "utt1 {}\nutt2 {}\nutt3 gunzip -c x.wav.gz |\n",
                d.join("a.wav").display(),
                d.join("a.wav").display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("text"),
            "utt1 HELLO world\nutt2 hello zebra\nutt3 hello\nutt4 hello\nutt1 world\n",
        )
        .unwrap();
        let lexicon = Lexicon::from_entries([("hello", "HH AH0 L OW1"), ("world", "W ER1 L D")]);
        let data = load_kaldi_dir(d, &lexicon, &PhoneSet::timit39()).unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!(data.utterances[0].id, "utt1");
        assert_eq!(
            data.utterances[0].phones.len(),
            8,
            "the first utt1 line is kept"
        );
        let problems: Vec<String> = data.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems[4].contains("text:5") && problems[4].contains("listed twice"));
        assert!(problems[0].contains("wav.scp:3") && problems[0].contains("pipe"));
        assert!(
            problems[1].contains("text:2")
                && problems[1].contains("zebra")
                && problems[1].contains("utt2")
        );
        assert!(problems[2].contains("text:3") && problems[2].contains("not in wav.scp"));
        assert!(problems[3].contains("text:4") && problems[3].contains("utt4"));
    }

    #[test]
    fn a_text_of_phones_is_read_as_phones() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.wav"), b"RIFF").unwrap();
        let wav = d.join("a.wav");
        std::fs::write(
            d.join("wav.scp"),
            format!("u1 {}\nu2 {}\n", wav.display(), wav.display()),
        )
        .unwrap();
        // Kaldi's TIMIT recipe writes phones in `text`; `s`, `eh`, `n` are also CMUdict words.
        std::fs::write(
            d.join("text"),
            "u1 sil s eh v ix n sil\nu2 EH1 N AH0_E [noise]\n",
        )
        .unwrap();
        let lexicon = Lexicon::from_entries([("s", "EH1 S"), ("eh", "EH1"), ("n", "EH1 N")]);
        let phones = PhoneSet::timit39();
        let data = load_kaldi_dir(d, &lexicon, &phones).unwrap();
        let labels: Vec<String> = data
            .utterances
            .iter()
            .map(|u| phones.format_sequence(&u.phones))
            .collect();
        assert_eq!(labels, ["sil s eh v ih n sil", "eh n ah"]);
        assert_eq!(data.notes.len(), 1);
        assert!(data.notes[0].contains("read as phones"), "{:?}", data.notes);

        // One word that is not a phone symbol makes it a text of words.
        std::fs::write(d.join("text"), "u1 s eh n\nu2 the\n").unwrap();
        let lexicon = Lexicon::from_entries([
            ("s", "EH1 S"),
            ("eh", "EH1"),
            ("n", "EH1 N"),
            ("the", "DH AH0"),
        ]);
        let data = load_kaldi_dir(d, &lexicon, &phones).unwrap();
        assert_eq!(
            phones.format_sequence(&data.utterances[0].phones),
            "eh s eh eh n"
        );
        assert!(data.notes.is_empty());
        for word in ["a", "i", "the", "1", "2b", "oh", "x"] {
            assert!(!is_phone_symbol(word, &phones), "{word}");
        }
        for phone in ["ah", "AH1", "ah_B", "ix", "h#", "q", "sil"] {
            assert!(is_phone_symbol(phone, &phones), "{phone}");
        }
    }

    #[test]
    fn segments_are_read_as_kaldi_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segments");
        std::fs::write(
            &path,
            "a rec1 0 1.5\n\nb rec1 1.5 -1\nc rec1 2 1\nd rec1 x 2\ne rec1 0 1 1\na rec2 0 1\n\
             f rec1 -0.5 1\ng rec1 0\nh rec1 2.5 2.5\n",
        )
        .unwrap();
        let segments = read_segments(&path).unwrap();
        let ids: Vec<&str> = segments.entries.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        // A segment of no length is skipped with a note, as Kaldi's extract-segments skips it;
        // one that ends before it starts is refused.
        assert_eq!(segments.empty_ids, ["h"]);
        let empty = segments.empty[0].to_string();
        assert!(
            empty.contains("segments:10") && empty.contains("empty"),
            "{empty}"
        );
        assert_eq!(
            segments.entries[0].span,
            AudioSpan::new(0.0, Some(1.5)).unwrap()
        );
        assert_eq!(segments.entries[1].span, AudioSpan::new(1.5, None).unwrap());
        assert_eq!(segments.entries[1].line, 3);
        let problems: Vec<String> = segments.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(problems[0].contains("segments:4") && problems[0].contains("not after"));
        assert!(problems[1].contains("segments:5") && problems[1].contains("not numbers"));
        assert!(problems[2].contains("channel 1") && problems[2].contains("remix 2"));
        assert!(problems[3].contains("segments:7") && problems[3].contains("twice"));
        assert!(problems[4].contains("segments:8") && problems[4].contains("≥ 0"));
        assert!(problems[5].contains("segments:9") && problems[5].contains("expected"));
    }

    #[test]
    fn a_data_dir_with_segments_gives_stretches_of_its_recordings() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("rec.wav"), b"RIFF").unwrap();
        std::fs::write(d.join("wav.scp"), "rec1 rec.wav\n").unwrap();
        std::fs::write(
            d.join("segments"),
            "u1 rec1 0.5 2.25\nu2 rec1 3 -1\nu3 rec9 0 1\nu4 rec1 1 1\n",
        )
        .unwrap();
        std::fs::write(
            d.join("text"),
            "u1 hello\nu2 world hello\nrec1 hello\nu4 hello\n",
        )
        .unwrap();
        let lexicon = Lexicon::from_entries([("hello", "HH AH0 L OW1"), ("world", "W ER1 L D")]);
        let data = load_kaldi_dir(d, &lexicon, &PhoneSet::timit39()).unwrap();
        assert_eq!(data.len(), 2);
        let u1 = &data.utterances[0];
        assert_eq!(
            (u1.id.as_str(), u1.audio.clone()),
            ("u1", d.join("rec.wav"))
        );
        assert_eq!(u1.span, Some(AudioSpan::new(0.5, Some(2.25)).unwrap()));
        assert_eq!(
            data.utterances[1].span,
            Some(AudioSpan::new(3.0, None).unwrap())
        );
        assert_eq!(data.utterances[1].phones.len(), 8);
        let problems: Vec<String> = data.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("segments:3") && problems[0].contains("'rec9'"));
        // The empty segment is skipped once, by its segments line, not again by its text line.
        assert!(problems[1].contains("segments:4") && problems[1].contains("empty"));
        // The recording's own id is not an utterance once there are segments.
        assert!(problems[2].contains("text:3") && problems[2].contains("not in segments"));
        // Without segments the same wav.scp lists the recording as an utterance.
        std::fs::remove_file(d.join("segments")).unwrap();
        let audio = kaldi_dir_audio(d).unwrap().utterances;
        assert_eq!(audio.len(), 1);
        assert_eq!((audio[0].id.as_str(), audio[0].span), ("rec1", None));
    }

    #[test]
    fn decoder_pipes_are_read_as_their_files_and_others_refused() {
        let read = |command| decoded_file(command).map(|r| r.map(|d| (d.file, d.channel)));
        // As Kaldi's recipes write them.
        assert_eq!(
            read("flac -c -d -s /data/LibriSpeech/a.flac "),
            Some(Ok(("/data/LibriSpeech/a.flac", None)))
        );
        assert_eq!(read("flac -cds a.flac"), Some(Ok(("a.flac", None))));
        assert_eq!(
            read("/opt/kaldi/tools/sph2pipe_v2.5/sph2pipe -f wav /timit/TRAIN/DR1/FCJF0/SA1.WAV"),
            Some(Ok(("/timit/TRAIN/DR1/FCJF0/SA1.WAV", None)))
        );
        assert_eq!(read("sph2pipe -f wav -p x.sph"), Some(Ok(("x.sph", None))));
        // One side of a conversation (Switchboard's `sw02001-B`): sph2pipe counts from 1.
        assert_eq!(
            read("sph2pipe -f wav -p -c 2 sw02001.sph"),
            Some(Ok(("sw02001.sph", Some(1))))
        );
        assert_eq!(
            read("sph2pipe -c 1 -f wav x.sph"),
            Some(Ok(("x.sph", Some(0))))
        );
        assert_eq!(read("sox x.mp3 -t wav -"), Some(Ok(("x.mp3", None))));
        assert_eq!(
            read("sox -q x.mp3 -c 1 -b 16 -e signed-integer -t wav -"),
            Some(Ok(("x.mp3", None)))
        );
        // The same decoders asked for what phonrec does not do in reading.
        for command in [
            "flac -c -s a.flac",                    // encodes, not -d
            "flac -c -d --apply-replaygain a.flac", // an option that changes samples
            "sph2pipe -f wav -c 0 sw02001.sph",     // sph2pipe's channels count from 1
            "sph2pipe -f wav -c sw02001.sph",       // no channel number
            "sph2pipe -t 10:20 -f wav x.sph",       // a stretch
            "sph2pipe -f wav -u x.sph",             // another encoding
            "sox x.wav -t wav - remix 1",           // effects
            "sox x.wav -r 8000 -t wav -",           // another rate
            "sox x.wav -b 8 -t wav -",              // another width
            "sox x.wav -t raw -",                   // not WAV
            "sox x.wav y.wav -t wav -",             // two inputs mixed
        ] {
            let result = read(command);
            assert!(matches!(result, Some(Err(_))), "{command}: {result:?}");
        }
        // Anything else is a pipe phonrec does not run.
        assert_eq!(read("gunzip -c x.wav.gz"), None);
        assert_eq!(read("ffmpeg -i x.m4a -f wav -"), None);
        assert_eq!(read(""), None);
    }
}
