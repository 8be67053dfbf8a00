//! The whole pipeline for one file: audio -> (resample) -> features -> network (in overlapping windows
//! for long files) -> speech segmentation -> decoder -> forced alignment -> a [`Transcript`] of timed
//! phones.

mod align;
mod edges;
pub mod live;

pub use align::{MATCH_WINDOW_S, MIN_SPEECH_SHARE};
pub use edges::{EdgePad, EDGE_PAD_FRAMES, HOT_EDGE_DB};
mod segment;

pub use segment::{
    effective_energy_floor, frame_levels_dbfs, speech_regions, SegmentOptions,
    DEFAULT_ENERGY_FLOOR_DBFS, DEFAULT_EXTEND_THRESHOLD, DEFAULT_SPEECH_THRESHOLD,
    DEFAULT_UNSURE_BELOW_DB, LOWEST_ENERGY_FLOOR_DBFS, QUIET_RECORDING_RANGE_DB, UNSURE_CONFIDENCE,
};

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

use crate::audio::{
    add_noise_floor, cancel_echoes, conceal_dropouts, dereverberate,
    dereverberate_reverberant_sections, equalise_talker_levels, fill_digital_silence,
    fill_quiet_gaps, fill_spectral_holes, measured_band_top_hz, narrowband_rate_hz, read_audio,
    remove_clicks, remove_dc_offset, repair_clipping, speech_level_dbfs, Dereverb, Waveform,
    DEFAULT_FLOOR_BELOW_DB, MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ,
};
use crate::ctc::{
    decode_spans_with_hypotheses, BeamOptions, BoundaryModel, Decoder, GreedyDecoder, Hypothesis,
    LatticeOptions, PhoneLm, PhoneSpan, PrefixBeamDecoder,
};
use crate::error::{Error, Result};
use crate::features::{FeatureExtractor, FeaturePipeline};
use crate::model::{Blstm, FrameHead, Model};
use crate::phones::PhoneSet;

/// How to decode.
#[derive(Clone, Debug)]
pub struct RecognizerOptions {
    /// Beam width; 1 means greedy decoding. Default 1.
    pub beam: usize,
    /// Phone n-gram LM fused into the beam search (only with `beam > 1`).
    pub lm: Option<PhoneLm>,
    /// LM weight α. Default 0.5.
    pub lm_weight: f32,
    /// Insertion bonus β per phone. Default 0.
    pub insertion_bonus: f32,
    /// Keep `sil` in the output. Default false.
    pub keep_silence: bool,
    /// Per phone, the this many phones the network found most probable over its frames
    /// ([`PhoneSpan::alternatives`]; Allosaurus's `--topk`). Default 0: none.
    pub alternatives: usize,
    /// Keep the beam search's this many best phone sequences for each recording, with their scores
    /// ([`Transcript::nbest`]; pocketsphinx's `-nbest`, Kaldi's n-best lists). At most `beam`, and
    /// only with the beam search (`beam > 1`). Default 0: none.
    pub nbest: usize,
    /// Vocal-tract-length normalisation: the mel warp factors to try per file (e.g. 0.9 to 1.15); the
    /// one under which the network is most confident on the file's first 30 s is used for the whole
    /// file. Empty (the default): no warping. Helps on voices unlike the training voices, for a model
    /// trained with VTLP (`phonrec train --vtlp`); costs one extra network pass over ≤ 30 s per factor.
    pub vtln_warps: Vec<f32>,
    /// Speech segmentation: only the speech regions are decoded (on by default; see
    /// [`SegmentOptions`]).
    pub segment: SegmentOptions,
    /// Fill runs of digital silence (padding, gaps between joined clips) with the recording's own
    /// noise floor before the features, so that the floor does not start and stop abruptly where the
    /// network would hear a fricative (see [`fill_digital_silence`]); in a recording without such
    /// runs, raise gated gaps to the floor under the speech (see [`fill_quiet_gaps`]). Default true.
    pub fill_digital_silence: bool,
    /// Recognise a recording that starts (ends) loud, as a clip cut tight at the speech does,
    /// with 0.08 s of its own floor before (after) it; times stay the recording's (see
    /// [`EdgePad`]). Not for alignment, whose frames are the recording's. Default true.
    pub pad_loud_edges: bool,
    /// Restore peaks cut flat at the converter's full scale (a recording made with the input gain
    /// too high) before the features; audio whose peaks do not pile up on a rail is unchanged (see
    /// [`repair_clipping`]). Default true.
    pub repair_clipping: bool,
    /// Fill dropped packets (runs of digital zeros of 5–100 ms cut into voiced speech, as a network
    /// without loss concealment leaves them) with the pitch periods around them before the
    /// features; other audio is unchanged (see [`conceal_dropouts`]). Default true.
    pub conceal_dropouts: bool,
    /// Fill the spectral holes a perceptual coder at a low bit rate leaves (MP3 at 16–24 kbit/s:
    /// bands of the spectrum dropped for tens of milliseconds) with noise just under the spectrum
    /// around them, before the features; recordings that do not measure as coded are unchanged
    /// (see [`fill_spectral_holes`]). Default true.
    pub fill_spectral_holes: bool,
    /// Replace clicks (keyboard and mouse clicks, taps: a few milliseconds of broadband sound
    /// standing 25 dB over the band around them) by an interpolation of the sound around them,
    /// before the features; recordings without clicks are unchanged (see [`remove_clicks`]).
    /// Default true.
    pub remove_clicks: bool,
    /// Raise the stretches of a recording clearly quieter than its speech level (a talker far from
    /// the microphone beside a near one) to that level before the features, leaving them out of
    /// the input normalisation's statistics and dropping a speech region in them whose phones are
    /// unsure; a recording of one talker at one level is unchanged (see
    /// [`equalise_talker_levels`]). Default true.
    pub equalise_levels: bool,
    /// Bring a recording stored above 8 kHz that holds nothing of its own above 4 kHz (a
    /// telephone call or an 8 kHz recording converted to 16 kHz by another tool) back to 8 kHz
    /// (measured as read, resampled after the clipping and dropout repairs, before the rest), so
    /// that it is recognised as the 8 kHz recording it is; wideband recordings are unchanged (see
    /// [`narrowband_rate_hz`]). Default true.
    pub narrowband_as_8k: bool,
    /// Add white noise this many dB under the recording's speech level just before the features
    /// (band-limited to the band the recording had), so that every floor is at least that loud
    /// and that flat; 0 adds none. Default [`DEFAULT_FLOOR_BELOW_DB`] (see
    /// [`add_noise_floor`]).
    pub noise_floor_below_db: f32,
    /// Remove late reverberation (weighted prediction error) before the features: always, never,
    /// or (the default) where the recording measures reverberant, 30 s by 30 s (see
    /// [`dereverberate_reverberant_sections`]).
    pub dereverb: Dereverb,
    /// How [`Recognizer::align`] searches and times phones next to pauses.
    pub align: LatticeOptions,
    /// Where [`Recognizer::align`] puts phone boundaries relative to the network's spikes: the
    /// model's measured extents (the built-in model has them), or `None` for the blank gaps split at
    /// their midpoints.
    pub boundaries: Option<BoundaryModel>,
    /// A frame head fitted for this model (the built-in model has one): when set,
    /// [`Recognizer::align`] places boundaries where its frame labels change
    /// ([`place_by_frames`](crate::ctc::place_by_frames)), and `boundaries` is not used.
    pub frame_head: Option<FrameHead>,
    /// The match score (see [`Alignment::match_score`](crate::align::Alignment::match_score)) below
    /// which an alignment is flagged as audio that does not say its text. Default
    /// [`DEFAULT_MIN_MATCH_SCORE`].
    pub min_match_score: f64,
    /// The same for the worst second's score
    /// ([`Alignment::worst_second_score`](crate::align::Alignment::worst_second_score)). Default
    /// [`DEFAULT_MIN_WORST_SECOND_SCORE`].
    pub min_worst_second_score: f64,
}

/// The added noise floor stops at a recording's measured band top when that is below this share
/// of the recording's Nyquist frequency (a coder's low-pass), and at the Nyquist frequency otherwise.
const BAND_CUT_SHARE: f32 = 0.8;

/// Largest [`RecognizerOptions::noise_floor_below_db`]: a floor further down is under 16-bit
/// quantisation for any speech level.
pub const MAX_FLOOR_BELOW_DB: f32 = 100.0;

/// Default [`RecognizerOptions::min_worst_second_score`], chosen with [`DEFAULT_MIN_MATCH_SCORE`].
pub const DEFAULT_MIN_WORST_SECOND_SCORE: f64 = -2.5;

/// The warp factors `phonrec transcribe --vtln` tries ([`RecognizerOptions::vtln_warps`]).
pub const DEFAULT_VTLN_WARPS: [f32; 6] = [0.9, 0.95, 1.0, 1.05, 1.1, 1.15];

/// Default [`RecognizerOptions::min_match_score`], chosen with `recipes/align/mismatch.py` on the
/// held-out synthetic voice and the real dc_tts recordings aligned to their own text, to another
/// recording's and to texts with words left out or added (models/README.md, "Alignment").
pub const DEFAULT_MIN_MATCH_SCORE: f64 = -0.8;

