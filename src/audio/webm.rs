//! WebM (Matroska) audio: Opus is what browsers record (`MediaRecorder`'s `audio/webm`), so what
//! web apps for speech practice and dictation hand over; Matroska files (`.mka`, `.mkv`: OBS's
//! default recording format, ffmpeg's) also carry AAC, Vorbis, MP3, FLAC or PCM. Our own demuxer,
//! small on purpose: the EBML elements down to the blocks of the first audio track, Segments and
//! Clusters of unknown size (a live recording never goes back to write them) included; the Opus
//! packets then go through [`super::opus`], the others through symphonia's decoders, PCM is read
//! as it lies. symphonia's Matroska reader (0.5) was tried first and panics on a file cut short.
//!
//! Element layout (Matroska spec): an ID (a variable-length integer with its length marker kept,
//! 1–4 bytes) and a size (a variable-length integer, 1–8 bytes; all value bits set: unknown), then
//! the data. Blocks start with the track number (a variable-length integer), a 16-bit timecode and
//! a flags byte whose bits 1–2 say how several frames are laced into one block.

use std::path::Path;

use symphonia::core::audio::{Channels, SampleBuffer};
use symphonia::core::codecs::{
    CodecParameters, DecoderOptions, CODEC_TYPE_AAC, CODEC_TYPE_FLAC, CODEC_TYPE_MP3,
    CODEC_TYPE_VORBIS,
};
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::Packet;

use super::container::check_damaged;
use super::opus::{OpusPackets, OPUS_RATE_HZ};
use super::{mono_from_blocks, ChannelChoice, Waveform, INT16_SCALE, MAX_CHANNELS};
use crate::error::{Error, Result};

/// The EBML magic every WebM and Matroska file starts with.
pub(crate) const MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const DISCARD_PADDING: u32 = 0x75A2;
const AUDIO: u32 = 0xE1;
const SAMPLING_FREQUENCY: u32 = 0xB5;
const CHANNELS: u32 = 0x9F;
const BIT_DEPTH: u32 = 0x6264;
const CODEC_DELAY: u32 = 0x56AA;

/// Matroska's track type of audio.
const AUDIO_TRACK: u64 = 2;

/// True when `bytes` start like a WebM or Matroska file.
pub(crate) fn is_webm(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// An element's header: its ID, where its data starts and how long it is (`None`: unknown size).
struct Header {
    id: u32,
    data_start: usize,
    size: Option<usize>,
}

/// The variable-length integer at `at`: its value (length marker removed, or kept for IDs) and its
/// length in bytes; `None` when it is invalid or runs past the end.
fn vint(bytes: &[u8], at: usize, keep_marker: bool) -> Option<(u64, usize)> {
    let first = *bytes.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let raw = bytes.get(at..at + len)?;
    let mut value = if keep_marker {
        u64::from(first)
    } else {
        u64::from(first) & (0xFF >> len)
    };
    for &b in &raw[1..] {
        value = (value << 8) | u64::from(b);
    }
    Some((value, len))
}

fn header(bytes: &[u8], at: usize) -> Option<Header> {
    let (id, id_len) = vint(bytes, at, true)?;
    if id_len > 4 {
        return None;
    }
    let (size, size_len) = vint(bytes, at + id_len, false)?;
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    Some(Header {
        id: id as u32,
        data_start: at + id_len + size_len,
        size: if unknown {
            None
        } else {
            usize::try_from(size).ok()
        },
    })
}

/// The first audio track: its number, codec ID, codec private data and the format its `Audio`
/// element declares (0 where it says nothing).
struct AudioTrack<'a> {
    number: u64,
    codec: String,
    private: &'a [u8],
    rate_hz: u32,
    channels: usize,
    bit_depth: u32,
    /// The codec's built-in delay (`CodecDelay`), nanoseconds: the encoder's priming samples.
    codec_delay_ns: u64,
}

