//! A frame head: which phone (or silence) each network frame lies in, for phone boundaries.
//!
//! A CTC network marks each phone with a spike of a frame or two and says "blank" everywhere else, so
//! its outputs time spikes, not phones (`ctc/boundaries.rs`). Its last BiLSTM layer still knows which
//! phone each frame belongs to: a softmax layer over that layer's outputs, fitted with frame cross-entropy on speech with exact phone timings (the network frozen), labels
//! frames well enough that a boundary can be placed where the frame labels change (measured on the
//! held-out voice: models/README.md, "Alignment").
//!
//! Classes are the model's output columns: class 0 (the CTC blank's column) is silence, class `k` the
//! phone with id `k`. A model phone named like silence ([`PhoneSet::silence`]) is silence too.
//!
//! File format: a `.safetensors` file with `frame_head.weight` `[classes, 2·hidden]` and
//! `frame_head.bias` `[classes]` (f32), and in its metadata `phones` (the model's phone names as a JSON
//! list, blank first) so that a head is never used with another model's phones. Input normalisation is
//! folded into the weights.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::phones::{PhoneId, PhoneSet};

const WEIGHT: &str = "frame_head.weight";
const BIAS: &str = "frame_head.bias";
const KEY_PHONES: &str = "phones";

/// A softmax layer from the network's last hidden layer to frame classes. (The CTC log-posteriors as
/// further inputs were tried: no better, 94.1 against 94.0 % of held-out boundaries within 25 ms.)
#[derive(Clone, Debug, PartialEq)]
pub struct FrameHead {
    /// `[classes, hidden_width]`.
    weight: Array2<f32>,
    /// `[classes]`.
    bias: Array1<f32>,
    /// The model phone that means silence, if any (scored as class 0).
    silence: Option<PhoneId>,
}

/// One utterance's frames for [`FrameHead::fit`].
#[derive(Clone, Debug)]
pub struct FrameExamples {
    /// The last BiLSTM layer's outputs `[frames, hidden width]`.
    pub hidden: Array2<f32>,
    /// The class of each frame (0 = silence).
    pub classes: Vec<u16>,
}

/// How [`FrameHead::fit`] fits: full-batch Adam on frame cross-entropy plus an L2 penalty.
#[derive(Clone, Debug, PartialEq)]
pub struct FitOptions {
    /// Adam steps over all frames.
    pub iterations: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// L2 penalty on the (normalised-input) weights: `weight_decay / 2 · ‖W‖²`. Chosen by leaving one
    /// fitting voice out (0.01 best of 1e-4, 1e-3, 1e-2).
    pub weight_decay: f64,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            iterations: 300,
            learning_rate: 1e-2,
            weight_decay: 1e-2,
            seed: 0,
        }
    }
}

impl FrameHead {
    /// Number of classes (the model's outputs).
    pub fn classes(&self) -> usize {
        self.bias.len()
    }

    /// The class a phone is scored as: its own id, or 0 (silence) for the model's silence phone.
    pub fn class_of(&self, phone: PhoneId) -> usize {
        if Some(phone) == self.silence {
            0
        } else {
            phone.index()
        }
    }

    /// Log-probabilities `[frames, classes]` of each frame's class, from the network's last hidden
    /// layer `[frames, hidden width]`.
    pub fn log_probs(&self, hidden: ArrayView2<f32>) -> Result<Array2<f32>> {
        if hidden.ncols() != self.weight.ncols() {
            return Err(Error::Shape(format!(
                "a frame head for {} hidden outputs got rows of {}",
                self.weight.ncols(),
                hidden.ncols()
            )));
        }
        let mut logits = hidden.dot(&self.weight.t());
        logits += &self.bias;
        for mut row in logits.rows_mut() {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_sum = row.iter().map(|&v| (v - max).exp()).sum::<f32>().ln() + max;
            row -= log_sum;
        }
        Ok(logits)
    }

    /// Fit a head for a model with `phones` on `examples` (frames of utterances with known classes).
    pub fn fit(
        examples: &[FrameExamples],
        phones: &PhoneSet,
        options: &FitOptions,
    ) -> Result<FrameHead> {
        let classes = phones.len();
        let invalid = |reason: String| Error::InvalidOptions {
            what: "frame head fitting",
            reason,
        };
        let first = examples
            .iter()
            .find(|e| !e.classes.is_empty())
            .ok_or_else(|| invalid("no frames to fit on".into()))?;
        let width = first.hidden.ncols();
        let frames: usize = examples.iter().map(|e| e.classes.len()).sum();
        let mut x = Array2::<f32>::zeros((frames, width));
        let mut y = Vec::with_capacity(frames);
        let mut row = 0;
        for example in examples {
            if example.hidden.ncols() != width || example.classes.len() != example.hidden.nrows() {
                return Err(Error::Shape(format!(
                    "{} frame classes for hidden rows {:?} (expected {width} wide)",
                    example.classes.len(),
                    example.hidden.dim()
                )));
            }
            if let Some(&bad) = example.classes.iter().find(|&&c| usize::from(c) >= classes) {
                return Err(Error::InvalidPhoneId {
                    id: bad,
                    num_classes: classes,
                });
            }
            let n = example.classes.len();
            x.slice_mut(ndarray::s![row..row + n, ..])
                .assign(&example.hidden);
            y.extend(example.classes.iter().map(|&c| u32::from(c)));
            row += n;
        }
        // Normalise each input column (Adam on raw units of very different spread converges
        // unevenly); folded into the weights afterwards.
        let mean = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(width));
        let std = x.var_axis(Axis(0), 0.0).mapv(|v| v.sqrt() + 1e-6);
        x -= &mean;
        x /= &std;

