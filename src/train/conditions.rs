//! Recording conditions for training: what users' recordings have and trimmed studio clips lack.
//! Silence before, after and inside the speech (digital zeros or a noise floor), additive noise of
//! several kinds (coloured, mains hum, babble made from other training utterances), reverberation from
//! a synthetic room impulse response, telephone channels (`telephone.rs`), clipping, and
//! utterances with no speech at all (empty labels, so the network learns to stay blank on them).
//!
//! Every function takes int16-scale samples (±32768) and draws from the caller's RNG, so an epoch's
//! augmentation is reproducible from the training seed.

use crate::util::fft_plans;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::interference::{competing_talker, echo, keyboard_clicks, spectral_gate};
use super::music::music_bed;
use super::room::Room;
use super::telephone::telephone;

/// SNR range of music beds under speech, in dB of the speech's mean power over the music's. A
/// podcast's or video's bed sits 10–25 dB under the voice; louder ones are in the range so that
/// the network learns to pick the voice out of them too.
pub const MUSIC_SNR_DB: (f32, f32) = (5.0, 30.0);

/// With music beds under speech on, the share of non-speech utterances that are a music bed alone
/// (level −35 to −10 dBFS) unless set apart ([`ConditionOptions::music_alone_share`]): instrumental
/// music with no voice should give no phones.
pub const MUSIC_NON_SPEECH_SHARE: f32 = 0.2;

/// Full scale of int16-scale samples, the reference of dBFS levels.
const FULL_SCALE: f32 = 32768.0;

/// Iterations per frame of the repair of clipped training utterances: a third of recognition's
/// (`audio::declip::MAX_ITERATIONS`), which restores most of what it does at a third of the cost
/// (the probe's 100 iterations: FSDD clip PER 0.251 against 0.220 at 300, 0.333 for the former
/// autoregressive repair that training used before).
const TRAINING_DECLIP_ITERATIONS: usize = 100;

/// How often each recording condition is simulated; all off by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ConditionOptions {
    /// Probability of leading and trailing silence (each 0 to `max_edge_silence_s`).
    pub edge_silence_probability: f32,
    /// Longest silence added at each end, in seconds.
    pub max_edge_silence_s: f32,
    /// Of the utterances given edge silence, the fraction whose speech is first cut as from a longer
    /// recording: 0–10 ms trimmed at each end and a noise floor (−75 to −35 dBFS) under the speech
    /// only, so each junction with the digital silence is a step. Clips cut out of a recording and
    /// padded look like this (FSDD padded: PER 0.31 → 0.65 with default-v8, which never saw it).
    pub hard_edge_probability: f32,
    /// Of the hard-edged utterances, the fraction cut *into* the speech instead: 0–40 ms past the
    /// first and before the last 10 ms within 30 dB of the loudest, so the clip starts and ends at
    /// speech level, as trimmed corpora do (FSDD); the labels keep the cut phones, as theirs do.
    /// A floor before such a clip (the `padfloor` condition) had cost FSDD 5–18 points.
    /// `phonrec train --speech-cut P`.
    pub speech_cut_probability: f32,
    /// Of the hard-edged utterances, the fraction also placed in a quieter floor of their own:
    /// coloured noise 6–30 dB below the clip's floor under the whole padded file, so each edge is a
    /// step up in noise, not a step from digital silence. Short clips cut from a noisy recording
    /// and padded in a cleaner floor look like this (FSDD nicolas in a −55 dBFS floor: +5.4
    /// points, models/README.md). `phonrec train --floor-step P`.
    pub floor_step_probability: f32,
    /// Probability of 1–3 pauses of 0.15–1.2 s inserted at quiet points inside the utterance.
    pub pause_probability: f32,
    /// Probability of a constant noise floor (−80 to −40 dBFS) under the whole recording.
    pub noise_floor_probability: f32,
    /// Probability of additive noise at `noise_snr_db` (white, pink, brown, hum or babble).
    pub noise_probability: f32,
    /// SNR range of the additive noise in dB.
    pub noise_snr_db: (f32, f32),
    /// Probability of reverberation (RT60 0.15–0.9 s).
    pub reverb_probability: f32,
    /// Of the reverberated utterances, the share given a simulated room (`room.rs`: offices to
    /// halls, RT60 0.2–2.5 s, image-source early reflections, a tail that decays faster at high
    /// frequencies, the level set by the talker's distance) instead of a single decaying noise
    /// burst (RT60 0.15–0.9 s) with a 0–10 dB direct path.
    /// `phonrec train --room-reverb P`.
    pub room_reverb_share: f32,
    /// Probability of a telephone channel: 8 kHz, a band-pass of about 300–3400 Hz, and μ-law, A-law,
    /// GSM-like or no coding (see `telephone.rs`).
    pub telephone_probability: f32,
    /// Probability of clipping (0.1–5 % of samples driven past full scale), followed by the repair
    /// recognition applies to clipped input. `phonrec train --clip P`.
    pub clip_probability: f32,
    /// Probability of a music bed under the speech (`music.rs`: synthesised bass, pad, keyboard and
    /// drums) 5–30 dB under the speech, after any additive noise. `phonrec train --music P`.
    pub music_probability: f32,
    /// The share of the non-speech utterances that are a music bed alone. `phonrec train
    /// --music-alone S`; `--music` alone sets it to [`MUSIC_NON_SPEECH_SHARE`].
    pub music_alone_share: f32,
    /// Probability that the utterance is replaced by 1–8 s of non-speech (silence, noise floor,
    /// coloured noise or hum) with an empty label sequence.
    pub non_speech_probability: f32,
    /// Probability of a noise reducer's spectral gate over the recording, after its noise
    /// (`interference.rs`: sox's `noisered`, Audacity's Noise Reduction). `phonrec train
    /// --denoise P`.
    pub denoise_probability: f32,
    /// Probability of one or two discrete echoes 6–20 dB down, 60–300 ms late. `phonrec train
    /// --echo P`.
    pub echo_probability: f32,
    /// Probability of one other talker (another training utterance) 8–25 dB under the speech.
    /// `phonrec train --talker P`.
    pub talker_probability: f32,
    /// Probability of keyboard clicks under the speech. `phonrec train --clicks P`.
    pub click_probability: f32,
}

