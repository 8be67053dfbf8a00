//! Phone boundaries from CTC spikes.
//!
//! A CTC network marks each phone with a spike of a frame or two somewhere inside it, blank elsewhere,
//! so the Viterbi path times spikes, not phones. Where inside the phone the spike falls depends on the
//! phone: this network fires late in vowels (≈ 50 ms after an `ae` starts) and early in fricatives (an
//! `s` runs ≈ 40 ms past its spike). A [`BoundaryModel`] holds, per phone, how far the phone typically
//! extends before its first spike frame and after its last, measured on speech with exact timings
//! (`recipes/align/fit_boundaries.py`: three training voices, medians). Each boundary between two
//! phones is then placed from both sides' extents, averaged with the point where the posteriors in the
//! gap shift from the earlier phone to the later one. A gap that the extents leave wider than
//! [`BoundaryModel::JOIN_GAP_S`] stays silence (a pause).
//!
//! Measured on the held-out voice (models/README.md, "Alignment"): mean absolute boundary error 20.4 ms
//! with gaps split at their midpoints, 15 ms with this model.

use ndarray::ArrayView2;

use super::AlignedPhone;
use crate::error::{Error, Result};
use crate::phones::PhoneSet;

/// Per-phone extents around the spikes (seconds), and how boundaries combine them with the posteriors.
#[derive(Clone, Debug, PartialEq)]
pub struct BoundaryModel {
    /// `before_s[class]`: how long a phone typically starts before its first spike frame's start.
    before_s: Vec<f32>,
    /// `after_s[class]`: how long it typically lasts after its last spike frame's end.
    after_s: Vec<f32>,
}

impl BoundaryModel {
    /// Weight of the posterior crossing point against the extents' estimate (chosen on the fitting
    /// voices: 0.3 was best of 0, 0.3, 0.5, 0.7, 1).
    pub const POSTERIOR_WEIGHT: f32 = 0.3;
    /// A gap the extents leave wider than this between two phones is a pause, not split.
    pub const JOIN_GAP_S: f32 = 0.15;

    /// Read the TSV that `fit_boundaries.py` writes: `phone<TAB>before_s<TAB>after_s[<TAB>count]`,
    /// `#` comments, a header line starting `phone`; the row `*` gives phones not listed. Every phone of
    /// `phones` needs a value (its own row or `*`).
    pub fn parse_tsv(text: &str, phones: &PhoneSet, origin: &str) -> Result<Self> {
        let bad = |line: usize, reason: String| Error::Parse {
            path: origin.into(),
            line: Some(line),
            reason,
        };
        let mut before = vec![f32::NAN; phones.len()];
        let mut after = vec![f32::NAN; phones.len()];
        let mut fallback = None;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("phone\t") {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() < 3 {
                return Err(bad(
                    index + 1,
                    "expected phone<TAB>before_s<TAB>after_s".into(),
                ));
            }
            let number = |s: &str| {
                s.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite() && v.abs() < 1.0)
                    .ok_or_else(|| bad(index + 1, format!("'{s}' is not a time in seconds")))
            };
            let (b, a) = (number(fields[1])?, number(fields[2])?);
            if fields[0] == "*" {
                fallback = Some((b, a));
                continue;
            }
            let id = phones.id(fields[0]).ok_or_else(|| Error::UnknownPhone {
                phone: fields[0].to_string(),
                path: origin.into(),
                line: Some(index + 1),
            })?;
            before[id.index()] = b;
            after[id.index()] = a;
        }
        for class in 1..phones.len() {
            if before[class].is_nan() {
                let (b, a) = fallback.ok_or_else(|| {
                    bad(
                        1,
                        format!(
                            "no row for phone '{}' and no `*` row",
                            phones.name(crate::phones::PhoneId(class as u16))
                        ),
                    )
                })?;
                before[class] = b;
                after[class] = a;
            }
        }
        Ok(BoundaryModel {
            before_s: before,
            after_s: after,
        })
    }

    /// Phone spans `(start_s, end_s)` for spikes `spikes` (their `start_frame..end_frame` are the spike
    /// frames, as [`force_align_words`](super::force_align_words) gives them with
    /// `max_blank_frames_per_side: 0`), `log_probs` the posteriors they were aligned on.
    pub fn place(
        &self,
        spikes: &[AlignedPhone],
        log_probs: ArrayView2<f32>,
        frame_shift_s: f32,
        duration_s: f32,
    ) -> Vec<(f32, f32)> {
        let shift = frame_shift_s;
        let mut spans: Vec<(f32, f32)> = spikes
            .iter()
            .map(|p| {
                let class = p.phone.index();
                (
                    (p.start_frame as f32 * shift - self.before_s[class]).max(0.0),
                    (p.end_frame as f32 * shift + self.after_s[class]).min(duration_s),
                )
            })
            .collect();
        for i in 1..spikes.len() {
            let (earlier, later) = (&spikes[i - 1], &spikes[i]);
            let (ext_end, ext_start) = (spans[i - 1].1, spans[i].0);
            let spike_end = earlier.end_frame as f32 * shift;
            let spike_start = later.start_frame as f32 * shift;
            if ext_start - ext_end > Self::JOIN_GAP_S {
                // A pause: each phone keeps its extent, but never inside the other's spike.
                spans[i - 1].1 = ext_end.max(spike_end);
                spans[i].0 = ext_start.min(spike_start);
                continue;
            }
            let crossing = posterior_crossing(earlier, later, log_probs) as f32 * shift;
            let joint = Self::POSTERIOR_WEIGHT * crossing
                + (1.0 - Self::POSTERIOR_WEIGHT) * 0.5 * (ext_end + ext_start);
            // At most one frame into either spike.
            let joint = joint.clamp(spike_end - shift, spike_start + shift);
            let joint = joint.max(spans[i - 1].0).min(spans[i].1);
            spans[i - 1].1 = joint;
            spans[i].0 = joint;
        }
        spans
    }
}

