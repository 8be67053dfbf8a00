//! Dereverberation before the features: single-channel weighted prediction error (WPE).
//!
//! In a room, every sound arrives again and again from the walls for a few hundred milliseconds;
//! the network, trained mostly on close-talking speech, hears the smeared tails as extra phones or
//! loses the quiet consonants under the previous vowel's reverberation (a simulated room costs it
//! 20–30 points of PER, models/README.md "default-v14"). WPE (Nakatani et al. 2010, "Speech
//! dereverberation based on variance-normalized delayed linear prediction"; Yoshioka & Nakatani
//! 2012) removes the late reverberation: in each frequency bin of an STFT, the part of the current
//! frame that is predictable from the frames 32–510 ms earlier is the room's tail, not new speech,
//! and is subtracted. The predictor is fitted by least squares weighted by the inverse of the
//! dereverberated frame's power (speech is sparse, so loud frames must not dominate the fit), which
//! is re-estimated over a few iterations. The direct sound and early reflections (within `delay`
//! frames) are kept, so the speech's own spectrum is not whitened.
//!
//! On dry speech there is little to predict at that distance and WPE changes little, but not
//! nothing (`--dereverb on` costs the clean sets 0.4–2.1 points of PER; simulated rooms gain
//! 4.2–8.5 points, sox's reverb 2.8–9.6), so [`reverberation_db`] first measures how much more a
//! short predictor from the recent past removes than the same from the distant past, and the
//! recogniser dereverberates only recordings where that is more than [`REVERBERANT_BELOW_DB`]
//! ([`Dereverb::Auto`], [`is_reverberant`]); a recording longer than 30 s is measured and
//! dereverberated section by section ([`dereverberate_reverberant_sections`]).
//!
//! A discrete echo (the recording again 40–480 ms later) is a room with one reflection, but the
//! reverberation measure hardly sees it (−0.002 to −0.05 dB), and WPE removes only part of it (the
//! echo's cepstral peak 0.31 → 0.13–0.17): `--dereverb auto` first cancels it with its inverse
//! filter ([`super::echo`]), then counts an echo still standing ([`has_echo`]) as reverberation.

use ndarray::{s, Array1, ArrayView1};
use rayon::prelude::*;
use realfft::num_complex::Complex;

use super::echo::has_echo;
use super::stft::{Stft, Synthesis};

/// When the recogniser dereverberates (`transcribe --dereverb`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dereverb {
    /// Never.
    Off,
    /// Where [`reverberation_db`] says the recording is reverberant, 30 s by 30 s (the default; see
    /// [`dereverberate_reverberant_sections`]).
    #[default]
    Auto,
    /// Always.
    On,
}

/// [`reverberation_db`] below this (dB): reverberant enough to dereverberate.
pub const REVERBERANT_BELOW_DB: f32 = -0.06;

/// Recordings shorter than this (seconds) are not measured: too few frames for the predictor's
/// fit to say anything about the room (it explains part of any short signal by chance).
pub const MIN_MEASURED_S: f64 = 2.0;

/// At most this much of the recording (seconds, from its start) is measured.
pub(crate) const MEASURED_S: f64 = 30.0;

/// The measurement is made on blocks of at most this many seconds and averaged: over longer
/// stretches one predictor fits several rooms (joined recordings) poorly and the figure fades (20
/// room recordings joined: −0.11 to −0.43 dB in every 10 s block, −0.04 over the first 30 s).
const MEASURED_BLOCK_S: f64 = 10.0;

/// Dereverberation works on chunks of at most this many seconds, each with its own predictor (a
/// long recording may move between rooms or talkers; memory stays bounded). On 20 room recordings
/// joined into one 159 s file, `--dereverb on` gave PER 0.425 with 30 s chunks, 0.408 with 10 s and
/// 0.393 with 5 s; on the same recordings one by one 0.358, 0.357 and 0.370.
const CHUNK_S: f64 = 10.0;

/// The STFT and predictor of one WPE configuration.
#[derive(Clone, Copy, Debug)]
struct Wpe {
    /// Frame length in seconds (rounded to samples at the recording's rate).
    frame_s: f64,
    /// Frame shift in seconds.
    hop_s: f64,
    /// Frames of the past each bin's predictor uses.
    taps: usize,
    /// Frames skipped before the predicted past begins (the direct sound and early reflections).
    delay: usize,
    /// Re-estimations of the weights.
    iterations: usize,
}

/// The dereverberation itself: frames of 32 ms every 16 ms, a predictor of 30 frames (480 ms)
/// starting 32 ms back, three iterations. Chosen with `--dereverb on` on the simulated rooms of
/// `recipes/robust` (models/README.md, "Dereverberation"): 30 taps against 20 took 0.2 points off
/// the synthetic dev set's `room` PER and 0.7–2.4 off psdata's, librivox's and dc_tts's (held-out
/// +0.1); a delay of one frame (the predicting frame overlapping the predicted one) was 0.2 lower
/// on dev but 1.6–2.1 points higher on psdata and librivox; 5 iterations or 40 taps no better.
/// 16 ms shifts with 20 taps gave the same PER as 8 ms with 40 (`recipes/robust/dereverb_probe.py`)
/// at an eighth of the cost.
const DEREVERB: Wpe = Wpe {
    frame_s: 0.032,
    hop_s: 0.016,
    taps: 30,
    delay: 2,
    iterations: 3,
};

