//! What the network looks like ([`NetworkConfig`], stored in every model file) and how a new one is
//! initialised before training ([`InitOptions`], a training-time choice that is not stored).

use crate::choice::{Choice, Named};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Shape of the acoustic network: optional frame stacking, `num_layers` bidirectional LSTM layers of
/// `hidden_size` units per direction, then a linear layer to `num_outputs` classes.
///
/// Defaults are the benchmark shape A of `../shared/bench/` (80-dim fbank, 3 × 256, 40 outputs), the
/// size PyTorch peers use for TIMIT. Every field must be present in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Dimension of one feature frame, before stacking; must equal the feature pipeline's dim.
    /// Default 80 (80 log-mel bins).
    pub input_dim: usize,
    /// Number of bidirectional LSTM layers. Default 3; 3–5 is usual for phone recognition.
    pub num_layers: usize,
    /// LSTM units per direction; a layer outputs `2 * hidden_size` values per frame. Default 256.
    pub hidden_size: usize,
    /// Dropout probability on the outputs of every LSTM layer but the last (as PyTorch's
    /// `nn.LSTM(dropout=)`), during training only. In `[0, 1)`. Default 0.2, a common starting point
    /// for a corpus of TIMIT's size.
    pub dropout: f32,
    /// Output classes, the CTC blank included (the phone set's `len()`). Default 40 (39 phones + blank).
    pub num_outputs: usize,
    /// Frames stacked into one network step, with stride equal to the count: the LSTM sees
    /// `ceil(frames / stack_frames)` steps of `stack_frames * input_dim` values, so a frame shift of
    /// 10 ms becomes `10 * stack_frames` ms. 1 means no stacking. Default 1. 2–3 speeds training and
    /// inference by as much; CTC then needs `frames / stack_frames ≥ labels + repeats`.
    pub stack_frames: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            input_dim: 80,
            num_layers: 3,
            hidden_size: 256,
            dropout: 0.2,
            num_outputs: 40,
            stack_frames: 1,
        }
    }
}

/// Largest feature dimension a network reads per frame (before stacking).
pub const MAX_INPUT_DIM: usize = 4096;
/// Most LSTM layers.
pub const MAX_LAYERS: usize = 32;
/// Most LSTM units per direction.
pub const MAX_HIDDEN: usize = 8192;
/// Most feature frames stacked into one network step.
pub const MAX_STACK_FRAMES: usize = 32;
/// Most output classes (phones + blank).
pub const MAX_OUTPUTS: usize = 4096;
/// Most trainable parameters (2 GB of f32 weights).
pub const MAX_PARAMETERS: usize = 500_000_000;

impl NetworkConfig {
    /// Check that every size is positive and the dropout a probability.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| {
            Err(Error::InvalidOptions {
                what: "network",
                reason,
            })
        };
        for (name, value) in [
            ("input_dim", self.input_dim),
            ("num_layers", self.num_layers),
            ("hidden_size", self.hidden_size),
            ("stack_frames", self.stack_frames),
        ] {
            if value == 0 {
                return invalid(format!("{name} must be at least 1"));
            }
        }
        // Upper bounds far above any useful phone recogniser, well below where sizes overflow or
        // one allocation exhausts memory: a damaged model file or a typo in a flag gets an error.
        for (name, value, max) in [
            ("input_dim", self.input_dim, MAX_INPUT_DIM),
            ("num_layers", self.num_layers, MAX_LAYERS),
            ("hidden_size", self.hidden_size, MAX_HIDDEN),
            ("stack_frames", self.stack_frames, MAX_STACK_FRAMES),
            ("num_outputs", self.num_outputs, MAX_OUTPUTS),
        ] {
            if value > max {
                return invalid(format!("{name} must be at most {max}, got {value}"));
            }
        }
        if self.num_parameters() > MAX_PARAMETERS {
            return invalid(format!(
                "{} parameters is more than phonrec builds (at most {MAX_PARAMETERS})",
                self.num_parameters()
            ));
        }
        if self.num_outputs < 2 {
            return invalid(format!(
                "num_outputs must be at least 2 (the CTC blank and one phone), got {}",
                self.num_outputs
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return invalid(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }

    /// Values the first LSTM layer reads per step: `stack_frames * input_dim`.
    pub fn lstm_input_dim(&self) -> usize {
        self.stack_frames * self.input_dim
    }

    /// Network output frames for `num_frames` feature frames: `ceil(num_frames / stack_frames)` (the
    /// last, partial group is padded with zero frames).
    pub fn output_frames(&self, num_frames: usize) -> usize {
        num_frames.div_ceil(self.stack_frames.max(1))
    }

    /// Number of trainable parameters.
    pub fn num_parameters(&self) -> usize {
        let h = self.hidden_size;
        let per_direction = |input: usize| 4 * h * input + 4 * h * h + 4 * h;
        let lstm: usize = (0..self.num_layers)
            .map(|layer| {
                let input = if layer == 0 {
                    self.lstm_input_dim()
                } else {
                    2 * h
                };
                2 * per_direction(input)
            })
            .sum();
        lstm + self.num_outputs * 2 * h + self.num_outputs
    }
}

/// How the weight matrices of a new network are drawn. fan_in and fan_out are those of one gate's
/// matrix (`[hidden_size, inputs]`), since each gate is its own linear map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightInit {
    /// Glorot & Bengio (2010): U(−a, a) with a = √(6 / (fan_in + fan_out)); variance 2 / (fan_in + fan_out).
    XavierUniform,
    /// Glorot & Bengio (2010): N(0, 2 / (fan_in + fan_out)).
    XavierNormal,
    /// He et al. (2015), fan-in mode: N(0, 2 / fan_in). Made for ReLU; larger than Xavier for LSTMs.
    He,
    /// All weights zero. Always refused: every unit of a layer would compute the same function and get
    /// the same gradient, so the units never differentiate. Kept as a variant so that the refusal and
    /// its reason are part of the API rather than a surprise.
    Zeros,
}

impl Choice for WeightInit {
    const CHOICES: &'static [Named<Self>] = &[
        Named {
            value: WeightInit::XavierUniform,
            name: "xavier-uniform",
            help: "Xavier/Glorot uniform",
        },
        Named {
            value: WeightInit::XavierNormal,
            name: "xavier-normal",
            help: "Xavier/Glorot normal",
        },
        Named {
            value: WeightInit::He,
            name: "he",
            help: "He/Kaiming normal",
        },
        Named {
            value: WeightInit::Zeros,
            name: "zeros",
            help: "All zeros: refused, since symmetric units never learn (accepted only to explain that)",
        },
    ];
}

