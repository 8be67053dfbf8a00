//! Long inputs through the network in overlapping windows, so that memory stays bounded and an
//! hour of audio costs what its minutes cost.

use ndarray::{s, Array2, ArrayView2};

use super::network::Blstm;
use crate::error::Result;

/// Network steps per window when a file is processed in pieces (30 s at 10 ms steps, 60 s at 20 ms).
const WINDOW_STEPS: usize = 3000;
/// Windows run through the network together (one padded batch): ~2x the speed of one at a time on
/// long files, for more activation memory (peak RSS 516 -> 686 MB for the default model on one hour).
const WINDOW_BATCH: usize = 4;
/// Steps of context on each side of a window, discarded after the pass (2–4 s): the BiLSTM's memory of
/// speech this far away is negligible, so windows join without seams.
const CONTEXT_STEPS: usize = 200;

impl Blstm {
    /// Whether `frames` feature frames go through [`log_probs_windowed`](Self::log_probs_windowed)
    /// as one piece (so they may as well share a batch with other short inputs).
    pub fn fits_one_window(&self, frames: usize) -> bool {
        self.config().output_frames(frames) <= WINDOW_STEPS + 2 * CONTEXT_STEPS
    }

    /// [`log_probs`](Self::log_probs) of features `[frames, dim]` of any length: in windows of 3000
    /// steps with 200 steps of context on each side when the input is long, so memory stays bounded.
    /// The windows run four at a time as one batch: at batch 1 each step of the recurrence reads all
    /// of `W_hh` for one vector, batched it serves several (`phonrec bench`: 17k frames/s at batch 1,
    /// 32k at 4).
    pub fn log_probs_windowed(&self, features: ArrayView2<f32>) -> Result<Array2<f32>> {
        if self.fits_one_window(features.nrows()) {
            return self.log_probs(features);
        }
        self.windowed(features, self.config().num_outputs, |inputs| {
            self.log_probs_batch(inputs)
        })
    }

    /// The last BiLSTM layer's outputs `[out_frames, 2 · hidden]` of features `[frames, dim]` of any
    /// length, windowed as [`log_probs_windowed`](Self::log_probs_windowed): what a frame head reads.
    pub fn top_hidden_windowed(&self, features: ArrayView2<f32>) -> Result<Array2<f32>> {
        let width = 2 * self.config().hidden_size;
        self.windowed(features, width, |inputs| self.top_hidden_batch(inputs))
    }

    /// [`top_hidden_windowed`](Self::top_hidden_windowed) with `map` applied to each window's hidden
    /// rows (→ `[rows, width]`) before the windows are joined, so that only the mapped values of a
    /// long input are kept (an hour's hidden layer is 460 MB; its frame-head and CTC log-posteriors
    /// 58 MB).
    pub fn map_hidden_windowed(
        &self,
        features: ArrayView2<f32>,
        width: usize,
        map: impl Fn(ArrayView2<f32>) -> Result<Array2<f32>>,
    ) -> Result<Array2<f32>> {
        self.windowed(features, width, |inputs| {
            self.top_hidden_batch(inputs)?
                .iter()
                .map(|hidden| map(hidden.view()))
                .collect()
        })
    }

