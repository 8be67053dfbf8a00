//! Stage 3, the acoustic network: features `[batch, frames, input_dim]` + lengths -> (frame stacking) ->
//! `num_layers` bidirectional LSTM layers -> linear -> logits or log-probs `[batch, out_frames, outputs]`.
//!
//! The architecture of DESIGN.md ("Network"), with PyTorch's `nn.LSTM(bidirectional=True)` semantics
//! per layer (see `lstm.rs`), dropout between layers as `nn.LSTM(dropout=)`, then `nn.Linear`.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use ndarray::{Array2, ArrayView2};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::bf16::Precision;
use super::config::{InitOptions, NetworkConfig};
use super::fused::{blstm_layer_fused, blstm_layer_prepared, PreparedLayer};
use super::init::init_weights;
use super::lstm::{blstm_layer_reference, LstmWeights};
use super::names::{
    BIAS, DIRECTION_NAMES, LSTM_PREFIX, OUTPUT_PREFIX, OUTPUT_WEIGHT, WEIGHT_HH, WEIGHT_IH,
};
use crate::choice::{Choice, Named};
use crate::error::{Error, Result};
use crate::util::mix_seed;

/// Which implementation runs the LSTM layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LstmKernel {
    /// The fused CPU kernel with its hand-written backward pass (f32 on the CPU; other dtypes fall back
    /// to the reference). The default.
    #[default]
    Fused,
    /// Plain candle ops with candle's autograd: slow, obviously right; the fused kernel is tested
    /// against it.
    Reference,
}

impl Choice for LstmKernel {
    const CHOICES: &'static [Named<Self>] = &[
        Named {
            value: LstmKernel::Fused,
            name: "fused",
            help: "The fused CPU kernel (the library's default)",
        },
        Named {
            value: LstmKernel::Reference,
            name: "reference",
            help: "Plain candle ops with candle's autograd: the slow reference the fused kernel is tested against",
        },
    ];
}

/// The deep bidirectional LSTM with its output layer.
///
/// Built by [`Blstm::new`] from any `VarBuilder` (a model file's tensors for inference, a trainer's
/// `VarMap` for training), or by [`Blstm::trainable`] with fresh weights. It holds only the weights and
/// how to compute with them (the [`LstmKernel`], chosen once like a backend); training state such as
/// dropout's masks is passed in ([`forward_train`](Self::forward_train)). It is `Send + Sync`: one
/// network can serve several threads.
pub struct Blstm {
    config: NetworkConfig,
    /// Per layer, the forward then the backward direction.
    layers: Vec<[LstmWeights; 2]>,
    /// `[num_outputs, 2·hidden]`.
    output_weight: Tensor,
    /// `[num_outputs]`.
    output_bias: Tensor,
    kernel: LstmKernel,
    /// The fused kernel's arithmetic in passes that track gradients (training): f32, or bf16
    /// products accumulated in f32 (see [`set_training_precision`](Self::set_training_precision)).
    training_precision: Precision,
    /// Each layer's weights packed for the fused kernel, once, for a network whose weights no longer
    /// change (see [`prepare_for_inference`](Self::prepare_for_inference)); `None` while training.
    prepared: Option<Vec<PreparedLayer>>,
}

impl std::fmt::Debug for Blstm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The weights are millions of numbers; the shape and kernel say which network this is.
        f.debug_struct("Blstm")
            .field("config", &self.config)
            .field("kernel", &self.kernel)
            .finish_non_exhaustive()
    }
}

/// Where dropout's random masks stand: the masks of a training forward pass are drawn from
/// `(seed, step)`, and `step` counts training forward passes. Saving it with a checkpoint and restoring
/// it makes a resumed run draw the masks an uninterrupted one would.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropoutState {
    /// Seed of the masks (a trainer takes it from [`InitOptions::seed`]).
    pub seed: u64,
    /// Training forward passes made so far.
    pub step: u64,
}