/// A recording is dereverberated with at most one tap per this many frames of it.
const MIN_FRAMES_PER_TAP: usize = 5;

/// Recordings too short for this many taps (0.6 s) are left as they are.
const MIN_TAPS: usize = 8;

/// The measurement: a shorter predictor (160 ms), two iterations.
const MEASURE: Wpe = Wpe {
    frame_s: 0.032,
    hop_s: 0.016,
    taps: 10,
    delay: 2,
    iterations: 2,
};

/// The measurement's reference: the same predictor 0.64 s back, past where a room's tail has died
/// away but not past where a steady sound still repeats itself.
const MEASURE_DISTANT: Wpe = Wpe {
    delay: 40,
    ..MEASURE
};

/// Bins more than this far (dB) below the strongest bin are left out of the measurement (the empty
/// band above a telephone recording's 3.4 kHz, resampled to 16 kHz, holds only the resampler's
/// residue).
const MEASURED_BIN_RANGE_DB: f64 = 60.0;

/// Every this many frequency bins is measured (32 bins at 16 kHz: the measurement runs on every
/// recording; models/README.md's detection figures were measured so).
const MEASURED_BIN_STEP: usize = 8;

/// Frame powers are floored at this fraction of the loudest frame's before they weight the fit
/// (digital silence would otherwise weigh infinitely).
const POWER_FLOOR: f32 = 1e-10;

/// How much more of the recording's energy a predictor from 32–190 ms back removes than one from
/// 0.64–0.8 s back, in dB (negative: reverberant): 10·log10(1 − the median over frequency bins of
/// the difference in the share of energy removed), measured on the first 30 s in blocks of at most
/// 10 s and averaged. A room's tail makes the recent past predict the present, and has died away by
/// the distant past; dry speech is predicted by neither; a steady sound (hum, a held tone) is
/// predicted by both equally, so it does not count as reverberation. On `recipes/robust`'s
/// sets: dry speech −0.016 to +0.013 (with noise at 10 dB down to −0.05), sox's `reverb` −0.03 to
/// −0.40 (medians per set −0.09 to −0.13), simulated rooms −0.10 to −0.59 (medians −0.18 to −0.31).
/// `None` when the recording is shorter than [`MIN_MEASURED_S`] or has no energy.
pub fn reverberation_db(samples: &[f32], sample_rate_hz: u32) -> Option<f32> {
    measure(samples, sample_rate_hz, false)
}

/// Whether [`reverberation_db`] is below [`REVERBERANT_BELOW_DB`] or the recording [`has_echo`]:
/// what `--dereverb auto` asks of every recording. Faster than comparing the figure: when the
/// recent past alone predicts less than half the threshold's share (most dry recordings), the
/// distant predictor is not run, since it can only lower the excess.
pub fn is_reverberant(samples: &[f32], sample_rate_hz: u32) -> bool {
    measure(samples, sample_rate_hz, true)
        .is_some_and(|db| db < REVERBERANT_BELOW_DB || has_echo(samples, sample_rate_hz))
}

/// [`reverberation_db`]; with `stop_early`, the recent predictor's own figure when it is above
/// half the threshold (see [`is_reverberant`]).
fn measure(samples: &[f32], sample_rate_hz: u32, stop_early: bool) -> Option<f32> {
    let rate = f64::from(sample_rate_hz);
    if (samples.len() as f64) < MIN_MEASURED_S * rate {
        return None;
    }
    let excerpt = &samples[..samples.len().min((MEASURED_S * rate) as usize)];
    // In equal blocks of at most MEASURED_BLOCK_S, their figures averaged.
    let blocks = excerpt
        .len()
        .div_ceil((MEASURED_BLOCK_S * rate) as usize)
        .max(1);
    let figures: Vec<f32> = excerpt
        .chunks(excerpt.len().div_ceil(blocks))
        .filter_map(|block| measure_block(block, sample_rate_hz, stop_early))
        .collect();
    if figures.is_empty() {
        return None;
    }
    Some(figures.iter().sum::<f32>() / figures.len() as f32)
}

/// [`measure`] of one block.
fn measure_block(excerpt: &[f32], sample_rate_hz: u32, stop_early: bool) -> Option<f32> {
    // Both count the same frames: those with the distant predictor's whole past in the excerpt
    // (otherwise the distant one loses only for lack of history, and a steady hum, predicted
    // perfectly by both, would count as reverberant).
    let skip = MEASURE_DISTANT.delay + MEASURE_DISTANT.taps - 1;
    let stft = MEASURE.stft(sample_rate_hz);
    // From bin 1: DC is the recording's offset, not its room.
    let bins = stft.some_spectra(excerpt, 0..stft.frames(excerpt.len()), 1, MEASURED_BIN_STEP);
    let recent = MEASURE.energies(&bins, skip);
    let strongest = recent.iter().map(|e| e.0).fold(0.0, f64::max);
    if strongest <= 0.0 {
        return None;
    }
    let floor = strongest * 10f64.powf(-MEASURED_BIN_RANGE_DB / 10.0);
    let measured = |e: &&(f64, f64)| e.0 > floor;
    if stop_early {
        let removed: Vec<f64> = recent
            .iter()
            .filter(measured)
            .map(|&(before, after)| (before - after) / before)
            .collect();
        let db = share_to_db(median(removed)?);
        if db > REVERBERANT_BELOW_DB / 2.0 {
            return Some(db);
        }
    }
    // Both see the same frames: the energies before are the same.
    let distant = MEASURE_DISTANT.energies(&bins, skip);
    // Per bin, the share of its energy that the recent past predicts beyond what the distant past
    // does (fractions, not decibels: a steady sound is predicted almost entirely by both, and the
    // ratio of two tiny residues says nothing).
    let excess: Vec<f64> = recent
        .iter()
        .zip(&distant)
        .filter(|(r, _)| measured(r))
        .map(|(&(before, recent_after), &(_, distant_after))| {
            (distant_after - recent_after) / before
        })
        .collect();
    Some(share_to_db(median(excess)?))
}

