//! Other containers through symphonia: FLAC, Ogg Vorbis or Opus, MP3, AIFF/AIFC, CAF and MP4/M4A (AAC:
//! phones' voice memos), decoded packet by packet (Opus by [`super::opus`]) and mixed to mono at int16 scale like every other reader. WAV and SPHERE keep their own readers
//! (their header checks and error messages are ours).

use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{
    CodecParameters, CodecType, DecoderOptions, CODEC_TYPE_AAC, CODEC_TYPE_ALAC, CODEC_TYPE_MP1,
    CODEC_TYPE_MP2, CODEC_TYPE_MP3, CODEC_TYPE_NULL, CODEC_TYPE_OPUS, CODEC_TYPE_VORBIS,
};
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::opus::{OpusPackets, OPUS_RATE_HZ};
use super::{
    mono_from_blocks, ChannelChoice, Waveform, INT16_SCALE, MAX_AUDIO_BYTES, MAX_CHANNELS,
};
use crate::error::{Error, Result};

/// True when `bytes` start like a FLAC, Ogg, MP3 (ID3-tagged or a bare MPEG audio frame), AIFF/AIFC,
/// CAF, MP4/M4A or raw AAC (ADTS) file.
pub(crate) fn is_container(bytes: &[u8]) -> bool {
    bytes.starts_with(b"fLaC")
        || bytes.starts_with(b"OggS")
        || bytes.starts_with(b"caff")
        || (bytes.starts_with(b"FORM") && bytes.len() >= 12 && matches!(&bytes[8..12], b"AIFF" | b"AIFC"))
        // ISO base media (MP4, M4A): the first box is `ftyp`.
        || (bytes.len() >= 8 && &bytes[4..8] == b"ftyp")
        || bytes.starts_with(b"ID3")
        // MPEG audio frame sync: 11 set bits, then a layer that is not "reserved".
        || (bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0 && bytes[1] & 0x06 != 0)
        || is_adts(bytes)
}

/// True when `bytes` start with an ADTS header (raw AAC, `.aac`, as ffmpeg, phones and
/// recorders write it): a 12-bit sync word, layer 0, a known sampling-rate index and a frame
/// length that covers the 7- or 9-byte header.
fn is_adts(bytes: &[u8]) -> bool {
    adts_frame_length(bytes).is_some()
}

/// The length in bytes of the ADTS frame whose header `bytes` start with (see [`is_adts`]).
fn adts_frame_length(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < 7 || bytes[0] != 0xFF || bytes[1] & 0xF6 != 0xF0 {
        return None;
    }
    let rate_index = (bytes[2] >> 2) & 0x0F;
    let frame_length =
        (u64::from(bytes[3] & 0x03) << 11) | (u64::from(bytes[4]) << 3) | u64::from(bytes[5] >> 5);
    (rate_index < 13 && frame_length >= 7).then_some(frame_length)
}

/// The number of frames of a raw AAC (ADTS) stream, counted by walking their headers (`None` for
/// other files). ADTS declares no length, and symphonia estimates one from the first frames' bit
/// rate (which says nothing about a cut), so the count is the length to hold the decoding to. A
/// frame that runs past the file's end is a cut (an interrupted download or copy), and an `Err`
/// that says where; trailing bytes that are not a frame (a tag) end the count.
fn adts_frame_count(source: &mut dyn MediaSource) -> std::result::Result<Option<u64>, String> {
    use std::io::{Read, Seek};
    let Some(len) = source.byte_len() else {
        return Ok(None);
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 16, source);
    // An ID3v2 tag first (ffmpeg's `-write_id3v2`, radio recordings): its size is four 7-bit
    // bytes, plus 10 for its header and 10 more with a footer.
    let mut id3 = [0u8; 10];
    if reader.read_exact(&mut id3).is_err() {
        return Ok(None);
    }
    let mut at = if id3.starts_with(b"ID3") {
        let size = id3[6..10]
            .iter()
            .fold(0u64, |size, &byte| (size << 7) | u64::from(byte & 0x7F));
        10 + size + if id3[5] & 0x10 != 0 { 10 } else { 0 }
    } else {
        0
    };
    if reader.seek(std::io::SeekFrom::Start(at)).is_err() {
        return Ok(None);
    }
    let mut header = [0u8; 7];
    let mut frames = 0u64;
    while at + 7 <= len {
        if reader.read_exact(&mut header).is_err() {
            break;
        }
        let Some(frame_length) = adts_frame_length(&header) else {
            break;
        };
        if at + frame_length > len {
            return Err(format!(
                "its AAC frame {} at byte {at} needs {frame_length} bytes, {} are left",
                frames + 1,
                len - at
            ));
        }
        if reader.seek_relative(frame_length as i64 - 7).is_err() {
            break;
        }
        at += frame_length;
        frames += 1;
    }
    if at < len && frames > 0 && (len - at) < 7 {
        let mut tail = [0u8; 7];
        let left = (len - at) as usize;
        if reader.read_exact(&mut tail[..left]).is_ok() && tail[0] == 0xFF {
            return Err(format!(
                "its last AAC frame header at byte {at} is {left} bytes of 7"
            ));
        }
    }
    Ok((frames > 0).then_some(frames))
}

/// Samples per channel a lossy stream (AAC, Vorbis, Opus) may fall short of its declared length
/// (codec delay and padding, a partial last frame). PCM, FLAC and ADPCM decode exactly (ADPCM to within
/// its last block): for them any shortfall is a cut.
const LOSSY_LENGTH_SLACK: u64 = 2304;

/// The same for codecs that decode exactly: symphonia 0.5's AIFF reader counts the 8 bytes of the
/// `SSND` chunk's offset and block-size fields as samples (a 3457-sample file declares 3461).
const EXACT_LENGTH_SLACK: u64 = 16;

/// The same for MPEG audio, whose declared length (the Xing header's frame count, trusted only
/// beside a LAME/Info extension) is counted in whole frames: one frame. (With 2304, an MP3 cut to
/// 60 % of its bytes once passed as whole.)
const MPEG_LENGTH_SLACK: u64 = 1152;

/// MPEG-1/2 audio layers I-III (MP3 and its elders).
fn is_mpeg_audio(codec: CodecType) -> bool {
    [CODEC_TYPE_MP1, CODEC_TYPE_MP2, CODEC_TYPE_MP3].contains(&codec)
}

/// Frames in an ALAC packet as encoders write them (the cookie's default frame length).
const ALAC_FRAMES_PER_PACKET: u64 = 4096;

/// How far a decoded stream of `codec` may fall short of its declared length.
fn length_slack(codec: CodecType, frames_per_block: Option<u64>) -> u64 {
    if is_mpeg_audio(codec) {
        return MPEG_LENGTH_SLACK;
    }
    let lossy = [CODEC_TYPE_AAC, CODEC_TYPE_VORBIS, CODEC_TYPE_OPUS];
    if lossy.contains(&codec) {
        LOSSY_LENGTH_SLACK
    } else if codec == CODEC_TYPE_ALAC {
        // A CAF's packet table may count whole packets of ALAC's 4096 frames where the last one
        // holds fewer (ffmpeg's): one packet.
        ALAC_FRAMES_PER_PACKET
    } else {
        frames_per_block.unwrap_or(0).max(EXACT_LENGTH_SLACK)
    }
}

/// The reason given for a file that ends early: an interrupted download or copy.
const CUT_SHORT: &str = "data cut short: the file ends";

fn is_end_of_file(error: &DecodeError) -> bool {
    matches!(error, DecodeError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof)
}

/// Most decoded samples (all channels) kept: as many as the largest WAV read holds as int16.
const MAX_DECODED_SAMPLES: usize = (MAX_AUDIO_BYTES / 2) as usize;

/// Decode a FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF or MP4 file held in memory.
pub(crate) fn read_container(
    path: &Path,
    bytes: &[u8],
    channel: ChannelChoice,
) -> Result<Waveform> {
    let mut bytes = bytes.to_vec();
    fill_streamed_aiff_sizes(&mut bytes);
    read_container_from(
        path,
        &|| Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
        channel,
    )
}

