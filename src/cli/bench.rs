//! `phonrec bench`: training and inference speed of the network on random data, printed as one JSON
//! line with the fields of `../shared/bench/torch_bilstm_ctc.py`, the PyTorch peer, so that the two
//! outputs can be read side by side (BENCHMARKS.md records both).
//!
//! Train = forward (with `train`, so dropout if asked) + CTC loss + backward + AdamW step with gradient
//! clipping, as `phonrec train` does; infer = log-probs of a batch with untracked weights packed once
//! beforehand, as a loaded model computes them. Frames/s = batch × frames / step time, counting input feature frames.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use clap::{Args, ValueEnum};
use ndarray::Array2;
use phonrec::choice::Choice;
use phonrec::ctc::{ctc_loss, min_frames, Reduction};
use phonrec::model::{
    features_to_tensor, Blstm, DropoutState, InitOptions, LstmKernel, NetworkConfig, Precision,
};
use phonrec::phones::PhoneId;

use super::choice::choice;
use super::common::write_stdout;
use phonrec::train::{Optimizer, OptimizerOptions};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Serialize;

/// AdamW learning rate of the timed steps: the peer's Adam uses 1e-3; the value does not change the cost.
const LEARNING_RATE: f64 = 1e-3;
/// Global gradient-norm clip, as `phonrec train` applies by default (the peer does not clip).
const CLIP_NORM: f64 = 5.0;
/// Target labels per input frame: ~12.5 phones per second at a 10 ms frame shift, the peer's `T // 8`.
const FRAMES_PER_LABEL: usize = 8;

/// What to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Training steps: forward + CTC + backward + optimizer step.
    Train,
    /// Inference: log-probs at batch 1 and at --batch.
    Infer,
    /// Both, training first (the peer's default `--modes train,infer`).
    Both,
}

/// Measure how fast this machine trains and runs the network, on random data.
///
/// Prints one JSON line with the fields of ../shared/bench/torch_bilstm_ctc.py (the PyTorch peer):
/// `train` (forward + CTC + backward + AdamW step at --batch; also `ctc_fwd_bwd_s_median`, the CTC
/// loss alone, and `last_loss`), `infer_b1` and `infer_bB` (forward only at batch 1 and at --batch),
/// each with frames/s (median, min, max over the timed steps) and the median step in seconds; then
/// `peak_rss_mib`, the process's peak resident memory (VmHWM, over everything run). Frames are input
/// feature frames (10 ms each), targets are random phones, T/8 per utterance.
///
/// --threads K sizes the thread pool of both the matrix products and the CTC loss (it sets
/// RAYON_NUM_THREADS, which candle reads); without it, every physical core is used.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Utterances per batch (B).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,

    /// Feature frames per utterance (T), at 10 ms each: 400 is 4 s of speech.
    #[arg(long, default_value_t = 400)]
    pub frames: usize,

    /// Bidirectional LSTM layers (N).
    #[arg(long, default_value_t = 3)]
    pub layers: usize,

    /// LSTM units per direction (H).
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,

    /// Feature dimension (F): 80 for the default fbank.
    #[arg(long, default_value_t = 80)]
    pub features: usize,

    /// Output classes (C), the CTC blank included: 40 for TIMIT's 39 phones.
    #[arg(long, default_value_t = 40)]
    pub classes: usize,

    /// Frames stacked into one LSTM step (the network's stack_frames); 1 is what the peer runs.
    #[arg(long, default_value_t = 1)]
    pub stack_frames: usize,

    /// Dropout between LSTM layers during the training steps; 0 matches the peer.
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f32,

    /// LSTM implementation [default: the library's, the fused kernel].
    #[arg(long, value_parser = choice::<LstmKernel>())]
    pub kernel: Option<LstmKernel>,

    /// Arithmetic of the LSTM's products. Training runs f32 or bf16 (mixed precision: bf16 products
    /// accumulated in f32, f32 weights and gradients; `int8` trains in bf16).
    #[arg(long, value_parser = choice::<Precision>(), default_value = "f32")]
    pub precision: Precision,

    /// What to time.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    pub mode: Mode,

    /// Time the CTC loss alone (forward + backward on random logits [B, T, C]) instead of the network.
    #[arg(long, conflicts_with = "mode")]
    pub ctc_only: bool,

    /// Labels per utterance [default: frames / 8, as the peer; 50 at 400 frames].
    #[arg(long)]
    pub labels: Option<usize>,

    /// Threads for matrix products and the CTC loss [default: one per physical core].
    #[arg(long)]
    pub threads: Option<usize>,

    /// Timed steps per measurement; the median, min and max are over these.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,

    /// Untimed steps before each measurement (allocator and caches warm up).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,

    /// Seed of the random weights, features and targets.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The printed line. Field names and nesting follow `torch_bilstm_ctc.py` (`B`, `T`, ..., `train`,
