//! Sun/NeXT `.au` (`.snd`) files: a big-endian header starting `.snd` — data offset, data size,
//! encoding, rate, channels, then an annotation up to the offset — and interleaved samples.
//!
//! The format of Unix workstation audio, still what Java's `AudioSystem`, Asterisk and many telephony
//! tools write for µ-law and A-law speech. Read: G.711 µ-law and A-law, 8/16/24/32-bit linear PCM,
//! 32/64-bit float; the little-endian variant some DEC systems wrote (magic `dns.`) too. The
//! ADPCM encodings (G.721, G.722, G.723) are refused with the conversion command.

use std::path::Path;

use super::g711::{alaw_to_linear, mulaw_to_linear};
use super::{to_mono, ChannelChoice, Waveform, MAX_CHANNELS};
use crate::error::{Error, Result};

/// The magic of big-endian files (`.snd`), and of the little-endian variant.
pub(crate) const MAGIC: &[u8; 4] = b".snd";
const MAGIC_LITTLE_ENDIAN: &[u8; 4] = b"dns.";

/// The header's fixed part: magic and five 32-bit fields.
const FIXED_HEADER_BYTES: usize = 24;

/// The data size field's value for "unknown" (a file written to a pipe): the data runs to the end.
const UNKNOWN_SIZE: u32 = 0xFFFF_FFFF;

/// True when `bytes` start like a `.au` file (either byte order).
pub(crate) fn is_au(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC) || bytes.starts_with(MAGIC_LITTLE_ENDIAN)
}

/// How the samples are coded (the header's encoding field).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Encoding {
    MuLaw,
    ALaw,
    /// Signed linear PCM of this many bytes.
    Linear(usize),
    Float32,
    Float64,
}

impl Encoding {
    fn bytes_per_sample(self) -> usize {
        match self {
            Encoding::MuLaw | Encoding::ALaw => 1,
            Encoding::Linear(bytes) => bytes,
            Encoding::Float32 => 4,
            Encoding::Float64 => 8,
        }
    }
}

/// Read a `.au` file held in memory (`path` names it in errors) to mono int16-scale samples.
pub(crate) fn read_au(path: &Path, bytes: &[u8], channel: ChannelChoice) -> Result<Waveform> {
    let malformed = |reason: String| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason: format!(".au header: {reason}"),
    };
    if bytes.len() < FIXED_HEADER_BYTES {
        return Err(malformed(format!(
            "{} bytes, shorter than the {FIXED_HEADER_BYTES}-byte header",
            bytes.len()
        )));
    }
    let big_endian = bytes.starts_with(MAGIC);
    let field = |index: usize| {
        let at = 4 * index;
        let raw = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    };
    let (offset, size, code, sample_rate_hz, channels) =
        (field(1), field(2), field(3), field(4), field(5));
    let offset = offset as usize;
    if offset < FIXED_HEADER_BYTES || offset > bytes.len() {
        return Err(malformed(format!(
            "the data starts at byte {offset}, outside the file's {} bytes (and not after the \
             {FIXED_HEADER_BYTES}-byte header)",
            bytes.len()
        )));
    }
    let encoding = match code {
        1 => Encoding::MuLaw,
        2 => Encoding::Linear(1),
        3 => Encoding::Linear(2),
        4 => Encoding::Linear(3),
        5 => Encoding::Linear(4),
        6 => Encoding::Float32,
        7 => Encoding::Float64,
        27 => Encoding::ALaw,
        other => {
            let name = match other {
                23 => "G.721 4-bit ADPCM".to_string(),
                24 => "G.722 ADPCM".to_string(),
                25 => "G.723 3-bit ADPCM".to_string(),
                26 => "G.723 5-bit ADPCM".to_string(),
                _ => format!("encoding {other}"),
            };
            return Err(Error::UnsupportedEncoding {
                path: path.to_path_buf(),
                encoding: format!(".au {name}"),
                hint: Some(
                    "µ-law, A-law, 8–32-bit linear PCM and float .au files are read; convert \
                     with e.g. `sox in.au -e signed -b 16 out.wav`"
                        .to_string(),
                ),
            });
        }
    };
    let channels = channels as usize;
    if channels == 0 {
        return Err(malformed("0 channels".to_string()));
    }
    if channels > MAX_CHANNELS {
        return Err(malformed(format!(
            "{channels} channels is more than any recording has (at most {MAX_CHANNELS})"
        )));
    }
    let data = &bytes[offset..];
    let data = if size == UNKNOWN_SIZE {
        data
    } else if size as usize > data.len() {
        return Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!(
                "data cut short: the header declares {size} bytes of samples, the file holds {}",
                data.len()
            ),
        });
    } else {
        &data[..size as usize]
    };
    channel.check(path, channels)?;
    let sample_bytes = encoding.bytes_per_sample();
    // channels ≤ MAX_CHANNELS and sample_bytes ≤ 8: no overflow.
    let frame_bytes = sample_bytes * channels;
    let whole = data.len() / frame_bytes * frame_bytes;
    let mut interleaved = Vec::with_capacity(whole / sample_bytes);
    for chunk in data[..whole].chunks_exact(sample_bytes) {
        interleaved.push(decode_sample(chunk, encoding, big_endian));
    }
    Ok(Waveform {
        samples: to_mono(interleaved, channels, channel),
        sample_rate_hz,
    })
}