/// An AIFF written to a pipe cannot go back to fill in its sizes: sox leaves placeholders
/// (`0x7f000000` and up), ffmpeg zeros. Held whole (standard input), its real sizes are known:
/// the FORM and SSND sizes run to the end of the bytes and the frame count follows from them.
/// Other bytes are left alone.
fn fill_streamed_aiff_sizes(bytes: &mut [u8]) {
    let be_u32 = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    if bytes.len() < 12 || &bytes[..4] != b"FORM" || !matches!(&bytes[8..12], b"AIFF" | b"AIFC") {
        return;
    }
    let Some(form) = be_u32(bytes, 4) else { return };
    let placeholder = |size: u32| size == 0 || size >= 0x7f00_0000;
    if u64::from(form) + 8 == bytes.len() as u64 || !placeholder(form) {
        return;
    }
    // The chunks before SSND (COMM, COMT, ...) have their sizes; SSND runs to the end.
    let (mut at, mut comm, mut ssnd) = (12usize, None, None);
    while at + 8 <= bytes.len() {
        let Some(size) = be_u32(bytes, at + 4) else {
            return;
        };
        match &bytes[at..at + 4] {
            b"COMM" => comm = Some(at),
            b"SSND" => {
                ssnd = Some(at);
                break;
            }
            _ => {}
        }
        at += 8 + size as usize + (size as usize & 1);
    }
    let (Some(comm), Some(ssnd)) = (comm, ssnd) else {
        return;
    };
    let (Some(channels), Some(bits)) = (
        bytes.get(comm + 8..comm + 10),
        bytes.get(comm + 14..comm + 16),
    ) else {
        return;
    };
    let channels = u32::from(u16::from_be_bytes([channels[0], channels[1]]));
    let bytes_per_frame = channels * u32::from(u16::from_be_bytes([bits[0], bits[1]])).div_ceil(8);
    let Some(offset) = be_u32(bytes, ssnd + 8) else {
        return;
    };
    let ssnd_size = (bytes.len() - ssnd - 8) as u64;
    let sound = ssnd_size.saturating_sub(8 + u64::from(offset));
    if bytes_per_frame == 0 || ssnd_size > u64::from(u32::MAX) {
        return;
    }
    let frames = (sound / u64::from(bytes_per_frame)) as u32;
    let len = bytes.len() as u32;
    bytes[4..8].copy_from_slice(&(len - 8).to_be_bytes());
    bytes[comm + 10..comm + 14].copy_from_slice(&frames.to_be_bytes());
    bytes[ssnd + 4..ssnd + 8].copy_from_slice(&(ssnd_size as u32).to_be_bytes());
}

/// [`read_container`] of a file, decoded as it is read from disk (its compressed bytes are never
/// held whole: an hour of stereo FLAC is 124 MB, and was held twice).
pub(crate) fn read_container_file(path: &Path, channel: ChannelChoice) -> Result<Waveform> {
    read_container_from(
        path,
        &|| {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            Ok(Box::new(file))
        },
        channel,
    )
}

/// Where a container's bytes come from: opened anew for each decoding pass.
type OpenSource<'a> = dyn Fn() -> Result<Box<dyn MediaSource>> + 'a;

fn read_container_from(
    path: &Path,
    open: &OpenSource<'_>,
    channel: ChannelChoice,
) -> Result<Waveform> {
    // Channels are averaged packet by packet: an hour of decoded stereo is never held whole.
    let (samples, (rate, _)) =
        mono_from_blocks(path, channel, |sink| decode_stream(path, open, sink))?;
    Ok(Waveform {
        samples,
        sample_rate_hz: rate,
    })
}

/// The granule position of an Ogg file's last page (`None` when it cannot be read): for Opus, the number of 48 kHz samples through the end of the stream, pre-skip
/// included.
fn last_granule_position(source: &mut dyn MediaSource) -> Option<u64> {
    use std::io::{Read, SeekFrom};
    // A page is at most 27 + 255 + 255 × 255 bytes: the last one starts within this of the end.
    const MAX_PAGE_BYTES: u64 = 27 + 255 + 255 * 255;
    let mut magic = [0u8; 4];
    source.read_exact(&mut magic).ok()?;
    if &magic != b"OggS" {
        return None;
    }
    let len = source.byte_len()?;
    let from = len.saturating_sub(MAX_PAGE_BYTES);
    source.seek(SeekFrom::Start(from)).ok()?;
    let mut tail = Vec::new();
    source.take(MAX_PAGE_BYTES).read_to_end(&mut tail).ok()?;
    // The last page is the one whose header and segments end exactly at the end of the file (a
    // capture pattern inside compressed data would not line up).
    (0..tail.len().saturating_sub(26)).rev().find_map(|at| {
        let page = &tail[at..];
        if !page.starts_with(b"OggS") || page[4] != 0 {
            return None;
        }
        let segments = usize::from(page[26]);
        let lacing = page.get(27..27 + segments)?;
        let size = 27 + segments + lacing.iter().map(|&l| usize::from(l)).sum::<usize>();
        if size != page.len() {
            return None;
        }
        u64::try_from(i64::from_le_bytes(page[6..14].try_into().ok()?)).ok()
    })
}

/// An Ogg file's pages, walked header by header ([`ogg_layout`]).
struct OggLayout {
    /// Where each link of a chained file starts (RFC 3533 section 4: logical streams one after
    /// another, as `cat a.ogg b.ogg`, joined voice messages and radio rips make them): the byte
    /// offsets of the pages that begin a stream after another stream's pages; `[0]` for an
    /// ordinary file.
    link_starts: Vec<u64>,
    /// The last page runs past the end of the file, or the pages end exactly there but the last
    /// lacks the end-of-stream flag every finished stream's last page carries: the file was cut
    /// (or its writer never finished it), which decodes "fine" up to the cut.
    unfinished: bool,
}

/// The layout of an Ogg file (`None` for a file that is not Ogg). Page headers are read; their
/// bodies skipped.
fn ogg_layout(source: &mut dyn MediaSource) -> Option<OggLayout> {
    use std::io::SeekFrom;
    let len = source.byte_len();
    let mut starts = vec![0u64];
    let mut at = 0u64;
    let mut previous_began_a_stream = true;
    let mut last_ended_a_stream = false;
    let mut header = [0u8; 27];
    let mut lacing = [0u8; 255];
    loop {
        if source.seek(SeekFrom::Start(at)).is_err() || source.read_exact(&mut header).is_err() {
            break;
        }
        if &header[..4] != b"OggS" {
            if at == 0 {
                return None;
            }
            // Trailing bytes or damage: the decoder reports what it makes of them.
            break;
        }
        let segments = usize::from(header[26]);
        if source.read_exact(&mut lacing[..segments]).is_err() {
            break;
        }
        let begins_a_stream = header[5] & 0x02 != 0;
        if begins_a_stream && !previous_began_a_stream {
            starts.push(at);
        }
        previous_began_a_stream = begins_a_stream;
        last_ended_a_stream = header[5] & 0x04 != 0;
        let body: u64 = lacing[..segments].iter().map(|&l| u64::from(l)).sum();
        at += 27 + segments as u64 + body;
    }
    Some(OggLayout {
        link_starts: starts,
        unfinished: len.is_some_and(|len| at > len || (at == len && !last_ended_a_stream)),
    })
}