/// The audio track among the `Tracks` element's data.
fn audio_track(data: &[u8]) -> Option<AudioTrack<'_>> {
    children(data).find_map(|(id, entry)| {
        if id != TRACK_ENTRY {
            return None;
        }
        let mut track = AudioTrack {
            number: 0,
            codec: String::new(),
            private: &[],
            rate_hz: 0,
            channels: 0,
            bit_depth: 0,
            codec_delay_ns: 0,
        };
        let mut kind = 0;
        for (id, value) in children(entry) {
            match id {
                TRACK_NUMBER => track.number = unsigned(value),
                TRACK_TYPE => kind = unsigned(value),
                CODEC_ID => {
                    track.codec = String::from_utf8_lossy(value)
                        .trim_end_matches('\0')
                        .to_string()
                }
                CODEC_PRIVATE => track.private = value,
                CODEC_DELAY => track.codec_delay_ns = unsigned(value),
                AUDIO => {
                    for (id, value) in children(value) {
                        match id {
                            SAMPLING_FREQUENCY => track.rate_hz = float(value),
                            CHANNELS => {
                                track.channels = usize::try_from(unsigned(value)).unwrap_or(0)
                            }
                            BIT_DEPTH => {
                                track.bit_depth = u32::try_from(unsigned(value)).unwrap_or(0)
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        (kind == AUDIO_TRACK).then_some(track)
    })
}

/// The child elements of a master element's `data` with known sizes, as `(id, data)`, up to the
/// first that does not fit.
fn children(data: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let h = header(data, at)?;
        let end = h.data_start.checked_add(h.size?)?;
        let value = data.get(h.data_start..end)?;
        at = end;
        Some((h.id, value))
    })
}

fn unsigned(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |v, &b| (v << 8) | u64::from(b))
}

/// A Matroska float (4 or 8 bytes, big-endian) as whole hertz; 0 when it is neither or not a
/// sensible rate.
fn float(bytes: &[u8]) -> u32 {
    let value = match bytes.len() {
        4 => f64::from(f32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
        8 => f64::from_be_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
        ]),
        _ => return 0,
    };
    if value.is_finite() && (1.0..=1e6).contains(&value) {
        value.round() as u32
    } else {
        0
    }
}

/// The frames of one block of `track` (a SimpleBlock's or Block's data), appended to `frames`;
/// `Err` with the reason when the block is malformed.
fn block_frames<'a>(
    data: &'a [u8],
    track: u64,
    frames: &mut Vec<&'a [u8]>,
) -> std::result::Result<(), String> {
    let (number, len) = vint(data, 0, false).ok_or("a block without a track number")?;
    if number != track {
        return Ok(());
    }
    let flags = *data.get(len + 2).ok_or("a block cut inside its header")?;
    let mut at = len + 3;
    let lacing = (flags >> 1) & 0x03;
    if lacing == 0 {
        frames.push(&data[at..]);
        return Ok(());
    }
    let count = usize::from(
        *data
            .get(at)
            .ok_or("a laced block without its frame count")?,
    ) + 1;
    at += 1;
    let mut sizes = Vec::with_capacity(count);
    match lacing {
        // Xiph lacing: each size but the last as a run of 255s and a final byte.
        1 => {
            for _ in 1..count {
                let mut size = 0usize;
                loop {
                    let b = *data.get(at).ok_or("a block cut inside its lacing")?;
                    at += 1;
                    size += usize::from(b);
                    if b != 255 {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
        // EBML lacing: the first size, then signed differences.
        3 => {
            let (first, n) = vint(data, at, false).ok_or("a block cut inside its lacing")?;
            at += n;
            let mut size = first as i64;
            sizes.push(first as usize);
            for _ in 2..count {
                let (raw, n) = vint(data, at, false).ok_or("a block cut inside its lacing")?;
                at += n;
                let bias = (1i64 << (7 * n - 1)) - 1;
                size += raw as i64 - bias;
                sizes.push(usize::try_from(size).map_err(|_| "a negative laced frame size")?);
            }
        }
        // Fixed lacing: equal frames.
        _ => {
            let each = (data.len().saturating_sub(at)) / count;
            sizes.extend(std::iter::repeat_n(each, count - 1));
        }
    }
    for size in sizes {
        let frame = data
            .get(at..at + size)
            .ok_or("a laced frame runs past its block")?;
        frames.push(frame);
        at += size;
    }
    frames.push(data.get(at..).ok_or("a laced frame runs past its block")?);
    Ok(())
}

/// A BlockGroup's `DiscardPadding`: nanoseconds of decoded audio to drop from the end of its
/// block (the encoder's padding of the last packet; negative values, from the start, are not
/// written by the encoders seen and are ignored).
fn discard_padding_ns(group: &[u8]) -> Option<u64> {
    let (_, data) = children(group).find(|&(id, _)| id == DISCARD_PADDING)?;
    if data.is_empty() || data.len() > 8 {
        return None;
    }
    // A big-endian signed integer of 1-8 bytes.
    let negative = data[0] & 0x80 != 0;
    let value = data.iter().fold(if negative { -1i64 } else { 0 }, |v, &b| {
        (v << 8) | i64::from(b)
    });
    u64::try_from(value).ok()
}

/// A demuxed track: its packets in order, and the nanoseconds of padding to drop from the end of
/// some of them (index into the packets, nanoseconds).
type Demuxed<'a> = (AudioTrack<'a>, Vec<&'a [u8]>, Vec<(usize, u64)>);

/// The first audio track of a WebM/Matroska file and its packets in order.
fn demux<'a>(path: &Path, bytes: &'a [u8]) -> Result<Demuxed<'a>> {
    let malformed = |reason: String| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason,
    };
    let mut track: Option<AudioTrack> = None;
    let mut packets: Vec<&[u8]> = Vec::new();
    let mut discards: Vec<(usize, u64)> = Vec::new();
    let mut at = 0;
    // A flat walk: Segments and Clusters are entered whatever their size (unknown in a live
    // recording), Tracks and blocks read, everything else skipped.
    while at < bytes.len() {
        let Some(h) = header(bytes, at) else {
            return Err(malformed(format!(
                "data cut short: the file ends inside an element header at byte {at}"
            )));
        };
        if h.id == SEGMENT || h.id == CLUSTER {
            at = h.data_start;
            continue;
        }
        let Some(size) = h.size else {
            return Err(malformed(format!(
                "element {:#X} at byte {at} has an unknown size",
                h.id
            )));
        };
        let end = h.data_start.saturating_add(size);
        let Some(data) = bytes.get(h.data_start..end) else {
            return Err(malformed(format!(
                "data cut short: an element at byte {at} declares {size} bytes, the file ends first"
            )));
        };
        match h.id {
            TRACKS if track.is_none() => track = audio_track(data),
            SIMPLE_BLOCK | BLOCK_GROUP => {
                let Some(track) = &track else {
                    return Err(malformed("a block before the track list".to_string()));
                };
                let block = if h.id == SIMPLE_BLOCK {
                    Some(data)
                } else {
                    children(data).find(|&(id, _)| id == BLOCK).map(|(_, b)| b)
                };
                if let Some(block) = block {
                    let before = packets.len();
                    block_frames(block, track.number, &mut packets)
                        .map_err(|e| malformed(e.to_string()))?;
                    if h.id == BLOCK_GROUP && packets.len() > before {
                        if let Some(ns) = discard_padding_ns(data) {
                            discards.push((packets.len() - 1, ns));
                        }
                    }
                }
            }
            _ => {}
        }
        at = end;
    }
    let track = track.ok_or_else(|| malformed("the file has no audio track".to_string()))?;
    Ok((track, packets, discards))
}

/// Read a WebM/Matroska file held in memory (`path` names it in errors) to mono int16-scale
/// samples at the stream's rate (48 kHz for Opus).
pub(crate) fn read_webm(path: &Path, bytes: &[u8], channel: ChannelChoice) -> Result<Waveform> {
    let (track, packets, discards) = demux(path, bytes)?;
    if packets.is_empty() {
        return Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: "the audio track holds no packets".to_string(),
        });
    }
    // A panic in a decoder on a damaged packet stays this file's error, as in the other readers.
    super::container::guarded(|| match track.codec.as_str() {
        "A_OPUS" => decode_opus(path, &track, &packets, &discards, channel),
        "A_PCM/INT/LIT" | "A_PCM/FLOAT/IEEE" => decode_pcm(path, &track, &packets, channel),
        _ => decode_with_symphonia(path, &track, &packets, &discards, channel),
    })
    .unwrap_or_else(|message| {
        Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!("the file is damaged: its decoder failed ({message})"),
        })
    })
}

