//! `phonrec features`: audio file -> feature matrix as NPY, CSV, TSV or Kaldi text archive.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use phonrec::features::{
    DeltaOptions, FbankOptions, FeatureExtractor, FeatureOptions, FeaturePipeline, FrameOptions,
    KaldiFeatureFlags, MelOptions, MfccOptions, WindowType,
};

use phonrec::output::{kaldi_key, write_matrix, MatrixFormat};

use super::choice::choice;
use super::common::{
    expand_inputs, inputs_noun, manifest_inputs, no_audio_found, read_inputs, ChannelArg,
    FeatureKind, Input,
};
use super::output_file::{
    data_dir_files, refuse_overwriting_inputs, write_atomically, Destination,
};
use super::parse_bool;
use super::shard::ShardArgs;
use ndarray::Array2;
use rayon::prelude::*;

/// Compute Kaldi-compatible features of audio files.
///
/// Options are named after Kaldi's compute-fbank-feats / compute-mfcc-feats and default to Kaldi's
/// values, except: --num-mel-bins 80 for fbank, and --dither 0 so output is reproducible.
/// Features are computed at the file's own sample rate unless --resample is given. Several
/// channels are mixed to one as for recognition unless --channel picks one (Kaldi takes channel 0
/// of a stereo file, with a warning: --channel 0 gives Kaldi's features).
///
/// One file:   phonrec features speech.wav -o speech.npy
/// Many files: phonrec features corpus/ --output-dir feats/          (feats/NAME.npy each)
///             phonrec features data/train --format ark -o feats.ark (one Kaldi archive, by utt id)
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct FeaturesArgs {
    /// Input audio (WAV: PCM 8–32-bit, float 32/64-bit, µ-law/A-law, 8–192 kHz, any channels; NIST SPHERE, Sun .au,
    /// FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF, MP4/M4A, WebM/Matroska, AMR), folders of it, Kaldi data dirs or wav.scp files (keyed by utterance id), or
    /// `-` for standard input.
    #[arg(required_unless_present = "manifest")]
    pub files: Vec<PathBuf>,

    /// A list of recordings, as for `transcribe --manifest`: a path per line (relative to the
    /// list's folder; further tab-separated columns ignored), or JSON Lines with "audio" and "id".
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// Where to write the features; `-` writes to standard output. Several inputs go to one stream
    /// only as a Kaldi archive (--format ark); otherwise use --output-dir.
    #[arg(short, long, default_value = "-", conflicts_with = "output_dir")]
    pub output: PathBuf,

    /// Write one file per input here (`NAME.npy` etc.; NAME is the file name without extension, or
    /// the utterance id), each written whole or not at all.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    #[command(flatten)]
    pub shard: ShardArgs,

    #[command(flatten)]
    pub channel: ChannelArg,

    /// Output format [default: from the output's extension (.npy, .csv, .tsv, .ark), else tsv;
    /// npy with --output-dir].
    #[arg(long, value_parser = choice::<MatrixFormat>())]
    pub format: Option<MatrixFormat>,

    /// Base features.
    #[arg(long, value_enum, default_value_t = FeatureKind::Fbank)]
    pub kind: FeatureKind,

    /// Number of triangular mel bins [default: 80 for fbank, 23 for mfcc].
    #[arg(long)]
    pub num_mel_bins: Option<usize>,

    /// Number of cepstra (mfcc), C0 included.
    #[arg(long, default_value_t = MfccOptions::default().num_ceps)]
    pub num_ceps: usize,

    /// Cepstral lifter coefficient (mfcc); 0 disables liftering.
    #[arg(long, default_value_t = MfccOptions::default().cepstral_lifter.unwrap_or(0.0))]
    pub cepstral_lifter: f32,

    /// Add the log energy: fbank prepends it as column 0, mfcc puts it in place of C0
    /// [default: false for fbank, true for mfcc].
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub use_energy: Option<bool>,

    /// Floor on the energy (absolute value); 0 means no floor.
    #[arg(long, default_value_t = FbankOptions::default().energy_floor.unwrap_or(0.0))]
    pub energy_floor: f32,

    /// Compute the energy before pre-emphasis and windowing.
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pub raw_energy: bool,

    /// Window: povey, hamming, hanning, rectangular or blackman.
    #[arg(long, default_value = "povey")]
    pub window_type: WindowType,

    /// true: only frames that fit in the signal; false: frames centred every shift, edges reflected.
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pub snip_edges: bool,

    /// Low edge of the mel filters in Hz.
    #[arg(long, default_value_t = MelOptions::default().low_freq_hz)]
    pub low_freq: f32,

    /// High edge of the mel filters in Hz; ≤ 0 is an offset from Nyquist.
    #[arg(long, default_value_t = MelOptions::default().high_freq.to_kaldi(), allow_hyphen_values = true)]
    pub high_freq: f32,

    /// Vocal-tract-length warp factor of the mel filters (Kaldi's --vtln-warp); 1 = none.
    #[arg(long, default_value_t = MelOptions::default().vtln_warp)]
    pub vtln_warp: f32,

    /// Lower inflection point of the VTLN warp in Hz.
    #[arg(long, default_value_t = MelOptions::default().vtln_low_hz)]
    pub vtln_low: f32,

    /// Upper inflection point of the VTLN warp in Hz; < 0 is an offset from the high edge.
    #[arg(long, default_value_t = MelOptions::default().vtln_high.to_kaldi(), allow_hyphen_values = true)]
    pub vtln_high: f32,

    /// Gaussian dither std in int16 units (Kaldi's default is 1; 0 makes output reproducible).
    #[arg(long, default_value_t = FrameOptions::default().dither)]
    pub dither: f32,

    /// Frame length in ms.
    #[arg(long, default_value_t = FrameOptions::default().frame_length_ms)]
    pub frame_length: f32,

    /// Frame shift in ms.
    #[arg(long, default_value_t = FrameOptions::default().frame_shift_ms)]
    pub frame_shift: f32,

    /// Pre-emphasis coefficient.
    #[arg(long, default_value_t = FrameOptions::default().preemphasis_coefficient)]
    pub preemphasis_coefficient: f32,

    /// Subtract each frame's mean before processing.
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pub remove_dc_offset: bool,

    /// Zero-pad frames to a power of two before the FFT.
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pub round_to_power_of_two: bool,

    /// Append deltas and delta-deltas: the regression of Kaldi's add-deltas, with delta-deltas as
    /// torchaudio's compute_deltas twice (the reference this is tested against), which differs from
    /// add-deltas in the first and last 2 × window frames (edges clamped at each pass, not once).
    #[arg(long)]
    pub deltas: bool,

    /// Delta order when --deltas is given: 1 = deltas, 2 = deltas + delta-deltas.
    #[arg(long, requires = "deltas", default_value_t = DeltaOptions::default().order)]
    pub delta_order: usize,

    /// Delta regression window (frames on each side) when --deltas is given.
    #[arg(long, requires = "deltas", default_value_t = DeltaOptions::default().window)]
    pub delta_window: usize,

    /// Per-utterance mean normalisation (after deltas).
    #[arg(long)]
    pub cmvn: bool,

    /// With --cmvn, also normalise the variance.
    #[arg(long, requires = "cmvn")]
    pub norm_vars: bool,

    /// Resample the audio to this rate (Hz) before computing features.
    #[arg(long)]
    pub resample: Option<u32>,
}