/// Check a CAF file's chunks before symphonia reads them: it allocates each chunk it keeps (`kuki`,
/// `pakt`, `info`, ...) at its declared size, and a packet table's entries at its declared count,
/// so one damaged size asked for 755 GB and aborted the process (found by mutating the ALAC
/// fixture). `Err` names the chunk that does not fit; files
/// that are not CAF, and the audio data itself (which may run to the end: size -1), pass.
fn caf_chunks_fit(source: &mut dyn MediaSource) -> std::result::Result<(), String> {
    use std::io::SeekFrom;
    let Some(len) = source.byte_len() else {
        return Ok(());
    };
    let mut head = [0u8; 12];
    if source.read_exact(&mut head[..8]).is_err() || &head[..4] != b"caff" {
        return Ok(());
    }
    let mut at = 8u64;
    while at + 12 <= len {
        if source.seek(SeekFrom::Start(at)).is_err() || source.read_exact(&mut head).is_err() {
            return Ok(());
        }
        let kind = String::from_utf8_lossy(&head[..4]).into_owned();
        let size = i64::from_be_bytes(head[4..12].try_into().map_err(|_| "header")?);
        let left = len - (at + 12);
        if kind == "data" && (size == -1 || size as u64 > left) {
            // Samples to the end, or a cut: symphonia and the length check tell which.
            return Ok(());
        }
        if kind == "desc" {
            // symphonia divides by the channel count and makes a time base of the rate (as u32):
            // a panic for 0 of either, turned into an error here before it happens.
            let mut desc = [0u8; 32];
            if source.read_exact(&mut desc).is_ok() {
                let rate = f64::from_be_bytes(desc[..8].try_into().map_err(|_| "desc")?);
                let channels = u32::from_be_bytes(desc[24..28].try_into().map_err(|_| "desc")?);
                if !(rate >= 1.0 && rate < f64::from(u32::MAX)) || channels == 0 {
                    let shown = if rate.abs() < 1e9 {
                        format!("{rate:.0}")
                    } else {
                        format!("{rate:e}")
                    };
                    return Err(format!(
                        "its audio description gives {shown} Hz and {channels} channels"
                    ));
                }
                // Uncompressed (bits per channel given): symphonia divides by the bytes per
                // packet, which is the bytes per frame.
                let bytes_per_packet =
                    u32::from_be_bytes(desc[16..20].try_into().map_err(|_| "desc")?);
                let bits = u32::from_be_bytes(desc[28..32].try_into().map_err(|_| "desc")?);
                if bits != 0 && bytes_per_packet == 0 {
                    return Err(format!(
                        "its audio description gives {bits}-bit samples in packets of 0 bytes"
                    ));
                }
            }
        }
        if kind == "pakt" {
            // symphonia reserves the packet count before reading the entries (1 byte or more each,
            // after 24 bytes of counts).
            let mut count = [0u8; 8];
            if source.read_exact(&mut count).is_ok() {
                let packets = i64::from_be_bytes(count);
                if packets < 0 || packets > size.saturating_sub(24) {
                    return Err(format!(
                        "its packet table lists {packets} packets in a chunk of {size} bytes"
                    ));
                }
            }
        }
        match u64::try_from(size) {
            Ok(size) if size <= left => at += 12 + size,
            _ => {
                return Err(format!(
                    "its '{kind}' chunk declares {size} bytes and {left} remain in the file"
                ))
            }
        }
    }
    Ok(())
}

/// An ALAC magic cookie as QuickTime wraps it (a CAF's `kuki` chunk written by ffmpeg and Apple's
/// tools: a `frma` atom, then an `alac` atom with version and flags before the 24-byte
/// configuration), unwrapped to the bare configuration (and channel layout) symphonia 0.5 reads:
/// it took the wrapper for the configuration ("not compatible with alac version 0"). `None` for a
/// cookie that is bare already.
fn bare_alac_cookie(cookie: &[u8]) -> Option<Vec<u8>> {
    if cookie.get(4..8) != Some(b"frma".as_slice()) {
        return None;
    }
    let frma_size = be_u32(cookie, 0)? as usize;
    let alac = cookie.get(frma_size..)?;
    if alac.get(4..8) != Some(b"alac".as_slice()) {
        return None;
    }
    let alac_size = (be_u32(alac, 0)? as usize).min(alac.len());
    // Size and type (8), version and flags (4), then the configuration.
    let config = alac.get(12..alac_size)?;
    matches!(config.len(), 24 | 48).then(|| config.to_vec())
}

/// An Ogg Opus file's channel count and mapping family when the family is neither 0 nor 1 (RFC
/// 7845: 255 is channels without a defined layout, 2 and 3 ambisonics), which phonrec does not
/// mix down.
fn unreadable_opus_mapping(source: &mut dyn MediaSource) -> Option<(u8, u8)> {
    let mut page = [0u8; 27 + 255 + 19];
    let mut filled = 0;
    while filled < page.len() {
        match source.read(&mut page[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    let page = &page[..filled];
    if !page.starts_with(b"OggS") {
        return None;
    }
    let head = page.get(27 + usize::from(*page.get(26)?)..)?;
    if !head.starts_with(b"OpusHead") {
        return None;
    }
    let (channels, family) = (*head.get(9)?, *head.get(18)?);
    (family > 1).then_some((channels, family))
}

/// Bytes `start..end` of a source, as a source of their own (one link of a chained Ogg file).
struct ByteRange {
    inner: Box<dyn MediaSource>,
    start: u64,
    end: u64,
    position: u64,
}

impl ByteRange {
    fn new(mut inner: Box<dyn MediaSource>, start: u64, end: u64) -> std::io::Result<Self> {
        inner.seek(std::io::SeekFrom::Start(start))?;
        Ok(ByteRange {
            inner,
            start,
            end,
            position: start,
        })
    }
}

impl std::io::Read for ByteRange {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end.saturating_sub(self.position);
        let n = (buf.len() as u64).min(left) as usize;
        let read = self.inner.read(&mut buf[..n])?;
        self.position += read as u64;
        Ok(read)
    }
}

impl std::io::Seek for ByteRange {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let len = self.end - self.start;
        let target = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => (self.position - self.start).checked_add_signed(d),
        }
        .filter(|&n| n <= len)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek outside"))?;
        self.position = self
            .inner
            .seek(std::io::SeekFrom::Start(self.start + target))?;
        Ok(target)
    }
}

impl MediaSource for ByteRange {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.end - self.start)
    }
}

/// Decode a chained Ogg file link by link, each as the file it was before it was joined; the links
/// must agree in rate and channels (else convert with a tool that resamples).
fn decode_ogg_chain(
    path: &Path,
    open: &OpenSource<'_>,
    starts: &[u64],
    sink: &mut dyn FnMut(&[f32], usize),
) -> Result<(u32, usize)> {
    let len = open()?.byte_len().ok_or_else(|| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason: "a chained Ogg stream whose length is unknown".to_string(),
    })?;
    let mut layout: Option<(u32, usize)> = None;
    for (index, &start) in starts.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(len);
        let link = || -> Result<Box<dyn MediaSource>> {
            let range = ByteRange::new(open()?, start, end).map_err(|e| Error::io(path, e))?;
            Ok(Box::new(range))
        };
        let this = decode_packets(path, &link, &[], &[], None, sink)?;
        match layout {
            None => layout = Some(this),
            Some(first) if first != this => {
                return Err(Error::MalformedAudio {
                    path: path.to_path_buf(),
                    reason: format!(
                        "its joined Ogg streams differ: {} Hz × {} channels, then {} Hz × {} in \
                         stream {}; convert it with e.g. `ffmpeg -i in.ogg out.wav`",
                        first.0,
                        first.1,
                        this.0,
                        this.1,
                        index + 1
                    ),
                })
            }
            Some(_) => {}
        }
    }
    layout.ok_or_else(|| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason: "no audio could be decoded".to_string(),
    })
}

fn malformed_mp4(path: &Path, reason: String) -> Error {
    Error::MalformedAudio {
        path: path.to_path_buf(),
        reason: format!("the file is damaged: {reason}"),
    }
}

/// Largest `moov` box checked (an hour of AAC indexes in well under 1 MB).
const MAX_MOOV_BYTES: u64 = 256 << 20;

