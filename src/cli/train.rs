//! `phonrec train`: labeled audio -> a model of one's own, with checkpoints, resume and early stopping.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use phonrec::choice::Choice;
use phonrec::data::{Dataset, TimitSplit};
use phonrec::features::{BaseFeatures, CmvnOptions, DeltaOptions, FeatureOptions};
use phonrec::model::{InitOptions, NetworkConfig, Precision, WeightInit};
use phonrec::phones::PhoneSet;
use phonrec::train::{
    checkpoint_run_info, train, AugmentOptions, BatchProgress, EpochStats, ModelBytes,
    OptimizerKind, OptimizerOptions, RunStart, ScheduleOptions, TrainObserver, TrainOptions,
    TrainOutcome, ALL_BLANK_PER, BEST_MODEL_FILE, MUSIC_NON_SPEECH_SHARE,
};
use serde_json::json;

use super::choice::{choice, choice_among};
use super::common::{
    built_in_model_bytes, built_in_model_fingerprint, data_source, load_data, CmvnFrames, DataArgs,
    FeatureKind,
};

/// Augmentation preset.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum AugmentPreset {
    /// No augmentation.
    Off,
    /// Speed 0.9–1.1, ±6 dB gain, noise at 5–35 dB SNR on half the utterances, SpecAugment 2+2 masks.
    Standard,
    /// Standard plus ordinary recording conditions: leading/trailing silence (½ of utterances; half
    /// of those cut hard, with their own noise floor), pauses (¼), noise floors −80..−40 dBFS (0.4),
    /// white/pink/brown/hum/babble noise at 0–30 dB (0.35), reverberation (0.15), telephone channel
    /// (8 kHz, ~300–3400 Hz band-pass, μ-law/A-law/GSM-like; 0.2), clipping, and non-speech clips
    /// with empty labels (4 %: silence, floors, noise, hum, beeps, music, warbling tones, sweeps).
    /// For models that must handle real recordings.
    Robust,
}

