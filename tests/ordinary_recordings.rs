//! Ordinary recordings with the built-in model and its default decoding, through the real binary: the
//! examples in audio/ padded with silence, or with silence and a faint noise floor, decode as the clips
//! alone (within two edits per file and 4 % over all), with times in the padded file's timeline, and
//! joined into one file by long pauses decode as the clips alone; files
//! without speech (silence, coloured noise, mains hum) give at most one phone; recordings made with the
//! input gain far too low or far too high (clipped) keep their phones; recordings made in a
//! reverberant room are dereverberated (and said to be) and come out closer to the dry clips' phones
//! than without; a far talker between a near one's sentences is raised to the near one's level and
//! heard; a DC offset changes nothing the network hears; 8 kHz recordings stored at 16 kHz are heard
//! as the 8 kHz recordings they are.

use std::path::{Path, PathBuf};
use std::process::Command;

const EXAMPLES: [&str; 3] = [
    "audio/slt_dark_suit_16k.wav",
    "audio/espeak_quick_fox_22k.wav",
    "audio/fsdd_7_jackson_0_8k.wav",
];
/// Seconds of padding before and after each example.
const PAD_BEFORE_S: f32 = 1.5;
const PAD_AFTER_S: f32 = 3.0;

fn built_in_model_present() -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/default.safetensors")
        .is_file()
}

/// A deterministic noise source (xorshift) so the test files are the same on every run.
struct Noise(u64);

impl Noise {
    fn white(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
    }

    /// `len` samples of white (0), pink (1) or brown (2) noise at `dbfs` RMS.
    fn coloured(&mut self, len: usize, colour: usize, dbfs: f32) -> Vec<f32> {
        let (mut b0, mut b1, mut b2, mut brown) = (0f32, 0f32, 0f32, 0f32);
        let raw: Vec<f32> = (0..len)
            .map(|_| {
                let w = self.white();
                match colour {
                    0 => w,
                    1 => {
                        b0 = 0.99765 * b0 + w * 0.099_046;
                        b1 = 0.96300 * b1 + w * 0.296_516_4;
                        b2 = 0.57000 * b2 + w * 1.052_691_3;
                        b0 + b1 + b2 + w * 0.1848
                    }
                    _ => {
                        brown = 0.995 * brown + w * 0.1;
                        brown
                    }
                }
            })
            .collect();
        scale_to_dbfs(raw, dbfs)
    }
}

fn scale_to_dbfs(samples: Vec<f32>, dbfs: f32) -> Vec<f32> {
    let power = samples.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / samples.len() as f64;
    let target = 32768.0 * 10f64.powf(f64::from(dbfs) / 20.0);
    let gain = (target / power.sqrt()) as f32;
    samples.into_iter().map(|x| x * gain).collect()
}

fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    let mut reader = hound::WavReader::open(path).expect("example WAV");
    let spec = reader.spec();
    assert_eq!(spec.channels, 1, "{}", path.display());
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Int => {
            let shift = 32 - spec.bits_per_sample as i32;
            reader
                .samples::<i32>()
                .map(|s| ((s.expect("sample") << shift) >> 16) as f32)
                .collect()
        }
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .map(|s| s.expect("sample") * 32768.0)
            .collect(),
    };
    (samples, spec.sample_rate)
}

fn write_wav(path: &Path, samples: &[f32], rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create WAV");
    for &s in samples {
        writer
            .write_sample(s.round().clamp(-32768.0, 32767.0) as i16)
            .expect("write sample");
    }
    writer.finalize().expect("finish WAV");
}

/// `(file, phones, first phone's start)` of one transcribed file.
type Record = (String, Vec<String>, Option<f64>);

/// A [`Record`] of each input, via `phonrec transcribe --format json`.
fn transcribe(files: &[PathBuf]) -> Vec<Record> {
    let output = Command::new(env!("CARGO_BIN_EXE_phonrec"))
        .arg("transcribe")
        .args(["--format", "json"])
        .args(files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut records: Vec<Record> = text
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let phones = phones(&record);
            let first_start = record["spans"][0]["start"].as_f64();
            (
                record["file"].as_str().expect("file").to_string(),
                phones,
                first_start,
            )
        })
        .collect();
    // Output follows the input order; sort by input position to be sure.
    records.sort_by_key(|(file, _, _)| {
        files
            .iter()
            .position(|f| f.display().to_string() == *file)
            .unwrap_or(usize::MAX)
    });
    assert_eq!(records.len(), files.len(), "{text}");
    records
}

/// Each example beside a variant of it (`make` turns the example's samples at their rate into the
/// variant's), transcribed in one call: `(clip, variant)` records in the order of [`EXAMPLES`].
fn examples_and_variants(
    suffix: &str,
    make: impl Fn(Vec<f32>, u32) -> Vec<f32>,
) -> Vec<(Record, Record)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    for example in EXAMPLES {
        let (samples, rate) = read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join(example));
        let stem = Path::new(example).file_stem().unwrap().to_string_lossy();
        let variant_path = dir.path().join(format!("{stem}_{suffix}.wav"));
        write_wav(&variant_path, &make(samples, rate), rate);
        files.push(PathBuf::from(example));
        files.push(variant_path);
    }
    let mut records = transcribe(&files).into_iter();
    let mut pairs = Vec::new();
    while let (Some(clip), Some(variant)) = (records.next(), records.next()) {
        pairs.push((clip, variant));
    }
    pairs
}

fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let substitution = previous + usize::from(x != y);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// Each variant's phones are within two edits of its clip's.
fn assert_within_two_edits(pairs: &[(Record, Record)]) {
    for ((clip, clip_phones, _), (file, phones, _)) in pairs {
        let distance = edit_distance(clip_phones, phones);
        assert!(
            distance <= 2,
            "{file}: {phones:?} is {distance} edits from {clip}'s {clip_phones:?}"
        );
    }
}

