//! Stage 3a, fused: one bidirectional LSTM layer as a single CPU op with a hand-written backward pass
//! (backpropagation through time), checked against [`blstm_layer_reference`](super::lstm).
//!
//! ```text
//! one direction per core, each:
//!   gates_d = x · W_ih,dᵀ               one product over all steps (packed kernel, row blocks), written
//!                                       into the op's own buffer [2, steps·batch, 4H], direction-major
//!   per step t:
//!     gates_d[t] += h_{t−1} · W_hh,dᵀ   W_hh packed once per call, or once per model for inference
//!                                       (`PreparedLayer`; kernels.rs), accumulated in place,
//!                                       panels walked in alternating order so W_hh stays in L2
//!     gates_d[t] <- σ/tanh(· + b_d)     bias, cell and h update vectorised, in place: the buffer ends up
//!                                       holding the activations
//! ```
//! The forward pass keeps the activations and cell states; the backward pass, again one direction per
//! core, walks the steps in reverse, overwriting each step's activations with their gradients (`dgates`)
//! and computing `dh_{t−1} = dgates_t · W_hh` per step; after the loop the same core computes `dW_hh =
//! Σ_t dgates_tᵀ · h_{t−1}` and `dW_ih = dgatesᵀ · x` with one product each (`db = Σ dgates` is summed
//! inside the time loop). Then `dx = Σ_d dgates_d · W_ih,d` on both cores, only when the input needs a
//! gradient. One single-threaded product per core at once beats two-threaded products in turn here.
//! With [`Precision::Bf16`] (mixed-precision training) every one of these products except those
//! reading the features rounds its operands to bf16 and sums in f32 (AMX tiles where the CPU has
//! them, `src/model/bf16.rs`); weights, gradients, cell arithmetic and the optimizer stay f32.
//! The projected gates never become a candle tensor, so autograd neither stores nor accumulates them. Padding follows the reference: state
//! and output at a padded step are zero, so the backward direction enters each sequence at its own last
//! step.
//!
//! Gradient formulas (gates i, f, g, o after their nonlinearities; `tc = tanh(c_t)`):
//! ```text
//! dh = dout_t + dh_next          do = dh · tc            dc = dc_next + dh · o · (1 − tc²)
//! di = dc · g    dg = dc · i     df = dc · c_{t−1}       dc_next ← dc · f
//! dgates = [di·i(1−i), df·f(1−f), dg(1−g²), do·o(1−o)]   dh_next ← dgates · W_hh
//! ```

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Device, Layout, Shape, Tensor};

use super::bf16::{
    matmul_bf16, matmul_bf16_rows, matmul_bf16_transposed_lhs, PackedBf16, Precision,
};
use super::int8::{matmul_recurrent_i8, PackedI8};
use super::kernels::{
    cell_backward, cell_forward, f32_slice, gemm_f32, matmul_packed_in_order, matmul_packed_rows,
    with_values, PackedMatrix,
};
use super::lstm::{stacked_input_weights, LstmWeights};
use super::projection_u8::{self, Int8Projections, PackedU8};

/// One bidirectional layer through the fused kernel: `input` `[steps·batch, inputs]` (time-major) ->
/// `[steps·batch, 2·hidden]`. `lengths[b]` is sequence `b`'s number of valid steps. f32 on the CPU only.
pub(crate) fn blstm_layer_fused(
    input: &Tensor,
    batch: usize,
    directions: &[LstmWeights; 2],
    lengths: &[usize],
    precision: Precision,
    reads_features: bool,
) -> candle_core::Result<Tensor> {
    let [forward, backward] = directions;
    let hidden = forward.weight_hh.dim(1)?;
    let (rows, inputs) = input.dims2()?;
    let steps = rows / batch.max(1);
    // The op takes three tensors: the input, [W_ih | b] as one [8H, inputs + 1] matrix (the bias is its
    // last column), and both W_hh stacked [8H, H]. The concatenations are small copies, and autograd
    // splits their gradients back onto the model's variables.
    let (weight_ih, bias) = stacked_input_weights(directions)?;
    let input_params = Tensor::cat(&[&weight_ih, &bias.unsqueeze(1)?], 1)?.contiguous()?;
    let recurrent_params =
        Tensor::cat(&[&forward.weight_hh, &backward.weight_hh], 0)?.contiguous()?;
    let input = input.contiguous()?;
    let save = input.track_op() || input_params.track_op() || recurrent_params.track_op();
    let op = FusedLayerOp {
        steps,
        batch,
        hidden,
        inputs,
        lengths: lengths.to_vec(),
        precision,
        reads_features,
        save,
        saved: Mutex::new(None),
    };
    if save {
        input.apply_op3(&input_params, &recurrent_params, op)
    } else {
        input.apply_op3_no_bwd(&input_params, &recurrent_params, &op)
    }
}

