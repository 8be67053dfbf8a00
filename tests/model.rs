//! The acoustic model through the public API: padded batches against single utterances, model files
//! (round trip, and every way a file can be wrong), inference from a waveform, and a few training steps.
//!
//! All inputs are made here from seeded RNGs; expected values are properties (equality with the
//! unpadded run, bit-identity after a round trip, a falling loss), not numbers from elsewhere.
//!
//! `cargo test --release --test model -- --ignored --nocapture` prints timings for the benchmark shape A.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarBuilder};
use ndarray::{s, Array2};
use phonrec::ctc::{ctc_loss, Reduction};
use phonrec::features::{FeatureExtractor, FeatureOptions, FeaturePipeline};
use phonrec::model::{
    expected_tensors, features_to_tensor, init_weights, Blstm, DropoutState, InitOptions, Model,
    ModelConfig, ModelFile, NetworkConfig, TrainingSummary, FORMAT_VERSION,
};
use phonrec::phones::{PhoneId, PhoneSet};
use phonrec::{Error, Result};
use rand::{rngs::StdRng, Rng, SeedableRng};
use safetensors::SafeTensors;

const SEED: u64 = 42;
/// One utterance alone or inside a padded batch: the same f32 arithmetic, only GEMM blocking and
/// summation order differ with the batch size.
const BATCH_TOLERANCE: f32 = 1e-5;

fn random_features(rng: &mut StdRng, frames: usize, dim: usize) -> Array2<f32> {
    Array2::from_shape_fn((frames, dim), |_| rng.gen_range(-2.0..2.0))
}

fn network_config(stack_frames: usize) -> NetworkConfig {
    NetworkConfig {
        input_dim: 12,
        num_layers: 3,
        hidden_size: 16,
        dropout: 0.2,
        num_outputs: 7,
        stack_frames,
    }
}

/// A small model consistent with the default feature options and the TIMIT phone set.
fn small_model_file(seed: u64) -> Result<ModelFile> {
    let features = FeatureOptions::default();
    let phones = PhoneSet::timit39();
    let network = NetworkConfig {
        input_dim: FeaturePipeline::new(features.clone())?.dim(),
        num_layers: 2,
        hidden_size: 12,
        dropout: 0.1,
        num_outputs: phones.len(),
        stack_frames: 2,
    };
    let init = InitOptions {
        seed,
        ..InitOptions::default()
    };
    let var_map = init_weights(&network, &init)?;
    let config = ModelConfig {
        features,
        network,
        phones,
        training: TrainingSummary {
            data: Some("random weights".into()),
            epochs: Some(0),
            updates: Some(0),
            dev_per: None,
            date: Some("2025-01-01".into()),
            init_from: None,
        },
    };
    ModelFile::from_var_map(config, &var_map)
}

fn assert_close(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (index, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tolerance,
            "{what}[{index}]: {g} vs {w} (tolerance {tolerance})"
        );
    }
}

#[test]
fn padded_batch_matches_each_utterance_alone() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(SEED);
    for stack_frames in [1, 3] {
        let config = network_config(stack_frames);
        let (network, _vars) = Blstm::trainable(&config, &InitOptions::default())?;
        // Mixed lengths, the longest not first, one not a multiple of the stacking.
        let utterances: Vec<Array2<f32>> = [23, 40, 7, 31]
            .iter()
            .map(|&frames| random_features(&mut rng, frames, config.input_dim))
            .collect();
        let views: Vec<_> = utterances.iter().map(|u| u.view()).collect();
        let (batch, lengths) = features_to_tensor(&views)?;
        let batched = network.forward(&batch, &lengths)?;
        let batched_logits = network.forward_train(&batch, &lengths, None)?;
        let out_lengths = network.output_lengths(&lengths);
        assert_eq!(batched.dims(), [4, 40usize.div_ceil(stack_frames), 7]);
        for (b, utterance) in utterances.iter().enumerate() {
            let alone = network.log_probs(utterance.view())?;
            assert_eq!(alone.nrows(), out_lengths[b]);
            let rows = batched.get(b)?.to_vec2::<f32>()?;
            for (t, row) in rows.iter().enumerate() {
                if t < out_lengths[b] {
                    let what = format!("stack {stack_frames}, utterance {b}, frame {t}");
                    let want = alone.row(t).to_vec();
                    assert_close(row, &want, BATCH_TOLERANCE, &what);
                } else {
                    assert!(row.iter().all(|&v| v == 0.0), "padding row {t}: {row:?}");
                }
            }
            let logits = batched_logits.get(b)?.to_vec2::<f32>()?;
            for row in &logits[out_lengths[b]..] {
                assert!(row.iter().all(|&v| v == 0.0), "padding logits {row:?}");
            }
        }
    }
    Ok(())
}