#[test]
fn padding_and_a_noise_floor_do_not_change_the_phones() {
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut noise = Noise(0x5EED);
    let mut files = Vec::new();
    for example in EXAMPLES {
        let (samples, rate) = read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join(example));
        let before = (PAD_BEFORE_S * rate as f32) as usize;
        let after = (PAD_AFTER_S * rate as f32) as usize;
        let mut padded = vec![0.0f32; before];
        padded.extend_from_slice(&samples);
        padded.resize(padded.len() + after, 0.0);
        let stem = Path::new(example)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let padded_path = dir.path().join(format!("{stem}_padded.wav"));
        write_wav(&padded_path, &padded, rate);
        // A pink floor at -55 dBFS under everything, the speech included.
        let floor = noise.coloured(padded.len(), 1, -55.0);
        let floored: Vec<f32> = padded.iter().zip(&floor).map(|(s, n)| s + n).collect();
        let floored_path = dir.path().join(format!("{stem}_floor.wav"));
        write_wav(&floored_path, &floored, rate);
        files.push(PathBuf::from(example));
        files.push(padded_path);
        files.push(floored_path);
    }
    let results = transcribe(&files);
    let (mut total_edits, mut total_phones) = (0, 0);
    for triple in results.chunks(3) {
        let (clip, clip_phones, _) = &triple[0];
        assert!(clip_phones.len() >= 3, "{clip}: {clip_phones:?}");
        for (file, phones, first_start) in &triple[1..] {
            let distance = edit_distance(clip_phones, phones);
            // Measured with the shipped model: 0, 1 and 2 edits (the dark-suit clip padded says
            // "s y uw d" for "s uw t"); the issue's goal is at most one per file.
            assert!(
                distance <= 2,
                "{file}: {phones:?} is {distance} edits from the clip's {clip_phones:?}"
            );
            total_edits += distance;
            total_phones += clip_phones.len();
            // Times are in the padded file's timeline: nothing before the speech starts.
            let start = first_start.expect("a first phone");
            assert!(
                start >= f64::from(PAD_BEFORE_S) - 0.15,
                "{file}: first phone at {start} s, inside the leading silence"
            );
        }
    }
    // Over all six padded files, at most 4 % of the clips' phones differ (2 points of PER per
    // condition is the target for evaluation sets).
    assert!(
        total_edits * 100 <= 4 * total_phones,
        "{total_edits} edits over {total_phones} phones"
    );
}

#[test]
fn silence_noise_and_hum_give_no_phones() {
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let rate = 16_000u32;
    let len = 10 * rate as usize;
    let mut noise = Noise(0xC0FFEE);
    let hum: Vec<f32> = (0..len)
        .map(|n| {
            let t = n as f32 / rate as f32;
            (1..=5)
                .map(|k| (std::f32::consts::TAU * 60.0 * k as f32 * t).sin() / k as f32)
                .sum()
        })
        .collect();
    let signals: Vec<(&str, Vec<f32>)> = vec![
        ("silence", vec![0.0; len]),
        ("white", noise.coloured(len, 0, -30.0)),
        ("pink", noise.coloured(len, 1, -30.0)),
        ("brown", noise.coloured(len, 2, -30.0)),
        ("hum60", scale_to_dbfs(hum, -25.0)),
    ];
    let mut files = Vec::new();
    for (name, samples) in &signals {
        let path = dir.path().join(format!("{name}.wav"));
        write_wav(&path, samples, rate);
        files.push(path);
    }
    for (file, phones, _) in transcribe(&files) {
        assert!(phones.len() <= 1, "{file}: {phones:?}");
    }
}

#[test]
fn clips_with_an_audible_floor_padded_with_long_digital_silence_keep_their_phones() {
    // FSDD's clips carry their recording's floor (about -40 dBFS) right up to the cut; seconds of
    // exact zeros around them made the floor start and stop like a fricative (a trailing "z"), and
    // normalisation and recurrence over mostly non-speech garbled the word. The digital silence is
    // filled with the clip's own floor and the short speech region is recognised on its own, so
    // the padded clip reads exactly as the clip.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let pairs = examples_and_variants("padded3", |samples, rate| {
        let pad = 3 * rate as usize;
        let mut padded = vec![0.0f32; pad];
        padded.extend_from_slice(&samples);
        padded.resize(padded.len() + pad, 0.0);
        padded
    });
    for ((clip, clip_phones, _), (file, phones, first_start)) in &pairs {
        assert_eq!(phones, clip_phones, "{file} against {clip}");
        assert!(first_start.expect("a first phone") >= 2.85, "{file}");
    }
}

/// A noise gate over `x` (int16 scale) at `rate`: open while the 10 ms RMS envelope is 12 dB
/// above `floor_dbfs`, from 5 ms before to 150 ms after; closed, 30 dB down; gain changes
/// smoothed over 5 ms (recipes/robust's `gated` condition).
fn noise_gate(x: &[f32], rate: u32, floor_dbfs: f32) -> Vec<f32> {
    let ms = |v: f32| ((v / 1000.0) * rate as f32) as usize;
    let (window, hold, ahead, ramp) = (ms(10.0).max(1), ms(150.0), ms(5.0), ms(5.0).max(1));
    let threshold = 32768.0 * 10f32.powf((floor_dbfs + 12.0) / 20.0);
    let mut energy = 0.0f64;
    let above: Vec<bool> = (0..x.len())
        .map(|i| {
            energy += f64::from(x[i]).powi(2);
            if i >= window {
                energy -= f64::from(x[i - window]).powi(2);
            }
            (energy.max(0.0) / window as f64).sqrt() as f32 > threshold
        })
        .collect();
    let mut open = vec![false; x.len()];
    for (i, _) in above.iter().enumerate().filter(|(_, &a)| a) {
        let (from, to) = (i.saturating_sub(ahead), (i + hold + 1).min(x.len()));
        open[from..to].iter_mut().for_each(|o| *o = true);
    }
    let closed = 10f32.powf(-30.0 / 20.0);
    let gain: Vec<f32> = open.iter().map(|&o| if o { 1.0 } else { closed }).collect();
    (0..x.len())
        .map(|i| {
            let (a, b) = (i.saturating_sub(ramp / 2), (i + ramp / 2 + 1).min(x.len()));
            x[i] * gain[a..b].iter().sum::<f32>() / (b - a) as f32
        })
        .collect()
}

#[test]
fn noise_gated_recordings_keep_their_phones() {
    // A -45 dBFS floor under each example, then a gate that drops it 30 dB between words and
    // opens abruptly at each: the floor steps at every word, as in VoIP and podcast recordings.
    // Where the gaps look gated, they are raised back to the floor under the speech before the
    // features (fill_quiet_gaps); either way the phones must stay the clip's.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let pairs = examples_and_variants("gated", |samples, rate| {
        let mut noise = Noise(0x6A7E ^ samples.len() as u64);
        let mut padded = vec![0.0f32; rate as usize];
        padded.extend_from_slice(&samples);
        padded.resize(padded.len() + rate as usize, 0.0);
        let floor = noise.coloured(padded.len(), 1, -45.0);
        let floored: Vec<f32> = padded.iter().zip(&floor).map(|(s, n)| s + n).collect();
        noise_gate(&floored, rate, -45.0)
    });
    // Measured: every example exactly as the clip. (With recipes/robust's gate and floor noise
    // instead, the FSDD digit gained a trailing `z` before the fill, not after it.)
    for ((clip, clip_phones, _), (file, phones, _)) in &pairs {
        assert_eq!(phones, clip_phones, "{file} against {clip}");
    }
}

