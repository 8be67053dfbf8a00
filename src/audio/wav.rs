//! RIFF/WAVE through hound: PCM 8/16/24/32-bit integer and 32-bit float, any channel count.

use std::path::Path;

use rayon::prelude::*;

use super::{mix_to_mono, Waveform, INT16_SCALE, MAX_CHANNELS};
use crate::error::{Error, Result};

/// Samples converted per parallel task (256 KB of output).
const CONVERT_BLOCK: usize = 1 << 16;

/// WAVE format tags (RFC 2361) worth naming in an error.
const FORMAT_TAGS: [(u16, &str); 8] = [
    (0x0002, "Microsoft ADPCM"),
    (0x0006, "A-law"),
    (0x0007, "µ-law"),
    (0x0011, "IMA ADPCM"),
    (0x0031, "GSM 6.10"),
    (0x0050, "MPEG"),
    (0x0055, "MP3"),
    (0x0092, "Dolby AC-3"),
];
const FORMAT_PCM: u16 = 0x0001;
const FORMAT_FLOAT: u16 = 0x0003;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Look at the `fmt ` chunk before hound does, so encodings hound refuses get a precise name.
fn check_encoding(path: &Path, bytes: &[u8]) -> Result<()> {
    /// The `fmt ` chunk sits near the start; never look further than this for it.
    const HEADER_SCAN_BYTES: usize = 64 * 1024;
    let bytes = &bytes[..bytes.len().min(HEADER_SCAN_BYTES)];
    let mut pos: usize = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        if id == b"fmt " && pos + 8 + 16 <= bytes.len() {
            let body = &bytes[pos + 8..];
            let mut tag = u16::from_le_bytes([body[0], body[1]]);
            let bits = u16::from_le_bytes([body[14], body[15]]);
            if tag == FORMAT_EXTENSIBLE && size >= 26 && body.len() >= 26 {
                // The sub-format GUID starts with the format tag it stands for.
                tag = u16::from_le_bytes([body[24], body[25]]);
            }
            let encoding = match tag {
                FORMAT_PCM if matches!(bits, 8 | 16 | 24 | 32) => None,
                FORMAT_PCM => Some(format!("{bits}-bit integer PCM")),
                FORMAT_FLOAT if bits == 32 => None,
                FORMAT_FLOAT => Some(format!("{bits}-bit float")),
                other => Some(
                    FORMAT_TAGS
                        .iter()
                        .find(|(t, _)| *t == other)
                        .map(|(_, name)| name.to_string())
                        .unwrap_or_else(|| format!("WAVE format tag 0x{other:04x}")),
                ),
            };
            return match encoding {
                None => Ok(()),
                Some(encoding) => Err(Error::UnsupportedEncoding {
                    path: path.to_path_buf(),
                    encoding,
                    hint: Some(
                        "phonrec reads 8/16/24/32-bit integer PCM and 32-bit float WAV; convert with \
                         e.g. `sox in.wav -e signed -b 16 out.wav`"
                            .to_string(),
                    ),
                }),
            };
        }
        // Checked: a chunk size near usize::MAX must end the scan, not wrap around.
        match pos.checked_add(8 + size + (size & 1)) {
            Some(next) => pos = next,
            None => break,
        }
    }
    Ok(())
}

/// What a WAV header says, checked: the format, the channel count and the number of samples it
/// declares (a claim, checked against the data later); the reader stands at the data's start.
struct Header<'a> {
    spec: hound::WavSpec,
    channels: usize,
    declared: usize,
    reader: hound::WavReader<std::io::Cursor<&'a [u8]>>,
}

/// Where the data starts: the position of a reader just past the header.
fn data_start(reader: hound::WavReader<std::io::Cursor<&[u8]>>) -> usize {
    usize::try_from(reader.into_inner().position()).unwrap_or(usize::MAX)
}

/// Parse and check the header at the start of `bytes` (the whole file, or enough of its start to
/// reach the data chunk).
fn header<'a>(path: &Path, bytes: &'a [u8]) -> Result<Header<'a>> {
    check_encoding(path, bytes)?;
    let reader =
        hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| wav_error(path, e))?;
    let spec = reader.spec();
    let channels = spec.channels as usize;
    if channels == 0 {
        return Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: "the header declares 0 channels".to_string(),
        });
    }
    if channels > MAX_CHANNELS {
        return Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!(
                "the header declares {channels} channels, more than any recording has (at most \
                 {MAX_CHANNELS})"
            ),
        });
    }
    let declared = reader.len() as usize;
    Ok(Header {
        spec,
        channels,
        declared,
        reader,
    })
}