impl FeaturesArgs {
    /// The library options these flags describe, for audio at `sample_rate_hz`.
    fn feature_options(&self, sample_rate_hz: u32) -> FeatureOptions {
        KaldiFeatureFlags {
            mfcc: self.kind == FeatureKind::Mfcc,
            num_mel_bins: self.num_mel_bins,
            num_ceps: Some(self.num_ceps),
            cepstral_lifter: Some(self.cepstral_lifter),
            use_energy: self.use_energy,
            energy_floor: self.energy_floor,
            raw_energy: self.raw_energy,
            window_type: self.window_type,
            snip_edges: self.snip_edges,
            low_freq: self.low_freq,
            high_freq: self.high_freq,
            vtln_warp: self.vtln_warp,
            vtln_low: self.vtln_low,
            vtln_high: self.vtln_high,
            dither: self.dither,
            frame_length: self.frame_length,
            frame_shift: self.frame_shift,
            preemphasis_coefficient: self.preemphasis_coefficient,
            remove_dc_offset: self.remove_dc_offset,
            round_to_power_of_two: self.round_to_power_of_two,
            deltas: self.deltas.then_some(DeltaOptions {
                order: self.delta_order,
                window: self.delta_window,
            }),
            cmvn: self.cmvn.then_some(self.norm_vars),
        }
        .options(sample_rate_hz)
    }

    fn resolved_format(&self) -> MatrixFormat {
        self.format.unwrap_or_else(|| {
            if self.output_dir.is_some() {
                return MatrixFormat::Npy;
            }
            self.output
                .extension()
                .and_then(|e| e.to_str())
                .and_then(MatrixFormat::from_extension)
                .unwrap_or(MatrixFormat::Tsv)
        })
    }
}

/// Inputs whose features are computed in parallel before they are written, in input order.
const FILES_PER_ROUND: usize = 32;

