//! Alignment through the one recogniser: the same audio preparation and posteriors as recognition,
//! then the lattice aligner instead of the decoder, and the frame head or the boundary model (if
//! any) to turn the network's spikes into phone boundaries.

use std::path::Path;

use super::{Posteriors, Recognizer};
use ndarray::Array2;

use crate::align::{score_pronunciation, AlignTarget, Alignment, PronunciationScores, TimedWord};
use crate::audio::{read_audio, Waveform};
use crate::ctc::{force_align_words, place_by_frames, AlignedPhone, LatticeOptions, PhoneSpan};
use crate::error::Result;

/// The span of audio the local match score looks at: the worst second of the recording.
pub const MATCH_WINDOW_S: f64 = 1.0;

/// Below this share of the text's phones aligned inside speech the recogniser hears (its
/// segmentation's regions), the audio does not say its text: silence, a noise floor or a muted
/// microphone. The match scores alone miss it for short texts, because forcing a few phones into
/// seconds of silence costs little per frame or per second (`recipes/align/mismatch.py`'s
/// no-speech conditions; models/README.md, "Alignment").
pub const MIN_SPEECH_SHARE: f64 = 0.5;

impl Recognizer {
    /// Align in-memory audio (any rate) to `target`: every word's pronunciation chosen by the audio,
    /// every phone timed, the gaps between them silence. The whole recording is aligned in one
    /// beam-pruned pass, so leading and trailing silence and pauses need no trimming.
    pub fn align(&self, wave: Waveform, target: &AlignTarget) -> Result<Alignment> {
        let mut alignment = self.align_keeping_posteriors(wave, target)?.0;
        alignment.widen_empty_phones();
        Ok(alignment)
    }

    /// Align, then score how well each expected phone was pronounced (see
    /// [`score_pronunciation`]); `threshold` is the GOP below which a phone counts as mispronounced.
    pub fn score(
        &self,
        wave: Waveform,
        target: &AlignTarget,
        threshold: f32,
    ) -> Result<PronunciationScores> {
        let (alignment, log_probs, spikes) = self.align_keeping_posteriors(wave, target)?;
        let shift = self.output_frame_shift_s() as f32;
        let mut scores =
            score_pronunciation(alignment, log_probs.view(), &spikes, shift, threshold);
        // Scored on the frames the aligner gave each phone; timed as `align` times them.
        scores.alignment.widen_empty_phones();
        for (score, span) in scores.phones.iter_mut().zip(&scores.alignment.phones) {
            (score.start_s, score.end_s) = (span.start_s, span.end_s);
        }
        for (score, word) in scores.words.iter_mut().zip(&scores.alignment.words) {
            (score.start_s, score.end_s) = (word.start_s, word.end_s);
        }
        Ok(scores)
    }

    /// [`score`](Self::score) of an audio file.
    pub fn score_file(
        &self,
        path: &Path,
        target: &AlignTarget,
        threshold: f32,
    ) -> Result<PronunciationScores> {
        let mut scores = self.score(read_audio(path)?, target, threshold)?;
        scores.alignment.source = path.to_path_buf();
        Ok(scores)
    }

    /// [`align`](Self::align), also returning the posteriors and the frames the Viterbi path gave
    /// each phone.
    fn align_keeping_posteriors(
        &self,
        wave: Waveform,
        target: &AlignTarget,
    ) -> Result<(Alignment, Array2<f32>, Vec<AlignedPhone>)> {
        let duration_s = wave.duration_s();
        let (
            Posteriors {
                log_probs, regions, ..
            },
            frame_log_probs,
        ) = match &self.frame_head {
            Some(head) => {
                let (posteriors, frames) = self.posteriors_and_frames(wave, head)?;
                (posteriors, Some(frames))
            }
            None => (self.posteriors(wave, false)?, None),
        };
        let options = LatticeOptions {
            // With a frame head or a boundary model the aligner returns bare spikes, and they place
            // the boundaries.
            max_blank_frames_per_side: if self.frame_head.is_some() || self.boundaries.is_some() {
                0
            } else {
                self.align.max_blank_frames_per_side
            },
            ..self.align
        };
        let lattice = force_align_words(log_probs.view(), &target.pronunciations(), &options)?;
        let shift = self.output_frame_shift_s() as f32;
        let match_score = lattice.match_score(log_probs.nrows());
        let worst_second_score =
            lattice.local_match_score((MATCH_WINDOW_S / f64::from(shift)).round() as usize);
        let speech_share = if self.segment.enabled {
            share_in_speech(&lattice.phones, &regions)
        } else {
            1.0
        };
        let placed = match (&self.frame_head, &self.boundaries, frame_log_probs) {
            (Some(head), _, Some(frame_log_probs)) => {
                let classes: Vec<usize> = lattice
                    .phones
                    .iter()
                    .map(|p| head.class_of(p.phone))
                    .collect();
                Some(place_by_frames(
                    &lattice.phones,
                    &classes,
                    frame_log_probs.view(),
                    shift,
                    self.output_frame_centre_s() as f32,
                    duration_s as f32,
                ))
            }
            (None, Some(model), _) => {
                Some(model.place(&lattice.phones, log_probs.view(), shift, duration_s as f32))
            }
            _ => None,
        };
        let phones: Vec<PhoneSpan> = match placed {
            Some(spans) => spans
                .into_iter()
                .zip(&lattice.phones)
                .map(|((start_s, end_s), p)| PhoneSpan {
                    phone: p.phone,
                    start_s,
                    end_s,
                    confidence: p.confidence,
                    alternatives: Vec::new(),
                })
                .collect(),
            None => lattice
                .phones
                .iter()
                .map(|p| PhoneSpan::from_aligned(p, shift))
                .collect(),
        };
        let words = if target.has_words {
            lattice
                .words
                .iter()
                .zip(&target.words)
                .map(|(aligned, word)| {
                    let spans = &phones[aligned.phones.clone()];
                    TimedWord {
                        word: word.text.clone(),
                        start_s: spans.first().map_or(0.0, |p| p.start_s),
                        end_s: spans.last().map_or(0.0, |p| p.end_s),
                        confidence: spans.iter().map(|p| p.confidence).sum::<f32>()
                            / spans.len().max(1) as f32,
                        phones: aligned.phones.clone(),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let alignment = Alignment {
            source: Default::default(),
            id: None,
            offset_s: None,
            duration_s,
            words,
            phones,
            match_score,
            worst_second_score,
            speech_share,
            matches_text: match_score >= self.min_match_score
                && worst_second_score >= self.min_worst_second_score
                && speech_share >= MIN_SPEECH_SHARE,
            skipped: target.skipped.clone(),
        };
        Ok((alignment, log_probs, lattice.phones))
    }

    /// Align an audio file (WAV or SPHERE, any rate, format and channel count) to `target`.
    pub fn align_file(&self, path: &Path, target: &AlignTarget) -> Result<Alignment> {
        let mut alignment = self.align(read_audio(path)?, target)?;
        alignment.source = path.to_path_buf();
        Ok(alignment)
    }
}

/// The share of `phones` whose frames overlap one of the speech `regions` (output-frame ranges); 1
/// when there are no phones.
fn share_in_speech(phones: &[AlignedPhone], regions: &[(usize, usize)]) -> f64 {
    if phones.is_empty() {
        return 1.0;
    }
    let heard = phones
        .iter()
        .filter(|p| {
            let end = p.end_frame.max(p.start_frame + 1);
            regions.iter().any(|&(a, b)| p.start_frame < b && a < end)
        })
        .count();
    heard as f64 / phones.len() as f64
}