/// What symphonia needs to decode `track`'s packets, or `None` for a codec it is not asked to.
fn symphonia_parameters(track: &AudioTrack<'_>) -> Option<CodecParameters> {
    let mut parameters = CodecParameters::new();
    match track.codec.as_str() {
        "A_VORBIS" => {
            let (identification, setup) = vorbis_headers(track.private)?;
            let mut headers = identification.to_vec();
            headers.extend_from_slice(setup);
            parameters
                .for_codec(CODEC_TYPE_VORBIS)
                .with_extra_data(headers.into_boxed_slice());
        }
        // `A_AAC` carries the AudioSpecificConfig; the older `A_AAC/MPEG4/LC` and kin none,
        // where the decoder assumes AAC-LC at the track's rate and channels.
        codec if codec.starts_with("A_AAC") => {
            parameters.for_codec(CODEC_TYPE_AAC);
            if track.private.len() >= 2 {
                parameters.with_extra_data(track.private.into());
            }
        }
        "A_MPEG/L3" => {
            parameters.for_codec(CODEC_TYPE_MP3);
        }
        // `fLaC`, then the metadata blocks, STREAMINFO (34 bytes after its 4-byte header) first.
        "A_FLAC" => {
            let info = track
                .private
                .strip_prefix(b"fLaC")
                .and_then(|blocks| blocks.get(4..38))?;
            parameters
                .for_codec(CODEC_TYPE_FLAC)
                .with_extra_data(info.into());
        }
        _ => return None,
    }
    if track.rate_hz > 0 {
        parameters.with_sample_rate(track.rate_hz);
    }
    if (1..=32).contains(&track.channels) {
        parameters.with_channels(Channels::from_bits_truncate(
            (1u64 << track.channels).wrapping_sub(1) as u32,
        ));
    }
    Some(parameters)
}

