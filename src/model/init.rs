//! Seeded initialisation of a new network's weights into a candle `VarMap`, the store a trainer optimises.
//!
//! Input and output weights: Xavier (Glorot & Bengio 2010) or He (He et al. 2015), fans per gate.
//! Recurrent weights: optionally a random orthogonal `[hidden, hidden]` block per gate (Saxe et al. 2014),
//! from the modified Gram–Schmidt QR of a Gaussian matrix, which is Haar-distributed (Mezzadri 2007).
//! Biases: zero except the forget gate's (`forget_gate_bias`, 1 by default, Jozefowicz et al. 2015).

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Normal, Uniform};

use super::config::{zeros_refused, InitOptions, NetworkConfig, WeightInit};
use super::names::{expected_tensors, TensorRole};
use crate::error::{Error, Result};

/// Draw the weights of a new network with `config` into a fresh `VarMap` (f32, CPU), named as
/// [`expected_tensors`] lists them. The same `init.seed` gives bit-identical weights.
///
/// Refuses `WeightInit::Zeros` (see [`InitOptions::validate`]) and invalid configs.
pub fn init_weights(config: &NetworkConfig, init: &InitOptions) -> Result<VarMap> {
    config.validate()?;
    init.validate()?;
    let mut rng = StdRng::seed_from_u64(init.seed);
    let hidden = config.hidden_size;
    let var_map = VarMap::new();
    {
        let mut vars = var_map
            .data()
            .lock()
            .expect("a VarMap created here has no other user that could have panicked");
        for spec in expected_tensors(config) {
            let values = match spec.role {
                TensorRole::InputWeight | TensorRole::OutputWeight => {
                    let (rows, cols) = (spec.shape[0], spec.shape[1]);
                    // LSTM matrices stack 4 gates; each gate is a [hidden, inputs] map of its own.
                    let fan_out = if spec.role == TensorRole::InputWeight {
                        hidden
                    } else {
                        rows
                    };
                    draw(&mut rng, init.weights, cols, fan_out, rows * cols)?
                }
                TensorRole::RecurrentWeight if init.orthogonal_recurrent => {
                    (0..4).flat_map(|_| orthogonal(&mut rng, hidden)).collect()
                }
                TensorRole::RecurrentWeight => {
                    draw(&mut rng, init.weights, hidden, hidden, 4 * hidden * hidden)?
                }
                TensorRole::LstmBias => {
                    let mut bias = vec![0.0; 4 * hidden];
                    bias[hidden..2 * hidden].fill(init.forget_gate_bias);
                    bias
                }
                TensorRole::OutputBias => vec![0.0; spec.shape[0]],
            };
            let tensor = Tensor::from_vec(values, spec.shape.as_slice(), &Device::Cpu)?;
            vars.insert(spec.name, Var::from_tensor(&tensor)?);
        }
    }
    Ok(var_map)
}

/// `count` values from the distribution `scheme` gives a matrix with these fans.
fn draw(
    rng: &mut StdRng,
    scheme: WeightInit,
    fan_in: usize,
    fan_out: usize,
    count: usize,
) -> Result<Vec<f32>> {
    let (fan_in, fan_out) = (fan_in as f64, fan_out as f64);
    let normal = |std: f64| {
        Normal::new(0.0, std).map_err(|e| Error::InvalidOptions {
            what: "initialization",
            reason: e.to_string(),
        })
    };
    let values = match scheme {
        WeightInit::XavierUniform => {
            let limit = (6.0 / (fan_in + fan_out)).sqrt();
            let uniform = Uniform::new_inclusive(-limit, limit);
            (0..count).map(|_| uniform.sample(rng) as f32).collect()
        }
        WeightInit::XavierNormal => {
            let normal = normal((2.0 / (fan_in + fan_out)).sqrt())?;
            (0..count).map(|_| normal.sample(rng) as f32).collect()
        }
        WeightInit::He => {
            let normal = normal((2.0 / fan_in).sqrt())?;
            (0..count).map(|_| normal.sample(rng) as f32).collect()
        }
        WeightInit::Zeros => return Err(zeros_refused()),
    };
    Ok(values)
}

