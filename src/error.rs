//! The library's one error type. Each variant names what went wrong, where (a path, a line), and when it
//! helps, how to fix it. The binary adds context with anyhow; the library never prints.

use std::path::PathBuf;

/// Every error the phonrec library returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, read or written. The message carries the OS's reason, so it is
    /// complete wherever it is printed on its own.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not in a format phonrec reads (WAV, NIST SPHERE, FLAC, Ogg Vorbis or Opus, MP3,
    /// AIFF, CAF, MP4/M4A).
    #[error("{}: not an audio file phonrec reads ({reason})", .path.display())]
    NotAudio { path: PathBuf, reason: String },

    /// The WAV or SPHERE file is damaged: a header that lies, data cut short.
    #[error("{}: malformed audio file: {reason}", .path.display())]
    MalformedAudio { path: PathBuf, reason: String },

    /// A valid file in an encoding phonrec does not read.
    #[error("{}: unsupported audio encoding: {encoding}{}", .path.display(), hint_suffix(.hint))]
    UnsupportedEncoding {
        path: PathBuf,
        encoding: String,
        hint: Option<String>,
    },

    /// Audio in memory that no recording has: NaN, infinite or absurdly loud samples, or no rate.
    #[error("invalid audio: {reason}")]
    InvalidAudio { reason: String },

    /// A channel asked for (`--channel`) that the recording does not have.
    #[error("{}: there is no channel {channel} (channels count from 0) in a recording of {channels} channel{}", .path.display(), if *.channels == 1 { "" } else { "s" })]
    NoSuchChannel {
        path: PathBuf,
        channel: usize,
        channels: usize,
    },

    /// The file holds no samples at all.
    #[error("{}: the audio holds no samples", .path.display())]
    EmptyAudio { path: PathBuf },

    /// A sample rate outside what phonrec supports.
    #[error("{}: sample rate {sample_rate_hz} Hz is outside the supported range {min_hz}..={max_hz} Hz", .path.display())]
    SampleRate {
        path: PathBuf,
        sample_rate_hz: u32,
        min_hz: u32,
        max_hz: u32,
    },

    /// Options that cannot work together (a frame longer than the signal allows, mel bins above Nyquist...).
    #[error("invalid {what} options: {reason}")]
    InvalidOptions { what: &'static str, reason: String },

    /// A phone label not in the model's inventory.
    #[error("{}{}: unknown phone '{phone}' (not in the phone inventory)", .path.display(), at_line(*.line))]
    UnknownPhone {
        phone: String,
        path: PathBuf,
        /// 1-based line, when the phone came from a line of a file.
        line: Option<usize>,
    },

    /// A stretch of a recording (a Kaldi `segments` line) that does not lie within it.
    #[error("{}: segment {}: {reason}", .path.display(), .span)]
    Segment {
        path: PathBuf,
        span: crate::audio::AudioSpan,
        reason: String,
    },

    /// A text input file (manifest, phone list, lexicon, LM) that is wrong, at a line or as a whole.
    #[error("{}{}: {reason}", .path.display(), at_line(*.line))]
    Parse {
        path: PathBuf,
        /// 1-based line; None when the whole file is at fault (empty, missing a part).
        line: Option<usize>,
        reason: String,
    },

    /// A model file that is corrupt, from another format version, or inconsistent with its metadata.
    #[error("{}: invalid model file: {reason}", .path.display())]
    InvalidModel { path: PathBuf, reason: String },

    /// Inputs whose shapes do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),

    /// Feature frames of another dimension than the model reads.
    #[error("the model expects {expected}-dim features, got {actual}; were they computed with other feature options than the model's?")]
    FeatureDim { expected: usize, actual: usize },

    /// A phone id that is the CTC blank where a phone is required, or has no column in the posteriors.
    #[error("phone id {id} is not a phone here: expected 1..{num_classes} (0 is the CTC blank); does the phone set match the model?")]
    InvalidPhoneId { id: u16, num_classes: usize },

    /// A forced alignment that cannot exist: too few frames for the phones (each repeated neighbour needs a
    /// blank between), or posteriors that give every path probability zero.
    #[error("cannot align {num_phones} phones to {num_frames} frames (at least {min_frames} needed, and a path of non-zero probability)")]
    AlignmentImpossible {
        num_phones: usize,
        num_frames: usize,
        min_frames: usize,
    },

    /// A beam-pruned alignment in which every path that spells the whole text was pruned: audio and
    /// text disagree badly somewhere (a wrong or incomplete transcript, words said very differently).
    #[error("the alignment lost every path that spells the whole text even with a beam of {beam} nats: the audio and the transcript disagree badly somewhere (a wrong or incomplete transcript, a long stretch the text does not cover?); check it, or cut the recording into shorter pieces")]
    AlignmentLost { beam: f64 },

    /// Words of a text to align that the lexicon does not have (in text order, each once).
    #[error("{} not in the lexicon: {}; add {} with --lexicon FILE (CMUdict format: `WORD  P1 P2 ...`) or choose --oov spell|skip", plural_words(.words.len()), .words.join(", "), if .words.len() == 1 { "it" } else { "them" })]
    OutOfVocabulary { words: Vec<String> },

    /// Log-probabilities containing NaN, as a diverged model produces.
    #[error(
        "the log-probabilities contain NaN; did training diverge, or is the model file damaged?"
    )]
    NanLogProbs,

    /// Something phonrec made could not be encoded (a model file, a checkpoint): a bug or an
    /// exhausted resource, never the user's input.
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },

    /// Training cannot go on (divergence, no usable data, a checkpoint that does not fit).
    #[error("training stopped: {reason}")]
    Training { reason: String },

    /// Errors from the tensor library.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

fn hint_suffix(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!(" ({h})"),
        None => String::new(),
    }
}

impl Error {
    /// An I/O error tagged with the file it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// An error and its causes on one line (`a: b: c`), messages already contained in the text so far
/// dropped (wrapping errors often repeat their source's message): how the CLI and the Python
/// package report errors.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// `Result` with phonrec's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `:LINE` for messages of the form `path:line: reason`, or nothing.
fn at_line(line: Option<usize>) -> String {
    line.map(|line| format!(":{line}")).unwrap_or_default()
}

fn plural_words(n: usize) -> String {
    if n == 1 {
        "1 word is".to_string()
    } else {
        format!("{n} words are")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose message repeats its source's, as wrapping errors often do.
    #[derive(Debug, thiserror::Error)]
    #[error("reading the model: {0}")]
    struct Repeats(#[source] Error);

    #[test]
    fn error_chain_joins_causes_and_drops_repeated_messages() {
        let io = Error::io(
            "m.safetensors",
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        );
        let alone = error_chain(&io);
        assert!(alone.contains("m.safetensors"), "{alone}");
        assert!(alone.ends_with(": no such file"), "{alone}");
        // The wrapper's message already holds the I/O error's text: only the OS cause is added.
        let wrapped = error_chain(&Repeats(io));
        assert_eq!(wrapped.matches("m.safetensors").count(), 1, "{wrapped}");
        assert_eq!(wrapped.matches("no such file").count(), 1, "{wrapped}");
        assert!(wrapped.starts_with("reading the model: "), "{wrapped}");
    }
}
