//! `phonrec live` with the built-in model: a stream of the three examples between pauses over a
//! noise floor gives one utterance per example, at the times the examples lie in the stream, with
//! the phones `transcribe` gives for the same stretch of audio (and, for the two sentences, for the
//! example alone); from a file, from a WAV on stdin, and as headerless PCM.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{phonrec, stderr, stdout, write_wav};
use phonrec::audio::read_audio;

const RATE: u32 = 16_000;

/// A faint floor (white noise at about −60 dBFS, seeded) of `seconds`.
fn floor(seconds: f32, seed: &mut u32) -> Vec<f32> {
    (0..(seconds * RATE as f32) as usize)
        .map(|_| {
            *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((*seed >> 16) as f32 / 65536.0 - 0.5) * 110.0
        })
        .collect()
}

fn edit_distance(a: &[&str], b: &[&str]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let next = (diagonal + usize::from(x != y))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Run `phonrec live ARGS` with `input` on its standard input.
fn live_with_stdin(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_phonrec"))
        .arg("live")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("the binary ends");
    writer.join().expect("the writer");
    output
}

#[test]
fn live_streams_give_each_utterance_as_transcribe_gives_the_clip() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut seed = 11;
    let mut stream = floor(1.2, &mut seed);
    let mut expected = Vec::new();
    for name in [
        "slt_dark_suit_16k.wav",
        "fsdd_7_jackson_0_8k.wav",
        "espeak_quick_fox_22k.wav",
    ] {
        let clip = read_audio(&root.join("audio").join(name))
            .and_then(|w| w.resampled(RATE))
            .expect("the example reads");
        let start = stream.len() as f64 / f64::from(RATE);
        let floor_under = floor(clip.duration_s() as f32, &mut seed);
        stream.extend(clip.samples.iter().zip(floor_under).map(|(s, f)| s + f));
        let end = stream.len() as f64 / f64::from(RATE);
        stream.extend(floor(1.5, &mut seed));
        let alone = stdout(&phonrec(&["transcribe", &format!("audio/{name}")]));
        let phones = alone
            .trim_end()
            .split_once('\t')
            .expect("path<TAB>phones")
            .1
            .to_string();
        expected.push((start, end, phones));
    }
    let samples: Vec<i16> = stream
        .iter()
        .map(|&x| x.round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    let wav = dir.path().join("stream.wav");
    write_wav(&wav, &samples);

    let check = |text: &str, what: &str| {
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{what}: {text}");
        for (line, (start, end, phones)) in lines.iter().zip(&expected) {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "{what}: {line}");
            let (from, to): (f64, f64) = (
                fields[0].parse().expect("a start"),
                fields[1].parse().expect("an end"),
            );
            // The utterance holds the clip (whose own edges may be quiet), with a margin.
            assert!(
                from <= start + 0.25 && from >= start - 0.6,
                "{what}: {line} ({start})"
            );
            assert!(
                to >= end - 0.25 && to <= end + 0.6,
                "{what}: {line} ({end})"
            );
            // The utterance is recognised as `transcribe` recognises the same stretch of audio.
            let cut: Vec<i16> = samples[(from * f64::from(RATE)).round() as usize
                ..((to * f64::from(RATE)).round() as usize).min(samples.len())]
                .to_vec();
            let path = dir.path().join(format!("{what}_{from}.wav"));
            write_wav(&path, &cut);
            let same = stdout(&phonrec(&["transcribe", path.to_str().expect("utf-8")]));
            assert_eq!(
                fields[2],
                same.trim_end().split_once('\t').expect("path<TAB>phones").1,
                "{what}: {line}"
            );
            // And as the clip alone, but for the FSDD digit: an 8 kHz clip with its own floor,
            // louder than the stream's, is a step at each edge, where a short word's phones move
            // with the length of floor around it (`transcribe` of the cut does the same).
            if !phones.starts_with("s eh v") {
                let heard: Vec<&str> = fields[2].split(' ').collect();
                let want: Vec<&str> = phones.split(' ').collect();
                assert!(
                    edit_distance(&heard, &want) <= 1,
                    "{what}: {line} against {phones}"
                );
            }
        }
    };
    let from_file = phonrec(&["live", wav.to_str().expect("utf-8")]);
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    check(&stdout(&from_file), "file");

    let bytes = std::fs::read(&wav).expect("the stream");
    let piped = live_with_stdin(&[], &bytes);
    assert!(piped.status.success(), "{}", stderr(&piped));
    check(&stdout(&piped), "stdin");

    let raw: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let headerless = live_with_stdin(&["--raw-rate", "16000"], &raw);
    assert!(headerless.status.success(), "{}", stderr(&headerless));
    check(&stdout(&headerless), "raw");

    // JSON: `transcribe`'s records, each with the utterance's start as `offset`.
    let json = live_with_stdin(&["--format", "json"], &bytes);
    let records: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(records.len(), 3);
    for (record, (start, _, _)) in records.iter().zip(&expected) {
        let offset = record["offset"].as_f64().expect("an offset");
        assert!((offset - start).abs() < 0.6, "{record}");
    }
}

