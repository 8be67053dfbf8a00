//! TIMIT layout: `ROOT/{TRAIN,TEST}/DR*/SPEAKER/SENTENCE.{WAV,PHN}` (any case). `.WAV` files are NIST
//! SPHERE; `.PHN` lines are `start_sample end_sample phone` in TIMIT's 61 phones, folded to 39 (`q` dropped,
//! closures and pauses to `sil`, runs of `sil` merged). The dialect sentences SA1/SA2 are left out, as is
//! standard, since every speaker reads them.

use std::path::{Path, PathBuf};

use super::{read_text, DataProblem, Dataset, Utterance};
use crate::error::{Error, Result};
use crate::phones::{fold_timit61, PhoneSet};

/// The 24 speakers of the standard TIMIT core test set.
pub const TIMIT_CORE_TEST_SPEAKERS: [&str; 24] = [
    "MDAB0", "MWBT0", "FELC0", "MTAS1", "MWEW0", "FPAS0", "MJMP0", "MLNT0", "FPKT0", "MLLL0",
    "MTLS0", "FJLM0", "MBPM0", "MKLT0", "FNLP0", "MCMJ0", "MJDH0", "FMGD0", "MGRT0", "MNJM0",
    "FDHC0", "MJLN0", "MPAM0", "FMLD0",
];

/// Which part of TIMIT to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimitSplit {
    /// TRAIN/.
    Train,
    /// TEST/, all 168 speakers.
    Test,
    /// TEST/, the 24 core-test speakers only.
    CoreTest,
}

/// Find a child directory by name, any case.
fn child_dir(parent: &Path, name: &str) -> Option<PathBuf> {
    std::fs::read_dir(parent).ok()?.flatten().find_map(|e| {
        let path = e.path();
        (path.is_dir() && e.file_name().to_string_lossy().eq_ignore_ascii_case(name))
            .then_some(path)
    })
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    Ok(entries)
}

/// Load a TIMIT split from `root`.
pub fn load_timit(root: &Path, split: TimitSplit, phones: &PhoneSet) -> Result<Dataset> {
    let part = if split == TimitSplit::Train {
        "train"
    } else {
        "test"
    };
    let Some(part_dir) = child_dir(root, part) else {
        return Err(Error::Parse {
            path: root.to_path_buf(),
            line: None,
            reason: format!("no {} folder: is this a TIMIT root?", part.to_uppercase()),
        });
    };
    let mut dataset = Dataset::default();
    for region in sorted_entries(&part_dir)?
        .into_iter()
        .filter(|p| p.is_dir())
    {
        for speaker in sorted_entries(&region)?.into_iter().filter(|p| p.is_dir()) {
            let speaker_name = speaker
                .file_name()
                .map(|n| n.to_string_lossy().to_uppercase())
                .unwrap_or_default();
            if split == TimitSplit::CoreTest
                && !TIMIT_CORE_TEST_SPEAKERS.contains(&speaker_name.as_str())
            {
                continue;
            }
            for file in sorted_entries(&speaker)? {
                let is_phn = file
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("phn"));
                if !is_phn {
                    continue;
                }
                let stem = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_uppercase())
                    .unwrap_or_default();
                if stem.starts_with("SA") {
                    continue;
                }
                let wav = ["WAV", "wav", "Wav"]
                    .iter()
                    .map(|ext| file.with_extension(ext))
                    .find(|p| p.is_file());
                let Some(wav) = wav else {
                    dataset.problems.push(DataProblem(Error::Parse {
                        path: file.clone(),
                        line: None,
                        reason: "no matching .WAV file".to_string(),
                    }));
                    continue;
                };
                match read_phn(&file, phones) {
                    Ok(ids) => dataset.utterances.push(Utterance {
                        id: format!("{speaker_name}_{stem}"),
                        audio: wav,
                        span: None,
                        phones: ids,
                        channel: None,
                    }),
                    Err(e) => dataset.problems.push(DataProblem(e)),
                }
            }
        }
    }
    Ok(dataset)
}

