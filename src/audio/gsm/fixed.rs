//! Saturating 16-bit fixed-point operators of GSM 06.10
//! (ETSI EN 300 961, clause 5.1 "Data representation and arithmetic
//! operations").
//!
//! All decoder arithmetic is defined on 16-bit words. Additions and
//! subtractions saturate to the `i16` range, and the fractional product
//! `mult_r` treats the operands as Q15 values and rounds.

/// `add(var1, var2)`: addition with saturation to [-32768, 32767].
#[inline]
pub(crate) fn add(a: i16, b: i16) -> i16 {
    a.saturating_add(b)
}

/// `sub(var1, var2)`: subtraction with saturation to [-32768, 32767].
#[inline]
pub(crate) fn sub(a: i16, b: i16) -> i16 {
    a.saturating_sub(b)
}

/// `mult_r(var1, var2)`: Q15 product with rounding,
/// `(var1 * var2 + 16384) >> 15`, with `mult_r(-32768, -32768) = 32767`.
#[inline]
pub(crate) fn mult_r(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        i16::MAX
    } else {
        // |a * b| < 2^30 here, so the sum and the shifted result fit.
        ((i32::from(a) * i32::from(b) + 16384) >> 15) as i16
    }
}

/// `abs(var1)`: absolute value with `abs(-32768) = 32767`.
#[inline]
pub(crate) fn abs(a: i16) -> i16 {
    a.saturating_abs()
}

/// Arithmetic shift right of a 16-bit word by `n` bits (`>>` in the spec).
/// A negative `n` shifts left instead; shifts of 16 or more give the sign
/// fill (right) or zero (left), so every count is well defined.
#[inline]
pub(crate) fn shr(a: i16, n: i32) -> i16 {
    if n < 0 {
        shl(a, n.saturating_neg())
    } else if n >= 16 {
        if a < 0 {
            -1
        } else {
            0
        }
    } else {
        a >> n
    }
}

/// Shift left of a 16-bit word by `n` bits (`<<` in the spec), keeping the
/// low 16 bits. A negative `n` shifts right instead.
#[inline]
pub(crate) fn shl(a: i16, n: i32) -> i16 {
    if n < 0 {
        shr(a, n.saturating_neg())
    } else if n >= 16 {
        0
    } else {
        (i32::from(a) << n) as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation() {
        assert_eq!(add(32000, 1000), 32767);
        assert_eq!(add(-32000, -1000), -32768);
        assert_eq!(sub(-32000, 1000), -32768);
        assert_eq!(sub(32000, -1000), 32767);
        assert_eq!(mult_r(-32768, -32768), 32767);
        assert_eq!(mult_r(16384, 16384), 8192);
        assert_eq!(mult_r(-1, 16384), 0); // (-16384 + 16384) >> 15
        assert_eq!(abs(-32768), 32767);
    }

    #[test]
    fn shifts() {
        assert_eq!(shr(-5, 1), -3);
        assert_eq!(shr(-5, 20), -1);
        assert_eq!(shr(1, -3), 8);
        assert_eq!(shl(1, -1), 0);
        assert_eq!(shl(1, 9), 512);
        assert_eq!(shl(3, 20), 0);
        assert_eq!(shr(7, i32::MIN), 0);
        assert_eq!(shl(7, i32::MIN), 0);
    }
}