/// Phone spans `(start_s, end_s)` from a frame classifier (`model::FrameHead`): each phone keeps its
/// spike frames, and each gap between two spikes is labelled, frame by frame, as the earlier phone,
/// then optionally silence, then the later phone, whichever split the frame log-probabilities
/// `frame_log_probs` `[frames, classes]` score best (before the first spike: silence then the phone;
/// after the last: the phone then silence). `classes[i]` is the frame class of spike `i`'s phone (0
/// is silence). A boundary falls where the two classes' log-probabilities cross between the centres
/// of the frames on either side (frame `t` centred at `centre_s + t · shift_s`), which times it finer
/// than a frame.
///
/// Measured on the held-out voice (models/README.md, "Alignment"): 9.4 ms mean absolute error, 94 %
/// within 25 ms, against 15.5 ms / 82.5 % from spike extents ([`BoundaryModel`]).
pub fn place_by_frames(
    spikes: &[AlignedPhone],
    classes: &[usize],
    frame_log_probs: ArrayView2<f32>,
    shift_s: f32,
    centre_s: f32,
    duration_s: f32,
) -> Vec<(f32, f32)> {
    let frames = frame_log_probs.nrows();
    let n = spikes.len().min(classes.len());
    let edge = |t: usize, left: usize, right: usize| -> f32 {
        if t == 0 {
            return 0.0;
        }
        if t >= frames {
            return duration_s;
        }
        // Linear interpolation of the log-probability difference between the two frame centres.
        let d0 = frame_log_probs[[t - 1, left]] - frame_log_probs[[t - 1, right]];
        let d1 = frame_log_probs[[t, left]] - frame_log_probs[[t, right]];
        let fraction = if d0 > d1 && left != right {
            (d0 / (d0 - d1)).clamp(0.0, 1.0)
        } else {
            0.5
        };
        (centre_s + (t as f32 - 1.0 + fraction) * shift_s).clamp(0.0, duration_s)
    };
    let mut spans = vec![(0.0f32, duration_s); n];
    for gap in 0..=n {
        let lo = if gap > 0 {
            spikes[gap - 1].end_frame.min(frames)
        } else {
            0
        };
        let hi = if gap < n {
            spikes[gap].start_frame.clamp(lo, frames)
        } else {
            frames.max(lo)
        };
        let earlier = (gap > 0).then(|| classes[gap - 1]);
        let later = (gap < n).then(|| classes[gap]);
        let (i, j) = split_gap(frame_log_probs, lo, hi, earlier, later);
        if let Some(a) = earlier {
            let right = if j > i { 0 } else { later.unwrap_or(0) };
            spans[gap - 1].1 = edge(i, a, right);
        }
        if let Some(b) = later {
            let left = if j > i { 0 } else { earlier.unwrap_or(0) };
            spans[gap].0 = edge(j, left, b);
        }
    }
    for span in &mut spans {
        span.1 = span.1.max(span.0);
    }
    spans
}