/// `infer_b1`, `infer_b16`); `stack_frames`, `kernel`, `labels`, `ctc` and `peak_rss_mib` are ours. The peer's
/// `mkldnn` flag has no counterpart here.
#[derive(Serialize)]
struct Report {
    #[serde(rename = "impl")]
    implementation: String,
    #[serde(rename = "B")]
    batch: usize,
    #[serde(rename = "T")]
    frames: usize,
    #[serde(rename = "N", skip_serializing_if = "Option::is_none")]
    layers: Option<usize>,
    #[serde(rename = "H", skip_serializing_if = "Option::is_none")]
    hidden: Option<usize>,
    #[serde(rename = "F", skip_serializing_if = "Option::is_none")]
    features: Option<usize>,
    #[serde(rename = "C")]
    classes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack_frames: Option<usize>,
    /// `fused` or `reference`: which LSTM implementation ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<&'static str>,
    /// `f32` or `bf16`: the inference passes' arithmetic.
    #[serde(skip_serializing_if = "Option::is_none")]
    precision: Option<&'static str>,
    /// `f32` or `bf16`: the training steps' arithmetic.
    #[serde(skip_serializing_if = "Option::is_none")]
    train_precision: Option<&'static str>,
    /// The fused kernel's instruction set (`Avx512`, `Avx2`, `Portable`; `PHONREC_KERNEL` caps it).
    #[serde(skip_serializing_if = "Option::is_none")]
    simd: Option<String>,
    /// The CPU the figures were measured on (BENCHMARKS.md asks for its name and caches).
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<CpuInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<usize>,
    threads: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    train: Option<TrainTimes>,
    /// `infer_b1`, `infer_b<B>`: "infer_b1" sorts first, as the peer prints it.
    #[serde(flatten)]
    infer: BTreeMap<String, Timings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ctc: Option<Timings>,
    /// VmHWM of /proc/self/status in MiB; null where there is no /proc.
    peak_rss_mib: Option<f64>,
}

/// The peer's `summarize`: frames/s at the median, slowest and fastest step, and the median step.
#[derive(Serialize)]
struct Timings {
    fps_median: f64,
    fps_min: f64,
    fps_max: f64,
    step_s_median: f64,
}

#[derive(Serialize)]
struct TrainTimes {
    #[serde(flatten)]
    step: Timings,
    /// CTC forward + backward alone, on the step's logits detached.
    ctc_fwd_bwd_s_median: f64,
    last_loss: f64,
}

