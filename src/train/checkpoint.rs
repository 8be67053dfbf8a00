//! A run folder on disk: its file names, the checkpoint (weights, optimizer state and the training
//! state in one safetensors file), the metrics log, and the lock that keeps one trainer per folder.
//! Everything is written atomically, so a run killed at any moment resumes from a consistent state.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use super::optim::Optimizer;
use super::schedule::Schedule;
use super::trainer::{trainable_vars, EpochStats, TrainOptions};
use crate::error::{Error, Result};
use crate::model::{DropoutState, ModelConfig};
use crate::util::write_atomically;

/// File names inside a training directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The model with the best dev PER so far.
pub const BEST_MODEL_FILE: &str = "best.safetensors";

/// The model of epoch `epoch` (1-based) in a run's directory, with `save_epoch_models`.
pub fn epoch_model_file(epoch: usize) -> String {
    format!("epoch-{epoch:03}.safetensors")
}
/// One JSON line per epoch.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Metadata key of the training state in a checkpoint (the model reader looks for it to tell a
/// checkpoint given as a model what to use instead).
pub(crate) const CHECKPOINT_STATE_KEY: &str = "phonrec.train_state";

/// Lock file in a run folder: held (flock) by the process training there, released by the OS when it
/// exits however it exits, so a killed run never leaves it stuck.
pub const LOCK_FILE: &str = ".phonrec-train.lock";

/// Where a run stands; saved in checkpoints.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct TrainState {
    pub(super) options: TrainOptions,
    pub(super) model: ModelConfig,
    /// 0-based epoch in progress.
    pub(super) epoch: usize,
    /// Batches of that epoch already done.
    pub(super) batch: usize,
    pub(super) updates: u64,
    pub(super) schedule: Schedule,
    pub(super) dropout: DropoutState,
    pub(super) epoch_loss_sum: f64,
    pub(super) epoch_utterances: usize,
    pub(super) epoch_frames: usize,
    pub(super) epoch_seconds: f64,
    pub(super) epoch_skipped_utterances: usize,
    pub(super) epoch_skipped_batches: usize,
    pub(super) bad_batches_in_a_row: usize,
    pub(super) best_epoch_is_saved: bool,
    /// Free-form description of the run from the caller (the CLI stores its data arguments here).
    pub(super) run_info: serde_json::Value,
    /// Every completed epoch's figures: `metrics.jsonl` is rewritten from these on resume.
    /// (Checkpoints written before this field have none; their log is truncated instead.)
    #[serde(default)]
    pub(super) metrics: Vec<EpochStats>,
}

/// Read a run's free-form `run_info` from its checkpoint (None if there is no checkpoint).
pub fn checkpoint_run_info(dir: &Path) -> Result<Option<serde_json::Value>> {
    let path = dir.join(CHECKPOINT_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let (state, _) = read_checkpoint(&path)?;
    Ok(Some(state.run_info))
}

/// Write model weights, optimizer state and the training state atomically.
pub(super) fn write_checkpoint(
    path: &Path,
    state: &TrainState,
    var_map: &VarMap,
    optimizer: &Optimizer,
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = trainable_vars(var_map)?
        .into_iter()
        .map(|(name, var)| (name, var.as_tensor().clone()))
        .collect();
    tensors.extend(optimizer.state_tensors());
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let state_json = serde_json::to_string(state).map_err(|e| Error::Encode {
        what: "the training state",
        reason: e.to_string(),
    })?;
    let metadata = HashMap::from([(CHECKPOINT_STATE_KEY.to_string(), state_json)]);
    let bytes = safetensors::serialize(
        tensors.iter().map(|(name, tensor)| (name.as_str(), tensor)),
        Some(metadata),
    )
    .map_err(|e| Error::Encode {
        what: "the checkpoint",
        reason: e.to_string(),
    })?;
    write_atomically(path, &bytes)
}

/// Read a checkpoint's state and tensors.
pub(super) fn read_checkpoint(path: &Path) -> Result<(TrainState, HashMap<String, Tensor>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let invalid = |reason: String| Error::InvalidModel {
        path: path.to_path_buf(),
        reason,
    };
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| invalid(format!("not a safetensors checkpoint: {e}")))?;
    let state_json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CHECKPOINT_STATE_KEY))
        .ok_or_else(|| {
            invalid("no training state: is this a model rather than a checkpoint?".into())
        })?;
    let state: TrainState = serde_json::from_str(state_json)
        .map_err(|e| invalid(format!("unreadable training state: {e}")))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
    Ok((state, tensors))
}

pub(super) fn append_metrics(path: &Path, stats: &EpochStats) -> Result<()> {
    let line = serde_json::to_string(stats).map_err(|e| Error::Encode {
        what: "metrics",
        reason: e.to_string(),
    })?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    writeln!(file, "{line}").map_err(|e| Error::io(path, e))
}

/// Make `metrics.jsonl` say what the checkpoint says: one line per completed epoch. Checkpoints from
/// before the epochs were recorded in them keep the old repair (drop lines past the checkpoint).
pub(super) fn repair_metrics(path: &Path, state: &TrainState) -> Result<()> {
    if state.metrics.len() != state.epoch {
        return truncate_metrics(path, state.epoch);
    }
    let mut out = String::new();
    for stats in &state.metrics {
        let line = serde_json::to_string(stats).map_err(|e| Error::Encode {
            what: "metrics",
            reason: e.to_string(),
        })?;
        out.push_str(&line);
        out.push('\n');
    }
    write_atomically(path, out.as_bytes())
}