/// Parse a `.PHN` file into folded phone ids.
fn read_phn(path: &Path, phones: &PhoneSet) -> Result<Vec<crate::phones::PhoneId>> {
    let text = read_text(path)?;
    let mut ids = Vec::new();
    let silence = phones.silence();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = |reason: String| Error::Parse {
            path: path.to_path_buf(),
            line: Some(index + 1),
            reason,
        };
        if fields.len() != 3
            || fields[0].parse::<u64>().is_err()
            || fields[1].parse::<u64>().is_err()
        {
            return Err(bad(format!("expected `start end phone`, found '{line}'")));
        }
        let Some(folded) = fold_timit61(fields[2]) else {
            continue;
        };
        let id = phones.id(&folded).ok_or_else(|| Error::UnknownPhone {
            phone: fields[2].to_string(),
            path: path.to_path_buf(),
            line: Some(index + 1),
        })?;
        // Closures next to pauses fold to runs of sil: keep one.
        if Some(id) == silence && ids.last() == Some(&id) {
            continue;
        }
        ids.push(id);
    }
    if ids.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: None,
            reason: "no phones".to_string(),
        });
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::sphere_bytes;

    /// A tiny TIMIT-shaped tree: TRAIN/DR1/FCJF0/SI1027 and TEST/DR1/MDAB0 (core) + TEST/DR1/MXXX0.
    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let wave = sphere_bytes(&vec![100i16; 8000], 16_000, false);
        let phn = "0 1000 h#\n1000 2000 sh\n2000 2500 ix\n2500 3000 q\n3000 3500 tcl\n3500 4000 t\n4000 8000 h#\n";
        for (part, speaker, sentence) in [
            ("TRAIN", "FCJF0", "SI1027"),
            ("TRAIN", "FCJF0", "SA1"),
            ("TEST", "MDAB0", "SX139"),
            ("TEST", "MXXX0", "SX1"),
        ] {
            let d = dir.path().join(part).join("DR1").join(speaker);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("{sentence}.WAV")), &wave).unwrap();
            std::fs::write(d.join(format!("{sentence}.PHN")), phn).unwrap();
        }
        dir
    }

    #[test]
    fn timit_fixture_loads_with_folding() {
        let dir = fixture();
        let phones = PhoneSet::timit39();
        let train = load_timit(dir.path(), TimitSplit::Train, &phones).unwrap();
        assert_eq!(train.len(), 1, "SA sentences are left out");
        assert_eq!(train.utterances[0].id, "FCJF0_SI1027");
        assert_eq!(
            phones.format_sequence(&train.utterances[0].phones),
            "sil sh ih sil t sil"
        );
        let wave = crate::audio::read_audio(&train.utterances[0].audio).unwrap();
        assert_eq!(wave.samples.len(), 8000);
        assert_eq!(
            load_timit(dir.path(), TimitSplit::Test, &phones)
                .unwrap()
                .len(),
            2
        );
        let core = load_timit(dir.path(), TimitSplit::CoreTest, &phones).unwrap();
        assert_eq!(core.len(), 1);
        assert_eq!(core.utterances[0].id, "MDAB0_SX139");
    }

    #[test]
    fn bad_phn_line_is_reported() {
        let dir = fixture();
        let phn = dir.path().join("TRAIN/DR1/FCJF0/SI1027.PHN");
        std::fs::write(&phn, "0 100 h#\n100 200 xyz\n").unwrap();
        let train = load_timit(dir.path(), TimitSplit::Train, &PhoneSet::timit39()).unwrap();
        assert!(train.is_empty());
        let message = train.problems[0].to_string();
        assert!(
            message.contains("SI1027.PHN:2") && message.contains("xyz"),
            "{message}"
        );
    }

    #[test]
    fn not_a_timit_root() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_timit(dir.path(), TimitSplit::Train, &PhoneSet::timit39()).unwrap_err();
        assert!(err.to_string().contains("TRAIN"));
    }
}
