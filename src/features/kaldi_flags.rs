//! Feature options under the names and conventions of Kaldi's command-line flags, for front ends that
//! take those flags (`phonrec features`, the Python package's `phonrec.features`): one mapping to
//! [`FeatureOptions`] instead of one per front end.

use super::options::{
    BaseFeatures, CmvnOptions, DeltaOptions, FbankOptions, FeatureOptions, FrameOptions,
    FrequencyEdge, MelOptions, MfccOptions, WindowType,
};

/// The flags of Kaldi's `compute-fbank-feats` / `compute-mfcc-feats` (plus `add-deltas` and
/// `apply-cmvn`), with Kaldi's conventions: an energy floor or cepstral lifter of 0 is off, a
/// `high_freq` or `vtln_high` ≤ 0 is an offset from the Nyquist frequency. `None` takes the kind's own
/// default (80 mel bins for fbank as phonrec's models use, Kaldi's 23 for MFCC; energy for MFCC only).
/// [`Default`] gives Kaldi's defaults, fbank.
#[derive(Clone, Debug, PartialEq)]
pub struct KaldiFeatureFlags {
    /// MFCC instead of log-mel filterbank energies.
    pub mfcc: bool,
    pub num_mel_bins: Option<usize>,
    pub num_ceps: Option<usize>,
    pub cepstral_lifter: Option<f32>,
    pub use_energy: Option<bool>,
    pub energy_floor: f32,
    pub raw_energy: bool,
    pub window_type: WindowType,
    pub snip_edges: bool,
    pub low_freq: f32,
    pub high_freq: f32,
    pub vtln_warp: f32,
    pub vtln_low: f32,
    pub vtln_high: f32,
    pub dither: f32,
    pub frame_length: f32,
    pub frame_shift: f32,
    pub preemphasis_coefficient: f32,
    pub remove_dc_offset: bool,
    pub round_to_power_of_two: bool,
    /// `add-deltas` with this order and window, after the base features.
    pub deltas: Option<DeltaOptions>,
    /// Per-utterance mean normalisation after the deltas; `Some(true)` also normalises the variance.
    pub cmvn: Option<bool>,
}

impl Default for KaldiFeatureFlags {
    fn default() -> Self {
        let frame = FrameOptions::default();
        let mel = MelOptions::default();
        let fbank = FbankOptions::default();
        KaldiFeatureFlags {
            mfcc: false,
            num_mel_bins: None,
            num_ceps: None,
            cepstral_lifter: None,
            use_energy: None,
            energy_floor: fbank.energy_floor.unwrap_or(0.0),
            raw_energy: fbank.raw_energy,
            window_type: frame.window_type,
            snip_edges: frame.snip_edges,
            low_freq: mel.low_freq_hz,
            high_freq: mel.high_freq.to_kaldi(),
            vtln_warp: mel.vtln_warp,
            vtln_low: mel.vtln_low_hz,
            vtln_high: mel.vtln_high.to_kaldi(),
            dither: frame.dither,
            frame_length: frame.frame_length_ms,
            frame_shift: frame.frame_shift_ms,
            preemphasis_coefficient: frame.preemphasis_coefficient,
            remove_dc_offset: frame.remove_dc_offset,
            round_to_power_of_two: frame.round_to_power_of_two,
            deltas: None,
            cmvn: None,
        }
    }
}

impl KaldiFeatureFlags {
    /// The library's options for audio at `sample_rate_hz` (checked when a
    /// [`FeaturePipeline`](super::FeaturePipeline) is built from them).
    pub fn options(&self, sample_rate_hz: u32) -> FeatureOptions {
        let frame = FrameOptions {
            sample_rate_hz,
            frame_length_ms: self.frame_length,
            frame_shift_ms: self.frame_shift,
            dither: self.dither,
            preemphasis_coefficient: self.preemphasis_coefficient,
            remove_dc_offset: self.remove_dc_offset,
            window_type: self.window_type,
            round_to_power_of_two: self.round_to_power_of_two,
            snip_edges: self.snip_edges,
            dither_seed: 0,
        };
        let mel = |default: &MelOptions| MelOptions {
            num_bins: self.num_mel_bins.unwrap_or(default.num_bins),
            low_freq_hz: self.low_freq,
            high_freq: FrequencyEdge::from_kaldi_high_freq(self.high_freq),
            vtln_warp: self.vtln_warp,
            vtln_low_hz: self.vtln_low,
            vtln_high: FrequencyEdge::from_kaldi_vtln_high(self.vtln_high),
        };
        let energy_floor = (self.energy_floor != 0.0).then_some(self.energy_floor);
        let base = if self.mfcc {
            let default = MfccOptions::default();
            BaseFeatures::Mfcc(MfccOptions {
                frame,
                mel: mel(&default.mel),
                num_ceps: self.num_ceps.unwrap_or(default.num_ceps),
                use_energy: self.use_energy.unwrap_or(default.use_energy),
                energy_floor,
                raw_energy: self.raw_energy,
                cepstral_lifter: self
                    .cepstral_lifter
                    .or(default.cepstral_lifter)
                    .filter(|&lifter| lifter != 0.0),
            })
        } else {
            let default = FbankOptions::default();
            BaseFeatures::Fbank(FbankOptions {
                frame,
                mel: mel(&default.mel),
                use_energy: self.use_energy.unwrap_or(default.use_energy),
                energy_floor,
                raw_energy: self.raw_energy,
                ..default
            })
        };
        FeatureOptions {
            base,
            deltas: self.deltas.clone(),
            cmvn: self.cmvn.map(|normalize_variance| CmvnOptions {
                normalize_variance,
                ..CmvnOptions::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_flags_give_the_default_fbank_and_mfcc_options() {
        let flags = KaldiFeatureFlags::default();
        let options = flags.options(16_000);
        let BaseFeatures::Fbank(fbank) = &options.base else {
            panic!("fbank expected")
        };
        assert_eq!(fbank, &FbankOptions::default());
        assert!(options.deltas.is_none() && options.cmvn.is_none());
        let mfcc = KaldiFeatureFlags {
            mfcc: true,
            ..flags.clone()
        };
        let BaseFeatures::Mfcc(mfcc) = mfcc.options(16_000).base else {
            panic!("mfcc expected")
        };
        assert_eq!(mfcc, MfccOptions::default());
    }

    #[test]
    fn zero_turns_floor_and_lifter_off_and_edges_follow_kaldi() {
        let flags = KaldiFeatureFlags {
            mfcc: true,
            energy_floor: 0.0,
            cepstral_lifter: Some(0.0),
            high_freq: -400.0,
            num_mel_bins: Some(40),
            cmvn: Some(true),
            ..KaldiFeatureFlags::default()
        };
        let options = flags.options(8_000);
        let BaseFeatures::Mfcc(mfcc) = &options.base else {
            panic!("mfcc expected")
        };
        assert_eq!(mfcc.energy_floor, None);
        assert_eq!(mfcc.cepstral_lifter, None);
        assert_eq!(mfcc.mel.num_bins, 40);
        assert_eq!(
            mfcc.mel.high_freq,
            FrequencyEdge::from_kaldi_high_freq(-400.0)
        );
        assert_eq!(mfcc.frame.sample_rate_hz, 8_000);
        assert!(options.cmvn.is_some_and(|c| c.normalize_variance));
    }
}
