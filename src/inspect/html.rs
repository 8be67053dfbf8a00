//! One self-contained HTML page per recording: the posteriorgram drawn on a canvas from embedded data,
//! the waveform, the decoded phones, and the audio as a base64 WAV data URI. Clicking the picture
//! seeks; playing moves a cursor over the frames; hovering shows a frame's top phones; the time axis
//! zooms (buttons, `+`/`-`, Ctrl+wheel) and scrolls. No network access, no external scripts.
//!
//! The page is `page.html` with three placeholders filled in here. Probabilities travel as bytes
//! (`round(p × 255)`, row-major `[frames, classes]`, base64): a quarter of float32's size, and finer
//! than a colour or a percentage shows. Opened as `page.html#selftest`, the page exercises its own
//! hover, click, zoom and playback and writes the outcome into `#status` (the browser test reads it).

use std::io::Write;

use serde_json::json;

use super::colormap::viridis_table;
use super::Inspection;

/// The page, with `__TITLE__`, `__AUDIO__` and `__DATA__` to fill in.
const TEMPLATE: &str = include_str!("page.html");

/// Write the page for `inspection`.
pub fn write_html(inspection: &Inspection, out: &mut dyn Write) -> std::io::Result<()> {
    let posteriors = &inspection.posteriors;
    let probs_u8: Vec<u8> = posteriors
        .log_probs()
        .iter()
        .map(|&log_prob| (log_prob.exp().clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let colormap: Vec<u8> = viridis_table().into_iter().flatten().collect();
    let spans: Vec<_> = inspection
        .spans
        .iter()
        .map(|span| {
            json!({
                "phone": span.phone.index(),
                "start": span.start_s,
                "end": span.end_s,
                "confidence": span.confidence,
            })
        })
        .collect();
    let data = json!({
        "title": inspection.title,
        "phones": posteriors.phone_names(),
        "start_s": inspection.start_s,
        "frame_shift_s": posteriors.frame_shift_s(),
        "num_frames": posteriors.num_frames(),
        "duration_s": inspection.wave.duration_s(),
        "sample_rate_hz": inspection.wave.sample_rate_hz,
        "probs_u8": base64(&probs_u8),
        "colormap_rgb": base64(&colormap),
        "spans": spans,
    });
    // A 16-bit PCM mono WAV, which every browser plays.
    let audio = base64(&crate::audio::wav_i16_bytes(&inspection.wave)?);
    let (head, rest) = split_once(TEMPLATE, "__TITLE__");
    let (middle, rest) = split_once(rest, "__AUDIO__");
    let (before_data, tail) = split_once(rest, "__DATA__");
    out.write_all(head.as_bytes())?;
    out.write_all(escape_html(&inspection.title).as_bytes())?;
    out.write_all(middle.as_bytes())?;
    out.write_all(audio.as_bytes())?;
    out.write_all(before_data.as_bytes())?;
    out.write_all(script_safe_json(&data.to_string()).as_bytes())?;
    out.write_all(tail.as_bytes())
}

/// Split the template at a placeholder it is known to contain.
fn split_once<'a>(text: &'a str, placeholder: &str) -> (&'a str, &'a str) {
    text.split_once(placeholder)
        .expect("page.html holds each placeholder once")
}

/// Text for an HTML element's content.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JSON that cannot end its `<script>` element early: `<`, `>` and `&` only occur inside JSON strings,
/// where `\u003c` and friends mean the same characters.
fn script_safe_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Standard base64 with padding (RFC 4648 §4), as data URIs and `atob` expect.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let group = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(group >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 §10.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn json_cannot_close_the_script() {
        let safe = script_safe_json(r#"{"title":"</script><b>&"}"#);
        assert!(!safe.contains('<') && !safe.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["title"], "</script><b>&");
    }

    #[test]
    fn template_has_each_placeholder_once() {
        for placeholder in ["__TITLE__", "__AUDIO__", "__DATA__"] {
            assert_eq!(TEMPLATE.matches(placeholder).count(), 1, "{placeholder}");
        }
    }
}
