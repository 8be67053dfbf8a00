//! The RPE-LTP decoder proper: GSM 06.10 clause 5.3 ("Fixed point
//! implementation of the RPE-LTP decoder"), which reuses the encoder's
//! clauses 5.2.8 (LAR decoding), 5.2.9 (interpolation and LAR -> reflection
//! coefficients), 5.2.16 (APCM inverse quantisation) and 5.2.17 (RPE grid
//! positioning). Clause numbers follow clause 5 ("Computational details")
//! of ETSI EN 300 961; older GSM 06.10 editions number the same steps 4.x.

use super::fixed::{abs, add, mult_r, shl, shr, sub};
use super::params::{FrameParams, SubframeParams};

/// `FAC[0..7]`: normalised mantissas for APCM inverse quantisation
/// (clause 5.2.16), in Q15.
const FAC: [i16; 8] = [18431, 20479, 22527, 24575, 26623, 28671, 30719, 32767];

/// `QLB[0..3]`: decoded LTP gain `brp` for each code `bc`, in Q15.
const QLB: [i16; 4] = [3277, 11469, 21299, 32767];

/// LAR coding constants of clauses 5.2.7/5.2.8: offsets `MIC` (the smallest
/// coded value), and `B` and `INVA = 1/A` of the linear mapping LAR -> LARc.
const MIC: [i16; 8] = [-32, -32, -16, -16, -8, -8, -4, -4];
const B: [i16; 8] = [0, 0, 2048, -2560, 94, -1792, -341, -1144];
const INVA: [i16; 8] = [13107, 13107, 13107, 13107, 19223, 17476, 31454, 29708];

/// De-emphasis filter coefficient beta = 28180 / 32768 (clause 5.3.5).
const BETA: i16 = 28180;

/// Sub-frame length in samples.
const SUB: usize = 40;
/// Longest LTP lag, i.e. how much reconstructed residual history is kept.
const MAX_LAG: usize = 120;

/// Sample ranges of the frame that use one set of interpolated LARs
/// (clause 5.2.9.1): k = 0..12, 13..26, 27..39 and 40..159.
const LAR_SEGMENTS: [(usize, usize); 4] = [(0, 13), (13, 27), (27, 40), (40, 160)];

/// Decoder memory. `Synth::new()` is the decoder's reset state.
#[derive(Clone, Debug)]
pub(crate) struct Synth {
    /// Reconstructed short-term residual `drp`: indices `0..120` hold
    /// `drp[-120..-1]` (previous sub-frames), `120..160` the current
    /// sub-frame `drp[0..39]`.
    drp: [i16; MAX_LAG + SUB],
    /// Last valid LTP lag `nrp` (clause 5.3.2); reset value 40.
    nrp: usize,
    /// Decoded LARs `LARpp(j-1)` of the previous frame.
    larpp_prev: [i16; 8],
    /// State `v[0..8]` of the short-term synthesis lattice (clause 5.3.4).
    v: [i16; 9],
    /// De-emphasis filter memory `msr` (clause 5.3.5).
    msr: i16,
}

impl Synth {
    pub(crate) fn new() -> Self {
        Synth {
            drp: [0; MAX_LAG + SUB],
            nrp: 40,
            larpp_prev: [0; 8],
            v: [0; 9],
            msr: 0,
        }
    }

    /// Decodes one frame of parameters into 160 output samples.
    pub(crate) fn decode(&mut self, frame: &FrameParams, out: &mut [i16; 160]) {
        // Reconstructed short-term residual of the whole frame, `wt`.
        let mut wt = [0i16; 160];
        for (sub_frame, wt_sub) in frame.subframes.iter().zip(wt.chunks_exact_mut(SUB)) {
            let erp = rpe_decoding(sub_frame);
            self.long_term_synthesis(sub_frame.nc, sub_frame.bc, &erp);
            wt_sub.copy_from_slice(&self.drp[MAX_LAG..]);
            // End of clause 5.3.2: drp[-120+k] = drp[-80+k], k = 0..119.
            self.drp.copy_within(SUB.., 0);
        }
        self.short_term_synthesis(&frame.larc, &wt, out);
        self.postprocess(out);
    }

