//! The built-in default model and what comes with it: its phone LM, its boundary model for
//! alignment, and the decoding settings chosen for them. Compiled in from `models/` when the crate is
//! built (see `build.rs`), so the command line, the library and the Python package all recognise
//! with exactly the same model and defaults.
//!
//! ```no_run
//! # fn main() -> phonrec::Result<()> {
//! let recognizer = phonrec::builtin::recognizer()?;
//! let transcript = recognizer.transcribe_file("speech.wav".as_ref())?;
//! # Ok(()) }
//! ```

use std::path::Path;

use crate::ctc::{BoundaryModel, PhoneLm};
use crate::error::{Error, Result};
use crate::model::{FrameHead, Model, ModelFile, Precision};
use crate::phones::PhoneSet;
use crate::recognize::{Recognizer, RecognizerOptions};

/// The default model, compiled in from `models/default.safetensors` when the crate was built.
#[cfg(phonrec_default_model)]
const MODEL: Option<&[u8]> = Some(include_bytes!("../models/default.safetensors"));
#[cfg(not(phonrec_default_model))]
const MODEL: Option<&[u8]> = None;

/// The default model's phone LM in phonrec's binary format (`models/default-lm.bin`, converted from
/// `models/default-lm.arpa.gz` by `phonrec lm --input`), scored where it lies in the program's data.
#[cfg(phonrec_default_lm)]
const LM: Option<&[u8]> = Some(include_bytes!("../models/default-lm.bin"));
#[cfg(not(phonrec_default_lm))]
const LM: Option<&[u8]> = None;

/// The default model's boundary model for alignment (`models/default-boundaries.tsv`, fitted by
/// `recipes/align/fit_boundaries.py`).
#[cfg(phonrec_default_model)]
const BOUNDARIES: Option<&str> = Some(include_str!("../models/default-boundaries.tsv"));
#[cfg(not(phonrec_default_model))]
const BOUNDARIES: Option<&str> = None;

/// The default model's frame head for alignment (`models/default-frames.safetensors`, fitted by
/// `phonrec fit-frame-head`, recipe in `recipes/align/`).
#[cfg(phonrec_default_frames)]
const FRAME_HEAD: Option<&[u8]> = Some(include_bytes!("../models/default-frames.safetensors"));
#[cfg(not(phonrec_default_frames))]
const FRAME_HEAD: Option<&[u8]> = None;
const FRAME_HEAD_NAME: &str = "<built-in frame head>";

/// Beam width with a phone LM when none is asked for. 16, not 8: on the real evaluation sets and
/// their degraded copies a width of 16 was 0.4–1.1 PER points better on average than 8 (better in
/// 56 of 69 cells, worse in 5), the synthetic ones 0.1–0.2, for ~6 % of the CPU time of recognition
/// at 16 (the network takes ~half); 32 gained little more (`models/README.md`, "The beam width").
pub const BEAM_WITH_LM: usize = 16;
/// The LM weight with the built-in model and its LM, chosen on the synthetic dev set with the LM's
/// order and the insertion bonus (`models/README.md`).
pub const LM_WEIGHT: f32 = 0.4;
/// The insertion bonus with the built-in model and its LM, chosen with the LM weight on the synthetic
/// dev set (`models/README.md`): the LM alone makes the search drop phones.
pub const INSERTION_BONUS: f32 = 1.0;

/// The LM weight with any LM other than the built-in model's own (`--lm FILE`), where none was
/// tuned.
pub const OTHER_LM_WEIGHT: f32 = 0.3;

/// The decoding settings a front end uses for those the user left out, given whether there is an
/// LM and whether it is the built-in model's own (tuned with it). The one rule behind
/// `phonrec transcribe`'s defaults and the Python package's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodingDefaults {
    /// [`BEAM_WITH_LM`] with an LM, else 1 (greedy).
    pub beam: usize,
    /// [`LM_WEIGHT`] for the built-in LM, else [`OTHER_LM_WEIGHT`].
    pub lm_weight: f32,
    /// [`INSERTION_BONUS`] for the built-in LM, else 0.
    pub insertion_bonus: f32,
}

impl DecodingDefaults {
    /// The defaults with (`has_lm`) or without an LM; `built_in_lm`: it is the built-in LM.
    pub fn new(has_lm: bool, built_in_lm: bool) -> Self {
        DecodingDefaults {
            beam: if has_lm { BEAM_WITH_LM } else { 1 },
            lm_weight: if built_in_lm {
                LM_WEIGHT
            } else {
                OTHER_LM_WEIGHT
            },
            insertion_bonus: if built_in_lm { INSERTION_BONUS } else { 0.0 },
        }
    }
}

