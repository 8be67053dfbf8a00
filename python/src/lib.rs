//! `phonrec._phonrec`: phonrec's recogniser, aligner and features as a Python extension module.
//!
//! The public API, its documentation and the result classes live in `python/phonrec/__init__.py`;
//! this module takes plain values (a path, the bytes of an audio file, a numpy array of samples) and
//! returns plain values (tuples, lists, numpy arrays) for that layer to wrap.
//!
//! Two rules hold for every function here:
//! - Reading audio, running the network, decoding and aligning happen with the GIL released
//!   ([`Python::detach`]), so other Python threads run meanwhile and one `Recognizer` serves many
//!   threads at once (the Rust recogniser is `Send + Sync`). Arrays are read into samples while the
//!   GIL is held (another thread could change them otherwise), with no copy beyond that conversion.
//! - No panic crosses into Python: the work runs under [`catch_unwind`] and a panic becomes a
//!   `PhonrecError` (a bug in phonrec, never the user's input).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ndarray::ArrayViewD;
use numpy::{
    PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyOSError, PyPermissionError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use rayon::prelude::*;

use phonrec::align::{AlignTarget, Alignment, OovPolicy, PronunciationScores};
use phonrec::audio::{
    read_audio_bytes_channel, read_audio_channel, ChannelChoice, Dereverb, Waveform, INT16_SCALE,
    MAX_CHANNELS, MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ,
};
use phonrec::builtin;
use phonrec::choice::Choice;
use phonrec::ctc::{PhoneLm, PhoneSpan};
use phonrec::data::Lexicon;
use phonrec::error::error_chain;
use phonrec::features::{
    DeltaOptions, FeatureExtractor, FeatureOptions, FeaturePipeline, KaldiFeatureFlags,
};
use phonrec::model::{Model, ModelFile, Precision};
use phonrec::phones::{Alphabet, PhoneSet};
use phonrec::recognize::live::{EndpointOptions, Endpointer, LiveUtterance};
use phonrec::recognize::{
    plan_rounds, Recognizer, RecognizerOptions, SegmentOptions, Transcript, DEFAULT_VTLN_WARPS,
};
use phonrec::Error;

create_exception!(
    phonrec,
    PhonrecError,
    PyException,
    "An error from phonrec: audio it cannot read, a model file that does not load, an alignment \
     that cannot be made. The message is the library's, naming the file where there is one."
);
create_exception!(
    phonrec,
    OutOfVocabularyError,
    PhonrecError,
    "Words of a text to align that the lexicon does not have; `words` lists them (in text order, \
     each once). Add them with `Recognizer(lexicon=...)` or align with `oov=\"spell\"` or \
     `oov=\"skip\"`."
);

/// Why a call failed, carried out of the GIL-free section and turned into a Python exception once
/// the GIL is held again.
enum Failure {
    /// The library's error.
    Library(Error),
    /// A bad argument found while the GIL was released.
    Value(String),
    /// A panic: a bug.
    Panic(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Library(error)
    }
}

/// The Python exception for a failure: `FileNotFoundError`/`PermissionError`/`OSError` for files
/// that cannot be opened or read, `ValueError` for audio, options or phones that cannot be right,
/// `OutOfVocabularyError` (with `.words`) for words the lexicon lacks, `PhonrecError` otherwise.
fn py_error(py: Python<'_>, failure: Failure) -> PyErr {
    let error = match failure {
        Failure::Value(message) => return PyValueError::new_err(message),
        Failure::Panic(message) => {
            return PhonrecError::new_err(format!(
                "internal error (a bug in phonrec; please report it): {message}"
            ))
        }
        Failure::Library(error) => error,
    };
    let message = error_chain(&error);
    match &error {
        Error::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
            _ => PyOSError::new_err(message),
        },
        Error::InvalidAudio { .. } | Error::InvalidOptions { .. } | Error::UnknownPhone { .. } => {
            PyValueError::new_err(message)
        }
        Error::OutOfVocabulary { words } => {
            // The library's message names the CLI's options; these are the package's.
            let message = format!(
                "{} not in the lexicon: {}; add {} with Recognizer(lexicon=...) (CMUdict format: \
                 `WORD  P1 P2 ...`) or align with oov=\"spell\" or oov=\"skip\"",
                if words.len() == 1 {
                    "1 word is".to_string()
                } else {
                    format!("{} words are", words.len())
                },
                words.join(", "),
                if words.len() == 1 { "it" } else { "them" }
            );
            let err = OutOfVocabularyError::new_err(message);
            if let Err(e) = err.value(py).setattr("words", words.clone()) {
                return e;
            }
            err
        }
        _ => PhonrecError::new_err(message),
    }
}

/// Run `work` with the GIL released, on this process's thread pool ([`process_pool`]), a panic
/// caught, and a failure turned into a Python exception.
fn detached<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, Failure> + Send,
) -> PyResult<T> {
    let guarded = || match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(payload) => Err(Failure::Panic(
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string()),
        )),
    };
    py.detach(|| match process_pool() {
        Some(pool) => pool.install(guarded),
        None => guarded(),
    })
    .map_err(|failure| py_error(py, failure))
}

/// The rayon thread pool of this process, built on first use in each process. A child forked
/// after the parent had used rayon's global pool (Python's `multiprocessing` on Linux, PyTorch's
/// DataLoader workers, gunicorn `--preload`) inherits that pool without its threads, and every
/// call there waited forever for them. `None` if no pool could be built (the global one is used).
fn process_pool() -> Option<Arc<rayon::ThreadPool>> {
    static POOL: Mutex<Option<(u32, Arc<rayon::ThreadPool>)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut slot = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((owner, pool)) = slot.as_ref() {
        if *owner == pid {
            return Some(pool.clone());
        }
    }
    // A parent's pool is not dropped here: its threads are not in this process to stop.
    if let Some(inherited) = slot.take() {
        std::mem::forget(inherited);
    }
    let pool = Arc::new(rayon::ThreadPoolBuilder::new().build().ok()?);
    *slot = Some((pid, pool.clone()));
    Some(pool)
}

/// One audio input as the Python layer passes it.
enum Audio<'a> {
    /// An audio file, read (and its errors named) by path, and which of its channels to hear.
    File(PathBuf, ChannelChoice),
    /// The bytes of an audio file (WAV, SPHERE, .au, FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF, MP4/M4A, raw AAC, WebM),
    /// and which of its channels to hear.
    Bytes(&'a [u8], ChannelChoice),
    /// Samples from an array, already mono (the channel chosen) at int16 scale.
    Wave(Waveform),
}

