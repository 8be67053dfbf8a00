//! Stage 4 (training), CTC loss: logits [batch, frames, classes] -> negative log-likelihood of each target
//! phone sequence, with the gradient w.r.t. the logits fused with log_softmax.
//!
//! Matches `torch.nn.functional.ctc_loss(log_softmax(logits), ..., blank=0, zero_infinity=True)`
//! (Graves et al. 2006, "Connectionist Temporal Classification"), checked against
//! `../shared/golden/ctc/` in `tests/ctc_golden.rs`. The fused kernel is a candle [`CustomOp1`] running
//! a forward–backward per utterance in f64, in parallel over the batch: in probability space with
//! per-frame scaling (fast), falling back to log space for an utterance whose scales underflow
//! (always safe); the states come from `topology.rs`. Beside it sit
//! [`ctc_loss_reference`], a slow plain-loop twin, and [`ctc_loss_log_probs`], the fast kernel on
//! ndarray log-probs.

use std::sync::OnceLock;

use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::logmath::{log_add, log_softmax_into};
use super::topology::Topology;
use crate::phones::{PhoneId, BLANK};

/// How per-utterance losses are combined into the returned loss, as PyTorch's `reduction`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reduction {
    /// One loss per utterance: a `[batch]` tensor.
    None,
    /// The sum of the utterance losses: a scalar.
    Sum,
    /// The mean over the batch of `loss / target_length` (a target length of 0 counts as 1): a scalar.
    /// PyTorch's default, and ours.
    #[default]
    Mean,
}

/// What [`ctc_loss`] returns.
#[derive(Clone, Debug)]
pub struct CtcOutput {
    /// The reduced loss: `[batch]` for [`Reduction::None`], else a scalar. f32, differentiable w.r.t. the
    /// logits, so `loss.backward()` works.
    pub loss: Tensor,
    /// How many utterances of the batch cannot be aligned (fewer frames than [`min_frames`] of their
    /// target). Each contributes zero loss and zero gradient (PyTorch's `zero_infinity=True`), but still
    /// counts in the batch size of [`Reduction::Mean`].
    pub num_impossible: usize,
}

/// The fewest frames a CTC alignment of `target` needs: one per label, plus one blank between each pair of
/// equal adjacent labels (`a a` must be emitted as `a <blk> a`).
pub fn min_frames(target: &[PhoneId]) -> usize {
    let repeats = target.windows(2).filter(|pair| pair[0] == pair[1]).count();
    target.len() + repeats
}

/// CTC loss of a padded batch of logits, differentiable w.r.t. the logits.
///
/// `logits` are unnormalised network outputs `[batch, frames, classes]` (f32, CPU, blank = class 0);
/// log_softmax is applied inside, so the gradient `softmax − occupancy` is exact. Utterance `b` uses the
/// frames `0..input_lengths[b]` and the labels `targets[b]` (each in `1..classes`); padded frames get zero
/// gradient. Impossible alignments are counted in [`CtcOutput::num_impossible`] and contribute zero.
///
/// Errors (never panics) on a wrong dtype, device or shape, lengths that do not fit, or labels out of range.
pub fn ctc_loss(
    logits: &Tensor,
    targets: &[Vec<PhoneId>],
    input_lengths: &[usize],
    reduction: Reduction,
) -> candle_core::Result<CtcOutput> {
    if !logits.device().is_cpu() {
        bail!("ctc_loss runs on the CPU; move the logits there first");
    }
    if logits.dtype() != DType::F32 {
        bail!("ctc_loss expects f32 logits, got {:?}", logits.dtype());
    }
    let (batch, num_frames, num_classes) = logits.dims3()?;
    if batch == 0 {
        bail!("ctc_loss got an empty batch");
    }
    if num_classes < 1 {
        bail!("ctc_loss needs at least one class (the blank)");
    }
    if targets.len() != batch || input_lengths.len() != batch {
        bail!(
            "ctc_loss: batch of {batch} logits but {} targets and {} input lengths",
            targets.len(),
            input_lengths.len()
        );
    }
    for (b, (target, &length)) in targets.iter().zip(input_lengths).enumerate() {
        if length > num_frames {
            bail!("ctc_loss: input length {length} of utterance {b} exceeds the {num_frames} padded frames");
        }
        if let Some(bad) = target
            .iter()
            .find(|p| **p == BLANK || p.index() >= num_classes)
        {
            bail!(
                "ctc_loss: label {} of utterance {b} is not a phone: labels must be in 1..{num_classes} (0 is the blank)",
                bad.0
            );
        }
    }
    let num_impossible = targets
        .iter()
        .zip(input_lengths)
        .filter(|(target, &length)| length < min_frames(target))
        .count();

    let logits = logits.contiguous()?;
    let op = CtcLossOp {
        targets: targets.to_vec(),
        input_lengths: input_lengths.to_vec(),
        keep_gradient: logits.track_op(),
        gradient: OnceLock::new(),
    };
    let per_utterance = if op.keep_gradient {
        logits.apply_op1(op)?
    } else {
        logits.apply_op1_no_bwd(&op)?
    };
    let loss = match reduction {
        Reduction::None => per_utterance,
        Reduction::Sum => per_utterance.sum_all()?,
        Reduction::Mean => {
            let target_lengths: Vec<f32> = targets.iter().map(|t| t.len().max(1) as f32).collect();
            let target_lengths = Tensor::from_vec(target_lengths, batch, logits.device())?;
            per_utterance.div(&target_lengths)?.mean_all()?
        }
    };
    Ok(CtcOutput {
        loss,
        num_impossible,
    })
}

