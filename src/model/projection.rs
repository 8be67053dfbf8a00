//! Stage 3a, fused: the input projection of a bidirectional LSTM layer, `x · Wᵀ + b` for every step and
//! both directions at once, as one candle op with a hand-written backward pass.
//!
//! candle builds the same thing from a matmul, a transpose and a broadcast add; its backward then
//! copies transposes, sums the bias gradient with a generic reduction and accumulates every gradient into
//! a fresh zero tensor (`perf`: ~10 % of a training step). Here the forward is one GEMM into a buffer
//! pre-filled with the bias, and the backward three direct products: `dx = g · W`, `dW = gᵀ · x`,
//! `db = Σ_rows g`.

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Shape, Storage, Tensor};

use super::kernels::{f32_slice, gemm_f32};

/// `input` `[rows, inputs]` · `weight`ᵀ (`[outputs, inputs]`) + `bias` (`[outputs]`) -> `[rows, outputs]`.
pub(crate) fn project(
    input: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
) -> candle_core::Result<Tensor> {
    let input = input.contiguous()?;
    let weight = weight.contiguous()?;
    let bias = bias.contiguous()?;
    if input.track_op() || weight.track_op() || bias.track_op() {
        input.apply_op3(&weight, &bias, ProjectionOp)
    } else {
        input.apply_op3_no_bwd(&weight, &bias, &ProjectionOp)
    }
}

struct ProjectionOp;

/// Threads for the products: the same count candle uses for its matrix products.
fn threads() -> usize {
    candle_core::utils::get_num_threads().max(1)
}

/// Run `f` on a tensor's values (made contiguous first).
fn with_values<R>(
    tensor: &Tensor,
    what: &str,
    f: impl FnOnce(&[f32]) -> R,
) -> candle_core::Result<R> {
    let tensor = tensor.contiguous()?;
    let (storage, layout) = tensor.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("the fused projection runs on the CPU only");
    };
    Ok(f(f32_slice(cpu, layout, what)?))
}

impl CustomOp3 for ProjectionOp {
    fn name(&self) -> &'static str {
        "fused-input-projection"
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
        let input = f32_slice(s1, l1, "projection input")?;
        let weight = f32_slice(s2, l2, "projection weight")?;
        let bias = f32_slice(s3, l3, "projection bias")?;
        let (rows, inputs) = l1.shape().dims2()?;
        let (outputs, weight_inputs) = l2.shape().dims2()?;
        if weight_inputs != inputs || bias.len() != outputs {
            candle_core::bail!(
                "fused projection: input [{rows}, {inputs}], weight [{outputs}, {weight_inputs}], \
                 bias [{}] do not fit",
                bias.len()
            );
        }
        let mut out = Vec::with_capacity(rows * outputs);
        for _ in 0..rows {
            out.extend_from_slice(bias);
        }
        gemm_f32(
            threads(),
            rows,
            outputs,
            inputs,
            &mut out,
            outputs,
            true,
            input,
            inputs,
            false,
            weight,
            inputs,
            true,
        );
        Ok((CpuStorage::F32(out), Shape::from((rows, outputs))))
    }

    fn bwd(
        &self,
        input: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, inputs) = input.dims2()?;
        let outputs = weight.dim(0)?;
        let threads = threads();
        let mut grad_input = vec![0f32; rows * inputs];
        let mut grad_weight = vec![0f32; outputs * inputs];
        let mut grad_bias = vec![0f32; outputs];
        with_values(grad_res, "projection gradient", |grad| {
            with_values(weight, "projection weight", |weight| {
                // dx = g · W: [rows × outputs] · [outputs × inputs].
                gemm_f32(
                    threads,
                    rows,
                    inputs,
                    outputs,
                    &mut grad_input,
                    inputs,
                    false,
                    grad,
                    outputs,
                    false,
                    weight,
                    inputs,
                    false,
                );
            })?;
            with_values(input, "projection input", |input| {
                // dW = gᵀ · x: [outputs × rows] · [rows × inputs].
                gemm_f32(
                    threads,
                    outputs,
                    inputs,
                    rows,
                    &mut grad_weight,
                    inputs,
                    false,
                    grad,
                    outputs,
                    true,
                    input,
                    inputs,
                    false,
                );
            })?;
            for row in grad.chunks_exact(outputs) {
                for (sum, &g) in grad_bias.iter_mut().zip(row) {
                    *sum += g;
                }
            }
            Ok::<(), candle_core::Error>(())
        })??;
        let device = Device::Cpu;
        Ok((
            Some(Tensor::from_vec(grad_input, (rows, inputs), &device)?),
            Some(Tensor::from_vec(grad_weight, (outputs, inputs), &device)?),
            Some(Tensor::from_vec(grad_bias, outputs, &device)?),
        ))
    }
}
