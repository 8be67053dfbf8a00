//! A telephone channel for training: 8 kHz, a band-pass whose edges vary as real lines and handsets
//! do (about 200–400 Hz to 3.1–3.8 kHz, sharp as a G.712 channel filter or gentle), then one of the
//! codecs users' telephone recordings went through: G.711 μ-law or A-law, a GSM full-rate-like
//! RPE-LTP coder, or none.
//!
//! Measured before this existed (default-v8 on the recipe's `tel8k` sets): a sharp 300–3400 Hz
//! band-pass alone cost 3–8 PER points against plain 8 kHz audio, GSM another 2–5; the old channel (a
//! gentle 300 Hz high-pass, μ/A-law only) taught neither.
//!
//! All samples are int16-scale (±32768).

use rand::Rng;

use crate::audio::Resampler;

/// Full scale of int16-scale samples.
const FULL_SCALE: f32 = 32768.0;

/// The telephone network's sampling rate.
const PHONE_RATE: u32 = 8000;

/// One pass through a random telephone channel, back at the input rate and length. Input at or below
/// 8 kHz is returned unchanged.
pub fn telephone(samples: &[f32], sample_rate_hz: u32, rng: &mut impl Rng) -> Vec<f32> {
    if sample_rate_hz <= PHONE_RATE {
        return samples.to_vec();
    }
    let (Ok(down), Ok(up)) = (
        Resampler::new(sample_rate_hz, PHONE_RATE),
        Resampler::new(PHONE_RATE, sample_rate_hz),
    ) else {
        return samples.to_vec();
    };
    let mut narrow = down.process(samples);
    let rate = PHONE_RATE as f32;
    if rng.gen_bool(0.25) {
        // A gentle channel: only the handset's low cut (the 8 kHz rate limits the top).
        high_pass(&mut narrow, rng.gen_range(150.0..400.0), rate);
    } else {
        let low = rng.gen_range(200.0..400.0);
        let high = rng.gen_range(3100.0..3800.0);
        let taps = if rng.gen_bool(0.5) { 255 } else { 95 };
        narrow = band_pass(&narrow, low, high, rate, taps);
    }
    match rng.gen_range(0..4) {
        0 => narrow.iter_mut().for_each(|x| *x = mu_law(*x)),
        1 => narrow.iter_mut().for_each(|x| *x = a_law(*x)),
        2 => narrow = gsm_like(&narrow),
        _ => {}
    }
    let mut out = up.process(&narrow);
    out.resize(samples.len(), 0.0);
    out
}

/// Zero-phase FIR band-pass (Blackman-windowed sinc, `taps` odd) from `low_hz` to `high_hz`; the
/// output is aligned with the input and has its length.
pub fn band_pass(x: &[f32], low_hz: f32, high_hz: f32, rate_hz: f32, taps: usize) -> Vec<f32> {
    let taps = taps | 1;
    let centre = (taps / 2) as isize;
    let sinc_low_pass = |cutoff: f32, n: isize| {
        let fc = cutoff / rate_hz;
        if n == 0 {
            2.0 * fc
        } else {
            let t = std::f32::consts::PI * n as f32;
            (2.0 * fc * t).sin() / t
        }
    };
    let h: Vec<f32> = (0..taps)
        .map(|k| {
            let n = k as isize - centre;
            let phase = std::f32::consts::TAU * k as f32 / (taps - 1) as f32;
            let window = 0.42 - 0.5 * phase.cos() + 0.08 * (2.0 * phase).cos();
            (sinc_low_pass(high_hz, n) - sinc_low_pass(low_hz, n)) * window
        })
        .collect();
    (0..x.len() as isize)
        .map(|i| {
            h.iter()
                .enumerate()
                .filter_map(|(k, &c)| {
                    let j = i + centre - k as isize;
                    x.get(usize::try_from(j).ok()?).map(|&v| v * c)
                })
                .sum()
        })
        .collect()
}

