//! Levels: each frame's level, a recording's speech level, and talkers at different levels brought
//! to one.
//!
//! The network's input is normalised once per recording (`CmvnStatistics::Loud`), so a recording
//! of two talkers, one near the microphone and one across the room, puts the far one 10-25 dB
//! under what the network expects of speech: it hears background there and deletes most of what
//! the far talker says. [`equalise_talker_levels`] raises each stretch of sound that is clearly
//! quieter than the recording's speech level to that level before the features, as the per-clip
//! normalisation would have had the stretch been cut out on its own.

/// Full scale of int16-scale samples (0 dBFS).
const FULL_SCALE: f64 = 32768.0;

/// Frames this far under the loud ones count towards the speech level, dB (the loudness range of
/// the per-utterance normalisation, `CmvnStatistics::Loud`).
pub(crate) const SPEECH_RANGE_DB: f32 = 30.0;

/// Percentile of the frame levels taken as "the loud ones": a single bang or click does not set it.
pub(crate) const LOUD_PERCENTILE: f64 = 0.99;

/// The equaliser's frames, s: short enough to find the pauses between talkers.
const FRAME_S: f64 = 0.01;

/// Percentile of the frame levels taken as the recording's floor (its pauses' noise).
const FLOOR_PERCENTILE: f64 = 0.10;

/// A frame is sound (not the pauses' floor) when it is this far over the floor, dB...
const OVER_FLOOR_DB: f32 = 10.0;

/// ...and no further than this under the speech level, dB (a far talker is 10-25 dB under).
const UNDER_SPEECH_DB: f32 = 50.0;

/// Gaps of quieter frames shorter than this join the stretches on either side, s: the closures and
/// short pauses inside one talker's phrase.
const BRIDGE_S: f64 = 0.3;

/// Stretches shorter than this get no level of their own, s; they take the gain between their
/// neighbours'. A talker of their own speaks for longer; what fills a pause for less is more often
/// background. A television 15-30 dB under a talker, heard in the talker's 1-2 s pauses: raising
/// stretches from 0.15 s on cost 3.0-4.6 points of PER there (0.2-0.4 insertions a second), from
/// 1 s on 0-1.4 points (models/README.md, "Talkers at different levels").
const MIN_STRETCH_S: f64 = 1.0;

/// A stretch this far or less under the speech level is left alone, dB: one talker's phrases
/// differ by a few dB, and the per-recording normalisation was trained on that.
const MIN_DEFICIT_DB: f32 = 6.0;

/// The most a stretch is raised, dB.
const MAX_GAIN_DB: f32 = 30.0;

/// What [`equalise_talker_levels`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LevelEqualisation {
    /// Stretches raised to the speech level.
    pub raised: usize,
    /// The largest gain applied, dB (0 when nothing was raised).
    pub max_gain_db: f32,
    /// The raised stretches, as sample ranges `start..end`, in order.
    pub raised_samples: Vec<std::ops::Range<usize>>,
}

/// RMS level in dBFS of each frame: frame `t` covers samples `[t·hop, (t+1)·hop)`. Frames past the
/// end of the audio (the network may pad the last one) get the level of what is left, or −infinity
/// when nothing is.
pub fn frame_levels_dbfs(samples: &[f32], hop: usize, frames: usize) -> Vec<f32> {
    let hop = hop.max(1);
    (0..frames)
        .map(|t| {
            let start = (t * hop).min(samples.len());
            let end = ((t + 1) * hop).min(samples.len());
            let chunk = &samples[start..end];
            if chunk.is_empty() {
                return f32::NEG_INFINITY;
            }
            let power =
                chunk.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / chunk.len() as f64;
            if power <= 0.0 {
                f32::NEG_INFINITY
            } else {
                (10.0 * (power / (FULL_SCALE * FULL_SCALE)).log10()) as f32
            }
        })
        .collect()
}

