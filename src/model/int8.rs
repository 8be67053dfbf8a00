//! The recurrence with 8-bit weights ([`Precision::Int8`](super::Precision::Int8)): `W_hh` quantised
//! to int8 per output column, `h_{t−1}` to int16 per row, products summed exactly in i32 with
//! `vpdpwssd` (AVX512-VNNI, or AVX-VNNI's 256-bit form where AVX2 is chosen) or `vpmaddwd` +
//! `vpaddd` (plain AVX2) after widening the weights with `vpmovsxbw`.
//!
//! Why: at batch 1 each step multiplies one vector by one direction's whole `W_hh` (`[H × 4H]`), so a
//! step costs what reading `W_hh` from L2 costs: on an Intel Xeon the bf16 product runs at the
//! L2's ~60 GB/s (BENCHMARKS.md). In int8 `W_hh` is half of bf16's bytes and a quarter of f32's
//! (the built-in model's: 410 KB a direction, inside a laptop's L2 where f32's 1.6 MB is not). The
//! input projections are not done here: they run over all frames at once, in bf16 where that
//! outruns f32 (AMX, AMD Zen 4), else in 8 bits with AVX512-VNNI or AVX-VNNI (`projection_u8.rs`),
//! else in f32.
//!
//! The quantisation: each column `c` of `W_hh` gets its own scale `s_c = max_k |w_kc| / 127` and
//! `q_kc = round(w_kc / s_c)` as i8; each row of the left-hand side (one utterance's `h_{t−1}`) its
//! own scale `m = max_k |h_k|` and `u_k = round(S h_k / m)` as i16, with `S` as large as the i32 sum
//! allows (`127 · S · k < 2³¹`: 32767 up to `k` = 516). Then `Σ_k h_k w_kc ≈ (m / S) s_c Σ_k u_k
//! q_kc`, the integer sum exact, so every kernel gives the same sums and the error is the weights'
//! rounding (≤ half a step each) and the state's (≤ 1/(2S) of its range, ~1.5e-5). An earlier
//! version quantised `h` to 8 bits as well (`vpdpbusd`, the same bytes of weights): that moved PER
//! by up to 0.8 points on the small real sets, where 8-bit weights alone (simulated in f32) moved
//! none of them by a phone (BENCHMARKS.md, 2026-12-03).
//!
//! Layout: panels of 32 columns, each stored `[k/2][32][2]` of i8: per pair of rows of `W` the two
//! weights of each column side by side, which `vpmovsxbw` widens into the operand layout of
//! `vpdpwssd` (each 32-bit lane one column's two i16 weights, row `2j` in the low half).

use std::sync::OnceLock;

use super::kernels::{avx_vnni, simd_level, SimdLevel};

/// Columns per packed panel: two 16-lane registers.
const PANEL: usize = 32;
/// Rows of the result kept in registers by the AVX-512 micro-kernel.
const TILE_ROWS: usize = 8;
/// The largest quantised weight.
const WEIGHT_STEPS: f32 = 127.0;
/// The largest quantised value of the left-hand side (i16), when `k` leaves room for it.
const MAX_LHS_STEPS: f32 = 32767.0;

/// Which kernel computes the int8 products here.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// AVX-512 chosen ([`simd_level`]) with AVX512-BW and AVX512-VNNI: `vpmovsxbw` + `vpdpwssd`.
    Vnni512,
    /// AVX2 chosen with AVX-VNNI (Intel cores since Alder Lake, AMD Zen 5): the AVX2 kernel with
    /// the 256-bit `vpdpwssd` in place of `vpmaddwd` + `vpaddd`.
    Vnni256,
    /// AVX2 chosen (most laptops; AVX-512 without VNNI also lands here): `vpmovsxbw` + `vpmaddwd`.
    Avx2,
    /// A loop any CPU runs.
    Portable,
}

/// Which kernel runs [`Precision::Int8`](super::Precision::Int8)'s recurrent products here (for
/// benchmark reports): `vnni512`, `avxvnni`, `avx2` or `portable`.
pub fn int8_kernel_name() -> &'static str {
    match kernel() {
        Kernel::Vnni512 => "vnni512",
        Kernel::Vnni256 => "avxvnni",
        Kernel::Avx2 => "avx2",
        Kernel::Portable => "portable",
    }
}

/// Whether the AVX-512 VNNI kernel runs int8's products here (`vpdpwssd`, and `vpdpbusd` for the
/// 8-bit input projections of `projection_u8.rs`).
pub(crate) fn vnni512_native() -> bool {
    kernel() == Kernel::Vnni512
}

/// Whether the AVX-VNNI kernel runs int8's products here (256-bit `vpdpwssd`, and `vpdpbusd` for
/// the 8-bit input projections).
pub(crate) fn vnni256_native() -> bool {
    kernel() == Kernel::Vnni256
}

/// Whether the plain AVX2 kernel runs int8's products here (`vpmaddwd`, and `vpmaddubsw` for the
/// input projections on seven-bit left-hand values).
pub(crate) fn avx2_maddubs_native() -> bool {
    kernel() == Kernel::Avx2
}

