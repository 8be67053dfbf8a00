//! Spectral holes filled before features.
//!
//! A perceptual coder at a low bit rate (MP3 at 16–24 kbit/s, as old voice recorders, podcasts and
//! web audio have it) spends its bits on the loudest parts of the spectrum and sends nothing for
//! the rest: a whole scale-factor band drops to zero for one granule (36 ms at 16 kHz) and comes
//! back in the next, so the decoded spectrogram is riddled with holes 40 dB and more deep. The
//! network, trained on uncoded speech, hears them as something else (MP3 at 16 kbit/s cost the real
//! sentence sets 10–17 points of PER, at 24 kbit/s 1–2; `models/README.md`, "Spectral holes").
//! Newer coders fill such holes with noise at the decoder (AAC's perceptual noise substitution,
//! Opus's spreading of the fine structure), and Opus at 12 kbit/s costs those sets at most two
//! points. This fills them after the fact: a cell of the STFT well under both its neighbourhood in
//! time (the same bin, ±56 ms) and in frequency (the same frame, ±375 Hz) is replaced by noise
//! under the quieter of the two.
//!
//! Uncoded audio has few such holes (cells 40 dB under both neighbourhoods across at least three
//! bins: at most 0.15 % of the speech cells of each real evaluation recording, 0.8 % of a synthetic
//! voice's; 2.9–5.1 % after MP3 at 16 kbit/s, 0.6–2.0 % at 24), so a recording is filled only where
//! it measures as coded ([`MIN_DEEP_HOLE_SHARE`]) and is otherwise left exactly as it is.

use ndarray::Array1;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use realfft::num_complex::Complex;

use super::stft::{Stft, Synthesis};

/// Analysis frame and hop, seconds: about an MP3 granule's resolution at 16 kHz (512 and 128
/// samples).
const FRAME_S: f64 = 0.032;
const HOP_S: f64 = 0.008;

/// Neighbourhood in time: frames on each side of a cell (±56 ms, enough to reach past a granule).
const TIME_RADIUS: usize = 7;

/// Neighbourhood in frequency on each side of a cell, Hz (wider than a scale-factor band).
const FREQ_RADIUS_HZ: f64 = 375.0;

/// In a recording that measures as coded, a cell more than this (dB) under the quieter of its two
/// neighbourhoods is replaced by noise [`FILL_UNDER_DB`] under it: the holes, and the cells at
/// their rims that the coder left ragged. Chosen on MP3 copies of the held-out synthetic voice
/// and the real sentence sets (`models/README.md`, "Spectral holes": 10 / 15 dB against 20 / 10
/// dB, 25.8 → 24.9 % on the held-out voice at 16 kbit/s, 37.7 / 37.1 → 34.4 / 33.5 % on psdata /
/// LibriVox; a fill 3–6 dB under its neighbours was worse everywhere, 20–25 dB no better).
const HOLE_DB: f32 = 10.0;

/// The noise in a hole: this far (dB) under the quieter neighbourhood.
const FILL_UNDER_DB: f32 = 15.0;

/// A cell this far (dB) under both neighbourhoods, with its neighbours on either side in
/// frequency as far under theirs, is a deep hole: what a coder leaves (a scale-factor band is at
/// least 83 Hz wide at 16 kHz, three bins) and uncoded audio hardly has (the valleys between a
/// synthetic voice's harmonics, with no breath noise in them, are one or two bins wide). The share
/// of deep holes among the speech cells decides whether a recording is filled.
const DEEP_HOLE_DB: f32 = 40.0;

/// A recording whose speech cells are at least this share deep holes is filled (see the module
/// documentation for the measured shares).
pub const MIN_DEEP_HOLE_SHARE: f32 = 0.01;

/// Speech frames, for the share: within this many dB of the loud frames (the 95th percentile of
/// the frame energies).
const LOUD_DB: f32 = 30.0;

/// Cells counted for the share: those whose neighbourhood is within this many dB of their frame's
/// loudest cell. The empty band above an 8 kHz recording's 4 kHz is not a hole.
const BAND_DB: f32 = 60.0;

/// Bins whose mean power over the stretch is this far (dB) under the loudest mean within
/// [`FREQ_RADIUS_HZ`] lie at or past the edge of the recording's band (a resampler's or a
/// telephone filter's slope, where the level falls steeply from bin to bin): neither counted nor
/// filled. Speech's own spectrum falls about 6 dB an octave.
const BAND_EDGE_DB: f32 = 20.0;

