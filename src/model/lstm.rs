//! Stage 3a, one bidirectional LSTM layer: time-major inputs `[steps × batch, inputs]` ->
//! outputs `[steps × batch, 2·hidden]` (the forward direction's `h`, then the backward direction's).
//!
//! The recurrence is PyTorch's `nn.LSTM`, gates stacked in the order i, f, g, o:
//! ```text
//! gates_t = W_ih x_t + W_hh h_{t-1} + b        (b = PyTorch's b_ih + b_hh)
//! i = σ(gates.i)  f = σ(gates.f)  g = tanh(gates.g)  o = σ(gates.o)
//! c_t = f ⊙ c_{t-1} + i ⊙ g                    h_t = o ⊙ tanh(c_t)
//! ```
//! The backward direction runs the same recurrence from the last step to the first.
//!
//! This is the reference implementation, built from plain candle ops so that candle's autograd gives its
//! gradient; a fused CPU kernel is to be checked against it. Even so it avoids the two traps of a naive
//! time loop in candle: the input projection of all steps and both directions is one matmul, and the
//! per-step slices are cut out of it by [`split_steps`] in O(T log T) instead of O(T²) (see there).

use candle_core::{Result, Tensor, D};

/// Weights of one LSTM direction, in PyTorch's layout.
#[derive(Clone, Debug)]
pub(crate) struct LstmWeights {
    /// `[4·hidden, inputs]`, gates stacked i, f, g, o.
    pub weight_ih: Tensor,
    /// `[4·hidden, hidden]`, gates stacked i, f, g, o.
    pub weight_hh: Tensor,
    /// `[4·hidden]`, the sum of PyTorch's `bias_ih` and `bias_hh`.
    pub bias: Tensor,
}

impl LstmWeights {
    fn hidden_size(&self) -> Result<usize> {
        self.weight_hh.dim(1)
    }
}

/// The input projection of every step and both directions in one GEMM:
/// `[steps·batch, inputs]` -> `[steps·batch, 8·hidden]` (forward gates, then backward gates, bias added).
/// The reference layer's projection, from candle ops (candle's autograd gives its backward); the fused
/// layer computes the same inside its own op.
pub(crate) fn project_inputs(input: &Tensor, directions: &[LstmWeights; 2]) -> Result<Tensor> {
    let (weight_ih, bias) = stacked_input_weights(directions)?;
    input.matmul(&weight_ih.t()?)?.broadcast_add(&bias)
}

/// Both directions' input weights `[8·hidden, inputs]` and biases `[8·hidden]`, forward first.
pub(crate) fn stacked_input_weights(directions: &[LstmWeights; 2]) -> Result<(Tensor, Tensor)> {
    let [forward, backward] = directions;
    Ok((
        Tensor::cat(&[&forward.weight_ih, &backward.weight_ih], 0)?,
        Tensor::cat(&[&forward.bias, &backward.bias], 0)?,
    ))
}

/// One bidirectional LSTM layer over a padded batch, from plain candle ops.
///
/// - `input`: `[steps × batch, inputs]`, row `t·batch + b` is step `t` of sequence `b`;
/// - `directions`: the forward and the backward direction's weights;
/// - `step_masks`: `None` when every sequence has all `steps` steps, else `[steps, batch, 1]` with 1 where
///   step `t` is inside sequence `b` and 0 in the padding.
///
/// Returns `[steps × batch, 2·hidden]` in the same row order. After each step the state of a padded
/// position is multiplied by its mask, so it is zero: the backward direction enters every sequence at
/// that sequence's own last step with a zero state, exactly as if it were alone, and the outputs at
/// padded positions are zero.
pub(crate) fn blstm_layer_reference(
    input: &Tensor,
    batch: usize,
    directions: &[LstmWeights; 2],
    step_masks: Option<&Tensor>,
) -> Result<Tensor> {
    let [forward, backward] = directions;
    let hidden = forward.hidden_size()?;
    let steps = input.dim(0)? / batch.max(1);
    let projected = project_inputs(input, directions)?.reshape((steps, batch, 8 * hidden))?;
    let projected = split_steps(&projected)?;
    let step_masks = match step_masks {
        Some(masks) => Some(split_steps(masks)?),
        None => None,
    };
    let outputs_forward = run_direction(
        forward,
        &projected,
        0,
        0..steps,
        step_masks.as_deref(),
        batch,
    )?;
    let outputs_backward = run_direction(
        backward,
        &projected,
        4 * hidden,
        (0..steps).rev(),
        step_masks.as_deref(),
        batch,
    )?;
    let outputs = Tensor::cat(
        &[
            Tensor::stack(&outputs_forward, 0)?,
            Tensor::stack(&outputs_backward, 0)?,
        ],
        D::Minus1,
    )?;
    outputs.reshape((steps * batch, 2 * hidden))
}