/// The `moov` box of an MP4/M4A `source` (`None` for anything else, or when it has none: cut
/// short, and symphonia says so); `Err` when a sample table in it declares more entries than the
/// box holds. symphonia 0.5 allocates the declared count up front, so one damaged count (a bad
/// download) asked for 46 GB and aborted the whole process (found by mutating the test fixtures);
/// a file whose tables fit cannot.
fn mp4_moov(source: &mut dyn MediaSource) -> std::result::Result<Option<Vec<u8>>, String> {
    use std::io::{Read, SeekFrom};
    let mut head = [0u8; 8];
    if source.read_exact(&mut head).is_err() || &head[4..8] != b"ftyp" {
        return Ok(None);
    }
    // The top-level boxes, to `moov`.
    let mut at = 0u64;
    let moov = loop {
        if source.seek(SeekFrom::Start(at)).is_err() || source.read_exact(&mut head).is_err() {
            return Ok(None);
        }
        let (size, header) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
            1 => {
                let mut large = [0u8; 8];
                if source.read_exact(&mut large).is_err() {
                    return Ok(None);
                }
                (u64::from_be_bytes(large), 16)
            }
            0 => return Ok(None), // runs to the end of the file
            size => (u64::from(size), 8),
        };
        if size < header {
            return Err(format!("a box of {size} bytes at byte {at}"));
        }
        if &head[4..8] == b"moov" {
            if size > MAX_MOOV_BYTES {
                return Err(format!("a moov box of {size} bytes"));
            }
            let mut moov = Vec::new();
            source
                .take(size - header)
                .read_to_end(&mut moov)
                .map_err(|e| e.to_string())?;
            break moov;
        }
        at = at.saturating_add(size);
    };
    boxes_fit(&moov)?;
    Ok(Some(moov))
}

/// The child boxes of a container box's contents: (type, contents). Stops at the first box that
/// does not fit (`boxes_fit` has refused those already).
fn child_boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let header = data.get(at..at + 8)?;
        let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let end = if size == 0 { data.len() } else { at + size };
        if size != 0 && size < 8 || end > data.len() {
            return None;
        }
        let kind = [header[4], header[5], header[6], header[7]];
        let body = &data[at + 8..end];
        at = end;
        Some((kind, body))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    child_boxes(data)
        .find(|(k, _)| k == kind)
        .map(|(_, body)| body)
}

fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// The timescale of an `mvhd` or `mdhd` box (the same layout up to it).
fn header_timescale(body: &[u8]) -> Option<u32> {
    let version = *body.first()?;
    let at = if version == 1 { 4 + 8 + 8 } else { 4 + 4 + 4 };
    be_u32(body, at).filter(|&t| t > 0)
}

/// Where a track's presentation lies in its decoded samples (ISO/IEC 14496-12's edit list): AAC
/// encoders prime the decoder with 1024–2112 samples that the `elst` box tells players to skip,
/// and pad the last frame. In seconds, as fractions of the timescales they are written in.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Mp4Edit {
    /// Silence before the media starts (an empty edit), in movie timescale units.
    lead_in: u64,
    /// Media samples skipped at the start, in media timescale units.
    media_start: u64,
    /// How long the media plays, in movie timescale units (`None`: to the end).
    duration: Option<u64>,
    movie_timescale: u32,
    media_timescale: u32,
}

impl Mp4Edit {
    /// (frames of silence before, decoded frames skipped, last decoded frame kept + 1) at `rate`.
    /// `starts_at_media_time`: the decoder has dropped the media's start itself (Opus drops its
    /// pre-skip, which the edit's media time repeats), so only the length is taken from the edit.
    fn frames(&self, rate: u32, starts_at_media_time: bool) -> (u64, u64, Option<u64>) {
        let at_rate = |value: u64, timescale: u32| {
            u64::try_from(u128::from(value) * u128::from(rate) / u128::from(timescale))
                .unwrap_or(u64::MAX)
        };
        let skip = if starts_at_media_time {
            0
        } else {
            at_rate(self.media_start, self.media_timescale)
        };
        let lead_in = at_rate(self.lead_in, self.movie_timescale);
        let end = self
            .duration
            .map(|d| skip.saturating_add(at_rate(d, self.movie_timescale)));
        (lead_in, skip, end)
    }
}

/// Each track's edit (in `trak` order, as symphonia numbers its tracks) when it is one that players
/// agree on: an optional empty edit, then one edit at normal rate. Other lists (several pieces of
/// the media, slow motion) are left alone and the media decoded whole, as before.
fn mp4_edits(moov: &[u8]) -> Vec<Option<Mp4Edit>> {
    let movie_timescale = child(moov, b"mvhd").and_then(header_timescale);
    child_boxes(moov)
        .filter(|(kind, _)| kind == b"trak")
        .map(|(_, trak)| {
            let media_timescale = child(trak, b"mdia")
                .and_then(|mdia| child(mdia, b"mdhd"))
                .and_then(header_timescale)?;
            let elst = child(trak, b"edts").and_then(|edts| child(edts, b"elst"))?;
            let version = *elst.first()?;
            let count = be_u32(elst, 4)? as usize;
            let entry_bytes = if version == 1 { 20 } else { 12 };
            let mut entries = (0..count.min(3)).map(|i| {
                let at = 8 + i * entry_bytes;
                let (duration, media_time, rate_at) = if version == 1 {
                    (be_u64(elst, at)?, be_u64(elst, at + 8)? as i64, at + 16)
                } else {
                    (
                        u64::from(be_u32(elst, at)?),
                        i64::from(be_u32(elst, at + 4)? as i32),
                        at + 8,
                    )
                };
                Some((duration, media_time, be_u32(elst, rate_at)?))
            });
            let mut lead_in = 0;
            let mut edit = entries.next()??;
            if edit.1 == -1 {
                lead_in = edit.0;
                edit = entries.next()??;
            }
            let (duration, media_time, rate) = edit;
            // One more edit, a media time before the start, or a rate other than 1.0 (16.16):
            // not a plain trim.
            if entries.next().is_some() || media_time < 0 || rate != 0x0001_0000 {
                return None;
            }
            Some(Mp4Edit {
                lead_in,
                media_start: media_time as u64,
                // A zero duration means "the whole media" in files from some writers.
                duration: (duration > 0).then_some(duration),
                movie_timescale: movie_timescale?,
                media_timescale,
            })
        })
        .collect()
}

/// A QuickTime PCM sound track's sample format where symphonia 0.5 would misread it: `in24`,
/// `in32`, `fl32` and `fl64` are big-endian unless an `enda` box says otherwise (QuickTime File
/// Format), and symphonia takes them all as little-endian, turning cameras' and Final Cut's 24-bit
/// audio into noise.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mp4Pcm {
    S24,
    S32,
    F32,
    F64,
}

impl Mp4Pcm {
    fn bytes(self) -> usize {
        match self {
            Mp4Pcm::S24 => 3,
            Mp4Pcm::S32 | Mp4Pcm::F32 => 4,
            Mp4Pcm::F64 => 8,
        }
    }

    /// One big-endian sample at int16 scale.
    fn sample(self, b: &[u8]) -> f32 {
        match self {
            Mp4Pcm::S24 => (i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8) as f32 / 256.0,
            Mp4Pcm::S32 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f32 / 65_536.0,
            Mp4Pcm::F32 => f32::from_be_bytes([b[0], b[1], b[2], b[3]]) * INT16_SCALE,
            Mp4Pcm::F64 => {
                (f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                    * f64::from(INT16_SCALE)) as f32
            }
        }
    }
}