        let device = Device::Cpu;
        let x = Tensor::from_vec(x.into_raw_vec_and_offset().0, (frames, width), &device)?;
        let y = Tensor::from_vec(y, frames, &device)?;
        let mut rng = StdRng::seed_from_u64(options.seed);
        // Xavier-normal start (never all-zero), though the problem is convex.
        let scale = (2.0 / (width + classes) as f64).sqrt() as f32;
        let init: Vec<f32> = (0..classes * width)
            .map(|_| rng.sample::<f32, _>(StandardNormal) * scale)
            .collect();
        let w = Var::from_tensor(&Tensor::from_vec(init, (classes, width), &device)?)?;
        let b = Var::from_tensor(&Tensor::zeros(classes, DType::F32, &device)?)?;
        let mut adam = AdamW::new(
            vec![w.clone(), b.clone()],
            ParamsAdamW {
                lr: options.learning_rate,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )?;
        let half_decay = options.weight_decay / 2.0;
        for _ in 0..options.iterations {
            let logits = x
                .matmul(&w.as_tensor().t()?)?
                .broadcast_add(b.as_tensor())?;
            let penalty = ((w.as_tensor().sqr()?.sum_all()? + b.as_tensor().sqr()?.sum_all()?)?
                * half_decay)?;
            let loss = (candle_nn::loss::cross_entropy(&logits, &y)? + penalty)?;
            adam.backward_step(&loss)?;
        }
        let w = Array2::from_shape_vec(
            (classes, width),
            w.as_tensor().flatten_all()?.to_vec1::<f32>()?,
        )
        .map_err(|e| Error::Shape(e.to_string()))?;
        let b = Array1::from(b.as_tensor().to_vec1::<f32>()?);
        // Fold the normalisation in: w·((x − μ)/σ) + b = (w/σ)·x + (b − (w/σ)·μ).
        let weight = &w / &std;
        let bias = &b - &weight.dot(&mean);
        Ok(FrameHead {
            weight,
            bias,
            silence: phones.silence(),
        })
    }

    /// Read a head written by [`to_bytes`](Self::to_bytes) for a model with `phones` and
    /// `hidden_width` hidden outputs; `origin` names it in errors.
    pub fn from_bytes(
        bytes: &[u8],
        origin: &str,
        phones: &PhoneSet,
        hidden_width: usize,
    ) -> Result<FrameHead> {
        let invalid = |reason: String| Error::InvalidModel {
            path: origin.into(),
            reason: format!("not a frame head: {reason}"),
        };
        let (_, metadata) =
            SafeTensors::read_metadata(bytes).map_err(|e| invalid(e.to_string()))?;
        let names: Vec<String> = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(KEY_PHONES))
            .ok_or_else(|| invalid(format!("no `{KEY_PHONES}` in its metadata")))
            .and_then(|json| serde_json::from_str(json).map_err(|e| invalid(e.to_string())))?;
        if names != phones.names() {
            return Err(invalid(format!(
                "fitted for the phones [{}], the model has [{}]",
                names.join(" "),
                phones.names().join(" ")
            )));
        }
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| invalid(e.to_string()))?;
        let classes = phones.len();
        let width = hidden_width;
        // A head of the right kind fitted on another model's hidden layer: say so.
        if let Ok(view) = tensors.tensor(WEIGHT) {
            if let [rows, fitted_width] = view.shape() {
                if *rows == classes && *fitted_width != width {
                    return Err(Error::InvalidModel {
                        path: origin.into(),
                        reason: format!(
                            "a frame head fitted for a model with {fitted_width} hidden values \
                             per frame, and this model has {width}: fit one for it with \
                             `phonrec fit-frame-head --model MODEL`"
                        ),
                    });
                }
            }
        }
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let view = tensors
                .tensor(name)
                .map_err(|_| invalid(format!("no tensor `{name}`")))?;
            if view.dtype() != Dtype::F32 || view.shape() != shape {
                return Err(invalid(format!(
                    "`{name}` is {:?} {:?}, expected F32 {shape:?}",
                    view.dtype(),
                    view.shape()
                )));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(invalid(format!("`{name}` holds non-finite values")));
            }
            Ok(values)
        };
        let weight = Array2::from_shape_vec((classes, width), read(WEIGHT, &[classes, width])?)
            .map_err(|e| Error::Shape(e.to_string()))?;
        let bias = Array1::from(read(BIAS, &[classes])?);
        Ok(FrameHead {
            weight,
            bias,
            silence: phones.silence(),
        })
    }

    /// The head as a `.safetensors` file for a model with `phones`.
    pub fn to_bytes(&self, phones: &PhoneSet) -> Result<Vec<u8>> {
        let encode = |reason: String| Error::Encode {
            what: "frame head",
            reason,
        };
        let as_bytes =
            |values: &[f32]| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
        let weight = as_bytes(self.weight.as_standard_layout().as_slice().unwrap_or(&[]));
        let bias = as_bytes(self.bias.as_slice().unwrap_or(&[]));
        let views = [
            (
                WEIGHT,
                TensorView::new(Dtype::F32, self.weight.shape().to_vec(), &weight)
                    .map_err(|e| encode(e.to_string()))?,
            ),
            (
                BIAS,
                TensorView::new(Dtype::F32, vec![self.bias.len()], &bias)
                    .map_err(|e| encode(e.to_string()))?,
            ),
        ];
        let metadata = HashMap::from([(
            KEY_PHONES.to_string(),
            serde_json::to_string(phones.names()).map_err(|e| encode(e.to_string()))?,
        )]);
        safetensors::serialize(views, Some(metadata)).map_err(|e| encode(e.to_string()))
    }
}

