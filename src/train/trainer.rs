//! The training loop: length-bucketed batches -> (augmentation, features on a thread that runs ahead)
//! -> network -> CTC loss -> backward -> gradient clipping -> optimizer, with a dev evaluation (loss and
//! greedy PER) after every epoch, the learning-rate schedule, checkpoints and early stopping.
//!
//! Everything random is drawn from generators seeded by `(seed, epoch, batch)`, so a run resumed from a
//! checkpoint (written at the end of each epoch, every `checkpoint_every_s` seconds, and on interruption)
//! continues exactly as the uninterrupted run would have.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::augment::{augment_waveform, spec_augment, AugmentOptions};
use super::batch::{make_batches, split_to_budget};
use super::checkpoint::{
    append_metrics, epoch_model_file, read_checkpoint, remove_stale_temporaries, repair_metrics,
    write_checkpoint, RunLock, TrainState, BEST_MODEL_FILE, CHECKPOINT_FILE, METRICS_FILE,
};
use super::conditions::apply_conditions;
use super::optim::{Optimizer, OptimizerOptions};
use super::schedule::{EpochDecision, Schedule, ScheduleOptions};
use crate::ctc::{ctc_loss, min_frames, Decoder, GreedyDecoder, Reduction};
use crate::data::Utterance;
use crate::error::{Error, Result};
use crate::eval::PerStats;
use crate::features::{FeatureExtractor, FeatureOptions, FeaturePipeline};
use crate::model::{
    features_to_tensor, Blstm, DropoutState, InitOptions, ModelConfig, ModelFile, NetworkConfig,
    Precision, TrainingSummary,
};
use crate::phones::{PhoneId, PhoneSet};
use crate::util::mix_seed;

/// Everything that defines a training run (stored in its checkpoints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Features the network reads.
    pub features: FeatureOptions,
    /// The network's shape; `input_dim` and `num_outputs` are set from the features and phones.
    pub network: NetworkConfig,
    /// Initialisation of a new network.
    pub init: InitOptions,
    /// The update rule.
    pub optimizer: OptimizerOptions,
    /// Learning rate, warm-up, halving and early stopping.
    pub schedule: ScheduleOptions,
    /// Data augmentation.
    pub augment: AugmentOptions,
    /// Dereverberate every recording that [`crate::audio::is_reverberant`] finds reverberant, after
    /// its augmentation, as recognition's `--dereverb auto` (the default) does before the
    /// features: the network learns from what it will hear (`phonrec train --dereverb auto`).
    /// Off in runs of older versions.
    #[serde(default)]
    pub dereverb: bool,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Cap on padded frames per batch (batch size × longest utterance).
    pub batch_frames: usize,
    /// Cap on utterances per batch (0: none, as in runs of older versions). Default 32: without it,
    /// 8000 frames of half-second digits are 160 utterances in one update, and a few thousand
    /// utterances give a CTC network too few updates to learn from.
    #[serde(default)]
    pub max_batch_utterances: usize,
    /// Train for at least this many updates: a new run's epoch limit is raised to reach it (small
    /// data: 40 utterances are a few updates per epoch). 0: `epochs` as given. Default 3000.
    #[serde(default)]
    pub min_updates: u64,
    /// A new run's batches hold at most 1/8 of the data (at most `max_batch_utterances`), so an
    /// epoch has several updates even on tiny data, whatever sets the epoch limit. (Runs of older
    /// versions fitted them only with `min_updates`.)
    #[serde(default)]
    pub fit_batches_to_data: bool,
    /// Clip the global gradient norm to this; None disables clipping.
    pub clip_norm: Option<f64>,
    /// Standard deviation of Gaussian weight noise added for each batch (Graves et al. 2013); 0 = off.
    pub weight_noise_std: f32,
    /// Seed of batching, augmentation and dropout.
    pub seed: u64,
    /// Stop with an error after this many consecutive batches with a non-finite loss or gradient.
    pub max_bad_batches: usize,
    /// Also write a checkpoint every this many seconds inside an epoch (0 = only at epoch ends).
    pub checkpoint_every_s: u64,
    /// Count `sil` in the dev PER (TIMIT convention varies; default false: sil is removed from both sides).
    pub score_silence: bool,
    /// Start from this model's weights (fine-tuning); its features and architecture then replace
    /// `features` and `network` (except dropout, and the input conditioning of `features`: its CMVN
    /// statistics and dither). None: a new network initialised by `init`.
    #[serde(default)]
    pub init_from: Option<PathBuf>,
    /// Also save each epoch's model as `epoch-NNN.safetensors` (for `phonrec average`).
    #[serde(default)]
    pub save_epoch_models: bool,
    /// The lowest this many LSTM layers keep their starting weights (fine-tuning on little data);
    /// the number of layers or more: only the output layer trains. Default 0.
    #[serde(default)]
    pub freeze_layers: usize,
    /// The arithmetic of the LSTM's products: f32 (the default), or bf16 (mixed precision: bf16
    /// products accumulated in f32, on AMX tiles where the CPU has them; the weights, gradients and
    /// optimizer stay f32). The dev set is scored in f32 either way.
    #[serde(default)]
    pub precision: Precision,
    /// Weight of a distillation term (0: off, as in runs of older versions; needs `init_from`): each
    /// utterance that the recording conditions masked or distorted (noise, floors, the telephone
    /// channel, clipping; [`super::conditions::Conditioned::before_degradation`]) is also run,
    /// as it was before those steps, through the frozen starting model, and the network learns to
    /// give the degraded copy the posteriors the starting model gives the cleaner one: per frame
    /// the cross-entropy against them, summed over the utterance's frames and divided by its label
    /// count as the CTC loss is, times this weight. Teacher–student learning on paired audio (Li
    /// et al., 2017): a frame-level target where the CTC loss has only the label sequence.
    #[serde(default)]
    pub distill: f32,
    /// The model to fine-tune when it is held in memory (a binary's built-in model) rather than in
    /// the file `init_from` names; `init_from` then only records its name. Not stored in checkpoints:
    /// a resumed run continues from the checkpoint's weights.
    #[serde(skip)]
    pub init_from_bytes: Option<ModelBytes>,
}

/// A model file's bytes held in memory for the program's lifetime (e.g. compiled in).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ModelBytes(pub &'static [u8]);

impl std::fmt::Debug for ModelBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModelBytes({} bytes)", self.0.len())
    }
}

impl TrainOptions {
    /// Refuse settings that cannot train: non-finite or out-of-range rates, probabilities and
    /// sizes. (The network shape and features are checked where they are built.)
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidOptions {
                what: "training",
                reason,
            })
        };
        let in_range = |v: f64, lo: f64, hi: f64| v.is_finite() && v >= lo && v <= hi;
        if self.precision == Precision::Int8 {
            return bad("int8 is an inference precision: train in f32 or bf16".into());
        }
        let s = &self.schedule;
        if !(in_range(s.learning_rate, 0.0, 10.0) && s.learning_rate > 0.0) {
            return bad(format!(
                "learning rate must be in (0, 10], got {}",
                s.learning_rate
            ));
        }
        if !in_range(s.min_lr, 0.0, 10.0) || !in_range(s.min_improvement, 0.0, 1.0) {
            return bad(format!(
                "min lr ({}) must be in [0, 10] and min improvement ({}) in [0, 1]",
                s.min_lr, s.min_improvement
            ));
        }
        let o = &self.optimizer;
        if !(in_range(o.beta1, 0.0, 1.0)
            && o.beta1 < 1.0
            && in_range(o.beta2, 0.0, 1.0)
            && o.beta2 < 1.0)
        {
            return bad(format!(
                "optimizer betas must be in [0, 1), got {} and {}",
                o.beta1, o.beta2
            ));
        }
        if !(in_range(o.eps, 0.0, 1.0) && o.eps > 0.0 && in_range(o.weight_decay, 0.0, 1.0)) {
            return bad(format!(
                "optimizer eps ({}) must be in (0, 1] and weight decay ({}) in [0, 1]",
                o.eps, o.weight_decay
            ));
        }
        if let Some(clip) = self.clip_norm {
            if !(in_range(clip, 0.0, 1e6) && clip > 0.0) {
                return bad(format!(
                    "gradient clip norm must be in (0, 1e6], got {clip}"
                ));
            }
        }
        if !in_range(f64::from(self.weight_noise_std), 0.0, 1.0) {
            return bad(format!(
                "weight noise std must be in [0, 1], got {}",
                self.weight_noise_std
            ));
        }
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return bad(format!(
                "epochs must be in 1..={MAX_EPOCHS}, got {}",
                self.epochs
            ));
        }
        if let Some(fraction) = self.schedule.warmup_fraction {
            if !(in_range(fraction, 0.0, 1.0) && fraction > 0.0) {
                return bad(format!(
                    "warm-up fraction must be in (0, 1], got {fraction}"
                ));
            }
        }
        if !(in_range(f64::from(self.distill), 0.0, 100.0)) {
            return bad(format!(
                "distillation weight must be in [0, 100], got {}",
                self.distill
            ));
        }
        if self.distill > 0.0 && self.init_from.is_none() && self.init_from_bytes.is_none() {
            return bad(
                "distillation learns from the starting model: give --init-from MODEL|builtin"
                    .into(),
            );
        }
        if self.distill > 0.0 && !self.augment.conditions.is_active() {
            return bad(
                "distillation pairs each utterance with its copy before the recording conditions: \
                 give --augment robust"
                    .into(),
            );
        }
        if !(1..=MAX_BATCH_FRAMES).contains(&self.batch_frames) {
            return bad(format!(
                "batch frames must be in 1..={MAX_BATCH_FRAMES}, got {}",
                self.batch_frames
            ));
        }
        self.augment.validate().or_else(bad)
    }
}