/// Whether a SIMD kernel (not the portable loop) runs int8's products here.
pub(crate) fn int8_native() -> bool {
    kernel() != Kernel::Portable
}

/// The kernel for this CPU and `PHONREC_KERNEL`. Every kernel computes the same integer sums.
fn kernel() -> Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    *KERNEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let level = simd_level();
            if level == SimdLevel::Avx512
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                return Kernel::Vnni512;
            }
            // simd_level never exceeds the CPU: Avx512 implies AVX2 as well.
            if level != SimdLevel::Portable {
                return if avx_vnni() {
                    Kernel::Vnni256
                } else {
                    Kernel::Avx2
                };
            }
            Kernel::Portable
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = simd_level;
            Kernel::Portable
        }
    })
}

/// A `[k × n]` right-hand matrix quantised to int8 per column, packed for [`matmul_recurrent_i8`].
pub struct PackedI8 {
    k: usize,
    n: usize,
    /// `k` rounded up to pairs.
    pairs: usize,
    data: Vec<i8>,
    /// Per column: `s_c`, the weights' step.
    scale: Vec<f32>,
    /// `S`, the left-hand side's steps per unit of its row's largest magnitude: the most that keeps
    /// every i32 sum exact for this `k`.
    lhs_steps: f32,
}

impl PackedI8 {
    /// `n`, the product's columns.
    pub fn columns(&self) -> usize {
        self.n
    }

    /// The panels in the order a step walks them (last to first when `backwards`), each as (its
    /// offset in `data`, its first column, how many of its 32 columns exist).
    fn panel_order(&self, backwards: bool) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let panels = self.n.div_ceil(PANEL);
        (0..panels).map(move |i| {
            let p = if backwards { panels - 1 - i } else { i };
            let col0 = p * PANEL;
            (p * self.pairs * PANEL * 2, col0, (self.n - col0).min(PANEL))
        })
    }

    /// Quantise and pack `w`, which holds the matrix row-major as `[k × n]`, or as `[n × k]` when
    /// `transposed` (then the product uses `wᵀ`).
    pub fn pack(w: &[f32], k: usize, n: usize, transposed: bool) -> Self {
        assert_eq!(w.len(), k * n, "packed matrix: wrong size");
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(PANEL);
        let mut data = vec![0i8; panels * pairs * PANEL * 2];
        let mut scale = Vec::with_capacity(n);
        // One column at a time, in contiguous buffers the compiler vectorises: its values (gathered
        // when `w` is row-major), then its quantised weights, then scattered into the panel.
        let mut gathered = Vec::new();
        let mut quantised = vec![0i8; 2 * pairs];
        for col in 0..n {
            let values: &[f32] = if transposed {
                &w[col * k..(col + 1) * k]
            } else {
                gathered.clear();
                gathered.extend((0..k).map(|row| w[row * n + col]));
                &gathered
            };
            let step = largest_magnitude(values) / WEIGHT_STEPS;
            if step > 0.0 {
                for (q, &v) in quantised.iter_mut().zip(values) {
                    *q = round_clamped(v / step, WEIGHT_STEPS) as i8;
                }
            } else {
                quantised.fill(0);
            }
            let (p, c) = (col / PANEL, col % PANEL);
            let panel = &mut data[p * pairs * PANEL * 2..(p + 1) * pairs * PANEL * 2];
            for (j, pair) in quantised.chunks_exact(2).enumerate() {
                panel[(j * PANEL + c) * 2..(j * PANEL + c) * 2 + 2].copy_from_slice(pair);
            }
            scale.push(step);
        }
        // |Σ_k u_k q_kc| ≤ 2·pairs · 127 · S must stay below 2³¹ (`vpdpwssd` wraps).
        let lhs_steps = (f64::from(i32::MAX)
            / (f64::from(WEIGHT_STEPS) * (2 * pairs.max(1)) as f64))
            .floor()
            .min(f64::from(MAX_LHS_STEPS)) as f32;
        PackedI8 {
            k,
            n,
            pairs,
            data,
            scale,
            lhs_steps,
        }
    }
}

/// The largest `f32` below ½. Adding it (with `v`'s sign) and truncating rounds `v` half away from
/// zero exactly, as `f32::round` does; adding ½ itself would carry 0.49999997 up to 1.
const HALF_BELOW: f32 = 0.499_999_97;

/// `v.round().clamp(-limit, limit)` (NaN to 0) as an integer, for `limit` ≤ 2²²: `f32::round` is a libm
/// call on baseline x86-64, this is a few vector instructions once the loop is vectorised.
#[inline(always)]
pub(crate) fn round_clamped(v: f32, limit: f32) -> i32 {
    let v = v.clamp(-limit, limit);
    let v = if v.is_nan() { 0.0 } else { v };
    // SAFETY: |v| + ½ ≤ 2²² + ½ is finite and within i32's range.
    unsafe { (v + HALF_BELOW.copysign(v)).to_int_unchecked::<i32>() }
}