/// The best labelling of frames `lo..hi` as `earlier`^(i−lo) silence^(j−i) `later`^(hi−j): returns
/// `(i, j)`, `lo ≤ i ≤ j ≤ hi`. Without an earlier phone `i = lo`, without a later one `j = hi`.
/// Linear time: for each `j`, the best `i ≤ j` is carried along.
fn split_gap(
    log_probs: ArrayView2<f32>,
    lo: usize,
    hi: usize,
    earlier: Option<usize>,
    later: Option<usize>,
) -> (usize, usize) {
    let score =
        |t: usize, class: Option<usize>| class.map_or(0.0, |c| f64::from(log_probs[[t, c]]));
    // Prefix sums over the gap of the earlier phone's, silence's and the later phone's log-probs.
    let mut earlier_sum = vec![0.0f64; hi - lo + 1];
    let mut silence_sum = vec![0.0f64; hi - lo + 1];
    let mut later_sum = vec![0.0f64; hi - lo + 1];
    for (k, t) in (lo..hi).enumerate() {
        earlier_sum[k + 1] = earlier_sum[k] + score(t, earlier);
        silence_sum[k + 1] = silence_sum[k] + score(t, Some(0));
        later_sum[k + 1] = later_sum[k] + score(t, later);
    }
    let len = hi - lo;
    let mut best = (f64::NEG_INFINITY, lo, lo);
    // (earlier_sum[i] − silence_sum[i]) maximised over i ≤ j.
    let mut best_start = (f64::NEG_INFINITY, 0);
    for j in 0..=len {
        if earlier.is_some() || j == 0 {
            let candidate = earlier_sum[j] - silence_sum[j];
            if candidate > best_start.0 {
                best_start = (candidate, j);
            }
        }
        if later.is_none() && j < len {
            continue;
        }
        let total = best_start.0 + silence_sum[j] + later_sum[len] - later_sum[j];
        if total > best.0 {
            best = (total, lo + best_start.1, lo + j);
        }
    }
    (best.1, best.2)
}

