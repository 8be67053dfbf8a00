//! Model files: one `.safetensors` file holding the network's weights (f32, or f16 to halve the file;
//! always f32 once loaded) and, in its `__metadata__`,
//! everything needed to feed it (DESIGN.md, "Model file").
//!
//! `__metadata__` is a string → string map; phonrec writes one JSON document per key, so that a tool
//! that shows safetensors metadata shows readable parts, and so that the format version can be read and
//! checked before anything whose layout depends on it:
//!
//! | key              | value                                                              |
//! |------------------|--------------------------------------------------------------------|
//! | `format_version` | [`FORMAT_VERSION`] as a decimal number                             |
//! | `features`       | [`FeatureOptions`] as JSON                                         |
//! | `network`        | [`NetworkConfig`] as JSON                                          |
//! | `phones`         | [`PhoneSet`] as a JSON list of names, the blank first              |
//! | `training`       | [`TrainingSummary`] as JSON                                        |
//! | `producer`       | `phonrec <version>` (informative, not read)                        |
//!
//! The tensors and their names are listed in `names.rs` ([`expected_tensors`]).
//!
//! Loading checks all of it (version, JSON, dims that must agree, every tensor's presence, dtype, shape
//! and finiteness, no extra tensors) and reports the first problem as [`Error::InvalidModel`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::config::NetworkConfig;
use super::names::{expected_tensors, TensorRole, TensorSpec};
use super::network::Blstm;
use crate::choice::{Choice, Named};
use crate::error::{Error, Result};
use crate::features::{FeatureExtractor, FeatureOptions, FeaturePipeline};
use crate::phones::PhoneSet;
use crate::util::write_atomically;

/// Version of the model file layout this phonrec writes and reads. Bump it when the meaning of a
/// metadata key or a tensor changes.
pub const FORMAT_VERSION: u32 = 1;

const KEY_FORMAT_VERSION: &str = "format_version";
const KEY_FEATURES: &str = "features";
const KEY_NETWORK: &str = "network";
const KEY_PHONES: &str = "phones";
const KEY_TRAINING: &str = "training";
const KEY_PRODUCER: &str = "producer";

/// How a model file stores its weights. Networks always compute in f32; f16 storage halves the file
/// (a 10-bit mantissa: relative rounding error ≤ 2⁻¹¹ per weight, far below what changes a
/// transcription) so that a larger network fits a size budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightStorage {
    /// 32-bit floats, exactly the trained values (checkpoints, models to train further).
    #[default]
    F32,
    /// IEEE half precision, rounded to nearest; read back as f32.
    F16,
    /// Matrices as 8-bit integers with one f32 scale per row (symmetric, the row's largest magnitude
    /// maps to 127); the first layer's input matrices, which read the features, and the vectors
    /// (biases) as f16; read back as f32. Little over a quarter of f32's size.
    Int8,
}

impl Choice for WeightStorage {
    const CHOICES: &'static [Named<Self>] = &[
        Named {
            value: WeightStorage::F32,
            name: "f32",
            help: "32-bit floats: exact (checkpoints, models to train further)",
        },
        Named {
            value: WeightStorage::F16,
            name: "f16",
            help: "16-bit floats: half the size, for shipping a trained model",
        },
        Named {
            value: WeightStorage::Int8,
            name: "int8",
            help: "8-bit integers with a scale per matrix row (feature matrices, biases f16): about a quarter of f32",
        },
    ];
}

/// How a model came to be; every field optional, informative only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingSummary {
    /// The training data, e.g. `TIMIT train (3696 utterances, SA removed)`.
    pub data: Option<String>,
    /// Epochs completed.
    pub epochs: Option<usize>,
    /// Optimizer updates made.
    pub updates: Option<u64>,
    /// Phone error rate on the dev set, in percent.
    pub dev_per: Option<f64>,
    /// When training finished, ISO 8601 (`2025-01-31` or `2025-01-31T12:00:00Z`).
    pub date: Option<String>,
    /// The model this one was fine-tuned from: [`TrainingSummary::BUILT_IN`] for phonrec's built-in
    /// model (also through a chain of fine-tunes), else that model file's name. Such a model
    /// decodes by default as the built-in model does, with its phone LM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<String>,
}

impl TrainingSummary {
    /// [`init_from`](Self::init_from) of a model fine-tuned from the built-in model.
    pub const BUILT_IN: &'static str = "builtin";

    /// Whether the model descends from the built-in model by fine-tuning.
    pub fn fine_tuned_from_built_in(&self) -> bool {
        self.init_from.as_deref() == Some(Self::BUILT_IN)
    }
}

