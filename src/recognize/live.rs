//! Live audio cut into utterances as it arrives (`phonrec live`): the recogniser's network is
//! bidirectional, so it hears an utterance whole; this endpointer decides where one ends — at a
//! pause — so that its phones can be printed while the talker goes on, as pocketsphinx's `live`
//! mode does.
//!
//! Per 10 ms frame the level in dB (of the samples less the stream's DC offset, tracked as it
//! goes: a converter that is not centred made every pause as loud as its offset); the background
//! is the lowest level, averaged over 0.2 s, of the last 30 seconds (minimum statistics: speech
//! always has pauses that short, a room's noise has no gap below its own level), so it follows a
//! fan or a hum as it changes; a frame is loud when it stands [`EndpointOptions::threshold_db`]
//! above that (and above −65 dBFS). Three loud frames in a row start an utterance (with a margin
//! of audio before them); a pause of [`EndpointOptions::min_pause_s`] ends it (with a margin after
//! its last loud frame); one longer than [`EndpointOptions::max_utterance_s`] is cut at its
//! quietest frame of the last few seconds.

use std::collections::VecDeque;

use crate::audio::Waveform;
use crate::error::{Error, Result};

/// Where live audio is cut into utterances.
#[derive(Clone, Debug)]
pub struct EndpointOptions {
    /// A pause at least this long ends an utterance, seconds. Default 0.5.
    pub min_pause_s: f32,
    /// An utterance this long is cut at its quietest moment of the last few seconds. Default 20.
    pub max_utterance_s: f32,
    /// Audio kept before an utterance's first loud frame and after its last, seconds. Default 0.3.
    pub margin_s: f32,
    /// How far above the background a frame must be to count as loud, dB. Default 6 (measured:
    /// at 12, speech in noise at 5 dB SNR lost half its phones; models/README.md).
    pub threshold_db: f32,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions {
            min_pause_s: 0.5,
            max_utterance_s: 20.0,
            margin_s: 0.3,
            threshold_db: 6.0,
        }
    }
}

impl EndpointOptions {
    /// Check the options make sense together: a pause of 0.1–10 s, utterances of 1–600 s and more
    /// than twice the pause, margins of 0–2 s, a threshold of 1–40 dB.
    pub fn validate(&self) -> Result<()> {
        let within =
            |x: f32, range: std::ops::RangeInclusive<f32>| x.is_finite() && range.contains(&x);
        let reason = if !within(self.min_pause_s, 0.1..=10.0) {
            format!(
                "the pause that ends an utterance must be 0.1–10 s, got {}",
                self.min_pause_s
            )
        } else if !within(self.max_utterance_s, 1.0..=600.0)
            || self.max_utterance_s <= 2.0 * self.min_pause_s
        {
            format!(
                "the longest utterance must be 1–600 s and more than twice the pause, got {}",
                self.max_utterance_s
            )
        } else if !within(self.margin_s, 0.0..=2.0) {
            format!("the margin must be 0–2 s, got {}", self.margin_s)
        } else if !within(self.threshold_db, 1.0..=40.0) {
            format!(
                "the speech threshold must be 1–40 dB, got {}",
                self.threshold_db
            )
        } else {
            return Ok(());
        };
        Err(Error::InvalidOptions {
            what: "endpointing",
            reason,
        })
    }
}

/// One utterance cut from the stream: where it starts in the stream, and its audio.
#[derive(Clone, Debug)]
pub struct LiveUtterance {
    /// Its start, seconds from the start of the stream.
    pub start_s: f64,
    /// Its samples (mono, int16 scale), at the stream's rate.
    pub wave: Waveform,
}

/// Frames of level history the background is the minimum of (30 s).
const HISTORY_FRAMES: u64 = 3000;
/// Frames each level is averaged over before it joins the history (0.2 s).
const SMOOTHING_FRAMES: usize = 20;
/// Loud frames in a row that start an utterance (30 ms: a click is shorter).
const ONSET_FRAMES: usize = 3;
/// Nothing quieter than this is loud, dB at int16 scale: −65 dBFS (full scale is 90.3 dB).
const LOUD_FLOOR_DB: f32 = 90.3 - 65.0;
/// Frames quieter than this (−80 dBFS, a few LSB of 16-bit audio) are digital silence (a mute,
/// a noise gate, a VoIP gap) and do not join the background: 0.2 s of zeros made it 0 dB, and
/// the room's noise counted as speech for the next 30 s.
const DIGITAL_SILENCE_DB: f32 = 90.3 - 80.0;
/// How far each frame's mean moves the tracked DC offset: a time constant of 1 s (100 frames), slow
/// enough that speech's lowest partials (a frame's mean is one period of 100 Hz) do not move it.
const DC_TRACKING: f64 = 0.01;
/// An utterance too long is cut within this many of its last seconds.
const CUT_SEARCH_S: f32 = 5.0;