impl ConditionOptions {
    /// The `--augment robust` settings: every condition often enough to be learned, clean
    /// trimmed speech still the most common single case.
    pub fn robust() -> Self {
        ConditionOptions {
            edge_silence_probability: 0.5,
            max_edge_silence_s: 1.5,
            hard_edge_probability: 0.5,
            // Measured at 0.5 in a fine-tune (models/README.md, "speech cuts"): not shipped.
            speech_cut_probability: 0.0,
            floor_step_probability: 0.0,
            pause_probability: 0.25,
            noise_floor_probability: 0.4,
            noise_probability: 0.35,
            noise_snr_db: (0.0, 30.0),
            reverb_probability: 0.15,
            room_reverb_share: 0.0,
            telephone_probability: 0.2,
            clip_probability: 0.03,
            // Not in the preset that trained the built-in model up to default-v14.
            music_probability: 0.0,
            music_alone_share: 0.0,
            non_speech_probability: 0.04,
            // Not in the preset that trained the built-in model up to default-v14.
            denoise_probability: 0.0,
            echo_probability: 0.0,
            talker_probability: 0.0,
            click_probability: 0.0,
        }
    }

    /// Whether anything is simulated.
    pub fn is_active(&self) -> bool {
        *self != ConditionOptions::default()
    }
}

/// Audio after the recording conditions, and whether its labels still apply (false: no speech left).
#[derive(Clone, Debug, PartialEq)]
pub struct Conditioned {
    /// int16-scale samples at the input rate.
    pub samples: Vec<f32>,
    /// false when the speech was replaced by non-speech: train on an empty label sequence.
    pub has_speech: bool,
    /// The same utterance on the same timeline (after reverberation, pauses and edge silence) but
    /// before the steps that mask or distort it (noise, floors, other talkers, a noise reducer, the
    /// telephone channel, clipping), when at least one of those ran: what a teacher network hears
    /// for the distillation of [`crate::train::TrainOptions::distill`]. None for non-speech and for
    /// utterances those steps left alone.
    pub before_degradation: Option<Vec<f32>>,
}

/// Apply the recording conditions to one utterance. `babble` holds other training utterances to mix
/// as babble noise (may be empty: babble is then never drawn).
pub fn apply_conditions(
    samples: &[f32],
    sample_rate_hz: u32,
    options: &ConditionOptions,
    babble: &[&[f32]],
    rng: &mut impl Rng,
) -> Conditioned {
    let rate = sample_rate_hz as f32;
    if rng.gen::<f32>() < options.non_speech_probability {
        let len = (rng.gen_range(1.0..8.0) * rate) as usize;
        // The share is drawn only with music on, so runs without it keep their random sequence.
        let mut out = if options.music_alone_share > 0.0
            && rng.gen_bool(f64::from(options.music_alone_share))
        {
            let mut out = vec![0.0; len];
            let music = music_bed(len, sample_rate_hz, rng);
            add_at_power(&mut out, &music, dbfs_power(rng.gen_range(-35.0..-10.0)));
            out
        } else {
            non_speech(len, sample_rate_hz, rng)
        };
        // Tones too: ringback, busy and DTMF tones are telephone sounds.
        if rng.gen::<f32>() < options.telephone_probability {
            out = telephone(&out, sample_rate_hz, rng);
        }
        return Conditioned {
            samples: out,
            has_speech: false,
            before_degradation: None,
        };
    }
    let speech_power = mean_power(samples);
    let mut out = samples.to_vec();
    if rng.gen::<f32>() < options.reverb_probability {
        // The share is drawn only when set, so runs without rooms keep their random sequence.
        out = if options.room_reverb_share > 0.0 && rng.gen::<f32>() < options.room_reverb_share {
            let room = Room::random(rng);
            let rir = room.impulse_response(sample_rate_hz, rng);
            convolve_keeping_power(&out, &rir)
        } else {
            let rt60 = rng.gen_range(0.15..0.9);
            reverberate(&out, sample_rate_hz, rt60, rng)
        };
    }
    // The shares below are drawn only when set, so runs without them keep their random sequence.
    if options.echo_probability > 0.0 && rng.gen::<f32>() < options.echo_probability {
        out = echo(&out, sample_rate_hz, rng);
    }
    if rng.gen::<f32>() < options.pause_probability {
        let pauses = rng.gen_range(1..=3);
        for _ in 0..pauses {
            let len = (rng.gen_range(0.15..1.2) * rate) as usize;
            out = insert_pause(&out, sample_rate_hz, len, rng);
        }
    }
    if rng.gen::<f32>() < options.edge_silence_probability {
        let mut clip_floor_dbfs = None;
        if rng.gen::<f32>() < options.hard_edge_probability {
            let into_speech = rng.gen::<f32>() < options.speech_cut_probability;
            let (cut, floor_dbfs) = hard_edges(&out, sample_rate_hz, into_speech, rng);
            out = cut;
            clip_floor_dbfs = floor_dbfs;
        }
        let max = options.max_edge_silence_s.max(0.0);
        let before = (rng.gen_range(0.0..=max) * rate) as usize;
        let after = (rng.gen_range(0.0..=max) * rate) as usize;
        let mut padded = vec![0.0; before];
        padded.extend_from_slice(&out);
        padded.resize(padded.len() + after, 0.0);
        out = padded;
        if let Some(clip_floor) = clip_floor_dbfs {
            if rng.gen::<f32>() < options.floor_step_probability {
                let level_dbfs = clip_floor - rng.gen_range(6.0..30.0);
                let noise = coloured_noise(out.len(), rng.gen_range(0..3), rng);
                add_at_power(&mut out, &noise, dbfs_power(level_dbfs));
            }
        }
    }
    // The timeline is final from here on: what follows only masks or distorts the speech.
    let before_degradation = out.clone();
    let mut degraded = false;
    if rng.gen::<f32>() < options.noise_probability && speech_power > 0.0 {
        degraded = true;
        let (lo, hi) = options.noise_snr_db;
        let snr_db = if hi > lo { rng.gen_range(lo..hi) } else { lo };
        let kind = rng.gen_range(0..if babble.is_empty() { 4 } else { 5 });
        let noise = match kind {
            0..=2 => coloured_noise(out.len(), kind, rng),
            3 => hum(out.len(), sample_rate_hz, rng),
            _ => babble_noise(out.len(), babble, rng),
        };
        add_at_power(
            &mut out,
            &noise,
            speech_power / 10f64.powf(f64::from(snr_db) / 10.0),
        );
    }
    if options.music_probability > 0.0
        && rng.gen::<f32>() < options.music_probability
        && speech_power > 0.0
    {
        degraded = true;
        let snr_db = rng.gen_range(MUSIC_SNR_DB.0..MUSIC_SNR_DB.1);
        let music = music_bed(out.len(), sample_rate_hz, rng);
        add_at_power(
            &mut out,
            &music,
            speech_power / 10f64.powf(f64::from(snr_db) / 10.0),
        );
    }
    if options.talker_probability > 0.0 && rng.gen::<f32>() < options.talker_probability {
        degraded = true;
        competing_talker(&mut out, speech_power, babble, rng);
    }
    if options.click_probability > 0.0 && rng.gen::<f32>() < options.click_probability {
        degraded = true;
        keyboard_clicks(&mut out, sample_rate_hz, rng);
    }
    if rng.gen::<f32>() < options.noise_floor_probability {
        degraded = true;
        let level_dbfs = rng.gen_range(-80.0..-40.0);
        let colour = rng.gen_range(0..3);
        let noise = coloured_noise(out.len(), colour, rng);
        add_at_power(&mut out, &noise, dbfs_power(level_dbfs));
    }
    // The user's noise reducer runs on the recording as made, before it is sent or clipped.
    if options.denoise_probability > 0.0 && rng.gen::<f32>() < options.denoise_probability {
        degraded = true;
        out = spectral_gate(&out, sample_rate_hz, rng);
    }
    if rng.gen::<f32>() < options.telephone_probability {
        degraded = true;
        out = telephone(&out, sample_rate_hz, rng);
    }
    if rng.gen::<f32>() < options.clip_probability {
        degraded = true;
        // A log-uniform 0.1–30 % (recordings 9–15 dB too hot clip 4–30 %) was tried at a 0.15
        // share in a fine-tune of default-v14 and changed nothing on such recordings
        // (models/README.md, "Heavier clipping in training"): the built-in model's draw stays.
        clip(&mut out, rng.gen_range(0.001..0.05));
        // Recognition repairs clipped peaks before the features (`RecognizerOptions::repair_clipping`,
        // on by default): train on what it will hear, the repaired waveform. With a third of
        // recognition's iterations: the full repair costs ~0.2 s of CPU per clipped 2 s utterance,
        // ~9 % more CPU per epoch at the robust preset's 3 % share (BENCHMARKS.md; measured before
        // frames with under a tenth of their samples cut were interpolated instead, which is cheaper).
        crate::audio::repair_clipping_within(&mut out, TRAINING_DECLIP_ITERATIONS);
    }
    Conditioned {
        samples: out,
        has_speech: true,
        before_degradation: degraded.then_some(before_degradation),
    }
}