/// The median of `values` (`None` if empty).
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let middle = values.len() / 2;
    values.select_nth_unstable_by(middle, f64::total_cmp);
    Some(values[middle])
}

/// A share of energy removed as the level change it makes, in dB.
fn share_to_db(share: f64) -> f32 {
    (10.0 * (1.0 - share.min(0.999)).log10()) as f32
}

/// Remove the late reverberation from a recording (same length and rate; see the module's
/// documentation).
pub fn dereverberate(samples: &[f32], sample_rate_hz: u32) -> Vec<f32> {
    dereverberate_where(samples, sample_rate_hz, |_| true)
}

/// What `--dereverb auto` does: first a discrete echo is cancelled where one is found
/// ([`super::echo::cancel_echoes`], 30 s by 30 s); then a recording up to 30 s long is
/// dereverberated if [`is_reverberant`] (a room, or an echo the inverse comb left standing); a longer
/// one is measured and decided section by section of 30 s, as if each were a recording of its own
/// (a long recording may move between rooms, or start with a dry introduction: measuring only its
/// first 30 s decided the whole of it), a last section too short to measure going with the one
/// before. `None` when there is no echo and nothing measures reverberant (the recording is left as
/// it is).
pub fn dereverberate_reverberant_sections(
    samples: &[f32],
    sample_rate_hz: u32,
) -> Option<Vec<f32>> {
    let (echo_cancelled, cancelled) =
        super::echo::cancel_echoes_by_section(samples, sample_rate_hz);
    let samples = echo_cancelled.as_deref().unwrap_or(samples);
    let section = ((MEASURED_S * f64::from(sample_rate_hz)) as usize).max(1);
    let mut reverberant: Vec<bool> = Vec::new();
    for (index, part) in samples.chunks(section).enumerate() {
        // An echo can be left only where one was cancelled: elsewhere `has_echo` said no already.
        let echo_left = || cancelled[index] && has_echo(part, sample_rate_hz);
        let decision = match measure(part, sample_rate_hz, true) {
            Some(db) => db < REVERBERANT_BELOW_DB || echo_left(),
            None => reverberant.last().copied().unwrap_or(false),
        };
        reverberant.push(decision);
    }
    if !reverberant.iter().any(|&r| r) {
        return echo_cancelled;
    }
    Some(dereverberate_where(samples, sample_rate_hz, |sample| {
        reverberant[(sample / section).min(reverberant.len() - 1)]
    }))
}

/// [`dereverberate`], only the chunks (of about [`CHUNK_S`]) whose middle sample `selected` picks;
/// the others pass through the same analysis and synthesis unfiltered (which gives them back to
/// within rounding), so chunk edges join smoothly.
fn dereverberate_where(
    samples: &[f32],
    sample_rate_hz: u32,
    selected: impl Fn(usize) -> bool,
) -> Vec<f32> {
    let mut wpe = DEREVERB;
    let stft = wpe.stft(sample_rate_hz);
    let frames = stft.frames(samples.len());
    // A predictor with nearly as many taps as there are frames predicts anything, the speech
    // included: short recordings get a shorter one, the shortest none (`--dereverb on` on FSDD's
    // 0.3-0.8 s digits with all 30 taps raised their PER from 0.19 to 0.39).
    wpe.taps = wpe.taps.min(frames / MIN_FRAMES_PER_TAP);
    if wpe.taps < MIN_TAPS {
        return samples.to_vec();
    }
    let chunk_frames = ((CHUNK_S / wpe.hop_s) as usize).max(1);
    let chunks = frames.div_ceil(chunk_frames).max(1);
    let chunk_len = frames.div_ceil(chunks).max(1);
    let history = wpe.delay + wpe.taps - 1;
    let mut synthesis = Synthesis::new(&stft, samples.len());
    let mut start = 0;
    while start < frames {
        let end = (start + chunk_len).min(frames);
        // The chunk's middle frame's centre, as a sample of the recording.
        let middle = (((start + end) / 2) * stft.hop + stft.len / 2).saturating_sub(stft.pad());
        if selected(middle.min(samples.len().saturating_sub(1))) {
            let first = start.saturating_sub(history);
            let bins = stft.spectra(samples, first..end);
            let filtered: Vec<Array1<Complex<f32>>> = bins
                .par_iter()
                .map(|bin| wpe.filter_bin(bin.view(), start - first))
                .collect();
            synthesis.add(&stft, start, &filtered);
        } else {
            synthesis.add(&stft, start, &stft.spectra(samples, start..end));
        }
        start = end;
    }
    synthesis.finish()
}

