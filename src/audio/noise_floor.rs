//! A faint white-noise floor under the speech, added just before the features.
//!
//! Real recordings come with floors of every colour and depth: a microphone's hiss, a room's hum,
//! the holes an MP3 coder leaves, a noise suppressor's gated silence. The network was trained on
//! speech with floors drawn from a range, and what it has not seen is a floor far below the speech
//! with structure of its own. Adding white noise a fixed distance under the recording's speech level
//! makes every floor at least that loud and that flat: on `recipes/robust`'s real sets it took 4–12
//! points of PER off recordings cleaned by a noise suppressor, 0.4–8.5 off MP3 at 16 kbit/s, and
//! 0.3–0.8 off the clean sentence sets, at a cost of 0.6 on the synthetic held-out voice
//! (models/README.md, "A floor under the speech").
//! Recordings whose own floor is louder are all but unchanged: noise 40 dB under the speech raises
//! a floor 20 dB under it by 0.04 dB.
//!
//! The noise is seeded (the same recording always gets the same floor), and band-limited to the
//! band the recording has ([`measured_band_top_hz`]): an 8 kHz telephone recording brought to
//! 16 kHz gets no noise above its 4 kHz, nor an MP3 at 16 kbit/s above the 5.5 kHz its coder kept,
//! where the network has learned to expect nothing (white noise up to 8 kHz over such MP3s cost two
//! of four sets 1.5 and 5.2 points).

use std::sync::{Arc, Mutex, OnceLock};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::audio::levels::{LOUD_PERCENTILE, SPEECH_RANGE_DB};
use crate::audio::Resampler;
use crate::error::Result;
use crate::util::mix_seed;

/// Default distance of the added floor under the speech level, dB. Chosen on the real evaluation
/// sets (models/README.md): 30 dB took more off the real recordings but cost the synthetic
/// held-out voice 1.7 points; 50 dB was too faint to help.
pub const DEFAULT_FLOOR_BELOW_DB: f32 = 40.0;

/// Samples of the recording given noise from one seed: blocks are independent, so they run in
/// parallel and the noise does not depend on the thread count.
const BLOCK: usize = 1 << 16;

const SEED: u64 = 0x6e6f_6973_655f_666c;

/// Frame length of the band measurement, seconds (512 samples at 16 kHz: 31 Hz bins).
const BAND_FRAME_S: f64 = 0.032;

/// The band measurement looks at most this many frames, spread over the recording.
const BAND_MAX_FRAMES: usize = 4000;

/// A bin is inside the recording's band while its mean power over the speech frames is within
/// this many dB of the loudest bin between [`BAND_REFERENCE_HZ`]: speech's own spectrum falls
/// about 6 dB an octave (30–45 dB from there to 8 kHz), a coder's or resampler's cut-off by 50 dB
/// or more within a few bins.
const BAND_RANGE_DB: f64 = 50.0;

/// Where the band measurement's reference level is taken, Hz: above the first formant's
/// strength, inside every band a recording of speech has.
const BAND_REFERENCE_HZ: (f64, f64) = (1000.0, 3000.0);

/// The measured band's top is rounded down to a multiple of this, Hz (so the noise's rate and the
/// recording's share a large common factor, and the resampler a short table).
const BAND_STEP_HZ: f32 = 100.0;

/// The top of the band a recording has, Hz: the highest frequency whose mean power over the speech
/// frames (those within 30 dB of the loud ones) is within 50 dB of the loudest between 1 and
/// 3 kHz; half the sample rate for a recording that fills its band, or has no power at all.
pub fn measured_band_top_hz(samples: &[f32], sample_rate_hz: u32) -> f32 {
    let nyquist = sample_rate_hz as f32 / 2.0;
    let Some(spectrum) = SpeechSpectrum::measure(samples, sample_rate_hz) else {
        return nyquist;
    };
    let mean = &spectrum.mean;
    let bins = mean.len();
    let (low, high) = (
        spectrum.bin_of(BAND_REFERENCE_HZ.0),
        spectrum.bin_of(BAND_REFERENCE_HZ.1),
    );
    let reference = mean[low..=high].iter().copied().fold(0.0, f64::max);
    if reference <= 0.0 {
        return nyquist;
    }
    let cut = reference * 10f64.powf(-BAND_RANGE_DB / 10.0);
    let top_bin = mean.iter().rposition(|&m| m >= cut).unwrap_or(bins - 1);
    if top_bin + 2 >= bins {
        return nyquist;
    }
    let top_hz = ((top_bin + 1) as f64 * spectrum.hz_per_bin) as f32;
    ((top_hz / BAND_STEP_HZ).floor() * BAND_STEP_HZ).clamp(BAND_STEP_HZ, nyquist)
}