/// `samples` with each 20 ms packet set to digital zeros with probability `share` (seeded), as a
/// network call recorded without loss concealment has them.
fn packets_lost(samples: Vec<f32>, rate: u32, share: f32, seed: u64) -> Vec<f32> {
    let packet = rate as usize / 50;
    let mut noise = Noise(seed);
    let mut out = samples;
    for chunk in out.chunks_mut(packet) {
        if (noise.white() + 1.0) / 2.0 < share {
            chunk.fill(0.0);
        }
    }
    out
}

#[test]
fn recordings_with_lost_packets_keep_their_phones() {
    // 15 % of the 20 ms packets lost, four loss patterns. Measured with the shipped model, edits
    // from each clip's phones (dark suit, quick fox, FSDD seven) for patterns 1, 2, 3 and 5:
    // concealed 0 1 0, 0 1 0, 1 2 0, 0 1 0 (6 in all); with `--keep-dropouts` 6 2 0, 4 2 0, 7 3 0,
    // 2 1 0 (27): a gap of zeros in a vowel is heard as a pause, and the phones around it change.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let mut total = 0;
    for seed in [1u64, 2, 3, 5] {
        let pairs = examples_and_variants(&format!("lost{seed}"), |samples, rate| {
            let lossy = packets_lost(samples, rate, 0.15, seed);
            let zeroed = lossy.iter().filter(|&&x| x == 0.0).count();
            assert!(zeroed > lossy.len() / 20, "packets must be lost: {zeroed}");
            lossy
        });
        for ((clip, clip_phones, _), (file, phones, _)) in &pairs {
            let distance = edit_distance(clip_phones, phones);
            assert!(
                distance <= 3,
                "{file}: {phones:?} is {distance} edits from {clip}'s {clip_phones:?}"
            );
            total += distance;
        }
    }
    assert!(total <= 10, "{total} edits over the twelve lossy files");
}

#[test]
fn recordings_with_the_input_gain_far_too_low_keep_their_phones() {
    // The examples at -70 dBFS RMS (peaks near -55 dBFS, written as 16-bit: a recorder whose input
    // gain was set far too low). The network hears them as well as at full level; an absolute
    // energy floor of -65 dBFS used to call most of their frames silence ("sh iy hh ae v" for the
    // dark-suit clip).
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let pairs = examples_and_variants("quiet", |samples, _| scale_to_dbfs(samples, -70.0));
    assert_within_two_edits(&pairs);
}

#[test]
fn recordings_with_the_input_gain_far_too_high_keep_their_phones() {
    // The examples peak-normalised and amplified by 9 dB, written as 16-bit: their peaks are cut
    // flat at full scale (10 % of the dark-suit clip's samples), as by a recorder whose input gain
    // was set far too high. Without the repair of clipped peaks (`--keep-clipping`) the dark-suit
    // clip came out "sh ow ah v y aa r d aa k s n ow t ih ng ...", 10 edits from the clip's phones.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let amplified = |samples: Vec<f32>, _| {
        let peak = samples.iter().fold(0f32, |m, &x| m.max(x.abs()));
        let gain = 32767.0 / peak * 10f32.powf(9.0 / 20.0);
        samples
            .into_iter()
            .map(|x| (x * gain).clamp(-32768.0, 32767.0))
            .collect::<Vec<f32>>()
    };
    let (slt, _) = read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLES[0]));
    let cut = amplified(slt, 0);
    let share = cut.iter().filter(|x| x.abs() >= 32767.0).count() as f64 / cut.len() as f64;
    assert!(share > 0.05, "the test input must clip: {share}");
    let pairs = examples_and_variants("clipped", amplified);
    assert_within_two_edits(&pairs);
}

/// `phonrec transcribe --format json --no-lm EXTRA FILES` from the repository: its JSON records and
/// its stderr.
fn transcribe_json_no_lm(extra: &[&str], files: &[&Path]) -> (Vec<serde_json::Value>, String) {
    transcribe_json(&[&["--no-lm"], extra].concat(), files)
}

/// `phonrec transcribe --format json EXTRA FILES`: the records and stderr.
/// The phones of a `transcribe --format json` record.
fn phones(record: &serde_json::Value) -> Vec<String> {
    let text = record["phones"].as_str().expect("phones");
    text.split_whitespace().map(str::to_string).collect()
}