/// Run one direction's recurrence over `time_order`; `projected[t]` is `[batch, 8·hidden]` and this
/// direction's gates start at column `gate_offset`. Returns `h_t` `[batch, hidden]` indexed by `t`.
fn run_direction(
    weights: &LstmWeights,
    projected: &[Tensor],
    gate_offset: usize,
    time_order: impl Iterator<Item = usize>,
    step_masks: Option<&[Tensor]>,
    batch: usize,
) -> Result<Vec<Tensor>> {
    let hidden = weights.hidden_size()?;
    let weight_hh = weights.weight_hh.t()?;
    let dtype = weights.weight_hh.dtype();
    let device = weights.weight_hh.device();
    let mut h = Tensor::zeros((batch, hidden), dtype, device)?;
    let mut c = Tensor::zeros((batch, hidden), dtype, device)?;
    let mut outputs: Vec<Option<Tensor>> = vec![None; projected.len()];
    for t in time_order {
        let gates = projected[t]
            .narrow(1, gate_offset, 4 * hidden)?
            .add(&h.matmul(&weight_hh)?)?;
        let gates = gates.chunk(4, 1)?;
        let input_gate = candle_nn::ops::sigmoid(&gates[0])?;
        let forget_gate = candle_nn::ops::sigmoid(&gates[1])?;
        let candidate = gates[2].tanh()?;
        let output_gate = candle_nn::ops::sigmoid(&gates[3])?;
        c = ((forget_gate * &c)? + (input_gate * candidate)?)?;
        h = (output_gate * c.tanh()?)?;
        if let Some(masks) = step_masks {
            c = c.broadcast_mul(&masks[t])?;
            h = h.broadcast_mul(&masks[t])?;
        }
        outputs[t] = Some(h.clone());
    }
    outputs
        .into_iter()
        .map(|h| h.ok_or_else(|| candle_core::Error::Msg("a time step was skipped".into())))
        .collect()
}

/// Cut `x` `[steps, …]` into `steps` tensors `[…]`.
///
/// candle's `narrow` backward allocates a gradient the size of its whole source, so cutting `T` steps one
/// by one out of a tensor that tracks gradients costs `T` full-size allocations, O(T²) in all
/// (`../shared/bench/README.md`). Halving recursively costs one full size per level, O(T log T); for
/// T = 400 that is ~9 instead of 400. Tensors without gradient tracking are cut directly (views, free).
pub(crate) fn split_steps(x: &Tensor) -> Result<Vec<Tensor>> {
    let steps = x.dim(0)?;
    if !x.track_op() {
        return (0..steps).map(|t| x.get(t)).collect();
    }
    let mut parts = Vec::with_capacity(steps);
    split_halves(x, &mut parts)?;
    Ok(parts)
}