/// Loss and gradient of one utterance from normalised log-probs `[frames, classes]` taken as free inputs:
/// the fast kernel of [`ctc_loss`] without log_softmax, for comparisons with PyTorch's exact gradients.
///
/// Returns `(-ln p(target | log_probs), d loss / d log_probs)`; the gradient is minus the posterior
/// occupancy of each class at each frame (rows sum to −1). An impossible alignment gives
/// `(f64::INFINITY, zeros)`, like PyTorch with `zero_infinity=False` for the loss.
pub fn ctc_loss_log_probs(
    log_probs: ArrayView2<f64>,
    target: &[PhoneId],
) -> candle_core::Result<(f64, Array2<f64>)> {
    let (num_frames, num_classes) = log_probs.dim();
    if let Some(bad) = target
        .iter()
        .find(|p| **p == BLANK || p.index() >= num_classes)
    {
        bail!(
            "ctc_loss_log_probs: label {} is not a phone: labels must be in 1..{num_classes}",
            bad.0
        );
    }
    let mut scratch = Scratch::default();
    scratch.log_probs.extend(log_probs.iter());
    let mut grad = Array2::zeros((num_frames, num_classes));
    let loss = forward_backward(
        &mut scratch,
        num_frames,
        num_classes,
        target,
        true,
        |t, _, occupancy| {
            for (g, &o) in grad.row_mut(t).iter_mut().zip(occupancy) {
                *g = -o;
            }
        },
    );
    Ok((loss.unwrap_or(f64::INFINITY), grad))
}

/// The slow, obviously right CTC loss of one utterance: Graves et al. (2006), eqs. 6–16, in plain loops
/// over the extended label sequence, in log space. Tests and benches compare the fused kernel with it.
///
/// `log_probs` `[frames, classes]` are taken as free inputs; returns the loss `-ln p(target)` and its
/// gradient w.r.t. `log_probs` (minus the occupancy). An impossible alignment gives `(f64::INFINITY,
/// zeros)`.
///
/// # Panics
/// If a label of `target` is the blank or not below the number of classes.
pub fn ctc_loss_reference(log_probs: ArrayView2<f64>, target: &[PhoneId]) -> (f64, Array2<f64>) {
    let (num_frames, num_classes) = log_probs.dim();
    for label in target {
        assert!(
            *label != BLANK && label.index() < num_classes,
            "label {} out of range 1..{num_classes}",
            label.0
        );
    }
    let mut grad = Array2::zeros((num_frames, num_classes));
    let topology = Topology::new(target);
    let labels = topology.classes();
    let num_states = topology.num_states();
    if num_frames == 0 {
        let loss = if target.is_empty() {
            0.0
        } else {
            f64::INFINITY
        };
        return (loss, grad);
    }
    // Every state of every frame is visited here (no window): the slow, obviously right form.
    // alpha[t][s]: log-probability of the prefixes ending in state s at frame t, emission at t included.
    let mut alpha = Array2::from_elem((num_frames, num_states), f64::NEG_INFINITY);
    alpha[[0, 0]] = log_probs[[0, labels[0]]];
    if num_states > 1 {
        alpha[[0, 1]] = log_probs[[0, labels[1]]];
    }
    for t in 1..num_frames {
        for s in 0..num_states {
            let mut sum = alpha[[t - 1, s]];
            if s >= 1 {
                sum = log_add(sum, alpha[[t - 1, s - 1]]);
            }
            if topology.may_skip(s) {
                sum = log_add(sum, alpha[[t - 1, s - 2]]);
            }
            alpha[[t, s]] = sum + log_probs[[t, labels[s]]];
        }
    }
    // beta[t][s]: log-probability of the suffixes starting in state s at frame t, emission at t included.
    let mut beta = Array2::from_elem((num_frames, num_states), f64::NEG_INFINITY);
    let last = num_frames - 1;
    beta[[last, num_states - 1]] = log_probs[[last, labels[num_states - 1]]];
    if num_states > 1 {
        beta[[last, num_states - 2]] = log_probs[[last, labels[num_states - 2]]];
    }
    for t in (0..last).rev() {
        for s in 0..num_states {
            let mut sum = beta[[t + 1, s]];
            if s + 1 < num_states {
                sum = log_add(sum, beta[[t + 1, s + 1]]);
            }
            if s + 2 < num_states && topology.may_skip(s + 2) {
                sum = log_add(sum, beta[[t + 1, s + 2]]);
            }
            beta[[t, s]] = sum + log_probs[[t, labels[s]]];
        }
    }
    let mut log_likelihood = alpha[[last, num_states - 1]];
    if num_states > 1 {
        log_likelihood = log_add(log_likelihood, alpha[[last, num_states - 2]]);
    }
    if log_likelihood == f64::NEG_INFINITY {
        return (f64::INFINITY, grad);
    }
    // d(-ln p)/d log y_t(k) = -(1/p) sum_{s: l'_s = k} alpha_t(s) beta_t(s) / y_t(k)   (Graves eq. 16).
    for t in 0..num_frames {
        for k in 0..num_classes {
            let mut log_occupancy = f64::NEG_INFINITY;
            for s in 0..num_states {
                if labels[s] == k {
                    log_occupancy = log_add(
                        log_occupancy,
                        alpha[[t, s]] + beta[[t, s]] - log_probs[[t, k]] - log_likelihood,
                    );
                }
            }
            grad[[t, k]] = -log_occupancy.exp();
        }
    }
    (-log_likelihood, grad)
}