/// Most epochs a run may ask for.
pub const MAX_EPOCHS: usize = 100_000;
/// Largest batch, in padded feature frames (10^7 frames of 80 floats is 3.2 GB of input alone).
pub const MAX_BATCH_FRAMES: usize = 10_000_000;

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            features: FeatureOptions::default(),
            network: NetworkConfig::default(),
            init: InitOptions::default(),
            optimizer: OptimizerOptions::default(),
            schedule: ScheduleOptions::default(),
            augment: AugmentOptions::default(),
            dereverb: false,
            epochs: 20,
            batch_frames: 8000,
            max_batch_utterances: 32,
            min_updates: 3000,
            fit_batches_to_data: true,
            clip_norm: Some(5.0),
            weight_noise_std: 0.0,
            seed: 0,
            max_bad_batches: 5,
            checkpoint_every_s: 600,
            score_silence: false,
            init_from: None,
            save_epoch_models: false,
            init_from_bytes: None,
            freeze_layers: 0,
            precision: Precision::F32,
            distill: 0.0,
        }
    }
}

/// Figures of one finished epoch; also the line written to `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Training CTC loss per target phone, averaged over utterances.
    pub train_loss: f64,
    /// Mean dev CTC loss per target phone.
    pub dev_loss: f64,
    /// Dev phone error rate (greedy decoding), 0..1.
    pub dev_per: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall time of the epoch, dev evaluation included.
    pub seconds: f64,
    /// Training frames per second (feature frames through forward + backward + update).
    pub frames_per_s: f64,
    /// Utterances skipped in this epoch (impossible alignments, non-finite batches).
    pub skipped_utterances: usize,
    /// Batches skipped because their loss or gradient was not finite.
    pub skipped_batches: usize,
    /// Optimizer updates so far.
    pub updates: u64,
    /// Whether this epoch gave the best dev PER so far (and was saved as `best.safetensors`).
    pub improved: bool,
}

/// Progress inside an epoch.
#[derive(Clone, Debug)]
pub struct BatchProgress {
    /// 1-based epoch.
    pub epoch: usize,
    /// Batches done in this epoch.
    pub batch: usize,
    /// Batches in this epoch.
    pub num_batches: usize,
    /// Mean loss per phone over the epoch so far.
    pub mean_loss: f64,
    /// Training frames per second over the epoch so far.
    pub frames_per_s: f64,
}

/// What the caller learns during training. Every method has a default that does nothing.
pub trait TrainObserver {
    /// Training is about to start (or resume) at `epoch` (1-based), with this many usable utterances.
    fn on_start(&mut self, _epoch: usize, _num_train: usize, _num_dev: usize) {}
    /// A batch finished.
    fn on_batch(&mut self, _progress: &BatchProgress) {}
    /// An epoch finished.
    fn on_epoch(&mut self, _stats: &EpochStats) {}
    /// Something was skipped (an unreadable file, a non-finite batch): a one-line message.
    fn on_problem(&mut self, _message: &str) {}
    /// A decision made for the user (the run's length fitted to the data): a one-line message.
    fn on_note(&mut self, _message: &str) {}
    /// Polled between batches: true asks training to write a checkpoint and return.
    fn should_stop(&self) -> bool {
        false
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOutcome {
    /// Epochs completed (over all sessions of the run).
    pub epochs_completed: usize,
    /// Best dev PER and its 1-based epoch; epoch 0 is a fine-tune's starting model, when no epoch
    /// did better on dev (`best.safetensors` then holds the starting weights).
    pub best: Option<(f64, usize)>,
    /// True when stopped by [`TrainObserver::should_stop`]; resume with the same directory.
    pub interrupted: bool,
    /// True when early stopping ended the run before `epochs`.
    pub stopped_early: bool,
}

/// An utterance ready for training: its waveform at the model's rate and its labels.
struct Prepared {
    wave: Arc<Vec<f32>>,
    /// The rate the audio was recorded at, when lower than the model's: its band ends at half this,
    /// and augmentation must not put noise above it (see [`band_limit`]).
    narrowband_source_hz: Option<u32>,
    phones: Vec<PhoneId>,
    /// Feature frames without speed perturbation.
    num_frames: usize,
}

/// The random stream of a run's initial weights and dropout masks (see [`mix_seed`]).
const INIT_STREAM: u64 = 0xA11CE;

/// How a run starts in its folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStart {
    /// A new run; refused when the folder already holds one (its checkpoint, best model or metrics).
    New,
    /// A new run that replaces whatever run the folder holds.
    Overwrite,
    /// Continue from the folder's checkpoint with the run's own options (the `options` given to
    /// [`train`] are ignored). `epochs` changes the run's epoch limit: a finished run is extended by
    /// raising it.
    Resume {
        /// The new epoch limit; None keeps the run's.
        epochs: Option<usize>,
    },
}

/// Train a model in `out_dir`. With [`RunStart::Resume`], continue from
/// `out_dir/checkpoint.safetensors` (the options then come from the checkpoint). `run_info` is stored
/// in checkpoints. Only one process trains in a folder at a time.
#[allow(clippy::too_many_arguments)] // the run's parts are independent inputs; a struct would only wrap them
pub fn train(
    train_set: &[Utterance],
    dev_set: &[Utterance],
    phones: &PhoneSet,
    options: &TrainOptions,
    out_dir: &Path,
    start: RunStart,
    run_info: serde_json::Value,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let _lock = RunLock::acquire(out_dir)?;
    remove_stale_temporaries(out_dir);
    let mut run = match start {
        RunStart::Resume { epochs } => {
            TrainRun::resume(out_dir, phones, epochs, options.init_from_bytes)?
        }
        RunStart::New | RunStart::Overwrite => {
            if start == RunStart::New {
                refuse_existing_run(out_dir)?;
            }
            TrainRun::new(out_dir, phones, options, run_info)?
        }
    };
    let data = TrainData::prepare(&run, train_set, dev_set, phones, observer)?;
    if matches!(start, RunStart::Resume { .. }) {
        // The checkpoint is the record: a kill between writing it and appending the metrics
        // line (or before the rename of either) is repaired here.
        repair_metrics(&out_dir.join(METRICS_FILE), &run.state)?;
    }
    observer.on_start(run.state.epoch + 1, data.train.len(), data.dev.len());
    if run.state.updates == 0 && run.state.epoch == 0 && run.state.batch == 0 {
        let TrainState {
            options, schedule, ..
        } = &mut run.state;
        if let Some(note) = plan_run(options, schedule, &data) {
            observer.on_note(&note);
        }
    }
    // Advice on the options is for a run's start: a resumed run keeps its options (only --epochs
    // may change), so advice to change them could not be followed.
    let starting = run.state.updates == 0;
    let per_epoch = batches_per_epoch(&run.state.options, &data);
    let advice = [
        warm_up_warning(&run.state.options, per_epoch),
        too_few_updates_warning(&run.state.options, per_epoch),
    ];
    for warning in advice.iter().flatten().filter(|_| starting) {
        observer.on_problem(warning);
    }
    if starting
        && run.state.model.training.init_from.is_some()
        && run.state.schedule.best_per.is_none()
    {
        let (dev_loss, dev_per) = run.score_starting_model(&data)?;
        observer.on_note(&format!(
            "the starting model: dev PER {:.2}% (dev loss {dev_loss:.3}); it is {BEST_MODEL_FILE} \
             until an epoch does better",
            dev_per * 100.0
        ));
    }
    let mut stopped_early = false;
    while run.state.epoch < run.state.options.epochs {
        if run.run_epoch(&data, observer)? == EpochEnd::Interrupted {
            run.checkpoint()?;
            return Ok(run.outcome(true, false));
        }
        if run.end_epoch(&data, observer)?.stop {
            stopped_early = run.state.epoch < run.state.options.epochs;
            break;
        }
    }
    Ok(run.outcome(false, stopped_early))
}

/// Batches per epoch of `data` under `options` (the count varies a little between epochs with the
/// length jitter; this is epoch 1's).
fn batches_per_epoch(options: &TrainOptions, data: &TrainData) -> u64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(mix_seed(options.seed, 0, 1));
    make_batches(
        &data.lengths,
        options.batch_frames,
        options.max_batch_utterances,
        &mut rng,
    )
    .len() as u64
}

