//! Splitting a corpus across the jobs of a cluster (`--shard K/N`) and rerunning a job that was
//! killed (`--resume`): what `transcribe`, `align` and `features` share. Any scheduler can use it —
//! a Slurm job array, a Kubernetes indexed Job, GNU parallel — because each job needs nothing but
//! its own K.

use std::path::PathBuf;

use anyhow::bail;

/// One of N disjoint parts of the inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// K, counted from 0.
    pub index: u64,
    /// N.
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "`{text}` is not K/N with 0 ≤ K < N (e.g. 0/4 ... 3/4; in a Slurm array: \
                 $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=0-3)"
            )
        };
        let (k, n) = text.split_once('/').ok_or_else(usage)?;
        let index: u64 = k.trim().parse().map_err(|_| usage())?;
        let count: u64 = n.trim().parse().map_err(|_| usage())?;
        if count == 0 || index >= count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether the input with this key belongs to this shard. The assignment is a hash of the key
    /// (FNV-1a with a final mix; not Rust's `DefaultHasher`, which may change between releases), so
    /// it is the same on every machine and build, and an input keeps its shard when others are
    /// added to or removed from the list.
    pub fn contains(&self, key: &str) -> bool {
        stable_hash(key) % self.count == self.index
    }
}

/// FNV-1a over the bytes, then SplitMix64's finaliser so that the low bits the modulus keeps
/// depend on every byte.
fn stable_hash(key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// `--shard` and `--resume`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ShardArgs {
    /// Process only part K of N (0 ≤ K < N) of the inputs, for splitting a corpus across the jobs
    /// of a cluster: an input's part is a hash of its utterance id or of its path as listed (as its
    /// manifest gives it, or relative to the folder walked: however the manifest or folder is
    /// named, or where the corpus is mounted), the same on every machine, and kept when other
    /// inputs are added to the list. In a Slurm job
    /// array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,

    /// With --output-dir: skip inputs whose output file is already there, so a job that was killed
    /// (or a shard that failed) can simply be run again. Output files are written whole or not at
    /// all, so one that exists is complete.
    #[arg(long, requires = "output_dir")]
    pub resume: bool,
}

impl ShardArgs {
    /// The items this job processes, in their order: those in its shard, less (with --resume)
    /// those whose output file exists. `key` names an item for the shard hash; `output` is where
    /// its result goes under --output-dir. Says on stderr what was chosen when anything was left
    /// out.
    pub fn select<T>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> String,
        output: impl Fn(&T) -> Option<PathBuf>,
    ) -> anyhow::Result<Vec<T>> {
        // clap's `requires` is met by -o, which conflicts with --output-dir: without files of
        // their own, nothing is found done and everything was computed again, with a note that
        // claimed a check.
        if self.resume && !items.is_empty() && items.iter().all(|item| output(item).is_none()) {
            anyhow::bail!(
                "--resume skips inputs whose output file exists under --output-dir DIR; one file \
                 for all (-o FILE, or standard output) has no such files: write with \
                 --output-dir DIR to resume"
            );
        }
        let total = items.len();
        let in_shard: Vec<T> = match self.shard {
            Some(shard) => items
                .into_iter()
                .filter(|item| shard.contains(&key(item)))
                .collect(),
            None => items,
        };
        let in_shard_count = in_shard.len();
        let to_do: Vec<T> = if self.resume {
            in_shard
                .into_iter()
                .filter(|item| !output(item).is_some_and(|path| path.is_file()))
                .collect()
        } else {
            in_shard
        };
        let done = in_shard_count - to_do.len();
        if let Some(shard) = self.shard {
            eprintln!(
                "phonrec: shard {}/{}: {in_shard_count} of {total} inputs{}",
                shard.index,
                shard.count,
                if self.resume {
                    format!(", {done} already done, {} to do", to_do.len())
                } else {
                    String::new()
                }
            );
        } else if self.resume {
            eprintln!(
                "phonrec: --resume: {done} of {total} inputs already done, {} to do",
                to_do.len()
            );
        }
        if total > 0 && in_shard_count == 0 && self.shard.is_some() {
            eprintln!("phonrec: note: no input falls in this shard");
        }
        Ok(to_do)
    }

    /// An error if --resume is asked of inputs whose outputs have no names (standard input).
    pub fn check_resumable(&self, nameless: bool) -> anyhow::Result<()> {
        if self.resume && nameless {
            bail!("--resume needs named inputs; standard input (`-`) has no output file to find");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n_and_refuses_the_rest() {
        assert_eq!("2/8".parse::<Shard>(), Ok(Shard { index: 2, count: 8 }));
        assert_eq!("0/1".parse::<Shard>(), Ok(Shard { index: 0, count: 1 }));
        for bad in ["8/8", "1/0", "3", "a/4", "-1/4", "1/4/2", ""] {
            let error = bad.parse::<Shard>().expect_err(bad);
            assert!(error.contains("K/N"), "{bad}: {error}");
        }
    }

    #[test]
    fn every_key_is_in_exactly_one_shard_and_shards_are_balanced() {
        let keys: Vec<String> = (0..4000)
            .map(|i| format!("spk{}/utt{i:05}.wav", i % 7))
            .collect();
        let count = 8;
        let mut sizes = vec![0usize; count];
        for key in &keys {
            let owners: Vec<u64> = (0..count as u64)
                .filter(|&index| {
                    Shard {
                        index,
                        count: count as u64,
                    }
                    .contains(key)
                })
                .collect();
            assert_eq!(owners.len(), 1, "{key}");
            sizes[owners[0] as usize] += 1;
        }
        // 500 expected per shard; a binomial spread is ±22, so ±100 catches a broken mix.
        for size in sizes {
            assert!((400..=600).contains(&size), "{size}");
        }
    }

    #[test]
    fn the_assignment_is_fixed_across_builds() {
        // A changed hash would move inputs between shards of a running corpus job: pin it.
        // Values from an independent implementation (Python, same constants).
        assert_eq!(stable_hash(""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(stable_hash("utt1"), 0xc4de_17e0_0208_7177);
        assert_eq!(
            stable_hash("audio/slt_dark_suit_16k.wav"),
            0x9947_0c75_65b8_bc87
        );
    }
}