impl Blstm {
    /// The network `config` describes, its weights taken from `vb` under the names
    /// [`expected_tensors`](super::expected_tensors) lists. A weight missing from `vb` is an error, never
    /// silently created (a `VarMap` would create it as zeros).
    pub fn new(config: &NetworkConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        if let Err(error) = config.validate() {
            candle_core::bail!("{error}");
        }
        let hidden = config.hidden_size;
        let get = |vb: &VarBuilder, shape: &[usize], name: &str| {
            if !vb.contains_tensor(name) {
                candle_core::bail!("the network's weights lack '{}.{name}'", vb.prefix());
            }
            vb.get(shape, name)
        };
        let lstm = vb.pp(LSTM_PREFIX);
        let mut layers = Vec::with_capacity(config.num_layers);
        for layer in 0..config.num_layers {
            let inputs = if layer == 0 {
                config.lstm_input_dim()
            } else {
                2 * hidden
            };
            let layer_vb = lstm.pp(layer);
            let direction = |name: &str| -> candle_core::Result<LstmWeights> {
                let vb = layer_vb.pp(name);
                Ok(LstmWeights {
                    weight_ih: get(&vb, &[4 * hidden, inputs], WEIGHT_IH)?,
                    weight_hh: get(&vb, &[4 * hidden, hidden], WEIGHT_HH)?,
                    bias: get(&vb, &[4 * hidden], BIAS)?,
                })
            };
            layers.push([
                direction(DIRECTION_NAMES[0])?,
                direction(DIRECTION_NAMES[1])?,
            ]);
        }
        let out = vb.pp(OUTPUT_PREFIX);
        Ok(Blstm {
            config: config.clone(),
            layers,
            output_weight: get(&out, &[config.num_outputs, 2 * hidden], OUTPUT_WEIGHT)?,
            output_bias: get(&out, &[config.num_outputs], BIAS)?,
            kernel: LstmKernel::default(),
            training_precision: Precision::F32,
            prepared: None,
        })
    }

    /// A new network with weights drawn as `init` says, and the `VarMap` holding them (every trainable
    /// variable, for the optimizer). Refuses
    /// `WeightInit::Zeros` and invalid configs.
    pub fn trainable(config: &NetworkConfig, init: &InitOptions) -> Result<(Self, VarMap)> {
        let var_map = init_weights(config, init)?;
        let network = Blstm::new(
            config,
            VarBuilder::from_varmap(&var_map, DType::F32, &Device::Cpu),
        )?;
        Ok((network, var_map))
    }

    /// The network's shape.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Output frames for each input length (`ceil(length / stack_frames)`): the lengths to give the CTC
    /// loss and decoders.
    pub fn output_lengths(&self, lengths: &[usize]) -> Vec<usize> {
        lengths
            .iter()
            .map(|&length| self.config.output_frames(length))
            .collect()
    }

    /// Log-probabilities for inference (no dropout).
    ///
    /// `features` `[batch, frames, input_dim]` (f32), padded; `lengths[b]` ≤ `frames` is sequence `b`'s
    /// valid frames. Returns natural-log posteriors `[batch, out_frames, num_outputs]`, blank = class 0,
    /// `out_frames = ceil(frames / stack_frames)`. Rows at or past a sequence's
    /// [`output_lengths`](Self::output_lengths) are zero; the rows before are exactly what the sequence
    /// gives alone (the backward direction starts at each sequence's own last frame).
    pub fn forward(&self, features: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor> {
        let logits = self.forward_train(features, lengths, None)?;
        let log_probs = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1)?;
        match self.output_mask(lengths, logits.dim(1)?, logits.dtype())? {
            Some(mask) => log_probs.broadcast_mul(&mask),
            None => Ok(log_probs),
        }
    }

    /// Logits `[batch, out_frames, num_outputs]`, for the CTC loss (which applies log_softmax itself).
    /// Same inputs as [`forward`](Self::forward); logits at padded positions are zero. With `dropout`
    /// (training), dropout is applied between LSTM layers with masks drawn from the state, whose
    /// `step` then advances by one (when the config's dropout is above 0); without, none is.
    pub fn forward_train(
        &self,
        features: &Tensor,
        lengths: &[usize],
        dropout: Option<&mut DropoutState>,
    ) -> candle_core::Result<Tensor> {
        let (batch, frames, _) = features.dims3()?;
        let num_outputs = self.config.num_outputs;
        let steps = self.config.output_frames(frames);
        let dtype = features.dtype();
        if batch == 0 || steps == 0 {
            return Tensor::zeros((batch, steps, num_outputs), dtype, features.device());
        }
        let hidden_states = self.top_hidden_states(features, lengths, dropout)?;
        let logits = hidden_states
            .matmul(&self.output_weight.t()?)?
            .broadcast_add(&self.output_bias)?
            .reshape((steps, batch, num_outputs))?
            .transpose(0, 1)?
            .contiguous()?;
        match self.output_mask(lengths, steps, dtype)? {
            Some(mask) => logits.broadcast_mul(&mask),
            None => Ok(logits),
        }
    }

