//! `phonrec convert`: rewrite a model file: its weight storage (f32/f16) and, optionally, a wider network.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use phonrec::choice::Choice;
use phonrec::model::{widen, ModelFile, WeightStorage};

use super::choice::choice;

use super::common::CmvnFrames;

/// Rewrite a model: store its weights as f32, f16 or int8, or grow its LSTM layers.
///
/// `--storage f16` halves the file (the network still computes in f32; rounding each weight to f16 moved no posterior of a shipped example by more than 0.003 for the default model, and its greedy dev PER not at all: models/README.md). `--storage int8` stores the matrices as 8-bit integers with a scale per row (the first layer's feature matrices stay f16), 54 % of the f16 file for the default model, PER within a few tenths of a point of f16's on every set measured (models/README.md). `--hidden N` widens every LSTM layer to N units per direction without changing what the network computes (new units start connected to their inputs but unread), so that `phonrec train --init-from` can train a larger network from a trained one instead of from scratch.
#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The model to read (.safetensors, f32, f16, bf16 or int8 weights).
    pub model: PathBuf,

    /// Where to write the converted model.
    #[arg(long, short)]
    pub output: PathBuf,

    /// How to store the weights.
    #[arg(long, value_parser = choice::<WeightStorage>(), default_value = WeightStorage::default().name())]
    pub storage: WeightStorage,

    /// Widen every LSTM layer to this many units per direction (≥ the current number).
    #[arg(long)]
    pub hidden: Option<usize>,

    /// Seed of the new units' incoming weights (with --hidden).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Change which frames the model's per-utterance mean normalisation is estimated on: `loud` (the
    /// frames within 30 dB of the loudest: silence, pauses and a low noise floor then do not shift
    /// the speech) or `all` (every frame, as Kaldi's apply-cmvn). Changes what the network sees;
    /// fine-tune afterwards (`phonrec train --init-from`).
    #[arg(long, value_enum)]
    pub cmvn_frames: Option<CmvnFrames>,

    /// Set the model's dither (Gaussian noise std in int16 units added before the FFT, seeded, so
    /// output stays reproducible): 1 gives digital silence a defined noise floor, as Kaldi's default.
    #[arg(long)]
    pub dither: Option<f32>,
}

pub fn run(args: ConvertArgs) -> anyhow::Result<ExitCode> {
    super::output_file::refuse_stream_for_model(&args.output)?;
    // Converting in place can lose what cannot be restored (f32 to int8 storage).
    super::output_file::refuse_overwriting_inputs(&args.output, [args.model.as_path()])?;
    let model = ModelFile::load(&args.model)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let old_hidden = model.config().network.hidden_size;
    let model = match args.hidden {
        Some(hidden) => widen(&model, hidden, args.seed)
            .with_context(|| format!("widening {}", args.model.display()))?,
        None => model,
    };
    let model = if args.cmvn_frames.is_some() || args.dither.is_some() {
        let mut config = model.config().clone();
        if let Some(frames) = args.cmvn_frames {
            let cmvn = config.features.cmvn.get_or_insert_with(Default::default);
            cmvn.statistics = frames.statistics();
        }
        if let Some(dither) = args.dither {
            config.features.frame_mut().dither = dither;
        }
        ModelFile::new(config, model.weights().clone())
            .with_context(|| format!("changing the features of {}", args.model.display()))?
    } else {
        model
    };
    model
        .save_as(&args.output, args.storage)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let network = &model.config().network;
    eprintln!(
        "phonrec: {} layers x {} units per direction (was {old_hidden}), {:?} weights, written to {}",
        network.num_layers,
        network.hidden_size,
        args.storage,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