/// For each track of `moov`, in order, its [`Mp4Pcm`] format when it is big-endian PCM that
/// symphonia misreads.
fn mp4_big_endian_pcm(moov: &[u8]) -> Vec<Option<Mp4Pcm>> {
    child_boxes(moov)
        .filter(|(kind, _)| kind == b"trak")
        .map(|(_, trak)| {
            let stsd = child(trak, b"mdia")
                .and_then(|mdia| child(mdia, b"minf"))
                .and_then(|minf| child(minf, b"stbl"))
                .and_then(|stbl| child(stbl, b"stsd"))?;
            // version and flags, entry count, then the first entry: size and type.
            let size = be_u32(stsd, 8)? as usize;
            let entry = stsd.get(8..8 + size)?;
            let pcm = match entry.get(4..8)? {
                b"in24" => Mp4Pcm::S24,
                b"in32" => Mp4Pcm::S32,
                b"fl32" => Mp4Pcm::F32,
                b"fl64" => Mp4Pcm::F64,
                _ => return None,
            };
            // The sound sample description: 28 bytes, then 16 more in version 1, 36 in version 2
            // (whose own flags symphonia reads right), then boxes, `enda` perhaps inside `wave`.
            let extensions = match u16::from_be_bytes(entry.get(16..18)?.try_into().ok()?) {
                0 => 0,
                1 => 16,
                _ => return None,
            };
            let boxes = entry.get(8 + 28 + extensions..)?;
            let enda = child(boxes, b"enda")
                .or_else(|| child(boxes, b"wave").and_then(|wave| child(wave, b"enda")));
            let little_endian = enda
                .and_then(|body| body.get(..2))
                .is_some_and(|flag| u16::from_be_bytes([flag[0], flag[1]]) & 1 == 1);
            (!little_endian).then_some(pcm)
        })
        .collect()
}

/// Check the boxes in `data` (the contents of a container box), descending into the containers
/// that lead to sample tables.
fn boxes_fit(data: &[u8]) -> std::result::Result<(), String> {
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let size =
            u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let kind = &data[at + 4..at + 8];
        let end = if size == 0 { data.len() } else { at + size };
        if size != 0 && size < 8 || end > data.len() {
            return Err(format!(
                "a {} box of {size} bytes in a {}-byte parent",
                String::from_utf8_lossy(kind),
                data.len()
            ));
        }
        let body = &data[at + 8..end];
        let count_at = |offset: usize| -> u64 {
            body.get(offset..offset + 4).map_or(0, |b| {
                u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            })
        };
        // (bytes before the entries, entry count, bytes per entry) of the tables symphonia reads.
        let table = match kind {
            b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"edts" => {
                boxes_fit(body)?;
                None
            }
            b"stsc" => Some((8, count_at(4), 12)),
            b"stco" => Some((8, count_at(4), 4)),
            b"co64" | b"stts" => Some((8, count_at(4), 8)),
            // A constant sample size has no table.
            b"stsz" if count_at(4) == 0 => Some((12, count_at(8), 4)),
            _ => None,
        };
        if let Some((fixed, count, entry)) = table {
            let needed = fixed + count.saturating_mul(entry);
            if needed > body.len() as u64 {
                return Err(format!(
                    "its {} table declares {count} entries, the box holds {} bytes",
                    String::from_utf8_lossy(kind),
                    body.len()
                ));
            }
        }
        at = end;
    }
    Ok(())
}

/// An AMR track of a 3GP/MP4 file (sample entry `samr` or `sawb`: Android's voice recorder and
/// MMS write these; symphonia 0.5 does not know them): where each of its samples lies in the file.
struct Mp4AmrTrack {
    wideband: bool,
    /// (file offset, bytes) of each sample in order.
    samples: Vec<(u64, u64)>,
}

/// The `trak` boxes of `moov` and their `stbl` (sample table) boxes.
fn sample_tables(moov: &[u8]) -> impl Iterator<Item = &[u8]> {
    child_boxes(moov)
        .filter(|(kind, _)| kind == b"trak")
        .filter_map(|(_, trak)| {
            let mdia = child(trak, b"mdia")?;
            let minf = child(mdia, b"minf")?;
            child(minf, b"stbl")
        })
}

/// The first AMR track of `moov`, when the file's first audio track is one (an AMR file's only
/// track, or a video's sound).
fn mp4_amr_track(moov: &[u8]) -> Option<Mp4AmrTrack> {
    for stbl in sample_tables(moov) {
        let stsd = child(stbl, b"stsd")?;
        // version and flags, entry count, then the first entry: size and type.
        let entry = stsd.get(12..16)?;
        let wideband = match entry {
            b"samr" => false,
            b"sawb" => true,
            // Another sound track comes first: symphonia reads the file.
            b"mp4a" | b"Opus" | b"alac" | b"fLaC" | b"lpcm" | b"sowt" | b"twos" | b".mp3" => {
                return None
            }
            _ => continue,
        };
        let stsz = child(stbl, b"stsz")?;
        let fixed_size = u64::from(be_u32(stsz, 4)?);
        let count = be_u32(stsz, 8)? as usize;
        let sizes: Vec<u64> = if fixed_size != 0 {
            // A count no table backs (a damaged file could declare billions): held to what the
            // largest file read could hold.
            if (count as u64).saturating_mul(fixed_size) > MAX_AUDIO_BYTES {
                return None;
            }
            vec![fixed_size; count]
        } else {
            (0..count)
                .map(|i| be_u32(stsz, 12 + 4 * i).map(u64::from))
                .collect::<Option<_>>()?
        };
        let chunk_offsets: Vec<u64> = if let Some(stco) = child(stbl, b"stco") {
            (0..be_u32(stco, 4)? as usize)
                .map(|i| be_u32(stco, 8 + 4 * i).map(u64::from))
                .collect::<Option<_>>()?
        } else {
            let co64 = child(stbl, b"co64")?;
            (0..be_u32(co64, 4)? as usize)
                .map(|i| be_u64(co64, 8 + 8 * i))
                .collect::<Option<_>>()?
        };
        // (first chunk, samples per chunk), first chunks numbered from 1 and increasing.
        let stsc = child(stbl, b"stsc")?;
        let runs: Vec<(u64, u64)> = (0..be_u32(stsc, 4)? as usize)
            .map(|i| {
                Some((
                    u64::from(be_u32(stsc, 8 + 12 * i)?),
                    u64::from(be_u32(stsc, 12 + 12 * i)?),
                ))
            })
            .collect::<Option<_>>()?;
        let mut samples = Vec::with_capacity(sizes.len());
        let mut next = sizes.iter();
        'chunks: for (index, &offset) in chunk_offsets.iter().enumerate() {
            let chunk = index as u64 + 1;
            let per_chunk = runs
                .iter()
                .take_while(|&&(first, _)| first <= chunk)
                .last()
                .map_or(0, |&(_, n)| n);
            let mut at = offset;
            for _ in 0..per_chunk {
                let Some(&size) = next.next() else {
                    break 'chunks;
                };
                samples.push((at, size));
                at = at.saturating_add(size);
            }
        }
        return Some(Mp4AmrTrack { wideband, samples });
    }
    None
}

/// Decode an MP4/3GP file's AMR track: its samples are AMR frames as the `.amr` storage format
/// records them (a header byte, then the bits), so with the storage magic before them they are an
/// `.amr` file.
fn decode_mp4_amr(
    path: &Path,
    open: &OpenSource<'_>,
    track: &Mp4AmrTrack,
    sink: &mut dyn FnMut(&[f32], usize),
) -> Result<(u32, usize)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut source = open()?;
    let mut stream: Vec<u8> = if track.wideband {
        b"#!AMR-WB\n".to_vec()
    } else {
        b"#!AMR\n".to_vec()
    };
    for &(offset, size) in &track.samples {
        if stream.len() as u64 + size > MAX_AUDIO_BYTES {
            return Err(malformed_mp4(
                path,
                "an AMR track larger than phonrec reads".to_string(),
            ));
        }
        let start = stream.len();
        stream.resize(start + size as usize, 0);
        source
            .seek(SeekFrom::Start(offset))
            .and_then(|_| source.read_exact(&mut stream[start..]))
            .map_err(|_| Error::MalformedAudio {
                path: path.to_path_buf(),
                reason: format!("{CUT_SHORT} inside its AMR track"),
            })?;
    }
    let wave = super::amr::read_amr(path, &stream)?;
    sink(&wave.samples, 1);
    Ok((wave.sample_rate_hz, 1))
}

