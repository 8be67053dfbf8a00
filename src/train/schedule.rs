//! Learning-rate schedule and early stopping: linear warm-up over the first updates, then the rate is
//! halved whenever the dev PER fails to improve for `patience` epochs; training stops after
//! `early_stop_patience` epochs without improvement or when the rate falls below `min_lr`.
//!
//! On small data an epoch is a handful of updates, and counting patience in epochs alone halved the
//! rate and stopped runs long before CTC had learnt anything (400 FSDD digits: stopped at epoch 5 with
//! every phone deleted). So each rule also needs a number of updates since the last improvement, and
//! nothing halves or stops while the dev PER is 100 % or more: a CTC network first outputs only
//! blanks (PER 100 %, all deletions), and leaving that stage takes hundreds of updates.

use serde::{Deserialize, Serialize};

/// Schedule settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleOptions {
    /// Peak learning rate. Default 1e-3 (AdamW).
    pub learning_rate: f64,
    /// Updates of linear warm-up from 0 to the peak. Default 200.
    pub warmup_updates: u64,
    /// When set, a new run's warm-up is at most this fraction of its planned updates (settled at the
    /// start of the run). Default 0.05.
    #[serde(default)]
    pub warmup_fraction: Option<f64>,
    /// Epochs without dev improvement before the rate is halved. Default 1.
    pub patience: usize,
    /// Epochs without dev improvement before training stops. Default 4.
    pub early_stop_patience: usize,
    /// An improvement smaller than this (absolute PER) does not count. Default 0.001.
    pub min_improvement: f64,
    /// Stop once the rate falls below this. Default 1e-6.
    pub min_lr: f64,
    /// Updates since the last improvement (or halving) needed, as well as `patience` epochs, before
    /// the rate is halved. Default 300 (0 in runs of older versions).
    #[serde(default)]
    pub patience_updates: u64,
    /// Updates since the last improvement needed, as well as `early_stop_patience` epochs, before
    /// training stops. Default 1200 (0 in runs of older versions).
    #[serde(default)]
    pub early_stop_updates: u64,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        ScheduleOptions {
            learning_rate: 1e-3,
            warmup_updates: 200,
            warmup_fraction: Some(0.05),
            patience: 1,
            early_stop_patience: 4,
            min_improvement: 0.001,
            min_lr: 1e-6,
            patience_updates: 300,
            early_stop_updates: 1200,
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
    /// Dev loss of the best epoch: among epochs with the same dev PER the lower loss is kept
    /// (absent in checkpoints of older versions: then the next tie is not taken).
    #[serde(default)]
    pub best_loss: Option<f64>,
    /// Dev PER at the last improvement by more than `min_improvement`, the level the patience counters
    /// measure against (absent in checkpoints of older versions: then `best_per`).
    #[serde(default)]
    pub plateau_per: Option<f64>,
    /// Epochs since the last improvement by more than `min_improvement`.
    pub epochs_without_improvement: usize,
    /// Epochs since the last improvement or halving.
    pub epochs_since_halving: usize,
    /// Update count at the last improvement by more than `min_improvement`.
    #[serde(default)]
    pub improved_at_update: u64,
    /// Update count at the last improvement or halving.
    #[serde(default)]
    pub halved_at_update: u64,
}

