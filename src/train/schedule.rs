//! Learning-rate schedule and early stopping: linear warm-up over the first updates, then the rate is
//! halved whenever the dev PER fails to improve for `patience` epochs; training stops after
//! `early_stop_patience` epochs without improvement or when the rate falls below `min_lr`.

use serde::{Deserialize, Serialize};

/// Schedule settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleOptions {
    /// Peak learning rate. Default 1e-3 (AdamW).
    pub learning_rate: f64,
    /// Updates of linear warm-up from 0 to the peak. Default 200.
    pub warmup_updates: u64,
    /// Epochs without dev improvement before the rate is halved. Default 1.
    pub patience: usize,
    /// Epochs without dev improvement before training stops. Default 4.
    pub early_stop_patience: usize,
    /// An improvement smaller than this (absolute PER) does not count. Default 0.001.
    pub min_improvement: f64,
    /// Stop once the rate falls below this. Default 1e-6.
    pub min_lr: f64,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        ScheduleOptions {
            learning_rate: 1e-3,
            warmup_updates: 200,
            patience: 1,
            early_stop_patience: 4,
            min_improvement: 0.001,
            min_lr: 1e-6,
        }
    }
}

/// The schedule's state, saved in checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Settings.
    pub options: ScheduleOptions,
    /// Current post-warm-up rate (halved on plateaus).
    pub base_lr: f64,
    /// Best dev PER so far (any decrease counts: this is the model kept as the best).
    pub best_per: Option<f64>,
    /// Epoch (0-based) that reached `best_per`.
    pub best_epoch: Option<usize>,
    /// Dev PER at the last improvement by more than `min_improvement`, the level the patience counters
    /// measure against (absent in checkpoints of older versions: then `best_per`).
    #[serde(default)]
    pub plateau_per: Option<f64>,
    /// Epochs since the last improvement by more than `min_improvement`.
    pub epochs_without_improvement: usize,
    /// Epochs since the last improvement or halving.
    pub epochs_since_halving: usize,
}

/// What the end of an epoch decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochDecision {
    /// This epoch's dev PER is the lowest so far: keep this model as the best. (Also true for a
    /// decrease smaller than `min_improvement`, which does not reset the patience counters.)
    pub new_best: bool,
    /// Stop training after this epoch.
    pub stop: bool,
}

impl Schedule {
    /// A fresh schedule.
    pub fn new(options: ScheduleOptions) -> Self {
        Schedule {
            base_lr: options.learning_rate,
            options,
            best_per: None,
            best_epoch: None,
            plateau_per: None,
            epochs_without_improvement: 0,
            epochs_since_halving: 0,
        }
    }

    /// The rate for update number `update` (0-based).
    pub fn learning_rate(&self, update: u64) -> f64 {
        let warmup = self.options.warmup_updates;
        if warmup > 0 && update < warmup {
            self.base_lr * (update + 1) as f64 / warmup as f64
        } else {
            self.base_lr
        }
    }

    /// Record an epoch's dev PER and decide what happens next.
    pub fn end_epoch(&mut self, epoch: usize, dev_per: f64) -> EpochDecision {
        // Patience counts from the last improvement by more than min_improvement (older checkpoints
        // only have best_per, which was exactly that level then).
        let level = self.plateau_per.or(self.best_per);
        let improved = level.is_none_or(|level| dev_per < level - self.options.min_improvement);
        let new_best = self.best_per.is_none_or(|best| dev_per < best);
        if new_best {
            self.best_per = Some(dev_per);
            self.best_epoch = Some(epoch);
        }
        if improved {
            self.plateau_per = Some(dev_per);
            self.epochs_without_improvement = 0;
            self.epochs_since_halving = 0;
            return EpochDecision {
                new_best,
                stop: false,
            };
        }
        self.epochs_without_improvement += 1;
        self.epochs_since_halving += 1;
        let mut stop = self.epochs_without_improvement >= self.options.early_stop_patience;
        if !stop && self.epochs_since_halving >= self.options.patience {
            self.base_lr *= 0.5;
            self.epochs_since_halving = 0;
            stop = self.base_lr < self.options.min_lr;
        }
        EpochDecision { new_best, stop }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_halving_then_stop() {
        let mut schedule = Schedule::new(ScheduleOptions {
            learning_rate: 1.0,
            warmup_updates: 4,
            patience: 1,
            early_stop_patience: 3,
            ..ScheduleOptions::default()
        });
        assert_eq!(schedule.learning_rate(0), 0.25);
        assert_eq!(schedule.learning_rate(3), 1.0);
        assert_eq!(schedule.learning_rate(100), 1.0);
        let decision = |new_best, stop| EpochDecision { new_best, stop };
        assert_eq!(schedule.end_epoch(0, 0.5), decision(true, false));
        assert_eq!(schedule.end_epoch(1, 0.4), decision(true, false));
        assert_eq!(schedule.end_epoch(2, 0.45), decision(false, false));
        assert_eq!(schedule.base_lr, 0.5);
        assert_eq!(schedule.end_epoch(3, 0.4), decision(false, false));
        assert_eq!(schedule.base_lr, 0.25);
        assert_eq!(schedule.end_epoch(4, 0.41), decision(false, true));
        assert_eq!(schedule.best_epoch, Some(1));
    }

    #[test]
    fn a_small_decrease_is_the_new_best_but_does_not_reset_patience() {
        let mut schedule = Schedule::new(ScheduleOptions {
            learning_rate: 1.0,
            patience: 1,
            early_stop_patience: 2,
            min_improvement: 0.001,
            ..ScheduleOptions::default()
        });
        let decision = |new_best, stop| EpochDecision { new_best, stop };
        assert_eq!(schedule.end_epoch(0, 0.0615), decision(true, false));
        // 0.0606 is lower, by less than min_improvement: kept as the best, rate halved all the same.
        assert_eq!(schedule.end_epoch(1, 0.0606), decision(true, false));
        assert_eq!(schedule.base_lr, 0.5);
        assert_eq!(
            (schedule.best_per, schedule.best_epoch),
            (Some(0.0606), Some(1))
        );
        // Still measured against 0.0615: 0.0606 again is no improvement, and the second such epoch stops.
        assert_eq!(schedule.end_epoch(2, 0.0608), decision(false, true));
        assert_eq!(schedule.best_epoch, Some(1));
        // A later improvement by more than min_improvement against 0.0615 resets the counters.
        let mut schedule = Schedule::new(schedule.options.clone());
        schedule.end_epoch(0, 0.0615);
        schedule.end_epoch(1, 0.0610);
        assert_eq!(schedule.end_epoch(2, 0.0600), decision(true, false));
        assert_eq!(schedule.epochs_without_improvement, 0);
    }
}
