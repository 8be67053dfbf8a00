//! Feature options: plain data with Kaldi's defaults, documented where defined.
//! Field names follow Kaldi's `compute-fbank-feats` / `compute-mfcc-feats` options.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Taper applied to each frame before the FFT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WindowType {
    /// Kaldi's default: a Hann window raised to the power 0.85, "similar to Hamming but goes to zero at
    /// the edges".
    #[default]
    Povey,
    /// 0.54 − 0.46 cos(2πn/(N−1)).
    Hamming,
    /// 0.5 − 0.5 cos(2πn/(N−1)) (Kaldi calls it "hanning").
    Hanning,
    /// All ones.
    Rectangular,
    /// 0.42 − 0.5 cos(2πn/(N−1)) + 0.08 cos(4πn/(N−1)) (Kaldi's `blackman_coeff` 0.42).
    Blackman,
}

impl std::str::FromStr for WindowType {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "povey" => Ok(WindowType::Povey),
            "hamming" => Ok(WindowType::Hamming),
            "hanning" | "hann" => Ok(WindowType::Hanning),
            "rectangular" => Ok(WindowType::Rectangular),
            "blackman" => Ok(WindowType::Blackman),
            other => Err(format!(
                "unknown window type '{other}' (expected povey, hamming, hanning, rectangular or blackman)"
            )),
        }
    }
}

/// How audio is cut into frames and conditioned. Defaults match Kaldi's `FrameExtractionOptions`,
/// except `dither` (see there).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrameOptions {
    /// Sample rate the features are computed at, in Hz. Default 16000.
    pub sample_rate_hz: u32,
    /// Window length in ms. Default 25.
    pub frame_length_ms: f32,
    /// Hop between frames in ms. Default 10.
    pub frame_shift_ms: f32,
    /// Gaussian dither standard deviation, in int16 units. Default 0.0 so output is reproducible
    /// (Kaldi's default is 1.0); with 0.0, log of an all-zero frame hits the floor `f32::EPSILON`.
    pub dither: f32,
    /// Pre-emphasis coefficient: `x[i] -= coeff · x[i−1]`. Default 0.97.
    pub preemphasis_coefficient: f32,
    /// Subtract each frame's mean before pre-emphasis. Default true.
    pub remove_dc_offset: bool,
    /// Taper applied to each frame. Default `Povey`.
    pub window_type: WindowType,
    /// Zero-pad each frame to the next power of two before the FFT. Default true.
    pub round_to_power_of_two: bool,
    /// true: only frames that fit entirely in the signal (`1 + (N − len) / shift` frames);
    /// false: `round(N / shift)` frames centred on multiples of the shift, the signal reflected at its
    /// ends. Default true.
    pub snip_edges: bool,
    /// Seed of the dither noise (only used when `dither > 0`). Default 0.
    pub dither_seed: u64,
}

impl Default for FrameOptions {
    fn default() -> Self {
        FrameOptions {
            sample_rate_hz: 16_000,
            frame_length_ms: 25.0,
            frame_shift_ms: 10.0,
            dither: 0.0,
            preemphasis_coefficient: 0.97,
            remove_dc_offset: true,
            window_type: WindowType::Povey,
            round_to_power_of_two: true,
            snip_edges: true,
            dither_seed: 0,
        }
    }
}

impl FrameOptions {
    /// Window length in samples (Kaldi's `WindowSize()`).
    pub fn window_size(&self) -> usize {
        (self.sample_rate_hz as f64 * 0.001 * self.frame_length_ms as f64) as usize
    }

    /// Frame hop in samples (Kaldi's `WindowShift()`).
    pub fn window_shift(&self) -> usize {
        (self.sample_rate_hz as f64 * 0.001 * self.frame_shift_ms as f64) as usize
    }

    /// FFT length: the window size, rounded up to a power of two if asked (Kaldi's `PaddedWindowSize()`).
    pub fn padded_window_size(&self) -> usize {
        let size = self.window_size();
        if self.round_to_power_of_two {
            size.next_power_of_two()
        } else {
            size
        }
    }

