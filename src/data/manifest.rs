//! Manifests: TSV `audio_path<TAB>phones`, or JSON Lines `{"audio": "...", "phones": "..."}`; audio paths
//! relative to the manifest's folder; `#` starts a comment line in TSV.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{audio_file_problem, read_text, DataProblem, Dataset, Utterance};
use crate::error::{Error, Result};
use crate::phones::PhoneSet;

/// One JSON Lines record. `phones` may be a string of space-separated phones or a list.
#[derive(serde::Deserialize)]
struct JsonRecord {
    audio: String,
    phones: PhonesField,
    #[serde(default)]
    id: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PhonesField {
    Text(String),
    List(Vec<String>),
}

/// Load a manifest. The format is JSON Lines if the file ends in `.jsonl`/`.json` or its first
/// non-blank line starts with `{`; TSV otherwise (its first line may be the header `audio<TAB>phones`).
/// Bad lines are skipped and reported in `problems`.
pub fn load_manifest(path: &Path, phones: &PhoneSet) -> Result<Dataset> {
    let text = read_text(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let is_json = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl") | Some("json")
    ) || text
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with('{'));
    let mut dataset = Dataset::default();
    let mut seen_data = false;
    let mut ids = UtteranceIds::default();
    for (index, raw) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || (!is_json && line.starts_with('#')) {
            continue;
        }
        // A first line naming the columns (`audio<TAB>phones`, as spreadsheets and pandas write
        // them) is a header, as `transcribe --manifest` takes it.
        let first_data = !std::mem::replace(&mut seen_data, true);
        if first_data && !is_json && line.split('\t').next().map(str::trim) == Some("audio") {
            continue;
        }
        let problem = |reason: String| {
            DataProblem(Error::Parse {
                path: path.to_path_buf(),
                line: Some(line_number),
                reason,
            })
        };
        let (audio, phone_text, id) = if is_json {
            match serde_json::from_str::<JsonRecord>(line) {
                Ok(record) => {
                    let phone_text = match record.phones {
                        PhonesField::Text(t) => t,
                        PhonesField::List(l) => l.join(" "),
                    };
                    (record.audio, phone_text, record.id)
                }
                Err(e) => {
                    dataset.problems.push(problem(format!(
                        "expected {{\"audio\": ..., \"phones\": ...}}: {e}"
                    )));
                    continue;
                }
            }
        } else {
            let mut fields = line.splitn(2, '\t');
            match (fields.next(), fields.next()) {
                (Some(audio), Some(phones)) if !audio.trim().is_empty() => {
                    (audio.trim().to_string(), phones.to_string(), None)
                }
                _ => {
                    dataset
                        .problems
                        .push(problem("expected `audio_path<TAB>phones`".to_string()));
                    continue;
                }
            }
        };
        if let Some(Err(reason)) = id.as_deref().map(|id| ids.add(id, line_number)) {
            dataset.problems.push(problem(reason));
            continue;
        }
        let audio_path = resolve(base, &audio);
        if let Some(reason) = audio_file_problem(&audio_path) {
            dataset.problems.push(problem(reason));
            continue;
        }
        let ids = match phones.parse_sequence(&phone_text, path, line_number) {
            Ok(ids) => ids,
            Err(e) => {
                dataset.problems.push(DataProblem(e));
                continue;
            }
        };
        // No phones (an empty field, or only symbols folded away such as TIMIT's `q`): a
        // recording without speech, which eval scores by the phones heard in it and CTC trains
        // towards all blank.
        dataset.utterances.push(Utterance {
            id: id.unwrap_or_else(|| format!("{}:{line_number}", file_name(path))),
            audio: audio_path,
            span: None,
            phones: ids,
            channel: None,
        });
    }
    Ok(dataset)
}

/// The ids a manifest has given so far. Ids key outputs (Kaldi `text`, `--output-dir` files), so
/// each must be one word and one utterance's, as in wav.scp.
#[derive(Default)]
pub struct UtteranceIds {
    first_line: std::collections::HashMap<String, usize>,
}