/// One layer's weights in the form the forward pass computes with: each direction's `W_ih` packed for
/// `x · W_ihᵀ`, its `W_hh` packed for `h · W_hhᵀ`, and the biases. Packing copies and reorders every
/// weight (about 10 MB a layer for the built-in model), which costs more than the whole network pass on
/// a short clip; a model loaded for inference prepares its layers once
/// ([`Blstm::prepare_for_inference`](super::Blstm::prepare_for_inference)) instead of on every call.
pub(crate) struct PreparedLayer {
    hidden: usize,
    inputs: usize,
    /// `[forward, backward]`, each for `[rows × inputs] · [inputs × 4H]`.
    input_weights: [Packed; 2],
    /// `[forward, backward]`, each for `[batch × H] · [H × 4H]`.
    recurrent_weights: [Packed; 2],
    /// `[2 · 4H]`: the forward direction's then the backward direction's.
    biases: Vec<f32>,
}

impl PreparedLayer {
    /// Prepare a layer from its two directions' weights (f32 on the CPU), packed straight from the
    /// tensors' storage: no stacked copy of the layer is made, so loading a model peaks at the packed
    /// weights plus the f32 ones not yet dropped (the built-in model: 35 MB of heap, not 51 MB).
    /// `precision` chooses the arithmetic of the products ([`Precision::Bf16`] rounds the weights),
    /// except that a layer reading the features (`reads_features`) projects them in f32: features
    /// are unbounded log-energies whose useful differences are small against their size, where
    /// bf16's 8-bit mantissa costs accuracy (PER moved on every real set when it did), while the
    /// other layers read LSTM outputs in (−1, 1). That projection is ~4 % of the multiply-adds
    /// (80 inputs against the other products' 256–512).
    pub(crate) fn new(
        directions: &[LstmWeights; 2],
        precision: Precision,
        reads_features: bool,
    ) -> candle_core::Result<Self> {
        // The recurrent matrices are quantised to int8 (16-bit state); the input projections run
        // over all frames at once, in 8 bits where `vpdpbusd` (or AVX2's `vpmaddubsw`) runs and
        // retires clearly more multiply-adds than bf16 or f32 without AMX (`Int8Projections`:
        // Intel cores without AMX, whose `vdpbf16ps` runs at half f32's rate; AVX2 cores with
        // two integer multipliers), else in bf16 where that outruns f32 (AMX, or AMD's
        // full-rate `vdpbf16ps`), else in f32.
        let int8_projections = Int8Projections::here();
        let input_u8 = precision == Precision::Int8
            && !reads_features
            && int8_projections == Int8Projections::U8;
        let input_precision = match precision {
            _ if reads_features => Precision::F32,
            Precision::Int8 if int8_projections == Int8Projections::Bf16 => Precision::Bf16,
            Precision::Int8 => Precision::F32,
            other => other,
        };
        let hidden = directions[0].weight_hh.dim(1)?;
        let inputs = directions[0].weight_ih.dim(1)?;
        let h4 = 4 * hidden;
        let mut biases = Vec::with_capacity(2 * h4);
        for direction in directions {
            with_values(&direction.bias, "LSTM bias", |b| {
                biases.extend_from_slice(b)
            })?;
        }
        let pack = |direction: &LstmWeights| -> candle_core::Result<(Packed, Packed)> {
            Ok((
                with_values(&direction.weight_ih, "LSTM input weights", |w| {
                    if input_u8 {
                        Packed::U8(PackedU8::pack_transposed(w, inputs, h4))
                    } else {
                        Packed::new(input_precision, w, inputs, h4)
                    }
                })?,
                with_values(&direction.weight_hh, "LSTM recurrent weights", |w| {
                    Packed::new(precision, w, hidden, h4)
                })?,
            ))
        };
        let (mut forward, mut backward) = (None, None);
        both_directions(
            || backward = Some(pack(&directions[1])),
            || forward = Some(pack(&directions[0])),
        );
        let ((ih_f, hh_f), (ih_b, hh_b)) = (
            forward.unwrap_or_else(|| pack(&directions[0]))?,
            backward.unwrap_or_else(|| pack(&directions[1]))?,
        );
        Ok(PreparedLayer {
            hidden,
            inputs,
            input_weights: [ih_f, ih_b],
            recurrent_weights: [hh_f, hh_b],
            biases,
        })
    }

