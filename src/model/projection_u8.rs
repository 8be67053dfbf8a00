//! Input projections in 8 bits, for [`Precision::Int8`](super::Precision::Int8) on CPUs where
//! that outruns bf16 or f32 and AMX does not run ([`Int8Projections`]): the layer's input (an LSTM
//! layer's output, in (−1, 1)) rounded to 127ths (63rds on AVX2 without VNNI) and offset to `u8`,
//! each row of `W_ih` (one output column of the product) quantised to `i8` on its own scale, the
//! products summed exactly in `i32` by `vpdpbusd` (AVX512-VNNI: 64 multiply-adds per instruction,
//! against 16 for an f32 FMA and 32 for `vpdpwssd`; or AVX-VNNI's 256-bit form where AVX2 is
//! chosen, 32 against an 8-lane FMA's 8: Intel laptops since Alder Lake), or on other AVX2 CPUs by
//! `vpmaddubsw` + `vpmaddwd` + `vpaddd` (32 in three instructions, two of them on the vector
//! multipliers: 1.5–2× the FMA's rate where there are two multipliers, as on Intel cores since
//! Skylake and AMD Zen 3, 4 and 5; not measured on Zen 2 or Haswell, which have one).
//!
//! Why: the input projections run over all frames at once, so they are bound by multiply-adds, not
//! by bytes. On Intel cores without AMX `vdpbf16ps` issues at half an f32 FMA's rate and `vpdpwssd`
//! (the recurrence's int8 kernel) at f32's, so an hour of short clips was bound by f32 projections
//! there; `vpdpbusd` issues as `vpdpwssd` does with twice its products per instruction. So they
//! run in 8 bits wherever one of these kernels does ([`Int8Projections`]; the rates are measured
//! for `phonrec bench`'s report, [`u8_rate_ratio`], not to choose). With AMX the projections run
//! on its bf16 tiles.
//!
//! Accuracy: eight bits simulated in f32 on every evaluation set and condition (BENCHMARKS.md,
//! 2026-12-07), set means within 0.15 points of PER of f32 projections; seven bits measured with
//! the kernel (BENCHMARKS.md, 2026-12-07 evening). The features' projection (layer 1) never comes
//! here: features are unbounded log-energies.
//!
//! The arithmetic, with `S` the left-hand side's steps and `O` its stored zero ([`LhsFormat`]:
//! 127 and 128, or 63 and 64): `u_k = round(S x_k)` clamped to ±S and stored as `u_k + O` (`u8`,
//! what the instructions multiply), `q_kc = round(w_kc / s_c)` with `s_c = max_k |w_kc| / 127`.
//! Then `Σ_k x_k w_kc ≈ (s_c / S) (Σ_k (u_k + O) q_kc − O Σ_k q_kc)`, the last sum precomputed
//! per column; every integer sum is exact (|Σ| ≤ 255 · 127 · k; `vpmaddubsw`'s pair sums at most
//! 2 · 127 · 127 < 2¹⁵ with seven bits), so the kernels agree to the bit.
//!
//! Layout: panels of 32 columns, each stored `[k/4][32][4]` of `i8`: per group of four rows of `W`
//! the four weights of each column side by side, the operand layout of `vpdpbusd` (each 32-bit lane
//! one column's four weights against four consecutive `u8` of the left-hand side).

use super::int8::largest_magnitude;
use super::kernels::for_row_blocks;

/// Columns per packed panel: two 16-lane registers.
const PANEL: usize = 32;
/// Rows of the result kept in registers by the AVX-512 micro-kernel.
const TILE_ROWS: usize = 8;
/// Steps per unit of each column's largest weight.
const STEPS: f32 = 127.0;

/// How the left-hand side is rounded to `u8`: `round(steps · x)` clamped to ±`steps`, stored plus
/// `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LhsFormat {
    steps: u8,
    offset: u8,
}

impl LhsFormat {
    /// 127ths, stored in 1..=255: for `vpdpbusd`, which sums its four products in 32 bits.
    pub(crate) const EIGHT_BITS: LhsFormat = LhsFormat {
        steps: 127,
        offset: 128,
    };
    /// 63rds, stored in 1..=127: for `vpmaddubsw`, which sums each pair of products in a
    /// saturating `i16`. Two products of at most 127 · 127 stay below 32 767, so no sum saturates
    /// and the result is the same exact integer sum as `vpdpbusd`'s. Why the left-hand side loses
    /// the bit and not the weights: each column's step is its largest weight over 127, several
    /// times the weights' typical size, so the weights' rounding already dominates the error
    /// (about 5:1 for LSTM outputs against `W_ih`); a coarser left-hand side adds less than a
    /// coarser weight would.
    pub(crate) const SEVEN_BITS: LhsFormat = LhsFormat {
        steps: 63,
        offset: 64,
    };

    /// The format this CPU's kernel needs ([`matmul_rows`]): seven bits where `vpmaddubsw` does
    /// the products (AVX2 without VNNI), else eight.
    pub(crate) fn here() -> Self {
        if super::int8::avx2_maddubs_native() {
            Self::SEVEN_BITS
        } else {
            Self::EIGHT_BITS
        }
    }

    fn steps(self) -> f32 {
        f32::from(self.steps)
    }
}

