//! Discrete echoes: the recording heard again 40–480 ms later, a few decibels down. A speakerphone
//! or a conference call returns the talker's voice, a hall's back wall reflects it, a delay effect
//! repeats it. An echo 8–14 dB down costs the network 7–17 points of PER on the real sentence sets
//! (models/README.md, "Echoes"), far more than a room's diffuse reverberation of the same energy:
//! each phone is heard a second time over the next one.
//!
//! [`strongest_echo`] finds the echo's delay and strength in the power cepstrum (its peak stands
//! alone; a room's reflections spread, a hum's repeat in combs), and [`cancel_echoes`] undoes it
//! with the inverse comb filter `x[n] = y[n] − a·x[n − D]`, section by section of 30 s as
//! `--dereverb auto` measures rooms. What is left (a reflection filtered by the wall, a second
//! one, the room around it) is WPE's ([`super::dereverb`], which also counts a remaining echo as
//! reverberation).

use rayon::prelude::*;
use realfft::num_complex::Complex;

use super::dereverb::{MEASURED_S, MIN_MEASURED_S};

/// A discrete echo: the recording again, `delay_s` later and `strength` times as loud.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Echo {
    /// Seconds between the sound and its repetition.
    pub delay_s: f32,
    /// The repetition's amplitude relative to the sound (0.32 for an echo 10 dB down).
    pub strength: f32,
}

/// Shortest echo delay looked for (seconds): below it lie the voice's pitch periods and a room's
/// early reflections, which WPE leaves alone anyway.
const MIN_DELAY_S: f64 = 0.04;
/// Longest echo delay looked for (seconds): the dereverberation's predictor reaches 32–510 ms back.
const MAX_DELAY_S: f64 = 0.48;
/// An echo at least this strong (its amplitude relative to the sound: −20 dB) ...
const MIN_STRENGTH: f32 = 0.1;
/// ... and this many times the largest cepstral magnitude at other delays in the range is one to
/// remove. On `recipes/robust`'s sets (models/README.md, "Echoes"): every recording of the `echo` condition
/// of 2 s or more (8–14 dB down, 100–250 ms late: strengths 0.2–0.4, ratios 7–30); none of the real
/// sets' clean recordings (strongest 0.04) nor any in rooms, with reverberation, noise, music,
/// another talker, clicks or a telephone line (strongest 0.12, in a simulated room, at a ratio below
/// 4); no non-speech file (a melody of identical plucked notes: 0.29 at a ratio of 3, the notes
/// repeating sample for sample); 3 of 200 synthetic dev utterances, whose synthesiser repeats
/// stretches of waveform sample for sample.
const MIN_RATIO: f32 = 4.0;

/// ... and each half of the recording alone has at least this share of it at the same delay.
const MIN_HALF_SHARE: f32 = 0.25;

/// Spectral bins more than this far (dB) below the mean power are raised to it before the log:
/// an empty band (telephone audio resampled to 16 kHz) then adds no structure.
const FLOOR_DB: f64 = 40.0;

/// Whether the first 30 s of `samples` hold a discrete echo to remove: [`strongest_echo`] at least
/// 0.1 (20 dB down), 4 times anything else at the delays looked for, and in each half alone at a
/// quarter of its height or more.
pub fn has_echo(samples: &[f32], sample_rate_hz: u32) -> bool {
    strongest_echo(samples, sample_rate_hz).is_some_and(is_to_remove)
}

/// [`has_echo`]'s rule: strong enough, standing out, and in both halves.
fn is_to_remove(measure: EchoMeasure) -> bool {
    let strength = measure.echo.strength;
    stands_out(strength, measure.elsewhere)
        && measure
            .halves
            .is_some_and(|halves| halves.iter().all(|&half| half >= MIN_HALF_SHARE * strength))
}

/// The first two tests of [`has_echo`]'s rule: strong enough, and standing out.
fn stands_out(strength: f32, elsewhere: f32) -> bool {
    strength >= MIN_STRENGTH && strength >= MIN_RATIO * elsewhere
}

