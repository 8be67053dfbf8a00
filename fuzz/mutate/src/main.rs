//! A mutation fuzzer for phonrec's audio readers on the stable toolchain: seed files of every format
//! (`fuzz/seeds/audio`) with their header fields set to boundary values, bytes flipped, cut,
//! deleted, duplicated or spliced from another seed, then read from memory (`read_audio_bytes`),
//! through the WAV stream reader in reads of 1-4096 bytes, and now and then recognised end to end.
//! A panic, a read slower than 2 s, or an abort (a failed allocation: run under `ulimit -v`) is a
//! finding; the input being read is always in `OUT/current-SEED.bin` so that an abort leaves it.
//!
//! ```text
//! cargo run --release -- files SEEDS_DIR OUT ITERATIONS [SEED] [RECOGNISE_EVERY]
//! cargo run --release -- signals OUT ITERATIONS [SEED]    # extreme waveforms through the recogniser
//! ```

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use phonrec::audio::{read_audio_bytes, WavStream};
use rand::{rngs::StdRng, Rng, SeedableRng};

mod signals;

/// Values that header fields (sizes, counts, rates) are set to.
const BOUNDARY_U32: [u32; 12] = [
    0,
    1,
    2,
    0x7F,
    0x80,
    0xFF,
    0xFFFF,
    0x1000,
    0x7FFF_F000,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
];
const BOUNDARY_U16: [u16; 7] = [0, 1, 3, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF];

/// A reader that hands out at most `step` bytes a read, as a pipe may.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

fn overwrite(bytes: &mut [u8], at: usize, with: &[u8]) {
    for (i, &b) in with.iter().enumerate() {
        if let Some(slot) = bytes.get_mut(at + i) {
            *slot = b;
        }
    }
}

/// One to four mutations of `bytes`, most of them within the first 128 bytes (the headers).
fn mutate(rng: &mut StdRng, mut bytes: Vec<u8>, seeds: &[(String, Vec<u8>)]) -> Vec<u8> {
    for _ in 0..rng.gen_range(1..=4) {
        if bytes.is_empty() {
            bytes.push(0);
        }
        let len = bytes.len();
        let at = if rng.gen_bool(0.6) {
            rng.gen_range(0..len.min(128))
        } else {
            rng.gen_range(0..len)
        };
        match rng.gen_range(0..9) {
            0 => bytes[at] ^= 1 << rng.gen_range(0..8),
            1 => bytes[at] = rng.gen(),
            2 => {
                let v = BOUNDARY_U32[rng.gen_range(0..BOUNDARY_U32.len())];
                let le = rng.gen_bool(0.5);
                overwrite(
                    &mut bytes,
                    at,
                    &if le { v.to_le_bytes() } else { v.to_be_bytes() },
                );
            }
            3 => {
                let v = BOUNDARY_U16[rng.gen_range(0..BOUNDARY_U16.len())];
                overwrite(&mut bytes, at, &v.to_le_bytes());
            }
            4 => bytes.truncate(at),
            5 => {
                let end = (at + rng.gen_range(1..64)).min(len);
                bytes.drain(at..end);
            }
            6 => {
                let end = (at + rng.gen_range(1..256)).min(len);
                let copy = bytes[at..end].to_vec();
                let to = rng.gen_range(0..=bytes.len());
                bytes.splice(to..to, copy);
            }
            7 => {
                let other = &seeds[rng.gen_range(0..seeds.len())].1;
                let from = rng.gen_range(0..other.len());
                bytes.truncate(at);
                bytes.extend_from_slice(&other[from..]);
            }
            _ => {
                for _ in 0..rng.gen_range(1..32) {
                    let i = rng.gen_range(0..bytes.len());
                    bytes[i] = rng.gen();
                }
            }
        }
    }
    bytes
}