/// One sample at int16 scale.
fn decode_sample(chunk: &[u8], encoding: Encoding, big_endian: bool) -> f32 {
    // The bytes in big-endian order, whatever the file's.
    let mut ordered = [0u8; 8];
    let ordered = &mut ordered[..chunk.len()];
    ordered.copy_from_slice(chunk);
    if !big_endian {
        ordered.reverse();
    }
    match encoding {
        Encoding::MuLaw => f32::from(mulaw_to_linear(ordered[0])),
        Encoding::ALaw => f32::from(alaw_to_linear(ordered[0])),
        Encoding::Linear(bytes) => {
            let value = ordered
                .iter()
                .fold(0u32, |value, &b| (value << 8) | u32::from(b));
            // Sign-extend from the sample width, then scale to 16 bits.
            let shift = 32 - 8 * bytes as u32;
            let signed = ((value << shift) as i32) >> shift;
            signed as f32 * 2f32.powi(16 - 8 * bytes as i32)
        }
        Encoding::Float32 => {
            let raw = [ordered[0], ordered[1], ordered[2], ordered[3]];
            f32::from_be_bytes(raw) * super::INT16_SCALE
        }
        Encoding::Float64 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(ordered);
            (f64::from_be_bytes(raw) * f64::from(super::INT16_SCALE)) as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.au` file: header (with an annotation), then `data`.
    fn au(code: u32, rate: u32, channels: u32, data: &[u8], big_endian: bool) -> Vec<u8> {
        let annotation = b"made by a test\0\0";
        let offset = (FIXED_HEADER_BYTES + annotation.len()) as u32;
        let fields = [offset, data.len() as u32, code, rate, channels];
        let mut bytes = if big_endian {
            MAGIC.to_vec()
        } else {
            MAGIC_LITTLE_ENDIAN.to_vec()
        };
        for value in fields {
            bytes.extend(if big_endian {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            });
        }
        bytes.extend(annotation);
        bytes.extend(data);
        bytes
    }

    fn read(bytes: &[u8]) -> Result<Waveform> {
        read_au(Path::new("t.au"), bytes, ChannelChoice::Mixed)
    }

    #[test]
    fn g711_and_linear_pcm_decode_at_int16_scale() -> Result<()> {
        let mu = read(&au(1, 8000, 1, &[0x00, 0x80, 0xFF], true))?;
        assert_eq!(mu.samples, vec![-32124.0, 32124.0, 0.0]);
        assert_eq!(mu.sample_rate_hz, 8000);
        assert_eq!(read(&au(27, 8000, 1, &[0xD5], true))?.samples, vec![8.0]);
        assert_eq!(
            read(&au(2, 8000, 1, &[0x80, 0x7F], true))?.samples,
            vec![-32768.0, 32512.0]
        );
        assert_eq!(
            read(&au(3, 16000, 1, &[0x80, 0x00, 0x12, 0x34], true))?.samples,
            vec![-32768.0, 4660.0]
        );
        assert_eq!(
            read(&au(4, 16000, 1, &[0x12, 0x34, 0x80], true))?.samples,
            vec![4660.5]
        );
        assert_eq!(
            read(&au(5, 16000, 1, &[0xFF, 0xFF, 0x00, 0x00], true))?.samples,
            vec![-1.0]
        );
        Ok(())
    }

    #[test]
    fn float_little_endian_and_stereo_files_are_read() -> Result<()> {
        let half = 0.5f32.to_be_bytes();
        assert_eq!(read(&au(6, 16000, 1, &half, true))?.samples, vec![16384.0]);
        let quarter = (-0.25f64).to_be_bytes();
        assert_eq!(
            read(&au(7, 16000, 1, &quarter, true))?.samples,
            vec![-8192.0]
        );
        // `dns.`: every field and sample little-endian.
        let le = read(&au(3, 22050, 1, &[0x34, 0x12], false))?;
        assert_eq!((le.samples, le.sample_rate_hz), (vec![4660.0], 22050));
        // Two channels are averaged; a trailing partial frame is dropped.
        let stereo = read(&au(3, 8000, 2, &[0x10, 0x00, 0x20, 0x00, 0x01], true))?;
        assert_eq!(stereo.samples, vec![6144.0]);
        Ok(())
    }

    #[test]
    fn audio_reading_recognises_au_by_its_content() -> Result<()> {
        let bytes = au(1, 8000, 1, &[0x00, 0x80, 0xFF], true);
        assert!(crate::audio::looks_like_audio(&bytes));
        let wave = crate::audio::read_audio_bytes(&bytes, Path::new("-"))?;
        assert_eq!(wave.samples, vec![-32124.0, 32124.0, 0.0]);
        Ok(())
    }

    #[test]
    fn an_unknown_size_runs_to_the_end_and_a_short_file_is_refused() -> Result<()> {
        let mut piped = au(1, 8000, 1, &[0xFF, 0xFF], true);
        piped[8..12].copy_from_slice(&UNKNOWN_SIZE.to_be_bytes());
        assert_eq!(read(&piped)?.samples, vec![0.0, 0.0]);
        let mut cut = au(1, 8000, 1, &[0xFF, 0xFF], true);
        cut[8..12].copy_from_slice(&100u32.to_be_bytes());
        let err = read(&cut).unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
        let adpcm = read(&au(23, 8000, 1, &[0], true)).unwrap_err();
        assert!(
            adpcm.to_string().contains("G.721") && adpcm.to_string().contains("sox"),
            "{adpcm}"
        );
        let mut bad_offset = au(1, 8000, 1, &[0], true);
        bad_offset[4..8].copy_from_slice(&4u32.to_be_bytes());
        assert!(read(&bad_offset).is_err());
        assert!(read(&au(1, 8000, 0, &[0], true)).is_err());
        assert!(read(b".snd\0\0").is_err());
        Ok(())
    }
}