fn mean_power(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / samples.len() as f64
}

/// Mean power of a signal at `dbfs` relative to a full-scale sine... here to full scale itself.
fn dbfs_power(dbfs: f32) -> f64 {
    f64::from(FULL_SCALE).powi(2) * 10f64.powf(f64::from(dbfs) / 10.0)
}

/// Add `noise` scaled to mean power `power`.
pub(super) fn add_at_power(samples: &mut [f32], noise: &[f32], power: f64) {
    let noise_power = mean_power(noise);
    if noise_power <= 0.0 || power <= 0.0 {
        return;
    }
    let scale = (power / noise_power).sqrt() as f32;
    for (x, n) in samples.iter_mut().zip(noise) {
        *x += n * scale;
    }
}

/// White (0), pink (1) or brown (2) noise of unit-ish scale, from Gaussian white noise.
pub fn coloured_noise(len: usize, colour: usize, rng: &mut impl Rng) -> Vec<f32> {
    let mut filter = ColourFilter::new(colour);
    (0..len)
        .map(|_| filter.next(StandardNormal.sample(rng)))
        .collect()
}

/// Turns white noise into white (0), pink (1) or brown (any other) noise, one sample at a time: pink by
/// Paul Kellet's economy filter, brown by a leaky integrator.
pub(super) struct ColourFilter {
    colour: usize,
    pink: [f32; 3],
    brown: f32,
}

impl ColourFilter {
    pub(super) fn new(colour: usize) -> Self {
        ColourFilter {
            colour,
            pink: [0.0; 3],
            brown: 0.0,
        }
    }

    pub(super) fn next(&mut self, white: f32) -> f32 {
        match self.colour {
            0 => white,
            1 => {
                let [b0, b1, b2] = &mut self.pink;
                *b0 = 0.99765 * *b0 + white * 0.099_046;
                *b1 = 0.96300 * *b1 + white * 0.296_516_4;
                *b2 = 0.57000 * *b2 + white * 1.052_691_3;
                *b0 + *b1 + *b2 + white * 0.1848
            }
            _ => {
                self.brown = 0.995 * self.brown + white * 0.1;
                self.brown
            }
        }
    }
}

/// Mains hum: 50 or 60 Hz with a few harmonics of random strength and phase.
pub fn hum(len: usize, sample_rate_hz: u32, rng: &mut impl Rng) -> Vec<f32> {
    let base = if rng.gen_bool(0.5) { 50.0 } else { 60.0 };
    let harmonics: Vec<(f32, f32, f32)> = (1..=6)
        .map(|k| {
            let amplitude = if k == 1 {
                1.0
            } else {
                rng.gen_range(0.0..0.6) / k as f32
            };
            let phase = rng.gen_range(0.0..std::f32::consts::TAU);
            (base * k as f32, amplitude, phase)
        })
        .collect();
    let rate = sample_rate_hz as f32;
    (0..len)
        .map(|n| {
            let t = n as f32 / rate;
            harmonics
                .iter()
                .map(|&(f, a, p)| a * (std::f32::consts::TAU * f * t + p).sin())
                .sum()
        })
        .collect()
}

/// Babble: 3–6 other utterances summed, each from a random offset, looped to `len`.
fn babble_noise(len: usize, pool: &[&[f32]], rng: &mut impl Rng) -> Vec<f32> {
    let mut out = vec![0.0f32; len];
    for _ in 0..rng.gen_range(3..=6) {
        let source = pool[rng.gen_range(0..pool.len())];
        if source.is_empty() {
            continue;
        }
        let offset = rng.gen_range(0..source.len());
        for (n, x) in out.iter_mut().enumerate() {
            *x += source[(offset + n) % source.len()];
        }
    }
    out
}

