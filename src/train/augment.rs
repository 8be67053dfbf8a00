//! Data augmentation. On the waveform: speed perturbation (resampling, which shifts pitch and formants
//! together, as Ko et al. 2015), random gain, additive white/pink/brown noise at a random SNR. On the
//! features: vocal-tract-length perturbation (a random VTLN warp of the mel filters per utterance, Jaitly &
//! Hinton 2013) and SpecAugment time and frequency masks (Park et al. 2019), filled with the utterance mean.

use ndarray::Array2;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::conditions::{ColourFilter, ConditionOptions};
use crate::audio::Resampler;

/// Augmentation settings; everything off by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AugmentOptions {
    /// Speed factors to draw from uniformly (e.g. [0.9, 1.0, 1.1]); empty = off.
    pub speed_factors: Vec<f32>,
    /// Random gain range in dB (±). 0 = off.
    pub gain_db: f32,
    /// Probability of adding noise to an utterance.
    pub noise_probability: f32,
    /// SNR range in dB for added noise.
    pub noise_snr_db: (f32, f32),
    /// SpecAugment: number of time masks and their maximum width in frames.
    pub time_masks: usize,
    /// Maximum width of a time mask in frames.
    pub time_mask_frames: usize,
    /// SpecAugment: number of frequency masks.
    pub freq_masks: usize,
    /// Maximum width of a frequency mask in feature dimensions.
    pub freq_mask_bins: usize,
    /// Vocal-tract-length perturbation: each utterance's mel filters are warped by a factor drawn from
    /// `1 ± vtlp` (on a grid of steps of 0.02). 0 = off.
    pub vtlp: f32,
    /// Recording conditions (silence, pauses, noise floors, noise, reverberation, telephone band,
    /// clipping, non-speech), applied after the waveform augmentations above.
    pub conditions: ConditionOptions,
}

/// Grid of the VTLP warp factors (one feature pipeline is built per factor).
const VTLP_STEP: f32 = 0.02;

impl AugmentOptions {
    /// Check every probability is in [0, 1] and every range finite and physically sensible.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let probability = |name: &str, p: f32| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("{name} probability must be in [0, 1], got {p}"))
            }
        };
        let snr = |name: &str, (lo, hi): (f32, f32)| {
            if lo.is_finite()
                && hi.is_finite()
                && lo <= hi
                && (-30.0..=120.0).contains(&lo)
                && hi <= 120.0
            {
                Ok(())
            } else {
                Err(format!("{name} SNR range must be finite, low ≤ high, within -30..120 dB; got {lo}..{hi}"))
            }
        };
        if let Some(f) = self
            .speed_factors
            .iter()
            .find(|f| !(0.25..=4.0).contains(*f))
        {
            return Err(format!("speed factor {f} is outside 0.25..4"));
        }
        if !(0.0..=60.0).contains(&self.gain_db) {
            return Err(format!(
                "gain range must be within 0..60 dB, got {}",
                self.gain_db
            ));
        }
        probability("noise", self.noise_probability)?;
        snr("noise", self.noise_snr_db)?;
        if self.time_masks > 100
            || self.freq_masks > 100
            || self.time_mask_frames > 10_000
            || self.freq_mask_bins > 10_000
        {
            return Err(
                "SpecAugment: at most 100 masks of at most 10000 frames or bins".to_string(),
            );
        }
        if !(0.0..0.5).contains(&self.vtlp) {
            return Err(format!("VTLP must be in [0, 0.5), got {}", self.vtlp));
        }
        let c = &self.conditions;
        for (name, p) in [
            ("edge silence", c.edge_silence_probability),
            ("hard edge", c.hard_edge_probability),
            ("speech cut", c.speech_cut_probability),
            ("floor step", c.floor_step_probability),
            ("pause", c.pause_probability),
            ("noise floor", c.noise_floor_probability),
            ("condition noise", c.noise_probability),
            ("reverberation", c.reverb_probability),
            ("room reverberation", c.room_reverb_share),
            ("telephone", c.telephone_probability),
            ("clipping", c.clip_probability),
            ("music", c.music_probability),
            ("music alone", c.music_alone_share),
            ("non-speech", c.non_speech_probability),
            ("denoise", c.denoise_probability),
            ("echo", c.echo_probability),
            ("talker", c.talker_probability),
            ("clicks", c.click_probability),
        ] {
            probability(name, p)?;
        }
        if !(0.0..=60.0).contains(&c.max_edge_silence_s) {
            return Err(format!(
                "edge silence must be within 0..60 s, got {}",
                c.max_edge_silence_s
            ));
        }
        if c.noise_probability > 0.0 {
            snr("condition noise", c.noise_snr_db)?;
        }
        Ok(())
    }

    /// A sensible default for training on synthetic speech: speed 0.9–1.1, ±6 dB gain, noise on half the
    /// utterances at 5–35 dB SNR, 2 time masks of ≤ 20 frames, 2 frequency masks of ≤ 10 bins.
    pub fn standard() -> Self {
        AugmentOptions {
            speed_factors: vec![0.9, 0.95, 1.0, 1.05, 1.1],
            gain_db: 6.0,
            noise_probability: 0.5,
            noise_snr_db: (5.0, 35.0),
            time_masks: 2,
            time_mask_frames: 20,
            freq_masks: 2,
            freq_mask_bins: 10,
            vtlp: 0.0,
            conditions: ConditionOptions::default(),
        }
    }

    /// [`standard`](Self::standard) plus the recording conditions of ordinary recordings
    /// ([`ConditionOptions::robust`]): the additive noise comes from the conditions (more kinds, 0–30
    /// dB), the gain range is ±10 dB.
    pub fn robust() -> Self {
        AugmentOptions {
            gain_db: 10.0,
            noise_probability: 0.0,
            conditions: ConditionOptions::robust(),
            ..Self::standard()
        }
    }

    /// The VTLP warp factors to draw from: `1 - vtlp ..= 1 + vtlp` in steps of 0.02 (1 included);
    /// empty when VTLP is off.
    pub fn vtlp_factors(&self) -> Vec<f32> {
        if self.vtlp <= 0.0 {
            return Vec::new();
        }
        let steps = (self.vtlp / VTLP_STEP).round().max(1.0) as i32;
        (-steps..=steps)
            .map(|k| 1.0 + k as f32 * self.vtlp / steps as f32)
            .collect()
    }

    /// Whether anything touches the waveform.
    pub fn changes_waveform(&self) -> bool {
        !self.speed_factors.is_empty()
            || self.gain_db > 0.0
            || self.noise_probability > 0.0
            || self.conditions.is_active()
    }

    /// Whether the features before SpecAugment differ from epoch to epoch (then they cannot be cached).
    pub fn changes_features(&self) -> bool {
        self.changes_waveform() || self.vtlp > 0.0
    }
}