fn transcribe_json(extra: &[&str], files: &[&Path]) -> (Vec<serde_json::Value>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_phonrec"))
        .args(["transcribe", "--format", "json"])
        .args(extra)
        .args(files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(records.len(), files.len(), "{text}");
    (
        records,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn clipped_recordings_are_reported() {
    // JSON gives the share of samples restored; a note on stderr tells the user the gain was too
    // high. A recording that is not clipped has neither.
    let dir = tempfile::tempdir().expect("temp dir");
    let (samples, rate) = read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLES[0]));
    let clipped: Vec<f32> = samples.iter().map(|&x| x * 8.0).collect();
    let clipped_path = dir.path().join("clipped.wav");
    write_wav(&clipped_path, &clipped, rate);
    let (records, stderr) = transcribe_json_no_lm(&[], &[Path::new(EXAMPLES[0]), &clipped_path]);
    assert!(records[0].get("clipped").is_none(), "{records:?}");
    let share = records[1]["clipped"].as_f64().expect("a clipped share");
    let expected =
        clipped.iter().filter(|x| x.abs() >= 32_767.0).count() as f64 / clipped.len() as f64;
    assert!(
        (share - expected).abs() < 0.02,
        "{share} against {expected}"
    );
    assert!(
        stderr.contains("1 of 2 files had their peaks cut flat"),
        "{stderr}"
    );
}

#[test]
fn concealed_dropouts_are_reported() {
    // JSON gives the number of dropouts concealed and their seconds, and a note on stderr names
    // the option that keeps them; the clean clip and `--keep-dropouts` have neither.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (samples, rate) = read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLES[0]));
    let lossy = packets_lost(samples, rate, 0.15, 1);
    let lossy_path = dir.path().join("lossy.wav");
    write_wav(&lossy_path, &lossy, rate);
    let zeroed_s = lossy.iter().filter(|&&x| x == 0.0).count() as f64 / f64::from(rate);
    let files = [Path::new(EXAMPLES[0]), &lossy_path];
    let (records, stderr) = transcribe_json_no_lm(&[], &files);
    assert!(
        records[0].get("concealed_dropouts").is_none(),
        "{records:?}"
    );
    let dropouts = records[1]["concealed_dropouts"].as_u64().expect("a count");
    let seconds = records[1]["concealed_s"].as_f64().expect("seconds");
    assert!(dropouts >= 3, "{records:?}");
    // Each dropout is at least one 20 ms packet; only those cut into voiced speech are filled.
    assert!(
        seconds >= 0.02 * dropouts as f64 - 0.001 && seconds <= zeroed_s + 0.001,
        "{seconds} s in {dropouts} dropouts of {zeroed_s} s zeroed"
    );
    assert!(
        stderr.contains("1 of 2 files had short runs of digital silence")
            && stderr.contains("--keep-dropouts"),
        "{stderr}"
    );
    let (kept, stderr) = transcribe_json_no_lm(&["--keep-dropouts"], &files);
    assert!(
        kept.iter().all(|r| r.get("concealed_dropouts").is_none()),
        "{kept:?}"
    );
    assert!(!stderr.contains("runs of digital silence"), "{stderr}");
}

#[test]
fn mp3_at_a_low_bit_rate_has_its_spectral_holes_filled_and_comes_closer_to_the_uncoded_phones() {
    // `tests/data/slt_dark_suit_16kbps.mp3` is `audio/slt_dark_suit_16k.wav` through LAME at 16
    // kbit/s: bands of its spectrum dropped granule by granule. Default decoding; the uncoded
    // example and the FSDD example as MP3 at telephone quality (holes too few to count) are not
    // filled.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let files = [
        Path::new(EXAMPLES[0]),
        Path::new("tests/data/slt_dark_suit_16kbps.mp3"),
        Path::new("tests/data/fsdd_7_jackson_0_8k.mp3"),
    ];
    // The fill alone, without the added noise floor (`--floor-below 0`): the floor moves this
    // synthetic voice's MP3 by a few phones either way (the MP3 sets of models/README.md gain
    // from it), which would hide what the fill does.
    let (filled, stderr) = transcribe_json(&["--floor-below", "0"], &files);
    let filled_flags: Vec<bool> = filled
        .iter()
        .map(|r| r.get("spectral_holes_filled").is_some_and(|v| v == true))
        .collect();
    assert_eq!(filled_flags, [false, true, false], "{filled:?}");
    assert!(
        stderr.contains("1 of 3 files sounded coded at a low bit rate")
            && stderr.contains("--keep-spectral-holes"),
        "{stderr}"
    );
    let (kept, stderr) = transcribe_json(&["--keep-spectral-holes", "--floor-below", "0"], &files);
    assert!(
        kept.iter()
            .all(|r| r.get("spectral_holes_filled").is_none()),
        "{kept:?}"
    );
    assert!(!stderr.contains("coded at a low bit rate"), "{stderr}");
    let uncoded = phones(&filled[0]);
    let (with_fill, without) = (phones(&filled[1]), phones(&kept[1]));
    assert!(
        edit_distance(&with_fill, &uncoded) < edit_distance(&without, &uncoded),
        "filled {with_fill:?}, kept {without:?}, uncoded {uncoded:?}"
    );
    // Audio that was not filled decodes exactly as with the fill switched off.
    assert_eq!(filled[2]["phones"], kept[2]["phones"]);
    assert_eq!(filled[0]["spans"], kept[0]["spans"]);
}

/// `phonrec transcribe --format json --dereverb MODE FILES`: each file's phones and whether it
/// was dereverberated.
fn transcribe_dereverb(mode: &str, files: &[PathBuf]) -> Vec<(Vec<String>, bool)> {
    let output = Command::new(env!("CARGO_BIN_EXE_phonrec"))
        .args(["transcribe", "--format", "json", "--dereverb", mode])
        .args(files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let phones = phones(&record);
            let dereverberated = record.get("dereverberated").and_then(|v| v.as_bool());
            (phones, dereverberated == Some(true))
        })
        .collect()
}

#[test]
fn recordings_in_a_reverberant_room_are_dereverberated_and_come_closer_to_the_dry_phones() {
    // Five sentences (the two longer examples, and three of the held-out voice's in tests/data; the
    // 0.6 s digit is too short to be measured) through synthetic rooms: the direct sound, then from
    // 5 ms a decaying noise tail with RT60 0.4, 0.6 or 0.8 s. Counted over all fifteen, as one
    // clip in one room can go either way by chance. Measured with default-v15: 40 / 50 / 64 edits
    // from the dry phones dereverberated against 43 / 53 / 81 not (154 against 177), two of the
    // fifteen worse dereverberated. (Two clips in the 0.6 s room alone tied with v15, 19 and 19.)
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let sentences: Vec<(&str, phonrec::audio::Waveform)> = [
        EXAMPLES[0],
        EXAMPLES[1],
        "tests/data/flite_rms_000005.flac",
        "tests/data/flite_rms_000014.flac",
        "tests/data/flite_rms_000028.flac",
    ]
    .into_iter()
    .map(|sentence| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(sentence);
        (
            sentence,
            phonrec::audio::read_audio(&path).expect("example audio"),
        )
    })
    .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut noise = Noise(0x005e_ed0f_0ec0);
    let mut files = Vec::new();
    for rt60_s in [0.4f32, 0.6, 0.8] {
        for (sentence, dry) in &sentences {
            let (samples, rate) = (&dry.samples, dry.sample_rate_hz);
            let rt60 = (rt60_s * rate as f32) as usize;
            let onset = (0.005 * rate as f32) as usize;
            let response: Vec<f32> = (0..rt60)
                .map(|i| match i {
                    0 => 1.0,
                    i if i < onset => 0.0,
                    i => 0.3 * (-6.9 * i as f32 / rt60 as f32).exp() * noise.white(),
                })
                .collect();
            let mut wet = vec![0.0f32; samples.len() + rt60];
            for (i, &x) in samples.iter().enumerate() {
                for (j, &h) in response.iter().enumerate() {
                    wet[i + j] += x * h;
                }
            }
            let peak = |v: &[f32]| v.iter().fold(0f32, |m, &x| m.max(x.abs()));
            let gain = peak(samples) / peak(&wet);
            let wet: Vec<f32> = wet.iter().map(|&x| x * gain).collect();
            let stem = Path::new(sentence).file_stem().unwrap().to_string_lossy();
            let path = dir.path().join(format!("{stem}_room{rt60_s}.wav"));
            write_wav(&path, &wet, rate);
            files.push(PathBuf::from(sentence));
            files.push(path);
        }
    }
    let auto = transcribe_dereverb("auto", &files);
    let off = transcribe_dereverb("off", &files);
    let (mut edits_auto, mut edits_off) = (0, 0);
    for pair in 0..files.len() / 2 {
        let (dry, dry_dereverberated) = &auto[2 * pair];
        let (wet, wet_dereverberated) = &auto[2 * pair + 1];
        assert!(
            !dry_dereverberated,
            "{:?}: a dry clip is left alone",
            files[2 * pair]
        );
        assert!(
            wet_dereverberated,
            "{:?}: measured reverberant",
            files[2 * pair + 1]
        );
        assert_eq!(&off[2 * pair].0, dry, "a dry clip is the same either way");
        assert!(!off[2 * pair + 1].1, "--dereverb off");
        edits_auto += edit_distance(dry, wet);
        edits_off += edit_distance(dry, &off[2 * pair + 1].0);
    }
    assert!(
        edits_auto < edits_off,
        "dereverberated {edits_auto} edits from the dry clips, not dereverberated {edits_off}"
    );
}

