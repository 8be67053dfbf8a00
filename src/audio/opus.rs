//! Opus in Ogg (`.opus`, `.ogg`, `.oga`: messaging apps' voice messages), in WebM (browsers) and
//! in MP4, decoded with the `opus-decoder` crate, a pure-Rust decoder that passes the RFC 8251
//! conformance vectors; symphonia demuxes the Ogg pages but has no Opus decoder.
//!
//! What RFC 7845 asks of a player, done here: the stream decodes at 48 kHz; the first `pre-skip`
//! samples are the encoder's start-up and dropped; the header's output gain is applied. Streams of
//! one Opus stream (mono or stereo, as voice messages are) are read; multistream files (surround)
//! are refused with a conversion command: the crate's multistream decoder does not parse the
//! self-delimited framing of RFC 6716 appendix B (every packet of a 6-channel opusenc file failed).
//! The end is trimmed at the last page's granule position.

use std::path::Path;

use opus_decoder::OpusDecoder;

use crate::error::{Error, Result};

/// Opus always decodes at 48 kHz (RFC 7845: the header's input rate is informational only).
pub(crate) const OPUS_RATE_HZ: u32 = 48_000;

/// Longest Opus packet: 120 ms at 48 kHz, per channel.
const MAX_PACKET_FRAMES: usize = 5760;

/// Bytes of an `OpusHead` before the channel mapping table: magic (8), version, channels,
/// pre-skip (2), input rate (4), gain (2), mapping family.
const HEAD_FIXED_BYTES: usize = 19;

/// Decodes one Ogg Opus stream's packets in order.
pub(crate) struct OpusPackets {
    decoder: OpusDecoder,
    channels: usize,
    /// Samples per channel still to drop from the start (pre-skip).
    skip: usize,
    /// Linear factor of the header's output gain.
    gain: f32,
    /// Samples per channel the stream holds after pre-skip, when the container says.
    total_frames: Option<u64>,
    /// Samples per channel given out so far.
    delivered: u64,
    pcm: Vec<i16>,
}

impl OpusPackets {
    /// A decoder for the stream of `path` whose `OpusHead` packet is `head`; `end` is its last
    /// granule position when known (samples per channel through the stream's end, pre-skip
    /// included: what the last packet decodes past it is padding).
    pub(crate) fn new(path: &Path, head: &[u8], end: Option<u64>) -> Result<Self> {
        if head.len() < HEAD_FIXED_BYTES || !head.starts_with(b"OpusHead") {
            return Err(Error::MalformedAudio {
                path: path.to_path_buf(),
                reason: "the Opus stream has no valid OpusHead header".to_string(),
            });
        }
        // Ogg and WebM carry RFC 7845's `OpusHead` (version 1, little-endian fields); MP4 carries
        // the `dOps` box, which symphonia hands over behind the same magic: version 0 and
        // big-endian fields (Encapsulation of Opus in ISOBMFF, section 4.3.2).
        let big_endian = head[8] == 0;
        let field = |at: usize| {
            let raw = [head[at], head[at + 1]];
            if big_endian {
                u16::from_be_bytes(raw)
            } else {
                u16::from_le_bytes(raw)
            }
        };
        let channels = usize::from(head[9]);
        let pre_skip = usize::from(field(10));
        let gain_q8 = field(16) as i16;
        let family = head[18];
        // Family 0 is one stream of one or two channels; otherwise the table after the fixed part
        // gives the streams and maps them onto channels: one stream in channel order is family 0.
        let single_stream = match family {
            0 => (1..=2).contains(&channels),
            _ => head
                .get(HEAD_FIXED_BYTES..HEAD_FIXED_BYTES + 2 + channels)
                .is_some_and(|table| {
                    table[0] == 1
                        && usize::from(table[1]) + 1 == channels
                        && table[2..]
                            .iter()
                            .enumerate()
                            .all(|(i, &m)| usize::from(m) == i)
                }),
        };
        if !single_stream {
            return Err(Error::UnsupportedEncoding {
                path: path.to_path_buf(),
                encoding: format!(
                    "multistream Opus ({channels} channels, channel mapping family {family})"
                ),
                hint: Some(
                    "mono and stereo Opus are read; convert with e.g. `opusdec in.opus out.wav` \
                     or `ffmpeg -i in.opus out.wav`"
                        .to_string(),
                ),
            });
        }
        let decoder =
            OpusDecoder::new(OPUS_RATE_HZ, channels).map_err(|e| Error::MalformedAudio {
                path: path.to_path_buf(),
                reason: format!("the Opus decoder refused the stream: {e}"),
            })?;
        Ok(OpusPackets {
            decoder,
            channels,
            skip: pre_skip,
            gain: 10f32.powf(f32::from(gain_q8) / (20.0 * 256.0)),
            total_frames: end.map(|end| end.saturating_sub(pre_skip as u64)),
            delivered: 0,
            pcm: vec![0; MAX_PACKET_FRAMES * channels],
        })
    }

    pub(crate) fn channels(&self) -> usize {
        self.channels
    }

    /// Decode one packet into `out` (interleaved, int16 scale); true when the packet was damaged
    /// and its samples are the decoder's concealment (RFC 6716's packet loss concealment) instead.
    pub(crate) fn decode(&mut self, packet: &[u8], out: &mut Vec<f32>) -> bool {
        out.clear();
        let (frames, damaged) = match self.decoder.decode(packet, &mut self.pcm, false) {
            Ok(frames) => (frames, false),
            // An empty packet asks for concealment; if even that fails, the packet gives nothing.
            Err(_) => (
                self.decoder.decode(&[], &mut self.pcm, false).unwrap_or(0),
                true,
            ),
        };
        let dropped = frames.min(self.skip);
        self.skip -= dropped;
        let mut kept = (frames - dropped) as u64;
        if let Some(total) = self.total_frames {
            kept = kept.min(total.saturating_sub(self.delivered));
        }
        self.delivered += kept;
        let start = dropped * self.channels;
        let end = start + kept as usize * self.channels;
        // The decoder's i16 output is already at int16 scale.
        out.extend(
            self.pcm[start..end]
                .iter()
                .map(|&s| f32::from(s) * self.gain),
        );
        damaged
    }
}