    /// From the op's parameter layout: `[W_ih | b]` as `[8H, inputs + 1]` (the bias its last column)
    /// and both `W_hh` stacked `[8H, H]`. The two directions are packed on two cores.
    fn from_params(
        input_params: &[f32],
        recurrent_params: &[f32],
        hidden: usize,
        inputs: usize,
        precision: Precision,
        reads_features: bool,
    ) -> Self {
        let h4 = 4 * hidden;
        // The features' projection stays f32 (see `new`).
        let input_precision = if reads_features {
            Precision::F32
        } else {
            precision
        };
        let biases: Vec<f32> = (0..2 * h4)
            .map(|row| input_params[row * (inputs + 1) + inputs])
            .collect();
        let pack = |d: usize| {
            (
                // W_ih rows have stride inputs + 1, the bias being their last column.
                Packed::strided(
                    input_precision,
                    &input_params[d * h4 * (inputs + 1)..],
                    inputs,
                    h4,
                    true,
                    inputs + 1,
                ),
                Packed::new(
                    precision,
                    &recurrent_params[d * h4 * hidden..(d + 1) * h4 * hidden],
                    hidden,
                    h4,
                ),
            )
        };
        let mut backward = None;
        let mut forward = None;
        both_directions(|| backward = Some(pack(1)), || forward = Some(pack(0)));
        let ((ih_f, hh_f), (ih_b, hh_b)) = (
            forward.unwrap_or_else(|| pack(0)),
            backward.unwrap_or_else(|| pack(1)),
        );
        PreparedLayer {
            hidden,
            inputs,
            input_weights: [ih_f, ih_b],
            recurrent_weights: [hh_f, hh_b],
            biases,
        }
    }
}

/// A packed weight matrix in the precision the pass computes in.
enum Packed {
    F32(PackedMatrix),
    Bf16(PackedBf16),
    /// Quantised to int8 (the recurrent matrices of `Precision::Int8`), each left-hand row on its
    /// own scale.
    I8(PackedI8),
    /// 8-bit input projections (`int8` where bf16 is slow; never a recurrence or training).
    U8(PackedU8),
}

impl Packed {
    /// Pack `w`, stored `[n × k]` row-major, for products with `wᵀ` (`[k × n]`).
    fn new(precision: Precision, w: &[f32], k: usize, n: usize) -> Self {
        match precision {
            Precision::F32 => Packed::F32(PackedMatrix::pack(w, k, n, true)),
            Precision::Bf16 => Packed::Bf16(PackedBf16::pack(w, k, n, true)),
            Precision::Int8 => Packed::I8(PackedI8::pack(w, k, n, true)),
        }
    }

    /// Pack `w`, whose stored rows lie `stride` values apart, for products with `w` (`[k × n]`) or,
    /// `transposed`, with `wᵀ`: in bf16 for [`Precision::Bf16`], else f32 (the backward pass's
    /// matrices; int8 is never trained).
    fn strided(
        precision: Precision,
        w: &[f32],
        k: usize,
        n: usize,
        transposed: bool,
        stride: usize,
    ) -> Self {
        if precision == Precision::Bf16 {
            Packed::Bf16(PackedBf16::pack_strided(w, k, n, transposed, stride))
        } else {
            Packed::F32(PackedMatrix::pack_strided(w, k, n, transposed, stride))
        }
    }

    /// A product over many rows: `out (+)= lhs · W` (an input projection, or `dx`), on `threads`
    /// threads (the projections use 1: each direction's runs on its own core).
    #[allow(clippy::too_many_arguments)] // a BLAS-style signature, as the kernels'
    fn matmul_rows(
        &self,
        threads: usize,
        rows: usize,
        lhs: &[f32],
        lhs_stride: usize,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
    ) {
        match self {
            Packed::F32(w) => matmul_packed_rows(
                threads, rows, lhs, lhs_stride, w, out, out_stride, accumulate,
            ),
            Packed::Bf16(w) => matmul_bf16_rows(
                threads, rows, lhs, lhs_stride, w, out, out_stride, accumulate,
            ),
            Packed::I8(w) => {
                if !accumulate {
                    for row in out.chunks_mut(out_stride).take(rows) {
                        row[..w.columns()].fill(0.0);
                    }
                }
                matmul_recurrent_i8(
                    rows,
                    lhs,
                    lhs_stride,
                    w,
                    out,
                    out_stride,
                    false,
                    &mut Vec::new(),
                );
            }
            Packed::U8(w) => projection_u8::matmul_rows(
                threads, rows, lhs, lhs_stride, w, out, out_stride, accumulate,
            ),
        }
    }

    /// One step of a recurrence: `out += lhs · W` for `rows` rows, panels in the given order.
    #[allow(clippy::too_many_arguments)] // a BLAS-style signature, as the kernels'
    fn matmul_step(
        &self,
        lhs: &[f32],
        lhs_stride: usize,
        rows: usize,
        out: &mut [f32],
        out_stride: usize,
        backwards: bool,
        scratch: &mut Vec<u32>,
    ) {
        match self {
            Packed::F32(w) => {
                matmul_packed_in_order(rows, lhs, lhs_stride, w, out, out_stride, true, backwards)
            }
            Packed::Bf16(w) => matmul_bf16(
                rows, lhs, lhs_stride, w, out, out_stride, true, backwards, scratch,
            ),
            Packed::I8(w) => matmul_recurrent_i8(
                rows, lhs, lhs_stride, w, out, out_stride, backwards, scratch,
            ),
            // Only input projections are packed so, and they go through `matmul_rows`.
            Packed::U8(w) => {
                let _ = backwards;
                projection_u8::matmul_rows(1, rows, lhs, lhs_stride, w, out, out_stride, true)
            }
        }
    }
}

