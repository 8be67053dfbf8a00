//! The fused LSTM kernel against its slow twin (plain candle ops + autograd): same outputs (≤ 1e-5
//! relative) and same gradients (≤ 1e-4 relative) on random shapes, mixed lengths included.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use phonrec::model::{Blstm, DropoutState, InitOptions, LstmKernel, NetworkConfig, Precision};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Outputs: both compute in f32 with different summation order and our fast exp.
const OUTPUT_TOLERANCE: f32 = 1e-5;
/// Gradients: accumulated over all steps in f32.
const GRADIENT_TOLERANCE: f32 = 1e-4;

/// max |a − b| / max(1, max |b|): relative to the tensor's scale, so near-zero entries don't dominate.
fn relative_error(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

/// A training pass's outputs and, for the loss `Σ outputs · probe`, every variable's gradient
/// (sorted by name).
fn outputs_and_gradients(
    network: &Blstm,
    var_map: &candle_nn::VarMap,
    input: &Tensor,
    lengths: &[usize],
    probe: &Tensor,
) -> (Tensor, Vec<(String, Tensor)>) {
    let logits = network
        .forward_train(input, lengths, Some(&mut DropoutState::default()))
        .unwrap();
    let loss = (&logits * probe).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let vars = var_map.data().lock().unwrap();
    let mut named: Vec<(String, Tensor)> = vars
        .iter()
        .map(|(name, var)| (name.clone(), grads.get(var.as_tensor()).unwrap().clone()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    (logits, named)
}

#[test]
fn fused_matches_reference_outputs_and_gradients() {
    let mut rng = StdRng::seed_from_u64(42);
    for case in 0..6 {
        let config = NetworkConfig {
            input_dim: rng.gen_range(3..20),
            num_layers: rng.gen_range(1..4),
            hidden_size: rng.gen_range(2..24),
            dropout: 0.0,
            num_outputs: rng.gen_range(3..12),
            stack_frames: rng.gen_range(1..4),
        };
        let batch = rng.gen_range(1..5);
        let frames = rng.gen_range(1..30);
        let mut lengths: Vec<usize> = (0..batch).map(|_| rng.gen_range(1..=frames)).collect();
        lengths[0] = frames;
        let init = InitOptions {
            seed: case,
            ..InitOptions::default()
        };
        let (fused, var_map) = Blstm::trainable(&config, &init).unwrap();
        assert_eq!(fused.kernel(), LstmKernel::Fused);
        let mut reference = Blstm::new(
            &config,
            VarBuilder::from_varmap(&var_map, DType::F32, &Device::Cpu),
        )
        .unwrap();
        reference.set_kernel(LstmKernel::Reference);

        let values: Vec<f32> = (0..batch * frames * config.input_dim)
            .map(|_| rng.gen_range(-2.0..2.0))
            .collect();
        let input =
            Tensor::from_vec(values, (batch, frames, config.input_dim), &Device::Cpu).unwrap();
        let steps = config.output_frames(frames);
        let probe: Vec<f32> = (0..batch * steps * config.num_outputs)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let probe =
            Tensor::from_vec(probe, (batch, steps, config.num_outputs), &Device::Cpu).unwrap();

        // The same masks for both: each pass starts from the same dropout state.
        let results: Vec<_> = [&fused, &reference]
            .into_iter()
            .map(|network| outputs_and_gradients(network, &var_map, &input, &lengths, &probe))
            .collect();
        let (fused_logits, fused_grads) = &results[0];
        let (reference_logits, reference_grads) = &results[1];
        let error = relative_error(fused_logits, reference_logits);
        assert!(
            error <= OUTPUT_TOLERANCE,
            "case {case} {config:?}: outputs differ by {error}"
        );
        for ((name, g_fused), (_, g_reference)) in fused_grads.iter().zip(reference_grads) {
            let error = relative_error(g_fused, g_reference);
            assert!(
                error <= GRADIENT_TOLERANCE,
                "case {case} {config:?} lengths {lengths:?}: gradient of {name} differs by {error}"
            );
        }
    }
}

#[test]
fn inference_without_gradients_matches_too() {
    let config = NetworkConfig {
        input_dim: 10,
        num_layers: 2,
        hidden_size: 16,
        dropout: 0.0,
        num_outputs: 7,
        stack_frames: 2,
    };
    let model_file = {
        let (_, var_map) = Blstm::trainable(&config, &InitOptions::default()).unwrap();
        let vars = var_map.data().lock().unwrap();
        vars.iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let fused = Blstm::new(
        &config,
        VarBuilder::from_tensors(model_file.clone(), DType::F32, &Device::Cpu),
    )
    .unwrap();
    let mut reference = Blstm::new(
        &config,
        VarBuilder::from_tensors(model_file, DType::F32, &Device::Cpu),
    )
    .unwrap();
    reference.set_kernel(LstmKernel::Reference);
    let features =
        ndarray::Array2::from_shape_fn((37, 10), |(t, d)| ((t * 10 + d) as f32 * 0.37).sin());
    let a = fused.log_probs(features.view()).unwrap();
    let b = reference.log_probs(features.view()).unwrap();
    let max = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(max < 1e-5, "{max}");
}

/// Mixed-precision training (`Blstm::set_training_precision(Precision::Bf16)`): outputs and every
/// gradient close to f32's, at bf16's rounding (operands rounded to 8 mantissa bits, sums in f32),
/// and pointing the same way. Shapes reach the AMX tiles (2+ rows, `k` beyond one tile) where the CPU
/// has them, the `vdpbf16ps` kernel or the portable emulation elsewhere.
#[test]
fn bf16_training_stays_close_to_f32() {
    let mut rng = StdRng::seed_from_u64(7);
    for case in 0..4 {
        let config = NetworkConfig {
            input_dim: rng.gen_range(5..40),
            num_layers: rng.gen_range(2..4),
            hidden_size: rng.gen_range(8..48),
            dropout: 0.0,
            num_outputs: rng.gen_range(3..12),
            stack_frames: 1,
        };
        let batch = rng.gen_range(1..20);
        let frames = rng.gen_range(20..60);
        let mut lengths: Vec<usize> = (0..batch).map(|_| rng.gen_range(1..=frames)).collect();
        lengths[0] = frames;
        let init = InitOptions {
            seed: 100 + case,
            ..InitOptions::default()
        };
        let (full, var_map) = Blstm::trainable(&config, &init).unwrap();
        let mut mixed = Blstm::new(
            &config,
            VarBuilder::from_varmap(&var_map, DType::F32, &Device::Cpu),
        )
        .unwrap();
        mixed.set_training_precision(Precision::Bf16).unwrap();
        assert!(mixed.set_training_precision(Precision::Int8).is_err());

        let values: Vec<f32> = (0..batch * frames * config.input_dim)
            .map(|_| rng.gen_range(-2.0..2.0))
            .collect();
        let input =
            Tensor::from_vec(values, (batch, frames, config.input_dim), &Device::Cpu).unwrap();
        let probe: Vec<f32> = (0..batch * frames * config.num_outputs)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let probe =
            Tensor::from_vec(probe, (batch, frames, config.num_outputs), &Device::Cpu).unwrap();
        let results: Vec<_> = [&full, &mixed]
            .into_iter()
            .map(|network| outputs_and_gradients(network, &var_map, &input, &lengths, &probe))
            .collect();
        let (full_logits, full_grads) = &results[0];
        let (mixed_logits, mixed_grads) = &results[1];
        let error = relative_error(mixed_logits, full_logits);
        // Measured: at most 4e-3 on these cases (outputs), 5e-3 and cosine > 0.99998 (gradients).
        assert!(
            error > 0.0 && error <= 1e-2,
            "case {case} {config:?}: outputs differ by {error} (0: the pass was not in bf16)"
        );
        for ((name, g_mixed), (_, g_full)) in mixed_grads.iter().zip(full_grads) {
            let error = relative_error(g_mixed, g_full);
            let cosine = cosine(g_mixed, g_full);
            assert!(
                error <= 2e-2 && cosine >= 0.9999,
                "case {case} {config:?} batch {batch}: gradient of {name} differs by {error} \
                 (cosine {cosine})"
            );
        }
    }
}

fn cosine(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let dot: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(&a) * norm(&b)).max(1e-30)
}
