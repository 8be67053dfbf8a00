//! Per-utterance cepstral mean and variance normalisation (Kaldi's `apply-cmvn` with per-utterance stats).

use ndarray::{Array2, Axis};

use super::options::CmvnOptions;

/// Variances below this are treated as this (Kaldi's floor in `ApplyCmvn` is 1e-10 on the variance).
const VARIANCE_FLOOR: f64 = 1e-10;

/// Subtract each dimension's mean over the frames, and divide by its standard deviation if asked.
/// An utterance without frames is left as it is.
pub fn apply_cmvn(features: &mut Array2<f32>, options: &CmvnOptions) {
    let num_frames = features.nrows();
    if num_frames == 0 {
        return;
    }
    for mut column in features.axis_iter_mut(Axis(1)) {
        let mean = column.iter().map(|&v| v as f64).sum::<f64>() / num_frames as f64;
        let scale = if options.normalize_variance {
            let variance = column
                .iter()
                .map(|&v| (v as f64 - mean).powi(2))
                .sum::<f64>()
                / num_frames as f64;
            1.0 / variance.max(VARIANCE_FLOOR).sqrt()
        } else {
            1.0
        };
        column.mapv_inplace(|v| ((v as f64 - mean) * scale) as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn mean_and_variance_are_normalised() {
        let mut x = array![[1.0f32, 10.0], [3.0, 10.0], [5.0, 10.0]];
        apply_cmvn(&mut x, &CmvnOptions::default());
        assert_eq!(x, array![[-2.0, 0.0], [0.0, 0.0], [2.0, 0.0]]);
        let mut y = array![[1.0f32], [3.0], [5.0]];
        apply_cmvn(
            &mut y,
            &CmvnOptions {
                normalize_variance: true,
            },
        );
        let std = (8.0f32 / 3.0).sqrt();
        assert!((y[[2, 0]] - 2.0 / std).abs() < 1e-6);
    }
}