/// The mean power spectrum of a recording's speech frames (those within 30 dB of its loud ones), in
/// frames of [`BAND_FRAME_S`], at most [`BAND_MAX_FRAMES`] of them spread over the recording.
pub(crate) struct SpeechSpectrum {
    /// Summed power per bin, `0..=len/2`, over the speech frames.
    pub(crate) mean: Vec<f64>,
    pub(crate) hz_per_bin: f64,
}

impl SpeechSpectrum {
    /// None for a recording shorter than a frame, or silent.
    pub(crate) fn measure(samples: &[f32], sample_rate_hz: u32) -> Option<SpeechSpectrum> {
        let len = ((BAND_FRAME_S * f64::from(sample_rate_hz)) as usize).next_power_of_two();
        if samples.len() < len || len < 8 {
            return None;
        }
        let frames = (samples.len() - len) / (len / 2) + 1;
        let step = (frames.div_ceil(BAND_MAX_FRAMES)).max(1) * (len / 2);
        let starts: Vec<usize> = (0..=samples.len() - len).step_by(step).collect();
        let window = super::hann(len);
        let fft = crate::util::fft_plans::forward(len);
        let spectra: Vec<(f64, Vec<f64>)> = starts
            .par_iter()
            .map_init(
                || (fft.make_input_vec(), fft.make_output_vec()),
                |(input, output), &start| {
                    for ((slot, &x), &w) in input.iter_mut().zip(&samples[start..]).zip(&window) {
                        *slot = x * w;
                    }
                    // The lengths come from the plan, so the transform cannot fail.
                    if fft.process(input, output).is_err() {
                        return (0.0, Vec::new());
                    }
                    let power: Vec<f64> = output.iter().map(|c| f64::from(c.norm_sqr())).collect();
                    (power.iter().sum(), power)
                },
            )
            .collect();
        let mut energies: Vec<f64> = spectra
            .iter()
            .map(|(e, _)| *e)
            .filter(|&e| e > 0.0)
            .collect();
        if energies.is_empty() {
            return None;
        }
        energies.sort_by(f64::total_cmp);
        let loud = energies[((energies.len() - 1) as f64 * LOUD_PERCENTILE).round() as usize];
        let threshold = loud * 10f64.powf(-f64::from(SPEECH_RANGE_DB) / 10.0);
        let mut mean = vec![0.0f64; len / 2 + 1];
        for (_, power) in spectra
            .iter()
            .filter(|(e, p)| *e >= threshold && !p.is_empty())
        {
            for (m, &p) in mean.iter_mut().zip(power) {
                *m += p;
            }
        }
        Some(SpeechSpectrum {
            mean,
            hz_per_bin: f64::from(sample_rate_hz) / len as f64,
        })
    }

    /// The bin nearest `hz` (the last one above the Nyquist frequency).
    pub(crate) fn bin_of(&self, hz: f64) -> usize {
        ((hz / self.hz_per_bin).round() as usize).min(self.mean.len() - 1)
    }

    /// The mean power per bin between two frequencies (inclusive), Hz.
    pub(crate) fn mean_between(&self, low_hz: f64, high_hz: f64) -> f64 {
        let (low, high) = (self.bin_of(low_hz), self.bin_of(high_hz));
        let band = &self.mean[low..=high.max(low)];
        band.iter().sum::<f64>() / band.len() as f64
    }
}

/// Add white Gaussian noise at `level_dbfs` (its mean power, relative to full scale ±32768) to
/// `samples` at `sample_rate_hz`, holding no energy above `band_top_hz` when that is below the
/// Nyquist frequency (the noise is made at twice that rate and resampled).
pub fn add_noise_floor(
    samples: &mut [f32],
    sample_rate_hz: u32,
    band_top_hz: f32,
    level_dbfs: f32,
) -> Result<()> {
    if samples.is_empty() || !level_dbfs.is_finite() {
        return Ok(());
    }
    let std = crate::audio::INT16_SCALE * 10f32.powf(level_dbfs / 20.0);
    let band_rate_hz = (2.0 * band_top_hz).round() as u32;
    // A band edge within 5 % of Nyquist is the full band: resampling would only shave its top.
    let band = if band_rate_hz >= sample_rate_hz
        || f64::from(band_rate_hz) > 0.95 * f64::from(sample_rate_hz)
    {
        None
    } else if band_rate_hz == 0 {
        // The resampler's own error for a band of nothing.
        return Resampler::new(band_rate_hz, sample_rate_hz).map(|_| ());
    } else {
        Some(Band {
            rates_hz: (band_rate_hz, sample_rate_hz),
            ratio: f64::from(band_rate_hz) / f64::from(sample_rate_hz),
            resampler: OnceLock::new(),
        })
    };
    let key = (band.as_ref().map_or(0, |_| band_rate_hz), sample_rate_hz);
    samples
        .par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(block, chunk)| {
            let len = chunk.len();
            let noise = if block == 0 {
                first_block_noise(key, band.as_ref())
            } else {
                Arc::new(unit_noise(block, len, band.as_ref()))
            };
            for (x, &n) in chunk.iter_mut().zip(noise.iter()) {
                *x += n * std;
            }
        });
    Ok(())
}