/// Fit a new run's length to its data: smaller batches on tiny data, raise the epoch limit until the run has `min_updates`
/// updates (at most [`MAX_EPOCHS`]), and shorten the warm-up to `warmup_fraction` of the run. Both
/// are settled here once, in the run's options, so a resumed run keeps them. Returns a note for
/// the user when anything changed.
fn plan_run(
    options: &mut TrainOptions,
    schedule: &mut Schedule,
    data: &TrainData,
) -> Option<String> {
    let mut notes = Vec::new();
    if (options.fit_batches_to_data || options.min_updates > 0) && options.max_batch_utterances > 0
    {
        // Several updates per epoch even on tiny data (40 clips: 8 batches of 5, not 2 of 32).
        let fitted = data
            .lengths
            .len()
            .div_ceil(MIN_BATCHES_PER_EPOCH)
            .clamp(1, options.max_batch_utterances);
        if fitted < options.max_batch_utterances {
            // Up to that many batches; fewer where the utterances do not split so (12 in 2s: 6).
            let updates = data.lengths.len().div_ceil(fitted);
            notes.push(format!(
                "{} utterances: batches of at most {fitted} (not {}), for {updates} updates per \
                 epoch",
                data.lengths.len(),
                options.max_batch_utterances
            ));
            options.max_batch_utterances = fitted;
        }
    }
    let per_epoch = batches_per_epoch(options, data).max(1);
    let wanted = options.min_updates.div_ceil(per_epoch) as usize;
    if wanted > options.epochs {
        notes.push(format!(
            "{per_epoch} batches per epoch: up to {} epochs instead of {}, for at least {} \
             updates (--epochs sets the limit yourself)",
            wanted.min(MAX_EPOCHS),
            options.epochs,
            options.min_updates
        ));
        options.epochs = wanted.min(MAX_EPOCHS);
    }
    options.min_updates = 0;
    options.fit_batches_to_data = false;
    if let Some(fraction) = options.schedule.warmup_fraction.take() {
        let planned = per_epoch * options.epochs as u64;
        let cap = ((planned as f64 * fraction).ceil() as u64).max(1);
        if cap < options.schedule.warmup_updates {
            notes.push(format!(
                "learning-rate warm-up {cap} updates instead of {} ({:.0} % of the run's {planned})",
                options.schedule.warmup_updates,
                fraction * 100.0
            ));
            options.schedule.warmup_updates = cap;
        }
    }
    schedule.options = options.schedule.clone();
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// A warning when the learning-rate warm-up takes more than half of the run's updates (an explicit
/// --warmup on small data: 40 utterances make a few batches per epoch). A warm-up of one update
/// is none (its first update is at the full rate), whatever the run's length.
fn warm_up_warning(options: &TrainOptions, per_epoch: u64) -> Option<String> {
    let updates = per_epoch * options.epochs as u64;
    let warmup = options.schedule.warmup_updates;
    (warmup > 1 && 2 * warmup > updates).then(|| {
        format!(
            "the learning-rate warm-up ({warmup} updates) takes more than half of the run's \
             {updates} updates ({per_epoch} batches per epoch × {} epochs): the rate stays below \
             the one asked for most of the run. Lower --warmup (e.g. to {}), lower --batch-frames \
             for more updates per epoch, or raise --epochs",
            options.epochs,
            (updates / 20).max(1)
        )
    })
}

/// Batches per epoch that a run fitted to its data has at least (when its batch size allows).
const MIN_BATCHES_PER_EPOCH: usize = 8;

/// Fewer updates than a network trained from scratch needs to leave CTC's all-blank stage.
const MIN_SCRATCH_UPDATES: u64 = 1000;

/// A warning when a run from scratch has fewer than [`MIN_SCRATCH_UPDATES`] updates in all.
fn too_few_updates_warning(options: &TrainOptions, per_epoch: u64) -> Option<String> {
    let updates = per_epoch * options.epochs as u64;
    (options.init_from.is_none() && updates < MIN_SCRATCH_UPDATES).then(|| {
        format!(
            "{updates} updates in all ({per_epoch} per epoch × {} epochs): a network trained from \
             scratch usually needs over {MIN_SCRATCH_UPDATES} to output anything but blanks. Raise \
             --epochs, lower --batch-frames, or fine-tune the built-in model (--init-from builtin)",
            options.epochs
        )
    })
}

/// Refuse to start a new run over one that `out_dir` already holds.
fn refuse_existing_run(out_dir: &Path) -> Result<()> {
    let existing: Vec<&str> = [CHECKPOINT_FILE, BEST_MODEL_FILE, METRICS_FILE]
        .into_iter()
        .filter(|name| out_dir.join(name).exists())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    Err(Error::Training {
        reason: format!(
            "{} already holds a run ({}): resume it, choose another folder, or start over with \
             --force (which replaces it)",
            out_dir.display(),
            existing.join(", ")
        ),
    })
}

/// Whether an epoch ran to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EpochEnd {
    Completed,
    /// [`TrainObserver::should_stop`] asked to stop inside it.
    Interrupted,
}

/// One update's inputs: features, targets and, when distilling, the teacher's log-posteriors of
/// each utterance's cleaner copy (None: no copy, or no distillation).
#[derive(Default)]
struct Update {
    features: Vec<Array2<f32>>,
    targets: Vec<Vec<PhoneId>>,
    teacher: Vec<Option<Array2<f32>>>,
}

/// One utterance as an update sees it: its features, its targets, and the features of its copy
/// from before the degradation when a teacher hears that.
#[derive(Default)]
struct Example {
    features: Array2<f32>,
    target: Vec<PhoneId>,
    clean_features: Option<Array2<f32>>,
}

/// One batch, split into updates that fit the frame budget.
type BatchParts = Vec<Update>;

/// A run in progress: its state (what checkpoints save), the network and its optimizer.
struct TrainRun {
    out_dir: PathBuf,
    state: TrainState,
    network: Blstm,
    var_map: VarMap,
    optimizer: Optimizer,
    last_checkpoint: Instant,
    /// The frozen starting model, when distilling ([`TrainOptions::distill`]); shared with the
    /// thread that makes the batches.
    teacher: Option<Arc<Blstm>>,
}