/// Everything a model file says besides its weights: how to compute its input, the network's shape, what
/// its outputs mean and how it was trained. (The format version is not a field: it describes the file,
/// and is always [`FORMAT_VERSION`] once loaded.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The feature pipeline the network was trained on.
    pub features: FeatureOptions,
    /// The network's shape.
    pub network: NetworkConfig,
    /// The outputs' phones, the CTC blank first.
    pub phones: PhoneSet,
    /// Provenance.
    pub training: TrainingSummary,
}

impl ModelConfig {
    /// Check that the parts fit together: a valid network whose input dim is the feature pipeline's and
    /// whose outputs are the phone set's.
    pub fn validate(&self) -> Result<()> {
        self.problem().map_or(Ok(()), |reason| {
            Err(Error::InvalidOptions {
                what: "model",
                reason,
            })
        })
    }

    fn problem(&self) -> Option<String> {
        if let Err(error) = self.network.validate() {
            return Some(error.to_string());
        }
        let pipeline = match FeaturePipeline::new(self.features.clone()) {
            Ok(pipeline) => pipeline,
            Err(error) => return Some(format!("the feature options are unusable: {error}")),
        };
        if pipeline.dim() != self.network.input_dim {
            return Some(format!(
                "the network reads {}-dim frames but the feature options make {}-dim frames",
                self.network.input_dim,
                pipeline.dim()
            ));
        }
        if self.phones.len() != self.network.num_outputs {
            return Some(format!(
                "the network has {} outputs but the phone set has {} entries (blank included)",
                self.network.num_outputs,
                self.phones.len()
            ));
        }
        None
    }
}

/// A model as stored: its [`ModelConfig`] and its weights (f32, CPU), checked against each other.
#[derive(Clone, Debug)]
pub struct ModelFile {
    config: ModelConfig,
    weights: HashMap<String, Tensor>,
}

