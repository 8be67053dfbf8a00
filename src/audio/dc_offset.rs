//! A recording's DC offset: a constant added to its samples by a converter or preamplifier that is
//! not centred (cheap sound cards and USB microphones; some of the LibriVox and FSDD recordings
//! we evaluate on have offsets 6–20 dB under their speech's RMS).
//!
//! The features never see it (Kaldi removes each frame's mean before the window), but the repairs
//! and the segmentation measure levels on the samples: an offset above a recording's noise makes
//! every pause as loud as the offset, so the added floor and the talker-level equaliser are set by
//! it (measured with sox `dcshift` on the evaluation sets' clean files, models/README.md).
//!
//! The offset is followed as it moves rather than taken as one constant: recordings joined from
//! several takes, or with digital silence between sentences, have a different offset in each part
//! (zero in the silence), and one mean subtracted from all of it put an offset into the parts that
//! had none (measured: a LibriVox file of sentences at different levels lost the equaliser's raise
//! and went from 0.275 to 0.462 PER).

use rayon::prelude::*;

/// Frame length for the local mean, seconds (10 ms).
const FRAME_S: f64 = 0.01;
/// Frames in each of the two moving averages that smooth the frames' means (0.25 s each): an
/// offset moves slowly if at all, and a voice's partials leak into 10 ms means (a 150 Hz tone's
/// alternate ±20 % of its amplitude), which the long window averages away.
const BOX_FRAMES: usize = 25;
/// An offset is removed when its power in the quietest frames is at least this share of their own
/// (AC) power: it then makes the pauses at least 1 dB louder than their noise. Below that the
/// recording is left exactly as it was.
const MIN_OFFSET_POWER_SHARE: f64 = 0.25;
/// The quietest share of the frames with sound that the test above looks at.
const QUIET_SHARE: f64 = 0.1;

/// What [`remove_dc_offset`] found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DcOffsetRemoval {
    /// The offset's RMS over the frames with sound (int16 scale); 0 when none had sound.
    pub offset_rms: f32,
    /// Whether it was removed (it was large enough to change the quiet frames' level).
    pub removed: bool,
}

/// Remove a recording's DC offset where it is large enough to matter (where it makes the quietest
/// tenth of the frames at least 1 dB louder than their own noise): the mean of each 10 ms frame,
/// smoothed over ±0.25 s with the quiet frames weighing most, is subtracted, interpolated between
/// frame centres. Frames of digital silence (all zeros) are neither part of the mean nor changed,
/// so a recording padded with digital silence keeps it.
///
/// After the clipping repair, which finds the rails an offset moved, and after the digital
/// silence fills, whose noise carries the floor's offset.
pub fn remove_dc_offset(samples: &mut [f32], sample_rate_hz: u32) -> DcOffsetRemoval {
    let frame_len = ((f64::from(sample_rate_hz) * FRAME_S).round() as usize).max(1);
    let frames = samples.len().div_ceil(frame_len);
    if frames == 0 {
        return DcOffsetRemoval::default();
    }
    // Each frame's mean and (AC) power, and whether it has any sound; on both cores (an hour is
    // 360,000 frames).
    let stats: Vec<(f64, f64, bool)> = samples
        .par_chunks(frame_len)
        .with_min_len(1024)
        .map(|frame| {
            let mean = frame.iter().map(|&x| f64::from(x)).sum::<f64>() / frame.len() as f64;
            let centred = mean as f32;
            let power =
                frame.iter().map(|&x| (x - centred).powi(2)).sum::<f32>() / frame.len() as f32;
            (mean, f64::from(power), frame.iter().any(|&x| x != 0.0))
        })
        .collect();
    let means: Vec<f64> = stats.iter().map(|s| s.0).collect();
    let powers: Vec<f64> = stats.iter().map(|s| s.1).collect();
    let sound: Vec<bool> = stats.iter().map(|s| s.2).collect();
    let with_sound: Vec<usize> = (0..frames).filter(|&t| sound[t]).collect();
    if with_sound.is_empty() {
        return DcOffsetRemoval::default();
    }
    let mut quietest = with_sound.clone();
    quietest.sort_by(|&a, &b| powers[a].total_cmp(&powers[b]));
    quietest.truncate(((with_sound.len() as f64 * QUIET_SHARE).ceil() as usize).max(1));
    let noise_power = quietest.iter().map(|&t| powers[t]).sum::<f64>() / quietest.len() as f64;

    // The smoothed offset: a moving average, twice, of the means of the frames with sound, each
    // weighted by the inverse of its power (with the noise's added, so no frame weighs without
    // bound). Pauses, whose level the offset changes, then take it from pauses near them rather
    // than from the speech's leaking partials; where there is speech only, from the speech.
    let weights: Vec<f64> = (0..frames)
        .map(|t| {
            if sound[t] {
                1.0 / (powers[t] + noise_power + 1.0)
            } else {
                0.0
            }
        })
        .collect();
    let weighted: Vec<f64> = means.iter().zip(&weights).map(|(m, w)| m * w).collect();
    let (sum, total) = (
        moving_sum(&moving_sum(&weighted)),
        moving_sum(&moving_sum(&weights)),
    );
    let offsets: Vec<f64> = sum
        .iter()
        .zip(&total)
        .zip(&sound)
        .map(|((&s, &w), &has_sound)| if has_sound && w > 0.0 { s / w } else { 0.0 })
        .collect();

    let offset_rms = (with_sound.iter().map(|&t| offsets[t].powi(2)).sum::<f64>()
        / with_sound.len() as f64)
        .sqrt() as f32;
    let offset_power =
        quietest.iter().map(|&t| offsets[t].powi(2)).sum::<f64>() / quietest.len() as f64;
    if offset_power < MIN_OFFSET_POWER_SHARE * noise_power || offset_power == 0.0 {
        return DcOffsetRemoval {
            offset_rms,
            removed: false,
        };
    }

    // Subtract, interpolated linearly between the centres of neighbouring frames with sound: in
    // a frame's first half towards the frame before, in its second towards the frame after.
    let slope = |from: usize, to: Option<usize>| {
        to.filter(|&u| u < frames && sound[u]).map_or(0.0, |u| {
            (offsets[u] - offsets[from]) as f32 / frame_len as f32
        })
    };
    samples
        .par_chunks_mut(frame_len)
        .with_min_len(1024)
        .enumerate()
        .filter(|&(t, _)| sound[t])
        .for_each(|(t, frame)| {
            let centre = frame_len as f32 / 2.0 - 0.5;
            let before = -slope(t, t.checked_sub(1));
            let after = slope(t, Some(t + 1));
            let offset = offsets[t] as f32;
            for (i, x) in frame.iter_mut().enumerate() {
                let from_centre = i as f32 - centre;
                let slope = if from_centre < 0.0 { before } else { after };
                *x -= offset + from_centre * slope;
            }
        });
    DcOffsetRemoval {
        offset_rms,
        removed: true,
    }
}

