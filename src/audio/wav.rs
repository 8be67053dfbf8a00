//! RIFF/WAVE, its big-endian twin RIFX, and RF64/BW64 (EBU Tech 3306, ITU-R BS.2088: the WAV of
//! broadcast and field recorders past 4 GB, with 64-bit sizes in a `ds64` chunk): integer PCM of 8 to 32 bits (12- or 20-bit samples in
//! their 16- or 24-bit containers), 32- and 64-bit float, G.711 µ-law and A-law (telephone audio),
//! plain or `WAVE_FORMAT_EXTENSIBLE` headers, any channel count; Microsoft and IMA ADPCM (voice
//! recorders) go to symphonia's WAV reader.
//!
//! Parsed here rather than through hound (which still writes our WAVs): hound's reader does not skip
//! the pad byte after an odd-sized chunk (a `LIST` chunk of odd length derails it), refuses companded
//! and 64-bit data, and takes the placeholder sizes of a WAV written to a pipe (`sox ... -t wav -`
//! writes 0x7FFFF000, ffmpeg 0xFFFFFFFF) as a promise the data cannot keep.

use std::ops::Range;
use std::path::Path;

use rayon::prelude::*;

use super::g711::{alaw_to_linear, mulaw_to_linear};
use super::{take_channel, ChannelChoice, Mixdown, Waveform, INT16_SCALE, MAX_CHANNELS};
use crate::error::{Error, Result};

/// Frames converted per parallel task (256 KB of mono output).
const CONVERT_BLOCK: usize = 1 << 16;

/// WAVE format tags (RFC 2361) that phonrec does not decode, named in the error.
const UNSUPPORTED_TAGS: [(u16, &str); 3] =
    [(0x0050, "MPEG"), (0x0055, "MP3"), (0x0092, "Dolby AC-3")];
const FORMAT_PCM: u16 = 0x0001;
const FORMAT_FLOAT: u16 = 0x0003;
const FORMAT_ALAW: u16 = 0x0006;
const FORMAT_MULAW: u16 = 0x0007;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// ADPCM (Microsoft, IMA/DVI: dictaphones and older voice recorders), decoded by symphonia.
const FORMAT_MS_ADPCM: u16 = 0x0002;
const FORMAT_IMA_ADPCM: u16 = 0x0011;
/// GSM 06.10 in 65-byte blocks of two frames (WAV49: Asterisk's `wav49`, voice mail), decoded by
/// [`super::gsm`].
const FORMAT_GSM610: u16 = 0x0031;

/// Data-chunk sizes a writer puts in the header when it cannot seek back to fill in the real one
/// (sox writing to a pipe: 0x7FFFF000; ffmpeg and others: 0xFFFFFFFF; ALSA's `arecord` to a pipe,
/// as in `arecord ... | tee rec.wav`: 0x80000000, older versions 0x7FFFFF00, also left in a file
/// when the recorder is killed). Such a file is read to its end.
const STREAMED_DATA_SIZES: [u32; 4] = [0x7FFF_F000, 0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FF00];

/// True when `bytes` start like a WAV file: RIFF, RIFX, or RF64/BW64.
pub(crate) fn is_wav(bytes: &[u8]) -> bool {
    [b"RIFF", b"RIFX", b"RF64", b"BW64"]
        .iter()
        .any(|magic| bytes.starts_with(*magic))
}

/// How the samples are stored: in fixed-size samples phonrec decodes, or as ADPCM blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Payload {
    Samples(Encoding),
    /// Block-coded ADPCM: the whole file goes to symphonia's WAV reader.
    Adpcm,
    /// GSM 06.10 (mono, WAV49 blocks).
    Gsm,
}

/// How one sample is stored.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Encoding {
    /// 8-bit PCM is unsigned, centred on 128.
    Unsigned8,
    /// Signed integers in a container of this many bytes (2, 3 or 4), the value left-justified.
    Signed {
        bytes: usize,
    },
    Float32,
    Float64,
    MuLaw,
    ALaw,
}

impl Encoding {
    fn bytes(self) -> usize {
        match self {
            Encoding::Unsigned8 | Encoding::MuLaw | Encoding::ALaw => 1,
            Encoding::Signed { bytes } => bytes,
            Encoding::Float32 => 4,
            Encoding::Float64 => 8,
        }
    }
}

/// A parsed WAV header: samples phonrec reads itself, or ADPCM for symphonia.
#[derive(Debug)]
enum Parsed {
    Samples(Header),
    /// With the `fact` chunk's length in frames, when it has one: the last ADPCM block is padded
    /// past the recording's end, and only `fact` says where that end is.
    Adpcm {
        frames: Option<u64>,
    },
    /// GSM 06.10 blocks from `data_start`, `declared_bytes` of them (`None`: to the end), and the
    /// `fact` chunk's length in samples (the last block is padded past the recording's end).
    Gsm {
        sample_rate_hz: u32,
        data_start: usize,
        declared_bytes: Option<usize>,
        frames: Option<u64>,
    },
}

/// What a WAV header says, checked.
#[derive(Debug)]
struct Header {
    encoding: Encoding,
    big_endian: bool,
    channels: usize,
    sample_rate_hz: u32,
    /// Offset of the first sample byte.
    data_start: usize,
    /// Bytes of sample data the header declares; `None` when the writer could not know (a stream).
    declared_bytes: Option<usize>,
}

impl Header {
    /// Bytes of one frame (a sample of every channel).
    fn frame_bytes(&self) -> usize {
        self.encoding.bytes() * self.channels
    }

    /// The byte range of the samples in a file of `file_len` bytes, whole frames only; an error when
    /// the header declares more than the file holds.
    fn data_range(&self, path: &Path, file_len: usize) -> Result<Range<usize>> {
        let available = file_len.saturating_sub(self.data_start);
        let bytes = match self.declared_bytes {
            Some(declared) if declared > available => {
                // Counted in samples of all channels, as the header's data size is.
                let sample = self.encoding.bytes();
                return Err(truncated(path, available / sample, declared / sample));
            }
            Some(declared) => declared,
            None => available,
        };
        // A partial last frame (a writer killed mid-sample) is dropped: less than one sample period.
        let whole = bytes - bytes % self.frame_bytes();
        Ok(self.data_start..self.data_start + whole)
    }
}