impl Audio<'_> {
    /// About how many bytes of file this is (16-bit samples for arrays), for planning rounds.
    fn size_bytes(&self) -> u64 {
        match self {
            Audio::File(path, _) => std::fs::metadata(path).map_or(0, |m| m.len()),
            Audio::Bytes(bytes, _) => bytes.len() as u64,
            Audio::Wave(wave) => 2 * wave.samples.len() as u64,
        }
    }

    /// The samples: files are read as `phonrec transcribe` reads them.
    fn read(self) -> phonrec::Result<Waveform> {
        match self {
            Audio::File(path, channel) => read_audio_channel(&path, channel),
            Audio::Bytes(bytes, channel) => {
                read_audio_bytes_channel(bytes, Path::new("<bytes>"), channel)
            }
            Audio::Wave(wave) => Ok(wave),
        }
    }
}

/// Interpret an audio argument: a `str` is a path, `bytes` the contents of an audio file, a numpy
/// array samples at `sample_rate` (which only arrays take). `channel` picks the channel heard, of a
/// file as of a `(samples, channels)` array.
fn audio_arg<'a>(
    obj: &'a Bound<'_, PyAny>,
    sample_rate: Option<i64>,
    channel: ChannelChoice,
) -> PyResult<Audio<'a>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        if let Some(rate) = sample_rate {
            return Err(PyValueError::new_err(format!(
                "sample_rate={rate} is for arrays of samples; an audio file's rate is read from \
                 the file"
            )));
        }
        if let Ok(bytes) = obj.cast::<PyBytes>() {
            return Ok(Audio::Bytes(bytes.as_bytes(), channel));
        }
        return Ok(Audio::File(obj.extract::<PathBuf>()?, channel));
    }
    if let Ok(array) = obj.cast::<PyUntypedArray>() {
        return Ok(Audio::Wave(wave_from_array(array, sample_rate, channel)?));
    }
    Err(PyTypeError::new_err(format!(
        "audio must be a path (str or os.PathLike), the bytes of an audio file, or a numpy array \
         of samples; got {}",
        obj.get_type().name()?
    )))
}

/// A `sample_rate=` argument as a rate phonrec reads, or the ValueError saying the range.
fn sample_rate_arg(rate: i64) -> PyResult<u32> {
    u32::try_from(rate)
        .ok()
        .filter(|r| (MIN_SAMPLE_RATE_HZ..=MAX_SAMPLE_RATE_HZ).contains(r))
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "sample_rate {rate} Hz is outside the supported range \
                 {MIN_SAMPLE_RATE_HZ}..={MAX_SAMPLE_RATE_HZ} Hz"
            ))
        })
}

/// Samples of a 1-D (mono) or 2-D `(samples, channels)` array, converted to int16 scale as the WAV
/// reader converts each encoding, and mixed over channels as it mixes them (or one channel taken).
fn wave_from_array(
    array: &Bound<'_, PyUntypedArray>,
    sample_rate: Option<i64>,
    channel: ChannelChoice,
) -> PyResult<Waveform> {
    let shape = array.shape().to_vec();
    if !(1..=2).contains(&shape.len()) {
        return Err(PyValueError::new_err(format!(
            "an audio array is 1-D (samples) or 2-D (samples, channels); got a {}-D array of \
             shape {shape:?}",
            shape.len()
        )));
    }
    let Some(rate) = sample_rate else {
        return Err(PyValueError::new_err(
            "sample_rate is required with an array of samples: the rate they were recorded at, \
             in Hz (e.g. sample_rate=16000)",
        ));
    };
    let rate = sample_rate_arg(rate)?;
    if shape.contains(&0) {
        return Err(PyValueError::new_err(format!(
            "the audio array holds no samples (shape {shape:?})"
        )));
    }
    if shape.len() == 2 && (shape[1] > MAX_CHANNELS || shape[1] > shape[0]) {
        return Err(PyValueError::new_err(format!(
            "a 2-D audio array is (samples, channels), and this one would have {} channels of {} \
             samples (at most {MAX_CHANNELS} channels are read); is it (channels, samples), as \
             torchaudio gives them? Pass its transpose, array.T",
            shape[1], shape[0]
        )));
    }
    let channels = if shape.len() == 1 { 1 } else { shape[1] };
    if let ChannelChoice::Only(wanted) = channel {
        if wanted >= channels {
            return Err(PyValueError::new_err(format!(
                "channel={wanted}: the audio array has {channels} channel{} (counted from 0)",
                if channels == 1 { "" } else { "s" }
            )));
        }
    }
    // The conversions of src/audio/wav.rs: floats × 32768; integers shifted to 16-bit range
    // (8-bit WAV is unsigned with its zero at 128, as uint8 arrays from it are).
    let samples = if let Ok(a) = array.cast::<PyArrayDyn<f32>>() {
        mono(
            a.try_readonly().map_err(borrowed)?.as_array(),
            |s| s * INT16_SCALE,
            channel,
        )
    } else if let Ok(a) = array.cast::<PyArrayDyn<f64>>() {
        mono(
            a.try_readonly().map_err(borrowed)?.as_array(),
            |s| s as f32 * INT16_SCALE,
            channel,
        )
    } else if let Ok(a) = array.cast::<PyArrayDyn<i16>>() {
        mono(
            a.try_readonly().map_err(borrowed)?.as_array(),
            f32::from,
            channel,
        )
    } else if let Ok(a) = array.cast::<PyArrayDyn<i32>>() {
        mono(
            a.try_readonly().map_err(borrowed)?.as_array(),
            |s| s as f32 * (1.0 / 65536.0),
            channel,
        )
    } else if let Ok(a) = array.cast::<PyArrayDyn<u8>>() {
        mono(
            a.try_readonly().map_err(borrowed)?.as_array(),
            |s| (f32::from(s) - 128.0) * 256.0,
            channel,
        )
    } else if let Ok(a) = array.cast::<PyArrayDyn<i8>>() {
        mono(
            a.try_readonly().map_err(borrowed)?.as_array(),
            |s| f32::from(s) * 256.0,
            channel,
        )
    } else {
        return Err(PyTypeError::new_err(format!(
            "audio arrays of dtype {} are not read: use float32 or float64 (full scale ±1), \
             int16, int32, uint8 (8-bit WAV, zero at 128) or int8",
            array.dtype()
        )));
    };
    let is_float =
        array.cast::<PyArrayDyn<f32>>().is_ok() || array.cast::<PyArrayDyn<f64>>().is_ok();
    if is_float {
        // int16 samples turned into floats without dividing (`x.astype(np.float32)`) are the most
        // common mistake with arrays; below the library's own limit they were read as audio at
        // +50-90 dBFS, and transcribed differently.
        let peak = samples.iter().fold(0.0f32, |peak, s| peak.max(s.abs())) / INT16_SCALE;
        if peak > MAX_FLOAT_PEAK {
            return Err(PyValueError::new_err(format!(
                "float samples are expected in ±1 (full scale), and these peak at {peak:.0}: \
                 integer samples stored as floats? Divide them by their full scale (32768 for \
                 16-bit), or pass the integer array itself"
            )));
        }
    }
    Ok(Waveform {
        samples,
        sample_rate_hz: rate,
    })
}

