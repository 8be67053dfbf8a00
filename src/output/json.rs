//! One JSON object per file and line:
//! `{"file": ..., "duration": s, "phones": "a b", "spans": [{"phone", "start", "end", "confidence"}]}`
//! (each span also with `"alternatives": [{"phone", "p"}, ...]` when they were asked for),
//! `"nbest": [{"phones", "score", "acoustic", "lm", "p"}, ...]` when an n-best list was asked for
//! (scores natural logs; `p` each hypothesis's share of the list, its scores taken as
//! log-probabilities),
//! `"utterance"` (a Kaldi data dir's utterance id) and `"offset"` (where a Kaldi segment starts in
//! `"file"`; its times count from there) when they apply,
//! `"segments": [[start, end], ...]` (the speech regions that were decoded, in seconds), plus
//! `"vtln_warp"` when VTLN chose a warp factor other than 1 and `"clipped"` (the fraction of samples
//! restored) when the recording's peaks were cut flat at full scale, `"concealed_dropouts"` and
//! `"concealed_s"` (how many packets lost in voiced speech were concealed, and their seconds) when
//! there were any, `"spectral_holes_filled": true` when the recording measured as coded at a low bit
//! rate and the holes in its spectrum were filled, `"clicks_removed"` (how many clicks were
//! interpolated) when there were any, `"levels_raised"` (how many stretches quieter than the
//! recording's speech, a far talker's, were raised to its level) when there were any,
//! `"dereverberated": true` when an echo
//! or its late reverberation was removed before recognition, `"narrowband": true` when the
//! recording, stored above 8 kHz, held nothing of its own above 4 kHz and was recognised at 8 kHz, `"dc_offset_dbfs"` (the RMS of a DC
//! offset removed, dB relative to full scale, to 0.1 dB) when there was one, and always `"peak_dbfs"`: the loudest sample as
//! read, dB relative to full scale, to 0.1 dB (`null` for digital silence), so that a file without
//! phones can be told apart as muted (far below any microphone's floor) or merely without speech.

use std::io::Write;

use serde::Serialize;

use crate::ctc::{Hypothesis, PhoneSpan};
use crate::phones::{PhoneId, PhoneSet};
use crate::recognize::Transcript;

/// A timed phone as the JSON outputs write it (`transcribe --format json`, `probs --format json`).
#[derive(Serialize)]
pub(crate) struct JsonSpan<'a> {
    phone: &'a str,
    start: f32,
    end: f32,
    confidence: f32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    alternatives: Vec<JsonAlternative<'a>>,
}

/// One of a span's most probable phones (`transcribe --alternatives`).
#[derive(Serialize)]
struct JsonAlternative<'a> {
    phone: &'a str,
    p: f32,
}

impl<'a> JsonSpan<'a> {
    /// `span` under the name `phone`, times and confidence to 3 decimals.
    pub(crate) fn new(span: &PhoneSpan, phone: &'a str) -> Self {
        JsonSpan {
            phone,
            start: round3(span.start_s),
            end: round3(span.end_s),
            confidence: round3(span.confidence),
            alternatives: Vec::new(),
        }
    }

    /// With the span's [`alternatives`](PhoneSpan::alternatives), named by `name`, probabilities to
    /// 3 decimals.
    fn with_alternatives(mut self, span: &PhoneSpan, name: impl Fn(PhoneId) -> &'a str) -> Self {
        self.alternatives = span
            .alternatives
            .iter()
            .map(|&(phone, p)| JsonAlternative {
                phone: name(phone),
                p: round3(p),
            })
            .collect();
        self
    }
}

#[derive(Serialize)]
struct JsonTranscript<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    utterance: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<f64>,
    duration: f64,
    phones: String,
    spans: Vec<JsonSpan<'a>>,
    segments: Vec<[f32; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vtln_warp: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clipped: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    concealed_dropouts: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    concealed_s: Option<f32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    spectral_holes_filled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    clicks_removed: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    levels_raised: Option<usize>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dereverberated: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    narrowband: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    dc_offset_dbfs: Option<f32>,
    peak_dbfs: Option<f32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nbest: Vec<JsonHypothesis>,
}

/// One entry of an n-best list (`transcribe --nbest`).
#[derive(Serialize)]
struct JsonHypothesis {
    phones: String,
    score: f64,
    acoustic: f64,
    lm: f64,
    p: f64,
}

/// `hypotheses` for JSON: scores to 3 decimals, and each one's share of the list's probability.
fn json_nbest(hypotheses: &[Hypothesis], phones: &PhoneSet) -> Vec<JsonHypothesis> {
    let best = hypotheses
        .iter()
        .map(|h| h.score)
        .fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = hypotheses.iter().map(|h| (h.score - best).exp()).sum();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    hypotheses
        .iter()
        .map(|h| JsonHypothesis {
            phones: super::phone_names(&h.phones, phones),
            score: round(h.score),
            acoustic: round(h.acoustic_log_prob),
            lm: round(h.lm_log_prob),
            p: round((h.score - best).exp() / total),
        })
        .collect()
}

/// Round to milliseconds / 3 decimals: more digits would only be noise.
pub(crate) fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

pub(super) fn write(
    transcript: &Transcript,
    phones: &PhoneSet,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let spans: Vec<JsonSpan> = transcript
        .spans
        .iter()
        .map(|s| JsonSpan::new(s, phones.name(s.phone)).with_alternatives(s, |id| phones.name(id)))
        .collect();
    let record = JsonTranscript {
        file: transcript.source.display().to_string(),
        utterance: transcript.id.as_deref(),
        offset: transcript.offset_s,
        duration: (transcript.duration_s * 1000.0).round() / 1000.0,
        phones: spans.iter().map(|s| s.phone).collect::<Vec<_>>().join(" "),
        spans,
        segments: transcript
            .segments
            .iter()
            .map(|&(start, end)| [round3(start), round3(end)])
            .collect(),
        vtln_warp: (transcript.vtln_warp != 1.0).then_some(transcript.vtln_warp),
        clipped: (transcript.clipped_fraction > 0.0)
            .then(|| (transcript.clipped_fraction * 10_000.0).round() / 10_000.0),
        concealed_dropouts: (transcript.concealed_dropouts > 0)
            .then_some(transcript.concealed_dropouts),
        concealed_s: (transcript.concealed_dropouts > 0).then(|| round3(transcript.concealed_s)),
        spectral_holes_filled: transcript.spectral_holes_filled,
        clicks_removed: (transcript.clicks_removed > 0).then_some(transcript.clicks_removed),
        levels_raised: (transcript.levels_raised > 0).then_some(transcript.levels_raised),
        dereverberated: transcript.dereverberated,
        narrowband: transcript.narrowband,
        dc_offset_dbfs: transcript
            .dc_offset_dbfs
            .map(|dbfs| (dbfs * 10.0).round() / 10.0),
        peak_dbfs: transcript
            .peak_dbfs
            .is_finite()
            .then(|| (transcript.peak_dbfs * 10.0).round() / 10.0),
        nbest: json_nbest(&transcript.nbest, phones),
    };
    serde_json::to_writer(&mut *out, &record)?;
    writeln!(out)
}