    /// The last BiLSTM layer's outputs, time-major `[steps · batch, 2 · hidden]` (row `t · batch +
    /// b`), forward direction first in each row: what the output layer (and a frame head) reads.
    /// Same inputs as [`forward_train`](Self::forward_train); rows past a sequence's output length
    /// are not meaningful.
    pub fn top_hidden_states(
        &self,
        features: &Tensor,
        lengths: &[usize],
        dropout: Option<&mut DropoutState>,
    ) -> candle_core::Result<Tensor> {
        let (batch, frames, dim) = features.dims3()?;
        if dim != self.config.input_dim {
            candle_core::bail!(
                "the network reads {}-dim feature frames, got {dim}",
                self.config.input_dim
            );
        }
        if lengths.len() != batch {
            candle_core::bail!("{} lengths for a batch of {batch}", lengths.len());
        }
        if let Some(&length) = lengths.iter().find(|&&length| length > frames) {
            candle_core::bail!("length {length} exceeds the batch's {frames} frames");
        }
        let hidden = self.config.hidden_size;
        let steps = self.config.output_frames(frames);
        let dtype = features.dtype();
        if batch == 0 || steps == 0 {
            return Tensor::zeros((steps * batch, 2 * hidden), dtype, features.device());
        }
        let masks = match dropout {
            Some(state) if self.config.dropout > 0.0 => {
                let this_pass = *state;
                state.step += 1;
                Some(this_pass)
            }
            _ => None,
        };

        let stacked = self.stack_frames(features, lengths)?; // [batch, steps, stack·dim]
        let output_lengths = self.output_lengths(lengths);
        let step_masks = if output_lengths.iter().any(|&length| length < steps) {
            let values: Vec<f32> = (0..steps)
                .flat_map(|t| {
                    output_lengths
                        .iter()
                        .map(move |&l| f32::from(u8::from(t < l)))
                })
                .collect();
            Some(Tensor::from_vec(values, (steps, batch, 1), features.device())?.to_dtype(dtype)?)
        } else {
            None
        };
        // Time-major rows (t·batch + b) from here on: each step is a contiguous block.
        let mut hidden_states = stacked
            .transpose(0, 1)?
            .contiguous()?
            .reshape((steps * batch, self.config.lstm_input_dim()))?;
        for (index, directions) in self.layers.iter().enumerate() {
            if let (Some(masks), true) = (masks, index > 0) {
                hidden_states = self.dropout(&hidden_states, masks, index)?;
            }
            let fused = self.kernel == LstmKernel::Fused
                && hidden_states.dtype() == DType::F32
                && hidden_states.device().is_cpu();
            hidden_states = if let (true, Some(prepared)) =
                (fused, self.prepared_layer(index, &hidden_states))
            {
                blstm_layer_prepared(&hidden_states, batch, prepared, &output_lengths)?
            } else if fused {
                blstm_layer_fused(
                    &hidden_states,
                    batch,
                    directions,
                    &output_lengths,
                    self.training_precision,
                    index == 0,
                )?
            } else {
                blstm_layer_reference(&hidden_states, batch, directions, step_masks.as_ref())?
            };
        }
        debug_assert_eq!(hidden_states.dims(), [steps * batch, 2 * hidden]);
        Ok(hidden_states)
    }

    /// Log-probabilities `[out_frames, num_outputs]` of one utterance's features `[frames, input_dim]`.
    pub fn log_probs(&self, features: ArrayView2<f32>) -> Result<Array2<f32>> {
        let mut one = self.log_probs_batch(&[features])?;
        one.pop()
            .ok_or_else(|| Error::Shape("no output for the utterance".into()))
    }

    /// [`log_probs`](Self::log_probs) of several utterances in one padded batch: the same results (up
    /// to float rounding), in less time than one by one, since a batched step reads each weight once
    /// for all of them.
    pub fn log_probs_batch(&self, utterances: &[ArrayView2<f32>]) -> Result<Vec<Array2<f32>>> {
        let num_outputs = self.config.num_outputs;
        self.each_utterance(utterances, num_outputs, |batch, lengths| {
            let log_probs = self.forward(batch, lengths)?;
            let padded_steps = log_probs.dim(1)?;
            let values = log_probs.flatten_all()?.to_vec1::<f32>()?;
            lengths
                .iter()
                .enumerate()
                .map(|(b, &frames)| {
                    let steps = self.config.output_frames(frames);
                    let start = b * padded_steps * num_outputs;
                    Array2::from_shape_vec(
                        (steps, num_outputs),
                        values[start..start + steps * num_outputs].to_vec(),
                    )
                    .map_err(|e| Error::Shape(e.to_string()))
                })
                .collect()
        })
    }