impl ModelFile {
    /// Bundle a config with weights named as [`expected_tensors`] lists them. Refuses an inconsistent
    /// config, a missing, extra, non-f32, misshapen or non-finite tensor.
    pub fn new(config: ModelConfig, weights: HashMap<String, Tensor>) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidOptions {
            what: "model",
            reason,
        };
        config.validate()?;
        let specs = expected_tensors(&config.network);
        check_names(&specs, weights.keys().map(String::as_str)).map_err(invalid)?;
        let mut checked = HashMap::with_capacity(weights.len());
        for spec in &specs {
            let tensor = &weights[&spec.name];
            if tensor.dtype() != DType::F32 {
                return Err(invalid(format!(
                    "tensor '{}' is {:?}, a model in memory holds f32 (f16 is only a storage format)",
                    spec.name,
                    tensor.dtype()
                )));
            }
            check_shape(spec, tensor.dims(), &config.network).map_err(invalid)?;
            // A snapshot: later optimizer steps on the source variables must not change this file.
            let tensor = tensor.to_device(&Device::Cpu)?.copy()?.detach();
            let values = tensor.flatten_all()?.to_vec1::<f32>()?;
            check_finite(&spec.name, &values).map_err(invalid)?;
            checked.insert(spec.name.clone(), tensor);
        }
        Ok(ModelFile {
            config,
            weights: checked,
        })
    }

    /// Snapshot a trainer's variables (as made by [`init_weights`](super::init_weights)) into a model.
    pub fn from_var_map(config: ModelConfig, var_map: &VarMap) -> Result<Self> {
        let weights = {
            let vars = var_map.data().lock().map_err(|_| Error::InvalidOptions {
                what: "model",
                reason: "the VarMap's lock is poisoned (a thread panicked while holding it)".into(),
            })?;
            vars.iter()
                .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
                .collect()
        };
        Self::new(config, weights)
    }

    /// Read and check a model file. Errors name the file and what is wrong with it.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Read and check a model held in memory (the compiled-in default model); `name` stands for the path
    /// in error messages.
    pub fn load_from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        Self::from_bytes(bytes, Path::new(name))
    }

    /// Write the model to `path` atomically: to a temporary file in the same directory, synced, then
    /// renamed over `path`, so a crash never leaves a half-written model.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_as(path, WeightStorage::F32)
    }

    /// [`save`](Self::save) with the weights stored as `storage`.
    pub fn save_as(&self, path: &Path, storage: WeightStorage) -> Result<()> {
        let bytes = self.to_bytes_as(storage)?;
        write_atomically(path, &bytes)
    }

    /// The file's bytes, as [`save`](Self::save) writes them.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.to_bytes_as(WeightStorage::F32)
    }

    /// The file's bytes with the weights stored as `storage`.
    pub fn to_bytes_as(&self, storage: WeightStorage) -> Result<Vec<u8>> {
        let to_json = |key: &str, value: std::result::Result<String, serde_json::Error>| {
            value.map_err(|e| Error::InvalidOptions {
                what: "model",
                reason: format!("cannot write the {key} metadata as JSON: {e}"),
            })
        };
        let metadata = HashMap::from([
            (KEY_FORMAT_VERSION.to_string(), FORMAT_VERSION.to_string()),
            (
                KEY_FEATURES.to_string(),
                to_json(KEY_FEATURES, serde_json::to_string(&self.config.features))?,
            ),
            (
                KEY_NETWORK.to_string(),
                to_json(KEY_NETWORK, serde_json::to_string(&self.config.network))?,
            ),
            (
                KEY_PHONES.to_string(),
                to_json(KEY_PHONES, serde_json::to_string(&self.config.phones))?,
            ),
            (
                KEY_TRAINING.to_string(),
                to_json(KEY_TRAINING, serde_json::to_string(&self.config.training))?,
            ),
            (
                KEY_PRODUCER.to_string(),
                format!("phonrec {}", env!("CARGO_PKG_VERSION")),
            ),
        ]);
        let mut encoded: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
        for (name, tensor) in &self.weights {
            let values = tensor.flatten_all()?.to_vec1::<f32>()?;
            let shape = tensor.dims().to_vec();
            let f16_bytes = |values: &[f32]| -> Result<Vec<u8>> {
                if let Some(v) = values.iter().find(|v| v.abs() > f32::from(half::f16::MAX)) {
                    return Err(Error::InvalidOptions {
                        what: "model",
                        reason: format!(
                            "tensor '{name}' holds {v}, beyond the f16 range; store it as f32"
                        ),
                    });
                }
                Ok(values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect())
            };
            match storage {
                WeightStorage::F32 => {
                    let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                    encoded.insert(name.clone(), (Dtype::F32, shape, bytes));
                }
                WeightStorage::F16 => {
                    encoded.insert(name.clone(), (Dtype::F16, shape, f16_bytes(&values)?));
                }
                WeightStorage::Int8 if shape.len() == 2 && !reads_features(name) => {
                    let (quantised, scales) = quantise_rows(&values, shape[1]);
                    let bytes = quantised.iter().map(|&q| q as u8).collect();
                    let scale_bytes = scales.iter().flat_map(|v| v.to_le_bytes()).collect();
                    encoded.insert(scale_name(name), (Dtype::F32, vec![shape[0]], scale_bytes));
                    encoded.insert(name.clone(), (Dtype::I8, shape, bytes));
                }
                WeightStorage::Int8 => {
                    encoded.insert(name.clone(), (Dtype::F16, shape, f16_bytes(&values)?));
                }
            }
        }
        let views = encoded
            .iter()
            .map(|(name, (dtype, shape, bytes))| {
                TensorView::new(*dtype, shape.clone(), bytes).map(|view| (name.as_str(), view))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Encode {
                what: "a model tensor",
                reason: e.to_string(),
            })?;
        let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Encode {
            what: "the model file",
            reason: e.to_string(),
        })?;
        canonical_header(bytes)
    }

    /// The element-wise mean of several models' weights (checkpoint averaging, as Kaldi's
    /// `nnet3-average` and ESPnet's `average_checkpoints` do): models from the end of one training run
    /// can average to a model that decodes better than any one of them. All must have the same
    /// features, network shape and phones; the result keeps the last model's training summary.
    pub fn average(models: &[ModelFile]) -> Result<ModelFile> {
        let invalid = |reason: String| Error::InvalidOptions {
            what: "model averaging",
            reason,
        };
        let Some(last) = models.last() else {
            return Err(invalid("no models to average".into()));
        };
        // Dropout is a training setting, not part of the shape.
        let shape = |network: &NetworkConfig| NetworkConfig {
            dropout: 0.0,
            ..network.clone()
        };
        for (index, model) in models.iter().enumerate() {
            let (a, b) = (&model.config, &last.config);
            let differs = if a.features != b.features {
                Some("feature options")
            } else if shape(&a.network) != shape(&b.network) {
                Some("network shape")
            } else if a.phones != b.phones {
                Some("phone set")
            } else {
                None
            };
            if let Some(what) = differs {
                return Err(invalid(format!(
                    "model {} has other {what} than model {}; only models of one architecture \
                     (e.g. epochs of one training run) can be averaged",
                    index + 1,
                    models.len()
                )));
            }
        }
        let scale = 1.0 / models.len() as f64;
        let mut weights = HashMap::with_capacity(last.weights.len());
        for name in last.weights.keys() {
            let mut sum = models[0].weights[name].clone();
            for model in &models[1..] {
                sum = (sum + &model.weights[name])?;
            }
            weights.insert(name.clone(), sum.affine(scale, 0.0)?);
        }
        ModelFile::new(last.config.clone(), weights)
    }

    /// The metadata.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Replace the training summary (the only part that can change without the weights).
    pub fn set_training_summary(&mut self, training: TrainingSummary) {
        self.config.training = training;
    }

    /// The weights by name (f32, CPU, no gradient tracking).
    pub fn weights(&self) -> &HashMap<String, Tensor> {
        &self.weights
    }

    /// A `VarBuilder` over the weights, for [`Blstm::new`].
    pub fn var_builder(&self) -> VarBuilder<'static> {
        VarBuilder::from_tensors(self.weights.clone(), DType::F32, &Device::Cpu)
    }

    /// The network, ready for inference.
    pub fn network(&self) -> Result<Blstm> {
        Ok(Blstm::new(&self.config.network, self.var_builder())?)
    }

    /// The weights as fresh trainable variables (copies), to fine-tune or resume from this model.
    pub fn to_var_map(&self) -> Result<VarMap> {
        let var_map = VarMap::new();
        {
            let mut vars = var_map
                .data()
                .lock()
                .expect("a VarMap created here has no other user that could have panicked");
            for (name, tensor) in &self.weights {
                vars.insert(name.clone(), Var::from_tensor(&tensor.copy()?)?);
            }
        }
        Ok(var_map)
    }

    fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidModel {
            path: path.to_path_buf(),
            reason,
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
            // Say what the file is when it is something else a user has at hand.
            let text = bytes.get(..4096).unwrap_or(bytes);
            let text = String::from_utf8_lossy(text);
            if crate::audio::looks_like_audio(bytes) {
                invalid(
                    "an audio file, not a model (a safetensors file from `phonrec train`): give \
                     the audio itself without a flag"
                        .into(),
                )
            } else if text.contains("\\data\\") || bytes.starts_with(b"PHONRLM") {
                invalid("a phone LM, not a model (give it with --lm)".into())
            } else {
                invalid(format!(
                    "not a readable safetensors file ({e}); is it truncated or damaged?"
                ))
            }
        })?;
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| invalid(format!("damaged safetensors data ({e})")))?;
        let metadata = header.metadata().as_ref().ok_or_else(|| {
            invalid("no __metadata__: a safetensors file, but not a phonrec model".into())
        })?;
        if metadata.contains_key(crate::train::checkpoint::CHECKPOINT_STATE_KEY) {
            return Err(invalid(format!(
                "a training checkpoint (weights with optimizer state, for `phonrec train --resume`), \
                 not a model: use {} from the same run folder",
                crate::train::BEST_MODEL_FILE
            )));
        }
        let entry = |key: &str| {
            metadata.get(key).ok_or_else(|| {
                invalid(format!(
                    "the metadata has no '{key}' entry; is this a phonrec model file?"
                ))
            })
        };
        let version = entry(KEY_FORMAT_VERSION)?;
        let version: u32 = version.trim().parse().map_err(|_| {
            invalid(format!(
                "format_version '{version}' is not a version number"
            ))
        })?;
        if version != FORMAT_VERSION {
            return Err(invalid(format!(
                "model format version {version}, but this phonrec reads version {FORMAT_VERSION}; \
                 use the phonrec release that wrote it, or retrain"
            )));
        }
        fn parse<T: for<'de> Deserialize<'de>>(
            text: &str,
            key: &str,
        ) -> std::result::Result<T, String> {
            serde_json::from_str(text).map_err(|e| format!("the '{key}' metadata is invalid: {e}"))
        }
        let config = ModelConfig {
            features: parse(entry(KEY_FEATURES)?, KEY_FEATURES).map_err(invalid)?,
            network: parse(entry(KEY_NETWORK)?, KEY_NETWORK).map_err(invalid)?,
            phones: parse(entry(KEY_PHONES)?, KEY_PHONES).map_err(invalid)?,
            training: parse(entry(KEY_TRAINING)?, KEY_TRAINING).map_err(invalid)?,
        };
        if let Some(reason) = config.problem() {
            return Err(invalid(reason));
        }
        let specs = expected_tensors(&config.network);
        check_names(
            &specs,
            tensors
                .names()
                .into_iter()
                .filter(|name| !name.ends_with(SCALE_SUFFIX)),
        )
        .map_err(invalid)?;
        let mut weights = HashMap::with_capacity(specs.len());
        for spec in &specs {
            let view = tensors
                .tensor(&spec.name)
                .map_err(|e| invalid(format!("tensor '{}': {e}", spec.name)))?;
            check_shape(spec, view.shape(), &config.network).map_err(invalid)?;
            // Decoded byte by byte: the data of a tensor inside the file need not be aligned.
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => f32_values(view.data()),
                Dtype::F16 => f16_values(view.data()),
                Dtype::BF16 => view
                    .data()
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                Dtype::I8 => {
                    let scales = row_scales(&tensors, &spec.name, view.shape()).map_err(invalid)?;
                    let columns = view.shape().get(1).copied().unwrap_or(1).max(1);
                    view.data()
                        .iter()
                        .enumerate()
                        .map(|(i, &b)| f32::from(b as i8) * scales[i / columns])
                        .collect()
                }
                other => {
                    return Err(invalid(format!(
                    "tensor '{}' is {other}, model files hold F32, F16, BF16 or I8 (with scales)",
                    spec.name
                )))
                }
            };
            check_finite(&spec.name, &values).map_err(invalid)?;
            let tensor = Tensor::from_vec(values, spec.shape.as_slice(), &Device::Cpu)?;
            weights.insert(spec.name.clone(), tensor);
        }
        Ok(ModelFile { config, weights })
    }
}

