//! AMR speech files (RFC 4867 §5 storage format, `.amr`): what Android's voice recorders, MMS and
//! many call recorders write. Narrowband (AMR-NB, 8 kHz) and wideband (AMR-WB, 16 kHz), decoded by
//! `rvoip-codec-core`'s decoders, bit-exact with the 3GPP reference. Comfort-noise (SID) and
//! no-data frames of discontinuous transmission decode to the comfort noise the codec defines, lost
//! frames are concealed, as a phone plays them: the times stay those of the recording.
//!
//! Layout: a magic line (`#!AMR\n` or `#!AMR-WB\n`), then one record per 20 ms frame: a header byte
//! (frame type, quality bit) and the frame's bits, octet-aligned.

use std::path::Path;

use codec_core::codecs::amr::{AmrCodec, AmrFrameType, AmrStorageReader, AmrVariant};
use codec_core::types::{CodecConfig, CodedFrame, FrameKind, VariableRateCodec};

use super::Waveform;
use crate::error::{Error, Result};

/// The magic every AMR storage file starts with (`#!AMR\n`, `#!AMR-WB\n` and the multichannel
/// `#!AMR_MC1.0\n`, `#!AMR-WB_MC1.0\n` share it).
pub(crate) const MAGIC: &[u8] = b"#!AMR";

/// True when `bytes` start like an AMR storage file.
pub(crate) fn is_amr(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Most frames decoded (20 ms each): 24 hours, far more than any recording phonrec reads at once.
const MAX_FRAMES: usize = 24 * 3600 * 50;

/// Decode an AMR storage file held in memory (`path` names it in errors) to mono int16-scale
/// samples at the codec's rate.
pub(crate) fn read_amr(path: &Path, bytes: &[u8]) -> Result<Waveform> {
    // A panic in the third-party decoder on a damaged frame stays this file's error, as in the
    // other readers (none was found mutating the fixtures 1000 times each, but the decoders
    // assert on what a damaged file could break).
    super::container::guarded(|| decode_amr(path, bytes)).unwrap_or_else(|message| {
        Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!("the file is damaged: its decoder failed ({message})"),
        })
    })
}

fn decode_amr(path: &Path, bytes: &[u8]) -> Result<Waveform> {
    let malformed = |reason: String| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = AmrStorageReader::new(bytes).map_err(|e| {
        if bytes.starts_with(b"#!AMR_MC") || bytes.starts_with(b"#!AMR-WB_MC") {
            Error::UnsupportedEncoding {
                path: path.to_path_buf(),
                encoding: "multichannel AMR".to_string(),
                hint: Some("convert with e.g. `ffmpeg -i in.amr out.wav`".to_string()),
            }
        } else {
            malformed(format!("not a readable AMR file ({e})"))
        }
    })?;
    let variant = reader.variant();
    let config = match variant {
        AmrVariant::NarrowBand => CodecConfig::amr_nb(),
        AmrVariant::WideBand => CodecConfig::amr_wb(),
    };
    let rate = variant.sample_rate();
    let mut codec = AmrCodec::new(&config)
        .map_err(|e| malformed(format!("the {variant} decoder could not start ({e})")))?;
    let mut samples: Vec<f32> = Vec::new();
    let mut frames = 0usize;
    // The last speech mode: a lost frame is concealed in it, and a SID frame's level adjustment
    // follows the mode the talker was in.
    let mut mode = 0u8;
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            // A download cut inside the last record, or a damaged header byte: what came before
            // is kept only when the damage is at the very end.
            Err(e) => {
                if frames == 0 {
                    return Err(malformed(format!("its first frame cannot be read ({e})")));
                }
                return Err(malformed(format!(
                    "data cut short or damaged after {frames} frames ({:.2} s): {e}",
                    frames as f64 * 0.02
                )));
            }
        };
        frames += 1;
        if frames > MAX_FRAMES {
            return Err(malformed(format!(
                "more than {MAX_FRAMES} frames; split the file first"
            )));
        }
        let kind = match frame.frame_type {
            AmrFrameType::Speech(speech) => {
                mode = speech.index();
                FrameKind::Speech
            }
            AmrFrameType::Sid(_) => FrameKind::ComfortNoise,
            AmrFrameType::NoData => FrameKind::NoData,
            AmrFrameType::SpeechLost => FrameKind::Lost,
        };
        let coded = CodedFrame {
            kind,
            mode,
            quality_ok: frame.quality_ok,
            data: frame.data,
        };
        let pcm = codec
            .decode_frame(&coded)
            .map_err(|e| malformed(format!("frame {frames} cannot be decoded ({e})")))?;
        // Already at int16 scale, phonrec's sample scale.
        samples.extend(pcm.iter().map(|&s| f32::from(s)));
    }
    if frames == 0 {
        return Err(Error::EmptyAudio {
            path: path.to_path_buf(),
        });
    }
    Ok(Waveform {
        samples,
        sample_rate_hz: rate,
    })
}