    /// The last BiLSTM layer's outputs `[out_frames, 2 · hidden]` of several utterances in one padded
    /// batch (see [`top_hidden_states`](Self::top_hidden_states)), no dropout.
    pub fn top_hidden_batch(&self, utterances: &[ArrayView2<f32>]) -> Result<Vec<Array2<f32>>> {
        let width = 2 * self.config.hidden_size;
        self.each_utterance(utterances, width, |batch, lengths| {
            let hidden = self.top_hidden_states(batch, lengths, None)?;
            let rows = hidden.dim(0)?;
            let values = hidden.flatten_all()?.to_vec1::<f32>()?;
            let all = Array2::from_shape_vec((rows, width), values)
                .map_err(|e| Error::Shape(e.to_string()))?;
            // Time-major rows: step t of sequence b is row t · batch + b.
            Ok(lengths
                .iter()
                .enumerate()
                .map(|(b, &frames)| {
                    all.slice(ndarray::s![b..; lengths.len(), ..])
                        .slice(ndarray::s![..self.config.output_frames(frames), ..])
                        .to_owned()
                })
                .collect())
        })
    }

    /// Check the utterances' feature width, run `pass` (padded batch, lengths → one `[steps, width]`
    /// array per sequence) on the non-empty ones as one batch, and give empty utterances empty
    /// outputs, in input order.
    fn each_utterance(
        &self,
        utterances: &[ArrayView2<f32>],
        width: usize,
        pass: impl FnOnce(&Tensor, &[usize]) -> Result<Vec<Array2<f32>>>,
    ) -> Result<Vec<Array2<f32>>> {
        if let Some(features) = utterances
            .iter()
            .find(|features| features.ncols() != self.config.input_dim)
        {
            return Err(Error::FeatureDim {
                expected: self.config.input_dim,
                actual: features.ncols(),
            });
        }
        let mut outputs: Vec<Array2<f32>> = vec![Array2::zeros((0, width)); utterances.len()];
        let running: Vec<usize> = (0..utterances.len())
            .filter(|&u| utterances[u].nrows() > 0)
            .collect();
        if running.is_empty() {
            return Ok(outputs);
        }
        let inputs: Vec<ArrayView2<f32>> = running.iter().map(|&u| utterances[u].view()).collect();
        let (batch, lengths) = features_to_tensor(&inputs)?;
        for (&u, output) in running.iter().zip(pass(&batch, &lengths)?) {
            outputs[u] = output;
        }
        Ok(outputs)
    }