fn energy(bin: ArrayView1<Complex<f32>>) -> f64 {
    bin.iter().map(|c| f64::from(c.norm_sqr())).sum()
}

impl Wpe {
    /// The STFT this configuration works in at `sample_rate_hz`.
    fn stft(self, sample_rate_hz: u32) -> Stft {
        Stft::from_durations(self.frame_s, self.hop_s, sample_rate_hz)
    }
}

impl Wpe {
    /// For each bin of `bins`, its energy before and after this predictor, counting frames from
    /// `skip` on (earlier ones have no past to be predicted from).
    fn energies(&self, bins: &[Array1<Complex<f32>>], skip: usize) -> Vec<(f64, f64)> {
        bins.par_iter()
            .map(|bin| {
                let skip = skip.min(bin.len());
                let out = self.filter_bin(bin.view(), skip);
                (energy(bin.slice(s![skip..])), energy(out.view()))
            })
            .collect()
    }

    /// One frequency bin's frames `bin[skip..]` dereverberated (`bin[..skip]` is history: it feeds
    /// the predictor but is neither fitted nor returned).
    ///
    /// With `ỹ_t` the delayed frames `y(t − delay − k)`, `k < taps`, and `w_t` the inverse power of
    /// the dereverberated frame, the weights `g` solve `R g = p`, `R = Σ_t w_t ỹ_t ỹ_tᴴ`,
    /// `p = Σ_t w_t ỹ_t conj(y_t)`, and the frame becomes `y_t − gᴴ ỹ_t`. `R` is the expensive part
    /// (frames × taps² per iteration) and has structure: its entry `(i, i + ℓ)` is
    /// `Σ_t w_t z_ℓ(t − delay − i)` with the lag product `z_ℓ(s) = y(s) conj(y(s − ℓ))`, which does
    /// not change between iterations. So the lag products are formed once, and each iteration's `R`
    /// is `taps · (taps + 1) / 2` weighted sums over contiguous frames ([`weighted_lag_sums`]): a
    /// third of the multiplications of forming it from the delayed frames, none of the copying.
    fn filter_bin(&self, bin: ArrayView1<Complex<f32>>, skip: usize) -> Array1<Complex<f32>> {
        let frames = bin.len() - skip;
        let taps = self.taps;
        // The frames before the recording predict nothing: `lead` zeros stand for them, so that
        // every delayed frame has an index. Frame `skip + t`'s k-th delayed frame is at `base + t − k`
        // and the frame itself at `base + delay + t`.
        let reach = self.delay + taps - 1;
        let lead = reach.saturating_sub(skip);
        let base = lead + skip - self.delay;
        let len = lead + bin.len();
        let mut yr = vec![0f32; len];
        let mut yi = vec![0f32; len];
        for (p, v) in bin.iter().enumerate() {
            yr[lead + p] = v.re;
            yi[lead + p] = v.im;
        }
        // z_ℓ at index q, ℓ < taps, stored lag after lag (zero for q < ℓ): the real parts, then
        // the imaginary parts.
        let mut z = vec![0f32; 2 * taps * len];
        let (zr, zi) = z.split_at_mut(taps * len);
        for lag in 0..taps {
            let (zr, zi) = (&mut zr[lag * len..], &mut zi[lag * len..]);
            for q in lag..len {
                let (ar, ai, br, bi) = (yr[q], yi[q], yr[q - lag], yi[q - lag]);
                zr[q] = ar * br + ai * bi;
                zi[q] = ai * br - ar * bi;
            }
        }
        let now = base + self.delay;
        let mut out: Array1<Complex<f32>> = bin.slice(s![skip..]).to_owned();
        let mut weight = vec![0f32; frames];
        let mut gram = vec![0f32; 2 * taps * taps];
        let n = 2 * taps;
        for _ in 0..self.iterations {
            let loudest = out.iter().map(|v| v.norm_sqr()).fold(0.0f32, f32::max);
            if loudest <= 0.0 {
                break;
            }
            let floor = loudest * POWER_FLOOR;
            for (w, v) in weight.iter_mut().zip(&out) {
                *w = 1.0 / v.norm_sqr().max(floor);
            }
            let weighted_now_r: Vec<f32> =
                weight.iter().zip(&yr[now..]).map(|(w, y)| w * y).collect();
            let weighted_now_i: Vec<f32> =
                weight.iter().zip(&yi[now..]).map(|(w, y)| w * y).collect();
            // Upper triangle of R: gram[i·taps + j] for j ≥ i (real parts, then imaginary).
            weighted_lag_sums(&weight, &z, len, base, taps, &mut gram);
            let (gram_re, gram_im) = gram.split_at(taps * taps);
            // The real form [[Re R, −Im R], [Im R, Re R]] [Re g; Im g] = [Re p; Im p].
            let mut system = vec![0.0f64; n * n];
            let mut rhs = vec![0.0f64; n];
            for i in 0..taps {
                for j in 0..taps {
                    // R is Hermitian: the lower triangle is the conjugate of the upper.
                    let (re, im) = if j >= i {
                        (gram_re[i * taps + j], gram_im[i * taps + j])
                    } else {
                        (gram_re[j * taps + i], -gram_im[j * taps + i])
                    };
                    let (re, im) = (f64::from(re), f64::from(im));
                    system[i * n + j] = re;
                    system[(i + taps) * n + j + taps] = re;
                    system[i * n + j + taps] = -im;
                    system[(i + taps) * n + j] = im;
                }
                // p_i = Σ_t w_t y(t − delay − i) conj(y_t).
                let (past_r, past_i) = (&yr[base - i..][..frames], &yi[base - i..][..frames]);
                rhs[i] = f64::from(dot(past_r, &weighted_now_r) + dot(past_i, &weighted_now_i));
                rhs[i + taps] =
                    f64::from(dot(past_i, &weighted_now_r) - dot(past_r, &weighted_now_i));
            }
            let Some(g) = solve_positive_definite(&mut system, &mut rhs, n) else {
                break;
            };
            // gᴴ ỹ_t = Σ_k (g_re − i g_im)(a + ib) = Σ_k (g_re a + g_im b) + i (g_re b − g_im a).
            let g: Vec<f32> = g.iter().map(|&v| v as f32).collect();
            let mut residue = vec![0f32; 2 * frames];
            prediction_residue(&yr, &yi, base, now, &g, &mut residue);
            let (residue_re, residue_im) = residue.split_at(frames);
            for (v, (&re, &im)) in out.iter_mut().zip(residue_re.iter().zip(residue_im)) {
                *v = Complex::new(re, im);
            }
        }
        out
    }
}

