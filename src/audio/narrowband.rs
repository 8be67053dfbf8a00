//! Narrowband audio stored at a higher rate: a telephone call or an 8 kHz recording brought to
//! 16 kHz (or 44.1, 48 kHz) by another tool before it reaches phonrec.
//!
//! Such a file holds nothing above 4 kHz but the converter's own traces: sox's dither, or the
//! rounding to 16 bits, a white floor 60–80 dB under the speech. A recording made at 8 kHz reaches
//! the network with nothing there but the features' seeded dither, and the network has learned
//! that band's exact look: the same recordings stored at 16 kHz by `sox in.wav -r 16000 out.wav`
//! recognised 2–3 points worse (FSDD 0.110 → 0.132, telephone-coded sentences 0.268 → 0.288;
//! models/README.md, "Narrowband audio stored at 16 kHz"). So a recording whose band ends at 4 kHz
//! is brought back to 8 kHz first, and goes the way the 8 kHz recording it is would go.
//!
//! The measure is a cliff at 4 kHz down to a flat floor: the mean power per bin of the speech frames
//! above 4.3 kHz against 1.5–3.2 kHz, and the band above 4.3 kHz's slope. Speech recorded wideband
//! falls from the one band to the other by 20 dB in whole recordings (the real sets: −17 to
//! +10 dB), though a short clip of vowels alone can fall 35 dB; narrowband audio by 40 dB or more
//! (−42 to −77 dB), since above 4 kHz only the converter's floor is left, and that floor is white
//! where speech's own spectrum keeps falling. A coder's low-pass above 4.3 kHz (MP3 at 16 kbit/s
//! keeps 5.5 kHz) is not a cliff there, and such a recording keeps its rate.

use super::SpeechSpectrum;

/// The telephone rate a narrowband recording is brought back to, Hz.
pub const NARROWBAND_RATE_HZ: u32 = 8000;

/// The band speech always has, where the reference level is taken, Hz (above the first formant,
/// below a telephone filter's 3.4 kHz edge).
const INSIDE_HZ: (f64, f64) = (1500.0, 3200.0);

/// Where a narrowband recording has nothing of its own, Hz: from above the 4 kHz edge (a
/// resampler's transition band ends by 4.2 kHz) up to 7.6 kHz or 95 % of the Nyquist frequency.
const ABOVE_FROM_HZ: f64 = 4300.0;
const ABOVE_TO_HZ: f64 = 7600.0;

/// A recording is narrowband when the band above 4.3 kHz is this far under the inside band, dB:
/// halfway between the wideband recordings' lowest (−17 dB) and the narrowband ones' highest
/// (−42 dB) on the evaluation sets.
const CLIFF_DB: f64 = -35.0;

/// A converter's floor above 4 kHz is white: its two halves' levels differ by less than this, dB.
/// Speech's own spectrum falls there (a clip of vowels and liquids recorded wideband, 9 dB from
/// 4.3–5.9 to 5.9–7.6 kHz, measured as far under 1.5–3.2 kHz as a narrowband recording's floor).
const FLAT_DB: f64 = 4.0;

/// The lowest recorded rate the measure looks at, Hz: it needs the band above 4.3 kHz.
const MIN_RATE_HZ: u32 = 10_000;

/// How a recording's band above 4.3 kHz looks against the band every recording of speech has, in
/// its speech frames (see the module's notes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpperBand {
    /// Mean power per bin above 4.3 kHz against 1.5–3.2 kHz, dB.
    pub below_db: f64,
    /// Mean power per bin in the upper half of the band above 4.3 kHz against its lower half, dB:
    /// near 0 for a converter's white floor, −5 dB or less for speech's own falling spectrum.
    pub slope_db: f64,
}

/// [`UpperBand`] of a recording; `None` when its rate leaves no band above 4.3 kHz, or it is too
/// short or silent to measure.
pub fn measure_upper_band(samples: &[f32], sample_rate_hz: u32) -> Option<UpperBand> {
    if sample_rate_hz < MIN_RATE_HZ {
        return None;
    }
    let spectrum = SpeechSpectrum::measure(samples, sample_rate_hz)?;
    let top = ABOVE_TO_HZ.min(0.95 * f64::from(sample_rate_hz) / 2.0);
    let middle = (ABOVE_FROM_HZ + top) / 2.0;
    let inside = spectrum.mean_between(INSIDE_HZ.0, INSIDE_HZ.1);
    if inside <= 0.0 {
        return None;
    }
    // All-zero bands (a synthetic signal) count as far under as a float can say, and flat.
    let db = |a: f64, b: f64| 10.0 * (a.max(f64::MIN_POSITIVE) / b.max(f64::MIN_POSITIVE)).log10();
    Some(UpperBand {
        below_db: db(spectrum.mean_between(ABOVE_FROM_HZ, top), inside),
        slope_db: db(
            spectrum.mean_between(middle, top),
            spectrum.mean_between(ABOVE_FROM_HZ, middle),
        ),
    })
}