/// Little-endian f32s, decoded byte by byte: the data of a tensor inside the file need not be aligned.
fn f32_values(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Little-endian f16s as f32s: the bits gathered into an aligned buffer first, then converted eight at
/// a time (F16C where the CPU has it). Converted one by one, the built-in model's 6 M weights took
/// 15 ms, an eighth of recognising a 1 s file.
fn f16_values(data: &[u8]) -> Vec<f32> {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    // A loop over a sized buffer (not a `collect`) compiles to vector loads.
    let mut bits = vec![0u16; data.len() / 2];
    for (bits, bytes) in bits.iter_mut().zip(data.chunks_exact(2)) {
        *bits = u16::from_le_bytes([bytes[0], bytes[1]]);
    }
    let mut values = vec![0f32; bits.len()];
    bits.reinterpret_cast::<half::f16>()
        .convert_to_f32_slice(&mut values);
    values
}

/// Name suffix of the per-row scales of an int8-stored matrix (`<matrix>.scale`).
const SCALE_SUFFIX: &str = ".scale";

fn scale_name(matrix: &str) -> String {
    format!("{matrix}{SCALE_SUFFIX}")
}

/// Whether tensor `name` is a first-layer input matrix: it multiplies the features, log-energies
/// with no fixed range, where int8 rounding moved PER on real speech by 1–2 points (the layers above
/// read LSTM outputs in (−1, 1) and lose nothing measurable; `models/README.md`).
fn reads_features(name: &str) -> bool {
    let first_layer = super::names::lstm_layer_prefix(0);
    name.strip_prefix(first_layer.as_str())
        .is_some_and(|rest| rest.starts_with('.') && rest.ends_with(super::names::WEIGHT_IH))
}

/// Symmetric per-row int8 quantisation of a row-major matrix with `columns` columns: each row's
/// largest magnitude maps to ±127 (an all-zero row gets scale 0). Returns the integers and the
/// scales (value ≈ integer × scale).
fn quantise_rows(values: &[f32], columns: usize) -> (Vec<i8>, Vec<f32>) {
    let columns = columns.max(1);
    let mut quantised = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(values.len() / columns);
    for row in values.chunks(columns) {
        let peak = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = peak / 127.0;
        scales.push(scale);
        quantised.extend(row.iter().map(|&v| {
            if scale > 0.0 {
                (v / scale).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            }
        }));
    }
    (quantised, scales)
}

/// The per-row scales stored beside the int8 matrix `name` of `shape`.
fn row_scales(
    tensors: &SafeTensors,
    name: &str,
    shape: &[usize],
) -> std::result::Result<Vec<f32>, String> {
    if shape.len() != 2 {
        return Err(format!(
            "tensor '{name}' is I8 but not a matrix (shape {shape:?}); only matrices are stored as int8"
        ));
    }
    let scales = tensors.tensor(&scale_name(name)).map_err(|_| {
        format!("tensor '{name}' is I8 but its row scales '{name}{SCALE_SUFFIX}' are missing")
    })?;
    if scales.dtype() != Dtype::F32 || scales.shape() != [shape[0]] {
        return Err(format!(
            "the scales of '{name}' must be F32 of shape [{}], not {} {:?}",
            shape[0],
            scales.dtype(),
            scales.shape()
        ));
    }
    let values = f32_values(scales.data());
    check_finite(&scale_name(name), &values)?;
    Ok(values)
}

/// The same file with its JSON header's keys sorted. `safetensors::serialize` takes the metadata as a
/// `HashMap` and writes it in iteration order, which changes from run to run; sorted, equal models give
/// equal bytes (a stable checksum and a clean diff for the compiled-in default model). Tensor offsets
/// do not depend on the header, so the data is kept as it is.
fn canonical_header(bytes: Vec<u8>) -> Result<Vec<u8>> {
    const LENGTH_BYTES: usize = 8;
    let broken = |reason: String| Error::Encode {
        what: "the model header",
        reason,
    };
    let header_length = bytes
        .get(..LENGTH_BYTES)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| broken("no header length".into()))?;
    let data_start = LENGTH_BYTES + header_length;
    let header_bytes = bytes
        .get(LENGTH_BYTES..data_start)
        .ok_or_else(|| broken("header past the end".into()))?;
    let mut header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(header_bytes).map_err(|e| broken(e.to_string()))?;
    if let Some(metadata) = header.get_mut("__metadata__") {
        let sorted: BTreeMap<String, String> =
            serde_json::from_value(metadata.take()).map_err(|e| broken(e.to_string()))?;
        *metadata = serde_json::to_value(sorted).map_err(|e| broken(e.to_string()))?;
    }
    let mut json = serde_json::to_vec(&header).map_err(|e| broken(e.to_string()))?;
    // As safetensors does: pad the header with spaces so that the data starts 8-byte aligned.
    while json.len() % LENGTH_BYTES != 0 {
        json.push(b' ');
    }
    let mut canonical = Vec::with_capacity(LENGTH_BYTES + json.len() + bytes.len() - data_start);
    canonical.extend_from_slice(&(json.len() as u64).to_le_bytes());
    canonical.extend_from_slice(&json);
    canonical.extend_from_slice(&bytes[data_start..]);
    Ok(canonical)
}

