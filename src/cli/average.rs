//! `phonrec average`: average the weights of several models of one training run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use phonrec::model::ModelFile;

/// Average the weights of several models (checkpoint averaging).
///
/// Writes the element-wise mean of the models' weights, as Kaldi's `nnet3-average` and ESPnet's `average_checkpoints` do. Averaging the models of the last few epochs of one run (`phonrec train --save-epoch-models` writes them) can give a model that decodes better than any single one; compare them on dev data (for the default model it did not: `models/README.md`). The models must share features, network shape and phone set; the output keeps the last model's training summary.
#[derive(Args, Debug)]
pub struct AverageArgs {
    /// The models to average (two or more .safetensors files).
    #[arg(required = true, num_args = 2..)]
    pub models: Vec<PathBuf>,

    /// Where to write the averaged model.
    #[arg(long, short)]
    pub output: PathBuf,
}

pub fn run(args: AverageArgs) -> anyhow::Result<ExitCode> {
    super::output_file::refuse_stream_for_model(&args.output)?;
    // `average run/epoch-8 run/epoch-9 -o run/epoch-9` would replace a checkpoint with the mean.
    super::output_file::refuse_overwriting_inputs(
        &args.output,
        args.models.iter().map(|p| p.as_path()),
    )?;
    let models = args
        .models
        .iter()
        .map(|path| ModelFile::load(path).with_context(|| format!("loading {}", path.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let averaged = ModelFile::average(&models)?;
    averaged
        .save(&args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "phonrec: the mean of {} models written to {}",
        models.len(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