/// Second-order Butterworth high-pass (RBJ biquad) in place.
pub fn high_pass(x: &mut [f32], cutoff_hz: f32, rate_hz: f32) {
    let w0 = std::f32::consts::TAU * cutoff_hz / rate_hz;
    let alpha = w0.sin() / std::f32::consts::SQRT_2;
    let cos = w0.cos();
    let a0 = 1.0 + alpha;
    let b0 = (1.0 + cos) / 2.0 / a0;
    let b1 = -(1.0 + cos) / a0;
    let b2 = b0;
    let a1 = -2.0 * cos / a0;
    let a2 = (1.0 - alpha) / a0;
    let (mut x1, mut x2, mut y1, mut y2) = (0f32, 0f32, 0f32, 0f32);
    for v in x.iter_mut() {
        let y = b0 * *v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
        x2 = x1;
        x1 = *v;
        y2 = y1;
        y1 = y;
        *v = y;
    }
}

/// Encode and decode one sample with 8-bit μ-law (G.711, μ = 255).
pub fn mu_law(x: f32) -> f32 {
    const MU: f32 = 255.0;
    let v = (x / FULL_SCALE).clamp(-1.0, 1.0);
    let coded = v.signum() * (1.0 + MU * v.abs()).ln() / (1.0 + MU).ln();
    let quantised = (coded * 127.0).round() / 127.0;
    quantised.signum() * ((1.0 + MU).powf(quantised.abs()) - 1.0) / MU * FULL_SCALE
}

/// Encode and decode one sample with 8-bit A-law (G.711, A = 87.6).
pub fn a_law(x: f32) -> f32 {
    const A: f32 = 87.6;
    let ln_a = 1.0 + A.ln();
    let v = (x / FULL_SCALE).clamp(-1.0, 1.0);
    let m = v.abs();
    let coded = if m < 1.0 / A {
        A * m / ln_a
    } else {
        (1.0 + (A * m).ln()) / ln_a
    };
    let q = (coded * 127.0).round() / 127.0;
    let decoded = if q < 1.0 / ln_a {
        q * ln_a / A
    } else {
        ((q * ln_a - 1.0).exp()) / A
    };
    v.signum() * decoded * FULL_SCALE
}

/// Samples per GSM frame (20 ms at 8 kHz) and per sub-frame.
const GSM_FRAME: usize = 160;
const GSM_SUBFRAME: usize = 40;
/// Order of the short-term predictor.
const GSM_ORDER: usize = 8;
/// Pre-emphasis coefficient (28180 / 32768 in GSM 06.10).
const PRE_EMPHASIS: f32 = 0.86;
/// Log-area-ratio quantisers of GSM 06.10 (A, B, smallest and largest code per coefficient).
const LAR_A: [f32; GSM_ORDER] = [20.0, 20.0, 20.0, 20.0, 13.637, 15.0, 8.334, 8.824];
const LAR_B: [f32; GSM_ORDER] = [0.0, 0.0, 4.0, -5.0, 0.184, -3.5, -0.666, -2.235];
const LAR_MIN: [f32; GSM_ORDER] = [-32.0, -32.0, -16.0, -16.0, -8.0, -8.0, -4.0, -4.0];
const LAR_MAX: [f32; GSM_ORDER] = [31.0, 31.0, 15.0, 15.0, 7.0, 7.0, 3.0, 3.0];
/// Long-term predictor gains (GSM 06.10's QLB) and the decision thresholds between them.
const LTP_GAINS: [f32; 4] = [0.1, 0.35, 0.65, 1.0];
const LTP_THRESHOLDS: [f32; 3] = [0.2, 0.5, 0.8];
/// The RPE weighting filter (GSM 06.10's H, scaled by 1/8192).
const RPE_WEIGHTING: [f32; 11] = [
    -134.0, -374.0, 0.0, 2054.0, 5741.0, 8192.0, 5741.0, 2054.0, 0.0, -374.0, -134.0,
];

