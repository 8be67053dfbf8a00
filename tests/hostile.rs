//! Hostile inputs: crafted files and flags like the ones an adversarial run found (issue 15). Each must
//! end in a clear error naming the problem, never a panic, an abort, a hang or silent garbage. The CLI
//! runs under an address-space limit, so an allocation bomb fails the test instead of the machine.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Address space the CLI may use in these tests: far above what any case needs when handled
/// correctly (the built-in model and one short file), far below what the bombs ask for.
const MEMORY_LIMIT_BYTES: u64 = 3 << 30;

fn limited(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_phonrec"));
    command.args(args);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: MEMORY_LIMIT_BYTES,
                    rlim_max: MEMORY_LIMIT_BYTES,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    command
}

fn phonrec(args: &[&str]) -> Output {
    limited(args).output().expect("the binary runs")
}

fn phonrec_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = limited(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input)
        .expect("stdin takes the input");
    child.wait_with_output().expect("the binary finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command failed the way a clean error fails: exit code 1, or 2 for a flag's value refused
/// as the command line is parsed (not a panic's 101 or a signal), a message on stderr containing
/// every one of `needles`, and no panic text.
#[track_caller]
fn assert_clean_error(output: &Output, needles: &[&str]) {
    let stderr = text(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(1 | 2)),
        "expected a clean failure, got {:?}; stderr: {stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "stderr lacks {needle:?}: {stderr}"
        );
    }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// A RIFF/WAVE header for 16-bit mono PCM at 16 kHz whose data chunk claims `data_bytes`.
fn wav_header(data_bytes: u32, channels: u16, format: u16, bits: u16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&36u32.wrapping_add(data_bytes).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&format.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&16_000u32.to_le_bytes());
    let block = u32::from(channels) * u32::from(bits / 8);
    h.extend_from_slice(&(16_000 * block).to_le_bytes());
    h.extend_from_slice(&(block as u16).to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_bytes.to_le_bytes());
    h
}

/// A 32-bit float mono WAV of `samples`.
fn float_wav(samples: &[f32]) -> Vec<u8> {
    let mut bytes = wav_header((samples.len() * 4) as u32, 1, 3, 32);
    for x in samples {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes
}

fn sine(seconds: f32) -> Vec<f32> {
    (0..(16_000.0 * seconds) as usize)
        .map(|i| 0.3 * (i as f32 * 0.05).sin())
        .collect()
}

fn sphere(fields: &str, data: &[u8]) -> Vec<u8> {
    let mut header =
        format!("NIST_1A\n   1024\nsample_rate -i 16000\nsample_n_bytes -i 2\n{fields}end_head\n")
            .into_bytes();
    header.resize(1024, b' ');
    header.extend_from_slice(data);
    header
}

#[test]
fn audio_headers_that_lie_are_refused_without_allocating_what_they_claim() {
    let dir = tempfile::tempdir().unwrap();
    // 44 bytes claiming 4 GB of samples: the old reader reserved 8-17 GB and aborted.
    let bomb = dir.path().join("bomb.wav");
    std::fs::write(&bomb, wav_header(4_000_000_000, 1, 1, 16)).unwrap();
    let good = dir.path().join("good.wav");
    std::fs::write(&good, float_wav(&sine(0.5))).unwrap();
    // The bad file fails, the good one after it is still transcribed.
    let output = phonrec(&["transcribe", "--no-lm", s(&bomb), s(&good)]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("cut short"),
        "{}",
        text(&output.stderr)
    );
    assert!(text(&output.stdout).contains("good.wav"));

    let channels = dir.path().join("channels.wav");
    std::fs::write(&channels, wav_header(4000, 60_000, 1, 16)).unwrap();
    assert_clean_error(&phonrec(&["features", s(&channels)]), &["channels"]);

    for count in [
        "4611686018427387904",
        "9223372036854775808",
        "1000000000000000000",
    ] {
        let path = dir.path().join("channels.sph");
        std::fs::write(
            &path,
            sphere(&format!("channel_count -i {count}\n"), &[0; 64]),
        )
        .unwrap();
        assert_clean_error(&phonrec(&["features", s(&path)]), &["channel_count"]);
    }
}

#[test]
fn non_finite_and_absurd_samples_are_refused_with_the_sample_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut samples = sine(0.5);
    samples[4000] = f32::NAN;
    let nan = dir.path().join("nan.wav");
    std::fs::write(&nan, float_wav(&samples)).unwrap();
    assert_clean_error(&phonrec(&["transcribe", s(&nan)]), &["sample 4000", "NaN"]);

    samples[4000] = f32::INFINITY;
    std::fs::write(&nan, float_wav(&samples)).unwrap();
    assert_clean_error(&phonrec(&["probs", s(&nan)]), &["sample 4000", "inf"]);

    let loud: Vec<f32> = sine(0.5).iter().map(|x| x * 1e30).collect();
    let path = dir.path().join("loud.wav");
    std::fs::write(&path, float_wav(&loud)).unwrap();
    assert_clean_error(&phonrec(&["transcribe", s(&path)]), &["times full scale"]);
    assert_clean_error(&phonrec(&["probs", s(&path)]), &["times full scale"]);
}