fn read_u16(bytes: &[u8], at: usize, big_endian: bool) -> u16 {
    let b = [bytes[at], bytes[at + 1]];
    if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

fn read_u32(bytes: &[u8], at: usize, big_endian: bool) -> u32 {
    let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// Parse the header at the start of `bytes` (the whole file, or a start long enough to reach the
/// data chunk): walk the chunks to `fmt ` and `data`.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<Parsed> {
    let malformed = |reason: String| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason,
    };
    let ends_early = || malformed("the file ends inside its header".to_string());
    if bytes.len() < 12 {
        return Err(ends_early());
    }
    let big_endian = match &bytes[..4] {
        b"RIFF" | b"RF64" | b"BW64" => false,
        b"RIFX" => true,
        _ => {
            return Err(Error::NotAudio {
                path: path.to_path_buf(),
                reason: "no RIFF header".to_string(),
            })
        }
    };
    if &bytes[8..12] != b"WAVE" {
        return Err(Error::NotAudio {
            path: path.to_path_buf(),
            reason: format!(
                "a RIFF file of form {:?}, not WAVE",
                String::from_utf8_lossy(&bytes[8..12])
            ),
        });
    }
    let mut format: Option<(Payload, usize, u32)> = None;
    // RF64's data size when its 32-bit field says 0xFFFFFFFF ("see ds64").
    let mut data_size_64: Option<u64> = None;
    // The `fact` chunk's sample length (frames per channel), which compressed WAVs carry.
    let mut fact_frames: Option<u64> = None;
    let mut pos: usize = 12;
    loop {
        if pos + 8 > bytes.len() {
            return Err(match format {
                None => ends_early(),
                Some(_) => malformed("no data chunk".to_string()),
            });
        }
        let id = &bytes[pos..pos + 4];
        let size = read_u32(bytes, pos + 4, big_endian);
        let body = pos + 8;
        if id == b"ds64" {
            // riffSize, dataSize, sampleCount (64-bit each), then a table this reader needs not.
            let field = bytes.get(body + 8..body + 16).ok_or_else(ends_early)?;
            let mut raw = [0u8; 8];
            raw.copy_from_slice(field);
            data_size_64 = Some(u64::from_le_bytes(raw));
        } else if id == b"fact" && size >= 4 {
            if body + 4 <= bytes.len() {
                fact_frames = Some(u64::from(read_u32(bytes, body, big_endian)));
            }
        } else if id == b"fmt " {
            let size = size as usize;
            if size < 16 {
                return Err(malformed(format!(
                    "the fmt chunk is {size} bytes, shorter than the 16 every WAV has"
                )));
            }
            if body + size.min(40) > bytes.len() {
                return Err(ends_early());
            }
            format = Some(parse_format(
                path,
                &bytes[body..body + size.min(40)],
                big_endian,
            )?);
        } else if id == b"data" {
            let Some((payload, channels, sample_rate_hz)) = format else {
                return Err(malformed(
                    "the data chunk comes before the fmt chunk".to_string(),
                ));
            };
            let encoding = match payload {
                Payload::Samples(encoding) => encoding,
                Payload::Adpcm => {
                    return Ok(Parsed::Adpcm {
                        frames: fact_frames.filter(|&n| n > 0),
                    })
                }
                Payload::Gsm => {
                    return Ok(Parsed::Gsm {
                        sample_rate_hz,
                        data_start: body,
                        declared_bytes: (!STREAMED_DATA_SIZES.contains(&size) && size > 0)
                            .then_some(size as usize),
                        frames: fact_frames.filter(|&n| n > 0),
                    })
                }
            };
            let declared_bytes = match data_size_64 {
                Some(size_64) if size == u32::MAX => Some(
                    usize::try_from(size_64)
                        .map_err(|_| malformed(format!("a data size of {size_64} bytes (ds64)")))?,
                ),
                _ => {
                    let streamed = STREAMED_DATA_SIZES.contains(&size)
                        // A size of 0 with samples after it: a writer that never came back to
                        // fill it in. A size of 0 followed by a chunk the RIFF size counts is an
                        // empty recording with its metadata (`LIST`, `id3 `) after it.
                        || (size == 0
                            && bytes.len() > body
                            && !chunk_follows_empty_data(bytes, body, big_endian));
                    (!streamed).then_some(size as usize)
                }
            };
            return Ok(Parsed::Samples(Header {
                encoding,
                big_endian,
                channels,
                sample_rate_hz,
                data_start: body,
                declared_bytes,
            }));
        }
        // Chunks are padded to an even length. Checked: a size near usize::MAX must not wrap.
        let size = size as usize;
        match body.checked_add(size + (size & 1)) {
            Some(next) => pos = next,
            None => return Err(ends_early()),
        }
    }
}

/// Whether the bytes at `body`, just after a data chunk that declares 0 bytes, are another chunk
/// rather than samples a writer never counted: an id of four ASCII letters, digits, spaces or
/// underscores (`LIST`, `id3 `, `_PMX`), and a chunk that ends within the size the RIFF header
/// declares (a writer that left the data size at 0 leaves the RIFF size unfilled too).
fn chunk_follows_empty_data(bytes: &[u8], body: usize, big_endian: bool) -> bool {
    let Some(id) = bytes.get(body..body + 4) else {
        return false;
    };
    if bytes.len() < body + 8 {
        return false;
    }
    let id_char = |c: &u8| c.is_ascii_alphanumeric() || *c == b' ' || *c == b'_';
    if !id.iter().all(id_char) || id[0] == b' ' {
        return false;
    }
    let riff_end = read_u32(bytes, 4, big_endian) as u64 + 8;
    let chunk_size = read_u32(bytes, body + 4, big_endian) as u64;
    body as u64 + 8 + chunk_size <= riff_end
}

/// The encoding, channel count and rate of a `fmt ` chunk's body (at least 16 bytes).
fn parse_format(path: &Path, fmt: &[u8], big_endian: bool) -> Result<(Payload, usize, u32)> {
    let malformed = |reason: String| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason,
    };
    let mut tag = read_u16(fmt, 0, big_endian);
    let channels = usize::from(read_u16(fmt, 2, big_endian));
    let sample_rate_hz = read_u32(fmt, 4, big_endian);
    let bits = read_u16(fmt, 14, big_endian);
    if tag == FORMAT_EXTENSIBLE && fmt.len() >= 26 {
        // The sub-format GUID starts with the format tag it stands for.
        tag = read_u16(fmt, 24, big_endian);
    }
    if channels == 0 {
        return Err(malformed("the header declares 0 channels".to_string()));
    }
    if channels > MAX_CHANNELS {
        return Err(malformed(format!(
            "the header declares {channels} channels, more than any recording has (at most \
             {MAX_CHANNELS})"
        )));
    }
    let unsupported = |encoding: String| Error::UnsupportedEncoding {
        path: path.to_path_buf(),
        encoding,
        hint: Some(
            "phonrec reads WAV as 8–32-bit integer PCM, 32/64-bit float, µ-law, A-law or ADPCM; \
             convert with e.g. `sox in.wav -e signed -b 16 out.wav`"
                .to_string(),
        ),
    };
    // The container size: the bits rounded up to bytes, as the header's bits per sample is the
    // container's size in both plain and extensible headers (the latter give the valid bits
    // apart). A block_align that disagrees is ignored, as sox and Python's `wave` ignore it: some
    // writers leave it wrong, and trusting it read a 16-bit mono file with block_align 4 as
    // 32-bit samples (half the length, other phones).
    let container = usize::from(bits.div_ceil(8));
    let encoding = match tag {
        FORMAT_PCM => match (bits, container) {
            (1..=8, 1) => Encoding::Unsigned8,
            (9..=32, bytes @ 2..=4) if usize::from(bits) <= 8 * bytes => Encoding::Signed { bytes },
            _ => {
                return Err(unsupported(format!(
                    "{bits}-bit integer PCM in {container}-byte samples"
                )))
            }
        },
        FORMAT_FLOAT => match (bits, container) {
            (32, 4) => Encoding::Float32,
            (64, 8) => Encoding::Float64,
            _ => return Err(unsupported(format!("{bits}-bit float"))),
        },
        FORMAT_MULAW if container == 1 => Encoding::MuLaw,
        FORMAT_ALAW if container == 1 => Encoding::ALaw,
        FORMAT_MULAW | FORMAT_ALAW => {
            return Err(unsupported(format!(
                "G.711 in {container}-byte samples (it is 8-bit)"
            )))
        }
        FORMAT_MS_ADPCM | FORMAT_IMA_ADPCM => {
            return Ok((Payload::Adpcm, channels, sample_rate_hz))
        }
        FORMAT_GSM610 => {
            let block_align = read_u16(fmt, 12, big_endian);
            if channels != 1 || usize::from(block_align) != super::gsm::WAV49_BLOCK_BYTES {
                return Err(unsupported(format!(
                    "GSM 6.10 with {channels} channels in blocks of {block_align} bytes (phonrec \
                     reads mono GSM 6.10 in 65-byte blocks, as Windows and sox write it)"
                )));
            }
            return Ok((Payload::Gsm, channels, sample_rate_hz));
        }
        other => {
            return Err(unsupported(
                UNSUPPORTED_TAGS
                    .iter()
                    .find(|(t, _)| *t == other)
                    .map(|(_, name)| name.to_string())
                    .unwrap_or_else(|| format!("WAVE format tag 0x{other:04x}")),
            ))
        }
    };
    Ok((Payload::Samples(encoding), channels, sample_rate_hz))
}