    /// The output layer's log-posteriors `[frames, num_outputs]` of last-hidden-layer rows
    /// `[frames, 2 · hidden]` (as [`top_hidden_batch`](Self::top_hidden_batch) gives them): the same
    /// as [`log_probs`](Self::log_probs) of the features they came from, without running the LSTM
    /// again.
    pub fn log_probs_from_hidden(&self, hidden: ArrayView2<f32>) -> Result<Array2<f32>> {
        let width = 2 * self.config.hidden_size;
        if hidden.ncols() != width {
            return Err(Error::Shape(format!(
                "hidden rows of {} values for a network with {width}",
                hidden.ncols()
            )));
        }
        let rows = hidden.nrows();
        if rows == 0 {
            return Ok(Array2::zeros((0, self.config.num_outputs)));
        }
        let values: Vec<f32> = hidden.iter().copied().collect();
        let hidden = Tensor::from_vec(values, (rows, width), self.output_weight.device())?;
        let logits = hidden
            .matmul(&self.output_weight.t()?)?
            .broadcast_add(&self.output_bias)?;
        let log_probs = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1)?;
        Array2::from_shape_vec(
            (rows, self.config.num_outputs),
            log_probs.flatten_all()?.to_vec1::<f32>()?,
        )
        .map_err(|e| Error::Shape(e.to_string()))
    }

    /// Pack every layer's weights for the fused kernel once, for inference: a network that will not
    /// be trained any more (a loaded model) then skips re-packing ~10 MB of weights a layer on every
    /// call, which cost more than the network itself on short clips. Costs one more f32 copy of the
    /// LSTM weights in memory. Do not call it on a network that is being trained: the packed copy would
    /// not follow the weights (passes that track gradients ignore it anyway).
    pub fn prepare_for_inference(&mut self) -> Result<()> {
        self.prepare_for_inference_in(Precision::F32)
    }

    /// [`prepare_for_inference`](Self::prepare_for_inference) in the given precision:
    /// [`Precision::Bf16`] stores the packed LSTM weights in bfloat16 (faster at batch 1, posteriors
    /// close to but not equal to f32's; see [`Precision`]).
    pub fn prepare_for_inference_in(&mut self, precision: Precision) -> Result<()> {
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(index, directions)| PreparedLayer::new(directions, precision, index == 0))
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.prepared = Some(layers);
        Ok(())
    }

    /// [`prepare_for_inference`](Self::prepare_for_inference) for a network that will only ever run
    /// inference with the fused kernel (a loaded [`Model`](super::Model)), dropping each layer's f32
    /// LSTM weights as soon as they are packed: the packed copy is all such passes read, and packing
    /// layer by layer keeps the peak at one layer's copy beside the weights (the built-in model's
    /// unpacked weights are ~24 MB). Afterwards the reference kernel or a pass that tracks gradients
    /// would fail with a shape error (never compute with missing weights).
    pub(crate) fn prepare_for_inference_only(&mut self, precision: Precision) -> Result<()> {
        if self.kernel != LstmKernel::Fused {
            return self.prepare_for_inference_in(precision);
        }
        let empty = Tensor::zeros(0, DType::F32, &candle_core::Device::Cpu)?;
        let mut prepared = Vec::with_capacity(self.layers.len());
        for (index, directions) in self.layers.iter_mut().enumerate() {
            prepared.push(PreparedLayer::new(directions, precision, index == 0)?);
            for weights in directions.iter_mut() {
                weights.weight_ih = empty.clone();
                weights.weight_hh = empty.clone();
            }
        }
        self.prepared = Some(prepared);
        Ok(())
    }

    /// Layer `index`'s prepared weights, when they may serve this pass: prepared, and nothing in the
    /// pass (input or weights) tracks gradients.
    fn prepared_layer(&self, index: usize, input: &Tensor) -> Option<&PreparedLayer> {
        let layer = self.prepared.as_ref()?.get(index)?;
        let tracked = input.track_op()
            || self.layers[index]
                .iter()
                .any(|d| d.weight_ih.track_op() || d.weight_hh.track_op() || d.bias.track_op());
        (!tracked).then_some(layer)
    }

    /// Choose the LSTM implementation (the fused kernel by default).
    pub fn set_kernel(&mut self, kernel: LstmKernel) {
        self.kernel = kernel;
    }

    /// The LSTM implementation in use.
    pub fn kernel(&self) -> LstmKernel {
        self.kernel
    }

    /// The arithmetic of the fused kernel's products in passes without prepared weights (training):
    /// [`Precision::F32`] (the default), or [`Precision::Bf16`], mixed precision: the recurrence's
    /// products forwards and backwards and the input projections of all layers but the first round
    /// their operands to bf16 and accumulate in f32 (on AMX tiles where the CPU has them), while the
    /// weights, their gradients, the cell arithmetic and the optimizer stay f32. The first layer
    /// projects the features in f32, as inference does. [`Precision::Int8`] is an inference format
    /// and is refused here.
    pub fn set_training_precision(&mut self, precision: Precision) -> Result<()> {
        if precision == Precision::Int8 {
            return Err(Error::InvalidOptions {
                what: "training",
                reason: "int8 is an inference precision: train in f32 or bf16".into(),
            });
        }
        self.training_precision = precision;
        Ok(())
    }

    /// `[batch, frames, dim]` -> `[batch, ceil(frames / k), k·dim]`: frames `k·s .. k·s + k` side by side.
    /// Frames past each length are zeroed first, so a sequence's last, partial group holds zeros whether
    /// it is padded in a batch or alone, and padding (whatever it holds) cannot reach valid outputs.
    fn stack_frames(&self, features: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor> {
        let (batch, frames, dim) = features.dims3()?;
        let k = self.config.stack_frames;
        let mut features = features.clone();
        if lengths.iter().any(|&length| length < frames) {
            let valid: Vec<u8> = lengths
                .iter()
                .flat_map(|&length| (0..frames).map(move |t| u8::from(t < length)))
                .collect();
            let valid = Tensor::from_vec(valid, (batch, frames, 1), features.device())?
                .broadcast_as(features.shape())?;
            features = valid.where_cond(&features, &features.zeros_like()?)?;
        }
        let steps = frames.div_ceil(k);
        if steps * k > frames {
            features = features.pad_with_zeros(1, 0, steps * k - frames)?;
        }
        features.reshape((batch, steps, k * dim))
    }

    /// `[batch, steps, 1]`, 1 on valid output frames, or `None` if every sequence fills the batch.
    fn output_mask(
        &self,
        lengths: &[usize],
        steps: usize,
        dtype: DType,
    ) -> candle_core::Result<Option<Tensor>> {
        let output_lengths = self.output_lengths(lengths);
        if output_lengths.iter().all(|&length| length == steps) {
            return Ok(None);
        }
        let values: Vec<f32> = output_lengths
            .iter()
            .flat_map(|&length| (0..steps).map(move |t| f32::from(u8::from(t < length))))
            .collect();
        Tensor::from_vec(values, (lengths.len(), steps, 1), &Device::Cpu)?
            .to_dtype(dtype)
            .map(Some)
    }

    /// Inverted dropout on the input of LSTM layer `layer`: zero each value with probability p, scale the
    /// rest by 1/(1−p). The mask comes from a generator seeded by (seed, step, layer), not from candle's
    /// unseedable CPU generator, so runs are reproducible.
    fn dropout(
        &self,
        x: &Tensor,
        masks: DropoutState,
        layer: usize,
    ) -> candle_core::Result<Tensor> {
        let p = self.config.dropout;
        let scale = 1.0 / (1.0 - p);
        let seed = mix_seed(mix_seed(masks.seed, masks.step, 0), layer as u64, 0);
        let mut rng = StdRng::seed_from_u64(seed);
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| if rng.gen::<f32>() < p { 0.0 } else { scale })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }
}