impl UtteranceIds {
    /// Take `id`, given on `line`; why it cannot key an utterance (empty, white space, or given
    /// before) otherwise.
    pub fn add(&mut self, id: &str, line: usize) -> std::result::Result<(), String> {
        if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
            return Err(format!(
                "the id {id:?} is empty or holds white space (Kaldi ids are one word)"
            ));
        }
        if let Some(first) = self.first_line.get(id) {
            return Err(format!(
                "the id '{id}' is listed twice (first on line {first})"
            ));
        }
        self.first_line.insert(id.to_string(), line);
        Ok(())
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn resolve(base: &Path, audio: &str) -> PathBuf {
    let p = Path::new(audio);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Write utterances as a TSV manifest (absolute audio paths), e.g. to save a prepared TIMIT split.
pub fn write_manifest(
    utterances: &[Utterance],
    phones: &PhoneSet,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for utt in utterances {
        writeln!(
            out,
            "{}\t{}",
            utt.audio.display(),
            phones.format_sequence(&utt.phones)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, PhoneSet) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wav"), b"RIFF").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.wav"), b"RIFF").unwrap();
        (dir, PhoneSet::timit39())
    }

    #[test]
    fn tsv_lines_load_and_bad_lines_are_reported_with_their_line() {
        let (dir, phones) = setup();
        let manifest = dir.path().join("train.tsv");
        std::fs::write(
            &manifest,
            "# comment\na.wav\thh ah l ow\nsub/b.wav\tw er l d\nno-tab-here\nmissing.wav\tah\na.wav\tah zz\na.wav\t\n",
        )
        .unwrap();
        let data = load_manifest(&manifest, &phones).unwrap();
        assert_eq!(data.len(), 3);
        assert_eq!(data.utterances[1].audio, dir.path().join("sub/b.wav"));
        assert!(data.utterances[2].phones.is_empty(), "no phones: no speech");
        assert_eq!(
            phones.format_sequence(&data.utterances[0].phones),
            "hh ah l ow"
        );
        let problems: Vec<String> = data.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("train.tsv:4"), "{}", problems[0]);
        assert!(problems[1].contains(":5") && problems[1].contains("does not exist"));
        assert!(problems[2].contains(":6") && problems[2].contains("'zz'"));
    }

    #[test]
    fn a_header_line_is_skipped_only_first() {
        let (dir, phones) = setup();
        let manifest = dir.path().join("train.tsv");
        std::fs::write(&manifest, "audio\tphones\na.wav\tah\naudio\tah\n").unwrap();
        let data = load_manifest(&manifest, &phones).unwrap();
        assert_eq!(data.len(), 1);
        // Further down, `audio` is a file name like any other (here a missing one).
        assert_eq!(data.problems.len(), 1);
        assert!(data.problems[0].to_string().contains("train.tsv:3"));
    }

    #[test]
    fn json_lines_with_string_or_list_phones() {
        let (dir, phones) = setup();
        let manifest = dir.path().join("dev.jsonl");
        std::fs::write(
            &manifest,
            "{\"audio\": \"a.wav\", \"phones\": \"s iy\"}\n{\"audio\": \"sub/b.wav\", \"phones\": [\"t\", \"uw\"], \"id\": \"two\"}\n{\"audio\": 3}\n",
        )
        .unwrap();
        let data = load_manifest(&manifest, &phones).unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data.utterances[1].id, "two");
        assert_eq!(data.problems.len(), 1);
        assert!(data.problems[0].to_string().contains("dev.jsonl:3"));
        // A repeated or empty id is a problem of its line, not a second key.
        let twice = dir.path().join("twice.jsonl");
        std::fs::write(
            &twice,
            "{\"audio\": \"a.wav\", \"phones\": \"s\", \"id\": \"u\"}\n{\"audio\": \"a.wav\", \"phones\": \"s\", \"id\": \"u\"}\n{\"audio\": \"a.wav\", \"phones\": \"s\", \"id\": \"\"}\n",
        )
        .unwrap();
        let data = load_manifest(&twice, &phones).unwrap();
        assert_eq!(data.utterances.len(), 1);
        let problems: Vec<String> = data.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            problems[0].contains("listed twice (first on line 1)"),
            "{problems:?}"
        );
        assert!(problems[1].contains("empty"), "{problems:?}");
    }

    #[test]
    fn written_manifest_reads_back() {
        let (dir, phones) = setup();
        let manifest = dir.path().join("in.tsv");
        std::fs::write(&manifest, "a.wav\tah b\n").unwrap();
        let data = load_manifest(&manifest, &phones).unwrap();
        let mut out = Vec::new();
        write_manifest(&data.utterances, &phones, &mut out).unwrap();
        let copy = dir.path().join("sub/copy.tsv");
        std::fs::write(&copy, out).unwrap();
        let again = load_manifest(&copy, &phones).unwrap();
        assert_eq!(again.utterances[0].audio, data.utterances[0].audio);
        assert_eq!(again.utterances[0].phones, data.utterances[0].phones);
    }
}