/// The frame edge `b` between two spikes (from the earlier's end to the later's start) that best splits
/// the gap into frames of the earlier phone then frames of the later, by their log-posteriors.
fn posterior_crossing(
    earlier: &AlignedPhone,
    later: &AlignedPhone,
    log_probs: ArrayView2<f32>,
) -> usize {
    let (from, to) = (earlier.end_frame, later.start_frame.max(earlier.end_frame));
    let (a, b) = (earlier.phone.index(), later.phone.index());
    // score(b) = Σ_{t<b} lp[t, a] + Σ_{t≥b} lp[t, b], over the gap: start with every frame given to
    // the later phone and move the edge right one frame at a time.
    let mut score: f64 = (from..to).map(|t| f64::from(log_probs[[t, b]])).sum();
    let (mut best, mut best_edge) = (score, from);
    for t in from..to {
        score += f64::from(log_probs[[t, a]]) - f64::from(log_probs[[t, b]]);
        if score > best {
            best = score;
            best_edge = t + 1;
        }
    }
    best_edge
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctc::testing::peaky;
    use crate::phones::PhoneId;
    use ndarray::Array2;

    fn spike(phone: u16, start: usize, end: usize) -> AlignedPhone {
        AlignedPhone {
            phone: PhoneId(phone),
            start_frame: start,
            end_frame: end,
            confidence: 1.0,
        }
    }

    fn model(phones: &PhoneSet) -> BoundaryModel {
        BoundaryModel::parse_tsv(
            "# test\nphone\tbefore_s\tafter_s\tcount\niy\t0.05\t0.01\t9\n*\t0.02\t0.02\n",
            phones,
            "test",
        )
        .unwrap()
    }

    #[test]
    fn extents_move_boundaries_and_pauses_stay_silence() {
        let phones = PhoneSet::timit39();
        let model = model(&phones);
        let iy = phones.id("iy").unwrap().0;
        let s = phones.id("s").unwrap().0;
        // s spike at frame 5, iy spike at frames 8..9, 10 ms frames, 30 frames.
        let mut path = vec![0_u16; 30];
        path[5] = s;
        path[8] = iy;
        let log_probs = peaky(&path, phones.len());
        let spans = model.place(
            &[spike(s, 5, 6), spike(iy, 8, 9)],
            log_probs.view(),
            0.01,
            0.3,
        );
        // s starts 20 ms before its spike; iy ends 10 ms after its spike.
        assert!((spans[0].0 - 0.03).abs() < 1e-6);
        assert!((spans[1].1 - 0.10).abs() < 1e-6);
        // The boundary lies between the spikes, shared.
        assert_eq!(spans[0].1, spans[1].0);
        assert!(spans[0].1 >= 0.05 && spans[0].1 <= 0.09, "{spans:?}");
        // Spikes far apart: the gap stays silence.
        let spans = model.place(
            &[spike(s, 2, 3), spike(iy, 27, 28)],
            log_probs.view(),
            0.01,
            0.3,
        );
        assert!((spans[0].1 - 0.05).abs() < 1e-6 && (spans[1].0 - 0.22).abs() < 1e-6);
    }

    #[test]
    fn frame_classes_place_boundaries_and_keep_pauses_silent() {
        // 20 frames, 10 ms apart, centred at t · 10 ms: silence 0–2, phone 1 at 3–7, silence 8–9,
        // phone 2 at 10–15, phone 3 at 16–17, silence 18–19.
        let truth = [0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 2, 2, 2, 2, 2, 2, 3, 3, 0, 0];
        let log_probs = Array2::from_shape_fn((20, 4), |(t, c)| {
            if truth[t] == c {
                0.9f32.ln()
            } else {
                (0.1f32 / 3.0).ln()
            }
        });
        let spikes = [spike(1, 5, 6), spike(2, 12, 13), spike(3, 16, 17)];
        let spans = place_by_frames(&spikes, &[1, 2, 3], log_probs.view(), 0.01, 0.0, 0.2);
        // Edges halfway between the centres of the frames on either side of each change.
        let expected = [(0.025, 0.075), (0.095, 0.155), (0.155, 0.175)];
        for (got, want) in spans.iter().zip(expected) {
            assert!(
                (got.0 - want.0).abs() < 1e-5 && (got.1 - want.1).abs() < 1e-5,
                "{spans:?}"
            );
        }
        // A split can never take a spike frame from its phone: even frames that say otherwise.
        let spans = place_by_frames(&[spike(2, 5, 6)], &[2], log_probs.view(), 0.01, 0.0, 0.2);
        assert!(spans[0].0 <= 0.05 && spans[0].1 >= 0.06, "{spans:?}");
    }

    #[test]
    fn the_table_must_cover_every_phone() {
        let phones = PhoneSet::timit39();
        assert!(BoundaryModel::parse_tsv("iy\t0.05\t0.01\n", &phones, "t").is_err());
        assert!(BoundaryModel::parse_tsv("*\t0.05\tx\n", &phones, "t").is_err());
        assert!(BoundaryModel::parse_tsv("qq\t0.05\t0.01\n*\t0\t0\n", &phones, "t").is_err());
    }
}