/// Train a phoneme recognizer with CTC.
///
/// With a few hundred or thousand utterances of your own, fine-tune the built-in model:
/// `phonrec train --train T --dev D --out O --init-from builtin`, then decode with `--model
/// O/best.safetensors --lm builtin`. The defaults fit the run to the data (batch size, epochs,
/// warm-up; printed at the start).
///
/// Data: a manifest (TSV `audio<TAB>phones`, paths relative to the manifest, or JSON Lines), a TIMIT
/// root (TRAIN/ for --train, TEST/ for --dev), or a Kaldi data dir (words to phones by --lexicon,
/// else the built-in CMUdict; a `text` of phones, as Kaldi's TIMIT recipe writes, is read as
/// phones). Every epoch writes OUT/checkpoint.safetensors, appends a line to OUT/metrics.jsonl, and keeps the model with the best
/// dev PER (among equal PERs, the lowest dev loss) as OUT/best.safetensors (a fine-tune's starting model, scored on dev before the first update, stays there until an epoch does better). Ctrl-C writes a checkpoint and exits; a killed run resumes the
/// same way (the metrics log is rebuilt from the checkpoint). Resume with `--resume OUT` alone, or
/// with the run's original command line plus `--resume` (options that differ from the run's are
/// refused, naming them); `--epochs N` then sets a new epoch limit, which extends a finished run.
/// One process trains in a folder at a time, and a folder that holds a run is refused unless --force.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training data.
    #[arg(long, required_unless_present = "resume")]
    pub train: Option<PathBuf>,

    /// Dev data for PER, the learning-rate schedule and early stopping.
    #[arg(long, required_unless_present = "resume")]
    pub dev: Option<PathBuf>,

    /// Output folder for checkpoints, metrics and the best model.
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,

    /// Continue the run in this folder (or, without a folder, in --out) from its checkpoint, with the
    /// options and data it was started with.
    #[arg(long, num_args = 0..=1, value_name = "DIR")]
    pub resume: Option<Option<PathBuf>>,

    /// Start over in an --out folder that already holds a run, replacing its checkpoint, metrics and
    /// best model (without it, such a folder is refused).
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,

    #[command(flatten)]
    pub data: DataArgs,

    /// Custom phone inventory (one phone per line) [default: the 39 TIMIT-folded phones].
    #[arg(long)]
    pub phones: Option<PathBuf>,

    /// Bidirectional LSTM layers.
    #[arg(long, default_value_t = 3)]
    pub layers: usize,

    /// LSTM units per direction.
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,

    /// Dropout between LSTM layers [default: 0.4 from scratch (on a few speakers' data it
    /// generalised to a new speaker much better than 0.2: models/README.md), 0.2 with --init-from
    /// (the built-in model's own training setting)].
    #[arg(long)]
    pub dropout: Option<f32>,

    /// Frames stacked per network step (stride equal): 2–3 trains and decodes that much faster.
    #[arg(long, default_value_t = 2)]
    pub stack_frames: usize,

    /// Base features.
    #[arg(long, value_enum, default_value_t = FeatureKind::Fbank)]
    pub features: FeatureKind,

    /// Mel bins [default: the library's, 80 for fbank, 23 for mfcc].
    #[arg(long)]
    pub num_mel_bins: Option<usize>,

    /// Sample rate the model works at; audio is resampled to it.
    #[arg(long, default_value_t = 16_000)]
    pub sample_rate: u32,

    /// Append deltas and delta-deltas.
    #[arg(long)]
    pub deltas: bool,

    /// Turn off per-utterance mean normalisation.
    #[arg(long)]
    pub no_cmvn: bool,

    /// Frames the per-utterance mean is estimated on: `loud` (within 30 dB of the loud frames, so
    /// silence, pauses and noise floors do not shift the speech) or `all` (Kaldi's apply-cmvn).
    /// With --init-from, changes the starting model's setting.
    #[arg(long, value_enum, default_value_t = CmvnFrames::Loud)]
    pub cmvn_frames: CmvnFrames,

    /// Also divide each feature dimension by its per-utterance standard deviation (Kaldi's
    /// `apply-cmvn --norm-vars`). Ignored with --init-from (the starting model's setting is kept).
    #[arg(long, conflicts_with = "no_cmvn")]
    pub norm_vars: bool,

    /// Gaussian dither std in int16 units, seeded (reproducible): gives digital silence a defined
    /// noise floor, as Kaldi's default of 1. With --init-from, changes the starting model's setting.
    #[arg(long, default_value_t = 1.0)]
    pub dither: f32,

    /// Maximum epochs [default: 20, raised on small data until the run has 3000 updates, 600 with
    /// --init-from]. Whether or not it is given, batches on small data are made small enough for
    /// 8 per epoch (--batch-utterances is the upper limit). With
    /// --resume, a new limit for the run (raise it to extend a finished run).
    #[arg(long)]
    pub epochs: Option<usize>,

    /// Padded frames per batch (batch size × longest utterance).
    #[arg(long, default_value_t = 8000)]
    pub batch_frames: usize,

    /// Most utterances per batch (0: no limit besides --batch-frames). Keeps short clips (digits)
    /// from making a few huge batches and too few updates.
    #[arg(long, default_value_t = 32)]
    pub batch_utterances: usize,

    /// Peak learning rate [default: 1e-3 from scratch, 1e-4 with --init-from].
    #[arg(long)]
    pub lr: Option<f64>,

    /// Updates of linear learning-rate warm-up [default: 200, or 5 % of the run if that is fewer].
    #[arg(long)]
    pub warmup: Option<u64>,

    /// Update rule.
    #[arg(long, value_parser = choice::<OptimizerKind>(), default_value = OptimizerKind::default().name())]
    pub optimizer: OptimizerKind,

    /// Weight decay (decoupled for AdamW).
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,

    /// Clip the global gradient norm to this (0 disables).
    #[arg(long, default_value_t = 5.0)]
    pub clip_norm: f64,

    /// Initialisation of the weights.
    #[arg(long, value_parser = choice::<WeightInit>(), default_value = InitOptions::default().weights.name())]
    pub init: WeightInit,

    /// Draw recurrent weights like the input weights instead of as orthogonal matrices.
    #[arg(long)]
    pub no_orthogonal: bool,

    /// Epochs without dev improvement before the learning rate is halved (and at least 300 updates,
    /// 100 with --init-from; never while the dev PER is 100 % or more, CTC's all-blank start).
    #[arg(long, default_value_t = 1)]
    pub patience: usize,

    /// Epochs without dev improvement before training stops (and at least 1200 updates, 300 with
    /// --init-from; never while the dev PER is 100 % or more).
    #[arg(long, default_value_t = 4)]
    pub early_stop: usize,

    /// Augmentation preset [default: robust with --init-from (the conditions the built-in model was
    /// trained for, so fine-tuning keeps them; on FSDD it also generalised better to a new speaker),
    /// off from scratch].
    #[arg(long, value_enum)]
    pub augment: Option<AugmentPreset>,

    /// Vocal-tract-length perturbation: warp each utterance's mel filters by a random factor in
    /// 1 ± VTLP (Jaitly & Hinton 2013; 0.1 is typical); 0 = off. Combines with --augment
    /// [default: 0.2 with --init-from, as the built-in model was trained; 0 from scratch].
    #[arg(long)]
    pub vtlp: Option<f32>,

    /// With --augment robust: the share of utterances passed through a telephone channel
    /// (8 kHz, band-pass, codecs) instead of the preset's 0.2. More telephone audio helps
    /// narrowband input and can cost some wideband accuracy: measure both.
    #[arg(long, value_name = "P")]
    pub telephone: Option<f32>,

    /// With --augment robust: the share of utterances driven past full scale and clipped (0.1-5 %
    /// of their samples), then repaired as recognition repairs clipped input, instead of the
    /// preset's 0.03.
    #[arg(long, value_name = "P")]
    pub clip: Option<f32>,

    /// With --augment robust: the share of utterances reverberated (a decaying noise burst of RT60
    /// 0.15–0.9 s, or a simulated room with --room-reverb) instead of the preset's 0.15.
    #[arg(long, value_name = "P")]
    pub reverb: Option<f32>,

    /// With --augment robust: of the reverberated utterances, the share placed in a simulated room
    /// (early reflections by the image-source method, a tail that dies faster at high frequencies,
    /// a level set by the talker's distance of 0.3–3 m) instead of a decaying noise burst
    /// [default: 0, the preset's].
    #[arg(long, value_name = "P")]
    pub room_reverb: Option<f32>,

    /// Dereverberate the training recordings that sound reverberant (after their augmentation:
    /// --reverb, --room-reverb), as `transcribe --dereverb auto` does before the features, so the
    /// network learns from what it will hear: `auto`; `off` trains on them as they are
    /// [default: off: a two-epoch fine-tune of the built-in model with it recognised rooms no
    /// better than one without, models/README.md].
    #[arg(long, value_enum, value_name = "WHEN")]
    pub dereverb: Option<TrainDereverb>,

    /// With --augment robust: of the utterances whose edges are cut as from a longer recording,
    /// the share cut 0–40 ms into the speech itself, so the clip starts and ends at full level as
    /// trimmed corpora do (FSDD) [default: 0, the preset's].
    #[arg(long, value_name = "P")]
    pub speech_cut: Option<f32>,

    /// With --augment robust: of the utterances whose edges are cut as from a longer recording
    /// (with a noise floor of their own), the share also placed in a quieter floor, 6–30 dB below
    /// their own, so each edge is a step up in noise (short clips padded in a cleaner floor)
    /// [default: 0, the preset's].
    #[arg(long, value_name = "P")]
    pub floor_step: Option<f32>,

    /// With --augment robust: the share of utterances given a music bed (synthesised bass, pad,
    /// keyboard and drums, 5–30 dB under the speech); with it, a fifth of the non-speech
    /// utterances are music alone unless --music-alone says otherwise [default: 0, the preset's].
    #[arg(long, value_name = "P")]
    pub music: Option<f32>,

    /// With --augment robust: the share of the non-speech utterances that are a music bed alone,
    /// −35 to −10 dBFS, with empty labels [default: 0.2 with --music, else 0].
    #[arg(long, value_name = "S")]
    pub music_alone: Option<f32>,

    /// With --augment robust: the share of utterances put through a noise reducer's spectral gate
    /// after their noise (as sox's `noisered` or Audacity's Noise Reduction leave speech: cells
    /// under the noise cut out) [default: 0, the preset's].
    #[arg(long, value_name = "P")]
    pub denoise: Option<f32>,

    /// With --augment robust: the share of utterances given one or two discrete echoes, 6–20 dB
    /// down and 60–300 ms late (a speakerphone, a hard-walled hall) [default: 0, the preset's].
    #[arg(long, value_name = "P")]
    pub echo: Option<f32>,

    /// With --augment robust: the share of utterances with another talker (another training
    /// utterance) 8–25 dB under the speech, as a television or a colleague [default: 0, the
    /// preset's].
    #[arg(long, value_name = "P")]
    pub talker: Option<f32>,

    /// With --augment robust: the share of utterances with keyboard clicks under the speech, their
    /// peaks 0–20 dB under the speech's [default: 0, the preset's].
    #[arg(long, value_name = "P")]
    pub clicks: Option<f32>,

    /// With --augment robust: the share of utterances replaced by non-speech with empty labels
    /// (silence, floors, noise, hum, beeps, music, warbling tones, sweeps) instead of the preset's
    /// 0.04 [default: 0.04].
    #[arg(long, value_name = "P")]
    pub non_speech: Option<f32>,

    /// Fine-tune: start from this model's weights, or from the model built into phonrec with
    /// `builtin` (the route for small data: a few hundred utterances of one's own; a file named
    /// builtin is `./builtin`). Its features
    /// and architecture are used (--layers, --hidden, --stack-frames and the feature flags are then
    /// ignored, except --cmvn-frames and --dither, which set the fine-tuned model's input
    /// conditioning).
    #[arg(long, value_name = "MODEL|builtin")]
    pub init_from: Option<PathBuf>,

    /// Fine-tuning: keep the lowest N LSTM layers as they are (N ≥ the number of layers: only the
    /// output layer trains).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub freeze_layers: usize,

    /// Fine-tuning with --augment robust: weight of a teacher-student term (0: off). Each
    /// utterance that the recording conditions degraded (noise, floors, the telephone channel,
    /// clipping) is also run, as it was before them, through the frozen starting model, and the
    /// network learns to give the degraded copy the starting model's posteriors of the cleaner
    /// one (per-frame cross-entropy, scaled as the CTC loss; 1 weighs the two alike). Costs one
    /// more forward pass for those utterances. Measured on the built-in model: worse than the same
    /// fine-tune without it (models/README.md, "Teacher–student distillation").
    #[arg(long, default_value_t = 0.0, value_name = "W")]
    pub distill: f32,

    /// Arithmetic of the LSTM's products: f32, or bf16 (mixed precision: products of bf16 values
    /// summed in f32, the weights, gradients and optimizer in f32). It trains ~2x faster than f32
    /// on CPUs with AMX (Intel Xeon since Sapphire Rapids) and ~1.5x on AMD Zen 4/5; measured:
    /// the same held-out PER when fine-tuning, from scratch on FSDD a few points worse on average
    /// (BENCHMARKS.md). On Intel CPUs with AVX512-BF16 but no AMX (or AMX hidden by a VM) it runs
    /// at ~0.65x f32, and without AVX512-BF16 it is emulated, slower still [default: bf16 when
    /// fine-tuning (--init-from) on a CPU where bf16 outruns f32, measured at start, f32
    /// otherwise].
    #[arg(long, value_parser = choice_among::<Precision>(&["f32", "bf16"]).with_help(&[
        ("f32", "Products in f32 (the default from scratch, and where bf16 is not faster)"),
        ("bf16", "Mixed precision: bf16 products summed in f32 (the default when fine-tuning where bf16 outruns f32)"),
    ]))]
    pub precision: Option<Precision>,

    /// Also keep each epoch's model as OUT/epoch-NNN.safetensors, to average the last few with
    /// `phonrec average` (as f32: 16 MB each for 3 × 256 units, 24.7 MB for the built-in model's
    /// 3 × 320 when fine-tuning it).
    #[arg(long)]
    pub save_epoch_models: bool,

    /// Gaussian weight noise std per batch (Graves et al. 2013); 0 = off.
    #[arg(long, default_value_t = 0.0)]
    pub weight_noise: f32,

    /// Seed of initialisation, batching, augmentation and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Also checkpoint every this many seconds within an epoch (0 = epoch ends only).
    #[arg(long, default_value_t = 600)]
    pub checkpoint_every: u64,

    /// Do not draw a progress bar (one line per epoch only).
    #[arg(long)]
    pub quiet: bool,
}