impl TrainRun {
    /// A new run: a fresh network, or the `init_from` model's, with `options`.
    fn new(
        out_dir: &Path,
        phones: &PhoneSet,
        options: &TrainOptions,
        run_info: serde_json::Value,
    ) -> Result<Self> {
        options.validate()?;
        let mut options = options.clone();
        let start = starting_model(options.init_from_bytes, options.init_from.as_deref())?
            .map(|model| (model, options.init_from.clone().unwrap_or_default()));
        // Where the weights come from, recorded in the model file (it sets the default decoding).
        let lineage = start.as_ref().map(|(start, path)| {
            if options.init_from_bytes.is_some()
                || start.config().training.fine_tuned_from_built_in()
            {
                TrainingSummary::BUILT_IN.to_string()
            } else {
                path.file_name()
                    .unwrap_or(path.as_os_str())
                    .to_string_lossy()
                    .into_owned()
            }
        });
        let mut teacher = None;
        let (network, var_map) = match start {
            Some((start, path)) => {
                let config = start.config();
                if config.phones != *phones {
                    return Err(Error::Training {
                        reason: format!(
                            "--init-from {}: the model was trained on another phone set",
                            path.display()
                        ),
                    });
                }
                // The model's features, but the input conditioning asked for: which frames the
                // CMVN statistics use and the dither (a fine-tune can move a model to robust input).
                let mut features = config.features.clone();
                if let (Some(cmvn), Some(wanted)) = (&mut features.cmvn, &options.features.cmvn) {
                    cmvn.statistics = wanted.statistics;
                }
                features.frame_mut().dither = options.features.frame().dither;
                options.features = features;
                options.network = NetworkConfig {
                    dropout: options.network.dropout,
                    ..config.network.clone()
                };
                if options.distill > 0.0 {
                    teacher = Some(network_from_tensors(&options.network, start.weights())?.0);
                }
                network_from_tensors(&options.network, start.weights())?
            }
            None => {
                let pipeline = FeaturePipeline::new(options.features.clone())?;
                options.network.input_dim = pipeline.dim();
                options.network.num_outputs = phones.len();
                let mut init = options.init.clone();
                init.seed = mix_seed(options.seed, INIT_STREAM, 0);
                Blstm::trainable(&options.network, &init)?
            }
        };
        let model = ModelConfig {
            features: options.features.clone(),
            network: options.network.clone(),
            phones: phones.clone(),
            training: TrainingSummary {
                init_from: lineage,
                ..TrainingSummary::default()
            },
        };
        model.validate()?;
        let state = TrainState {
            schedule: Schedule::new(options.schedule.clone()),
            // Fresh and fine-tuned runs alike draw their masks from the run's seed.
            dropout: DropoutState {
                seed: mix_seed(options.seed, INIT_STREAM, 0),
                step: 0,
            },
            options,
            model,
            epoch: 0,
            batch: 0,
            updates: 0,
            epoch_loss_sum: 0.0,
            epoch_utterances: 0,
            epoch_frames: 0,
            epoch_seconds: 0.0,
            epoch_skipped_utterances: 0,
            epoch_skipped_batches: 0,
            bad_batches_in_a_row: 0,
            best_epoch_is_saved: false,
            run_info,
            metrics: Vec::new(),
        };
        // A fresh run starts a fresh metrics log.
        let _ = std::fs::remove_file(out_dir.join(METRICS_FILE));
        Self::assemble(out_dir, state, network, var_map, None, teacher)
    }

    /// The run `out_dir` holds, from its checkpoint; `epochs` replaces its epoch limit.
    fn resume(
        out_dir: &Path,
        phones: &PhoneSet,
        epochs: Option<usize>,
        init_from_bytes: Option<ModelBytes>,
    ) -> Result<Self> {
        let checkpoint_path = out_dir.join(CHECKPOINT_FILE);
        if !checkpoint_path.exists() {
            return Err(Error::Training {
                reason: format!(
                    "nothing to resume: {} does not exist",
                    checkpoint_path.display()
                ),
            });
        }
        let (mut state, tensors) = read_checkpoint(&checkpoint_path)?;
        if state.model.phones != *phones {
            return Err(Error::Training {
                reason: "the checkpoint was trained on another phone set".to_string(),
            });
        }
        if let Some(epochs) = epochs {
            state.options.epochs = epochs;
            state.options.validate()?;
        }
        let (network, var_map) = network_from_tensors(&state.model.network, &tensors)?;
        let teacher = if state.options.distill > 0.0 {
            Some(resumed_teacher(&state.options, init_from_bytes)?)
        } else {
            None
        };
        Self::assemble(out_dir, state, network, var_map, Some(&tensors), teacher)
    }

    /// A run from its parts, with an optimizer over `var_map` as `state` configures it (its moments
    /// restored from a checkpoint's `tensors` when given).
    fn assemble(
        out_dir: &Path,
        state: TrainState,
        network: Blstm,
        var_map: VarMap,
        checkpoint: Option<&HashMap<String, Tensor>>,
        teacher: Option<Blstm>,
    ) -> Result<Self> {
        let mut network = network;
        network.set_training_precision(state.options.precision)?;
        let mut optimizer = Optimizer::new(
            updated_vars(&var_map, state.options.freeze_layers)?,
            state.options.optimizer.clone(),
            state.options.schedule.learning_rate,
        )?;
        if let Some(tensors) = checkpoint {
            optimizer.load_state(tensors, state.updates)?;
        }
        Ok(TrainRun {
            out_dir: out_dir.to_path_buf(),
            state,
            network,
            var_map,
            optimizer,
            last_checkpoint: Instant::now(),
            teacher: teacher.map(Arc::new),
        })
    }

    /// Write the checkpoint now.
    fn checkpoint(&mut self) -> Result<()> {
        write_checkpoint(
            &self.out_dir.join(CHECKPOINT_FILE),
            &self.state,
            &self.var_map,
            &self.optimizer,
        )?;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    fn outcome(&self, interrupted: bool, stopped_early: bool) -> TrainOutcome {
        TrainOutcome {
            epochs_completed: self.state.epoch,
            best: best_of(&self.state.schedule),
            interrupted,
            stopped_early,
        }
    }

    /// Train through the rest of the current epoch's batches (from where a checkpoint left it). The
    /// features of upcoming batches are made on a separate thread while the network trains.
    fn run_epoch(
        &mut self,
        data: &TrainData,
        observer: &mut dyn TrainObserver,
    ) -> Result<EpochEnd> {
        let epoch = self.state.epoch;
        let options = self.state.options.clone();
        let mut batch_rng =
            rand::rngs::StdRng::seed_from_u64(mix_seed(options.seed, epoch as u64, 1));
        let batches = make_batches(
            &data.lengths,
            options.batch_frames,
            options.max_batch_utterances,
            &mut batch_rng,
        );
        let num_batches = batches.len();
        let epoch_start =
            Instant::now() - std::time::Duration::from_secs_f64(self.state.epoch_seconds);
        // Other training utterances, mixed as babble noise by the recording-condition augmentation.
        let babble_pool: Vec<&[f32]> = if options.augment.conditions.is_active() {
            data.train.iter().map(|u| u.wave.as_slice()).collect()
        } else {
            Vec::new()
        };
        std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<BatchParts>>(3);
            let first_batch = self.state.batch;
            let (batches, babble, options) = (&batches, &babble_pool, &options);
            let teacher = self.teacher.clone();
            scope.spawn(move || {
                let teacher = teacher.as_deref();
                for (index, batch) in batches.iter().enumerate().skip(first_batch) {
                    let parts = data.batch_features(options, epoch, index, batch, babble, teacher);
                    if sender.send(parts).is_err() {
                        return; // the trainer stopped early
                    }
                }
            });
            for batch_index in self.state.batch..num_batches {
                if observer.should_stop() {
                    return Ok(EpochEnd::Interrupted);
                }
                let Ok(parts) = receiver.recv() else {
                    return Err(Error::Training {
                        reason: "the feature thread stopped unexpectedly".to_string(),
                    });
                };
                for update in &parts? {
                    train_batch(
                        &self.network,
                        &self.var_map,
                        &mut self.optimizer,
                        &mut self.state,
                        update,
                        observer,
                    )?;
                }
                self.state.batch = batch_index + 1;
                self.state.epoch_seconds = epoch_start.elapsed().as_secs_f64();
                observer.on_batch(&BatchProgress {
                    epoch: epoch + 1,
                    batch: self.state.batch,
                    num_batches,
                    mean_loss: self.state.epoch_loss_sum
                        / self.state.epoch_utterances.max(1) as f64,
                    frames_per_s: self.state.epoch_frames as f64
                        / self.state.epoch_seconds.max(1e-9),
                });
                if options.checkpoint_every_s > 0
                    && self.last_checkpoint.elapsed().as_secs() >= options.checkpoint_every_s
                    && self.state.batch < num_batches
                {
                    self.checkpoint()?;
                }
            }
            drop(receiver);
            Ok(EpochEnd::Completed)
        })
    }

    /// The dev set's (loss, PER) under the network as it stands, scored in f32 as the saved model
    /// runs by default: a bf16 run's model is chosen by what its users will see, not by its rounded
    /// training arithmetic.
    fn evaluate_dev(&mut self, data: &TrainData) -> Result<(f64, f64)> {
        self.network.set_training_precision(Precision::F32)?;
        let evaluation = evaluate(&self.network, &data.dev_features, &data.dev, data.silence);
        self.network
            .set_training_precision(self.state.options.precision)?;
        evaluation
    }

    /// The network as it stands, as a model file whose summary says it had `epochs` epochs and this
    /// dev PER.
    fn model_file(&self, epochs: usize, dev_per: f64) -> Result<ModelFile> {
        let state = &self.state;
        let mut model = ModelFile::from_var_map(state.model.clone(), &self.var_map)?;
        model.set_training_summary(TrainingSummary {
            data: state
                .run_info
                .get("data")
                .and_then(|d| d.as_str())
                .map(String::from),
            epochs: Some(epochs),
            updates: Some(state.updates),
            dev_per: Some(dev_per * 100.0),
            date: None,
            init_from: state.model.training.init_from.clone(),
        });
        Ok(model)
    }

    /// A fine-tune's starting model scored on the dev set before any update, kept as the best
    /// model until an epoch does better: a fine-tune that only makes the dev set worse (a few
    /// utterances the starting model already knew) hands back the model it started from, not the
    /// least bad of its epochs. Returns the dev (loss, PER).
    fn score_starting_model(&mut self, data: &TrainData) -> Result<(f64, f64)> {
        let (dev_loss, dev_per) = self.evaluate_dev(data)?;
        self.state.schedule.start_from(dev_per, dev_loss);
        self.model_file(0, dev_per)?
            .save(&self.out_dir.join(BEST_MODEL_FILE))?;
        Ok((dev_loss, dev_per))
    }

    /// The end of an epoch: dev evaluation, the schedule's decision, the best (and epoch) model, the
    /// checkpoint and the metrics line.
    fn end_epoch(
        &mut self,
        data: &TrainData,
        observer: &mut dyn TrainObserver,
    ) -> Result<EpochDecision> {
        let epoch = self.state.epoch;
        let evaluation_start = Instant::now();
        let (dev_loss, dev_per) = self.evaluate_dev(data)?;
        let decision = self
            .state
            .schedule
            .end_epoch(epoch, dev_per, dev_loss, self.state.updates);
        let state = &mut self.state;
        let stats = EpochStats {
            epoch: epoch + 1,
            train_loss: state.epoch_loss_sum / state.epoch_utterances.max(1) as f64,
            dev_loss,
            dev_per,
            lr: self.optimizer.learning_rate(),
            seconds: state.epoch_seconds + evaluation_start.elapsed().as_secs_f64(),
            frames_per_s: state.epoch_frames as f64 / state.epoch_seconds.max(1e-9),
            skipped_utterances: state.epoch_skipped_utterances,
            skipped_batches: state.epoch_skipped_batches,
            updates: state.updates,
            improved: decision.new_best,
        };
        if decision.new_best || state.options.save_epoch_models {
            let model = self.model_file(epoch + 1, dev_per)?;
            let state = &self.state;
            if state.options.save_epoch_models {
                model.save(&self.out_dir.join(epoch_model_file(epoch + 1)))?;
            }
            if decision.new_best {
                model.save(&self.out_dir.join(BEST_MODEL_FILE))?;
            }
        }
        let state = &mut self.state;
        state.epoch += 1;
        state.batch = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_utterances = 0;
        state.epoch_frames = 0;
        state.epoch_seconds = 0.0;
        state.epoch_skipped_utterances = 0;
        state.epoch_skipped_batches = 0;
        state.metrics.push(stats.clone());
        self.checkpoint()?;
        append_metrics(&self.out_dir.join(METRICS_FILE), &stats)?;
        observer.on_epoch(&stats);
        Ok(decision)
    }
}

