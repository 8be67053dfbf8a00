//! Music beds for training: instrumental music under the speech, as podcasts, videos, broadcasts and
//! on-hold recordings have. A network that has heard tones only as non-speech mistakes a music bed's
//! notes for vowels and nasals (default-v14: dc_tts / psdata / LibriVox 9–16 points worse with a music
//! bed 10 dB under the voice, against 0–12 for noise at the same SNR; `models/README.md`).
//!
//! The music is synthesised, so no recording has to be shipped or licensed: a key, a tempo and a
//! common chord progression, played by up to four instruments: a bass on the chord roots, a sustained
//! pad on the chord tones, a plucked or struck keyboard playing arpeggios or a melody in the scale, and
//! drums (kick, snare, hi-hat). Timbres are harmonic series with a random spectral tilt, the keyboard
//! slightly inharmonic as strings are. No singing: a voice in the bed is speech, and its phones would
//! be missing from the labels.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Semitone steps of the major and natural minor scales from their tonic.
const MAJOR: [i32; 7] = [0, 2, 4, 5, 7, 9, 11];
const MINOR: [i32; 7] = [0, 2, 3, 5, 7, 8, 10];

/// Chord progressions as scale degrees (0 = the tonic chord): the common ones of popular music.
const PROGRESSIONS: [[usize; 4]; 6] = [
    [0, 4, 5, 3],
    [0, 5, 3, 4],
    [0, 3, 4, 3],
    [5, 3, 0, 4],
    [0, 3, 0, 4],
    [1, 4, 0, 0],
];

/// A key and its scale: MIDI note numbers of scale degrees.
struct Key {
    tonic: i32,
    steps: &'static [i32; 7],
}

impl Key {
    /// MIDI note of scale degree `degree` (may exceed 6: the next octaves).
    fn note(&self, degree: usize) -> i32 {
        self.tonic + 12 * (degree / 7) as i32 + self.steps[degree % 7]
    }

    /// The triad (or seventh chord) on `degree`: every other scale degree.
    fn chord(&self, degree: usize, seventh: bool) -> Vec<i32> {
        let tones = if seventh { 4 } else { 3 };
        (0..tones).map(|i| self.note(degree + 2 * i)).collect()
    }
}

fn midi_hz(note: f32) -> f32 {
    440.0 * 2f32.powf((note - 69.0) / 12.0)
}

/// A harmonic timbre: `partials` harmonics with amplitudes k^-tilt, the k-th at k·f·√(1 + B·k²)
/// (B, the inharmonicity of a stiff string; 0 for winds, organs, synthesisers).
#[derive(Clone, Copy)]
struct Timbre {
    partials: usize,
    tilt: f32,
    inharmonicity: f32,
}

/// How a note's level evolves: a linear attack, then an exponential decay (`decay_s` = ∞ sustains),
/// and a 15 ms linear release at the note's end.
#[derive(Clone, Copy)]
struct Envelope {
    attack_s: f32,
    decay_s: f32,
}

/// Adds one note of `len` samples starting at sample `start` of `out`; a note that started before
/// `out` (negative `start`) sounds from where `out` begins, as a piece joined mid-note. Each partial
/// is a phasor advanced by a rotation (no `sin` per sample), kept in f64 so its amplitude does not
/// drift over long notes.
#[allow(clippy::too_many_arguments)]
fn add_note(
    out: &mut [f32],
    rate: f32,
    start: i64,
    len: usize,
    hz: f32,
    timbre: Timbre,
    envelope: Envelope,
    rng: &mut impl Rng,
) {
    // Samples of the note before `out` begins, and the part of `out` it covers.
    let skipped = usize::try_from(-start).unwrap_or(0);
    let first = usize::try_from(start).unwrap_or(0).min(out.len());
    let end = (first + len.saturating_sub(skipped)).min(out.len());
    if first >= end || hz <= 0.0 {
        return;
    }
    let nyquist = rate / 2.0;
    let release = (0.015 * rate).max(1.0);
    let attack = (envelope.attack_s * rate).max(1.0);
    let decay = (-1.0 / (envelope.decay_s * rate).max(1.0)).exp();
    let mut decaying = decay.powi(skipped.min(i32::MAX as usize) as i32);
    let mut level_buf = Vec::with_capacity(end - first);
    for i in skipped..skipped + (end - first) {
        let t = i as f32;
        let rise = (t / attack).min(1.0);
        let fall = ((len as f32 - t) / release).clamp(0.0, 1.0);
        level_buf.push(rise * fall * decaying);
        decaying *= decay;
    }
    for k in 1..=timbre.partials {
        let kf = k as f32;
        let fk = kf * hz * (1.0 + timbre.inharmonicity * kf * kf).sqrt();
        if fk >= nyquist * 0.95 {
            break;
        }
        let amplitude = kf.powf(-timbre.tilt);
        let w = std::f64::consts::TAU * f64::from(fk / rate);
        let (step_im, step_re) = w.sin_cos();
        let phase0 = rng.gen_range(0.0..std::f64::consts::TAU) + w * skipped as f64;
        let (mut im, mut re) = phase0.sin_cos();
        for (x, level) in out[first..end].iter_mut().zip(&level_buf) {
            *x += amplitude * level * im as f32;
            let next_re = re * step_re - im * step_im;
            im = re * step_im + im * step_re;
            re = next_re;
        }
    }
}