/// How noise is brought into a band narrower than the recording's: made at the band's rate
/// (`ratio` of the recording's) and resampled, by a resampler set up only if a block needs it
/// (not for a short recording whose block 0 is already made).
struct Band {
    /// (band's rate, recording's rate), both positive.
    rates_hz: (u32, u32),
    ratio: f64,
    resampler: OnceLock<Option<Resampler>>,
}

impl Band {
    fn resampler(&self) -> Option<&Resampler> {
        self.resampler
            .get_or_init(|| Resampler::new(self.rates_hz.0, self.rates_hz.1).ok())
            .as_ref()
    }
}

/// Samples of noise at the band's rate on either side of a block, where the resampler's filter
/// (a few dozen taps) runs in and out.
const MARGIN: usize = 256;

/// `len` samples of block `block`'s seeded noise at unit standard deviation, white or held to
/// `band`: the same recording always gets the same floor, whatever the thread count. Block by block
/// (no copy of the whole recording: an hour is 230 MB of f32); a narrow block's noise is made with a
/// margin on either side and the margins, where the resampler's filter runs in, are dropped. A
/// block's first `len` samples do not depend on how many follow them (the generator draws in
/// order; the resampler's output at a sample reads only inputs within its taps).
fn unit_noise(block: usize, len: usize, band: Option<&Band>) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(mix_seed(SEED, block as u64, 0));
    let mut draw = |count: usize| -> Vec<f32> {
        (0..count)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect()
    };
    let Some(band) = band else {
        return draw(len);
    };
    let narrow = draw((len as f64 * band.ratio).ceil() as usize + 2 * MARGIN);
    // Both rates are positive, so there is a resampler (without one the block gets no noise).
    let Some(resampler) = band.resampler() else {
        return vec![0.0; len];
    };
    let wide = resampler.process(&narrow);
    let skip = (MARGIN as f64 / band.ratio).round() as usize;
    wide.into_iter().skip(skip).take(len).collect()
}

/// Block 0's noise ([`unit_noise`], a whole block) for `key` = (band's rate, 0 for white; the
/// recording's rate). Every recording shorter than a block — each clip of a batch of short files —
/// adds a prefix of it, so it is made once per process instead of once per file: the generator and
/// the resampler cost ~5 % of recognising an hour of 0.3–5 s clips when made per file
/// (BENCHMARKS.md). A few bands are kept (bands are measured in 100 Hz steps, so a batch of
/// recordings from one source shares one).
fn first_block_noise(key: (u32, u32), band: Option<&Band>) -> Arc<Vec<f32>> {
    /// Bands kept; each is a block of f32 (256 KB).
    const KEPT: usize = 8;
    type Kept = Vec<((u32, u32), Arc<Vec<f32>>)>;
    static CACHE: Mutex<Kept> = Mutex::new(Vec::new());
    let lookup = |cache: &Kept| {
        cache
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, n)| n.clone())
    };
    // A poisoned lock only means another thread panicked mid-insert; the list is still whole.
    if let Some(noise) = lookup(&CACHE.lock().unwrap_or_else(|e| e.into_inner())) {
        return noise;
    }
    // Made outside the lock: two threads may both make one block, and keep the same values.
    let noise = Arc::new(unit_noise(0, BLOCK, band));
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if lookup(&cache).is_none() {
        if cache.len() == KEPT {
            cache.remove(0);
        }
        cache.push((key, noise.clone()));
    }
    noise
}

#[cfg(test)]
mod tests {
    use super::*;

    fn power_dbfs(x: &[f32]) -> f32 {
        let p = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64;
        (10.0 * (p / (32768.0f64 * 32768.0)).log10()) as f32
    }