/// The data of a run, read and checked once: utterances at the model's rate, the feature pipelines
/// (one per VTLP warp), and the features that never change (dev; training without augmentation).
struct TrainData {
    pipeline: FeaturePipeline,
    vtlp_pipelines: Vec<FeaturePipeline>,
    train: Vec<Prepared>,
    dev: Vec<Prepared>,
    dev_features: Vec<Array2<f32>>,
    cached_train_features: Option<Vec<Array2<f32>>>,
    /// Feature frames of each training utterance, for batching.
    lengths: Vec<usize>,
    /// `sil`, when the dev PER leaves it out.
    silence: Option<PhoneId>,
}

impl TrainData {
    fn prepare(
        run: &TrainRun,
        train_set: &[Utterance],
        dev_set: &[Utterance],
        phones: &PhoneSet,
        observer: &mut dyn TrainObserver,
    ) -> Result<Self> {
        let options = &run.state.options;
        let pipeline = FeaturePipeline::new(options.features.clone())?;
        let train = prepare(train_set, &pipeline, &run.network, observer);
        let dev = prepare(dev_set, &pipeline, &run.network, observer);
        if train.is_empty() {
            return Err(Error::Training {
                reason: "no usable training utterances".to_string(),
            });
        }
        if dev.is_empty() {
            return Err(Error::Training {
                reason: "no usable dev utterances".to_string(),
            });
        }
        let vtlp_pipelines: Vec<FeaturePipeline> = options
            .augment
            .vtlp_factors()
            .into_iter()
            .map(|warp| {
                let mut features = options.features.clone();
                features.mel_mut().vtln_warp = warp;
                FeaturePipeline::new(features)
            })
            .collect::<Result<_>>()?;
        let heard = |wave: &[f32]| -> Array2<f32> {
            if options.dereverb {
                pipeline.compute(&dereverberated(wave, pipeline.sample_rate_hz()))
            } else {
                pipeline.compute(wave)
            }
        };
        let dev_features = dev.par_iter().map(|u| heard(&u.wave)).collect();
        let cached_train_features = (!options.augment.changes_features())
            .then(|| train.par_iter().map(|u| heard(&u.wave)).collect());
        Ok(TrainData {
            lengths: train.iter().map(|u| u.num_frames).collect(),
            silence: (!options.score_silence).then(|| phones.silence()).flatten(),
            pipeline,
            vtlp_pipelines,
            train,
            dev,
            dev_features,
            cached_train_features,
        })
    }

    /// The features and targets of batch `index` (utterances `batch`) of `epoch`: augmented as the
    /// options say, from a generator seeded by (seed, epoch, batch, utterance), then split into
    /// updates within the frame budget (augmentation may have lengthened the utterances). With a
    /// `teacher`, each utterance the conditions degraded also gets the teacher's log-posteriors of
    /// its copy from before the degradation.
    fn batch_features(
        &self,
        options: &TrainOptions,
        epoch: usize,
        index: usize,
        batch: &[usize],
        babble: &[&[f32]],
        teacher: Option<&Blstm>,
    ) -> Result<BatchParts> {
        let augment = &options.augment;
        let sample_rate = self.pipeline.sample_rate_hz();
        let examples: Vec<Example> = batch
            .par_iter()
            .map(|&i| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(mix_seed(
                    options.seed,
                    epoch as u64,
                    (index as u64) << 32 | i as u64,
                ));
                let mut has_speech = true;
                let mut clean_wave = None;
                let mut teacher_features = None;
                let mut features = match &self.cached_train_features {
                    Some(all) => all[i].clone(),
                    None => {
                        let mut wave =
                            augment_waveform(&self.train[i].wave, sample_rate, augment, &mut rng);
                        if augment.conditions.is_active() {
                            let conditioned = apply_conditions(
                                &wave,
                                sample_rate,
                                &augment.conditions,
                                babble,
                                &mut rng,
                            );
                            wave = conditioned.samples;
                            has_speech = conditioned.has_speech;
                            clean_wave =
                                conditioned.before_degradation.filter(|_| teacher.is_some());
                        }
                        let heard = |wave: Vec<f32>| {
                            let mut wave = wave;
                            // Non-speech in place of a narrowband utterance is not that
                            // recording: it keeps its own band.
                            if let (Some(source_rate), true) =
                                (self.train[i].narrowband_source_hz, has_speech)
                            {
                                wave = band_limit(&wave, sample_rate, source_rate);
                            }
                            if options.dereverb {
                                if let Cow::Owned(clean) = dereverberated(&wave, sample_rate) {
                                    wave = clean;
                                }
                            }
                            wave
                        };
                        let wave = heard(wave);
                        let pipeline = if self.vtlp_pipelines.is_empty() {
                            &self.pipeline
                        } else {
                            &self.vtlp_pipelines[rng.gen_range(0..self.vtlp_pipelines.len())]
                        };
                        // The teacher hears the cleaner copy as the network hears the degraded
                        // one: the same band limit, dereverberation and warp.
                        teacher_features = clean_wave.map(|clean| pipeline.compute(&heard(clean)));
                        pipeline.compute(&wave)
                    }
                };
                spec_augment(&mut features, augment, &mut rng);
                // Non-speech in place of the utterance: nothing to recognise.
                let target = if has_speech {
                    self.train[i].phones.clone()
                } else {
                    Vec::new()
                };
                Example {
                    features,
                    target,
                    clean_features: teacher_features,
                }
            })
            .collect();
        let lengths: Vec<usize> = examples.iter().map(|e| e.features.nrows()).collect();
        let groups = split_to_budget(&lengths, options.batch_frames);
        let mut examples: Vec<_> = examples.into_iter().map(Some).collect();
        groups
            .iter()
            .map(|group| {
                let mut update = Update::default();
                let mut clean = Vec::new();
                for &j in group {
                    let example = examples[j].take().unwrap_or_default();
                    update.features.push(example.features);
                    update.targets.push(example.target);
                    clean.push(example.clean_features);
                }
                update.teacher = match teacher {
                    Some(teacher) => teacher_log_probs(teacher, &clean)?,
                    None => vec![None; clean.len()],
                };
                Ok(update)
            })
            .collect()
    }
}

