//! Room impulse responses for reverberation augmentation, closer to real rooms than a single
//! exponentially decaying noise burst: a shoebox room's direct path and early reflections by the
//! image-source method (Allen & Berkley 1979, "Image method for efficiently simulating small-room
//! acoustics"), then a diffuse tail that decays faster at high frequencies than at low ones (walls,
//! furnishings and air absorb more at high frequencies, so real rooms ring longest in the bass), at
//! the level the source–microphone distance gives in a diffuse field (the critical distance).
//!
//! Every quantity is drawn from the caller's RNG, so an epoch's augmentation stays reproducible.

use crate::util::fft_plans;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Speed of sound, m/s.
const SPEED_OF_SOUND: f32 = 343.0;
/// Reflections that arrive within this time after the direct sound are placed one by one; after it
/// the diffuse tail carries the reverberation.
const EARLY_WINDOW_S: f32 = 0.05;
/// Longest impulse response generated, seconds (longer tails are inaudible under speech at these
/// levels and only cost convolution time).
const MAX_LENGTH_S: f32 = 3.0;
/// Upper edges of the tail's frequency bands, Hz (the last band runs to the Nyquist frequency).
const BAND_EDGES_HZ: [f32; 5] = [250.0, 500.0, 1000.0, 2000.0, 4000.0];

/// A shoebox room and where the talker and the microphone are in it, all in metres.
#[derive(Clone, Debug, PartialEq)]
pub struct Room {
    /// Length, width and height.
    pub size: [f32; 3],
    /// The talker's position.
    pub source: [f32; 3],
    /// The microphone's position.
    pub microphone: [f32; 3],
    /// Reverberation time (−60 dB) in the middle bands, seconds.
    pub rt60_s: f32,
}

impl Room {
    /// A random room, from a small office to a hall (a quarter of the draws), with a
    /// reverberation time that grows with its volume (log-uniform from 0.2 s to 0.6 s + V / 150 m³,
    /// at most 2.5 s: a living room up to about 1 s, a hall up to 2.5 s) and the microphone
    /// 0.3–3 m from the talker (log-uniform: close talk as often as across the room).
    pub fn random(rng: &mut impl Rng) -> Room {
        let size = if rng.gen_bool(0.25) {
            [
                rng.gen_range(10.0..25.0),
                rng.gen_range(8.0..18.0),
                rng.gen_range(4.0..10.0),
            ]
        } else {
            [
                rng.gen_range(3.0..10.0),
                rng.gen_range(2.5..8.0),
                rng.gen_range(2.4..4.0),
            ]
        };
        let volume: f32 = size.iter().product();
        let longest = (0.6 + volume / 150.0).min(2.5);
        let rt60_s = rng.gen_range(0.2f32.ln()..longest.ln()).exp();
        let margin = 0.25;
        let inside = |p: &[f32; 3]| (0..3).all(|a| p[a] >= margin && p[a] <= size[a] - margin);
        let source = point_in(&size, margin, rng);
        let mut microphone = point_in(&size, margin, rng);
        // A microphone at the drawn distance in a random direction, if that point is in the room
        // (rooms of 2.4 m and more leave room for most draws); else the uniform point drawn above.
        let distance = (rng.gen_range(0.3f32.ln()..3.0f32.ln())).exp();
        for _ in 0..16 {
            let (u, v): (f32, f32) = (rng.gen_range(-1.0..1.0), rng.gen_range(0.0..1.0));
            let azimuth = v * std::f32::consts::TAU;
            let r = (1.0 - u * u).sqrt();
            let candidate = [
                source[0] + distance * r * azimuth.cos(),
                source[1] + distance * r * azimuth.sin(),
                source[2] + distance * u,
            ];
            if inside(&candidate) {
                microphone = candidate;
                break;
            }
        }
        Room {
            size,
            source,
            microphone,
            rt60_s,
        }
    }

    fn volume(&self) -> f32 {
        self.size.iter().product()
    }

    fn surface(&self) -> f32 {
        let [x, y, z] = self.size;
        2.0 * (x * y + x * z + y * z)
    }