/// The speech level of a recording, dBFS, from per-frame levels (dBFS, `-inf` for digital
/// silence): the mean power of its frames within 30 dB of its loud frames (the 99th percentile of
/// the levels; louder frames count at that level). `None` when no frame has any power.
pub fn speech_level_dbfs(frame_levels_dbfs: &[f32]) -> Option<f32> {
    let mut finite: Vec<f32> = frame_levels_dbfs
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .collect();
    if finite.is_empty() {
        return None;
    }
    finite.sort_by(f32::total_cmp);
    let loud = finite[rank(finite.len(), LOUD_PERCENTILE)];
    // Frames over the loud percentile (a bang, a click) count at its level.
    let (sum, count) = finite
        .iter()
        .filter(|&&l| l >= loud - SPEECH_RANGE_DB)
        .fold((0.0f64, 0usize), |(sum, count), &l| {
            (sum + 10f64.powf(f64::from(l.min(loud)) / 10.0), count + 1)
        });
    Some((10.0 * (sum / count as f64).log10()) as f32)
}

/// The nearest-rank index of quantile `q` among `len` sorted values (`len` > 0).
fn rank(len: usize, q: f64) -> usize {
    ((len - 1) as f64 * q).round() as usize
}

/// Raise the stretches of `samples` (at `sample_rate_hz`) that are clearly quieter than the
/// recording's speech level to that level: a talker far from the microphone, or one recorded at
/// a lower gain, then reaches the network where the near one does.
///
/// A stretch is a run of 10 ms frames over the recording's floor (10 dB over its 10th-percentile
/// frame, and within 50 dB of its speech level), with gaps under 0.3 s bridged. Each stretch of
/// 1 s or more more than 6 dB under the recording's speech level ([`speech_level_dbfs`]) is
/// raised by the difference, at most 30 dB; the gain moves linearly between stretches, through the
/// pauses, so it never steps inside sound. A recording of one talker at one level is returned
/// unchanged, and so is one without a quieter floor to tell stretches apart by (continuous
/// noise, music without rests).
pub fn equalise_talker_levels(samples: &mut [f32], sample_rate_hz: u32) -> LevelEqualisation {
    let hop = ((FRAME_S * f64::from(sample_rate_hz)).round() as usize).max(1);
    let frames = samples.len() / hop;
    let levels = frame_levels_dbfs(samples, hop, frames);
    let Some(speech_dbfs) = speech_level_dbfs(&levels) else {
        return LevelEqualisation::default();
    };
    let mut finite: Vec<f32> = levels.iter().copied().filter(|l| l.is_finite()).collect();
    finite.sort_by(f32::total_cmp);
    let floor_dbfs = finite[rank(finite.len(), FLOOR_PERCENTILE)];
    let threshold = (floor_dbfs + OVER_FLOOR_DB).max(speech_dbfs - UNDER_SPEECH_DB);
    let frames_of = |seconds: f64| (seconds / FRAME_S).round() as usize;
    let stretches = sound_stretches(&levels, threshold, frames_of(BRIDGE_S));
    // Each long-enough stretch's gain, held over the stretch: the knots of a piecewise-linear curve.
    let mut knots: Vec<(usize, f32)> = Vec::new();
    let mut result = LevelEqualisation::default();
    for &(start, end) in &stretches {
        if end - start < frames_of(MIN_STRETCH_S) {
            continue;
        }
        let Some(level) = speech_level_dbfs(&levels[start..end]) else {
            continue;
        };
        let deficit = speech_dbfs - level;
        let gain_db = if deficit > MIN_DEFICIT_DB {
            result.raised += 1;
            result.max_gain_db = result.max_gain_db.max(deficit.min(MAX_GAIN_DB));
            result
                .raised_samples
                .push(start * hop..(end * hop).min(samples.len()));
            deficit.min(MAX_GAIN_DB)
        } else {
            0.0
        };
        knots.push((start, gain_db));
        knots.push((end - 1, gain_db));
    }
    if result.raised > 0 {
        apply_gain_curve(samples, hop, &knots);
    }
    result
}