/// Decode samples stored as `encoding` to int16-scale floats, one per `encoding.bytes()` input bytes.
fn decode(encoding: Encoding, big_endian: bool, bytes: &[u8], out: &mut [f32]) {
    let width = encoding.bytes();
    let samples = bytes.chunks_exact(width);
    match encoding {
        Encoding::Unsigned8 => {
            for (o, b) in out.iter_mut().zip(samples) {
                *o = (f32::from(b[0]) - 128.0) * 256.0;
            }
        }
        Encoding::MuLaw => {
            for (o, b) in out.iter_mut().zip(samples) {
                *o = f32::from(mulaw_to_linear(b[0]));
            }
        }
        Encoding::ALaw => {
            for (o, b) in out.iter_mut().zip(samples) {
                *o = f32::from(alaw_to_linear(b[0]));
            }
        }
        Encoding::Signed { bytes: 2 } => {
            for (o, b) in out.iter_mut().zip(samples) {
                let b = [b[0], b[1]];
                let v = if big_endian {
                    i16::from_be_bytes(b)
                } else {
                    i16::from_le_bytes(b)
                };
                *o = f32::from(v);
            }
        }
        Encoding::Signed { bytes } => {
            // Widen to i32 with the sample in the top bytes, then shift every width to int16 range.
            let scale = 2f32.powi(-16);
            for (o, b) in out.iter_mut().zip(samples) {
                let mut word = [0u8; 4];
                if big_endian {
                    word[..bytes].copy_from_slice(b);
                    *o = i32::from_be_bytes(word) as f32 * scale;
                } else {
                    word[4 - bytes..].copy_from_slice(b);
                    *o = i32::from_le_bytes(word) as f32 * scale;
                }
            }
        }
        Encoding::Float32 => {
            for (o, b) in out.iter_mut().zip(samples) {
                let b = [b[0], b[1], b[2], b[3]];
                let v = if big_endian {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                };
                *o = v * INT16_SCALE;
            }
        }
        Encoding::Float64 => {
            for (o, b) in out.iter_mut().zip(samples) {
                let mut word = [0u8; 8];
                word.copy_from_slice(b);
                let v = if big_endian {
                    f64::from_be_bytes(word)
                } else {
                    f64::from_le_bytes(word)
                };
                *o = (v * f64::from(INT16_SCALE)) as f32;
            }
        }
    }
}

/// Read a WAV file held in memory (`path` names it in errors) to mono int16-scale samples.
///
/// A file that holds several WAV recordings one after another (what `cat a.wav b.wav > ab.wav`
/// makes) is read whole, the recordings joined in order, as the user who joined them meant; sox and
/// Python's `wave` read only the first and drop the rest without a word (checked with sox 14.4).
/// A recording whose header gives no size (written to a pipe) ends where the next one's header
/// begins. Recordings at different rates are refused with the way to join them.
pub(crate) fn read_wav(path: &Path, bytes: &[u8], channel: ChannelChoice) -> Result<Waveform> {
    let (mut waveform, mut next) = read_one_wav(path, bytes, channel)?;
    let mut part = 1;
    while let Some(at) = next {
        part += 1;
        let rest = &bytes[at..];
        let (more, after) =
            read_one_wav(path, rest, channel).map_err(|e| in_joined_recording(part, "file", e))?;
        if more.sample_rate_hz != waveform.sample_rate_hz {
            return Err(joined_at_different_rates(
                path,
                waveform.sample_rate_hz,
                more.sample_rate_hz,
                part,
            ));
        }
        waveform.samples.extend_from_slice(&more.samples);
        next = after.map(|offset| at + offset);
    }
    Ok(waveform)
}

/// Recordings joined by `cat` whose rates differ: recording `part` is at `then` Hz, those before it
/// at `first` Hz.
fn joined_at_different_rates(path: &Path, first: u32, then: u32, part: usize) -> Error {
    Error::MalformedAudio {
        path: path.to_path_buf(),
        reason: format!(
            "it holds WAV recordings one after another (as `cat a.wav b.wav` makes) at different \
             rates: {first} Hz, then {then} Hz in recording {part}; bring them to one rate and join \
             them with sox (`sox a.wav b.wav joined.wav`)"
        ),
    }
}

/// `error` in recording `part` (from 2 on) of several joined in one `file` or stream, saying which.
fn in_joined_recording(part: usize, file: &str, error: Error) -> Error {
    match error {
        Error::MalformedAudio { path, reason } => Error::MalformedAudio {
            path,
            reason: format!("recording {part} of those joined in the {file}: {reason}"),
        },
        other => other,
    }
}

/// Read the WAV recording at the start of `bytes`; also where another one starts after it, if one
/// does.
fn read_one_wav(
    path: &Path,
    bytes: &[u8],
    channel: ChannelChoice,
) -> Result<(Waveform, Option<usize>)> {
    let mut header = match parse_header(path, bytes)? {
        Parsed::Samples(header) => header,
        Parsed::Adpcm { frames } => {
            let mut waveform = super::container::read_container(path, bytes, channel)?;
            if let Some(frames) = frames.and_then(|n| usize::try_from(n).ok()) {
                waveform.samples.truncate(frames);
            }
            return Ok((waveform, None));
        }
        Parsed::Gsm {
            sample_rate_hz,
            data_start,
            declared_bytes,
            frames,
        } => {
            channel.check(path, 1)?;
            let data = &bytes[data_start.min(bytes.len())..];
            let data = match declared_bytes {
                Some(declared) if declared > data.len() => {
                    return Err(Error::MalformedAudio {
                        path: path.to_path_buf(),
                        reason: format!(
                            "data cut short: the header declares {declared} bytes of GSM 6.10 \
                             blocks, the file holds {}",
                            data.len()
                        ),
                    })
                }
                Some(declared) => &data[..declared],
                None => data,
            };
            let mut samples = super::gsm::decode_wav49(data);
            if let Some(frames) = frames.and_then(|n| usize::try_from(n).ok()) {
                samples.truncate(frames);
            }
            let waveform = Waveform {
                samples,
                sample_rate_hz,
            };
            return Ok((waveform, None));
        }
    };
    if header.declared_bytes.is_none() {
        // A stream's size is not known: its samples end where another recording's header begins.
        header.declared_bytes = joined_header_in(&bytes[header.data_start..]);
    }
    channel.check(path, header.channels)?;
    let range = header.data_range(path, bytes.len())?;
    let samples = decode_to_mono(&header, &DataSource::Memory(&bytes[range]), channel)
        .map_err(|e| Error::io(path, e))?;
    let waveform = Waveform {
        samples,
        sample_rate_hz: header.sample_rate_hz,
    };
    let next = header.declared_bytes.and_then(|declared| {
        next_recording(
            bytes,
            header.data_start + declared,
            declared & 1,
            header.big_endian,
        )
    });
    Ok((waveform, next))
}

/// Where a second WAV recording starts in `bytes` after a data chunk that ends at `data_end`:
/// past any chunks that follow the data (`LIST`, `id3 `, ...), a RIFF header of form WAVE. The
/// data chunk's pad byte (`pad`: 1 after an odd size) is looked past whether or not its writer
/// wrote one.
fn next_recording(bytes: &[u8], data_end: usize, pad: usize, big_endian: bool) -> Option<usize> {
    let starts_wav = |at: usize| bytes.get(at..).is_some_and(starts_wav_header);
    if starts_wav(data_end) {
        return Some(data_end);
    }
    let mut pos = data_end + pad;
    // Chunks after the data, by their sizes, until the file ends or something else begins.
    while pos.checked_add(8)? <= bytes.len() {
        if starts_wav(pos) {
            return Some(pos);
        }
        if !starts_chunk_id(&bytes[pos..]) {
            return None;
        }
        let size = read_u32(bytes, pos + 4, big_endian) as usize;
        pos = pos
            .checked_add(8)?
            .checked_add(size.checked_add(size & 1)?)?;
    }
    None
}

/// Whether `bytes` start with a RIFF header of form WAVE (another recording, after a data chunk).
fn starts_wav_header(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && is_wav(bytes) && &bytes[8..12] == b"WAVE"
}

/// Whether `bytes` start like a chunk header: four printable ASCII characters (`LIST`, `id3 `).
fn starts_chunk_id(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && bytes[..4]
            .iter()
            .all(|&b| b.is_ascii_graphic() || b == b' ')
}

/// Bytes by which [`joined_header_in`] knows a recording's header: `RIFF`, its size, `WAVE` and the
/// first chunk's id.
const JOINED_HEADER_BYTES: usize = 16;

/// Where another recording's WAV header begins in `data`, the samples of a recording whose header
/// gave no size: recordings written to a pipe (whose writers leave a placeholder size, as
/// `ffmpeg ... -f wav -` does) and joined by `cat`. Without it the later header would be read as
/// samples and the later recordings at the first one's rate. Random samples match these 16 bytes
/// with a chance of about 2^-96 per position.
fn joined_header_in(data: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(data, b"WAVE")
        .filter_map(|wave| wave.checked_sub(8))
        .find(|&at| {
            let rest = &data[at..];
            rest.len() >= JOINED_HEADER_BYTES
                && starts_wav_header(rest)
                && starts_chunk_id(&rest[12..])
        })
}