/// A Vorbis track's identification and setup headers from its CodecPrivate: the three header
/// packets Xiph-laced (a count less one, the first two sizes as runs of 255s, then the packets).
fn vorbis_headers(private: &[u8]) -> Option<(&[u8], &[u8])> {
    if *private.first()? != 2 {
        return None;
    }
    let mut at = 1;
    let mut sizes = [0usize; 2];
    for size in &mut sizes {
        loop {
            let b = *private.get(at)?;
            at += 1;
            *size += usize::from(b);
            if b != 255 {
                break;
            }
        }
    }
    let identification = private.get(at..at.checked_add(sizes[0])?)?;
    let setup_start = at.checked_add(sizes[0])?.checked_add(sizes[1])?;
    let setup = private.get(setup_start..)?;
    Some((identification, setup))
}

/// The error for a codec this reader does not decode.
fn unsupported_codec(path: &Path, track: &AudioTrack<'_>) -> Error {
    Error::UnsupportedEncoding {
        path: path.to_path_buf(),
        encoding: format!("WebM/Matroska audio in codec {}", track.codec),
        hint: Some(
            "Opus, Vorbis, AAC, MP3, FLAC and PCM in WebM/Matroska are read; convert with e.g. \
             `ffmpeg -i in.mkv out.wav`"
                .to_string(),
        ),
    }
}