impl Default for RecognizerOptions {
    fn default() -> Self {
        RecognizerOptions {
            beam: 1,
            lm: None,
            lm_weight: 0.5,
            insertion_bonus: 0.0,
            keep_silence: false,
            alternatives: 0,
            nbest: 0,
            vtln_warps: Vec::new(),
            segment: SegmentOptions::default(),
            fill_digital_silence: true,
            pad_loud_edges: true,
            repair_clipping: true,
            conceal_dropouts: true,
            fill_spectral_holes: true,
            remove_clicks: true,
            equalise_levels: true,
            narrowband_as_8k: true,
            noise_floor_below_db: DEFAULT_FLOOR_BELOW_DB,
            dereverb: Dereverb::Auto,
            align: LatticeOptions::default(),
            boundaries: None,
            frame_head: None,
            min_match_score: DEFAULT_MIN_MATCH_SCORE,
            min_worst_second_score: DEFAULT_MIN_WORST_SECOND_SCORE,
        }
    }
}

/// The phones recognised in one recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// Where the audio came from (empty for in-memory audio).
    pub source: PathBuf,
    /// The utterance id the input was listed under (a Kaldi `wav.scp`), if any: output is keyed by
    /// it instead of the path.
    pub id: Option<String>,
    /// Where the audio starts in `source` when it is a stretch of it (a Kaldi segment, a live
    /// utterance), in seconds: the phones' times count from there, as Kaldi's per-utterance CTMs
    /// do. `None` for a whole file.
    pub offset_s: Option<f64>,
    /// Length of the audio in seconds.
    pub duration_s: f64,
    /// Phones in time order, with start/end seconds and confidence.
    pub spans: Vec<PhoneSpan>,
    /// The VTLN warp factor chosen for this file (1 without VTLN).
    pub vtln_warp: f32,
    /// The speech regions that were decoded, as (start, end) seconds in the file's timeline; every
    /// phone lies inside one. With segmentation off, one region covering the file.
    pub segments: Vec<(f32, f32)>,
    /// The fraction of the samples that were clipped (cut flat at full scale) and restored before
    /// recognition; 0 when the recording was not clipped or the repair is off.
    pub clipped_fraction: f32,
    /// Packets lost in voiced speech (runs of 5-100 ms of digital zeros) that were concealed
    /// before recognition ([`RecognizerOptions::conceal_dropouts`]); 0 when none or the
    /// concealment is off.
    pub concealed_dropouts: usize,
    /// The seconds of audio those concealed dropouts filled.
    pub concealed_s: f32,
    /// Whether the recording measured as coded at a low bit rate and its spectral holes were
    /// filled before recognition ([`RecognizerOptions::fill_spectral_holes`]).
    pub spectral_holes_filled: bool,
    /// Clicks found and interpolated before recognition ([`RecognizerOptions::remove_clicks`]); 0
    /// when none or the removal is off.
    pub clicks_removed: usize,
    /// Stretches raised to the recording's speech level before recognition
    /// ([`RecognizerOptions::equalise_levels`]); 0 when none or the equaliser is off.
    pub levels_raised: usize,
    /// Whether late reverberation was removed before recognition ([`RecognizerOptions::dereverb`]).
    pub dereverberated: bool,
    /// Whether the recording, stored above 8 kHz, held nothing of its own above 4 kHz and was
    /// recognised at 8 kHz ([`RecognizerOptions::narrowband_as_8k`]).
    pub narrowband: bool,
    /// The DC offset removed before recognition (a converter or preamplifier that is not
    /// centred), its RMS in dB relative to full scale; `None` when the recording had none large
    /// enough to make its pauses louder, and was left as it was.
    pub dc_offset_dbfs: Option<f32>,
    /// The recording's loudest sample as read, dB relative to full scale (−∞ for digital
    /// silence): with no phones, a level far below any microphone's noise floor tells a muted input
    /// or a gain set far too low from a recording without speech.
    pub peak_dbfs: f32,
    /// The best phone sequences for the whole recording, best first, with their scores
    /// ([`RecognizerOptions::nbest`] of them, fewer when the search found fewer different ones;
    /// empty unless asked for). The first is the sequence of `spans`. Speech regions (and the
    /// pieces long regions are decoded in) are searched one by one, so a recording's list
    /// combines theirs: each entry's phones are one hypothesis per region joined, its scores
    /// their sums.
    pub nbest: Vec<Hypothesis>,
}

/// What was measured and repaired in a recording before its features (see [`Transcript`]).
#[derive(Clone, Debug, Default)]
struct Repairs {
    /// Each network frame's level (dBFS) at the model's rate before the repairs there (clicks,
    /// spectral holes, dereverberation): the sound as recorded, which the network's speech
    /// regions are measured against ([`SegmentOptions::unsure_below_db`]).
    recorded_levels: Vec<f32>,
    clipped_fraction: f32,
    concealed_dropouts: usize,
    concealed_s: f32,
    spectral_holes_filled: bool,
    clicks_removed: usize,
    levels_raised: usize,
    narrowband: bool,
    /// The stretches raised to the speech level ([`RecognizerOptions::equalise_levels`]), as
    /// sample ranges at the model's rate (left out of the normalisation's statistics) and in
    /// network frames `(start, end)` (where an unsure region is dropped).
    raised_samples: Vec<Range<usize>>,
    raised_frames: Vec<(usize, usize)>,
    dereverberated: bool,
    dc_offset_dbfs: Option<f32>,
    peak_dbfs: f32,
    /// Floor put before and after loud edges ([`RecognizerOptions::pad_loud_edges`]): everything
    /// after [`Recognizer::prepare`] is in the padded recording's frames until
    /// [`Recognizer::decode`] takes the pads out again.
    edge_pad: EdgePad,
}

/// Everything one pass of the recogniser computed for a recording: the audio it heard, the network's
/// posteriors and the decoded transcript. `transcribe` keeps the transcript; `probs` shows it all.
#[derive(Clone, Debug)]
pub struct Recognition {
    /// The audio the network heard: at the model's sample rate, digital silence filled and late
    /// reverberation removed (each if on).
    pub wave: Waveform,
    /// Natural-log posteriors `[output frames, phones + blank]`, under the transcript's VTLN warp.
    pub log_probs: Array2<f32>,
    /// The decoded phones, their times and the speech regions.
    pub transcript: Transcript,
}

/// One recording of a batch, prepared for the network: its duration as read, the audio at the
/// model's rate, its features and the share of samples whose clipping was repaired.
struct BatchInput {
    duration_s: f64,
    wave: Waveform,
    features: Array2<f32>,
    repairs: Repairs,
}

/// A decoder and its description in words (see [`Recognizer::decoding`]).
type BuiltDecoder = (Box<dyn Decoder>, String);

/// What [`Recognizer::posteriors`] computed for a recording.
struct Posteriors {
    wave: Waveform,
    log_probs: Array2<f32>,
    vtln_warp: f32,
    /// Speech regions as output-frame ranges.
    regions: Vec<(usize, usize)>,
    repairs: Repairs,
}

/// A model with a decoder: turns audio into [`Transcript`]s. `Send + Sync`, so one recognizer serves all
/// threads.
pub struct Recognizer {
    model: Model,
    /// The decoder, once built (at once, or when a deferred LM has loaded), with its description.
    decoder: OnceLock<BuiltDecoder>,
    /// A decoder being built on another thread (see [`Recognizer::with_deferred_lm`]).
    pending: Mutex<Option<JoinHandle<Result<BuiltDecoder>>>>,
    keep_silence: bool,
    alternatives: usize,
    nbest: usize,
    /// The model's feature pipeline with each VTLN warp factor to try (empty: VTLN off).
    warped_features: Vec<(f32, FeaturePipeline)>,
    segment: SegmentOptions,
    fill_digital_silence: bool,
    pad_loud_edges: bool,
    repair_clipping: bool,
    conceal_dropouts: bool,
    fill_spectral_holes: bool,
    remove_clicks: bool,
    equalise_levels: bool,
    narrowband_as_8k: bool,
    noise_floor_below_db: f32,
    dereverb: Dereverb,
    align: LatticeOptions,
    boundaries: Option<BoundaryModel>,
    frame_head: Option<FrameHead>,
    min_match_score: f64,
    min_worst_second_score: f64,
}

impl Recognizer {
    /// Combine a model with decoding options.
    pub fn new(model: Model, options: RecognizerOptions) -> Result<Self> {
        options.segment.validate()?;
        let below = options.noise_floor_below_db;
        if !(below.is_finite() && (0.0..=MAX_FLOOR_BELOW_DB).contains(&below)) {
            return Err(Error::InvalidOptions {
                what: "noise floor",
                reason: format!(
                    "{below} dB under the speech must be in 0..{MAX_FLOOR_BELOW_DB} (0: none)"
                ),
            });
        }
        if options.nbest > 1 && options.beam <= 1 {
            return Err(Error::InvalidOptions {
                what: "n-best list",
                reason: format!(
                    "{} best sequences need the beam search (beam > 1); greedy decoding finds one",
                    options.nbest
                ),
            });
        }
        let mut warped_features = Vec::with_capacity(options.vtln_warps.len());
        for &warp in &options.vtln_warps {
            if !(warp.is_finite() && (0.5..=2.0).contains(&warp)) {
                return Err(Error::InvalidOptions {
                    what: "VTLN",
                    reason: format!("warp factor {warp} is outside 0.5..2"),
                });
            }
            let mut features = model.features().options().clone();
            features.mel_mut().vtln_warp = warp;
            warped_features.push((warp, FeaturePipeline::new(features)?));
        }
        let recognizer = Recognizer {
            model,
            decoder: OnceLock::new(),
            pending: Mutex::new(None),
            keep_silence: options.keep_silence,
            alternatives: options.alternatives,
            nbest: options.nbest,
            warped_features,
            segment: options.segment.clone(),
            fill_digital_silence: options.fill_digital_silence,
            pad_loud_edges: options.pad_loud_edges,
            repair_clipping: options.repair_clipping,
            conceal_dropouts: options.conceal_dropouts,
            fill_spectral_holes: options.fill_spectral_holes,
            remove_clicks: options.remove_clicks,
            equalise_levels: options.equalise_levels,
            narrowband_as_8k: options.narrowband_as_8k,
            noise_floor_below_db: options.noise_floor_below_db,
            dereverb: options.dereverb,
            align: options.align,
            boundaries: options.boundaries.clone(),
            frame_head: options.frame_head.clone(),
            min_match_score: options.min_match_score,
            min_worst_second_score: options.min_worst_second_score,
        };
        let built = build_decoder(options)?;
        // A fresh OnceLock takes the value.
        let _ = recognizer.decoder.set(built);
        Ok(recognizer)
    }