/// Run the benchmark and print its JSON line.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let threads = set_threads(args.threads)?;
    check_args(&args)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let labels = args
        .labels
        .unwrap_or((args.frames / FRAMES_PER_LABEL).max(1));
    let mut report = Report {
        implementation: format!("phonrec-{}", env!("CARGO_PKG_VERSION")),
        batch: args.batch,
        frames: args.frames,
        layers: None,
        hidden: None,
        features: None,
        classes: args.classes,
        stack_frames: None,
        kernel: None,
        precision: None,
        train_precision: None,
        simd: None,
        cpu: None,
        labels: None,
        threads,
        params: None,
        train: None,
        infer: BTreeMap::new(),
        ctc: None,
        peak_rss_mib: None,
    };

    if args.ctc_only {
        report.labels = Some(labels);
        report.ctc = Some(time_ctc(&args, labels, &mut rng)?);
    } else {
        let config = NetworkConfig {
            input_dim: args.features,
            num_layers: args.layers,
            hidden_size: args.hidden,
            dropout: args.dropout,
            num_outputs: args.classes,
            stack_frames: args.stack_frames,
        };
        let init = InitOptions {
            seed: args.seed,
            ..InitOptions::default()
        };
        let (mut network, var_map) =
            Blstm::trainable(&config, &init).context("building the network")?;
        if let Some(kernel) = args.kernel {
            network.set_kernel(kernel);
        }
        let training_precision = match args.precision {
            Precision::Int8 => Precision::Bf16,
            other => other,
        };
        network.set_training_precision(training_precision)?;
        report.layers = Some(args.layers);
        report.hidden = Some(args.hidden);
        report.features = Some(args.features);
        report.stack_frames = Some(args.stack_frames);
        report.kernel = Some(network.kernel().name());
        report.simd = Some(format!("{:?}", phonrec::model::simd_level()));
        report.cpu = Some(CpuInfo::read());
        report.params = Some(config.num_parameters());
        if args.mode != Mode::Infer {
            report.train = Some(time_training(&args, &network, &var_map, labels, &mut rng)?);
            report.train_precision = Some(training_precision.name());
        }
        if args.mode != Mode::Train {
            let mut inference_network = untracked(&config, &var_map)?;
            inference_network.set_kernel(network.kernel());
            // As a loaded model runs (`Model` prepares its layers once): the timed passes do not
            // re-pack the weights, as PyTorch's timed passes do not re-lay out its own.
            inference_network.prepare_for_inference_in(args.precision)?;
            report.precision = Some(args.precision.name());
            for batch in BTreeSet::from([1, args.batch]) {
                let timings = time_inference(&args, &inference_network, batch, &mut rng)?;
                report.infer.insert(format!("infer_b{batch}"), timings);
            }
        }
    }
    report.peak_rss_mib = peak_rss_mib();
    let json = serde_json::to_string(&report)?;
    write_stdout(|out| writeln!(out, "{json}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Size the thread pools to `threads`, before any candle op; returns the count in force.
///
/// Two pools matter: rayon's global pool runs the CTC loss and the `gemm` crate's parallel matrix
/// products, and candle asks `candle_core::utils::get_num_threads()` for the parallelism of each matrix
/// product, which reads RAYON_NUM_THREADS (default: the physical cores). Both are set alike.
fn set_threads(threads: Option<usize>) -> anyhow::Result<usize> {
    if let Some(threads) = threads {
        if threads == 0 {
            bail!("--threads must be at least 1");
        }
        // The process has a single thread here (no pool has started), so nothing reads the
        // environment while it changes.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("sizing the thread pool")?;
    }
    Ok(candle_core::utils::get_num_threads())
}

/// Refuse arguments that give nothing to time.
fn check_args(args: &BenchArgs) -> anyhow::Result<()> {
    for (flag, value) in [
        ("--batch", args.batch),
        ("--frames", args.frames),
        ("--steps", args.steps),
    ] {
        if value == 0 {
            bail!("{flag} must be at least 1: there would be nothing to time");
        }
    }
    if args.classes < 2 || u16::try_from(args.classes).is_err() {
        bail!(
            "--classes {} is out of range: it counts the blank and at least one phone (2 to {})",
            args.classes,
            u16::MAX
        );
    }
    Ok(())
}

/// Median / min / max frames/s over `times_s`, rounded as the peer rounds.
fn summarize(times_s: &[f64], frames: usize) -> Timings {
    let median = median(times_s);
    let slowest = times_s.iter().copied().fold(f64::MIN, f64::max);
    let fastest = times_s.iter().copied().fold(f64::MAX, f64::min);
    Timings {
        fps_median: round(frames as f64 / median, 1),
        fps_min: round(frames as f64 / slowest, 1),
        fps_max: round(frames as f64 / fastest, 1),
        step_s_median: round(median, 4),
    }
}

/// Python's `statistics.median`: the middle value, or the mean of the two middle ones.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// Python's `round(value, digits)`, up to ties.
fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// Random standard-normal features `[batch, frames, dim]`, all of full length, and the lengths.
fn random_features(
    rng: &mut StdRng,
    batch: usize,
    frames: usize,
    dim: usize,
) -> anyhow::Result<(Tensor, Vec<usize>)> {
    let utterances: Vec<Array2<f32>> = (0..batch)
        .map(|_| Array2::from_shape_simple_fn((frames, dim), || rng.sample(StandardNormal)))
        .collect();
    let views: Vec<_> = utterances.iter().map(|u| u.view()).collect();
    Ok(features_to_tensor(&views)?)
}

/// `batch` random phone sequences of `labels` phones each, from `1..classes` (0 is the blank).
fn random_targets(
    rng: &mut StdRng,
    batch: usize,
    labels: usize,
    classes: usize,
) -> Vec<Vec<PhoneId>> {
    // `check_args` keeps `classes` within u16.
    let classes = classes as u16;
    (0..batch)
        .map(|_| {
            (0..labels)
                .map(|_| PhoneId(rng.gen_range(1..classes)))
                .collect()
        })
        .collect()
}

/// Refuse targets that no alignment fits: their loss and gradient would be zero, and the time meaningless.
fn check_alignable(
    targets: &[Vec<PhoneId>],
    frames: usize,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let needed = targets.iter().map(|t| min_frames(t)).max().unwrap_or(0);
    if needed > frames {
        bail!(
            "{frames} CTC frames (--frames {} / --stack-frames {}) cannot hold {needed} labels and \
             repeats: lower --labels or --stack-frames, or raise --frames",
            args.frames,
            args.stack_frames
        );
    }
    Ok(())
}

/// Time `warmup + steps` training steps, each followed by the CTC loss alone on its logits.
fn time_training(
    args: &BenchArgs,
    network: &Blstm,
    var_map: &VarMap,
    labels: usize,
    rng: &mut StdRng,
) -> anyhow::Result<TrainTimes> {
    let vars = var_map
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("the variable map's lock is poisoned"))?
        .iter()
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    let mut optimizer = Optimizer::new(vars, OptimizerOptions::default(), LEARNING_RATE)?;
    let (features, lengths) = random_features(rng, args.batch, args.frames, args.features)?;
    let output_lengths = network.output_lengths(&lengths);
    let targets = random_targets(rng, args.batch, labels, args.classes);
    check_alignable(&targets, output_lengths[0], args)?;

    let mut step_times_s = Vec::with_capacity(args.steps);
    let mut ctc_times_s = Vec::with_capacity(args.steps);
    let mut last_loss = f64::NAN;
    let mut dropout = DropoutState::default();
    for step in 0..args.warmup + args.steps {
        let start = Instant::now();
        let logits = network.forward_train(&features, &lengths, Some(&mut dropout))?;
        let loss = ctc_loss(&logits, &targets, &output_lengths, Reduction::Mean)?.loss;
        let grads = loss.backward()?;
        optimizer.step(&grads, Some(CLIP_NORM))?;
        let step_s = start.elapsed().as_secs_f64();

        let free_logits = Var::from_tensor(&logits.detach())?;
        let start = Instant::now();
        ctc_loss(
            free_logits.as_tensor(),
            &targets,
            &output_lengths,
            Reduction::Mean,
        )?
        .loss
        .backward()?;
        let ctc_s = start.elapsed().as_secs_f64();

        last_loss = f64::from(loss.to_scalar::<f32>()?);
        if step >= args.warmup {
            step_times_s.push(step_s);
            ctc_times_s.push(ctc_s);
        }
    }
    Ok(TrainTimes {
        step: summarize(&step_times_s, args.batch * args.frames),
        ctc_fwd_bwd_s_median: round(median(&ctc_times_s), 5),
        last_loss: round(last_loss, 4),
    })
}

/// The network on plain copies of its weights, as a loaded model holds them: no autograd graph is kept.
fn untracked(config: &NetworkConfig, var_map: &VarMap) -> anyhow::Result<Blstm> {
    let weights: HashMap<String, Tensor> = var_map
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("the variable map's lock is poisoned"))?
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().detach()))
        .collect();
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    Ok(Blstm::new(config, vb)?)
}