/// Where a WAV file's sample data is: in memory, or in a file from `start` on for `len` bytes.
enum DataSource<'a> {
    Memory(&'a [u8]),
    #[cfg(unix)]
    File {
        file: &'a std::fs::File,
        start: usize,
        len: usize,
    },
}

impl DataSource<'_> {
    fn len(&self) -> usize {
        match self {
            DataSource::Memory(bytes) => bytes.len(),
            #[cfg(unix)]
            DataSource::File { len, .. } => *len,
        }
    }

    /// The data's bytes in `range`, read into `buffer` when they are on disk.
    fn bytes<'b>(
        &'b self,
        range: Range<usize>,
        buffer: &'b mut Vec<u8>,
    ) -> std::io::Result<&'b [u8]> {
        match self {
            DataSource::Memory(bytes) => Ok(&bytes[range]),
            #[cfg(unix)]
            DataSource::File { file, start, .. } => {
                use std::os::unix::fs::FileExt;
                buffer.resize(range.len(), 0);
                file.read_exact_at(buffer, (start + range.start) as u64)?;
                Ok(buffer)
            }
        }
    }
}

/// What a task does with one block's decoded interleaved samples and its share of the mono output;
/// the block's mixing energies when it averaged them.
type BlockFinish<'a> = dyn Fn(&[f32], &mut [f32]) -> Option<Mixdown> + Sync + 'a;

/// Decode `source`'s whole frames to mono, in blocks on all cores (for an hour-long file the
/// conversion, and the first touch of the output's pages, is otherwise a serial stretch of
/// `phonrec features`). Several channels are averaged block by block ([`Mixdown`]), so the file is
/// never held with all its channels; when they cancel, the loudest channel is decoded again alone,
/// and when they may have been clipped separately, each ([`super::least_clipped_channel`]). With
/// `choice` one channel (checked against the header), that channel alone.
fn decode_to_mono(
    header: &Header,
    source: &DataSource,
    choice: ChannelChoice,
) -> std::io::Result<Vec<f32>> {
    let channels = header.channels;
    let frame_bytes = header.frame_bytes();
    let mut mono = vec![0.0f32; source.len() / frame_bytes];
    // Each task decodes one block of frames: its bytes, then (several channels) its samples.
    let decode_blocks = |mono: &mut [f32], finish: &BlockFinish<'_>| {
        mono.par_chunks_mut(CONVERT_BLOCK)
            .enumerate()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(bytes, interleaved), (block, out)| {
                    let start = block * CONVERT_BLOCK * frame_bytes;
                    let bytes = source.bytes(start..start + out.len() * frame_bytes, bytes)?;
                    if channels == 1 {
                        decode(header.encoding, header.big_endian, bytes, out);
                        return Ok(None);
                    }
                    interleaved.resize(out.len() * channels, 0.0);
                    decode(header.encoding, header.big_endian, bytes, interleaved);
                    Ok(finish(interleaved, out))
                },
            )
            .collect::<std::io::Result<Vec<Option<Mixdown>>>>()
    };
    if let (ChannelChoice::Only(channel), 2..) = (choice, channels) {
        decode_blocks(&mut mono, &|interleaved, out| {
            take_channel(interleaved, channels, channel, out);
            None
        })?;
        return Ok(mono);
    }
    let blocks = decode_blocks(&mut mono, &|interleaved, out| {
        let mut mixdown = Mixdown::new(channels);
        mixdown.mix(interleaved, out);
        Some(mixdown)
    })?;
    if channels > 1 {
        // Summed in block order, whatever the threads did: the decision is reproducible.
        let total = blocks
            .iter()
            .flatten()
            .fold(Mixdown::new(channels), Mixdown::merged);
        let frames = mono.len();
        let decode_channel = |channel: usize, samples: &mut Vec<f32>| {
            samples.resize(frames, 0.0);
            decode_blocks(samples, &|interleaved, out| {
                take_channel(interleaved, channels, channel, out);
                None
            })
            .map(|_| ())
        };
        if let Some(alone) = total.channel_alone() {
            decode_channel(alone, &mut mono)?;
        } else if let Some(samples) = super::least_clipped_channel(&total, decode_channel)? {
            mono = samples;
        }
    }
    Ok(mono)
}

/// Bytes read from the start of a file to find its header; a header longer than this (huge
/// metadata chunks) is read the ordinary way.
const HEADER_READ_BYTES: usize = 64 * 1024;

/// Read a large WAV file straight from disk: the header from its first bytes, then the samples in
/// blocks read and converted on all cores, with no copy of the whole file in memory (for `phonrec
/// features` on a long file, reading it whole was a serial sixth of the run). `None` when the file
/// is not a WAV or its header is not within the first bytes: read it whole.
#[cfg(unix)]
pub(crate) fn read_wav_file_by_blocks(
    path: &Path,
    file: &std::fs::File,
    file_len: u64,
    channel: ChannelChoice,
) -> Result<Option<Waveform>> {
    use std::os::unix::fs::FileExt;
    let io = |e| Error::io(path, e);
    let file_len = usize::try_from(file_len).unwrap_or(usize::MAX);
    let mut head = vec![0u8; HEADER_READ_BYTES.min(file_len)];
    file.read_exact_at(&mut head, 0).map_err(io)?;
    if !is_wav(&head) {
        return Ok(None);
    }
    let Ok(Parsed::Samples(header)) = parse_header(path, &head) else {
        return Ok(None);
    };
    let range = header.data_range(path, file_len)?;
    if let Some(declared) = header.declared_bytes {
        // Another recording after this one (`cat a.wav b.wav`): read the file whole, which joins
        // them (`read_wav`). What follows the data is looked at, up to the header's read size.
        let data_end = header.data_start + declared;
        if data_end < file_len {
            let mut tail = vec![0u8; (file_len - data_end).min(HEADER_READ_BYTES)];
            file.read_exact_at(&mut tail, data_end as u64).map_err(io)?;
            if next_recording(&tail, 0, declared & 1, header.big_endian).is_some() {
                return Ok(None);
            }
        }
    } else if file_holds_joined_header(file, range.clone(), 4 << 20).map_err(io)? {
        // A stream's samples followed by another recording: read whole, which splits them.
        return Ok(None);
    }
    let source = DataSource::File {
        file,
        start: range.start,
        len: range.len(),
    };
    channel.check(path, header.channels)?;
    let samples = decode_to_mono(&header, &source, channel).map_err(io)?;
    Ok(Some(Waveform {
        samples,
        sample_rate_hz: header.sample_rate_hz,
    }))
}

/// Whether the bytes of `file` in `range` (a stream's samples, of no declared size) hold another
/// recording's header ([`joined_header_in`]), read in blocks of `block_bytes` (more than a header)
/// that overlap by a header's length less one.
#[cfg(unix)]
fn file_holds_joined_header(
    file: &std::fs::File,
    range: Range<usize>,
    block_bytes: usize,
) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut block = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = (start + block_bytes.max(JOINED_HEADER_BYTES)).min(range.end);
        block.resize(end - start, 0);
        file.read_exact_at(&mut block, start as u64)?;
        if joined_header_in(&block).is_some() {
            return Ok(true);
        }
        if end == range.end {
            break;
        }
        start = end - (JOINED_HEADER_BYTES - 1);
    }
    Ok(false)
}

/// A WAV stream read as it arrives (`arecord`, `sox -d`, `ffmpeg ... -f wav -` writing to a pipe):
/// its header, then blocks of samples, mono at int16 scale, each as soon as it is there. A data size
/// in the header bounds the recording (a whole file piped in ends there); a stream that ends sooner
/// simply ends (live audio has no length to keep). Recordings joined by `cat a.wav b.wav` are read
/// one after another, as the whole-file reader does.
pub struct WavStream<R> {
    reader: R,
    encoding: Encoding,
    big_endian: bool,
    channels: usize,
    /// Which channels become the stream's one signal.
    channel: super::ChannelChoice,
    sample_rate_hz: u32,
    /// Bytes of samples still to come by the header's count; `None`: until the stream ends.
    remaining: Option<usize>,
    /// The data chunk's size is odd, so a pad byte may follow it.
    pad_after_data: bool,
    /// The header gave no size (a WAV written to a pipe): the samples end where another
    /// recording's header begins, if one does ([`joined_header_in`]).
    size_unknown: bool,
    /// Which recording of those joined in the stream is being read (1 for the first).
    recording: usize,
    /// Bytes read but not yet decoded (what followed the header, a partial frame).
    pending: Vec<u8>,
    ended: bool,
    name: std::path::PathBuf,
}

