//! GSM 06.10 full-rate speech (RPE-LTP, ETSI EN 300 961): what telephone systems record. Asterisk
//! keeps call recordings as raw `.gsm` files (33-byte frames) or as WAV49, Microsoft's WAV format
//! tag 0x0031 ("GSM 6.10": two frames in each 65-byte block), as do older voice-mail and dictation
//! systems. Decoded here in 16-bit fixed point as the specification defines it, bit-exact with
//! libgsm (the decoder sox uses; `tests/audio.rs` compares sample for sample).
//!
//! The decoder keeps state from frame to frame (the long-term predictor's history, the synthesis
//! filter's memory), so a stream is decoded in order, from its start.

mod fixed;
mod params;
mod synth;

use std::path::Path;

use crate::error::{Error, Result};

/// Samples per GSM 06.10 frame (20 ms at 8 kHz).
pub(crate) const FRAME_SAMPLES: usize = 160;
/// Bytes of a packed frame in `.gsm` files and RTP: a 4-bit signature (0xD), then 260 bits.
pub(crate) const FRAME_BYTES: usize = 33;
/// Bytes of a WAV49 block: two frames, 520 bits, no signatures.
pub(crate) const WAV49_BLOCK_BYTES: usize = 65;
/// The rate GSM 06.10 codes.
pub(crate) const RATE_HZ: u32 = 8_000;
/// Frames a headerless `.gsm` file needs for its content alone to say what it is (every frame's
/// signature nibble 0xD: random bytes pass with a chance of 16^-10); fewer are read by the name.
const MIN_FRAMES_BY_CONTENT: usize = 10;

/// GSM 06.10 decoder state; [`GsmDecoder::new`] is the reset state a stream starts from.
#[derive(Clone, Debug)]
pub(crate) struct GsmDecoder {
    synth: synth::Synth,
}

impl GsmDecoder {
    pub(crate) fn new() -> Self {
        GsmDecoder {
            synth: synth::Synth::new(),
        }
    }

    /// Decode one 33-byte frame (`.gsm` / RTP layout) into 160 samples; the signature nibble is
    /// not checked.
    pub(crate) fn decode_frame(&mut self, frame: &[u8; FRAME_BYTES], out: &mut [i16; 160]) {
        self.synth.decode(&params::unpack_frame(frame), out);
    }

    /// Decode one 65-byte WAV49 block into 320 samples (its first frame, then its second).
    pub(crate) fn decode_wav49_block(
        &mut self,
        block: &[u8; WAV49_BLOCK_BYTES],
        out: &mut [i16; 2 * FRAME_SAMPLES],
    ) {
        let (first, second) = out.split_at_mut(FRAME_SAMPLES);
        for (frame, half) in params::unpack_wav49(block).iter().zip([first, second]) {
            let mut samples = [0i16; FRAME_SAMPLES];
            self.synth.decode(frame, &mut samples);
            half.copy_from_slice(&samples);
        }
    }
}

/// Decode WAV49 blocks (a WAV file's GSM data chunk) to int16-scale samples; a partial block at
/// the end (a writer's pad byte, a cut file) is left out.
pub(crate) fn decode_wav49(data: &[u8]) -> Vec<f32> {
    let mut decoder = GsmDecoder::new();
    let mut samples = Vec::with_capacity(data.len() / WAV49_BLOCK_BYTES * 2 * FRAME_SAMPLES);
    let mut out = [0i16; 2 * FRAME_SAMPLES];
    for block in data.chunks_exact(WAV49_BLOCK_BYTES) {
        let block: &[u8; WAV49_BLOCK_BYTES] = block.try_into().unwrap_or(&[0; WAV49_BLOCK_BYTES]);
        decoder.decode_wav49_block(block, &mut out);
        samples.extend(out.iter().map(|&s| f32::from(s)));
    }
    samples
}