/// The forward pass of one layer with prepared weights: `input` `[steps·batch, inputs]` (time-major) ->
/// (output `[steps·batch, 2H]`, gate activations `[2, steps·batch, 4H]`, cell states `[2, steps·batch,
/// H]` when `save`, else empty).
fn forward_prepared(
    prepared: &PreparedLayer,
    input: &[f32],
    steps: usize,
    batch: usize,
    lengths: &[usize],
    save: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (hidden, inputs) = (prepared.hidden, prepared.inputs);
    let (rows, h4) = (steps * batch, 4 * hidden);
    if !save {
        return (
            forward_inference(prepared, input, steps, batch, lengths),
            Vec::new(),
            Vec::new(),
        );
    }
    // gates_d = x · W_ih,dᵀ, direction-major (the bias is added in the cell update). Each direction's
    // projection runs on the core that then runs its recurrence: two single-threaded products at once
    // are a little faster than two two-threaded ones in turn.
    let mut gates = vec![0f32; 2 * rows * h4];
    let project = |d: usize, block: &mut [f32]| {
        prepared.input_weights[d].matmul_rows(1, rows, input, inputs, block, h4, false);
    };
    // The layer's output rows are [h_forward | h_backward]: each direction gets its halves.
    let mut out = vec![0f32; rows * 2 * hidden];
    let (mut out_forward, mut out_backward): (Vec<&mut [f32]>, Vec<&mut [f32]>) = out
        .chunks_exact_mut(2 * hidden)
        .map(|row| row.split_at_mut(hidden))
        .unzip();
    let mut cells = vec![0f32; if save { 2 * rows * hidden } else { 0 }];
    {
        let (gates_f, gates_b) = gates.split_at_mut(rows * h4);
        let [w_f, w_b] = &prepared.recurrent_weights;
        let (bias_f, bias_b) = prepared.biases.split_at(h4);
        let (cells_f, cells_b) = cells.split_at_mut(if save { rows * hidden } else { 0 });
        // One direction per core.
        both_directions(
            || {
                project(1, gates_b);
                run_forward(
                    gates_b,
                    w_b,
                    bias_b,
                    true,
                    steps,
                    batch,
                    hidden,
                    lengths,
                    &mut out_backward,
                    save.then_some(cells_b),
                )
            },
            || {
                project(0, gates_f);
                run_forward(
                    gates_f,
                    w_f,
                    bias_f,
                    false,
                    steps,
                    batch,
                    hidden,
                    lengths,
                    &mut out_forward,
                    save.then_some(cells_f),
                );
            },
        );
    }
    (out, gates, cells)
}

/// Steps whose input projections inference computes at a time, per direction, at batches of 8
/// and more (at smaller batches as many more as keep 512 rows a product: at batch 1, 64-row
/// products ran shape A at T = 1000 4 % slower, re-reading `W_ih` for every few rows). The gates of
/// a whole sequence (four windows of a long file: 139 MB with the default model) are never held,
/// only these (2.6 MB at batch 4), which the recurrence then reads from cache. Always a multiple of
/// 64 rows, so the products tile the rows as one product over the whole sequence does: the same
/// outputs to the bit.
const PROJECTION_CHUNK_STEPS: usize = 64;
const PROJECTION_CHUNK_ROWS: usize = 512;

/// Steps a chunk of [`forward_inference`] holds at `batch`.
pub(crate) fn projection_chunk_steps(batch: usize) -> usize {
    PROJECTION_CHUNK_STEPS
        * (PROJECTION_CHUNK_ROWS / (PROJECTION_CHUNK_STEPS * batch.max(1))).max(1)
}