    /// Clause 5.3.2, long term synthesis filtering:
    /// `drp[k] = erp[k] + brp * drp[k - Nr]`.
    fn long_term_synthesis(&mut self, ncr: u8, bcr: u8, erp: &[i16; SUB]) {
        // Only lags 40..=120 are valid; otherwise the previous lag is kept.
        let nr = if (40..=120).contains(&ncr) {
            usize::from(ncr)
        } else {
            self.nrp
        };
        self.nrp = nr;
        // Decoding of the LTP gain.
        let brp = QLB[usize::from(bcr & 3)];
        for (k, &e) in erp.iter().enumerate() {
            // nr >= 40 > k, so this reads only the history part of `drp`.
            let drpp = mult_r(brp, self.drp[MAX_LAG + k - nr]);
            self.drp[MAX_LAG + k] = add(e, drpp);
        }
    }

    /// Clause 5.3.3 (computation of the decoded reflection coefficients,
    /// via clauses 5.2.8 and 5.2.9) and clause 5.3.4 (short term synthesis
    /// filtering) for one frame.
    fn short_term_synthesis(&mut self, larc: &[u8; 8], wt: &[i16; 160], sr: &mut [i16; 160]) {
        let larpp = decode_lars(larc);
        for (segment, &(start, end)) in LAR_SEGMENTS.iter().enumerate() {
            let larp = interpolate_lars(&self.larpp_prev, &larpp, segment);
            let rrp = lars_to_reflection(&larp);
            for (s, &w) in sr[start..end].iter_mut().zip(&wt[start..end]) {
                *s = self.lattice(&rrp, w);
            }
        }
        self.larpp_prev = larpp;
    }

    /// Clause 5.3.4: one sample through the 8-stage synthesis lattice.
    ///
    /// For i = 8 down to 1:
    ///   `sri = sri - rrp[i] * v[i-1]`, `v[i] = v[i-1] + rrp[i] * sri`;
    /// then `v[0] = sri`. (Here `rrp` is 0-based, so `rrp[i-1]` above.)
    fn lattice(&mut self, rrp: &[i16; 8], input: i16) -> i16 {
        let mut sri = input;
        for i in (0..8).rev() {
            sri = sub(sri, mult_r(rrp[i], self.v[i]));
            self.v[i + 1] = add(self.v[i], mult_r(rrp[i], sri));
        }
        self.v[0] = sri;
        sri
    }

    /// Clauses 5.3.5 (de-emphasis, `msr = sr + beta * msr`), 5.3.6
    /// (upscaling by 2 with saturation) and 5.3.7 (truncation of the three
    /// least significant bits, i.e. `& 0xFFF8`, to a 13-bit output).
    fn postprocess(&mut self, samples: &mut [i16; 160]) {
        for s in samples.iter_mut() {
            let temp = add(*s, mult_r(self.msr, BETA));
            self.msr = temp;
            *s = add(temp, temp) & !7;
        }
    }
}

/// Clause 5.3.1, RPE decoding of one sub-frame: inverse APCM quantisation
/// of the 13 pulses followed by grid positioning, giving `erp[0..39]`.
fn rpe_decoding(sub_frame: &SubframeParams) -> [i16; SUB] {
    let (exp, mant) = xmaxc_to_exp_mant(sub_frame.xmaxc);
    let xmp = apcm_inverse_quantization(&sub_frame.xmc, exp, mant);
    rpe_grid_positioning(sub_frame.mc, &xmp)
}

/// Clause 5.3.1 (as in 5.2.15): exponent and mantissa of the decoded block
/// maximum `xmaxc`. Returns `exp` in -4..=6 and `mant` in 0..=7.
fn xmaxc_to_exp_mant(xmaxc: u8) -> (i16, usize) {
    let xmaxc = i16::from(xmaxc & 63);
    let mut exp: i16 = if xmaxc > 15 { (xmaxc >> 3) - 1 } else { 0 };
    let mut mant = xmaxc - (exp << 3);
    if mant == 0 {
        exp = -4;
        mant = 7;
    } else {
        // Normalise the mantissa into 8..=15, then drop the implicit bit.
        while mant <= 7 {
            mant = (mant << 1) | 1;
            exp -= 1;
        }
        mant -= 8;
    }
    // mant is in 0..=7 on every path.
    (exp, usize::from(mant as u8 & 7))
}