/// Bytes asked of the reader at a time: 64 ms of 16 kHz 16-bit stereo, so blocks come promptly.
const STREAM_READ_BYTES: usize = 4096;

impl<R: std::io::Read> WavStream<R> {
    /// Read the header of the WAV stream `reader` (`name` names it in errors).
    pub fn open(reader: R, name: &Path) -> Result<Self> {
        let mut stream = WavStream {
            reader,
            encoding: Encoding::Signed { bytes: 2 },
            big_endian: false,
            channels: 1,
            channel: super::ChannelChoice::Mixed,
            sample_rate_hz: 0,
            remaining: None,
            pad_after_data: false,
            size_unknown: false,
            recording: 1,
            pending: Vec::new(),
            ended: false,
            name: name.to_path_buf(),
        };
        let header = stream.read_header()?;
        stream.start(&header);
        Ok(stream)
    }

    /// Headerless 16-bit little-endian PCM of `channels` channels at `sample_rate_hz` (`arecord -t
    /// raw -f S16_LE`, `parec`).
    pub fn raw_s16le(reader: R, sample_rate_hz: u32, channels: usize, name: &Path) -> Self {
        WavStream {
            reader,
            encoding: Encoding::Signed { bytes: 2 },
            big_endian: false,
            channels: channels.clamp(1, MAX_CHANNELS),
            channel: super::ChannelChoice::Mixed,
            sample_rate_hz,
            remaining: None,
            pad_after_data: false,
            size_unknown: false,
            recording: 1,
            pending: Vec::new(),
            ended: false,
            name: name.to_path_buf(),
        }
    }

    /// Samples per second.
    pub fn sample_rate_hz(&self) -> u32 {
        self.sample_rate_hz
    }

    /// Take `channel` of the stream (by default its channels are mixed, as
    /// [`mix_to_mono`](super::mix_to_mono) mixes a block); [`Error::NoSuchChannel`] when the
    /// stream (its header, or a headerless stream's channel count) has no such channel. A
    /// recording joined after the first must have it too.
    pub fn with_channel(mut self, channel: super::ChannelChoice) -> Result<Self> {
        channel.check(&self.name, self.channels)?;
        self.channel = channel;
        Ok(self)
    }

    /// The samples that have arrived since the last call (at least one frame, waiting for it),
    /// mono at int16 scale; `None` once the stream has ended.
    pub fn next_block(&mut self) -> Result<Option<Vec<f32>>> {
        loop {
            let frame_bytes = self.encoding.bytes() * self.channels;
            if self.size_unknown && self.remaining.is_none() {
                self.remaining = joined_header_in(&self.pending);
            }
            let usable = match self.remaining {
                Some(remaining) => self.pending.len().min(remaining),
                // The last bytes wait for the next read while they could be a header's start.
                None if self.size_unknown && !self.ended => {
                    self.pending.len().saturating_sub(JOINED_HEADER_BYTES - 1)
                }
                None => self.pending.len(),
            };
            let whole = usable - usable % frame_bytes;
            if whole > 0 {
                let bytes: Vec<u8> = self.pending.drain(..whole).collect();
                if let Some(remaining) = &mut self.remaining {
                    *remaining -= whole;
                }
                let mut interleaved = vec![0.0f32; whole / self.encoding.bytes()];
                decode(self.encoding, self.big_endian, &bytes, &mut interleaved);
                if self.channels == 1 {
                    return Ok(Some(interleaved));
                }
                if let super::ChannelChoice::Only(channel) = self.channel {
                    return Ok(Some(
                        interleaved
                            .chunks_exact(self.channels)
                            .map(|frame| frame[channel])
                            .collect(),
                    ));
                }
                let mut mono = vec![0.0f32; whole / frame_bytes];
                Mixdown::new(self.channels).mix(&interleaved, &mut mono);
                return Ok(Some(mono));
            }
            if self.remaining.is_some_and(|left| left < frame_bytes) {
                // The header's count is read (a partial frame left over is dropped): go on to a
                // recording joined after this one, if one follows.
                if self.next_recording()? {
                    continue;
                }
                return Ok(None);
            }
            if self.ended {
                return Ok(None);
            }
            self.read_more()?;
        }
    }

    /// One read from the stream into `pending`; marks the stream ended when nothing more comes.
    fn read_more(&mut self) -> Result<()> {
        let mut block = [0u8; STREAM_READ_BYTES];
        let n =
            read_retrying(&mut self.reader, &mut block).map_err(|e| Error::io(&self.name, e))?;
        self.ended = n == 0;
        self.pending.extend_from_slice(&block[..n]);
        Ok(())
    }

    /// Read until `pending` holds `n` bytes or the stream ends; whether it holds them.
    fn fill(&mut self, n: usize) -> Result<bool> {
        while self.pending.len() < n && !self.ended {
            self.read_more()?;
        }
        Ok(self.pending.len() >= n)
    }

    /// Read the WAV header at the start of `pending` (reading more as it is needed) up to its
    /// data chunk's first sample, when any come.
    fn read_header(&mut self) -> Result<Header> {
        let name = self.name.clone();
        let header = loop {
            let bytes = &self.pending;
            // A stream too short to hold a header is judged on what it has: `echo hello` is not
            // a WAV header cut short.
            let could_be_wav = |bytes: &[u8]| {
                let magic = &bytes[..bytes.len().min(4)];
                [b"RIFF", b"RIFX", b"RF64", b"BW64"]
                    .iter()
                    .any(|known| known.starts_with(magic))
                    && (bytes.len() <= 8 || b"WAVE".starts_with(&bytes[8..bytes.len().min(12)]))
            };
            if !could_be_wav(bytes) || bytes.len() >= 12 {
                if !is_wav(bytes) || bytes.get(8..12) != Some(b"WAVE".as_slice()) {
                    return Err(Error::NotAudio {
                        path: name,
                        reason: "the stream does not start with a WAV header (headerless PCM: \
                                 give its rate with --raw-rate)"
                            .to_string(),
                    });
                }
                if let Some(body) = data_chunk_body(bytes) {
                    // Eight bytes past the data chunk's header tell samples from a chunk
                    // after an empty recording (`chunk_follows_empty_data`).
                    if bytes.len() >= body + 8 || self.ended {
                        break parse_header(&name, bytes)?;
                    }
                }
            }
            if self.ended {
                return Err(Error::MalformedAudio {
                    path: name,
                    reason: if bytes.is_empty() {
                        "the stream ended before any audio came".to_string()
                    } else {
                        "the stream ended inside its WAV header".to_string()
                    },
                });
            }
            if bytes.len() > HEADER_READ_BYTES {
                return Err(Error::MalformedAudio {
                    path: name,
                    reason: format!("no data chunk in the first {HEADER_READ_BYTES} bytes"),
                });
            }
            self.read_more()?;
        };
        match header {
            Parsed::Samples(header) => Ok(header),
            Parsed::Adpcm { .. } | Parsed::Gsm { .. } => Err(Error::UnsupportedEncoding {
                path: name,
                encoding: "ADPCM or GSM".to_string(),
                hint: Some("stream PCM (e.g. `arecord -f S16_LE`)".to_string()),
            }),
        }
    }

    /// Take the samples' format and count from `header`, whose samples start at `data_start` in
    /// `pending`.
    fn start(&mut self, header: &Header) {
        self.encoding = header.encoding;
        self.big_endian = header.big_endian;
        self.channels = header.channels;
        self.sample_rate_hz = header.sample_rate_hz;
        self.remaining = header.declared_bytes;
        self.pad_after_data = header.declared_bytes.is_some_and(|n| n % 2 == 1);
        self.size_unknown = header.declared_bytes.is_none();
        self.pending.drain(..header.data_start);
    }