/// An RPE-LTP coder after GSM 06.10 full rate, in floating point: per 20 ms frame an 8th-order
/// short-term predictor (reflection coefficients quantised as GSM's log-area ratios), per 5 ms
/// sub-frame a long-term predictor (lag 40–120, gain one of four) and a residual kept only on every
/// third sample (the best of four grids) with 3-bit block-adaptive quantisation. It is not
/// bit-exact to the standard (no LAR interpolation, simpler block-maximum coding) but makes the
/// same kinds of damage: a coarse, pulse-excited residual shaped by a quantised spectral envelope.
/// On `audio/slt_dark_suit_16k.wav` at 8 kHz its waveform SNR is 18.6 dB, sox's GSM 06.10 round trip
/// 18.8 dB.
pub fn gsm_like(x: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    // Encoder and decoder state carried across frames.
    let mut previous_input = 0.0f32;
    let mut analysis_history = [0.0f32; GSM_ORDER];
    let mut synthesis_history = [0.0f32; GSM_ORDER];
    let mut residual_history = vec![0.0f32; 120];
    let mut de_emphasis = 0.0f32;
    for frame in x.chunks(GSM_FRAME) {
        let mut s = [0.0f32; GSM_FRAME];
        for (slot, &v) in s.iter_mut().zip(frame) {
            *slot = v - PRE_EMPHASIS * previous_input;
            previous_input = v;
        }
        let a = quantised_predictor(&s);
        // Short-term analysis: d[n] = s[n] + Σ a_i s[n-i].
        let mut d = [0.0f32; GSM_FRAME];
        for n in 0..GSM_FRAME {
            let mut e = s[n];
            for i in 0..GSM_ORDER {
                e += a[i] * analysis_history[i];
            }
            analysis_history.rotate_right(1);
            analysis_history[0] = s[n];
            d[n] = e;
        }
        let mut reconstructed = [0.0f32; GSM_FRAME];
        for (sub, rebuilt) in d
            .chunks(GSM_SUBFRAME)
            .zip(reconstructed.chunks_mut(GSM_SUBFRAME))
        {
            code_subframe(sub, &mut residual_history, rebuilt);
        }
        // Short-term synthesis: y[n] = d'[n] - Σ a_i y[n-i], then de-emphasis.
        for &r in reconstructed.iter().take(frame.len()) {
            let mut y = r;
            for i in 0..GSM_ORDER {
                y -= a[i] * synthesis_history[i];
            }
            synthesis_history.rotate_right(1);
            synthesis_history[0] = y;
            de_emphasis = y + PRE_EMPHASIS * de_emphasis;
            out.push(de_emphasis.clamp(-FULL_SCALE, FULL_SCALE - 1.0));
        }
    }
    out
}

/// The frame's predictor coefficients a_1..a_8 (d[n] = s[n] + Σ a_i s[n-i]) after quantising the
/// reflection coefficients as GSM 06.10 does.
fn quantised_predictor(s: &[f32; GSM_FRAME]) -> [f32; GSM_ORDER] {
    let mut r = [0.0f64; GSM_ORDER + 1];
    for (lag, slot) in r.iter_mut().enumerate() {
        *slot = (lag..GSM_FRAME)
            .map(|n| f64::from(s[n]) * f64::from(s[n - lag]))
            .sum();
    }
    let mut reflection = [0.0f32; GSM_ORDER];
    if r[0] > 0.0 {
        // Levinson–Durbin for the reflection coefficients.
        let mut a = [0.0f64; GSM_ORDER + 1];
        a[0] = 1.0;
        let mut error = r[0] * (1.0 + 1e-9);
        for i in 1..=GSM_ORDER {
            let acc: f64 = (0..i).map(|j| a[j] * r[i - j]).sum();
            let k = (-acc / error).clamp(-0.999, 0.999);
            let previous = a;
            for j in 1..i {
                a[j] = previous[j] + k * previous[i - j];
            }
            a[i] = k;
            error *= 1.0 - k * k;
            reflection[i - 1] = k as f32;
            if error <= 0.0 {
                break;
            }
        }
    }
    // Quantise each reflection coefficient through its log-area ratio (GSM's piecewise form).
    for (i, k) in reflection.iter_mut().enumerate() {
        let m = k.abs();
        let lar = if m < 0.675 {
            m
        } else if m < 0.950 {
            2.0 * m - 0.675
        } else {
            8.0 * m - 6.375
        };
        let code = (LAR_A[i] * lar.copysign(*k) + LAR_B[i])
            .round()
            .clamp(LAR_MIN[i], LAR_MAX[i]);
        let lar = (code - LAR_B[i]) / LAR_A[i];
        let m = lar.abs();
        let decoded = if m < 0.675 {
            m
        } else if m < 1.225 {
            (m + 0.675) / 2.0
        } else {
            (m + 6.375) / 8.0
        };
        *k = decoded.min(0.999).copysign(lar);
    }
    // Step up from reflection coefficients to direct-form coefficients.
    let mut a = [0.0f32; GSM_ORDER + 1];
    a[0] = 1.0;
    for (i, &k) in reflection.iter().enumerate() {
        let i = i + 1;
        let previous = a;
        for j in 1..i {
            a[j] = previous[j] + k * previous[i - j];
        }
        a[i] = k;
    }
    let mut coefficients = [0.0f32; GSM_ORDER];
    coefficients.copy_from_slice(&a[1..]);
    coefficients
}

