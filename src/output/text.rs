//! `path<TAB>phone phone ...` (or `utterance-id<TAB>...` for inputs listed in a wav.scp), one line per
//! file (with alternatives asked for, each phone's most probable phones as Allosaurus's `--topk`
//! prints them: `path<TAB>ae (0.812) eh (0.102) | t (0.953) d (0.021)`); and Kaldi's `text` format,
//! `key phone phone ...` with a space.

use std::io::Write;

use crate::phones::PhoneSet;
use crate::recognize::Transcript;

pub(super) fn write(
    transcript: &Transcript,
    phones: &PhoneSet,
    out: &mut dyn Write,
) -> std::io::Result<()> {
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
    match &transcript.id {
        Some(id) => writeln!(out, "{id}\t{}", names.join(separator)),
        None => writeln!(
            out,
            "{}\t{}",
            transcript.source.display(),
            names.join(separator)
        ),
    }
}

/// Kaldi `text`: the utterance id (or the path with whitespace replaced) and the phones, separated
/// by single spaces, as `compute-wer` and the scoring scripts read it.
pub(super) fn write_kaldi(
    transcript: &Transcript,
    phones: &PhoneSet,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let key = super::transcript_key(transcript);
    write!(out, "{key}")?;
    for span in &transcript.spans {
        write!(out, " {}", phones.name(span.phone))?;
    }
    writeln!(out)
}