/// Non-speech of `len` samples: digital silence, a faint noise floor, louder coloured noise (steady,
/// or rising and falling: [`fluctuate`]), hum, or tonal sounds ([`tonal_sounds`]: beeps, music, warbling tones, sweeps).
pub fn non_speech(len: usize, sample_rate_hz: u32, rng: &mut impl Rng) -> Vec<f32> {
    let mut out = vec![0.0f32; len];
    let kind = rng.gen_range(0..7);
    match kind {
        0 => {} // digital silence
        1 => add_at_power(
            &mut out,
            &coloured_noise(len, rng.gen_range(0..3), rng),
            dbfs_power(rng.gen_range(-80.0..-45.0)),
        ),
        2 | 3 => {
            let mut noise = coloured_noise(len, rng.gen_range(0..3), rng);
            if kind == 3 {
                fluctuate(&mut noise, sample_rate_hz, rng);
            }
            add_at_power(&mut out, &noise, dbfs_power(rng.gen_range(-45.0..-12.0)));
        }
        4 => add_at_power(
            &mut out,
            &hum(len, sample_rate_hz, rng),
            dbfs_power(rng.gen_range(-50.0..-15.0)),
        ),
        _ => {
            add_at_power(
                &mut out,
                &tonal_sounds(len, sample_rate_hz, rng),
                dbfs_power(rng.gen_range(-35.0..-10.0)),
            );
            if rng.gen_bool(0.5) {
                let floor = coloured_noise(len, rng.gen_range(0..3), rng);
                add_at_power(&mut out, &floor, dbfs_power(rng.gen_range(-80.0..-45.0)));
            }
        }
    }
    out
}

/// Noise whose level rises and falls at syllable-like rates, as wind, breathing, rain or a passing
/// fan do: 10 s of white, pink or brown noise pulsing at 4 Hz gave 59–73 phones with default-v11,
/// steady noise none. The envelope is a sinusoid of 0.5–8 Hz or a random one smoothed to 1–8 Hz,
/// with a depth of 30–100 %.
fn fluctuate(noise: &mut [f32], sample_rate_hz: u32, rng: &mut impl Rng) {
    use std::f32::consts::TAU;
    let rate = sample_rate_hz as f32;
    let depth = rng.gen_range(0.3..1.0f32);
    if rng.gen_bool(0.5) {
        let (hz, phase) = (rng.gen_range(0.5..8.0f32), rng.gen_range(0.0..TAU));
        for (i, x) in noise.iter_mut().enumerate() {
            let wave = 0.5 * (1.0 + (TAU * hz * i as f32 / rate + phase).sin());
            *x *= 1.0 - depth * wave;
        }
    } else {
        // A random walk of targets every 1/(2·cutoff) s, smoothed by a one-pole filter.
        let cutoff = rng.gen_range(1.0..8.0f32);
        let step = ((rate / (2.0 * cutoff)) as usize).max(1);
        let alpha = 1.0 - (-TAU * cutoff / rate).exp();
        let (mut target, mut level) = (rng.gen::<f32>(), 0.5f32);
        for (i, x) in noise.iter_mut().enumerate() {
            if i % step == 0 {
                target = rng.gen::<f32>();
            }
            level += alpha * (target - level);
            *x *= 1.0 - depth * level;
        }
    }
}

/// Lowest fundamental given more than one partial in [`tonal_sounds`]. Below it a few harmonics of a
/// steady or gliding f0 is what a sustained vowel or hum sounds like, and training it as blank taught
/// the network to miss short voiced words (FSDD clean −2.1 points; `models/README.md`): there the
/// tonal sounds are single partials, which no voice produces.
pub const VOICE_F0_MAX_HZ: f32 = 500.0;

/// Tonal sounds that are not speech, which a network trained on speech alone hears as vowels and
/// nasals (a 440 Hz tone warbling at 6 Hz gave 117 phones in 10 s): beeps and two-tone signals,
/// plucked notes and chords, a tone with tremolo and vibrato, frequency sweeps. Only fundamentals
/// from [`VOICE_F0_MAX_HZ`] up carry harmonics.
pub fn tonal_sounds(len: usize, sample_rate_hz: u32, rng: &mut impl Rng) -> Vec<f32> {
    use std::f32::consts::TAU;
    let rate = sample_rate_hz as f32;
    let nyquist = rate / 2.0;
    let mut out = vec![0.0f32; len];
    // Adds a tone of `harmonics` partials (amplitude 1/k) at `f` Hz from sample `start` for `n`
    // samples, shaped by `envelope(t)` (t in seconds from its start).
    let add_tone = |out: &mut [f32],
                    start: usize,
                    n: usize,
                    f: f32,
                    harmonics: usize,
                    envelope: &dyn Fn(f32) -> f32| {
        let end = (start + n).min(out.len());
        let harmonics = if f < VOICE_F0_MAX_HZ { 1 } else { harmonics };
        for (i, x) in out[start.min(end)..end].iter_mut().enumerate() {
            let t = i as f32 / rate;
            let mut v = 0.0;
            for k in 1..=harmonics {
                let fk = f * k as f32;
                if fk < nyquist * 0.95 {
                    v += (TAU * fk * t).sin() / k as f32;
                }
            }
            *x += v * envelope(t);
        }
    };
    match rng.gen_range(0..4) {
        0 => {
            // Beeps: one or two (DTMF-like) tones, on and off.
            let f1 = rng.gen_range(300.0..3000.0f32).min(nyquist * 0.9);
            let f2 = rng.gen_bool(0.5).then(|| rng.gen_range(600.0..1700.0f32));
            let (on, off) = (
                (rng.gen_range(0.05..0.5) * rate) as usize,
                (rng.gen_range(0.05..1.0) * rate) as usize,
            );
            let mut at = (rng.gen_range(0.0..0.5) * rate) as usize;
            while at < len {
                add_tone(&mut out, at, on, f1, 1, &|_| 1.0);
                if let Some(f2) = f2 {
                    add_tone(&mut out, at, on, f2, 1, &|_| 1.0);
                }
                at += on + off;
            }
        }
        1 => {
            // Plucked notes and chords of a few harmonics, decaying.
            let mut at = 0usize;
            while at < len {
                let n = (rng.gen_range(0.12..0.6) * rate) as usize;
                let tau = rng.gen_range(0.05..0.5f32);
                let harmonics = rng.gen_range(1..=6);
                for _ in 0..rng.gen_range(1..=3) {
                    let midi = rng.gen_range(45..85) as f32;
                    let f = 440.0 * 2f32.powf((midi - 69.0) / 12.0);
                    add_tone(&mut out, at, 2 * n, f, harmonics, &|t| (-t / tau).exp());
                }
                at += n;
            }
        }
        2 => {
            // A tone with tremolo (2–10 Hz, syllable-like) and vibrato.
            let f0 = rng.gen_range(100.0..2000.0f32);
            let harmonics = if f0 < VOICE_F0_MAX_HZ {
                1
            } else {
                rng.gen_range(1..=4)
            };
            let (trem, depth) = (rng.gen_range(2.0..10.0f32), rng.gen_range(0.3..1.0f32));
            let (vib, extent) = (rng.gen_range(4.0..7.0f32), rng.gen_range(0.0..0.03f32));
            let mut phase = 0.0f32;
            for (i, x) in out.iter_mut().enumerate() {
                let t = i as f32 / rate;
                let f = f0 * (1.0 + extent * (TAU * vib * t).sin());
                phase = (phase + TAU * f / rate) % (TAU * 64.0);
                let mut v = 0.0;
                for k in 1..=harmonics {
                    if f * (k as f32) < nyquist * 0.95 {
                        v += (phase * k as f32).sin() / k as f32;
                    }
                }
                let envelope = 1.0 - depth * 0.5 * (1.0 + (TAU * trem * t).sin());
                *x = v * envelope;
            }
        }
        _ => {
            // Sweeps up or down, log-frequency, 0.2–2 s each, repeated.
            let sweep = ((rng.gen_range(0.2..2.0) * rate) as usize).max(1);
            let (lo, hi) = (
                rng.gen_range(100.0..800.0f32),
                rng.gen_range(1000.0..4000.0f32).min(nyquist * 0.9),
            );
            let up = rng.gen_bool(0.5);
            let mut phase = 0.0f32;
            for (i, x) in out.iter_mut().enumerate() {
                let u = (i % sweep) as f32 / sweep as f32;
                let u = if up { u } else { 1.0 - u };
                let f = lo * (hi / lo).powf(u);
                phase = (phase + TAU * f / rate) % TAU;
                *x = phase.sin();
            }
        }
    }
    out
}