/// A random orthogonal `[size, size]` matrix, row-major: modified Gram–Schmidt in f64 on the columns of a
/// standard Gaussian matrix, run twice for orthogonality to rounding error ("twice is enough",
/// Giraud et al. 2005).
pub(crate) fn orthogonal(rng: &mut StdRng, size: usize) -> Vec<f32> {
    // columns[j] is column j; a Gaussian matrix has full rank with probability 1.
    let mut columns: Vec<Vec<f64>> = (0..size)
        .map(|_| {
            (0..size)
                .map(|_| rng.sample(rand_distr::StandardNormal))
                .collect()
        })
        .collect();
    for _pass in 0..2 {
        for j in 0..size {
            let (done, rest) = columns.split_at_mut(j);
            let column = &mut rest[0];
            for previous in done.iter() {
                let projection: f64 = previous.iter().zip(column.iter()).map(|(a, b)| a * b).sum();
                for (value, p) in column.iter_mut().zip(previous) {
                    *value -= projection * p;
                }
            }
            let norm = column.iter().map(|v| v * v).sum::<f64>().sqrt();
            for value in column.iter_mut() {
                *value /= norm;
            }
        }
    }
    let mut matrix = vec![0.0f32; size * size];
    for (j, column) in columns.iter().enumerate() {
        for (i, value) in column.iter().enumerate() {
            matrix[i * size + j] = *value as f32;
        }
    }
    matrix
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(var_map: &VarMap, name: &str) -> Vec<f32> {
        let vars = var_map.data().lock().expect("not poisoned");
        vars[name]
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("f32 tensor")
    }

    fn mean_and_variance(values: &[f32]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let variance = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, variance)
    }

    /// Sample variance of n ≥ 10⁵ draws is within a few percent of the true one.
    const VARIANCE_RELATIVE_TOLERANCE: f64 = 0.05;
    /// Orthogonalised in f64, stored in f32.
    const ORTHOGONALITY_TOLERANCE: f64 = 1e-5;

    fn config() -> NetworkConfig {
        NetworkConfig {
            input_dim: 40,
            num_layers: 2,
            hidden_size: 96,
            dropout: 0.0,
            num_outputs: 10,
            stack_frames: 2,
        }
    }

    #[test]
    fn xavier_and_he_variances() -> Result<()> {
        let config = config();
        let h = config.hidden_size as f64;
        // layer 1 input weights: fan_in = 2H (both directions of layer 0), fan_out = H per gate.
        let fan_in = 2.0 * h;
        for (scheme, expected) in [
            (WeightInit::XavierUniform, 2.0 / (fan_in + h)),
            (WeightInit::XavierNormal, 2.0 / (fan_in + h)),
            (WeightInit::He, 2.0 / fan_in),
        ] {
            let init = InitOptions {
                weights: scheme,
                ..InitOptions::default()
            };
            let weights = values(&init_weights(&config, &init)?, "lstm.1.bwd.weight_ih");
            let (mean, variance) = mean_and_variance(&weights);
            assert!(
                mean.abs() < 0.01 * expected.sqrt(),
                "{scheme:?} mean {mean}"
            );
            assert!(
                (variance / expected - 1.0).abs() < VARIANCE_RELATIVE_TOLERANCE,
                "{scheme:?}: variance {variance}, expected {expected}"
            );
            if scheme == WeightInit::XavierUniform {
                let limit = (6.0 / (fan_in + h)).sqrt() as f32;
                assert!(weights.iter().all(|v| v.abs() <= limit));
            }
        }
        Ok(())
    }

    #[test]
    fn recurrent_gate_blocks_are_orthogonal() -> Result<()> {
        let config = config();
        let h = config.hidden_size;
        let weights = values(
            &init_weights(&config, &InitOptions::default())?,
            "lstm.0.fwd.weight_hh",
        );
        for gate in 0..4 {
            let block = &weights[gate * h * h..(gate + 1) * h * h];
            for i in 0..h {
                for j in 0..h {
                    let dot: f64 = (0..h)
                        .map(|k| f64::from(block[i * h + k]) * f64::from(block[j * h + k]))
                        .sum();
                    let identity = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        (dot - identity).abs() < ORTHOGONALITY_TOLERANCE,
                        "gate {gate}: (W Wᵀ)[{i}][{j}] = {dot}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn biases_zero_except_forget_gate() -> Result<()> {
        let config = config();
        let h = config.hidden_size;
        let var_map = init_weights(&config, &InitOptions::default())?;
        let bias = values(&var_map, "lstm.1.fwd.bias");
        assert!(bias[..h].iter().all(|&v| v == 0.0));
        assert!(bias[h..2 * h].iter().all(|&v| v == 1.0));
        assert!(bias[2 * h..].iter().all(|&v| v == 0.0));
        assert!(values(&var_map, "out.bias").iter().all(|&v| v == 0.0));
        Ok(())
    }

    #[test]
    fn no_weight_matrix_is_all_zero_and_seeds_reproduce() -> Result<()> {
        let config = config();
        let first = init_weights(&config, &InitOptions::default())?;
        let again = init_weights(&config, &InitOptions::default())?;
        let other = init_weights(
            &config,
            &InitOptions {
                seed: 1,
                ..InitOptions::default()
            },
        )?;
        for spec in expected_tensors(&config) {
            let values_first = values(&first, &spec.name);
            assert_eq!(values_first, values(&again, &spec.name), "{}", spec.name);
            if spec.shape.len() == 2 {
                assert!(values_first.iter().any(|&v| v != 0.0), "{}", spec.name);
                assert_ne!(values_first, values(&other, &spec.name), "{}", spec.name);
            }
        }
        Ok(())
    }

    #[test]
    fn zeros_is_refused() {
        let init = InitOptions {
            weights: WeightInit::Zeros,
            ..InitOptions::default()
        };
        let error = init_weights(&config(), &init)
            .err()
            .expect("Zeros is refused")
            .to_string();
        assert!(error.contains("symmetry"), "{error}");
    }
}