fn best_of(schedule: &Schedule) -> Option<(f64, usize)> {
    schedule
        .best_per
        .map(|per| (per, schedule.best_epoch.map_or(0, |e| e + 1)))
}

/// The teacher's log-posteriors of the utterances that have a cleaner copy, in one padded batch.
fn teacher_log_probs(
    teacher: &Blstm,
    clean: &[Option<Array2<f32>>],
) -> Result<Vec<Option<Array2<f32>>>> {
    let views: Vec<_> = clean.iter().flatten().map(|f| f.view()).collect();
    if views.is_empty() {
        return Ok(vec![None; clean.len()]);
    }
    let mut log_probs = teacher.log_probs_batch(&views)?.into_iter();
    Ok(clean
        .iter()
        .map(|c| c.as_ref().and_then(|_| log_probs.next()))
        .collect())
}

/// The distillation term of an update, scaled as the CTC loss is: per utterance the cross-entropy
/// of the network's posteriors against the teacher's, summed over the frames both have and divided
/// by the label count (at least 1), then averaged over the batch's utterances, times `weight`.
/// None when no utterance has a teacher's posteriors.
fn distillation_loss(
    logits: &Tensor,
    teacher: &[Option<Array2<f32>>],
    targets: &[Vec<PhoneId>],
    output_lengths: &[usize],
    weight: f32,
) -> candle_core::Result<Option<Tensor>> {
    if weight <= 0.0 || teacher.iter().all(Option::is_none) {
        return Ok(None);
    }
    let (batch, steps, classes) = logits.dims3()?;
    let mut soft = vec![0f32; batch * steps * classes];
    for (b, log_probs) in teacher.iter().enumerate() {
        let Some(log_probs) = log_probs else { continue };
        if log_probs.ncols() != classes {
            candle_core::bail!(
                "the teacher gives {} classes, the network {classes}",
                log_probs.ncols()
            );
        }
        let scale = weight / (targets[b].len().max(1) * batch) as f32;
        let frames = log_probs.nrows().min(output_lengths[b]).min(steps);
        for (t, row) in log_probs.outer_iter().take(frames).enumerate() {
            let start = (b * steps + t) * classes;
            for (q, &lp) in soft[start..start + classes].iter_mut().zip(row) {
                *q = lp.exp() * scale;
            }
        }
    }
    let soft = Tensor::from_vec(soft, (batch, steps, classes), logits.device())?;
    let log_softmax = candle_nn::ops::log_softmax(logits, candle_core::D::Minus1)?;
    Ok(Some((soft * log_softmax)?.sum_all()?.neg()?))
}

/// One update: forward, CTC loss (plus distillation), backward, clipping, optimizer step.
/// Non-finite batches are skipped.
fn train_batch(
    network: &Blstm,
    var_map: &VarMap,
    optimizer: &mut Optimizer,
    state: &mut TrainState,
    update: &Update,
    observer: &mut dyn TrainObserver,
) -> Result<()> {
    let options = &state.options;
    let (features, targets) = (&update.features, &update.targets);
    let views: Vec<_> = features.iter().map(|f| f.view()).collect();
    let (input, lengths) = features_to_tensor(&views)?;
    let output_lengths = network.output_lengths(&lengths);
    let noise = if options.weight_noise_std > 0.0 {
        Some(add_weight_noise(var_map, options.weight_noise_std)?)
    } else {
        None
    };
    let logits = network.forward_train(&input, &lengths, Some(&mut state.dropout))?;
    let ctc = ctc_loss(&logits, targets, &output_lengths, Reduction::Mean)?;
    // The epoch's reported loss stays the CTC loss alone, comparable across runs.
    let loss = ctc.loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let distillation = distillation_loss(
        &logits,
        &update.teacher,
        targets,
        &output_lengths,
        options.distill,
    )?;
    let (grads, loss) = match distillation {
        Some(term) => {
            let term_value = term.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let total = (&ctc.loss + term)?;
            // A non-finite distillation term skips the batch as a non-finite CTC loss does.
            let loss = if term_value.is_finite() {
                loss
            } else {
                term_value
            };
            (total.backward(), loss)
        }
        None => (ctc.loss.backward(), loss),
    };
    if let Some(originals) = noise {
        restore_weights(&originals)?;
    }
    let grads = grads?;
    let frames: usize = lengths.iter().sum();
    state.epoch_skipped_utterances += ctc.num_impossible;
    let applied = if loss.is_finite() {
        optimizer.set_learning_rate(state.schedule.learning_rate(state.updates));
        optimizer.step(&grads, options.clip_norm)?.applied
    } else {
        false
    };
    if applied {
        state.updates += 1;
        state.bad_batches_in_a_row = 0;
        // Reduction::Mean is the batch mean of per-utterance loss / length: weight it by utterances.
        state.epoch_loss_sum += loss * targets.len() as f64;
        state.epoch_utterances += targets.len();
        state.epoch_frames += frames;
    } else {
        state.bad_batches_in_a_row += 1;
        state.epoch_skipped_batches += 1;
        state.epoch_skipped_utterances += targets.len();
        // Where, so that the batch can be found again (batches are deterministic for a binary,
        // manifest and seed): epoch and batch 1-based as the progress lines count them.
        let what = if loss.is_finite() {
            match optimizer.first_non_finite_gradient(&grads) {
                Some(name) => format!("non-finite gradient (first in {name})"),
                None => "non-finite gradient".to_string(),
            }
        } else {
            "non-finite loss".to_string()
        };
        observer.on_problem(&format!(
            "skipped {} utterances of epoch {} batch {}: {what} (loss {loss})",
            targets.len(),
            state.epoch + 1,
            state.batch + 1
        ));
        if state.bad_batches_in_a_row >= options.max_bad_batches {
            return Err(Error::Training {
                reason: format!(
                    "{} batches in a row had a non-finite loss or gradient: the run diverged. \
                     Lower --lr or set --clip-norm, then resume from the last checkpoint",
                    state.bad_batches_in_a_row
                ),
            });
        }
    }
    Ok(())
}

/// Add N(0, std²) to every weight; returns the originals to restore after the backward pass.
fn add_weight_noise(var_map: &VarMap, std: f32) -> Result<Vec<(Var, Tensor)>> {
    let vars = trainable_vars(var_map)?;
    let mut originals = Vec::with_capacity(vars.len());
    for (_, var) in vars {
        let original = var.as_tensor().copy()?;
        let noise = Tensor::randn(0f32, std, original.shape(), original.device())?;
        var.set(&(&original + noise)?)?;
        originals.push((var, original));
    }
    Ok(originals)
}

fn restore_weights(originals: &[(Var, Tensor)]) -> Result<()> {
    for (var, original) in originals {
        var.set(original)?;
    }
    Ok(())
}

/// Dev loss (mean per phone) and greedy PER.
fn evaluate(
    network: &Blstm,
    features: &[Array2<f32>],
    data: &[Prepared],
    silence: Option<PhoneId>,
) -> Result<(f64, f64)> {
    /// Dev utterances per forward pass.
    const DEV_BATCH: usize = 16;
    let mut order: Vec<usize> = (0..features.len()).collect();
    order.sort_by_key(|&i| features[i].nrows());
    let decoder = GreedyDecoder;
    let mut stats = PerStats::new();
    let mut loss_sum = 0.0;
    let mut phones = 0usize;
    for chunk in order.chunks(DEV_BATCH) {
        let views: Vec<_> = chunk.iter().map(|&i| features[i].view()).collect();
        let (input, lengths) = features_to_tensor(&views)?;
        let output_lengths = network.output_lengths(&lengths);
        let logits = network.forward_train(&input, &lengths, None)?;
        let targets: Vec<Vec<PhoneId>> = chunk.iter().map(|&i| data[i].phones.clone()).collect();
        let losses = ctc_loss(&logits, &targets, &output_lengths, Reduction::None)?
            .loss
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?;
        for (loss, target) in losses.iter().zip(&targets) {
            if loss.is_finite() {
                loss_sum += loss;
                phones += target.len();
            }
        }
        let log_probs = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1)?;
        for (b, &i) in chunk.iter().enumerate() {
            let rows = log_probs.get(b)?.narrow(0, 0, output_lengths[b])?;
            let (frames, classes) = rows.dims2()?;
            let values = rows.flatten_all()?.to_vec1::<f32>()?;
            let matrix = Array2::from_shape_vec((frames, classes), values)
                .map_err(|e| Error::Shape(e.to_string()))?;
            let hypothesis = decoder.decode(matrix.view());
            let keep = |p: &PhoneId| Some(*p) != silence;
            let reference: Vec<PhoneId> = data[i].phones.iter().copied().filter(keep).collect();
            let hypothesis: Vec<PhoneId> = hypothesis.into_iter().filter(keep).collect();
            stats.add(&reference, &hypothesis);
        }
    }
    Ok((loss_sum / phones.max(1) as f64, stats.per()))
}