/// Cuts a stream of samples into utterances: [`push`](Self::push) what arrives, get what ended.
pub struct Endpointer {
    options: EndpointOptions,
    sample_rate_hz: u32,
    frame_len: usize,
    /// Samples from `buffer_frame` on (whole frames), and a partial frame after them.
    buffer: Vec<f32>,
    partial: Vec<f32>,
    /// The stream frame index of `buffer[0]`.
    buffer_frame: u64,
    /// The level of every buffered frame, dB.
    levels: Vec<f32>,
    /// The last [`SMOOTHING_FRAMES`] levels and their sum.
    recent: VecDeque<f32>,
    recent_sum: f64,
    /// Smoothed levels of the history window that may yet be its minimum, as (frame, level),
    /// rising (a sliding-window minimum).
    minima: VecDeque<(u64, f32)>,
    /// The stream's DC offset as tracked so far (int16 scale); `None` before its first frame
    /// that is not digital silence.
    dc_offset: Option<f64>,
    /// Samples pushed so far (to name a bad one by its place in the stream).
    pushed: u64,
    /// The stream frame where the current utterance starts, if one has started.
    start: Option<u64>,
    /// Loud frames in a row before an utterance starts.
    onset: usize,
    last_loud: u64,
}

impl Endpointer {
    /// An endpointer for a stream at `sample_rate_hz` (options as [`EndpointOptions::validate`]
    /// checks them).
    pub fn new(sample_rate_hz: u32, options: EndpointOptions) -> Result<Self> {
        options.validate()?;
        if sample_rate_hz == 0 {
            return Err(Error::InvalidOptions {
                what: "endpointing",
                reason: "a sample rate of 0 Hz".to_string(),
            });
        }
        Ok(Endpointer {
            options,
            sample_rate_hz,
            frame_len: (sample_rate_hz as usize / 100).max(1),
            buffer: Vec::new(),
            partial: Vec::new(),
            buffer_frame: 0,
            levels: Vec::new(),
            recent: VecDeque::with_capacity(SMOOTHING_FRAMES + 1),
            recent_sum: 0.0,
            minima: VecDeque::new(),
            dc_offset: None,
            pushed: 0,
            start: None,
            onset: 0,
            last_loud: 0,
        })
    }

    fn frames(&self, seconds: f32) -> u64 {
        (seconds.max(0.0) * 100.0).round() as u64
    }