#[test]
fn hostile_phone_lms_are_refused_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.wav");
    std::fs::write(&good, float_wav(&sine(0.3))).unwrap();
    let cases: [(&str, &str, &[&str]); 5] = [
        (
            "huge.arpa",
            "\\data\\\nngram 1=1000000000000\n\n\\1-grams:\n-1 aa\n\\end\\\n",
            &["declares 1000000000000 1-grams"],
        ),
        (
            "overflow.arpa",
            "\\data\\\nngram 1=1152921504606846976\n\n\\1-grams:\n-1 aa\n\\end\\\n",
            &["1-grams"],
        ),
        (
            "nan.arpa",
            "\\data\\\nngram 1=2\n\n\\1-grams:\nnan aa\n-1 iy\n\\end\\\n",
            &["nan.arpa:5", "not a probability"],
        ),
        (
            "inf.arpa",
            "\\data\\\nngram 1=2\n\n\\1-grams:\n-1 aa -inf\n-1 iy\n\\end\\\n",
            &["inf.arpa:5", "not a finite"],
        ),
        (
            "above_one.arpa",
            "\\data\\\nngram 1=2\n\n\\1-grams:\n0.5 aa\n-1 iy\n\\end\\\n",
            &["above_one.arpa:5", "not a probability"],
        ),
    ];
    for (name, arpa, needles) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, arpa).unwrap();
        assert_clean_error(
            &phonrec(&["transcribe", "--lm", s(&path), s(&good)]),
            needles,
        );
    }
    // A line with no end (a binary file named .arpa) stops at the line limit.
    let path = dir.path().join("binary.arpa");
    std::fs::write(&path, vec![b'x'; 200_000]).unwrap();
    assert_clean_error(
        &phonrec(&["transcribe", "--lm", s(&path), s(&good)]),
        &["longer than"],
    );
}