/// `wave` as recognition's `--dereverb auto` passes it to the features: dereverberated where it
/// measures reverberant, else as it is.
fn dereverberated(wave: &[f32], rate: u32) -> Cow<'_, [f32]> {
    match crate::audio::dereverberate_reverberant_sections(wave, rate) {
        Some(samples) => Cow::Owned(samples),
        None => Cow::Borrowed(wave),
    }
}

/// `wave` (at `rate`) without what lies above the band of audio recorded at `source_rate`: noise and
/// reverberation that augmentation added to an 8 kHz recording resampled to 16 kHz would otherwise
/// fill its empty 4–8 kHz band, which that recording never has at recognition time. A round trip
/// through the source rate (the resampler's anti-aliasing filter is the low-pass), cut or padded to
/// the input's length.
fn band_limit(wave: &[f32], rate: u32, source_rate: u32) -> Vec<f32> {
    let round_trip = crate::audio::resample(wave, rate, source_rate)
        .and_then(|narrow| crate::audio::resample(&narrow, source_rate, rate));
    match round_trip {
        Ok(mut limited) => {
            limited.resize(wave.len(), 0.0);
            limited
        }
        // Rates were checked when the audio was read; should the resampler refuse, keep the wave.
        Err(_) => wave.to_vec(),
    }
}

/// Read, resample and check every utterance; unreadable audio and utterances too short for their labels
/// are reported and skipped.
fn prepare(
    utterances: &[Utterance],
    pipeline: &FeaturePipeline,
    network: &Blstm,
    observer: &mut dyn TrainObserver,
) -> Vec<Prepared> {
    let rate = pipeline.sample_rate_hz();
    let frame = pipeline.options().frame().clone();
    // A chunk of utterances at a time, each file in it read once however many of them (Kaldi
    // segments) it holds; chunks keep the audio held at its source rate (44.1 kHz, say) to a few
    // hundred utterances' worth before resampling.
    let reader = crate::audio::PieceReader::default();
    let results: Vec<std::result::Result<Prepared, String>> = utterances
        .chunks(PREPARE_CHUNK)
        .flat_map(|chunk| {
            let pieces: Vec<_> = chunk.iter().map(Utterance::piece).collect();
            let sources = reader.read(&pieces);
            chunk
                .par_iter()
                .zip(sources)
                .map(|(utt, source)| prepare_one(utt, source, rate, &frame, network))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut prepared = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(p) => prepared.push(p),
            Err(message) => observer.on_problem(&message),
        }
    }
    prepared
}

/// Utterances read together by [`prepare`].
const PREPARE_CHUNK: usize = 256;

/// One utterance resampled and checked against its labels, or why it is skipped.
fn prepare_one(
    utt: &Utterance,
    source: crate::Result<crate::audio::Waveform>,
    rate: u32,
    frame: &crate::features::FrameOptions,
    network: &Blstm,
) -> std::result::Result<Prepared, String> {
    let mut source = source.map_err(|e| format!("skipped {}: {e}", utt.id))?;
    // As recognition does (`RecognizerOptions::narrowband_as_8k`): 8 kHz audio stored at a higher
    // rate is trained on as the 8 kHz recording it is, so that a model trained on such files hears
    // them at recognition time as it heard them here.
    if let Some(narrow) = crate::audio::narrowband_rate_hz(&source.samples, source.sample_rate_hz) {
        source = source
            .resampled(narrow)
            .map_err(|e| format!("skipped {}: {e}", utt.id))?;
    }
    let source_rate = source.sample_rate_hz;
    // As recognition does before anything measures a level: augmentation's silence padding next
    // to an offset would make a step, and its SNRs would count the offset as signal. A recording
    // without an offset that matters is left exactly as it was.
    crate::audio::remove_dc_offset(&mut source.samples, source_rate);
    let wave = source
        .resampled(rate)
        .map_err(|e| format!("skipped {}: {e}", utt.id))?;
    let num_frames = crate::features::num_frames(wave.samples.len(), frame);
    let steps = network.config().output_frames(num_frames);
    let needed = min_frames(&utt.phones);
    if steps < needed {
        return Err(format!(
            "skipped {} ({}): {} network steps cannot hold {} labels (CTC needs one step per \
                     label plus one between repeats)",
            utt.id,
            utt.audio.display(),
            steps,
            utt.phones.len()
        ));
    }
    Ok(Prepared {
        wave: Arc::new(wave.samples),
        narrowband_source_hz: (source_rate < rate).then_some(source_rate),
        phones: utt.phones.clone(),
        num_frames,
    })
}