/// Remove temporary files that a killed save left in a run folder (only ever ours: `.NAME.tmpPID`).
pub(super) fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            && name.contains(".tmp")
            && name.ends_with(|c: char| c.is_ascii_digit())
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// An exclusive advisory lock on a run folder, held until dropped (or the process dies).
pub(super) struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    pub(super) fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a file descriptor this function owns; no memory is shared.
            let locked =
                unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
            if !locked {
                return Err(Error::Training {
                    reason: format!(
                        "another phonrec process is training in {} (it holds {LOCK_FILE}); wait \
                         for it, stop it, or choose another folder",
                        dir.display()
                    ),
                });
            }
        }
        Ok(RunLock { _file: file })
    }
}

/// Drop metrics lines of epochs the checkpoint has not completed (a run killed between writing the
/// metrics and the checkpoint would otherwise log an epoch twice).
fn truncate_metrics(path: &Path, completed_epochs: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<EpochStats>(line).is_ok_and(|s| s.epoch <= completed_epochs)
        })
        .collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    write_atomically(path, out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{FeatureExtractor, FeatureOptions, FeaturePipeline};
    use crate::model::{init_weights, InitOptions, NetworkConfig, TrainingSummary};
    use crate::phones::PhoneSet;

    /// A small run's state, weights and optimizer, at epoch `epoch` with its metrics.
    fn small_run(epoch: usize) -> Result<(TrainState, VarMap, Optimizer)> {
        let features = FeatureOptions::default();
        let phones = PhoneSet::timit39();
        let network = NetworkConfig {
            input_dim: FeaturePipeline::new(features.clone())?.dim(),
            num_layers: 1,
            hidden_size: 4,
            dropout: 0.1,
            num_outputs: phones.len(),
            stack_frames: 2,
        };
        let var_map = init_weights(&network, &InitOptions::default())?;
        let options = TrainOptions::default();
        let optimizer = Optimizer::new(
            trainable_vars(&var_map)?,
            options.optimizer.clone(),
            options.schedule.learning_rate,
        )?;
        let state = TrainState {
            schedule: Schedule::new(options.schedule.clone()),
            options,
            model: ModelConfig {
                features,
                network,
                phones,
                training: TrainingSummary::default(),
            },
            epoch,
            batch: 3,
            updates: 42,
            dropout: DropoutState { seed: 7, step: 42 },
            epoch_loss_sum: 1.5,
            epoch_utterances: 9,
            epoch_frames: 900,
            epoch_seconds: 2.5,
            epoch_skipped_utterances: 1,
            epoch_skipped_batches: 0,
            bad_batches_in_a_row: 0,
            best_epoch_is_saved: true,
            run_info: serde_json::json!({"train": "/data/train.tsv"}),
            metrics: (1..=epoch).map(stats).collect(),
        };
        Ok((state, var_map, optimizer))
    }

    fn stats(epoch: usize) -> EpochStats {
        EpochStats {
            epoch,
            train_loss: 1.0 / epoch as f64,
            dev_loss: 2.0 / epoch as f64,
            dev_per: 0.5 / epoch as f64,
            lr: 1e-3,
            seconds: 10.0,
            frames_per_s: 1000.0,
            skipped_utterances: 0,
            skipped_batches: 0,
            updates: 10 * epoch as u64,
            improved: true,
        }
    }

    fn metrics_epochs(path: &Path) -> Vec<usize> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                serde_json::from_str::<EpochStats>(line)
                    .expect("a metrics line")
                    .epoch
            })
            .collect()
    }

    #[test]
    fn a_checkpoint_reads_back_what_was_written() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("tmp"), e))?;
        let path = dir.path().join(CHECKPOINT_FILE);
        let (state, var_map, optimizer) = small_run(2)?;
        write_checkpoint(&path, &state, &var_map, &optimizer)?;
        let (back, tensors) = read_checkpoint(&path)?;
        let as_json = |s: &TrainState| serde_json::to_value(s).expect("encodable");
        assert_eq!(as_json(&back), as_json(&state));
        for (name, var) in trainable_vars(&var_map)? {
            let saved = tensors.get(&name).expect("every weight is saved");
            let difference = (saved - var.as_tensor())?
                .abs()?
                .sum_all()?
                .to_scalar::<f32>()?;
            assert_eq!(difference, 0.0, "{name}");
        }
        for name in optimizer.state_tensors().keys() {
            assert!(tensors.contains_key(name), "optimizer state {name}");
        }
        assert_eq!(
            checkpoint_run_info(dir.path())?,
            Some(serde_json::json!({"train": "/data/train.tsv"}))
        );
        // A model file is not a checkpoint.
        std::fs::write(&path, b"not a checkpoint").map_err(|e| Error::io(&path, e))?;
        assert!(read_checkpoint(&path).is_err());
        Ok(())
    }

    #[test]
    fn resume_makes_the_metrics_log_say_what_the_checkpoint_says() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("tmp"), e))?;
        let path = dir.path().join(METRICS_FILE);
        // Killed after epoch 3's line was appended but before its checkpoint: the checkpoint is at
        // epoch 2, and epoch 1's line was lost to an earlier kill.
        for epoch in [2, 3] {
            append_metrics(&path, &stats(epoch))?;
        }
        let (state, _, _) = small_run(2)?;
        repair_metrics(&path, &state)?;
        assert_eq!(metrics_epochs(&path), vec![1, 2]);

        // A checkpoint from before the epochs were recorded in it: lines past it are dropped.
        let (mut old, _, _) = small_run(2)?;
        old.metrics.clear();
        for epoch in [3, 4] {
            append_metrics(&path, &stats(epoch))?;
        }
        repair_metrics(&path, &old)?;
        assert_eq!(metrics_epochs(&path), vec![1, 2]);
        Ok(())
    }
}