/// `x` (|x| ≤ 1, already divided by its row's largest magnitude) on `steps` steps per unit, rounded
/// half away from zero; NaN becomes 0. (`f32::round` is a libm call on baseline x86-64 that cost 4 %
/// of a batch-1 pass; adding ±0.5 and truncating is the same rounding. The truncation is unchecked:
/// Rust's saturating `as` keeps a loop scalar, and this one ran at every step of every layer.)
#[inline(always)]
fn quantise(x: f32, steps: f32) -> i16 {
    let v = (x * steps).clamp(-steps, steps);
    let v = if v.is_nan() { 0.0 } else { v };
    // SAFETY: |v ± 0.5| ≤ steps + 0.5 ≤ 32767.5 is finite and within i32's range, and the i32
    // truncates to an i16 without loss.
    unsafe { (v + 0.5f32.copysign(v)).to_int_unchecked::<i32>() as i16 }
}

/// One step of a recurrence: `out[r, 0..n] += Σ_k lhs[r, k] · W[k, 0..n]` for `rows` rows, with
/// each row of `lhs` and each column of `W` quantised on its own scale (see the module). `backwards`
/// walks the panels last to first (as
/// [`matmul_packed_in_order`](super::kernels::matmul_packed_in_order)). `scratch` holds the
/// quantised left-hand side between calls.
#[allow(clippy::too_many_arguments)] // a BLAS-style signature, as the f32 kernel's
pub fn matmul_recurrent_i8(
    rows: usize,
    lhs: &[f32],
    lhs_stride: usize,
    w: &PackedI8,
    out: &mut [f32],
    out_stride: usize,
    backwards: bool,
    scratch: &mut Vec<u32>,
) {
    if rows == 0 || w.n == 0 {
        return;
    }
    // Every element touched below lies inside these bounds (the kernels index unchecked).
    assert!(lhs_stride >= w.k && lhs.len() >= (rows - 1) * lhs_stride + w.k);
    assert!(out_stride >= w.n && out.len() >= (rows - 1) * out_stride + w.n);
    quantise_rows(rows, lhs, lhs_stride, w.k, w.lhs_steps, scratch);
    let (pairs, row_scales) = scratch.split_at(rows * w.pairs);
    #[cfg(target_arch = "x86_64")]
    match kernel() {
        // SAFETY: `kernel` checked AVX-512F, BW and VNNI, or AVX2; bounds were checked above,
        // `pairs` holds `rows × w.pairs` values and `row_scales` `rows`.
        Kernel::Vnni512 => unsafe {
            return avx512::matmul(rows, pairs, row_scales, w, out, out_stride, backwards);
        },
        Kernel::Vnni256 => unsafe {
            return avx2::matmul_vnni(rows, pairs, row_scales, w, out, out_stride, backwards);
        },
        Kernel::Avx2 => unsafe {
            return avx2::matmul(rows, pairs, row_scales, w, out, out_stride, backwards);
        },
        Kernel::Portable => {}
    }
    portable(rows, pairs, row_scales, w, out, out_stride);
}

/// Quantise `rows` rows of `k` values into `scratch`: first each row's `k.div_ceil(2)` pairs of
/// i16 (row `2j` in the low half), then each row's factor `m / S` (as f32 bits).
fn quantise_rows(
    rows: usize,
    lhs: &[f32],
    lhs_stride: usize,
    k: usize,
    steps: f32,
    scratch: &mut Vec<u32>,
) {
    let pairs = k.div_ceil(2);
    scratch.clear();
    scratch.resize(rows * (pairs + 1), 0);
    let (packed, scales) = scratch.split_at_mut(rows * pairs);
    quantise_into(rows, lhs, lhs_stride, k, steps, packed, scales);
}

super::multiversion! {
    /// [`quantise_rows`]' loops, compiled for the vector units too (in the baseline's scalar code
    /// they took 3.5 % of an hour of short clips' time).
    quantise_into => quantise_into_body(
        rows: usize,
        lhs: &[f32],
        lhs_stride: usize,
        k: usize,
        steps: f32,
        packed: &mut [u32],
        scales: &mut [u32],
    )
}

#[inline(always)]
fn quantise_into_body(
    rows: usize,
    lhs: &[f32],
    lhs_stride: usize,
    k: usize,
    steps: f32,
    packed: &mut [u32],
    scales: &mut [u32],
) {
    let pairs = k.div_ceil(2);
    for (r, (dst, scale)) in packed
        .chunks_exact_mut(pairs)
        .zip(scales.iter_mut())
        .enumerate()
        .take(rows)
    {
        let row = &lhs[r * lhs_stride..r * lhs_stride + k];
        let largest = largest_magnitude(row);
        let inverse = if largest > 0.0 { 1.0 / largest } else { 0.0 };
        let pack = |low: f32, high: f32| {
            quantise(low * inverse, steps) as u16 as u32
                | (quantise(high * inverse, steps) as u16 as u32) << 16
        };
        let whole = k / 2;
        for (pair, values) in dst.iter_mut().zip(row.chunks_exact(2)) {
            *pair = pack(values[0], values[1]);
        }
        if k % 2 == 1 {
            // Past `k` the padding row of `W` is zero; 0 stands in there.
            dst[whole] = pack(row[k - 1], 0.0);
        }
        *scale = (largest / steps).to_bits();
    }
}