    /// Frame shift in seconds.
    pub fn frame_shift_s(&self) -> f64 {
        self.window_shift() as f64 / self.sample_rate_hz as f64
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidOptions {
                what: "frame",
                reason,
            })
        };
        if self.sample_rate_hz == 0 || self.sample_rate_hz > MAX_FEATURE_RATE_HZ {
            return bad(format!(
                "sample rate must be in 1..={MAX_FEATURE_RATE_HZ} Hz, got {}",
                self.sample_rate_hz
            ));
        }
        // Written so that NaN fails too.
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if !positive(self.frame_length_ms) || !positive(self.frame_shift_ms) {
            return bad(format!(
                "frame length ({} ms) and shift ({} ms) must be positive",
                self.frame_length_ms, self.frame_shift_ms
            ));
        }
        if self.frame_length_ms > MAX_FRAME_MS || self.frame_shift_ms > MAX_FRAME_MS {
            return bad(format!(
                "frame length ({} ms) and shift ({} ms) must be at most {MAX_FRAME_MS} ms",
                self.frame_length_ms, self.frame_shift_ms
            ));
        }
        if self.window_size() < 2 || self.window_shift() < 1 {
            return bad(format!(
                "a {} ms frame at {} Hz holds fewer than 2 samples",
                self.frame_length_ms, self.sample_rate_hz
            ));
        }
        if !(0.0..=1.0).contains(&self.preemphasis_coefficient) {
            return bad(format!(
                "pre-emphasis coefficient {} is outside [0, 1]",
                self.preemphasis_coefficient
            ));
        }
        if !(self.dither.is_finite() && (0.0..=MAX_DITHER).contains(&self.dither)) {
            return bad(format!(
                "dither {} must be in 0..={MAX_DITHER} (int16 units)",
                self.dither
            ));
        }
        Ok(())
    }
}

/// Highest sample rate features are computed at.
pub const MAX_FEATURE_RATE_HZ: u32 = 192_000;
/// Longest frame length or shift, ms (speech frames are 10–50 ms).
pub const MAX_FRAME_MS: f32 = 1000.0;
/// Largest dither, int16 units (Kaldi's default is 1).
pub const MAX_DITHER: f32 = 1000.0;
/// Most mel bins.
pub const MAX_MEL_BINS: usize = 1024;
/// Highest delta order (Kaldi uses 2).
pub const MAX_DELTA_ORDER: usize = 4;
/// Widest delta regression half-window, frames (Kaldi uses 2).
pub const MAX_DELTA_WINDOW: usize = 50;
/// Largest energy floor (absolute energy of an int16-scale frame is below 1e14).
pub const MAX_ENERGY_FLOOR: f32 = 1e15;
/// Largest cepstral lifter coefficient (Kaldi uses 22).
pub const MAX_CEPSTRAL_LIFTER: f32 = 1000.0;

/// The mel filterbank. Defaults match Kaldi's `MelBanksOptions` (80 bins is Kaldi's fbank recipe value;
/// its built-in default is 23).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MelOptions {
    /// Number of triangular mel bins. Default 80.
    pub num_bins: usize,
    /// Low edge of the lowest bin, in Hz. Default 20.
    pub low_freq_hz: f32,
    /// High edge of the highest bin. Default: Nyquist (`BelowLimit(0)`). Stored as Kaldi's
    /// `--high-freq` number (≤ 0: an offset from Nyquist), so model files read as before.
    #[serde(rename = "high_freq_hz", with = "kaldi_high_freq")]
    pub high_freq: FrequencyEdge,
    /// Vocal-tract-length warp factor (Kaldi's `--vtln-warp`): the filter edges move by Kaldi's
    /// piecewise-linear warp of the frequency axis. 1 = no warping (the default). Used by training's
    /// vocal-tract-length perturbation.
    pub vtln_warp: f32,
    /// Lower inflection point of the VTLN warp, in Hz. Default 100.
    pub vtln_low_hz: f32,
    /// Upper inflection point of the VTLN warp. Default 500 Hz below the high edge. Stored as
    /// Kaldi's `--vtln-high` number (< 0: an offset from the high edge).
    #[serde(rename = "vtln_high_hz", with = "kaldi_vtln_high")]
    pub vtln_high: FrequencyEdge,
}