#[test]
fn model_files_with_absurd_metadata_or_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("a.wav");
    std::fs::write(&wav, float_wav(&sine(0.3))).unwrap();
    let f32_model = dir.path().join("f32.safetensors");
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.safetensors");
    let output = phonrec(&[
        "convert",
        "--storage",
        "f32",
        s(&built_in),
        "-o",
        s(&f32_model),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let model = std::fs::read(&f32_model).unwrap();

    let network_cases: [(&str, serde_json::Value, &str); 4] = [
        (
            "num_layers",
            serde_json::json!(1_000_000_000u64),
            "num_layers",
        ),
        ("hidden_size", serde_json::json!(1u64 << 63), "hidden_size"),
        (
            "stack_frames",
            serde_json::json!(1u64 << 62),
            "stack_frames",
        ),
        ("input_dim", serde_json::json!(1u64 << 40), "input_dim"),
    ];
    for (field, value, needle) in network_cases {
        let bytes = common::edit_model_metadata(&model, "network", |n| n[field] = value.clone());
        let path = dir.path().join(format!("{field}.safetensors"));
        std::fs::write(&path, bytes).unwrap();
        assert_clean_error(
            &phonrec(&["transcribe", "--model", s(&path), s(&wav)]),
            &[needle],
        );
    }
    type Edit<'a> = &'a dyn Fn(&mut serde_json::Value);
    let feature_cases: [(&str, Edit); 4] = [
        ("frame length", &|f| {
            f["base"]["frame"]["frame_length_ms"] = serde_json::json!(1e12)
        }),
        ("sample rate", &|f| {
            f["base"]["frame"]["sample_rate_hz"] = serde_json::json!(4_000_000_000u64)
        }),
        ("mel bins", &|f| {
            f["base"]["mel"]["num_bins"] = serde_json::json!(1u64 << 40)
        }),
        (
            "delta",
            &|f| {
                f["deltas"] =
                    serde_json::json!({"order": 1u64 << 60, "window": 1_000_000_000_000_000_000u64})
            },
        ),
    ];
    for (needle, edit) in feature_cases {
        let bytes = common::edit_model_metadata(&model, "features", edit);
        let path = dir.path().join("features.safetensors");
        std::fs::write(&path, bytes).unwrap();
        assert_clean_error(
            &phonrec(&["transcribe", "--model", s(&path), s(&wav)]),
            &[needle],
        );
    }
    // One weight of 3e38: finite, but every product overflows. The first tensor's first value.
    let header_len = u64::from_le_bytes(model[..8].try_into().unwrap()) as usize;
    let mut huge = model.clone();
    huge[8 + header_len..8 + header_len + 4].copy_from_slice(&3e38f32.to_le_bytes());
    let path = dir.path().join("huge.safetensors");
    std::fs::write(&path, huge).unwrap();
    assert_clean_error(
        &phonrec(&["transcribe", "--model", s(&path), s(&wav)]),
        &["beyond the ±1e5"],
    );
}

#[test]
fn absurd_flags_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("a.wav");
    std::fs::write(&wav, float_wav(&sine(0.3))).unwrap();
    let w = s(&wav);
    let train = common::tone_corpus(dir.path(), "train", 2, 3);
    let t = s(&train);
    let out = dir.path().join("run");
    let o = s(&out);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["features", "--num-mel-bins", "1000000000000", w],
            "mel bins",
        ),
        (vec!["features", "--frame-length", "1e9", w], "frame length"),
        (
            vec!["features", "--deltas", "--delta-window", "1000000000000", w],
            "window",
        ),
        (
            vec!["features", "--deltas", "--delta-order", "1000000000", w],
            "order",
        ),
        // Zero-width deltas would be all zeros; Kaldi's add-deltas refuses them too.
        (
            vec!["features", "--deltas", "--delta-window", "0", w],
            "window",
        ),
        // Options that only mean something beside another one.
        (vec!["features", "--delta-order", "1", w], "--deltas"),
        (vec!["features", "--norm-vars", w], "--cmvn"),
        (
            vec!["features", "--kind", "mfcc", "--cepstral-lifter", "NaN", w],
            "lifter",
        ),
        (vec!["transcribe", "--beam", "1000000000000", w], "beam"),
        (
            vec![
                "train",
                "--train",
                t,
                "--dev",
                t,
                "--out",
                o,
                "--layers",
                "1000000000",
            ],
            "num_layers",
        ),
        (
            vec![
                "train",
                "--train",
                t,
                "--dev",
                t,
                "--out",
                o,
                "--hidden",
                "1000000000",
            ],
            "hidden_size",
        ),
        (
            vec![
                "train",
                "--train",
                t,
                "--dev",
                t,
                "--out",
                o,
                "--stack-frames",
                "4611686018427387904",
            ],
            "stack_frames",
        ),
        (
            vec!["train", "--train", t, "--dev", t, "--out", o, "--lr", "NaN"],
            "learning rate",
        ),
    ];
    for (args, needle) in cases {
        let started = Instant::now();
        let output = phonrec(&args);
        assert_clean_error(&output, &[needle]);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.safetensors");
    let wide = dir.path().join("wide.safetensors");
    assert_clean_error(
        &phonrec(&[
            "convert",
            "--hidden",
            "100000000",
            s(&built_in),
            "-o",
            s(&wide),
        ]),
        &["hidden_size"],
    );
    assert!(!wide.exists());
}