/// Decode `track`'s packets with symphonia's decoder for its codec, to mono, gapless: the padding
/// of a packet's end given as `DiscardPadding` (`discards`) is cut, and for AAC and MP3 the
/// encoder's priming given as `CodecDelay`, as Matroska players cut them. (Vorbis's decoder starts
/// on time by itself: its first packet only primes the overlap; ffmpeg's `CodecDelay` for it would
/// cut the speech's first 16 ms.)
fn decode_with_symphonia(
    path: &Path,
    track: &AudioTrack<'_>,
    packets: &[&[u8]],
    discards: &[(usize, u64)],
    channel: ChannelChoice,
) -> Result<Waveform> {
    let malformed = |reason: String| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason,
    };
    let parameters = symphonia_parameters(track).ok_or_else(|| unsupported_codec(path, track))?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&parameters, &DecoderOptions::default())
        .map_err(|e| malformed(format!("its {} stream does not open ({e})", track.codec)))?;
    let primed = track.codec.starts_with("A_AAC") || track.codec == "A_MPEG/L3";
    let mut rate = 0;
    let decode = |sink: &mut dyn FnMut(&[f32], usize)| -> Result<()> {
        let mut damaged = 0;
        let mut scaled = Vec::new();
        // Frames still to drop from the start, once the rate is known.
        let mut priming: Option<usize> = None;
        let mut discards = discards.iter().peekable();
        for (index, data) in packets.iter().enumerate() {
            let packet = Packet::new_from_slice(0, index as u64, 0, data);
            let decoded = match decoder.decode(&packet) {
                Ok(decoded) => decoded,
                // A damaged frame: skip it as players do, and say so if there were many.
                Err(DecodeError::DecodeError(_)) => {
                    damaged += 1;
                    continue;
                }
                Err(e) => return Err(malformed(format!("decoding failed: {e}"))),
            };
            let spec = *decoded.spec();
            let channels = spec.channels.count();
            if channels == 0 || channels > MAX_CHANNELS {
                return Err(malformed(format!("{channels} channels")));
            }
            match rate {
                0 => rate = spec.rate,
                r if r != spec.rate => {
                    return Err(malformed(format!(
                        "the stream changes from {r} Hz to {} Hz",
                        spec.rate
                    )))
                }
                _ => {}
            }
            let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
            buffer.copy_interleaved_ref(decoded);
            scaled.clear();
            scaled.extend(buffer.samples().iter().map(|&s| s * INT16_SCALE));
            if primed {
                let left = priming.get_or_insert_with(|| frames_in(track.codec_delay_ns, rate));
                let drop = (*left).min(scaled.len() / channels);
                scaled.drain(..drop * channels);
                *left -= drop;
            }
            cut_padding(&mut discards, index, rate, channels, &mut scaled);
            sink(&scaled, channels);
        }
        check_damaged(path, damaged, packets.len())
    };
    let (mono, ()) = mono_from_blocks(path, channel, decode)?;
    if rate == 0 {
        return Err(malformed("no packet decoded".to_string()));
    }
    Ok(Waveform {
        samples: mono,
        sample_rate_hz: rate,
    })
}