/// Float arrays peaking above this many times full scale (+36 dBFS) are refused: no recording
/// chain gets there, while 16-bit samples as floats do at any level above -54 dBFS.
const MAX_FLOAT_PEAK: f32 = 64.0;

fn borrowed(error: numpy::BorrowError) -> PyErr {
    PyValueError::new_err(format!("the audio array cannot be read: {error}"))
}

/// One channel from a 1-D or `(samples, channels)` view: each sample converted, then mixed by the
/// WAV reader's own `phonrec::audio::mix_to_mono` (averaged, or the loudest channel when they
/// cancel), or the one channel `channel` asks for (checked to exist by the caller).
fn mono<T: Copy>(
    view: ArrayViewD<'_, T>,
    convert: impl Fn(T) -> f32,
    channel: ChannelChoice,
) -> Vec<f32> {
    if let (ChannelChoice::Only(wanted), 2) = (channel, view.ndim()) {
        return view
            .index_axis(ndarray::Axis(1), wanted)
            .iter()
            .map(|&s| convert(s))
            .collect();
    }
    let channels = if view.ndim() == 1 { 1 } else { view.shape()[1] };
    // Logical (row-major) order over `(samples, channels)` is interleaved order, whatever the layout.
    let interleaved: Vec<f32> = view.iter().map(|&s| convert(s)).collect();
    phonrec::audio::mix_to_mono(interleaved, channels)
}