/// The largest |x| of `row` (NaN ignored), in 16 lanes so that it vectorises; `max` is exact and
/// order-free, so this is the sequential fold's value.
#[inline(always)]
pub(crate) fn largest_magnitude(row: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = row.chunks_exact(16);
    let tail = chunks.remainder().iter().fold(0f32, |m, v| m.max(v.abs()));
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(v.abs());
        }
    }
    lanes.iter().fold(tail, |m, &v| m.max(v))
}

/// The two i16 of a quantised pair, low half first.
#[inline(always)]
fn unpair(pair: u32) -> [i32; 2] {
    [
        i32::from(pair as u16 as i16),
        i32::from((pair >> 16) as u16 as i16),
    ]
}

/// The same integer sums without VNNI, for other CPUs (and to test the kernel against).
fn portable(
    rows: usize,
    lhs_pairs: &[u32],
    row_scales: &[u32],
    w: &PackedI8,
    out: &mut [f32],
    out_stride: usize,
) {
    let pairs = w.pairs;
    for (p, panel) in w.data.chunks_exact(pairs * PANEL * 2).enumerate() {
        let col0 = p * PANEL;
        let cols = (w.n - col0).min(PANEL);
        for r in 0..rows {
            let a = &lhs_pairs[r * pairs..(r + 1) * pairs];
            let mut acc = [0i32; PANEL];
            for (&av, wrow) in a.iter().zip(panel.chunks_exact(PANEL * 2)) {
                let [a0, a1] = unpair(av);
                for (s, wv) in acc.iter_mut().zip(wrow.chunks_exact(2)) {
                    *s += a0 * i32::from(wv[0]) + a1 * i32::from(wv[1]);
                }
            }
            let row_scale = f32::from_bits(row_scales[r]);
            let dst = &mut out[r * out_stride + col0..r * out_stride + col0 + cols];
            for (c, (d, &s)) in dst.iter_mut().zip(&acc).enumerate() {
                *d += s as f32 * (w.scale[col0 + c] * row_scale);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::super::kernels::avx512::column_mask;
    use super::{PackedI8, PANEL, TILE_ROWS};

    /// See [`super::matmul_recurrent_i8`]: for each panel, all rows in tiles of up to 8; `a` holds
    /// the quantised left-hand side, `rows × w.pairs`, and `row_scales` each row's factor (f32
    /// bits).
    ///
    /// # Safety
    /// The CPU must support AVX-512F, BW and VNNI; `a` must hold `rows × w.pairs` values and `out`
    /// the rows the caller's bounds checks guarantee, `row_scales` `rows` values.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn matmul(
        rows: usize,
        a: &[u32],
        row_scales: &[u32],
        w: &PackedI8,
        out: &mut [f32],
        out_stride: usize,
        backwards: bool,
    ) {
        let pairs = w.pairs;
        for (offset, col0, cols) in w.panel_order(backwards) {
            let panel = w.data.as_ptr().add(offset);
            let epilogue = Epilogue::new(w, col0, cols);
            let mut r = 0;
            while r < rows {
                let tile = (rows - r).min(TILE_ROWS);
                let ap = a.as_ptr().add(r * pairs);
                let c = out.as_mut_ptr().add(r * out_stride + col0);
                let s = row_scales.as_ptr().add(r) as *const f32;
                super::super::kernels::by_tile_rows!(
                    tile,
                    tile_kernel(pairs, ap, panel, c, out_stride, s, &epilogue),
                    single_row_kernel(pairs, ap, panel, c, *s, &epilogue)
                );
                r += tile;
            }
        }
    }

    /// A panel's per-column scales, and which of its 32 columns exist.
    struct Epilogue {
        scale: [__m512; 2],
        mask: [__mmask16; 2],
    }

    impl Epilogue {
        #[inline(always)]
        unsafe fn new(w: &PackedI8, col0: usize, cols: usize) -> Self {
            let mask = [column_mask(cols), column_mask(cols.saturating_sub(16))];
            // Masked loads read nothing past the last column.
            let scale = w.scale.as_ptr().add(col0);
            let half = |h: usize| {
                if mask[h] == 0 {
                    _mm512_setzero_ps()
                } else {
                    _mm512_maskz_loadu_ps(mask[h], scale.add(16 * h))
                }
            };
            Epilogue {
                scale: [half(0), half(1)],
                mask,
            }
        }

        /// `out[0..cols] += sums · scale · row_scale`.
        #[inline(always)]
        unsafe fn add_row(&self, c: *mut f32, sums: [__m512i; 2], row_scale: f32) {
            let row_scale = _mm512_set1_ps(row_scale);
            for (h, sums) in sums.into_iter().enumerate() {
                if self.mask[h] == 0 {
                    continue;
                }
                let exact = _mm512_cvtepi32_ps(sums);
                let dst = c.add(16 * h);
                let prev = _mm512_maskz_loadu_ps(self.mask[h], dst);
                _mm512_mask_storeu_ps(
                    dst,
                    self.mask[h],
                    _mm512_fmadd_ps(exact, _mm512_mul_ps(self.scale[h], row_scale), prev),
                );
            }
        }
    }

    /// `acc + Σ pairs of a · b` (`vpdpwssd`), kept one instruction. Through the intrinsic, LLVM's
    /// machine combiner rewrote most of the tile kernel's `vpdpwssd` into `vpmaddwd` + `vpaddd`
    /// (its generic tuning does not count `vpdpwssd` as fast, and the pair shortens the chain
    /// through the accumulator): twice the instructions, and the hot loop issue-bound. An `asm!`
    /// block is not rewritten.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX512-VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline]
    unsafe fn dpwssd(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
        let mut acc = acc;
        // SAFETY: register operands only; the caller guarantees the instruction exists.
        unsafe {
            std::arch::asm!(
                "vpdpwssd {acc}, {a}, {b}",
                acc = inout(zmm_reg) acc,
                a = in(zmm_reg) a,
                b = in(zmm_reg) b,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        acc
    }

    /// The 32 columns' weights of pair `j`, widened to i16: (columns 0–15, columns 16–31).
    #[inline(always)]
    unsafe fn weights(panel: *const i8, j: usize) -> (__m512i, __m512i) {
        let p = panel.add(j * PANEL * 2);
        (
            _mm512_cvtepi8_epi16(_mm256_loadu_si256(p as *const __m256i)),
            _mm512_cvtepi8_epi16(_mm256_loadu_si256(p.add(PANEL) as *const __m256i)),
        )
    }

    /// An `R × 32` tile: `2R` accumulators, per pair of `k` two widened panel loads and `R`
    /// broadcasts.
    #[inline(always)]
    unsafe fn tile_kernel<const R: usize>(
        pairs: usize,
        a: *const u32,
        panel: *const i8,
        c: *mut f32,
        c_stride: usize,
        row_scales: *const f32,
        epilogue: &Epilogue,
    ) {
        let mut lo = [_mm512_setzero_si512(); R];
        let mut hi = [_mm512_setzero_si512(); R];
        for j in 0..pairs {
            let (w_lo, w_hi) = weights(panel, j);
            for r in 0..R {
                let av = _mm512_set1_epi32(*a.add(r * pairs + j) as i32);
                lo[r] = dpwssd(lo[r], av, w_lo);
                hi[r] = dpwssd(hi[r], av, w_hi);
            }
        }
        for r in 0..R {
            epilogue.add_row(c.add(r * c_stride), [lo[r], hi[r]], *row_scales.add(r));
        }
    }

    /// One row (batch-1 inference): four independent accumulator pairs hide the latency.
    #[inline(always)]
    unsafe fn single_row_kernel(
        pairs: usize,
        a: *const u32,
        panel: *const i8,
        c: *mut f32,
        row_scale: f32,
        epilogue: &Epilogue,
    ) {
        let mut lo = [_mm512_setzero_si512(); 4];
        let mut hi = [_mm512_setzero_si512(); 4];
        let mut j = 0;
        while j + 4 <= pairs {
            for u in 0..4 {
                let av = _mm512_set1_epi32(*a.add(j + u) as i32);
                let (w_lo, w_hi) = weights(panel, j + u);
                lo[u] = dpwssd(lo[u], av, w_lo);
                hi[u] = dpwssd(hi[u], av, w_hi);
            }
            j += 4;
        }
        while j < pairs {
            let av = _mm512_set1_epi32(*a.add(j) as i32);
            let (w_lo, w_hi) = weights(panel, j);
            lo[0] = dpwssd(lo[0], av, w_lo);
            hi[0] = dpwssd(hi[0], av, w_hi);
            j += 1;
        }
        let sum = |v: [__m512i; 4]| {
            _mm512_add_epi32(_mm512_add_epi32(v[0], v[1]), _mm512_add_epi32(v[2], v[3]))
        };
        epilogue.add_row(c, [sum(lo), sum(hi)], row_scale);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{PackedI8, PANEL};

    /// Rows of the result kept in registers: 4 accumulators of 8 columns per row. (Three rows,
    /// 12 accumulators, ran 25 % slower with AVX-VNNI: the widened weights and broadcasts spill.)
    const TILE_ROWS: usize = 2;

    /// See [`super::matmul_recurrent_i8`] and the AVX-512 kernel: the same integer sums in 8-lane
    /// registers, `vpmaddwd` (pairs of i16 products summed into i32) and `vpaddd` standing in for
    /// `vpdpwssd` (|each pair's sum| ≤ 2 · 127 · S < 2³¹, so nothing wraps).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` must hold `rows × w.pairs` values and `out` the rows
    /// the caller's bounds checks guarantee, `row_scales` `rows` values.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn matmul(
        rows: usize,
        a: &[u32],
        row_scales: &[u32],
        w: &PackedI8,
        out: &mut [f32],
        out_stride: usize,
        backwards: bool,
    ) {
        matmul_with::<false>(rows, a, row_scales, w, out, out_stride, backwards)
    }

    /// [`matmul`] with AVX-VNNI's 256-bit `vpdpwssd`: one instruction per product where AVX2 needs
    /// two, the same exact sums.
    ///
    /// # Safety
    /// As [`matmul`], and the CPU must support AVX-VNNI.
    #[target_feature(enable = "avx2,fma,avxvnni")]
    pub(super) unsafe fn matmul_vnni(
        rows: usize,
        a: &[u32],
        row_scales: &[u32],
        w: &PackedI8,
        out: &mut [f32],
        out_stride: usize,
        backwards: bool,
    ) {
        matmul_with::<true>(rows, a, row_scales, w, out, out_stride, backwards)
    }

    #[inline(always)]
    unsafe fn matmul_with<const VNNI: bool>(
        rows: usize,
        a: &[u32],
        row_scales: &[u32],
        w: &PackedI8,
        out: &mut [f32],
        out_stride: usize,
        backwards: bool,
    ) {
        let pairs = w.pairs;
        for (offset, col0, cols) in w.panel_order(backwards) {
            let panel = w.data.as_ptr().add(offset);
            let mut r = 0;
            while r < rows {
                let height = (rows - r).min(TILE_ROWS);
                let ap = a.as_ptr().add(r * pairs);
                let s = row_scales.as_ptr().add(r) as *const f32;
                let c = out.as_mut_ptr().add(r * out_stride + col0);
                let scale = w.scale.as_ptr().add(col0);
                match height {
                    2 => tile::<2, VNNI>(pairs, ap, panel, c, out_stride, cols, scale, s),
                    _ => tile::<1, VNNI>(pairs, ap, panel, c, out_stride, cols, scale, s),
                }
                r += height;
            }
        }
    }

    /// `R` rows' integer sums over a panel, added to the output at their scales.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn tile<const R: usize, const VNNI: bool>(
        pairs: usize,
        a: *const u32,
        panel: *const i8,
        c: *mut f32,
        c_stride: usize,
        cols: usize,
        scale: *const f32,
        row_scales: *const f32,
    ) {
        let sums = tile_kernel::<R, VNNI>(pairs, a, panel);
        for (t, sums) in sums.iter().enumerate() {
            add_row(c.add(t * c_stride), cols, scale, sums, *row_scales.add(t));
        }
    }

    /// The 8 columns' weights of chunk `q` (0..4) of pair `j`, widened to i16.
    #[inline(always)]
    unsafe fn weights(panel: *const i8, j: usize, q: usize) -> __m256i {
        _mm256_cvtepi8_epi16(_mm_loadu_si128(
            panel.add(j * PANEL * 2 + q * 16) as *const __m128i
        ))
    }

    /// `R` rows × 32 columns of integer sums.
    #[inline(always)]
    unsafe fn tile_kernel<const R: usize, const VNNI: bool>(
        pairs: usize,
        a: *const u32,
        panel: *const i8,
    ) -> [[__m256i; 4]; R] {
        let mut acc = [[_mm256_setzero_si256(); 4]; R];
        if VNNI && R == 1 {
            // One row (batch 1): `vpdpwssd` waits on its accumulator, so even and odd pairs go to
            // two sets of four, added at the end (integer sums: the same result in any order).
            let mut even = [_mm256_setzero_si256(); 4];
            let mut odd = [_mm256_setzero_si256(); 4];
            let step = |sums: &mut [__m256i; 4], j: usize| {
                let av = _mm256_set1_epi32(*a.add(j) as i32);
                for (q, sum) in sums.iter_mut().enumerate() {
                    *sum = _mm256_dpwssd_avx_epi32(*sum, av, weights(panel, j, q));
                }
            };
            let mut j = 0;
            while j + 2 <= pairs {
                step(&mut even, j);
                step(&mut odd, j + 1);
                j += 2;
            }
            if j < pairs {
                step(&mut even, j);
            }
            acc[0] = [0, 1, 2, 3].map(|q| _mm256_add_epi32(even[q], odd[q]));
            return acc;
        }
        for j in 0..pairs {
            for q in 0..4 {
                let wq = weights(panel, j, q);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm256_set1_epi32(*a.add(r * pairs + j) as i32);
                    acc[q] = if VNNI {
                        _mm256_dpwssd_avx_epi32(acc[q], av, wq)
                    } else {
                        _mm256_add_epi32(acc[q], _mm256_madd_epi16(av, wq))
                    };
                }
            }
        }
        acc
    }

    /// `out[0..cols] += sums · scale · row_scale`; `scale` holds the panel's columns' scales.
    #[inline(always)]
    unsafe fn add_row(
        c: *mut f32,
        cols: usize,
        scale: *const f32,
        sums: &[__m256i; 4],
        row_scale: f32,
    ) {
        let row_scale = _mm256_set1_ps(row_scale);
        for (q, sums) in sums.iter().enumerate() {
            let start = 8 * q;
            if start >= cols {
                break;
            }
            let exact = _mm256_cvtepi32_ps(*sums);
            if cols - start >= 8 {
                let factor = _mm256_mul_ps(_mm256_loadu_ps(scale.add(start)), row_scale);
                let dst = c.add(start);
                _mm256_storeu_ps(dst, _mm256_fmadd_ps(exact, factor, _mm256_loadu_ps(dst)));
            } else {
                // A partial last chunk: lane by lane, as the AVX-512 kernel's masked lanes do.
                let mut lanes = [0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), exact);
                for (l, &v) in lanes.iter().enumerate().take(cols - start) {
                    let d = c.add(start + l);
                    *d = v.mul_add(*scale.add(start + l) * _mm256_cvtss_f32(row_scale), *d);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values::lcg;
    use super::*;

    #[test]
    fn quantised_products_stay_within_the_roundings_of_the_exact_ones() {
        let mut seed = 3;
        // k odd (a padded pair), a partial last panel, 1–11 rows (every tile size).
        for (k, n) in [(7, 70), (256, 64), (33, 100)] {
            let w: Vec<f32> = (0..k * n).map(|_| 0.3 * lcg(&mut seed)).collect();
            let packed = PackedI8::pack(&w, k, n, false);
            let transposed: Vec<f32> = (0..n * k).map(|i| w[(i % k) * n + i / k]).collect();
            let packed_t = PackedI8::pack(&transposed, k, n, true);
            for rows in 1..=11 {
                let lhs: Vec<f32> = (0..rows * k).map(|_| lcg(&mut seed)).collect();
                let mut outs = Vec::new();
                for (matrix, backwards) in [(&packed, false), (&packed_t, true)] {
                    let mut out = vec![0.5f32; rows * n];
                    matmul_recurrent_i8(
                        rows,
                        &lhs,
                        k,
                        matrix,
                        &mut out,
                        n,
                        backwards,
                        &mut Vec::new(),
                    );
                    outs.push(out);
                }
                // Both packings quantise the same columns: the same integer sums.
                assert_eq!(outs[0], outs[1], "k {k} n {n} rows {rows}");
                let mut reference = vec![0.5f32; rows * n];
                portable_reference(rows, &lhs, k, &packed, &mut reference);
                for r in 0..rows {
                    for c in 0..n {
                        let exact: f64 = (0..k)
                            .map(|i| lhs[r * k + i] as f64 * w[i * n + c] as f64)
                            .sum();
                        let largest = (0..k).map(|i| w[i * n + c].abs()).fold(0f32, f32::max);
                        // Per product: w off by ≤ half a step (largest / 254), h (≤ 1 here) by ≤
                        // half of one of its row's S steps (1 / 2S of the range, ~1.5e-5).
                        let h_error = 0.5 / f64::from(packed.lhs_steps);
                        let bound = k as f64 * largest as f64 * (1.0 / 254.0 + h_error) + 1e-5;
                        let got = outs[0][r * n + c] as f64 - 0.5;
                        assert!(
                            (got - exact).abs() <= bound,
                            "k {k} n {n} rows {rows} ({r}, {c}): {got} vs {exact} (bound {bound})"
                        );
                        let same = reference[r * n + c] as f64 - 0.5;
                        assert!((got - same).abs() <= 1e-6 * (1.0 + same.abs()));
                    }
                }
            }
        }
    }

    /// The portable loop on the quantised left-hand side, whatever kernel the CPU runs.
    fn portable_reference(rows: usize, lhs: &[f32], k: usize, w: &PackedI8, out: &mut [f32]) {
        let mut scratch = Vec::new();
        quantise_rows(rows, lhs, k, k, w.lhs_steps, &mut scratch);
        let (pairs, row_scales) = scratch.split_at(rows * w.pairs);
        portable(rows, pairs, row_scales, w, out, w.n);
    }

    #[test]
    fn the_left_hand_side_maps_onto_the_symmetric_i16_range() {
        assert_eq!(quantise(0.0, 32767.0), 0);
        assert_eq!(quantise(1.0, 32767.0), 32767);
        assert_eq!(quantise(-1.0, 32767.0), -32767);
        assert_eq!(quantise(2.0, 32767.0), 32767);
        // Halves round away from zero.
        assert_eq!(quantise(0.5, 3.0), 2);
        assert_eq!(quantise(-0.5, 3.0), -2);
        assert_eq!(quantise(0.1, 3.0), 0);
        assert_eq!(quantise(f32::NAN, 3.0), 0);
        assert_eq!(quantise(f32::NEG_INFINITY, 3.0), -3);
        assert_eq!(unpair(0xFFFF_0001), [1, -1]);
    }

    #[test]
    fn rows_are_quantised_as_the_scalar_rule_says() {
        // Odd `k` (a padded pair), rows a stride apart, a NaN and an all-zero row; the vectorised
        // loops against the rule written out one value at a time.
        let (rows, k, stride) = (3, 37, 40);
        let mut seed = 11;
        let mut lhs: Vec<f32> = (0..rows * stride).map(|_| 0.9 * lcg(&mut seed)).collect();
        lhs[5] = f32::NAN;
        lhs[2 * stride..2 * stride + k].fill(0.0);
        let steps = 32767.0;
        let mut scratch = Vec::new();
        quantise_rows(rows, &lhs, stride, k, steps, &mut scratch);
        let pairs = k.div_ceil(2);
        for r in 0..rows {
            let row = &lhs[r * stride..r * stride + k];
            let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let inverse = if largest > 0.0 { 1.0 / largest } else { 0.0 };
            for j in 0..pairs {
                let value = |i: usize| {
                    row.get(i).map_or(0, |&v| {
                        let q = (v * inverse * steps).round().clamp(-steps, steps);
                        if q.is_nan() {
                            0
                        } else {
                            q as i32
                        }
                    })
                };
                assert_eq!(
                    unpair(scratch[r * pairs + j]),
                    [value(2 * j), value(2 * j + 1)],
                    "row {r} pair {j}"
                );
            }
            assert_eq!(f32::from_bits(scratch[rows * pairs + r]), largest / steps);
        }
    }

    #[test]
    fn the_state_scale_keeps_every_integer_sum_inside_i32() {
        for (k, expected) in [
            (320, 32767.0),
            (516, 32767.0),
            (1024, 16513.0),
            (1, 32767.0),
        ] {
            let packed = PackedI8::pack(&vec![1.0; k], k, 1, false);
            assert_eq!(packed.lhs_steps, expected, "k {k}");
            let pairs = k.div_ceil(2) as f64;
            assert!(2.0 * pairs * 127.0 * f64::from(packed.lhs_steps) <= f64::from(i32::MAX));
        }
        // The worst case, every weight and state at full scale with the same sign, is exact.
        let k = 1000;
        let packed = PackedI8::pack(&vec![0.25; k], k, 1, false);
        let lhs = vec![-0.75f32; k];
        let mut out = vec![0.0f32];
        matmul_recurrent_i8(1, &lhs, k, &packed, &mut out, 1, false, &mut Vec::new());
        let exact = -0.25 * 0.75 * k as f32;
        assert!(
            (out[0] - exact).abs() < 1e-3 * exact.abs(),
            "{} vs {exact}",
            out[0]
        );
    }

    #[test]
    fn packing_rounds_every_weight_as_f32_round_does() {
        assert_eq!(
            HALF_BELOW,
            f32::from_bits(0x3EFF_FFFF),
            "the f32 just below 0.5"
        );
        // Ties, the values either side of them, NaN and beyond the clamp.
        let edge = [
            0.5,
            -0.5,
            1.5,
            2.5,
            -2.5,
            HALF_BELOW,
            -HALF_BELOW,
            f32::from_bits(0x3FBF_FFFF), // just below 1.5
            126.5,
            127.49,
            200.0,
            -1e9,
            f32::NAN,
            0.0,
            -0.0,
        ];
        for v in edge {
            let expected = v.round().clamp(-127.0, 127.0) as i32;
            assert_eq!(round_clamped(v, 127.0), expected, "{v}");
        }
        let mut seed = 5;
        for _ in 0..100_000 {
            let v = 130.0 * lcg(&mut seed);
            assert_eq!(
                round_clamped(v, 127.0),
                v.round().clamp(-127.0, 127.0) as i32,
                "{v}"
            );
        }
        // The packed bytes are the plain per-element rule's, in both layouts, with a zero column
        // and an odd `k`.
        for (k, n) in [(7, 70), (320, 64)] {
            let mut w: Vec<f32> = (0..k * n).map(|_| 0.3 * lcg(&mut seed)).collect();
            for v in w.iter_mut().skip(3).step_by(11) {
                *v = (*v * 8.0).round() / 8.0; // many exact ties once scaled
            }
            for transposed in [false, true] {
                let value = |row: usize, col: usize| {
                    if transposed {
                        w[col * k + row]
                    } else {
                        w[row * n + col]
                    }
                };
                let mut w = w.clone();
                (0..k).for_each(|row| {
                    let i = if transposed { 5 * k + row } else { row * n + 5 };
                    w[i] = 0.0;
                });
                let packed = PackedI8::pack(&w, k, n, transposed);
                let value = |row: usize, col: usize| if col == 5 { 0.0 } else { value(row, col) };
                let pairs = k.div_ceil(2);
                for col in 0..n {
                    let largest = (0..k).map(|row| value(row, col).abs()).fold(0f32, f32::max);
                    let step = largest / WEIGHT_STEPS;
                    assert_eq!(packed.scale[col], step);
                    let (p, c) = (col / PANEL, col % PANEL);
                    for row in 0..k {
                        let q = if step > 0.0 {
                            (value(row, col) / step).round().clamp(-127.0, 127.0) as i8
                        } else {
                            0
                        };
                        let at = ((p * pairs + row / 2) * PANEL + c) * 2 + row % 2;
                        assert_eq!(packed.data[at], q, "k {k} column {col} row {row}");
                    }
                }
            }
        }
    }
}
