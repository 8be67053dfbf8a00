//! Least-squares autoregressive interpolation (Janssen, Veldhuis and Vries, "Adaptive
//! interpolation of discrete-time signals that can be modeled as autoregressive processes", 1986):
//! missing samples chosen to minimise the prediction error of an autoregressive model of the
//! signal around them. Clipped peaks ([`super::declip`]) and clicks ([`super::declick`]) are
//! restored with it.

/// Prediction-error filter `a` (`a[0] = 1`, `order + 1` taps) of a signal by the autocorrelation
/// method (Levinson–Durbin), its autocorrelation summed over `parts` (stretches of it, e.g. the
/// context either side of a gap); `None` for a signal without energy or a numerically singular one.
pub(super) fn autoregression(parts: &[&[f64]], order: usize) -> Option<Vec<f64>> {
    let mut r = vec![0.0f64; order + 1];
    for s in parts {
        for (lag, r) in r.iter_mut().enumerate().take(s.len()) {
            *r += s[lag..]
                .iter()
                .zip(s.iter())
                .map(|(x, y)| x * y)
                .sum::<f64>();
        }
    }
    // A little white noise (−60 dB) keeps the recursion stable on nearly periodic windows.
    r[0] *= 1.0 + 1e-6;
    if r[0] <= 0.0 || !r[0].is_finite() {
        return None;
    }
    let mut a = vec![0.0f64; order + 1];
    a[0] = 1.0;
    let mut error = r[0];
    let mut previous = a.clone();
    for i in 1..=order {
        let acc: f64 = r[i] + (1..i).map(|j| a[j] * r[i - j]).sum::<f64>();
        let k = -acc / error;
        previous[..i].copy_from_slice(&a[..i]);
        for j in 1..i {
            a[j] = previous[j] + k * previous[i - j];
        }
        a[i] = k;
        error *= 1.0 - k * k;
        if error <= 0.0 || !error.is_finite() {
            return None;
        }
    }
    Some(a)
}

/// The values of the missing samples (`local`, sorted, flagged in `is_missing`) that minimise the
/// prediction error `Σ_t (Σ_k a_k s_{t−k})²` over the window's rows `t ≥ order`, the known samples
/// fixed: normal equations `M u = −b`, banded (two missing samples share a row only if at most
/// `order` apart), solved by a banded Cholesky factorisation.
pub(super) fn least_squares_fill(
    s: &[f64],
    is_missing: &[bool],
    local: &[usize],
    a: &[f64],
) -> Option<Vec<f64>> {
    let n = s.len();
    let p = a.len() - 1;
    let m = local.len();
    // The prediction error of each row from its known samples only.
    let known_error: Vec<f64> = (0..n)
        .map(|t| {
            if t < p {
                return 0.0;
            }
            (0..=p)
                .filter(|&k| !is_missing[t - k])
                .map(|k| a[k] * s[t - k])
                .sum()
        })
        .collect();
    let rows = |i: usize| i.max(p)..=(i + p).min(n - 1);
    // Lower band of M: band[α][d] = M[α][α − d], d = 0..=p.
    let width = p + 1;
    let mut band = vec![0.0f64; m * width];
    let mut rhs = vec![0.0f64; m];
    for (alpha, &i) in local.iter().enumerate() {
        rhs[alpha] = -rows(i).map(|t| a[t - i] * known_error[t]).sum::<f64>();
        for d in 0..width.min(alpha + 1) {
            let j = local[alpha - d];
            if i - j > p {
                break;
            }
            // Rows that hold both samples: t ≥ i (the later one) and t ≤ j + p.
            let value: f64 = (i.max(p)..=(j + p).min(n - 1))
                .map(|t| a[t - i] * a[t - j])
                .sum();
            band[alpha * width + d] = value;
        }
    }
    // A tiny ridge: missing samples at the window's very start share few rows.
    let ridge = 1e-9 * (0..m).map(|x| band[x * width]).sum::<f64>() / m.max(1) as f64 + 1e-12;
    for alpha in 0..m {
        band[alpha * width] += ridge;
    }
    banded_cholesky_solve(&mut band, width, &mut rhs)?;
    Some(rhs)
}

/// Replace `samples[gap]` by its least-squares autoregressive interpolation of order `order` from
/// up to `context` samples either side; the model is estimated from those two sides alone (the gap
/// holds what is to be removed). Left unchanged (false) where the sides hold no signal to model.
pub(super) fn interpolate_gap(
    samples: &mut [f32],
    gap: std::ops::Range<usize>,
    order: usize,
    context: usize,
) -> bool {
    let start = gap.start.saturating_sub(context);
    let end = (gap.end + context).min(samples.len());
    let window: Vec<f64> = samples[start..end].iter().map(|&x| f64::from(x)).collect();
    let (left, rest) = window.split_at(gap.start - start);
    let right = &rest[gap.len()..];
    let Some(a) = autoregression(&[left, right], order) else {
        return false;
    };
    let mut is_missing = vec![false; window.len()];
    let local: Vec<usize> = (gap.start - start..gap.end - start).collect();
    for &i in &local {
        is_missing[i] = true;
    }
    let Some(values) = least_squares_fill(&window, &is_missing, &local, &a) else {
        return false;
    };
    for (x, v) in samples[gap].iter_mut().zip(values) {
        *x = v as f32;
    }
    true
}

/// Solve `M x = b` in place for a symmetric positive definite `M` given as its lower band
/// (`band[i·width + d] = M[i][i − d]`); `None` if `M` is not positive definite.
fn banded_cholesky_solve(band: &mut [f64], width: usize, b: &mut [f64]) -> Option<()> {
    let m = b.len();
    // Factor M = L Lᵀ in place (L's band overwrites M's).
    for i in 0..m {
        for d in (0..width.min(i + 1)).rev() {
            let j = i - d;
            let mut sum = band[i * width + d];
            // Σ_k L[i][k] L[j][k] over k < j within both bands.
            for k in i.saturating_sub(width - 1)..j {
                sum -= band[i * width + (i - k)] * band[j * width + (j - k)];
            }
            if d == 0 {
                if sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                band[i * width] = sum.sqrt();
            } else {
                band[i * width + d] = sum / band[j * width];
            }
        }
    }
    // L y = b, then Lᵀ x = y.
    for i in 0..m {
        let mut sum = b[i];
        for k in i.saturating_sub(width - 1)..i {
            sum -= band[i * width + (i - k)] * b[k];
        }
        b[i] = sum / band[i * width];
    }
    for i in (0..m).rev() {
        let mut sum = b[i];
        for k in i + 1..(i + width).min(m) {
            sum -= band[k * width + (k - i)] * b[k];
        }
        b[i] = sum / band[i * width];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banded_solver_matches_a_dense_solution() {
        // A symmetric positive definite matrix with two bands, 6 × 6; b = M · [1..6].
        let m = 6;
        let width = 3;
        let dense = |i: usize, j: usize| -> f64 {
            match i.abs_diff(j) {
                0 => 5.0,
                1 => -1.0,
                2 => 0.5,
                _ => 0.0,
            }
        };
        let x: Vec<f64> = (1..=m).map(|v| v as f64).collect();
        let mut b: Vec<f64> = (0..m)
            .map(|i| (0..m).map(|j| dense(i, j) * x[j]).sum())
            .collect();
        let mut band = vec![0.0; m * width];
        for i in 0..m {
            for d in 0..width.min(i + 1) {
                band[i * width + d] = dense(i, i - d);
            }
        }
        banded_cholesky_solve(&mut band, width, &mut b).unwrap();
        for (got, want) in b.iter().zip(&x) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
    }
}
