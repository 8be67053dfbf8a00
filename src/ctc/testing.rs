//! Helpers shared by the unit tests of the `ctc` files.

use ndarray::Array2;

/// Probability a [`peaky`] posteriorgram gives the class of its path at each frame.
pub(crate) const PEAK_PROB: f32 = 0.9;

/// A posteriorgram (natural-log probabilities `[frames, classes]`) whose frame t puts [`PEAK_PROB`] on
/// `path[t]` and spreads the rest evenly over the other classes.
pub(crate) fn peaky(path: &[u16], classes: usize) -> Array2<f32> {
    let rest = ((1.0 - PEAK_PROB) / (classes - 1) as f32).ln();
    let mut log_probs = Array2::from_elem((path.len(), classes), rest);
    for (t, &class) in path.iter().enumerate() {
        log_probs[[t, class as usize]] = PEAK_PROB.ln();
    }
    log_probs
}
