//! Clicks: keyboard and mouse clicks, a pen tapped on the desk, the crackle of a bad contact.
//! Each is a few milliseconds of broadband sound that the network hears as a plosive or a
//! fricative: key presses at 3–8 a second, 0–10 dB under the speech's peak, cost default-v14 4–10
//! points of PER on the real sentence sets (models/README.md, "Clicks").
//!
//! [`remove_clicks`] finds them in the upper part of the recording's band, where speech is quiet
//! except in fricatives and plosive releases, as events that stand 25 dB over the band's level
//! both before and after them and fall back within a few milliseconds; a plosive's burst is followed
//! by its aspiration or frication and lasts longer. Each click is then replaced by the
//! least-squares autoregressive interpolation of the sound around it ([`super::lsar`]), as
//! audio restoration removes the clicks of old records (Godsill and Rayner, *Digital Audio
//! Restoration*, 1998, ch. 5).

use rayon::prelude::*;

use super::lsar::interpolate_gap;

/// What [`remove_clicks`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClickRemoval {
    /// Clicks found and interpolated.
    pub clicks: usize,
    /// Samples replaced.
    pub samples: usize,
}

/// Frame hop and half the frame length of the band's energy envelope (seconds).
const HOP_S: f64 = 0.001;
/// The band's level around a frame: the median energy of the frames 5–30 ms before it, and of
/// those 5–30 ms after it (frames).
const CONTEXT_FRAMES: usize = 30;
const GUARD_FRAMES: usize = 5;
/// A side with fewer frames than this (the recording's edge) is not a level, and a frame without
/// both levels is not a click: a recording that starts or ends on a consonant's burst would lose
/// it (measured at 20 dB: taking one side alone at the edges cost psdata's clean recordings 2
/// phones and found no more of its clicks).
const MIN_SIDE_FRAMES: usize = 5;
/// A click stands this many times (25 dB) over the louder of the two sides' levels. On the real
/// sentence sets (models/README.md, "Clicks"): at 20 dB, 0.1–0.3 false clicks a second in clean
/// speech (rises of 20.5–23.1 dB, none wider than 3 ms) cost 0.4–0.8 points; at 25 dB the clean
/// sets are unchanged and key clicks 0–10 dB under the speech's peak are still mostly found.
const MIN_RISE: f64 = 316.0;
/// ... and within ±10 ms of its peak at most this many frames (ms) are within 10 dB of it: a key's
/// click falls back in 2–6 ms, a plosive's burst and a fricative's onset last 5–20.
const MAX_WIDTH_FRAMES: usize = 6;
const WIDTH_REACH_FRAMES: usize = 10;
/// The click replaced: the frames around its peak within 20 dB of it, at most 8 ms either side.
const MAX_REACH_FRAMES: usize = 8;
/// Band levels below −70 dBFS (energy per sample, int16 scale) count as this: a click over digital
/// silence is measured against a quiet room, not against nothing.
const FLOOR_ENERGY: f64 = 32768.0 * 32768.0 * 1e-7;
/// Order of the interpolating model at 16 kHz (scaled with the rate) and its context either side.
const ORDER_AT_16K: usize = 24;
const MIN_CONTEXT_SAMPLES: usize = 160;

