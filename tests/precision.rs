//! The reduced-precision inference modes (`--precision bf16` and `int8`): the built-in model's
//! posteriors stay within a stated bound of f32's, and the phones decoded from them are the same on
//! the examples. Runs whatever kernels this CPU has (AMX tiles, `vdpbf16ps`, `vpdpwssd`) and the
//! portable emulation elsewhere (CI also runs this test with `PHONREC_KERNEL=avx512`, `avxvnni`, `avx2` and
//! `portable`).

use std::path::Path;

use phonrec::audio::{read_audio, resample};
use phonrec::model::{Model, ModelFile, Precision};
use phonrec::recognize::{Recognizer, RecognizerOptions};

fn load(path: &Path, precision: Precision) -> Model {
    Model::from_file_in(ModelFile::load(path).unwrap(), precision).unwrap()
}

/// The largest and the mean difference of the posteriors (as probabilities: log-probabilities of
/// near-impossible classes may differ by more without any effect) between f32 and `reduced` on
/// the examples, after asserting that the default decoding gives the same phones from both.
/// `None` without the model file.
fn differences_from_f32(reduced: Precision) -> Option<(f32, f64)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model_path = root.join("models/default.safetensors");
    if !model_path.is_file() {
        return None;
    }
    let full = load(&model_path, Precision::F32);
    let other = load(&model_path, reduced);
    let mut largest = 0f32;
    let mut sum = 0f64;
    let mut count = 0usize;
    for file in [
        "audio/slt_dark_suit_16k.wav",
        "audio/fsdd_7_jackson_0_8k.wav",
        "audio/espeak_quick_fox_22k.wav",
    ] {
        let wave = read_audio(&root.join(file)).unwrap();
        let samples = resample(&wave.samples, wave.sample_rate_hz, full.sample_rate_hz()).unwrap();
        let a = full.log_probs_for_wave(&samples).unwrap();
        let b = other.log_probs_for_wave(&samples).unwrap();
        assert_eq!(a.dim(), b.dim());
        for (x, y) in a.iter().zip(b.iter()) {
            let d = (x.exp() - y.exp()).abs();
            largest = largest.max(d);
            sum += d as f64;
            count += 1;
        }
        let decode = |model: Model| {
            Recognizer::new(model, RecognizerOptions::default())
                .unwrap()
                .recognize(wave.clone())
                .unwrap()
                .transcript
                .spans
                .iter()
                .map(|s| s.phone)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            decode(load(&model_path, Precision::F32)),
            decode(load(&model_path, reduced)),
            "{file}, {reduced:?}"
        );
    }
    Some((largest, sum / count as f64))
}

#[test]
fn bf16_posteriors_stay_close_to_f32_and_decode_to_the_same_phones() {
    let Some((largest, mean)) = differences_from_f32(Precision::Bf16) else {
        return;
    };
    eprintln!("bf16 vs f32: largest probability difference {largest}, mean {mean}");
    // Measured with default-v11 on these files: largest 0.015 (0.010 emulated), mean 1.2e-5
    // (BENCHMARKS.md, "bf16 inference"); default-v12 on AMX tiles 0.007, 1.1e-5: bounds with room
    // for another model, far below what moves a decision.
    assert!(largest < 0.05, "largest probability difference {largest}");
    assert!(mean < 1e-4, "mean probability difference {mean}");
    // And not equal: the bf16 path really ran.
    assert!(largest > 0.0);
}

#[test]
fn int8_posteriors_stay_close_to_f32_and_decode_to_the_same_phones() {
    let Some((largest, mean)) = differences_from_f32(Precision::Int8) else {
        return;
    };
    eprintln!("int8 vs f32: largest probability difference {largest}, mean {mean}");
    // Measured with default-v12 on these files, the state then in 8 bits: largest 0.012-0.015
    // (every kernel), mean 3.3e-5; default-v14 with the state in 16 bits (2026-12-03, AMX
    // projections): largest 0.012, mean 2.4e-5, most of it the bf16 input projections'.
    assert!(largest < 0.1, "largest probability difference {largest}");
    assert!(mean < 3e-4, "mean probability difference {mean}");
    assert!(largest > 0.0);
}

/// `transcribe` without `--precision` computes in [`Precision::inference_default`]: int8 where a
/// SIMD int8 kernel runs (so also under `PHONREC_KERNEL=avx512` and `avx2`), f32 under
/// `PHONREC_KERNEL=portable` or on other CPUs, whose portable int8 loop would be slower than f32.
/// The outputs carry confidences to 4 decimals, which the two precisions do not share on these files.
#[test]
fn transcribe_defaults_to_this_cpus_inference_precision() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root.join("models/default.safetensors").is_file() {
        return;
    }
    let native = phonrec::model::int8_kernel_name() != "portable";
    let expected = if native {
        Precision::Int8
    } else {
        Precision::F32
    };
    assert_eq!(Precision::inference_default(), expected);
    let transcribe = |precision: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_phonrec"));
        command
            .current_dir(root)
            .args(["transcribe", "--format", "json", "audio/"]);
        if let Some(name) = precision {
            command.args(["--precision", name]);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let default = transcribe(None);
    let (int8, f32) = (transcribe(Some("int8")), transcribe(Some("f32")));
    assert_ne!(
        int8, f32,
        "the two precisions gave identical outputs: the test cannot tell them apart"
    );
    assert_eq!(default, if native { int8 } else { f32 });
}
