//! The names of a network's tensors: one scheme for the model file, the network, initialisation and
//! resizing.
//!
//! The tensors and their shapes follow from the network config ([`expected_tensors`], with `H` the
//! hidden size, `C` the number of outputs, `in` = `stack_frames · input_dim` for layer 0 and `2H` above).
//! Names and layouts are PyTorch's `nn.LSTM` / `nn.Linear` ones, gates stacked i, f, g, o:
//!
//! | name                            | shape      | meaning                                          |
//! |---------------------------------|------------|--------------------------------------------------|
//! | `lstm.{layer}.{fwd,bwd}.weight_ih` | `[4H, in]` | input → gates (PyTorch `weight_ih_l{layer}[_reverse]`) |
//! | `lstm.{layer}.{fwd,bwd}.weight_hh` | `[4H, H]`  | previous `h` → gates (`weight_hh_l{layer}[_reverse]`) |
//! | `lstm.{layer}.{fwd,bwd}.bias`      | `[4H]`     | gate bias, PyTorch's `bias_ih + bias_hh`          |
//! | `out.weight`                    | `[C, 2H]`  | last layer's `[h_fwd, h_bwd]` → logits           |
//! | `out.bias`                      | `[C]`      | logit bias                                       |

use super::config::NetworkConfig;

/// Prefix of the LSTM layers' tensors: `lstm.{layer}.{direction}.{kind}`.
pub(crate) const LSTM_PREFIX: &str = "lstm";
/// Name of each direction, forward first.
pub(crate) const DIRECTION_NAMES: [&str; 2] = ["fwd", "bwd"];
/// Input → gates matrix of a direction.
pub(crate) const WEIGHT_IH: &str = "weight_ih";
/// Recurrent matrix of a direction.
pub(crate) const WEIGHT_HH: &str = "weight_hh";
/// Bias of a direction, or of the output layer.
pub(crate) const BIAS: &str = "bias";
/// Prefix of the output layer's tensors: `out.weight`, `out.bias`.
pub(crate) const OUTPUT_PREFIX: &str = "out";
/// Weight matrix of the output layer.
pub(crate) const OUTPUT_WEIGHT: &str = "weight";

/// One tensor a model file holds: its name and shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Stable name, e.g. `lstm.0.fwd.weight_ih`.
    pub name: String,
    /// Shape, e.g. `[4·hidden, inputs]`.
    pub shape: Vec<usize>,
    pub(crate) role: TensorRole,
}

/// What a tensor is for; initialisation depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TensorRole {
    InputWeight,
    RecurrentWeight,
    LstmBias,
    OutputWeight,
    OutputBias,
}

/// The name prefix of LSTM layer `layer`'s tensors (`lstm.{layer}`), both directions.
pub(crate) fn lstm_layer_prefix(layer: usize) -> String {
    format!("{LSTM_PREFIX}.{layer}")
}

/// Every tensor of a network with `config`, in a fixed order: layer by layer, `fwd` before `bwd`,
/// `weight_ih`, `weight_hh`, `bias`; then `out.weight`, `out.bias` (the table in the module docs).
pub fn expected_tensors(config: &NetworkConfig) -> Vec<TensorSpec> {
    let hidden = config.hidden_size;
    let mut specs = Vec::with_capacity(6 * config.num_layers + 2);
    let mut push =
        |name: String, shape: Vec<usize>, role| specs.push(TensorSpec { name, shape, role });
    for layer in 0..config.num_layers {
        let inputs = if layer == 0 {
            config.lstm_input_dim()
        } else {
            2 * hidden
        };
        for direction in DIRECTION_NAMES {
            let prefix = format!("{LSTM_PREFIX}.{layer}.{direction}");
            push(
                format!("{prefix}.{WEIGHT_IH}"),
                vec![4 * hidden, inputs],
                TensorRole::InputWeight,
            );
            push(
                format!("{prefix}.{WEIGHT_HH}"),
                vec![4 * hidden, hidden],
                TensorRole::RecurrentWeight,
            );
            push(
                format!("{prefix}.{BIAS}"),
                vec![4 * hidden],
                TensorRole::LstmBias,
            );
        }
    }
    push(
        format!("{OUTPUT_PREFIX}.{OUTPUT_WEIGHT}"),
        vec![config.num_outputs, 2 * hidden],
        TensorRole::OutputWeight,
    );
    push(
        format!("{OUTPUT_PREFIX}.{BIAS}"),
        vec![config.num_outputs],
        TensorRole::OutputBias,
    );
    specs
}