/// The fused loss op on logits `[batch, frames, classes]` -> per-utterance losses `[batch]`.
struct CtcLossOp {
    targets: Vec<Vec<PhoneId>>,
    input_lengths: Vec<usize>,
    /// Whether the forward pass also computes the gradient (only when the logits need one).
    keep_gradient: bool,
    /// `softmax(logits) − occupancy`, row-major `[batch, frames, classes]`, zero on padded frames and
    /// impossible utterances; filled by the forward pass when `keep_gradient`.
    gradient: OnceLock<Vec<f32>>,
}

impl CtcLossOp {
    /// Losses of the batch (0 for impossible utterances) and, if asked, the gradient w.r.t. the logits.
    fn run(
        &self,
        logits: &[f32],
        num_frames: usize,
        num_classes: usize,
        with_gradient: bool,
    ) -> (Vec<f32>, Vec<f32>) {
        let utterance_len = num_frames * num_classes;
        if utterance_len == 0 {
            // No frames at all: every loss is 0 (empty target) or impossible (0 by zero_infinity).
            return (vec![0.0; self.targets.len()], Vec::new());
        }
        let loss_of = |scratch: &mut Scratch, b: usize, gradient: Option<&mut [f32]>| {
            let valid = self.input_lengths[b] * num_classes;
            let utterance = &logits[b * utterance_len..b * utterance_len + valid];
            let gradient = gradient.map(|g| &mut g[..valid]);
            utterance_loss(scratch, utterance, num_classes, &self.targets[b], gradient) as f32
        };
        if with_gradient {
            let mut gradient = vec![0.0_f32; logits.len()];
            let losses = gradient
                .par_chunks_mut(utterance_len)
                .enumerate()
                .map_init(Scratch::default, |scratch, (b, g)| {
                    loss_of(scratch, b, Some(g))
                })
                .collect();
            (losses, gradient)
        } else {
            let losses = (0..self.targets.len())
                .into_par_iter()
                .map_init(Scratch::default, |scratch, b| loss_of(scratch, b, None))
                .collect();
            (losses, Vec::new())
        }
    }
}

impl CustomOp1 for CtcLossOp {
    fn name(&self) -> &'static str {
        "ctc-loss"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            bail!("ctc-loss expects f32 logits");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("ctc-loss expects contiguous logits");
        };
        let (batch, num_frames, num_classes) = layout.shape().dims3()?;
        let (losses, gradient) = self.run(
            &data[start..end],
            num_frames,
            num_classes,
            self.keep_gradient,
        );
        if self.keep_gradient {
            // The op runs its forward pass once; a second set would be a logic error, and is harmless.
            let _ = self.gradient.set(gradient);
        }
        Ok((CpuStorage::F32(losses), Shape::from(batch)))
    }

    /// d loss_b / d logits[b, t, k] = softmax(logits)[b, t, k] − occupancy_b(t, k) for t < input_length_b,
    /// 0 on padded frames and impossible utterances; scaled by the incoming gradient of loss_b (which
    /// carries the reduction's 1 / target_length / batch).
    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (batch, num_frames, num_classes) = arg.dims3()?;
        let gradient = match self.gradient.get() {
            Some(gradient) => gradient.clone(),
            None => {
                let logits = arg.flatten_all()?.to_vec1::<f32>()?;
                self.run(&logits, num_frames, num_classes, true).1
            }
        };
        let gradient = Tensor::from_vec(gradient, (batch, num_frames, num_classes), arg.device())?;
        let scale = grad_res.to_dtype(DType::F32)?.reshape((batch, 1, 1))?;
        Ok(Some(gradient.broadcast_mul(&scale)?))
    }
}