    /// As [`new`](Self::new), with the phone LM loaded by `load_lm` on another thread while the
    /// recogniser reads audio and runs the network: the LM (≈ 0.25 s for the built-in one) then costs
    /// a short run nothing extra. `options.lm` is ignored. The first decode waits for it; an error
    /// from `load_lm` is returned by every recognition.
    pub fn with_deferred_lm(
        model: Model,
        mut options: RecognizerOptions,
        load_lm: impl FnOnce() -> Result<Option<PhoneLm>> + Send + 'static,
    ) -> Result<Self> {
        options.lm = None;
        let background = options.clone();
        // `new` checks every option now (the beam search's too, built without an LM: cheap), so a
        // bad option fails here rather than at the first decode; its decoder is then replaced.
        let recognizer = Self::new(model, options)?;
        let recognizer = Recognizer {
            decoder: OnceLock::new(),
            ..recognizer
        };
        let handle = std::thread::spawn(move || {
            let mut options = background;
            options.lm = load_lm()?;
            build_decoder(options)
        });
        if let Ok(mut pending) = recognizer.pending.lock() {
            *pending = Some(handle);
        }
        Ok(recognizer)
    }

    /// The decoder, waiting for a deferred LM if it is still loading.
    fn decoder(&self) -> Result<&dyn Decoder> {
        if let Some((decoder, _)) = self.decoder.get() {
            return Ok(decoder.as_ref());
        }
        let mut pending = self.pending.lock().map_err(|_| Error::InvalidOptions {
            what: "decoder",
            reason: "another thread failed while the LM loaded".into(),
        })?;
        if let Some(handle) = pending.take() {
            let built = handle.join().map_err(|_| Error::InvalidOptions {
                what: "decoder",
                reason: "loading the phone LM panicked".into(),
            })??;
            let _ = self.decoder.set(built);
        }
        self.decoder
            .get()
            .map(|(decoder, _)| decoder.as_ref())
            .ok_or_else(|| Error::InvalidOptions {
                what: "decoder",
                reason: "the phone LM failed to load (see the first error)".into(),
            })
    }