    /// Distance from the talker to the microphone.
    pub fn distance(&self) -> f32 {
        (0..3)
            .map(|a| (self.source[a] - self.microphone[a]).powi(2))
            .sum::<f32>()
            .sqrt()
            .max(0.05)
    }

    /// Pressure reflection coefficient of the walls that gives `rt60_s` by Sabine's formula
    /// (RT60 = 0.161 V / (S α)).
    fn reflection_coefficient(&self) -> f32 {
        let absorption = (0.161 * self.volume() / (self.surface() * self.rt60_s)).clamp(0.02, 0.98);
        (1.0 - absorption).sqrt()
    }

    /// Energy ratio of the direct sound to the reverberation at the microphone in a diffuse field:
    /// (critical distance / distance)², the critical distance being 0.057 √(Q V / RT60) m with a
    /// talker's directivity Q ≈ 2 (the mouth radiates forwards).
    pub fn direct_to_reverberant(&self) -> f32 {
        let critical = 0.057 * (2.0 * self.volume() / self.rt60_s).sqrt();
        (critical / self.distance()).powi(2)
    }

    /// The impulse response at `sample_rate_hz`, direct path at index 0 (the propagation delay is
    /// removed so the speech keeps its timing), with unit direct amplitude.
    pub fn impulse_response(&self, sample_rate_hz: u32, rng: &mut impl Rng) -> Vec<f32> {
        let rate = sample_rate_hz as f32;
        let rt60 = self.rt60_s.max(0.05);
        let len = ((rt60.min(MAX_LENGTH_S) * rate) as usize).max(2);
        let mut rir = vec![0.0f32; len];

        // Early part: image sources whose sound arrives within the early window of the direct
        // sound, each attenuated by the walls it bounced off and by its path length.
        let direct = self.distance();
        let beta = self.reflection_coefficient();
        let horizon = direct + EARLY_WINDOW_S * SPEED_OF_SOUND;
        let reach = |axis: usize| (horizon / (2.0 * self.size[axis])).ceil() as i32 + 1;
        for mx in -reach(0)..=reach(0) {
            for my in -reach(1)..=reach(1) {
                for mz in -reach(2)..=reach(2) {
                    for q in 0..8u32 {
                        let m = [mx, my, mz];
                        let mut squared = 0.0f32;
                        let mut bounces = 0i32;
                        for (axis, &image) in m.iter().enumerate() {
                            let mirrored = (q >> axis) & 1;
                            let sign = if mirrored == 1 { -1.0 } else { 1.0 };
                            let offset = sign * self.source[axis] - self.microphone[axis]
                                + 2.0 * image as f32 * self.size[axis];
                            squared += offset * offset;
                            bounces += (image - mirrored as i32).abs() + image.abs();
                        }
                        let path = squared.sqrt();
                        if bounces == 0 || path > horizon {
                            continue;
                        }
                        let amplitude = beta.powi(bounces) * direct / path;
                        let at = (path - direct) / SPEED_OF_SOUND * rate;
                        // Linear interpolation between the two nearest samples: a fractional delay
                        // without a filter bank (its slight low-pass is below what rooms do).
                        let i = at.floor() as usize;
                        let frac = at - at.floor();
                        if i + 1 < len {
                            rir[i] += amplitude * (1.0 - frac);
                            rir[i + 1] += amplitude * frac;
                        }
                    }
                }
            }
        }

        // Diffuse tail: noise in bands, each decaying at its own rate, faded in over the early
        // window and matched at its end to the early reflections' energy per sample, so the
        // response decays without a step where the reflections become too dense to place one by one.
        let tail = decaying_band_noise(len, sample_rate_hz, rt60, rng);
        let fade = (EARLY_WINDOW_S * rate).max(1.0);
        let junction = ((0.6 * fade) as usize).min(len - 1)..(fade as usize).min(len);
        let density = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32;
        let early_density = density(&rir[junction.clone()]);
        let tail_density = density(&tail[junction]);
        let match_scale = if early_density > 0.0 && tail_density > 0.0 {
            (early_density / tail_density).sqrt()
        } else {
            1.0
        };
        for (n, (r, t)) in rir.iter_mut().zip(&tail).enumerate() {
            let ramp = (n as f32 / fade).min(1.0);
            *r += match_scale * t * (0.5 - 0.5 * (std::f32::consts::PI * ramp).cos());
        }
        // The level of the whole reverberation below the direct sound: the diffuse-field ratio
        // for this distance and room, within ±3 dB (the image sources alone overstate the early
        // energy of rooms whose surfaces scatter).
        let reverberant: f32 = rir[1..].iter().map(|v| v * v).sum();
        let jitter = 10f32.powf(rng.gen_range(-3.0..3.0) / 10.0);
        let wanted = jitter / self.direct_to_reverberant().max(1e-3);
        if reverberant > 0.0 {
            let scale = (wanted / reverberant).sqrt();
            rir.iter_mut().for_each(|v| *v *= scale);
        }
        rir[0] = 1.0;
        rir
    }
}

