//! Kaldi data directories: `wav.scp` (`utt-id path`) and `text` (`utt-id words...`), words turned into
//! phones with a lexicon. Pipe commands in `wav.scp` are refused (phonrec never runs shell commands from
//! data files), `segments` files are not supported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{audio_file_problem, read_text, DataProblem, Dataset, Lexicon, Utterance};
use crate::error::{Error, Result};
use crate::phones::PhoneSet;

/// One line of a `wav.scp`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScpEntry {
    /// The utterance (or recording) id.
    pub id: String,
    /// The audio file: absolute, or relative to the working directory if it exists there (as Kaldi
    /// reads it), else to the `wav.scp`'s folder.
    pub audio: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

/// A `wav.scp` read: its entries in file order, and the lines that were refused.
#[derive(Debug, Default)]
pub struct WavScp {
    /// Usable lines.
    pub entries: Vec<ScpEntry>,
    /// Lines refused (no path, pipe commands, repeated ids), with file and line.
    pub problems: Vec<DataProblem>,
}

/// Read a Kaldi `wav.scp` (`utterance-id path` per line). Pipe commands (`id sox ... |`) are
/// refused with the reason: phonrec never runs shell commands from data files.
pub fn read_wav_scp(scp_path: &Path) -> Result<WavScp> {
    let dir = scp_path.parent().unwrap_or(Path::new("."));
    let mut scp = WavScp::default();
    let mut seen = std::collections::HashSet::new();
    for (index, line) in read_text(scp_path)?.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let problem = |reason: String| {
            DataProblem(Error::Parse {
                path: scp_path.to_path_buf(),
                line: Some(index + 1),
                reason,
            })
        };
        let Some((id, rest)) = line.split_once(char::is_whitespace) else {
            scp.problems
                .push(problem("expected `utterance-id path`".to_string()));
            continue;
        };
        let rest = rest.trim();
        if rest.ends_with('|') {
            scp.problems.push(problem(format!(
                "'{id}' is a pipe command; phonrec does not run commands from wav.scp. Run it once \
                 to write a WAV file and list that file instead"
            )));
            continue;
        }
        if !seen.insert(id.to_string()) {
            scp.problems
                .push(problem(format!("utterance id '{id}' is listed twice")));
            continue;
        }
        let path = Path::new(rest);
        // Kaldi resolves relative paths against the working directory; so do we, then the dir.
        let audio = if path.is_absolute() || path.exists() {
            path.to_path_buf()
        } else {
            dir.join(path)
        };
        scp.entries.push(ScpEntry {
            id: id.to_string(),
            audio,
            line: index + 1,
        });
    }
    Ok(scp)
}

/// Load a Kaldi data dir. Utterances with words missing from the lexicon are reported (with their ids and
/// the words) and skipped, as are bad lines.
pub fn load_kaldi_dir(dir: &Path, lexicon: &Lexicon, phones: &PhoneSet) -> Result<Dataset> {
    let scp_path = dir.join("wav.scp");
    let text_path = dir.join("text");
    if dir.join("segments").exists() {
        return Err(Error::Parse {
            path: dir.join("segments"),
            line: None,
            reason: "Kaldi `segments` files are not supported; extract the segments to their own \
                     WAV files (e.g. with `extract-segments`) and list those in wav.scp"
                .to_string(),
        });
    }
    let mut dataset = Dataset::default();
    let scp = read_wav_scp(&scp_path)?;
    dataset.problems.extend(scp.problems);
    let audio_by_id: HashMap<String, PathBuf> = scp
        .entries
        .into_iter()
        .map(|entry| (entry.id, entry.audio))
        .collect();
    for (index, line) in read_text(&text_path)?.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let line_number = index + 1;
        let problem = |reason: String| {
            DataProblem(Error::Parse {
                path: text_path.clone(),
                line: Some(line_number),
                reason,
            })
        };
        let mut words = line.split_whitespace();
        let Some(id) = words.next() else { continue };
        let Some(audio) = audio_by_id.get(id) else {
            dataset
                .problems
                .push(problem(format!("utterance '{id}' is not in wav.scp")));
            continue;
        };
        let phone_names = match lexicon.transcribe(words) {
            Ok(p) => p,
            Err(missing) => {
                dataset.problems.push(problem(format!(
                    "utterance '{id}' skipped: words not in the lexicon: {}",
                    missing.join(" ")
                )));
                continue;
            }
        };
        let ids = match phones.parse_sequence(&phone_names.join(" "), &text_path, line_number) {
            Ok(ids) => ids,
            Err(e) => {
                dataset.problems.push(DataProblem(e));
                continue;
            }
        };
        if ids.is_empty() {
            dataset
                .problems
                .push(problem(format!("utterance '{id}' has no words")));
            continue;
        }
        if let Some(reason) = audio_file_problem(audio) {
            dataset
                .problems
                .push(problem(format!("utterance '{id}': {reason}")));
            continue;
        }
        dataset.utterances.push(Utterance {
            id: id.to_string(),
            audio: audio.clone(),
            phones: ids,
        });
    }
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_phones_and_problems_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.wav"), b"RIFF").unwrap();
        std::fs::write(
            d.join("wav.scp"),
            format!(
                "utt1 {}\nutt2 {}\nutt3 sox x.flac -t wav - |\n",
                d.join("a.wav").display(),
                d.join("a.wav").display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("text"),
            "utt1 HELLO world\nutt2 hello zebra\nutt3 hello\nutt4 hello\n",
        )
        .unwrap();
        let lexicon = Lexicon::from_entries([("hello", "HH AH0 L OW1"), ("world", "W ER1 L D")]);
        let data = load_kaldi_dir(d, &lexicon, &PhoneSet::timit39()).unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!(data.utterances[0].id, "utt1");
        let problems: Vec<String> = data.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("wav.scp:3") && problems[0].contains("pipe"));
        assert!(
            problems[1].contains("text:2")
                && problems[1].contains("zebra")
                && problems[1].contains("utt2")
        );
        assert!(problems[2].contains("text:3") && problems[2].contains("not in wav.scp"));
        assert!(problems[3].contains("text:4") && problems[3].contains("utt4"));
    }
}