/// The class of each of `frames` network frames from timed phones `(phone, start_s, end_s)`: the phone
/// whose span holds the frame's centre (`centre_s + t · shift_s`), else 0 (silence). The model's
/// silence phone also counts as class 0.
pub fn frame_classes(
    timed: &[(PhoneId, f64, f64)],
    phones: &PhoneSet,
    frames: usize,
    shift_s: f64,
    centre_s: f64,
) -> Vec<u16> {
    let silence = phones.silence();
    let mut classes = vec![0u16; frames];
    for &(phone, start, end) in timed {
        if Some(phone) == silence {
            continue;
        }
        let first = ((start - centre_s) / shift_s).ceil().max(0.0) as usize;
        let mut t = first;
        while t < frames && centre_s + t as f64 * shift_s < end {
            classes[t] = phone.0;
            t += 1;
        }
    }
    classes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_phones() -> PhoneSet {
        PhoneSet::from_phones(["aa", "s", "sil"].map(String::from)).expect("phones")
    }

    /// Frames whose hidden outputs announce their class (one unit per class, plus noise).
    fn examples(rng: &mut StdRng, utterances: usize) -> Vec<FrameExamples> {
        (0..utterances)
            .map(|_| {
                let classes: Vec<u16> = (0..40).map(|t| [0u16, 1, 2][(t / 7) % 3]).collect();
                let hidden = Array2::from_shape_fn((40, 6), |(t, j)| {
                    let signal = if j == usize::from(classes[t]) {
                        2.0
                    } else {
                        0.0
                    };
                    signal + rng.gen_range(-0.5f32..0.5)
                });
                FrameExamples { hidden, classes }
            })
            .collect()
    }

    #[test]
    fn a_fitted_head_labels_separable_frames_and_survives_its_file() -> Result<()> {
        let phones = three_phones();
        let mut rng = StdRng::seed_from_u64(1);
        let train = examples(&mut rng, 20);
        let head = FrameHead::fit(&train, &phones, &FitOptions::default())?;
        let test = examples(&mut rng, 3);
        for example in &test {
            let log_probs = head.log_probs(example.hidden.view())?;
            for (row, &class) in log_probs.rows().into_iter().zip(&example.classes) {
                let best = (0..row.len())
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0);
                assert_eq!(best, usize::from(class));
                let total: f32 = row.iter().map(|v| v.exp()).sum();
                assert!((total - 1.0).abs() < 1e-4, "{total}");
            }
        }
        let bytes = head.to_bytes(&phones)?;
        assert_eq!(FrameHead::from_bytes(&bytes, "head", &phones, 6)?, head);
        // Another model's phones, or another hidden width, are refused.
        let other = PhoneSet::from_phones(["aa", "z", "sil"].map(String::from))?;
        assert!(FrameHead::from_bytes(&bytes, "head", &other, 6).is_err());
        let err = FrameHead::from_bytes(&bytes, "head", &phones, 8)
            .expect_err("another model's width")
            .to_string();
        assert!(
            err.contains("fitted for a model with 6 hidden values"),
            "{err}"
        );
        // The silence phone is scored as silence.
        let sil = phones.id("sil").expect("sil");
        assert_eq!(head.class_of(sil), 0);
        assert_eq!(head.class_of(phones.id("s").expect("s")), 2);
        Ok(())
    }

    #[test]
    fn frames_take_the_class_of_the_phone_under_their_centre() {
        let phones = three_phones();
        let aa = phones.id("aa").expect("aa");
        let s = phones.id("s").expect("s");
        let sil = phones.id("sil").expect("sil");
        // Centres at 0.0175 + 0.02 t: 0.0175, 0.0375, 0.0575, 0.0775, 0.0975, 0.1175.
        let classes = frame_classes(
            &[(aa, 0.03, 0.06), (s, 0.06, 0.1), (sil, 0.1, 0.2)],
            &phones,
            6,
            0.02,
            0.0175,
        );
        assert_eq!(classes, vec![0, aa.0, aa.0, s.0, s.0, 0]);
    }
}