/// The default peak learning rate when fine-tuning: a tenth of the from-scratch rate, the rate the
/// built-in model's own last fine-tunes ran at (5e-5 to 1e-4), so a few speakers' data does not wash
/// out what it knows. From default-v15 on FSDD with a speaker held out (six pairs of runs, 40 to
/// 1350 clips) 1e-4 kept the new speaker 0.7 points better than 3e-4 on average (models/README.md).
const FINE_TUNE_LR: f64 = 1e-4;

/// Fine-tuning starts from a model that already outputs phones: it needs far fewer updates than a
/// network from scratch (3000, 300 and 1200 by default), and more would mostly overfit small data.
const FINE_TUNE_MIN_UPDATES: u64 = 600;
const FINE_TUNE_PATIENCE_UPDATES: u64 = 100;
const FINE_TUNE_EARLY_STOP_UPDATES: u64 = 300;

/// VTLP when fine-tuning (the built-in model's own training setting).
const FINE_TUNE_VTLP: f32 = 0.2;

/// Dropout between LSTM layers from scratch: user data is mostly a few speakers, and a network of the
/// default size learns their voices; with FSDD's three training speakers 0.4 cut the held-out
/// speaker's PER by 5–7 points against 0.2 (models/README.md, learning curves).
const SCRATCH_DROPOUT: f32 = 0.4;

/// Dropout when fine-tuning (the built-in model's own training setting).
const FINE_TUNE_DROPOUT: f32 = 0.2;

/// `--init-from` names the built-in model with this.
const BUILT_IN_INIT: &str = "builtin";

