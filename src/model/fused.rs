//! Stage 3a, fused: one bidirectional LSTM layer as a CPU kernel with a hand-written backward pass
//! (backpropagation through time), checked against [`blstm_layer_reference`](super::lstm).
//!
//! ```text
//! projected = x · [W_ih_fwd; W_ih_bwd]ᵀ + b      one GEMM for all steps and both directions,
//!                                                [steps·batch, 8·hidden] (`projection.rs`)
//! h = RecurrentOp(projected, W_hh_fwd, W_hh_bwd)  this file: the two directions run on two threads;
//!                                                per step one GEMM (h_{t−1} · W_hhᵀ) and fused gates
//! ```
//! The forward pass saves each step's gate activations and cell state; the backward pass walks the steps
//! in reverse with one GEMM per step (`dh_{t−1} = dgates_t · W_hh`) and gets each direction's `dW_hh` from a
//! single GEMM over all steps after the loop (`dW_hh = Σ_t dgates_tᵀ · h_{t−1}`). The gradient with respect
//! to `projected` is `dgates` itself. Padding follows the reference: state and output at a padded step are
//! zero, so the backward direction enters each sequence at its own last step.
//!
//! Gradient formulas (gates i, f, g, o after their nonlinearities; `tc = tanh(c_t)`):
//! ```text
//! dh = dout_t + dh_next          do = dh · tc            dc = dc_next + dh · o · (1 − tc²)
//! di = dc · g    dg = dc · i     df = dc · c_{t−1}       dc_next ← dc · f
//! dgates = [di·i(1−i), df·f(1−f), dg(1−g²), do·o(1−o)]   dh_next ← dgates · W_hh
//! ```

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Shape, Tensor};

use super::kernels::{
    cell_backward, cell_forward, f32_slice, gemm_f32, matmul_packed, with_values, PackedMatrix,
};
use super::lstm::{stacked_input_weights, LstmWeights};
use super::projection::project;

/// One bidirectional layer through the fused kernel: `input` `[steps·batch, inputs]` (time-major) ->
/// `[steps·batch, 2·hidden]`. `lengths[b]` is sequence `b`'s number of valid steps. f32 on the CPU only.
pub(crate) fn blstm_layer_fused(
    input: &Tensor,
    batch: usize,
    directions: &[LstmWeights; 2],
    lengths: &[usize],
) -> candle_core::Result<Tensor> {
    let [forward, backward] = directions;
    let hidden = forward.weight_hh.dim(1)?;
    let steps = input.dim(0)? / batch.max(1);
    let (weight_ih, bias) = stacked_input_weights(directions)?;
    let projected = project(input, &weight_ih, &bias)?;
    let weight_hh_forward = forward.weight_hh.contiguous()?;
    let weight_hh_backward = backward.weight_hh.contiguous()?;
    let save =
        projected.track_op() || weight_hh_forward.track_op() || weight_hh_backward.track_op();
    let op = RecurrentOp {
        steps,
        batch,
        hidden,
        lengths: lengths.to_vec(),
        save,
        saved: Mutex::new(None),
    };
    if save {
        projected.apply_op3(&weight_hh_forward, &weight_hh_backward, op)
    } else {
        projected.apply_op3_no_bwd(&weight_hh_forward, &weight_hh_backward, &op)
    }
}

/// What the forward pass keeps for the backward pass, per direction.
struct Saved {
    /// Gate activations i, f, g, o per step and sequence: `[steps, batch, 4·hidden]`.
    gates: [Vec<f32>; 2],
    /// Cell states: `[steps, batch, hidden]`.
    cells: [Vec<f32>; 2],
}

/// The recurrent part of a bidirectional LSTM layer.
struct RecurrentOp {
    steps: usize,
    batch: usize,
    hidden: usize,
    lengths: Vec<usize>,
    /// Keep activations for a backward pass (false for inference: memory O(batch × hidden) per direction).
    save: bool,
    saved: Mutex<Option<Saved>>,
}