/// Buffers one rayon worker reuses from utterance to utterance: nothing is allocated per frame.
#[derive(Default)]
struct Scratch {
    /// Normalised log-probs `[frames, classes]`, row-major.
    log_probs: Vec<f64>,
    /// The target's CTC states l' = blank, l1, blank, l2, ..., blank.
    topology: Topology,
    /// Forward variables `[frames, states]`: ln P(prefix ending in state s at t), emission at t included.
    alpha: Vec<f64>,
    /// Backward variables `[frames, states]`: ln P(rest of the labels after t | state s at t), emission at t
    /// excluded, so alpha + beta + loss is the log-occupancy of state s at t.
    beta: Vec<f64>,
    /// Posterior occupancy of each class at one frame `[classes]`.
    occupancy: Vec<f64>,
    /// Probabilities `exp(log_probs)` `[frames, classes]`, for the scaled fast path.
    probs: Vec<f64>,
    /// Per-frame scale factors of the scaled fast path.
    scales: Vec<f64>,
}

/// Loss of one utterance from its valid logits `[frames * classes]`; writes `softmax − occupancy` into
/// `gradient` when given. Impossible alignments return 0 and leave the gradient zero (zero_infinity).
fn utterance_loss(
    scratch: &mut Scratch,
    logits: &[f32],
    num_classes: usize,
    target: &[PhoneId],
    mut gradient: Option<&mut [f32]>,
) -> f64 {
    let num_frames = logits.len() / num_classes;
    scratch.log_probs.clear();
    scratch.log_probs.resize(logits.len(), 0.0);
    for (row, out) in logits
        .chunks_exact(num_classes)
        .zip(scratch.log_probs.chunks_exact_mut(num_classes))
    {
        log_softmax_into(row, out);
    }
    let with_gradient = gradient.is_some();
    let loss = forward_backward(
        scratch,
        num_frames,
        num_classes,
        target,
        with_gradient,
        |t, log_probs, occupancy| {
            if let Some(gradient) = gradient.as_deref_mut() {
                let row = &mut gradient[t * num_classes..(t + 1) * num_classes];
                for ((g, &lp), &o) in row.iter_mut().zip(log_probs).zip(occupancy) {
                    *g = (lp.exp() - o) as f32;
                }
            }
        },
    );
    loss.unwrap_or(0.0)
}

/// Log-space forward–backward over one utterance whose normalised log-probs are in `scratch.log_probs`.
///
/// Returns the loss `-ln p(target)`, or `None` when no alignment exists (too few frames, or every path
/// has probability 0). When `with_gradient`, calls `on_frame(t, log_probs_row, occupancy_row)` for each
/// frame after the backward pass, where `occupancy_row[k]` is the posterior probability of class `k` at `t`.
fn forward_backward(
    scratch: &mut Scratch,
    num_frames: usize,
    num_classes: usize,
    target: &[PhoneId],
    with_gradient: bool,
    mut on_frame: impl FnMut(usize, &[f64], &[f64]),
) -> Option<f64> {
    if num_frames < min_frames(target) {
        return None;
    }
    if let Some(result) = forward_backward_scaled(
        scratch,
        num_frames,
        num_classes,
        target,
        with_gradient,
        &mut on_frame,
    ) {
        return Some(result);
    }
    forward_backward_log_space(
        scratch,
        num_frames,
        num_classes,
        target,
        with_gradient,
        on_frame,
    )
}