/// Pad utterances' features into one batch: `[batch, max frames, dim]` (f32, CPU, zeros after each
/// utterance) and the lengths. The one place where features cross from ndarray to candle.
pub fn features_to_tensor(utterances: &[ArrayView2<f32>]) -> Result<(Tensor, Vec<usize>)> {
    let dim = utterances.first().map_or(0, |features| features.ncols());
    if let Some((index, features)) = utterances
        .iter()
        .enumerate()
        .find(|(_, features)| features.ncols() != dim)
    {
        return Err(Error::Shape(format!(
            "utterance {index} has {}-dim features, utterance 0 has {dim}-dim",
            features.ncols()
        )));
    }
    let lengths: Vec<usize> = utterances.iter().map(|features| features.nrows()).collect();
    let frames = lengths.iter().copied().max().unwrap_or(0);
    let mut values = vec![0.0f32; utterances.len() * frames * dim];
    for (b, features) in utterances.iter().enumerate() {
        for (t, row) in features.rows().into_iter().enumerate() {
            let start = (b * frames + t) * dim;
            for (slot, value) in values[start..start + dim].iter_mut().zip(row) {
                *slot = *value;
            }
        }
    }
    let tensor = Tensor::from_vec(values, (utterances.len(), frames, dim), &Device::Cpu)?;
    Ok((tensor, lengths))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same f32 computation, different batch composition: only GEMM blocking differs.
    const BATCH_TOLERANCE: f32 = 1e-5;

    fn config(stack_frames: usize) -> NetworkConfig {
        NetworkConfig {
            input_dim: 5,
            num_layers: 2,
            hidden_size: 6,
            dropout: 0.5,
            num_outputs: 4,
            stack_frames,
        }
    }

    fn features(seed: u64, frames: usize, dim: usize) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        Array2::from_shape_fn((frames, dim), |_| rng.gen_range(-2.0..2.0))
    }

    #[test]
    fn a_batch_of_utterances_gives_each_its_own_log_probs() -> Result<()> {
        for stack in [1, 2] {
            let (network, _vars) = Blstm::trainable(&config(stack), &InitOptions::default())?;
            // Different lengths: the shorter ones are padded inside the batch.
            let inputs: Vec<Array2<f32>> = [23, 7, 16, 1]
                .iter()
                .enumerate()
                .map(|(seed, &frames)| features(seed as u64 + 10, frames, 5))
                .collect();
            let views: Vec<ArrayView2<f32>> = inputs.iter().map(|f| f.view()).collect();
            let batched = network.log_probs_batch(&views)?;
            assert_eq!(batched.len(), inputs.len());
            for (input, together) in inputs.iter().zip(&batched) {
                let alone = network.log_probs(input.view())?;
                assert_eq!(alone.dim(), together.dim());
                let worst = alone
                    .iter()
                    .zip(together)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(worst < BATCH_TOLERANCE, "stack {stack}: {worst}");
            }
        }
        Ok(())
    }

    #[test]
    fn hidden_rows_projected_give_the_log_probs_for_each_utterance_of_a_batch() -> Result<()> {
        for stack in [1, 2] {
            let (network, _vars) = Blstm::trainable(&config(stack), &InitOptions::default())?;
            let inputs: Vec<Array2<f32>> = [9, 17, 4]
                .iter()
                .enumerate()
                .map(|(seed, &frames)| features(seed as u64 + 30, frames, 5))
                .collect();
            let views: Vec<ArrayView2<f32>> = inputs.iter().map(|f| f.view()).collect();
            let hidden = network.top_hidden_batch(&views)?;
            for (input, rows) in inputs.iter().zip(&hidden) {
                let expected = network.log_probs(input.view())?;
                assert_eq!(rows.dim(), (expected.nrows(), 12));
                let projected = network.log_probs_from_hidden(rows.view())?;
                let worst = expected
                    .iter()
                    .zip(&projected)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(worst < BATCH_TOLERANCE, "stack {stack}: {worst}");
            }
            let windowed = network.top_hidden_windowed(inputs[1].view())?;
            assert_eq!(windowed.dim(), hidden[1].dim());
            let worst = windowed
                .iter()
                .zip(&hidden[1])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < BATCH_TOLERANCE, "stack {stack}: {worst}");
        }
        Ok(())
    }

    /// The network of `vars` as a loaded model holds it: plain tensors, not variables.
    fn loaded_copy(vars: &VarMap, stack: usize) -> Result<Blstm> {
        let tensors: std::collections::HashMap<String, Tensor> = vars
            .data()
            .lock()
            .map_err(|_| Error::Shape("poisoned".into()))?
            .iter()
            .map(|(name, var)| (name.clone(), var.as_tensor().detach()))
            .collect();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        Ok(Blstm::new(&config(stack), vb)?)
    }

    #[test]
    fn weights_prepared_once_give_exactly_what_packing_per_call_gives() -> Result<()> {
        for stack in [1, 2] {
            let (_, vars) = Blstm::trainable(&config(stack), &InitOptions::default())?;
            let mut network = loaded_copy(&vars, stack)?;
            let inputs: Vec<Array2<f32>> = [23, 7, 16, 1]
                .iter()
                .enumerate()
                .map(|(seed, &frames)| features(seed as u64 + 30, frames, 5))
                .collect();
            let views: Vec<ArrayView2<f32>> = inputs.iter().map(|f| f.view()).collect();
            let per_call = network.log_probs_batch(&views)?;
            let alone = network.log_probs(views[0])?;
            network.prepare_for_inference()?;
            let input = Tensor::zeros((1, 5), DType::F32, &Device::Cpu)?;
            assert!(
                network.prepared_layer(0, &input).is_some(),
                "the pass uses them"
            );
            assert_eq!(network.log_probs_batch(&views)?, per_call, "stack {stack}");
            assert_eq!(network.log_probs(views[0])?, alone, "stack {stack}");
        }
        // A network being trained never uses a prepared copy: its weights are variables.
        let (mut training, _vars) = Blstm::trainable(&config(1), &InitOptions::default())?;
        training.prepare_for_inference()?;
        let input = Tensor::zeros((1, 5), DType::F32, &Device::Cpu)?;
        assert!(training.prepared_layer(0, &input).is_none());
        Ok(())
    }

    #[test]
    fn inference_projecting_in_chunks_gives_the_training_pass_to_the_bit() -> Result<()> {
        // Inference projects each direction's input a chunk of steps at a time; a network being
        // trained (its weights variables) projects the whole sequence at once. Sequences several
        // chunks long, of different lengths in one batch, must come out the same.
        for stack in [1, 2] {
            let (training, vars) = Blstm::trainable(&config(stack), &InitOptions::default())?;
            let mut loaded = loaded_copy(&vars, stack)?;
            loaded.prepare_for_inference()?;
            // Four sequences: chunks of this many steps.
            let chunk = crate::model::fused::projection_chunk_steps(4);
            let inputs: Vec<Array2<f32>> = [3 * chunk + 5, 70, 2 * chunk, 1]
                .iter()
                .enumerate()
                .map(|(seed, &frames)| features(seed as u64 + 50, frames * stack, 5))
                .collect();
            let views: Vec<ArrayView2<f32>> = inputs.iter().map(|f| f.view()).collect();
            assert_eq!(
                loaded.log_probs_batch(&views)?,
                training.log_probs_batch(&views)?,
                "stack {stack}"
            );
        }
        Ok(())
    }

    #[test]
    fn log_probs_are_normalised_and_shaped() -> Result<()> {
        for stack in [1, 3] {
            let (network, _vars) = Blstm::trainable(&config(stack), &InitOptions::default())?;
            let log_probs = network.log_probs(features(1, 10, 5).view())?;
            assert_eq!(log_probs.dim(), (10usize.div_ceil(stack), 4));
            for row in log_probs.rows() {
                let total: f32 = row.iter().map(|v| v.exp()).sum();
                assert!((total - 1.0).abs() < 1e-5, "{total}");
            }
        }
        Ok(())
    }

    #[test]
    fn padding_content_cannot_leak() -> Result<()> {
        let (network, _vars) = Blstm::trainable(&config(2), &InitOptions::default())?;
        let utterance = features(2, 7, 5);
        let alone = network.log_probs(utterance.view())?;
        let mut padded = Array2::from_elem((12, 5), f32::NAN);
        padded.slice_mut(ndarray::s![..7, ..]).assign(&utterance);
        let (batch, _) = features_to_tensor(&[padded.view()])?;
        let out = network
            .forward(&batch, &[7])?
            .squeeze(0)?
            .to_vec2::<f32>()?;
        assert_eq!(out.len(), 6);
        for (t, row) in out.iter().enumerate() {
            if t < alone.nrows() {
                for (c, value) in row.iter().enumerate() {
                    assert!((value - alone[[t, c]]).abs() <= BATCH_TOLERANCE);
                }
            } else {
                assert!(row.iter().all(|&v| v == 0.0), "padded row {t}: {row:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn dropout_only_in_training_and_reproducible() -> Result<()> {
        let init = InitOptions::default();
        let (network, _vars) = Blstm::trainable(&config(1), &init)?;
        let (batch, lengths) = features_to_tensor(&[features(3, 9, 5).view()])?;
        let eval_a = network.forward_train(&batch, &lengths, None)?;
        let eval_b = network.forward_train(&batch, &lengths, None)?;
        let diff = |a: &Tensor, b: &Tensor| -> Result<f32> {
            Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?)
        };
        assert_eq!(diff(&eval_a, &eval_b)?, 0.0);
        let mut state = DropoutState {
            seed: init.seed,
            step: 0,
        };
        let train_1 = network.forward_train(&batch, &lengths, Some(&mut state))?;
        let train_2 = network.forward_train(&batch, &lengths, Some(&mut state))?;
        assert!(diff(&train_1, &eval_a)? > 0.0);
        assert!(diff(&train_1, &train_2)? > 0.0, "each step draws new masks");
        assert_eq!(state.step, 2);
        // Restoring the state replays the masks.
        let mut restored = DropoutState {
            seed: init.seed,
            step: 1,
        };
        let replay = network.forward_train(&batch, &lengths, Some(&mut restored))?;
        assert_eq!(diff(&replay, &train_2)?, 0.0);
        Ok(())
    }

    #[test]
    fn bad_inputs_are_errors() -> Result<()> {
        let (network, _vars) = Blstm::trainable(&config(1), &InitOptions::default())?;
        let error = network.log_probs(features(4, 3, 7).view()).unwrap_err();
        assert!(
            matches!(
                error,
                Error::FeatureDim {
                    expected: 5,
                    actual: 7
                }
            ),
            "{error}"
        );
        let (batch, _) = features_to_tensor(&[features(4, 3, 5).view()])?;
        assert!(network.forward(&batch, &[4]).is_err());
        assert!(network.forward(&batch, &[3, 3]).is_err());
        assert_eq!(network.log_probs(features(4, 0, 5).view())?.dim(), (0, 4));
        let mixed = features_to_tensor(&[features(4, 3, 5).view(), features(4, 3, 6).view()]);
        assert!(mixed.is_err());
        Ok(())
    }

    #[test]
    fn missing_weight_is_an_error_not_zeros() -> Result<()> {
        let config = config(1);
        let var_map = init_weights(&config, &InitOptions::default())?;
        var_map
            .data()
            .lock()
            .expect("not poisoned")
            .remove("lstm.1.bwd.weight_hh");
        let error = Blstm::new(
            &config,
            VarBuilder::from_varmap(&var_map, DType::F32, &Device::Cpu),
        )
        .expect_err("a missing weight is refused")
        .to_string();
        assert!(error.contains("lstm.1.bwd.weight_hh"), "{error}");
        Ok(())
    }
}