/// An f32 as the f64 its shortest decimal form names (0.3f32 -> 0.3, not 0.30000001192...).
fn clean(x: f32) -> f64 {
    if !x.is_finite() {
        return f64::from(x);
    }
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// A time in seconds (an f32 in the library) to 0.1 ms: frame times such as 9 × 0.02 read 0.18,
/// not 0.17999999. (To the microsecond, an f32 time past 8 s kept its own error: 8.559999.)
fn seconds(x: f32) -> f64 {
    (f64::from(x) * 1e4).round() / 1e4
}

/// A timed phone for Python: `(phone, start, end, confidence, alternatives)`; `alternatives` is
/// `(phone, probability)` pairs, empty unless `alternatives=K` asked for them.
type PhoneTuple = (String, f64, f64, f64, Vec<(String, f64)>);
/// An n-best entry for Python: `(phones, score, acoustic_log_prob, lm_log_prob)`.
type HypothesisTuple = (Vec<String>, f64, f64, f64);
/// A transcript for Python: `(duration, phones, segments, clipped, dereverberated, vtln_warp,
/// peak_dbfs, nbest, repairs)` with `repairs` `(concealed_dropouts, concealed_s,
/// spectral_holes_filled, clicks_removed, levels_raised, dc_offset_dbfs, narrowband)` (pyo3
/// converts tuples of up to 12);
/// `peak_dbfs` is `None` for digital silence (−∞ dBFS, which JSON cannot hold); `nbest` is empty
/// unless `nbest=N` asked for it.
type TranscriptTuple = (
    f64,
    Vec<PhoneTuple>,
    Vec<(f64, f64)>,
    f64,
    bool,
    f64,
    Option<f64>,
    Vec<HypothesisTuple>,
    (usize, f64, bool, usize, usize, Option<f64>, bool),
);
/// An alignment for Python: `(duration, match_score, worst_second_score, matches_text, words,
/// phones, skipped)`; a word is `(word, start, end, confidence, first_phone, end_phone)`.
type AlignmentTuple = (
    f64,
    f64,
    f64,
    bool,
    Vec<(String, f64, f64, f64, usize, usize)>,
    Vec<PhoneTuple>,
    Vec<String>,
);
/// A phone's score: `(expected, heard, start, end, gop, mispronounced)`.
type PhoneScoreTuple = (String, Option<String>, f64, f64, f64, bool);
/// A word's score: `(word, start, end, score, mispronounced, first_phone, end_phone)`.
type WordScoreTuple = (String, f64, f64, f64, bool, usize, usize);
/// Scores for Python: `(alignment, phones, words, threshold)`.
type ScoresTuple = (
    AlignmentTuple,
    Vec<PhoneScoreTuple>,
    Vec<WordScoreTuple>,
    f64,
);

/// The lexicon `align` and `score` turn text into phones with, as asked for at construction.
struct LexiconChoice {
    /// Start from the built-in CMUdict.
    built_in: bool,
    /// The user's words, overriding the built-in ones.
    user: Option<Lexicon>,
    /// The merged lexicon, built at the first alignment to text (the built-in one takes ~0.3 s).
    merged: OnceLock<Lexicon>,
}

impl LexiconChoice {
    fn get(&self) -> phonrec::Result<&Lexicon> {
        // The built-in dictionary alone (70-85 MB once parsed) is shared by every Recognizer of
        // the process; a merged one is each Recognizer's own.
        static BUILT_IN: OnceLock<Lexicon> = OnceLock::new();
        if self.built_in && self.user.is_none() {
            if let Some(lexicon) = BUILT_IN.get() {
                return Ok(lexicon);
            }
            let _ = BUILT_IN.set(Lexicon::built_in()?);
            return Ok(BUILT_IN.get().unwrap_or_else(|| unreachable!("set above")));
        }
        if let Some(lexicon) = self.merged.get() {
            return Ok(lexicon);
        }
        let mut lexicon = if self.built_in {
            Lexicon::built_in()?
        } else {
            Lexicon::default()
        };
        if let Some(user) = &self.user {
            lexicon.override_with(user.clone());
        }
        // Two threads may both build it; either copy serves.
        let _ = self.merged.set(lexicon);
        Ok(self
            .merged
            .get()
            .unwrap_or_else(|| unreachable!("set above")))
    }
}

/// The recogniser behind `phonrec.Recognizer`.
#[pyclass(frozen, module = "phonrec._phonrec", name = "Recognizer")]
struct PyRecognizer {
    recognizer: Recognizer,
    /// What `align` and `score` run on when it is not `recognizer`: with the precision left to its
    /// default, `transcribe` computes in [`Precision::inference_default`] (int8 on most x86-64
    /// CPUs) and alignment and scoring in f32, as the CLI's `transcribe`, `align` and `score` do
    /// (their boundaries and thresholds were measured in f32). Built on first use.
    f32_aligner: Option<LazyRecognizer>,
    /// The model's phones named in the chosen alphabet (the blank first).
    names: PhoneSet,
    lexicon: LexiconChoice,
    built_in_model: bool,
    /// The channel heard of multichannel input (`channel=N`, as `--channel N`).
    channel: ChannelChoice,
}

/// A recogniser built when first needed.
struct LazyRecognizer {
    model: Option<PathBuf>,
    decoding: Decoding,
    built: OnceLock<Recognizer>,
}

impl LazyRecognizer {
    fn get(&self) -> Result<&Recognizer, Failure> {
        if let Some(recognizer) = self.built.get() {
            return Ok(recognizer);
        }
        let recognizer = build_recognizer(self.model.as_deref(), &self.decoding)?;
        // Two threads may build it at once; either result is the same recogniser.
        Ok(self.built.get_or_init(|| recognizer))
    }
}

/// A `channel=` argument: `None` mixes the channels as the CLI does without `--channel`.
fn channel_arg(channel: Option<usize>) -> ChannelChoice {
    channel.map_or(ChannelChoice::Mixed, ChannelChoice::Only)
}

/// Decoding arguments, as `phonrec transcribe` takes them.
#[derive(Clone)]
struct Decoding {
    beam: Option<usize>,
    lm: Option<String>,
    no_lm: bool,
    lm_weight: Option<f32>,
    insertion_bonus: Option<f32>,
    /// The LSTM's arithmetic (`precision="bf16"`); `None`: this CPU's default.
    precision: Option<Precision>,
    /// When to remove late reverberation (`dereverb="auto"|"on"|"off"`).
    dereverb: Dereverb,
    /// Decode only the speech regions (`segment=False`: the whole file, as `--no-segment`).
    segment: bool,
    /// Speaker adaptation with the default warp factors (`vtln=True`, as `--vtln`).
    vtln: bool,
    /// Restore clipped peaks (`repair_clipping=False`, as `--keep-clipping`).
    repair_clipping: bool,
    /// Fill digital silence and gated gaps with the floor (`fill_digital_silence=False`, as
    /// `--keep-digital-silence`).
    fill_digital_silence: bool,
    /// Recognise a recording that starts or ends loud with its floor before or after it
    /// (`pad_edges=False`, as `--keep-edges`).
    pad_edges: bool,
    /// Conceal packets lost in speech (`conceal_dropouts=False`, as `--keep-dropouts`).
    conceal_dropouts: bool,
    /// Fill the spectral holes of audio coded at a low bit rate (`fill_spectral_holes=False`, as
    /// `--keep-spectral-holes`).
    fill_spectral_holes: bool,
    /// Interpolate clicks (`remove_clicks=False`, as `--keep-clicks`).
    remove_clicks: bool,
    /// Raise quieter talkers to the speech level (`equalise_levels=False`, as `--keep-levels`).
    equalise_levels: bool,
    /// Recognise 8 kHz audio stored at a higher rate at 8 kHz (`narrowband_as_8k=False`, as
    /// `--keep-rate`).
    narrowband_as_8k: bool,
    /// Drop faint regions of unsure phones (`unsure_below=DB`, as `--unsure-below DB`); `None`: the
    /// default level.
    unsure_below: Option<f32>,
    /// The added noise floor's distance under the speech (`floor_below=DB`, as `--floor-below
    /// DB`); `None`: the default.
    floor_below: Option<f32>,
    /// Per phone, its most probable phones (`alternatives=K`, as `--alternatives K`); 0: none.
    alternatives: usize,
    /// The beam's best sequences per recording (`nbest=N`, as `--nbest N`); 0: none.
    nbest: usize,
}

impl Decoding {
    fn precision(&self) -> Precision {
        self.precision.unwrap_or_else(Precision::inference_default)
    }

    fn is_default(&self) -> bool {
        self.precision.is_none()
            && self.dereverb == Dereverb::default()
            && self.segment
            && !self.vtln
            && self.repair_clipping
            && self.fill_digital_silence
            && self.pad_edges
            && self.conceal_dropouts
            && self.fill_spectral_holes
            && self.remove_clicks
            && self.equalise_levels
            && self.narrowband_as_8k
            && self.unsure_below.is_none()
            && self.floor_below.is_none()
            && self.alternatives == 0
            && self.nbest == 0
            && self.beam.is_none()
            && self.lm.is_none()
            && !self.no_lm
            && self.lm_weight.is_none()
            && self.insertion_bonus.is_none()
    }
}

/// The recogniser `phonrec transcribe` builds for `--model` and these decoding flags (the logic of
/// `DecodeArgs::load_recognizer` in src/cli/common.rs), plus the boundary model `phonrec align`
/// uses: the built-in one with the built-in model, none (midpoints) with another.
fn build_recognizer(model_path: Option<&Path>, decoding: &Decoding) -> Result<Recognizer, Failure> {
    let built_in = model_path.is_none();
    if built_in && decoding.is_default() {
        return Ok(builtin::recognizer_in(decoding.precision())?);
    }
    if decoding.no_lm && decoding.lm.is_some() {
        return Err(Failure::Value(
            "no_lm=True and lm= contradict each other: give one".into(),
        ));
    }
    let model = match model_path {
        Some(path) => Model::from_file_in(ModelFile::load(path)?, decoding.precision())?,
        None => builtin::model_in(decoding.precision())?,
    };
    let phones = model.phones().clone();
    // A model fine-tuned from the built-in one decodes with the built-in LM by default, as the CLI.
    let built_in_lineage = built_in || model.config().training.fine_tuned_from_built_in();
    let asks_built_in_lm = decoding.lm.as_deref() == Some("builtin");
    let lm = match &decoding.lm {
        Some(_) if asks_built_in_lm => match builtin::lm(&phones)? {
            Some(lm) => Some(lm),
            None => {
                return Err(Failure::Value(
                    "lm=\"builtin\": this phonrec was built without the built-in LM".into(),
                ))
            }
        },
        Some(path) => Some(PhoneLm::load(Path::new(path), &phones)?),
        None if built_in_lineage && !decoding.no_lm && decoding.beam != Some(1) => {
            builtin::lm(&phones)?
        }
        None => None,
    };
    let has_lm = lm.is_some();
    let built_in_lm = (decoding.lm.is_none() || asks_built_in_lm) && has_lm;
    let defaults = builtin::DecodingDefaults::new(has_lm, built_in_lm);
    let beam = decoding.beam.unwrap_or(defaults.beam);
    if beam == 0 {
        return Err(Failure::Value("beam must be at least 1".into()));
    }
    if has_lm && beam <= 1 {
        return Err(Failure::Value(
            "an LM needs the beam search: use beam=8 (or wider), leave beam out, or no_lm=True"
                .into(),
        ));
    }
    if decoding.nbest > 1 && beam <= 1 {
        return Err(Failure::Value(format!(
            "nbest={} needs the beam search, and this decoding is greedy: give beam={} (or wider)",
            decoding.nbest,
            decoding.nbest.max(8)
        )));
    }
    if decoding.nbest > beam {
        return Err(Failure::Value(format!(
            "nbest={} is more than the beam keeps (beam={beam}): give beam={}",
            decoding.nbest, decoding.nbest
        )));
    }
    let options = RecognizerOptions {
        beam,
        lm,
        lm_weight: decoding.lm_weight.unwrap_or(defaults.lm_weight),
        insertion_bonus: decoding.insertion_bonus.unwrap_or(defaults.insertion_bonus),
        boundaries: if built_in {
            builtin::boundaries(&phones)?
        } else {
            None
        },
        frame_head: if built_in {
            builtin::frame_head(&phones, 2 * model.network().config().hidden_size)?
        } else {
            None
        },
        dereverb: decoding.dereverb,
        segment: SegmentOptions {
            enabled: decoding.segment,
            unsure_below_db: decoding
                .unsure_below
                .unwrap_or(SegmentOptions::default().unsure_below_db),
            ..SegmentOptions::default()
        },
        vtln_warps: if decoding.vtln {
            DEFAULT_VTLN_WARPS.to_vec()
        } else {
            Vec::new()
        },
        repair_clipping: decoding.repair_clipping,
        fill_digital_silence: decoding.fill_digital_silence,
        pad_loud_edges: decoding.pad_edges,
        conceal_dropouts: decoding.conceal_dropouts,
        fill_spectral_holes: decoding.fill_spectral_holes,
        remove_clicks: decoding.remove_clicks,
        equalise_levels: decoding.equalise_levels,
        narrowband_as_8k: decoding.narrowband_as_8k,
        noise_floor_below_db: decoding
            .floor_below
            .unwrap_or(phonrec::audio::DEFAULT_FLOOR_BELOW_DB),
        alternatives: decoding.alternatives,
        nbest: decoding.nbest,
        ..RecognizerOptions::default()
    };
    Ok(Recognizer::new(model, options)?)
}

/// A lexicon argument: a path to a CMUdict-format file, or a dict of word -> pronunciation(s).
fn lexicon_arg(obj: &Bound<'_, PyAny>) -> PyResult<LexiconSource> {
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut entries = Vec::new();
        for (word, pronunciations) in dict.iter() {
            let word: String = word
                .extract()
                .map_err(|_| PyTypeError::new_err("lexicon dict keys must be words (str)"))?;
            if let Ok(one) = pronunciations.extract::<String>() {
                entries.push((word, one));
            } else if let Ok(several) = pronunciations.extract::<Vec<String>>() {
                entries.extend(several.into_iter().map(|p| (word.clone(), p)));
            } else {
                return Err(PyTypeError::new_err(format!(
                    "lexicon[{word:?}] must be a pronunciation (\"HH AH0 L OW1\") or a list of them"
                )));
            }
        }
        if let Some((word, _)) = entries
            .iter()
            .find(|(_, p)| p.split_whitespace().next().is_none())
        {
            return Err(PyValueError::new_err(format!(
                "lexicon[{word:?}] has an empty pronunciation"
            )));
        }
        return Ok(LexiconSource::Entries(entries));
    }
    if obj.is_instance_of::<PyString>() {
        return Ok(LexiconSource::File(obj.extract()?));
    }
    Err(PyTypeError::new_err(format!(
        "lexicon must be a path to a CMUdict-format file or a dict of word -> pronunciation; got {}",
        obj.get_type().name()?
    )))
}