/// Time `warmup + steps` inference passes at `batch`.
fn time_inference(
    args: &BenchArgs,
    network: &Blstm,
    batch: usize,
    rng: &mut StdRng,
) -> anyhow::Result<Timings> {
    let (features, lengths) = random_features(rng, batch, args.frames, args.features)?;
    let mut times_s = Vec::with_capacity(args.steps);
    for step in 0..args.warmup + args.steps {
        let start = Instant::now();
        let log_probs = network.forward(&features, &lengths)?;
        let step_s = start.elapsed().as_secs_f64();
        drop(log_probs);
        if step >= args.warmup {
            times_s.push(step_s);
        }
    }
    Ok(summarize(&times_s, batch * args.frames))
}

/// Time the CTC loss alone: forward + backward on random logits `[B, T, C]`, `labels` per utterance.
fn time_ctc(args: &BenchArgs, labels: usize, rng: &mut StdRng) -> anyhow::Result<Timings> {
    let values: Vec<f32> = (0..args.batch * args.frames * args.classes)
        .map(|_| rng.sample(StandardNormal))
        .collect();
    let logits = Var::from_vec(
        values,
        (args.batch, args.frames, args.classes),
        &Device::Cpu,
    )?;
    let lengths = vec![args.frames; args.batch];
    let targets = random_targets(rng, args.batch, labels, args.classes);
    check_alignable(&targets, args.frames, args)?;
    let mut times_s = Vec::with_capacity(args.steps);
    for step in 0..args.warmup + args.steps {
        let start = Instant::now();
        ctc_loss(logits.as_tensor(), &targets, &lengths, Reduction::Mean)?
            .loss
            .backward()?;
        let step_s = start.elapsed().as_secs_f64();
        if step >= args.warmup {
            times_s.push(step_s);
        }
    }
    Ok(summarize(&times_s, args.batch * args.frames))
}