/// Forward recurrence of one direction. `projected` is this direction's block of the projection,
/// `[steps·batch, 4H]`. Writes `h` into `out` (`[steps·batch, H]`, this direction only)
/// and, if given, activations into `gates_saved`/`cells_saved` (`[steps·batch, 4H]`/`[steps·batch, H]`).
#[allow(clippy::too_many_arguments)]
fn run_forward(
    projected: &[f32],
    weight_hh: &[f32],
    reverse: bool,
    steps: usize,
    batch: usize,
    hidden: usize,
    lengths: &[usize],
    out: &mut [f32],
    mut gates_saved: Option<&mut [f32]>,
    mut cells_saved: Option<&mut [f32]>,
) {
    let h4 = 4 * hidden;
    // gates += h_{t−1} · W_hhᵀ, W_hh stored [4H × H].
    let weight_hh = PackedMatrix::pack(weight_hh, hidden, h4, true);
    let mut h_prev = vec![0f32; batch * hidden];
    let mut c_prev = vec![0f32; batch * hidden];
    // Without saving, one step's gates live here; with saving, directly in the saved buffer.
    let mut step_gates = vec![0f32; if gates_saved.is_some() { 0 } else { batch * h4 }];
    for s in 0..steps {
        let t = if reverse { steps - 1 - s } else { s };
        let gates: &mut [f32] = match gates_saved.as_deref_mut() {
            Some(saved) => &mut saved[t * batch * h4..(t + 1) * batch * h4],
            None => &mut step_gates,
        };
        gates.copy_from_slice(&projected[t * batch * h4..(t + 1) * batch * h4]);
        matmul_packed(batch, &h_prev, hidden, &weight_hh, gates, h4, true);
        for b in 0..batch {
            let out_row = &mut out[(t * batch + b) * hidden..(t * batch + b + 1) * hidden];
            let h = &mut h_prev[b * hidden..(b + 1) * hidden];
            let c = &mut c_prev[b * hidden..(b + 1) * hidden];
            let g = &mut gates[b * h4..(b + 1) * h4];
            if t >= lengths[b] {
                h.fill(0.0);
                c.fill(0.0);
                out_row.fill(0.0);
                g.fill(0.0);
            } else {
                cell_forward(g, c, h, out_row);
            }
            if let Some(saved) = cells_saved.as_deref_mut() {
                saved[(t * batch + b) * hidden..(t * batch + b + 1) * hidden].copy_from_slice(c);
            }
        }
    }
}

/// Backward recurrence of one direction. Reads the saved gates and cells, `grad_out`/`h_out` as
/// `[steps·batch, 2H]` (this direction's columns at `h_offset`), and writes `dgates` into `grad_projected`
/// (this direction's block, `[steps·batch, 4H]`) and `dW_hh` (`[4H, H]`) into `grad_weight`.
#[allow(clippy::too_many_arguments)]
fn run_backward(
    weight_hh: &[f32],
    gates: &[f32],
    cells: &[f32],
    grad_out: &[f32],
    h_out: &[f32],
    h_offset: usize,
    reverse: bool,
    steps: usize,
    batch: usize,
    hidden: usize,
    lengths: &[usize],
    grad_projected: &mut [f32],
    grad_weight: &mut [f32],
) {
    let h4 = 4 * hidden;
    let h2 = 2 * hidden;
    let mut dh_next = vec![0f32; batch * hidden];
    let mut dc_next = vec![0f32; batch * hidden];
    let zeros = vec![0f32; hidden];
    // dh_{t−1} = dgates_t · W_hh, W_hh stored [4H × H].
    let weight_hh = PackedMatrix::pack(weight_hh, h4, hidden, false);
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
            let dgates = &mut grad_projected[row * h4..(row + 1) * h4];
            if t >= lengths[b] {
                dgates.fill(0.0);
                continue;
            }
            let c_prev = match previous {
                Some(p) => &cells[(p * batch + b) * hidden..(p * batch + b + 1) * hidden],
                None => &zeros,
            };
            cell_backward(
                &gates[row * h4..(row + 1) * h4],
                &cells[row * hidden..(row + 1) * hidden],
                c_prev,
                &grad_out[row * h2 + h_offset..row * h2 + h_offset + hidden],
                &dh_next[b * hidden..(b + 1) * hidden],
                &mut dc_next[b * hidden..(b + 1) * hidden],
                dgates,
            );
        }
        let step_rows = &grad_projected[t * batch * h4..(t + 1) * batch * h4];
        matmul_packed(
            batch,
            step_rows,
            h4,
            &weight_hh,
            &mut dh_next,
            hidden,
            false,
        );
    }
    // dW_hh = Σ_t dgates_tᵀ · h_{t−1}: one GEMM over all steps that have a predecessor.
    if steps > 1 {
        let k = (steps - 1) * batch;
        let (dgates_rows, h_rows) = if reverse {
            // Step t's predecessor is t + 1: dgates rows 0..S−1 against h rows 1..S.
            (&grad_projected[..], &h_out[batch * h2 + h_offset..])
        } else {
            (&grad_projected[batch * h4..], &h_out[h_offset..])
        };
        gemm_f32(
            1,
            h4,
            hidden,
            k,
            grad_weight,
            hidden,
            false,
            dgates_rows,
            h4,
            true,
            h_rows,
            h2,
            false,
        );
    } else {
        grad_weight.fill(0.0);
    }
}

