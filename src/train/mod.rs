//! Training: batches of labeled utterances -> network -> CTC loss -> backward -> optimizer, with
//! augmentation, a learning-rate schedule, checkpoints and early stopping.

mod augment;
mod batch;
pub(crate) mod checkpoint;
mod conditions;
mod interference;
mod music;
mod optim;
mod room;
mod schedule;
mod telephone;
mod trainer;

pub use augment::{add_noise, augment_waveform, spec_augment, speed_perturb, AugmentOptions};
pub use batch::{make_batches, split_to_budget};
pub use checkpoint::{
    checkpoint_run_info, epoch_model_file, BEST_MODEL_FILE, CHECKPOINT_FILE, LOCK_FILE,
    METRICS_FILE,
};
pub use conditions::{apply_conditions, ConditionOptions, Conditioned, MUSIC_NON_SPEECH_SHARE};
pub use optim::{Optimizer, OptimizerKind, OptimizerOptions, StepReport};
pub use schedule::{EpochDecision, Schedule, ScheduleOptions, ALL_BLANK_PER};
pub use trainer::{
    train, BatchProgress, EpochStats, ModelBytes, RunStart, TrainObserver, TrainOptions,
    TrainOutcome,
};

/// Test signals the augmentation tests share.
#[cfg(test)]
pub(crate) mod test_signals {
    /// A sine of `freq` Hz at amplitude 8000 (int16 scale), `len` samples at `rate` Hz.
    pub(crate) fn tone(len: usize, freq: f32, rate: f32) -> Vec<f32> {
        (0..len)
            .map(|n| (std::f32::consts::TAU * freq * n as f32 / rate).sin() * 8000.0)
            .collect()
    }
}
