//! Shared test fixtures: a toy "language" whose phones are tones, so a tiny network can learn it in
//! seconds. Each phone is a 90 ms tone at its own frequency, phones are separated by 30 ms of quiet.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run the built `phonrec` binary from the crate root.
pub fn phonrec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phonrec"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

/// A run's standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A run's standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The toy phones and their tone frequencies in Hz. `s` lies above 4 kHz, where a fricative's energy
/// is: with every tone below 4 kHz and only white noise above, the files would measure as 8 kHz audio
/// stored at 16 kHz and be trained on and recognised at 8 kHz, while `Model::log_probs_for_wave`
/// (no input preparation) hears them at 16 kHz.
pub const TONE_PHONES: [(&str, f32); 4] =
    [("aa", 300.0), ("iy", 800.0), ("s", 5000.0), ("m", 1400.0)];

/// Int16 samples at 16 kHz of a phone sequence (indices into `TONE_PHONES`).
pub fn tone_utterance(sequence: &[usize], seed: u64) -> Vec<i16> {
    let rate = 16_000.0;
    let mut samples = Vec::new();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 60.0
    };
    let silence = |samples: &mut Vec<i16>, n: usize, noise: &mut dyn FnMut() -> f32| {
        for _ in 0..n {
            samples.push(noise() as i16);
        }
    };
    silence(&mut samples, 1600, &mut noise);
    for &p in sequence {
        let freq = TONE_PHONES[p].1;
        for i in 0..1440 {
            let t = i as f32 / rate;
            let envelope = (i as f32 / 160.0).min(1.0) * ((1440 - i) as f32 / 160.0).min(1.0);
            let v = (2.0 * std::f32::consts::PI * freq * t).sin() * 8000.0 * envelope + noise();
            samples.push(v as i16);
        }
        silence(&mut samples, 480, &mut noise);
    }
    silence(&mut samples, 1600, &mut noise);
    samples
}

/// Write a 16 kHz mono 16-bit WAV.
pub fn write_wav(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create wav");
    for &s in samples {
        writer.write_sample(s).expect("write sample");
    }
    writer.finalize().expect("finalize wav");
}

/// Write `count` toy utterances and a TSV manifest listing them; returns the manifest's path.
pub fn tone_corpus(dir: &Path, name: &str, count: usize, seed: u64) -> PathBuf {
    std::fs::create_dir_all(dir.join(name)).expect("corpus dir");
    let mut manifest = String::new();
    let mut state = seed;
    for u in 0..count {
        let length = 2 + u % 3;
        let mut sequence = Vec::with_capacity(length);
        for _ in 0..length {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            sequence.push((state >> 40) as usize % TONE_PHONES.len());
        }
        let file = format!("{name}/utt{u:03}.wav");
        write_wav(
            &dir.join(&file),
            &tone_utterance(&sequence, seed + u as u64),
        );
        let phones: Vec<&str> = sequence.iter().map(|&p| TONE_PHONES[p].0).collect();
        manifest.push_str(&format!("{file}\t{}\n", phones.join(" ")));
    }
    let path = dir.join(format!("{name}.tsv"));
    std::fs::write(&path, manifest).expect("manifest");
    path
}

/// Rewrite the metadata entry `key` (a JSON document) of a safetensors file (a model or a
/// checkpoint) with `edit`: 8-byte little-endian header length, then the JSON header; the tensors'
/// offsets are relative to the header's end, so the header may change length.
pub fn edit_model_metadata(
    model: &[u8],
    key: &str,
    edit: impl Fn(&mut serde_json::Value),
) -> Vec<u8> {
    let header_len = u64::from_le_bytes(model[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&model[8..8 + header_len]).unwrap();
    let entry = header["__metadata__"][key].as_str().unwrap().to_string();
    let mut value: serde_json::Value = serde_json::from_str(&entry).unwrap();
    edit(&mut value);
    header["__metadata__"][key] = serde_json::Value::String(value.to_string());
    let mut new_header = serde_json::to_vec(&header).unwrap();
    while !new_header.len().is_multiple_of(8) {
        new_header.push(b' ');
    }
    let mut out = (new_header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&new_header);
    out.extend_from_slice(&model[8 + header_len..]);
    out
}
