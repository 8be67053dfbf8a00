//! Dither: seeded Gaussian noise added to each frame's samples before analysis, as Kaldi's `--dither`,
//! so that digital silence has a defined floor instead of `log(0)`.
//!
//! Frame `i`'s noise is drawn from a generator seeded by `(seed, i)` alone, so a frame always gets the
//! same noise whatever thread computes it. It depends on nothing else, in particular not on the
//! signal: the noise of the first frames is the same for every recording. Drawing it fresh (a ChaCha
//! stream seeded per frame, a few hundred Gaussian draws) was ~3 % of recognising an hour of short
//! clips (BENCHMARKS.md), so the first [`CACHED_VALUES`] worth of frames are drawn once per process and
//! kept, and later frames of long recordings are drawn as before. The values are the same either way.
//!
//! Why the noise is kept exactly as it was instead of made cheaper another way (a table read at a
//! random offset, say): the shipped models were trained on features dithered with these values, and
//! they recognise worse with another draw of the same noise (models/README.md, "The dither's draw").

use std::sync::{Arc, Mutex, OnceLock};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Frames per cached block, drawn together the first time one of them is needed.
const BLOCK_FRAMES: usize = 64;

/// Noise values kept per (seed, frame size): 4 MB, 2,621 frames of 400 samples (26 s at Kaldi's 10 ms
/// shift), which covers every short clip and the first stretch of every longer recording.
const CACHED_VALUES: usize = 1 << 20;

/// (seed, frame size) pairs kept: a process uses one or two feature configurations.
const KEPT_CONFIGURATIONS: usize = 4;

/// Adds frame `i`'s dither, `std` × unit Gaussian noise seeded by `(seed, i)`, to a frame's samples.
pub(crate) struct Dither {
    std: f32,
    noise: Arc<UnitNoise>,
}

impl Dither {
    /// Dither of standard deviation `std` (int16 units, positive) for frames of `size` samples.
    pub(crate) fn new(std: f32, seed: u64, size: usize) -> Self {
        Dither {
            std,
            noise: UnitNoise::shared(seed, size),
        }
    }

    /// Add frame `index`'s dither to `samples` (the frame's samples, `size` of them).
    pub(crate) fn add(&self, samples: &mut [f32], index: usize) {
        let std = self.std;
        // `0.0 + std · z`, as `rand_distr::Normal::new(0, std)` computes a draw, so that the values
        // are the same bits as before the cache.
        let scale = |z: f32| 0.0 + std * z;
        match self.noise.frame(index) {
            Some(noise) => {
                for (x, &z) in samples.iter_mut().zip(noise) {
                    *x += scale(z);
                }
            }
            None => {
                let mut rng = frame_rng(self.noise.seed, index);
                for x in samples.iter_mut() {
                    let z: f32 = StandardNormal.sample(&mut rng);
                    *x += scale(z);
                }
            }
        }
    }
}

/// The generator of frame `index`'s noise.
fn frame_rng(seed: u64, index: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Unit Gaussian noise of the first frames for one (seed, frame size), drawn a block at a time.
struct UnitNoise {
    seed: u64,
    size: usize,
    blocks: Vec<OnceLock<Box<[f32]>>>,
}

impl UnitNoise {
    /// The process's noise for `(seed, size)`, made (empty) on first use.
    fn shared(seed: u64, size: usize) -> Arc<UnitNoise> {
        static KEPT: Mutex<Vec<Arc<UnitNoise>>> = Mutex::new(Vec::new());
        // A poisoned lock only means another thread panicked while holding it; the list is whole.
        let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(noise) = kept.iter().find(|n| n.seed == seed && n.size == size) {
            return noise.clone();
        }
        let frames = CACHED_VALUES / size.max(1);
        let noise = Arc::new(UnitNoise {
            seed,
            size,
            blocks: (0..frames / BLOCK_FRAMES)
                .map(|_| OnceLock::new())
                .collect(),
        });
        if kept.len() == KEPT_CONFIGURATIONS {
            kept.remove(0);
        }
        kept.push(noise.clone());
        noise
    }

    /// Frame `index`'s unit noise, if it is among the cached frames.
    fn frame(&self, index: usize) -> Option<&[f32]> {
        let block = self.blocks.get(index / BLOCK_FRAMES)?.get_or_init(|| {
            let first = index / BLOCK_FRAMES * BLOCK_FRAMES;
            let mut values = Vec::with_capacity(BLOCK_FRAMES * self.size);
            for frame in first..first + BLOCK_FRAMES {
                let mut rng = frame_rng(self.seed, frame);
                values.extend((0..self.size).map(|_| -> f32 { StandardNormal.sample(&mut rng) }));
            }
            values.into_boxed_slice()
        });
        let start = index % BLOCK_FRAMES * self.size;
        Some(&block[start..start + self.size])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::Normal;

    /// Frame `index`'s dither as it was drawn before the cache: `Normal(0, std)` from the frame's
    /// generator.
    fn drawn_fresh(std: f32, seed: u64, index: usize, size: usize) -> Vec<f32> {
        let normal = Normal::new(0.0, std).expect("a positive std");
        let mut rng = frame_rng(seed, index);
        (0..size).map(|_| normal.sample(&mut rng)).collect()
    }

    fn added(dither: &Dither, index: usize, size: usize) -> Vec<f32> {
        let mut x = vec![0f32; size];
        dither.add(&mut x, index);
        x
    }

    #[test]
    fn cached_and_uncached_frames_get_the_noise_drawn_fresh_to_the_bit() {
        let (std, seed, size) = (1.0f32, 0u64, 400usize);
        let dither = Dither::new(std, seed, size);
        let cached_frames = CACHED_VALUES / size / BLOCK_FRAMES * BLOCK_FRAMES;
        // Frames in the first block, across a block's edge, the last cached one, and past the cache.
        for index in [
            0,
            1,
            BLOCK_FRAMES - 1,
            BLOCK_FRAMES,
            cached_frames - 1,
            cached_frames,
            cached_frames + 1000,
        ] {
            let expected = drawn_fresh(std, seed, index, size);
            // Twice: the second read is from the kept block.
            for _ in 0..2 {
                let got = added(&dither, index, size);
                assert!(
                    got.iter()
                        .zip(&expected)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "frame {index}"
                );
            }
        }
        // Another std scales the same draws; another seed or frame size is kept apart.
        let loud = Dither::new(3.0, seed, size);
        assert_eq!(added(&loud, 5, size), drawn_fresh(3.0, seed, 5, size));
        let other_seed = Dither::new(std, 9, size);
        assert_eq!(added(&other_seed, 5, size), drawn_fresh(std, 9, 5, size));
        assert_ne!(added(&other_seed, 5, size), added(&dither, 5, size));
        let other_size = Dither::new(std, seed, 256);
        assert_eq!(added(&other_size, 70, 256), drawn_fresh(std, seed, 70, 256));
    }

    #[test]
    fn frames_read_from_many_threads_get_their_own_noise() {
        let size = 200;
        let dither = Dither::new(1.0, 4, size);
        let results: Vec<(usize, Vec<f32>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let dither = &dither;
                    scope.spawn(move || {
                        (0..300)
                            .map(|i| (i * 4 + t) % 1000)
                            .map(|index| (index, added(dither, index, size)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("no panic"))
                .collect()
        });
        for (index, noise) in results {
            assert_eq!(noise, drawn_fresh(1.0, 4, index, size), "frame {index}");
        }
    }
}