/// [`forward_prepared`] without saving anything for a backward pass: each direction projects its
/// input [`projection_chunk_steps`] steps at a time, in its own order, and runs the recurrence over
/// them before projecting the next.
fn forward_inference(
    prepared: &PreparedLayer,
    input: &[f32],
    steps: usize,
    batch: usize,
    lengths: &[usize],
) -> Vec<f32> {
    let (hidden, inputs) = (prepared.hidden, prepared.inputs);
    let h4 = 4 * hidden;
    let mut out = vec![0f32; steps * batch * 2 * hidden];
    let (mut out_forward, mut out_backward): (Vec<&mut [f32]>, Vec<&mut [f32]>) = out
        .chunks_exact_mut(2 * hidden)
        .map(|row| row.split_at_mut(hidden))
        .unzip();
    let (bias_f, bias_b) = prepared.biases.split_at(h4);
    let direction = |d: usize, bias: &[f32], out: &mut [&mut [f32]]| {
        let reverse = d == 1;
        let chunk_steps = projection_chunk_steps(batch);
        let chunks = steps.div_ceil(chunk_steps);
        let mut gates = vec![0f32; chunk_steps.min(steps) * batch * h4];
        let mut recurrence = Recurrence::new(batch, hidden);
        for i in 0..chunks {
            let chunk = if reverse { chunks - 1 - i } else { i };
            let first = chunk * chunk_steps;
            let span = first..(first + chunk_steps).min(steps);
            let rows = span.len() * batch;
            let block = &mut gates[..rows * h4];
            prepared.input_weights[d].matmul_rows(
                1,
                rows,
                &input[first * batch * inputs..(first * batch + rows) * inputs],
                inputs,
                block,
                h4,
                false,
            );
            recurrence.run(
                block,
                span,
                &prepared.recurrent_weights[d],
                bias,
                reverse,
                lengths,
                out,
                None,
            );
        }
    };
    // One direction per core.
    both_directions(
        || direction(1, bias_b, &mut out_backward),
        || direction(0, bias_f, &mut out_forward),
    );
    out
}

/// One bidirectional layer for inference with weights prepared once: `input` `[steps·batch, inputs]`
/// (time-major) -> `[steps·batch, 2·hidden]`, the same as [`blstm_layer_fused`] gives without
/// gradients.
pub(crate) fn blstm_layer_prepared(
    input: &Tensor,
    batch: usize,
    prepared: &PreparedLayer,
    lengths: &[usize],
) -> candle_core::Result<Tensor> {
    input.contiguous()?.apply_op1_no_bwd(&PreparedLayerOp {
        prepared,
        batch,
        lengths,
    })
}

/// [`blstm_layer_prepared`] as a candle op, so the kernel reads the input where it lies.
struct PreparedLayerOp<'a> {
    prepared: &'a PreparedLayer,
    batch: usize,
    lengths: &'a [usize],
}

impl CustomOp1 for PreparedLayerOp<'_> {
    fn name(&self) -> &'static str {
        "prepared-blstm-layer"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = f32_slice(storage, layout, "layer input")?;
        let (batch, inputs) = (self.batch, self.prepared.inputs);
        let rows = input.len() / inputs.max(1);
        let steps = rows / batch.max(1);
        if rows * inputs != input.len() || steps * batch != rows || self.lengths.len() != batch {
            candle_core::bail!("fused LSTM: inconsistent shapes");
        }
        let (out, _, _) = forward_prepared(self.prepared, input, steps, batch, self.lengths, false);
        Ok((
            CpuStorage::F32(out),
            Shape::from((rows, 2 * self.prepared.hidden)),
        ))
    }
}

/// What the forward pass keeps for the backward pass.
struct Saved {
    /// Gate activations i, f, g, o: `[2, steps·batch, 4·hidden]`, direction-major.
    gates: Vec<f32>,
    /// Cell states: `[2, steps·batch, hidden]`.
    cells: Vec<f32>,
}

/// A whole bidirectional LSTM layer.
struct FusedLayerOp {
    steps: usize,
    batch: usize,
    hidden: usize,
    inputs: usize,
    lengths: Vec<usize>,
    /// The products' arithmetic: f32, or bf16 (mixed precision; never int8, which
    /// `Blstm::set_training_precision` refuses).
    precision: Precision,
    /// The layer reads the features: its input projection stays f32 (as in [`PreparedLayer::new`]).
    reads_features: bool,
    /// Keep activations for a backward pass (false for inference, which then keeps per direction
    /// only one chunk of gates, [`projection_chunk_steps`], and O(batch × hidden) of state).
    save: bool,
    saved: Mutex<Option<Saved>>,
}

/// A weight gradient `dst[m × n] = dgatesᵀ · x`, `dgates` stored `[k × m]` and `x` `[k × n]`: one
/// single-threaded product (each direction's runs on its own core), in f32 or bf16.
#[allow(clippy::too_many_arguments)] // a GEMM's shape and strides are its arguments
fn weight_gradient(
    precision: Precision,
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_stride: usize,
    dgates: &[f32],
    dgates_stride: usize,
    x: &[f32],
    x_stride: usize,
) {
    if precision == Precision::Bf16 {
        matmul_bf16_transposed_lhs(
            m,
            n,
            k,
            dst,
            dst_stride,
            false,
            dgates,
            dgates_stride,
            x,
            x_stride,
        );
    } else {
        gemm_f32(
            1,
            m,
            n,
            k,
            dst,
            dst_stride,
            false,
            dgates,
            dgates_stride,
            true,
            x,
            x_stride,
            false,
        );
    }
}