/// The fast path: forward–backward in probability space with per-frame normalisation (Rabiner 1989):
/// `α̂_t = α_t / Π_{τ≤t} c_τ`, `β̂_t = β_t / Π_{τ>t} c_τ`, so `ln p = Σ ln c_t` and the occupancy of state s
/// at t is `α̂_t(s) β̂_t(s)` (the emission at t is inside α̂). No `exp`/`ln` per state: several times faster
/// than log space. Returns `None` (the caller falls back to log space) if a frame's scale underflows,
/// which needs every live state's emission below ~1e-300.
fn forward_backward_scaled(
    scratch: &mut Scratch,
    num_frames: usize,
    num_classes: usize,
    target: &[PhoneId],
    with_gradient: bool,
    on_frame: &mut impl FnMut(usize, &[f64], &[f64]),
) -> Option<f64> {
    if num_frames == 0 {
        return Some(0.0);
    }
    let Scratch {
        log_probs,
        topology,
        alpha,
        beta,
        occupancy,
        probs,
        scales,
    } = scratch;
    topology.reset(target);
    let topology = &*topology;
    let labels = topology.classes();
    let num_states = topology.num_states();
    probs.clear();
    probs.extend(log_probs.iter().map(|lp| lp.exp()));
    let window = |t: usize| topology.window(t, num_frames).into_inner();
    let usable = |c: f64| c.is_finite() && c > 1e-290;

    alpha.clear();
    alpha.resize(num_frames * num_states, 0.0);
    scales.clear();
    scales.resize(num_frames, 0.0);
    let (first, last) = window(0);
    let mut total = 0.0;
    for s in first..=last {
        alpha[s] = probs[labels[s]];
        total += alpha[s];
    }
    if !usable(total) {
        return None;
    }
    scales[0] = total;
    for a in &mut alpha[first..=last] {
        *a /= total;
    }
    for t in 1..num_frames {
        let (done, rest) = alpha.split_at_mut(t * num_states);
        let previous = &done[(t - 1) * num_states..];
        let current = &mut rest[..num_states];
        let row = &probs[t * num_classes..(t + 1) * num_classes];
        let (first, last) = window(t);
        let mut total = 0.0;
        for s in first..=last {
            let mut sum = previous[s];
            if s >= 1 {
                sum += previous[s - 1];
            }
            if topology.may_skip(s) {
                sum += previous[s - 2];
            }
            let value = sum * row[labels[s]];
            current[s] = value;
            total += value;
        }
        if !usable(total) {
            return None;
        }
        scales[t] = total;
        let inverse = 1.0 / total;
        for a in &mut current[first..=last] {
            *a *= inverse;
        }
    }
    let final_alpha = &alpha[(num_frames - 1) * num_states..];
    let end: f64 = topology.final_states().map(|s| final_alpha[s]).sum();
    if end.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        // No complete path within the scaled range: let the log-space path decide.
        return None;
    }
    let log_likelihood: f64 = scales.iter().map(|c| c.ln()).sum::<f64>() + end.ln();
    let loss = -log_likelihood;
    if !with_gradient {
        return Some(loss);
    }
    // β̂ with the same scales; the end condition divides by `end` so occupancies sum to 1 per frame.
    beta.clear();
    beta.resize(num_frames * num_states, 0.0);
    let last_row = (num_frames - 1) * num_states;
    let mut finite = true;
    for s in topology.final_states() {
        beta[last_row + s] = 1.0 / end;
        finite &= beta[last_row + s].is_finite();
    }
    for t in (0..num_frames - 1).rev() {
        let (before, after) = beta.split_at_mut((t + 1) * num_states);
        let current = &mut before[t * num_states..];
        let next = &after[..num_states];
        let next_row = &probs[(t + 1) * num_classes..(t + 2) * num_classes];
        let inverse = 1.0 / scales[t + 1];
        let (first, last) = window(t);
        for s in first..=last {
            let mut sum = next[s] * next_row[labels[s]];
            if s + 1 < num_states {
                sum += next[s + 1] * next_row[labels[s + 1]];
            }
            if s + 2 < num_states && topology.may_skip(s + 2) {
                sum += next[s + 2] * next_row[labels[s + 2]];
            }
            current[s] = sum * inverse;
            finite &= current[s].is_finite();
        }
        if !finite {
            // β̂ grows where α̂ is tiny (a frame whose scale is tiny while the states that lead to the
            // end are the likely ones: a network sure of another labelling); past f64's range the
            // occupancies would be inf or NaN with a finite loss. Let the log-space path decide.
            return None;
        }
    }
    occupancy.clear();
    occupancy.resize(num_classes, 0.0);
    for t in 0..num_frames {
        occupancy.fill(0.0);
        let base = t * num_states;
        let (first, last) = window(t);
        for s in first..=last {
            occupancy[labels[s]] += alpha[base + s] * beta[base + s];
        }
        on_frame(
            t,
            &log_probs[t * num_classes..(t + 1) * num_classes],
            occupancy,
        );
    }
    Some(loss)
}

