//! Stretches of recordings: what a Kaldi `segments` file lists (`utt-id recording-id start end`), read
//! as Kaldi's `extract-segments` cuts them, each recording decoded once however many utterances it
//! holds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::{read_audio_channel, ChannelChoice, Waveform};
use crate::error::{Error, Result};

/// How far past its recording's end a segment may end and be cut at the end instead (Kaldi
/// `extract-segments`' `--max-overshoot`): segment times rounded up, or a recording's last frames
/// lost in a conversion, are common and harmless; a segment far beyond the end means the segments
/// belong to another recording.
pub const MAX_OVERSHOOT_S: f64 = 0.5;

/// A stretch of a recording, in seconds from its start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AudioSpan {
    /// Start (≥ 0).
    pub start_s: f64,
    /// End (> start); `None` runs to the recording's end (Kaldi's end time −1).
    pub end_s: Option<f64>,
}

impl std::fmt::Display for AudioSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.end_s {
            Some(end) => write!(f, "{}–{} s", self.start_s, end),
            None => write!(f, "{} s to the end", self.start_s),
        }
    }
}

impl AudioSpan {
    /// A span, checked as Kaldi checks a `segments` line: the start not negative, the end after it
    /// (or `None`). The reason says what is wrong.
    pub fn new(start_s: f64, end_s: Option<f64>) -> std::result::Result<Self, String> {
        if !start_s.is_finite() || start_s < 0.0 {
            return Err(format!("start time {start_s} is not a time ≥ 0"));
        }
        if let Some(end) = end_s {
            if !end.is_finite() || end <= start_s {
                return Err(format!(
                    "end time {end} is not after the start time {start_s} (−1 means the recording's end)"
                ));
            }
        }
        Ok(AudioSpan { start_s, end_s })
    }

    /// This stretch of `wave` (read from `path`), cut at whole samples as Kaldi cuts it: an end up to
    /// [`MAX_OVERSHOOT_S`] past the recording's end is cut at the end; a start at or after the
    /// end, or an end further past it, is an error.
    pub fn cut(&self, wave: &Waveform, path: &Path) -> Result<Waveform> {
        let rate = f64::from(wave.sample_rate_hz);
        let len = wave.samples.len();
        let error = |reason: String| Error::Segment {
            path: path.to_path_buf(),
            span: *self,
            reason,
        };
        let start = (self.start_s * rate) as usize;
        if start >= len {
            return Err(error(format!(
                "starts after the recording's end ({:.3} s); do the segments belong to this recording?",
                wave.duration_s()
            )));
        }
        let end = match self.end_s {
            None => len,
            Some(end_s) => {
                let end = (end_s * rate) as usize;
                if end as f64 >= len as f64 + MAX_OVERSHOOT_S * rate {
                    return Err(error(format!(
                        "ends more than {MAX_OVERSHOOT_S} s after the recording's end ({:.3} s); \
                         do the segments belong to this recording?",
                        wave.duration_s()
                    )));
                }
                end.min(len)
            }
        };
        Ok(Waveform {
            samples: wave.samples[start..end.max(start + 1)].to_vec(),
            sample_rate_hz: wave.sample_rate_hz,
        })
    }
}

/// Audio to read: a whole file, or a stretch of one.
#[derive(Clone, Copy, Debug)]
pub struct AudioPiece<'a> {
    /// The audio file.
    pub path: &'a Path,
    /// The stretch of it; `None` for the whole file.
    pub span: Option<AudioSpan>,
    /// One channel of it (counted from 0), as a Kaldi `wav.scp` line `sph2pipe -c 2 FILE |` asks;
    /// `None` for the reader's own choice.
    pub channel: Option<usize>,
}