    /// After a recording's declared samples: past its pad byte and any chunks after the data
    /// (`LIST`, `id3 `, ...), the header of another recording joined after it (`cat a.wav b.wav`),
    /// whose samples then follow; false when the stream ends or holds something else there.
    fn next_recording(&mut self) -> Result<bool> {
        // The partial frame a header's count may end in (never decoded).
        if let Some(left) = self.remaining.take() {
            let left = left.min(self.pending.len());
            self.pending.drain(..left);
        }
        let mut pad = self.pad_after_data;
        let found = loop {
            self.fill(12)?;
            if starts_wav_header(&self.pending) {
                break true;
            }
            if pad && !self.pending.is_empty() {
                // Looked past whether or not its writer wrote one, as the whole-file reader does.
                self.pending.remove(0);
                pad = false;
                continue;
            }
            if !self.fill(8)? || !starts_chunk_id(&self.pending) {
                break false;
            }
            let size = read_u32(&self.pending, 4, self.big_endian) as usize;
            let mut skip = 8 + size + (size & 1);
            // Skipped as it arrives: a chunk's size is not a reason to hold it in memory.
            loop {
                let here = skip.min(self.pending.len());
                self.pending.drain(..here);
                skip -= here;
                if skip == 0 || self.ended {
                    break;
                }
                self.read_more()?;
            }
            if skip > 0 {
                break false;
            }
        };
        if !found {
            // Nothing more is read: what follows is not audio this reader knows.
            self.pending.clear();
            self.ended = true;
            return Ok(false);
        }
        let part = self.recording + 1;
        let header = self
            .read_header()
            .map_err(|e| in_joined_recording(part, "stream", e))?;
        if header.sample_rate_hz != self.sample_rate_hz {
            return Err(joined_at_different_rates(
                &self.name,
                self.sample_rate_hz,
                header.sample_rate_hz,
                part,
            ));
        }
        self.channel
            .check(&self.name, header.channels)
            .map_err(|e| in_joined_recording(part, "stream", e))?;
        self.recording = part;
        self.start(&header);
        Ok(true)
    }
}

/// One `read`, retried when interrupted by a signal.
fn read_retrying(reader: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Where the data chunk's samples start in `bytes` (a WAV header so far), once its header is there.
fn data_chunk_body(bytes: &[u8]) -> Option<usize> {
    let big_endian = bytes.starts_with(b"RIFX");
    let mut pos = 12usize;
    while pos.checked_add(8)? <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        if id == b"data" {
            return Some(pos + 8);
        }
        let size = read_u32(bytes, pos + 4, big_endian) as usize;
        pos = pos
            .checked_add(8)?
            .checked_add(size.checked_add(size & 1)?)?;
    }
    None
}