crate::model::multiversion! {
    /// The upper triangle of WPE's weighted correlation matrix from the lag products (see
    /// [`Wpe::filter_bin`]): `gram[i · taps + i + ℓ] = Σ_t weight[t] · z_ℓ[base + t − i]`, `z`
    /// holding lag ℓ's real parts at `ℓ · len ..` and its imaginary parts `taps · len` further on,
    /// `gram` the real parts and then (`taps²` further on) the imaginary parts. Sixteen partial sums
    /// per entry, so the compiler keeps them in one AVX-512 register (two AVX2 ones).
    weighted_lag_sums => weighted_lag_sums_body(
        weight: &[f32],
        z: &[f32],
        len: usize,
        base: usize,
        taps: usize,
        gram: &mut [f32],
    )
}

#[inline(always)]
fn weighted_lag_sums_body(
    weight: &[f32],
    z: &[f32],
    len: usize,
    base: usize,
    taps: usize,
    gram: &mut [f32],
) {
    let frames = weight.len();
    let (zr, zi) = z.split_at(taps * len);
    let (gram_re, gram_im) = gram.split_at_mut(taps * taps);
    for lag in 0..taps {
        let (zr, zi) = (&zr[lag * len..][..len], &zi[lag * len..][..len]);
        for i in 0..taps - lag {
            gram_re[i * taps + i + lag] = dot(weight, &zr[base - i..][..frames]);
            gram_im[i * taps + i + lag] = dot(weight, &zi[base - i..][..frames]);
        }
    }
}

crate::model::multiversion! {
    /// What the predictor `g` (real parts, then imaginary) leaves of the frames: `residue[t] =
    /// y(now + t) − Σ_k conj(g_k) y(base + t − k)`, real parts, then imaginary (`residue` holds
    /// twice the frames). See [`Wpe::filter_bin`].
    prediction_residue => prediction_residue_body(
        yr: &[f32],
        yi: &[f32],
        base: usize,
        now: usize,
        g: &[f32],
        residue: &mut [f32],
    )
}

#[inline(always)]
fn prediction_residue_body(
    yr: &[f32],
    yi: &[f32],
    base: usize,
    now: usize,
    g: &[f32],
    residue: &mut [f32],
) {
    let taps = g.len() / 2;
    let frames = residue.len() / 2;
    let (residue_re, residue_im) = residue.split_at_mut(frames);
    residue_re.copy_from_slice(&yr[now..now + frames]);
    residue_im.copy_from_slice(&yi[now..now + frames]);
    for k in 0..taps {
        let (gr, gi) = (g[k], g[k + taps]);
        let (a, b) = (
            &yr[base - k..base - k + frames],
            &yi[base - k..base - k + frames],
        );
        // conj(g)·y = (gr a + gi b) + i (gr b − gi a).
        for (((re, im), &a), &b) in residue_re
            .iter_mut()
            .zip(residue_im.iter_mut())
            .zip(a)
            .zip(b)
        {
            *re -= gr * a + gi * b;
            *im -= gr * b - gi * a;
        }
    }
}

/// `Σ a[t] · b[t]` over the shorter slice, in sixteen partial sums (one AVX-512 register).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    crate::util::dot_in_lanes::<f32, 16>(a, b)
}

/// [`dot`] in f64, in eight partial sums.
#[inline(always)]
fn dot_f64(a: &[f64], b: &[f64]) -> f64 {
    crate::util::dot_in_lanes::<f64, 8>(a, b)
}

crate::model::multiversion! {
    /// In-place Cholesky factorisation of the `n × n` row-major `system`: its lower triangle
    /// becomes `L` with `L Lᵀ = system`; `positive_definite` says whether it succeeded.
    cholesky_factor => cholesky_factor_body(system: &mut [f64], n: usize, positive_definite: &mut bool)
}