    /// Run `pass` (one padded batch of feature slices → one `[steps, width]` array each) over
    /// `features` in windows of 3000 steps with 200 steps of context on each side, four windows a
    /// batch, and join the kept steps.
    fn windowed(
        &self,
        features: ArrayView2<f32>,
        width: usize,
        pass: impl Fn(&[ArrayView2<f32>]) -> Result<Vec<Array2<f32>>>,
    ) -> Result<Array2<f32>> {
        let stack = self.config().stack_frames.max(1);
        let frames = features.nrows();
        let steps = self.config().output_frames(frames);
        // (first step kept, end of the kept steps, first step computed) of each window.
        let mut windows = Vec::new();
        let mut start = 0;
        while start < steps {
            let end = if self.fits_one_window(frames) {
                steps
            } else {
                (start + WINDOW_STEPS).min(steps)
            };
            windows.push((start, end, start.saturating_sub(CONTEXT_STEPS)));
            start = end;
        }
        let mut out = Array2::<f32>::zeros((steps, width));
        for group in windows.chunks(WINDOW_BATCH) {
            let inputs: Vec<ArrayView2<f32>> = group
                .iter()
                .map(|&(_, end, left)| {
                    let right = (end + CONTEXT_STEPS).min(steps);
                    features.slice(s![left * stack..(right * stack).min(frames), ..])
                })
                .collect();
            let outputs = pass(&inputs)?;
            for (&(start, end, left), rows) in group.iter().zip(&outputs) {
                out.slice_mut(s![start..end, ..])
                    .assign(&rows.slice(s![start - left..end - left, ..]));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InitOptions, NetworkConfig};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn batched_windows_match_windows_run_one_by_one() -> Result<()> {
        let config = NetworkConfig {
            input_dim: 3,
            num_layers: 1,
            hidden_size: 4,
            dropout: 0.0,
            num_outputs: 3,
            stack_frames: 1,
        };
        let (network, _vars) = Blstm::trainable(&config, &InitOptions::default())?;
        // Five windows: one full batch of WINDOW_BATCH and a short last group.
        let steps = 4 * WINDOW_STEPS + 123;
        let mut rng = StdRng::seed_from_u64(3);
        let features = Array2::from_shape_fn((steps, 3), |_| rng.gen_range(-1.0f32..1.0));
        let batched = network.log_probs_windowed(features.view())?;
        assert_eq!(batched.dim(), (steps, 3));
        for start in (0..steps).step_by(WINDOW_STEPS) {
            let end = (start + WINDOW_STEPS).min(steps);
            let left = start.saturating_sub(CONTEXT_STEPS);
            let right = (end + CONTEXT_STEPS).min(steps);
            let alone = network.log_probs(features.slice(s![left..right, ..]))?;
            let kept = alone.slice(s![start - left..end - left, ..]);
            let worst = kept
                .iter()
                .zip(batched.slice(s![start..end, ..]))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "window at {start}: {worst}");
        }
        Ok(())
    }

    #[test]
    fn mapped_hidden_windows_join_as_the_log_probs_windows_do() -> Result<()> {
        let config = NetworkConfig {
            input_dim: 3,
            num_layers: 2,
            hidden_size: 5,
            dropout: 0.0,
            num_outputs: 4,
            stack_frames: 2,
        };
        let (network, _vars) = Blstm::trainable(&config, &InitOptions::default())?;
        // Two windows' worth of steps: the projection of each window's hidden rows, joined, is the
        // windowed log-posteriors.
        let frames = 2 * (WINDOW_STEPS + 2 * CONTEXT_STEPS + 321);
        let mut rng = StdRng::seed_from_u64(8);
        let features = Array2::from_shape_fn((frames, 3), |_| rng.gen_range(-1.0f32..1.0));
        let mapped = network.map_hidden_windowed(features.view(), 4, |hidden| {
            network.log_probs_from_hidden(hidden)
        })?;
        let windowed = network.log_probs_windowed(features.view())?;
        assert_eq!(mapped.dim(), windowed.dim());
        let worst = mapped
            .iter()
            .zip(&windowed)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{worst}");
        Ok(())
    }

    #[test]
    fn windowed_output_equals_the_whole_utterance_at_once() -> Result<()> {
        let config = NetworkConfig {
            input_dim: 3,
            num_layers: 2,
            hidden_size: 8,
            dropout: 0.0,
            num_outputs: 4,
            stack_frames: 2,
        };
        let (network, _vars) = Blstm::trainable(&config, &InitOptions::default())?;
        // Three windows of steps (stacked frames), the last one short.
        let frames = 2 * (2 * WINDOW_STEPS + 777);
        let mut rng = StdRng::seed_from_u64(5);
        let features = Array2::from_shape_fn((frames, 3), |_| rng.gen_range(-1.0f32..1.0));
        let windowed = network.log_probs_windowed(features.view())?;
        let whole = network.log_probs(features.view())?;
        assert_eq!(windowed.dim(), whole.dim());
        // Every kept step has ≥ CONTEXT_STEPS of context on each side (or the true edge), so the
        // windows join without seams: the same posteriors as one pass over everything.
        let worst = windowed
            .iter()
            .zip(&whole)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{worst}");
        Ok(())
    }
}