/// Whether [`matmul_rows`] runs a SIMD kernel here (`vpdpbusd` where AVX-512 is chosen with BW
/// and VNNI, or AVX2 with AVX-VNNI; `vpmaddubsw` on other AVX2 CPUs): elsewhere its portable loop
/// would be slower than f32.
pub(crate) fn available() -> bool {
    super::int8::vnni512_native()
        || super::int8::vnni256_native()
        || super::int8::avx2_maddubs_native()
}

/// The arithmetic of `int8`'s input projections past the first layer on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Projections {
    /// 8-bit (`vpdpbusd`, or on AVX2 without VNNI `vpmaddubsw` on seven-bit left-hand values),
    /// wherever its kernel runs and AMX does not (AMX's bf16 tiles outrun any vector instruction).
    /// Every CPU measured retires more of its multiply-adds per second than of what it replaces
    /// (`vdpbf16ps` where bf16 is native, else f32's FMA; [`u8_rate_ratio`]): Intel cores without
    /// AMX 7.8×, AMD Zen 4 and 5 about 2×; on plain AVX2 Zen 3, 4 and 5 and Intel cores 1.5–2×
    /// (AMD Zen 3: 2.3× in the real projection). The choice does not follow the timing, which
    /// scatters from one process to the next on a shared machine (see [`bf16_fast`](super::bf16_fast)).
    U8,
    /// bf16, where that outruns f32 ([`bf16_fast`](super::bf16_fast)).
    Bf16,
    /// f32 elsewhere (AVX2 CPUs whose `vpmaddubsw` triple is not clearly faster than the FMA,
    /// where bf16 is emulated).
    F32,
}

impl Int8Projections {
    /// What runs here (decided once per process).
    pub fn here() -> Self {
        static HERE: std::sync::OnceLock<Int8Projections> = std::sync::OnceLock::new();
        *HERE.get_or_init(|| Self::choose(available(), super::amx_native(), super::bf16_fast()))
    }

    /// The rule: `u8_kernel` whether an 8-bit kernel runs, `amx` whether AMX does, `bf16_fast`
    /// whether bf16 outruns f32.
    fn choose(u8_kernel: bool, amx: bool, bf16_fast: bool) -> Self {
        if u8_kernel && !amx {
            Int8Projections::U8
        } else if bf16_fast {
            Int8Projections::Bf16
        } else {
            Int8Projections::F32
        }
    }

    /// "u8", "bf16" or "f32" (`phonrec bench`'s report).
    pub fn name(self) -> &'static str {
        match self {
            Int8Projections::U8 => "u8",
            Int8Projections::Bf16 => "bf16",
            Int8Projections::F32 => "f32",
        }
    }
}

/// The 8-bit kernel's multiply-adds per second (`vpdpbusd`, or AVX2's `vpmaddubsw` triple) over
/// those of what it would replace on this core: `vdpbf16ps` where bf16 runs natively, else f32's
/// FMA (measured once per process with [`bf16_rate_ratio`](super::bf16_rate_ratio)'s chains, for
/// `phonrec bench`'s report); `None` where no 8-bit kernel runs.
pub fn u8_rate_ratio() -> Option<f64> {
    let rates = super::bf16::instruction_rates();
    let rival = rates.bf16.unwrap_or(rates.fma);
    Some(rates.u8? / rival.max(1e-9))
}

/// `rounds` × [`RATE_CHAINS`](super::bf16::RATE_CHAINS) of this CPU's [`matmul_rows`] dot
/// product (`vpdpbusd`, or the `vpmaddubsw` triple) in independent chains, for
/// [`instruction_rates`](super::bf16::instruction_rates); 0 where no kernel runs.
pub(crate) fn dot_chains(rounds: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if super::int8::vnni512_native() {
            // SAFETY: the VNNI-512 kernel runs only with AVX-512F, BW and VNNI.
            return unsafe { avx512::dot_chains(rounds) };
        }
        if super::int8::vnni256_native() {
            // SAFETY: the VNNI-256 kernel runs only with AVX2, FMA and AVX-VNNI.
            return unsafe { avx_vnni::vnni_chains(rounds) };
        }
        if super::int8::avx2_maddubs_native() {
            // SAFETY: the `vpmaddubsw` kernel runs with AVX2 and FMA.
            return unsafe { avx_vnni::maddubs_chains(rounds) };
        }
    }
    let _ = rounds;
    0.0
}

/// Multiply-adds in one step of a [`dot_chains`] chain: 64 for the 512-bit `vpdpbusd`, 32 for the
/// 256-bit kernels, 0 where none runs.
pub(crate) fn dot_width() -> usize {
    if super::int8::vnni512_native() {
        64
    } else if available() {
        32
    } else {
        0
    }
}

/// A `[k × n]` right-hand matrix quantised to `i8` per column, packed for [`matmul_rows`].
pub struct PackedU8 {
    k: usize,
    n: usize,
    /// `k` rounded up to groups of four.
    quads: usize,
    data: Vec<i8>,
    /// Per column: `s_c / S` (`S` the left-hand side's steps), what one step of the integer sum
    /// is worth.
    scale: Vec<f32>,
    /// Per column: `offset · Σ_k q_kc`, the stored zero's share of the integer sum.
    offset: Vec<i32>,
    /// How [`matmul_rows`] rounds the left-hand side for these weights.
    lhs: LhsFormat,
}