/// Code one 40-sample sub-frame of the short-term residual `d`: long-term prediction from the
/// reconstructed past (`history`, the last 120 samples, updated here), RPE grid and 3-bit APCM of what
/// is left. Writes the decoder's reconstructed residual to `rebuilt`.
fn code_subframe(d: &[f32], history: &mut Vec<f32>, rebuilt: &mut [f32]) {
    let len = d.len();
    let past = history.len();
    // Long-term predictor: the lag of highest correlation, its gain quantised.
    let (mut best_lag, mut best_corr) = (40usize, 0.0f32);
    for lag in 40..=120 {
        let corr: f32 = (0..len).map(|k| d[k] * history[past + k - lag]).sum();
        if corr > best_corr {
            best_corr = corr;
            best_lag = lag;
        }
    }
    let power: f32 = (0..len).map(|k| history[past + k - best_lag].powi(2)).sum();
    let ratio = if power > 0.0 { best_corr / power } else { 0.0 };
    let gain = LTP_GAINS[LTP_THRESHOLDS.iter().filter(|&&t| ratio > t).count()];
    let prediction: Vec<f32> = (0..len)
        .map(|k| gain * history[past + k - best_lag])
        .collect();
    let e: Vec<f32> = d.iter().zip(&prediction).map(|(a, b)| a - b).collect();
    // Weighting filter, then the grid (offset 0..3, every third sample) of most energy.
    let weighted: Vec<f32> = (0..len)
        .map(|k| {
            RPE_WEIGHTING
                .iter()
                .enumerate()
                .filter_map(|(j, &h)| {
                    let at = (k + j).checked_sub(5)?;
                    e.get(at).map(|&v| v * h / 8192.0)
                })
                .sum()
        })
        .collect();
    let grid = (0..4)
        .max_by(|&a, &b| {
            let energy =
                |m: usize| -> f32 { weighted.iter().skip(m).step_by(3).map(|v| v * v).sum() };
            energy(a).total_cmp(&energy(b))
        })
        .unwrap_or(0);
    // Block-adaptive quantisation: the block maximum on a log scale (4 steps per octave), each pulse
    // with 3 bits relative to it.
    let maximum = weighted
        .iter()
        .skip(grid)
        .step_by(3)
        .fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = if maximum > 0.5 {
        2f32.powf((4.0 * maximum.log2()).ceil() / 4.0)
    } else {
        0.0
    };
    rebuilt.iter_mut().for_each(|v| *v = 0.0);
    if scale > 0.0 {
        for k in (grid..len).step_by(3) {
            let level = ((weighted[k] / scale * 4.0 + 4.0).floor()).clamp(0.0, 7.0);
            rebuilt[k] = (2.0 * level - 7.0) / 8.0 * scale;
        }
    }
    for (v, p) in rebuilt.iter_mut().zip(&prediction) {
        *v += p;
    }
    history.drain(..len);
    history.extend_from_slice(rebuilt);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::test_signals::tone;
    use rand::{rngs::StdRng, SeedableRng};

    fn power(x: &[f32]) -> f64 {
        x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64
    }

    /// A vowel-like test signal at 8 kHz: a 120 Hz pulse train through two resonances.
    fn vowel(len: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; len];
        let resonances = [(700.0f32, 80.0f32), (1200.0, 100.0)];
        let mut x: Vec<f32> = (0..len)
            .map(|n| if n % 67 == 0 { 3000.0 } else { 0.0 })
            .collect();
        for (f, bw) in resonances {
            let r = (-std::f32::consts::PI * bw / 8000.0).exp();
            let c = 2.0 * r * (std::f32::consts::TAU * f / 8000.0).cos();
            let (mut y1, mut y2) = (0.0f32, 0.0f32);
            for (n, v) in x.iter().enumerate() {
                let out = v + c * y1 - r * r * y2;
                y2 = y1;
                y1 = out;
                y[n] = out;
            }
            x.copy_from_slice(&y);
        }
        let peak = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        y.iter().map(|v| v / peak * 12000.0).collect()
    }

    #[test]
    fn the_channel_keeps_the_voice_band_and_removes_the_rest() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..6 {
            for (freq, passes) in [(1000.0, true), (6000.0, false), (60.0, false)] {
                let x = tone(16_000, freq, 16_000.0);
                let out = telephone(&x, 16_000, &mut rng);
                assert_eq!(out.len(), x.len());
                let ratio = power(&out[4000..12_000]) / power(&x[4000..12_000]);
                if passes {
                    assert!(ratio > 0.5 && ratio < 1.6, "{freq} Hz: {ratio}");
                } else {
                    assert!(ratio < 0.2, "{freq} Hz: {ratio}");
                }
            }
        }
    }

    #[test]
    fn band_pass_is_sharp_and_aligned() {
        let rate = 8000.0;
        for (freq, gain_low, gain_high) in [
            (1000.0, 0.95, 1.05),
            (3700.0, 0.0, 0.01),
            (150.0, 0.0, 0.01),
        ] {
            let x = tone(8000, freq, rate);
            let y = band_pass(&x, 300.0, 3400.0, rate, 255);
            let ratio = power(&y[1000..7000]) / power(&x[1000..7000]);
            assert!(
                ratio >= gain_low && ratio <= gain_high,
                "{freq} Hz: {ratio}"
            );
        }
        // Zero phase: an in-band tone comes out where it went in.
        let x = tone(8000, 1000.0, rate);
        let y = band_pass(&x, 300.0, 3400.0, rate, 255);
        let error = x[1000..7000]
            .iter()
            .zip(&y[1000..7000])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(error < 400.0, "{error}");
    }

    #[test]
    fn companding_round_trips_within_a_quantisation_step() {
        for x in [-30000.0f32, -1000.0, -10.0, 0.0, 5.0, 700.0, 20000.0] {
            let (mu, a) = (mu_law(x), a_law(x));
            let tolerance = 0.06 * x.abs() + 20.0;
            assert!((mu - x).abs() <= tolerance, "mu-law {x} -> {mu}");
            assert!((a - x).abs() <= tolerance, "A-law {x} -> {a}");
        }
    }

    #[test]
    fn gsm_like_keeps_a_voice_recognisable_but_damaged() {
        let x = vowel(8000);
        let y = gsm_like(&x);
        assert_eq!(y.len(), x.len());
        assert!(y.iter().all(|v| v.is_finite()));
        // Level about kept; the waveform follows the input with coding noise: a speech codec's
        // SNR, neither transparent nor destroyed.
        let (px, py) = (power(&x[800..]), power(&y[800..]));
        assert!(py / px > 0.3 && py / px < 3.0, "power ratio {}", py / px);
        let noise: Vec<f32> = x[800..].iter().zip(&y[800..]).map(|(a, b)| a - b).collect();
        let snr = 10.0 * (px / power(&noise)).log10();
        assert!(snr > 3.0 && snr < 30.0, "SNR {snr} dB");
        // Silence stays silence.
        assert!(gsm_like(&[0.0; 480]).iter().all(|&v| v == 0.0));
    }
}