#[test]
fn an_echo_is_cancelled_and_the_phones_come_back() {
    // The recorded sentence with an echo 10 dB down, 150 ms late, as a speakerphone returns it,
    // and 8 dB down, 250 ms late. (Not the espeak-ng example: the synthesiser repeats stretches of
    // its waveform sample for sample, 464 ms apart as strong as such an echo, so no single echo
    // stands out; nor the digit, too short to measure.) Measured with the shipped model: with the
    // echo cancelled both give the dry phones (0 edits), with `--dereverb off` 18 edits in all.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let example = EXAMPLES[0];
    let (samples, rate) = read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join(example));
    let mut files = vec![PathBuf::from(example)];
    for (delay_s, gain) in [(0.15, 0.316), (0.25, 0.4)] {
        let delay = (delay_s * rate as f32) as usize;
        let mut echoed = samples.clone();
        echoed.resize(samples.len() + delay, 0.0);
        for (i, &x) in samples.iter().enumerate() {
            echoed[i + delay] += gain * x;
        }
        let peak = |v: &[f32]| v.iter().fold(0f32, |m, &x| m.max(x.abs()));
        let scale = peak(&samples) / peak(&echoed);
        let echoed: Vec<f32> = echoed.iter().map(|&x| x * scale).collect();
        let path = dir.path().join(format!("echo_{delay}.wav"));
        write_wav(&path, &echoed, rate);
        files.push(path);
    }
    let auto = transcribe_dereverb("auto", &files);
    let off = transcribe_dereverb("off", &files);
    let (dry, dry_repaired) = &auto[0];
    assert!(!dry_repaired, "the dry clip is left alone");
    let (mut edits_auto, mut edits_off) = (0, 0);
    for (index, (echoed, repaired)) in auto.iter().enumerate().skip(1) {
        assert!(repaired, "{:?}: the echo is found", files[index]);
        let edits = edit_distance(dry, echoed);
        assert!(
            edits <= 2,
            "{:?}: {echoed:?} is {edits} edits from {dry:?}",
            files[index]
        );
        edits_auto += edits;
        edits_off += edit_distance(dry, &off[index].0);
    }
    assert!(
        edits_auto + 4 <= edits_off,
        "echo cancelled {edits_auto} edits from the dry clip, not cancelled {edits_off}"
    );
}

/// `clip` with key clicks added: presses at `per_s` a second (seeded), each a 4 ms burst of
/// decaying noise `below_db` under the clip's peak, and its release 60-150 ms later.
fn with_key_clicks(clip: &[f32], rate: u32, per_s: f32, below_db: f32, seed: u64) -> Vec<f32> {
    let mut noise = Noise(seed);
    let peak = clip.iter().fold(0f32, |m, &x| m.max(x.abs()));
    let level = peak * 10f32.powf(-below_db / 20.0);
    let burst = (0.004 * rate as f32) as usize;
    let mut out = clip.to_vec();
    let mut t = 0.05f32;
    loop {
        t += (0.5 + noise.white().abs()) / per_s;
        let press = (t * rate as f32) as usize;
        let release = press + ((0.06 + 0.09 * noise.white().abs()) * rate as f32) as usize;
        if release + burst >= out.len() {
            break;
        }
        for start in [press, release] {
            for i in 0..burst {
                let decay = (-5.0 * i as f32 / burst as f32).exp();
                out[start + i] += level * decay * noise.white();
            }
        }
    }
    out
}

#[test]
fn key_clicks_are_interpolated_and_the_phones_come_back() {
    // The two sentences with key clicks (3 dB and 8 dB under the peak, 4 presses a second) decode
    // within three edits of the clean clips, and closer to them than with `--keep-clicks`; JSON
    // counts the clicks removed, and the clean clips have none. Measured with the shipped model:
    // 7 edits from the clean clips in all with the clicks removed, 19 with them kept, at beam 8;
    // at beam 16 (the default since) 8 and 18, one of the four at 3 edits (the recipe's `clicks`
    // sets all gained 0.1-0.7 points at 16).
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    for (index, example) in EXAMPLES[..2].iter().enumerate() {
        let (samples, rate) = read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join(example));
        files.push(PathBuf::from(example));
        for (below_db, seed) in [(3.0, 11u64), (8.0, 12)] {
            let path = dir.path().join(format!("clicks_{index}_{below_db}.wav"));
            let clicked = with_key_clicks(&samples, rate, 4.0, below_db, seed + index as u64);
            write_wav(&path, &clicked, rate);
            files.push(path);
        }
    }
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    // The interpolation alone, without the added noise floor (`--floor-below 0`), which moves one
    // of these synthetic sentences by an edit on its own.
    let (removed, _) = transcribe_json(&["--floor-below", "0"], &paths);
    let (kept, _) = transcribe_json(&["--keep-clicks", "--floor-below", "0"], &paths);
    let (mut edits_removed, mut edits_kept) = (0, 0);
    for group in 0..2 {
        let clean = &removed[3 * group];
        assert!(clean.get("clicks_removed").is_none(), "{clean}");
        for variant in 1..3 {
            let index = 3 * group + variant;
            let record = &removed[index];
            let clicks = record["clicks_removed"].as_u64().unwrap_or(0);
            assert!(clicks >= 4, "{:?}: {clicks} clicks removed", files[index]);
            assert!(kept[index].get("clicks_removed").is_none());
            let edits = edit_distance(&phones(clean), &phones(record));
            assert!(
                edits <= 3,
                "{:?}: {:?} is {edits} edits from {:?}",
                files[index],
                phones(record),
                phones(clean)
            );
            edits_removed += edits;
            edits_kept += edit_distance(&phones(clean), &phones(&kept[index]));
        }
    }
    assert!(
        edits_removed + 3 <= edits_kept,
        "clicks removed {edits_removed} edits from the clean clips, kept {edits_kept}"
    );
}

