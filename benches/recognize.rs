//! Recognition of many short clips with the built-in model (issue 16): 32 clips of 0.4–2 s cut from
//! the `audio/` examples, recognised one by one (`Recognizer::recognize`, a network call per clip) and
//! together (`Recognizer::recognize_batch`, what `transcribe` and `eval` run: clips of similar length
//! share network batches). Greedy decoding, so the network and the pipeline around it are measured,
//! not the LM; both also with the LSTM in bfloat16 (`Precision::Bf16`, `--precision bf16`).
//! Throughput in milliseconds of audio per second.
//!
//! `cargo bench --bench recognize`

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use phonrec::audio::{read_audio, Waveform};
use phonrec::model::{Model, ModelFile, Precision};
use phonrec::recognize::{Recognizer, RecognizerOptions};

/// Clips of 0.4 to 2 s cut in turn from the examples (at their own rates).
fn clips() -> Vec<Waveform> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources: Vec<Waveform> = [
        "audio/slt_dark_suit_16k.wav",
        "audio/espeak_quick_fox_22k.wav",
        "audio/fsdd_7_jackson_0_8k.wav",
    ]
    .iter()
    .map(|p| read_audio(&root.join(p)).expect("example audio"))
    .collect();
    (0..32)
        .map(|i| {
            let source = &sources[i % sources.len()];
            let seconds = 0.4 + 1.6 * (i as f32 / 31.0);
            let len = ((seconds * source.sample_rate_hz as f32) as usize).min(source.samples.len());
            let start = (i * 997) % (source.samples.len() - len + 1);
            Waveform {
                samples: source.samples[start..start + len].to_vec(),
                sample_rate_hz: source.sample_rate_hz,
            }
        })
        .collect()
}

fn short_clips(c: &mut Criterion) {
    let model_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.safetensors");
    if !model_path.is_file() {
        eprintln!("no models/default.safetensors: nothing to measure");
        return;
    }
    let recognizer = |precision| {
        let file = ModelFile::load(&model_path).expect("the built-in model");
        Recognizer::new(
            Model::from_file_in(file, precision).expect("the built-in model"),
            RecognizerOptions::default(),
        )
        .expect("default options")
    };
    let clips = clips();
    let seconds: f64 = clips.iter().map(Waveform::duration_s).sum();
    let mut group = c.benchmark_group("recognize_32_short_clips");
    group.sample_size(10);
    // Throughput in milliseconds of audio, so criterion's "elements/s" reads as ms of audio per s.
    group.throughput(Throughput::Elements((seconds * 1000.0) as u64));
    for precision in [Precision::F32, Precision::Bf16] {
        let recognizer = recognizer(precision);
        let suffix = if precision == Precision::F32 {
            ""
        } else {
            "_bf16"
        };
        group.bench_function(format!("one_by_one{suffix}"), |b| {
            b.iter(|| {
                for clip in &clips {
                    black_box(recognizer.recognize(clip.clone()).expect("recognised"));
                }
            })
        });
        group.bench_function(format!("batched{suffix}"), |b| {
            b.iter(|| black_box(recognizer.recognize_batch(clips.clone())))
        });
    }
    group.finish();
}

criterion_group!(benches, short_clips);
criterion_main!(benches);
