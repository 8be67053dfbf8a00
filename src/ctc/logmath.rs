//! Log-space arithmetic shared by the CTC loss, the decoders and the aligner.
//!
//! Probabilities of whole paths underflow f32 (and f64) after a few hundred frames, so everything in
//! `ctc` works with natural-log probabilities accumulated in f64 (style guide point 16). This file holds
//! the crate's one `log_add`.

/// `ln(exp(a) + exp(b))` without overflow or underflow: the crate's only log-sum-exp of two values.
///
/// `-inf` is the log of probability zero and is the identity: `log_add(-inf, x) == x`.
#[inline]
pub(crate) fn log_add(a: f64, b: f64) -> f64 {
    let (high, low) = if a >= b { (a, b) } else { (b, a) };
    if low == f64::NEG_INFINITY {
        // Also covers -inf + -inf, where `low - high` would be NaN.
        return high;
    }
    high + (low - high).exp().ln_1p()
}

/// Writes the log-softmax of one row of logits into `out` (same length), computed in f64.
///
/// Uses the max-shift so large logits cannot overflow; `out[k] = x[k] - max - ln(sum_j exp(x[j] - max))`.
pub(crate) fn log_softmax_into(logits: &[f32], out: &mut [f64]) {
    debug_assert_eq!(logits.len(), out.len());
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    let log_norm = max + sum.ln();
    for (o, &x) in out.iter_mut().zip(logits) {
        *o = f64::from(x) - log_norm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Round-off allowed when comparing against a direct `ln(exp + exp)` in f64.
    const LOG_TOLERANCE: f64 = 1e-12;

    #[test]
    fn log_add_matches_direct_formula() {
        for &(a, b) in &[(0.0, 0.0), (-1.0, -2.5), (-30.0, -0.1), (3.0, 2.0)] {
            let direct = (f64::exp(a) + f64::exp(b)).ln();
            assert!((log_add(a, b) - direct).abs() < LOG_TOLERANCE, "{a} {b}");
            assert_eq!(log_add(a, b), log_add(b, a));
        }
    }

    #[test]
    fn log_add_handles_zero_probability_and_extremes() {
        let ninf = f64::NEG_INFINITY;
        assert_eq!(log_add(ninf, ninf), ninf);
        assert_eq!(log_add(ninf, -3.0), -3.0);
        assert_eq!(log_add(-3.0, ninf), -3.0);
        // exp(-1000) underflows, the log-space sum does not.
        let x = log_add(-1000.0, -1000.0);
        assert!((x - (-1000.0 + std::f64::consts::LN_2)).abs() < LOG_TOLERANCE);
    }

    #[test]
    fn log_softmax_rows_normalise_even_for_huge_logits() {
        let logits = [1000.0_f32, 999.0, -5.0, 0.0];
        let mut out = [0.0; 4];
        log_softmax_into(&logits, &mut out);
        let total: f64 = out.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < LOG_TOLERANCE);
        assert!((out[0] - out[1] - 1.0).abs() < LOG_TOLERANCE);
    }
}