/// Noise that starts at `start` and decays with time constant `decay_s`, high-passed `order` times by
/// a first difference (snare: once, hi-hat: twice).
fn add_noise_burst(
    out: &mut [f32],
    rate: f32,
    start: usize,
    decay_s: f32,
    order: usize,
    rng: &mut impl Rng,
) {
    let len = ((5.0 * decay_s * rate) as usize).min(out.len().saturating_sub(start));
    let mut burst: Vec<f32> = (0..len + order)
        .map(|_| StandardNormal.sample(&mut *rng))
        .collect();
    for _ in 0..order {
        for i in (1..burst.len()).rev() {
            burst[i] -= burst[i - 1];
        }
    }
    let decay = (-1.0 / (decay_s * rate)).exp();
    let mut level = 1.0f32;
    for (x, n) in out[start..start + len].iter_mut().zip(&burst[order..]) {
        *x += 0.5 * n * level;
        level *= decay;
    }
}

/// A kick drum at `start`: a sine gliding from ~150 to ~45 Hz, decaying over ~0.15 s.
fn add_kick(out: &mut [f32], rate: f32, start: usize, rng: &mut impl Rng) {
    let (high, low) = (rng.gen_range(110.0..180.0f32), rng.gen_range(40.0..60.0f32));
    let decay_s = rng.gen_range(0.1..0.25f32);
    let len = ((4.0 * decay_s * rate) as usize).min(out.len().saturating_sub(start));
    let mut phase = 0.0f32;
    for (i, x) in out[start..start + len].iter_mut().enumerate() {
        let t = i as f32 / rate;
        let hz = low + (high - low) * (-t / 0.03).exp();
        phase = (phase + std::f32::consts::TAU * hz / rate) % std::f32::consts::TAU;
        *x += 2.0 * phase.sin() * (-t / decay_s).exp();
    }
}

/// Scales `layer` to unit RMS and adds it to `mix` at `gain_db`.
fn mix_in(mix: &mut [f32], layer: &[f32], gain_db: f32) {
    let power =
        layer.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / layer.len().max(1) as f64;
    if power <= 0.0 {
        return;
    }
    let scale = 10f32.powf(gain_db / 20.0) / power.sqrt() as f32;
    for (m, x) in mix.iter_mut().zip(layer) {
        *m += x * scale;
    }
}