#[test]
fn live_refuses_what_it_cannot_read_with_the_reason() {
    // Nothing at all, text instead of a WAV, and an output format with no place for a stream.
    let empty = live_with_stdin(&[], b"");
    assert!(!empty.status.success());
    assert!(
        stderr(&empty).contains("before any audio"),
        "{}",
        stderr(&empty)
    );
    let text = live_with_stdin(&[], b"these are words, not audio samples\n");
    assert!(!text.status.success());
    assert!(stderr(&text).contains("--raw-rate"), "{}", stderr(&text));
    let ctm = phonrec(&["live", "--format", "ctm", "audio/fsdd_7_jackson_0_8k.wav"]);
    assert!(!ctm.status.success());
    assert!(
        stderr(&ctm).contains("[possible values: text, json]"),
        "{}",
        stderr(&ctm)
    );
    let pause = phonrec(&["live", "--min-pause", "0", "audio/fsdd_7_jackson_0_8k.wav"]);
    assert!(!pause.status.success());
    assert!(stderr(&pause).contains("--min-pause"), "{}", stderr(&pause));
    // A noise floor alone: no utterance, no output, success.
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut seed = 5;
    let quiet: Vec<i16> = floor(4.0, &mut seed).iter().map(|&x| x as i16).collect();
    let path = dir.path().join("quiet.wav");
    write_wav(&path, &quiet);
    let output = phonrec(&["live", path.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
}

#[test]
fn live_takes_one_channel_of_a_stereo_stream() {
    // A call recorded a side per channel: the sentence on the right (1), a faint floor on the
    // left (0). `--channel 1` hears the sentence as `transcribe` does, from a WAV file and as
    // headerless PCM on stdin; `--channel 0` hears nothing; `--channel 2` is refused.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("a temp dir");
    let clip = read_audio(&root.join("audio/slt_dark_suit_16k.wav"))
        .and_then(|w| w.resampled(RATE))
        .expect("the example reads");
    let mut seed = 3;
    let mut right = floor(0.8, &mut seed);
    right.extend(&clip.samples);
    right.extend(floor(1.2, &mut seed));
    let left = floor(right.len() as f32 / RATE as f32, &mut seed);
    let interleaved: Vec<i16> = left
        .iter()
        .zip(&right)
        .flat_map(|(&l, &r)| [l, r])
        .map(|x| x.round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    let wav = dir.path().join("stereo.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&wav, spec).expect("create the WAV");
    for &x in &interleaved {
        writer.write_sample(x).expect("write a sample");
    }
    writer.finalize().expect("finish the WAV");
    let alone = stdout(&phonrec(&["transcribe", "audio/slt_dark_suit_16k.wav"]));
    let expected: Vec<&str> = alone
        .trim_end()
        .split_once('\t')
        .expect("path<TAB>phones")
        .1
        .split(' ')
        .collect();
    let heard = |text: &str| -> Vec<String> {
        text.lines()
            .flat_map(|line| line.split('\t').nth(2).unwrap_or("").split(' '))
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    let path = wav.to_str().expect("utf-8");
    let file = phonrec(&["live", "--channel", "1", path]);
    assert!(file.status.success(), "{}", stderr(&file));
    let raw_bytes: Vec<u8> = interleaved.iter().flat_map(|x| x.to_le_bytes()).collect();
    let raw = live_with_stdin(
        &[
            "--raw-rate",
            "16000",
            "--raw-channels",
            "2",
            "--channel",
            "1",
        ],
        &raw_bytes,
    );
    assert!(raw.status.success(), "{}", stderr(&raw));
    for (output, what) in [(&file, "file"), (&raw, "raw")] {
        let phones = heard(&stdout(output));
        let phones: Vec<&str> = phones.iter().map(String::as_str).collect();
        let distance = edit_distance(&phones, &expected);
        assert!(distance <= 2, "{what}: {phones:?} against {expected:?}");
    }
    let floor_side = phonrec(&["live", "--channel", "0", path]);
    assert!(floor_side.status.success(), "{}", stderr(&floor_side));
    assert_eq!(stdout(&floor_side), "");
    let missing = phonrec(&["live", "--channel", "2", path]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("channel"), "{}", stderr(&missing));
}