/// A uniformly drawn point at least `margin` from every wall.
fn point_in(size: &[f32; 3], margin: f32, rng: &mut impl Rng) -> [f32; 3] {
    let mut p = [0.0f32; 3];
    for (coordinate, extent) in p.iter_mut().zip(size) {
        *coordinate = rng.gen_range(margin..extent - margin);
    }
    p
}

/// Gaussian noise of `len` samples split into frequency bands, each band's amplitude decaying to
/// −60 dB in its own reverberation time: the middle bands in `rt60_s`, the lowest up to 30 % longer
/// and the highest down to half as long, varied per call.
fn decaying_band_noise(
    len: usize,
    sample_rate_hz: u32,
    rt60_s: f32,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let rate = sample_rate_hz as f32;
    let n = len.next_power_of_two().max(2);
    let forward = fft_plans::forward(n);
    let inverse = fft_plans::inverse(n);
    let mut noise: Vec<f32> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
    let mut spectrum = forward.make_output_vec();
    if forward.process(&mut noise, &mut spectrum).is_err() {
        return vec![0.0; len];
    }
    let bin_hz = rate / n as f32;
    let low_factor = rng.gen_range(1.0..1.3);
    let high_factor = rng.gen_range(0.5..0.85);
    let mut out = vec![0.0f32; len];
    let mut lower = 0.0f32;
    let bands = BAND_EDGES_HZ.len() + 1;
    for band in 0..bands {
        let upper = BAND_EDGES_HZ.get(band).copied().unwrap_or(f32::INFINITY);
        if lower >= rate / 2.0 {
            break;
        }
        // Reverberation time falls from the lowest band to the highest.
        let position = band as f32 / (bands - 1) as f32;
        let factor = if position < 0.4 {
            low_factor + (1.0 - low_factor) * position / 0.4
        } else {
            1.0 + (high_factor - 1.0) * (position - 0.4) / 0.6
        };
        let decay = 6.9078 / (rt60_s * factor * rate); // ln(1000): −60 dB in amplitude
        let mut band_spectrum: Vec<_> = spectrum
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                let f = k as f32 * bin_hz;
                if f >= lower && f < upper {
                    c
                } else {
                    realfft::num_complex::Complex::new(0.0, 0.0)
                }
            })
            .collect();
        let mut band_noise = inverse.make_output_vec();
        if inverse
            .process(&mut band_spectrum, &mut band_noise)
            .is_err()
        {
            return vec![0.0; len];
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o += band_noise[i] * (-decay * i as f32).exp() / n as f32;
        }
        lower = upper;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    /// Time for the backward-integrated energy (Schroeder's curve) to fall from −5 to −25 dB,
    /// times 3: an RT60 estimate that ignores the direct sound.
    fn rt60_estimate(x: &[f32], rate: f32) -> f32 {
        let mut remaining: Vec<f64> = vec![0.0; x.len() + 1];
        for i in (0..x.len()).rev() {
            remaining[i] = remaining[i + 1] + (x[i] as f64).powi(2);
        }
        let total = remaining[0];
        let db = |i: usize| 10.0 * (remaining[i] / total).log10();
        let t5 = (0..x.len()).find(|&i| db(i) <= -5.0).unwrap_or(0);
        let t25 = (0..x.len()).find(|&i| db(i) <= -25.0).unwrap_or(x.len());
        3.0 * (t25 - t5) as f32 / rate
    }

    #[test]
    fn the_tail_decays_at_the_requested_rate_and_faster_at_high_frequencies() {
        let mut rng = StdRng::seed_from_u64(3);
        let rate = 16_000;
        let tail = decaying_band_noise(16_000, rate, 0.6, &mut rng);
        assert!(tail.iter().all(|v| v.is_finite()));
        let rt = rt60_estimate(&tail, rate as f32);
        assert!((0.4..0.8).contains(&rt), "RT60 {rt}");
        // Split the tail at 2 kHz by FFT: the high part must die sooner.
        let n = tail.len().next_power_of_two();
        let mut planner = realfft::RealFftPlanner::<f32>::new();
        let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
        let mut x = tail.clone();
        x.resize(n, 0.0);
        let mut spec = fwd.make_output_vec();
        fwd.process(&mut x, &mut spec).expect("planned length");
        let split = |keep_low: bool| {
            let mut s: Vec<_> = spec
                .iter()
                .enumerate()
                .map(|(k, &c)| {
                    let low = (k as f32) * (rate as f32) / (n as f32) < 2000.0;
                    if low == keep_low {
                        c
                    } else {
                        realfft::num_complex::Complex::new(0.0, 0.0)
                    }
                })
                .collect();
            let mut out = inv.make_output_vec();
            inv.process(&mut s, &mut out).expect("planned length");
            out.truncate(tail.len());
            out
        };
        let (low, high) = (split(true), split(false));
        let (rt_low, rt_high) = (
            rt60_estimate(&low, rate as f32),
            rt60_estimate(&high, rate as f32),
        );
        assert!(rt_high < 0.9 * rt_low, "low {rt_low} s, high {rt_high} s");
    }

    #[test]
    fn rooms_give_direct_sound_first_then_reflections_at_the_diffuse_level() {
        for seed in 0..40 {
            let mut rng = StdRng::seed_from_u64(seed);
            let room = Room::random(&mut rng);
            assert!(
                (0.2..=2.5).contains(&room.rt60_s),
                "seed {seed}: RT60 {}",
                room.rt60_s
            );
            let d = room.distance();
            assert!((0.05..12.0).contains(&d), "seed {seed}: distance {d}");
            for a in 0..3 {
                assert!(room.microphone[a] > 0.0 && room.microphone[a] < room.size[a]);
            }
            let rir = room.impulse_response(16_000, &mut rng);
            assert!(rir.iter().all(|v| v.is_finite()));
            assert_eq!(rir[0], 1.0);
            let reverberant: f32 = rir[1..].iter().map(|v| v * v).sum();
            assert!(reverberant > 0.0);
            // The ratio the diffuse-field model asks for, within the ±3 dB jitter.
            let drr_db = 10.0 * (1.0 / reverberant).log10();
            let wanted_db = 10.0 * room.direct_to_reverberant().max(1e-3).log10();
            assert!(
                (drr_db - wanted_db).abs() <= 3.01,
                "seed {seed}: DRR {drr_db} dB, diffuse model {wanted_db} dB"
            );
        }
    }

    #[test]
    fn the_first_reflection_arrives_after_the_direct_sound_at_the_geometric_delay() {
        // Talker and microphone 1 m apart, 1 m above the floor: the floor reflection's path is
        // √(1² + 2²) = 2.236 m, 1.236 m later than the direct sound.
        let room = Room {
            size: [10.0, 10.0, 10.0],
            source: [4.5, 5.0, 1.0],
            microphone: [5.5, 5.0, 1.0],
            rt60_s: 0.3,
        };
        // Zero the diffuse tail's share by reading only the first 6 ms (the tail fades in).
        let mut rng = StdRng::seed_from_u64(1);
        let rir = room.impulse_response(16_000, &mut rng);
        let expected = (5f32.sqrt() - 1.0) / SPEED_OF_SOUND * 16_000.0;
        let first = (1..96)
            .max_by(|&a, &b| rir[a].abs().total_cmp(&rir[b].abs()))
            .unwrap_or(0);
        assert!(
            (first as f32 - expected).abs() <= 1.0,
            "strongest early reflection at {first}, expected {expected}"
        );
    }
}
