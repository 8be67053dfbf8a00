//! Feature extraction speed: 80-bin fbank on 10 minutes of 16 kHz audio, in frames per second.
//! The peer is `../shared/bench/torch_features.py` (torchaudio's Kaldi fbank, same options).
//! Run: `cargo bench --bench features`; figures go into BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use phonrec::features::{Fbank, FbankOptions, FeatureExtractor, Mfcc, MfccOptions};

/// Ten minutes of a deterministic speech-like test signal (chirps plus noise) at 16 kHz.
fn ten_minutes() -> Vec<f32> {
    let n = 16_000 * 600;
    let mut state = 0x1234_5678u32;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f32 / u32::MAX as f32 - 0.5) * 200.0;
            let t = i as f32 / 16_000.0;
            let f = 200.0 + 1800.0 * (0.5 + 0.5 * (t * 0.7).sin());
            (2.0 * std::f32::consts::PI * f * t).sin() * 8000.0 + noise
        })
        .collect()
}

fn bench_features(c: &mut Criterion) {
    let wave = ten_minutes();
    let fbank = Fbank::new(FbankOptions::default()).expect("default options are valid");
    let frames = fbank.num_frames(wave.len()) as u64;
    let mut group = c.benchmark_group("features_10min_16k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(frames));
    group.bench_function("fbank80", |b| b.iter(|| fbank.compute(&wave)));
    let mfcc = Mfcc::new(MfccOptions::default()).expect("default options are valid");
    group.bench_function("mfcc13", |b| b.iter(|| mfcc.compute(&wave)));
    group.finish();
}

criterion_group!(benches, bench_features);
criterion_main!(benches);
