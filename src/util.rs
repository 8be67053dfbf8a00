//! Small rules several stages share, kept once: writing a file so readers never see half of it,
//! deriving independent random seeds, and a dot product whose sums the compiler can vectorise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes the temporary files of concurrent saves from one process.
static SAVE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to a temporary file beside `path` (named after it, the process and a per-save
/// counter), sync it, then rename it over `path`: a reader, or a run killed at any moment, sees the old
/// file or the new one, never a mixture. The temporary is removed if anything fails.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let not_a_file = || {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        )
    };
    let file_name = path.file_name().ok_or_else(not_a_file)?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temporary = directory.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        SAVE_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().map_err(|e| {
        // Best effort: the temporary may not exist if creating it failed.
        let _ = std::fs::remove_file(&temporary);
        Error::io(path, e)
    })
}

/// A seed for `(seed, a, b)`, well mixed (SplitMix64's finaliser), so that nearby inputs (epoch 3 and
/// 4, layer 0 and 1) give unrelated random streams.
pub(crate) fn mix_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `Σ a[i] · b[i]` over the shorter slice in `LANES` partial sums (lane `l` takes every `LANES`-th
/// product), added up, then the products past the last whole group one by one: the same additions in
/// the same order on every CPU, and lanes that add independently, which the compiler keeps in a
/// vector register (a single running sum would make every addition wait for the previous one).
#[inline(always)]
pub(crate) fn dot_in_lanes<T, const LANES: usize>(a: &[T], b: &[T]) -> T
where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T> + std::iter::Sum,
{
    let n = a.len().min(b.len());
    let (a_lanes, a_tail) = a[..n].as_chunks::<LANES>();
    let (b_lanes, b_tail) = b[..n].as_chunks::<LANES>();
    let mut acc = [T::default(); LANES];
    for (x, y) in a_lanes.iter().zip(b_lanes) {
        for l in 0..LANES {
            acc[l] = acc[l] + x[l] * y[l];
        }
    }
    let mut sum: T = acc.iter().copied().sum();
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        sum = sum + x * y;
    }
    sum
}

/// Seeded uniform noise of `len` samples, peak `amplitude` (int16 units), for tests: the same on
/// every run and machine.
#[cfg(test)]
pub(crate) fn test_noise(len: usize, amplitude: f32, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            amplitude * ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("phonrec-util-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("out.bin");
        write_atomically(&path, b"first").expect("write");
        write_atomically(&path, b"second").expect("overwrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.bin")]);
        // A folder is not a file path: an error, and nothing left behind.
        assert!(write_atomically(&dir.join("missing").join("x"), b"x").is_err());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn seeds_differ_for_neighbouring_inputs() {
        let seeds: std::collections::HashSet<u64> = (0..4)
            .flat_map(|a| (0..4).map(move |b| mix_seed(7, a, b)))
            .collect();
        assert_eq!(seeds.len(), 16);
        assert_eq!(mix_seed(7, 1, 2), mix_seed(7, 1, 2));
    }
}

/// Real FFT plans shared by the whole process. Planning computes every twiddle factor (a `sincos`
/// each) and picks the algorithm; the front end plans per recording (the echo cepstrum's forward
/// and inverse transforms, the band and floor measurements, the STFT), which was 3–4 % of the CPU
/// time of an hour of short clips. A plan is immutable once made, so one per length serves every
/// thread. Lengths above [`fft_plans::LONGEST_KEPT`] are planned afresh each time, and the cache is
/// emptied when it holds [`fft_plans::MOST_KEPT`] lengths, so its memory stays bounded (a few MB).
pub(crate) mod fft_plans {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

    /// The longest transform whose plan is kept (2^20 points: the echo search's longest).
    pub(crate) const LONGEST_KEPT: usize = 1 << 20;
    /// The most lengths kept in each direction before the cache starts again.
    pub(crate) const MOST_KEPT: usize = 64;

    type Forward = Arc<dyn RealToComplex<f32>>;
    type Inverse = Arc<dyn ComplexToReal<f32>>;

    #[derive(Default)]
    struct Plans {
        forward: HashMap<usize, Forward>,
        inverse: HashMap<usize, Inverse>,
    }

    fn plans() -> &'static Mutex<Plans> {
        static PLANS: OnceLock<Mutex<Plans>> = OnceLock::new();
        PLANS.get_or_init(Mutex::default)
    }

    /// The shared plan of a real-to-complex transform of `len` points.
    pub(crate) fn forward(len: usize) -> Forward {
        cached(
            len,
            |p| &mut p.forward,
            |planner| planner.plan_fft_forward(len),
        )
    }

    /// The shared plan of a complex-to-real transform of `len` points.
    pub(crate) fn inverse(len: usize) -> Inverse {
        cached(
            len,
            |p| &mut p.inverse,
            |planner| planner.plan_fft_inverse(len),
        )
    }

    fn cached<T: Clone>(
        len: usize,
        map: impl Fn(&mut Plans) -> &mut HashMap<usize, T>,
        plan: impl FnOnce(&mut RealFftPlanner<f32>) -> T,
    ) -> T {
        if len > LONGEST_KEPT {
            return plan(&mut RealFftPlanner::new());
        }
        // A poisoned lock only means another thread panicked while planning: the map is intact.
        let mut plans = plans().lock().unwrap_or_else(|e| e.into_inner());
        let map = map(&mut plans);
        if let Some(found) = map.get(&len) {
            return found.clone();
        }
        if map.len() >= MOST_KEPT {
            map.clear();
        }
        // Planned under the lock: two threads asking for one new length plan it once.
        let made = plan(&mut RealFftPlanner::new());
        map.insert(len, made.clone());
        made
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn plans_are_shared_per_length_and_transform_correctly() {
            let a = forward(48);
            let b = forward(48);
            assert!(Arc::ptr_eq(&a, &b));
            assert_eq!(a.len(), 48);
            assert_eq!(inverse(48).len(), 48);
            assert!(!Arc::ptr_eq(&forward(50), &a));
            // A round trip through the shared plans gives the input back (times the length).
            let input: Vec<f32> = (0..48).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut buffer = input.clone();
            let mut spectrum = a.make_output_vec();
            a.process(&mut buffer, &mut spectrum).unwrap();
            let mut back = vec![0f32; 48];
            inverse(48).process(&mut spectrum, &mut back).unwrap();
            for (x, y) in input.iter().zip(&back) {
                assert!((x - y / 48.0).abs() < 1e-5);
            }
            // Past the longest kept length each call plans afresh.
            let long = LONGEST_KEPT * 2;
            assert!(!Arc::ptr_eq(&forward(long), &forward(long)));
        }
    }
}