/// Read a WAV file held in memory (`path` names it in errors) to mono int16-scale samples.
pub(crate) fn read_wav(path: &Path, bytes: &[u8]) -> Result<Waveform> {
    let Header {
        spec,
        channels,
        declared,
        reader,
    } = header(path, bytes)?;
    // The header's sample count is a claim: reserve no more than the file's bytes can hold, so a
    // 44-byte file declaring 4 GB of data costs nothing and ends in a "cut short" error.
    let bytes_per_sample = usize::from(spec.bits_per_sample.div_ceil(8).max(1));
    let capacity = declared.min(bytes.len() / bytes_per_sample);
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => collect(
            path,
            declared,
            capacity,
            reader.into_samples::<f32>(),
            |s| s * INT16_SCALE,
        )?,
        // The common case, 16-bit PCM, straight from the bytes after the header: hound's
        // sample-by-sample iterator took a fifth of `phonrec features` on a long file.
        (hound::SampleFormat::Int, 16) => {
            let data = bytes.get(data_start(reader)..).unwrap_or_default();
            let available = data.len() / 2;
            if available < declared {
                return Err(truncated(path, available, declared));
            }
            // In blocks on all cores: for an hour-long file the conversion (and the first touch of
            // the output's pages) is otherwise a serial stretch of `phonrec features`.
            let mut samples = vec![0.0f32; declared];
            samples
                .par_chunks_mut(CONVERT_BLOCK)
                .zip(data[..declared * 2].par_chunks(2 * CONVERT_BLOCK))
                .for_each(|(out, bytes)| pcm16_to_f32(bytes, out));
            samples
        }
        (hound::SampleFormat::Int, bits @ (8 | 24 | 32)) => {
            // Shift every integer width to int16 range: 8-bit up by 8 bits, 24/32-bit down.
            let scale = 2f32.powi(16 - bits as i32);
            collect(
                path,
                declared,
                capacity,
                reader.into_samples::<i32>(),
                |s| s as f32 * scale,
            )?
        }
        (format, bits) => {
            let kind = match format {
                hound::SampleFormat::Float => "float",
                hound::SampleFormat::Int => "integer PCM",
            };
            return Err(Error::UnsupportedEncoding {
                path: path.to_path_buf(),
                encoding: format!("{bits}-bit {kind}"),
                hint: Some(
                    "phonrec reads 8/16/24/32-bit integer PCM and 32-bit float; convert with e.g. \
                     `sox in.wav -b 16 out.wav`"
                        .to_string(),
                ),
            });
        }
    };
    to_mono(path, interleaved, channels, spec.sample_rate)
}

fn to_mono(
    path: &Path,
    interleaved: Vec<f32>,
    channels: usize,
    sample_rate_hz: u32,
) -> Result<Waveform> {
    if !interleaved.len().is_multiple_of(channels) {
        return Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!(
                "{} samples do not divide into {channels} channels",
                interleaved.len()
            ),
        });
    }
    Ok(Waveform {
        samples: mix_to_mono(interleaved, channels),
        sample_rate_hz,
    })
}

/// Little-endian 16-bit samples to int16-scale floats.
fn pcm16_to_f32(bytes: &[u8], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = f32::from(i16::from_le_bytes([b[0], b[1]]));
    }
}

/// Bytes read from the start of a file to find its header; a header longer than this (huge
/// metadata chunks) is read the ordinary way.
const HEADER_READ_BYTES: usize = 64 * 1024;

/// Read a large 16-bit PCM WAV file straight from disk: the header from its first bytes, then the
/// samples in blocks read and converted on all cores, with no copy of the whole file in memory (for
/// `phonrec features` on a long file, reading it whole was a serial sixth of the run). `None` when
/// the file is anything else (another encoding, a header this does not find): read it whole.
#[cfg(unix)]
pub(crate) fn read_pcm16_wav_file(
    path: &Path,
    file: &std::fs::File,
    file_len: u64,
) -> Result<Option<Waveform>> {
    use std::os::unix::fs::FileExt;
    let io = |e| Error::io(path, e);
    let mut head = vec![0u8; HEADER_READ_BYTES.min(usize::try_from(file_len).unwrap_or(0))];
    file.read_exact_at(&mut head, 0).map_err(io)?;
    if !head.starts_with(b"RIFF") {
        return Ok(None);
    }
    let Ok(Header {
        spec,
        channels,
        declared,
        reader,
    }) = header(path, &head)
    else {
        return Ok(None);
    };
    let data_start = data_start(reader);
    if (spec.sample_format, spec.bits_per_sample) != (hound::SampleFormat::Int, 16) {
        return Ok(None);
    }
    let available = usize::try_from(file_len)
        .unwrap_or(usize::MAX)
        .saturating_sub(data_start)
        / 2;
    if available < declared {
        return Err(truncated(path, available, declared));
    }
    let mut samples = vec![0.0f32; declared];
    samples
        .par_chunks_mut(CONVERT_BLOCK)
        .enumerate()
        .try_for_each(|(block, out)| {
            let mut bytes = vec![0u8; 2 * out.len()];
            let offset = data_start + 2 * CONVERT_BLOCK * block;
            file.read_exact_at(&mut bytes, offset as u64)?;
            pcm16_to_f32(&bytes, out);
            Ok(())
        })
        .map_err(io)?;
    to_mono(path, samples, channels, spec.sample_rate).map(Some)
}

