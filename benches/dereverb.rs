//! Dereverberation benchmarks: what `--dereverb auto` costs every recording of 2 s or more (the
//! measurement, on a dry 4 s clip: the early exit, and on a reverberant one: both predictors) and
//! what a reverberant recording costs on top (the dereverberation of 30 s). Throughput in seconds of
//! audio (criterion prints "elem/s": audio seconds per second). Run with
//! `cargo bench --bench dereverb`; figures in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use phonrec::audio::{dereverberate, is_reverberant};
use rand::{rngs::StdRng, Rng, SeedableRng};

const RATE: u32 = 16_000;

/// Speech-like bursts of noise (150 ms on, 100 ms off) at a conversational level.
fn dry(seconds: f64, rng: &mut StdRng) -> Vec<f32> {
    let period = (0.25 * f64::from(RATE)) as usize;
    let on = (0.15 * f64::from(RATE)) as usize;
    (0..(seconds * f64::from(RATE)) as usize)
        .map(|i| {
            if i % period < on {
                rng.gen_range(-3000.0..3000.0)
            } else {
                rng.gen_range(-10.0..10.0)
            }
        })
        .collect()
}

/// `x` in a room: the direct sound and a 0.6 s exponentially decaying noise tail from 5 ms.
fn in_room(x: &[f32], rng: &mut StdRng) -> Vec<f32> {
    let len = (0.6 * f64::from(RATE)) as usize;
    let onset = (0.005 * f64::from(RATE)) as usize;
    let response: Vec<(usize, f32)> = (onset..len)
        .step_by(4) // a sparse tail: the benchmark input only needs to sound reverberant
        .map(|i| {
            let decay = (-6.9 * i as f32 / len as f32).exp();
            (i, 0.6 * decay * rng.gen_range(-1.0f32..1.0))
        })
        .collect();
    let mut y = x.to_vec();
    for (i, &v) in x.iter().enumerate() {
        for &(j, g) in &response {
            if let Some(slot) = y.get_mut(i + j) {
                *slot += v * g;
            }
        }
    }
    y
}

fn bench_dereverb(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let clip = dry(4.0, &mut rng);
    let room_clip = in_room(&clip, &mut rng);
    assert!(!is_reverberant(&clip, RATE) && is_reverberant(&room_clip, RATE));
    let long = in_room(&dry(30.0, &mut rng), &mut rng);
    let mut group = c.benchmark_group("dereverb");
    group.sample_size(10);
    group.throughput(Throughput::Elements(4));
    group.bench_function("measure_dry_4s", |b| {
        b.iter(|| is_reverberant(black_box(&clip), RATE))
    });
    group.bench_function("measure_room_4s", |b| {
        b.iter(|| is_reverberant(black_box(&room_clip), RATE))
    });
    group.throughput(Throughput::Elements(30));
    group.bench_function("dereverberate_30s", |b| {
        b.iter(|| dereverberate(black_box(&long), RATE))
    });
    group.finish();
}

criterion_group!(benches, bench_dereverb);
criterion_main!(benches);