#[inline(always)]
fn cholesky_factor_body(system: &mut [f64], n: usize, positive_definite: &mut bool) {
    *positive_definite = false;
    for j in 0..n {
        let row_j = &system[j * n..j * n + j];
        let diagonal = system[j * n + j] - dot_f64(row_j, row_j);
        if diagonal <= 0.0 || !diagonal.is_finite() {
            return;
        }
        let diagonal = diagonal.sqrt();
        system[j * n + j] = diagonal;
        for i in j + 1..n {
            let v =
                system[i * n + j] - dot_f64(&system[i * n..i * n + j], &system[j * n..j * n + j]);
            system[i * n + j] = v / diagonal;
        }
    }
    *positive_definite = true;
}

/// Solve `system · x = rhs` for a symmetric positive semi-definite `system` (`n × n`, row-major) by
/// Cholesky, with a small diagonal loading so that a bin with too little energy to fit (or exact
/// linear dependence) still gives a bounded predictor. `None` if the loaded matrix is still not
/// positive definite (all-zero input): the caller keeps the frames unfiltered.
fn solve_positive_definite(system: &mut [f64], rhs: &mut [f64], n: usize) -> Option<Vec<f64>> {
    let mean_diagonal = (0..n).map(|i| system[i * n + i]).sum::<f64>() / n as f64;
    if !(mean_diagonal > 0.0 && mean_diagonal.is_finite()) {
        return None;
    }
    let loading = mean_diagonal * 1e-6;
    for i in 0..n {
        system[i * n + i] += loading;
    }
    let mut positive_definite = false;
    cholesky_factor(system, n, &mut positive_definite);
    if !positive_definite {
        return None;
    }
    // L z = rhs, then Lᵀ x = z.
    for i in 0..n {
        let v = rhs[i] - dot_f64(&system[i * n..i * n + i], &rhs[..i]);
        rhs[i] = v / system[i * n + i];
    }
    for i in (0..n).rev() {
        let mut v = rhs[i];
        for k in i + 1..n {
            v -= system[k * n + i] * rhs[k];
        }
        rhs[i] = v / system[i * n + i];
    }
    Some(rhs.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const RATE: u32 = 16_000;

    /// Bursts of white noise, 100 ms on and 300 ms off: nothing in them is predictable from 32 ms
    /// earlier, and the gaps show a room's tail.
    fn bursts(seconds: f64, rng: &mut StdRng) -> Vec<f32> {
        let period = (0.4 * f64::from(RATE)) as usize;
        let on = (0.1 * f64::from(RATE)) as usize;
        (0..(seconds * f64::from(RATE)) as usize)
            .map(|i| {
                if i % period < on {
                    rng.gen_range(-3000.0..3000.0)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// A room's impulse response: the direct sound, then from 5 ms an exponentially decaying
    /// noise tail with the given reverberation time (60 dB of decay).
    fn room(rt60_s: f64, rng: &mut StdRng) -> Vec<f32> {
        let len = (rt60_s * f64::from(RATE)) as usize;
        let onset = (0.005 * f64::from(RATE)) as usize;
        let decay = 6.9 / (rt60_s * f64::from(RATE)); // e^(-6.9) = -60 dB in amplitude
        (0..len)
            .map(|i| match i {
                0 => 1.0,
                i if i < onset => 0.0,
                i => 0.3 * (-(decay * i as f64)).exp() as f32 * rng.gen_range(-1.0f32..1.0),
            })
            .collect()
    }

    fn convolve(x: &[f32], h: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0f32; x.len()];
        for (i, &v) in x.iter().enumerate() {
            if v != 0.0 {
                for (j, &g) in h.iter().enumerate().take(x.len() - i) {
                    y[i + j] += v * g;
                }
            }
        }
        y
    }

    /// Energy (dB) of the samples in the gaps between bursts, from 100 ms after a burst ends
    /// (the early part of the tail, which WPE keeps by design) to the next burst.
    /// The largest sample-by-sample difference over the shorter of the two.
    fn largest_difference(x: &[f32], y: &[f32]) -> f32 {
        x.iter()
            .zip(y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    fn tail_energy_db(x: &[f32]) -> f64 {
        let from = (0.2 * f64::from(RATE)) as usize;
        energy_db(x, |phase| phase >= from)
    }

    fn burst_energy_db(x: &[f32]) -> f64 {
        let on = (0.1 * f64::from(RATE)) as usize;
        energy_db(x, |phase| phase < on)
    }

    /// Energy (dB) of the samples whose position within the 400 ms burst period passes `keep`.
    fn energy_db(x: &[f32], keep: impl Fn(usize) -> bool) -> f64 {
        let period = (0.4 * f64::from(RATE)) as usize;
        let e: f64 = x
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(i % period))
            .map(|(_, &v)| f64::from(v).powi(2))
            .sum();
        10.0 * e.max(1e-12).log10()
    }

    #[test]
    fn dry_sound_measures_dry_and_a_room_measures_reverberant() {
        let mut rng = StdRng::seed_from_u64(1);
        let dry = bursts(6.0, &mut rng);
        let wet = convolve(&dry, &room(0.6, &mut rng));
        let dry_db = reverberation_db(&dry, RATE).expect("6 s is measured");
        let wet_db = reverberation_db(&wet, RATE).expect("6 s is measured");
        assert!(dry_db > REVERBERANT_BELOW_DB, "dry {dry_db}");
        assert!(wet_db < REVERBERANT_BELOW_DB, "wet {wet_db}");
        assert!(
            wet_db < 3.0 * REVERBERANT_BELOW_DB,
            "wet {wet_db}: well past the threshold"
        );
        assert!(!is_reverberant(&dry, RATE) && is_reverberant(&wet, RATE));
    }

    #[test]
    fn recordings_from_several_rooms_joined_measure_reverberant() {
        // Three rooms one after another: measured over all 30 s at once, one predictor fits none of
        // them; block by block each is found.
        let mut rng = StdRng::seed_from_u64(7);
        let mut joined = Vec::new();
        for rt60 in [0.7, 0.4, 0.9] {
            let dry = bursts(10.0, &mut rng);
            joined.extend(convolve(&dry, &room(rt60, &mut rng)));
        }
        let db = reverberation_db(&joined, RATE).expect("30 s is measured");
        assert!(db < REVERBERANT_BELOW_DB, "{db}");
        assert!(is_reverberant(&joined, RATE));
    }

    #[test]
    fn the_late_tail_is_removed_and_the_sound_itself_kept() {
        let mut rng = StdRng::seed_from_u64(2);
        let dry = bursts(6.0, &mut rng);
        let wet = convolve(&dry, &room(0.6, &mut rng));
        let out = dereverberate(&wet, RATE);
        assert_eq!(out.len(), wet.len());
        assert!(out.iter().all(|v| v.is_finite()));
        let removed = tail_energy_db(&wet) - tail_energy_db(&out);
        // Measured: 5.6 dB (the tail in the gaps also holds what the 480 ms predictor cannot
        // reach).
        assert!(removed > 4.0, "late tail only {removed:.1} dB lower");
        let burst_change = burst_energy_db(&out) - burst_energy_db(&wet);
        assert!(
            burst_change.abs() < 1.5,
            "bursts changed by {burst_change:.2} dB"
        );
    }

    #[test]
    fn analysis_and_synthesis_without_filtering_give_the_recording_back() {
        let mut rng = StdRng::seed_from_u64(3);
        let x: Vec<f32> = (0..12_345)
            .map(|_| rng.gen_range(-1000.0..1000.0))
            .collect();
        // At rates whose frame is not a power of two too (the normalisation is one hop's period).
        for rate in [RATE, 8_000, 22_050, 44_100] {
            let stft = DEREVERB.stft(rate);
            let frames = stft.frames(x.len());
            let mut synthesis = Synthesis::new(&stft, x.len());
            // In two pieces, as dereverberate's chunks are.
            synthesis.add(&stft, 0, &stft.spectra(&x, 0..frames / 2));
            synthesis.add(&stft, frames / 2, &stft.spectra(&x, frames / 2..frames));
            let y = synthesis.finish();
            assert_eq!(y.len(), x.len());
            let worst = largest_difference(&x, &y);
            assert!(worst < 0.05, "{rate} Hz: largest difference {worst}");
        }
    }

    #[test]
    fn a_long_recording_is_dereverberated_only_where_it_is_reverberant() {
        let mut rng = StdRng::seed_from_u64(12);
        let section = (MEASURED_S * f64::from(RATE)) as usize;
        let dry = bursts(MEASURED_S, &mut rng);
        let wet = convolve(&bursts(MEASURED_S, &mut rng), &room(0.8, &mut rng))[..section].to_vec();
        // Dry then wet: the dry half comes back (to within the synthesis' rounding), the wet half
        // loses its tail (in the gaps between bursts).
        let recording: Vec<f32> = dry.iter().chain(&wet).copied().collect();
        let out = dereverberate_reverberant_sections(&recording, RATE)
            .expect("the second half is reverberant");
        assert_eq!(out.len(), recording.len());
        // The first chunk lies wholly in the dry section (chunks join within a frame of its end).
        let first = 9 * RATE as usize;
        let worst = largest_difference(&recording[..first], &out);
        assert!(worst < 0.05, "dry part changed by up to {worst}");
        assert!(tail_energy_db(&out[section..]) < tail_energy_db(&wet) - 3.0);
        // All dry: left alone. All wet: as `dereverberate`.
        assert!(dereverberate_reverberant_sections(&dry, RATE).is_none());
        let both_wet: Vec<f32> = wet.iter().chain(&wet).copied().collect();
        assert_eq!(
            dereverberate_reverberant_sections(&both_wet, RATE),
            Some(dereverberate(&both_wet, RATE))
        );
    }

    #[test]
    fn silence_short_input_and_long_input_in_chunks_are_handled() {
        assert!(dereverberate(&vec![0.0; 40_000], RATE)
            .iter()
            .all(|&v| v == 0.0));
        assert_eq!(reverberation_db(&vec![0.0; 40_000], RATE), None);
        let short: Vec<f32> = (0..100).map(|i| (i as f32).sin() * 100.0).collect();
        assert_eq!(
            dereverberate(&short, RATE),
            short,
            "too short for a predictor: unchanged"
        );
        let mut rng = StdRng::seed_from_u64(5);
        let second = convolve(&bursts(1.0, &mut rng), &room(0.5, &mut rng));
        let out = dereverberate(&second, RATE);
        assert_eq!(out.len(), second.len());
        assert!(out != second, "1 s is long enough for a shorter predictor");
        assert_eq!(reverberation_db(&short, RATE), None, "under MIN_MEASURED_S");
        // 65 s: three chunks, each with its own predictor; the tail still goes.
        let mut rng = StdRng::seed_from_u64(4);
        let dry = bursts(65.0, &mut rng);
        let wet = convolve(&dry, &room(0.5, &mut rng));
        let out = dereverberate(&wet, RATE);
        assert_eq!(out.len(), wet.len());
        let removed = tail_energy_db(&wet) - tail_energy_db(&out);
        assert!(removed > 4.0, "late tail only {removed:.1} dB lower");
    }

    /// WPE as its definition reads, in f64 complex arithmetic: each frame's delayed frames gathered,
    /// `R = Σ w ỹ ỹᴴ` and `p = Σ w ỹ conj(y)` summed frame by frame, the same solver.
    fn filter_bin_by_definition(wpe: &Wpe, bin: &[Complex<f32>], skip: usize) -> Vec<Complex<f64>> {
        let y: Vec<Complex<f64>> = bin
            .iter()
            .map(|v| Complex::new(v.re.into(), v.im.into()))
            .collect();
        let taps = wpe.taps;
        let delayed = |t: usize| -> Vec<Complex<f64>> {
            (0..taps)
                .map(|k| {
                    (t).checked_sub(wpe.delay + k)
                        .map_or(Complex::new(0.0, 0.0), |p| y[p])
                })
                .collect()
        };
        let mut out: Vec<Complex<f64>> = y[skip..].to_vec();
        for _ in 0..wpe.iterations {
            let loudest = out.iter().map(|v| v.norm_sqr()).fold(0.0, f64::max);
            let floor = loudest * f64::from(POWER_FLOOR);
            let mut r = vec![Complex::new(0.0, 0.0); taps * taps];
            let mut p = vec![Complex::new(0.0, 0.0); taps];
            for (t, v) in out.iter().enumerate() {
                let w = 1.0 / v.norm_sqr().max(floor);
                let past = delayed(skip + t);
                for i in 0..taps {
                    for j in 0..taps {
                        r[i * taps + j] += past[i] * past[j].conj() * w;
                    }
                    p[i] += past[i] * y[skip + t].conj() * w;
                }
            }
            let n = 2 * taps;
            let mut system = vec![0.0; n * n];
            let mut rhs = vec![0.0; n];
            for i in 0..taps {
                for j in 0..taps {
                    let v = r[i * taps + j];
                    system[i * n + j] = v.re;
                    system[(i + taps) * n + j + taps] = v.re;
                    system[i * n + j + taps] = -v.im;
                    system[(i + taps) * n + j] = v.im;
                }
                rhs[i] = p[i].re;
                rhs[i + taps] = p[i].im;
            }
            let g = solve_positive_definite(&mut system, &mut rhs, n).expect("positive definite");
            for (t, v) in out.iter_mut().enumerate() {
                let past = delayed(skip + t);
                let predicted: Complex<f64> = (0..taps)
                    .map(|k| Complex::new(g[k], -g[k + taps]) * past[k])
                    .sum();
                *v = y[skip + t] - predicted;
            }
        }
        out
    }

    #[test]
    fn the_fast_fit_is_wpe_as_defined() {
        // A reverberant recording's bins, with and without history before the fitted frames, for
        // the dereverberation's predictor and the measurement's two.
        let mut rng = StdRng::seed_from_u64(11);
        let dry = bursts(3.0, &mut rng);
        let x = &convolve(&dry, &room(0.6, &mut rng));
        for (wpe, skip) in [
            (DEREVERB, 0),
            (DEREVERB, 31),
            (MEASURE, 49),
            (MEASURE_DISTANT, 49),
        ] {
            let stft = wpe.stft(RATE);
            let bins = stft.spectra(x, 0..stft.frames(x.len()));
            for bin in [&bins[3], &bins[40], &bins[200]] {
                let fast = wpe.filter_bin(bin.view(), skip);
                let exact =
                    filter_bin_by_definition(&wpe, bin.as_slice().expect("contiguous"), skip);
                let energy: f64 = exact.iter().map(|v| v.norm_sqr()).sum();
                let error: f64 = fast
                    .iter()
                    .zip(&exact)
                    .map(|(f, e)| (Complex::new(f64::from(f.re), f64::from(f.im)) - e).norm_sqr())
                    .sum();
                assert_eq!(fast.len(), exact.len());
                assert!(
                    error <= 1e-4 * energy,
                    "{wpe:?} skip {skip}: relative error {}",
                    error / energy
                );
            }
        }
    }

    #[test]
    fn cholesky_solves_a_positive_definite_system() {
        // [[4, 2], [2, 3]] x = [2, 1] -> x = [0.5, 0].
        let mut system = vec![4.0, 2.0, 2.0, 3.0];
        let mut rhs = vec![2.0, 1.0];
        let x = solve_positive_definite(&mut system, &mut rhs, 2).expect("positive definite");
        assert!((x[0] - 0.5).abs() < 1e-5 && x[1].abs() < 1e-5, "{x:?}");
        assert!(solve_positive_definite(&mut [0.0; 4], &mut [1.0, 1.0], 2).is_none());
    }
}