impl TrainArgs {
    /// The built-in model's bytes when `--init-from builtin` asks for them.
    fn init_from_built_in(&self) -> Option<&'static [u8]> {
        self.init_from
            .as_deref()
            .filter(|p| *p == Path::new(BUILT_IN_INIT))
            .and(built_in_model_bytes())
    }

    /// `--precision`, or its default: bf16 when fine-tuning on a CPU where bf16 outruns f32 (AMX,
    /// or a full-rate `vdpbf16ps` as on AMD Zen 4: fine-tuning is the small-data route, and there
    /// bf16 measured the same held-out PER at 1.5–2 times the speed; from scratch it measured a
    /// few points worse), f32 otherwise (Intel cores without AMX run bf16 training at 0.65× f32).
    fn training_precision(&self) -> Precision {
        self.precision
            .unwrap_or(if self.init_from.is_some() && phonrec::model::bf16_fast() {
                Precision::Bf16
            } else {
                Precision::F32
            })
    }

    fn train_options(&self) -> TrainOptions {
        let frame = phonrec::features::FrameOptions {
            sample_rate_hz: self.sample_rate,
            dither: self.dither,
            ..Default::default()
        };
        let mut base = self.features.defaults();
        let (base_frame, mel) = match &mut base {
            BaseFeatures::Fbank(o) => (&mut o.frame, &mut o.mel),
            BaseFeatures::Mfcc(o) => (&mut o.frame, &mut o.mel),
        };
        *base_frame = frame;
        mel.num_bins = self.num_mel_bins.unwrap_or(mel.num_bins);
        TrainOptions {
            features: FeatureOptions {
                base,
                deltas: self.deltas.then(DeltaOptions::default),
                cmvn: (!self.no_cmvn).then(|| CmvnOptions {
                    statistics: self.cmvn_frames.statistics(),
                    normalize_variance: self.norm_vars,
                }),
            },
            network: NetworkConfig {
                num_layers: self.layers,
                hidden_size: self.hidden,
                dropout: self.dropout.unwrap_or(if self.init_from.is_some() {
                    FINE_TUNE_DROPOUT
                } else {
                    SCRATCH_DROPOUT
                }),
                stack_frames: self.stack_frames,
                ..NetworkConfig::default()
            },
            init: InitOptions {
                weights: self.init,
                orthogonal_recurrent: !self.no_orthogonal,
                ..InitOptions::default()
            },
            optimizer: OptimizerOptions {
                kind: self.optimizer,
                weight_decay: self.weight_decay,
                ..OptimizerOptions::default()
            },
            schedule: ScheduleOptions {
                learning_rate: self.lr.unwrap_or(if self.init_from.is_some() {
                    FINE_TUNE_LR
                } else {
                    ScheduleOptions::default().learning_rate
                }),
                warmup_updates: self
                    .warmup
                    .unwrap_or(ScheduleOptions::default().warmup_updates),
                warmup_fraction: match self.warmup {
                    Some(_) => None,
                    None => ScheduleOptions::default().warmup_fraction,
                },
                patience: self.patience,
                early_stop_patience: self.early_stop,
                patience_updates: if self.init_from.is_some() {
                    FINE_TUNE_PATIENCE_UPDATES
                } else {
                    ScheduleOptions::default().patience_updates
                },
                early_stop_updates: if self.init_from.is_some() {
                    FINE_TUNE_EARLY_STOP_UPDATES
                } else {
                    ScheduleOptions::default().early_stop_updates
                },
                ..ScheduleOptions::default()
            },
            augment: AugmentOptions {
                vtlp: self.vtlp.unwrap_or(if self.init_from.is_some() {
                    FINE_TUNE_VTLP
                } else {
                    0.0
                }),
                ..match self.augment.unwrap_or(if self.init_from.is_some() {
                    AugmentPreset::Robust
                } else {
                    AugmentPreset::Off
                }) {
                    AugmentPreset::Off => AugmentOptions::default(),
                    AugmentPreset::Standard => AugmentOptions::standard(),
                    AugmentPreset::Robust => {
                        let mut robust = AugmentOptions::robust();
                        if let Some(p) = self.telephone {
                            robust.conditions.telephone_probability = p;
                        }
                        if let Some(p) = self.clip {
                            robust.conditions.clip_probability = p;
                        }
                        if let Some(p) = self.reverb {
                            robust.conditions.reverb_probability = p;
                        }
                        if let Some(p) = self.room_reverb {
                            robust.conditions.room_reverb_share = p;
                        }
                        if let Some(p) = self.speech_cut {
                            robust.conditions.speech_cut_probability = p;
                        }
                        if let Some(p) = self.floor_step {
                            robust.conditions.floor_step_probability = p;
                        }
                        if let Some(p) = self.music {
                            robust.conditions.music_probability = p;
                            if p > 0.0 {
                                robust.conditions.music_alone_share = MUSIC_NON_SPEECH_SHARE;
                            }
                        }
                        if let Some(share) = self.music_alone {
                            robust.conditions.music_alone_share = share;
                        }
                        if let Some(p) = self.non_speech {
                            robust.conditions.non_speech_probability = p;
                        }
                        if let Some(p) = self.denoise {
                            robust.conditions.denoise_probability = p;
                        }
                        if let Some(p) = self.echo {
                            robust.conditions.echo_probability = p;
                        }
                        if let Some(p) = self.talker {
                            robust.conditions.talker_probability = p;
                        }
                        if let Some(p) = self.clicks {
                            robust.conditions.click_probability = p;
                        }
                        robust
                    }
                }
            },
            init_from: self.init_from.clone(),
            init_from_bytes: self.init_from_built_in().map(ModelBytes),
            dereverb: self.dereverb == Some(TrainDereverb::Auto),
            freeze_layers: self.freeze_layers,
            distill: self.distill,
            precision: self.training_precision(),
            save_epoch_models: self.save_epoch_models,
            epochs: self.epochs.unwrap_or(TrainOptions::default().epochs),
            min_updates: match (self.epochs, self.init_from.is_some()) {
                (Some(_), _) => 0,
                (None, true) => FINE_TUNE_MIN_UPDATES,
                (None, false) => TrainOptions::default().min_updates,
            },
            batch_frames: self.batch_frames,
            max_batch_utterances: self.batch_utterances,
            clip_norm: (self.clip_norm > 0.0).then_some(self.clip_norm),
            weight_noise_std: self.weight_noise,
            seed: self.seed,
            checkpoint_every_s: self.checkpoint_every,
            ..TrainOptions::default()
        }
    }
}

/// Draws training progress on stderr.
struct Progress {
    bar: Option<ProgressBar>,
    stop: Arc<AtomicBool>,
    quiet: bool,
    /// When stderr is not a terminal (a log file), a plain line every `LOG_EVERY` instead of a bar.
    last_log: Option<std::time::Instant>,
}