/// Where user pronunciations come from.
enum LexiconSource {
    File(PathBuf),
    Entries(Vec<(String, String)>),
}

impl LexiconSource {
    fn load(self) -> phonrec::Result<Lexicon> {
        match self {
            LexiconSource::File(path) => Lexicon::load(&path),
            LexiconSource::Entries(entries) => Ok(Lexicon::from_entries(
                entries.iter().map(|(w, p)| (w.as_str(), p.as_str())),
            )),
        }
    }
}

/// What an alignment is to: words of a text, or phones.
enum Said {
    Text(String, OovPolicy),
    Phones(String),
}

fn said_arg(text: Option<String>, phones: Option<String>, oov: &str) -> PyResult<Said> {
    let oov = OovPolicy::from_name(oov).ok_or_else(|| {
        PyValueError::new_err(format!(
            "oov={oov:?}: expected one of {}",
            OovPolicy::names().join(", ")
        ))
    })?;
    match (text, phones) {
        (Some(text), None) => Ok(Said::Text(text, oov)),
        (None, Some(phones)) => Ok(Said::Phones(phones)),
        (Some(_), Some(_)) => Err(PyValueError::new_err(
            "give the words (text=) or the phones (phones=) the audio says, not both",
        )),
        (None, None) => Err(PyValueError::new_err(
            "give the words (text=) or the phones (phones=) the audio says",
        )),
    }
}

impl PyRecognizer {
    fn name(&self, phone: phonrec::phones::PhoneId) -> String {
        self.names.name(phone).to_string()
    }

    fn phone_tuple(&self, span: &PhoneSpan) -> PhoneTuple {
        (
            self.name(span.phone),
            seconds(span.start_s),
            seconds(span.end_s),
            clean(span.confidence),
            span.alternatives
                .iter()
                .map(|&(phone, p)| (self.name(phone), clean(p)))
                .collect(),
        )
    }

    fn transcript_tuple(&self, transcript: &Transcript) -> TranscriptTuple {
        (
            transcript.duration_s,
            transcript
                .spans
                .iter()
                .map(|s| self.phone_tuple(s))
                .collect(),
            transcript
                .segments
                .iter()
                .map(|&(a, b)| (seconds(a), seconds(b)))
                .collect(),
            clean(transcript.clipped_fraction),
            transcript.dereverberated,
            clean(transcript.vtln_warp),
            transcript
                .peak_dbfs
                .is_finite()
                .then(|| clean(transcript.peak_dbfs)),
            transcript
                .nbest
                .iter()
                .map(|h| {
                    (
                        h.phones.iter().map(|&p| self.name(p)).collect(),
                        h.score,
                        h.acoustic_log_prob,
                        h.lm_log_prob,
                    )
                })
                .collect(),
            (
                transcript.concealed_dropouts,
                clean(transcript.concealed_s),
                transcript.spectral_holes_filled,
                transcript.clicks_removed,
                transcript.levels_raised,
                transcript.dc_offset_dbfs.map(clean),
                transcript.narrowband,
            ),
        )
    }

    fn alignment_tuple(&self, alignment: &Alignment) -> AlignmentTuple {
        (
            alignment.duration_s,
            alignment.match_score,
            alignment.worst_second_score,
            alignment.matches_text,
            alignment
                .words
                .iter()
                .map(|w| {
                    (
                        w.word.clone(),
                        seconds(w.start_s),
                        seconds(w.end_s),
                        clean(w.confidence),
                        w.phones.start,
                        w.phones.end,
                    )
                })
                .collect(),
            alignment
                .phones
                .iter()
                .map(|p| self.phone_tuple(p))
                .collect(),
            alignment.skipped.clone(),
        )
    }

