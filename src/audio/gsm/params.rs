//! Unpacking of the 76 coded parameters (260 bits) of one 20 ms frame, in
//! the order of GSM 06.10 clause 1.7 ("Sequence and subjective importance
//! of encoded parameters"), from the two byte layouts in common use.
//!
//! Parameter order is the same in both layouts:
//!
//! * `LARc[1..8]` with 6, 6, 5, 5, 4, 4, 3, 3 bits;
//! * then, for each of the four sub-frames: `Nc` (7 bits), `bc` (2),
//!   `Mc` (2), `xmaxc` (6) and `xMc[0..12]` (13 x 3 bits).
//!
//! The layouts differ only in how that sequence is written to bytes:
//!
//! * the 33-byte frame (`.gsm` files, RTP payload type 3) starts with the
//!   4-bit signature 0xD and stores every field most significant bit first,
//!   filling each byte from its most significant bit;
//! * Microsoft's WAV49 (format tag 0x0031) has no signature and writes the
//!   fields of two consecutive frames into one 65-byte block as a single
//!   little-endian bit stream: each field least significant bit first,
//!   filling each byte from its least significant bit. The first frame
//!   occupies stream bits 0..260 (bytes 0..31 and the low nibble of byte
//!   32), the second frame stream bits 260..520 (the high nibble of byte 32
//!   and bytes 33..64).

/// Bit widths of `LARc[1..8]`.
const LAR_BITS: [u32; 8] = [6, 6, 5, 5, 4, 4, 3, 3];

/// Coded parameters of one 5 ms sub-frame (40 samples).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SubframeParams {
    /// LTP lag `Nc` (valid range 40..=120; other values reuse the previous lag).
    pub nc: u8,
    /// Coded LTP gain `bc` (0..=3).
    pub bc: u8,
    /// RPE grid position `Mc` (0..=3).
    pub mc: u8,
    /// Coded block maximum `xmaxc` (0..=63).
    pub xmaxc: u8,
    /// Coded RPE pulses `xMc` (0..=7 each).
    pub xmc: [u8; 13],
}

/// Coded parameters of one 20 ms frame (160 samples).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FrameParams {
    /// Coded log-area ratios `LARc[1..8]`, as transmitted (i.e. offset so that
    /// the smallest value is 0; the decoder adds `MIC` back).
    pub larc: [u8; 8],
    pub subframes: [SubframeParams; 4],
}

/// A source of bit fields of at most 8 bits.
trait BitSource {
    fn take(&mut self, bits: u32) -> u8;
}

/// Reads a byte slice as an MSB-first bit stream (33-byte frame layout).
struct MsbFirst<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl BitSource for MsbFirst<'_> {
    fn take(&mut self, bits: u32) -> u8 {
        let mut value = 0u8;
        for _ in 0..bits {
            // Reading past the end yields zero bits; with the fixed frame
            // sizes used here it never happens.
            let byte = self.bytes.get(self.pos / 8).copied().unwrap_or(0);
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            value = (value << 1) | bit;
            self.pos += 1;
        }
        value
    }
}

/// Reads a byte slice as an LSB-first bit stream (WAV49 layout).
struct LsbFirst<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl BitSource for LsbFirst<'_> {
    fn take(&mut self, bits: u32) -> u8 {
        let mut value = 0u8;
        for i in 0..bits {
            let byte = self.bytes.get(self.pos / 8).copied().unwrap_or(0);
            let bit = (byte >> (self.pos % 8)) & 1;
            value |= bit << i;
            self.pos += 1;
        }
        value
    }
}

/// Reads the 260 bits of one frame's parameters, in transmission order.
fn read_frame(src: &mut impl BitSource) -> FrameParams {
    let mut frame = FrameParams::default();
    for (larc, &bits) in frame.larc.iter_mut().zip(LAR_BITS.iter()) {
        *larc = src.take(bits);
    }
    for sub in frame.subframes.iter_mut() {
        sub.nc = src.take(7);
        sub.bc = src.take(2);
        sub.mc = src.take(2);
        sub.xmaxc = src.take(6);
        for x in sub.xmc.iter_mut() {
            *x = src.take(3);
        }
    }
    frame
}

/// Unpacks a 33-byte frame. The leading signature nibble (normally 0xD) is
/// skipped without being checked.
pub(crate) fn unpack_frame(frame: &[u8; 33]) -> FrameParams {
    let mut src = MsbFirst {
        bytes: frame,
        pos: 0,
    };
    let _signature = src.take(4);
    read_frame(&mut src)
}

/// Unpacks a 65-byte WAV49 block into its two frames.
pub(crate) fn unpack_wav49(block: &[u8; 65]) -> [FrameParams; 2] {
    let mut src = LsbFirst {
        bytes: block,
        pos: 0,
    };
    let first = read_frame(&mut src);
    let second = read_frame(&mut src);
    [first, second]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msb_first_fields() {
        // Signature 0xD, then LARc[1] = 0b100100, LARc[2] = 0b011110.
        let mut frame = [0u8; 33];
        frame[0] = 0xD9;
        frame[1] = 0x1E;
        let p = unpack_frame(&frame);
        assert_eq!(p.larc[0], 36);
        assert_eq!(p.larc[1], 30);
    }

    #[test]
    fn lsb_first_fields_and_half_byte_split() {
        let mut block = [0u8; 65];
        block[0] = 0xA4; // LARc[1] = 0x24 in bits 0..6, bits 6..8 start LARc[2]
        block[1] = 0x07;
        // Second frame's LARc[1] starts at stream bit 260: high nibble of
        // byte 32 (low 4 bits of the field), then byte 33 (top 2 bits).
        block[32] = 0x50;
        block[33] = 0x02;
        let [a, b] = unpack_wav49(&block);
        assert_eq!(a.larc[0], 0x24);
        assert_eq!(a.larc[1], 2 | (7 << 2));
        assert_eq!(b.larc[0], 0x05 | (0x02 << 4));
    }
}