/// Collect all samples, turning a short read into an error that says how much was there.
fn collect<S, I, F>(
    path: &Path,
    declared: usize,
    capacity: usize,
    samples: I,
    convert: F,
) -> Result<Vec<f32>>
where
    I: Iterator<Item = hound::Result<S>>,
    F: Fn(S) -> f32,
{
    let mut out = Vec::with_capacity(capacity);
    for sample in samples {
        match sample {
            Ok(s) => out.push(convert(s)),
            // Any read error before the declared end means the data stops early.
            Err(hound::Error::IoError(_)) if out.len() < declared => {
                return Err(truncated(path, out.len(), declared))
            }
            Err(other) => return Err(wav_error(path, other)),
        }
    }
    if out.len() < declared {
        return Err(truncated(path, out.len(), declared));
    }
    Ok(out)
}

fn truncated(path: &Path, got: usize, declared: usize) -> Error {
    Error::MalformedAudio {
        path: path.to_path_buf(),
        reason: format!(
            "data cut short: the header declares {declared} samples, the file holds {got}"
        ),
    }
}

/// Map hound's errors to ours, keeping the file name and a readable reason.
fn wav_error(path: &Path, error: hound::Error) -> Error {
    let path = path.to_path_buf();
    match error {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::MalformedAudio {
                path,
                reason: "the file ends inside its header or data".to_string(),
            }
        }
        hound::Error::IoError(io) => Error::Io { path, source: io },
        hound::Error::FormatError(reason) => Error::NotAudio {
            path,
            reason: reason.to_string(),
        },
        hound::Error::Unsupported => Error::UnsupportedEncoding {
            path,
            encoding: "a WAV encoding other than integer PCM or 32-bit float (e.g. A-law, µ-law, \
                       ADPCM or 64-bit float)"
                .to_string(),
            hint: Some("convert with e.g. `sox in.wav -e signed -b 16 out.wav`".to_string()),
        },
        hound::Error::InvalidSampleFormat => Error::UnsupportedEncoding {
            path,
            encoding: "an invalid sample format".to_string(),
            hint: None,
        },
        hound::Error::UnfinishedSample => Error::MalformedAudio {
            path,
            reason: "the data ends in the middle of a sample".to_string(),
        },
        hound::Error::TooWide => Error::UnsupportedEncoding {
            path,
            encoding: "samples wider than 32 bits".to_string(),
            hint: None,
        },
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn pcm16_wav(channels: u16, samples: &[i16]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut out, spec).unwrap();
        for &s in samples {
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
        out.into_inner()
    }

    #[test]
    fn blocks_read_from_the_file_are_the_samples_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        // Two and a half blocks of stereo frames; then float data, which this path leaves alone.
        let samples: Vec<i16> = (0..5 * CONVERT_BLOCK as i32 + 6)
            .map(|i| (i.wrapping_mul(7919) % 65_536 - 32_768) as i16)
            .collect();
        let bytes = pcm16_wav(2, &samples);
        let path = dir.path().join("a.wav");
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let direct = read_pcm16_wav_file(&path, &file, bytes.len() as u64)
            .unwrap()
            .expect("16-bit PCM is read by blocks");
        assert_eq!(direct, read_wav(&path, &bytes).unwrap());
        assert_eq!(direct.samples.len(), samples.len() / 2);

        let not_wav = dir.path().join("b.wav");
        std::fs::write(&not_wav, b"NIST_1A\n   1024\n").unwrap();
        let file = std::fs::File::open(&not_wav).unwrap();
        assert!(read_pcm16_wav_file(&not_wav, &file, 16).unwrap().is_none());
    }
}