/// Centred moving sum over [`BOX_FRAMES`] (truncated at the ends).
fn moving_sum(values: &[f64]) -> Vec<f64> {
    let radius = BOX_FRAMES / 2;
    let n = values.len();
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0);
    for &v in values {
        prefix.push(prefix[prefix.len() - 1] + v);
    }
    (0..n)
        .map(|t| prefix[(t + radius + 1).min(n)] - prefix[t.saturating_sub(radius)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 150 Hz tone at `amplitude` over a faint hiss (xorshift), `seconds` at 16 kHz.
    fn tone(seconds: f32, amplitude: f32, seed: &mut u64) -> Vec<f32> {
        (0..(seconds * 16_000.0) as usize)
            .map(|i| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                let hiss = (*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                amplitude * (i as f32 * 150.0 * std::f32::consts::TAU / 16_000.0).sin()
                    + 20.0 * hiss
            })
            .collect()
    }

    #[test]
    fn an_offset_over_the_noise_is_removed_and_the_signal_kept() {
        let mut seed = 1;
        let mut clean = tone(0.5, 0.0, &mut seed);
        clean.extend(tone(1.0, 3000.0, &mut seed));
        clean.extend(tone(0.5, 0.0, &mut seed));
        let mut samples: Vec<f32> = clean.iter().map(|&x| x + 900.0).collect();
        let removal = remove_dc_offset(&mut samples, 16_000);
        assert!(removal.removed);
        assert!((removal.offset_rms - 900.0).abs() < 5.0, "{removal:?}");
        // What is left differs from the clean signal by about an LSB (the tone's leak into the
        // smoothed means), nowhere by the offset.
        let worst = samples
            .iter()
            .zip(&clean)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst < 3.0, "{worst}");
    }

    #[test]
    fn an_offset_that_changes_between_parts_is_followed_and_digital_silence_kept() {
        // Two takes with different offsets, digital silence between them.
        let mut seed = 2;
        let first: Vec<f32> = tone(1.0, 3000.0, &mut seed)
            .iter()
            .map(|&x| x + 800.0)
            .collect();
        let second: Vec<f32> = [tone(0.5, 300.0, &mut seed), tone(0.5, 0.0, &mut seed)]
            .concat()
            .iter()
            .map(|&x| x - 80.0)
            .collect();
        let mut samples = [&first[..], &vec![0.0; 8000], &second[..]].concat();
        assert!(remove_dc_offset(&mut samples, 16_000).removed);
        assert!(samples[16_000..24_000].iter().all(|&x| x == 0.0));
        let mean = |x: &[f32]| x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
        assert!(
            mean(&samples[..16_000]).abs() < 5.0,
            "{}",
            mean(&samples[..16_000])
        );
        assert!(
            mean(&samples[24_000..]).abs() < 5.0,
            "{}",
            mean(&samples[24_000..])
        );
    }

    #[test]
    fn an_offset_under_the_noise_leaves_the_recording_exactly_as_it_was() {
        let mut seed = 3;
        let mut samples: Vec<f32> = tone(1.0, 3000.0, &mut seed)
            .iter()
            .map(|&x| x + 2.0)
            .collect();
        let before = samples.clone();
        let removal = remove_dc_offset(&mut samples, 16_000);
        assert!(!removal.removed, "{removal:?}");
        assert_eq!(samples, before);
        assert_eq!(
            remove_dc_offset(&mut [], 16_000),
            DcOffsetRemoval::default()
        );
        let mut zeros = vec![0.0f32; 800];
        assert!(!remove_dc_offset(&mut zeros, 16_000).removed);
        assert!(zeros.iter().all(|&x| x == 0.0));
    }
}