fn usage() -> ! {
    eprintln!(
        "usage: phonrec-mutate files SEEDS_DIR OUT ITERATIONS [SEED] [RECOGNISE_EVERY]\n       \
         phonrec-mutate signals OUT ITERATIONS [SEED]"
    );
    std::process::exit(2)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: Option<T>) -> T {
    match args.get(i) {
        Some(s) => s.parse().unwrap_or_else(|_| usage()),
        None => default.unwrap_or_else(|| usage()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    phonrec::audio::quiet_decoder_panics();
    match args.get(1).map(String::as_str) {
        Some("files") => files(
            Path::new(&arg::<String>(&args, 2, None)),
            &PathBuf::from(arg::<String>(&args, 3, None)),
            arg(&args, 4, None),
            arg(&args, 5, Some(1)),
            arg(&args, 6, Some(0)),
        ),
        Some("signals") => signals::run(
            &PathBuf::from(arg::<String>(&args, 2, None)),
            arg(&args, 3, None),
            arg(&args, 4, Some(1)),
        ),
        _ => usage(),
    }
}

fn files(seed_dir: &Path, out: &Path, iterations: usize, seed: u64, recognise_every: usize) {
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(seed_dir)
        .expect("the seeds folder")
        .map(|entry| {
            let path = entry.expect("a seed").path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("a readable seed"))
        })
        .filter(|(_, bytes)| !bytes.is_empty())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", seed_dir.display());
    std::fs::create_dir_all(out).expect("the output folder");
    let recognizer = (recognise_every > 0).then(|| {
        phonrec::builtin::recognizer_in(phonrec::model::Precision::inference_default())
            .expect("the built-in model")
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut read, mut refused, mut findings) = (0usize, 0usize, 0usize);
    for iteration in 0..iterations {
        let (own_name, original) = &seeds[rng.gen_range(0..seeds.len())];
        let input = mutate(&mut rng, original.clone(), &seeds);
        // Mostly its own name; sometimes another format's (the content decides, not the name).
        let name = if rng.gen_bool(0.8) {
            own_name.clone()
        } else {
            seeds[rng.gen_range(0..seeds.len())].0.clone()
        };
        std::fs::write(out.join(format!("current-{seed}.bin")), &input).expect("writable");
        std::fs::write(out.join(format!("current-{seed}.name")), &name).expect("writable");
        let mut finding = |what: &str| {
            findings += 1;
            let path = out.join(format!("{what}-{seed}-{iteration}-{name}"));
            std::fs::write(&path, &input).expect("writable");
            eprintln!("FOUND {what}: {}", path.display());
        };
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            read_audio_bytes(&input, Path::new(&name))
        }));
        if start.elapsed().as_secs_f64() > 2.0 {
            finding("slow");
        }
        match result {
            Err(_) => finding("panic"),
            Ok(Err(_)) => refused += 1,
            Ok(Ok(wave)) => {
                read += 1;
                if wave.check_samples().is_err() {
                    finding("unchecked");
                }
                if let Some(recognizer) = &recognizer {
                    if iteration % recognise_every == 0 && wave.samples.len() < 16000 * 60 {
                        let result =
                            catch_unwind(AssertUnwindSafe(|| recognizer.transcribe_wave(wave)));
                        if result.is_err() {
                            finding("panic-recognising");
                        }
                    }
                }
            }
        }
        if [b"RIFF", b"RIFX", b"RF64", b"BW64"]
            .iter()
            .any(|m| input.starts_with(*m))
        {
            let step = [1usize, 3, 16, 4096][rng.gen_range(0..4)];
            let start = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| -> phonrec::Result<usize> {
                let reader = Trickle {
                    bytes: &input,
                    step,
                };
                let mut stream = WavStream::open(reader, Path::new("-"))?;
                let mut samples = 0;
                while let Some(block) = stream.next_block()? {
                    samples += block.len();
                }
                Ok(samples)
            }));
            if result.is_err() {
                finding("panic-streaming");
            }
            if start.elapsed().as_secs_f64() > 2.0 {
                finding("slow-streaming");
            }
        }
        if iteration % 100_000 == 0 {
            eprintln!("{iteration}: read {read}, refused {refused}, findings {findings}");
        }
    }
    eprintln!("done: {iterations} inputs, read {read}, refused {refused}, findings {findings}");
}