impl PackedU8 {
    /// Quantise and pack `w`, which holds the matrix as `[n × k]` row-major (an LSTM's `W_ih`: the
    /// product uses `wᵀ`), for the left-hand format this CPU's kernel needs.
    pub fn pack_transposed(w: &[f32], k: usize, n: usize) -> Self {
        Self::pack_transposed_for(w, k, n, LhsFormat::here())
    }

    /// [`pack_transposed`](Self::pack_transposed) for a given left-hand format (a kernel that
    /// cannot take it leaves the products to the portable loop).
    pub(crate) fn pack_transposed_for(w: &[f32], k: usize, n: usize, lhs: LhsFormat) -> Self {
        assert_eq!(w.len(), k * n, "packed matrix: wrong size");
        let quads = k.div_ceil(4);
        let panels = n.div_ceil(PANEL);
        let mut data = vec![0i8; panels * quads * PANEL * 4];
        let mut scale = Vec::with_capacity(n);
        let mut offset = Vec::with_capacity(n);
        // One column at a time: its quantised weights in a contiguous buffer the compiler
        // vectorises, then scattered into the panel.
        let mut quantised = vec![0i8; 4 * quads];
        for (col, weights) in w.chunks_exact(k.max(1)).take(n).enumerate() {
            let step = largest_magnitude(weights) / STEPS;
            if step > 0.0 {
                for (q, &value) in quantised.iter_mut().zip(weights) {
                    *q = round(value / step) as i8;
                }
            } else {
                quantised.fill(0);
            }
            let sum: i32 = quantised.iter().map(|&q| i32::from(q)).sum();
            let (p, c) = (col / PANEL, col % PANEL);
            let panel = &mut data[p * quads * PANEL * 4..(p + 1) * quads * PANEL * 4];
            for (j, quad) in quantised.chunks_exact(4).enumerate() {
                panel[(j * PANEL + c) * 4..(j * PANEL + c) * 4 + 4].copy_from_slice(quad);
            }
            scale.push(step / lhs.steps());
            offset.push(i32::from(lhs.offset) * sum);
        }
        PackedU8 {
            k,
            n,
            quads,
            data,
            scale,
            offset,
            lhs,
        }
    }
}