/// Runs `(start, end)` of frames at or over `threshold`, gaps shorter than `bridge` frames joined.
fn sound_stretches(levels: &[f32], threshold: f32, bridge: usize) -> Vec<(usize, usize)> {
    let mut stretches: Vec<(usize, usize)> = Vec::new();
    let mut t = 0;
    while t < levels.len() {
        if levels[t] < threshold {
            t += 1;
            continue;
        }
        let start = t;
        while t < levels.len() && levels[t] >= threshold {
            t += 1;
        }
        match stretches.last_mut() {
            Some(last) if start - last.1 < bridge => last.1 = t,
            _ => stretches.push((start, t)),
        }
    }
    stretches
}

/// Multiply `samples` by the gain (dB) that `knots` (frame index, gain; frames of `hop` samples,
/// in increasing order) define: linear between knots, held before the first and after the last,
/// each frame's value at its centre and linear from centre to centre.
fn apply_gain_curve(samples: &mut [f32], hop: usize, knots: &[(usize, f32)]) {
    let Some((&(first_frame, first_gain), &(last_frame, last_gain))) =
        knots.first().zip(knots.last())
    else {
        return;
    };
    let frame_gain = |frame: usize| -> f32 {
        if frame <= first_frame {
            return first_gain;
        }
        if frame >= last_frame {
            return last_gain;
        }
        // The first knot after `frame`; knots are sorted, so the one before it is at or before.
        let next = knots.partition_point(|&(f, _)| f <= frame);
        let ((f0, g0), (f1, g1)) = (knots[next - 1], knots[next]);
        if f1 == f0 {
            return g1;
        }
        g0 + (g1 - g0) * (frame - f0) as f32 / (f1 - f0) as f32
    };
    let frames = samples.len().div_ceil(hop);
    let centre = |frame: usize| frame as f64 * hop as f64 + hop as f64 / 2.0;
    for frame in 0..frames {
        let (g0, g1) = (frame_gain(frame), frame_gain(frame + 1));
        if g0 == 0.0 && g1 == 0.0 {
            continue;
        }
        // From this frame's centre to the next's (the first frame from the start).
        let from = if frame == 0 {
            0
        } else {
            centre(frame).ceil() as usize
        };
        let to = (centre(frame + 1).ceil() as usize).min(samples.len());
        for (i, sample) in samples.iter_mut().enumerate().take(to).skip(from) {
            let position = ((i as f64 - centre(frame)) / hop as f64).clamp(0.0, 1.0) as f32;
            let gain_db = g0 + (g1 - g0) * position;
            *sample *= 10f32.powf(gain_db / 20.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_dbfs_per_frame() {
        let mut samples = vec![0.0f32; 320];
        samples[160..].fill(32768.0 / 10.0); // −20 dBFS
        let levels = frame_levels_dbfs(&samples, 160, 3);
        assert_eq!(levels[0], f32::NEG_INFINITY);
        assert!((levels[1] + 20.0).abs() < 1e-4);
        assert_eq!(levels[2], f32::NEG_INFINITY);
    }

    #[test]
    fn the_speech_level_is_the_loud_frames_not_the_silence_around_them() {
        // A second of speech at -20 dBFS in nine of silence at -80 dBFS, and one bang at -3 dBFS.
        let mut levels = vec![-80.0f32; 450];
        levels.extend(std::iter::repeat_n(-20.0, 50));
        levels.push(-3.0);
        let level = speech_level_dbfs(&levels).unwrap_or(f32::NAN);
        assert!((level + 20.0).abs() < 0.5, "{level}");
        assert_eq!(speech_level_dbfs(&[f32::NEG_INFINITY; 10]), None);
        assert_eq!(speech_level_dbfs(&[]), None);
    }

    /// Seeded noise at 16 kHz, `seconds` long, peaking near `level_dbfs`; with `syllables`, the level
    /// variation of a talker: 200 ms "syllables" 12 dB over 100 ms "closures".
    fn noise(seconds: f64, level_dbfs: f32, seed: u64, syllables: bool) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let amplitude = 32768.0 * 10f32.powf(level_dbfs / 20.0);
        (0..(seconds * 16_000.0) as usize)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let uniform = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                let closure = syllables && (i / 1600) % 3 == 2;
                amplitude * if closure { 0.25 } else { 1.0 } * uniform * 3.0
            })
            .collect()
    }

    fn talker(seconds: f64, level_dbfs: f32, seed: u64) -> Vec<f32> {
        noise(seconds, level_dbfs, seed, true)
    }

    fn pause(seconds: f64, level_dbfs: f32, seed: u64) -> Vec<f32> {
        noise(seconds, level_dbfs, seed, false)
    }

    fn power_dbfs(x: &[f32]) -> f32 {
        let p = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64;
        (10.0 * (p / (FULL_SCALE * FULL_SCALE)).log10()) as f32
    }

    #[test]
    fn a_far_talker_is_raised_to_the_near_ones_level_and_the_near_one_is_left_alone() {
        let near = talker(3.0, -20.0, 1);
        let far = talker(3.0, -40.0, 2);
        let mut recording = [
            near.clone(),
            pause(1.0, -75.0, 3),
            far,
            pause(1.0, -75.0, 4),
            near.clone(),
        ]
        .concat();
        let before = recording.clone();
        let done = equalise_talker_levels(&mut recording, 16_000);
        assert_eq!(done.raised, 1, "{done:?}");
        // Found where the far talker is (4-7 s), to within a frame or two of its edges.
        assert_eq!(done.raised_samples.len(), 1);
        let found = &done.raised_samples[0];
        assert!(found.start.abs_diff(4 * 16_000) <= 320 && found.end.abs_diff(7 * 16_000) <= 320);
        // The speech level counts the far talker's frames too (within 30 dB of the loud ones), so
        // it is a little under the near talker's.
        assert!((done.max_gain_db - 19.0).abs() < 1.5, "{done:?}");
        let (far_start, far_end) = (4 * 16_000, 7 * 16_000);
        // The far talker's middle is within 2 dB of the near one's level now...
        let raised = power_dbfs(&recording[far_start + 8_000..far_end - 8_000]);
        let near_level = power_dbfs(&near);
        assert!(
            (raised - near_level).abs() < 2.0,
            "{raised} vs {near_level}"
        );
        // ...and the near talker is untouched (the gain starts moving at the centre of its last
        // frame, 10 ms long).
        assert_eq!(recording[..3 * 16_000 - 160], before[..3 * 16_000 - 160]);
        assert_eq!(recording[8 * 16_000 + 160..], before[8 * 16_000 + 160..]);
    }

    #[test]
    fn one_talker_at_one_level_and_steady_noise_are_unchanged() {
        let one: Vec<f32> = [
            talker(2.0, -25.0, 5),
            pause(0.8, -80.0, 6),
            talker(2.5, -27.0, 7),
        ]
        .concat();
        let mut one = one;
        let before = one.clone();
        assert_eq!(
            equalise_talker_levels(&mut one, 16_000),
            LevelEqualisation::default()
        );
        assert_eq!(one, before);
        let mut steady = pause(5.0, -30.0, 8);
        let before = steady.clone();
        equalise_talker_levels(&mut steady, 16_000);
        assert_eq!(steady, before);
        let mut empty: Vec<f32> = Vec::new();
        equalise_talker_levels(&mut empty, 16_000);
        let mut silence = vec![0.0f32; 16_000];
        equalise_talker_levels(&mut silence, 16_000);
        assert!(silence.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn the_gain_moves_linearly_between_knots() {
        let mut samples = vec![1.0f32; 1000];
        apply_gain_curve(&mut samples, 100, &[(2, 0.0), (4, 20.0)]);
        // Held before the first knot, 10x from the second knot's centre on.
        assert_eq!(samples[0], 1.0);
        assert_eq!(samples[250], 1.0);
        assert!(
            (samples[350] - 10f32.powf(0.5)).abs() < 1e-4,
            "{}",
            samples[350]
        );
        assert!((samples[450] - 10.0).abs() < 1e-4);
        assert!((samples[999] - 10.0).abs() < 1e-4);
        assert!(samples.windows(2).all(|w| w[1] >= w[0]));
    }
}