#[test]
fn clips_joined_with_long_pauses_decode_as_the_clips_alone() {
    // The three examples at 16 kHz joined by 4 s pauses in a faint floor: speech covers a third of
    // the file, so each speech region is recognised again on its own (the regions sharing one
    // network batch), as each clip is alone. Padding in the batch must not reach the outputs.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let rate = 16_000u32;
    let pause = vec![0.0f32; 4 * rate as usize];
    let mut joined = pause.clone();
    let mut clips = Vec::new();
    for example in EXAMPLES {
        let (samples, from) = read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join(example));
        let samples = phonrec::audio::resample(&samples, from, rate).expect("resampled");
        let stem = Path::new(example).file_stem().unwrap().to_string_lossy();
        let clip_path = dir.path().join(format!("{stem}_16k.wav"));
        write_wav(&clip_path, &samples, rate);
        clips.push(clip_path);
        joined.extend_from_slice(&samples);
        joined.extend_from_slice(&pause);
    }
    let floor = Noise(0x7A05).coloured(joined.len(), 1, -55.0);
    let joined: Vec<f32> = joined.iter().zip(&floor).map(|(s, n)| s + n).collect();
    let joined_path = dir.path().join("joined.wav");
    write_wav(&joined_path, &joined, rate);
    let mut files = clips.clone();
    files.push(joined_path);
    let records = transcribe(&files);
    let alone: Vec<String> = records[..3]
        .iter()
        .flat_map(|(_, phones, _)| phones.clone())
        .collect();
    let (_, together, first_start) = &records[3];
    let distance = edit_distance(&alone, together);
    // Measured: 0 edits (the same phones as the clips alone); 2 leave room for another CPU's
    // rounding.
    assert!(
        distance <= 2,
        "joined: {together:?} is {distance} edits from the clips' {alone:?}"
    );
    assert!(first_start.expect("a first phone") >= 3.85);
}

#[test]
fn an_all_but_silent_recording_gets_a_note_and_a_noise_recording_does_not() {
    // Empty output from a muted microphone should say why; empty output from a recording of noise
    // is simply right.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let rate = 16_000u32;
    let len = 5 * rate as usize;
    let mut noise = Noise(0xBEEF);
    // Dither of ±1 step, as sox writes silence, and pink noise at −30 dBFS.
    let dither: Vec<f32> = noise
        .coloured(len, 0, -90.0)
        .iter()
        .map(|x| x.signum() * f32::from(x.abs() > 0.5))
        .collect();
    for (name, samples, noted) in [
        ("muted", dither, true),
        ("pink", noise.coloured(len, 1, -30.0), false),
    ] {
        let path = dir.path().join(format!("{name}.wav"));
        write_wav(&path, &samples, rate);
        let output = Command::new(env!("CARGO_BIN_EXE_phonrec"))
            .arg("transcribe")
            .arg(&path)
            .output()
            .expect("the binary runs");
        assert!(output.status.success());
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.trim_end().ends_with(".wav"),
            "{name}: phones where none were said: {stdout}"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.contains("all but silent"), noted, "{name}: {stderr}");
        // JSON output gives the peak the note is decided on: ±1 step is −90.3 dBFS.
        let json = Command::new(env!("CARGO_BIN_EXE_phonrec"))
            .args(["transcribe", "--format", "json"])
            .arg(&path)
            .output()
            .expect("the binary runs");
        let record: serde_json::Value =
            serde_json::from_slice(&json.stdout).expect("one JSON record");
        let peak = record["peak_dbfs"].as_f64().expect("a peak level");
        if noted {
            assert_eq!(peak, -90.3, "{name}");
        } else {
            assert!((-30.0..0.0).contains(&peak), "{name}: peak {peak} dBFS");
        }
    }
}

#[test]
fn recordings_cleaned_by_a_noise_suppressor_come_back_with_the_added_floor() {
    // The two examples with pink noise about 15 dB under them, cleaned with sox's noise reducer
    // (tests/data/README.md): the gate leaves holes and silence the network never heard in
    // training. With the default floor (white noise 40 dB under the speech) they decode within
    // three edits of the clean examples, and closer than without it (`--floor-below 0`).
    // Measured with the shipped model: 2 + 1 edits with the floor, 6 + 2 without.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let clean = [Path::new(EXAMPLES[0]), Path::new(EXAMPLES[1])];
    let denoised = [
        Path::new("tests/data/slt_dark_suit_denoised.flac"),
        Path::new("tests/data/espeak_quick_fox_denoised.flac"),
    ];
    let (reference, _) = transcribe_json(&[], &clean);
    let (with_floor, _) = transcribe_json(&[], &denoised);
    let (without, _) = transcribe_json(&["--floor-below", "0"], &denoised);
    let (mut edits_with, mut edits_without) = (0, 0);
    for i in 0..2 {
        let edits = edit_distance(&phones(&with_floor[i]), &phones(&reference[i]));
        assert!(
            edits <= 3,
            "{:?}: {:?} is {edits} edits from {:?}",
            denoised[i],
            phones(&with_floor[i]),
            phones(&reference[i])
        );
        edits_with += edits;
        edits_without += edit_distance(&phones(&without[i]), &phones(&reference[i]));
    }
    assert!(
        edits_with + 3 <= edits_without,
        "with the floor {edits_with} edits from the clean examples, without {edits_without}"
    );
}

#[test]
fn a_far_talker_between_a_near_ones_sentences_is_raised_and_heard() {
    // Two talkers on one microphone, the far one 25 dB under the near one, taking turns with short
    // pauses: speech fills most of the file, so the whole file is normalised as one, and without
    // the equaliser the far talker's phones are mostly lost.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let rate = 16_000u32;
    let clip = |example: &str, gain_db: f32| {
        let (samples, from) = read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join(example));
        let samples = phonrec::audio::resample(&samples, from, rate).expect("resampled");
        let gain = 10f32.powf(gain_db / 20.0);
        samples.into_iter().map(|x| x * gain).collect::<Vec<f32>>()
    };
    let (near, far) = (clip(EXAMPLES[0], 0.0), clip(EXAMPLES[1], -25.0));
    let pause = vec![0.0f32; rate as usize * 6 / 10];
    let mut clips = Vec::new();
    for (name, samples) in [("near", &near), ("far", &far)] {
        let path = dir.path().join(format!("{name}.wav"));
        write_wav(&path, samples, rate);
        clips.push(path);
    }
    let turns = [&near[..], &pause, &far, &pause, &near, &pause, &far].concat();
    let floor = Noise(0x1E7E).coloured(turns.len(), 1, -70.0);
    let turns: Vec<f32> = turns.iter().zip(&floor).map(|(s, n)| s + n).collect();
    let turns_path = dir.path().join("turns.wav");
    write_wav(&turns_path, &turns, rate);
    let files: Vec<&Path> = clips
        .iter()
        .map(PathBuf::as_path)
        .chain([turns_path.as_path()])
        .collect();
    let (equalised, _) = transcribe_json(&[], &files);
    let (kept, _) = transcribe_json(&["--keep-levels"], &files);
    let (near_alone, far_alone) = (phones(&equalised[0]), phones(&equalised[1]));
    let alone = [
        &near_alone[..],
        &far_alone[..],
        &near_alone[..],
        &far_alone[..],
    ]
    .concat();
    // The clips alone are each at one level: nothing to raise.
    assert!(
        equalised[0].get("levels_raised").is_none(),
        "{}",
        equalised[0]
    );
    assert!(
        equalised[1].get("levels_raised").is_none(),
        "{}",
        equalised[1]
    );
    let distance = edit_distance(&alone, &phones(&equalised[2]));
    let distance_kept = edit_distance(&alone, &phones(&kept[2]));
    assert_eq!(equalised[2]["levels_raised"], 2, "{}", equalised[2]);
    assert!(kept[2].get("levels_raised").is_none(), "{}", kept[2]);
    // Measured: 2 edits of the 130 phones with the equaliser, 35 without (at 20 dB down: 2 and 10).
    assert!(
        distance <= 4 && distance_kept >= distance + 15,
        "{distance} edits from the clips alone with the levels evened out, {distance_kept} without \
         ({} phones)",
        alone.len()
    );
}