/// `out[r, 0..n] (+)= Σ_k lhs[r, k] · W[k, 0..n]` for `rows` rows of `lhs` (values in [−1, 1]; others
/// are clamped), in row blocks on up to `threads` threads (as [`matmul_packed_rows`](
/// super::kernels::matmul_packed_rows)). `accumulate` adds to `out` instead of overwriting it.
#[allow(clippy::too_many_arguments)] // a BLAS-style signature, as the f32 kernel's
pub fn matmul_rows(
    threads: usize,
    rows: usize,
    lhs: &[f32],
    lhs_stride: usize,
    w: &PackedU8,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
) {
    if rows == 0 || w.n == 0 {
        return;
    }
    // Every element touched below lies inside these bounds (the kernels index unchecked).
    assert!(lhs_stride >= w.k && lhs.len() >= (rows - 1) * lhs_stride + w.k);
    assert!(out_stride >= w.n && out.len() >= (rows - 1) * out_stride + w.n);
    for_row_blocks(threads, rows, out, out_stride, |first, block, out| {
        let mut a = vec![0u8; block * w.quads * 4];
        let at = &lhs[first * lhs_stride..];
        quantise_rows(block, at, lhs_stride, w.k, w.lhs, &mut a);
        // SAFETY (both kernels): `a` holds `block` rows of `4 · quads` values and `out` the rows
        // the bounds above guarantee.
        #[cfg(target_arch = "x86_64")]
        if super::int8::vnni512_native() {
            // SAFETY: the VNNI-512 kernel runs only with AVX-512F, BW and VNNI.
            unsafe { avx512::matmul(block, &a, w, out, out_stride, accumulate) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if super::int8::vnni256_native() {
            // SAFETY: the VNNI-256 kernel runs only with AVX2, FMA and AVX-VNNI.
            unsafe { avx_vnni::matmul_vnni(block, &a, w, out, out_stride, accumulate) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if super::int8::avx2_maddubs_native() && w.lhs == LhsFormat::SEVEN_BITS {
            // SAFETY: the `vpmaddubsw` kernel runs only with AVX2 and FMA; seven-bit left-hand
            // values keep its pair sums from saturating.
            unsafe { avx_vnni::matmul_maddubs(block, &a, w, out, out_stride, accumulate) };
            return;
        }
        portable(block, &a, w, out, out_stride, accumulate);
    });
}

/// `v` clamped to ±127 (the weights' steps, and the most of any left-hand format) and rounded half
/// away from zero, by adding ±0.5 and truncating
/// (`f32::round` is a libm call on baseline x86-64, and packing a model rounds millions of
/// weights); NaN becomes 0. The truncation is unchecked (one `cvttps2dq` per 16 values once
/// vectorised; Rust's saturating `as` kept the loop scalar and slower than the baseline's).
#[inline(always)]
fn round(v: f32) -> i32 {
    let v = v.clamp(-STEPS, STEPS);
    let v = if v.is_nan() { 0.0 } else { v };
    // SAFETY: |v ± 0.5| ≤ 127.5 is finite and within i32's range.
    unsafe { (v + 0.5f32.copysign(v)).to_int_unchecked::<i32>() }
}

super::multiversion! {
    /// `rows` rows of `k` values as `u8` in `format` (see the module), each row padded to
    /// `4 · quads` with the stored zero (the padding rows of `W` are zero as well). Compiled for
    /// the vector units too: in the baseline's scalar code it took 3 % of an hour of short clips'
    /// time.
    quantise_rows => quantise_rows_body(
        rows: usize,
        lhs: &[f32],
        lhs_stride: usize,
        k: usize,
        format: LhsFormat,
        a: &mut [u8],
    )
}

#[inline(always)]
fn quantise_rows_body(
    rows: usize,
    lhs: &[f32],
    lhs_stride: usize,
    k: usize,
    format: LhsFormat,
    a: &mut [u8],
) {
    let width = a.len() / rows.max(1);
    let (steps, offset) = (format.steps(), i32::from(format.offset));
    for (r, dst) in a.chunks_exact_mut(width).enumerate().take(rows) {
        let row = &lhs[r * lhs_stride..r * lhs_stride + k];
        for (d, &x) in dst.iter_mut().zip(row) {
            // Clamped to ±steps first: `round` clamps to ±127 only.
            *d = (round((x * steps).clamp(-steps, steps)) + offset) as u8;
        }
        dst[k..].fill(format.offset);
    }
}

/// The same integer sums in a loop any CPU runs (to test the kernel against).
fn portable(
    rows: usize,
    a: &[u8],
    w: &PackedU8,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
) {
    let width = w.quads * 4;
    for (p, panel) in w.data.chunks_exact(w.quads * PANEL * 4).enumerate() {
        let col0 = p * PANEL;
        let cols = (w.n - col0).min(PANEL);
        for r in 0..rows {
            let row = &a[r * width..(r + 1) * width];
            let mut acc = [0i32; PANEL];
            for (quad, weights) in row.chunks_exact(4).zip(panel.chunks_exact(PANEL * 4)) {
                for (s, wq) in acc.iter_mut().zip(weights.chunks_exact(4)) {
                    for (&u, &q) in quad.iter().zip(wq) {
                        *s += i32::from(u) * i32::from(q);
                    }
                }
            }
            let dst = &mut out[r * out_stride + col0..r * out_stride + col0 + cols];
            for (c, (d, &s)) in dst.iter_mut().zip(&acc).enumerate() {
                let value = (s - w.offset[col0 + c]) as f32 * w.scale[col0 + c];
                *d = if accumulate { *d + value } else { value };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::super::bf16::RATE_CHAINS as CHAINS;
    use super::super::kernels::avx512::{column_mask, store_row};
    use super::{PackedU8, PANEL, TILE_ROWS};

    /// See [`super::dot_chains`].
    ///
    /// # Safety
    /// AVX-512F, BW and VNNI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn dot_chains(rounds: usize) -> f32 {
        // 1 × 1 per byte pair: each sum grows by 4 per instruction, far from overflow.
        let ones = std::hint::black_box(_mm512_set1_epi8(1));
        let mut acc = [_mm512_setzero_si512(); CHAINS];
        for _ in 0..rounds {
            for sum in acc.iter_mut() {
                *sum = _mm512_dpbusd_epi32(*sum, ones, ones);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_epi32(v) as f32).sum()
    }

    /// See [`super::matmul_rows`]: for each panel, all rows in tiles of up to 8; `a` holds the
    /// quantised left-hand side, `rows × 4 · w.quads`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, BW and VNNI; `a` must hold `rows × 4 · w.quads` values and
    /// `out` `rows` rows of `w.n` values `out_stride` apart.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn matmul(
        rows: usize,
        a: &[u8],
        w: &PackedU8,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
    ) {
        let quads = w.quads;
        let panels = w.n.div_ceil(PANEL);
        for p in 0..panels {
            let panel = w.data.as_ptr().add(p * quads * PANEL * 4);
            let col0 = p * PANEL;
            let cols = (w.n - col0).min(PANEL);
            let epilogue = Epilogue::new(w, col0, cols);
            let mut r = 0;
            while r < rows {
                let tile = (rows - r).min(TILE_ROWS);
                let ap = a.as_ptr().add(r * quads * 4);
                let c = out.as_mut_ptr().add(r * out_stride + col0);
                let e = &epilogue;
                super::super::kernels::by_tile_rows!(
                    tile,
                    tile_kernel(quads, ap, panel, c, out_stride, e, accumulate),
                    tile_kernel::<1>(quads, ap, panel, c, out_stride, e, accumulate)
                );
                r += tile;
            }
        }
    }

    /// A panel's per-column scales and offsets (zero past its last column).
    struct Epilogue {
        scale: [__m512; 2],
        offset: [__m512i; 2],
        cols: usize,
    }

    impl Epilogue {
        #[inline(always)]
        unsafe fn new(w: &PackedU8, col0: usize, cols: usize) -> Self {
            let mask = [column_mask(cols), column_mask(cols.saturating_sub(16))];
            // Masked loads read nothing past the last column; a half with no columns is never
            // formed as a pointer.
            let scale = |h: usize| {
                if cols <= 16 * h {
                    _mm512_setzero_ps()
                } else {
                    _mm512_maskz_loadu_ps(mask[h], w.scale.as_ptr().add(col0 + 16 * h))
                }
            };
            let offset = |h: usize| {
                if cols <= 16 * h {
                    _mm512_setzero_si512()
                } else {
                    _mm512_maskz_loadu_epi32(mask[h], w.offset.as_ptr().add(col0 + 16 * h))
                }
            };
            Epilogue {
                scale: [scale(0), scale(1)],
                offset: [offset(0), offset(1)],
                cols,
            }
        }

        /// `out[0..cols] (+)= (sums − offset) · scale`.
        #[inline(always)]
        unsafe fn store(&self, c: *mut f32, sums: [__m512i; 2], accumulate: bool) {
            let value = |h: usize| {
                _mm512_mul_ps(
                    _mm512_cvtepi32_ps(_mm512_sub_epi32(sums[h], self.offset[h])),
                    self.scale[h],
                )
            };
            store_row(c, value(0), value(1), self.cols, accumulate);
        }
    }

    /// An `R × 32` tile: `2R` accumulators, per group of four `k` two panel loads and `R`
    /// broadcasts of four bytes.
    #[inline(always)]
    unsafe fn tile_kernel<const R: usize>(
        quads: usize,
        a: *const u8,
        panel: *const i8,
        c: *mut f32,
        c_stride: usize,
        epilogue: &Epilogue,
        accumulate: bool,
    ) {
        let width = quads * 4;
        let mut lo = [_mm512_setzero_si512(); R];
        let mut hi = [_mm512_setzero_si512(); R];
        for q in 0..quads {
            let wp = panel.add(q * PANEL * 4);
            let w_lo = _mm512_loadu_si512(wp as *const __m512i);
            let w_hi = _mm512_loadu_si512(wp.add(64) as *const __m512i);
            for r in 0..R {
                let four = (a.add(r * width + 4 * q) as *const i32).read_unaligned();
                let av = _mm512_set1_epi32(four);
                lo[r] = _mm512_dpbusd_epi32(lo[r], av, w_lo);
                hi[r] = _mm512_dpbusd_epi32(hi[r], av, w_hi);
            }
        }
        for r in 0..R {
            epilogue.store(c.add(r * c_stride), [lo[r], hi[r]], accumulate);
        }
    }
}

/// The AVX2 kernels: with AVX-VNNI (Intel cores since Alder Lake, AMD Zen 5) the 256-bit
/// `vpdpbusd`, 32 multiply-adds per instruction against an 8-lane FMA's 8; without it
/// `vpmaddubsw` + `vpmaddwd` (by ones) + `vpaddd`, the same 32 exact products and sums in three
/// instructions, on seven-bit left-hand values ([`LhsFormat::SEVEN_BITS`](super::LhsFormat)).
/// Each 32-column panel is walked as two 16-column halves in tiles of up to six rows, as the AVX2
/// f32 kernel is: with `vpdpbusd` 12 accumulators, the half's two registers of weights and a
/// broadcast fill 15 of the 16 registers, and each load of weights feeds six dot products.
#[cfg(target_arch = "x86_64")]
mod avx_vnni {
    use std::arch::x86_64::*;

    use super::super::bf16::RATE_CHAINS as CHAINS;
    use super::super::kernels::avx2::store_row;
    use super::{PackedU8, PANEL};

    /// Columns of a half panel: two registers.
    const HALF: usize = PANEL / 2;

    /// `acc + Σ` of each 32-bit lane's four `u8 × i8` products.
    trait Dot {
        /// Rows of the result kept in registers (at most 6): two accumulators each, beside
        /// the two registers of weights, the broadcast and the dot's own temporaries (the
        /// `vpmaddubsw` triple's ones and pair sums: 4 rows ran as fast as 5 and faster than 6,
        /// which spills, on AMD Zen 4 with `PHONREC_KERNEL=avx2`, `cargo bench --bench kernels --
        /// projection_6400x512x1024/u8_2`).
        const TILE_ROWS: usize;
        unsafe fn dot(acc: __m256i, a: __m256i, w: __m256i) -> __m256i;
    }

    /// AVX-VNNI's `vpdpbusd`.
    struct Vnni;

    impl Dot for Vnni {
        const TILE_ROWS: usize = 6;
        #[inline(always)]
        unsafe fn dot(acc: __m256i, a: __m256i, w: __m256i) -> __m256i {
            _mm256_dpbusd_avx_epi32(acc, a, w)
        }
    }

    /// AVX2's `vpmaddubsw` (pairs, in `i16`: exact for seven-bit `a`), `vpmaddwd` by ones (the
    /// two pairs of each lane, in `i32`), `vpaddd`.
    struct Maddubs;

    impl Dot for Maddubs {
        const TILE_ROWS: usize = 4;
        #[inline(always)]
        unsafe fn dot(acc: __m256i, a: __m256i, w: __m256i) -> __m256i {
            let pairs = _mm256_maddubs_epi16(a, w);
            _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
        }
    }

    /// `rounds` × `CHAINS` steps of `D`'s dot product in independent chains, each step's
    /// left-hand bytes taken from its chain's sum (so no step can be hoisted out of the loop).
    #[inline(always)]
    unsafe fn chains<D: Dot>(rounds: usize) -> f32 {
        let w = std::hint::black_box(_mm256_set1_epi8(1));
        let mut acc = [_mm256_set1_epi8(1); CHAINS];
        for _ in 0..rounds {
            for sum in acc.iter_mut() {
                // Seven-bit bytes, as the kernel's (`vpmaddubsw` never saturates).
                let a = _mm256_and_si256(*sum, _mm256_set1_epi8(0x3f));
                *sum = D::dot(*sum, a, w);
            }
        }
        let mut lanes = [0i32; 8];
        for sum in acc {
            let total = _mm256_add_epi32(_mm256_loadu_si256(lanes.as_ptr() as *const __m256i), sum);
            _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, total);
        }
        lanes.iter().map(|&v| v as f32).sum()
    }

    /// See [`super::dot_chains`].
    ///
    /// # Safety
    /// AVX2, FMA and AVX-VNNI.
    #[target_feature(enable = "avx2,fma,avxvnni")]
    pub(super) unsafe fn vnni_chains(rounds: usize) -> f32 {
        chains::<Vnni>(rounds)
    }

    /// See [`super::dot_chains`].
    ///
    /// # Safety
    /// AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn maddubs_chains(rounds: usize) -> f32 {
        chains::<Maddubs>(rounds)
    }

    /// See [`super::matmul_rows`]; `a` holds the quantised left-hand side, `rows × 4 · w.quads`.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and AVX-VNNI; `a` must hold `rows × 4 · w.quads` values and
    /// `out` `rows` rows of `w.n` values `out_stride` apart.
    #[target_feature(enable = "avx2,fma,avxvnni")]
    pub(super) unsafe fn matmul_vnni(
        rows: usize,
        a: &[u8],
        w: &PackedU8,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
    ) {
        matmul::<Vnni>(rows, a, w, out, out_stride, accumulate)
    }

    /// See [`super::matmul_rows`]; `a` holds the quantised left-hand side, `rows × 4 · w.quads`,
    /// each value at most 127 (seven bits: larger ones could saturate `vpmaddubsw`'s pair sums).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` must hold `rows × 4 · w.quads` values and `out`
    /// `rows` rows of `w.n` values `out_stride` apart.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn matmul_maddubs(
        rows: usize,
        a: &[u8],
        w: &PackedU8,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
    ) {
        matmul::<Maddubs>(rows, a, w, out, out_stride, accumulate)
    }

    #[inline(always)]
    unsafe fn matmul<D: Dot>(
        rows: usize,
        a: &[u8],
        w: &PackedU8,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
    ) {
        let quads = w.quads;
        let panels = w.n.div_ceil(PANEL);
        for p in 0..panels {
            let panel = w.data.as_ptr().add(p * quads * PANEL * 4);
            for half in 0..2 {
                let col0 = p * PANEL + half * HALF;
                if col0 >= w.n {
                    break; // no columns in this half (never form a pointer past the output)
                }
                let cols = (w.n - col0).min(HALF);
                let half_panel = panel.add(half * HALF * 4);
                let mut r = 0;
                while r < rows {
                    let tile = (rows - r).min(D::TILE_ROWS);
                    let ap = a.as_ptr().add(r * quads * 4);
                    let c = out.as_mut_ptr().add(r * out_stride + col0);
                    let args = (
                        quads, ap, half_panel, c, out_stride, w, col0, cols, accumulate,
                    );
                    match tile {
                        6 => tile_kernel::<D, 6>(args),
                        5 => tile_kernel::<D, 5>(args),
                        4 => tile_kernel::<D, 4>(args),
                        3 => tile_kernel::<D, 3>(args),
                        2 => tile_kernel::<D, 2>(args),
                        _ => tile_kernel::<D, 1>(args),
                    }
                    r += tile;
                }
            }
        }
    }

    /// A tile's operands: `quads`, the left-hand rows, the half panel (its groups of four rows
    /// `4 · PANEL` bytes apart), the output, its stride, the weights (for the epilogue), the
    /// half's first column, its columns, and whether to add to the output.
    type TileArgs<'a> = (
        usize,
        *const u8,
        *const i8,
        *mut f32,
        usize,
        &'a PackedU8,
        usize,
        usize,
        bool,
    );

    /// An `R × 16` tile: `2R` accumulators, per group of four `k` two loads of weights and `R`
    /// broadcasts of four bytes; then `(sums − offset) · scale` stored or added, as the AVX-512
    /// kernel's epilogue computes it.
    #[inline(always)]
    unsafe fn tile_kernel<D: Dot, const R: usize>(args: TileArgs<'_>) {
        let (quads, a, panel, c, c_stride, w, col0, cols, accumulate) = args;
        let width = quads * 4;
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for q in 0..quads {
            let wp = panel.add(q * PANEL * 4);
            let weights = [
                _mm256_loadu_si256(wp as *const __m256i),
                _mm256_loadu_si256(wp.add(32) as *const __m256i),
            ];
            for (r, row) in acc.iter_mut().enumerate() {
                let four = (a.add(r * width + 4 * q) as *const i32).read_unaligned();
                let av = _mm256_set1_epi32(four);
                for (sum, &wq) in row.iter_mut().zip(&weights) {
                    *sum = D::dot(*sum, av, wq);
                }
            }
        }
        // The half's scales and offsets, zero past its last column (never read past `w.n`).
        let mut scale = [0f32; 16];
        let mut offset = [0i32; 16];
        scale[..cols].copy_from_slice(&w.scale[col0..col0 + cols]);
        offset[..cols].copy_from_slice(&w.offset[col0..col0 + cols]);
        let scale = [0, 1].map(|h| _mm256_loadu_ps(scale.as_ptr().add(8 * h)));
        let offset =
            [0, 1].map(|h| _mm256_loadu_si256(offset.as_ptr().add(8 * h) as *const __m256i));
        for (r, row) in acc.iter().enumerate() {
            let values = [0, 1].map(|h| {
                _mm256_mul_ps(
                    _mm256_cvtepi32_ps(_mm256_sub_epi32(row[h], offset[h])),
                    scale[h],
                )
            });
            store_row(c.add(r * c_stride), values, cols, accumulate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values;

    #[test]
    fn rounding_is_half_away_from_zero_clamped_and_nan_safe() {
        use super::round;
        let cases = [
            (0.5, 1),
            (-0.5, -1),
            (1.49, 1),
            (-2.5, -3),
            (126.6, 127),
            (200.0, 127),
            (f32::NEG_INFINITY, -127),
            (f32::NAN, 0),
            (-0.0, 0),
        ];
        for (v, expected) in cases {
            assert_eq!(round(v), expected, "{v}");
        }
        // The vectorised rows give the same bytes as the scalar rule, padding included.
        let lhs = [0.5 / 127.0, -1.0, 2.0, f32::NAN, 0.3, -0.004, 0.0];
        let mut a = [0u8; 8];
        super::quantise_rows(1, &lhs, 7, 7, super::LhsFormat::EIGHT_BITS, &mut a);
        let expected: Vec<u8> = lhs
            .iter()
            .map(|&x| (round(x * 127.0) + 128) as u8)
            .chain([128])
            .collect();
        assert_eq!(a.to_vec(), expected);
        assert_eq!(&a[..4], &[129, 1, 255, 128]);
    }

    #[test]
    fn the_projections_arithmetic_follows_the_cpu() {
        use super::Int8Projections::{self, Bf16, F32, U8};
        let choose = Int8Projections::choose;
        // (8-bit kernel, AMX, bf16 fast) -> arithmetic
        let cases = [
            ((true, false, false), U8), // Intel without AMX; AVX2's vpmaddubsw (AMD Zen 3)
            ((true, false, true), U8),  // bf16 fast, vpdpbusd faster still (Zen 4, Zen 5)
            ((true, true, true), Bf16), // AMX tiles outrun both
            ((false, false, false), F32), // no 8-bit kernel (portable)
            ((false, false, true), Bf16),
        ];
        for ((kernel, amx, fast), expected) in cases {
            assert_eq!(choose(kernel, amx, fast), expected, "{kernel} {amx} {fast}");
        }
        // Decided once per process, the same way every time on this CPU.
        let here = Int8Projections::here();
        assert_eq!(
            here,
            choose(
                available(),
                super::super::amx_native(),
                super::super::bf16_fast()
            )
        );
    }

    #[test]
    fn measured_rates_are_positive_where_the_instructions_run() {
        let rates = super::super::bf16::instruction_rates();
        if super::super::simd_level() == super::super::SimdLevel::Avx512 {
            assert!(rates.fma > 1e9, "{rates:?}");
        }
        if super::super::simd_level() != super::super::SimdLevel::Portable {
            assert!(rates.fma > 1e9, "{rates:?}");
        }
        // Measured wherever an 8-bit kernel runs.
        assert_eq!(rates.u8.is_some(), available(), "{rates:?}");
        assert_eq!(
            rates.bf16.is_some(),
            super::super::bf16_native(),
            "{rates:?}"
        );
        for rate in [rates.u8, rates.bf16].into_iter().flatten() {
            assert!(rate > 1e9, "{rates:?}");
        }
    }
    use super::*;

    /// `count` values in [−1, 1) from `seed`.
    fn lcg(count: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..count).map(|_| test_values::lcg(&mut state)).collect()
    }

    /// The products as the module defines them, from the quantised values, in f64.
    fn reference(lhs: &[f32], k: usize, w: &[f32], n: usize, format: LhsFormat) -> Vec<f64> {
        let rows = lhs.len() / k;
        let lhs_steps = format.steps();
        let mut out = vec![0f64; rows * n];
        for c in 0..n {
            let col = &w[c * k..(c + 1) * k];
            let step = col.iter().fold(0f32, |m, v| m.max(v.abs())) / STEPS;
            for r in 0..rows {
                let mut sum = 0f64;
                for (kk, &wv) in col.iter().enumerate() {
                    let u = round((lhs[r * k + kk] * lhs_steps).clamp(-lhs_steps, lhs_steps));
                    let q = if step > 0.0 { round(wv / step) } else { 0 };
                    sum += f64::from(u) * f64::from(q);
                }
                out[r * n + c] = sum * f64::from(step) / f64::from(lhs_steps);
            }
        }
        out
    }

    #[test]
    fn products_are_the_quantised_sums_on_every_kernel_and_shape() {
        // Odd `k` (padding within a group of four), columns past a whole panel, every tile height;
        // the last shape at the extremes (every value ±1 or beyond, every weight its column's
        // largest): the largest pair sums `vpmaddubsw` can meet, which must not saturate.
        let shapes = [
            (1, 5, 7),
            (13, 37, 45),
            (130, 64, 96),
            (9, 640, 33),
            (7, 96, 40),
        ];
        for (shape, &(rows, k, n)) in shapes.iter().enumerate() {
            let extreme = shape == shapes.len() - 1;
            let lhs: Vec<f32> = lcg(rows * k, 3)
                .iter()
                .map(|v| {
                    if extreme {
                        1.5f32.copysign(*v)
                    } else {
                        v * 1.1
                    }
                })
                .collect();
            let w: Vec<f32> = lcg(n * k, 4)
                .iter()
                .map(|v| if extreme { 0.3f32.copysign(*v) } else { *v })
                .collect();
            for format in [
                LhsFormat::EIGHT_BITS,
                LhsFormat::SEVEN_BITS,
                LhsFormat::here(),
            ] {
                let packed = PackedU8::pack_transposed_for(&w, k, n, format);
                let expected = reference(&lhs, k, &w, n, format);
                for threads in [1, 2] {
                    let mut out = vec![0.5f32; rows * n];
                    matmul_rows(threads, rows, &lhs, k, &packed, &mut out, n, false);
                    let mut portable_out = vec![0.5f32; rows * n];
                    let mut a = vec![0u8; rows * packed.quads * 4];
                    quantise_rows(rows, &lhs, k, k, format, &mut a);
                    portable(rows, &a, &packed, &mut portable_out, n, false);
                    // The integer sums are exact: the kernels agree to the bit.
                    assert_eq!(out, portable_out, "{rows}×{k}·{k}×{n} {format:?}");
                    for (i, (&got, &want)) in out.iter().zip(&expected).enumerate() {
                        let tolerance = 1e-4 * want.abs().max(1.0);
                        assert!(
                            (f64::from(got) - want).abs() < tolerance,
                            "{i}: {got} {want}"
                        );
                    }
                    // Accumulating adds to what was there.
                    let mut added = vec![0.5f32; rows * n];
                    matmul_rows(threads, rows, &lhs, k, &packed, &mut added, n, true);
                    for (a, o) in added.iter().zip(&out) {
                        assert!((a - (o + 0.5)).abs() < 1e-5 * o.abs().max(1.0));
                    }
                }
            }
        }
    }

    #[test]
    fn the_left_hand_format_is_seven_bits_only_for_vpmaddubsw() {
        let expected = if super::super::int8::avx2_maddubs_native() {
            LhsFormat::SEVEN_BITS
        } else {
            LhsFormat::EIGHT_BITS
        };
        assert_eq!(LhsFormat::here(), expected);
        // Seven-bit values stored in 1..=127, eight-bit ones in 1..=255.
        for (format, low, high) in [
            (LhsFormat::SEVEN_BITS, 1, 127),
            (LhsFormat::EIGHT_BITS, 1, 255),
        ] {
            let mut a = [0u8; 4];
            quantise_rows(1, &[-3.0, 3.0, 0.0], 3, 3, format, &mut a);
            assert_eq!(a, [low, high, format.offset, format.offset], "{format:?}");
        }
    }

    #[test]
    fn eight_and_seven_bits_stay_close_to_the_f32_products() {
        // LSTM outputs in (−1, 1) against weights of one scale: the error is the rounding's
        // (standard deviations about 0.006 with eight bits, 0.009 with seven).
        let (rows, k, n) = (16, 640, 64);
        let lhs: Vec<f32> = lcg(rows * k, 5).iter().map(|v| v.tanh()).collect();
        let w: Vec<f32> = lcg(n * k, 6).iter().map(|v| v * 0.1).collect();
        for (format, tolerance) in [(LhsFormat::EIGHT_BITS, 0.02), (LhsFormat::SEVEN_BITS, 0.04)] {
            let packed = PackedU8::pack_transposed_for(&w, k, n, format);
            let mut out = vec![0f32; rows * n];
            matmul_rows(1, rows, &lhs, k, &packed, &mut out, n, false);
            let mut squares = 0f64;
            for r in 0..rows {
                for c in 0..n {
                    let exact: f32 = (0..k).map(|kk| lhs[r * k + kk] * w[c * k + kk]).sum();
                    let error = out[r * n + c] - exact;
                    assert!(
                        error.abs() < tolerance,
                        "{format:?}: {} {exact}",
                        out[r * n + c]
                    );
                    squares += f64::from(error * error);
                }
            }
            let rms = (squares / (rows * n) as f64).sqrt();
            assert!(rms < f64::from(tolerance) / 3.0, "{format:?}: rms {rms}");
        }
    }
}