/// All variables of a `VarMap` by name.
pub(super) fn trainable_vars(var_map: &VarMap) -> Result<Vec<(String, Var)>> {
    let vars = var_map.data().lock().map_err(|_| Error::Training {
        reason: "the variable map's lock is poisoned".to_string(),
    })?;
    Ok(vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The variables the optimizer updates: all but those of the lowest `freeze_layers` LSTM layers.
fn updated_vars(var_map: &VarMap, freeze_layers: usize) -> Result<Vec<(String, Var)>> {
    let frozen: Vec<String> = (0..freeze_layers)
        .map(|layer| format!("{}.", crate::model::lstm_layer_prefix(layer)))
        .collect();
    Ok(trainable_vars(var_map)?
        .into_iter()
        .filter(|(name, _)| !frozen.iter().any(|prefix| name.starts_with(prefix)))
        .collect())
}

/// The model a fine-tune starts from: held in memory (`bytes`, e.g. a binary's built-in model, then
/// `init_from` only names it) or read from the file `init_from`; None for a new network.
fn starting_model(
    bytes: Option<ModelBytes>,
    init_from: Option<&Path>,
) -> Result<Option<ModelFile>> {
    Ok(match (bytes, init_from) {
        (Some(bytes), name) => Some(ModelFile::load_from_bytes(
            bytes.0,
            &name.unwrap_or(Path::new("<model>")).to_string_lossy(),
        )?),
        (None, Some(path)) => Some(ModelFile::load(path)?),
        (None, None) => None,
    })
}

/// A distilling run's teacher on resume: its starting model again, from the bytes the caller holds
/// (a binary's built-in model) or from the file the run started from.
fn resumed_teacher(options: &TrainOptions, init_from_bytes: Option<ModelBytes>) -> Result<Blstm> {
    let path = options.init_from.as_deref();
    let start = match (init_from_bytes, path) {
        // `builtin` and other names of models that were held in memory are not files to read.
        (None, Some(file)) if !file.is_file() => None,
        _ => starting_model(init_from_bytes, path)?,
    };
    let Some(start) = start else {
        return Err(Error::Training {
            reason: format!(
                "the run distils from its starting model ({}), which is needed again to resume: \
                 resume with the run's command line, --init-from included",
                path.map_or("none recorded".into(), |p| p.display().to_string())
            ),
        });
    };
    Ok(network_from_tensors(&options.network, start.weights())?.0)
}

/// A network and its variables from saved tensors.
fn network_from_tensors(
    config: &NetworkConfig,
    tensors: &HashMap<String, Tensor>,
) -> Result<(Blstm, VarMap)> {
    let var_map = VarMap::new();
    {
        let mut vars = var_map.data().lock().map_err(|_| Error::Training {
            reason: "the variable map's lock is poisoned".to_string(),
        })?;
        for spec in crate::model::expected_tensors(config) {
            let tensor = tensors.get(&spec.name).ok_or_else(|| Error::Training {
                reason: format!("the checkpoint lacks the weight '{}'", spec.name),
            })?;
            vars.insert(spec.name.clone(), Var::from_tensor(tensor)?);
        }
    }
    let network = Blstm::new(
        config,
        candle_nn::VarBuilder::from_varmap(&var_map, DType::F32, &Device::Cpu),
    )?;
    Ok((network, var_map))
}

#[cfg(test)]
mod tests {
    use super::{band_limit, dereverberated, distillation_loss, Cow};
    use crate::phones::PhoneId;
    use candle_core::{Device, Tensor, Var};
    use ndarray::Array2;

    #[test]
    fn distillation_is_the_cross_entropy_to_the_teacher_and_its_gradient_softmax_minus_teacher() {
        // Two utterances of 3 and 2 output steps, 4 classes; only the first has a teacher, and
        // it covers 2 of its 3 steps (a degraded copy one frame longer than its clean one).
        let (batch, steps, classes) = (2, 3, 4);
        let values: Vec<f32> = (0..batch * steps * classes)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3)
            .collect();
        let logits = Var::from_vec(values.clone(), (batch, steps, classes), &Device::Cpu).unwrap();
        let teacher_probs = [[0.7f32, 0.1, 0.1, 0.1], [0.25, 0.25, 0.4, 0.1]];
        let teacher = Array2::from_shape_fn((2, classes), |(t, c)| teacher_probs[t][c].ln());
        let targets = vec![vec![PhoneId(1), PhoneId(2)], vec![PhoneId(3)]];
        let weight = 1.5;
        let term = distillation_loss(
            logits.as_tensor(),
            &[Some(teacher), None],
            &targets,
            &[3, 2],
            weight,
        )
        .unwrap()
        .expect("one utterance has a teacher");
        let softmax = |t: usize| -> Vec<f64> {
            let row = &values[t * classes..(t + 1) * classes];
            let z: f64 = row.iter().map(|&v| f64::from(v).exp()).sum();
            row.iter().map(|&v| f64::from(v).exp() / z).collect()
        };
        // Scaled as Reduction::Mean scales CTC: / labels (2) / utterances (2).
        let scale = f64::from(weight) / (2.0 * 2.0);
        let expected: f64 = (0..2)
            .map(|t| {
                let p = softmax(t);
                -(0..classes)
                    .map(|c| f64::from(teacher_probs[t][c]) * p[c].ln())
                    .sum::<f64>()
            })
            .sum::<f64>()
            * scale;
        let got = f64::from(term.to_scalar::<f32>().unwrap());
        assert!((got - expected).abs() < 1e-5, "{got} against {expected}");
        let grads = term.backward().unwrap();
        let grad = grads.get(&logits).unwrap().flatten_all().unwrap();
        let grad = grad.to_vec1::<f32>().unwrap();
        for t in 0..batch * steps {
            for c in 0..classes {
                let want = if t < 2 {
                    (softmax(t)[c] - f64::from(teacher_probs[t][c])) * scale
                } else {
                    0.0 // the frame past the teacher's, and the utterance without one
                };
                let g = f64::from(grad[t * classes + c]);
                assert!(
                    (g - want).abs() < 1e-6,
                    "step {t} class {c}: {g} against {want}"
                );
            }
        }
        // Nothing to distil: no term.
        let none = distillation_loss(logits.as_tensor(), &[None, None], &targets, &[3, 2], weight);
        assert!(none.unwrap().is_none());
        let zero = Tensor::zeros((1, 1, classes), candle_core::DType::F32, &Device::Cpu).unwrap();
        let off = distillation_loss(&zero, &[None], &targets[..1], &[1], 0.0).unwrap();
        assert!(off.is_none());
    }

    fn tone(hz: f32, len: usize) -> Vec<f32> {
        (0..len)
            .map(|n| 1000.0 * (std::f32::consts::TAU * hz * n as f32 / 16_000.0).sin())
            .collect()
    }

    fn power(x: &[f32]) -> f64 {
        x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64
    }

    #[test]
    fn band_limit_keeps_the_source_band_and_removes_what_is_above_it() {
        let len = 16_000;
        // Away from the edges, where the filter has no full support.
        let middle = 1000..len - 1000;
        let speech_band = tone(1000.0, len);
        let limited = band_limit(&speech_band, 16_000, 8_000);
        assert_eq!(limited.len(), len);
        let error: Vec<f32> = limited[middle.clone()]
            .iter()
            .zip(&speech_band[middle.clone()])
            .map(|(a, b)| a - b)
            .collect();
        assert!(
            power(&error) < 1e-4 * power(&speech_band),
            "1 kHz changed: {}",
            power(&error) / power(&speech_band)
        );
        let above = tone(6000.0, len);
        let removed = band_limit(&above, 16_000, 8_000);
        assert!(
            power(&removed[middle.clone()]) < 1e-4 * power(&above),
            "6 kHz kept: {}",
            power(&removed[middle]) / power(&above)
        );
    }

    #[test]
    fn training_dereverberates_what_recognition_would() {
        use crate::train::conditions::convolve_keeping_power;
        use crate::train::room::Room;
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        // 5 s of syllable-like noise bursts, 100 ms on and 300 ms off: dry, it is passed on as
        // it is (not copied).
        let dry: Vec<f32> = (0..5 * 16_000)
            .map(|i| {
                if i % 6400 < 1600 {
                    rng.gen_range(-3000.0..3000.0)
                } else {
                    0.0
                }
            })
            .collect();
        assert!(matches!(dereverberated(&dry, 16_000), Cow::Borrowed(_)));
        // The talker 3 m from the microphone in a 6 × 5 m room with 0.7 s of reverberation.
        let room = Room {
            size: [6.0, 5.0, 3.0],
            source: [1.5, 2.0, 1.5],
            microphone: [4.5, 3.0, 1.2],
            rt60_s: 0.7,
        };
        let wet = convolve_keeping_power(&dry, &room.impulse_response(16_000, &mut rng));
        let heard = dereverberated(&wet, 16_000);
        assert!(matches!(heard, Cow::Owned(_)), "a room is dereverberated");
        assert_eq!(heard.len(), wet.len());
        // What recognition's `--dereverb auto` would feed the features, sample for sample.
        assert_eq!(&*heard, &crate::audio::dereverberate(&wet, 16_000)[..]);
    }

    #[test]
    fn training_audio_loses_its_dc_offset_as_recognised_audio_does() {
        use crate::audio::Waveform;
        use crate::model::{Blstm, InitOptions, NetworkConfig};
        use crate::phones::PhoneId;
        use rand::{Rng, SeedableRng};
        let config = NetworkConfig {
            input_dim: 80,
            num_layers: 1,
            hidden_size: 4,
            dropout: 0.0,
            num_outputs: 40,
            stack_frames: 1,
        };
        let (network, _vars) = Blstm::trainable(&config, &InitOptions::default()).unwrap();
        let utterance = crate::data::Utterance {
            id: "offset".to_string(),
            audio: "offset.wav".into(),
            span: None,
            phones: vec![PhoneId(1), PhoneId(2), PhoneId(3)],
            channel: None,
        };
        let frame = crate::features::FeatureOptions::default().frame().clone();
        // Syllables of speech over a faint hiss, 8 kHz, all of it 2000 over zero.
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let clean: Vec<f32> = (0..16_000)
            .map(|i| {
                let loud = if (i / 2000) % 2 == 0 { 3000.0 } else { 10.0 };
                rng.gen_range(-loud..loud)
            })
            .collect();
        let with_offset: Vec<f32> = clean.iter().map(|v| v + 2000.0).collect();
        let prepare = |samples: Vec<f32>| {
            let source = Ok(Waveform {
                samples,
                sample_rate_hz: 8000,
            });
            super::prepare_one(&utterance, source, 16_000, &frame, &network)
                .map(|p| p.wave)
                .unwrap()
        };
        let from_clean = prepare(clean);
        let from_offset = prepare(with_offset);
        assert_eq!(from_clean.len(), from_offset.len());
        let mean = |x: &[f32]| x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
        assert!(
            mean(&from_offset).abs() < 5.0,
            "mean {}",
            mean(&from_offset)
        );
        // The pauses are hiss again, not 2000: what augmentation and the features will see.
        let pause = 4100..7900;
        let rms = |x: &[f32]| {
            (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
        };
        assert!(
            rms(&from_offset[pause.clone()]) < 3.0 * rms(&from_clean[pause.clone()]),
            "pause RMS {} against {}",
            rms(&from_offset[pause.clone()]),
            rms(&from_clean[pause])
        );
    }
}