#[test]
fn odd_paths_and_text_files_get_clear_answers() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(corpus.join("sub")).unwrap();
    common::write_wav(
        &corpus.join("sub/a.wav"),
        &common::tone_utterance(&[0, 1], 1),
    );
    std::fs::write(
        corpus.join("sub/b.SPH"),
        phonrec::audio::sphere_bytes(&common::tone_utterance(&[2, 3], 2), 16_000, false),
    )
    .unwrap();
    // macOS AppleDouble metadata beside a copied file, and a hidden folder: passed over, not a
    // "not an audio file" error that fails the batch.
    std::fs::write(
        corpus.join("sub/._a.wav"),
        b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ",
    )
    .unwrap();
    std::fs::create_dir_all(corpus.join(".trash")).unwrap();
    std::fs::write(corpus.join(".trash/old.wav"), b"not audio").unwrap();
    // A link cycle: the walk must not follow it forever (or list each file ~40 times).
    #[cfg(unix)]
    std::os::unix::fs::symlink("..", corpus.join("sub/loop")).unwrap();
    let output = phonrec(&["transcribe", "--no-lm", s(&corpus)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "each file once, .SPH included: {stdout}");
    assert!(lines.iter().any(|l| l.contains("a.wav")) && lines.iter().any(|l| l.contains("b.SPH")));

    // Folders and devices as audio say what they are.
    let folder = dir.path().join("folder.wav");
    std::fs::create_dir_all(&folder).unwrap();
    assert_clean_error(&phonrec(&["features", s(&folder)]), &["folder"]);
    assert_clean_error(&phonrec(&["features", "/dev/zero"]), &["device"]);
    assert_clean_error(&phonrec(&["transcribe", "/dev/zero"]), &["device"]);

    // Audio on stdin: a WAV stream is transcribed as `-`; the same through /dev/stdin.
    let wav = std::fs::read(corpus.join("sub/a.wav")).unwrap();
    let output = phonrec_with_stdin(&["transcribe", "--no-lm", "-"], &wav);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).starts_with("-\t"),
        "{}",
        text(&output.stdout)
    );
    let output = phonrec_with_stdin(&["features", "/dev/stdin", "--format", "tsv"], &wav);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // A path list on stdin still works.
    let list = format!("{}\n", corpus.join("sub/a.wav").display());
    let output = phonrec_with_stdin(&["transcribe", "--no-lm", "-"], list.as_bytes());
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("a.wav"));

    // Manifests: a byte-order mark is not part of the first path; a non-UTF-8 byte names its line;
    // a folder given as audio is not "missing".
    let phones = phonrec::phones::PhoneSet::timit39();
    let manifest = dir.path().join("bom.tsv");
    std::fs::write(
        &manifest,
        format!("\u{feff}{}\taa iy\n", corpus.join("sub/a.wav").display()),
    )
    .unwrap();
    let data = phonrec::data::load_manifest(&manifest, &phones).unwrap();
    assert_eq!(data.len(), 1, "{:?}", data.problems);
    // The same for `transcribe --manifest` and a path list on stdin (Windows line ends too).
    let output = phonrec(&[
        "transcribe",
        "--no-lm",
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("a.wav\t"));
    let list = format!("\u{feff}{}\r\n", corpus.join("sub/a.wav").display());
    let output = phonrec_with_stdin(&["transcribe", "--no-lm", "-"], list.as_bytes());
    assert!(output.status.success(), "{}", text(&output.stderr));
    // UTF-16 (Notepad's "Unicode") is named, with the conversion.
    let utf16 = dir.path().join("utf16.tsv");
    let mut bytes = vec![0xFF, 0xFE];
    for unit in format!("{}\taa\n", corpus.join("sub/a.wav").display()).encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    std::fs::write(&utf16, bytes).unwrap();
    let output = phonrec(&[
        "transcribe",
        "--no-lm",
        "--manifest",
        utf16.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("UTF-16"),
        "{}",
        text(&output.stderr)
    );
    let latin1 = dir.path().join("latin1.tsv");
    let mut bytes = format!("{}\taa\n", corpus.join("sub/a.wav").display()).into_bytes();
    bytes.extend_from_slice(b"caf\xe9.wav\taa\n");
    std::fs::write(&latin1, bytes).unwrap();
    let error = phonrec::data::load_manifest(&latin1, &phones)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("latin1.tsv:2") && error.contains("0xe9"),
        "{error}"
    );
    let folders = dir.path().join("folders.tsv");
    std::fs::write(
        &folders,
        format!("{}\taa\n/dev/zero\taa\n", folder.display()),
    )
    .unwrap();
    let data = phonrec::data::load_manifest(&folders, &phones).unwrap();
    let problems: Vec<String> = data.problems.iter().map(|p| p.to_string()).collect();
    assert!(problems[0].contains("is a folder"), "{problems:?}");
    assert!(problems[1].contains("not a regular file"), "{problems:?}");
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
        .collect()
}