/// How the built-in things are named in messages.
const MODEL_NAME: &str = "<built-in default model>";
const LM_NAME: &str = "<built-in phone LM>";
const BOUNDARIES_NAME: &str = "<built-in boundary model>";

/// The built-in model's file bytes (safetensors), if this build has one.
pub fn model_bytes() -> Option<&'static [u8]> {
    MODEL
}

/// The built-in phone LM's bytes (the binary format, see [`PhoneLm::from_binary_static`]), if this
/// build has one.
pub fn lm_bytes() -> Option<&'static [u8]> {
    LM
}

/// The built-in boundary model (TSV), if this build has the built-in model.
pub fn boundaries_tsv() -> Option<&'static str> {
    BOUNDARIES
}

fn missing(what: &'static str) -> Error {
    Error::InvalidOptions {
        what,
        reason: "this phonrec was built without it (models/default.safetensors or \
                 models/default-lm.bin was missing at build time); give a model file instead"
            .into(),
    }
}

/// The built-in model.
pub fn model() -> Result<Model> {
    model_in(Precision::F32)
}

/// The built-in model, its LSTM computing in `precision` (see [`Precision`]).
pub fn model_in(precision: Precision) -> Result<Model> {
    let bytes = MODEL.ok_or_else(|| missing("built-in model"))?;
    Model::from_file_in(ModelFile::load_from_bytes(bytes, MODEL_NAME)?, precision)
}

/// The built-in phone LM for a model with these phones (the built-in model's 39, or a model
/// fine-tuned from it); `None` if this build has no LM.
pub fn lm(phones: &PhoneSet) -> Result<Option<PhoneLm>> {
    LM.map(|bytes| PhoneLm::from_binary_static(bytes, phones, Path::new(LM_NAME)))
        .transpose()
}

/// The built-in boundary model for a model with these phones; `None` if this build has none.
pub fn boundaries(phones: &PhoneSet) -> Result<Option<BoundaryModel>> {
    BOUNDARIES
        .map(|text| BoundaryModel::parse_tsv(text, phones, BOUNDARIES_NAME))
        .transpose()
}

/// The built-in frame head for a model with these phones and last hidden layer width (the built-in
/// model's, or one fine-tuned from it: a head only fits the network it was fitted on, so use it with
/// another only knowingly); `None` if this build has none.
pub fn frame_head(phones: &PhoneSet, hidden_width: usize) -> Result<Option<FrameHead>> {
    FRAME_HEAD
        .map(|bytes| FrameHead::from_bytes(bytes, FRAME_HEAD_NAME, phones, hidden_width))
        .transpose()
}

/// Decoding options for the built-in model: the prefix beam search (width [`BEAM_WITH_LM`]) with
/// the built-in LM at weight [`LM_WEIGHT`] and insertion bonus [`INSERTION_BONUS`] when `lm` is
/// given, else greedy; the built-in boundary model for alignment (the frame head is added by
/// [`recognizer`], which knows the network); everything else at its default.
pub fn recognizer_options(lm: Option<PhoneLm>, phones: &PhoneSet) -> Result<RecognizerOptions> {
    let defaults = DecodingDefaults::new(lm.is_some(), true);
    Ok(RecognizerOptions {
        beam: defaults.beam,
        lm,
        lm_weight: defaults.lm_weight,
        insertion_bonus: defaults.insertion_bonus,
        boundaries: boundaries(phones)?,
        ..RecognizerOptions::default()
    })
}

/// The built-in model, its LM (compiled in as a binary trie: nothing to load), its frame head and
/// boundary model, computing in f32: the recogniser `phonrec align` and `phonrec score` use when
/// given no options. `phonrec transcribe` uses the same in [`Precision::inference_default`]
/// ([`recognizer_in`]).
pub fn recognizer() -> Result<Recognizer> {
    recognizer_in(Precision::F32)
}

/// As [`recognizer`], the LSTM computing in `precision`.
pub fn recognizer_in(precision: Precision) -> Result<Recognizer> {
    let model = model_in(precision)?;
    let phones = model.phones().clone();
    let hidden_width = 2 * model.network().config().hidden_size;
    let options = RecognizerOptions {
        frame_head: frame_head(&phones, hidden_width)?,
        ..recognizer_options(lm(&phones)?, &phones)?
    };
    Recognizer::new(model, options)
}