#[test]
fn save_load_round_trip_is_bit_identical() -> Result<()> {
    let directory = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = directory.path().join("small.safetensors");
    let file = small_model_file(SEED)?;
    file.save(&path)?;
    let loaded = ModelFile::load(&path)?;
    assert_eq!(loaded.config(), file.config());
    for (name, tensor) in file.weights() {
        let original = tensor.flatten_all()?.to_vec1::<f32>()?;
        let reloaded = loaded.weights()[name].flatten_all()?.to_vec1::<f32>()?;
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&original), bits(&reloaded), "{name}");
    }
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let features = random_features(&mut rng, 33, file.config().network.input_dim);
    let before = file.network()?.log_probs(features.view())?;
    let after = Model::load(&path)?.network().log_probs(features.view())?;
    assert_eq!(before, after);
    // The same bytes load from memory, as the compiled-in default model does.
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    assert_eq!(bytes, file.to_bytes()?);
    let from_memory = Model::load_from_bytes(&bytes, "<built-in>")?;
    assert_eq!(from_memory.network().log_probs(features.view())?, before);
    Ok(())
}

#[test]
fn averaging_models_takes_the_elementwise_mean() -> Result<()> {
    let (a, b, c) = (
        small_model_file(1)?,
        small_model_file(2)?,
        small_model_file(3)?,
    );
    let mean = ModelFile::average(&[a.clone(), b.clone(), c.clone()])?;
    assert_eq!(
        mean.config(),
        c.config(),
        "the last model's metadata is kept"
    );
    let mut seeded_tensors = 0;
    for (name, tensor) in mean.weights() {
        let values = |m: &ModelFile| m.weights()[name].flatten_all()?.to_vec1::<f32>();
        let (va, vb, vc) = (values(&a)?, values(&b)?, values(&c)?);
        let want: Vec<f32> = (0..va.len())
            .map(|i| (va[i] + vb[i] + vc[i]) / 3.0)
            .collect();
        assert_close(&tensor.flatten_all()?.to_vec1::<f32>()?, &want, 1e-6, name);
        seeded_tensors += usize::from(va != vb);
    }
    // Biases start from constants; the weight matrices differ by seed, so the mean is a real one.
    assert!(
        seeded_tensors >= 4,
        "only {seeded_tensors} tensors differ by seed"
    );
    // Averaging one model with itself changes nothing.
    let same = ModelFile::average(&[a.clone(), a.clone()])?;
    for (name, tensor) in same.weights() {
        let got = tensor.flatten_all()?.to_vec1::<f32>()?;
        assert_close(
            &got,
            &a.weights()[name].flatten_all()?.to_vec1::<f32>()?,
            1e-7,
            name,
        );
    }
    Ok(())
}

#[test]
fn averaging_refuses_models_of_other_shapes_and_no_models() -> Result<()> {
    assert!(ModelFile::average(&[]).is_err());
    let small = small_model_file(1)?;
    let mut other_config = small.config().clone();
    other_config.network.hidden_size += 1;
    let var_map = init_weights(&other_config.network, &InitOptions::default())?;
    let other = ModelFile::from_var_map(other_config, &var_map)?;
    let message = ModelFile::average(&[small, other])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("network shape"), "{message}");
    Ok(())
}