    fn scores_tuple(&self, scores: &PronunciationScores) -> ScoresTuple {
        (
            self.alignment_tuple(&scores.alignment),
            scores
                .phones
                .iter()
                .map(|p| {
                    (
                        self.name(p.expected),
                        p.heard.map(|h| self.name(h)),
                        seconds(p.start_s),
                        seconds(p.end_s),
                        clean(p.gop),
                        p.mispronounced,
                    )
                })
                .collect(),
            scores
                .words
                .iter()
                .map(|w| {
                    (
                        w.word.clone(),
                        seconds(w.start_s),
                        seconds(w.end_s),
                        clean(w.score),
                        w.mispronounced,
                        w.phones.start,
                        w.phones.end,
                    )
                })
                .collect(),
            clean(scores.threshold),
        )
    }

    /// The recogniser `align` and `score` run on (see `f32_aligner`).
    fn aligner(&self) -> Result<&Recognizer, Failure> {
        match &self.f32_aligner {
            Some(lazy) => lazy.get(),
            None => Ok(&self.recognizer),
        }
    }

    /// The alignment target of `said` for this model.
    /// What the audio should say, as the alignment takes it; nothing at all is an error, as the
    /// CLI's (an empty result read as "nothing mispronounced").
    fn target(&self, said: &Said) -> Result<AlignTarget, Failure> {
        let phones = self.recognizer.phones();
        let target = match said {
            Said::Phones(text) => AlignTarget::from_phones(text, phones)?,
            Said::Text(text, oov) => {
                AlignTarget::from_text(text, self.lexicon.get()?, phones, *oov)?
            }
        };
        if target.words.is_empty() {
            return Err(Failure::Value(if target.skipped.is_empty() {
                "the text to align is empty: nothing to align or score".to_string()
            } else {
                format!(
                    "oov=\"skip\" left out every word of the text ({}): nothing to align or score",
                    target.skipped.join(" ")
                )
            }));
        }
        Ok(target)
    }
}