/// What turns a track's packets into samples: symphonia's decoders, or ours for Opus.
enum PacketDecoder {
    Symphonia(Box<dyn symphonia::core::codecs::Decoder>),
    Opus(Box<OpusPackets>),
    /// QuickTime big-endian PCM that symphonia 0.5 reads as little-endian ([`Mp4Pcm`]).
    BigEndianPcm {
        pcm: Mp4Pcm,
        channels: usize,
    },
}

/// Decode the stream `open` gives packet by packet, handing `sink` each packet's interleaved samples
/// at int16 scale and the channel count; the stream's rate and channel count once it has been
/// checked whole (length, damaged packets).
fn decode_stream(
    path: &Path,
    open: &OpenSource<'_>,
    sink: &mut dyn FnMut(&[f32], usize),
) -> Result<(u32, usize)> {
    caf_chunks_fit(open()?.as_mut()).map_err(|reason| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason: format!("{CUT_SHORT} or is damaged: {reason}"),
    })?;
    let adts_frames =
        adts_frame_count(open()?.as_mut()).map_err(|reason| Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!("{CUT_SHORT} early: {reason}"),
        })?;
    let moov = mp4_moov(open()?.as_mut()).map_err(|reason| malformed_mp4(path, reason))?;
    if let Some(amr) = moov.as_deref().and_then(mp4_amr_track) {
        return decode_mp4_amr(path, open, &amr, sink);
    }
    if let Some((channels, family)) = unreadable_opus_mapping(open()?.as_mut()) {
        // symphonia's Ogg reader fails on these headers as if the file ended early.
        return Err(super::opus::mapping_refused(
            path,
            usize::from(channels),
            family,
        ));
    }
    let ogg = ogg_layout(open()?.as_mut());
    if ogg.as_ref().is_some_and(|ogg| ogg.unfinished) {
        return Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!(
                "{CUT_SHORT} without its end-of-stream page (an interrupted download or copy, \
                 or a recording never finished); to read what is there, rewrite it with e.g. \
                 `ffmpeg -i in.ogg -c copy whole.ogg`"
            ),
        });
    }
    if let Some(starts) = ogg
        .map(|ogg| ogg.link_starts)
        .filter(|starts| starts.len() > 1)
    {
        return guarded(|| decode_ogg_chain(path, open, &starts, sink)).unwrap_or_else(|message| {
            Err(Error::MalformedAudio {
                path: path.to_path_buf(),
                reason: format!("the file is damaged: its decoder failed ({message})"),
            })
        });
    }
    let edits = moov.as_deref().map(mp4_edits).unwrap_or_default();
    let big_endian_pcm = moov.as_deref().map(mp4_big_endian_pcm).unwrap_or_default();
    // symphonia 0.5's readers unwrap where a damaged file breaks their assumptions (an MP4 `esds`
    // box, a CAF's sample counts: found by mutating the fixtures). A panic there is one bad file, not the end of a batch:
    // it becomes this file's error, and the panic hook stays quiet about it ([`guarded`]).
    guarded(|| decode_packets(path, open, &edits, &big_endian_pcm, adts_frames, sink))
        .unwrap_or_else(|message| {
            Err(Error::MalformedAudio {
                path: path.to_path_buf(),
                reason: format!("the file is damaged: its decoder failed ({message})"),
            })
        })
}

thread_local! {
    /// Set while this thread runs a third-party decoder under [`guarded`].
    static IN_GUARDED_DECODER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `work`, turning a panic inside it into `Err` with the panic's message.
pub(crate) fn guarded<T>(work: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let was = IN_GUARDED_DECODER.with(|flag| flag.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    IN_GUARDED_DECODER.with(|flag| flag.set(was));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string())
    })
}

/// Most frames one packet may declare. symphonia's decoders size their output buffer from the
/// header's count before reading a packet, and an allocation that fails aborts the process (a
/// damaged ALAC magic cookie asked for 14 GB); real files have 1 to 16384 frames a packet.
const MAX_FRAMES_PER_PACKET: u64 = 1 << 20;

/// The frames a packet of this track declares, when more than [`MAX_FRAMES_PER_PACKET`]: the
/// container's count, or ALAC's frame length (the first field of its magic cookie).
fn oversized_packets(params: &CodecParameters) -> Option<u64> {
    let mut frames = params.max_frames_per_packet.unwrap_or(0);
    if params.codec == CODEC_TYPE_ALAC {
        if let Some(&[a, b, c, d, ..]) = params.extra_data.as_deref() {
            frames = frames.max(u64::from(u32::from_be_bytes([a, b, c, d])));
        }
    }
    (frames > MAX_FRAMES_PER_PACKET).then_some(frames)
}

/// Install a panic hook that prints nothing for panics inside the guarded audio decoders (they
/// become the file's error) and leaves every other panic to the hook installed before. For
/// programs (the CLI, the Python module): a library does not change the process's hook by itself.
pub fn quiet_decoder_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_GUARDED_DECODER.with(|flag| flag.get()) {
                previous(info);
            }
        }));
    });
}

