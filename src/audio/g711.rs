//! ITU-T G.711 µ-law and A-law: the 8-bit companded encodings of telephone audio (WAV format tags 7
//! and 6, NIST SPHERE `ulaw`/`alaw`), decoded to 16-bit linear values exactly as sox and the
//! standard's reference tables do.

/// Decode one µ-law byte to a linear value in ±32124.
pub(crate) fn mulaw_to_linear(byte: u8) -> i16 {
    // Bytes are stored inverted; then sign, a 3-bit exponent (segment) and a 4-bit mantissa, with
    // the bias of 0x84 (132) that makes the segments line up.
    const BIAS: i32 = 0x84;
    let code = !byte;
    let exponent = (code >> 4) & 0x07;
    let mantissa = i32::from(code & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    let value = if code & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    };
    value as i16
}

/// Decode one A-law byte to a linear value in ±32256.
pub(crate) fn alaw_to_linear(byte: u8) -> i16 {
    // Even bits are stored inverted (XOR 0x55); a set sign bit means positive.
    let code = byte ^ 0x55;
    let exponent = (code >> 4) & 0x07;
    let mantissa = i32::from(code & 0x0F);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    let value = if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    };
    value as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_matches_the_reference_table() {
        // Values of sox 14.4.2 (`sox -e mu-law ... -e signed -b 16`) for these codes.
        for (code, linear) in [
            (0x00u8, -32124i16),
            (0x10, -15996),
            (0x7F, 0),
            (0x80, 32124),
            (0xFF, 0),
        ] {
            assert_eq!(mulaw_to_linear(code), linear, "code {code:#04x}");
        }
        // Symmetric: flipping the sign bit negates the value; magnitudes fall with the code.
        for code in 0..0x80u8 {
            assert_eq!(mulaw_to_linear(code), -mulaw_to_linear(code | 0x80));
            if code > 0 {
                assert!(mulaw_to_linear(code) > mulaw_to_linear(code - 1));
            }
        }
    }

    #[test]
    fn alaw_matches_the_reference_table() {
        for (code, linear) in [
            (0x00u8, -5504i16),
            (0x2A, -32256),
            (0x55, -8),
            (0xAA, 32256),
            (0xD5, 8),
        ] {
            assert_eq!(alaw_to_linear(code), linear, "code {code:#04x}");
        }
        for code in 0..0x80u8 {
            assert_eq!(alaw_to_linear(code), -alaw_to_linear(code | 0x80));
        }
        // Every code decodes to a distinct value: the 256 levels of the standard.
        let mut values: Vec<i16> = (0..=255u8).map(alaw_to_linear).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), 256);
    }
}