/// A frequency given as Kaldi's options give it: absolutely, or as an offset below a limit (Kaldi
/// writes the second as a negative or zero number).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FrequencyEdge {
    /// This frequency, in Hz.
    Hz(f32),
    /// This many Hz below the limit: Nyquist for the filterbank's high edge, the high edge for the
    /// VTLN warp's upper inflection point. `BelowLimit(0.0)` is the limit itself.
    BelowLimit(f32),
}

impl FrequencyEdge {
    /// The frequency in Hz, given the limit it may be relative to.
    pub fn resolve(self, limit_hz: f32) -> f32 {
        match self {
            FrequencyEdge::Hz(hz) => hz,
            FrequencyEdge::BelowLimit(offset) => limit_hz - offset,
        }
    }

    /// Kaldi's `--high-freq`: a value > 0 is absolute, ≤ 0 an offset from Nyquist.
    pub fn from_kaldi_high_freq(value: f32) -> Self {
        if value > 0.0 {
            FrequencyEdge::Hz(value)
        } else {
            FrequencyEdge::BelowLimit(-value)
        }
    }

    /// Kaldi's `--vtln-high`: a value < 0 is an offset from the high edge, otherwise absolute.
    pub fn from_kaldi_vtln_high(value: f32) -> Self {
        if value < 0.0 {
            FrequencyEdge::BelowLimit(-value)
        } else {
            FrequencyEdge::Hz(value)
        }
    }

    /// The number Kaldi's options write for this edge (both conventions agree on it).
    pub fn to_kaldi(self) -> f32 {
        match self {
            FrequencyEdge::Hz(hz) => hz,
            // 0 − offset, not −offset: the limit itself is Kaldi's 0, never −0.
            FrequencyEdge::BelowLimit(offset) => 0.0 - offset,
        }
    }
}

/// Serialise a [`FrequencyEdge`] as Kaldi's `--high-freq` number.
mod kaldi_high_freq {
    use super::FrequencyEdge;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(edge: &FrequencyEdge, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f32(edge.to_kaldi())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FrequencyEdge, D::Error> {
        f32::deserialize(d).map(FrequencyEdge::from_kaldi_high_freq)
    }
}

/// Serialise a [`FrequencyEdge`] as Kaldi's `--vtln-high` number.
mod kaldi_vtln_high {
    use super::FrequencyEdge;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(edge: &FrequencyEdge, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f32(edge.to_kaldi())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FrequencyEdge, D::Error> {
        f32::deserialize(d).map(FrequencyEdge::from_kaldi_vtln_high)
    }
}

/// Serialise an optional positive setting as Kaldi does: 0 for none (the energy floor, the cepstral
/// lifter).
mod kaldi_zero_is_none {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<f32>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f32(value.unwrap_or(0.0))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
        f32::deserialize(d).map(|v| (v != 0.0).then_some(v))
    }
}

impl Default for MelOptions {
    fn default() -> Self {
        MelOptions {
            num_bins: 80,
            low_freq_hz: 20.0,
            high_freq: FrequencyEdge::BelowLimit(0.0),
            vtln_warp: 1.0,
            vtln_low_hz: 100.0,
            vtln_high: FrequencyEdge::BelowLimit(500.0),
        }
    }
}

impl MelOptions {
    /// The high edge in Hz for a sample rate.
    pub fn resolved_high_freq_hz(&self, sample_rate_hz: u32) -> f32 {
        self.high_freq.resolve(0.5 * sample_rate_hz as f32)
    }
}

/// Log-mel filterbank features. Defaults match Kaldi's `FbankOptions` (with 80 bins).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FbankOptions {
    /// Framing and per-frame conditioning.
    pub frame: FrameOptions,
    /// The mel filterbank.
    pub mel: MelOptions,
    /// Prepend the frame's log energy as column 0. Default false.
    pub use_energy: bool,
    /// Floor on the energy (absolute, not log). Default None. Stored as Kaldi's number (0 = none).
    #[serde(with = "kaldi_zero_is_none")]
    pub energy_floor: Option<f32>,
    /// Take the energy before pre-emphasis and windowing. Default true.
    pub raw_energy: bool,
    /// Log of the mel energies (false gives linear energies). Default true.
    pub use_log_fbank: bool,
    /// Power spectrum (true) or magnitude spectrum (false). Default true.
    pub use_power: bool,
}