/// Every expected name present, nothing else.
fn check_names<'a>(
    specs: &[TensorSpec],
    names: impl Iterator<Item = &'a str>,
) -> std::result::Result<(), String> {
    let mut unexpected: Vec<&str> = Vec::new();
    let mut present = std::collections::HashSet::new();
    for name in names {
        if specs.iter().any(|spec| spec.name == name) {
            present.insert(name);
        } else {
            unexpected.push(name);
        }
    }
    if let Some(missing) = specs
        .iter()
        .find(|spec| !present.contains(spec.name.as_str()))
    {
        return Err(format!(
            "tensor '{}' is missing (a network of this config has {} tensors, {} present)",
            missing.name,
            specs.len(),
            present.len()
        ));
    }
    if !unexpected.is_empty() {
        unexpected.sort_unstable();
        return Err(format!(
            "unexpected tensor(s) {} for a network with {} layers; were weights and metadata \
             written by different tools?",
            unexpected.join(", "),
            specs
                .iter()
                .filter(|s| s.role == TensorRole::LstmBias)
                .count()
                / 2
        ));
    }
    Ok(())
}

fn check_shape(
    spec: &TensorSpec,
    shape: &[usize],
    network: &NetworkConfig,
) -> std::result::Result<(), String> {
    if shape == spec.shape.as_slice() {
        return Ok(());
    }
    Err(format!(
        "tensor '{}' has shape {shape:?}, but the network config (input_dim {}, stack_frames {}, \
         hidden_size {}, num_outputs {}) needs {:?}; the metadata and the weights disagree",
        spec.name,
        network.input_dim,
        network.stack_frames,
        network.hidden_size,
        network.num_outputs,
        spec.shape
    ))
}