/// Find the clicks in `samples` (at `sample_rate_hz`) and replace each by the interpolation of the
/// sound around it. `band_low_hz` is the lower edge of the band the clicks are looked for in: the
/// upper half of the recording's own band (4–8 kHz for a 16 kHz recording, 2–4 kHz for a
/// telephone one resampled to 16 kHz). Recordings without clicks are left as they are.
pub fn remove_clicks(samples: &mut [f32], sample_rate_hz: u32, band_low_hz: f32) -> ClickRemoval {
    let clicks = find_clicks(samples, sample_rate_hz, band_low_hz);
    let order = (ORDER_AT_16K * sample_rate_hz as usize / 16_000).clamp(8, 64);
    let context =
        |gap: &std::ops::Range<usize>| (3 * order).max(2 * gap.len()).max(MIN_CONTEXT_SAMPLES);
    // Clicks whose windows (the gap and its context) overlap are interpolated one after another,
    // the later one from the earlier one's interpolation; groups apart from each other on all
    // cores, each on a copy of its stretch: the result is what one click after another gives.
    let window = |gap: &std::ops::Range<usize>| {
        gap.start.saturating_sub(context(gap))..(gap.end + context(gap)).min(samples.len())
    };
    // Each group with the stretch that holds all its windows.
    let mut groups: Vec<(Vec<std::ops::Range<usize>>, std::ops::Range<usize>)> = Vec::new();
    for gap in clicks {
        let reach = window(&gap);
        match groups.last_mut() {
            Some((group, stretch)) if reach.start < stretch.end => {
                stretch.start = stretch.start.min(reach.start);
                stretch.end = stretch.end.max(reach.end);
                group.push(gap);
            }
            _ => groups.push((vec![gap], reach)),
        }
        // A long click's context may reach back into the group before.
        while groups.len() >= 2 && groups[groups.len() - 1].1.start < groups[groups.len() - 2].1.end
        {
            let (later, reach) = groups.pop().expect("two groups");
            let (group, stretch) = groups.last_mut().expect("two groups");
            stretch.start = stretch.start.min(reach.start);
            stretch.end = stretch.end.max(reach.end);
            group.extend(later);
        }
    }
    let repaired: Vec<(usize, Vec<f32>, ClickRemoval)> = groups
        .par_iter()
        .map(|(group, reach)| {
            let start = reach.start;
            let mut stretch = samples[reach.clone()].to_vec();
            let mut removal = ClickRemoval::default();
            for gap in group {
                let local = gap.start - start..gap.end - start;
                if interpolate_gap(&mut stretch, local, order, context(gap)) {
                    removal.clicks += 1;
                    removal.samples += gap.len();
                }
            }
            (start, stretch, removal)
        })
        .collect();
    let mut removal = ClickRemoval::default();
    for ((group, _), (start, stretch, part)) in groups.iter().zip(repaired) {
        for gap in group {
            samples[gap.clone()].copy_from_slice(&stretch[gap.start - start..gap.end - start]);
        }
        removal.clicks += part.clicks;
        removal.samples += part.samples;
    }
    removal
}

/// The sample ranges of the clicks in `samples`, in order and apart.
fn find_clicks(
    samples: &[f32],
    sample_rate_hz: u32,
    band_low_hz: f32,
) -> Vec<std::ops::Range<usize>> {
    let hop = ((HOP_S * f64::from(sample_rate_hz)).round() as usize).max(1);
    let energy = band_energy(samples, sample_rate_hz, band_low_hz, hop);
    let n = energy.len();
    // Whether each frame stands MIN_RISE over both sides' levels (independent per frame: on all
    // cores; a long recording has millions of frames).
    let stands_out: Vec<bool> = (0..n)
        .into_par_iter()
        .with_min_len(4_096)
        .map(|k| {
            let before = k.saturating_sub(CONTEXT_FRAMES)..k.saturating_sub(GUARD_FRAMES);
            let after = (k + GUARD_FRAMES).min(n)..(k + CONTEXT_FRAMES).min(n);
            energy[k] > MIN_RISE * FLOOR_ENERGY
                && [before, after].into_iter().all(|side| {
                    side.len() >= MIN_SIDE_FRAMES && median_is_below(&energy[side], energy[k])
                })
        })
        .collect();
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    let mut k = 0;
    while k < n {
        if !stands_out[k] {
            k += 1;
            continue;
        }
        // The click's peak: the loudest of the next few frames.
        let peak = (k..(k + GUARD_FRAMES).min(n))
            .max_by(|&a, &b| energy[a].total_cmp(&energy[b]))
            .unwrap_or(k);
        let top = energy[peak];
        let width = (peak.saturating_sub(WIDTH_REACH_FRAMES)
            ..(peak + WIDTH_REACH_FRAMES + 1).min(n))
            .filter(|&j| energy[j] > top / 10.0)
            .count();
        if width <= MAX_WIDTH_FRAMES {
            let mut first = peak;
            while first > 0 && peak - first < MAX_REACH_FRAMES && energy[first - 1] > top / 100.0 {
                first -= 1;
            }
            let mut last = peak + 1;
            while last < n && last - peak < MAX_REACH_FRAMES && energy[last] > top / 100.0 {
                last += 1;
            }
            // Frame j covers samples [j·hop, j·hop + 2·hop); one hop more either side.
            let start = (first * hop).saturating_sub(hop);
            let end = ((last + 2) * hop + hop).min(samples.len());
            match spans.last_mut() {
                Some(previous) if start <= previous.end => previous.end = previous.end.max(end),
                _ => spans.push(start..end),
            }
        }
        k = peak + GUARD_FRAMES + 1;
    }
    spans
}