    /// How this recogniser decodes, in words: `greedy` or the beam width, the LM with its order,
    /// weight and insertion bonus, segmentation and VTLN. Reports print it so that two runs that
    /// decode differently say so.
    pub fn decoding(&self) -> &str {
        match self.decoder() {
            Ok(_) => self.decoder.get().map_or("", |(_, text)| text.as_str()),
            Err(_) => "a decoder whose phone LM failed to load",
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model's phones.
    pub fn phones(&self) -> &PhoneSet {
        self.model.phones()
    }

    /// Seconds per network output frame (the feature shift × frame stacking).
    pub fn output_frame_shift_s(&self) -> f64 {
        self.model.frame_shift_s()
    }

    /// Samples (at the model's rate) per network output frame.
    fn output_hop_samples(&self) -> usize {
        self.model.features().options().frame().window_shift()
            * self.model.network().config().stack_frames.max(1)
    }

    /// Seconds from the start of the audio to the centre of the first output frame (the stacked
    /// feature windows' middle); output frame `t` is centred `t · output_frame_shift_s()` later.
    pub fn output_frame_centre_s(&self) -> f64 {
        let frame = self.model.features().options().frame();
        let stack = self.model.network().config().stack_frames.max(1);
        let span = frame.window_size() + (stack - 1) * frame.window_shift();
        span as f64 / 2.0 / f64::from(self.model.sample_rate_hz())
    }

    /// The network's last hidden layer `[output frames, 2 · hidden]` for audio at any rate, prepared
    /// as for alignment (checked, filled, resampled, under the VTLN warp alignment would choose):
    /// what a [`FrameHead`] reads, and what one is fitted on (`phonrec fit-frame-head`).
    pub fn hidden_states(&self, wave: Waveform) -> Result<Array2<f32>> {
        let Posteriors {
            wave,
            vtln_warp,
            repairs,
            ..
        } = self.posteriors(wave, false)?;
        self.hidden_states_prepared(&wave, vtln_warp, &repairs.raised_samples)
    }

    /// [`posteriors`](Self::posteriors) and `head`'s frame log-probabilities, in one network pass
    /// where it can (no VTLN): the CTC log-posteriors are projected from the same hidden layer the
    /// head reads, window by window, so a long file's hidden layer is never kept whole.
    fn posteriors_and_frames(
        &self,
        wave: Waveform,
        head: &FrameHead,
    ) -> Result<(Posteriors, Array2<f32>)> {
        if !self.warped_features.is_empty() {
            let posteriors = self.posteriors(wave, false)?;
            let hidden = self.hidden_states_prepared(
                &posteriors.wave,
                posteriors.vtln_warp,
                &posteriors.repairs.raised_samples,
            )?;
            let frames = head.log_probs(hidden.view())?;
            return Ok((posteriors, frames));
        }
        let (wave, repairs) = self.prepare(wave, false)?;
        let network = self.model.network();
        let outputs = network.config().num_outputs;
        let features = self
            .model
            .features()
            .compute_excluding(&wave.samples, &repairs.raised_samples);
        let both =
            network.map_hidden_windowed(features.view(), outputs + head.classes(), |hidden| {
                let log_probs = network.log_probs_from_hidden(hidden)?;
                let frames = head.log_probs(hidden)?;
                ndarray::concatenate(ndarray::Axis(1), &[log_probs.view(), frames.view()])
                    .map_err(|e| Error::Shape(e.to_string()))
            })?;
        let log_probs = both.slice(s![.., ..outputs]).to_owned();
        let frames = both.slice(s![.., outputs..]).to_owned();
        let posteriors = self.finish_posteriors(wave, log_probs, 1.0, repairs)?;
        Ok((posteriors, frames))
    }

    /// [`hidden_states`](Self::hidden_states) of audio already prepared, under `vtln_warp`, the
    /// `raised` sample ranges left out of the normalisation's statistics.
    fn hidden_states_prepared(
        &self,
        wave: &Waveform,
        vtln_warp: f32,
        raised: &[Range<usize>],
    ) -> Result<Array2<f32>> {
        let pipeline = self
            .warped_features
            .iter()
            .find(|(warp, _)| *warp == vtln_warp)
            .map_or(self.model.features(), |(_, p)| p);
        let features = pipeline.compute_excluding(&wave.samples, raised);
        self.model.network().top_hidden_windowed(features.view())
    }

    /// Per-frame log-posteriors `[output frames, phones + blank]` of audio at any rate.
    pub fn log_probs(&self, wave: Waveform) -> Result<Array2<f32>> {
        let (wave, repairs) = self.prepare(wave, false)?;
        Ok(self.warped_log_probs(&wave, &repairs.raised_samples)?.0)
    }

    /// Check in-memory audio, restore its clipped peaks and fill its digital silence (each if on),
    /// remove its DC offset (where it would change its pauses' level), bring it to the model's
    /// rate, interpolate its clicks (if on), fill its spectral holes (if on and it measures as
    /// coded at a low bit rate), remove its late reverberation (if on, or measured reverberant),
    /// raise quieter talkers to its speech level (if on) and add a faint noise floor under its
    /// speech (if on); also what was repaired. Clipping is repaired at the recorded rate, where
    /// the flat tops are still flat (resampling rings around them); reverberation at the
    /// model's, where the predictor's length in frames is the same for every input rate.
    fn prepare(&self, mut wave: Waveform, pad_edges: bool) -> Result<(Waveform, Repairs)> {
        check_wave(&wave)?;
        let peak = wave.samples.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        let mut repairs = Repairs {
            peak_dbfs: 20.0 * (peak / crate::audio::INT16_SCALE).log10(),
            ..Repairs::default()
        };
        // Measured as stored, before any repair adds sound of its own above 4 kHz (a fill's noise).
        let narrowband = if self.narrowband_as_8k {
            narrowband_rate_hz(&wave.samples, wave.sample_rate_hz)
        } else {
            None
        };
        if self.repair_clipping {
            let repair = repair_clipping(&mut wave.samples);
            repairs.clipped_fraction = repair.samples as f32 / wave.samples.len().max(1) as f32;
        }
        if self.conceal_dropouts {
            // Before the digital silence is filled: a dropout is a run of digital zeros too.
            let concealed = conceal_dropouts(&mut wave.samples, wave.sample_rate_hz);
            repairs.concealed_dropouts = concealed.runs;
            repairs.concealed_s = concealed.samples as f32 / wave.sample_rate_hz as f32;
        }
        if let Some(rate_hz) = narrowband {
            // After the clipping repair (the flat tops are flat at the stored rate), before the
            // fills (which then fill with a floor of the 8 kHz band).
            wave = wave.resampled(rate_hz)?;
            repairs.narrowband = true;
        }
        if self.fill_digital_silence {
            // A recording padded with digital silence is filled from its own floor; one without
            // may have gated gaps instead.
            if fill_digital_silence(&mut wave.samples, wave.sample_rate_hz).runs == 0 {
                fill_quiet_gaps(&mut wave.samples, wave.sample_rate_hz);
            }
        }
        // After the fills (the pads are of the floor they measure), before the offset's removal
        // (the pads carry the floor's offset).
        if pad_edges && self.pad_loud_edges {
            if let Some((padded, pad)) = edges::pad_loud_edges(
                &wave.samples,
                wave.sample_rate_hz,
                self.output_frame_shift_s(),
            ) {
                wave.samples = padded;
                repairs.edge_pad = pad;
            }
        }
        // After the clipping repair (which finds the rails an offset moved) and the fills (whose
        // noise carries the floor's offset), before anything measures a level.
        let offset = remove_dc_offset(&mut wave.samples, wave.sample_rate_hz);
        if offset.removed {
            repairs.dc_offset_dbfs =
                Some(20.0 * (offset.offset_rms / crate::audio::INT16_SCALE).log10());
        }
        let recorded_rate_hz = wave.sample_rate_hz;
        let mut wave = wave.resampled(self.model.sample_rate_hz())?;
        let hop = self.output_hop_samples();
        repairs.recorded_levels =
            frame_levels_dbfs(&wave.samples, hop, wave.samples.len().div_ceil(hop));
        if self.remove_clicks {
            // At the model's rate, in the upper half of the band the recording has: 4-8 kHz at
            // 16 kHz or more, 2-4 kHz for a telephone recording (nothing above its 4 kHz).
            let band_top_hz = recorded_rate_hz.min(wave.sample_rate_hz) as f32 / 2.0;
            repairs.clicks_removed =
                remove_clicks(&mut wave.samples, wave.sample_rate_hz, band_top_hz / 2.0).clicks;
        }
        if self.fill_spectral_holes {
            // At the model's rate: the neighbourhoods are fixed in Hz and ms, and an 8 kHz
            // recording's empty upper band is left out by its own measure (its band edge).
            repairs.spectral_holes_filled =
                fill_spectral_holes(&mut wave.samples, wave.sample_rate_hz).filled;
        }
        let dereverberated = match self.dereverb {
            Dereverb::Off => None,
            Dereverb::On => Some(match cancel_echoes(&wave.samples, wave.sample_rate_hz) {
                Some(cancelled) => dereverberate(&cancelled, wave.sample_rate_hz),
                None => dereverberate(&wave.samples, wave.sample_rate_hz),
            }),
            Dereverb::Auto => {
                dereverberate_reverberant_sections(&wave.samples, wave.sample_rate_hz)
            }
        };
        if let Some(samples) = dereverberated {
            wave.samples = samples;
            repairs.dereverberated = true;
        }
        // The added floor's level and band are the recording's, measured after the repairs above
        // (which measure its own floor) and before its levels are evened out: a raised stretch
        // with peaks over the rest's, or a narrower band (a jingle's notes), would otherwise set
        // the floor under all of it (measured: a synthetic jingle 20 dB under a clip, before it,
        // changed 3 of the clip's phones; measured before, none).
        let floor = (self.noise_floor_below_db > 0.0)
            .then(|| {
                let levels =
                    frame_levels_dbfs(&wave.samples, hop, wave.samples.len().div_ceil(hop));
                let speech_dbfs = speech_level_dbfs(&levels)?;
                // Within the band the recording has: its rate's, or a coder's low-pass well
                // inside it (MP3 at 16 kbit/s keeps 5.5 kHz of 8). A telephone filter's edge
                // near the top (3.4 kHz of 4) is not a cut: noise up to 4 kHz measured better.
                let recorded_top_hz = recorded_rate_hz.min(wave.sample_rate_hz) as f32 / 2.0;
                let measured_top_hz = measured_band_top_hz(&wave.samples, wave.sample_rate_hz);
                let band_top_hz = if measured_top_hz < BAND_CUT_SHARE * recorded_top_hz {
                    measured_top_hz
                } else {
                    recorded_top_hz
                };
                Some((speech_dbfs - self.noise_floor_below_db, band_top_hz))
            })
            .flatten();
        if self.equalise_levels {
            let equalised = equalise_talker_levels(&mut wave.samples, wave.sample_rate_hz);
            repairs.levels_raised = equalised.raised;
            repairs.raised_frames = equalised
                .raised_samples
                .iter()
                .map(|range| (range.start / hop, range.end.div_ceil(hop)))
                .collect();
            repairs.raised_samples = equalised.raised_samples;
        }
        if let Some((level_dbfs, band_top_hz)) = floor {
            // Last, on what the features will see.
            add_noise_floor(
                &mut wave.samples,
                wave.sample_rate_hz,
                band_top_hz,
                level_dbfs,
            )?;
        }
        Ok((wave, repairs))
    }

    /// [`log_probs`](Self::log_probs) of audio at the model's rate and the VTLN warp factor they
    /// were computed with; the `raised` sample ranges are left out of the normalisation's
    /// statistics (see [`FeaturePipeline::compute_excluding`]).
    fn warped_log_probs(
        &self,
        wave: &Waveform,
        raised: &[Range<usize>],
    ) -> Result<(Array2<f32>, f32)> {
        let network = self.model.network();
        if self.warped_features.is_empty() {
            let features = self
                .model
                .features()
                .compute_excluding(&wave.samples, raised);
            return Ok((network.log_probs_windowed(features.view())?, 1.0));
        }
        // Choose the warp on the first VTLN_ESTIMATE_S seconds: the one whose best path has the
        // highest mean log-probability per frame (the network is most sure of what it hears).
        let estimate_len = (VTLN_ESTIMATE_S * f64::from(self.model.sample_rate_hz())) as usize;
        let excerpt = &wave.samples[..wave.samples.len().min(estimate_len)];
        let mut best: Option<(&(f32, FeaturePipeline), f32, Array2<f32>)> = None;
        for candidate in &self.warped_features {
            let features = candidate.1.compute_excluding(excerpt, raised);
            let log_probs = network.log_probs_windowed(features.view())?;
            let score = mean_best_path_log_prob(log_probs.view());
            if best.as_ref().is_none_or(|(_, s, _)| score > *s) {
                best = Some((candidate, score, log_probs));
            }
        }
        let Some((&(warp, ref pipeline), _, excerpt_log_probs)) = best else {
            unreachable!("warped_features is not empty");
        };
        if excerpt.len() == wave.samples.len() {
            return Ok((excerpt_log_probs, warp));
        }
        let features = pipeline.compute_excluding(&wave.samples, raised);
        Ok((network.log_probs_windowed(features.view())?, warp))
    }

    /// Recognise in-memory audio.
    pub fn transcribe_wave(&self, wave: Waveform) -> Result<Transcript> {
        Ok(self.recognize(wave)?.transcript)
    }

    /// Recognise in-memory audio (any rate) and keep what the network computed on the way: the one
    /// inference path behind `transcribe`, `eval` and `probs` (features -> windowed network -> speech
    /// segmentation -> decoder -> alignment).
    pub fn recognize(&self, wave: Waveform) -> Result<Recognition> {
        let duration_s = wave.duration_s();
        let posteriors = self.posteriors(wave, true)?;
        self.decode(duration_s, posteriors)
    }

    /// Recognise several recordings (any rates) at once: the short ones (up to one network window,
    /// ~68 s) share network batches with others of similar length, so each step of the recurrence
    /// reads the weights once for many clips; the rest is as [`recognize`](Self::recognize) does,
    /// file by file in parallel. Results in input order. Outputs are those of `recognize` up to
    /// float rounding in the batched products.
    pub fn recognize_batch(&self, waves: Vec<Waveform>) -> Vec<Result<Recognition>> {
        if waves.len() == 1 {
            // One file (perhaps an hour long) stays on the calling thread, as `recognize` runs it.
            return waves.into_iter().map(|w| self.recognize(w)).collect();
        }
        if !self.warped_features.is_empty() {
            // VTLN chooses a warp per file first: no shared batches.
            return waves.into_par_iter().map(|w| self.recognize(w)).collect();
        }
        let pipeline = self.model.features();
        let network = self.model.network();
        let prepared: Vec<Result<BatchInput>> = waves
            .into_par_iter()
            .map(|wave| {
                let duration_s = wave.duration_s();
                let (wave, repairs) = self.prepare(wave, true)?;
                let features = pipeline.compute_excluding(&wave.samples, &repairs.raised_samples);
                Ok(BatchInput {
                    duration_s,
                    wave,
                    features,
                    repairs,
                })
            })
            .collect();
        let views: Vec<Option<ArrayView2<f32>>> = prepared
            .iter()
            .map(|p| p.as_ref().ok().map(|p| p.features.view()))
            .collect();
        let log_probs = batched_short_log_probs(network, &views);
        prepared
            .into_par_iter()
            .zip(log_probs)
            .map(|(prepared, log_probs)| {
                let input = prepared?;
                let log_probs = match log_probs {
                    Some(log_probs) => log_probs,
                    None => network.log_probs_windowed(input.features.view())?,
                };
                let posteriors =
                    self.finish_posteriors(input.wave, log_probs, 1.0, input.repairs)?;
                self.decode(input.duration_s, posteriors)
            })
            .collect()
    }

    /// Transcripts of audio that was read (or failed to read) beforehand, in order: the readable
    /// ones recognised together ([`recognize_batch`](Self::recognize_batch)), the errors passed on.
    pub fn transcribe_waves(&self, waves: Vec<Result<Waveform>>) -> Vec<Result<Transcript>> {
        let mut readable = Vec::new();
        let slots: Vec<Result<usize>> = waves
            .into_iter()
            .map(|wave| {
                wave.map(|wave| {
                    readable.push(wave);
                    readable.len() - 1
                })
            })
            .collect();
        let mut recognised: Vec<Option<Result<Transcript>>> = self
            .recognize_batch(readable)
            .into_iter()
            .map(|r| Some(r.map(|recognition| recognition.transcript)))
            .collect();
        slots
            .into_iter()
            .map(|slot| {
                let k = slot?;
                recognised[k]
                    .take()
                    .unwrap_or_else(|| Err(Error::Shape("a recording was recognised twice".into())))
            })
            .collect()
    }

    /// Recognise audio files together (read in parallel, short ones sharing network batches), each
    /// transcript named by its path. Results in input order.
    pub fn transcribe_files(&self, paths: &[&Path]) -> Vec<Result<Transcript>> {
        let waves: Vec<Result<Waveform>> = paths.par_iter().map(|p| read_audio(p)).collect();
        self.transcribe_waves(waves)
            .into_iter()
            .zip(paths)
            .map(|(result, path)| {
                result.map(|mut transcript| {
                    transcript.source = path.to_path_buf();
                    transcript
                })
            })
            .collect()
    }

    /// Decode and time the phones of a recording's posteriors.
    fn decode(&self, duration_s: f64, posteriors: Posteriors) -> Result<Recognition> {
        let Posteriors {
            mut wave,
            log_probs,
            vtln_warp,
            regions,
            repairs,
        } = posteriors;
        let shift = self.output_frame_shift_s() as f32;
        // Times in the padded recording until the end, where the pads come out again.
        let pad = repairs.edge_pad;
        let padded_duration_s = duration_s as f32 + (pad.start + pad.end) as f32 * shift;
        let levels = &repairs.recorded_levels;
        let background_dbfs = background_level_dbfs(levels, &regions);
        // Decode and align region by region, long regions in pieces: the forced alignment is
        // O(frames × phones) in memory, so a one-hour file must not be aligned in one piece. Pieces
        // end at frames where the blank is all but certain, so no phone is cut in two.
        let mut spans = Vec::new();
        let mut piece_lists = Vec::new();
        let mut segments = Vec::with_capacity(regions.len());
        for &(region_start, region_end) in &regions {
            let region = log_probs.slice(s![region_start..region_end, ..]);
            let offset = region_start as f32 * shift;
            let (pieces, lists) =
                decode_spans_in_pieces(self.decoder()?, region, shift, self.alternatives)?;
            // A region the level equaliser raised (6 dB or more under the recording's speech as
            // recorded: faint against the speech, if not against the background) is dropped when
            // unsure alone: music before a talker, raised as a far talker would be, cost two real
            // sentence sets 7.7-9 points of PER, mostly insertions; speech raised comes out sure.
            let raised = mostly_inside((region_start, region_end), &repairs.raised_frames);
            if self.segment.enabled
                && is_unsure_region(
                    &pieces,
                    &levels[region_start..region_end.min(levels.len())],
                    if raised {
                        f32::INFINITY
                    } else {
                        background_dbfs
                    },
                    self.segment.unsure_below_db,
                )
            {
                continue;
            }
            segments.push((
                region_start as f32 * shift,
                (region_end as f32 * shift).min(padded_duration_s),
            ));
            for mut span in pieces {
                span.start_s += offset;
                span.end_s += offset;
                spans.push(span);
            }
            if self.nbest > 0 {
                piece_lists.extend(lists);
            }
        }
        let mut nbest = if self.nbest > 0 {
            join_nbest(&piece_lists, self.nbest)
        } else {
            Vec::new()
        };
        if !self.keep_silence {
            if let Some(silence) = self.phones().silence() {
                spans.retain(|s| s.phone != silence);
                for hypothesis in &mut nbest {
                    hypothesis.phones.retain(|&p| p != silence);
                }
            }
        }
        let log_probs = if pad.is_empty() {
            log_probs
        } else {
            // The network hears a cut word's first phone before its onset (its spike lands in the
            // pad: with the pads' outputs dropped before decoding, FSDD lost more phones than with
            // no pad); the phones are decoded with the pads and their times clamped to the
            // recording. What the views show is the recording's own frames.
            let before = pad.start as f32 * shift;
            let mut times: Vec<(f32, f32)> = spans.iter().map(|s| (s.start_s, s.end_s)).collect();
            edges::fit_times(&mut times, before, duration_s as f32, shift);
            for (span, (start, end)) in spans.iter_mut().zip(times) {
                (span.start_s, span.end_s) = (start, end);
            }
            let within = |t: f32| (t - before).clamp(0.0, duration_s as f32);
            for segment in &mut segments {
                *segment = (within(segment.0), within(segment.1));
            }
            pad.trim_samples(&mut wave.samples, self.output_hop_samples());
            pad.trim(log_probs)
        };
        Ok(Recognition {
            wave,
            log_probs,
            transcript: Transcript {
                source: PathBuf::new(),
                id: None,
                offset_s: None,
                duration_s,
                spans,
                vtln_warp,
                segments,
                clipped_fraction: repairs.clipped_fraction,
                concealed_dropouts: repairs.concealed_dropouts,
                spectral_holes_filled: repairs.spectral_holes_filled,
                clicks_removed: repairs.clicks_removed,
                levels_raised: repairs.levels_raised,
                narrowband: repairs.narrowband,
                concealed_s: repairs.concealed_s,
                dereverberated: repairs.dereverberated,
                dc_offset_dbfs: repairs.dc_offset_dbfs,
                peak_dbfs: repairs.peak_dbfs,
                nbest,
            },
        })
    }

    /// The stages before decoding, shared by recognition and alignment: the audio checked, filled and
    /// resampled; the network's posteriors (under the chosen VTLN warp, sparse regions re-run alone);
    /// the speech regions.
    fn posteriors(&self, wave: Waveform, pad_edges: bool) -> Result<Posteriors> {
        let (wave, repairs) = self.prepare(wave, pad_edges)?;
        let (log_probs, vtln_warp) = self.warped_log_probs(&wave, &repairs.raised_samples)?;
        self.finish_posteriors(wave, log_probs, vtln_warp, repairs)
    }

    /// The speech regions of the network's first pass, and the second pass over sparse regions.
    fn finish_posteriors(
        &self,
        wave: Waveform,
        mut log_probs: Array2<f32>,
        vtln_warp: f32,
        repairs: Repairs,
    ) -> Result<Posteriors> {
        let hop = self.output_hop_samples();
        // The levels of what the network heard, the added floor included: a floor 40 dB under
        // loud speech is over the energy floor, and the network decides there (measured: with the
        // levels from before the floor, a DTMF dialling sequence's tones were each heard alone
        // and came out as 30 phones; with these, 6).
        let levels = frame_levels_dbfs(&wave.samples, hop, log_probs.nrows());
        let shift = self.output_frame_shift_s();
        let mut regions = speech_regions(log_probs.view(), &levels, shift, &self.segment);
        if regions.is_empty() && self.segment.enabled {
            // No speech heard in the whole file. A short word in seconds of a loud floor can be
            // lost that way (the floor dominates its normalisation and the recurrence; FSDD digits
            // padded with their own floor: 15 of 500 came out empty). The loud events, each run
            // alone as a clip cut out of the file, get a second hearing; what speech that finds
            // stands.
            let events = loud_events(&levels, shift, &self.segment);
            if !events.is_empty() {
                let mut alone = log_probs.clone();
                self.isolate_regions(&wave, vtln_warp, hop, &events, &mut alone)?;
                let found = speech_regions(alone.view(), &levels, shift, &self.segment);
                if !found.is_empty() {
                    (log_probs, regions) = (alone, found);
                }
            }
        } else {
            self.isolate_regions(&wave, vtln_warp, hop, &regions, &mut log_probs)?;
        }
        Ok(Posteriors {
            wave,
            log_probs,
            vtln_warp,
            regions,
            repairs,
        })
    }

    /// Second pass: when the speech regions cover less than [`SegmentOptions::isolate_below`] of
    /// the recording and leave at least [`ISOLATE_MIN_NON_SPEECH_S`] outside them, run the network
    /// again on each region alone, as the utterance it would have been had the user cut it out,
    /// and put its posteriors in place of the first pass's. A short
    /// word in seconds of noise floor is otherwise normalised mostly by the floor (a floor within 30
    /// dB of the speech counts as loud frames) and heard through seconds of floor in the recurrence:
    /// padded FSDD digits went from PER 0.32 as clips to 0.56 padded, 0.30 with this pass. Where
    /// speech fills most of the file, the regions keep the whole file's context (cutting it cost
    /// read sentences about a point).
    fn isolate_regions(
        &self,
        wave: &Waveform,
        vtln_warp: f32,
        hop: usize,
        regions: &[(usize, usize)],
        log_probs: &mut Array2<f32>,
    ) -> Result<()> {
        let total = log_probs.nrows();
        let covered: usize = regions.iter().map(|(a, b)| b - a).sum();
        let outside_s =
            (total.saturating_sub(covered) * hop) as f64 / f64::from(wave.sample_rate_hz);
        if regions.is_empty()
            || covered as f64 >= f64::from(self.segment.isolate_below) * total as f64
            || outside_s < ISOLATE_MIN_NON_SPEECH_S
        {
            return Ok(());
        }
        let pipeline = self
            .warped_features
            .iter()
            .find(|(warp, _)| *warp == vtln_warp)
            .map_or(self.model.features(), |(_, p)| p);
        let network = self.model.network();
        // Regions a chunk at a time (features of at most ISOLATE_CHUNK_FRAMES frames held at
        // once), their features in parallel, the short ones sharing network batches: one by one
        // at batch 1, the sparse speech of an hour-long recording took 10 s of its 28.
        let frames_per_step = network.config().stack_frames.max(1);
        let mut next = 0;
        while next < regions.len() {
            let mut frames = 0;
            let chunk_end = (next..regions.len())
                .take_while(|&r| {
                    frames += (regions[r].1 - regions[r].0) * frames_per_step;
                    r == next || frames <= ISOLATE_CHUNK_FRAMES
                })
                .last()
                .map_or(next + 1, |r| r + 1);
            let chunk = &regions[next..chunk_end];
            let features: Vec<Array2<f32>> = chunk
                .par_iter()
                .map(|&(start, end)| {
                    let first = (start * hop).min(wave.samples.len());
                    let last = (end.min(total) * hop).min(wave.samples.len());
                    pipeline.compute(&wave.samples[first..last])
                })
                .collect();
            let views: Vec<Option<ArrayView2<f32>>> =
                features.iter().map(|f| Some(f.view())).collect();
            let batched = batched_short_log_probs(network, &views);
            for ((&(start, end), features), region) in chunk.iter().zip(&features).zip(batched) {
                let region = match region {
                    Some(region) => region,
                    None => network.log_probs_windowed(features.view())?,
                };
                let end = end.min(total);
                let rows = region.nrows().min(end - start);
                log_probs
                    .slice_mut(s![start..start + rows, ..])
                    .assign(&region.slice(s![..rows, ..]));
            }
            next = chunk_end;
        }
        Ok(())
    }

    /// Recognise an audio file (WAV or SPHERE, any rate, format and channel count).
    pub fn transcribe_file(&self, path: &Path) -> Result<Transcript> {
        let mut transcript = self.transcribe_wave(read_audio(path)?)?;
        transcript.source = path.to_path_buf();
        Ok(transcript)
    }
}

/// The decoder `options` ask for, with its description.
fn build_decoder(options: RecognizerOptions) -> Result<BuiltDecoder> {
    let decoding = describe_decoding(&options);
    let decoder: Box<dyn Decoder> = if options.beam <= 1 {
        Box::new(GreedyDecoder)
    } else {
        Box::new(PrefixBeamDecoder::new(
            BeamOptions {
                beam_width: options.beam,
                num_best: options.nbest.max(1),
                lm_weight: options.lm_weight,
                insertion_bonus: options.insertion_bonus,
                ..BeamOptions::default()
            },
            options.lm,
        )?)
    };
    Ok((decoder, decoding))
}

fn describe_decoding(options: &RecognizerOptions) -> String {
    let mut parts = vec![if options.beam <= 1 {
        "greedy".to_string()
    } else {
        format!("prefix beam search of width {}", options.beam)
    }];
    match (&options.lm, options.beam > 1) {
        (Some(lm), true) => parts.push(format!(
            "phone {}-gram LM at weight {}, insertion bonus {}",
            lm.order(),
            options.lm_weight,
            options.insertion_bonus
        )),
        _ => parts.push("no LM".to_string()),
    }
    parts.push(
        if options.segment.enabled && options.segment.isolate_below > 0.0 {
            format!(
                "speech segmentation (regions alone below {} coverage)",
                options.segment.isolate_below
            )
        } else if options.segment.enabled {
            "speech segmentation".to_string()
        } else {
            "no segmentation".to_string()
        },
    );
    // The input repairs, each on by default: the ones switched off, so that two scores computed
    // with different settings say so.
    let kept = [
        (options.fill_digital_silence, "digital silence"),
        (options.pad_loud_edges, "loud edges"),
        (options.repair_clipping, "clipping"),
        (options.conceal_dropouts, "dropouts"),
        (options.fill_spectral_holes, "spectral holes"),
        (options.remove_clicks, "clicks"),
        (options.equalise_levels, "levels"),
        (options.narrowband_as_8k, "narrowband rate"),
    ]
    .iter()
    .filter(|(on, _)| !on)
    .map(|(_, what)| *what)
    .collect::<Vec<_>>();
    if !kept.is_empty() {
        parts.push(format!("{} kept", kept.join(", ")));
    }
    if options.noise_floor_below_db == 0.0 {
        parts.push("no added floor".to_string());
    } else if options.noise_floor_below_db != DEFAULT_FLOOR_BELOW_DB {
        parts.push(format!(
            "a floor {} dB under the speech",
            options.noise_floor_below_db
        ));
    }
    match options.dereverb {
        Dereverb::Auto => {}
        Dereverb::Off => parts.push("no dereverberation".to_string()),
        Dereverb::On => parts.push("dereverberation always".to_string()),
    }
    if !options.vtln_warps.is_empty() {
        parts.push(format!("VTLN over {} warps", options.vtln_warps.len()));
    }
    parts.join(", ")
}

/// Refuse in-memory audio that files are refused for on reading (see [`Waveform::check_samples`]).
fn check_wave(wave: &Waveform) -> Result<()> {
    if !(MIN_SAMPLE_RATE_HZ..=MAX_SAMPLE_RATE_HZ).contains(&wave.sample_rate_hz) {
        return Err(Error::InvalidAudio {
            reason: format!(
                "sample rate {} Hz is outside {MIN_SAMPLE_RATE_HZ}..={MAX_SAMPLE_RATE_HZ} Hz",
                wave.sample_rate_hz
            ),
        });
    }
    wave.check_samples()
        .map_err(|reason| Error::InvalidAudio { reason })
}

/// Most recordings in one network batch of [`Recognizer::recognize_batch`]: 64 clips of a few
/// seconds recognise ~10 % faster than batches of 16 (an hour of 0.3-5 s clips, 2 cores).
const MAX_BATCH_FILES: usize = 64;
/// Most feature frames (recordings × the longest) in one batch: 16 recordings of one full network
/// window, so that long recordings batch no bigger than they did at 16 a batch.
const MAX_BATCH_FRAMES: usize = 16 * 6_800;

/// How many recordings [`Recognizer::transcribe_waves`] callers read and recognise at once (a
/// round), at most: enough for full batches of short clips.
pub const ROUND_MAX_FILES: usize = 256;
/// Most bytes of audio files in one round, so that a round of long recordings does not hold hours
/// of samples in memory (64 MB is ~35 min of 16 kHz 16-bit audio).
pub const ROUND_MAX_BYTES: u64 = 64 << 20;

/// Split inputs of these sizes (bytes of their files; 0 if unknown) into consecutive rounds of at
/// most [`ROUND_MAX_FILES`] inputs and [`ROUND_MAX_BYTES`] bytes (a larger file is a round alone).
pub fn plan_rounds(sizes: &[u64]) -> Vec<std::ops::Range<usize>> {
    let mut rounds = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, &size) in sizes.iter().enumerate() {
        if i > start
            && (i - start == ROUND_MAX_FILES || bytes.saturating_add(size) > ROUND_MAX_BYTES)
        {
            rounds.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes = bytes.saturating_add(size);
    }
    if start < sizes.len() {
        rounds.push(start..sizes.len());
    }
    rounds
}
/// A batch's longest input may exceed its shortest by a quarter plus this many feature frames
/// (padding is computed for nothing).
const BATCH_SLACK_FRAMES: usize = 20;

/// Feature frames of isolated regions computed at once (10 minutes at 10 ms).
const ISOLATE_CHUNK_FRAMES: usize = 60_000;

/// A recording's regions are recognised alone only when at least this many seconds lie outside
/// them: the pass exists for short speech in long silence or floor, and a short clip's own edges
/// (a digit in 0.7 s) hold too little non-speech to dominate it. Cutting such a clip to its region
/// took the context of weakly heard first phones (FSDD, a from-scratch model, george held out:
/// PER 0.378 → 0.366; the built-in model's figures unchanged; `models/README.md`).
const ISOLATE_MIN_NON_SPEECH_S: f64 = 1.0;

/// Seconds of audio at the start of a file on which the VTLN warp factor is chosen.
const VTLN_ESTIMATE_S: f64 = 30.0;

/// Log-posteriors of the inputs that fit one network window, run in padded batches of similar
/// length (sorted, each batch's longest at most a quarter longer than its shortest, bounded in
/// inputs and frames): a batched step reads each weight once for all its inputs. `None` for the
/// others (long inputs, missing ones, a batch that failed), which the caller runs alone (each then
/// reporting its own error). Outputs equal one-by-one runs up to float rounding in the products.
fn batched_short_log_probs(
    network: &Blstm,
    inputs: &[Option<ArrayView2<f32>>],
) -> Vec<Option<Array2<f32>>> {
    let mut log_probs: Vec<Option<Array2<f32>>> = (0..inputs.len()).map(|_| None).collect();
    let mut short: Vec<(usize, usize)> = inputs
        .iter()
        .enumerate()
        .filter_map(|(i, features)| features.as_ref().map(|f| (i, f.nrows())))
        .filter(|&(_, frames)| network.fits_one_window(frames))
        .collect();
    short.sort_by_key(|&(_, frames)| frames);
    let mut start = 0;
    while start < short.len() {
        let limit = short[start].1 + short[start].1 / 4 + BATCH_SLACK_FRAMES;
        let end = (start..short.len())
            .take(MAX_BATCH_FILES)
            .take_while(|&j| {
                short[j].1 <= limit && (j - start + 1) * short[j].1 <= MAX_BATCH_FRAMES
            })
            .last()
            .map_or(start + 1, |j| j + 1);
        let group = &short[start..end];
        let views: Vec<ArrayView2<f32>> = group
            .iter()
            .filter_map(|&(i, _)| inputs[i].as_ref().map(|f| f.view()))
            .collect();
        if let Ok(outputs) = network.log_probs_batch(&views) {
            for (&(i, _), output) in group.iter().zip(outputs) {
                log_probs[i] = Some(output);
            }
        }
        start = end;
    }
    log_probs
}

/// A loud event stands this many dB above the recording's background (its 20th-percentile frame
/// level) for [`loud_events`].
const EVENT_ABOVE_BACKGROUND_DB: f32 = 10.0;

/// Events shorter than this (seconds) are clicks, not words.
const MIN_EVENT_S: f64 = 0.05;

/// The stretches of a recording that stand well out of its background ([`EVENT_ABOVE_BACKGROUND_DB`]
/// above its 20th-percentile frame level), joined across gaps shorter than
/// `options.min_silence_s` and widened by `options.padding_s`, as output-frame ranges: where a
/// word may lie that the whole file's pass did not hear. Empty when the events fill most of the
/// recording (`options.isolate_below` or more: nothing to cut them out of) or there are none.
fn loud_events(
    levels_dbfs: &[f32],
    frame_shift_s: f64,
    options: &SegmentOptions,
) -> Vec<(usize, usize)> {
    let frames = levels_dbfs.len();
    let mut finite: Vec<f32> = levels_dbfs
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .collect();
    if finite.is_empty() {
        return Vec::new();
    }
    let at = finite.len() / 5;
    let (_, &mut background, _) = finite.select_nth_unstable_by(at, f32::total_cmp);
    let threshold = background + EVENT_ABOVE_BACKGROUND_DB;
    let to_frames = |s: f64| (s / frame_shift_s).round() as usize;
    let (min_gap, padding) = (
        to_frames(f64::from(options.min_silence_s)).max(1),
        to_frames(f64::from(options.padding_s)),
    );
    let mut events: Vec<(usize, usize)> = Vec::new();
    for (t, &level) in levels_dbfs.iter().enumerate() {
        if level < threshold {
            continue;
        }
        match events.last_mut() {
            Some(last) if t - last.1 < min_gap => last.1 = t + 1,
            _ => events.push((t, t + 1)),
        }
    }
    events.retain(|&(a, b)| (b - a) as f64 * frame_shift_s >= MIN_EVENT_S);
    let covered: usize = events.iter().map(|(a, b)| b - a).sum();
    if events.is_empty() || covered as f64 >= f64::from(options.isolate_below) * frames as f64 {
        return Vec::new();
    }
    // Widened, then merged where the widening made them meet.
    let mut widened: Vec<(usize, usize)> = Vec::with_capacity(events.len());
    for (a, b) in events {
        let (a, b) = (a.saturating_sub(padding), (b + padding).min(frames));
        match widened.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => widened.push((a, b)),
        }
    }
    widened
}

/// Mean over frames of the largest log-probability: the greedy path's log-likelihood per frame.
fn mean_best_path_log_prob(log_probs: ArrayView2<f32>) -> f32 {
    if log_probs.nrows() == 0 {
        return f32::NEG_INFINITY;
    }
    let total: f64 = log_probs
        .rows()
        .into_iter()
        .map(|row| f64::from(row.iter().copied().fold(f32::NEG_INFINITY, f32::max)))
        .sum();
    (total / log_probs.nrows() as f64) as f32
}

/// Output frames per decoding segment (~60 s at 20 ms), and how far past that a cut may look for a blank.
const SEGMENT_FRAMES: usize = 3000;
const SEGMENT_SEARCH_FRAMES: usize = 1000;
/// A frame where the blank's log-probability is above this (p > 0.99) is a safe place to cut.
const CUT_BLANK_LOG_PROB: f32 = -0.01;

/// Decode `[frames, classes]` log-probs and time the phones, in pieces of about a minute cut where
/// the blank is all but certain: the forced alignment that times them is O(frames × phones) in
/// memory, so an hour must not be aligned at once. Times are from the first frame; each phone with
/// its `alternatives` most probable phones ([`PhoneSpan::alternatives`]). Also each piece's list of
/// the decoder's [`hypotheses`](Decoder::hypotheses), in order (see [`join_nbest`]).
pub(crate) fn decode_spans_in_pieces(
    decoder: &dyn Decoder,
    log_probs: ArrayView2<f32>,
    shift: f32,
    alternatives: usize,
) -> Result<(Vec<PhoneSpan>, Vec<Vec<Hypothesis>>)> {
    let mut spans = Vec::new();
    let mut lists = Vec::new();
    for (start, end) in segment_bounds(log_probs) {
        let piece = log_probs.slice(s![start..end, ..]);
        let offset = start as f32 * shift;
        let (piece_spans, hypotheses) =
            decode_spans_with_hypotheses(decoder, piece, shift, alternatives)?;
        for mut span in piece_spans {
            span.start_s += offset;
            span.end_s += offset;
            spans.push(span);
        }
        lists.push(hypotheses);
    }
    Ok((spans, lists))
}

/// The `n` best joint hypotheses of a recording decoded in independent pieces, given each piece's
/// list (best first): one hypothesis per piece, phones concatenated, scores added; best first. Two
/// joints with the same phones (a phone heard at the end of one piece or the start of the next)
/// are one entry, the better-scored. No pieces: one empty hypothesis.
fn join_nbest(lists: &[Vec<Hypothesis>], n: usize) -> Vec<Hypothesis> {
    let by_score = |a: &Hypothesis, b: &Hypothesis| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.phones.cmp(&b.phones))
    };
    let mut joint = vec![Hypothesis {
        phones: Vec::new(),
        score: 0.0,
        acoustic_log_prob: 0.0,
        lm_log_prob: 0.0,
    }];
    for list in lists.iter().filter(|list| !list.is_empty()) {
        let mut next = Vec::with_capacity(joint.len() * list.len());
        for head in &joint {
            for tail in list {
                let mut phones = Vec::with_capacity(head.phones.len() + tail.phones.len());
                phones.extend_from_slice(&head.phones);
                phones.extend_from_slice(&tail.phones);
                next.push(Hypothesis {
                    phones,
                    score: head.score + tail.score,
                    acoustic_log_prob: head.acoustic_log_prob + tail.acoustic_log_prob,
                    lm_log_prob: head.lm_log_prob + tail.lm_log_prob,
                });
            }
        }
        next.sort_by(by_score);
        // Keep the best of each phone sequence, then the n best: every joint that can still reach
        // the final n best extends one of these (scores only add).
        let mut seen = std::collections::HashSet::new();
        next.retain(|h| seen.insert(h.phones.clone()));
        next.truncate(n);
        joint = next;
    }
    joint
}