/// Apply the waveform augmentations to int16-scale samples at `sample_rate_hz`.
pub fn augment_waveform(
    samples: &[f32],
    sample_rate_hz: u32,
    options: &AugmentOptions,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let mut out = if options.speed_factors.is_empty() {
        samples.to_vec()
    } else {
        let factor = options.speed_factors[rng.gen_range(0..options.speed_factors.len())];
        speed_perturb(samples, sample_rate_hz, factor)
    };
    if options.gain_db > 0.0 {
        let gain_db = rng.gen_range(-options.gain_db..=options.gain_db);
        let gain = 10f32.powf(gain_db / 20.0);
        out.iter_mut().for_each(|x| *x *= gain);
    }
    if options.noise_probability > 0.0 && rng.gen::<f32>() < options.noise_probability {
        let (lo, hi) = options.noise_snr_db;
        let snr_db = if hi > lo { rng.gen_range(lo..hi) } else { lo };
        add_noise(&mut out, snr_db, rng);
    }
    out
}

/// Play `samples` `factor` times faster: resample as if the audio were recorded at `rate × factor`.
pub fn speed_perturb(samples: &[f32], sample_rate_hz: u32, factor: f32) -> Vec<f32> {
    if (factor - 1.0).abs() < 1e-6 {
        return samples.to_vec();
    }
    // Round the pretend rate to 100 Hz so the polyphase table stays small.
    let source_rate = ((sample_rate_hz as f32 * factor / 100.0).round() as u32 * 100).max(100);
    match Resampler::new(source_rate, sample_rate_hz) {
        Ok(resampler) => resampler.process(samples),
        Err(_) => samples.to_vec(),
    }
}

