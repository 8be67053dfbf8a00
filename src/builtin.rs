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
use crate::model::Model;
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

/// Beam width with a phone LM when none is asked for.
pub const BEAM_WITH_LM: usize = 8;
/// The LM weight with the built-in model and its LM, chosen on the synthetic dev set with the LM's
/// order and the insertion bonus (`models/README.md`).
pub const LM_WEIGHT: f32 = 0.4;
/// The insertion bonus with the built-in model and its LM, chosen with the LM weight on the synthetic
/// dev set (`models/README.md`): the LM alone makes the search drop phones.
pub const INSERTION_BONUS: f32 = 1.0;

/// The LM weight with any LM other than the built-in model's own (`--lm FILE`), where none was
/// tuned.
pub const OTHER_LM_WEIGHT: f32 = 0.3;

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
    Model::load_from_bytes(MODEL.ok_or_else(|| missing("built-in model"))?, MODEL_NAME)
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

/// Decoding options for the built-in model: the prefix beam search (width [`BEAM_WITH_LM`]) with
/// the built-in LM at weight [`LM_WEIGHT`] and insertion bonus [`INSERTION_BONUS`] when `lm` is
/// given, else greedy; the built-in boundary model for alignment; everything else at its default.
pub fn recognizer_options(lm: Option<PhoneLm>, phones: &PhoneSet) -> Result<RecognizerOptions> {
    let with_lm = lm.is_some();
    Ok(RecognizerOptions {
        beam: if with_lm { BEAM_WITH_LM } else { 1 },
        lm,
        lm_weight: LM_WEIGHT,
        insertion_bonus: if with_lm { INSERTION_BONUS } else { 0.0 },
        boundaries: boundaries(phones)?,
        ..RecognizerOptions::default()
    })
}

/// The recogniser `phonrec transcribe` and `phonrec align` use when given no options: the built-in
/// model, its LM (loading on another thread while the first audio is read, see
/// [`Recognizer::with_deferred_lm`]) and its boundary model.
pub fn recognizer() -> Result<Recognizer> {
    let early_lm = std::thread::spawn(|| lm(&PhoneSet::timit39()));
    let model = model()?;
    let phones = model.phones().clone();
    // Options as with the LM, the LM itself arriving from the thread.
    let mut options = recognizer_options(None, &phones)?;
    if LM.is_some() {
        options.beam = BEAM_WITH_LM;
        options.insertion_bonus = INSERTION_BONUS;
    }
    let early_lm = (phones == PhoneSet::timit39()).then_some(early_lm);
    Recognizer::with_deferred_lm(model, options, move || match early_lm {
        Some(handle) => handle.join().map_err(|_| Error::InvalidOptions {
            what: "phone LM",
            reason: "loading the built-in LM panicked".into(),
        })?,
        None => lm(&phones),
    })
}