/// [`decode_stream`]'s work, which may panic inside symphonia.
fn decode_packets(
    path: &Path,
    open: &OpenSource<'_>,
    mp4_edits: &[Option<Mp4Edit>],
    mp4_big_endian_pcm: &[Option<Mp4Pcm>],
    adts_frames: Option<u64>,
    sink: &mut dyn FnMut(&[f32], usize),
) -> Result<(u32, usize)> {
    let source = open()?;
    let malformed = |reason: String| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason,
    };
    let probe = |source: Box<dyn MediaSource>, gapless: bool| {
        let stream = MediaSourceStream::new(source, Default::default());
        symphonia::default::get_probe().format(
            &Hint::new(),
            stream,
            // Gapless: Ogg Vorbis's encoder delay is cut, so the samples start where the
            // recording did. (MPEG audio is read without it and trimmed here: see below.)
            &FormatOptions {
                enable_gapless: gapless,
                ..FormatOptions::default()
            },
            &MetadataOptions::default(),
        )
    };
    let probed = probe(source, true)
        .map_err(|e| {
            if is_end_of_file(&e) {
                // It starts like one of these (`is_container`) but ends before its headers or
                // index (an M4A's `moov` is often at the end).
                malformed(format!("{CUT_SHORT} before its headers could be read"))
            } else if let DecodeError::DecodeError(reason) = e {
                // Its headers were recognised but do not check out (an Ogg page's CRC): damaged
                // in a copy or a download, not another kind of file.
                malformed(format!("the file is damaged: {reason}"))
            } else {
                Error::NotAudio {
                    path: path.to_path_buf(),
                    reason: format!(
                        "not a FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF, MP4 or AAC stream phonrec can read ({e})"
                    ),
                }
            }
        })?;
    let mut format = probed.format;
    let mut track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| malformed("the container holds no audio track".to_string()))?
        .clone();
    // (An MP3 track in an MP4 has its length from the sample table and its trims from the edit
    // list: only the bare MPEG stream reader is concerned.)
    let mpeg = is_mpeg_audio(track.codec_params.codec) && mp4_edits.is_empty();
    if mpeg {
        // symphonia's gapless MP3 reading ends the stream at its length: estimated from the first
        // frames' bit rate when no Xing header gives it (a VBR file lost up to 7 % of its end,
        // or was refused as cut short), and the first file's alone in files joined with `cat`.
        // Read without it, and cut the encoder's delay and padding here instead.
        format = probe(open()?, false)
            .map_err(|e| malformed(format!("reading the MPEG stream again failed: {e}")))?
            .format;
        track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| malformed("the container holds no audio track".to_string()))?
            .clone();
    }
    let track_id = track.id;
    // The length a header declares. An MPEG stream's is the Xing header's frame count only when
    // its LAME/Info extension is there too (symphonia fills the delay from it); without one it may
    // be an estimate, which says nothing about a cut.
    let declared_frames = if mpeg {
        track.codec_params.delay.and(track.codec_params.n_frames)
    } else if let Some(frames) = adts_frames {
        // Raw AAC: symphonia's length is an estimate; the frames counted are exact (1024 samples
        // each: symphonia decodes the AAC core, one raw block per frame).
        Some(frames * 1024)
    } else {
        track.codec_params.n_frames
    };
    // MPEG audio: the encoder's delay to skip (Without it an 8 kHz MP3's phones came 138 ms late:
    // 1105 samples of LAME's delay), and its padding, cut at the end if the stream ends where the
    // header says (not when more follows: files joined with `cat`).
    let mpeg_delay = if mpeg {
        u64::from(track.codec_params.delay.unwrap_or(0))
    } else {
        0
    };
    let mpeg_padding = if mpeg && declared_frames.is_some() {
        track.codec_params.padding.unwrap_or(0) as usize
    } else {
        0
    };
    let slack = length_slack(
        track.codec_params.codec,
        track.codec_params.frames_per_block,
    );
    let codec = track.codec_params.codec;
    // Where the presentation lies in the decoded samples: an MP4 track's edit list, or an Ogg
    // Vorbis stream's end at its last granule position (symphonia's gapless mode does not cut
    // Vorbis's last packet). (An ADPCM WAV's `fact` length is applied by the WAV reader.)
    let mp4_edit = mp4_edits.get(track_id as usize).copied().flatten();
    let stream_end = if codec == CODEC_TYPE_VORBIS {
        last_granule_position(open()?.as_mut())
    } else {
        None
    };
    let mut presentation: Option<(u64, u64, Option<u64>)> = None;
    let mut position = 0u64;
    let big_endian_pcm = mp4_big_endian_pcm.get(track_id as usize).copied().flatten();
    let mut decoder = if let Some(pcm) = big_endian_pcm {
        let channels = track.codec_params.channels.map_or(0, |c| c.count());
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(malformed(format!("a PCM track of {channels} channels")));
        }
        PacketDecoder::BigEndianPcm { pcm, channels }
    } else if codec == CODEC_TYPE_OPUS {
        let head = track.codec_params.extra_data.as_deref().unwrap_or(&[]);
        // The stream ends at its last page's granule position (RFC 7845), read from the file
        // itself: symphonia 0.5's length and padding for Opus are off when one page holds it all.
        let end = last_granule_position(open()?.as_mut());
        PacketDecoder::Opus(Box::new(OpusPackets::new(path, head, end)?))
    } else {
        if let Some(frames) = oversized_packets(&track.codec_params) {
            return Err(malformed(format!(
                "the file is damaged: its header declares packets of {frames} frames (real \
                 files have a few thousand at most)"
            )));
        }
        let mut params = track.codec_params.clone();
        if codec == CODEC_TYPE_ALAC {
            if let Some(cookie) = params.extra_data.as_deref().and_then(bare_alac_cookie) {
                params.extra_data = Some(cookie.into());
            }
        }
        PacketDecoder::Symphonia(
            symphonia::default::get_codecs()
                .make(&params, &DecoderOptions::default())
                .map_err(|e| Error::UnsupportedEncoding {
                    path: path.to_path_buf(),
                    encoding: format!("a codec symphonia does not decode here ({e})"),
                    hint: Some("convert with e.g. `ffmpeg -i in.ext out.wav`".to_string()),
                })?,
        )
    };
    let mut scaled: Vec<f32> = Vec::new();
    let mut decoded_samples = 0usize;
    let mut layout: Option<(u32, usize)> = None;
    let mut damaged_packets = 0usize;
    let mut packets = 0usize;
    let mut held: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(DecodeError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(DecodeError::ResetRequired) => break,
            Err(e) => return Err(malformed(format!("reading the container failed: {e}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        packets += 1;
        // Each packet's samples into `scaled`, interleaved at int16 scale.
        let (rate, channels) = match &mut decoder {
            PacketDecoder::Symphonia(decoder) => {
                let decoded = match decoder.decode(&packet) {
                    Ok(decoded) => decoded,
                    // A damaged frame: skip it as players do, and say so if there were many.
                    Err(DecodeError::DecodeError(_)) => {
                        damaged_packets += 1;
                        continue;
                    }
                    Err(e) if is_end_of_file(&e) => {
                        return Err(malformed(format!("{CUT_SHORT} inside a packet")))
                    }
                    Err(e) => return Err(malformed(format!("decoding failed: {e}"))),
                };
                let spec = *decoded.spec();
                let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
                buffer.copy_interleaved_ref(decoded);
                scaled.clear();
                scaled.extend(buffer.samples().iter().map(|&s| s * INT16_SCALE));
                (spec.rate, spec.channels.count())
            }
            PacketDecoder::BigEndianPcm { pcm, channels } => {
                let Some(rate) = track.codec_params.sample_rate else {
                    return Err(malformed("a PCM track without a sample rate".to_string()));
                };
                let frame_bytes = pcm.bytes() * *channels;
                scaled.clear();
                scaled.extend(
                    packet.data[..packet.data.len() / frame_bytes * frame_bytes]
                        .chunks_exact(pcm.bytes())
                        .map(|b| pcm.sample(b)),
                );
                (rate, *channels)
            }
            PacketDecoder::Opus(decoder) => {
                // A damaged packet is concealed (its duration filled from the previous ones), so
                // the times after it stay right.
                if decoder.decode(&packet.data, &mut scaled) {
                    damaged_packets += 1;
                }
                (OPUS_RATE_HZ, decoder.channels())
            }
        };
        match layout {
            None => layout = Some((rate, channels)),
            Some(first) if first != (rate, channels) => {
                return Err(malformed(format!(
                "the stream changes from {} Hz × {} channels to {rate} Hz × {channels} channels",
                first.0, first.1
            )))
            }
            Some(_) => {}
        }
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(malformed(format!("{channels} channels")));
        }
        decoded_samples += scaled.len();
        if decoded_samples > MAX_DECODED_SAMPLES {
            return Err(malformed(format!(
                "more than {MAX_DECODED_SAMPLES} samples decoded; split the file first"
            )));
        }
        // The part of this packet inside the presentation, in the file's timeline.
        let (skip, end) = match presentation {
            Some((_, skip, end)) => (skip, end),
            None => {
                let (lead_in, skip, edit_end) = mp4_edit.map_or((0, mpeg_delay, None), |e| {
                    e.frames(rate, codec == CODEC_TYPE_OPUS)
                });
                let lead_in_samples = usize::try_from(lead_in)
                    .ok()
                    .and_then(|frames| frames.checked_mul(channels))
                    .filter(|&n| n <= MAX_DECODED_SAMPLES)
                    .ok_or_else(|| {
                        malformed(format!("an edit list that starts {lead_in} samples late"))
                    })?;
                if lead_in_samples > 0 {
                    sink(&vec![0.0; lead_in_samples], channels);
                }
                let end = match (edit_end, stream_end) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                presentation = Some((lead_in, skip, end));
                (skip, end)
            }
        };
        let frames = (scaled.len() / channels) as u64;
        let from = skip.saturating_sub(position).min(frames) as usize;
        let to = end.map_or(frames, |end| end.saturating_sub(position).min(frames)) as usize;
        position += frames;
        if to > from {
            let part = &scaled[from * channels..to * channels];
            // The last `mpeg_padding` frames are held back until the stream's end says whether
            // they are the encoder's padding.
            let hold = mpeg_padding * channels;
            if hold == 0 {
                sink(part, channels);
            } else {
                held.extend_from_slice(part);
                if held.len() > hold {
                    let ready = held.len() - hold;
                    sink(&held[..ready], channels);
                    held.drain(..ready);
                }
            }
        }
    }
    if let (Some((_, channels)), false) = (layout, held.is_empty()) {
        let ends_as_declared =
            declared_frames.is_some_and(|declared| position <= declared + MPEG_LENGTH_SLACK);
        if !ends_as_declared {
            sink(&held, channels);
        }
    }
    let Some((rate, channels)) = layout else {
        if packets > 0 && damaged_packets == packets {
            // Every packet there is, and none decodes: not a cut, an encoding the decoder
            // registered for it does not handle (IMA4 ADPCM in a CAF, say).
            let name = symphonia::default::get_codecs()
                .get_codec(codec)
                .map_or_else(|| format!("{codec}"), |d| d.long_name.to_string());
            return Err(Error::UnsupportedEncoding {
                path: path.to_path_buf(),
                encoding: format!(
                    "{name}: none of its {packets} packet{} could be decoded",
                    if packets == 1 { "" } else { "s" }
                ),
                hint: Some("convert with e.g. `ffmpeg -i in.ext out.wav`".to_string()),
            });
        }
        if let Some(declared) = declared_frames.filter(|&n| n > 0) {
            return Err(malformed(format!(
                "{CUT_SHORT} early: the header declares {declared} samples per channel, none could \
                 be decoded"
            )));
        }
        return Err(malformed(format!(
            "no audio could be decoded ({damaged_packets} damaged packets)"
        )));
    };
    // A file cut short (an interrupted download) decodes "fine" up to the cut: when the container
    // says how long it is (FLAC's STREAMINFO, an MP3 Xing/Info header), hold it to that.
    let decoded_frames = (decoded_samples / channels) as u64;
    if let Some(declared) = declared_frames {
        if decoded_frames + slack < declared {
            return Err(malformed(format!(
                "{CUT_SHORT} early: the header declares {declared} samples per channel, \
                 {decoded_frames} could be decoded"
            )));
        }
    }
    check_damaged(path, damaged_packets, packets)?;
    Ok((rate, channels))
}

/// A glitch or two is skipped as players skip it (each packet is ~20-30 ms); more than one packet
/// in a hundred damaged would leave holes the transcript cannot be trusted across: an error.
pub(crate) fn check_damaged(path: &Path, damaged: usize, packets: usize) -> Result<()> {
    if damaged * 100 > packets {
        return Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!(
                "{damaged} of {packets} packets are damaged: too many to transcribe across"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend(kind);
        out.extend(body);
        out
    }

    /// An `mvhd`/`mdhd` of version 0 with `timescale` (the fields before it zero).
    fn timescale_box(kind: &[u8; 4], timescale: u32) -> Vec<u8> {
        let mut body = vec![0u8; 12];
        body.extend(timescale.to_be_bytes());
        body.extend([0u8; 8]);
        mp4_box(kind, &body)
    }

    fn trak(media_timescale: u32, elst: Option<Vec<u8>>) -> Vec<u8> {
        let mut body = Vec::new();
        if let Some(elst) = elst {
            body.extend(mp4_box(b"edts", &mp4_box(b"elst", &elst)));
        }
        body.extend(mp4_box(b"mdia", &timescale_box(b"mdhd", media_timescale)));
        mp4_box(b"trak", &body)
    }

    #[test]
    fn big_endian_quicktime_pcm_is_read_big_endian() {
        let cases: [(Mp4Pcm, Vec<u8>); 4] = [
            (Mp4Pcm::S24, vec![0x40, 0x00, 0x01]),
            (Mp4Pcm::S32, 0x4000_0100_i32.to_be_bytes().to_vec()),
            (Mp4Pcm::F32, 0.5f32.to_be_bytes().to_vec()),
            (Mp4Pcm::F64, (-0.25f64).to_be_bytes().to_vec()),
        ];
        let expected = [
            16_384.0 + 1.0 / 256.0,
            16_384.0 + 1.0 / 256.0,
            16_384.0,
            -8_192.0,
        ];
        for ((pcm, bytes), want) in cases.iter().zip(expected) {
            assert_eq!(bytes.len(), pcm.bytes());
            assert_eq!(pcm.sample(bytes), want, "{pcm:?}");
        }
        assert_eq!(Mp4Pcm::S24.sample(&[0xFF, 0xFF, 0xFF]), -1.0 / 256.0);
        // The sample description decides: `in24` without `enda` is big-endian, with `enda` 1
        // little-endian (symphonia reads that one right).
        let moov = |enda: Option<u16>| {
            let mut entry = vec![0u8; 28];
            entry[8..10].copy_from_slice(&1u16.to_be_bytes()); // version 1
            entry.extend([0u8; 16]);
            if let Some(flag) = enda {
                let mut wave = mp4_box(b"frma", b"in24");
                wave.extend(mp4_box(b"enda", &flag.to_be_bytes()));
                entry.extend(mp4_box(b"wave", &wave));
            }
            let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
            stsd.extend(mp4_box(b"in24", &entry));
            let stbl = mp4_box(b"stbl", &mp4_box(b"stsd", &stsd));
            let trak = mp4_box(b"trak", &mp4_box(b"mdia", &mp4_box(b"minf", &stbl)));
            [mp4_box(b"mvhd", &[0; 100]), trak].concat()
        };
        assert_eq!(mp4_big_endian_pcm(&moov(None)), [Some(Mp4Pcm::S24)]);
        assert_eq!(mp4_big_endian_pcm(&moov(Some(0))), [Some(Mp4Pcm::S24)]);
        assert_eq!(mp4_big_endian_pcm(&moov(Some(1))), [None]);
    }

    #[test]
    fn edit_lists_give_the_priming_to_skip_and_the_length_to_keep() {
        // Track 0: version 0, AAC's 1024 priming samples at 8 kHz and 433 ms (movie timescale
        // 1000), as ffmpeg writes. Track 1: version 1, an empty edit of 0.5 s, then the media from
        // 2112 (44.1 kHz media timescale) for 2 s. Track 2: two pieces of the media (left alone).
        // Track 3: no edit list.
        let mut v0 = vec![0, 0, 0, 0];
        v0.extend(1u32.to_be_bytes());
        v0.extend(433u32.to_be_bytes());
        v0.extend(1024i32.to_be_bytes());
        v0.extend(0x0001_0000u32.to_be_bytes());
        let mut v1 = vec![1, 0, 0, 0];
        v1.extend(2u32.to_be_bytes());
        for (duration, media_time) in [(500u64, -1i64), (2000, 2112)] {
            v1.extend(duration.to_be_bytes());
            v1.extend(media_time.to_be_bytes());
            v1.extend(0x0001_0000u32.to_be_bytes());
        }
        let mut two_pieces = vec![0, 0, 0, 0];
        two_pieces.extend(2u32.to_be_bytes());
        for media_time in [0i32, 8000] {
            two_pieces.extend(100u32.to_be_bytes());
            two_pieces.extend(media_time.to_be_bytes());
            two_pieces.extend(0x0001_0000u32.to_be_bytes());
        }
        let mut moov = timescale_box(b"mvhd", 1000);
        moov.extend(trak(8000, Some(v0)));
        moov.extend(trak(44_100, Some(v1)));
        moov.extend(trak(8000, Some(two_pieces)));
        moov.extend(trak(8000, None));
        assert_eq!(boxes_fit(&moov), Ok(()));
        let edits = mp4_edits(&moov);
        assert_eq!(edits.len(), 4);
        let aac = edits[0].expect("a plain trim");
        assert_eq!(aac.frames(8000, false), (0, 1024, Some(1024 + 3464)));
        // Opus's decoder drops the pre-skip itself: only the length is used.
        assert_eq!(aac.frames(48_000, true), (0, 0, Some(20_784)));
        let late = edits[1].expect("an empty edit, then a trim");
        assert_eq!(
            late.frames(44_100, false),
            (22_050, 2112, Some(2112 + 88_200))
        );
        // Read at half the media's rate (HE-AAC's core): the skip scales with it.
        assert_eq!(
            late.frames(22_050, false),
            (11_025, 1056, Some(1056 + 44_100))
        );
        assert_eq!(edits[2], None);
        assert_eq!(edits[3], None);
    }
}