/// Add white, pink or brown noise (chosen at random) at `snr_db` relative to the signal's power.
pub fn add_noise(samples: &mut [f32], snr_db: f32, rng: &mut impl Rng) {
    if samples.is_empty() {
        return;
    }
    let signal_power =
        samples.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / samples.len() as f64;
    if signal_power <= 0.0 {
        return;
    }
    let colour = rng.gen_range(0..3);
    let mut filter = ColourFilter::new(colour);
    let noise: Vec<f32> = (0..samples.len())
        .map(|_| filter.next(rng.gen_range(-1.0..1.0)))
        .collect();
    let noise_power = noise.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / noise.len() as f64;
    if noise_power <= 0.0 {
        return;
    }
    let scale = (signal_power / noise_power / 10f64.powf(snr_db as f64 / 10.0)).sqrt() as f32;
    for (x, n) in samples.iter_mut().zip(noise) {
        *x += n * scale;
    }
}

/// SpecAugment in place: `time_masks` spans of up to `time_mask_frames` frames and `freq_masks` spans
/// of up to `freq_mask_bins` dimensions are replaced by the utterance's mean value.
pub fn spec_augment(features: &mut Array2<f32>, options: &AugmentOptions, rng: &mut impl Rng) {
    let (frames, dims) = features.dim();
    if frames == 0 || dims == 0 {
        return;
    }
    let mean = features.mean().unwrap_or(0.0);
    for _ in 0..options.time_masks {
        // Never mask more than a fifth of a short utterance.
        let max_width = options.time_mask_frames.min(frames / 5);
        if max_width == 0 {
            break;
        }
        let width = rng.gen_range(1..=max_width);
        let start = rng.gen_range(0..=frames - width);
        features
            .slice_mut(ndarray::s![start..start + width, ..])
            .fill(mean);
    }
    for _ in 0..options.freq_masks {
        let max_width = options.freq_mask_bins.min(dims / 4);
        if max_width == 0 {
            break;
        }
        let width = rng.gen_range(1..=max_width);
        let start = rng.gen_range(0..=dims - width);
        features
            .slice_mut(ndarray::s![.., start..start + width])
            .fill(mean);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn vtlp_factors_span_the_range_symmetrically() {
        let off = AugmentOptions::default();
        assert!(off.vtlp_factors().is_empty());
        assert!(!off.changes_features());
        let on = AugmentOptions {
            vtlp: 0.1,
            ..AugmentOptions::default()
        };
        let factors = on.vtlp_factors();
        assert_eq!(factors.len(), 11);
        assert!((factors[0] - 0.9).abs() < 1e-6 && (factors[10] - 1.1).abs() < 1e-6);
        assert!((factors[5] - 1.0).abs() < 1e-6);
        assert!(on.changes_features() && !on.changes_waveform());
    }

    #[test]
    fn speed_perturbation_changes_length_by_the_factor() {
        let samples = vec![1.0f32; 16_000];
        assert_eq!(speed_perturb(&samples, 16_000, 1.1).len(), 14_546);
        assert_eq!(speed_perturb(&samples, 16_000, 0.9).len(), 17_778);
        assert_eq!(speed_perturb(&samples, 16_000, 1.0).len(), 16_000);
    }

    #[test]
    fn noise_lands_at_the_requested_snr() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let clean: Vec<f32> = (0..32_000)
            .map(|i| (i as f32 * 0.03).sin() * 5000.0)
            .collect();
        for _ in 0..3 {
            let mut noisy = clean.clone();
            add_noise(&mut noisy, 10.0, &mut rng);
            let signal: f64 = clean.iter().map(|&x| (x as f64).powi(2)).sum();
            let noise: f64 = noisy
                .iter()
                .zip(&clean)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            let snr = 10.0 * (signal / noise).log10();
            assert!((snr - 10.0).abs() < 0.01, "SNR {snr}");
        }
    }

    #[test]
    fn spec_augment_masks_with_the_mean_and_keeps_shape() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut features = Array2::from_shape_fn((200, 40), |(t, d)| (t * 40 + d) as f32);
        let original = features.clone();
        let options = AugmentOptions {
            time_masks: 2,
            time_mask_frames: 10,
            freq_masks: 2,
            freq_mask_bins: 5,
            ..AugmentOptions::default()
        };
        spec_augment(&mut features, &options, &mut rng);
        assert_eq!(features.dim(), (200, 40));
        let mean = original.mean().unwrap();
        let changed = features
            .iter()
            .zip(&original)
            .filter(|(a, b)| a != b)
            .count();
        assert!(changed > 0);
        assert!(features
            .iter()
            .zip(&original)
            .all(|(a, b)| a == b || *a == mean));
    }
}
