//! Network benchmarks at the peer's shape A (`../shared/bench/`): B = 16 utterances of T = 400 frames,
//! N = 3 bidirectional layers of H = 256, F = 80 features, C = 40 classes; targets of T/8 = 50 phones.
//!
//! - `lstm_train/{fused,reference}`: forward + CTC + backward + AdamW step (clip 5), as `phonrec train`;
//! - `lstm_infer_b1/..`, `lstm_infer_b16/..`: log-probs with plain (untracked) weights, as a loaded model;
//! - `lstm_ctc/fwd_bwd`: the CTC loss alone on the network's logits, the 15 ms target.
//!
//! Each network benchmark runs both LSTM kernels: the fused one and the plain-candle reference.
//! Throughput is in input frames, so criterion prints frames/s. A reference training step takes
//! seconds, hence 10 samples; `cargo bench --bench lstm -- fused` skips the reference. `phonrec bench`
//! measures the same things as one JSON line shaped like PyTorch's. Record figures, command and machine
//! in BENCHMARKS.md.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;
use phonrec::ctc::{ctc_loss, Reduction};
use phonrec::model::{
    features_to_tensor, Blstm, DropoutState, InitOptions, LstmKernel, NetworkConfig,
};
use phonrec::phones::PhoneId;
use phonrec::train::{Optimizer, OptimizerOptions};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

const SEED: u64 = 42;
const BATCH: usize = 16;
const FRAMES: usize = 400;
/// The peer's `T // 8`: ~12.5 phones per second at a 10 ms frame shift.
const LABELS: usize = FRAMES / 8;
const LEARNING_RATE: f64 = 1e-3;
/// `phonrec train`'s default gradient-norm clip.
const CLIP_NORM: f64 = 5.0;
/// Criterion's smallest sample count: a training step takes seconds.
const SLOW_SAMPLES: usize = 10;

const KERNELS: [(&str, LstmKernel); 2] = [
    ("fused", LstmKernel::Fused),
    ("reference", LstmKernel::Reference),
];

/// Shape A without dropout, as the peer runs it.
fn shape_a() -> NetworkConfig {
    NetworkConfig {
        input_dim: 80,
        num_layers: 3,
        hidden_size: 256,
        dropout: 0.0,
        num_outputs: 40,
        stack_frames: 1,
    }
}

fn random_features(rng: &mut StdRng, batch: usize, dim: usize) -> (Tensor, Vec<usize>) {
    let utterances: Vec<Array2<f32>> = (0..batch)
        .map(|_| Array2::from_shape_simple_fn((FRAMES, dim), || rng.sample(StandardNormal)))
        .collect();
    let views: Vec<_> = utterances.iter().map(|u| u.view()).collect();
    features_to_tensor(&views).expect("features")
}

fn random_targets(rng: &mut StdRng, classes: usize) -> Vec<Vec<PhoneId>> {
    (0..BATCH)
        .map(|_| {
            (0..LABELS)
                .map(|_| PhoneId(rng.gen_range(1..classes as u16)))
                .collect()
        })
        .collect()
}

fn training(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let config = shape_a();
    let (features, lengths) = random_features(&mut rng, BATCH, config.input_dim);
    let targets = random_targets(&mut rng, config.num_outputs);

    let mut group = c.benchmark_group("lstm_train");
    group.sample_size(SLOW_SAMPLES);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements((BATCH * FRAMES) as u64));
    for (name, kernel) in KERNELS {
        let (mut network, var_map) =
            Blstm::trainable(&config, &InitOptions::default()).expect("network");
        network.set_kernel(kernel);
        let vars = var_map
            .data()
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        let mut optimizer =
            Optimizer::new(vars, OptimizerOptions::default(), LEARNING_RATE).expect("optimizer");
        let output_lengths = network.output_lengths(&lengths);
        let mut dropout = DropoutState::default();
        group.bench_function(BenchmarkId::new(name, "16x400_3x256"), |b| {
            b.iter(|| {
                let logits = network
                    .forward_train(&features, &lengths, Some(&mut dropout))
                    .expect("forward");
                let loss = ctc_loss(&logits, &targets, &output_lengths, Reduction::Mean)
                    .expect("loss")
                    .loss;
                let grads = loss.backward().expect("backward");
                black_box(optimizer.step(&grads, Some(CLIP_NORM)).expect("step"))
            })
        });
    }
    group.finish();

    // The CTC loss alone, on logits a network produced (the target: 15 ms, PyTorch's figure).
    let (network, _) = Blstm::trainable(&config, &InitOptions::default()).expect("network");
    let output_lengths = network.output_lengths(&lengths);
    let logits = network
        .forward_train(&features, &lengths, None)
        .expect("forward");
    let logits = Var::from_tensor(&logits.detach()).expect("logits");
    let mut group = c.benchmark_group("lstm_ctc");
    group.throughput(Throughput::Elements((BATCH * FRAMES) as u64));
    group.bench_function(
        BenchmarkId::new(
            "fwd_bwd",
            format!("{BATCH}x{FRAMES}x{}_{LABELS}_labels", config.num_outputs),
        ),
        |b| {
            b.iter(|| {
                let output = ctc_loss(
                    logits.as_tensor(),
                    &targets,
                    &output_lengths,
                    Reduction::Mean,
                )
                .expect("loss");
                black_box(output.loss.backward().expect("backward"))
            })
        },
    );
    group.finish();
}

fn inference(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let config = shape_a();
    let (_, var_map) = Blstm::trainable(&config, &InitOptions::default()).expect("network");
    // Plain copies of the weights, as a loaded model holds them: no autograd graph is kept.
    let weights: HashMap<String, Tensor> = var_map
        .data()
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().detach()))
        .collect();
    let mut network = Blstm::new(
        &config,
        VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu),
    )
    .expect("network");

    for batch in [1, BATCH] {
        let (features, lengths) = random_features(&mut rng, batch, config.input_dim);
        let mut group = c.benchmark_group(format!("lstm_infer_b{batch}"));
        group.sample_size(SLOW_SAMPLES);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(10));
        group.throughput(Throughput::Elements((batch * FRAMES) as u64));
        for (name, kernel) in KERNELS {
            network.set_kernel(kernel);
            group.bench_function(BenchmarkId::new(name, "400_3x256"), |b| {
                b.iter(|| black_box(network.forward(&features, &lengths).expect("forward")))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, training, inference);
criterion_main!(benches);