    #[test]
    fn the_floor_has_the_asked_level_and_is_reproducible() {
        let mut a = vec![0.0f32; 200_000];
        add_noise_floor(&mut a, 16_000, 8_000.0, -60.0).unwrap();
        assert!((power_dbfs(&a) + 60.0).abs() < 0.1, "{}", power_dbfs(&a));
        let mut b = vec![0.0f32; 200_000];
        add_noise_floor(&mut b, 16_000, 8_000.0, -60.0).unwrap();
        assert_eq!(a, b);
        // Digital silence stays silent when there is no level to add under.
        let mut c = vec![0.0f32; 100];
        add_noise_floor(&mut c, 16_000, 8_000.0, f32::NEG_INFINITY).unwrap();
        assert!(c.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn a_short_recording_gets_the_first_samples_of_a_long_ones_floor() {
        // Block 0's noise is made once per band and rate and shared by every shorter recording:
        // that is only right if a block's first samples do not depend on how many follow.
        for (rate, top) in [(16_000, 8_000.0), (16_000, 3_900.0), (8_000, 3_300.0)] {
            let mut long = vec![0.0f32; BLOCK + 5_000];
            add_noise_floor(&mut long, rate, top, -45.0).unwrap();
            for len in [1, 37, 4_000, 20_011, BLOCK] {
                let mut short = vec![0.0f32; len];
                add_noise_floor(&mut short, rate, top, -45.0).unwrap();
                assert_eq!(
                    short[..],
                    long[..len],
                    "{rate} Hz, band {top} Hz, {len} samples"
                );
            }
            // And as made directly, not through the kept block.
            let band_rate = (2.0 * top) as u32;
            let band = (band_rate < rate).then(|| Band {
                rates_hz: (band_rate, rate),
                ratio: f64::from(band_rate) / f64::from(rate),
                resampler: OnceLock::new(),
            });
            for len in [1, 999, 30_000] {
                let direct = unit_noise(0, len, band.as_ref());
                let kept = unit_noise(0, BLOCK, band.as_ref());
                assert_eq!(
                    direct[..],
                    kept[..len],
                    "{rate} Hz, band {top} Hz, {len} samples"
                );
            }
        }
    }

    #[test]
    fn the_band_is_measured_where_the_spectrum_falls_away() {
        // Speech-like: noise falling 6 dB an octave over the whole band keeps the whole band.
        let mut full = vec![0.0f32; 64_000];
        add_noise_floor(&mut full, 16_000, 8_000.0, -30.0).unwrap();
        let mut tilted = vec![0.0f32; full.len()];
        for i in 1..full.len() {
            // A leaky integrator: -6 dB an octave above ~250 Hz.
            tilted[i] = 0.9 * tilted[i - 1] + full[i];
        }
        assert_eq!(measured_band_top_hz(&tilted, 16_000), 8_000.0);
        // Noise kept below 4 kHz (an 8 kHz recording brought to 16 kHz, a coder's low-pass).
        let mut narrow = vec![0.0f32; 64_000];
        add_noise_floor(&mut narrow, 16_000, 4_000.0, -30.0).unwrap();
        let top = measured_band_top_hz(&narrow, 16_000);
        assert!((3_500.0..=4_200.0).contains(&top), "{top}");
        // Nothing to measure: the whole band.
        assert_eq!(measured_band_top_hz(&[0.0; 16_000], 16_000), 8_000.0);
        assert_eq!(measured_band_top_hz(&[1.0; 10], 16_000), 8_000.0);
    }

    #[test]
    fn a_narrowband_recording_gets_no_noise_above_its_band() {
        let mut x = vec![0.0f32; 160_000];
        add_noise_floor(&mut x, 16_000, 4_000.0, -50.0).unwrap();
        // Power below and above 4 kHz from one long FFT.
        let mut planner = rustfft::FftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(x.len());
        let mut spectrum: Vec<rustfft::num_complex::Complex<f32>> =
            x.iter().map(|&v| v.into()).collect();
        fft.process(&mut spectrum);
        let half = x.len() / 2;
        let edge = half / 2;
        let band =
            |r: std::ops::Range<usize>| spectrum[r].iter().map(|c| c.norm_sqr()).sum::<f32>();
        let below = band(0..edge - half / 20);
        let above = band(edge + half / 20..half);
        assert!(below > 0.0 && above < below * 1e-4, "{below} {above}");
        assert!((power_dbfs(&x) + 50.0).abs() < 0.5, "{}", power_dbfs(&x));
    }
}