/// Whether `bytes` are a headerless `.gsm` file: 33-byte frames, each starting with the signature
/// nibble 0xD. Told by content alone with whole frames only and at least
/// [`MIN_FRAMES_BY_CONTENT`] of them; a file named `*.gsm` needs one (a partial frame at its end
/// is then [`read_gsm`]'s error).
pub(crate) fn is_gsm(bytes: &[u8], name: &Path) -> bool {
    let named = name
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gsm"));
    let frames = bytes.len() / FRAME_BYTES;
    let signed = frames > 0 && bytes.chunks_exact(FRAME_BYTES).all(|f| f[0] >> 4 == 0xD);
    let by_content = bytes.len().is_multiple_of(FRAME_BYTES) && frames >= MIN_FRAMES_BY_CONTENT;
    signed && (named || by_content)
}

/// Decode a headerless `.gsm` file (`path` names it in errors): 8 kHz samples at int16 scale.
pub(crate) fn read_gsm(path: &Path, bytes: &[u8]) -> Result<crate::audio::Waveform> {
    if !bytes.len().is_multiple_of(FRAME_BYTES) {
        return Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!(
                "a GSM 06.10 file is whole 33-byte frames; this one has {} bytes after its last \
                 whole frame (cut short?)",
                bytes.len() % FRAME_BYTES
            ),
        });
    }
    let mut decoder = GsmDecoder::new();
    let mut samples = Vec::with_capacity(bytes.len() / FRAME_BYTES * FRAME_SAMPLES);
    let mut out = [0i16; FRAME_SAMPLES];
    for frame in bytes.chunks_exact(FRAME_BYTES) {
        let frame: &[u8; FRAME_BYTES] = frame.try_into().unwrap_or(&[0; FRAME_BYTES]);
        decoder.decode_frame(frame, &mut out);
        samples.extend(out.iter().map(|&s| f32::from(s)));
    }
    Ok(crate::audio::Waveform {
        samples,
        sample_rate_hz: RATE_HZ,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic bytes for the no-panic checks.
    fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    /// Any bytes decode (the fixed-point arithmetic saturates, never overflows: the tests run
    /// with overflow checks in debug builds), to samples with the decoder's 13-bit resolution.
    #[test]
    fn arbitrary_frames_and_blocks_decode_without_panicking() {
        let blocks = random_bytes(0x9E37_79B9_7F4A_7C15, 3_000 * WAV49_BLOCK_BYTES);
        let samples = decode_wav49(&blocks);
        assert_eq!(samples.len(), 3_000 * 2 * FRAME_SAMPLES);
        assert!(samples.iter().all(|&s| (s as i32) & 7 == 0));
        assert!(samples.iter().any(|&s| s != 0.0));
        let mut frames = random_bytes(7, 3_000 * FRAME_BYTES);
        for frame in frames.chunks_exact_mut(FRAME_BYTES) {
            frame[0] = 0xD0 | (frame[0] & 0x0F);
        }
        assert!(is_gsm(&frames, Path::new("x.raw")));
        let wave = read_gsm(Path::new("x.gsm"), &frames).unwrap();
        assert_eq!(wave.samples.len(), 3_000 * FRAME_SAMPLES);
        for pattern in [0x00u8, 0xFF, 0xAA, 0x55] {
            decode_wav49(&[pattern; 10 * WAV49_BLOCK_BYTES]);
        }
        // Decoding is a function of the bytes from the reset state.
        assert_eq!(decode_wav49(&blocks[..650]), decode_wav49(&blocks[..650]));
    }

    #[test]
    fn headerless_gsm_is_told_by_its_signatures_or_its_name() {
        let frame = |n: usize| {
            let mut bytes = vec![0x11; n * FRAME_BYTES];
            for f in bytes.chunks_exact_mut(FRAME_BYTES) {
                f[0] = 0xD3;
            }
            bytes
        };
        assert!(is_gsm(&frame(10), Path::new("call")));
        assert!(!is_gsm(&frame(3), Path::new("call")));
        assert!(is_gsm(&frame(3), Path::new("call.GSM")));
        let mut unsigned = frame(20);
        unsigned[5 * FRAME_BYTES] = 0xC3;
        assert!(!is_gsm(&unsigned, Path::new("call.gsm")));
        assert!(!is_gsm(&frame(20)[..600], Path::new("call")));
        assert!(is_gsm(&frame(20)[..600], Path::new("cut.gsm")));
        let error = read_gsm(Path::new("cut.gsm"), &frame(20)[..600]).unwrap_err();
        assert!(error.to_string().contains("cut short"), "{error}");
    }
}