fn toy_train_args<'a>(train: &'a str, out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--train",
        train,
        "--dev",
        train,
        "--out",
        out,
        "--layers",
        "1",
        "--hidden",
        "16",
        "--dropout",
        "0",
        "--num-mel-bins",
        "23",
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

/// Files a run folder may hold (no temporaries left by a kill).
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".tmp"))
        })
        .collect()
}

#[test]
fn one_trainer_per_folder_no_silent_overwrite_and_kills_at_random_moments_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let train = common::tone_corpus(dir.path(), "train", 8, 11);
    let t = s(&train);
    let epochs = "8";

    let reference = dir.path().join("reference");
    let output = phonrec(&toy_train_args(t, s(&reference), epochs));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let expected = metrics(&reference);
    assert_eq!(expected.len(), 8);

    // The same --out again is refused; --force starts over.
    assert_clean_error(
        &phonrec(&toy_train_args(t, s(&reference), epochs)),
        &["already holds a run", "--force"],
    );

    // Kill the run at pseudo-random moments (a fixed sequence, so a failure reproduces), resuming
    // after each kill (a kill can land between the checkpoint and its metrics line, or inside a
    // save); at the end the metrics log, the best model and the folder must be exactly what an
    // uninterrupted run leaves.
    let killed = dir.path().join("killed");
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut first = true;
    for _ in 0..6 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(200 + state % 1500);
        let mut child = if first {
            limited(&toy_train_args(t, s(&killed), epochs))
        } else {
            limited(&["train", "--resume", s(&killed), "--quiet"])
        }
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        first = false;
        std::thread::sleep(delay);
        // A second trainer in the same folder is refused while the first holds it.
        if child.try_wait().unwrap().is_none() && killed.join("checkpoint.safetensors").exists() {
            let second = phonrec(&["train", "--resume", s(&killed), "--quiet"]);
            if child.try_wait().unwrap().is_none() {
                assert_clean_error(&second, &["another phonrec process"]);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        if !killed.join("checkpoint.safetensors").exists() {
            // Killed before the first checkpoint: start again from nothing.
            std::fs::remove_dir_all(&killed).unwrap();
            first = true;
        }
    }
    if killed.join("checkpoint.safetensors").exists() {
        let resumed = phonrec(&["train", "--resume", s(&killed), "--quiet"]);
        assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    } else {
        let fresh = phonrec(&toy_train_args(t, s(&killed), epochs));
        assert!(fresh.status.success(), "{}", text(&fresh.stderr));
    }
    assert!(leftovers(&killed).is_empty(), "{:?}", leftovers(&killed));
    let got = metrics(&killed);
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (e, g) in expected.iter().zip(&got) {
        for key in [
            "epoch",
            "train_loss",
            "dev_loss",
            "dev_per",
            "lr",
            "updates",
        ] {
            assert_eq!(
                e[key], g[key],
                "epoch {}: {key} differs after kills",
                e["epoch"]
            );
        }
    }
    assert_eq!(
        std::fs::read(reference.join("best.safetensors")).unwrap(),
        std::fs::read(killed.join("best.safetensors")).unwrap(),
        "the best model after kills and resumes is the uninterrupted run's"
    );

    let forced = phonrec(&[toy_train_args(t, s(&reference), "1"), vec!["--force"]].concat());
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_eq!(metrics(&reference).len(), 1);
}

