//! Scale-out: `--shard K/N` splits a corpus into disjoint parts whose union is the whole, and
//! `--resume` finishes a job that was killed midway with the same outputs as an uninterrupted run.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{phonrec, stderr};

/// A corpus of `count` files: the three example recordings under varied names.
fn corpus(dir: &Path, count: usize) -> Vec<PathBuf> {
    let examples = [
        "audio/fsdd_7_jackson_0_8k.wav",
        "audio/slt_dark_suit_16k.wav",
        "audio/espeak_quick_fox_22k.wav",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir).expect("corpus folder");
    (0..count)
        .map(|i| {
            let path = dir.join(format!("utt{i:03}.wav"));
            std::fs::copy(root.join(examples[i % examples.len()]), &path).expect("copy");
            path
        })
        .collect()
}

/// Every file in `dir` by name, with its bytes (`.partial` leftovers included, so they show).
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| {
                    let path = entry.expect("entry").path();
                    let name = path
                        .file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned();
                    (name, std::fs::read(&path).expect("read"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

#[test]
fn shards_partition_the_corpus_and_a_killed_shard_resumes_to_the_same_outputs() {
    let temp = tempfile::tempdir().expect("temp dir");
    let input = temp.path().join("in");
    corpus(&input, 40);
    let transcribe = |extra: &[&str], out: &Path| {
        let mut args = vec![
            "transcribe",
            s(&input),
            "--format",
            "json",
            "--output-dir",
            s(out),
        ];
        args.extend_from_slice(extra);
        let output = phonrec(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        output
    };

    // The whole corpus in one run is the reference.
    let whole_dir = temp.path().join("whole");
    transcribe(&[], &whole_dir);
    let whole = contents(&whole_dir);
    assert_eq!(whole.len(), 40);

    // Three shards: disjoint, every input in one, outputs as in the whole run.
    let mut union = BTreeMap::new();
    for k in 0..3 {
        let dir = temp.path().join(format!("shard{k}"));
        let output = transcribe(&["--shard", &format!("{k}/3")], &dir);
        assert!(
            stderr(&output).contains(&format!("shard {k}/3:")),
            "{}",
            stderr(&output)
        );
        let part = contents(&dir);
        assert!(
            !part.is_empty() && part.len() < 40,
            "shard {k}: {}",
            part.len()
        );
        for (name, bytes) in part {
            assert!(union.insert(name.clone(), bytes).is_none(), "{name} twice");
        }
    }
    assert_eq!(union, whole);

    // Kill shard 0/2 once its first outputs exist, then rerun it with --resume.
    let out = temp.path().join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_phonrec"))
        .args(["transcribe", s(&input), "--format", "json", "--output-dir"])
        .arg(&out)
        .args(["--shard", "0/2"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary runs");
    let started = Instant::now();
    // Names only: while the child runs, a `.partial` file may be renamed between listing and reading.
    let written = |dir: &Path| {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter(|entry| entry.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
    };
    while written(&out) == 0 && started.elapsed() < Duration::from_secs(120) {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().ok();
    child.wait().expect("wait");
    let before = written(&out);
    let output = transcribe(&["--shard", "0/2", "--resume"], &out);
    let message = stderr(&output);
    assert!(
        message.contains(&format!("{before} already done")),
        "{before}: {message}"
    );
    // Shard 1/2 never ran: all of it is to do.
    transcribe(&["--shard", "1/2", "--resume"], &out);
    let finished: BTreeMap<String, Vec<u8>> = contents(&out)
        .into_iter()
        .filter(|(name, _)| !name.ends_with(".partial"))
        .collect();
    assert_eq!(finished, whole);

    // A resumed run with everything done reads no audio and writes nothing.
    let output = transcribe(&["--resume"], &out);
    assert!(
        stderr(&output).contains("40 of 40 inputs already done, 0 to do"),
        "{}",
        stderr(&output)
    );

    // With one output file for all there is nothing to resume from: refused, not ignored.
    let one_file = temp.path().join("all.txt");
    let output = Command::new(env!("CARGO_BIN_EXE_phonrec"))
        .args(["transcribe", s(&input), "--resume", "-o"])
        .arg(&one_file)
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--output-dir DIR to resume"),
        "{}",
        stderr(&output)
    );
    assert!(!one_file.exists());
}

#[test]
fn features_and_manifests_shard_the_same_way() {
    let temp = tempfile::tempdir().expect("temp dir");
    let input = temp.path().join("in");
    let files = corpus(&input, 9);
    // A manifest in the training layout (audio<TAB>phones, header, comment) lists the same files.
    let manifest = temp.path().join("list.tsv");
    let mut text = String::from("audio\tphones\n# a comment\n");
    for file in &files {
        text.push_str(&format!(
            "in/{}\ts eh v ah n\n",
            file.file_name().expect("name").to_string_lossy()
        ));
    }
    std::fs::write(&manifest, text).expect("manifest");

    let mut seen = BTreeMap::new();
    for k in 0..2 {
        let dir = temp.path().join(format!("feats{k}"));
        let output = phonrec(&[
            "features",
            "--manifest",
            s(&manifest),
            "--output-dir",
            s(&dir),
            "--shard",
            &format!("{k}/2"),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        for (name, bytes) in contents(&dir) {
            assert!(name.ends_with(".npy"), "{name}");
            assert!(seen.insert(name, bytes).is_none());
        }
    }
    assert_eq!(seen.len(), 9);
    // The manifest named another way (relative, from its own folder), or the folder walked by
    // another path: the same part for each shard (it used to follow the spelling).
    let shard_files = |args: &[&str], dir: &Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_phonrec"))
            .args(["features", "--output-dir"])
            .arg(dir)
            .args(args)
            .args(["--shard", "0/2"])
            .current_dir(temp.path())
            .output()
            .expect("the binary runs");
        assert!(output.status.success(), "{}", stderr(&output));
        contents(dir).into_keys().collect::<Vec<_>>()
    };
    let absolute = shard_files(&["--manifest", s(&manifest)], &temp.path().join("a"));
    let relative = shard_files(&["--manifest", "./list.tsv"], &temp.path().join("b"));
    assert_eq!(absolute, relative);
    let walked = shard_files(&[s(&input)], &temp.path().join("c"));
    let walked_here = shard_files(&["./in"], &temp.path().join("d"));
    assert_eq!(walked, walked_here);
    // Each equals the single-file command's output.
    let one = temp.path().join("one.npy");
    let output = phonrec(&["features", s(&files[4]), "-o", s(&one)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        seen["utt004.npy"],
        std::fs::read(&one).expect("single-file features")
    );

    // Several inputs to one stream: only as a Kaldi archive.
    let many = phonrec(&["features", s(&files[0]), s(&files[1])]);
    assert!(!many.status.success());
    assert!(stderr(&many).contains("--output-dir"), "{}", stderr(&many));
    let ark = phonrec(&["features", s(&input), "--format", "ark", "-o", "-"]);
    assert!(ark.status.success(), "{}", stderr(&ark));
    let keys = String::from_utf8_lossy(&ark.stdout)
        .lines()
        .filter(|line| line.ends_with('['))
        .count();
    assert_eq!(keys, 9);

    // Bad shard specifications and --resume without a folder are refused with the reason.
    let bad = phonrec(&["transcribe", s(&input), "--shard", "2/2"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("0 ≤ K < N"), "{}", stderr(&bad));
    let bad = phonrec(&["transcribe", s(&input), "--resume"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("--output-dir"), "{}", stderr(&bad));
}
