//! Speech segmentation: which stretches of a recording hold speech, decided from the network's own
//! blank posteriors and the frames' energy, before decoding. Silence, pauses and non-speech between
//! the regions are never decoded, so they cannot turn into phones (a beam search with an insertion
//! bonus and an LM will otherwise find "words" in anything).
//!
//! A CTC network marks each phone with a short spike of non-blank probability and says blank in
//! between; in a pause the spikes stop. So speech regions are runs of spikes whose gaps are shorter
//! than `min_silence_s`, widened by `padding_s` on each side (the decoder needs the blank frames around
//! a spike to place it). Frames quieter than `energy_floor_dbfs` are silence whatever the network
//! says: digital silence and a faint floor carry no phones.

use ndarray::ArrayView2;

use crate::error::{Error, Result};

pub use crate::audio::frame_levels_dbfs;

/// Default [`SegmentOptions::speech_threshold`]. 0.4 rather than 0.5: a short word in long padding is
/// heard less surely by the whole-file pass, and at 0.5 its first phones fell outside its region (FSDD
/// `pad` 27.2 → 26.1 %, clean 29.8 → 29.3 %; every robustness set's mean equal or better but librivox,
/// +0.03 points; no phones on the non-speech files; `models/README.md`).
pub const DEFAULT_SPEECH_THRESHOLD: f32 = 0.4;

/// Default [`SegmentOptions::extend_threshold`] (measured: `models/README.md`, "Segmentation
/// hysteresis").
pub const DEFAULT_EXTEND_THRESHOLD: f32 = 0.15;

/// Default energy floor (dBFS, RMS per network frame) for a recording at an ordinary level.
pub const DEFAULT_ENERGY_FLOOR_DBFS: f32 = -65.0;

/// A quiet recording's floor follows its loudest frame: frames this far below it are silence, down
/// to [`LOWEST_ENERGY_FLOOR_DBFS`]. A recording whose input gain was set far too low (speech at −68
/// dBFS RMS) lost most of its frames to a fixed −65 dBFS floor (synthetic dev PER 36.5 % against
/// 6.8 %; `models/README.md`), while recordings whose loudest frame is above −20 dBFS keep the fixed
/// floor exactly (a lower fixed floor let a padded digit's fill pass as a spike).
pub const QUIET_RECORDING_RANGE_DB: f32 = 45.0;

/// Lowest floor the level-following rule reaches: 10 dB above the seeded dither (1 LSB, −90 dBFS)
/// that fills digital silence.
pub const LOWEST_ENERGY_FLOOR_DBFS: f32 = -80.0;

/// How speech regions are found.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentOptions {
    /// Segment at all. false: the whole recording is one region (the behaviour before segmentation).
    pub enabled: bool,
    /// A frame is a phone spike when its non-blank probability is at least this. Default
    /// [`DEFAULT_SPEECH_THRESHOLD`].
    pub speech_threshold: f32,
    /// A region, once started by a spike at `speech_threshold`, reaches out over weaker spikes down
    /// to this non-blank probability (hysteresis, as in two-threshold VADs): a weakly heard first or
    /// last phone of a word stays with its word, while weak spikes alone never start a region.
    /// Default [`DEFAULT_EXTEND_THRESHOLD`]; equal to `speech_threshold` (or above) turns it off.
    pub extend_threshold: f32,
    /// Gaps between spikes at least this long (seconds) split regions. Default 0.5.
    pub min_silence_s: f32,
    /// Seconds added before the first and after the last spike of a region. Default 0.2.
    pub padding_s: f32,
    /// Frames whose RMS level is below this (dBFS, 0 = int16 full scale) are silence. Default
    /// [`DEFAULT_ENERGY_FLOOR_DBFS`]; in a quiet recording, lower (see [`effective_energy_floor`]).
    pub energy_floor_dbfs: f32,
    /// When the speech regions cover less than this fraction of the recording, each region is
    /// recognised again on its own (its own normalisation, no recurrence through the non-speech
    /// around it); when the whole recording's pass finds no speech, each loud event (10 dB above
    /// the background, covering less than this fraction) is. Default 0.6; 0 never does either.
    pub isolate_below: f32,
    /// A region whose loudest frames (its 90th percentile level) stand less than this many dB
    /// over the background (the median level outside every region), and whose phones the network
    /// is unsure of (mean confidence below [`UNSURE_CONFIDENCE`]), is dropped: music or noise it
    /// took for speech. Default [`DEFAULT_UNSURE_BELOW_DB`]; 0 keeps every region.
    pub unsure_below_db: f32,
}