/// A data source with nothing in it says where it looked, not "0 problems reported above".
#[test]
fn empty_data_sources_say_where_they_looked() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("empty.tsv");
    std::fs::write(&manifest, "").unwrap();
    let kaldi = dir.path().join("kaldi");
    std::fs::create_dir_all(&kaldi).unwrap();
    std::fs::write(kaldi.join("wav.scp"), "").unwrap();
    std::fs::write(kaldi.join("text"), "").unwrap();
    let lexicon = dir.path().join("lexicon.txt");
    std::fs::write(&lexicon, "A AH0\n").unwrap();
    let cases: [(Vec<&str>, String); 2] = [
        (
            vec!["eval", "--data", manifest.to_str().unwrap()],
            format!("{} lists none", manifest.display()),
        ),
        (
            vec![
                "eval",
                "--data",
                kaldi.to_str().unwrap(),
                "--lexicon",
                lexicon.to_str().unwrap(),
            ],
            format!("{} lists none", kaldi.join("text").display()),
        ),
    ];
    for (args, expected) in cases {
        let output = phonrec(&args);
        assert!(!output.status.success(), "{args:?}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(
            message.contains("has no utterances") && message.contains(&expected),
            "{args:?}: {message}"
        );
        assert!(!message.contains("problems reported"), "{message}");
    }
}