/// Threads for the large products: the same count candle uses for its matrix products.
fn threads() -> usize {
    candle_core::utils::get_num_threads().max(1)
}

/// Run the two directions' work on two cores (the backward direction on a second thread), or one
/// after the other when only one thread is allowed (`--threads 1`).
fn both_directions(backward: impl FnOnce() + Send, forward: impl FnOnce()) {
    if threads() > 1 {
        std::thread::scope(|scope| {
            scope.spawn(backward);
            forward();
        });
    } else {
        backward();
        forward();
    }
}

/// Forward recurrence of one direction, in place. `gates` is this direction's block `[steps·batch, 4H]`
/// holding the input projections; each step adds `h_{t−1} · W_hhᵀ` and `bias` (`[4H]`) and replaces the
/// sum by the activations. Writes `h` into `out` (`[steps·batch, H]`) and, if given, cell states into
/// `cells_saved` (`[steps·batch, H]`).
#[allow(clippy::too_many_arguments)] // the layer's buffers, each a distinct slice the recurrence reads or writes
fn run_forward(
    gates: &mut [f32],
    weight_hh: &Packed,
    bias: &[f32],
    reverse: bool,
    steps: usize,
    batch: usize,
    hidden: usize,
    lengths: &[usize],
    out: &mut [&mut [f32]],
    cells_saved: Option<&mut [f32]>,
) {
    let mut state = Recurrence::new(batch, hidden);
    state.run(
        gates,
        0..steps,
        weight_hh,
        bias,
        reverse,
        lengths,
        out,
        cells_saved,
    );
}

/// One direction's recurrent state between runs over consecutive stretches of steps.
struct Recurrence {
    batch: usize,
    hidden: usize,
    h_prev: Vec<f32>,
    c_prev: Vec<f32>,
    /// The step product's conversion buffer (bf16 and int8 weights).
    scratch: Vec<u32>,
    /// Steps run so far (the panel order alternates with it).
    done: usize,
}

impl Recurrence {
    fn new(batch: usize, hidden: usize) -> Self {
        Recurrence {
            batch,
            hidden,
            h_prev: vec![0f32; batch * hidden],
            c_prev: vec![0f32; batch * hidden],
            scratch: Vec::new(),
            done: 0,
        }
    }

    /// [`run_forward`] over the steps `span` only (the next ones in the direction's order):
    /// `gates` holds their projections, `[span.len()·batch, 4H]`; `out` and `cells_saved` are
    /// indexed by the whole sequence's rows.
    #[allow(clippy::too_many_arguments)] // as run_forward
    fn run(
        &mut self,
        gates: &mut [f32],
        span: std::ops::Range<usize>,
        weight_hh: &Packed,
        bias: &[f32],
        reverse: bool,
        lengths: &[usize],
        out: &mut [&mut [f32]],
        mut cells_saved: Option<&mut [f32]>,
    ) {
        let (batch, hidden) = (self.batch, self.hidden);
        let h4 = 4 * hidden;
        for s in 0..span.len() {
            let t = if reverse {
                span.end - 1 - s
            } else {
                span.start + s
            };
            let local = t - span.start;
            let step_gates = &mut gates[local * batch * h4..(local + 1) * batch * h4];
            // gates += h_{t−1} · W_hhᵀ (W_hh packed for that product, see `PreparedLayer`).
            // Alternating the panel order keeps most of W_hh in L2 from one step to the next.
            let backwards = self.done % 2 == 1;
            self.done += 1;
            weight_hh.matmul_step(
                &self.h_prev,
                hidden,
                batch,
                step_gates,
                h4,
                backwards,
                &mut self.scratch,
            );
            for b in 0..batch {
                let out_row = &mut *out[t * batch + b];
                let h = &mut self.h_prev[b * hidden..(b + 1) * hidden];
                let c = &mut self.c_prev[b * hidden..(b + 1) * hidden];
                let g = &mut step_gates[b * h4..(b + 1) * h4];
                if t >= lengths[b] {
                    h.fill(0.0);
                    c.fill(0.0);
                    out_row.fill(0.0);
                    g.fill(0.0);
                } else {
                    cell_forward(g, bias, c, h, out_row);
                }
                if let Some(saved) = cells_saved.as_deref_mut() {
                    saved[(t * batch + b) * hidden..(t * batch + b + 1) * hidden]
                        .copy_from_slice(c);
                }
            }
        }
    }
}