/// Interval between progress lines in a log file.
const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl TrainObserver for Progress {
    fn on_start(&mut self, epoch: usize, num_train: usize, num_dev: usize) {
        eprintln!(
            "phonrec: training on {num_train} utterances, dev {num_dev}; starting at epoch {epoch}"
        );
    }

    fn on_batch(&mut self, p: &BatchProgress) {
        if self.quiet {
            return;
        }
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let due = self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY);
            if due {
                self.last_log = Some(std::time::Instant::now());
                eprintln!(
                    "epoch {} batch {}/{}: loss {:.3}, {:.0} frames/s",
                    p.epoch, p.batch, p.num_batches, p.mean_loss, p.frames_per_s
                );
            }
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(p.num_batches as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} batches  {msg}  ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        bar.set_length(p.num_batches as u64);
        bar.set_prefix(p.epoch.to_string());
        bar.set_position(p.batch as u64);
        bar.set_message(format!(
            "loss {:.3}  {:.0} frames/s",
            p.mean_loss, p.frames_per_s
        ));
    }

    fn on_epoch(&mut self, s: &EpochStats) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!(
            "epoch {:>3}: train loss {:.3}  dev loss {:.3}  dev PER {:.2}%{}  lr {:.2e}  {:.0} s  {:.0} frames/s{}",
            s.epoch,
            s.train_loss,
            s.dev_loss,
            s.dev_per * 100.0,
            if s.improved { " (best)" } else { "" },
            s.lr,
            s.seconds,
            s.frames_per_s,
            if s.skipped_utterances > 0 {
                format!("  skipped {} utterances", s.skipped_utterances)
            } else {
                String::new()
            }
        );
    }

    fn on_note(&mut self, message: &str) {
        eprintln!("phonrec: {message}");
    }

    fn on_problem(&mut self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("phonrec: warning: {message}")),
            None => eprintln!("phonrec: warning: {message}"),
        }
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Arguments that may be given when resuming without being training options: where the run is, its
/// data (checked against the run's own), the new epoch limit and how progress is shown.
const RESUME_ARGUMENTS: &[&str] = &[
    "resume",
    "out",
    "train",
    "dev",
    "lexicon",
    "timit_core_test",
    "phones",
    "epochs",
    "quiet",
    "checkpoint_every",
];

/// Options that describe a network built from scratch: with --init-from the starting model's are
/// used, and these, when typed, are ignored.
const FROM_SCRATCH_OPTIONS: [&str; 11] = [
    "layers",
    "hidden",
    "stack_frames",
    "features",
    "num_mel_bins",
    "sample_rate",
    "deltas",
    "no_cmvn",
    "norm_vars",
    "init",
    "no_orthogonal",
];

/// Say which typed options --init-from ignores (its --help says so, but a user who typed
/// `--features mfcc` and got an fbank model deserves a word on the console).
fn warn_of_ignored_options(args: &TrainArgs, matches: Option<&clap::ArgMatches>) {
    let (Some(_), Some(matches)) = (&args.init_from, matches) else {
        return;
    };
    let typed: Vec<String> = FROM_SCRATCH_OPTIONS
        .iter()
        .filter(|id| {
            matches.try_get_raw(id).is_ok_and(|_| {
                matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
            })
        })
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    if !typed.is_empty() {
        eprintln!(
            "phonrec: warning: {} ignored: with --init-from the network and its features are the \
             starting model's",
            typed.join(", ")
        );
    }
}

/// Fine-tuning's speed-up from native bf16: measured on the FSDD folds of models/README.md.
const BF16_FINE_TUNE_NOTE: &str = "fine-tuning in mixed precision (bf16, faster than f32 on \
     this CPU: measured 1.5-2 times as fast as f32 with the same held-out PER, models/README.md); \
     --precision f32 for full precision";

pub fn run(args: TrainArgs, matches: Option<&clap::ArgMatches>) -> anyhow::Result<ExitCode> {
    let (out, start, recorded) = where_the_run_goes(&args, matches)?;
    let data = RunData::load(&args, &recorded)?;
    let mut options = args.train_options();
    if args.init_from.is_none() && started_from_built_in(&recorded) {
        // Resumed with `--resume DIR` alone: a run that started from this binary's model gets its
        // bytes again (a distilling run's teacher is that model, and the closing hint below names
        // the built-in LM). A run recorded as `builtin` is the built-in model: a file of that name
        // is recorded as `./builtin`.
        options.init_from_bytes = built_in_model_bytes().map(ModelBytes);
        warn_if_the_built_in_model_changed(&recorded);
    }
    if args.precision == Some(Precision::Int8) {
        bail!("--precision int8 is for inference (transcribe, eval): train in f32 or bf16");
    }
    if args.freeze_layers > 0 && args.init_from.is_none() {
        bail!(
            "--freeze-layers keeps trained layers as they are: it needs --init-from MODEL|builtin"
        );
    }
    let shares = [
        (args.telephone, "--telephone"),
        (args.clip, "--clip"),
        (args.reverb, "--reverb"),
        (args.room_reverb, "--room-reverb"),
        (args.speech_cut, "--speech-cut"),
        (args.floor_step, "--floor-step"),
        (args.music, "--music"),
        (args.music_alone, "--music-alone"),
        (args.non_speech, "--non-speech"),
        (args.denoise, "--denoise"),
        (args.echo, "--echo"),
        (args.talker, "--talker"),
        (args.clicks, "--clicks"),
    ];
    if let Some((_, flag)) = shares.iter().find(|(given, _)| given.is_some()) {
        if !options.augment.conditions.is_active() {
            bail!("{flag} sets a share of --augment robust: add --augment robust");
        }
    }
    if args.init_from.as_deref() == Some(Path::new(BUILT_IN_INIT))
        && options.init_from_bytes.is_none()
    {
        bail!(
            "--init-from builtin: this phonrec was built without a default model; pass the path of \
             a model file instead"
        );
    }
    let resuming = matches!(start, RunStart::Resume { .. });
    if !resuming {
        warn_of_ignored_options(&args, matches);
        if same_path(&data.train_path, &data.dev_path) {
            eprintln!(
                "phonrec: warning: the dev data is the training data ({}): dev PER then measures \
                 memory, not recognition of new speech, and early stopping and the best model \
                 follow it; hold some utterances (better: a speaker) out as --dev",
                data.dev_path.display()
            );
        }
    }
    if args.precision.is_none() && options.precision == Precision::Bf16 && !resuming && !args.quiet
    {
        eprintln!("phonrec: {BF16_FINE_TUNE_NOTE}");
    }
    let run_info = data.run_info(&options)?;
    let mut progress = Progress {
        bar: None,
        stop: stop_on_ctrl_c(),
        quiet: args.quiet,
        last_log: None,
    };
    let outcome = train(
        &data.train.utterances,
        &data.dev.utterances,
        &data.phones,
        &options,
        &out,
        start,
        run_info,
        &mut progress,
    )?;
    let code = report(&outcome, start, &out)?;
    if options.init_from_bytes.is_some() && outcome.best.is_some() {
        eprintln!(
            "phonrec: it was fine-tuned from the built-in model: decode with the built-in phone LM \
             too, e.g. `phonrec transcribe --model {} --lm builtin FILE`",
            out.join(BEST_MODEL_FILE).display()
        );
    }
    Ok(code)
}