fn split_halves(x: &Tensor, parts: &mut Vec<Tensor>) -> Result<()> {
    let steps = x.dim(0)?;
    if steps == 1 {
        parts.push(x.squeeze(0)?);
        return Ok(());
    }
    let half = steps / 2;
    split_halves(&x.narrow(0, 0, half)?, parts)?;
    split_halves(&x.narrow(0, half, steps - half)?, parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// f64 arithmetic in both implementations: only summation order differs.
    const EXACT_TOLERANCE: f64 = 1e-12;
    /// Central differences in f64 with step 1e-6: truncation ~1e-12, rounding ~1e-10.
    const GRADIENT_TOLERANCE: f64 = 1e-6;

    fn random(rng: &mut StdRng, shape: &[usize]) -> Vec<f64> {
        let n = shape.iter().product();
        (0..n).map(|_| rng.gen_range(-0.8..0.8)).collect()
    }

    fn tensor(values: &[f64], shape: &[usize]) -> Tensor {
        Tensor::from_slice(values, shape, &Device::Cpu).expect("test shapes match")
    }

    struct Case {
        batch: usize,
        steps: usize,
        inputs: usize,
        hidden: usize,
        lengths: Vec<usize>,
        input: Vec<f64>,
        /// [direction] -> (weight_ih, weight_hh, bias) as flat row-major vectors.
        weights: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)>,
    }

    fn case(seed: u64, lengths: Vec<usize>) -> Case {
        let mut rng = StdRng::seed_from_u64(seed);
        let (inputs, hidden) = (3, 4);
        let batch = lengths.len();
        let steps = *lengths.iter().max().expect("non-empty");
        let input = random(&mut rng, &[steps, batch, inputs]);
        let weights = (0..2)
            .map(|_| {
                (
                    random(&mut rng, &[4 * hidden, inputs]),
                    random(&mut rng, &[4 * hidden, hidden]),
                    random(&mut rng, &[4 * hidden]),
                )
            })
            .collect();
        Case {
            batch,
            steps,
            inputs,
            hidden,
            lengths,
            input,
            weights,
        }
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// The LSTM equations with scalar loops, one sequence at a time: the obviously right twin.
    /// Returns [steps][batch][2·hidden], zero in the padding.
    fn plain_loops(case: &Case) -> Vec<Vec<Vec<f64>>> {
        let (b_n, t_n, d_n, h_n) = (case.batch, case.steps, case.inputs, case.hidden);
        let mut out = vec![vec![vec![0.0; 2 * h_n]; b_n]; t_n];
        for (b, &len) in case.lengths.iter().enumerate() {
            for (dir, (w_ih, w_hh, bias)) in case.weights.iter().enumerate() {
                let mut h = vec![0.0; h_n];
                let mut c = vec![0.0; h_n];
                let order: Vec<usize> = if dir == 0 {
                    (0..len).collect()
                } else {
                    (0..len).rev().collect()
                };
                for t in order {
                    let x = &case.input[(t * b_n + b) * d_n..(t * b_n + b + 1) * d_n];
                    let gate = |row: usize| {
                        let mut z = bias[row];
                        for k in 0..d_n {
                            z += w_ih[row * d_n + k] * x[k];
                        }
                        for k in 0..h_n {
                            z += w_hh[row * h_n + k] * h[k];
                        }
                        z
                    };
                    let mut new_h = vec![0.0; h_n];
                    for j in 0..h_n {
                        let i = sigmoid(gate(j));
                        let f = sigmoid(gate(h_n + j));
                        let g = gate(2 * h_n + j).tanh();
                        let o = sigmoid(gate(3 * h_n + j));
                        c[j] = f * c[j] + i * g;
                        new_h[j] = o * c[j].tanh();
                    }
                    h = new_h;
                    out[t][b][dir * h_n..(dir + 1) * h_n].copy_from_slice(&h);
                }
            }
        }
        out
    }

    fn masks(case: &Case) -> Option<Tensor> {
        if case.lengths.iter().all(|&l| l == case.steps) {
            return None;
        }
        let values: Vec<f64> = (0..case.steps)
            .flat_map(|t| {
                case.lengths
                    .iter()
                    .map(move |&l| f64::from(u8::from(t < l)))
            })
            .collect();
        Some(tensor(&values, &[case.steps, case.batch, 1]))
    }

    fn weights_of(case: &Case, vars: Option<&[Var]>) -> [LstmWeights; 2] {
        let (d, h) = (case.inputs, case.hidden);
        let make = |dir: usize| {
            let (w_ih, w_hh, bias) = &case.weights[dir];
            match vars {
                Some(vars) => LstmWeights {
                    weight_ih: vars[3 * dir].as_tensor().clone(),
                    weight_hh: vars[3 * dir + 1].as_tensor().clone(),
                    bias: vars[3 * dir + 2].as_tensor().clone(),
                },
                None => LstmWeights {
                    weight_ih: tensor(w_ih, &[4 * h, d]),
                    weight_hh: tensor(w_hh, &[4 * h, h]),
                    bias: tensor(bias, &[4 * h]),
                },
            }
        };
        [make(0), make(1)]
    }

    #[test]
    fn matches_plain_loops_with_mixed_lengths() -> Result<()> {
        let case = case(11, vec![5, 2, 4]);
        let input = tensor(&case.input, &[case.steps * case.batch, case.inputs]);
        let output = blstm_layer_reference(
            &input,
            case.batch,
            &weights_of(&case, None),
            masks(&case).as_ref(),
        )?;
        let output = output
            .reshape((case.steps, case.batch, 2 * case.hidden))?
            .to_vec3::<f64>()?;
        let expected = plain_loops(&case);
        for t in 0..case.steps {
            for b in 0..case.batch {
                for j in 0..2 * case.hidden {
                    let (got, want) = (output[t][b][j], expected[t][b][j]);
                    assert!(
                        (got - want).abs() < EXACT_TOLERANCE,
                        "t {t} b {b} j {j}: {got} vs {want}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences() -> Result<()> {
        let case = case(12, vec![6, 3]);
        let (d, h) = (case.inputs, case.hidden);
        let vars: Vec<Var> = case
            .weights
            .iter()
            .flat_map(|(w_ih, w_hh, bias)| {
                [
                    Var::from_tensor(&tensor(w_ih, &[4 * h, d])),
                    Var::from_tensor(&tensor(w_hh, &[4 * h, h])),
                    Var::from_tensor(&tensor(bias, &[4 * h])),
                ]
            })
            .collect::<Result<_>>()?;
        let input = tensor(&case.input, &[case.steps * case.batch, d]);
        let masks = masks(&case);
        // A loss that weighs every output differently, so that no gradient cancels by symmetry.
        let mut rng = StdRng::seed_from_u64(13);
        let loss_weights = tensor(
            &random(&mut rng, &[case.steps * case.batch, 2 * h]),
            &[case.steps * case.batch, 2 * h],
        );
        let loss = |weights: &[LstmWeights; 2]| -> Result<Tensor> {
            blstm_layer_reference(&input, case.batch, weights, masks.as_ref())?
                .mul(&loss_weights)?
                .sum_all()
        };
        let grads = loss(&weights_of(&case, Some(&vars)))?.backward()?;
        let epsilon = 1e-6;
        for var in &vars {
            let analytic = grads
                .get(var.as_tensor())
                .expect("every weight gets a gradient")
                .flatten_all()?
                .to_vec1::<f64>()?;
            let original = var.as_tensor().flatten_all()?.to_vec1::<f64>()?;
            // Check a spread of entries of each tensor: every gate, both ends.
            for index in (0..original.len()).step_by(5) {
                let mut shifted = original.clone();
                let mut value_at = |delta: f64| -> Result<f64> {
                    shifted[index] = original[index] + delta;
                    var.set(&Tensor::from_slice(&shifted, var.shape(), &Device::Cpu)?)?;
                    let value = loss(&weights_of(&case, Some(&vars)))?.to_scalar::<f64>()?;
                    var.set(&Tensor::from_slice(&original, var.shape(), &Device::Cpu)?)?;
                    Ok(value)
                };
                let numeric = (value_at(epsilon)? - value_at(-epsilon)?) / (2.0 * epsilon);
                assert!(
                    (numeric - analytic[index]).abs() < GRADIENT_TOLERANCE,
                    "{:?} [{index}]: numeric {numeric} vs autograd {}",
                    var.shape(),
                    analytic[index]
                );
            }
        }
        Ok(())
    }

    #[test]
    fn split_steps_keeps_order_and_gradients() -> Result<()> {
        let values: Vec<f32> = (0..7 * 2).map(|v| v as f32).collect();
        let var = Var::from_slice(&values, (7, 2), &Device::Cpu)?;
        let parts = split_steps(var.as_tensor())?;
        assert_eq!(parts.len(), 7);
        for (t, part) in parts.iter().enumerate() {
            assert_eq!(
                part.to_vec1::<f32>()?,
                vec![2.0 * t as f32, 2.0 * t as f32 + 1.0]
            );
        }
        // d/dx of Σ_t (t+1)·sum(part_t) is t+1 on row t.
        let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu)?;
        for (t, part) in parts.iter().enumerate() {
            loss = (loss + (part.sum_all()? * (t as f64 + 1.0))?)?;
        }
        let grad = loss.backward()?;
        let grad = grad
            .get(var.as_tensor())
            .expect("tracked")
            .to_vec2::<f32>()?;
        for (t, row) in grad.iter().enumerate() {
            assert_eq!(row, &vec![t as f32 + 1.0; 2]);
        }
        Ok(())
    }
}