#[pymethods]
impl PyRecognizer {
    #[new]
    #[pyo3(signature = (model=None, beam=None, lm=None, no_lm=false, lm_weight=None,
                        insertion_bonus=None, alphabet="arpabet", lexicon=None,
                        builtin_lexicon=true, precision=None, dereverb="auto", segment=true,
                        vtln=false, repair_clipping=true, fill_digital_silence=true,
                        pad_edges=true, conceal_dropouts=true, fill_spectral_holes=true, remove_clicks=true,
                        equalise_levels=true, narrowband_as_8k=true, unsure_below=None,
                        floor_below=None, channel=None, alternatives=0, nbest=0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: Option<PathBuf>,
        beam: Option<usize>,
        lm: Option<String>,
        no_lm: bool,
        lm_weight: Option<f32>,
        insertion_bonus: Option<f32>,
        alphabet: &str,
        lexicon: Option<&Bound<'_, PyAny>>,
        builtin_lexicon: bool,
        precision: Option<&str>,
        dereverb: &str,
        segment: bool,
        vtln: bool,
        repair_clipping: bool,
        fill_digital_silence: bool,
        pad_edges: bool,
        conceal_dropouts: bool,
        fill_spectral_holes: bool,
        remove_clicks: bool,
        equalise_levels: bool,
        narrowband_as_8k: bool,
        unsure_below: Option<f32>,
        floor_below: Option<f32>,
        channel: Option<usize>,
        alternatives: usize,
        nbest: usize,
    ) -> PyResult<Self> {
        let dereverb = match dereverb {
            "auto" => Dereverb::Auto,
            "on" => Dereverb::On,
            "off" => Dereverb::Off,
            other => {
                return Err(PyValueError::new_err(format!(
                    "dereverb={other:?}: expected \"auto\", \"on\" or \"off\""
                )))
            }
        };
        let precision = precision
            .map(|name| {
                Precision::from_name(name).ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "precision={name:?}: expected one of {}",
                        Precision::names().join(", ")
                    ))
                })
            })
            .transpose()?;
        let alphabet = Alphabet::from_name(alphabet).ok_or_else(|| {
            PyValueError::new_err(format!(
                "alphabet={alphabet:?}: expected one of {}",
                Alphabet::names().join(", ")
            ))
        })?;
        if let Some(weight) = lm_weight.filter(|w| !w.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "lm_weight={weight} is not a finite number"
            )));
        }
        if let Some(bonus) = insertion_bonus.filter(|b| !b.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "insertion_bonus={bonus} is not a finite number"
            )));
        }
        let lexicon = lexicon.map(lexicon_arg).transpose()?;
        if lexicon.is_none() && !builtin_lexicon {
            return Err(PyValueError::new_err(
                "builtin_lexicon=False needs a lexicon= of your own",
            ));
        }
        let decoding = Decoding {
            beam,
            lm,
            no_lm,
            lm_weight,
            insertion_bonus,
            precision,
            dereverb,
            segment,
            vtln,
            repair_clipping,
            fill_digital_silence,
            pad_edges,
            conceal_dropouts,
            fill_spectral_holes,
            remove_clicks,
            equalise_levels,
            narrowband_as_8k,
            unsure_below,
            floor_below,
            alternatives,
            nbest,
        };
        let built_in_model = model.is_none();
        let (recognizer, user_lexicon) = detached(py, || {
            let recognizer = build_recognizer(model.as_deref(), &decoding)?;
            let user = lexicon.map(LexiconSource::load).transpose()?;
            Ok((recognizer, user))
        })?;
        let (names, _unknown) = recognizer.phones().in_alphabet(alphabet);
        let f32_aligner = (decoding.precision.is_none() && decoding.precision() != Precision::F32)
            .then(|| LazyRecognizer {
                model: model.clone(),
                decoding: Decoding {
                    precision: Some(Precision::F32),
                    ..decoding.clone()
                },
                built: OnceLock::new(),
            });
        Ok(PyRecognizer {
            recognizer,
            f32_aligner,
            names,
            lexicon: LexiconChoice {
                built_in: builtin_lexicon,
                user: user_lexicon,
                merged: OnceLock::new(),
            },
            built_in_model,
            channel: channel_arg(channel),
        })
    }

    /// Column names of the posteriors: the CTC blank, then the phones.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.names.names().to_vec()
    }

    /// The sample rate the model hears, in Hz.
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.recognizer.model().sample_rate_hz()
    }

    /// Seconds per network output frame.
    #[getter]
    fn frame_shift(&self) -> f64 {
        self.recognizer.output_frame_shift_s()
    }

    /// How this recogniser decodes, in words.
    #[getter]
    fn decoding(&self, py: Python<'_>) -> String {
        py.detach(|| self.recognizer.decoding().to_string())
    }

    /// Whether the model is the built-in one.
    #[getter]
    fn builtin_model(&self) -> bool {
        self.built_in_model
    }

    #[pyo3(signature = (audio, sample_rate=None))]
    fn transcribe(
        &self,
        py: Python<'_>,
        audio: &Bound<'_, PyAny>,
        sample_rate: Option<i64>,
    ) -> PyResult<TranscriptTuple> {
        let audio = audio_arg(audio, sample_rate, self.channel)?;
        let transcript = detached(py, || Ok(self.recognizer.transcribe_wave(audio.read()?)?))?;
        Ok(self.transcript_tuple(&transcript))
    }

    /// Transcripts of `(audio, sample_rate)` pairs, recognised together; each result is a transcript
    /// or the exception its input raised.
    fn transcribe_batch(
        &self,
        py: Python<'_>,
        items: Vec<(Bound<'_, PyAny>, Option<i64>)>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let inputs = items
            .iter()
            .enumerate()
            .map(|(i, (audio, rate))| {
                audio_arg(audio, *rate, self.channel).map_err(|e| {
                    let message = format!("item {i}: {}", e.value(py));
                    if e.is_instance_of::<PyTypeError>(py) {
                        PyTypeError::new_err(message)
                    } else {
                        PyValueError::new_err(message)
                    }
                })
            })
            .collect::<PyResult<Vec<Audio>>>()?;
        let results = detached(py, || {
            // Rounds as `phonrec transcribe` makes them (`plan_rounds`): short recordings share
            // network batches, and a long list is not all in memory at once.
            let sizes: Vec<u64> = inputs.iter().map(Audio::size_bytes).collect();
            let mut results = Vec::with_capacity(inputs.len());
            let mut inputs = inputs.into_iter();
            for range in plan_rounds(&sizes) {
                let round: Vec<Audio> = inputs.by_ref().take(range.len()).collect();
                let waves: Vec<phonrec::Result<Waveform>> =
                    round.into_par_iter().map(Audio::read).collect();
                results.extend(self.recognizer.transcribe_waves(waves));
            }
            Ok(results)
        })?;
        results
            .into_iter()
            .map(|result| match result {
                Ok(transcript) => Ok(self
                    .transcript_tuple(&transcript)
                    .into_pyobject(py)?
                    .into_any()
                    .unbind()),
                Err(error) => Ok(py_error(py, Failure::Library(error))
                    .into_value(py)
                    .into_any()),
            })
            .collect()
    }

    /// `(probabilities [frames, classes] float32, transcript)`; natural-log probabilities if `log`.
    #[pyo3(signature = (audio, sample_rate=None, log=false))]
    fn probs<'py>(
        &self,
        py: Python<'py>,
        audio: &Bound<'_, PyAny>,
        sample_rate: Option<i64>,
        log: bool,
    ) -> PyResult<(Bound<'py, PyArray2<f32>>, TranscriptTuple)> {
        let audio = audio_arg(audio, sample_rate, self.channel)?;
        let recognition = detached(py, || {
            let mut recognition = self.recognizer.recognize(audio.read()?)?;
            if !log {
                recognition.log_probs.mapv_inplace(f32::exp);
            }
            Ok(recognition)
        })?;
        let transcript = self.transcript_tuple(&recognition.transcript);
        Ok((
            PyArray2::from_owned_array(py, recognition.log_probs),
            transcript,
        ))
    }

    #[pyo3(signature = (audio, text=None, phones=None, sample_rate=None, oov="error"))]
    fn align(
        &self,
        py: Python<'_>,
        audio: &Bound<'_, PyAny>,
        text: Option<String>,
        phones: Option<String>,
        sample_rate: Option<i64>,
        oov: &str,
    ) -> PyResult<AlignmentTuple> {
        let said = said_arg(text, phones, oov)?;
        let audio = audio_arg(audio, sample_rate, self.channel)?;
        let alignment = detached(py, || {
            let target = self.target(&said)?;
            Ok(self.aligner()?.align(audio.read()?, &target)?)
        })?;
        Ok(self.alignment_tuple(&alignment))
    }

    #[pyo3(signature = (audio, text=None, phones=None, sample_rate=None, threshold=-1.0, oov="error"))]
    #[allow(clippy::too_many_arguments)]
    fn score(
        &self,
        py: Python<'_>,
        audio: &Bound<'_, PyAny>,
        text: Option<String>,
        phones: Option<String>,
        sample_rate: Option<i64>,
        threshold: f32,
        oov: &str,
    ) -> PyResult<ScoresTuple> {
        if !threshold.is_finite() {
            return Err(PyValueError::new_err(format!(
                "threshold={threshold} is not a finite number"
            )));
        }
        let said = said_arg(text, phones, oov)?;
        let audio = audio_arg(audio, sample_rate, self.channel)?;
        let scores = detached(py, || {
            let target = self.target(&said)?;
            Ok(self.aligner()?.score(audio.read()?, &target, threshold)?)
        })?;
        Ok(self.scores_tuple(&scores))
    }
}

/// Feature options as `phonrec features` takes them (a dict from the Python layer; `None` is the
/// CLI's default).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct FeatureArgs {
    kind: String,
    num_mel_bins: Option<usize>,
    num_ceps: Option<usize>,
    cepstral_lifter: Option<f32>,
    use_energy: Option<bool>,
    energy_floor: f32,
    raw_energy: bool,
    window_type: String,
    snip_edges: bool,
    low_freq: f32,
    high_freq: f32,
    vtln_warp: f32,
    vtln_low: f32,
    vtln_high: f32,
    dither: f32,
    frame_length: f32,
    frame_shift: f32,
    preemphasis_coefficient: f32,
    remove_dc_offset: bool,
    round_to_power_of_two: bool,
    deltas: bool,
    delta_order: usize,
    delta_window: usize,
    cmvn: bool,
    norm_vars: bool,
    resample: Option<i64>,
}

impl FeatureArgs {
    /// The library's options for audio at `sample_rate_hz`, through the same Kaldi-flag mapping as
    /// `phonrec features` ([`KaldiFeatureFlags`]).
    fn options(&self, sample_rate_hz: u32) -> Result<FeatureOptions, String> {
        let mfcc = match self.kind.as_str() {
            "fbank" => false,
            "mfcc" => true,
            other => return Err(format!("kind={other:?}: expected \"fbank\" or \"mfcc\"")),
        };
        Ok(KaldiFeatureFlags {
            mfcc,
            num_mel_bins: self.num_mel_bins,
            num_ceps: self.num_ceps,
            cepstral_lifter: self.cepstral_lifter,
            use_energy: self.use_energy,
            energy_floor: self.energy_floor,
            raw_energy: self.raw_energy,
            window_type: self.window_type.parse()?,
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
        .options(sample_rate_hz))
    }
}

/// A `resample=` argument checked: a rate phonrec reads, or `None`.
fn resample_rate(resample: Option<i64>) -> PyResult<Option<u32>> {
    resample
        .map(|rate| {
            u32::try_from(rate)
                .ok()
                .filter(|r| (MIN_SAMPLE_RATE_HZ..=MAX_SAMPLE_RATE_HZ).contains(r))
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "resample={rate}: the rate must be between {MIN_SAMPLE_RATE_HZ} and \
                         {MAX_SAMPLE_RATE_HZ} Hz"
                    ))
                })
        })
        .transpose()
}