/// The speech as if cut out of a longer recording: 0–10 ms trimmed at each end (the cut falls in the
/// signal, not in silence), or with `into_speech` 0–40 ms past the speech's first and before its last
/// loud 10 ms ([`speech_extent`]), and a noise floor of −75 to −35 dBFS under it (the recording's
/// own), which the digital silence added around it will not have.
fn hard_edges(
    samples: &[f32],
    sample_rate_hz: u32,
    into_speech: bool,
    rng: &mut impl Rng,
) -> (Vec<f32>, Option<f32>) {
    let ten_ms = sample_rate_hz as usize / 100;
    let (first, last) = if into_speech {
        speech_extent(samples, ten_ms)
    } else {
        (0, samples.len())
    };
    let max_cut = if into_speech { 4 * ten_ms } else { ten_ms };
    let (start, end) = (rng.gen_range(0..=max_cut), rng.gen_range(0..=max_cut));
    // At most a quarter of the speech goes.
    if last - first <= 4 * (start + end) {
        return (samples.to_vec(), None);
    }
    let mut out = samples[first + start..last - end].to_vec();
    let noise = coloured_noise(out.len(), rng.gen_range(0..3), rng);
    let floor_dbfs = rng.gen_range(-75.0..-35.0);
    add_at_power(&mut out, &noise, dbfs_power(floor_dbfs));
    (out, Some(floor_dbfs))
}

/// Where the speech is: the start of the first and the end of the last `window`-sample block whose
/// power is within 30 dB of the loudest block's (`(0, len)` for a signal shorter than a block).
fn speech_extent(samples: &[f32], window: usize) -> (usize, usize) {
    let window = window.max(1);
    let powers: Vec<f64> = samples.chunks_exact(window).map(mean_power).collect();
    let loudest = powers.iter().copied().fold(0.0, f64::max);
    if loudest <= 0.0 {
        return (0, samples.len());
    }
    let loud = |p: &f64| *p >= loudest * 1e-3;
    match (powers.iter().position(loud), powers.iter().rposition(loud)) {
        (Some(first), Some(last)) => (first * window, (last + 1) * window),
        _ => (0, samples.len()),
    }
}

/// Insert `len` samples of digital silence at a quiet point: the quietest 20 ms among a few random
/// candidates in the middle 80 % (pauses fall between words, not inside a vowel).
fn insert_pause(samples: &[f32], sample_rate_hz: u32, len: usize, rng: &mut impl Rng) -> Vec<f32> {
    let window = (sample_rate_hz as usize / 50).max(1);
    if samples.len() < 10 * window {
        return samples.to_vec();
    }
    let lo = samples.len() / 10;
    let hi = samples.len() - samples.len() / 10 - window;
    let at = (0..16)
        .map(|_| rng.gen_range(lo..hi))
        .min_by(|&a, &b| {
            mean_power(&samples[a..a + window]).total_cmp(&mean_power(&samples[b..b + window]))
        })
        .unwrap_or(lo)
        + window / 2;
    let mut out = Vec::with_capacity(samples.len() + len);
    out.extend_from_slice(&samples[..at]);
    out.resize(at + len, 0.0);
    out.extend_from_slice(&samples[at..]);
    out
}

/// Convolve with a synthetic room impulse response: a direct path, then exponentially decaying
/// Gaussian noise reaching −60 dB after `rt60_s` (Polack's statistical model), with a random
/// direct-to-reverberant ratio. The output keeps the input's length and mean power.
pub fn reverberate(
    samples: &[f32],
    sample_rate_hz: u32,
    rt60_s: f32,
    rng: &mut impl Rng,
) -> Vec<f32> {
    if samples.is_empty() {
        return Vec::new();
    }
    let rate = sample_rate_hz as f32;
    let len = ((rt60_s * rate) as usize).clamp(2, sample_rate_hz as usize);
    let decay = 6.9078 / (rt60_s * rate); // ln(1000): amplitude −60 dB at rt60
    let pre_delay = (rng.gen_range(0.001..0.01) * rate) as usize;
    let mut rir: Vec<f32> = (0..len)
        .map(|n| {
            if n < pre_delay {
                0.0
            } else {
                let g: f32 = StandardNormal.sample(rng);
                g * (-decay * (n - pre_delay) as f32).exp()
            }
        })
        .collect();
    // Direct path at a ratio of 0–10 dB over the reverberant energy.
    let tail_energy: f32 = rir.iter().map(|x| x * x).sum();
    let drr = 10f32.powf(rng.gen_range(0.0..10.0) / 10.0);
    rir[0] = (tail_energy * drr).sqrt();
    convolve_keeping_power(samples, &rir)
}