    /// Add the samples that arrived (mono, int16 scale); returns the utterances that ended in them.
    /// Samples no recording has (NaN, infinite, beyond [`Waveform::check_samples`]'s limit) are
    /// refused, as `transcribe` refuses them, and nothing of that push is taken: one of them used
    /// to leave the endpointer deaf, or blind to pauses, for the rest of the stream.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<LiveUtterance>> {
        let limit = crate::audio::MAX_LEVEL_OVER_FULL_SCALE * crate::audio::INT16_SCALE;
        if let Some(i) = samples
            .iter()
            .position(|x| !x.is_finite() || x.abs() > limit)
        {
            let at = self.pushed + i as u64;
            return Err(Error::InvalidAudio {
                reason: format!(
                    "live sample {at} (at {:.3} s) is {}: float samples are expected in ±1, finite",
                    at as f64 / f64::from(self.sample_rate_hz),
                    samples[i] / crate::audio::INT16_SCALE
                ),
            });
        }
        self.pushed += samples.len() as u64;
        let mut ended = Vec::new();
        self.partial.extend_from_slice(samples);
        let whole = self.partial.len() / self.frame_len * self.frame_len;
        let arrived: Vec<f32> = self.partial.drain(..whole).collect();
        for frame in arrived.chunks_exact(self.frame_len) {
            if let Some(utterance) = self.push_frame(frame) {
                ended.push(utterance);
            }
        }
        Ok(ended)
    }

    /// The stream has ended: the utterance under way, if any.
    pub fn finish(mut self) -> Option<LiveUtterance> {
        let start = self.start?;
        let partial = std::mem::take(&mut self.partial);
        self.buffer.extend_from_slice(&partial);
        let end = self.buffer_frame + self.levels.len() as u64;
        let mut utterance = self.cut(start, end);
        utterance.wave.samples.extend_from_slice(&partial);
        Some(utterance)
    }

    fn push_frame(&mut self, frame: &[f32]) -> Option<LiveUtterance> {
        let len = frame.len() as f64;
        let energy = frame
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            / len;
        let level = (10.0 * (energy + 1.0).log10()) as f32;
        // The level less the DC offset. Digital silence (a mute) is zeros whatever the offset:
        // it is told by the raw level and does not move the offset.
        let level = if level < DIGITAL_SILENCE_DB {
            level
        } else {
            let mean = frame.iter().map(|&x| f64::from(x)).sum::<f64>() / len;
            let dc = self
                .dc_offset
                .map_or(mean, |dc| dc + DC_TRACKING * (mean - dc));
            self.dc_offset = Some(dc);
            // The mean square of (x − dc), from the frame's mean square and mean.
            let ac_energy = (energy - 2.0 * dc * mean + dc * dc).max(0.0);
            (10.0 * (ac_energy + 1.0).log10()) as f32
        };
        let index = self.buffer_frame + self.levels.len() as u64;
        let background = if level < DIGITAL_SILENCE_DB {
            self.minima.front().map_or(f32::NEG_INFINITY, |&(_, v)| v)
        } else {
            self.background(index, level)
        };
        let loud = level > (background + self.options.threshold_db).max(LOUD_FLOOR_DB);
        self.buffer.extend_from_slice(frame);
        self.levels.push(level);
        let margin = self.frames(self.options.margin_s);
        let Some(start) = self.start else {
            self.onset = if loud { self.onset + 1 } else { 0 };
            if self.onset >= ONSET_FRAMES {
                let first_loud = index + 1 - ONSET_FRAMES as u64;
                self.start = Some(first_loud.saturating_sub(margin).max(self.buffer_frame));
                self.last_loud = index;
            } else {
                // Idle: keep only the margin's worth of audio before whatever comes next.
                let keep = margin + ONSET_FRAMES as u64;
                let held = self.levels.len() as u64;
                if held > 2 * keep {
                    self.drop_before(index + 1 - keep);
                }
            }
            return None;
        };
        if loud {
            self.last_loud = index;
        }
        if index.saturating_sub(self.last_loud) >= self.frames(self.options.min_pause_s) {
            let end = (self.last_loud + 1 + margin).min(index + 1);
            self.start = None;
            self.onset = 0;
            // After a cut for length inside the pause that then ended the utterance, nothing of
            // it is left after the cut.
            if end <= start {
                return None;
            }
            let utterance = self.cut(start, end);
            self.drop_before(end);
            return Some(utterance);
        }
        if index + 1 - start >= self.frames(self.options.max_utterance_s) {
            // Too long: cut at the quietest frame of the last few seconds and go on from there.
            let search = self.frames(CUT_SEARCH_S).min(index - start);
            let from = index + 1 - search;
            let quietest = (from..=index)
                .min_by(|&a, &b| self.level(a).total_cmp(&self.level(b)))
                .unwrap_or(index);
            let cut_at = quietest.max(start + 1);
            let utterance = self.cut(start, cut_at);
            self.start = Some(cut_at);
            self.drop_before(cut_at);
            return Some(utterance);
        }
        None
    }

    fn level(&self, frame: u64) -> f32 {
        self.levels[(frame - self.buffer_frame) as usize]
    }

    /// The background level once frame `index` at `level` has joined the history: the lowest
    /// smoothed level of the last [`HISTORY_FRAMES`].
    fn background(&mut self, index: u64, level: f32) -> f32 {
        self.recent.push_back(level);
        self.recent_sum += f64::from(level);
        if self.recent.len() > SMOOTHING_FRAMES {
            self.recent_sum -= f64::from(self.recent.pop_front().unwrap_or(0.0));
        }
        let smoothed = (self.recent_sum / self.recent.len() as f64) as f32;
        while self.minima.back().is_some_and(|&(_, v)| v >= smoothed) {
            self.minima.pop_back();
        }
        self.minima.push_back((index, smoothed));
        while self
            .minima
            .front()
            .is_some_and(|&(i, _)| i + HISTORY_FRAMES <= index)
        {
            self.minima.pop_front();
        }
        self.minima.front().map_or(smoothed, |&(_, v)| v)
    }

    /// The audio of stream frames `start..end` (both within the buffer).
    fn cut(&self, start: u64, end: u64) -> LiveUtterance {
        let from = (start - self.buffer_frame) as usize * self.frame_len;
        let to = ((end.saturating_sub(self.buffer_frame)) as usize * self.frame_len)
            .min(self.buffer.len())
            .max(from);
        LiveUtterance {
            start_s: start as f64 * self.frame_len as f64 / f64::from(self.sample_rate_hz),
            wave: Waveform {
                samples: self.buffer[from..to].to_vec(),
                sample_rate_hz: self.sample_rate_hz,
            },
        }
    }

    /// Forget the buffered frames before stream frame `frame`.
    fn drop_before(&mut self, frame: u64) {
        let drop = (frame.saturating_sub(self.buffer_frame) as usize).min(self.levels.len());
        self.levels.drain(..drop);
        self.buffer.drain(..drop * self.frame_len);
        self.buffer_frame += drop as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `seconds` of a 200 Hz tone at `amplitude` (int16 scale) over a faint hiss, at 8 kHz.
    fn tone(seconds: f32, amplitude: f32, seed: &mut u32) -> Vec<f32> {
        (0..(seconds * 8000.0) as usize)
            .map(|i| {
                *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let hiss = (*seed >> 16) as f32 / 65536.0 - 0.5;
                amplitude * (i as f32 * 200.0 * std::f32::consts::TAU / 8000.0).sin() + 20.0 * hiss
            })
            .collect()
    }

    #[test]
    fn pauses_end_utterances_and_times_count_from_the_stream_start() {
        let mut seed = 1;
        let mut stream = tone(1.0, 0.0, &mut seed);
        for _ in 0..3 {
            stream.extend(tone(0.8, 5000.0, &mut seed));
            stream.extend(tone(1.0, 0.0, &mut seed));
        }
        let mut endpointer = Endpointer::new(8000, EndpointOptions::default()).expect("valid");
        let mut utterances = Vec::new();
        // Fed in odd-sized pieces, as a pipe delivers them.
        for piece in stream.chunks(333) {
            utterances.extend(endpointer.push(piece).unwrap());
        }
        assert!(endpointer.finish().is_none(), "the stream ends in a pause");
        assert_eq!(utterances.len(), 3);
        for (k, utterance) in utterances.iter().enumerate() {
            // Each 0.8 s tone starts at 1 + 1.8 k s; the utterance 0.3 s before it, 1.4 s long.
            let tone_start = 1.0 + 1.8 * k as f64;
            assert!(
                (utterance.start_s - (tone_start - 0.3)).abs() < 0.02,
                "{k}: {}",
                utterance.start_s
            );
            assert!((utterance.wave.duration_s() - 1.4).abs() < 0.03, "{k}");
        }
    }

    #[test]
    fn a_dc_offset_cuts_the_stream_where_its_pauses_are() {
        // The tones of the first test over an offset of 3000 (−21 dBFS, the tones' level): with
        // the offset in the levels every pause was as loud as the offset and the tones barely
        // louder, and nothing was heard; with a mute of digital zeros in a pause, which is not
        // offset.
        let mut seed = 3;
        let mut stream = tone(1.0, 0.0, &mut seed);
        for _ in 0..3 {
            stream.extend(tone(0.8, 3000.0, &mut seed));
            stream.extend(tone(1.0, 0.0, &mut seed));
        }
        stream.iter_mut().for_each(|x| *x += 3000.0);
        stream[14_400..15_200].iter_mut().for_each(|x| *x = 0.0);
        let mut endpointer = Endpointer::new(8000, EndpointOptions::default()).expect("valid");
        let utterances = endpointer.push(&stream).unwrap();
        assert!(endpointer.finish().is_none(), "the stream ends in a pause");
        let starts: Vec<f64> = utterances.iter().map(|u| u.start_s).collect();
        assert_eq!(starts.len(), 3, "{starts:?}");
        for (k, start) in starts.iter().enumerate() {
            assert!((start - (0.7 + 1.8 * k as f64)).abs() < 0.02, "{starts:?}");
        }
    }

    #[test]
    fn long_speech_is_cut_at_its_quietest_moment_and_the_end_is_kept() {
        let mut seed = 7;
        let mut stream = tone(0.5, 0.0, &mut seed);
        // 12 s of tone with a 0.2 s dip (shorter than a pause) at 9 s; the stream ends mid-tone.
        stream.extend(tone(8.5, 5000.0, &mut seed));
        stream.extend(tone(0.2, 50.0, &mut seed));
        stream.extend(tone(3.3, 5000.0, &mut seed));
        let options = EndpointOptions {
            max_utterance_s: 10.0,
            ..EndpointOptions::default()
        };
        let mut endpointer = Endpointer::new(8000, options).expect("valid");
        let mut utterances = endpointer.push(&stream).unwrap();
        assert_eq!(utterances.len(), 1, "cut once, at the dip");
        utterances.extend(endpointer.finish());
        assert_eq!(utterances.len(), 2);
        let cut = utterances[1].start_s;
        assert!((9.0..9.2).contains(&cut), "cut at {cut}");
        let total: f64 = utterances.iter().map(|u| u.wave.duration_s()).sum();
        assert!((total - (12.5 - 0.2)).abs() < 0.02, "nothing lost: {total}");
    }

    #[test]
    fn a_length_cut_inside_the_final_pause_leaves_no_empty_utterance() {
        // Speech that stops 0.4 s before the length limit: the limit falls inside the pause, the
        // cut lands in its quietest frame, after the margin; the pause then ends the rest.
        for seed in 0..20 {
            let mut seed = seed;
            let mut stream = tone(0.5, 0.0, &mut seed);
            stream.extend(tone(9.3, 5000.0, &mut seed));
            stream.extend(tone(2.0, 0.0, &mut seed));
            let options = EndpointOptions {
                max_utterance_s: 10.0,
                ..EndpointOptions::default()
            };
            let mut endpointer = Endpointer::new(8000, options).expect("valid");
            let mut utterances = endpointer.push(&stream).unwrap();
            utterances.extend(endpointer.finish());
            assert!(!utterances.is_empty());
            assert!(utterances.iter().all(|u| !u.wave.samples.is_empty()));
            let first = &utterances[0];
            assert!(
                first.start_s < 0.25 && first.wave.duration_s() > 9.5,
                "{seed}"
            );
        }
    }

    /// `seconds` of white noise at `amplitude` (int16 scale, uniform), at 8 kHz.
    fn hiss(seconds: f32, amplitude: f32, seed: &mut u32) -> Vec<f32> {
        (0..(seconds * 8000.0) as usize)
            .map(|_| {
                *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                amplitude * ((*seed >> 16) as f32 / 65536.0 - 0.5)
            })
            .collect()
    }

    #[test]
    fn digital_silence_does_not_lower_the_background() {
        // A room at about -50 dBFS, 0.2 s of exact zeros (a mute, a gate), then three tones with
        // pauses of room noise: each pause still ends its utterance.
        let mut seed = 5;
        let mut stream = hiss(1.0, 300.0, &mut seed);
        stream.extend(std::iter::repeat_n(0.0, 1600));
        stream.extend(hiss(0.8, 300.0, &mut seed));
        for _ in 0..3 {
            stream.extend(tone(0.8, 5000.0, &mut seed));
            stream.extend(hiss(1.0, 300.0, &mut seed));
        }
        let mut endpointer = Endpointer::new(8000, EndpointOptions::default()).expect("valid");
        let mut utterances = endpointer.push(&stream).unwrap();
        utterances.extend(endpointer.finish());
        let starts: Vec<f64> = utterances.iter().map(|u| u.start_s).collect();
        assert_eq!(starts.len(), 3, "{starts:?}");
        for (k, start) in starts.iter().enumerate() {
            assert!(
                (start - (2.0 - 0.3 + 1.8 * k as f64)).abs() < 0.05,
                "{starts:?}"
            );
        }
    }

    #[test]
    fn samples_no_recording_has_are_refused_and_the_stream_goes_on() {
        let mut seed = 9;
        let mut endpointer = Endpointer::new(8000, EndpointOptions::default()).expect("valid");
        assert!(endpointer
            .push(&tone(1.0, 0.0, &mut seed))
            .unwrap()
            .is_empty());
        for bad in [f32::NAN, f32::INFINITY, 1e9] {
            let mut piece = tone(0.5, 0.0, &mut seed);
            piece[100] = bad;
            let err = endpointer.push(&piece).unwrap_err().to_string();
            assert!(err.contains("live sample 8100"), "{err}");
        }
        // Nothing of a refused push was taken: the stream goes on as if it had not come.
        let mut utterances = endpointer.push(&tone(0.8, 5000.0, &mut seed)).unwrap();
        utterances.extend(endpointer.push(&tone(1.0, 0.0, &mut seed)).unwrap());
        assert_eq!(utterances.len(), 1);
        assert!(
            (utterances[0].start_s - 0.7).abs() < 0.02,
            "{}",
            utterances[0].start_s
        );
    }

    #[test]
    fn silence_and_clicks_give_nothing() {
        let mut seed = 3;
        let mut stream = tone(5.0, 0.0, &mut seed);
        // A 20 ms click.
        stream.extend(tone(0.02, 20000.0, &mut seed));
        stream.extend(tone(2.0, 0.0, &mut seed));
        let mut endpointer = Endpointer::new(8000, EndpointOptions::default()).expect("valid");
        assert!(endpointer.push(&stream).unwrap().is_empty());
        assert!(endpointer.finish().is_none());
    }
}
