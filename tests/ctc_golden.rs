//! Golden tests of the CTC loss against PyTorch.
//!
//! Expected numbers: `../shared/golden/ctc/ctc_golden.json`, written by `ctc_golden.py` beside it with
//! `torch.nn.functional.ctc_loss` (torch 2.11, blank = 0) computing in float64 from the float32 inputs
//! stored in the file; its exact log-prob gradients were checked there by central finite differences.
//! Run with `--nocapture` to see the measured maximum errors.

use std::path::PathBuf;

use candle_core::{Device, Tensor, Var};
use ndarray::Array2;
use phonrec::ctc::{ctc_loss, ctc_loss_log_probs, ctc_loss_reference, Reduction};
use phonrec::phones::PhoneId;
use serde::Deserialize;

/// f64 computation from the stored inputs vs PyTorch's f64 (golden README: ~1e-9 relative).
const CTC_F64_TOLERANCE: f64 = 1e-9;
/// The f32 candle op (f32 logits in, f32 loss and gradient out, f64 inside) vs PyTorch's f64.
const CTC_F32_TOLERANCE: f64 = 1e-4;
/// Central finite-difference step on f32 logits, and the error allowed on the candle op's gradient: f32
/// round-off of the loss (~1e-7 relative) over the step, plus the step² truncation term.
const FD_STEP: f32 = 1e-2;
const FD_TOLERANCE: f64 = 5e-4;

#[derive(Deserialize)]
struct Golden {
    generator: String,
    cases: Vec<Case>,
    extra_cases: Vec<serde_json::Value>,
}

/// One utterance `[T, C]`, loss with reduction `sum`.
#[derive(Deserialize)]
struct Case {
    name: String,
    logits: Vec<Vec<f32>>,
    log_probs: Vec<Vec<f64>>,
    target: Vec<u16>,
    /// From `log_probs` (free inputs).
    loss: f64,
    /// From `log_softmax(logits)` in f64.
    loss_from_logits: f64,
    grad_log_probs_exact: Vec<Vec<f64>>,
    grad_logits: Vec<Vec<f64>>,
}

/// Too few frames: infinite loss; 0 loss and zero gradient with `zero_infinity=True`.
#[derive(Deserialize)]
struct ImpossibleCase {
    log_probs: Vec<Vec<f32>>,
    target: Vec<u16>,
    loss: String,
    loss_zero_infinity: f64,
    grad_log_probs_zero_infinity_max_abs: f64,
}

/// A padded batch `[T_max, B, C]` with reduction `mean`.
#[derive(Deserialize)]
struct BatchMeanCase {
    input_lengths: Vec<usize>,
    target_lengths: Vec<usize>,
    targets: Vec<Vec<u16>>,
    log_probs_tbc: Vec<Vec<Vec<f32>>>,
    loss_mean: f64,
    per_sequence: Vec<SequenceGrad>,
}

#[derive(Deserialize)]
struct SequenceGrad {
    loss_sum: f64,
    /// d loss_mean / d log_probs of this sequence: −occupancy / (target_length · batch).
    grad_log_probs_exact: Vec<Vec<f64>>,
}

fn golden() -> Golden {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/golden/ctc/ctc_golden.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("ctc_golden.json has the documented layout")
}

fn extra<T: for<'de> Deserialize<'de>>(golden: &Golden, name: &str) -> T {
    let value = golden
        .extra_cases
        .iter()
        .find(|case| case["name"] == name)
        .unwrap_or_else(|| panic!("extra case {name} is missing"));
    // The JSON key is `log_probs_TBC`; serde's field name is snake case.
    let mut value = value.clone();
    if let Some(tbc) = value.get("log_probs_TBC").cloned() {
        value["log_probs_tbc"] = tbc;
    }
    serde_json::from_value(value).expect("extra case has the documented layout")
}

fn phones(ids: &[u16]) -> Vec<PhoneId> {
    ids.iter().map(|&i| PhoneId(i)).collect()
}