/// A resumed distilling run learns from the built-in model it started from: say so when this
/// binary's built-in model is another (runs recorded before the fingerprint was kept say nothing).
fn warn_if_the_built_in_model_changed(recorded: &serde_json::Value) {
    let distilling = recorded["options"]["distill"]
        .as_f64()
        .is_some_and(|share| share > 0.0);
    let (Some(then), Some(now)) = (
        recorded[BUILT_IN_FINGERPRINT].as_str(),
        built_in_model_fingerprint(),
    ) else {
        return;
    };
    if distilling && then != now {
        eprintln!(
            "phonrec: warning: this run started from another built-in model (fingerprint {then}; \
             this phonrec's is {now}): from here on it distils toward this phonrec's model; resume \
             with the phonrec that started the run to keep its teacher"
        );
    }
}

/// The run record's key for the fingerprint of the built-in model a run started from.
const BUILT_IN_FINGERPRINT: &str = "built_in_model_fingerprint";

/// Whether a resumed run's record (`Null` for a new run) says it started from the built-in model.
fn started_from_built_in(recorded: &serde_json::Value) -> bool {
    recorded["options"]["init_from"].as_str() == Some(BUILT_IN_INIT)
}

/// The run's folder, how it starts, and (on resume) the run's record of its data arguments.
fn where_the_run_goes(
    args: &TrainArgs,
    matches: Option<&clap::ArgMatches>,
) -> anyhow::Result<(PathBuf, RunStart, serde_json::Value)> {
    let Some(folder) = &args.resume else {
        let out = args.out.clone().context("--out is required")?;
        let start = if args.force {
            RunStart::Overwrite
        } else {
            RunStart::New
        };
        return Ok((out, start, serde_json::Value::Null));
    };
    let dir = match (folder, &args.out) {
        (Some(dir), Some(out)) if !same_path(dir, out) => bail!(
            "--resume {} and --out {} name different folders",
            dir.display(),
            out.display()
        ),
        (Some(dir), _) | (None, Some(dir)) => dir.clone(),
        (None, None) => bail!("--resume needs the run's folder: --resume DIR, or --out DIR"),
    };
    if args.force {
        bail!("--force starts the run over and --resume continues it: give one of them");
    }
    let info = checkpoint_run_info(&dir)?
        .with_context(|| format!("nothing to resume: {} holds no checkpoint", dir.display()))?;
    check_resume_arguments(args, matches, &info)?;
    let start = RunStart::Resume {
        epochs: args.epochs,
    };
    Ok((dir, start, info))
}

/// The data of a run: the command line's arguments, or on resume the run's own where not given.
struct RunData {
    train_path: PathBuf,
    dev_path: PathBuf,
    lexicon: Option<PathBuf>,
    no_builtin_lexicon: bool,
    phones_path: Option<PathBuf>,
    core_test: bool,
    phones: PhoneSet,
    train: Dataset,
    dev: Dataset,
}

impl RunData {
    fn load(args: &TrainArgs, recorded: &serde_json::Value) -> anyhow::Result<Self> {
        let path_arg = |given: &Option<PathBuf>, key: &str| -> Option<PathBuf> {
            given.clone().or_else(|| {
                recorded
                    .get(key)
                    .and_then(|v| v.as_str())
                    .map(PathBuf::from)
            })
        };
        let train_path = path_arg(&args.train, "train").context("--train is required")?;
        let dev_path = path_arg(&args.dev, "dev").context("--dev is required")?;
        let lexicon = path_arg(&args.data.lexicon, "lexicon");
        let phones_path = path_arg(&args.phones, "phones");
        let core_test = args.data.timit_core_test
            || recorded
                .get("timit_core_test")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
        // A run's lexicon is used as it was: runs recorded before the built-in CMUdict was merged
        // with --lexicon (no such entry) used the file alone.
        let no_builtin_lexicon = args.data.no_builtin_lexicon
            || recorded
                .get("no_builtin_lexicon")
                .and_then(|v| v.as_bool())
                .unwrap_or(recorded.get("lexicon").is_some_and(|v| v.is_string()));
        let phones = match &phones_path {
            Some(path) => PhoneSet::from_file(path)?,
            None => PhoneSet::timit39(),
        };
        let train_source = data_source(
            &train_path,
            lexicon.as_deref(),
            !no_builtin_lexicon,
            TimitSplit::Train,
        )?;
        let dev_split = if core_test {
            TimitSplit::CoreTest
        } else {
            TimitSplit::Test
        };
        let dev_source = data_source(
            &dev_path,
            lexicon.as_deref(),
            !no_builtin_lexicon,
            dev_split,
        )?;
        let train = load_data(&train_source, &phones, "training")?;
        let dev = load_data(&dev_source, &phones, "dev")?;
        for (data, what, path) in [(&train, "training", &train_path), (&dev, "dev", &dev_path)] {
            if data.utterances.iter().all(|u| u.phones.is_empty()) {
                bail!(
                    "every label of the {what} data ({}) is empty: recordings without speech \
                     alone teach nothing (and give no dev PER); add labeled speech",
                    path.display()
                );
            }
        }
        Ok(RunData {
            train_path,
            dev_path,
            lexicon,
            no_builtin_lexicon,
            phones_path,
            core_test,
            phones,
            train,
            dev,
        })
    }

    /// What checkpoints record of the run's command line (a resume reads it back).
    fn run_info(&self, options: &TrainOptions) -> anyhow::Result<serde_json::Value> {
        let absolute = |p: &PathBuf| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        Ok(json!({
            // What the command line asked for, before --init-from replaces features and network: a
            // resumed run given its command line again is checked against this.
            "options": serde_json::to_value(options)?,
            "train": absolute(&self.train_path),
            "dev": absolute(&self.dev_path),
            "lexicon": self.lexicon.as_ref().map(absolute),
            "no_builtin_lexicon": self.no_builtin_lexicon,
            "phones": self.phones_path.as_ref().map(absolute),
            "timit_core_test": self.core_test,
            "data": format!("{} ({} utterances)", self.train_path.display(), self.train.len()),
            BUILT_IN_FINGERPRINT: options
                .init_from_bytes
                .as_ref()
                .and_then(|_| built_in_model_fingerprint()),
        }))
    }
}

/// A flag that the first Ctrl-C sets (training then writes a checkpoint and returns); a second
/// Ctrl-C while the checkpoint is written kills the process as usual.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("\nphonrec: interrupted; writing a checkpoint (Ctrl-C again to abort)");
    });
    stop
}