/// Peak resident memory of this process in MiB (VmHWM), where Linux's /proc says it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(round(kib / 1024.0, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_matches_python_statistics() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn summarize_reports_frames_per_second() {
        let timings = summarize(&[2.0, 1.0, 4.0], 100);
        assert_eq!(timings.fps_median, 50.0);
        assert_eq!(timings.fps_min, 25.0);
        assert_eq!(timings.fps_max, 100.0);
        assert_eq!(timings.step_s_median, 2.0);
    }
}

/// What a benchmark line says about the machine: the CPU's name, its per-core L2 and shared L3
/// (Linux sysfs; absent elsewhere), whether `--precision bf16` runs natively on it and which
/// kernel `--precision int8` runs.
#[derive(Serialize)]
struct CpuInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    l2_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    l3_kib: Option<u64>,
    bf16: bool,
    /// bf16 products of two or more rows run on AMX tiles.
    amx: bool,
    /// `vdpbf16ps`'s multiply-adds per second over an f32 FMA's, measured (with AVX512-BF16;
    /// reported, not used to choose: it scatters from one process to the next on a shared VM).
    #[serde(skip_serializing_if = "Option::is_none")]
    bf16_rate_ratio: Option<f64>,
    /// bf16 outruns f32 here, so fine-tuning trains in it (and `int8` projects in it, unless in
    /// 8 bits).
    bf16_fast: bool,
    /// The 8-bit projections' multiply-adds per second over `vdpbf16ps`'s where bf16 is native,
    /// else over an f32 FMA's, measured (reported, not used to choose).
    #[serde(skip_serializing_if = "Option::is_none")]
    u8_rate_ratio: Option<f64>,
    /// The kernel of `--precision int8`'s recurrent products: `vnni512`, `avx2` or `portable`.
    int8: &'static str,
    /// The arithmetic of `int8`'s input projections past the first layer: `u8`, `bf16` or `f32`.
    int8_projections: &'static str,
}

impl CpuInfo {
    fn read() -> Self {
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, name)| name.trim().to_string())
            });
        // cpu0's caches by level (index*/level, index*/size such as "1024K").
        let cache_kib = |wanted: &str| -> Option<u64> {
            (0..8).find_map(|index| {
                let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
                let level = std::fs::read_to_string(format!("{dir}/level")).ok()?;
                if level.trim() != wanted {
                    return None;
                }
                let size = std::fs::read_to_string(format!("{dir}/size")).ok()?;
                size.trim().trim_end_matches('K').parse().ok()
            })
        };
        CpuInfo {
            model,
            l2_kib: cache_kib("2"),
            l3_kib: cache_kib("3"),
            bf16: phonrec::model::bf16_native(),
            amx: phonrec::model::amx_native(),
            bf16_rate_ratio: phonrec::model::bf16_rate_ratio().map(|r| (r * 100.0).round() / 100.0),
            bf16_fast: phonrec::model::bf16_fast(),
            u8_rate_ratio: phonrec::model::u8_rate_ratio().map(|r| (r * 100.0).round() / 100.0),
            int8: phonrec::model::int8_kernel_name(),
            int8_projections: phonrec::model::Int8Projections::here().name(),
        }
    }
}
