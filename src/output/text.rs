//! `path<TAB>phone phone ...`, one line per file.

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
    writeln!(out, "{}\t{}", transcript.source.display(), names.join(" "))
}