/// Largest weight magnitude accepted. Trained weights stay within tens; at 1e30 every product in the
/// network overflows `f32` and the posteriors become NaN.
pub const MAX_WEIGHT_MAGNITUDE: f32 = 1e5;

fn check_finite(name: &str, values: &[f32]) -> std::result::Result<(), String> {
    // NaN, ±∞ and values beyond the bound alike fail `|v| <= MAX`. Blocks are checked with a
    // branch-free fold, which the compiler vectorises (a `position` over every value stays scalar:
    // 7 ms of a 1 s file's recognition); only a bad block is searched for its first bad value.
    let beyond = |v: &f32| !v.abs().le(&MAX_WEIGHT_MAGNITUDE);
    const BLOCK: usize = 1024;
    let Some(index) = values
        .chunks(BLOCK)
        .position(|block| block.iter().fold(false, |bad, v| bad | beyond(v)))
        .and_then(|b| {
            let block = &values[b * BLOCK..];
            block.iter().position(beyond).map(|i| b * BLOCK + i)
        })
    else {
        return Ok(());
    };
    let value = values[index];
    let what = if value.is_finite() {
        format!("{value:e}, beyond the ±{MAX_WEIGHT_MAGNITUDE:e} that trained weights stay within,")
    } else {
        format!("a non-finite value ({value})")
    };
    Err(format!(
        "tensor '{name}' holds {what} at flat index {index}; did training diverge, or is the file \
         damaged?"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{init_weights, InitOptions};

    #[test]
    fn f16_values_are_decoded_as_one_by_one() {
        // Every f16 bit pattern, at an odd offset (a tensor inside a file need not be aligned).
        let mut bytes = vec![0u8];
        bytes.extend((0..=u16::MAX).flat_map(u16::to_le_bytes));
        let decoded = f16_values(&bytes[1..]);
        assert_eq!(decoded.len(), 65_536);
        for (bits, value) in (0..=u16::MAX).zip(&decoded) {
            let expected = half::f16::from_bits(bits).to_f32();
            assert!(
                value.to_bits() == expected.to_bits() || (value.is_nan() && expected.is_nan()),
                "{bits:#06x}: {value} vs {expected}"
            );
        }
    }

    #[test]
    fn check_finite_names_the_first_bad_value() {
        let mut values = vec![0.5f32; 5000];
        assert!(check_finite("w", &values).is_ok());
        values[3000] = MAX_WEIGHT_MAGNITUDE; // the bound itself is accepted
        assert!(check_finite("w", &values).is_ok());
        for (at, bad) in [(4999, f32::NAN), (1024, f32::INFINITY), (7, -2e5)] {
            values[at] = bad;
            let error = check_finite("w", &values).expect_err("a bad value");
            assert!(error.contains(&format!("flat index {at};")), "{error}");
        }
    }

    fn small_config() -> ModelConfig {
        let features = FeatureOptions::default();
        let input_dim = FeaturePipeline::new(features.clone())
            .expect("default options are valid")
            .dim();
        let phones = PhoneSet::timit39();
        ModelConfig {
            features,
            network: NetworkConfig {
                input_dim,
                num_layers: 2,
                hidden_size: 8,
                dropout: 0.1,
                num_outputs: phones.len(),
                stack_frames: 2,
            },
            phones,
            training: TrainingSummary::default(),
        }
    }

    #[test]
    fn network_uses_exactly_the_listed_names() -> Result<()> {
        let config = small_config();
        let var_map = init_weights(&config.network, &InitOptions::default())?;
        let _network = Blstm::new(
            &config.network,
            VarBuilder::from_varmap(&var_map, DType::F32, &Device::Cpu),
        )?;
        let mut made: Vec<(String, Vec<usize>)> = var_map
            .data()
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(name, var)| (name.clone(), var.dims().to_vec()))
            .collect();
        made.sort();
        let mut listed: Vec<(String, Vec<usize>)> = expected_tensors(&config.network)
            .into_iter()
            .map(|spec| (spec.name, spec.shape))
            .collect();
        listed.sort();
        assert_eq!(made, listed);
        Ok(())
    }

    #[test]
    fn from_var_map_snapshots_the_values() -> Result<()> {
        let config = small_config();
        let var_map = init_weights(&config.network, &InitOptions::default())?;
        let file = ModelFile::from_var_map(config, &var_map)?;
        let before = file.weights()["out.bias"].to_vec1::<f32>()?;
        let var = var_map.data().lock().expect("not poisoned")["out.bias"].clone();
        var.set(&var.ones_like()?)?;
        assert_eq!(file.weights()["out.bias"].to_vec1::<f32>()?, before);
        Ok(())
    }

    #[test]
    fn inconsistent_configs_are_refused() {
        let mut config = small_config();
        config.network.num_outputs += 1;
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("phone set"), "{error}");
        let mut config = small_config();
        config.network.input_dim = 13;
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("13-dim"), "{error}");
    }

    #[test]
    fn f16_storage_halves_the_file_and_rounds_to_nearest() -> Result<()> {
        let config = small_config();
        let var_map = init_weights(&config.network, &InitOptions::default())?;
        let file = ModelFile::from_var_map(config, &var_map)?;
        let full = file.to_bytes()?;
        let half_bytes = file.to_bytes_as(WeightStorage::F16)?;
        let weights: usize = file.weights().values().map(|t| t.elem_count()).sum();
        // Two bytes less per weight; the JSON header (offsets, padding) may differ by a few bytes.
        let saved = full.len() - half_bytes.len();
        assert!(
            saved.abs_diff(2 * weights) <= 16,
            "{saved} vs {}",
            2 * weights
        );
        let read = ModelFile::load_from_bytes(&half_bytes, "half.safetensors")?;
        assert_eq!(read.config(), file.config());
        for (name, tensor) in file.weights() {
            let exact = tensor.flatten_all()?.to_vec1::<f32>()?;
            let rounded = read.weights()[name].flatten_all()?.to_vec1::<f32>()?;
            for (a, b) in exact.iter().zip(&rounded) {
                // Half an f16 ulp: 2^-11 relative for normal numbers, 2^-25 absolute below them.
                let bound = (a.abs() * 2f32.powi(-11)).max(2f32.powi(-25));
                assert!((a - b).abs() <= bound, "{name}: {a} stored as {b}");
            }
            assert_eq!(read.weights()[name].dtype(), DType::F32);
        }
        Ok(())
    }

    #[test]
    fn f16_storage_refuses_values_out_of_range() -> Result<()> {
        let config = small_config();
        let var_map = init_weights(&config.network, &InitOptions::default())?;
        let mut weights: HashMap<String, Tensor> =
            ModelFile::from_var_map(config.clone(), &var_map)?
                .weights()
                .clone();
        let big = Tensor::full(7e4f32, weights["out.bias"].dims(), &Device::Cpu)?;
        weights.insert("out.bias".into(), big);
        let file = ModelFile::new(config, weights)?;
        let error = file
            .to_bytes_as(WeightStorage::F16)
            .unwrap_err()
            .to_string();
        assert!(error.contains("f16 range"), "{error}");
        Ok(())
    }

    /// A small model and its bytes stored as int8.
    fn int8_model() -> Result<(ModelFile, Vec<u8>)> {
        let config = small_config();
        let var_map = init_weights(&config.network, &InitOptions::default())?;
        let file = ModelFile::from_var_map(config, &var_map)?;
        let bytes = file.to_bytes_as(WeightStorage::Int8)?;
        Ok((file, bytes))
    }

    fn test_error(e: safetensors::SafeTensorError) -> Error {
        Error::Encode {
            what: "test",
            reason: e.to_string(),
        }
    }

    #[test]
    fn int8_storage_quantises_rows_and_keeps_the_feature_matrices_f16() -> Result<()> {
        let (file, bytes) = int8_model()?;
        let stored = SafeTensors::deserialize(&bytes).map_err(test_error)?;
        let read = ModelFile::load_from_bytes(&bytes, "int8.safetensors")?;
        assert_eq!(read.config(), file.config());
        let mut quantised = 0;
        for (name, tensor) in file.weights() {
            let view = stored.tensor(name).map_err(test_error)?;
            let exact = tensor.flatten_all()?.to_vec1::<f32>()?;
            let back = read.weights()[name].flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(read.weights()[name].dtype(), DType::F32);
            if view.dtype() == Dtype::I8 {
                quantised += 1;
                assert!(!reads_features(name), "{name}");
                // Within half a step of the row's scale (its largest magnitude / 127).
                let columns = tensor.dims()[1];
                for (row, (a, b)) in exact.chunks(columns).zip(back.chunks(columns)).enumerate() {
                    let peak = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    for (x, y) in a.iter().zip(b) {
                        assert!(
                            (x - y).abs() <= 0.5 * peak / 127.0 * 1.0001,
                            "{name} row {row}: {x} read as {y}"
                        );
                    }
                }
            } else {
                assert_eq!(view.dtype(), Dtype::F16, "{name}");
                assert!(
                    tensor.dims().len() == 1 || reads_features(name),
                    "{name} should be int8"
                );
                for (a, b) in exact.iter().zip(&back) {
                    assert!((a - b).abs() <= (a.abs() * 2f32.powi(-11)).max(2f32.powi(-25)));
                }
            }
        }
        // Every matrix but the two directions' feature matrices of layer 0.
        let matrices = file
            .weights()
            .values()
            .filter(|t| t.dims().len() == 2)
            .count();
        assert_eq!(quantised, matrices - 2);
        assert!(bytes.len() < file.to_bytes_as(WeightStorage::F16)?.len());
        Ok(())
    }

    #[test]
    fn int8_matrices_without_their_scales_are_refused() -> Result<()> {
        let (_, bytes) = int8_model()?;
        let stored = SafeTensors::deserialize(&bytes).map_err(test_error)?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(test_error)?;
        let views: Vec<(String, TensorView)> = stored
            .tensors()
            .into_iter()
            .filter(|(name, _)| name != "out.weight.scale")
            .collect();
        let without =
            safetensors::serialize(views, header.metadata().clone()).map_err(test_error)?;
        let error = ModelFile::load_from_bytes(&without, "broken.safetensors")
            .unwrap_err()
            .to_string();
        assert!(error.contains("out.weight.scale"), "{error}");
        Ok(())
    }

    #[test]
    fn per_row_quantisation_maps_each_rows_peak_to_127() {
        let (q, scales) = quantise_rows(&[0.5, -1.0, 0.25, 0.0, 0.0, 0.0, 2.0, 1.0, -0.01], 3);
        assert_eq!(q, vec![64, -127, 32, 0, 0, 0, 127, 64, -1]);
        assert_eq!(scales, vec![1.0 / 127.0, 0.0, 2.0 / 127.0]);
    }

    #[test]
    fn atomic_save_leaves_no_temporary() -> Result<()> {
        let directory = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = directory.path().join("model.safetensors");
        let config = small_config();
        let var_map = init_weights(&config.network, &InitOptions::default())?;
        let file = ModelFile::from_var_map(config, &var_map)?;
        file.save(&path)?;
        file.save(&path)?; // overwriting works too
        let entries: Vec<_> = std::fs::read_dir(directory.path())
            .map_err(|e| Error::io(directory.path(), e))?
            .collect();
        assert_eq!(entries.len(), 1);
        let error = file
            .save(&directory.path().join("no-such-dir/model.safetensors"))
            .unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{error}");
        Ok(())
    }
}