#[test]
fn outputs_never_destroy_inputs_or_earlier_results() {
    // Found by an audit run: `-o` naming the input emptied it, and a failed run emptied an
    // earlier output file.
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("a.wav");
    common::write_wav(&audio, &common::tone_utterance(&[0, 1], 1));
    let original = std::fs::read(&audio).unwrap();
    for args in [
        vec!["transcribe", "--no-lm", s(&audio), "-o", s(&audio)],
        vec!["features", s(&audio), "-o", s(&audio)],
        vec!["probs", "--no-lm", s(&audio), "-o", s(&audio)],
        vec!["probs", "--no-lm", s(&audio), "--png", s(&audio)],
    ] {
        assert_clean_error(&phonrec(&args), &["is also an input"]);
        assert_eq!(std::fs::read(&audio).unwrap(), original, "{args:?}");
    }
    // Two outputs of one run on one path: refused before the second replaces the first.
    let elsewhere = tempfile::tempdir().unwrap();
    let picture = elsewhere.path().join("p.png");
    assert_clean_error(
        &phonrec(&[
            "probs",
            "--no-lm",
            s(&audio),
            "--png",
            s(&picture),
            "--html",
            s(&picture),
        ]),
        &["both name"],
    );
    // The files a Kaldi data dir is read from, and the recordings it lists, are inputs too:
    // `-o data/text` (Kaldi names hypotheses `text` too) used to replace the references.
    let data = elsewhere.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("wav.scp"), format!("u1 {}\n", audio.display())).unwrap();
    std::fs::write(data.join("text"), "u1 SEVEN\n").unwrap();
    let (text_file, scp) = (data.join("text"), data.join("wav.scp"));
    for args in [
        vec!["eval", "--no-lm", "--data", s(&data), "-o", s(&text_file)],
        vec!["eval", "--no-lm", "--data", s(&data), "-o", s(&audio)],
        vec!["score", s(&data), "-o", s(&text_file)],
        vec!["align", s(&data), "-o", s(&scp)],
        vec!["lm", "--data", s(&data), "-o", s(&scp)],
        vec!["transcribe", "--no-lm", s(&data), "-o", s(&text_file)],
        vec!["features", s(&data), "-o", s(&scp)],
    ] {
        assert_clean_error(&phonrec(&args), &["is also an input"]);
    }
    assert_eq!(std::fs::read_to_string(&text_file).unwrap(), "u1 SEVEN\n");
    assert_eq!(std::fs::read(&audio).unwrap(), original);

    // The same file by another name is the same input.
    let spelled = dir.path().join(".").join("a.wav");
    assert_clean_error(
        &phonrec(&["transcribe", "--no-lm", s(&audio), "-o", s(&spelled)]),
        &["is also an input"],
    );
    assert_eq!(std::fs::read(&audio).unwrap(), original);

    // A run that fails (a bad option, or every input unreadable) leaves the earlier output.
    let out = dir.path().join("out.txt");
    let first = phonrec(&["transcribe", "--no-lm", s(&audio), "-o", s(&out)]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.starts_with(s(&audio)), "{written}");
    let not_audio = dir.path().join("notes.wav");
    std::fs::write(&not_audio, "just text").unwrap();
    assert_clean_error(
        &phonrec(&[
            "transcribe",
            "--no-lm",
            "--beam",
            "100000",
            s(&audio),
            "-o",
            s(&out),
        ]),
        &["beam"],
    );
    assert_clean_error(
        &phonrec(&["transcribe", "--no-lm", s(&not_audio), "-o", s(&out)]),
        &["not an audio file"],
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), written);
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    // A picture too large is refused before the network runs, and leaves no empty file.
    let png = dir.path().join("p.png");
    assert_clean_error(
        &phonrec(&[
            "probs",
            s(&audio),
            "--png",
            s(&png),
            "--pixels-per-second",
            "1000000",
        ]),
        &["pixels per second"],
    );
    assert!(!png.exists());
}

#[test]
fn folders_with_pipes_and_binary_standard_input_do_not_hang_or_flood() {
    let dir = tempfile::tempdir().unwrap();
    common::write_wav(
        &dir.path().join("a.wav"),
        &common::tone_utterance(&[0, 1], 1),
    );
    // A named pipe with an audio name inside a folder: skipped (it would block the walk's reader).
    #[cfg(unix)]
    {
        let fifo = dir.path().join("stuck.wav");
        let status = Command::new("mkfifo").arg(&fifo).status();
        if status.is_ok_and(|s| s.success()) {
            let start = Instant::now();
            let output = phonrec(&["transcribe", "--no-lm", s(dir.path())]);
            assert!(output.status.success(), "{}", text(&output.stderr));
            assert_eq!(text(&output.stdout).lines().count(), 1);
            assert!(start.elapsed() < Duration::from_secs(120));
        }
    }
    // Binary data on stdin (headerless samples starting with silence): one short message, not
    // the bytes echoed back as a file name.
    let output = phonrec_with_stdin(&["transcribe", "-"], &vec![0u8; 1 << 20]);
    assert_clean_error(&output, &["standard input is neither audio", "sox"]);
    assert!(output.stderr.len() < 1000, "{} bytes", output.stderr.len());
}

