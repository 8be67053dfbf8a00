//! Function-preserving widening of a trained network (Net2WiderNet-style growth, Chen et al. 2016):
//! every LSTM layer gets more units per direction, and the wider network computes exactly the same
//! outputs as the original until it is trained further.
//!
//! Training a larger network from scratch costs hours; growing a trained one keeps what it learned
//! and spends the extra updates on the extra capacity. The new units read everything (their rows of
//! `weight_ih`, `weight_hh` and `bias` are drawn as for a new network, so they are active and
//! distinct), but nothing reads them yet: the columns through which the old units, the next layer and
//! the output layer see a new unit are zero. Those zeros still receive gradients (a new unit's
//! activation times the error at its reader), so the first updates connect the new units.
//!
//! Index maps: gate blocks are stacked `i, f, g, o` with `H` rows each, so the old row `g·H + r` moves
//! to `g·H' + r`; a layer above the first reads `[h_fwd, h_bwd]`, so the old column `c` moves to `c`
//! (forward half) or `H' + (c − H)` (backward half).

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use super::config::{InitOptions, NetworkConfig};
use super::file::ModelFile;
use super::init::init_weights;
use super::names::{expected_tensors, TensorRole};
use crate::error::{Error, Result};

/// A copy of `model` with `hidden` units per direction in every LSTM layer (at least the current
/// number), computing the same function. `seed` draws the new units' incoming weights.
pub fn widen(model: &ModelFile, hidden: usize, seed: u64) -> Result<ModelFile> {
    let old_config = &model.config().network;
    let old_hidden = old_config.hidden_size;
    if hidden < old_hidden {
        return Err(Error::InvalidOptions {
            what: "widening",
            reason: format!(
                "the model has {old_hidden} units per direction; widening to {hidden} would drop \
                 units (only growing keeps what the network computes)"
            ),
        });
    }
    let network = NetworkConfig {
        hidden_size: hidden,
        ..old_config.clone()
    };
    let init = InitOptions {
        seed,
        ..InitOptions::default()
    };
    let fresh = init_weights(&network, &init)?;
    let fresh = fresh.data().lock().map_err(|_| Error::InvalidOptions {
        what: "widening",
        reason: "the fresh weights' lock is poisoned".into(),
    })?;
    let old_weights = model.weights();
    let mut weights = HashMap::with_capacity(old_weights.len());
    for spec in expected_tensors(&network) {
        let old = old_weights[&spec.name].flatten_all()?.to_vec1::<f32>()?;
        let mut new = fresh[&spec.name]
            .as_tensor()
            .flatten_all()?
            .to_vec1::<f32>()?;
        let cols = spec.shape.get(1).copied().unwrap_or(1);
        let old_cols = match spec.role {
            TensorRole::InputWeight | TensorRole::OutputWeight | TensorRole::RecurrentWeight => {
                old_weights[&spec.name].dims()[1]
            }
            TensorRole::LstmBias | TensorRole::OutputBias => 1,
        };
        // Where each old column lands in the wider matrix.
        let column_map: Vec<usize> = match spec.role {
            TensorRole::RecurrentWeight => (0..old_hidden).collect(),
            TensorRole::InputWeight if spec.name.starts_with("lstm.0.") => (0..old_cols).collect(),
            TensorRole::InputWeight | TensorRole::OutputWeight => (0..old_cols)
                .map(|c| {
                    if c < old_hidden {
                        c
                    } else {
                        hidden + c - old_hidden
                    }
                })
                .collect(),
            TensorRole::LstmBias | TensorRole::OutputBias => vec![0],
        };
        // Which old row each row of the wider tensor keeps (None: a new unit's row, kept as drawn).
        let row_source = |row: usize| -> Option<usize> {
            match spec.role {
                TensorRole::InputWeight | TensorRole::RecurrentWeight | TensorRole::LstmBias => {
                    let (gate, unit) = (row / hidden, row % hidden);
                    (unit < old_hidden).then_some(gate * old_hidden + unit)
                }
                TensorRole::OutputWeight | TensorRole::OutputBias => Some(row),
            }
        };
        for row in 0..spec.shape[0] {
            let Some(old_row) = row_source(row) else {
                continue;
            };
            let target = &mut new[row * cols..(row + 1) * cols];
            // An old unit (or an output) reads no new unit: zero, then the old values in place.
            target.fill(0.0);
            for (old_col, &col) in column_map.iter().enumerate() {
                target[col] = old[old_row * old_cols + old_col];
            }
        }
        let tensor = Tensor::from_vec(new, spec.shape.as_slice(), &Device::Cpu)?;
        weights.insert(spec.name, tensor);
    }
    let mut config = model.config().clone();
    config.network = network;
    ModelFile::new(config, weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{FeatureExtractor, FeatureOptions, FeaturePipeline};
    use crate::model::{Blstm, ModelConfig, TrainingSummary};
    use crate::phones::PhoneSet;
    use ndarray::Array2;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn small_model(hidden: usize, layers: usize) -> Result<ModelFile> {
        let features = FeatureOptions::default();
        let input_dim = FeaturePipeline::new(features.clone())?.dim();
        let phones = PhoneSet::timit39();
        let network = NetworkConfig {
            input_dim,
            num_layers: layers,
            hidden_size: hidden,
            dropout: 0.0,
            num_outputs: phones.len(),
            stack_frames: 2,
        };
        let var_map = init_weights(
            &network,
            &InitOptions {
                seed: 11,
                ..InitOptions::default()
            },
        )?;
        // Non-zero biases everywhere, so that a misplaced bias would show in the outputs.
        for (name, var) in var_map.data().lock().expect("not poisoned").iter() {
            if name.ends_with(".bias") {
                let noise = Tensor::randn(0f32, 0.3, var.dims(), &Device::Cpu)?;
                var.set(&(var.as_tensor() + noise)?)?;
            }
        }
        let config = ModelConfig {
            features,
            network,
            phones,
            training: TrainingSummary::default(),
        };
        ModelFile::from_var_map(config, &var_map)
    }

    fn log_probs(model: &ModelFile, features: &Array2<f32>) -> Result<Vec<f32>> {
        let network: Blstm = model.network()?;
        Ok(network
            .log_probs(features.view())?
            .iter()
            .copied()
            .collect())
    }

    #[test]
    fn widened_network_computes_the_same_outputs() -> Result<()> {
        let model = small_model(8, 3)?;
        let dim = model.config().network.input_dim;
        let mut rng = StdRng::seed_from_u64(5);
        let features = Array2::from_shape_fn((37, dim), |_| rng.gen_range(-2.0f32..2.0));
        let before = log_probs(&model, &features)?;
        let wide = widen(&model, 13, 3)?;
        assert_eq!(wide.config().network.hidden_size, 13);
        let after = log_probs(&wide, &features)?;
        assert_eq!(before.len(), after.len());
        let worst = before
            .iter()
            .zip(&after)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "outputs moved by {worst}");
        Ok(())
    }

    #[test]
    fn new_units_are_drawn_and_not_yet_read() -> Result<()> {
        let model = small_model(8, 2)?;
        let wide = widen(&model, 12, 3)?;
        let values = |name: &str| -> Result<Vec<f32>> {
            Ok(wide.weights()[name].flatten_all()?.to_vec1::<f32>()?)
        };
        // Layer 1 reads [h_fwd (12), h_bwd (12)]; columns 8..12 and 20..24 are new units.
        let w = values("lstm.1.fwd.weight_ih")?;
        let cols = 24;
        for row in 0..4 * 12 {
            let new_unit_row = row % 12 >= 8;
            let read_new: Vec<f32> = [8, 9, 10, 11, 20, 21, 22, 23]
                .iter()
                .map(|&c| w[row * cols + c])
                .collect();
            if new_unit_row {
                assert!(read_new.iter().any(|v| *v != 0.0), "row {row} is all zero");
            } else {
                assert!(
                    read_new.iter().all(|v| *v == 0.0),
                    "old row {row} reads a new unit"
                );
            }
        }
        // The output layer reads no new unit either.
        let out = values("out.weight")?;
        for row in 0..wide.config().network.num_outputs {
            for c in [8, 9, 10, 11, 20, 21, 22, 23] {
                assert_eq!(out[row * cols + c], 0.0);
            }
        }
        Ok(())
    }

    #[test]
    fn narrowing_is_refused() -> Result<()> {
        let model = small_model(8, 1)?;
        let error = widen(&model, 6, 0).unwrap_err().to_string();
        assert!(error.contains("drop"), "{error}");
        Ok(())
    }
}