fn matrix(rows: &[Vec<f64>]) -> Array2<f64> {
    let (num_rows, num_columns) = (rows.len(), rows.first().map_or(0, Vec::len));
    Array2::from_shape_vec((num_rows, num_columns), rows.concat()).expect("rectangular")
}

/// Error scaled by the magnitude of the expected value, or absolute below 1: gradients lie in [-1, 1]
/// where relative error is meaningless near 0; losses are large.
fn scaled_error(actual: f64, expected: f64) -> f64 {
    (actual - expected).abs() / expected.abs().max(1.0)
}

fn max_scaled_error<'a>(
    actual: impl IntoIterator<Item = f64>,
    expected: impl IntoIterator<Item = &'a f64>,
) -> f64 {
    actual
        .into_iter()
        .zip(expected)
        .map(|(a, e)| scaled_error(a, *e))
        .fold(0.0, f64::max)
}

#[test]
fn f64_kernels_match_pytorch_exact_gradients() {
    let golden = golden();
    assert!(
        golden.generator.contains("ctc_loss"),
        "{}",
        golden.generator
    );
    for case in &golden.cases {
        let log_probs = matrix(&case.log_probs);
        let expected_grad = matrix(&case.grad_log_probs_exact);
        let target = phones(&case.target);

        let (loss, grad) = ctc_loss_reference(log_probs.view(), &target);
        let loss_error = scaled_error(loss, case.loss);
        let grad_error = max_scaled_error(grad.iter().copied(), expected_grad.iter());
        eprintln!(
            "{}: reference loss error {loss_error:.1e}, grad error {grad_error:.1e}",
            case.name
        );
        assert!(loss_error < CTC_F64_TOLERANCE, "{}", case.name);
        assert!(grad_error < CTC_F64_TOLERANCE, "{}", case.name);

        let (loss, grad) = ctc_loss_log_probs(log_probs.view(), &target).unwrap();
        let loss_error = scaled_error(loss, case.loss);
        let grad_error = max_scaled_error(grad.iter().copied(), expected_grad.iter());
        eprintln!(
            "{}: fused kernel loss error {loss_error:.1e}, grad error {grad_error:.1e}",
            case.name
        );
        assert!(loss_error < CTC_F64_TOLERANCE, "{}", case.name);
        assert!(grad_error < CTC_F64_TOLERANCE, "{}", case.name);
    }
}

#[test]
fn candle_op_matches_pytorch_from_logits() -> candle_core::Result<()> {
    let golden = golden();
    for case in &golden.cases {
        let (frames, classes) = (case.logits.len(), case.logits[0].len());
        let logits = Var::from_vec(case.logits.concat(), (1, frames, classes), &Device::Cpu)?;
        let output = ctc_loss(
            logits.as_tensor(),
            &[phones(&case.target)],
            &[frames],
            Reduction::Sum,
        )?;
        assert_eq!(output.num_impossible, 0);
        let loss = f64::from(output.loss.to_scalar::<f32>()?);
        let grads = output.loss.backward()?;
        let grad = grads
            .get(logits.as_tensor())
            .expect("gradient of the logits");
        let grad = grad.flatten_all()?.to_vec1::<f32>()?;
        let expected_grad = matrix(&case.grad_logits);

        let loss_error = scaled_error(loss, case.loss_from_logits);
        let grad_error = max_scaled_error(grad.iter().map(|&g| f64::from(g)), expected_grad.iter());
        eprintln!(
            "{}: candle op loss error {loss_error:.1e}, grad error {grad_error:.1e}",
            case.name
        );
        assert!(loss_error < CTC_F32_TOLERANCE, "{}", case.name);
        assert!(grad_error < CTC_F32_TOLERANCE, "{}", case.name);
    }
    Ok(())
}