impl Default for FbankOptions {
    fn default() -> Self {
        FbankOptions {
            frame: FrameOptions::default(),
            mel: MelOptions::default(),
            use_energy: false,
            energy_floor: None,
            raw_energy: true,
            use_log_fbank: true,
            use_power: true,
        }
    }
}

/// MFCC features. Defaults match Kaldi's `MfccOptions`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MfccOptions {
    /// Framing and per-frame conditioning.
    pub frame: FrameOptions,
    /// The mel filterbank the cepstra are taken from. Default 23 bins (Kaldi's MFCC default).
    pub mel: MelOptions,
    /// Number of cepstra kept, C0 included. Default 13.
    pub num_ceps: usize,
    /// Replace C0 with the frame's log energy. Default true.
    pub use_energy: bool,
    /// Floor on the energy (absolute). Default None. Stored as Kaldi's number (0 = none).
    #[serde(with = "kaldi_zero_is_none")]
    pub energy_floor: Option<f32>,
    /// Take the energy before pre-emphasis and windowing. Default true.
    pub raw_energy: bool,
    /// Cepstral liftering coefficient Q: `c_i *= 1 + Q/2 · sin(πi/Q)`; None: no liftering. Default
    /// 22. Stored as Kaldi's number (0 = none).
    #[serde(with = "kaldi_zero_is_none")]
    pub cepstral_lifter: Option<f32>,
}

impl Default for MfccOptions {
    fn default() -> Self {
        MfccOptions {
            frame: FrameOptions::default(),
            mel: MelOptions {
                num_bins: 23,
                ..MelOptions::default()
            },
            num_ceps: 13,
            use_energy: true,
            energy_floor: None,
            raw_energy: true,
            cepstral_lifter: Some(22.0),
        }
    }
}

/// Delta features (Kaldi's `add-deltas`): regression over ±`window` frames, applied `order` times,
/// edge frames replicated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeltaOptions {
    /// 1 adds deltas, 2 adds deltas and delta-deltas. Default 2.
    pub order: usize,
    /// Regression half-width in frames. Default 2.
    pub window: usize,
}

impl Default for DeltaOptions {
    fn default() -> Self {
        DeltaOptions {
            order: 2,
            window: 2,
        }
    }
}

/// Per-utterance cepstral mean (and optionally variance) normalisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CmvnOptions {
    /// Also divide by each dimension's standard deviation. Default false.
    pub normalize_variance: bool,
    /// Which frames the statistics are taken over. Default (and in model files that predate the
    /// field): all frames, as Kaldi's `apply-cmvn` with per-utterance statistics.
    pub statistics: CmvnStatistics,
}

/// The frames per-utterance CMVN statistics are estimated on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "frames")]
pub enum CmvnStatistics {
    /// Every frame (Kaldi's per-utterance `apply-cmvn`). Silence and pauses count as much as speech,
    /// so a clip padded with seconds of silence is normalised far from how a trimmed clip is.
    #[default]
    All,
    /// Only frames whose loudness (total filterbank energy, or C0/log-energy for MFCC) is within
    /// `within_db` dB of the utterance's loud frames (the 95th percentile of the frames within that
    /// range of the 95th percentile of all frames, so added silence does not move it): the speech,
    /// whatever silence, pauses or low noise floor surround it. Falls back to all frames when fewer
    /// than 10 qualify.
    Loud {
        /// How far below the 95th-percentile loudness a frame may be and still count. 30 dB is the
        /// range between a vowel and a stop closure in clean speech.
        within_db: f32,
    },
}