/// Default [`SegmentOptions::unsure_below_db`]. On `recipes/robust`'s sets (models/README.md,
/// "Music"): the regions the network found in music alone stand 2–9 dB over the music around
/// them (median 4), speech regions 9 dB or more even at 5 dB SNR, over music 10 dB down, or in
/// FSDD's 8-bit-like floor (their 5th percentiles 8.8–31 dB).
pub const DEFAULT_UNSURE_BELOW_DB: f32 = 6.0;

/// A region's phones are unsure when their mean confidence is below this (speech regions' median
/// 0.60–0.84 over the same sets, music's 0.21).
pub const UNSURE_CONFIDENCE: f32 = 0.5;

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            enabled: true,
            speech_threshold: DEFAULT_SPEECH_THRESHOLD,
            extend_threshold: DEFAULT_EXTEND_THRESHOLD,
            min_silence_s: 0.5,
            padding_s: 0.2,
            energy_floor_dbfs: DEFAULT_ENERGY_FLOOR_DBFS,
            isolate_below: 0.6,
            unsure_below_db: DEFAULT_UNSURE_BELOW_DB,
        }
    }
}

impl SegmentOptions {
    /// Check that every value is in its range.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidOptions {
                what: "segmentation",
                reason,
            })
        };
        if !(self.speech_threshold.is_finite() && (0.0..1.0).contains(&self.speech_threshold)) {
            return bad(format!(
                "speech threshold {} must be in [0, 1)",
                self.speech_threshold
            ));
        }
        if !(self.extend_threshold.is_finite() && (0.0..1.0).contains(&self.extend_threshold)) {
            return bad(format!(
                "extension threshold {} must be in [0, 1)",
                self.extend_threshold
            ));
        }
        for (name, value) in [
            ("minimum silence", self.min_silence_s),
            ("padding", self.padding_s),
        ] {
            if !(value.is_finite() && (0.0..=3600.0).contains(&value)) {
                return bad(format!("{name} {value} s must be in 0..3600 s"));
            }
        }
        if !(self.isolate_below.is_finite() && (0.0..=1.0).contains(&self.isolate_below)) {
            return bad(format!(
                "isolation threshold {} must be a fraction in 0..1",
                self.isolate_below
            ));
        }
        if !(self.unsure_below_db.is_finite() && (0.0..=60.0).contains(&self.unsure_below_db)) {
            return bad(format!(
                "unsure-region level {} dB must be in 0..60",
                self.unsure_below_db
            ));
        }
        if !(self.energy_floor_dbfs.is_finite() && (-200.0..=0.0).contains(&self.energy_floor_dbfs))
        {
            return bad(format!(
                "energy floor {} dBFS must be in -200..0",
                self.energy_floor_dbfs
            ));
        }
        Ok(())
    }
}

/// A speech region in output frames: `start..end`.
pub type FrameRange = (usize, usize);

