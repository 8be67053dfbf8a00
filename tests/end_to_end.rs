//! train -> eval -> transcribe through the real binary on a toy corpus (tones standing for phones),
//! resume after a kill, Ctrl-C, and bad input.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn phonrec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phonrec"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Small, fast training flags for the toy corpus.
fn train_args<'a>(train: &'a str, dev: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--train",
        train,
        "--dev",
        dev,
        "--layers",
        "2",
        "--hidden",
        "32",
        "--dropout",
        "0",
        "--num-mel-bins",
        "23",
        // The toy corpus was tuned with Kaldi's all-frame CMVN and no dither (its fresh utterance
        // loses its first tone under the loud-frame default after 60 epochs on 12 utterances).
        "--cmvn-frames",
        "all",
        "--dither",
        "0",
        "--epochs",
        epochs,
        "--batch-frames",
        "300",
        "--lr",
        "0.01",
        "--warmup",
        "5",
        "--early-stop",
        "100",
        "--patience",
        "100",
        "--seed",
        "1",
        "--quiet",
        "--checkpoint-every",
        "0",
    ]
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("metrics lines are JSON"))
        .collect()
}

#[test]
fn train_eval_transcribe_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let train = common::tone_corpus(dir.path(), "train", 12, 7);
    let out = dir.path().join("run");
    let mut args = train_args(train.to_str().unwrap(), train.to_str().unwrap(), "60");
    args.extend(["--out", out.to_str().unwrap()]);
    let output = phonrec(&args);
    assert!(
        output.status.success(),
        "train failed: {}",
        text(&output.stderr)
    );
    assert!(
        text(&output.stderr).contains("best dev PER"),
        "{}",
        text(&output.stderr)
    );
    let lines = metrics(&out);
    assert_eq!(lines.len(), 60);
    for key in [
        "train_loss",
        "dev_loss",
        "dev_per",
        "lr",
        "seconds",
        "skipped_utterances",
    ] {
        assert!(lines[0].get(key).is_some(), "metrics lack {key}");
    }
    let model = out.join("best.safetensors");

    let eval = phonrec(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        train.to_str().unwrap(),
        "--json",
    ]);
    assert!(eval.status.success(), "{}", text(&eval.stderr));
    let report: serde_json::Value = serde_json::from_str(&text(&eval.stdout)).unwrap();
    assert_eq!(report["per"].as_f64(), Some(0.0), "{report}");
    assert_eq!(report["utterances"].as_u64(), Some(12));

    let text_report = phonrec(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        train.to_str().unwrap(),
        "--beam",
        "4",
    ]);
    assert!(
        text(&text_report.stdout).starts_with("PER 0.00%"),
        "{}",
        text(&text_report.stdout)
    );

    // Transcribe a fresh utterance of the toy language, at another rate and in stereo.
    let fresh = dir.path().join("fresh.wav");
    let samples = common::tone_utterance(&[2, 0, 1], 99);
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&fresh, spec).unwrap();
    for s in &samples {
        writer.write_sample(*s).unwrap();
        writer.write_sample(*s).unwrap();
    }
    writer.finalize().unwrap();
    let resampled = dir.path().join("fresh44k.wav");
    let wave = phonrec::audio::read_audio(&fresh)
        .unwrap()
        .resampled(44_100)
        .unwrap();
    phonrec::audio::write_wav_i16(&resampled, &wave).unwrap();

    let out_text = phonrec(&[
        "transcribe",
        "--model",
        model.to_str().unwrap(),
        fresh.to_str().unwrap(),
        resampled.to_str().unwrap(),
    ]);
    assert!(out_text.status.success(), "{}", text(&out_text.stderr));
    let lines: Vec<String> = text(&out_text.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], format!("{}\ts aa iy", fresh.display()));
    assert_eq!(lines[1], format!("{}\ts aa iy", resampled.display()));

    let json = phonrec(&[
        "transcribe",
        "--model",
        model.to_str().unwrap(),
        "--format",
        "json",
        fresh.to_str().unwrap(),
    ]);
    let record: serde_json::Value = serde_json::from_str(text(&json.stdout).trim()).unwrap();
    assert_eq!(record["phones"], "s aa iy");
    let spans = record["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3);
    // Tones start at 0.1 s, 0.22 s apart (90 ms tone + 30 ms gap): spans must be near them.
    for (i, span) in spans.iter().enumerate() {
        let start = span["start"].as_f64().unwrap();
        let end = span["end"].as_f64().unwrap();
        let tone_start = 0.1 + 0.12 * i as f64;
        assert!(
            start < tone_start + 0.09 && end > tone_start,
            "span {i}: {start}..{end}"
        );
        assert!(span["confidence"].as_f64().unwrap() > 0.3);
    }

    let ctm = phonrec(&[
        "transcribe",
        "--model",
        model.to_str().unwrap(),
        "--format",
        "ctm",
        fresh.to_str().unwrap(),
    ]);
    let ctm_lines: Vec<String> = text(&ctm.stdout).lines().map(String::from).collect();
    assert_eq!(ctm_lines.len(), 3);
    let fields: Vec<&str> = ctm_lines[0].split(' ').collect();
    assert_eq!(fields.len(), 6);
    assert_eq!((fields[1], fields[4]), ("1", "s"));

    // A phone trigram LM from the training labels, fused into the beam search.
    let lm = dir.path().join("phones.arpa");
    let made = phonrec(&[
        "lm",
        "--data",
        train.to_str().unwrap(),
        "--order",
        "3",
        "--output",
        lm.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    assert!(std::fs::read_to_string(&lm).unwrap().contains("\\3-grams:"));
    let with_lm = phonrec(&[
        "transcribe",
        "--model",
        model.to_str().unwrap(),
        "--beam",
        "8",
        "--lm",
        lm.to_str().unwrap(),
        fresh.to_str().unwrap(),
    ]);
    assert!(with_lm.status.success(), "{}", text(&with_lm.stderr));
    assert_eq!(
        text(&with_lm.stdout).trim_end(),
        format!("{}\ts aa iy", fresh.display())
    );
    // --lm alone implies the beam search (width 16); greedy decoding cannot use an LM.
    let lm_default_beam = phonrec(&[
        "transcribe",
        "--model",
        model.to_str().unwrap(),
        "--lm",
        lm.to_str().unwrap(),
        fresh.to_str().unwrap(),
    ]);
    assert!(
        lm_default_beam.status.success(),
        "{}",
        text(&lm_default_beam.stderr)
    );
    assert_eq!(lm_default_beam.stdout, with_lm.stdout);
    let lm_with_greedy = phonrec(&[
        "transcribe",
        "--model",
        model.to_str().unwrap(),
        "--beam",
        "1",
        "--lm",
        lm.to_str().unwrap(),
        fresh.to_str().unwrap(),
    ]);
    assert!(!lm_with_greedy.status.success());
    assert!(text(&lm_with_greedy.stderr).contains("--beam"));

    // A folder is walked; a bad file is reported and skipped with a non-zero exit.
    std::fs::write(dir.path().join("train/broken.wav"), "not audio").unwrap();
    let folder = phonrec(&[
        "transcribe",
        "--model",
        model.to_str().unwrap(),
        dir.path().join("train").to_str().unwrap(),
    ]);
    assert!(!folder.status.success());
    assert_eq!(text(&folder.stdout).lines().count(), 12);
    assert!(
        text(&folder.stderr).contains("broken.wav"),
        "{}",
        text(&folder.stderr)
    );
}

#[test]
fn a_killed_run_resumes_where_it_stopped_with_identical_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let train = common::tone_corpus(dir.path(), "train", 8, 11);
    let t = train.to_str().unwrap();

    let reference = dir.path().join("uninterrupted");
    let mut args = train_args(t, t, "6");
    args.extend(["--out", reference.to_str().unwrap()]);
    assert!(phonrec(&args).status.success());

    let killed = dir.path().join("killed");
    let mut args = train_args(t, t, "6");
    args.extend(["--out", killed.to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_phonrec"))
        .args(&args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while metrics(&killed).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let before = metrics(&killed).len();
    assert!(before < 6, "the run finished before it could be killed");

    let resumed = phonrec(&["train", "--resume", killed.to_str().unwrap(), "--quiet"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let expected = metrics(&reference);
    let got = metrics(&killed);
    assert_eq!(got.len(), 6);
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(e["epoch"], g["epoch"]);
        for key in ["train_loss", "dev_loss", "dev_per", "lr", "updates"] {
            assert_eq!(
                e[key], g[key],
                "epoch {}: {key} differs after resume",
                e["epoch"]
            );
        }
    }
}

#[test]
fn resume_takes_the_original_command_line_and_extends_a_finished_run() {
    let dir = tempfile::tempdir().unwrap();
    let train = common::tone_corpus(dir.path(), "train", 8, 11);
    let t = train.to_str().unwrap();
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    let mut args = train_args(t, t, "2");
    args.extend(["--out", o]);
    let first = phonrec(&args);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(metrics(&out).len(), 2);

    // The same command line plus --resume, with a higher epoch limit: two more epochs.
    let mut again = train_args(t, t, "4");
    again.extend(["--out", o, "--resume"]);
    let extended = phonrec(&again);
    assert!(extended.status.success(), "{}", text(&extended.stderr));
    let epochs: Vec<u64> = metrics(&out)
        .iter()
        .map(|m| m["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2, 3, 4]);

    // A different option is refused and named; so is other data.
    let changed: Vec<&str> = args
        .iter()
        .map(|&a| if a == "--seed" { "--weight-noise" } else { a })
        .chain(["--resume"])
        .collect();
    let refused = phonrec(&changed);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("--seed (seed): the run has 1, the command line 0"),
        "{}",
        text(&refused.stderr)
    );
    let alone_with_option = phonrec(&["train", "--resume", o, "--lr", "0.5"]);
    assert!(!alone_with_option.status.success());
    assert!(
        text(&alone_with_option.stderr).contains("schedule.learning_rate"),
        "{}",
        text(&alone_with_option.stderr)
    );
    let other = common::tone_corpus(dir.path(), "other", 4, 5);
    let other_data = phonrec(&["train", "--resume", o, "--train", other.to_str().unwrap()]);
    assert!(!other_data.status.success());
    assert!(text(&other_data.stderr).contains("--train"));
    assert_eq!(metrics(&out).len(), 4, "refused resumes trained nothing");

    // --resume alone with a limit already reached says so and trains nothing.
    let done = phonrec(&["train", "--resume", o, "--epochs", "3", "--quiet"]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert!(
        text(&done.stderr).contains("completed 4 epochs"),
        "{}",
        text(&done.stderr)
    );
    assert_eq!(metrics(&out).len(), 4);
}

#[test]
fn bad_manifests_and_missing_data_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("bad.tsv");
    std::fs::write(&manifest, "nothing.wav\tah\nline without tab\n").unwrap();
    let m = manifest.to_str().unwrap();
    let out = dir.path().join("run");
    let output = phonrec(&[
        "train",
        "--train",
        m,
        "--dev",
        m,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = text(&output.stderr);
    assert!(
        message.contains("bad.tsv:1") && message.contains("does not exist"),
        "{message}"
    );
    assert!(message.contains("bad.tsv:2"), "{message}");
    assert!(message.contains("no usable utterances"), "{message}");

    let zero_init = phonrec(&[
        "train",
        "--train",
        m,
        "--dev",
        m,
        "--out",
        out.to_str().unwrap(),
        "--init",
        "zeros",
    ]);
    assert!(!zero_init.status.success());

    let resume_nothing = phonrec(&["train", "--resume", dir.path().to_str().unwrap()]);
    assert!(!resume_nothing.status.success());
    assert!(
        text(&resume_nothing.stderr).contains("no checkpoint"),
        "{}",
        text(&resume_nothing.stderr)
    );
}
