//! `path<TAB>phone phone ...` (or `utterance-id<TAB>...` for inputs listed in a wav.scp), one line per
//! file; and Kaldi's `text` format, `key phone phone ...` with a space.

use std::io::Write;

use crate::phones::PhoneSet;
use crate::recognize::Transcript;

pub(super) fn write(
    transcript: &Transcript,
    phones: &PhoneSet,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let names: Vec<&str> = transcript
        .spans
        .iter()
        .map(|s| phones.name(s.phone))
        .collect();
    match &transcript.id {
        Some(id) => writeln!(out, "{id}\t{}", names.join(" ")),
        None => writeln!(out, "{}\t{}", transcript.source.display(), names.join(" ")),
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
