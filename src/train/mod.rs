//! Training: batches of labeled utterances -> network -> CTC loss -> backward -> optimizer, with
//! augmentation, a learning-rate schedule, checkpoints and early stopping.

mod augment;
mod batch;
mod optim;
mod schedule;

pub use augment::{add_noise, augment_waveform, spec_augment, speed_perturb, AugmentOptions};
pub use batch::make_batches;
pub use optim::{Optimizer, OptimizerKind, OptimizerOptions, StepReport};
pub use schedule::{EpochDecision, Schedule, ScheduleOptions};
