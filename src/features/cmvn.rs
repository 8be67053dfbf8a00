//! Per-utterance cepstral mean and variance normalisation (Kaldi's `apply-cmvn` with per-utterance
//! stats), with the statistics optionally taken over the loud (speech) frames only.

use ndarray::{Array2, ArrayView2, Axis};

use super::options::{CmvnOptions, CmvnStatistics};

/// Variances below this are treated as this (Kaldi's floor in `ApplyCmvn` is 1e-10 on the variance).
const VARIANCE_FLOOR: f64 = 1e-10;
/// Fewer qualifying frames than this and the statistics are taken over all frames.
const MIN_LOUD_FRAMES: usize = 10;
/// The percentile of frame loudness that stands for "the loud frames" (robust to a few clicks).
const LOUD_PERCENTILE: f64 = 0.95;

/// Subtract each dimension's mean, and divide by its standard deviation if asked. The statistics are
/// over all frames, or with [`CmvnStatistics::Loud`] over the frames whose `loudness` (natural-log
/// energy per frame, one value per row) is near the loud ones. An utterance without frames is left as
/// it is.
pub fn apply_cmvn(features: &mut Array2<f32>, loudness: &[f32], options: &CmvnOptions) {
    let num_frames = features.nrows();
    if num_frames == 0 {
        return;
    }
    let selected = match options.statistics {
        CmvnStatistics::All => None,
        CmvnStatistics::Loud { within_db } => loud_frames(loudness, within_db),
    };
    for mut column in features.axis_iter_mut(Axis(1)) {
        let (mean, variance) = match &selected {
            None => mean_and_variance(column.iter().copied()),
            Some(rows) => mean_and_variance(rows.iter().map(|&t| column[t])),
        };
        let scale = if options.normalize_variance {
            1.0 / variance.max(VARIANCE_FLOOR).sqrt()
        } else {
            1.0
        };
        column.mapv_inplace(|v| ((v as f64 - mean) * scale) as f32);
    }
}

fn mean_and_variance(values: impl Iterator<Item = f32> + Clone) -> (f64, f64) {
    let (mut n, mut sum) = (0usize, 0f64);
    for v in values.clone() {
        n += 1;
        sum += f64::from(v);
    }
    if n == 0 {
        return (0.0, 1.0);
    }
    let mean = sum / n as f64;
    let variance = values.map(|v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n as f64;
    (mean, variance)
}

/// Rows whose loudness is within `within_db` of the loud percentile, or None (use all rows) when fewer
/// than [`MIN_LOUD_FRAMES`] qualify or the loudness is missing. Non-finite loudness never qualifies.
fn loud_frames(loudness: &[f32], within_db: f32) -> Option<Vec<usize>> {
    let mut finite: Vec<f32> = loudness.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.len() < MIN_LOUD_FRAMES {
        return None;
    }
    // Loudness is a natural log of power: 10 dB is ln(10) nepers of power.
    let range = within_db * std::f32::consts::LN_10 / 10.0;
    let threshold = percentile(&mut finite, LOUD_PERCENTILE) - range;
    // Second pass: the percentile of the frames kept by the first, so that silence added around
    // the speech (which lowers the first pass's percentile rank) changes nothing.
    let mut kept: Vec<f32> = finite.into_iter().filter(|&v| v >= threshold).collect();
    if kept.len() < MIN_LOUD_FRAMES {
        return None;
    }
    let threshold = percentile(&mut kept, LOUD_PERCENTILE) - range;
    let rows: Vec<usize> = (0..loudness.len())
        .filter(|&t| loudness[t] >= threshold)
        .collect();
    (rows.len() >= MIN_LOUD_FRAMES).then_some(rows)
}

/// The `p` quantile (nearest rank) of non-empty `values`, reordering them.
fn percentile(values: &mut [f32], p: f64) -> f32 {
    let rank = ((values.len() - 1) as f64 * p).round() as usize;
    *values.select_nth_unstable_by(rank, f32::total_cmp).1
}

/// Natural-log energy of each frame of log-mel filterbank features `[frames, bins]`: the log of the
/// summed filterbank power (a log-sum-exp over the row).
pub fn filterbank_loudness(log_mel: ArrayView2<f32>) -> Vec<f32> {
    log_mel
        .rows()
        .into_iter()
        .map(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if !max.is_finite() {
                return max;
            }
            max + row.iter().map(|&v| (v - max).exp()).sum::<f32>().ln()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn mean_and_variance_are_normalised() {
        let mut x = array![[1.0f32, 10.0], [3.0, 10.0], [5.0, 10.0]];
        apply_cmvn(&mut x, &[], &CmvnOptions::default());
        assert_eq!(x, array![[-2.0, 0.0], [0.0, 0.0], [2.0, 0.0]]);
        let mut y = array![[1.0f32], [3.0], [5.0]];
        apply_cmvn(
            &mut y,
            &[],
            &CmvnOptions {
                normalize_variance: true,
                ..CmvnOptions::default()
            },
        );
        let std = (8.0f32 / 3.0).sqrt();
        assert!((y[[2, 0]] - 2.0 / std).abs() < 1e-6);
    }

    #[test]
    fn loud_statistics_ignore_silence_padding() {
        // 40 "speech" frames alternating 4 and 6 (mean 5), loud; then 200 silent frames at -15.
        let speech: Vec<f32> = (0..40)
            .map(|t| if t % 2 == 0 { 4.0 } else { 6.0 })
            .collect();
        let mut values = speech.clone();
        values.extend(std::iter::repeat_n(-15.0f32, 200));
        let loudness: Vec<f32> = values.iter().map(|&v| v + 10.0).collect();
        let column = |v: &[f32]| Array2::from_shape_vec((v.len(), 1), v.to_vec()).unwrap();
        let loud = CmvnOptions {
            statistics: CmvnStatistics::Loud { within_db: 30.0 },
            ..CmvnOptions::default()
        };
        let mut padded = column(&values);
        apply_cmvn(&mut padded, &loudness, &loud);
        let mut trimmed = column(&speech);
        apply_cmvn(&mut trimmed, &loudness[..40], &loud);
        // The speech frames are normalised exactly as without the padding...
        assert_eq!(padded.slice(ndarray::s![..40, ..]), trimmed.view());
        assert_eq!(padded[[0, 0]], -1.0);
        // ...while all-frame statistics are pulled toward the silence.
        let mut all = column(&values);
        apply_cmvn(&mut all, &loudness, &CmvnOptions::default());
        assert!(all[[0, 0]] > 10.0);
    }

    #[test]
    fn loud_statistics_fall_back_to_all_frames_when_too_few_qualify() {
        let mut x = Array2::from_shape_fn((5, 1), |(t, _)| t as f32);
        let options = CmvnOptions {
            statistics: CmvnStatistics::Loud { within_db: 30.0 },
            ..CmvnOptions::default()
        };
        apply_cmvn(&mut x, &[0.0; 5], &options);
        assert_eq!(x.column(0).to_vec(), vec![-2.0, -1.0, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn filterbank_loudness_is_the_log_of_summed_power() {
        let log_mel = array![[0.0f32, 0.0], [2.0f32.ln(), 3.0f32.ln()]];
        let loudness = filterbank_loudness(log_mel.view());
        assert!((loudness[0] - 2.0f32.ln()).abs() < 1e-6);
        assert!((loudness[1] - 5.0f32.ln()).abs() < 1e-6);
    }
}