#[test]
fn impossible_alignment_is_infinite_or_zero_never_nan() -> candle_core::Result<()> {
    let golden = golden();
    let case: ImpossibleCase = extra(&golden, "T4_C6_impossible");
    assert_eq!(case.loss, "inf");
    let target = phones(&case.target);
    let log_probs = matrix(
        &case
            .log_probs
            .iter()
            .map(|row| row.iter().map(|&x| f64::from(x)).collect())
            .collect::<Vec<_>>(),
    );
    let (loss, grad) = ctc_loss_reference(log_probs.view(), &target);
    assert_eq!(loss, f64::INFINITY);
    assert!(grad.iter().all(|g| *g == 0.0));
    assert_eq!(
        ctc_loss_log_probs(log_probs.view(), &target).unwrap().0,
        f64::INFINITY
    );

    // The candle op applies zero_infinity: log_softmax of log-probs is the identity up to round-off.
    let (frames, classes) = log_probs.dim();
    let logits = Var::from_vec(case.log_probs.concat(), (1, frames, classes), &Device::Cpu)?;
    for reduction in [Reduction::Sum, Reduction::Mean, Reduction::None] {
        let output = ctc_loss(
            logits.as_tensor(),
            std::slice::from_ref(&target),
            &[frames],
            reduction,
        )?;
        assert_eq!(output.num_impossible, 1);
        let loss = output.loss.flatten_all()?.to_vec1::<f32>()?[0];
        assert_eq!(f64::from(loss), case.loss_zero_infinity);
        let grads = output.loss.sum_all()?.backward()?;
        let grad = grads
            .get(logits.as_tensor())
            .expect("gradient of the logits");
        let max_abs = grad.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(
            f64::from(max_abs),
            case.grad_log_probs_zero_infinity_max_abs
        );
    }
    Ok(())
}

#[test]
fn padded_batch_with_mean_reduction_matches_pytorch() -> candle_core::Result<()> {
    let golden = golden();
    let case: BatchMeanCase = extra(&golden, "batch3_mean");
    let (max_frames, batch, classes) = (
        case.log_probs_tbc.len(),
        case.log_probs_tbc[0].len(),
        case.log_probs_tbc[0][0].len(),
    );
    let targets: Vec<Vec<PhoneId>> = case.targets.iter().map(|t| phones(t)).collect();
    for (target, &length) in targets.iter().zip(&case.target_lengths) {
        assert_eq!(target.len(), length);
    }

    // f64: per-sequence losses and gradients from the fused kernel, scaled as the mean reduction does.
    let mut mean = 0.0;
    for (b, target) in targets.iter().enumerate() {
        let frames = case.input_lengths[b];
        let log_probs = Array2::from_shape_fn((frames, classes), |(t, k)| {
            f64::from(case.log_probs_tbc[t][b][k])
        });
        let (loss, grad) = ctc_loss_log_probs(log_probs.view(), target).unwrap();
        let scale = 1.0 / (target.len() * batch) as f64;
        let expected = &case.per_sequence[b];
        let loss_error = scaled_error(loss, expected.loss_sum);
        let grad_error = max_scaled_error(
            grad.iter().map(|g| g * scale),
            matrix(&expected.grad_log_probs_exact).iter(),
        );
        eprintln!("batch3_mean[{b}]: fused kernel loss error {loss_error:.1e}, grad error {grad_error:.1e}");
        assert!(loss_error < CTC_F64_TOLERANCE);
        assert!(grad_error < CTC_F64_TOLERANCE);
        mean += loss * scale;
    }
    assert!(scaled_error(mean, case.loss_mean) < CTC_F64_TOLERANCE);

    // f32: the candle op on the padded batch [B, T_max, C], log-probs as logits, garbage in the padding.
    let logits = Array2::from_shape_fn((batch * max_frames, classes), |(row, k)| {
        let (b, t) = (row / max_frames, row % max_frames);
        if t < case.input_lengths[b] {
            case.log_probs_tbc[t][b][k]
        } else {
            1e3
        }
    });
    let logits = Var::from_vec(
        logits.into_raw_vec_and_offset().0,
        (batch, max_frames, classes),
        &Device::Cpu,
    )?;
    let output = ctc_loss(
        logits.as_tensor(),
        &targets,
        &case.input_lengths,
        Reduction::Mean,
    )?;
    let loss = f64::from(output.loss.to_scalar::<f32>()?);
    let loss_error = scaled_error(loss, case.loss_mean);
    let grads = output.loss.backward()?;
    let grad = grads
        .get(logits.as_tensor())
        .expect("gradient of the logits")
        .to_vec3::<f32>()?;
    let mut grad_error: f64 = 0.0;
    for b in 0..batch {
        let scale = 1.0 / (targets[b].len() * batch) as f64;
        let exact = &case.per_sequence[b].grad_log_probs_exact;
        for t in 0..max_frames {
            for k in 0..classes {
                // d/dlogits = (softmax − occupancy) · scale = softmax · scale + d/dlog_probs; 0 on padding.
                let expected = if t < case.input_lengths[b] {
                    f64::from(case.log_probs_tbc[t][b][k]).exp() * scale + exact[t][k]
                } else {
                    0.0
                };
                grad_error = grad_error.max(scaled_error(f64::from(grad[b][t][k]), expected));
            }
        }
    }
    eprintln!("batch3_mean: candle op loss error {loss_error:.1e}, grad error {grad_error:.1e}");
    assert!(loss_error < CTC_F32_TOLERANCE);
    assert!(grad_error < CTC_F32_TOLERANCE);
    Ok(())
}