/// Backward recurrence of one direction, in place: `gates` (this direction's block, `[steps·batch, 4H]`)
/// holds the saved activations and ends up holding `dgates`, whose sum over steps goes to `bias_grad`
/// (`[4H]`). Reads the saved `cells`, and `grad_out`/
/// `h_out` as `[steps·batch, 2H]` (this direction's columns at `h_offset`); writes `dW_hh` (`[4H, H]`)
/// into `grad_weight`.
#[allow(clippy::too_many_arguments)] // the layer's buffers, each a distinct slice the recurrence reads or writes
fn run_backward(
    gates: &mut [f32],
    bias_grad: &mut [f32],
    weight_hh: &[f32],
    cells: &[f32],
    grad_out: &[f32],
    h_out: &[f32],
    h_offset: usize,
    reverse: bool,
    steps: usize,
    batch: usize,
    hidden: usize,
    lengths: &[usize],
    grad_weight: &mut [f32],
    precision: Precision,
) {
    let h4 = 4 * hidden;
    let h2 = 2 * hidden;
    let mut dh_next = vec![0f32; batch * hidden];
    let mut dc_next = vec![0f32; batch * hidden];
    let zeros = vec![0f32; hidden];
    // dh_{t−1} = dgates_t · W_hh, W_hh stored [4H × H].
    let weight_hh = Packed::strided(precision, weight_hh, h4, hidden, false, hidden);
    let mut scratch = Vec::new();
    // Walk the steps in the reverse of the forward pass's order.
    for s in (0..steps).rev() {
        let t = if reverse { steps - 1 - s } else { s };
        // The step before t in the forward pass's order, whose cell state feeds step t.
        let previous = if reverse {
            (t + 1 < steps).then_some(t + 1)
        } else {
            t.checked_sub(1)
        };
        for b in 0..batch {
            let row = t * batch + b;
            let row_gates = &mut gates[row * h4..(row + 1) * h4];
            if t >= lengths[b] {
                row_gates.fill(0.0);
                continue;
            }
            let c_prev = match previous {
                Some(p) => &cells[(p * batch + b) * hidden..(p * batch + b + 1) * hidden],
                None => &zeros,
            };
            cell_backward(
                row_gates,
                &cells[row * hidden..(row + 1) * hidden],
                c_prev,
                &grad_out[row * h2 + h_offset..row * h2 + h_offset + hidden],
                &dh_next[b * hidden..(b + 1) * hidden],
                &mut dc_next[b * hidden..(b + 1) * hidden],
                bias_grad,
            );
        }
        let step_rows = &gates[t * batch * h4..(t + 1) * batch * h4];
        dh_next.fill(0.0);
        weight_hh.matmul_step(
            step_rows,
            h4,
            batch,
            &mut dh_next,
            hidden,
            s % 2 == 1,
            &mut scratch,
        );
    }
    // dW_hh = Σ_t dgates_tᵀ · h_{t−1}: one GEMM over all steps that have a predecessor.
    if steps > 1 {
        let k = (steps - 1) * batch;
        let (dgates_rows, h_rows) = if reverse {
            // Step t's predecessor is t + 1: dgates rows 0..S−1 against h rows 1..S.
            (&gates[..], &h_out[batch * h2 + h_offset..])
        } else {
            (&gates[batch * h4..], &h_out[h_offset..])
        };
        weight_gradient(
            precision,
            h4,
            hidden,
            k,
            grad_weight,
            hidden,
            dgates_rows,
            h4,
            h_rows,
            h2,
        );
    } else {
        grad_weight.fill(0.0);
    }
}