/// Kaldi-compatible features `[frames, dims]` float32 of one recording, as `phonrec features`
/// computes them.
#[pyfunction]
#[pyo3(signature = (audio, sample_rate, options, channel=None))]
fn features<'py>(
    py: Python<'py>,
    audio: &Bound<'_, PyAny>,
    sample_rate: Option<i64>,
    options: FeatureArgs,
    channel: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let resample = resample_rate(options.resample)?;
    let audio = audio_arg(audio, sample_rate, channel_arg(channel))?;
    // The options are checked on a nominal rate first, so a bad option fails before any audio is read.
    options
        .options(resample.unwrap_or(16_000))
        .map_err(PyValueError::new_err)?;
    let features = detached(py, || {
        let mut wave = audio.read()?;
        // Files are checked as they are read; samples from an array are checked here, as the
        // recogniser checks them.
        wave.check_samples()
            .map_err(|reason| Error::InvalidAudio { reason })?;
        if let Some(rate) = resample {
            wave = wave.resampled(rate)?;
        }
        let options = options
            .options(wave.sample_rate_hz)
            .map_err(Failure::Value)?;
        let pipeline = FeaturePipeline::new(options)?;
        Ok(pipeline.compute(&wave.samples))
    })?;
    Ok(PyArray2::from_owned_array(py, features))
}

/// The samples of an audio file as phonrec reads it (every format, channels mixed, lossy files
/// read gapless): mono float32 at full scale ±1, and the rate in Hz, resampled to `resample` when
/// given.
#[pyfunction]
#[pyo3(signature = (audio, resample, channel=None))]
fn load<'py>(
    py: Python<'py>,
    audio: &Bound<'_, PyAny>,
    resample: Option<i64>,
    channel: Option<usize>,
) -> PyResult<(Bound<'py, PyArray1<f32>>, u32)> {
    if audio.cast::<PyUntypedArray>().is_ok() {
        return Err(PyTypeError::new_err(
            "load reads audio files (a path, the bytes of a file or a binary file object); an \
             array is samples already",
        ));
    }
    let resample = resample_rate(resample)?;
    let audio = audio_arg(audio, None, channel_arg(channel))?;
    let wave = detached(py, || {
        let mut wave = audio.read()?;
        if let Some(rate) = resample {
            wave = wave.resampled(rate)?;
        }
        Ok(wave)
    })?;
    let rate = wave.sample_rate_hz;
    let samples: Vec<f32> = wave.samples.iter().map(|&s| s / INT16_SCALE).collect();
    Ok((PyArray1::from_vec(py, samples), rate))
}

/// Live audio cut into utterances at pauses, as `phonrec live` cuts it.
#[pyclass(module = "phonrec._phonrec", name = "Endpointer")]
struct PyEndpointer {
    /// `None` once finished.
    inner: Option<Endpointer>,
    sample_rate_hz: u32,
    /// The channel heard of `(samples, channels)` blocks (`channel=N`, as `live --channel N`).
    channel: ChannelChoice,
}

/// An utterance for Python: its start in seconds and its samples (float32, full scale ±1).
fn utterance_tuple<'py>(
    py: Python<'py>,
    utterance: LiveUtterance,
) -> (f64, Bound<'py, PyArray1<f32>>) {
    let samples: Vec<f32> = utterance
        .wave
        .samples
        .iter()
        .map(|&s| s / INT16_SCALE)
        .collect();
    (utterance.start_s, PyArray1::from_vec(py, samples))
}

#[pymethods]
impl PyEndpointer {
    #[new]
    #[pyo3(signature = (sample_rate, min_pause=0.5, max_utterance=20.0, speech_above=6.0,
                        channel=None))]
    fn new(
        sample_rate: i64,
        min_pause: f32,
        max_utterance: f32,
        speech_above: f32,
        channel: Option<usize>,
    ) -> PyResult<Self> {
        let rate = sample_rate_arg(sample_rate)?;
        let options = EndpointOptions {
            min_pause_s: min_pause,
            max_utterance_s: max_utterance,
            threshold_db: speech_above,
            ..EndpointOptions::default()
        };
        let inner =
            Endpointer::new(rate, options).map_err(|e| PyValueError::new_err(error_chain(&e)))?;
        Ok(PyEndpointer {
            inner: Some(inner),
            sample_rate_hz: rate,
            channel: channel.map_or(ChannelChoice::Mixed, ChannelChoice::Only),
        })
    }

    /// Add the samples that arrived (an array as `Recognizer.transcribe` takes them, at the
    /// endpointer's rate); the utterances that ended, as (start, samples).
    fn push<'py>(
        &mut self,
        py: Python<'py>,
        samples: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<(f64, Bound<'py, PyArray1<f32>>)>> {
        let array = samples
            .cast::<PyUntypedArray>()
            .map_err(|_| PyTypeError::new_err("push takes a numpy array of samples".to_string()))?;
        let wave = wave_from_array(array, Some(i64::from(self.sample_rate_hz)), self.channel)?;
        let inner = self.inner.as_mut().ok_or_else(|| {
            PyValueError::new_err("the endpointer was finished; make a new one for a new stream")
        })?;
        Ok(inner
            .push(&wave.samples)
            .map_err(|error| py_error(py, error.into()))?
            .into_iter()
            .map(|u| utterance_tuple(py, u))
            .collect())
    }

    /// The stream has ended: the utterance under way, if any.
    fn finish<'py>(&mut self, py: Python<'py>) -> Option<(f64, Bound<'py, PyArray1<f32>>)> {
        self.inner
            .take()
            .and_then(Endpointer::finish)
            .map(|u| utterance_tuple(py, u))
    }
}

/// The extension module: the recogniser class, the features and load functions, the exceptions
/// and the version of this build.
#[pymodule]
fn _phonrec(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // A damaged audio file's decoder panic is that file's error: no panic message on stderr.
    phonrec::audio::quiet_decoder_panics();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("PhonrecError", py.get_type::<PhonrecError>())?;
    m.add(
        "OutOfVocabularyError",
        py.get_type::<OutOfVocabularyError>(),
    )?;
    m.add_class::<PyRecognizer>()?;
    m.add_class::<PyEndpointer>()?;
    m.add_function(wrap_pyfunction!(features, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    Ok(())
}