/// Whether `MIN_RISE` times the median of `side` (the upper one of an even count, or the floor
/// if that is higher) is below `energy`: at least half of `side` (one more than half its
/// length, rounded down) is that far below it. Counting needs no sort.
fn median_is_below(side: &[f64], energy: f64) -> bool {
    let below = side.iter().filter(|&&e| MIN_RISE * e < energy).count();
    below > side.len() / 2
}

/// Mean energy per sample of `samples` high-passed at `band_low_hz` (fourth-order Butterworth), in
/// frames of `2 · hop` samples every `hop` (the last frames shorter, over the same length), in one
/// pass: a long recording's filtered copy is never kept.
fn band_energy(samples: &[f32], sample_rate_hz: u32, band_low_hz: f32, hop: usize) -> Vec<f64> {
    let cutoff = f64::from(band_low_hz).min(0.45 * f64::from(sample_rate_hz));
    // Blocks of hops filtered on all cores, each from WARM_UP_S before its start: the filters
    // forget their start within a few milliseconds (poles well inside the unit circle), so the
    // blocks' energies are the whole recording's to far below any threshold here.
    let block = hop * BLOCK_HOPS;
    let warm_up = (WARM_UP_S * f64::from(sample_rate_hz)) as usize;
    let hops: Vec<f64> = (0..samples.len().div_ceil(block))
        .into_par_iter()
        .flat_map_iter(|b| {
            let start = b * block;
            let end = (start + block).min(samples.len());
            let mut filters = [
                HighPass::new(sample_rate_hz, cutoff),
                HighPass::new(sample_rate_hz, cutoff),
            ];
            let mut filter = |x: f32| {
                filters
                    .iter_mut()
                    .fold(f64::from(x), |v, filter| filter.next(v))
            };
            for &x in &samples[start.saturating_sub(warm_up)..start] {
                filter(x);
            }
            samples[start..end]
                .chunks(hop)
                .map(|chunk| {
                    chunk
                        .iter()
                        .map(|&x| {
                            let y = filter(x);
                            y * y
                        })
                        .sum::<f64>()
                })
                .collect::<Vec<f64>>()
        })
        .collect();
    let frames = samples.len() / hop;
    (0..frames)
        .map(|k| (hops[k] + hops.get(k + 1).copied().unwrap_or(0.0)) / (2 * hop) as f64)
        .collect()
}

/// Hops per block of [`band_energy`] (a minute at 16 kHz), and the block's warm-up, seconds.
const BLOCK_HOPS: usize = 60_000;
const WARM_UP_S: f64 = 0.05;

/// A second-order Butterworth high-pass (the audio EQ cookbook's biquad), sample by sample.
struct HighPass {
    b0: f64,
    b1: f64,
    a1: f64,
    a2: f64,
    x1: f64,
    x2: f64,
    y1: f64,
    y2: f64,
}