/// Clause 5.2.16, APCM inverse quantisation: maps the 3-bit pulse codes
/// back to `xMp[i] = ((2 * xMc[i] - 7) * FAC[mant]) >> (6 - exp)`, rounded.
fn apcm_inverse_quantization(xmc: &[u8; 13], exp: i16, mant: usize) -> [i16; 13] {
    let temp1 = FAC[mant];
    let temp2 = sub(6, exp); // shift count, 0..=10
    let temp3 = shl(1, i32::from(sub(temp2, 1))); // rounding term
    let mut xmp = [0i16; 13];
    for (out, &code) in xmp.iter_mut().zip(xmc.iter()) {
        // Reconstruction level in -7..=7 (odd), scaled to Q12.
        let level = (i16::from(code & 7) << 1) - 7;
        let temp = mult_r(temp1, level << 12);
        *out = shr(add(temp, temp3), i32::from(temp2));
    }
    xmp
}

/// Clause 5.2.17, RPE grid positioning: the 13 pulses are placed every
/// third sample starting at offset `Mc`; all other samples are zero.
fn rpe_grid_positioning(mc: u8, xmp: &[i16; 13]) -> [i16; SUB] {
    let mut ep = [0i16; SUB];
    let offset = usize::from(mc & 3);
    for (i, &x) in xmp.iter().enumerate() {
        ep[offset + 3 * i] = x; // at most 3 + 36 = 39
    }
    ep
}

/// Clause 5.2.8, decoding of the coded log-area ratios,
/// `LARpp = (LARc - B) / A` with the signed code `LARc = code + MIC`,
/// computed as `2 * mult_r(INVA, ((code + MIC) << 10) - 2 * B)`.
fn decode_lars(larc: &[u8; 8]) -> [i16; 8] {
    std::array::from_fn(|i| {
        let centred = add(i16::from(larc[i] & 63), MIC[i]);
        let temp = sub(shl(centred, 10), shl(B[i], 1));
        let temp = mult_r(INVA[i], temp);
        add(temp, temp)
    })
}

/// Clause 5.2.9.1, interpolation of the LARs between the previous frame's
/// `LARpp(j-1)` and the current `LARpp(j)` for the given sample segment:
/// 3/4 old + 1/4 new, 1/2 + 1/2, 1/4 old + 3/4 new, then the new set.
fn interpolate_lars(prev: &[i16; 8], cur: &[i16; 8], segment: usize) -> [i16; 8] {
    std::array::from_fn(|i| {
        let (old, new) = (prev[i], cur[i]);
        match segment {
            0 => add(add(old >> 2, new >> 2), old >> 1),
            1 => add(old >> 1, new >> 1),
            2 => add(add(old >> 2, new >> 2), new >> 1),
            _ => new,
        }
    })
}

/// Clause 5.2.9.2, computation of the reflection coefficients `rp` from the
/// interpolated LARs (piecewise-linear inverse of the LAR transform).
fn lars_to_reflection(larp: &[i16; 8]) -> [i16; 8] {
    std::array::from_fn(|i| {
        let lar = larp[i];
        let a = abs(lar);
        let r = if a < 11059 {
            a << 1
        } else if a < 20070 {
            a + 11059
        } else {
            add(a >> 2, 26112)
        };
        // r <= 32767, so the negation cannot overflow.
        if lar < 0 {
            -r
        } else {
            r
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_mant_ranges() {
        for x in 0..64u8 {
            let (exp, mant) = xmaxc_to_exp_mant(x);
            assert!((-4..=6).contains(&exp), "xmaxc {x}: exp {exp}");
            assert!(mant < 8);
        }
        assert_eq!(xmaxc_to_exp_mant(0), (-4, 7));
        assert_eq!(xmaxc_to_exp_mant(1), (-3, 7));
        assert_eq!(xmaxc_to_exp_mant(63), (6, 7));
    }

    #[test]
    fn reflection_of_extremes() {
        let r = lars_to_reflection(&[i16::MIN, i16::MAX, 0, 11058, 11059, 20069, 20070, -1]);
        assert_eq!(r, [-32767, 32767, 0, 22116, 22118, 31128, 31129, -2]);
    }
}
