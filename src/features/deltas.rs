//! Deltas and delta-deltas: a regression over ±`window` frames, `Σ_j j·(x[t+j] − x[t−j]) / (2 Σ_j j²)`,
//! with frames past the ends replaced by the edge frames. Order 2 applies the regression to the deltas
//! again (as torchaudio's `compute_deltas` twice, and SpeechBrain); away from the first and last
//! 2·window frames this equals Kaldi's `add-deltas`, whose combined order-2 kernel clamps only once.

use ndarray::{s, Array2, ArrayView2};

use super::options::DeltaOptions;

/// One regression pass: [frames, dim] -> [frames, dim], edges replicated.
fn regression(features: ArrayView2<f32>, window: usize) -> Array2<f32> {
    let (num_frames, dim) = features.dim();
    let mut out = Array2::<f32>::zeros((num_frames, dim));
    if num_frames == 0 || window == 0 {
        return out;
    }
    let normalizer: f32 = 2.0 * (1..=window).map(|j| (j * j) as f32).sum::<f32>();
    let last = num_frames as i64 - 1;
    for t in 0..num_frames {
        let mut row = out.row_mut(t);
        for j in 1..=window as i64 {
            let ahead = (t as i64 + j).min(last) as usize;
            let behind = (t as i64 - j).max(0) as usize;
            let weight = j as f32 / normalizer;
            row.scaled_add(weight, &features.row(ahead));
            row.scaled_add(-weight, &features.row(behind));
        }
    }
    out
}

/// Append deltas up to `options.order`: [frames, dim] -> [frames, dim × (order + 1)], the features first,
/// then the deltas, then the delta-deltas. With window 0 the deltas are zero.
pub fn add_deltas(features: ArrayView2<f32>, options: &DeltaOptions) -> Array2<f32> {
    let (num_frames, dim) = features.dim();
    let mut out = Array2::<f32>::zeros((num_frames, dim * (options.order + 1)));
    out.slice_mut(s![.., ..dim]).assign(&features);
    let mut previous = features.to_owned();
    for order in 1..=options.order {
        let delta = regression(previous.view(), options.window);
        out.slice_mut(s![.., order * dim..(order + 1) * dim])
            .assign(&delta);
        previous = delta;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn deltas_of_a_ramp_are_constant_inside_and_edges_replicate() {
        let ramp = Array2::from_shape_fn((10, 1), |(t, _)| t as f32);
        let out = add_deltas(
            ramp.view(),
            &DeltaOptions {
                order: 1,
                window: 2,
            },
        );
        assert_eq!(out.dim(), (10, 2));
        for t in 2..8 {
            assert!(
                (out[[t, 1]] - 1.0).abs() < 1e-6,
                "frame {t}: {}",
                out[[t, 1]]
            );
        }
        // Frame 0 sees [0, 0, 0, 1, 2]: (−0.2·0 − 0.1·0 + 0.1·1 + 0.2·2) = 0.5.
        assert!((out[[0, 1]] - 0.5).abs() < 1e-6);
        assert_eq!(
            out.column(0),
            array![0., 1., 2., 3., 4., 5., 6., 7., 8., 9.]
        );
    }

    #[test]
    fn delta_deltas_of_a_parabola_are_constant_inside() {
        // x = t²: delta = 2t (exact for a symmetric regression), delta-delta = 2.
        let parabola = Array2::from_shape_fn((20, 1), |(t, _)| (t * t) as f32);
        let out = add_deltas(parabola.view(), &DeltaOptions::default());
        assert_eq!(out.dim(), (20, 3));
        for t in 4..16 {
            assert!((out[[t, 1]] - 2.0 * t as f32).abs() < 1e-4);
            assert!(
                (out[[t, 2]] - 2.0).abs() < 1e-4,
                "frame {t}: {}",
                out[[t, 2]]
            );
        }
    }

    #[test]
    fn empty_input_stays_empty() {
        let empty = Array2::<f32>::zeros((0, 13));
        assert_eq!(
            add_deltas(empty.view(), &DeltaOptions::default()).dim(),
            (0, 39)
        );
    }
}