#[test]
fn candle_op_gradient_matches_finite_differences() -> candle_core::Result<()> {
    // Our own check, independent of PyTorch: a padded batch of two with reduction mean, every logit
    // of the valid frames perturbed in turn.
    let golden = golden();
    let case = golden
        .cases
        .iter()
        .find(|c| c.name == "T12_C6_tight")
        .expect("case T12_C6_tight");
    let classes = case.logits[0].len();
    let (frames, short_frames) = (12, 7);
    let targets = vec![phones(&case.target), phones(&[2, 4, 4])];
    let input_lengths = [frames, short_frames];
    let mut values: Vec<f32> = case.logits.concat();
    values.extend(case.logits.concat().iter().rev().map(|x| 0.5 * x));
    let shape = (2, frames, classes);
    let loss_at = |values: &[f32]| -> candle_core::Result<f64> {
        let logits = Tensor::from_slice(values, shape, &Device::Cpu)?;
        let loss = ctc_loss(&logits, &targets, &input_lengths, Reduction::Mean)?.loss;
        Ok(f64::from(loss.to_scalar::<f32>()?))
    };

    let logits = Var::from_slice(&values, shape, &Device::Cpu)?;
    let output = ctc_loss(
        logits.as_tensor(),
        &targets,
        &input_lengths,
        Reduction::Mean,
    )?;
    let grads = output.loss.backward()?;
    let grad = grads
        .get(logits.as_tensor())
        .expect("gradient of the logits")
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut max_error: f64 = 0.0;
    for (b, &length) in input_lengths.iter().enumerate() {
        for t in 0..frames {
            for k in 0..classes {
                let index = (b * frames + t) * classes + k;
                let mut plus = values.clone();
                plus[index] += FD_STEP;
                let mut minus = values.clone();
                minus[index] -= FD_STEP;
                let numeric = (loss_at(&plus)? - loss_at(&minus)?) / (2.0 * f64::from(FD_STEP));
                let error = (numeric - f64::from(grad[index])).abs();
                if t >= length {
                    // Padding: the loss does not depend on it at all.
                    assert_eq!(grad[index], 0.0);
                    assert_eq!(numeric, 0.0);
                }
                max_error = max_error.max(error);
            }
        }
    }
    eprintln!("finite differences: max gradient error {max_error:.1e}");
    assert!(max_error < FD_TOLERANCE, "{max_error}");
    Ok(())
}