/// Say how the run ended; the exit code is 130 when it was interrupted.
fn report(outcome: &TrainOutcome, start: RunStart, out: &Path) -> anyhow::Result<ExitCode> {
    if let RunStart::Resume {
        epochs: Some(epochs),
    } = start
    {
        if outcome.epochs_completed >= epochs && !outcome.interrupted {
            eprintln!(
                "phonrec: the run has completed {} epochs, --epochs {epochs} asks for no more",
                outcome.epochs_completed
            );
        }
    }
    if outcome.interrupted {
        eprintln!(
            "phonrec: stopped after {} complete epochs; continue with `phonrec train --resume {}`",
            outcome.epochs_completed,
            out.display()
        );
        return Ok(ExitCode::from(130));
    }
    if let Some((per, _)) = outcome.best.filter(|(per, _)| *per >= ALL_BLANK_PER) {
        eprintln!(
            "phonrec: warning: the best dev PER is {:.0} %: the network has not learnt to output \
             phones (a CTC network outputs only blanks at first, and small data gives it few \
             updates). Fine-tune the built-in model instead (--init-from builtin), or give it more \
             updates: more --epochs, or a lower --batch-frames / --batch-utterances",
            per * 100.0
        );
    }
    match outcome.best {
        Some((per, 0)) => eprintln!(
            "phonrec: done: no epoch did better on dev than the starting model (dev PER {:.2}%){}: \
             {} holds the starting model's weights, unchanged. The dev set may be speech it \
             already knew: a dev set of the speech you want recognised better (a new speaker, \
             your recording conditions) tells more",
            per * 100.0,
            if outcome.stopped_early {
                " (stopped early)"
            } else {
                ""
            },
            out.join(BEST_MODEL_FILE).display()
        ),
        Some((per, epoch)) => eprintln!(
            "phonrec: done: best dev PER {:.2}% at epoch {epoch}{}; model: {}",
            per * 100.0,
            if outcome.stopped_early {
                " (stopped early)"
            } else {
                ""
            },
            out.join(BEST_MODEL_FILE).display()
        ),
        None => bail!("training finished without a dev evaluation"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether two paths name the same file or folder (or, if either does not exist, are equal).
fn same_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// On resume, refuse a command line that asks for something else than the run: data paths other than
/// its own, or training options that differ from those it was started with (all but `--epochs`).
fn check_resume_arguments(
    args: &TrainArgs,
    matches: Option<&clap::ArgMatches>,
    run_info: &serde_json::Value,
) -> anyhow::Result<()> {
    for (given, key, flag) in [
        (&args.train, "train", "--train"),
        (&args.dev, "dev", "--dev"),
        (&args.data.lexicon, "lexicon", "--lexicon"),
        (&args.phones, "phones", "--phones"),
    ] {
        let Some(given) = given else { continue };
        let recorded = run_info
            .get(key)
            .and_then(|v| v.as_str())
            .map(PathBuf::from);
        if !recorded.as_deref().is_some_and(|r| same_path(r, given)) {
            bail!(
                "--resume: {flag} {} is not the run's ({}); a run continues on its own data",
                given.display(),
                recorded.map_or("none".to_string(), |r| r.display().to_string())
            );
        }
    }
    let given_options: Vec<&str> = matches
        .map(|m| {
            m.ids()
                .map(|id| id.as_str())
                .filter(|id| {
                    m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
                        && !RESUME_ARGUMENTS.contains(id)
                })
                .collect()
        })
        .unwrap_or_default();
    if given_options.is_empty() {
        return Ok(());
    }
    let Some(recorded) = run_info.get("options") else {
        bail!(
            "--resume: this run's checkpoint does not record the options it was started with (it \
             predates that record), so --{} cannot be checked; resume with `--resume DIR` alone",
            given_options.join(", --").replace('_', "-")
        );
    };
    let mut wanted = serde_json::to_value(args.train_options())?;
    let mut recorded = recorded.clone();
    // --precision's default depends on the CPU (bf16 when fine-tuning where bf16 is fast) and
    // changed between releases: left out, it is the run's own, so the original command line still
    // resumes a run started elsewhere or by an older phonrec.
    if args.precision.is_none() {
        if let (Some(map), Some(run_precision)) =
            (wanted.as_object_mut(), recorded.get("precision"))
        {
            map.insert("precision".to_string(), run_precision.clone());
        }
    }
    // Runs of versions before `--dereverb` record no such option: theirs was off.
    if let Some(map) = recorded.as_object_mut() {
        map.entry("dereverb")
            .or_insert(serde_json::Value::Bool(false));
    }
    // The epoch limit and how often checkpoints are written may change on resume; batches were
    // fitted to the data when the run began (and older runs record no such choice).
    for options in [&mut wanted, &mut recorded] {
        if let Some(map) = options.as_object_mut() {
            map.remove("epochs");
            map.remove("checkpoint_every_s");
            map.remove("fit_batches_to_data");
        }
    }
    let mut differences = Vec::new();
    json_differences(&recorded, &wanted, "", &mut differences);
    if !differences.is_empty() {
        bail!(
            "--resume: the command line asks for other options than the run was started with: {}. \
             A resumed run keeps its options (only --epochs may change); given --{} besides \
             --resume, the command line is taken as a whole one, where options left out count at \
             their defaults. Give the run's own command line (or `--resume DIR` alone, with \
             --epochs if wanted), or start a new run in another folder",
            differences.join("; "),
            given_options.join(", --").replace('_', "-")
        );
    }
    Ok(())
}

/// Every leaf where `run` and `given` differ, as `path: the run has X, the command line Y`.
/// The command-line option that sets a recorded training option, named as the user typed it (the
/// field's own name where no single option sets it).
fn option_of_field(path: &str) -> String {
    let option = match path {
        "network.num_layers" => "--layers",
        "network.hidden_size" => "--hidden",
        "network.dropout" => "--dropout",
        "network.stack_frames" => "--stack-frames",
        "features.cmvn" => "--no-cmvn",
        "features.cmvn.statistics" => "--cmvn-frames",
        "features.cmvn.normalize_variance" => "--norm-vars",
        "features.deltas" => "--deltas",
        "batch_frames" => "--batch-frames",
        "max_batch_utterances" => "--batch-utterances",
        "schedule.learning_rate" => "--lr",
        "schedule.warmup_updates" | "schedule.warmup_fraction" => "--warmup",
        "schedule.patience" => "--patience",
        "schedule.early_stop_patience" => "--early-stop",
        "optimizer.kind" => "--optimizer",
        "optimizer.weight_decay" => "--weight-decay",
        "clip_norm" => "--clip-norm",
        "init.weights" => "--init",
        "init.orthogonal_recurrent" => "--no-orthogonal",
        "augment.vtlp" => "--vtlp",
        "init_from" => "--init-from",
        "freeze_layers" => "--freeze-layers",
        "save_epoch_models" => "--save-epoch-models",
        "weight_noise_std" => "--weight-noise",
        "seed" => "--seed",
        "precision" => "--precision",
        "dereverb" => "--dereverb",
        _ if path.starts_with("augment.") => "--augment (or one of its options)",
        _ if path.starts_with("features.base.") => {
            if path.ends_with("num_bins") {
                "--num-mel-bins"
            } else if path.ends_with("dither") {
                "--dither"
            } else if path.ends_with("sample_rate_hz") {
                "--sample-rate"
            } else {
                "--features"
            }
        }
        _ => return path.to_string(),
    };
    format!("{option} ({path})")
}

fn json_differences(
    run: &serde_json::Value,
    given: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
) {
    match (run, given) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let null = serde_json::Value::Null;
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                json_differences(
                    a.get(key).unwrap_or(&null),
                    b.get(key).unwrap_or(&null),
                    &child,
                    out,
                );
            }
        }
        // Stored as JSON text and parsed back, an f32 may come back one f64 step away.
        (serde_json::Value::Number(a), serde_json::Value::Number(b))
            if a.as_f64()
                .zip(b.as_f64())
                .is_some_and(|(a, b)| (a - b).abs() <= 1e-9 * a.abs().max(b.abs())) => {}
        _ if run != given => out.push(format!(
            "{}: the run has {run}, the command line {given}",
            option_of_field(path)
        )),
        _ => {}
    }
}

