//! Other containers through symphonia: FLAC, Ogg Vorbis or Opus, MP3, AIFF/AIFC, CAF and MP4/M4A (AAC:
//! phones' voice memos), decoded packet by packet (Opus by [`super::opus`]) and mixed to mono at int16 scale like every other reader. WAV and SPHERE keep their own readers
//! (their header checks and error messages are ours).

use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{
    CodecType, DecoderOptions, CODEC_TYPE_AAC, CODEC_TYPE_MP1, CODEC_TYPE_MP2, CODEC_TYPE_MP3,
    CODEC_TYPE_NULL, CODEC_TYPE_OPUS, CODEC_TYPE_VORBIS,
};
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::opus::{OpusPackets, OPUS_RATE_HZ};
use super::{mono_from_blocks, Waveform, INT16_SCALE, MAX_AUDIO_BYTES, MAX_CHANNELS};
use crate::error::{Error, Result};

/// True when `bytes` start like a FLAC, Ogg, MP3 (ID3-tagged or a bare MPEG audio frame), AIFF/AIFC,
/// CAF or MP4/M4A file.
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
}

/// Samples per channel a lossy stream (MP3, AAC, Vorbis, Opus) may fall short of its declared length
/// (codec delay and padding, a partial last frame). PCM, FLAC and ADPCM decode exactly (ADPCM to within
/// its last block): for them any shortfall is a cut.
const LOSSY_LENGTH_SLACK: u64 = 2304;

/// The same for codecs that decode exactly: symphonia 0.5's AIFF reader counts the 8 bytes of the
/// `SSND` chunk's offset and block-size fields as samples (a 3457-sample file declares 3461).
const EXACT_LENGTH_SLACK: u64 = 16;

/// How far a decoded stream of `codec` may fall short of its declared length.
fn length_slack(codec: CodecType, frames_per_block: Option<u64>) -> u64 {
    let lossy = [
        CODEC_TYPE_MP1,
        CODEC_TYPE_MP2,
        CODEC_TYPE_MP3,
        CODEC_TYPE_AAC,
        CODEC_TYPE_VORBIS,
        CODEC_TYPE_OPUS,
    ];
    if lossy.contains(&codec) {
        LOSSY_LENGTH_SLACK
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
pub(crate) fn read_container(path: &Path, bytes: &[u8]) -> Result<Waveform> {
    read_container_from(path, &|| Ok(Box::new(std::io::Cursor::new(bytes.to_vec()))))
}

/// [`read_container`] of a file, decoded as it is read from disk (its compressed bytes are never
/// held whole: an hour of stereo FLAC is 124 MB, and was held twice).
pub(crate) fn read_container_file(path: &Path) -> Result<Waveform> {
    read_container_from(path, &|| {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(Box::new(file))
    })
}

/// Where a container's bytes come from: opened anew for each decoding pass.
type OpenSource<'a> = dyn Fn() -> Result<Box<dyn MediaSource>> + 'a;

fn read_container_from(path: &Path, open: &OpenSource<'_>) -> Result<Waveform> {
    // Channels are averaged packet by packet: an hour of decoded stereo is never held whole.
    let (samples, (rate, _)) = mono_from_blocks(|sink| decode_stream(path, open, sink))?;
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

fn malformed_mp4(path: &Path, reason: String) -> Error {
    Error::MalformedAudio {
        path: path.to_path_buf(),
        reason: format!("the file is damaged: {reason}"),
    }
}

/// Largest `moov` box checked (an hour of AAC indexes in well under 1 MB).
const MAX_MOOV_BYTES: u64 = 256 << 20;

/// For an MP4/M4A `source` (anything else passes): `Err` when a sample table of its `moov` box
/// declares more entries than the box holds. symphonia 0.5 allocates the declared count up front,
/// so one damaged count (a bad download) asked for 46 GB and aborted the whole process (found by
/// mutating the test fixtures); a file whose tables fit cannot.
fn mp4_tables_fit(source: &mut dyn MediaSource) -> std::result::Result<(), String> {
    use std::io::{Read, SeekFrom};
    let mut head = [0u8; 8];
    if source.read_exact(&mut head).is_err() || &head[4..8] != b"ftyp" {
        return Ok(());
    }
    // The top-level boxes, to `moov`.
    let mut at = 0u64;
    let moov = loop {
        if source.seek(SeekFrom::Start(at)).is_err() || source.read_exact(&mut head).is_err() {
            // No `moov` (cut short): symphonia says so.
            return Ok(());
        }
        let (size, header) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
            1 => {
                let mut large = [0u8; 8];
                if source.read_exact(&mut large).is_err() {
                    return Ok(());
                }
                (u64::from_be_bytes(large), 16)
            }
            0 => return Ok(()), // runs to the end of the file
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
    boxes_fit(&moov)
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

/// What turns a track's packets into samples: symphonia's decoders, or ours for Opus.
enum PacketDecoder {
    Symphonia(Box<dyn symphonia::core::codecs::Decoder>),
    Opus(Box<OpusPackets>),
}

/// Decode the stream `open` gives packet by packet, handing `sink` each packet's interleaved samples
/// at int16 scale and the channel count; the stream's rate and channel count once it has been
/// checked whole (length, damaged packets).
fn decode_stream(
    path: &Path,
    open: &OpenSource<'_>,
    sink: &mut dyn FnMut(&[f32], usize),
) -> Result<(u32, usize)> {
    if let Err(reason) = mp4_tables_fit(open()?.as_mut()) {
        return Err(malformed_mp4(path, reason));
    }
    // symphonia 0.5's readers unwrap where a damaged file breaks their assumptions (an MP4 `esds`
    // box, a CAF's sample counts: found by mutating the fixtures). A panic there is one bad file, not the end of a batch:
    // it becomes this file's error, and the panic hook stays quiet about it ([`guarded`]).
    guarded(|| decode_packets(path, open, sink)).unwrap_or_else(|message| {
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
    sink: &mut dyn FnMut(&[f32], usize),
) -> Result<(u32, usize)> {
    let source = open()?;
    let malformed = |reason: String| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason,
    };
    let stream = MediaSourceStream::new(source, Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
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
                        "not a FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF or MP4 stream phonrec can read ({e})"
                    ),
                }
            }
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| malformed("the container holds no audio track".to_string()))?;
    let track_id = track.id;
    let declared_frames = track.codec_params.n_frames;
    let slack = length_slack(
        track.codec_params.codec,
        track.codec_params.frames_per_block,
    );
    let mut decoder = if track.codec_params.codec == CODEC_TYPE_OPUS {
        let head = track.codec_params.extra_data.as_deref().unwrap_or(&[]);
        // The stream ends at its last page's granule position (RFC 7845), read from the file
        // itself: symphonia 0.5's length and padding for Opus are off when one page holds it all.
        let end = last_granule_position(open()?.as_mut());
        PacketDecoder::Opus(Box::new(OpusPackets::new(path, head, end)?))
    } else {
        PacketDecoder::Symphonia(
            symphonia::default::get_codecs()
                .make(&track.codec_params, &DecoderOptions::default())
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
        sink(&scaled, channels);
    }
    let Some((rate, channels)) = layout else {
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
    // A glitch or two is skipped as players skip it (each packet is ~20-30 ms); more would leave
    // holes the transcript cannot be trusted across.
    if damaged_packets * 100 > packets {
        return Err(malformed(format!(
            "{damaged_packets} of {packets} packets are damaged: too many to transcribe across"
        )));
    }
    Ok((rate, channels))
}