#[test]
fn log_probs_for_wave_runs_the_whole_stage() -> Result<()> {
    let file = small_model_file(SEED)?;
    let model = Model::new(&file)?;
    assert_eq!(model.sample_rate_hz(), 16_000);
    assert!((model.frame_shift_s() - 0.02).abs() < 1e-12);
    let mut rng = StdRng::seed_from_u64(SEED + 2);
    let samples: Vec<f32> = (0..16_000)
        .map(|_| rng.gen_range(-3000.0..3000.0))
        .collect();
    let log_probs = model.log_probs_for_wave(&samples)?;
    // Kaldi framing with snip_edges (its default): 1 + (16000 − 400) / 160 = 98 frames, stacked by 2.
    assert_eq!(log_probs.dim(), (49, model.phones().len()));
    for row in log_probs.rows() {
        let total: f32 = row.iter().map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
    assert_eq!(model.log_probs_for_wave(&[])?.dim(), (0, 40));
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Broken model files. Each edit starts from a valid file's bytes.

/// Rewrite a file's metadata and tensors: `edit` gets the metadata map and the (name -> (shape, f32
/// values)) tensors.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(&mut HashMap<String, String>, &mut HashMap<String, (Vec<usize>, Vec<f32>)>),
) -> Vec<u8> {
    let (_, header) = SafeTensors::read_metadata(bytes).expect("a valid file to start from");
    let mut metadata = header.metadata().clone().expect("phonrec writes metadata");
    let parsed = SafeTensors::deserialize(bytes).expect("a valid file to start from");
    let mut tensors: HashMap<String, (Vec<usize>, Vec<f32>)> = parsed
        .iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name.to_string(), (view.shape().to_vec(), values))
        })
        .collect();
    edit(&mut metadata, &mut tensors);
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, (shape, values))| {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, shape, bytes)
        })
        .collect();
    let views: Vec<_> = encoded
        .iter()
        .map(|(name, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("consistent test tensor");
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize(views, Some(metadata)).expect("serializable")
}

/// Load `bytes` and return the reason of the `InvalidModel` error it must give.
fn invalid_reason(bytes: &[u8]) -> String {
    match ModelFile::load_from_bytes(bytes, "edited.safetensors") {
        Err(Error::InvalidModel { path, reason }) => {
            assert_eq!(path, Path::new("edited.safetensors"));
            reason
        }
        Err(other) => panic!("expected InvalidModel, got {other}"),
        Ok(_) => panic!("an invalid model file was accepted"),
    }
}

fn valid_bytes() -> Vec<u8> {
    small_model_file(SEED)
        .and_then(|file| file.to_bytes())
        .expect("a valid model")
}

#[test]
fn truncated_file_is_refused() {
    let bytes = valid_bytes();
    for keep in [0, 5, 100, bytes.len() / 2, bytes.len() - 1] {
        let reason = invalid_reason(&bytes[..keep]);
        assert!(reason.contains("truncated"), "{keep} bytes: {reason}");
    }
    let reason = invalid_reason(b"RIFF....WAVEfmt not a model at all");
    assert!(reason.contains("safetensors"), "{reason}");
}

#[test]
fn edited_hidden_size_is_refused() {
    let bytes = rewrite(&valid_bytes(), |metadata, _| {
        let mut network: NetworkConfig =
            serde_json::from_str(&metadata["network"]).expect("valid JSON");
        network.hidden_size = 10;
        metadata.insert(
            "network".into(),
            serde_json::to_string(&network).expect("serializable"),
        );
    });
    let reason = invalid_reason(&bytes);
    assert!(
        reason.contains("lstm.0.fwd.weight_ih") && reason.contains("hidden_size 10"),
        "{reason}"
    );
    assert!(
        reason.contains("[48, 160]") && reason.contains("[40, 160]"),
        "{reason}"
    );
}

#[test]
fn other_format_version_is_refused() {
    let bytes = rewrite(&valid_bytes(), |metadata, _| {
        metadata.insert("format_version".into(), (FORMAT_VERSION + 1).to_string());
    });
    let reason = invalid_reason(&bytes);
    assert!(
        reason.contains(&format!("version {}", FORMAT_VERSION + 1))
            && reason.contains(&format!("reads version {FORMAT_VERSION}")),
        "{reason}"
    );
    let bytes = rewrite(&valid_bytes(), |metadata, _| {
        metadata.remove("format_version");
    });
    assert!(invalid_reason(&bytes).contains("'format_version'"));
}

#[test]
fn inconsistent_metadata_is_refused() {
    // A phone set of another size than the outputs.
    let bytes = rewrite(&valid_bytes(), |metadata, _| {
        metadata.insert("phones".into(), r#"["<blk>", "a", "b"]"#.into());
    });
    let reason = invalid_reason(&bytes);
    assert!(
        reason.contains("40 outputs") && reason.contains("3 entries"),
        "{reason}"
    );
    // Feature options that make other frames than the network reads (13 MFCCs instead of 80 fbank).
    let bytes = rewrite(&valid_bytes(), |metadata, _| {
        let mut features = FeatureOptions::default();
        features.base = phonrec::features::BaseFeatures::Mfcc(Default::default());
        metadata.insert(
            "features".into(),
            serde_json::to_string(&features).expect("serializable"),
        );
    });
    let reason = invalid_reason(&bytes);
    assert!(
        reason.contains("80-dim") && reason.contains("13-dim"),
        "{reason}"
    );
    // Broken JSON names its key.
    let bytes = rewrite(&valid_bytes(), |metadata, _| {
        metadata.insert("network".into(), "{\"input_dim\": 80".into());
    });
    assert!(invalid_reason(&bytes).contains("'network'"));
}

#[test]
fn missing_extra_or_damaged_tensors_are_refused() {
    let bytes = rewrite(&valid_bytes(), |_, tensors| {
        tensors.remove("lstm.1.bwd.weight_hh");
    });
    let reason = invalid_reason(&bytes);
    assert!(
        reason.contains("'lstm.1.bwd.weight_hh' is missing"),
        "{reason}"
    );

    let bytes = rewrite(&valid_bytes(), |_, tensors| {
        tensors.insert("lstm.2.fwd.bias".into(), (vec![48], vec![0.0; 48]));
    });
    let reason = invalid_reason(&bytes);
    assert!(
        reason.contains("unexpected tensor(s) lstm.2.fwd.bias"),
        "{reason}"
    );

    let bytes = rewrite(&valid_bytes(), |_, tensors| {
        let (_, values) = tensors.get_mut("out.bias").expect("present");
        values[3] = f32::NAN;
    });
    let reason = invalid_reason(&bytes);
    assert!(
        reason.contains("'out.bias'") && reason.contains("non-finite"),
        "{reason}"
    );

    let bytes = rewrite(&valid_bytes(), |_, tensors| {
        let (shape, values) = tensors.get_mut("out.weight").expect("present");
        *shape = vec![shape[1], shape[0]];
        values.truncate(shape[0] * shape[1]);
    });
    let reason = invalid_reason(&bytes);
    assert!(
        reason.contains("'out.weight' has shape [24, 40]"),
        "{reason}"
    );
}

#[test]
fn a_plain_safetensors_file_is_not_a_model() {
    let bytes = safetensors::serialize(
        [(
            "w",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &[0, 0, 0, 0])
                .expect("4 bytes for one f32"),
        )],
        None,
    )
    .expect("serializable");
    let reason = invalid_reason(&bytes);
    assert!(reason.contains("no __metadata__"), "{reason}");
}

#[test]
fn expected_tensors_follow_the_config() {
    let specs = expected_tensors(&network_config(3));
    assert_eq!(specs.len(), 3 * 6 + 2);
    assert_eq!(specs[0].name, "lstm.0.fwd.weight_ih");
    assert_eq!(specs[0].shape, vec![64, 36]);
    assert_eq!(specs[6].shape, vec![64, 32]);
    assert_eq!(specs[19].name, "out.bias");
}

// ---------------------------------------------------------------------------------------------------
// Training: what a trainer relies on.

#[test]
fn ctc_training_steps_lower_the_loss() -> Result<()> {
    let config = NetworkConfig {
        input_dim: 6,
        num_layers: 2,
        hidden_size: 16,
        dropout: 0.1,
        num_outputs: 5,
        stack_frames: 2,
    };
    let (network, var_map) = Blstm::trainable(&config, &InitOptions::default())?;
    let mut rng = StdRng::seed_from_u64(SEED + 3);
    let utterances: Vec<Array2<f32>> = [30, 22, 26]
        .iter()
        .map(|&frames| random_features(&mut rng, frames, config.input_dim))
        .collect();
    let targets: Vec<Vec<PhoneId>> = vec![
        vec![PhoneId(1), PhoneId(2), PhoneId(3)],
        vec![PhoneId(4), PhoneId(4)],
        vec![PhoneId(2), PhoneId(1), PhoneId(4), PhoneId(3)],
    ];
    let views: Vec<_> = utterances.iter().map(|u| u.view()).collect();
    let (batch, lengths) = features_to_tensor(&views)?;
    let out_lengths = network.output_lengths(&lengths);
    assert_eq!(out_lengths, vec![15, 11, 13]);
    let mut optimizer = candle_nn::AdamW::new(
        var_map.all_vars(),
        candle_nn::ParamsAdamW {
            lr: 0.02,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut masks = DropoutState::default();
    let mut loss_of = |train: bool| -> Result<Tensor> {
        let logits = network.forward_train(&batch, &lengths, train.then_some(&mut masks))?;
        Ok(ctc_loss(&logits, &targets, &out_lengths, Reduction::Mean)?.loss)
    };
    let initial = loss_of(false)?.to_scalar::<f32>()?;
    for _ in 0..40 {
        let loss = loss_of(true)?;
        let grads = loss.backward()?;
        for var in var_map.all_vars() {
            let grad = grads
                .get(var.as_tensor())
                .expect("every weight gets a gradient");
            let norm = grad.sqr()?.sum_all()?.to_scalar::<f32>()?;
            assert!(norm.is_finite());
        }
        optimizer.step(&grads)?;
    }
    let last = loss_of(false)?.to_scalar::<f32>()?;
    assert!(
        last < 0.5 * initial,
        "loss {initial} -> {last} after 40 Adam steps"
    );
    Ok(())
}

#[test]
fn weights_load_through_any_var_builder() -> Result<()> {
    // A trainer resuming from a model file: the file's weights as fresh variables.
    let file = small_model_file(SEED)?;
    let var_map = file.to_var_map()?;
    let network = Blstm::new(
        &file.config().network,
        VarBuilder::from_varmap(&var_map, DType::F32, &Device::Cpu),
    )?;
    let mut rng = StdRng::seed_from_u64(SEED + 4);
    let features = random_features(&mut rng, 9, file.config().network.input_dim);
    assert_eq!(
        network.log_probs(features.view())?,
        file.network()?.log_probs(features.view())?
    );
    assert_eq!(
        var_map.all_vars().len(),
        expected_tensors(&file.config().network).len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Timings (release build): the benchmark shape A of ../shared/bench/README.md.

fn time_it(repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?; // warm-up
    let mut times = Vec::new();
    for _ in 0..repeats {
        let start = std::time::Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

#[test]
#[ignore = "timing; run with --release --ignored --nocapture"]
fn timing_shape_a() -> Result<()> {
    let config = NetworkConfig::default();
    let (network, var_map) = Blstm::trainable(&config, &InitOptions::default())?;
    let mut rng = StdRng::seed_from_u64(SEED);
    let (batch_size, frames) = (16, 400);
    let utterances: Vec<Array2<f32>> = (0..batch_size)
        .map(|_| random_features(&mut rng, frames, config.input_dim))
        .collect();
    let views: Vec<_> = utterances.iter().map(|u| u.view()).collect();
    let (batch, lengths) = features_to_tensor(&views)?;
    let total_frames = (batch_size * frames) as f64;

    let infer = time_it(3, || {
        network.forward(&batch, &lengths)?;
        Ok(())
    })?;
    println!(
        "infer  B=16 T=400 N=3 H=256: {:.3} s, {:.0} frames/s",
        infer,
        total_frames / infer
    );

    // Inference as a loaded model runs it: weights without gradient tracking.
    let file = ModelFile::from_var_map(
        ModelConfig {
            features: FeatureOptions::default(),
            network: config.clone(),
            phones: PhoneSet::timit39(),
            training: TrainingSummary::default(),
        },
        &var_map,
    )?;
    let loaded = file.network()?;
    let infer_loaded = time_it(3, || {
        loaded.forward(&batch, &lengths)?;
        Ok(())
    })?;
    println!(
        "infer  B=16 T=400 (loaded weights): {:.3} s, {:.0} frames/s",
        infer_loaded,
        total_frames / infer_loaded
    );
    let single = utterances[0].slice(s![.., ..]).to_owned();
    let long: Array2<f32> = ndarray::concatenate(
        ndarray::Axis(0),
        &[single.view(), single.view(), single.slice(s![..200, ..])],
    )
    .map_err(|e| Error::Shape(e.to_string()))?;
    let infer_one = time_it(3, || {
        loaded.log_probs(long.view())?;
        Ok(())
    })?;
    println!(
        "infer  B=1 T=1000 (loaded weights): {:.3} s, {:.0} frames/s",
        infer_one,
        1000.0 / infer_one
    );

    let targets: Vec<Vec<PhoneId>> = (0..batch_size)
        .map(|_| (0..50).map(|_| PhoneId(rng.gen_range(1..40))).collect())
        .collect();
    let out_lengths = network.output_lengths(&lengths);
    let train = time_it(3, || {
        let logits = network.forward_train(&batch, &lengths, Some(&mut DropoutState::default()))?;
        let loss = ctc_loss(&logits, &targets, &out_lengths, Reduction::Mean)?.loss;
        loss.backward()?;
        Ok(())
    })?;
    println!(
        "train  B=16 T=400 (fwd + CTC + bwd, no optimizer): {:.3} s, {:.0} frames/s",
        train,
        total_frames / train
    );
    Ok(())
}

#[test]
fn models_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Blstm>();
    assert_send_sync::<Model>();
    assert_send_sync::<ModelFile>();
}