/// The slow, always-safe path: forward–backward in log space.
fn forward_backward_log_space(
    scratch: &mut Scratch,
    num_frames: usize,
    num_classes: usize,
    target: &[PhoneId],
    with_gradient: bool,
    mut on_frame: impl FnMut(usize, &[f64], &[f64]),
) -> Option<f64> {
    if num_frames == 0 {
        // Empty target over no frames: the empty path has probability 1.
        return Some(0.0);
    }
    let Scratch {
        log_probs,
        topology,
        alpha,
        beta,
        occupancy,
        ..
    } = scratch;
    topology.reset(target);
    let topology = &*topology;
    let labels = topology.classes();
    let num_states = topology.num_states();
    // Outside the window alpha or beta is -inf anyway.
    let window = |t: usize| topology.window(t, num_frames);

    alpha.clear();
    alpha.resize(num_frames * num_states, f64::NEG_INFINITY);
    for s in window(0) {
        alpha[s] = log_probs[labels[s]];
    }
    for t in 1..num_frames {
        let (done, rest) = alpha.split_at_mut(t * num_states);
        let previous = &done[(t - 1) * num_states..];
        let current = &mut rest[..num_states];
        let row = &log_probs[t * num_classes..(t + 1) * num_classes];
        for s in window(t) {
            let mut sum = previous[s];
            if s >= 1 {
                sum = log_add(sum, previous[s - 1]);
            }
            if topology.may_skip(s) {
                sum = log_add(sum, previous[s - 2]);
            }
            current[s] = sum + row[labels[s]];
        }
    }
    let final_alpha = &alpha[(num_frames - 1) * num_states..];
    let log_likelihood = topology
        .final_states()
        .map(|s| final_alpha[s])
        .fold(f64::NEG_INFINITY, log_add);
    let loss = -log_likelihood;
    if loss == f64::INFINITY {
        return None;
    }
    if !with_gradient {
        return Some(loss);
    }

    beta.clear();
    beta.resize(num_frames * num_states, f64::NEG_INFINITY);
    let last_row = (num_frames - 1) * num_states;
    for s in topology.final_states() {
        beta[last_row + s] = 0.0;
    }
    for t in (0..num_frames - 1).rev() {
        let (before, after) = beta.split_at_mut((t + 1) * num_states);
        let current = &mut before[t * num_states..];
        let next = &after[..num_states];
        let next_row = &log_probs[(t + 1) * num_classes..(t + 2) * num_classes];
        for s in window(t) {
            let mut sum = next[s] + next_row[labels[s]];
            if s + 1 < num_states {
                sum = log_add(sum, next[s + 1] + next_row[labels[s + 1]]);
            }
            if s + 2 < num_states && topology.may_skip(s + 2) {
                sum = log_add(sum, next[s + 2] + next_row[labels[s + 2]]);
            }
            current[s] = sum;
        }
    }

    occupancy.clear();
    occupancy.resize(num_classes, 0.0);
    for t in 0..num_frames {
        occupancy.fill(0.0);
        let states = t * num_states..(t + 1) * num_states;
        for s in window(t) {
            // Occupancies are probabilities in [0, 1]: summing them linearly in f64 loses nothing.
            occupancy[labels[s]] += (alpha[states.start + s] + beta[states.start + s] + loss).exp();
        }
        on_frame(
            t,
            &log_probs[t * num_classes..(t + 1) * num_classes],
            occupancy,
        );
    }
    Some(loss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use ndarray::Array3;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// f64 kernel vs f64 reference: both sum the same terms in another order.
    const F64_TOLERANCE: f64 = 1e-9;
    /// f32 candle op vs f64 reference (f32 inputs and outputs, f64 inside).
    const F32_TOLERANCE: f64 = 1e-4;
    /// Central finite-difference step and allowed error on the f64 kernel (truncation ~ step^2).
    const FD_STEP: f64 = 1e-5;
    const FD_TOLERANCE: f64 = 1e-6;

    fn phones(ids: &[u16]) -> Vec<PhoneId> {
        ids.iter().map(|&i| PhoneId(i)).collect()
    }

    /// Random logits `[frames, classes]` (scale 2, as the golden script) and their log_softmax in f64.
    fn random_logits(
        rng: &mut StdRng,
        frames: usize,
        classes: usize,
    ) -> (Array2<f32>, Array2<f64>) {
        let logits = Array2::from_shape_fn((frames, classes), |_| rng.gen_range(-4.0_f32..4.0));
        let mut log_probs = Array2::zeros((frames, classes));
        for (row, mut out) in logits.rows().into_iter().zip(log_probs.rows_mut()) {
            log_softmax_into(row.as_slice().unwrap(), out.as_slice_mut().unwrap());
        }
        (logits, log_probs)
    }

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance * expected.abs().max(1.0)
    }

    #[test]
    fn min_frames_counts_adjacent_repeats() {
        assert_eq!(min_frames(&[]), 0);
        assert_eq!(min_frames(&phones(&[1, 2, 3])), 3);
        assert_eq!(min_frames(&phones(&[1, 1, 2, 2, 2])), 8);
    }

    #[test]
    fn tiny_case_by_hand() {
        // Two frames, target "a": the paths are (a a), (a -), (- a). With uniform probabilities 1/2 over
        // {blank, a}, p = 3 * 1/4, so the loss is -ln(3/4).
        let log_probs = Array2::from_elem((2, 2), 0.5_f64.ln());
        let (loss, grad) = ctc_loss_reference(log_probs.view(), &phones(&[1]));
        assert!(close(loss, -(0.75_f64).ln(), F64_TOLERANCE));
        // Occupancy of "a" at frame 0: paths (a a), (a -) = 2/3.
        assert!(close(grad[[0, 1]], -2.0 / 3.0, F64_TOLERANCE));
        let (fast, fast_grad) = ctc_loss_log_probs(log_probs.view(), &phones(&[1])).unwrap();
        assert!(close(fast, loss, F64_TOLERANCE));
        assert!(close(fast_grad[[0, 1]], grad[[0, 1]], F64_TOLERANCE));
    }

    #[test]
    fn fast_kernel_matches_reference() {
        let mut rng = StdRng::seed_from_u64(11);
        let cases: [(usize, usize, &[u16]); 5] = [
            (30, 5, &[1, 2, 2, 3, 4, 1]),
            (9, 4, &[1, 1, 2, 2, 3]), // exactly min_frames
            (7, 3, &[]),
            (1, 3, &[2]),
            (40, 6, &[5, 5, 5, 5]),
        ];
        for (frames, classes, target) in cases {
            let (_, log_probs) = random_logits(&mut rng, frames, classes);
            let target = phones(target);
            let (expected_loss, expected_grad) = ctc_loss_reference(log_probs.view(), &target);
            let (loss, grad) = ctc_loss_log_probs(log_probs.view(), &target).unwrap();
            assert!(
                close(loss, expected_loss, F64_TOLERANCE),
                "{loss} vs {expected_loss}"
            );
            for (a, e) in grad.iter().zip(&expected_grad) {
                assert!(close(*a, *e, F64_TOLERANCE), "{a} vs {e}");
            }
            // Each frame's occupancies sum to one.
            for row in grad.rows() {
                assert!(close(row.sum(), -1.0, F64_TOLERANCE));
            }
        }
    }

    #[test]
    fn fast_kernel_gradient_matches_finite_differences() {
        let mut rng = StdRng::seed_from_u64(12);
        let (_, log_probs) = random_logits(&mut rng, 12, 5);
        let target = phones(&[1, 3, 3, 2]);
        let (_, grad) = ctc_loss_log_probs(log_probs.view(), &target).unwrap();
        for t in 0..12 {
            for k in 0..5 {
                let mut plus = log_probs.clone();
                plus[[t, k]] += FD_STEP;
                let mut minus = log_probs.clone();
                minus[[t, k]] -= FD_STEP;
                let numeric = (ctc_loss_log_probs(plus.view(), &target).unwrap().0
                    - ctc_loss_log_probs(minus.view(), &target).unwrap().0)
                    / (2.0 * FD_STEP);
                assert!((numeric - grad[[t, k]]).abs() < FD_TOLERANCE, "t {t} k {k}");
            }
        }
    }

    #[test]
    fn confident_wrong_posteriors_give_finite_gradients() {
        // A network sure of another labelling (logits uniform in ±10 to ±80): the scaled path's β̂
        // overflowed f64 on such utterances, giving a finite loss with an inf/NaN gradient (a bf16
        // fine-tune skipped a batch for it). 10 of these 100 cases (±49 to ±77) did before the
        // fallback.
        for seed in 0..100u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let frames = rng.gen_range(20..300);
            let classes = 6;
            let spread: f32 = rng.gen_range(10.0..80.0);
            let logits =
                Array2::from_shape_fn((frames, classes), |_| rng.gen_range(-spread..spread));
            let mut log_probs = Array2::zeros((frames, classes));
            for (row, mut out) in logits.rows().into_iter().zip(log_probs.rows_mut()) {
                log_softmax_into(row.as_slice().unwrap(), out.as_slice_mut().unwrap());
            }
            let labels = rng.gen_range(1..(frames / 3).max(2));
            let target: Vec<PhoneId> = (0..labels)
                .map(|_| PhoneId(rng.gen_range(1..classes as u16)))
                .collect();
            if frames < min_frames(&target) {
                continue;
            }
            let (loss, grad) = ctc_loss_log_probs(log_probs.view(), &target).unwrap();
            let (expected_loss, expected_grad) = ctc_loss_reference(log_probs.view(), &target);
            assert!(
                close(loss, expected_loss, F64_TOLERANCE),
                "seed {seed}: {loss} vs {expected_loss}"
            );
            for (a, e) in grad.iter().zip(&expected_grad) {
                assert!(
                    a.is_finite() && (a - e).abs() < 1e-6,
                    "seed {seed}: {a} vs {e}"
                );
            }
        }
    }

    #[test]
    fn underflowing_probabilities_fall_back_to_log_space() {
        // Every emission is e^-800: zero in f64 probability space, so the scaled path must give way.
        let log_probs = Array2::from_elem((4, 3), -800.0f64);
        let target = phones(&[1, 2]);
        let (loss, grad) = ctc_loss_log_probs(log_probs.view(), &target).unwrap();
        let (expected_loss, expected_grad) = ctc_loss_reference(log_probs.view(), &target);
        assert!(
            loss.is_finite() && close(loss, expected_loss, F64_TOLERANCE),
            "{loss} vs {expected_loss}"
        );
        for (a, b) in grad.iter().zip(expected_grad.iter()) {
            assert!(close(*a, *b, F64_TOLERANCE));
        }
    }

    #[test]
    fn impossible_alignment_is_infinite_for_the_kernels() {
        let log_probs = Array2::from_elem((3, 3), (1.0_f64 / 3.0).ln());
        let target = phones(&[1, 1, 2]); // needs 4 frames
        let (loss, grad) = ctc_loss_reference(log_probs.view(), &target);
        assert_eq!(loss, f64::INFINITY);
        assert!(grad.iter().all(|g| *g == 0.0));
        let (loss, grad) = ctc_loss_log_probs(log_probs.view(), &target).unwrap();
        assert_eq!(loss, f64::INFINITY);
        assert!(grad.iter().all(|g| *g == 0.0));
    }

    #[test]
    fn candle_op_matches_reference_with_padding_and_reductions() -> candle_core::Result<()> {
        let mut rng = StdRng::seed_from_u64(13);
        let (batch, frames, classes) = (4, 20, 6);
        let input_lengths = [20, 13, 3, 8];
        let targets = vec![
            phones(&[1, 2, 2, 5]),
            phones(&[3]),
            phones(&[1, 1, 4]), // impossible: needs 4 frames, has 3
            phones(&[]),
        ];
        let mut logits = Array3::<f32>::zeros((batch, frames, classes));
        let mut expected = Vec::new();
        for b in 0..batch {
            let (x, log_probs) = random_logits(&mut rng, input_lengths[b], classes);
            logits
                .slice_mut(ndarray::s![b, ..input_lengths[b], ..])
                .assign(&x);
            // Padding holds garbage that must not matter.
            logits
                .slice_mut(ndarray::s![b, input_lengths[b].., ..])
                .fill(7.0);
            expected.push(ctc_loss_reference(log_probs.view(), &targets[b]));
        }
        let device = Device::Cpu;
        let var = Var::from_vec(
            logits.into_raw_vec_and_offset().0,
            (batch, frames, classes),
            &device,
        )?;

        let out = ctc_loss(var.as_tensor(), &targets, &input_lengths, Reduction::None)?;
        assert_eq!(out.num_impossible, 1);
        let losses = out.loss.to_vec1::<f32>()?;
        for b in 0..batch {
            let want = if b == 2 { 0.0 } else { expected[b].0 };
            assert!(close(f64::from(losses[b]), want, F32_TOLERANCE), "{b}");
        }

        let out = ctc_loss(var.as_tensor(), &targets, &input_lengths, Reduction::Mean)?;
        let want_mean: f64 = (0..batch)
            .filter(|&b| b != 2)
            .map(|b| expected[b].0 / targets[b].len().max(1) as f64)
            .sum::<f64>()
            / batch as f64;
        assert!(close(
            f64::from(out.loss.to_scalar::<f32>()?),
            want_mean,
            F32_TOLERANCE
        ));
        let grads = out.loss.backward()?;
        let grad = grads.get(var.as_tensor()).expect("logits get a gradient");
        let grad = grad.to_vec3::<f32>()?;
        let probs = candle_nn::ops::softmax_last_dim(var.as_tensor())?.to_vec3::<f32>()?;
        for b in 0..batch {
            let scale = 1.0 / (targets[b].len().max(1) * batch) as f64;
            for t in 0..frames {
                for k in 0..classes {
                    let want = if b == 2 || t >= input_lengths[b] {
                        0.0
                    } else {
                        // d/dlogits = softmax + d/dlog_probs (the reference's -occupancy).
                        (f64::from(probs[b][t][k]) + expected[b].1[[t, k]]) * scale
                    };
                    let got = f64::from(grad[b][t][k]);
                    assert!(
                        close(got, want, F32_TOLERANCE),
                        "b {b} t {t} k {k}: {got} vs {want}"
                    );
                }
            }
        }

        let out = ctc_loss(var.as_tensor(), &targets, &input_lengths, Reduction::Sum)?;
        let want_sum: f64 = (0..batch).filter(|&b| b != 2).map(|b| expected[b].0).sum();
        assert!(close(
            f64::from(out.loss.to_scalar::<f32>()?),
            want_sum,
            F32_TOLERANCE
        ));
        Ok(())
    }

    #[test]
    fn without_gradient_tracking_the_loss_is_the_same() -> candle_core::Result<()> {
        let mut rng = StdRng::seed_from_u64(14);
        let (logits, _) = random_logits(&mut rng, 10, 4);
        let device = Device::Cpu;
        let plain = Tensor::from_vec(
            logits.clone().into_raw_vec_and_offset().0,
            (1, 10, 4),
            &device,
        )?;
        let var = Var::from_tensor(&plain)?;
        let targets = vec![phones(&[1, 2, 3])];
        let a = ctc_loss(&plain, &targets, &[10], Reduction::Sum)?.loss;
        let b = ctc_loss(var.as_tensor(), &targets, &[10], Reduction::Sum)?.loss;
        assert_eq!(a.to_scalar::<f32>()?, b.to_scalar::<f32>()?);
        Ok(())
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() -> candle_core::Result<()> {
        let device = Device::Cpu;
        let logits = Tensor::zeros((2, 5, 4), DType::F32, &device)?;
        let ok_targets = vec![phones(&[1]), phones(&[2])];
        assert!(ctc_loss(&logits, &ok_targets, &[5], Reduction::Sum).is_err());
        assert!(ctc_loss(&logits, &ok_targets, &[5, 6], Reduction::Sum).is_err());
        assert!(ctc_loss(
            &logits,
            &[phones(&[4]), phones(&[1])],
            &[5, 5],
            Reduction::Sum
        )
        .is_err());
        assert!(ctc_loss(
            &logits,
            &[phones(&[0]), phones(&[1])],
            &[5, 5],
            Reduction::Sum
        )
        .is_err());
        let f64_logits = logits.to_dtype(DType::F64)?;
        assert!(ctc_loss(&f64_logits, &ok_targets, &[5, 5], Reduction::Sum).is_err());
        assert!(ctc_loss(&logits, &ok_targets, &[5, 5], Reduction::Sum).is_ok());
        Ok(())
    }
}