impl HighPass {
    fn new(sample_rate_hz: u32, cutoff_hz: f64) -> HighPass {
        let w0 = 2.0 * std::f64::consts::PI * cutoff_hz / f64::from(sample_rate_hz);
        let alpha = w0.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let cos = w0.cos();
        let a0 = 1.0 + alpha;
        HighPass {
            b0: (1.0 + cos) / 2.0 / a0,
            b1: -(1.0 + cos) / a0,
            a1: -2.0 * cos / a0,
            a2: (1.0 - alpha) / a0,
            x1: 0.0,
            x2: 0.0,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn next(&mut self, x: f64) -> f64 {
        let y = self.b0 * x + self.b1 * self.x1 + self.b0 * self.x2
            - self.a1 * self.y1
            - self.a2 * self.y2;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise source in [−1, 1).
    fn noise(seed: u64) -> impl FnMut() -> f32 {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }

    /// Two seconds of a voiced-like sound: a 140 Hz pulse train through two resonances, with a
    /// little breath noise, at about −15 dBFS.
    fn vowel(rate: u32) -> Vec<f32> {
        let mut breath = noise(7);
        let n = 2 * rate as usize;
        let period = rate as f32 / 140.0;
        let mut out = Vec::with_capacity(n);
        let (mut y1, mut y2, mut z1, mut z2) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let pulse = if (i as f32 % period) < 1.0 { 1.0 } else { 0.0 };
            let excitation = pulse + 0.01 * breath();
            // Resonances near 700 and 1200 Hz (poles at radius 0.97).
            let y = excitation + 2.0 * 0.97 * (0.2747f32).cos() * y1 - 0.9409 * y2;
            y2 = y1;
            y1 = y;
            let z = y + 2.0 * 0.97 * (0.4712f32).cos() * z1 - 0.9409 * z2;
            z2 = z1;
            z1 = z;
            out.push(z);
        }
        let peak = out.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        out.iter().map(|x| x / peak * 6_000.0).collect()
    }

    /// A click: `len` samples of decaying noise with peak `level`, added at `at`.
    fn add_burst(x: &mut [f32], at: usize, len: usize, level: f32, seed: u64) {
        let mut n = noise(seed);
        for i in 0..len {
            let decay = (-5.0 * i as f32 / len as f32).exp();
            x[at + i] += level * decay * n();
        }
    }

    #[test]
    fn clicks_in_a_vowel_are_found_and_interpolated() {
        let rate = 16_000;
        let clean = vowel(rate);
        let mut clicked = clean.clone();
        let at = [4_000usize, 9_100, 15_000, 23_500];
        for (i, &a) in at.iter().enumerate() {
            add_burst(&mut clicked, a, 64, 5_000.0, i as u64);
        }
        let spans = find_clicks(&clicked, rate, 4_000.0);
        assert_eq!(spans.len(), at.len(), "{spans:?}");
        for (span, &a) in spans.iter().zip(&at) {
            assert!(span.start <= a && span.end >= a + 40, "{span:?} vs {a}");
            assert!(span.len() < 400, "{span:?}");
        }
        let mut repaired = clicked.clone();
        let removal = remove_clicks(&mut repaired, rate, 4_000.0);
        assert_eq!(removal.clicks, at.len());
        // The clicks' broadband sound is gone: over each span the 4-8 kHz band holds what the
        // vowel has there (within 6 dB), where the click stood 20 dB or more over it. (The
        // waveform itself is not the vowel's: a model of order 24 cannot carry a glottal pulse of
        // a 7 ms period across the gap.)
        let hop = 16;
        let bands = |x: &[f32]| band_energy(x, rate, 4_000.0, hop);
        let (clean_band, clicked_band, repaired_band) =
            (bands(&clean), bands(&clicked), bands(&repaired));
        for span in &spans {
            let frames = span.start / hop..span.end / hop - 1;
            let sum = |e: &[f64]| e[frames.clone()].iter().sum::<f64>();
            let clean_energy = sum(&clean_band);
            assert!(sum(&clicked_band) > 100.0 * clean_energy, "{span:?}");
            assert!(sum(&repaired_band) < 4.0 * clean_energy, "{span:?}");
        }
    }

    #[test]
    fn a_click_in_a_steady_tone_is_interpolated_almost_exactly() {
        // Two tones and a little hiss: what an autoregressive model describes well, so the
        // interpolation is close to the signal the click covered.
        let rate = 16_000u32;
        let mut hiss = noise(21);
        let tau = 2.0 * std::f32::consts::PI;
        let clean: Vec<f32> = (0..rate as usize)
            .map(|i| {
                let t = i as f32 / rate as f32;
                3_000.0 * (tau * 440.0 * t).sin()
                    + 1_500.0 * (tau * 1_230.0 * t).sin()
                    + 20.0 * hiss()
            })
            .collect();
        let mut clicked = clean.clone();
        add_burst(&mut clicked, 8_000, 64, 20_000.0, 4);
        let mut repaired = clicked.clone();
        assert_eq!(remove_clicks(&mut repaired, rate, 4_000.0).clicks, 1);
        let error = |x: &[f32]| -> f64 {
            x.iter()
                .zip(&clean)
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum()
        };
        assert!(
            error(&repaired) < 0.01 * error(&clicked),
            "{} vs {}",
            error(&repaired),
            error(&clicked)
        );
    }

    #[test]
    fn clicks_interpolated_in_parallel_give_what_one_after_another_gives() {
        // Clicks far apart, and pairs close enough that their windows overlap.
        let rate = 16_000;
        let mut x = vowel(rate);
        let mut at = Vec::new();
        let mut t = 1_000usize;
        for i in 0..12 {
            at.push(t);
            t += if i % 3 == 0 { 220 } else { 2_300 };
        }
        for (i, &a) in at.iter().enumerate() {
            add_burst(&mut x, a, 64, 5_000.0, 40 + i as u64);
        }
        let mut parallel = x.clone();
        let removal = remove_clicks(&mut parallel, rate, 4_000.0);
        assert!(removal.clicks >= 8, "{removal:?}");
        let mut sequential = x.clone();
        let order = ORDER_AT_16K;
        for gap in find_clicks(&x, rate, 4_000.0) {
            let context = (3 * order).max(2 * gap.len()).max(MIN_CONTEXT_SAMPLES);
            interpolate_gap(&mut sequential, gap, order, context);
        }
        assert_eq!(parallel, sequential);
    }

    #[test]
    fn a_click_in_silence_is_removed() {
        let rate = 16_000;
        let mut hiss = noise(3);
        let mut x: Vec<f32> = (0..rate as usize).map(|_| 3.0 * hiss()).collect();
        add_burst(&mut x, 8_000, 64, 10_000.0, 9);
        let removal = remove_clicks(&mut x, rate, 4_000.0);
        assert_eq!(removal.clicks, 1);
        let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak < 100.0, "peak {peak} after the repair");
    }

    #[test]
    fn long_bursts_and_steady_sounds_are_not_clicks() {
        let rate = 16_000;
        // A plosive-like burst: 20 ms of noise after a quiet closure, followed by a vowel.
        let mut x = vec![0.0f32; 6_000];
        let mut n = noise(11);
        x.extend((0..320).map(|_| 4_000.0 * n()));
        x.extend(vowel(rate).into_iter().take(8_000));
        assert!(find_clicks(&x, rate, 4_000.0).is_empty());
        // Hiss, a vowel and digital silence have none either.
        let mut hiss = noise(5);
        let steady: Vec<f32> = (0..rate as usize).map(|_| 300.0 * hiss()).collect();
        assert!(find_clicks(&steady, rate, 4_000.0).is_empty());
        assert!(find_clicks(&vowel(rate), rate, 4_000.0).is_empty());
        let mut silence = vec![0.0f32; 16_000];
        assert_eq!(
            remove_clicks(&mut silence, rate, 4_000.0),
            ClickRemoval::default()
        );
        assert!(silence.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn short_and_empty_inputs_are_left_alone() {
        for len in [0usize, 1, 10, 100, 1_000] {
            let mut x: Vec<f32> = (0..len).map(|i| (i % 7) as f32 * 1_000.0).collect();
            let before = x.clone();
            let removal = remove_clicks(&mut x, 16_000, 4_000.0);
            assert_eq!(removal.clicks, 0, "len {len}");
            assert_eq!(x, before);
        }
    }
}