/// Initialisation of a new network. Default: Xavier uniform input and output weights, orthogonal
/// recurrent weights, forget-gate bias 1, seed 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InitOptions {
    /// Distribution of the input-to-hidden and output weights (and of the recurrent weights when
    /// `orthogonal_recurrent` is false). Default `XavierUniform`.
    pub weights: WeightInit,
    /// Draw each gate's `[hidden, hidden]` recurrent matrix as a random orthogonal matrix (QR of a
    /// Gaussian; Saxe et al. 2014), which keeps the recurrence from exploding or vanishing at the start.
    /// Default true.
    pub orthogonal_recurrent: bool,
    /// Initial bias of the forget gate; 1 lets the cell remember by default (Jozefowicz et al. 2015).
    /// Other biases start at 0. Default 1.0.
    pub forget_gate_bias: f32,
    /// Seed of the random draws: the same seed and config give bit-identical weights. Default 0.
    pub seed: u64,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            weights: WeightInit::XavierUniform,
            orthogonal_recurrent: true,
            forget_gate_bias: 1.0,
            seed: 0,
        }
    }
}

impl InitOptions {
    /// Refuse initialisations that cannot train: all-zero weights, a non-finite forget-gate bias.
    pub fn validate(&self) -> Result<()> {
        if self.weights == WeightInit::Zeros {
            return Err(zeros_refused());
        }
        if !self.forget_gate_bias.is_finite() {
            return Err(Error::InvalidOptions {
                what: "initialization",
                reason: format!(
                    "forget_gate_bias must be finite, got {}",
                    self.forget_gate_bias
                ),
            });
        }
        Ok(())
    }
}

/// Why [`WeightInit::Zeros`] is refused.
pub(crate) fn zeros_refused() -> Error {
    Error::InvalidOptions {
        what: "initialization",
        reason:
            "all-zero weights are refused: every unit of a layer would compute the same output \
                 and receive the same gradient, so the units never become different (the symmetry \
                 is never broken) and the network cannot learn; use XavierUniform (the default), \
                 XavierNormal or He"
                .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_frames_round_up() {
        let config = NetworkConfig {
            stack_frames: 3,
            ..NetworkConfig::default()
        };
        assert_eq!(config.output_frames(0), 0);
        assert_eq!(config.output_frames(1), 1);
        assert_eq!(config.output_frames(3), 1);
        assert_eq!(config.output_frames(4), 2);
        assert_eq!(NetworkConfig::default().output_frames(7), 7);
    }

    #[test]
    fn parameter_count_of_shape_a() {
        // ../shared/bench/README.md: shape A (80 inputs, 3 × 256, 40 outputs) has 3.87 M parameters
        // in PyTorch (3 866 664 by its formula), which keeps two bias vectors per direction; we fold
        // them into one, 6 × 1024 fewer.
        let pytorch_count = 3_866_664;
        let folded_biases = 3 * 2 * 4 * 256;
        assert_eq!(
            NetworkConfig::default().num_parameters(),
            pytorch_count - folded_biases
        );
    }

    #[test]
    fn invalid_configs_are_refused() {
        let bad = [
            NetworkConfig {
                num_layers: 0,
                ..NetworkConfig::default()
            },
            NetworkConfig {
                dropout: 1.0,
                ..NetworkConfig::default()
            },
            NetworkConfig {
                num_outputs: 1,
                ..NetworkConfig::default()
            },
            NetworkConfig {
                stack_frames: 0,
                ..NetworkConfig::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
        assert!(NetworkConfig::default().validate().is_ok());
    }

    #[test]
    fn zeros_is_refused_with_the_reason() {
        let init = InitOptions {
            weights: WeightInit::Zeros,
            ..InitOptions::default()
        };
        let message = init.validate().unwrap_err().to_string();
        assert!(message.contains("never"), "{message}");
        assert!(message.contains("symmetry"), "{message}");
    }
}