/// Split `[frames, classes]` log-probs into segments of about [`SEGMENT_FRAMES`] frames, cut at
/// blank-dominated frames (or hard at the search limit when none is found).
fn segment_bounds(log_probs: ArrayView2<f32>) -> Vec<(usize, usize)> {
    let frames = log_probs.nrows();
    let mut bounds = Vec::new();
    let mut start = 0;
    while start < frames {
        if frames - start <= SEGMENT_FRAMES + SEGMENT_SEARCH_FRAMES {
            bounds.push((start, frames));
            break;
        }
        let ideal = start + SEGMENT_FRAMES;
        let limit = (ideal + SEGMENT_SEARCH_FRAMES).min(frames);
        let cut = (ideal..limit)
            .find(|&t| log_probs[[t, 0]] > CUT_BLANK_LOG_PROB)
            .unwrap_or(limit);
        bounds.push((start, cut));
        start = cut;
    }
    bounds
}

/// The level (dBFS) of what surrounds the speech regions: the median frame level outside every
/// region, or, when less than half a second lies outside them, the 10th percentile of all frames
/// (the quiet moments of continuous speech). Digital silence counts as −120 dBFS.
fn background_level_dbfs(levels: &[f32], regions: &[(usize, usize)]) -> f32 {
    let mut inside = vec![false; levels.len()];
    for &(start, end) in regions {
        for flag in &mut inside[start.min(levels.len())..end.min(levels.len())] {
            *flag = true;
        }
    }
    let mut outside: Vec<f32> = levels
        .iter()
        .zip(&inside)
        .filter(|(_, &i)| !i)
        .map(|(&l, _)| clamped_level(l))
        .collect();
    if outside.len() >= MIN_BACKGROUND_FRAMES {
        let mid = outside.len() / 2;
        return *outside.select_nth_unstable_by(mid, f32::total_cmp).1;
    }
    let mut all: Vec<f32> = levels.iter().map(|&l| clamped_level(l)).collect();
    if all.is_empty() {
        return -120.0;
    }
    let tenth = all.len() / 10;
    *all.select_nth_unstable_by(tenth, f32::total_cmp).1
}