/// A dev PER at or above this is the all-blank stage of CTC training (or worse): no reason to halve
/// the rate or stop.
pub const ALL_BLANK_PER: f64 = 1.0;

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
            best_loss: None,
            plateau_per: None,
            epochs_without_improvement: 0,
            epochs_since_halving: 0,
            improved_at_update: 0,
            halved_at_update: 0,
        }
    }

    /// Take a fine-tune's starting model, scored on the dev set before any update, as the best so
    /// far: an epoch must do better than it to be kept. It sets no plateau level (the first epoch
    /// always counts as an improvement for the patience counters: a fine-tune often loses a little
    /// on dev before it gains, and halving the rate for that would cut it short).
    pub fn start_from(&mut self, dev_per: f64, dev_loss: f64) {
        self.best_per = Some(dev_per);
        self.best_epoch = None;
        self.best_loss = dev_loss.is_finite().then_some(dev_loss);
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

    /// Record an epoch's dev PER and loss, after `updates` updates in all, and decide what happens
    /// next.
    ///
    /// The best model is the one with the lowest dev PER, and among equal PERs the lowest dev loss.
    /// A small dev set of the training speakers (FSDD digits) reaches 0 % (or one error) within a
    /// few epochs and stays there while the loss keeps falling, so the first such epoch was kept
    /// before. From scratch with each FSDD speaker held out, the held-out speaker's PER with the
    /// built-in LM went 0.402 → 0.388 on average over the four (two better by 4 and 12 points, two
    /// worse by 1 and 9: the epoch chosen matters more than either rule; `models/README.md`,
    /// "Training on your own data").
    pub fn end_epoch(
        &mut self,
        epoch: usize,
        dev_per: f64,
        dev_loss: f64,
        updates: u64,
    ) -> EpochDecision {
        // Patience counts from the last improvement by more than min_improvement (older checkpoints
        // only have best_per, which was exactly that level then; a starting model's score, with no
        // epoch, is not one).
        let level = self.plateau_per.or(self.best_epoch.and(self.best_per));
        let improved = level.is_none_or(|level| dev_per < level - self.options.min_improvement);
        let new_best = match self.best_per {
            None => true,
            Some(best) if dev_per < best => true,
            // Equal error counts over the same dev set give the same PER to the last bit.
            Some(best) if dev_per == best => self
                .best_loss
                .is_some_and(|best_loss| dev_loss.is_finite() && dev_loss < best_loss),
            Some(_) => false,
        };
        if new_best {
            self.best_per = Some(dev_per);
            self.best_epoch = Some(epoch);
            self.best_loss = dev_loss.is_finite().then_some(dev_loss);
        }
        if improved {
            self.plateau_per = Some(dev_per);
            self.epochs_without_improvement = 0;
            self.epochs_since_halving = 0;
            self.improved_at_update = updates;
            self.halved_at_update = updates;
            return EpochDecision {
                new_best,
                stop: false,
            };
        }
        self.epochs_without_improvement += 1;
        self.epochs_since_halving += 1;
        if self.best_per.is_some_and(|best| best >= ALL_BLANK_PER) {
            // Still in (or behind) the all-blank stage: patience would only cut the run short.
            return EpochDecision {
                new_best,
                stop: false,
            };
        }
        let since_improvement = updates.saturating_sub(self.improved_at_update);
        let since_halving = updates.saturating_sub(self.halved_at_update);
        let mut stop = self.epochs_without_improvement >= self.options.early_stop_patience
            && since_improvement >= self.options.early_stop_updates;
        if !stop
            && self.epochs_since_halving >= self.options.patience
            && since_halving >= self.options.patience_updates
        {
            self.base_lr *= 0.5;
            self.epochs_since_halving = 0;
            self.halved_at_update = updates;
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
            patience_updates: 0,
            early_stop_updates: 0,
            ..ScheduleOptions::default()
        });
        assert_eq!(schedule.learning_rate(0), 0.25);
        assert_eq!(schedule.learning_rate(3), 1.0);
        assert_eq!(schedule.learning_rate(100), 1.0);
        let decision = |new_best, stop| EpochDecision { new_best, stop };
        assert_eq!(schedule.end_epoch(0, 0.5, 1.0, 0), decision(true, false));
        assert_eq!(schedule.end_epoch(1, 0.4, 1.0, 0), decision(true, false));
        assert_eq!(schedule.end_epoch(2, 0.45, 1.0, 0), decision(false, false));
        assert_eq!(schedule.base_lr, 0.5);
        assert_eq!(schedule.end_epoch(3, 0.4, 1.0, 0), decision(false, false));
        assert_eq!(schedule.base_lr, 0.25);
        assert_eq!(schedule.end_epoch(4, 0.41, 1.0, 0), decision(false, true));
        assert_eq!(schedule.best_epoch, Some(1));
    }

    #[test]
    fn a_starting_model_is_the_best_until_an_epoch_beats_it_and_sets_no_plateau() {
        let options = ScheduleOptions {
            patience: 1,
            early_stop_patience: 2,
            patience_updates: 0,
            early_stop_updates: 0,
            ..ScheduleOptions::default()
        };
        let decision = |new_best, stop| EpochDecision { new_best, stop };
        let mut schedule = Schedule::new(options.clone());
        schedule.start_from(0.10, 0.5);
        // Worse than the start: not the best, but the first epoch resets the patience counters.
        assert_eq!(schedule.end_epoch(0, 0.12, 0.4, 10), decision(false, false));
        assert_eq!(schedule.base_lr, options.learning_rate);
        assert_eq!((schedule.best_per, schedule.best_epoch), (Some(0.10), None));
        // Level with the start at a lower loss: taken, as between epochs.
        assert_eq!(schedule.end_epoch(1, 0.10, 0.3, 20), decision(true, false));
        assert_eq!(schedule.best_epoch, Some(1));
        // A run none of whose epochs beat the start stops as any plateau does, the start kept.
        let mut stuck = Schedule::new(options);
        stuck.start_from(0.10, 0.5);
        assert_eq!(stuck.end_epoch(0, 0.20, 0.4, 10), decision(false, false));
        assert_eq!(stuck.end_epoch(1, 0.20, 0.4, 20), decision(false, false));
        assert_eq!(stuck.end_epoch(2, 0.20, 0.4, 30), decision(false, true));
        assert_eq!((stuck.best_per, stuck.best_epoch), (Some(0.10), None));
    }

    #[test]
    fn equal_dev_per_keeps_the_lower_dev_loss() {
        let mut schedule = Schedule::new(ScheduleOptions::default());
        assert!(schedule.end_epoch(0, 0.2, 0.9, 100).new_best);
        assert!(schedule.end_epoch(1, 0.0, 0.05, 200).new_best);
        // Same PER, lower loss: the new best. Same PER, higher or undefined loss: not.
        assert!(schedule.end_epoch(2, 0.0, 0.01, 300).new_best);
        assert!(!schedule.end_epoch(3, 0.0, 0.02, 400).new_best);
        assert!(!schedule.end_epoch(4, 0.0, f64::NAN, 500).new_best);
        assert_eq!(schedule.best_epoch, Some(2));
        assert_eq!(schedule.best_loss, Some(0.01));
        // A lower PER wins whatever its loss.
        let mut other = Schedule::new(ScheduleOptions::default());
        other.end_epoch(0, 0.3, 0.1, 100);
        assert!(other.end_epoch(1, 0.2, 5.0, 200).new_best);
        // A checkpoint of an older version has no best loss: ties are not taken.
        other.best_loss = None;
        assert!(!other.end_epoch(2, 0.2, 0.01, 300).new_best);
    }

    #[test]
    fn a_small_decrease_is_the_new_best_but_does_not_reset_patience() {
        let mut schedule = Schedule::new(ScheduleOptions {
            learning_rate: 1.0,
            patience: 1,
            early_stop_patience: 2,
            min_improvement: 0.001,
            patience_updates: 0,
            early_stop_updates: 0,
            ..ScheduleOptions::default()
        });
        let decision = |new_best, stop| EpochDecision { new_best, stop };
        assert_eq!(schedule.end_epoch(0, 0.0615, 1.0, 0), decision(true, false));
        // 0.0606 is lower, by less than min_improvement: kept as the best, rate halved all the same.
        assert_eq!(schedule.end_epoch(1, 0.0606, 1.0, 0), decision(true, false));
        assert_eq!(schedule.base_lr, 0.5);
        assert_eq!(
            (schedule.best_per, schedule.best_epoch),
            (Some(0.0606), Some(1))
        );
        // Still measured against 0.0615: 0.0606 again is no improvement, and the second such epoch stops.
        assert_eq!(schedule.end_epoch(2, 0.0608, 1.0, 0), decision(false, true));
        assert_eq!(schedule.best_epoch, Some(1));
        // A later improvement by more than min_improvement against 0.0615 resets the counters.
        let mut schedule = Schedule::new(schedule.options.clone());
        schedule.end_epoch(0, 0.0615, 1.0, 0);
        schedule.end_epoch(1, 0.0610, 1.0, 0);
        assert_eq!(schedule.end_epoch(2, 0.0600, 1.0, 0), decision(true, false));
        assert_eq!(schedule.epochs_without_improvement, 0);
    }

    #[test]
    fn small_data_halves_and_stops_only_after_enough_updates() {
        // 10 updates per epoch: patience 1 epoch / 30 updates, early stop 2 epochs / 60 updates.
        let mut schedule = Schedule::new(ScheduleOptions {
            learning_rate: 1.0,
            warmup_updates: 0,
            patience: 1,
            early_stop_patience: 2,
            patience_updates: 30,
            early_stop_updates: 60,
            ..ScheduleOptions::default()
        });
        let decision = |new_best, stop| EpochDecision { new_best, stop };
        assert_eq!(schedule.end_epoch(0, 0.5, 1.0, 10), decision(true, false));
        // Two epochs without improvement: enough epochs, not enough updates (20 < 30, 20 < 60).
        assert_eq!(schedule.end_epoch(1, 0.6, 1.0, 20), decision(false, false));
        assert_eq!(schedule.end_epoch(2, 0.6, 1.0, 30), decision(false, false));
        assert_eq!(schedule.base_lr, 1.0);
        // 30 updates since the improvement: halved.
        assert_eq!(schedule.end_epoch(3, 0.6, 1.0, 40), decision(false, false));
        assert_eq!(schedule.base_lr, 0.5);
        // 60 updates since the improvement: stopped.
        assert_eq!(schedule.end_epoch(4, 0.6, 1.0, 60), decision(false, false));
        assert_eq!(schedule.end_epoch(5, 0.6, 1.0, 70), decision(false, true));
    }

    #[test]
    fn nothing_halves_or_stops_in_the_all_blank_stage() {
        let mut schedule = Schedule::new(ScheduleOptions {
            learning_rate: 1.0,
            patience: 1,
            early_stop_patience: 1,
            patience_updates: 0,
            early_stop_updates: 0,
            ..ScheduleOptions::default()
        });
        // All deletions for many epochs (PER exactly 1), then insertions (PER above 1).
        assert!(!schedule.end_epoch(0, 1.0, 1.0, 10).stop);
        for epoch in 1..20 {
            let per = if epoch < 10 { 1.0 } else { 1.5 };
            assert_eq!(
                schedule.end_epoch(epoch, per, 1.0, 10 * epoch as u64 + 10),
                EpochDecision {
                    new_best: false,
                    stop: false
                }
            );
        }
        assert_eq!(schedule.base_lr, 1.0);
        // Once below 100 %, the usual rules apply.
        assert!(schedule.end_epoch(20, 0.9, 1.0, 210).new_best);
        assert!(schedule.end_epoch(21, 0.95, 1.0, 220).stop);
    }
}