/// The energy floor for a recording with these frame levels: `floor_dbfs`, or in a quiet recording
/// [`QUIET_RECORDING_RANGE_DB`] below its loudest frame, but not below [`LOWEST_ENERGY_FLOOR_DBFS`]
/// (nor below `floor_dbfs` itself when that is set lower). The loudest frame, not a percentile: a
/// short clip in seconds of silence has few loud frames, and a click can only raise the floor back
/// towards `floor_dbfs`.
pub fn effective_energy_floor(levels_dbfs: &[f32], floor_dbfs: f32) -> f32 {
    let loudest = levels_dbfs
        .iter()
        .copied()
        .filter(|level| level.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if !loudest.is_finite() {
        return floor_dbfs;
    }
    (loudest - QUIET_RECORDING_RANGE_DB).clamp(LOWEST_ENERGY_FLOOR_DBFS.min(floor_dbfs), floor_dbfs)
}

/// The speech regions of `log_probs` (`[frames, classes]`, blank in column 0), given each frame's
/// level in dBFS and the seconds per frame. Regions are sorted and disjoint; without speech, empty.
pub fn speech_regions(
    log_probs: ArrayView2<f32>,
    levels_dbfs: &[f32],
    frame_shift_s: f64,
    options: &SegmentOptions,
) -> Vec<FrameRange> {
    let frames = log_probs.nrows();
    if frames == 0 {
        return Vec::new();
    }
    if !options.enabled {
        return vec![(0, frames)];
    }
    let to_frames = |s: f32| (f64::from(s) / frame_shift_s).round() as usize;
    let min_gap = to_frames(options.min_silence_s).max(1);
    let padding = to_frames(options.padding_s);
    let floor = effective_energy_floor(levels_dbfs, options.energy_floor_dbfs);
    // Each loud frame's non-blank probability; quiet frames count as blank.
    let non_blank: Vec<f32> = (0..frames)
        .map(|t| {
            let loud = levels_dbfs.get(t).is_none_or(|&level| level >= floor);
            if loud {
                1.0 - log_probs[[t, 0]].exp()
            } else {
                0.0
            }
        })
        .collect();
    let strong = |t: usize| non_blank[t] >= options.speech_threshold;
    let weak = |t: usize| non_blank[t] >= options.extend_threshold.min(options.speech_threshold);
    let mut regions: Vec<FrameRange> = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for t in (0..frames).filter(|&t| strong(t)) {
        current = match current {
            Some((first, last)) if t - last < min_gap => Some((first, t)),
            Some(done) => {
                regions.push(done);
                Some((t, t))
            }
            None => Some((t, t)),
        };
    }
    regions.extend(current);
    // Hysteresis: reach out from each region's first and last spike over weak spikes, each less
    // than the minimum silence from the region's edge so far.
    for (first, last) in regions.iter_mut() {
        let mut t = *first;
        while let Some(earlier) = (t.saturating_sub(min_gap - 1)..t).find(|&u| weak(u)) {
            t = earlier;
        }
        *first = t;
        let mut t = *last;
        while let Some(later) = (t + 1..(t + min_gap).min(frames)).rev().find(|&u| weak(u)) {
            t = later;
        }
        *last = t;
    }
    regions.sort_unstable();
    // Widen by the padding, merging regions that then touch (or, extended, overlap).
    let mut merged: Vec<FrameRange> = Vec::with_capacity(regions.len());
    for (first, last) in regions {
        let start = first.saturating_sub(padding);
        let end = (last + 1 + padding).min(frames);
        match merged.last_mut() {
            Some(previous) if start <= previous.1 => previous.1 = previous.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Log-probs with a certain blank everywhere except non-blank spikes at `spikes`.
    fn with_spikes(frames: usize, spikes: &[usize]) -> Array2<f32> {
        Array2::from_shape_fn((frames, 3), |(t, k)| {
            let spike = spikes.contains(&t);
            match (spike, k) {
                (true, 1) | (false, 0) => (0.98f32).ln(),
                _ => (0.01f32).ln(),
            }
        })
    }

    #[test]
    fn spikes_close_together_form_one_padded_region_and_a_pause_splits() {
        // 20 ms frames: min silence 0.5 s = 25 frames, padding 0.2 s = 10 frames.
        let log_probs = with_spikes(400, &[100, 104, 110, 118, 200, 205]);
        let regions = speech_regions(log_probs.view(), &[], 0.02, &SegmentOptions::default());
        assert_eq!(regions, vec![(90, 129), (190, 216)]);
    }

    #[test]
    fn a_region_reaches_out_over_weak_spikes_but_weak_spikes_alone_are_not_speech() {
        // Strong spike at 100; weak ones (non-blank 0.2) at 80 and 60 (a chain, each gap < 25
        // frames), 120, and 300 (alone). 20 ms frames: min silence 25 frames, padding 10.
        let mut log_probs = with_spikes(400, &[100]);
        for t in [60, 80, 120, 300] {
            log_probs[[t, 0]] = 0.8f32.ln();
            log_probs[[t, 1]] = 0.2f32.ln();
        }
        let options = SegmentOptions::default();
        assert!(options.extend_threshold <= 0.2 && options.speech_threshold > 0.2);
        let regions = speech_regions(log_probs.view(), &[], 0.02, &options);
        assert_eq!(regions, vec![(50, 131)]);
        let without = SegmentOptions {
            extend_threshold: options.speech_threshold,
            ..options
        };
        let regions = speech_regions(log_probs.view(), &[], 0.02, &without);
        assert_eq!(regions, vec![(90, 111)]);
        // A weak spike 25 frames or more beyond the region's edge is not reached.
        let mut far = with_spikes(400, &[100]);
        far[[75, 0]] = 0.8f32.ln();
        far[[75, 1]] = 0.2f32.ln();
        let regions = speech_regions(far.view(), &[], 0.02, &SegmentOptions::default());
        assert_eq!(regions, vec![(90, 111)]);
    }

    #[test]
    fn no_spikes_no_regions_and_disabled_means_everything() {
        let log_probs = with_spikes(300, &[]);
        assert!(speech_regions(log_probs.view(), &[], 0.02, &SegmentOptions::default()).is_empty());
        let off = SegmentOptions {
            enabled: false,
            ..SegmentOptions::default()
        };
        assert_eq!(
            speech_regions(log_probs.view(), &[], 0.02, &off),
            vec![(0, 300)]
        );
        assert!(speech_regions(with_spikes(0, &[]).view(), &[], 0.02, &off).is_empty());
    }

    #[test]
    fn quiet_frames_are_silence_whatever_the_network_says() {
        let log_probs = with_spikes(100, &[10, 50]);
        let mut levels = vec![-30.0f32; 100];
        levels[50] = -90.0;
        let regions = speech_regions(log_probs.view(), &levels, 0.02, &SegmentOptions::default());
        assert_eq!(regions, vec![(0, 21)]);
    }

    #[test]
    fn the_floor_follows_a_quiet_recording_down_to_its_limit() {
        // Loudest frame −10 dBFS: the fixed floor; −30: 45 dB below it; −40 or −60: the lowest floor.
        assert_eq!(effective_energy_floor(&[-10.0, -70.0], -65.0), -65.0);
        assert_eq!(
            effective_energy_floor(&[-40.0, f32::NEG_INFINITY], -65.0),
            -80.0
        );
        assert_eq!(effective_energy_floor(&[-30.0], -65.0), -75.0);
        assert_eq!(effective_energy_floor(&[-60.0], -65.0), -80.0);
        // A floor set below the limit is kept; digital silence alone keeps the set floor.
        assert_eq!(effective_energy_floor(&[-60.0], -100.0), -100.0);
        assert_eq!(effective_energy_floor(&[f32::NEG_INFINITY], -65.0), -65.0);
        // Speech 20 dB quieter than at a normal level keeps its spikes.
        let log_probs = with_spikes(100, &[10, 50]);
        let mut levels = vec![-62.0f32; 100];
        levels[50] = -72.0;
        let regions = speech_regions(log_probs.view(), &levels, 0.02, &SegmentOptions::default());
        assert_eq!(regions, vec![(0, 21), (40, 61)]);
    }

    #[test]
    fn regions_at_the_edges_are_clamped_and_overlaps_merge() {
        let log_probs = with_spikes(50, &[0, 30, 49]);
        let options = SegmentOptions {
            min_silence_s: 0.1,
            ..SegmentOptions::default()
        };
        assert_eq!(
            speech_regions(log_probs.view(), &[], 0.02, &options),
            vec![(0, 11), (20, 50)]
        );
    }

    #[test]
    fn options_out_of_range_are_refused() {
        for options in [
            SegmentOptions {
                speech_threshold: 1.5,
                ..SegmentOptions::default()
            },
            SegmentOptions {
                extend_threshold: -0.1,
                ..SegmentOptions::default()
            },
            SegmentOptions {
                min_silence_s: f32::NAN,
                ..SegmentOptions::default()
            },
            SegmentOptions {
                energy_floor_dbfs: 10.0,
                ..SegmentOptions::default()
            },
        ] {
            assert!(options.validate().is_err());
        }
        assert!(SegmentOptions::default().validate().is_ok());
    }
}