fn truncated(path: &Path, got: usize, declared: usize) -> Error {
    Error::MalformedAudio {
        path: path.to_path_buf(),
        reason: format!(
            "data cut short: the header declares {declared} samples, the file holds {got} (an \
             interrupted download or copy; `sox` reads what is there into a new file)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV file: `fmt ` body fields, optional extra chunks before `data`, and the data chunk with
    /// `declared` as its size field.
    fn wav_bytes(
        big_endian: bool,
        (tag, channels, rate, block_align, bits): (u16, u16, u32, u16, u16),
        extra: &[u8],
        data: &[u8],
        declared: u32,
    ) -> Vec<u8> {
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut body = b"WAVEfmt ".to_vec();
        body.extend(u32b(16));
        body.extend(u16b(tag));
        body.extend(u16b(channels));
        body.extend(u32b(rate));
        body.extend(u32b(rate * u32::from(block_align)));
        body.extend(u16b(block_align));
        body.extend(u16b(bits));
        body.extend(extra);
        body.extend(b"data");
        body.extend(u32b(declared));
        body.extend(data);
        let mut out = if big_endian {
            b"RIFX".to_vec()
        } else {
            b"RIFF".to_vec()
        };
        out.extend(u32b(body.len() as u32));
        out.extend(body);
        out
    }

    fn read(bytes: &[u8]) -> Result<Waveform> {
        read_wav(Path::new("t.wav"), bytes, ChannelChoice::Mixed)
    }

    #[test]
    fn a_block_align_that_disagrees_with_the_bits_is_ignored() {
        // 16-bit mono whose header says 4 bytes a frame: read as 16-bit samples, as sox does.
        let data: Vec<u8> = [100i16, -200, 300, -400]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        for block_align in [2, 3, 4, 0] {
            let wave = read(&wav_bytes(
                false,
                (1, 1, 8000, block_align, 16),
                &[],
                &data,
                8,
            ))
            .expect("read");
            assert_eq!(
                wave.samples,
                [100.0, -200.0, 300.0, -400.0],
                "{block_align}"
            );
        }
    }

    #[test]
    fn companded_float64_and_big_endian_data_decode() {
        // µ-law and A-law: the G.711 values.
        let mu = read(&wav_bytes(
            false,
            (7, 1, 8000, 1, 8),
            &[],
            &[0x00, 0x80, 0xFF],
            3,
        ))
        .unwrap();
        assert_eq!(mu.samples, vec![-32124.0, 32124.0, 0.0]);
        let a = read(&wav_bytes(false, (6, 1, 8000, 1, 8), &[], &[0xD5, 0x2A], 2)).unwrap();
        assert_eq!(a.samples, vec![8.0, -32256.0]);
        // 64-bit float: ±1 is full scale.
        let data: Vec<u8> = [0.5f64, -0.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let f = read(&wav_bytes(false, (3, 1, 16000, 8, 64), &[], &data, 16)).unwrap();
        assert_eq!(f.samples, vec![16384.0, -8192.0]);
        // RIFX: every field and sample big-endian.
        let data: Vec<u8> = [1000i16, -2000]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let be = read(&wav_bytes(true, (1, 1, 16000, 2, 16), &[], &data, 4)).unwrap();
        assert_eq!(
            (be.samples.clone(), be.sample_rate_hz),
            (vec![1000.0, -2000.0], 16000)
        );
        // 24-bit big-endian and little-endian agree.
        let le: Vec<u8> = vec![0x00, 0x10, 0x80]; // 0x801000 = -8384512 → / 256 = -32752
        let be24: Vec<u8> = vec![0x80, 0x10, 0x00];
        let l = read(&wav_bytes(false, (1, 1, 16000, 3, 24), &[], &le, 3)).unwrap();
        let b = read(&wav_bytes(true, (1, 1, 16000, 3, 24), &[], &be24, 3)).unwrap();
        assert_eq!(l.samples, vec![-32752.0]);
        assert_eq!(l.samples, b.samples);
        // 12-bit samples in a 16-bit container are left-justified: read as 16-bit.
        let twelve = read(&wav_bytes(
            false,
            (1, 1, 16000, 2, 12),
            &[],
            &[0x10, 0x00],
            2,
        ))
        .unwrap();
        assert_eq!(twelve.samples, vec![16.0]);
    }

    #[test]
    fn rf64_takes_the_data_size_from_its_ds64_chunk() -> Result<()> {
        let samples: Vec<u8> = [100i16, -200, 300]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let plain = wav_bytes(false, (1, 1, 16_000, 2, 16), &[], &samples, 6);
        // RF64: sizes 0xFFFFFFFF in the RIFF and data headers, the real ones in `ds64` before
        // `fmt `, and a chunk after the data (a broadcast WAV's `axml`) that must not be read as
        // samples.
        let mut rf64 = b"RF64".to_vec();
        rf64.extend(u32::MAX.to_le_bytes());
        rf64.extend(b"WAVEds64");
        rf64.extend(28u32.to_le_bytes());
        rf64.extend(0u64.to_le_bytes());
        rf64.extend(6u64.to_le_bytes());
        rf64.extend(3u64.to_le_bytes());
        rf64.extend(0u32.to_le_bytes());
        let fmt_to_data = &plain[12..plain.len() - samples.len() - 4];
        rf64.extend(fmt_to_data);
        rf64.extend(u32::MAX.to_le_bytes());
        rf64.extend(&samples);
        rf64.extend(b"axml");
        rf64.extend(4u32.to_le_bytes());
        rf64.extend(b"<a/>");
        assert!(is_wav(&rf64) && crate::audio::looks_like_audio(&rf64));
        assert_eq!(read(&rf64)?, read(&plain)?);
        assert_eq!(read(&rf64)?.samples, vec![100.0, -200.0, 300.0]);
        // A ds64 size past the end of the file: cut short.
        let mut cut = rf64.clone();
        let at = 12 + 8 + 8;
        cut[at..at + 8].copy_from_slice(&600u64.to_le_bytes());
        assert!(read(&cut).unwrap_err().to_string().contains("cut short"));
        Ok(())
    }

    #[test]
    fn odd_chunks_are_skipped_with_their_pad_byte() {
        // A 5-byte LIST chunk, padded to 6, before the data.
        let mut extra = b"LIST".to_vec();
        extra.extend(5u32.to_le_bytes());
        extra.extend(b"abcde\0");
        let data: Vec<u8> = [7i16, -7].iter().flat_map(|v| v.to_le_bytes()).collect();
        let wave = read(&wav_bytes(false, (1, 1, 16000, 2, 16), &extra, &data, 4)).unwrap();
        assert_eq!(wave.samples, vec![7.0, -7.0]);
    }

    #[test]
    fn streamed_sizes_read_to_the_end_and_real_sizes_are_kept() {
        let data: Vec<u8> = [1i16, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        for placeholder in [0x7FFF_F000u32, 0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FF00, 0] {
            let wave = read(&wav_bytes(
                false,
                (1, 1, 16000, 2, 16),
                &[],
                &data,
                placeholder,
            ));
            assert_eq!(
                wave.unwrap().samples,
                vec![1.0, 2.0, 3.0],
                "{placeholder:#x}"
            );
        }
        // A partial last sample of a stream is dropped.
        let mut odd = data.clone();
        odd.push(9);
        let wave = read(&wav_bytes(
            false,
            (1, 1, 16000, 2, 16),
            &[],
            &odd,
            0xFFFF_FFFF,
        ));
        assert_eq!(wave.unwrap().samples, vec![1.0, 2.0, 3.0]);
        // A real size shorter than the file: chunks after the data are not samples.
        let wave = read(&wav_bytes(false, (1, 1, 16000, 2, 16), &[], &data, 4)).unwrap();
        assert_eq!(wave.samples, vec![1.0, 2.0]);
        // A size of 0 followed by a chunk the RIFF size counts: an empty recording with its
        // metadata, not samples (it used to be read as 6 samples of "LIST" and its text).
        let mut list = b"LIST".to_vec();
        list.extend(4u32.to_le_bytes());
        list.extend(b"INFO");
        for big_endian in [false, true] {
            let mut list = list.clone();
            if big_endian {
                list[4..8].copy_from_slice(&4u32.to_be_bytes());
            }
            let empty = wav_bytes(big_endian, (1, 1, 16000, 2, 16), &[], &list, 0);
            assert!(read(&empty).unwrap().samples.is_empty());
            assert!(stream_all(&empty, 3).unwrap().is_empty());
            // The same bytes with the RIFF size of a header written before the data (36: a
            // writer that never came back): samples.
            let mut unfilled = empty.clone();
            let riff_size = if big_endian {
                36u32.to_be_bytes()
            } else {
                36u32.to_le_bytes()
            };
            unfilled[4..8].copy_from_slice(&riff_size);
            assert_eq!(read(&unfilled).unwrap().samples.len(), 6);
            assert_eq!(stream_all(&unfilled, 5).unwrap().len(), 6);
        }
        // A real size longer than the file: cut short.
        let err = read(&wav_bytes(false, (1, 1, 16000, 2, 16), &[], &data, 600)).unwrap_err();
        assert!(
            err.to_string()
                .contains("declares 300 samples, the file holds 3"),
            "{err}"
        );
    }

    #[test]
    fn bad_headers_are_named() {
        let data = [0u8; 4];
        let cases: [(Vec<u8>, &str); 5] = [
            (
                wav_bytes(false, (0x31, 2, 8000, 65, 0), &[], &data, 4),
                "GSM 6.10 with 2 channels",
            ),
            (
                wav_bytes(false, (1, 0, 8000, 2, 16), &[], &data, 4),
                "0 channels",
            ),
            (
                wav_bytes(false, (3, 1, 8000, 2, 16), &[], &data, 4),
                "16-bit float",
            ),
            (
                wav_bytes(false, (0x1234, 1, 8000, 2, 16), &[], &data, 4),
                "0x1234",
            ),
            (b"RIFF\x04\0\0\0AVI LIST".to_vec(), "not WAVE"),
        ];
        for (bytes, expected) in cases {
            let err = read(&bytes).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let mut no_data = wav_bytes(false, (1, 1, 8000, 2, 16), &[], &[], 0);
        no_data.truncate(no_data.len() - 8);
        assert!(read(&no_data)
            .unwrap_err()
            .to_string()
            .contains("no data chunk"));
        assert!(read(b"RIFF\0\0")
            .unwrap_err()
            .to_string()
            .contains("ends inside its header"));
    }

    #[cfg(unix)]
    #[test]
    fn blocks_read_from_the_file_are_the_samples_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        // Two and a half blocks of stereo frames, 16-bit and µ-law.
        let samples: Vec<i16> = (0..5 * CONVERT_BLOCK as i32 + 6)
            .map(|i| (i.wrapping_mul(7919) % 65_536 - 32_768) as i16)
            .collect();
        let pcm: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mulaw: Vec<u8> = samples.iter().map(|&v| (v & 0xFF) as u8).collect();
        for (name, bytes) in [
            (
                "pcm.wav",
                wav_bytes(false, (1, 2, 16000, 4, 16), &[], &pcm, pcm.len() as u32),
            ),
            (
                "mu.wav",
                wav_bytes(false, (7, 2, 8000, 2, 8), &[], &mulaw, 0xFFFF_FFFF),
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let direct =
                read_wav_file_by_blocks(&path, &file, bytes.len() as u64, ChannelChoice::Mixed)
                    .unwrap()
                    .expect("a WAV is read by blocks");
            assert_eq!(
                direct,
                read_wav(&path, &bytes, ChannelChoice::Mixed).unwrap(),
                "{name}"
            );
            assert_eq!(direct.samples.len(), samples.len() / 2, "{name}");
        }

        let not_wav = dir.path().join("b.wav");
        std::fs::write(&not_wav, b"NIST_1A\n   1024\n").unwrap();
        let file = std::fs::File::open(&not_wav).unwrap();
        assert!(
            read_wav_file_by_blocks(&not_wav, &file, 16, ChannelChoice::Mixed)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn recordings_joined_by_cat_are_read_in_order() {
        let pcm =
            |values: &[i16]| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
        let first = wav_bytes(false, (1, 1, 8000, 2, 16), &[], &pcm(&[1, 2, 3]), 6);
        // The second ends in a LIST chunk after its data, as many editors write.
        let mut second = wav_bytes(false, (1, 1, 8000, 2, 16), &[], &pcm(&[4, 5]), 4);
        second.extend(b"LIST\x04\0\0\0INFO");
        let riff = u32::from_le_bytes([second[4], second[5], second[6], second[7]]) + 12;
        second[4..8].copy_from_slice(&riff.to_le_bytes());
        // The third: 8-bit, an odd data size without its pad byte (a careless writer).
        let third = wav_bytes(false, (1, 1, 8000, 1, 8), &[], &[128 + 1], 1);
        let joined: Vec<u8> = [first.clone(), second.clone(), third].concat();
        let wave = read(&joined).unwrap();
        assert_eq!(wave.samples, [1.0, 2.0, 3.0, 4.0, 5.0, 256.0]);
        assert_eq!(wave.sample_rate_hz, 8000);

        // One recording with chunks or stray bytes after its data is read as before.
        assert_eq!(read(&second).unwrap().samples, [4.0, 5.0]);
        let mut stray = first.clone();
        stray.extend(b"\0\0junk");
        assert_eq!(read(&stray).unwrap().samples, [1.0, 2.0, 3.0]);

        // Different rates cannot be joined: refused with the way to do it.
        let fast = wav_bytes(false, (1, 1, 16000, 2, 16), &[], &pcm(&[7]), 2);
        let err = read(&[first.clone(), fast].concat())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("8000 Hz, then 16000 Hz in recording 2") && err.contains("sox"),
            "{err}"
        );
        // A later recording cut short names itself.
        let short = wav_bytes(false, (1, 1, 8000, 2, 16), &[], &pcm(&[7]), 8);
        let err = read(&[first, short].concat()).unwrap_err().to_string();
        assert!(
            err.contains("recording 2 of those joined") && err.contains("cut short"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_large_file_of_joined_recordings_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let part: Vec<u8> = (0..3 * CONVERT_BLOCK as i32)
            .flat_map(|i| ((i % 1000) as i16).to_le_bytes())
            .collect();
        let one = wav_bytes(false, (1, 1, 16000, 2, 16), &[], &part, part.len() as u32);
        let joined = [one.clone(), one.clone()].concat();
        let path = dir.path().join("ab.wav");
        std::fs::write(&path, &joined).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        assert!(
            read_wav_file_by_blocks(&path, &file, joined.len() as u64, ChannelChoice::Mixed)
                .unwrap()
                .is_none(),
            "left to the whole-file reader, which joins"
        );
        let path_one = dir.path().join("a.wav");
        std::fs::write(&path_one, &one).unwrap();
        let file = std::fs::File::open(&path_one).unwrap();
        assert!(
            read_wav_file_by_blocks(&path_one, &file, one.len() as u64, ChannelChoice::Mixed)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            read(&joined).unwrap().samples.len(),
            2 * read(&one).unwrap().samples.len()
        );

        // The same with a stream's placeholder size in the first header: the second header lies
        // inside what the first would read to the end.
        let streamed = wav_bytes(false, (1, 1, 16000, 2, 16), &[], &part, 0xFFFF_FFFF);
        let path_streamed = dir.path().join("streamed.wav");
        let joined_streamed = [streamed.clone(), streamed.clone()].concat();
        std::fs::write(&path_streamed, &joined_streamed).unwrap();
        let file = std::fs::File::open(&path_streamed).unwrap();
        assert!(
            read_wav_file_by_blocks(
                &path_streamed,
                &file,
                joined_streamed.len() as u64,
                ChannelChoice::Mixed
            )
            .unwrap()
            .is_none(),
            "a stream followed by another recording is left to the whole-file reader"
        );
        assert_eq!(read(&joined_streamed).unwrap(), read(&joined).unwrap());
        // Found by the scan wherever its blocks cut the header.
        let data = 44..joined_streamed.len();
        for block in [16, 17, 20, 31, 1000, 4096] {
            assert!(
                file_holds_joined_header(&file, data.clone(), block).unwrap(),
                "{block}"
            );
        }
        let file = std::fs::File::open(&path_one).unwrap();
        assert!(!file_holds_joined_header(&file, 44..one.len(), 16).unwrap());
    }

    #[test]
    fn recordings_written_to_a_pipe_and_joined_are_split_at_their_headers() {
        let pcm =
            |values: &[i16]| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
        // Written to a pipe: placeholder sizes (ffmpeg's, sox's), and a size of 0.
        let first = wav_bytes(
            false,
            (1, 1, 8000, 2, 16),
            &[],
            &pcm(&[1, 2, 3]),
            0xFFFF_FFFF,
        );
        let second = wav_bytes(false, (1, 2, 8000, 4, 16), &[], &pcm(&[4, 6]), 0x7FFF_F000);
        // A partial frame before the next header (a writer killed mid-sample): dropped.
        let mut third = wav_bytes(false, (1, 1, 8000, 2, 16), &[], &pcm(&[7]), 0);
        third.push(9);
        let fourth = wav_bytes(false, (1, 1, 8000, 2, 16), &[], &pcm(&[8, 9]), 4);
        let joined: Vec<u8> = [first.clone(), second, third, fourth].concat();
        let want = [1.0, 2.0, 3.0, 5.0, 7.0, 8.0, 9.0];
        assert_eq!(read(&joined).unwrap().samples, want);
        for step in [1, 2, 5, 15, 16, 17, 4096] {
            assert_eq!(stream_all(&joined, step).unwrap(), want, "reads of {step}");
        }
        // A later recording at another rate is refused, not read at the first one's rate.
        let fast = wav_bytes(false, (1, 1, 16000, 2, 16), &[], &pcm(&[7]), 0xFFFF_FFFF);
        let both = [first.clone(), fast].concat();
        for err in [read(&both).unwrap_err(), stream_all(&both, 3).unwrap_err()] {
            let err = err.to_string();
            assert!(
                err.contains("8000 Hz, then 16000 Hz in recording 2"),
                "{err}"
            );
        }
        // Samples that merely contain the letters WAVE are samples.
        let letters = wav_bytes(false, (1, 1, 8000, 2, 16), &[], b"RIFFxxxxWAVE\0\0\0\0", 0);
        assert_eq!(read(&letters).unwrap().samples.len(), 8);
        assert_eq!(stream_all(&letters, 1).unwrap().len(), 8);
    }

    /// A reader that hands out at most `step` bytes a read, as a pipe may.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    /// Every sample of the WAV stream `bytes` read in reads of `step` bytes, or the error.
    fn stream_all(bytes: &[u8], step: usize) -> Result<Vec<f32>> {
        let mut stream = WavStream::open(Trickle { bytes, step }, Path::new("-"))?;
        let mut samples = Vec::new();
        while let Some(block) = stream.next_block()? {
            samples.extend(block);
        }
        Ok(samples)
    }

    #[test]
    fn recordings_joined_by_cat_are_streamed_in_order() {
        let pcm =
            |values: &[i16]| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
        let first = wav_bytes(false, (1, 1, 8000, 2, 16), &[], &pcm(&[1, 2, 3]), 6);
        // Stereo, ending in a LIST chunk after its data, as many editors write.
        let mut second = wav_bytes(false, (1, 2, 8000, 4, 16), &[], &pcm(&[4, 6, 10, 0]), 8);
        second.extend(b"LIST\x04\0\0\0INFO");
        // 8-bit, an odd data size without its pad byte (a careless writer).
        let third = wav_bytes(false, (1, 1, 8000, 1, 8), &[], &[128 + 1], 1);
        // 8-bit with its pad byte, then a partial frame the header counts (dropped).
        let mut fourth = wav_bytes(false, (1, 2, 8000, 2, 8), &[], &[128 + 2, 128 + 4, 9], 3);
        fourth.push(0);
        let joined: Vec<u8> = [first.clone(), second, third, fourth].concat();
        let want = [1.0, 2.0, 3.0, 5.0, 5.0, 256.0, 768.0];
        for step in [1, 3, 7, 4096] {
            assert_eq!(stream_all(&joined, step).unwrap(), want, "reads of {step}");
        }
        // The file reader agrees.
        assert_eq!(read(&joined).unwrap().samples, want);

        // Stray bytes after the data end the stream where they begin.
        let mut stray = first.clone();
        stray.extend(b"\0\0junk");
        assert_eq!(stream_all(&stray, 5).unwrap(), [1.0, 2.0, 3.0]);

        // Different rates are refused with the way to join them; a second header cut off by the
        // end of the stream names its recording.
        let fast = wav_bytes(false, (1, 1, 16000, 2, 16), &[], &pcm(&[7]), 2);
        let err = stream_all(&[first.clone(), fast.clone()].concat(), 2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("8000 Hz, then 16000 Hz in recording 2") && err.contains("sox"),
            "{err}"
        );
        // Bytes that cannot begin a WAV header are not audio, however few: not a header cut short.
        for not_wav in [&b"hello\n"[..], b"RIFF\0\0\0\0WX", b"R"] {
            let err = stream_all(not_wav, 1).unwrap_err().to_string();
            let cut_short = not_wav == b"R";
            assert_eq!(
                err.contains("ended inside its WAV header"),
                cut_short,
                "{err}"
            );
            assert_eq!(
                err.contains("does not start with a WAV header"),
                !cut_short,
                "{err}"
            );
        }
        let cut: Vec<u8> = [&first[..], &fast[..20]].concat();
        let err = stream_all(&cut, 2).unwrap_err().to_string();
        assert!(
            err.contains("recording 2 of those joined in the stream")
                && err.contains("ended inside its WAV header"),
            "{err}"
        );
    }
}