/// `samples` convolved with `rir`, cut to the input's length and scaled to its mean power.
pub(super) fn convolve_keeping_power(samples: &[f32], rir: &[f32]) -> Vec<f32> {
    if samples.is_empty() || rir.is_empty() {
        return samples.to_vec();
    }
    let wet = fft_convolve(samples, rir);
    let mut out = wet[..samples.len()].to_vec();
    let (before, after) = (mean_power(samples), mean_power(&out));
    if after > 0.0 {
        let scale = (before / after).sqrt() as f32;
        out.iter_mut().for_each(|x| *x *= scale);
    }
    out
}

/// Linear convolution by one real FFT of the padded length.
fn fft_convolve(a: &[f32], b: &[f32]) -> Vec<f32> {
    let n = (a.len() + b.len() - 1).next_power_of_two();
    let forward = fft_plans::forward(n);
    let inverse = fft_plans::inverse(n);
    let mut x = a.to_vec();
    x.resize(n, 0.0);
    let mut y = b.to_vec();
    y.resize(n, 0.0);
    let mut fx = forward.make_output_vec();
    let mut fy = forward.make_output_vec();
    // Lengths are planned here, so the transforms cannot fail.
    if forward.process(&mut x, &mut fx).is_err() || forward.process(&mut y, &mut fy).is_err() {
        return a.to_vec();
    }
    for (p, q) in fx.iter_mut().zip(&fy) {
        *p *= q;
    }
    let mut out = inverse.make_output_vec();
    if inverse.process(&mut fx, &mut out).is_err() {
        return a.to_vec();
    }
    let scale = 1.0 / n as f32;
    out.truncate(a.len() + b.len() - 1);
    out.iter_mut().for_each(|v| *v *= scale);
    out
}

