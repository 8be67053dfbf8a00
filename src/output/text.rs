//! `path<TAB>phone phone ...` (or `utterance-id<TAB>...` for inputs listed in a wav.scp; a tab or
//! line break in the path written as `\t`, `\n` or `\r`), one line per file (with alternatives asked for, each phone's most probable phones as Allosaurus's `--topk`
//! prints them: `path<TAB>ae (0.812) eh (0.102) | t (0.953) d (0.021)`; with an n-best list, one
//! line per hypothesis: `path<TAB>rank<TAB>score<TAB>phones`); and Kaldi's `text` format,
//! `key phone phone ...` with a space (with an n-best list, keys `key-1`, `key-2`, ... as Kaldi's
//! n-best tools name them).

use std::io::Write;

use super::phone_names;
use crate::phones::PhoneSet;
use crate::recognize::Transcript;

pub(super) fn write(
    transcript: &Transcript,
    phones: &PhoneSet,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let key = match &transcript.id {
        Some(id) => id.clone(),
        None => transcript.source.display().to_string(),
    };
    // A tab or a line break in a file name would split the line: written as `\t`, `\n`, `\r`.
    let key = key
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r");
    if !transcript.nbest.is_empty() {
        for (rank, hypothesis) in transcript.nbest.iter().enumerate() {
            writeln!(
                out,
                "{key}\t{}\t{:.3}\t{}",
                rank + 1,
                hypothesis.score,
                phone_names(&hypothesis.phones, phones)
            )?;
        }
        return Ok(());
    }
    let names: Vec<String> = transcript
        .spans
        .iter()
        .map(|s| {
            if s.alternatives.is_empty() {
                phones.name(s.phone).to_string()
            } else {
                // Allosaurus's `--topk` layout: `phone (p) phone (p) | next phone's ...`.
                s.alternatives
                    .iter()
                    .map(|&(id, p)| format!("{} ({p:.3})", phones.name(id)))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        })
        .collect();
    let separator = if transcript.spans.iter().any(|s| !s.alternatives.is_empty()) {
        " | "
    } else {
        " "
    };
    writeln!(out, "{key}\t{}", names.join(separator))
}

/// Kaldi `text`: the utterance id (or the path with whitespace replaced) and the phones, separated
/// by single spaces, as `compute-wer` and the scoring scripts read it.
pub(super) fn write_kaldi(
    transcript: &Transcript,
    phones: &PhoneSet,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let key = super::transcript_key(transcript);
    if !transcript.nbest.is_empty() {
        for (rank, hypothesis) in transcript.nbest.iter().enumerate() {
            let names = phone_names(&hypothesis.phones, phones);
            let separator = if names.is_empty() { "" } else { " " };
            writeln!(out, "{key}-{}{separator}{names}", rank + 1)?;
        }
        return Ok(());
    }
    write!(out, "{key}")?;
    for span in &transcript.spans {
        write!(out, " {}", phones.name(span.phone))?;
    }
    writeln!(out)
}