/// Read each piece, results in input order: [`PieceReader::read`] with a reader of its own.
pub fn read_audio_pieces(pieces: &[AudioPiece<'_>]) -> Vec<Result<Waveform>> {
    PieceReader::default().read(pieces)
}

/// Reads [`AudioPiece`]s in batches (rounds) and keeps the last recording it cut pieces from, so that
/// a recording whose segments span several rounds (an hour cut into a thousand utterances, read 8
/// or 32 at a time) is decoded once, not once per round.
#[derive(Default)]
pub struct PieceReader {
    /// The recording pieces were last cut from (and the channels taken of it).
    last: std::sync::Mutex<Option<(Recording, Arc<Waveform>)>>,
    /// The channels every recording is read with.
    channel: ChannelChoice,
}

/// A recording as read: its file and the channels taken of it.
type Recording = (PathBuf, ChannelChoice);

impl PieceReader {
    /// A reader that takes `channel` of every recording (the default reader mixes them).
    pub fn with_channel(channel: ChannelChoice) -> Self {
        PieceReader {
            channel,
            ..PieceReader::default()
        }
    }

    /// The channels this reader takes of every recording.
    pub fn channel(&self) -> ChannelChoice {
        self.channel
    }

    /// Read each piece, results in input order. Files are read in parallel; a file that several
    /// pieces cut is decoded once for all of them (and not again in the next call while it is the
    /// last one cut); at most one such file per thread, and the last one, is held whole at a time.
    pub fn read(&self, pieces: &[AudioPiece<'_>]) -> Vec<Result<Waveform>> {
        // Groups of pieces that share a file (and channel): each whole-file piece alone, the
        // stretches of one file together.
        let mut groups: Vec<((&Path, ChannelChoice), Vec<usize>)> = Vec::new();
        let mut group_of_file: HashMap<(&Path, ChannelChoice), usize> = HashMap::new();
        for (index, piece) in pieces.iter().enumerate() {
            let source = (piece.path, self.choice(piece));
            if piece.span.is_none() {
                groups.push((source, vec![index]));
                continue;
            }
            let group = *group_of_file.entry(source).or_insert_with(|| {
                groups.push((source, Vec::new()));
                groups.len() - 1
            });
            groups[group].1.push(index);
        }
        let read: Vec<Vec<(usize, Result<Waveform>)>> = groups
            .par_iter()
            .map(|(source, members)| self.read_group(*source, members, pieces))
            .collect();
        let mut results: Vec<Option<Result<Waveform>>> = (0..pieces.len()).map(|_| None).collect();
        for (index, result) in read.into_iter().flatten() {
            results[index] = Some(result);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Shape("an audio piece was not read".into()))))
            .collect()
    }

    /// The channels taken of `piece`'s file: its own channel, else the reader's choice.
    fn choice(&self, piece: &AudioPiece<'_>) -> ChannelChoice {
        piece.channel.map_or(self.channel, ChannelChoice::Only)
    }

    /// The recording at `path` (`channel` of it), whole: the one kept from the last cut if it is
    /// that, else read.
    fn recording(&self, path: &Path, channel: ChannelChoice) -> Result<Arc<Waveform>> {
        let kept = |last: &Option<(Recording, Arc<Waveform>)>| {
            last.as_ref()
                .filter(|((kept, taken), _)| kept == path && *taken == channel)
                .map(|(_, wave)| Arc::clone(wave))
        };
        if let Some(wave) = self.last.lock().ok().and_then(|last| kept(&last)) {
            return Ok(wave);
        }
        let wave = Arc::new(read_audio_channel(path, channel)?);
        if let Ok(mut last) = self.last.lock() {
            *last = Some(((path.to_path_buf(), channel), Arc::clone(&wave)));
        }
        Ok(wave)
    }

    /// One file's pieces (indices into `pieces`), all of `channel` of it.
    fn read_group(
        &self,
        (path, channel): (&Path, ChannelChoice),
        members: &[usize],
        pieces: &[AudioPiece<'_>],
    ) -> Vec<(usize, Result<Waveform>)> {
        if let [index] = members {
            if pieces[*index].span.is_none() {
                return vec![(*index, read_audio_channel(path, channel))];
            }
        }
        match self.recording(path, channel) {
            Ok(wave) => members
                .iter()
                .map(|&index| {
                    let cut = match pieces[index].span {
                        Some(span) => span.cut(&wave, path),
                        None => Ok(Waveform::clone(&wave)),
                    };
                    (index, cut)
                })
                .collect(),
            // The first piece gets the reader's error as it is; the others the same reason, named
            // by their spans (errors are not copied).
            Err(error) => {
                let reason = error.to_string();
                let mut results = Vec::with_capacity(members.len());
                let mut error = Some(error);
                for &index in members {
                    let result = match (error.take(), pieces[index].span) {
                        (Some(first), _) => Err(first),
                        (None, Some(span)) => Err(Error::Segment {
                            path: path.to_path_buf(),
                            span,
                            reason: reason.clone(),
                        }),
                        (None, None) => Err(Error::Shape(reason.clone())),
                    };
                    results.push((index, result));
                }
                results
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(len: usize, rate: u32) -> Waveform {
        Waveform {
            samples: (0..len).map(|i| i as f32).collect(),
            sample_rate_hz: rate,
        }
    }

    #[test]
    fn spans_are_checked_as_kaldi_checks_segments() {
        assert!(AudioSpan::new(0.0, Some(1.5)).is_ok());
        assert!(AudioSpan::new(2.0, None).is_ok());
        assert!(AudioSpan::new(-0.1, Some(1.0)).unwrap_err().contains("≥ 0"));
        assert!(AudioSpan::new(1.0, Some(1.0))
            .unwrap_err()
            .contains("not after"));
        assert!(AudioSpan::new(2.0, Some(1.0)).is_err());
        assert!(AudioSpan::new(f64::NAN, None).is_err());
        assert!(AudioSpan::new(0.0, Some(f64::INFINITY)).is_err());
    }

    #[test]
    fn a_span_is_cut_at_whole_samples_and_overshoot_is_limited() {
        let wave = ramp(1000, 100); // 10 s at 100 Hz
        let path = Path::new("rec.wav");
        let cut = AudioSpan::new(1.005, Some(2.5))
            .unwrap()
            .cut(&wave, path)
            .unwrap();
        assert_eq!(cut.samples.len(), 150);
        assert_eq!(cut.samples[0], 100.0);
        assert_eq!(cut.sample_rate_hz, 100);
        // To the end.
        let tail = AudioSpan::new(9.0, None).unwrap().cut(&wave, path).unwrap();
        assert_eq!(
            tail.samples,
            (900..1000).map(|i| i as f32).collect::<Vec<_>>()
        );
        // Up to 0.5 s past the end: cut at the end.
        let over = AudioSpan::new(9.5, Some(10.4))
            .unwrap()
            .cut(&wave, path)
            .unwrap();
        assert_eq!(over.samples.len(), 50);
        // Further: refused, as is a start at or past the end.
        let far = AudioSpan::new(9.5, Some(10.6)).unwrap().cut(&wave, path);
        let message = far.unwrap_err().to_string();
        assert!(
            message.contains("rec.wav") && message.contains("9.5–10.6 s"),
            "{message}"
        );
        assert!(AudioSpan::new(10.0, None)
            .unwrap()
            .cut(&wave, path)
            .is_err());
    }

    #[test]
    fn pieces_of_files_are_cut_and_returned_in_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.wav");
        let b = dir.path().join("b.wav");
        let rate = 8000;
        let wave = |seconds: usize, value: f32| Waveform {
            samples: vec![value; seconds * rate as usize],
            sample_rate_hz: rate,
        };
        crate::audio::write_wav_i16(&a, &wave(3, 100.0)).unwrap();
        crate::audio::write_wav_i16(&b, &wave(2, -200.0)).unwrap();
        let missing = dir.path().join("missing.wav");
        let span = |s, e| Some(AudioSpan::new(s, e).unwrap());
        let pieces = [
            AudioPiece {
                path: &a,
                span: span(0.0, Some(1.0)),
                channel: None,
            },
            AudioPiece {
                path: &b,
                span: None,
                channel: None,
            },
            AudioPiece {
                path: &a,
                span: span(2.5, None),
                channel: None,
            },
            AudioPiece {
                path: &missing,
                span: span(0.0, Some(1.0)),
                channel: None,
            },
            AudioPiece {
                path: &a,
                span: span(4.0, Some(5.0)),
                channel: None,
            },
            AudioPiece {
                path: &missing,
                span: span(1.0, Some(2.0)),
                channel: None,
            },
        ];
        let read = read_audio_pieces(&pieces);
        assert_eq!(read.len(), 6);
        let ok = |i: usize| read[i].as_ref().unwrap();
        assert_eq!(ok(0).samples.len(), 8000);
        assert!(ok(0).samples.iter().all(|&x| x == 100.0));
        assert_eq!(ok(1).samples.len(), 16000);
        assert!(ok(1).samples.iter().all(|&x| x == -200.0));
        assert_eq!(ok(2).samples.len(), 4000);
        // Both pieces of the missing file fail, each naming the file.
        for i in [3, 5] {
            let message = read[i].as_ref().unwrap_err().to_string();
            assert!(message.contains("missing.wav"), "{message}");
        }
        assert!(read[4]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("after the recording's end"));
    }

    #[test]
    fn a_reader_keeps_the_last_recording_it_cut_for_the_next_round() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.wav");
        let wave = Waveform {
            samples: (0..16000).map(|i| (i % 100) as f32).collect(),
            sample_rate_hz: 8000,
        };
        crate::audio::write_wav_i16(&a, &wave).unwrap();
        let span = |s, e| Some(AudioSpan::new(s, Some(e)).unwrap());
        let reader = PieceReader::default();
        let first = reader.read(&[AudioPiece {
            path: &a,
            span: span(0.0, 1.0),
            channel: None,
        }]);
        assert_eq!(first[0].as_ref().unwrap().samples, wave.samples[..8000]);
        // The file is gone, but the next round's stretch of it is cut from the recording kept...
        std::fs::remove_file(&a).unwrap();
        let second = reader.read(&[AudioPiece {
            path: &a,
            span: span(1.0, 2.0),
            channel: None,
        }]);
        assert_eq!(second[0].as_ref().unwrap().samples, wave.samples[8000..]);
        // ...while the whole file is read afresh (and fails), as is any file by a new reader.
        assert!(reader.read(&[AudioPiece {
            path: &a,
            span: None,
            channel: None,
        }])[0]
            .is_err());
        assert!(read_audio_pieces(&[AudioPiece {
            path: &a,
            span: span(0.0, 1.0),
            channel: None,
        }])[0]
            .is_err());
    }
}
