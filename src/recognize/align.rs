//! Alignment through the one recogniser: the same audio preparation and posteriors as recognition,
//! then the lattice aligner instead of the decoder.

use std::path::Path;

use super::{Posteriors, Recognizer};
use crate::align::{AlignTarget, Alignment, TimedWord};
use crate::audio::{read_audio, Waveform};
use crate::ctc::{force_align_words, PhoneSpan};
use crate::error::Result;

impl Recognizer {
    /// Align in-memory audio (any rate) to `target`: every word's pronunciation chosen by the audio,
    /// every phone timed, the gaps between them silence. The whole recording is aligned in one
    /// beam-pruned pass, so leading and trailing silence and pauses need no trimming.
    pub fn align(&self, wave: Waveform, target: &AlignTarget) -> Result<Alignment> {
        let duration_s = wave.duration_s();
        let Posteriors { log_probs, .. } = self.posteriors(wave)?;
        let lattice = force_align_words(log_probs.view(), &target.pronunciations(), &self.align)?;
        let match_score = lattice.match_score(log_probs.nrows());
        let shift = self.output_frame_shift_s() as f32;
        let phones: Vec<PhoneSpan> = lattice
            .phones
            .iter()
            .map(|p| PhoneSpan::from_aligned(p, shift))
            .collect();
        let words = if target.has_words {
            lattice
                .words
                .iter()
                .zip(&target.words)
                .map(|(aligned, word)| {
                    let spans = &phones[aligned.phones.clone()];
                    TimedWord {
                        word: word.text.clone(),
                        start_s: aligned.start_frame as f32 * shift,
                        end_s: aligned.end_frame as f32 * shift,
                        confidence: spans.iter().map(|p| p.confidence).sum::<f32>()
                            / spans.len().max(1) as f32,
                        phones: aligned.phones.clone(),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Alignment {
            source: Default::default(),
            id: None,
            duration_s,
            words,
            phones,
            match_score,
            matches_text: match_score >= self.min_match_score,
            skipped: target.skipped.clone(),
        })
    }

    /// Align an audio file (WAV or SPHERE, any rate, format and channel count) to `target`.
    pub fn align_file(&self, path: &Path, target: &AlignTarget) -> Result<Alignment> {
        let mut alignment = self.align(read_audio(path)?, target)?;
        alignment.source = path.to_path_buf();
        Ok(alignment)
    }
}