#[test]
fn a_jingle_before_a_talker_is_not_heard_as_speech_nor_changes_the_talker() {
    // Three seconds of notes (a chord of four partials, a new note every 0.25 s, each decaying)
    // 20 dB under a clip, half a second before it: the equaliser raises the jingle as it would a
    // far talker. What it then hears there is mostly unsure, and dropped; the raised jingle is
    // left out of the normalisation and of the added floor's level, so the clip decodes as alone
    // but for its weakest phones.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (clip, rate) = read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLES[0]));
    let notes_hz = [
        262.0f32, 330.0, 392.0, 523.0, 392.0, 330.0, 294.0, 349.0, 440.0, 523.0, 440.0, 349.0,
    ];
    let note_len = rate as usize / 4;
    let mut jingle = Vec::with_capacity(notes_hz.len() * note_len);
    for f0 in notes_hz {
        for i in 0..note_len {
            let t = i as f32 / rate as f32;
            let partials: f32 = [(1.0f32, 1.0f32), (1.5, 0.5), (2.0, 0.3), (3.0, 0.2)]
                .iter()
                .map(|&(h, a)| a * (std::f32::consts::TAU * f0 * h * t).sin())
                .sum();
            jingle.push((-6.0 * t).exp() * partials);
        }
    }
    let rms = |x: &[f32]| (x.iter().map(|&v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    let jingle: Vec<f32> = {
        let gain = rms(&clip) / rms(&jingle) * 0.1;
        jingle.iter().map(|&x| x * gain).collect()
    };
    let with_jingle = [&jingle[..], &vec![0.0f32; rate as usize / 2], &clip].concat();
    let path = dir.path().join("jingle.wav");
    write_wav(&path, &with_jingle, rate);
    let clip_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLES[0]);
    let (records, _) = transcribe_json(&[], &[&clip_path, &path]);
    assert_eq!(records[1]["levels_raised"], 1, "{}", records[1]);
    let distance = edit_distance(&phones(&records[0]), &phones(&records[1]));
    // Measured: 3 edits of 36 (one weak phone heard at the jingle's first note; two weak phones of
    // the clip flip with where its region ends, 20 ms apart with and without the jingle). The
    // jingle raised with nothing more gave 7, four of them phones heard in the jingle.
    let in_jingle = records[1]["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .filter(|span| span["start"].as_f64().unwrap_or(0.0) < 3.0)
        .count();
    assert!(
        distance <= 4 && in_jingle <= 1,
        "{distance} edits, {in_jingle} phones in the jingle: {}",
        records[1]
    );
}

#[test]
fn a_dc_offset_changes_nothing_the_network_hears() {
    // A converter that is not centred adds a constant to every sample. The features remove each
    // frame's mean, but the levels the repairs measure do not: without the offset removed, the
    // floor added under this clip (12 dB down, an offset of 6000, no sample clipped) was set by the
    // offset, and the posteriors moved by up to 0.97; with it removed, by 0.0025.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    use phonrec::audio::Waveform;
    use phonrec::model::Model;
    use phonrec::recognize::{Recognizer, RecognizerOptions};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let recognizer = Recognizer::new(
        Model::load(&root.join("models/default.safetensors")).expect("model"),
        RecognizerOptions::default(),
    )
    .expect("recognizer");
    let (clip, rate) = read_wav(&root.join(EXAMPLES[0]));
    let quieter: Vec<f32> = clip.iter().map(|&x| x * 0.25).collect();
    let offset: Vec<f32> = quieter.iter().map(|&x| x + 6000.0).collect();
    assert!(
        offset.iter().all(|x| x.abs() < 32_767.0),
        "the test's offset clips"
    );
    let probs = |samples: Vec<f32>| {
        recognizer
            .log_probs(Waveform {
                samples,
                sample_rate_hz: rate,
            })
            .expect("log-probs")
            .mapv(f32::exp)
    };
    let offset_dbfs = |samples: Vec<f32>| {
        recognizer
            .transcribe_wave(Waveform {
                samples,
                sample_rate_hz: rate,
            })
            .expect("transcript")
            .dc_offset_dbfs
    };
    // What the transcript (and JSON's "dc_offset_dbfs") reports: the offset's level, and nothing
    // for a recording without one.
    let reported = offset_dbfs(offset.clone()).expect("the offset is reported");
    let expected = 20.0 * (6000.0f32 / 32768.0).log10();
    assert!(
        (reported - expected).abs() < 0.5,
        "reported {reported} dBFS, {expected} added"
    );
    assert_eq!(offset_dbfs(quieter.clone()), None);
    let (centred, shifted) = (probs(quieter), probs(offset));
    assert_eq!(centred.dim(), shifted.dim());
    let largest = (&centred - &shifted)
        .iter()
        .fold(0.0f32, |m, &d| m.max(d.abs()));
    assert!(largest < 0.02, "posteriors moved by up to {largest}");
}

/// The first take of each digit by FSDD's held-out speaker (`tests/data/fsdd_nicolas`), with their
/// phones: clips cut at the speech, the first sample already loud.
const NICOLAS_DIGITS: [(&str, &str); 10] = [
    ("0_nicolas_0", "z ih r ow"),
    ("1_nicolas_0", "w ah n"),
    ("2_nicolas_0", "t uw"),
    ("3_nicolas_0", "th r iy"),
    ("4_nicolas_0", "f aa r"),
    ("5_nicolas_0", "f ay v"),
    ("6_nicolas_0", "s ih k s"),
    ("7_nicolas_0", "s eh v ah n"),
    ("8_nicolas_0", "ey t"),
    ("9_nicolas_0", "n ay n"),
];

#[test]
fn clips_cut_tight_at_the_speech_are_heard_with_their_floor_around_them() {
    if !built_in_model_present() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fsdd_nicolas");
    let files: Vec<PathBuf> = NICOLAS_DIGITS
        .iter()
        .map(|(name, _)| dir.join(format!("{name}.flac")))
        .collect();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let edits = |records: &[serde_json::Value]| -> usize {
        records
            .iter()
            .zip(NICOLAS_DIGITS)
            .map(|(record, (_, reference))| {
                let reference: Vec<String> =
                    reference.split_whitespace().map(str::to_string).collect();
                edit_distance(&reference, &phones(record))
            })
            .sum()
    };
    let (padded, _) = transcribe_json(&[], &paths);
    let (kept, _) = transcribe_json(&["--keep-edges"], &paths);
    let (padded_edits, kept_edits) = (edits(&padded), edits(&kept));
    // Measured with default-v15: 2 edits of 32 phones padded, 5 with the edges kept.
    assert!(
        padded_edits < kept_edits && padded_edits <= 3,
        "padded {padded_edits} edits, kept {kept_edits}"
    );
    // Times stay the recording's: the pads' frames are not in them, and every phone keeps a frame
    // of its own, in order, even one the network placed inside a pad.
    for record in &padded {
        let duration = record["duration"].as_f64().expect("duration");
        let mut previous_end = 0.0;
        for span in record["spans"].as_array().expect("spans") {
            let (start, end) = (
                span["start"].as_f64().unwrap(),
                span["end"].as_f64().unwrap(),
            );
            assert!(
                previous_end - 1e-6 <= start && start < end && end <= duration + 1e-6,
                "{record}"
            );
            previous_end = end;
        }
        for segment in record["segments"].as_array().expect("segments") {
            let (start, end) = (segment[0].as_f64().unwrap(), segment[1].as_f64().unwrap());
            assert!(
                0.0 <= start && start <= end && end <= duration + 1e-6,
                "{record}"
            );
        }
    }
    // The probabilities shown are the recording's own frames, as many as without the pads.
    let rows = |extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_phonrec"))
            .args(["probs", "--format", "tsv"])
            .args(extra)
            .arg(&files[0])
            .output()
            .expect("the binary runs");
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout).lines().count()
    };
    assert_eq!(rows(&[]), rows(&["--keep-edges"]));
}