/// Compute and write the features.
pub fn run(args: FeaturesArgs) -> anyhow::Result<ExitCode> {
    if let Some(rate) = args.resample {
        if !(phonrec::audio::MIN_SAMPLE_RATE_HZ..=phonrec::audio::MAX_SAMPLE_RATE_HZ)
            .contains(&rate)
        {
            bail!(
                "--resample {rate}: the rate must be between {} and {} Hz",
                phonrec::audio::MIN_SAMPLE_RATE_HZ,
                phonrec::audio::MAX_SAMPLE_RATE_HZ
            );
        }
    }
    let mut inputs = expand_inputs(&args.files)?;
    if let Some(manifest) = &args.manifest {
        inputs.extend(manifest_inputs(manifest)?);
    }
    if inputs.is_empty() {
        return Err(no_audio_found(&args.files));
    }
    let format = args.resolved_format();
    if inputs.len() > 1 && args.output_dir.is_none() && format != MatrixFormat::KaldiText {
        bail!(
            "{} inputs: write one file each with --output-dir DIR, or one Kaldi archive with \
             --format ark",
            inputs.len()
        );
    }
    // Each input's name: its utterance id, else its file stem (the archive key and the file name
    // under --output-dir); with --output-dir two inputs may not share one.
    let keyed: Vec<(Input, String)> = inputs
        .into_iter()
        .map(|input| {
            let key = match &input {
                Input::Utterance { id, .. } => id.clone(),
                _ => input
                    .name()
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            (input, kaldi_key(&key))
        })
        .collect();
    if args.output_dir.is_some() {
        for (input, key) in &keyed {
            if matches!(input, Input::Utterance { .. }) {
                super::common::id_as_file_stem(key)?;
            }
        }
    }
    let output_path = |key: &str| {
        args.output_dir
            .as_ref()
            .map(|dir| dir.join(format!("{key}.{}", format.extension())))
    };
    // Names must differ: a file each under --output-dir, a key each in an archive (Kaldi's tools
    // read one matrix per key).
    let mut seen = std::collections::HashMap::new();
    for (input, key) in &keyed {
        if let Some(other) = seen.insert(key.as_str(), input.name()) {
            match &args.output_dir {
                Some(_) => bail!(
                    "--output-dir: {} and {} would both write {key}.{}; give them different names",
                    other.display(),
                    input.name().display(),
                    format.extension()
                ),
                None => bail!(
                    "{} and {} would both be keyed {key} in the archive; give them different \
                     names (or list them in a wav.scp with an utterance id each)",
                    other.display(),
                    input.name().display()
                ),
            }
        }
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    args.shard.check_resumable(
        keyed
            .iter()
            .any(|(input, _)| matches!(input, Input::Stdin(_))),
    )?;
    let keyed = args
        .shard
        .select(keyed, |(input, _)| input.key(), |(_, key)| output_path(key))?;

    let mut stream: Option<Destination> = match (&args.output_dir, &args.output) {
        (Some(_), _) => None,
        (None, path) if path == Path::new("-") => Some(Destination::to(None)?),
        (None, path) => {
            let data_files = data_dir_files(args.files.iter().map(PathBuf::as_path));
            let inputs = keyed.iter().filter_map(|(input, _)| input.path());
            refuse_overwriting_inputs(path, inputs.chain(data_files.iter().map(PathBuf::as_path)))?;
            Some(Destination::to(Some(path))?)
        }
    };
    let mut failures = 0;
    // Kept across rounds: a recording cut into many utterances (Kaldi segments) is decoded once.
    let reader = args.channel.reader();
    for round in keyed.chunks(FILES_PER_ROUND) {
        let inputs: Vec<&Input> = round.iter().map(|(input, _)| input).collect();
        let computed: Vec<anyhow::Result<Array2<f32>>> = round
            .par_iter()
            .zip(read_inputs(&reader, &inputs))
            .map(|((input, _), wave)| features_of(&args, input, wave))
            .collect();
        for ((input, key), features) in round.iter().zip(computed) {
            let features = match features {
                Ok(features) => features,
                Err(error) if keyed.len() == 1 => return Err(error),
                Err(error) => {
                    failures += 1;
                    eprintln!("phonrec: error: {error:#}");
                    continue;
                }
            };
            match (&mut stream, output_path(key)) {
                (Some(out), _) => write_matrix(features.view(), format, key, out)
                    .with_context(|| format!("writing {}", args.output.display()))?,
                (None, Some(path)) => {
                    let mut bytes = Vec::new();
                    write_matrix(features.view(), format, key, &mut bytes)?;
                    write_atomically(&path, &bytes)?;
                }
                (None, None) => bail!("no output for {}", input.name().display()),
            }
        }
    }
    // An earlier output file is left as it was when every input failed.
    if let Some(out) = stream.filter(|_| failures < keyed.len()) {
        out.finish()?;
    }
    if failures > 0 {
        eprintln!(
            "phonrec: {failures} of {} {} failed",
            keyed.len(),
            inputs_noun(keyed.iter().map(|(input, _)| input))
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// One input's features under the arguments' options.
fn features_of(
    args: &FeaturesArgs,
    input: &Input,
    wave: phonrec::Result<phonrec::audio::Waveform>,
) -> anyhow::Result<Array2<f32>> {
    // The library's errors name the file already; a Kaldi segment's also need its id.
    let mut wave = match input {
        Input::Utterance { id, .. } => wave.with_context(|| format!("utterance {id}"))?,
        _ => wave?,
    };
    if let Some(rate) = args.resample {
        wave = wave.resampled(rate)?;
    }
    let options = args.feature_options(wave.sample_rate_hz);
    let pipeline = FeaturePipeline::new(options).context("invalid feature options")?;
    let features = pipeline.compute(&wave.samples);
    if features.nrows() == 0 {
        eprintln!(
            "phonrec: warning: {} is shorter than one frame ({:.3} s); writing 0 frames",
            input.name().display(),
            wave.duration_s()
        );
    }
    Ok(features)
}