/// The share is measured on at most this many seconds, in blocks spread over the recording.
const MEASURED_S: f64 = 60.0;
const MEASURED_BLOCK_S: f64 = 5.0;

/// Frames filled at a time (10 s; the spectra of a chunk are held at once).
const CHUNK_FRAMES: usize = 1250;

/// Power floor of a cell (int16 scale, unnormalised FFT: far under one LSB of noise), so that digital
/// silence and the rounding residue beside it never count as holes under one another.
const POWER_FLOOR: f32 = 1.0;

/// What [`fill_spectral_holes`] measured and did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpectralHoles {
    /// The share of the speech cells that are deep holes (0 for audio too short or quiet to
    /// measure).
    pub deep_share: f32,
    /// Whether the holes were filled (the share reached [`MIN_DEEP_HOLE_SHARE`]).
    pub filled: bool,
}

/// Fill the spectral holes of `samples` (at `sample_rate_hz`) with noise when the recording
/// measures as coded at a low bit rate; other recordings are unchanged.
pub fn fill_spectral_holes(samples: &mut [f32], sample_rate_hz: u32) -> SpectralHoles {
    let deep_share = deep_hole_share(samples, sample_rate_hz);
    if deep_share < MIN_DEEP_HOLE_SHARE {
        return SpectralHoles {
            deep_share,
            filled: false,
        };
    }
    let stft = Stft::from_durations(FRAME_S, HOP_S, sample_rate_hz);
    let radius_bins = freq_radius_bins(&stft, sample_rate_hz);
    let frames = stft.frames(samples.len());
    let mut synthesis = Synthesis::new(&stft, samples.len());
    let mut rng = StdRng::seed_from_u64(0x5eed_401e);
    let mut start = 0;
    while start < frames {
        let end = (start + CHUNK_FRAMES).min(frames);
        let first = start.saturating_sub(TIME_RADIUS);
        let last = (end + TIME_RADIUS).min(frames);
        let bins = stft.spectra(samples, first..last);
        let mut powers = vec![0.0f32; (last - first) * bins.len()];
        for (k, bin) in bins.iter().enumerate() {
            for (t, c) in bin.iter().enumerate() {
                powers[t * bins.len() + k] = c.norm_sqr();
            }
        }
        let levels = Levels::new(powers, bins.len(), radius_bins);
        // Only the difference is synthesised: where nothing is filled the recording stays exact.
        let mut change = vec![Array1::<Complex<f32>>::zeros(end - start); bins.len()];
        for (k, (bin, out)) in bins.iter().zip(change.iter_mut()).enumerate() {
            if !levels.in_band[k] {
                continue;
            }
            for t in start..end {
                let (power, reference) = levels.at(t - first, k);
                if power < reference * below(HOLE_DB) {
                    let magnitude = (reference * below(FILL_UNDER_DB)).sqrt();
                    let phase = rng.gen_range(0.0..std::f32::consts::TAU);
                    out[t - start] = Complex::from_polar(magnitude, phase) - bin[t - first];
                }
            }
        }
        synthesis.add(&stft, start, &change);
        start = end;
    }
    for (x, d) in samples.iter_mut().zip(synthesis.finish()) {
        *x += d;
    }
    SpectralHoles {
        deep_share,
        filled: true,
    }
}

/// The share of the speech cells of `samples` that are deep holes, measured on at most
/// 60 s, in 5 s blocks spread evenly over the recording.
pub fn deep_hole_share(samples: &[f32], sample_rate_hz: u32) -> f32 {
    let stft = Stft::from_durations(FRAME_S, HOP_S, sample_rate_hz);
    let radius_bins = freq_radius_bins(&stft, sample_rate_hz);
    let frames = stft.frames(samples.len());
    let block = ((MEASURED_BLOCK_S / HOP_S) as usize).max(1);
    let blocks = frames.div_ceil(block);
    let measured = ((MEASURED_S / MEASURED_BLOCK_S) as usize)
        .max(1)
        .min(blocks);
    let (mut deep, mut counted) = (0usize, 0usize);
    for b in 0..measured {
        // Block starts spread evenly from the first block to the last.
        let start = if measured > 1 {
            (b * (blocks - 1) / (measured - 1)) * block
        } else {
            0
        };
        let end = (start + block).min(frames);
        let bins = stft.len / 2 + 1;
        let mut powers = Vec::with_capacity((end - start) * bins);
        stft.for_each_spectrum(samples, start..end, |_, spectrum| {
            powers.extend(spectrum.iter().map(|c| c.norm_sqr()));
        });
        let levels = Levels::new(powers, bins, radius_bins);
        let loud_from = loud_threshold(&levels);
        let deep_below = below(DEEP_HOLE_DB);
        for t in 0..end - start {
            if levels.frame_energy[t] < loud_from {
                continue;
            }
            let band_from = levels.frame_peak[t] * below(BAND_DB);
            let is_deep = |k: usize| {
                let (power, reference) = levels.at(t, k);
                power < reference * deep_below
            };
            for k in 0..bins {
                let (_, reference) = levels.at(t, k);
                if levels.in_band[k] && reference >= band_from {
                    counted += 1;
                    // A hole spans a band: the deep cells between a voice's harmonics (a
                    // synthesiser's, with no breath noise to fill them) are one or two bins wide.
                    deep += usize::from(
                        k > 0 && k + 1 < bins && is_deep(k - 1) && is_deep(k) && is_deep(k + 1),
                    );
                }
            }
        }
    }
    if counted == 0 {
        0.0
    } else {
        deep as f32 / counted as f32
    }
}