/// Little-endian integer (`A_PCM/INT/LIT`: 16, 24 or 32 bits) or float (`A_PCM/FLOAT/IEEE`: 32 or
/// 64 bits) PCM, to mono.
fn decode_pcm(
    path: &Path,
    track: &AudioTrack<'_>,
    packets: &[&[u8]],
    channel: ChannelChoice,
) -> Result<Waveform> {
    let float = track.codec == "A_PCM/FLOAT/IEEE";
    let width = match (float, track.bit_depth) {
        (false, 16) => 2,
        (false, 24) => 3,
        (false | true, 32) => 4,
        (true, 64) => 8,
        _ => {
            return Err(Error::UnsupportedEncoding {
                path: path.to_path_buf(),
                encoding: format!("{} with {} bits", track.codec, track.bit_depth),
                hint: Some("convert with e.g. `ffmpeg -i in.mkv out.wav`".to_string()),
            })
        }
    };
    let channels = track.channels;
    if track.rate_hz == 0 || channels == 0 || channels > MAX_CHANNELS {
        return Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!(
                "its PCM track declares {} Hz and {channels} channels",
                track.rate_hz
            ),
        });
    }
    let sample = |b: &[u8]| -> f32 {
        match (float, b.len()) {
            (false, 2) => f32::from(i16::from_le_bytes([b[0], b[1]])),
            (false, 3) => (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 256.0,
            (false, _) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 65536.0,
            (true, 4) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * INT16_SCALE,
            (true, _) => {
                (f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                    * f64::from(INT16_SCALE)) as f32
            }
        }
    };
    let decode = |sink: &mut dyn FnMut(&[f32], usize)| -> Result<()> {
        let mut scaled = Vec::new();
        for data in packets {
            scaled.clear();
            // A packet holds whole frames; a ragged end (a damaged block) is left out.
            let whole = data.len() / (width * channels) * width * channels;
            scaled.extend(data[..whole].chunks_exact(width).map(sample));
            if scaled.iter().any(|x| !x.is_finite()) {
                return Err(Error::MalformedAudio {
                    path: path.to_path_buf(),
                    reason: "its float samples include NaN or infinity".to_string(),
                });
            }
            sink(&scaled, channels);
        }
        Ok(())
    };
    let (mono, ()) = mono_from_blocks(path, channel, decode)?;
    Ok(Waveform {
        samples: mono,
        sample_rate_hz: track.rate_hz,
    })
}

/// Frames of `rate` in `ns` nanoseconds.
fn frames_in(ns: u64, rate: u32) -> usize {
    usize::try_from(u128::from(ns) * u128::from(rate) / 1_000_000_000).unwrap_or(usize::MAX)
}

/// Cut packet `index`'s `DiscardPadding` (the next of `discards`, as (packet, nanoseconds), when
/// it is this packet's) from the end of its interleaved `samples` at `rate`; entries of earlier
/// packets (skipped as damaged) are passed over.
fn cut_padding(
    discards: &mut std::iter::Peekable<std::slice::Iter<'_, (usize, u64)>>,
    index: usize,
    rate: u32,
    channels: usize,
    samples: &mut Vec<f32>,
) {
    while discards.next_if(|&&(at, _)| at < index).is_some() {}
    if let Some(&(_, ns)) = discards.next_if(|&&(at, _)| at == index) {
        let drop = frames_in(ns, rate).saturating_mul(channels);
        samples.truncate(samples.len().saturating_sub(drop));
    }
}