#[test]
fn narrowband_audio_stored_at_16_khz_is_heard_as_the_8_khz_recording() {
    // FSDD's held-out speaker, recorded at 8 kHz, brought to 16 kHz as `sox in.wav -r 16000
    // out.wav` writes it (16 bits, triangular dither of ±1 LSB): above 4 kHz there is only the
    // converter's floor, where a recording made at 8 kHz reaches the network with nothing but the
    // features' dither. Measured as narrowband and brought back to 8 kHz, each copy is heard with
    // the 8 kHz recording's empty upper band and its phones; left at its rate (`--keep-rate`), the
    // network hears the converter's floor there.
    if !built_in_model_present() {
        eprintln!("no models/default.safetensors: skipping");
        return;
    }
    use phonrec::audio::{read_audio, Resampler, Waveform};
    use phonrec::model::Model;
    use phonrec::recognize::{Recognizer, RecognizerOptions};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let recognizer = |narrowband_as_8k| {
        Recognizer::new(
            Model::load(&root.join("models/default.safetensors")).expect("model"),
            RecognizerOptions {
                narrowband_as_8k,
                ..RecognizerOptions::default()
            },
        )
        .expect("recognizer")
    };
    let (routed, kept) = (recognizer(true), recognizer(false));
    let up = Resampler::new(8000, 16_000).expect("8 to 16 kHz");
    let mut noise = Noise(11);
    let wave = |samples: Vec<f32>, sample_rate_hz| Waveform {
        samples,
        sample_rate_hz,
    };
    // The power above 4.3 kHz of what the network heard, dB against its power in all.
    let upper_band_db = |heard: &Waveform| {
        let n = 512;
        let (mut upper, mut all) = (1e-12f64, 1e-12f64);
        for frame in heard.samples.chunks_exact(n) {
            // Hann-windowed (a rectangular window's leakage from the speech below would be all
            // there is to see above 4 kHz); a direct DFT of the bins above 4.3 kHz, and Parseval
            // for the total.
            let frame: Vec<f64> = frame
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
                    f64::from(x) * w
                })
                .collect();
            all += frame.iter().map(|x| x * x).sum::<f64>() * n as f64;
            for bin in (4300 * n / 16_000)..n / 2 {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for (i, &x) in frame.iter().enumerate() {
                    let phase = std::f64::consts::TAU * (bin * i) as f64 / n as f64;
                    re += x * phase.cos();
                    im -= x * phase.sin();
                }
                upper += 2.0 * (re * re + im * im);
            }
        }
        10.0 * (upper / all).log10()
    };
    for (name, _) in NICOLAS_DIGITS {
        let recording = read_audio(&root.join(format!("tests/data/fsdd_nicolas/{name}.flac")))
            .expect("a test clip");
        assert_eq!(recording.sample_rate_hz, 8000);
        let clip = recording.samples;
        let copy: Vec<f32> = up
            .process(&clip)
            .into_iter()
            .map(|x| (x + noise.white() + noise.white()).round())
            .collect();
        let original = routed
            .recognize(wave(clip.clone(), 8000))
            .expect("recognition");
        let heard = routed
            .recognize(wave(copy.clone(), 16_000))
            .expect("recognition");
        let heard_kept = kept.recognize(wave(copy, 16_000)).expect("recognition");
        assert!(
            heard.transcript.narrowband,
            "{name}: not measured as narrowband"
        );
        assert!(!original.transcript.narrowband && !heard_kept.transcript.narrowband);
        let (at_8k, routed_db, kept_db) = (
            upper_band_db(&original.wave),
            upper_band_db(&heard.wave),
            upper_band_db(&heard_kept.wave),
        );
        assert!(
            (routed_db - at_8k).abs() < 3.0 && kept_db > at_8k + 30.0,
            "{name}: above 4.3 kHz {at_8k:.1} dB as recorded, {routed_db:.1} dB brought back \
             to 8 kHz, {kept_db:.1} dB kept at 16 kHz"
        );
        let phones = |r: &phonrec::recognize::Recognition| {
            r.transcript
                .spans
                .iter()
                .map(|s| s.phone)
                .collect::<Vec<_>>()
        };
        let (a, b) = (phones(&original), phones(&heard));
        let distance = edit_distance(&a, &b);
        assert!(
            distance <= 1,
            "{name}: {a:?} as recorded, {b:?} from the 16 kHz copy"
        );
    }
    // Recordings with a band of their own above 4 kHz keep their rate.
    for example in &EXAMPLES[..2] {
        let recording = read_audio(&root.join(example)).expect("an example");
        assert_eq!(
            phonrec::audio::narrowband_rate_hz(&recording.samples, recording.sample_rate_hz),
            None,
            "{example}"
        );
    }
}