fn freq_radius_bins(stft: &Stft, sample_rate_hz: u32) -> usize {
    let bin_hz = f64::from(sample_rate_hz) / stft.len as f64;
    ((FREQ_RADIUS_HZ / bin_hz).round() as usize).max(1)
}

/// The power ratio `db` decibels down.
fn below(db: f32) -> f32 {
    10f32.powf(-db / 10.0)
}

/// Frame energies at or above this are speech frames: [`LOUD_DB`] under the 95th percentile.
fn loud_threshold(levels: &Levels) -> f32 {
    let mut energies = levels.frame_energy.clone();
    energies.sort_by(f32::total_cmp);
    let Some(&top) = energies.get(energies.len() * 95 / 100) else {
        return f32::INFINITY;
    };
    top * below(LOUD_DB)
}

/// The cells' powers of a stretch of frames with what they are compared with. Powers, not
/// decibels: every comparison is a ratio, and the maximum commutes with the logarithm, so the
/// logarithms (most of the measurement's time) are never taken.
struct Levels {
    bins: usize,
    /// Power of each cell, floored at [`POWER_FLOOR`], frame-major (`[frame * bins + bin]`).
    cell: Vec<f32>,
    /// The quieter of each cell's two neighbourhood maxima, frame-major.
    reference: Vec<f32>,
    /// Each frame's energy and loudest cell.
    frame_energy: Vec<f32>,
    frame_peak: Vec<f32>,
    /// Whether each bin is inside the recording's band (see [`BAND_EDGE_DB`]).
    in_band: Vec<bool>,
}

impl Levels {
    /// `powers`: the cells' powers, frame-major, `bins` a frame.
    fn new(mut cell: Vec<f32>, bins: usize, radius_bins: usize) -> Self {
        let frames = cell.len() / bins.max(1);
        for power in &mut cell {
            *power = power.max(POWER_FLOOR);
        }
        // Along time: the maximum of the rows within the radius, a whole row at a time.
        let mut reference = vec![0.0f32; frames * bins];
        for t in 0..frames {
            let out = &mut reference[t * bins..(t + 1) * bins];
            let rows = t.saturating_sub(TIME_RADIUS)..(t + TIME_RADIUS + 1).min(frames);
            out.copy_from_slice(&cell[rows.start * bins..(rows.start + 1) * bins]);
            for row in cell[rows.start * bins..rows.end * bins]
                .chunks_exact(bins)
                .skip(1)
            {
                for (o, &p) in out.iter_mut().zip(row) {
                    *o = o.max(p);
                }
            }
        }
        let mut means = vec![0.0f32; bins];
        for row in cell.chunks_exact(bins) {
            for (m, &p) in means.iter_mut().zip(row) {
                *m += p;
            }
        }
        let mut scratch = SlidingMax::default();
        let mut maxima = Vec::with_capacity(bins);
        scratch.run(&means, radius_bins, &mut maxima);
        let in_band = means
            .iter()
            .zip(&maxima)
            .map(|(&sum, &nearby)| sum >= nearby * below(BAND_EDGE_DB))
            .collect();
        let mut frame_energy = Vec::with_capacity(frames);
        let mut frame_peak = Vec::with_capacity(frames);
        for t in 0..frames {
            let cells = &cell[t * bins..(t + 1) * bins];
            scratch.run(cells, radius_bins, &mut maxima);
            for (reference, &freq_max) in
                reference[t * bins..(t + 1) * bins].iter_mut().zip(&maxima)
            {
                *reference = reference.min(freq_max);
            }
            frame_energy.push(cells.iter().sum());
            frame_peak.push(cells.iter().copied().fold(0.0, f32::max));
        }
        Levels {
            bins,
            cell,
            reference,
            frame_energy,
            frame_peak,
            in_band,
        }
    }