/// `train --dereverb`: which training recordings are dereverberated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TrainDereverb {
    /// Those measured reverberant, as `transcribe --dereverb auto` does.
    Auto,
    /// None.
    Off,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TrainArgs,
    }

    fn options(extra: &[&str]) -> TrainOptions {
        let mut argv = vec!["train", "--train", "t.tsv", "--dev", "d.tsv", "--out", "o"];
        argv.extend(extra);
        Cli::parse_from(argv).args.train_options()
    }

    #[test]
    fn training_dereverberates_only_when_asked() {
        assert!(!options(&[]).dereverb);
        assert!(!options(&["--dereverb", "off"]).dereverb);
        assert!(options(&["--dereverb", "auto"]).dereverb);
        // A run recorded before the option existed reads as off.
        let mut recorded = serde_json::to_value(options(&[])).expect("options serialise");
        recorded.as_object_mut().map(|map| map.remove("dereverb"));
        let old: TrainOptions = serde_json::from_value(recorded).expect("an older run's options");
        assert!(!old.dereverb);
    }

    #[test]
    fn fine_tuning_trains_in_bf16_where_the_cpu_runs_it_fast_unless_given() {
        let fine_tune = if phonrec::model::bf16_fast() {
            Precision::Bf16
        } else {
            Precision::F32
        };
        assert_eq!(options(&["--init-from", "builtin"]).precision, fine_tune);
        assert_eq!(
            options(&["--init-from", "mine.safetensors"]).precision,
            fine_tune
        );
        assert_eq!(options(&[]).precision, Precision::F32);
        assert_eq!(
            options(&["--init-from", "builtin", "--precision", "f32"]).precision,
            Precision::F32
        );
        assert_eq!(options(&["--precision", "bf16"]).precision, Precision::Bf16);
    }

    /// `check_resume_arguments` for a run started with `started` and resumed with `resumed`.
    fn resume_check(started: &[&str], resumed: &[&str]) -> anyhow::Result<()> {
        use clap::{CommandFactory, FromArgMatches};
        fn argv<'a>(extra: &[&'a str]) -> Vec<&'a str> {
            let mut argv = vec!["train", "--train", "t.tsv", "--dev", "d.tsv", "--out", "o"];
            argv.extend(extra);
            argv
        }
        let recorded = Cli::parse_from(argv(started)).args.train_options();
        let run_info = serde_json::json!({
            "train": "t.tsv",
            "dev": "d.tsv",
            "options": serde_json::to_value(recorded)?,
        });
        let matches = Cli::command().try_get_matches_from(argv(resumed))?;
        let args = Cli::from_arg_matches(&matches)?.args;
        check_resume_arguments(&args, Some(&matches), &run_info)
    }

    #[test]
    fn a_run_resumes_with_its_own_precision_unless_another_is_given() {
        // A fine-tune recorded in f32 (an older phonrec's default, or a CPU without native bf16)
        // resumes with its original command line, whatever this CPU's default is.
        let fine_tune = ["--init-from", "builtin", "--epochs", "3"];
        let f32_run = [
            "--init-from",
            "builtin",
            "--epochs",
            "3",
            "--precision",
            "f32",
        ];
        let bf16_run = [
            "--init-from",
            "builtin",
            "--epochs",
            "3",
            "--precision",
            "bf16",
        ];
        resume_check(&f32_run, &fine_tune).unwrap();
        resume_check(&bf16_run, &fine_tune).unwrap();
        resume_check(&f32_run, &f32_run).unwrap();
        // Asking for another precision than the run's is refused and named.
        let refused = resume_check(&f32_run, &bf16_run).unwrap_err().to_string();
        assert!(refused.contains("precision"), "{refused}");
        // Other options are still compared.
        let other_rate = ["--init-from", "builtin", "--epochs", "3", "--lr", "0.01"];
        assert!(resume_check(&f32_run, &other_rate).is_err());
    }

    #[test]
    fn music_alone_is_a_fifth_of_non_speech_with_music_beds_unless_given() {
        let conditions = |extra: &[&str]| {
            let mut argv = vec!["--augment", "robust"];
            argv.extend(extra);
            options(&argv).augment.conditions
        };
        let preset = conditions(&[]);
        assert_eq!(
            (preset.music_probability, preset.music_alone_share),
            (0.0, 0.0)
        );
        let beds = conditions(&["--music", "0.1"]);
        assert_eq!(
            (beds.music_probability, beds.music_alone_share),
            (0.1, MUSIC_NON_SPEECH_SHARE)
        );
        let alone = conditions(&["--music-alone", "0.3"]);
        assert_eq!(
            (alone.music_probability, alone.music_alone_share),
            (0.0, 0.3)
        );
        let both = conditions(&["--music", "0.1", "--music-alone", "0"]);
        assert_eq!((both.music_probability, both.music_alone_share), (0.1, 0.0));
    }

    #[test]
    fn dropout_is_0_4_from_scratch_and_0_2_when_fine_tuning_unless_given() {
        assert_eq!(options(&[]).network.dropout, SCRATCH_DROPOUT);
        assert_eq!(
            options(&["--init-from", "mine.safetensors"])
                .network
                .dropout,
            FINE_TUNE_DROPOUT
        );
        assert_eq!(options(&["--dropout", "0.1"]).network.dropout, 0.1);
        assert_eq!(
            options(&["--init-from", "builtin", "--dropout", "0"])
                .network
                .dropout,
            0.0
        );
    }
}