/// What [`strongest_echo`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EchoMeasure {
    /// The highest cepstral peak at the delays looked for.
    pub echo: Echo,
    /// The largest cepstral magnitude at other delays (away from the echo's multiples): how much
    /// the echo stands out.
    pub elsewhere: f32,
    /// The cepstrum at the echo's delay in each half of the excerpt alone: an echo repeats the
    /// whole recording, so both halves have it; a synthesiser that repeats a stretch of waveform
    /// sample for sample (espeak-ng's diphones) makes a peak in the whole that one half or both
    /// lack. `None` when the echo is already too weak or does not stand out (the halves are not
    /// measured: most recordings).
    pub halves: Option<[f32; 2]>,
}

/// The strongest discrete echo in the first 30 s of `samples` ([`EchoMeasure`]), from their power
/// cepstrum: a recording heard again `D` seconds later at `a` times its amplitude has
/// `log |1 + a e^(−iωD)|²` added to its log spectrum, a ripple whose cepstrum is a peak of height
/// ≈ `a` at quefrency `D`. Dry speech over seconds has no such repetition; a room's reflections
/// spread over many quefrencies; a hum or a held note repeats at every multiple of its period, so
/// its peaks come in combs, which [`has_echo`] passes over. `None` for recordings shorter than
/// [`MIN_MEASURED_S`] or without energy.
pub fn strongest_echo(samples: &[f32], sample_rate_hz: u32) -> Option<EchoMeasure> {
    let rate = f64::from(sample_rate_hz);
    if (samples.len() as f64) < MIN_MEASURED_S * rate {
        return None;
    }
    let excerpt = &samples[..samples.len().min((MEASURED_S * rate) as usize)];
    let lag = |s: f64| (s * rate).round() as usize;
    let reach = lag(MAX_DELAY_S) + lag(0.01);
    let cepstrum = power_cepstrum(excerpt, reach)?;
    let (low, high) = (
        lag(MIN_DELAY_S),
        lag(MAX_DELAY_S).min(cepstrum.len() / 2 - 1),
    );
    let (peak_at, peak) = (low..=high)
        .map(|q| (q, cepstrum[q]))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    // The largest magnitude elsewhere in the range, away from the peak and its multiples (an echo
    // adds −a²/2 at 2D, a³/3 at 3D).
    let guard = lag(0.0015).max(1);
    let near_multiple = |q: usize| {
        (1..=4).any(|k| (q as i64 - (k * peak_at) as i64).unsigned_abs() as usize <= guard)
    };
    let elsewhere = (low..=high)
        .filter(|&q| !near_multiple(q))
        .map(|q| cepstrum[q].abs())
        .fold(0.0f32, f32::max);
    let (first, second) = excerpt.split_at(excerpt.len() / 2);
    let at_peak = |half: &[f32]| {
        power_cepstrum(half, reach).map_or(0.0, |c| {
            // The peak may fall a sample either side in a shorter transform.
            (peak_at.saturating_sub(1)..=peak_at + 1)
                .filter_map(|q| c.get(q).copied())
                .fold(f32::MIN, f32::max)
        })
    };
    Some(EchoMeasure {
        echo: Echo {
            delay_s: (peak_at as f64 / rate) as f32,
            strength: peak,
        },
        elsewhere,
        halves: stands_out(peak, elsewhere).then(|| [at_peak(first), at_peak(second)]),
    })
}

/// The power cepstrum of `excerpt` (its mean removed, zero-padded by at least `reach` samples so
/// that a repetition up to that far apart is linear, not circular), normalised so that an echo of
/// amplitude `a` peaks at `a`; `None` without energy. (Padded by `reach`, not to twice the length:
/// an hour's 120 transforms of 2^19 points, not 2^20, half the cost.)
fn power_cepstrum(excerpt: &[f32], reach: usize) -> Option<Vec<f32>> {
    if excerpt.is_empty() {
        return None;
    }
    let n = (excerpt.len() + reach).next_power_of_two();
    let forward = crate::util::fft_plans::forward(n);
    let inverse = crate::util::fft_plans::inverse(n);
    let mut buffer = vec![0.0f32; n];
    let mean = excerpt.iter().map(|&x| f64::from(x)).sum::<f64>() / excerpt.len() as f64;
    for (b, &x) in buffer.iter_mut().zip(excerpt) {
        *b = (f64::from(x) - mean) as f32;
    }
    let mut spectrum = forward.make_output_vec();
    forward.process(&mut buffer, &mut spectrum).ok()?;
    let power: Vec<f64> = spectrum.iter().map(|c| f64::from(c.norm_sqr())).collect();
    let mean_power = power.iter().sum::<f64>() / power.len() as f64;
    if mean_power <= 0.0 || !mean_power.is_finite() {
        return None;
    }
    let floor = mean_power * 10f64.powf(-FLOOR_DB / 10.0);
    let mut log_power: Vec<Complex<f32>> = power
        .iter()
        .map(|&p| Complex::new(p.max(floor).ln() as f32, 0.0))
        .collect();
    inverse.process(&mut log_power, &mut buffer).ok()?;
    // realfft's inverse is unnormalised.
    Some(buffer.iter().map(|&c| c / n as f32).collect())
}