/// [`NARROWBAND_RATE_HZ`] for a recording stored above it that holds nothing of its own above
/// 4 kHz: the band above 4.3 kHz more than 35 dB under 1.5–3.2 kHz and flat (within 4 dB, a
/// converter's floor); `None` for every other recording.
pub fn narrowband_rate_hz(samples: &[f32], sample_rate_hz: u32) -> Option<u32> {
    measure_upper_band(samples, sample_rate_hz)
        .filter(|band| band.below_db < CLIFF_DB && band.slope_db.abs() < FLAT_DB)
        .map(|_| NARROWBAND_RATE_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Resampler;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Two seconds of a speech-like signal at 16 kHz: noise bursts (syllables) whose spectrum falls
    /// 6 dB an octave (white noise integrated once, leaky), at about −20 dBFS.
    fn wideband(rng: &mut StdRng) -> Vec<f32> {
        let rate = 16_000usize;
        let mut state = 0.0f32;
        (0..2 * rate)
            .map(|i| {
                let syllable = ((i as f32 / rate as f32) * 4.0 * std::f32::consts::PI)
                    .sin()
                    .abs();
                state = 0.9 * state + rng.gen_range(-1.0f32..1.0);
                3000.0 * syllable * state
            })
            .collect()
    }

    /// `x` at 8 kHz brought to 16 kHz and written as 16 bits with ±1 LSB of triangular dither, as
    /// `sox in.wav -r 16000 out.wav` does.
    fn up_to_16k_as_sox(x8: &[f32], rng: &mut StdRng) -> Vec<f32> {
        let up = Resampler::new(8000, 16_000)
            .expect("8 to 16 kHz")
            .process(x8);
        up.iter()
            .map(|&v| (v + rng.gen_range(-1.0f32..1.0) + rng.gen_range(-1.0f32..1.0)).round())
            .collect()
    }

    #[test]
    fn audio_brought_up_from_8k_is_narrowband_and_wideband_audio_is_not() {
        let mut rng = StdRng::seed_from_u64(3);
        let speech = wideband(&mut rng);
        // Wideband, as recorded and rounded to 16 bits.
        let rounded: Vec<f32> = speech.iter().map(|v| v.round()).collect();
        let band = measure_upper_band(&rounded, 16_000).expect("measurable");
        assert!(band.below_db > -20.0, "wideband: {band:?}");
        assert_eq!(narrowband_rate_hz(&rounded, 16_000), None);
        // The same taken to 8 kHz and back up, with a converter's dither: narrowband.
        let x8 = Resampler::new(16_000, 8000)
            .expect("16 to 8 kHz")
            .process(&speech);
        let up = up_to_16k_as_sox(&x8, &mut rng);
        let band = measure_upper_band(&up, 16_000).expect("measurable");
        assert!(
            band.below_db < -45.0 && band.slope_db.abs() < 1.0,
            "narrowband: {band:?}"
        );
        assert_eq!(narrowband_rate_hz(&up, 16_000), Some(NARROWBAND_RATE_HZ));
        // Through a 5.5 kHz band (a coder's low-pass, at 11 kHz and back): no cliff at 4 kHz.
        let x11 = Resampler::new(16_000, 11_000)
            .expect("16 to 11 kHz")
            .process(&speech);
        let up11 = Resampler::new(11_000, 16_000)
            .expect("11 to 16 kHz")
            .process(&x11);
        assert_eq!(narrowband_rate_hz(&up11, 16_000), None);
        // A spectrum that falls as far by 4.3 kHz, but steadily (noise through five leaky
        // integrators, 30 dB an octave, as a short clip of vowels alone can fall): not a floor.
        let mut stages = [0.0f32; 5];
        let steep: Vec<f32> = speech
            .iter()
            .map(|&x| {
                let mut v = x;
                for s in stages.iter_mut() {
                    *s = 0.6 * *s + v;
                    v = *s;
                }
                v.round()
            })
            .collect();
        let band = measure_upper_band(&steep, 16_000).expect("measurable");
        assert!(
            band.below_db < -35.0 && band.slope_db < -5.0,
            "steep: {band:?}"
        );
        assert_eq!(narrowband_rate_hz(&steep, 16_000), None);
    }

    #[test]
    fn no_decision_without_a_band_above_4_khz_or_without_sound() {
        let mut rng = StdRng::seed_from_u64(4);
        let speech = wideband(&mut rng);
        let x8 = Resampler::new(16_000, 8000)
            .expect("16 to 8 kHz")
            .process(&speech);
        assert_eq!(measure_upper_band(&x8, 8000), None);
        assert_eq!(narrowband_rate_hz(&x8, 8000), None);
        assert_eq!(measure_upper_band(&vec![0.0; 32_000], 16_000), None);
        assert_eq!(measure_upper_band(&speech[..100], 16_000), None);
    }
}