/// `len` samples of instrumental music at `sample_rate_hz`, of arbitrary scale (the caller sets its
/// level). Each call draws a new piece: key, mode, tempo (60–160 BPM), progression, which
/// instruments play (at least one) and their timbres and levels.
pub fn music_bed(len: usize, sample_rate_hz: u32, rng: &mut impl Rng) -> Vec<f32> {
    let rate = sample_rate_hz as f32;
    let mut mix = vec![0.0f32; len];
    if len == 0 {
        return mix;
    }
    let key = Key {
        tonic: rng.gen_range(36..48),
        steps: if rng.gen_bool(0.5) { &MAJOR } else { &MINOR },
    };
    let beat = ((60.0 / rng.gen_range(60.0..160.0f32)) * rate) as usize;
    let beat = beat.max(1);
    let progression = PROGRESSIONS[rng.gen_range(0..PROGRESSIONS.len())];
    let beats_per_chord = if rng.gen_bool(0.7) { 4 } else { 2 };
    let sevenths = rng.gen_bool(0.3);
    // The piece may start anywhere in its progression, and between beats.
    let offset = rng.gen_range(0..beat * beats_per_chord * 4);
    let beats = (len + offset) / beat + 1;
    let chord_at = |b: usize| progression[(b / beats_per_chord) % 4];
    // Where sample `n` of the piece falls in `mix` (negative: before the clip starts).
    let onset = |n: usize| n as i64 - offset as i64;
    let at = |b: usize| usize::try_from(onset(b * beat)).ok();

    let mut playing = [
        rng.gen_bool(0.7), // bass
        rng.gen_bool(0.6), // pad
        rng.gen_bool(0.7), // keyboard
        rng.gen_bool(0.5), // drums
    ];
    if !playing.iter().any(|&p| p) {
        playing[2] = true;
    }
    let mut layer = vec![0.0f32; len];
    if playing[0] {
        // Bass: the chord's root, one note per beat or per two, plucked or held.
        let timbre = Timbre {
            partials: rng.gen_range(4..12),
            tilt: rng.gen_range(1.0..2.0),
            inharmonicity: 0.0,
        };
        let envelope = Envelope {
            attack_s: 0.01,
            decay_s: rng.gen_range(0.2..2.0),
        };
        let every = if rng.gen_bool(0.5) { 1 } else { 2 };
        for b in (0..beats).step_by(every) {
            let note = key.note(chord_at(b)) - 12 + 12 * i32::from(key.tonic < 40);
            add_note(
                &mut layer,
                rate,
                onset(b * beat),
                beat * every,
                midi_hz(note as f32),
                timbre,
                envelope,
                rng,
            );
        }
        mix_in(&mut mix, &layer, rng.gen_range(-9.0..0.0));
    }
    if playing[1] {
        // Pad: the chord held for its whole length, slow attack, two slightly detuned voices.
        layer.fill(0.0);
        let timbre = Timbre {
            partials: rng.gen_range(3..9),
            tilt: rng.gen_range(1.0..2.5),
            inharmonicity: 0.0,
        };
        let envelope = Envelope {
            attack_s: rng.gen_range(0.05..0.5),
            decay_s: f32::INFINITY,
        };
        let detune = rng.gen_range(0.0..0.1f32);
        for b in (0..beats).step_by(beats_per_chord) {
            for note in key.chord(chord_at(b), sevenths) {
                let note = note as f32 + 12.0 + if note < 50 { 12.0 } else { 0.0 };
                for cents in [-detune, detune] {
                    add_note(
                        &mut layer,
                        rate,
                        onset(b * beat),
                        beat * beats_per_chord,
                        midi_hz(note + cents),
                        timbre,
                        envelope,
                        rng,
                    );
                }
            }
        }
        mix_in(&mut mix, &layer, rng.gen_range(-12.0..0.0));
    }
    if playing[2] {
        // Keyboard or guitar: plucked notes, an arpeggio of the chord or a melody in the scale.
        layer.fill(0.0);
        let timbre = Timbre {
            partials: rng.gen_range(4..16),
            tilt: rng.gen_range(0.8..2.0),
            inharmonicity: rng.gen_range(0.0..0.0008),
        };
        let envelope = Envelope {
            attack_s: rng.gen_range(0.002..0.02),
            decay_s: rng.gen_range(0.15..1.2),
        };
        let subdivision = [1usize, 2, 2, 4][rng.gen_range(0..4)];
        let step = (beat / subdivision).max(1);
        let arpeggio = rng.gen_bool(0.5);
        let mut degree = rng.gen_range(7..14usize);
        let steps = (len + offset) / step + 1;
        for s in 0..steps {
            // A melody rests now and then and holds some notes for two steps.
            if !arpeggio && subdivision > 1 && rng.gen_bool(0.2) {
                continue;
            }
            let b = s * step / beat;
            let note = if arpeggio {
                let chord = key.chord(chord_at(b), sevenths);
                chord[s % chord.len()] + 24
            } else {
                degree = (degree as i32 + rng.gen_range(-2..=2)).clamp(7, 20) as usize;
                key.note(degree) + 12
            };
            let hold = if arpeggio { 2 } else { rng.gen_range(1..=2) };
            add_note(
                &mut layer,
                rate,
                onset(s * step),
                step * hold,
                midi_hz(note as f32),
                timbre,
                envelope,
                rng,
            );
        }
        mix_in(&mut mix, &layer, rng.gen_range(-9.0..0.0));
    }
    if playing[3] {
        // Drums: kick on beats 1 and 3, snare on 2 and 4, hi-hat on every half beat.
        layer.fill(0.0);
        let snare_decay = rng.gen_range(0.05..0.15f32);
        let hat_decay = rng.gen_range(0.01..0.05f32);
        let hats = rng.gen_bool(0.8);
        for b in 0..beats {
            if let Some(start) = at(b) {
                if b % 2 == 0 {
                    add_kick(&mut layer, rate, start, rng);
                } else {
                    add_noise_burst(&mut layer, rate, start, snare_decay, 1, rng);
                }
            }
            if hats {
                for half in [0, beat / 2] {
                    if let Ok(start) = usize::try_from(onset(b * beat + half)) {
                        add_noise_burst(&mut layer, rate, start.min(len), hat_decay, 2, rng);
                    }
                }
            }
        }
        mix_in(&mut mix, &layer, rng.gen_range(-12.0..-2.0));
    }
    mix
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// Power in a band of `samples` (a plain DFT over a 4096-sample window at `at`).
    fn band_power(samples: &[f32], rate: f32, at: usize, lo_hz: f32, hi_hz: f32) -> f64 {
        let n = 4096;
        let window = &samples[at..at + n];
        let (lo, hi) = (
            (lo_hz / rate * n as f32) as usize,
            (hi_hz / rate * n as f32) as usize,
        );
        (lo..hi)
            .map(|k| {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for (i, &x) in window.iter().enumerate() {
                    let a = std::f64::consts::TAU * (k * i) as f64 / n as f64;
                    re += f64::from(x) * a.cos();
                    im -= f64::from(x) * a.sin();
                }
                re * re + im * im
            })
            .sum()
    }

    #[test]
    fn music_beds_are_finite_audible_and_differ_from_piece_to_piece() {
        let rate = 16_000;
        let mut rng = StdRng::seed_from_u64(7);
        let pieces: Vec<Vec<f32>> = (0..12)
            .map(|_| music_bed(3 * rate, rate as u32, &mut rng))
            .collect();
        for piece in &pieces {
            assert_eq!(piece.len(), 3 * rate);
            assert!(piece.iter().all(|x| x.is_finite()));
            // Sound throughout: no second of the piece is 30 dB under the whole.
            let rms = |x: &[f32]| (x.iter().map(|x| x * x).sum::<f32>() / x.len() as f32).sqrt();
            for second in piece.chunks(rate) {
                assert!(
                    rms(second) > 0.03 * rms(piece),
                    "a silent second in a music bed: {} of {}",
                    rms(second),
                    rms(piece)
                );
            }
        }
        assert!(pieces.windows(2).all(|w| w[0] != w[1]));
        assert!(music_bed(0, 16_000, &mut rng).is_empty());
        assert_eq!(music_bed(10, 8_000, &mut rng).len(), 10);
    }

    #[test]
    fn notes_are_harmonic_and_stay_below_nyquist() {
        // One held note of A3 (220 Hz): its energy at the harmonics, none between them.
        let rate = 8_000.0;
        let mut out = vec![0.0f32; 8192];
        let timbre = Timbre {
            partials: 40,
            tilt: 1.0,
            inharmonicity: 0.0,
        };
        let envelope = Envelope {
            attack_s: 0.01,
            decay_s: f32::INFINITY,
        };
        let mut rng = StdRng::seed_from_u64(1);
        let len = out.len();
        add_note(&mut out, rate, 0, len, 220.0, timbre, envelope, &mut rng);
        assert!(out.iter().all(|x| x.is_finite()));
        let at_harmonic = band_power(&out, rate, 2048, 430.0, 450.0);
        let between = band_power(&out, rate, 2048, 320.0, 340.0);
        assert!(at_harmonic > 1000.0 * between, "{at_harmonic} vs {between}");
        // Partials from 0.95 × Nyquist up are not rendered: nothing folds back from above.
        let top = band_power(&out, rate, 2048, 3810.0, 3990.0);
        assert!(top < 1e-3 * at_harmonic, "{top}");
    }
}