/// The strongest echo's amplitude is capped at this before it is inverted: the inverse comb's
/// feedback must decay (an echo as loud as the sound cannot be undone this way).
const MAX_CANCELLED_STRENGTH: f32 = 0.9;

/// `samples` with the echo of each 30 s section that [`has_echo`] undone by the inverse comb
/// `x[n] = y[n] − a·x[n − D]` ([`strongest_echo`]'s delay `D` and strength `a`, the section's
/// own), the sections in order so that each reads the ones before it as already cancelled; a last
/// section too short to measure goes with the one before. `None` when no section has an echo.
pub fn cancel_echoes(samples: &[f32], sample_rate_hz: u32) -> Option<Vec<f32>> {
    cancel_echoes_by_section(samples, sample_rate_hz).0
}

/// [`cancel_echoes`], and for each 30 s section whether an echo was cancelled in it.
pub(crate) fn cancel_echoes_by_section(
    samples: &[f32],
    sample_rate_hz: u32,
) -> (Option<Vec<f32>>, Vec<bool>) {
    let section = ((MEASURED_S * f64::from(sample_rate_hz)) as usize).max(1);
    // Measured in parallel, decided in order.
    let measured: Vec<Option<EchoMeasure>> = samples
        .par_chunks(section)
        .map(|part| strongest_echo(part, sample_rate_hz))
        .collect();
    let mut found: Vec<Option<Echo>> = Vec::new();
    for measure in measured {
        let echo = match measure {
            Some(measure) => is_to_remove(measure).then_some(measure.echo),
            None => found.last().copied().flatten(),
        };
        found.push(echo);
    }
    let cancelled: Vec<bool> = found.iter().map(Option::is_some).collect();
    if !cancelled.contains(&true) {
        return (None, cancelled);
    }
    let mut out = samples.to_vec();
    for (index, echo) in found.iter().enumerate() {
        let Some(echo) = echo else { continue };
        let delay = (f64::from(echo.delay_s) * f64::from(sample_rate_hz)).round() as usize;
        let strength = echo.strength.min(MAX_CANCELLED_STRENGTH);
        let end = ((index + 1) * section).min(out.len());
        for n in (index * section).max(delay)..end {
            out[n] -= strength * out[n - delay];
        }
    }
    (Some(out), cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const RATE: u32 = 16_000;

    /// Syllable-like: noise under an envelope that rises and falls four times a second.
    fn syllables(seconds: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..seconds * RATE as usize)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                let envelope = 0.1 + (2.0 * std::f32::consts::PI * 2.0 * t).sin().abs();
                envelope * rng.gen_range(-3000.0..3000.0)
            })
            .collect()
    }

    /// `x` with a copy `delay_s` later at `gain` times its amplitude.
    fn with_echo(x: &[f32], delay_s: f64, gain: f32) -> Vec<f32> {
        let delay = (delay_s * f64::from(RATE)) as usize;
        (0..x.len())
            .map(|i| x[i] + if i >= delay { gain * x[i - delay] } else { 0.0 })
            .collect()
    }

    /// Energy of `x − y` relative to that of `y`, in dB.
    fn error_db(x: &[f32], y: &[f32]) -> f64 {
        let e: f64 = x.iter().zip(y).map(|(a, b)| f64::from(a - b).powi(2)).sum();
        let r: f64 = y.iter().map(|&b| f64::from(b).powi(2)).sum();
        10.0 * (e / r).log10()
    }

    #[test]
    fn a_discrete_echo_is_found_and_cancelled() {
        let mut rng = StdRng::seed_from_u64(11);
        let dry = syllables(6, &mut rng);
        assert!(!has_echo(&dry, RATE));
        assert!(cancel_echoes(&dry, RATE).is_none());
        for (delay_s, gain) in [(0.06, 0.5), (0.15, 0.316), (0.25, 0.2), (0.4, 0.15)] {
            let echoed = with_echo(&dry, delay_s, gain);
            let measure = strongest_echo(&echoed, RATE).expect("6 s is measured");
            let (echo, elsewhere) = (measure.echo, measure.elsewhere);
            assert!(
                measure
                    .halves
                    .expect("measured")
                    .iter()
                    .all(|&h| (h - gain).abs() < 0.05),
                "{measure:?}"
            );
            assert!((f64::from(echo.delay_s) - delay_s).abs() < 1e-3, "{echo:?}");
            assert!((echo.strength - gain).abs() < 0.03, "{echo:?}");
            assert!(echo.strength > 5.0 * elsewhere, "{echo:?}: {elsewhere}");
            assert!(has_echo(&echoed, RATE));
            // Undone to within the strength's estimate: the echo, 6-16 dB under the sound, ends
            // more than 25 dB under it.
            let cancelled = cancel_echoes(&echoed, RATE).expect("an echo");
            assert!(error_db(&echoed, &dry) > -17.0);
            let left = error_db(&cancelled, &dry);
            assert!(left < -25.0, "{delay_s} s: {left} dB");
        }
        // An echo 26 dB down is left alone; so is a recording too short to measure.
        assert!(!has_echo(&with_echo(&dry, 0.2, 0.05), RATE));
        let short = with_echo(&dry[..RATE as usize], 0.2, 0.5);
        assert!(strongest_echo(&short, RATE).is_none() && cancel_echoes(&short, RATE).is_none());
    }

    #[test]
    fn rooms_combs_and_two_echoes_are_not_one_echo() {
        let mut rng = StdRng::seed_from_u64(12);
        let dry = syllables(6, &mut rng);
        // A room's tail: exponentially decaying noise from 5 ms on (0.6 s to fall 60 dB).
        let tail: Vec<f32> = (0..(0.6 * f64::from(RATE)) as usize)
            .map(|i| match i {
                0 => 1.0,
                i if i < 80 => 0.0,
                i => {
                    0.3 * (-(6.9 * i as f32 / (0.6 * RATE as f32))).exp()
                        * rng.gen_range(-1.0f32..1.0)
                }
            })
            .collect();
        let mut wet = vec![0.0f32; dry.len()];
        for (i, &x) in dry.iter().enumerate() {
            for (j, &h) in tail.iter().enumerate().take(dry.len() - i) {
                wet[i + j] += x * h;
            }
        }
        assert!(!has_echo(&wet, RATE));
        // A hum with its harmonics and noise repeats at every multiple of its period: a comb.
        let hum: Vec<f32> = (0..6 * RATE as usize)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                (1..=8)
                    .map(|h| {
                        2000.0 / h as f32 * (2.0 * std::f32::consts::PI * 60.0 * h as f32 * t).sin()
                    })
                    .sum::<f32>()
                    + rng.gen_range(-300.0..300.0)
            })
            .collect();
        assert!(!has_echo(&hum, RATE));
        // Two echoes of like strength: no single one stands out, and the inverse comb of one
        // would leave the other (WPE's case).
        let two = with_echo(&with_echo(&dry, 0.11, 0.3), 0.23, 0.2);
        assert!(!has_echo(&two, RATE));
    }

    #[test]
    fn each_30_s_section_is_cancelled_with_its_own_echo_or_left_alone() {
        let mut rng = StdRng::seed_from_u64(13);
        let dry = syllables(70, &mut rng);
        let section = 30 * RATE as usize;
        // Dry for the first 30 s, then an echo 150 ms late for the rest (and a last 10 s too short
        // to measure alone, which goes with the section before it).
        let mut recording = dry[..section].to_vec();
        recording.extend(with_echo(&dry, 0.15, 0.4)[section..].iter());
        let cancelled = cancel_echoes(&recording, RATE).expect("an echo after 30 s");
        assert_eq!(cancelled[..section], recording[..section]);
        assert!(error_db(&cancelled[section..], &dry[section..]) < -25.0);
    }
}