impl CustomOp3 for FusedLayerOp {
    fn name(&self) -> &'static str {
        "fused-blstm-layer"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (steps, batch, hidden, inputs) = (self.steps, self.batch, self.hidden, self.inputs);
        let input = f32_slice(s1, l1, "layer input")?;
        let input_params = f32_slice(s2, l2, "[W_ih | b]")?;
        let recurrent_params = f32_slice(s3, l3, "W_hh")?;
        let (rows, h4) = (steps * batch, 4 * hidden);
        if input.len() != rows * inputs
            || input_params.len() != 2 * h4 * (inputs + 1)
            || recurrent_params.len() != 2 * h4 * hidden
            || self.lengths.len() != batch
        {
            candle_core::bail!("fused LSTM: inconsistent shapes");
        }
        let prepared = PreparedLayer::from_params(
            input_params,
            recurrent_params,
            hidden,
            inputs,
            self.precision,
            self.reads_features,
        );
        let (out, gates, cells) =
            forward_prepared(&prepared, input, steps, batch, &self.lengths, self.save);
        if self.save {
            let mut saved = self
                .saved
                .lock()
                .map_err(|_| candle_core::Error::Msg("fused LSTM: poisoned lock".into()))?;
            *saved = Some(Saved { gates, cells });
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, 2 * hidden))))
    }

    fn bwd(
        &self,
        input: &Tensor,
        input_params: &Tensor,
        recurrent_params: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (steps, batch, hidden, inputs) = (self.steps, self.batch, self.hidden, self.inputs);
        let (rows, h4) = (steps * batch, 4 * hidden);
        let Saved { mut gates, cells } = self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("fused LSTM: poisoned lock".into()))?
            .take()
            .ok_or_else(|| {
                candle_core::Error::Msg("fused LSTM: backward without saved activations".into())
            })?;
        // 1. Per direction, on its own core: the recurrence backwards (gates become dgates in place),
        // dW_hh, and the input weights' gradient [dW_ih | db]. A single-threaded product per direction,
        // both running at once, beats one two-threaded product after the other (~230 against ~165
        // GFLOP/s per core for dgatesᵀ·x, whose long inner dimension the gemm crate does not split).
        let mut grad_recurrent = vec![0f32; 2 * h4 * hidden];
        let mut grad_bias = vec![0f32; 2 * h4];
        let mut grad_input_params = vec![0f32; 2 * h4 * (inputs + 1)];
        {
            let (grad_bias_f, grad_bias_b) = grad_bias.split_at_mut(h4);
            let (gates_f, gates_b) = gates.split_at_mut(rows * h4);
            let (cells_f, cells_b) = cells.split_at(rows * hidden);
            let (grad_w_f, grad_w_b) = grad_recurrent.split_at_mut(h4 * hidden);
            let (grad_ip_f, grad_ip_b) = grad_input_params.split_at_mut(h4 * (inputs + 1));
            let lengths = &self.lengths;
            // dW_ih,d = dgates_dᵀ · x: [4H × rows] · [rows × inputs] into rows of stride inputs + 1
            // (the bias gradient, the last column, is filled in below).
            // The features' products stay f32 (see `PreparedLayer::new`).
            let precision = if self.reads_features {
                Precision::F32
            } else {
                self.precision
            };
            let input_weight_grad = |dgates: &[f32], x: &[f32], grad: &mut [f32]| {
                weight_gradient(
                    precision,
                    h4,
                    inputs,
                    rows,
                    grad,
                    inputs + 1,
                    dgates,
                    h4,
                    x,
                    inputs,
                );
            };
            with_values(input, "layer input", |x| {
                with_values(grad_res, "output gradient", |grad_out| {
                    with_values(res, "output", |h_out| {
                        with_values(recurrent_params, "W_hh", |w_hh| {
                            let (w_f, w_b) = w_hh.split_at(h4 * hidden);
                            both_directions(
                                || {
                                    run_backward(
                                        gates_b,
                                        grad_bias_b,
                                        w_b,
                                        cells_b,
                                        grad_out,
                                        h_out,
                                        hidden,
                                        true,
                                        steps,
                                        batch,
                                        hidden,
                                        lengths,
                                        grad_w_b,
                                        self.precision,
                                    );
                                    input_weight_grad(gates_b, x, grad_ip_b);
                                },
                                || {
                                    run_backward(
                                        gates_f,
                                        grad_bias_f,
                                        w_f,
                                        cells_f,
                                        grad_out,
                                        h_out,
                                        0,
                                        false,
                                        steps,
                                        batch,
                                        hidden,
                                        lengths,
                                        grad_w_f,
                                        self.precision,
                                    );
                                    input_weight_grad(gates_f, x, grad_ip_f);
                                },
                            )
                        })
                    })
                })
            })????;
        }
        let dgates = &gates;
        for (row, sum) in grad_bias.into_iter().enumerate() {
            grad_input_params[row * (inputs + 1) + inputs] = sum;
        }
        // 2. dx, if anything upstream needs it.
        let threads = threads();
        let grad_input = if input.track_op() {
            let mut grad_input = vec![0f32; rows * inputs];
            with_values(input_params, "[W_ih | b]", |params| {
                // dx = Σ_d dgates_d · W_ih,d: [rows × 4H] · [4H × inputs].
                for d in 0..2 {
                    let weights = &params[d * h4 * (inputs + 1)..];
                    let weights =
                        Packed::strided(self.precision, weights, h4, inputs, false, inputs + 1);
                    weights.matmul_rows(
                        threads,
                        rows,
                        &dgates[d * rows * h4..],
                        h4,
                        &mut grad_input,
                        inputs,
                        d > 0,
                    );
                }
            })?;
            Some(Tensor::from_vec(grad_input, (rows, inputs), &Device::Cpu)?)
        } else {
            None // the features: nothing upstream needs their gradient
        };
        Ok((
            grad_input,
            Some(Tensor::from_vec(
                grad_input_params,
                (2 * h4, inputs + 1),
                &Device::Cpu,
            )?),
            Some(Tensor::from_vec(
                grad_recurrent,
                (2 * h4, hidden),
                &Device::Cpu,
            )?),
        ))
    }
}