/// Drive the signal so that about `fraction` of its samples pass full scale, and clip them.
fn clip(samples: &mut [f32], fraction: f32) {
    if samples.is_empty() {
        return;
    }
    let mut magnitudes: Vec<f32> = samples.iter().map(|x| x.abs()).collect();
    let rank = ((1.0 - fraction.clamp(0.0, 1.0)) * (magnitudes.len() - 1) as f32) as usize;
    let (_, &mut level, _) = magnitudes.select_nth_unstable_by(rank, f32::total_cmp);
    if level <= 0.0 {
        return;
    }
    let gain = FULL_SCALE / level;
    for x in samples.iter_mut() {
        *x = (*x * gain).clamp(-FULL_SCALE, FULL_SCALE - 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::test_signals::tone;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn off_by_default_changes_nothing() {
        let mut rng = StdRng::seed_from_u64(1);
        let x = tone(16_000, 440.0, 16_000.0);
        let out = apply_conditions(&x, 16_000, &ConditionOptions::default(), &[], &mut rng);
        assert_eq!(out.samples, x);
        assert!(out.has_speech);
        assert!(!ConditionOptions::default().is_active());
        assert!(ConditionOptions::robust().is_active());
    }

    #[test]
    fn the_copy_before_degradation_shares_the_timeline_and_misses_only_the_degradation() {
        let x = tone(16_000, 440.0, 16_000.0);
        // Timeline steps alone: nothing degraded, no copy.
        let timeline = ConditionOptions {
            pause_probability: 1.0,
            edge_silence_probability: 1.0,
            ..ConditionOptions::default()
        };
        let out = apply_conditions(&x, 16_000, &timeline, &[], &mut StdRng::seed_from_u64(3));
        assert!(out.samples.len() > x.len());
        assert_eq!(out.before_degradation, None);
        // The same draws plus the telephone channel: the copy is the padded tone, sample for
        // sample where the speech lies on the same timeline as the degraded output.
        let phone = ConditionOptions {
            telephone_probability: 1.0,
            ..timeline.clone()
        };
        let out = apply_conditions(&x, 16_000, &phone, &[], &mut StdRng::seed_from_u64(3));
        let clean = out
            .before_degradation
            .expect("the telephone channel degrades");
        assert_eq!(clean.len(), out.samples.len());
        assert_ne!(clean, out.samples);
        let plain = apply_conditions(&x, 16_000, &timeline, &[], &mut StdRng::seed_from_u64(3));
        assert_eq!(clean, plain.samples);
        // Non-speech: nothing to pair.
        let noise_only = ConditionOptions {
            non_speech_probability: 1.0,
            telephone_probability: 1.0,
            ..ConditionOptions::default()
        };
        let out = apply_conditions(&x, 16_000, &noise_only, &[], &mut StdRng::seed_from_u64(4));
        assert_eq!(out.before_degradation, None);
    }

    #[test]
    fn non_speech_replaces_the_utterance_and_drops_its_labels() {
        let mut rng = StdRng::seed_from_u64(2);
        let options = ConditionOptions {
            non_speech_probability: 1.0,
            ..ConditionOptions::default()
        };
        let x = tone(16_000, 440.0, 16_000.0);
        let out = apply_conditions(&x, 16_000, &options, &[], &mut rng);
        assert!(!out.has_speech);
        assert!(out.samples.len() >= 16_000 && out.samples.len() <= 8 * 16_000);
        assert!(out
            .samples
            .iter()
            .all(|v| v.is_finite() && v.abs() < 32768.0));
    }

    #[test]
    fn fluctuating_noise_rises_and_falls_within_the_original() {
        // Both envelopes (seeds draw either): never louder than the noise itself, and the level of
        // 100 ms windows spans at least 3 dB over 4 s.
        for seed in 0..12 {
            let mut rng = StdRng::seed_from_u64(seed);
            let noise = coloured_noise(64_000, 0, &mut rng);
            let mut shaped = noise.clone();
            fluctuate(&mut shaped, 16_000, &mut rng);
            assert!(shaped
                .iter()
                .zip(&noise)
                .all(|(y, x)| y.is_finite() && y.abs() <= x.abs() + 1e-6));
            let levels: Vec<f64> = shaped.chunks(1600).map(mean_power).collect();
            let (lo, hi) = levels
                .iter()
                .fold((f64::MAX, 0.0f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
            assert!(hi > 2.0 * lo, "seed {seed}: {lo} .. {hi}");
        }
    }

    #[test]
    fn tonal_sounds_are_finite_audible_and_of_every_kind() {
        // 40 seeds (each draws one of the four kinds) at 8 and 16 kHz: finite, the requested
        // length, not silent.
        for seed in 0..40 {
            let mut rng = StdRng::seed_from_u64(seed);
            for rate in [8_000u32, 16_000] {
                let out = tonal_sounds(rate as usize, rate, &mut rng);
                assert_eq!(out.len(), rate as usize);
                assert!(out.iter().all(|v| v.is_finite()), "seed {seed}");
                assert!(
                    mean_power(&out) > 1e-4,
                    "seed {seed} at {rate} Hz is silent"
                );
            }
        }
    }

    #[test]
    fn edge_silence_and_pauses_lengthen_and_keep_the_speech() {
        let mut rng = StdRng::seed_from_u64(3);
        let options = ConditionOptions {
            edge_silence_probability: 1.0,
            max_edge_silence_s: 1.0,
            pause_probability: 1.0,
            ..ConditionOptions::default()
        };
        let x = tone(32_000, 300.0, 16_000.0);
        let out = apply_conditions(&x, 16_000, &options, &[], &mut rng);
        assert!(out.samples.len() > x.len());
        // Inserting zeros keeps every original sample, in order.
        let kept: Vec<f32> = out.samples.iter().copied().filter(|&v| v != 0.0).collect();
        let original: Vec<f32> = x.iter().copied().filter(|&v| v != 0.0).collect();
        assert_eq!(kept, original);
    }

    #[test]
    fn floor_steps_place_the_clip_in_a_quieter_floor_instead_of_digital_silence() {
        let mut rng = StdRng::seed_from_u64(11);
        let options = ConditionOptions {
            edge_silence_probability: 1.0,
            max_edge_silence_s: 0.5,
            hard_edge_probability: 1.0,
            floor_step_probability: 1.0,
            ..ConditionOptions::default()
        };
        // A second of digital silence as the "speech": what remains is the two floors alone.
        let x = vec![0.0f32; 16_000];
        for _ in 0..8 {
            let out = apply_conditions(&x, 16_000, &options, &[], &mut rng).samples;
            assert!(out.iter().all(|&v| v != 0.0), "no digital silence left");
            // 0.5–1.0 s lies inside the clip whatever the padding (≤ 0.5 s before it); the quietest
            // 20 ms lie in the padding, in the quieter floor only: 6–30 dB below the clip's (give
            // or take the chunks' own spread: brown noise is far from stationary over 20 ms).
            let clip = mean_power(&out[8_000..16_000]);
            let quietest = out
                .chunks_exact(320)
                .map(mean_power)
                .fold(f64::INFINITY, f64::min);
            let step_db = 10.0 * (clip / quietest).log10();
            assert!((4.0..40.0).contains(&step_db), "{step_db} dB");
        }
    }

    #[test]
    fn hard_edges_step_from_the_recording_floor_to_digital_silence() {
        let mut rng = StdRng::seed_from_u64(7);
        let options = ConditionOptions {
            edge_silence_probability: 1.0,
            max_edge_silence_s: 0.5,
            hard_edge_probability: 1.0,
            ..ConditionOptions::default()
        };
        let x = tone(16_000, 300.0, 16_000.0);
        for _ in 0..8 {
            let out = apply_conditions(&x, 16_000, &options, &[], &mut rng).samples;
            let first = out.iter().position(|&v| v != 0.0).unwrap_or(out.len());
            let last = out.iter().rposition(|&v| v != 0.0).unwrap_or(0);
            // The speech lost at most 10 ms at each end and nothing inside is digital zero.
            let kept = last + 1 - first;
            assert!(kept <= x.len() && kept + 320 >= x.len(), "{kept}");
            assert!(out[first..=last].iter().all(|&v| v != 0.0));
            // Under the speech lies a floor of −75 to −35 dBFS: the residual after the best-aligned
            // copy of the tone.
            let residual = (0..=160)
                .map(|trim| {
                    let d: Vec<f32> = (0..4000).map(|n| out[first + n] - x[trim + n]).collect();
                    mean_power(&d)
                })
                .fold(f64::INFINITY, f64::min);
            assert!(
                residual > dbfs_power(-76.0) && residual < dbfs_power(-34.0),
                "{residual}"
            );
        }
    }

    #[test]
    fn speech_cuts_start_and_end_inside_the_speech() {
        let mut rng = StdRng::seed_from_u64(9);
        let options = ConditionOptions {
            edge_silence_probability: 1.0,
            max_edge_silence_s: 0.5,
            hard_edge_probability: 1.0,
            speech_cut_probability: 1.0,
            ..ConditionOptions::default()
        };
        // 0.2 s of near-silence (60 dB down), 0.5 s of tone, 0.2 s of near-silence.
        let tone_len = 8000;
        let mut x = vec![0.5f32; 3200];
        x.extend(tone(tone_len, 300.0, 16_000.0));
        x.extend(vec![0.5f32; 3200]);
        for _ in 0..8 {
            let out = apply_conditions(&x, 16_000, &options, &[], &mut rng).samples;
            let first = out.iter().position(|&v| v != 0.0).unwrap_or(out.len());
            let last = out.iter().rposition(|&v| v != 0.0).unwrap_or(0);
            // The quiet lead-in and tail are gone and at most 40 ms of the tone at each end.
            let kept = last + 1 - first;
            assert!(kept <= tone_len && kept + 1280 >= tone_len, "{kept}");
            // The clip starts at speech level: its first 10 ms are as loud as the tone.
            let onset = mean_power(&out[first..first + 160]);
            assert!(
                onset > mean_power(&x[3200..3200 + tone_len]) * 0.3,
                "{onset}"
            );
        }
    }

    #[test]
    fn noise_is_added_at_the_requested_snr_of_the_speech() {
        let mut rng = StdRng::seed_from_u64(4);
        let options = ConditionOptions {
            noise_probability: 1.0,
            noise_snr_db: (10.0, 10.0),
            ..ConditionOptions::default()
        };
        let x = tone(16_000, 440.0, 16_000.0);
        for _ in 0..4 {
            let out = apply_conditions(&x, 16_000, &options, &[&x[..8000]], &mut rng);
            let noise: Vec<f32> = out.samples.iter().zip(&x).map(|(a, b)| a - b).collect();
            let snr = 10.0 * (mean_power(&x) / mean_power(&noise)).log10();
            assert!((snr - 10.0).abs() < 0.01, "SNR {snr}");
        }
    }

    #[test]
    fn music_beds_go_under_the_speech_in_the_snr_range_and_alone_as_non_speech() {
        let mut rng = StdRng::seed_from_u64(5);
        let options = ConditionOptions {
            music_probability: 1.0,
            ..ConditionOptions::default()
        };
        let x = tone(16_000, 440.0, 16_000.0);
        for _ in 0..8 {
            let out = apply_conditions(&x, 16_000, &options, &[], &mut rng);
            assert!(out.has_speech);
            let music: Vec<f32> = out.samples.iter().zip(&x).map(|(a, b)| a - b).collect();
            let snr = 10.0 * (mean_power(&x) / mean_power(&music)).log10();
            assert!(
                (MUSIC_SNR_DB.0 - 0.01..MUSIC_SNR_DB.1 + 0.01).contains(&(snr as f32)),
                "SNR {snr}"
            );
        }
        // Non-speech with music alone on (as `--music` sets it): a fifth of it is a music bed
        // alone, labelled empty. Replayed on a copy of the generator, the draws say which outputs
        // are music and what music.
        let options = ConditionOptions {
            music_alone_share: MUSIC_NON_SPEECH_SHARE,
            non_speech_probability: 1.0,
            ..ConditionOptions::default()
        };
        let mut music_alone = 0;
        for _ in 0..40 {
            let mut replay = rng.clone();
            let out = apply_conditions(&x, 16_000, &options, &[], &mut rng);
            assert!(!out.has_speech);
            let _ = replay.gen::<f32>();
            let len = (replay.gen_range(1.0f32..8.0) * 16_000.0) as usize;
            if replay.gen_bool(f64::from(MUSIC_NON_SPEECH_SHARE)) {
                let music = music_bed(len, 16_000, &mut replay);
                let level = dbfs_power(replay.gen_range(-35.0..-10.0));
                let mut expected = vec![0.0; len];
                add_at_power(&mut expected, &music, level);
                assert!(out.samples == expected, "not the replayed music bed");
                assert!((mean_power(&out.samples) / level - 1.0).abs() < 1e-3);
                music_alone += 1;
            }
        }
        assert!((3..=16).contains(&music_alone), "{music_alone} of 40");
    }

    #[test]
    fn reverberation_keeps_length_and_power_and_smears_in_time() {
        let mut rng = StdRng::seed_from_u64(6);
        let mut x = vec![0.0f32; 16_000];
        x[1000] = 10_000.0;
        let out = reverberate(&x, 16_000, 0.5, &mut rng);
        assert_eq!(out.len(), x.len());
        assert!((mean_power(&out) / mean_power(&x) - 1.0).abs() < 1e-3);
        // Energy long after the impulse: the tail.
        assert!(mean_power(&out[3000..5000]) > 0.0);
        assert!(out[..1000].iter().all(|&v| v.abs() < 1e-3));
    }

    #[test]
    fn rooms_reverberate_with_the_length_and_power_kept() {
        // A click every 0.25 s: after a room, energy lies between the clicks (the reflections and
        // the tail), and the whole keeps its length and mean power.
        let options = ConditionOptions {
            reverb_probability: 1.0,
            room_reverb_share: 1.0,
            ..ConditionOptions::default()
        };
        let mut x = vec![0.0f32; 32_000];
        for i in (0..x.len()).step_by(4000) {
            x[i] = 20_000.0;
        }
        for seed in 0..6 {
            let mut rng = StdRng::seed_from_u64(seed);
            let out = apply_conditions(&x, 16_000, &options, &[], &mut rng).samples;
            assert_eq!(out.len(), x.len());
            assert!(out.iter().all(|v| v.is_finite()));
            assert!((mean_power(&out) / mean_power(&x) - 1.0).abs() < 1e-3);
            let between: f64 = out.chunks(4000).map(|c| mean_power(&c[200..])).sum();
            assert!(between > 0.0, "seed {seed}: nothing between the clicks");
        }
    }

    #[test]
    fn clipping_saturates_about_the_requested_fraction() {
        let mut x = tone(16_000, 440.0, 16_000.0);
        clip(&mut x, 0.02);
        let clipped = x.iter().filter(|v| v.abs() >= 32767.0).count();
        assert!(clipped > 100 && clipped < 1000, "{clipped}");
        assert!(x.iter().all(|v| v.abs() <= 32768.0));
    }

    #[test]
    fn clipped_training_audio_is_repaired_as_recognition_repairs_it() {
        let options = ConditionOptions {
            clip_probability: 1.0,
            ..ConditionOptions::default()
        };
        // Real speech (a synthetic tone's peaks are too even to show the pile-up on the rail that
        // the repair looks for): the clip step cuts its loudest peaks flat at full scale.
        let x = crate::audio::read_audio_bytes(
            include_bytes!("../../audio/slt_dark_suit_16k.wav"),
            std::path::Path::new("slt_dark_suit_16k.wav"),
        )
        .expect("the example WAV reads")
        .samples;
        for seed in 5..9 {
            let mut rng = StdRng::seed_from_u64(seed);
            let out = apply_conditions(&x, 16_000, &options, &[], &mut rng);
            // At least 0.1 % of the samples were driven onto the rails (the clip step's smallest
            // share); the repair restores most of them beyond full scale, where the original was.
            let on_rail = out.samples.iter().filter(|v| v.abs() >= 32_767.0).count();
            let restored = out
                .samples
                .iter()
                .filter(|&&v| !(-32_768.5..=32_767.5).contains(&v))
                .count();
            assert!(on_rail >= x.len() / 1000, "seed {seed}: {on_rail} samples");
            assert!(
                restored * 10 >= on_rail * 8,
                "seed {seed}: {restored} of {on_rail} restored"
            );
        }
    }
}