/// Decode the Opus packets of `track` to mono, each packet's padding (`discards`) dropped.
fn decode_opus(
    path: &Path,
    track: &AudioTrack<'_>,
    packets: &[&[u8]],
    discards: &[(usize, u64)],
    channel: ChannelChoice,
) -> Result<Waveform> {
    // The end: the last block's DiscardPadding when the muxer wrote one (ffmpeg, browsers' newer
    // recorders); without it at most one packet's padding (≤ 120 ms) stays at the end.
    let decode = |sink: &mut dyn FnMut(&[f32], usize)| -> Result<()> {
        let mut decoder = OpusPackets::new(path, track.private, None)?;
        let mut samples = Vec::new();
        let mut damaged = 0;
        let mut discards = discards.iter().peekable();
        for (index, packet) in packets.iter().enumerate() {
            damaged += usize::from(decoder.decode(packet, &mut samples));
            let channels = decoder.channels();
            cut_padding(&mut discards, index, OPUS_RATE_HZ, channels, &mut samples);
            sink(&samples, channels);
        }
        check_damaged(path, damaged, packets.len())
    };
    let (mono, ()) = mono_from_blocks(path, channel, decode)?;
    Ok(Waveform {
        samples: mono,
        sample_rate_hz: OPUS_RATE_HZ,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element with a known size (one-byte IDs are written as given, sizes as 8-byte vints).
    fn element(id: u32, data: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = id
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x01);
        out.extend((data.len() as u64).to_be_bytes()[1..].iter());
        out.extend(data);
        out
    }

    /// An element of unknown size (a live recording's Segment or Cluster).
    fn open_element(id: u32) -> Vec<u8> {
        let mut out: Vec<u8> = id
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0xFF);
        out
    }

    fn fixture() -> Vec<u8> {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fsdd_7_jackson_0_8k.webm");
        std::fs::read(path).expect("the WebM fixture")
    }

    #[test]
    fn vorbis_headers_are_unlaced_from_the_codec_private_data() {
        // Three packets: identification (3 bytes), comment (300: a run of 255 and 45), setup.
        let mut private = vec![2, 3, 255, 45];
        private.extend([1u8; 3]);
        private.extend([2u8; 300]);
        private.extend([3u8; 5]);
        let (identification, setup) = vorbis_headers(&private).expect("three packets");
        assert_eq!(identification, &[1u8; 3]);
        assert_eq!(setup, &[3u8; 5]);
        // Not three packets, or sizes past the end: none.
        assert!(vorbis_headers(&[1, 3, 0, 0, 0]).is_none());
        assert!(vorbis_headers(&[2, 3, 255]).is_none());
        assert!(vorbis_headers(&[2, 200, 200, 1]).is_none());
        assert!(vorbis_headers(&[]).is_none());
    }

    #[test]
    fn variable_length_integers_and_unknown_sizes() {
        assert_eq!(vint(&[0x81], 0, false), Some((1, 1)));
        assert_eq!(vint(&[0x40, 0x02], 0, false), Some((2, 2)));
        assert_eq!(
            vint(&[0x1A, 0x45, 0xDF, 0xA3], 0, true),
            Some((0x1A45_DFA3, 4))
        );
        assert_eq!(vint(&[0x00], 0, false), None);
        assert_eq!(vint(&[0x40], 0, false), None);
        let h = header(&[0xA3, 0xFF], 0).expect("a header");
        assert_eq!((h.id, h.data_start, h.size), (0xA3, 2, None));
    }

    #[test]
    fn xiph_ebml_and_fixed_lacing_split_a_block_into_its_frames() {
        let frames = |block: &[u8]| {
            let mut out = Vec::new();
            block_frames(block, 1, &mut out)
                .map(|_| out.iter().map(|f| f.to_vec()).collect::<Vec<_>>())
        };
        let header = |flags: u8| vec![0x81, 0, 0, flags];
        // Xiph: three frames of 300, 2 and 1 bytes (300 = 255 + 45).
        let mut xiph = header(0x02);
        xiph.extend([2, 255, 45, 2]);
        xiph.extend(vec![7; 300]);
        xiph.extend([8, 8, 9]);
        assert_eq!(
            frames(&xiph).unwrap(),
            vec![vec![7; 300], vec![8, 8], vec![9]]
        );
        // EBML: sizes 3, then 3 - 1 = 2 (a difference of -1 with the one-byte bias of 63), then the rest.
        let mut ebml = header(0x06);
        ebml.extend([2, 0x83, 0x80 | 62]);
        ebml.extend([1, 1, 1, 2, 2, 3]);
        assert_eq!(
            frames(&ebml).unwrap(),
            vec![vec![1, 1, 1], vec![2, 2], vec![3]]
        );
        // Fixed: two equal frames.
        let mut fixed = header(0x04);
        fixed.extend([1, 5, 5, 6, 6]);
        assert_eq!(frames(&fixed).unwrap(), vec![vec![5, 5], vec![6, 6]]);
        // Another track's block gives nothing; a lacing past the block is an error.
        assert_eq!(frames(&[0x82, 0, 0, 0, 1]).unwrap(), Vec::<Vec<u8>>::new());
        let mut bad = header(0x02);
        bad.extend([1, 200, 1]);
        assert!(frames(&bad).is_err());
    }

    #[test]
    fn a_live_recordings_layout_decodes_as_the_finished_file() -> Result<()> {
        // The fixture (ffmpeg: known sizes, one frame per SimpleBlock) rewritten as a browser
        // writes while recording: Segment and Clusters of unknown size, frames laced in pairs,
        // BlockGroups among SimpleBlocks.
        let bytes = fixture();
        let path = Path::new("live.webm");
        let (track, packets, discards) = demux(path, &bytes)?;
        assert_eq!(track.codec, "A_OPUS");
        // ffmpeg marks the last packet's padding (DiscardPadding); the rewrite keeps it.
        let &[(last, padding_ns)] = discards.as_slice() else {
            panic!("one DiscardPadding expected, found {discards:?}");
        };
        assert_eq!(last, packets.len() - 1);
        let mut entry = element(TRACK_NUMBER, &[1]);
        entry.extend(element(TRACK_TYPE, &[2]));
        entry.extend(element(CODEC_ID, b"A_OPUS"));
        entry.extend(element(CODEC_PRIVATE, track.private));
        let mut live = element(0x1A45_DFA3, &element(0x4282, b"webm"));
        live.extend(open_element(SEGMENT));
        live.extend(element(TRACKS, &element(TRACK_ENTRY, &entry)));
        for (i, pair) in packets.chunks(2).enumerate() {
            if i % 4 == 0 {
                live.extend(open_element(CLUSTER));
                live.extend(element(0xE7, &[i as u8]));
            }
            let mut block = vec![0x81, 0, 0];
            if let [a, b] = pair {
                block.push(0x02); // Xiph lacing
                block.push(1);
                block.extend(std::iter::repeat_n(255u8, a.len() / 255));
                block.push((a.len() % 255) as u8);
                block.extend(*a);
                block.extend(*b);
            } else {
                block.push(0);
                block.extend(pair[0]);
            }
            if (i + 1) * 2 >= packets.len() {
                let mut group = element(BLOCK, &block);
                group.extend(element(DISCARD_PADDING, &padding_ns.to_be_bytes()));
                live.extend(element(BLOCK_GROUP, &group));
            } else if i % 3 == 0 {
                live.extend(element(BLOCK_GROUP, &element(BLOCK, &block)));
            } else {
                live.extend(element(SIMPLE_BLOCK, &block));
            }
        }
        let finished = read_webm(Path::new("finished.webm"), &bytes, ChannelChoice::Mixed)?;
        let recorded = read_webm(path, &live, ChannelChoice::Mixed)?;
        assert_eq!(recorded, finished);
        assert_eq!(recorded.sample_rate_hz, OPUS_RATE_HZ);
        Ok(())
    }

    #[test]
    fn other_codecs_and_damaged_files_are_refused_with_the_reason() {
        let bytes = fixture();
        let path = Path::new("t.webm");
        let cut =
            read_webm(path, &bytes[..bytes.len() * 6 / 10], ChannelChoice::Mixed).unwrap_err();
        assert!(cut.to_string().contains("cut short"), "{cut}");
        let mut entry = element(TRACK_NUMBER, &[1]);
        entry.extend(element(TRACK_TYPE, &[2]));
        entry.extend(element(CODEC_ID, b"A_VORBIS"));
        let mut vorbis = open_element(SEGMENT);
        vorbis.extend(element(TRACKS, &element(TRACK_ENTRY, &entry)));
        vorbis.extend(element(SIMPLE_BLOCK, &[0x81, 0, 0, 0, 1, 2]));
        let refused = read_webm(path, &vorbis, ChannelChoice::Mixed).unwrap_err();
        assert!(refused.to_string().contains("A_VORBIS"), "{refused}");
        let no_track = read_webm(
            path,
            &element(SIMPLE_BLOCK, &[0x81, 0, 0, 0]),
            ChannelChoice::Mixed,
        )
        .unwrap_err();
        assert!(no_track.to_string().contains("track"), "{no_track}");
    }
}