    /// A cell's power and its reference.
    fn at(&self, frame: usize, bin: usize) -> (f32, f32) {
        let i = frame * self.bins + bin;
        (self.cell[i], self.reference[i])
    }
}

/// `out[i]` = the maximum of `x[i - radius ..= i + radius]` (clipped to `x`), in three comparisons
/// an element whatever the radius (van Herk / Gil–Werman: block-wise running maxima from the left
/// and from the right), with its buffers kept between calls.
#[derive(Default)]
struct SlidingMax {
    padded: Vec<f32>,
    from_left: Vec<f32>,
    from_right: Vec<f32>,
}

impl SlidingMax {
    fn run(&mut self, x: &[f32], radius: usize, out: &mut Vec<f32>) {
        let n = x.len();
        let width = 2 * radius + 1;
        let len = n + 2 * radius;
        let padded = &mut self.padded;
        padded.clear();
        padded.resize(len, f32::NEG_INFINITY);
        padded[radius..radius + n].copy_from_slice(x);
        self.from_left.resize(len, f32::NEG_INFINITY);
        self.from_right.resize(len, f32::NEG_INFINITY);
        for block in (0..len).step_by(width) {
            let end = (block + width).min(len);
            let mut running = f32::NEG_INFINITY;
            for (slot, &v) in self.from_left[block..end]
                .iter_mut()
                .zip(&padded[block..end])
            {
                running = running.max(v);
                *slot = running;
            }
            running = f32::NEG_INFINITY;
            for (slot, &v) in self.from_right[block..end]
                .iter_mut()
                .zip(&padded[block..end])
                .rev()
            {
                running = running.max(v);
                *slot = running;
            }
        }
        out.clear();
        out.extend(
            self.from_right[..n]
                .iter()
                .zip(&self.from_left[width - 1..])
                .map(|(&right, &left)| right.max(left)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 16_000;

    /// Two seconds of a speech-like sound: a voice whose pitch glides between 100 and 200 Hz, with
    /// harmonics falling off like a vowel's, under a 4 Hz syllable envelope, over a faint noise.
    fn voice(rng: &mut StdRng) -> Vec<f32> {
        let rate = RATE as f32;
        let mut phase = 0.0f32;
        (0..2 * RATE as usize)
            .map(|i| {
                let t = i as f32 / rate;
                let f0 = 150.0 + 50.0 * (std::f32::consts::TAU * 0.7 * t).sin();
                phase += std::f32::consts::TAU * f0 / rate;
                let envelope = 0.55 + 0.45 * (std::f32::consts::TAU * 4.0 * t).sin();
                let harmonics: f32 = (1..40)
                    .filter(|&h| h as f32 * f0 < 7_800.0)
                    .map(|h| (h as f32 * phase).sin() / h as f32)
                    .sum();
                3_000.0 * envelope * harmonics + rng.gen_range(-30.0..30.0)
            })
            .collect()
    }

    /// `samples` with holes cut as a coder at a low bit rate leaves them: in each run of 4 frames,
    /// each band of 8 bins above 500 Hz dropped with probability `share`.
    fn with_holes(samples: &[f32], share: f64, rng: &mut StdRng) -> Vec<f32> {
        let stft = Stft::from_durations(FRAME_S, HOP_S, RATE);
        let frames = stft.frames(samples.len());
        let mut bins = stft.spectra(samples, 0..frames);
        let first_band = 500 * stft.len / RATE as usize;
        let bin_count = bins.len();
        for granule in (0..frames).step_by(4) {
            for band in (first_band..bin_count).step_by(8) {
                if rng.gen_bool(share) {
                    for bin in &mut bins[band..(band + 8).min(bin_count)] {
                        for t in granule..(granule + 4).min(frames) {
                            bin[t] = Complex::new(0.0, 0.0);
                        }
                    }
                }
            }
        }
        let mut synthesis = Synthesis::new(&stft, samples.len());
        synthesis.add(&stft, 0, &bins);
        synthesis.finish()
    }

    #[test]
    fn sliding_max_is_the_maximum_over_the_window() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut out = Vec::new();
        for n in [0usize, 1, 2, 5, 16, 33, 100] {
            let x: Vec<f32> = (0..n).map(|_| rng.gen_range(-50.0..50.0)).collect();
            for radius in [0, 1, 3, 7, 12, 60] {
                SlidingMax::default().run(&x, radius, &mut out);
                let naive: Vec<f32> = (0..n)
                    .map(|i| {
                        x[i.saturating_sub(radius)..(i + radius + 1).min(n)]
                            .iter()
                            .copied()
                            .fold(f32::NEG_INFINITY, f32::max)
                    })
                    .collect();
                assert_eq!(out, naive, "n {n}, radius {radius}");
            }
        }
    }

    #[test]
    fn uncoded_audio_is_left_exactly_as_it_is() {
        let mut rng = StdRng::seed_from_u64(2);
        let clean = voice(&mut rng);
        let mut x = clean.clone();
        let holes = fill_spectral_holes(&mut x, RATE);
        assert!(!holes.filled, "{holes:?}");
        assert!(holes.deep_share < MIN_DEEP_HOLE_SHARE / 4.0, "{holes:?}");
        assert_eq!(x, clean);
    }

    #[test]
    fn the_band_edge_of_an_upsampled_narrowband_recording_is_not_a_hole() {
        // An 8 kHz recording brought to 16 kHz: nothing above 4 kHz, a resampler's slope at it.
        let mut rng = StdRng::seed_from_u64(3);
        let narrow: Vec<f32> = voice(&mut rng).into_iter().step_by(2).collect();
        let x = crate::audio::resample(&narrow, RATE / 2, RATE).expect("resampled");
        assert!(deep_hole_share(&x, RATE) < MIN_DEEP_HOLE_SHARE / 2.0);
    }

    #[test]
    fn holes_cut_into_the_spectrum_are_found_and_filled() {
        let mut rng = StdRng::seed_from_u64(4);
        let clean = voice(&mut rng);
        let holey = with_holes(&clean, 0.4, &mut rng);
        let before = deep_hole_share(&holey, RATE);
        assert!(before > 2.0 * MIN_DEEP_HOLE_SHARE, "{before}");
        let mut filled = holey.clone();
        let holes = fill_spectral_holes(&mut filled, RATE);
        assert!(holes.filled);
        assert_eq!(holes.deep_share, before);
        let after = deep_hole_share(&filled, RATE);
        assert!(after < MIN_DEEP_HOLE_SHARE / 2.0, "{before} -> {after}");
        // In the cut cells, the level comes closer to the uncoded recording's (the fill is noise
        // under the neighbours: nearer the truth than a hole, not equal to it).
        let stft = Stft::from_durations(FRAME_S, HOP_S, RATE);
        let frames = stft.frames(clean.len());
        let level = |x: &[f32]| -> Vec<Vec<f32>> {
            let bins = stft.spectra(x, 0..frames);
            bins.iter()
                .map(|bin| {
                    bin.iter()
                        .map(|c| 10.0 * c.norm_sqr().max(POWER_FLOOR).log10())
                        .collect()
                })
                .collect()
        };
        let (uncoded, cut, repaired) = (level(&clean), level(&holey), level(&filled));
        let (mut error_cut, mut error_repaired, mut cells) = (0.0f64, 0.0f64, 0usize);
        for k in 0..uncoded.len() {
            for t in 0..frames {
                if cut[k][t] < uncoded[k][t] - 30.0 {
                    error_cut += f64::from((cut[k][t] - uncoded[k][t]).abs());
                    error_repaired += f64::from((repaired[k][t] - uncoded[k][t]).abs());
                    cells += 1;
                }
            }
        }
        assert!(cells > 1000, "{cells}");
        let (error_cut, error_repaired) = (error_cut / cells as f64, error_repaired / cells as f64);
        assert!(
            error_repaired < 0.6 * error_cut,
            "mean level error in the holes {error_cut:.1} dB -> {error_repaired:.1} dB"
        );
        // And it is the same every time.
        let mut again = holey.clone();
        fill_spectral_holes(&mut again, RATE);
        assert_eq!(again, filled);
    }

    #[test]
    fn short_and_silent_audio_is_left_alone() {
        for len in [0, 1, 100, 600] {
            let mut x = vec![0.0f32; len];
            let holes = fill_spectral_holes(&mut x, RATE);
            assert!(!holes.filled && holes.deep_share == 0.0, "{len}: {holes:?}");
            assert!(x.iter().all(|&v| v == 0.0));
        }
    }
}