#[test]
fn eval_says_when_its_per_covers_only_part_of_the_data() {
    let dir = tempfile::tempdir().unwrap();
    common::write_wav(
        &dir.path().join("a.wav"),
        &common::tone_utterance(&[0, 1], 1),
    );
    std::fs::write(dir.path().join("notes.wav"), "just text").unwrap();
    // A header line, one good line, and one whose audio is missing.
    let manifest = dir.path().join("m.tsv");
    std::fs::write(&manifest, "audio\tphones\na.wav\taa iy\nmissing.wav\taa\n").unwrap();
    let output = phonrec(&["eval", "--no-lm", "--data", s(&manifest)]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("(1 utterances"), "{stdout}");
    assert!(
        stdout.contains(
            "incomplete: the PER covers 1 of the data's utterances: 1 line of the data skipped"
        ),
        "{stdout}"
    );
    let output = phonrec(&["eval", "--no-lm", "--json", "--data", s(&manifest)]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["skipped_lines"], 1);
    assert_eq!(report["utterances"], 1);
    // Nothing scored: no PER at all.
    let unreadable = dir.path().join("u.tsv");
    std::fs::write(&unreadable, "notes.wav\taa\n").unwrap();
    let output = phonrec(&["eval", "--no-lm", "--data", s(&unreadable)]);
    assert_clean_error(&output, &["none of the 1 utterances could be scored"]);
    assert!(
        !text(&output.stdout).contains("PER"),
        "{}",
        text(&output.stdout)
    );
    // Hypotheses keyed unlike the data.
    let good = dir.path().join("g.tsv");
    std::fs::write(&good, "a.wav\taa iy\n").unwrap();
    let hyp = dir.path().join("hyp.txt");
    std::fs::write(&hyp, "nonsense aa\n").unwrap();
    assert_clean_error(
        &phonrec(&["eval", "--data", s(&good), "--hyp", s(&hyp)]),
        &["no line of", "g.tsv:1", "nonsense"],
    );
}

#[test]
fn empty_transcripts_and_files_given_as_the_wrong_thing_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("a.wav");
    common::write_wav(&audio, &common::tone_utterance(&[0, 1], 1));
    for args in [
        vec!["align", s(&audio), "--text", ""],
        vec!["align", s(&audio), "--text", "... !!!"],
        vec!["align", s(&audio), "--phones", " "],
    ] {
        assert_clean_error(&phonrec(&args), &["transcript of", "is empty"]);
    }
    assert_clean_error(
        &phonrec(&["transcribe", s(&audio), "--model", s(&audio)]),
        &["an audio file, not a model"],
    );
    let lm = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default-lm.bin");
    assert_clean_error(
        &phonrec(&["transcribe", s(&audio), "--model", s(&lm)]),
        &["a phone LM, not a model", "--lm"],
    );
}

#[test]
fn archive_keys_and_lm_inventories_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        common::write_wav(
            &dir.path().join(sub).join("x.wav"),
            &common::tone_utterance(&[0, 1], 1),
        );
    }
    let ark = dir.path().join("f.ark");
    assert_clean_error(
        &phonrec(&["features", s(dir.path()), "--format", "ark", "-o", s(&ark)]),
        &["would both be keyed x"],
    );
    assert!(!ark.exists());
    // An LM without a unigram for some of the model's phones is used, with a warning naming them.
    let lm = dir.path().join("two.arpa");
    std::fs::write(
        &lm,
        "\\data\\\nngram 1=4\n\n\\1-grams:\n-0.5\taa\n-0.5\tiy\n-0.3\t</s>\n-99\t<s>\n\n\\end\\\n",
    )
    .unwrap();
    let output = phonrec(&["transcribe", s(&dir.path().join("a/x.wav")), "--lm", s(&lm)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("has no unigram for") && stderr.contains(" ae "),
        "{stderr}"
    );
}

#[test]
fn file_names_with_tabs_and_line_breaks_keep_text_output_one_line_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("a\tb\nc.wav");
    common::write_wav(&odd, &common::tone_utterance(&[0, 1], 1));
    let output = phonrec(&["transcribe", "--no-lm", s(&odd)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    assert!(stdout.contains("a\\tb\\nc.wav\t"), "{stdout:?}");
}