/// Which base features a pipeline computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum BaseFeatures {
    /// Log-mel filterbank.
    Fbank(FbankOptions),
    /// Mel-frequency cepstral coefficients.
    Mfcc(MfccOptions),
}

/// Everything needed to turn a waveform into a model's input: base features, then optional deltas, then
/// optional per-utterance CMVN. This is what a model file records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureOptions {
    /// Filterbank or MFCC.
    pub base: BaseFeatures,
    /// Append deltas (None: no deltas). Default None.
    pub deltas: Option<DeltaOptions>,
    /// Per-utterance CMVN (None: off). Default mean normalisation.
    pub cmvn: Option<CmvnOptions>,
}

impl Default for FeatureOptions {
    /// 80 log-mel bins at 16 kHz with per-utterance mean normalisation.
    fn default() -> Self {
        FeatureOptions {
            base: BaseFeatures::Fbank(FbankOptions::default()),
            deltas: None,
            cmvn: Some(CmvnOptions::default()),
        }
    }
}

impl FeatureOptions {
    /// The framing options of the base features.
    pub fn frame(&self) -> &FrameOptions {
        match &self.base {
            BaseFeatures::Fbank(o) => &o.frame,
            BaseFeatures::Mfcc(o) => &o.frame,
        }
    }

    /// Mutable mel filterbank options of the base features.
    pub fn mel_mut(&mut self) -> &mut MelOptions {
        match &mut self.base {
            BaseFeatures::Fbank(o) => &mut o.mel,
            BaseFeatures::Mfcc(o) => &mut o.mel,
        }
    }

    /// Mutable framing options of the base features.
    pub fn frame_mut(&mut self) -> &mut FrameOptions {
        match &mut self.base {
            BaseFeatures::Fbank(o) => &mut o.frame,
            BaseFeatures::Mfcc(o) => &mut o.frame,
        }
    }

    /// The sample rate audio must have before feature extraction.
    pub fn sample_rate_hz(&self) -> u32 {
        self.frame().sample_rate_hz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaldi_numbers_round_trip_through_model_files() {
        let json = serde_json::to_value(MelOptions::default()).expect("encodable");
        assert_eq!(json["high_freq_hz"], serde_json::json!(0.0));
        assert_eq!(json["vtln_high_hz"], serde_json::json!(-500.0));
        let read = |text: &str| serde_json::from_str::<MelOptions>(text).expect("decodable");
        assert_eq!(
            read(r#"{"high_freq_hz": 7600}"#).high_freq,
            FrequencyEdge::Hz(7600.0)
        );
        assert_eq!(
            read(r#"{"high_freq_hz": -400}"#).high_freq,
            FrequencyEdge::BelowLimit(400.0)
        );
        assert_eq!(
            read(r#"{"vtln_high_hz": 6000}"#).vtln_high,
            FrequencyEdge::Hz(6000.0)
        );
        assert_eq!(FrequencyEdge::BelowLimit(400.0).resolve(8000.0), 7600.0);
        let mfcc = serde_json::to_value(MfccOptions::default()).expect("encodable");
        assert_eq!(mfcc["energy_floor"], serde_json::json!(0.0));
        assert_eq!(mfcc["cepstral_lifter"], serde_json::json!(22.0));
        let unliftered: MfccOptions =
            serde_json::from_str(r#"{"cepstral_lifter": 0, "energy_floor": 1.5}"#)
                .expect("decodable");
        assert_eq!(unliftered.cepstral_lifter, None);
        assert_eq!(unliftered.energy_floor, Some(1.5));
    }
}