/// A frame level for [`background_level_dbfs`] and [`is_unsure_region`]: digital silence (−∞)
/// and anything quieter counts as −120 dBFS.
fn clamped_level(level: f32) -> f32 {
    if level.is_finite() {
        level.max(-120.0)
    } else {
        -120.0
    }
}

/// Frames outside the speech regions needed for their median to be the background (half a
/// second of 10 ms frames).
const MIN_BACKGROUND_FRAMES: usize = 50;

/// Whether at least half of `region`'s frames lie in `ranges` (sorted, disjoint frame ranges).
fn mostly_inside(region: (usize, usize), ranges: &[(usize, usize)]) -> bool {
    let (start, end) = region;
    let inside: usize = ranges
        .iter()
        .map(|&(a, b)| b.min(end).saturating_sub(a.max(start)))
        .sum();
    end > start && 2 * inside >= end - start
}

/// Whether a speech region is music or noise the network took for speech
/// ([`SegmentOptions::unsure_below_db`]): its loudest frames (90th percentile of `levels`, the
/// region's frames) stand less than `below_db` over `background_dbfs`, and its phones' mean
/// confidence is below [`UNSURE_CONFIDENCE`]. A background of `f32::INFINITY` counts every region as
/// faint. A region without phones is kept (nothing to drop).
fn is_unsure_region(
    phones: &[PhoneSpan],
    levels: &[f32],
    background_dbfs: f32,
    below_db: f32,
) -> bool {
    if below_db <= 0.0 || phones.is_empty() || levels.is_empty() {
        return false;
    }
    let confidence = phones.iter().map(|p| p.confidence).sum::<f32>() / phones.len() as f32;
    if confidence >= UNSURE_CONFIDENCE {
        return false;
    }
    let mut sorted: Vec<f32> = levels.iter().map(|&l| clamped_level(l)).collect();
    let ninetieth = (sorted.len() * 9 / 10).min(sorted.len() - 1);
    let loud = *sorted.select_nth_unstable_by(ninetieth, f32::total_cmp).1;
    loud - background_dbfs < below_db
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(confidence: f32) -> PhoneSpan {
        PhoneSpan {
            phone: crate::phones::PhoneId(1),
            start_s: 0.0,
            end_s: 0.1,
            confidence,
            alternatives: Vec::new(),
        }
    }

    #[test]
    fn the_background_is_the_level_around_the_regions() {
        // 100 frames at −50 dBFS around a region of 100 frames at −20: the median outside.
        let mut levels = vec![-50.0f32; 300];
        for l in &mut levels[100..200] {
            *l = -20.0;
        }
        assert_eq!(background_level_dbfs(&levels, &[(100, 200)]), -50.0);
        // Digital silence counts as −120 dBFS, not −∞.
        let silent = vec![f32::NEG_INFINITY; 100];
        assert_eq!(background_level_dbfs(&silent, &[]), -120.0);
        // Speech all through: the quiet tenth of its frames.
        let speech: Vec<f32> = (0..100).map(|i| -40.0 + (i % 20) as f32).collect();
        assert_eq!(background_level_dbfs(&speech, &[(0, 100)]), -38.0);
        assert_eq!(background_level_dbfs(&[], &[]), -120.0);
    }

    #[test]
    fn a_region_is_mostly_inside_when_half_its_frames_are() {
        let raised = [(10, 20), (30, 40)];
        assert!(mostly_inside((10, 20), &raised));
        assert!(mostly_inside((15, 25), &raised));
        assert!(!mostly_inside((18, 32), &raised)); // 4 of its 14 frames
        assert!(!mostly_inside((0, 12), &raised));
        assert!(!mostly_inside((20, 30), &[]));
        assert!(!mostly_inside((5, 5), &raised));
    }

    #[test]
    fn only_regions_both_faint_and_unsure_are_dropped() {
        let levels = vec![-25.0f32; 50];
        let unsure = [span(0.3), span(0.4)];
        let sure = [span(0.8), span(0.7)];
        // 5 dB over the background: dropped if unsure, kept if sure.
        assert!(is_unsure_region(&unsure, &levels, -30.0, 6.0));
        assert!(!is_unsure_region(&sure, &levels, -30.0, 6.0));
        // 15 dB over it: kept however unsure.
        assert!(!is_unsure_region(&unsure, &levels, -40.0, 6.0));
        // 0 turns the rule off; no phones, nothing to drop.
        assert!(!is_unsure_region(&unsure, &levels, -30.0, 0.0));
        assert!(!is_unsure_region(&[], &levels, -30.0, 6.0));
    }

    #[test]
    fn rounds_hold_at_most_256_files_and_64_mb_and_cover_every_input_in_order() {
        let clips = vec![30_000u64; 600];
        let rounds = plan_rounds(&clips);
        assert_eq!(rounds, vec![0..256, 256..512, 512..600]);
        // 20 MB recordings: three to a round; a file over the budget is a round alone.
        let long = [20 << 20, 20 << 20, 20 << 20, 20 << 20, 100 << 20, 1, 2];
        assert_eq!(plan_rounds(&long), vec![0..3, 3..4, 4..5, 5..7]);
        assert!(plan_rounds(&[]).is_empty());
        assert_eq!(plan_rounds(&[0]), vec![0..1]);
    }

    #[test]
    fn the_decoding_description_names_the_repairs_switched_off() {
        let default = describe_decoding(&RecognizerOptions::default());
        assert!(
            !default.contains("kept") && !default.contains("dereverberation"),
            "{default}"
        );
        let options = RecognizerOptions {
            repair_clipping: false,
            fill_spectral_holes: false,
            dereverb: Dereverb::Off,
            ..RecognizerOptions::default()
        };
        assert!(
            describe_decoding(&options)
                .ends_with("clipping, spectral holes kept, no dereverberation"),
            "{}",
            describe_decoding(&options)
        );
    }

    fn hypothesis(phones: &[u16], score: f64) -> Hypothesis {
        Hypothesis {
            phones: phones.iter().map(|&p| crate::phones::PhoneId(p)).collect(),
            score,
            acoustic_log_prob: score - 1.0,
            lm_log_prob: 1.0,
        }
    }

    #[test]
    fn nbest_lists_of_pieces_join_into_the_best_sums_once_each() {
        let first = vec![
            hypothesis(&[1, 2], -1.0),
            hypothesis(&[1], -1.5),
            hypothesis(&[], -4.0),
        ];
        let second = vec![hypothesis(&[3], -2.0), hypothesis(&[2, 3], -2.2)];
        let joined = join_nbest(&[first.clone(), second], 4);
        let got: Vec<(Vec<u16>, f64)> = joined
            .iter()
            .map(|h| (h.phones.iter().map(|p| p.0).collect(), h.score))
            .collect();
        // [1 2]+[3] and [1]+[2 3] are the same sequence: kept once, with the better score.
        let want: Vec<(Vec<u16>, f64)> = vec![
            (vec![1, 2, 3], -3.0),
            (vec![1, 2, 2, 3], -3.2),
            (vec![1, 3], -3.5),
            (vec![3], -6.0),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((phones, score), (want_phones, want_score)) in got.iter().zip(&want) {
            assert_eq!(phones, want_phones, "{got:?}");
            assert!((score - want_score).abs() < 1e-12, "{got:?}");
        }
        // Each part of the score adds up too.
        assert!((joined[0].acoustic_log_prob - -5.0).abs() < 1e-12);
        assert!((joined[0].lm_log_prob - 2.0).abs() < 1e-12);
        // One piece: its own list; none: one empty hypothesis.
        assert_eq!(
            join_nbest(std::slice::from_ref(&first), 2),
            first[..2].to_vec()
        );
        let empty = join_nbest(&[], 3);
        assert_eq!(empty.len(), 1);
        assert!(empty[0].phones.is_empty() && empty[0].score == 0.0);
    }

    #[test]
    fn segments_cover_every_frame_and_cut_at_blanks() {
        // Blank certain every 700th frame, uncertain elsewhere.
        let frames = 10_000;
        let log_probs = Array2::from_shape_fn((frames, 3), |(t, k)| match (t % 700 == 0, k) {
            (true, 0) => -0.001,
            (true, _) => -8.0,
            (false, _) => -(3f32.ln()),
        });
        let bounds = segment_bounds(log_probs.view());
        assert_eq!(bounds.first().map(|b| b.0), Some(0));
        assert_eq!(bounds.last().map(|b| b.1), Some(frames));
        for pair in bounds.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
            assert_eq!(pair[0].1 % 700, 0, "cut at a blank frame");
        }
        assert!(bounds.len() >= 3);
        assert_eq!(
            segment_bounds(log_probs.slice(s![..100, ..])),
            vec![(0, 100)]
        );
    }

    #[test]
    fn loud_events_are_what_stands_out_of_the_background() {
        let options = SegmentOptions::default();
        let shift = 0.02;
        let padding = (f64::from(options.padding_s) / shift).round() as usize;
        // 6 s of a -40 dBFS floor with a 0.3 s word at -25 dBFS (10 dB above the floor is enough),
        // a one-frame click, and a second word 40 frames after the first.
        let mut levels = vec![-40.0f32; 300];
        levels[100..115].fill(-25.0);
        levels[200] = -10.0;
        levels[240..250].fill(-28.0);
        let events = loud_events(&levels, shift, &options);
        assert_eq!(
            events,
            vec![
                (100 - padding, 115 + padding),
                (240 - padding, 250 + padding)
            ]
        );
        // Words within a short pause are one event.
        let mut close = vec![-40.0f32; 300];
        close[100..110].fill(-25.0);
        close[112..120].fill(-25.0);
        assert_eq!(
            loud_events(&close, shift, &options),
            vec![(100 - padding, 120 + padding)]
        );
        // A steady background (noise, hum), digital silence, and a file that is loud most of the
        // time (nothing to cut an event out of) have none.
        assert!(loud_events(&vec![-30.0; 300], shift, &options).is_empty());
        assert!(loud_events(&vec![f32::NEG_INFINITY; 300], shift, &options).is_empty());
        let mut busy = vec![-20.0f32; 300];
        busy[..60].fill(-40.0);
        assert!(loud_events(&busy, shift, &options).is_empty());
    }
}
