//! Extreme but representable waveforms through the whole recogniser (digital-silence fill, declipping,
//! dropout repair, dereverberation, resampling, features, segmentation, decoding): each must give
//! phones or a typed error, never a panic. Rates from 1 kHz to 384 kHz (those phonrec refuses
//! included), lengths from 0 samples to 20 s, constants, full-scale square waves, impulses, noise
//! and gated bursts at amplitudes from 0 to beyond int16 scale.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use phonrec::audio::Waveform;
use rand::{rngs::StdRng, Rng, SeedableRng};

const RATES: [u32; 11] = [
    1000, 4000, 8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000, 384000,
];
const AMPLITUDES: [f32; 7] = [0.0, 1e-3, 1.0, 100.0, 32767.0, 32768.0, 1e6];

pub fn run(out: &Path, iterations: usize, seed: u64) {
    std::fs::create_dir_all(out).expect("the output folder");
    let recognizer =
        phonrec::builtin::recognizer_in(phonrec::model::Precision::inference_default())
            .expect("the built-in model");
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut recognised, mut refused, mut findings) = (0usize, 0usize, 0usize);
    for iteration in 0..iterations {
        let rate = RATES[rng.gen_range(0..RATES.len())];
        let len = match rng.gen_range(0..5) {
            0 => rng.gen_range(0..10),
            1 => rng.gen_range(10..2000),
            2 => rng.gen_range(2000..40000),
            3 => rate as usize * rng.gen_range(1..20),
            _ => rng.gen_range(0..200_000),
        };
        let kind = rng.gen_range(0..10);
        let amp = AMPLITUDES[rng.gen_range(0..AMPLITUDES.len())];
        let hum = 2.0 * std::f32::consts::PI * 60.0 / rate as f32;
        let mut samples: Vec<f32> = (0..len)
            .map(|i| match kind {
                0 => amp,
                1 if i % 2 == 0 => amp,
                1 => -amp,
                2 if i == len / 2 => amp,
                2 => 0.0,
                3 => amp * rng.gen_range(-1.0f32..1.0),
                4 => (amp * (i as f32 * 0.05).sin()).clamp(-32768.0, 32767.0),
                5 if (i / 160) % 2 == 0 => amp,
                5 => 0.0,
                6 => amp * (i as f32 * hum).sin().signum(),
                7 if rng.gen_bool(0.01) => amp * rng.gen_range(-1.0f32..1.0),
                7 => 0.0,
                8 => (3.0 * amp * rng.gen_range(-1.0f32..1.0)).clamp(-32768.0, 32767.0),
                _ => ((i % 7) as f32 - 3.0) * amp / 3.0,
            })
            .collect();
        if rng.gen_bool(0.2) {
            // As 16-bit audio would hold it.
            for x in samples.iter_mut() {
                *x = x.round().clamp(-32768.0, 32767.0);
            }
        }
        let what = format!("iteration {iteration}: {rate} Hz, {len} samples, kind {kind}, {amp}");
        std::fs::write(out.join(format!("signal-{seed}.txt")), &what).expect("writable");
        let wave = Waveform {
            samples,
            sample_rate_hz: rate,
        };
        match catch_unwind(AssertUnwindSafe(|| recognizer.transcribe_wave(wave))) {
            Err(_) => {
                findings += 1;
                eprintln!("FOUND panic: {what}");
            }
            Ok(Ok(_)) => recognised += 1,
            Ok(Err(_)) => refused += 1,
        }
        if iteration % 500 == 0 {
            eprintln!(
                "{iteration}: recognised {recognised}, refused {refused}, findings {findings}"
            );
        }
    }
    eprintln!("done: {iterations} waveforms, recognised {recognised}, refused {refused}, findings {findings}");
}
