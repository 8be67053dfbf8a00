//! NIST CTM (as Kaldi and sclite read it): `file channel start duration phone confidence`, one line per
//! phone, channel always 1, times in seconds.

use std::io::Write;

use crate::phones::PhoneSet;
use crate::recognize::Transcript;

pub(super) fn write(
    transcript: &Transcript,
    phones: &PhoneSet,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    // CTM fields are whitespace-separated: a path with spaces would break the line apart.
    let file = super::transcript_key(transcript);
    for span in &transcript.spans {
        let (start, duration) = super::ctm_start_duration(span.start_s, span.end_s);
        writeln!(
            out,
            "{file} 1 {start:.3} {duration:.3} {} {:.3}",
            phones.name(span.phone),
            span.confidence
        )?;
    }
    Ok(())
}