impl CustomOp3 for RecurrentOp {
    fn name(&self) -> &'static str {
        "fused-blstm-recurrence"
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
        let (steps, batch, hidden) = (self.steps, self.batch, self.hidden);
        let projected = f32_slice(s1, l1, "projection")?;
        let weight_forward = f32_slice(s2, l2, "forward W_hh")?;
        let weight_backward = f32_slice(s3, l3, "backward W_hh")?;
        if projected.len() != 2 * steps * batch * 4 * hidden
            || weight_forward.len() != 4 * hidden * hidden
            || weight_backward.len() != 4 * hidden * hidden
            || self.lengths.len() != batch
        {
            candle_core::bail!("fused LSTM: inconsistent shapes");
        }
        let rows = steps * batch;
        let (projected_forward, projected_backward) = projected.split_at(rows * 4 * hidden);
        let mut out_forward = vec![0f32; rows * hidden];
        let mut out_backward = vec![0f32; rows * hidden];
        let (mut gates, mut cells) = if self.save {
            (
                [vec![0f32; rows * 4 * hidden], vec![0f32; rows * 4 * hidden]],
                [vec![0f32; rows * hidden], vec![0f32; rows * hidden]],
            )
        } else {
            ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()])
        };
        {
            let [gates_f, gates_b] = &mut gates;
            let [cells_f, cells_b] = &mut cells;
            let save = self.save;
            let lengths = &self.lengths;
            // One direction per core.
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    run_forward(
                        projected_backward,
                        weight_backward,
                        true,
                        steps,
                        batch,
                        hidden,
                        lengths,
                        &mut out_backward,
                        save.then_some(gates_b.as_mut_slice()),
                        save.then_some(cells_b.as_mut_slice()),
                    )
                });
                run_forward(
                    projected_forward,
                    weight_forward,
                    false,
                    steps,
                    batch,
                    hidden,
                    lengths,
                    &mut out_forward,
                    save.then_some(gates_f.as_mut_slice()),
                    save.then_some(cells_f.as_mut_slice()),
                );
            });
        }
        let mut out = vec![0f32; rows * 2 * hidden];
        for r in 0..rows {
            out[r * 2 * hidden..r * 2 * hidden + hidden]
                .copy_from_slice(&out_forward[r * hidden..(r + 1) * hidden]);
            out[r * 2 * hidden + hidden..(r + 1) * 2 * hidden]
                .copy_from_slice(&out_backward[r * hidden..(r + 1) * hidden]);
        }
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
        _projected: &Tensor,
        weight_forward: &Tensor,
        weight_backward: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (steps, batch, hidden) = (self.steps, self.batch, self.hidden);
        let saved = self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("fused LSTM: poisoned lock".into()))?
            .take()
            .ok_or_else(|| {
                candle_core::Error::Msg("fused LSTM: backward without saved activations".into())
            })?;
        let rows = steps * batch;
        let mut grad_projected = vec![0f32; 2 * rows * 4 * hidden];
        let mut grad_w_forward = vec![0f32; 4 * hidden * hidden];
        let mut grad_w_backward = vec![0f32; 4 * hidden * hidden];
        // Each direction writes its own block of grad_projected.
        let (grad_forward, grad_backward) = grad_projected.split_at_mut(rows * 4 * hidden);
        let lengths = &self.lengths;
        let Saved { gates, cells } = &saved;
        with_values(grad_res, "output gradient", |grad_out| {
            with_values(res, "output", |h_out| {
                with_values(weight_forward, "forward W_hh", |w_forward| {
                    with_values(weight_backward, "backward W_hh", |w_backward| {
                        std::thread::scope(|scope| {
                            scope.spawn(|| {
                                run_backward(
                                    w_backward,
                                    &gates[1],
                                    &cells[1],
                                    grad_out,
                                    h_out,
                                    hidden,
                                    true,
                                    steps,
                                    batch,
                                    hidden,
                                    lengths,
                                    grad_backward,
                                    &mut grad_w_backward,
                                )
                            });
                            run_backward(
                                w_forward,
                                &gates[0],
                                &cells[0],
                                grad_out,
                                h_out,
                                0,
                                false,
                                steps,
                                batch,
                                hidden,
                                lengths,
                                grad_forward,
                                &mut grad_w_forward,
                            );
                        })
                    })
                })
            })
        })????;
        let device = Device::Cpu;
        Ok((
            Some(Tensor::from_vec(
                grad_projected,
                (2, rows, 4 * hidden),
                &device,
            )?),
            Some(Tensor::from_vec(
                grad_w_forward,
                (4 * hidden, hidden),
                &device,
            )?),
            Some(Tensor::from_vec(
                grad_w_backward,
                (4 * hidden, hidden),
                &device,
            )?),
        ))
    }
}
