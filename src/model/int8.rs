//! The recurrence in 8-bit integers ([`Precision::Int8`](super::Precision::Int8)): `W_hh` quantised
//! per output column, `h_{t−1}` quantised on a fixed scale, products summed exactly in i32 with
//! `vpdpbusd` (AVX512-VNNI).
//!
//! Why: at batch 1 each step multiplies one vector by one direction's whole `W_hh` (`[H × 4H]`), so a
//! step costs what reading `W_hh` from L2 and the multiply-adds cost. In int8 `W_hh` is a quarter of
//! f32's bytes, and one `vpdpbusd` does 64 multiply-adds where an f32 FMA does 16 — and, on the Intel
//! CPUs that have AMX, four times as many per cycle as `vdpbf16ps` (BENCHMARKS.md). The input
//! projections are not done here: they run over all frames at once, where bf16 (on AMX tiles where
//! present) is fast and more exact.
//!
//! The quantisation: each row of the left-hand side (one utterance's `h_{t−1}`) on its own scale
//! `m = max_k |h_k|`, `u_k = round(127 h_k / m) + 128` as u8 (rounded half up; a fixed scale for
//! `h` ∈ (−1, 1) moved PER by up to 0.8 points on the small real sets, this by less). Each column
//! `c` of `W_hh` gets its own scale `s_c = max_k |w_kc| / 127` and `q_kc = round(w_kc / s_c)` as i8.
//! Then `Σ_k h_k w_kc ≈ m (s_c / 127) (Σ_k u_k q_kc − 128 Σ_k q_kc)`: the integer sum is exact
//! (|Σ| < 2²⁴ for `k` ≤ 512), so every kernel gives the same sums and the only errors are the two
//! roundings (≤ 1/254 of each row's range, ≤ half a step of each weight). Hence an opt-in, checked
//! by its effect on PER (BENCHMARKS.md), never the default.
//!
//! Layout: panels of 32 columns, each stored `[k/4][32]` of i32, each i32 holding the weights of rows
//! `4j..4j+3` of one column (row `4j` in the low byte): the operand layout of `vpdpbusd`.

use std::sync::OnceLock;

use super::kernels::{simd_level, SimdLevel};

/// Columns per packed panel: two 16-lane registers.
const PANEL: usize = 32;
/// Rows of the result kept in registers by the AVX-512 micro-kernel.
const TILE_ROWS: usize = 8;
/// The quantised value of 0 for the left-hand side (`u = round(127 h / m) + 128`).
const ZERO_POINT: i32 = 128;
/// Steps of the left-hand side's quantisation per unit (|h| < 1 maps onto 1..=255).
const STEPS_PER_UNIT: f32 = 127.0;

/// Whether the int8 products run natively here (`vpdpbusd`): AVX-512 chosen ([`simd_level`]) and
/// AVX512-VNNI present. Elsewhere a portable loop computes the same integer sums, slower.
fn native() -> bool {
    static NATIVE: OnceLock<bool> = OnceLock::new();
    *NATIVE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            simd_level() == SimdLevel::Avx512 && std::arch::is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = simd_level;
            false
        }
    })
}

/// A `[k × n]` right-hand matrix quantised to int8 per column, packed for [`matmul_recurrent_i8`].
pub(crate) struct PackedI8 {
    k: usize,
    n: usize,
    /// `k` rounded up to groups of four.
    quads: usize,
    data: Vec<i32>,
    /// Per column: `s_c / 127`, with the row's `m` the factor from the integer sum to the product.
    scale: Vec<f32>,
    /// Per column: `128 Σ_k q_kc`, what the left-hand side's zero point adds to the integer sum.
    offset: Vec<i32>,
}

impl PackedI8 {
    /// `n`, the product's columns.
    pub(crate) fn columns(&self) -> usize {
        self.n
    }

    /// Quantise and pack `w`, which holds the matrix row-major as `[k × n]`, or as `[n × k]` when
    /// `transposed` (then the product uses `wᵀ`).
    pub(crate) fn pack(w: &[f32], k: usize, n: usize, transposed: bool) -> Self {
        assert_eq!(w.len(), k * n, "packed matrix: wrong size");
        let value = |row: usize, col: usize| -> f32 {
            if transposed {
                w[col * k + row]
            } else {
                w[row * n + col]
            }
        };
        let mut scale = Vec::with_capacity(n);
        let mut offset = Vec::with_capacity(n);
        // Quantised columns, `[n][k]`.
        let mut q = vec![0i8; n * k];
        for col in 0..n {
            let largest = (0..k).map(|row| value(row, col).abs()).fold(0f32, f32::max);
            let step = largest / 127.0;
            let mut sum = 0i32;
            for row in 0..k {
                let v = if step > 0.0 {
                    (value(row, col) / step).round().clamp(-127.0, 127.0) as i8
                } else {
                    0
                };
                q[col * k + row] = v;
                sum += v as i32;
            }
            scale.push(step / STEPS_PER_UNIT);
            offset.push(ZERO_POINT * sum);
        }
        let quads = k.div_ceil(4);
        let panels = n.div_ceil(PANEL);
        let mut data = vec![0i32; panels * quads * PANEL];
        for p in 0..panels {
            let panel = &mut data[p * quads * PANEL..(p + 1) * quads * PANEL];
            let cols = (n - p * PANEL).min(PANEL);
            for j in 0..quads {
                for c in 0..cols {
                    let col = p * PANEL + c;
                    let mut bytes = [0u8; 4];
                    for (b, byte) in bytes.iter_mut().enumerate() {
                        let row = 4 * j + b;
                        if row < k {
                            *byte = q[col * k + row] as u8;
                        }
                    }
                    panel[j * PANEL + c] = i32::from_le_bytes(bytes);
                }
            }
        }
        PackedI8 {
            k,
            n,
            quads,
            data,
            scale,
            offset,
        }
    }
}

/// `x` (|x| ≤ 1, already divided by its row's largest magnitude) on the 8-bit scale, rounded half up. (Truncating the shifted
/// value, which is positive, rounds without `f32::round`, a libm call on baseline x86-64 that cost
/// 4 % of a batch-1 pass.)
#[inline(always)]
fn quantise(x: f32) -> u8 {
    ((x * STEPS_PER_UNIT).clamp(-STEPS_PER_UNIT, STEPS_PER_UNIT) + (ZERO_POINT as f32 + 0.5)) as u8
}

/// One step of a recurrence: `out[r, 0..n] += Σ_k lhs[r, k] · W[k, 0..n]` for `rows` rows, with
/// each row of `lhs` and each column of `W` quantised on its own scale (see the module). `backwards`
/// walks the panels last to first (as
/// [`matmul_packed_in_order`](super::kernels::matmul_packed_in_order)). `scratch` holds the
/// quantised left-hand side between calls.
#[allow(clippy::too_many_arguments)] // a BLAS-style signature, as the f32 kernel's
pub(crate) fn matmul_recurrent_i8(
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
    quantise_rows(rows, lhs, lhs_stride, w.k, scratch);
    let (quads, row_scales) = scratch.split_at(rows * w.quads);
    #[cfg(target_arch = "x86_64")]
    if native() {
        // SAFETY: `native` checked AVX-512F and AVX512-VNNI; bounds were checked above, `quads`
        // holds `rows × w.quads` values and `row_scales` `rows`.
        unsafe {
            avx512::matmul(rows, quads, row_scales, w, out, out_stride, backwards);
        }
        return;
    }
    portable(rows, quads, row_scales, w, out, out_stride);
}

/// Quantise `rows` rows of `k` values into `scratch`: first each row's `k.div_ceil(4)` groups of
/// four bytes, then each row's scale `m` (as f32 bits; the columns' scales hold the 1/127).
fn quantise_rows(rows: usize, lhs: &[f32], lhs_stride: usize, k: usize, scratch: &mut Vec<u32>) {
    let quads = k.div_ceil(4);
    scratch.clear();
    scratch.resize(rows * (quads + 1), 0);
    let (packed, scales) = scratch.split_at_mut(rows * quads);
    for (r, (dst, scale)) in packed.chunks_exact_mut(quads).zip(scales).enumerate() {
        let row = &lhs[r * lhs_stride..r * lhs_stride + k];
        let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let inverse = if largest > 0.0 { 1.0 / largest } else { 0.0 };
        for (group, values) in dst.iter_mut().zip(row.chunks(4)) {
            // Past `k` the padding rows of `W` are zero, so what stands in there is moot.
            let mut bytes = [ZERO_POINT as u8; 4];
            for (b, &v) in bytes.iter_mut().zip(values) {
                *b = quantise(v * inverse);
            }
            *group = u32::from_le_bytes(bytes);
        }
        *scale = largest.to_bits();
    }
}

/// The same integer sums without VNNI, for other CPUs (and to test the kernel against).
fn portable(
    rows: usize,
    lhs_quads: &[u32],
    row_scales: &[u32],
    w: &PackedI8,
    out: &mut [f32],
    out_stride: usize,
) {
    let quads = w.quads;
    for (p, panel) in w.data.chunks_exact(quads * PANEL).enumerate() {
        let col0 = p * PANEL;
        let cols = (w.n - col0).min(PANEL);
        for r in 0..rows {
            let a = &lhs_quads[r * quads..(r + 1) * quads];
            let mut acc = [0i32; PANEL];
            for (&av, wrow) in a.iter().zip(panel.chunks_exact(PANEL)) {
                let av = av.to_le_bytes();
                for (s, &wv) in acc.iter_mut().zip(wrow) {
                    let wv = wv.to_le_bytes();
                    for b in 0..4 {
                        *s += av[b] as i32 * (wv[b] as i8) as i32;
                    }
                }
            }
            let row_scale = f32::from_bits(row_scales[r]);
            let dst = &mut out[r * out_stride + col0..r * out_stride + col0 + cols];
            for (c, (d, &s)) in dst.iter_mut().zip(&acc).enumerate() {
                let col = col0 + c;
                *d += (s - w.offset[col]) as f32 * (w.scale[col] * row_scale);
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
    /// the quantised left-hand side, `rows × w.quads`, and `row_scales` each row's scale (f32 bits).
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX512-VNNI; `a` must hold `rows × w.quads` values and
    /// `out` the rows the caller's bounds checks guarantee, `row_scales` `rows` values.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn matmul(
        rows: usize,
        a: &[u32],
        row_scales: &[u32],
        w: &PackedI8,
        out: &mut [f32],
        out_stride: usize,
        backwards: bool,
    ) {
        let quads = w.quads;
        let panels = w.n.div_ceil(PANEL);
        for i in 0..panels {
            let p = if backwards { panels - 1 - i } else { i };
            let panel = w.data.as_ptr().add(p * quads * PANEL);
            let col0 = p * PANEL;
            let cols = (w.n - col0).min(PANEL);
            let epilogue = Epilogue::new(w, col0, cols);
            let mut r = 0;
            while r < rows {
                let tile = (rows - r).min(TILE_ROWS);
                let ap = a.as_ptr().add(r * quads);
                let c = out.as_mut_ptr().add(r * out_stride + col0);
                let s = row_scales.as_ptr().add(r) as *const f32;
                match tile {
                    8 => tile_kernel::<8>(quads, ap, panel, c, out_stride, s, &epilogue),
                    7 => tile_kernel::<7>(quads, ap, panel, c, out_stride, s, &epilogue),
                    6 => tile_kernel::<6>(quads, ap, panel, c, out_stride, s, &epilogue),
                    5 => tile_kernel::<5>(quads, ap, panel, c, out_stride, s, &epilogue),
                    4 => tile_kernel::<4>(quads, ap, panel, c, out_stride, s, &epilogue),
                    3 => tile_kernel::<3>(quads, ap, panel, c, out_stride, s, &epilogue),
                    2 => tile_kernel::<2>(quads, ap, panel, c, out_stride, s, &epilogue),
                    _ => single_row_kernel(quads, ap, panel, c, *s, &epilogue),
                }
                r += tile;
            }
        }
    }

    /// A panel's per-column offsets and scales, and which of its 32 columns exist.
    struct Epilogue {
        offset: [__m512i; 2],
        scale: [__m512; 2],
        mask: [__mmask16; 2],
    }

    impl Epilogue {
        #[inline(always)]
        unsafe fn new(w: &PackedI8, col0: usize, cols: usize) -> Self {
            let mask = [column_mask(cols), column_mask(cols.saturating_sub(16))];
            // Masked loads read nothing past the last column.
            let offset = w.offset.as_ptr().add(col0);
            let scale = w.scale.as_ptr().add(col0);
            let half = |h: usize| {
                if mask[h] == 0 {
                    (_mm512_setzero_si512(), _mm512_setzero_ps())
                } else {
                    (
                        _mm512_maskz_loadu_epi32(mask[h], offset.add(16 * h)),
                        _mm512_maskz_loadu_ps(mask[h], scale.add(16 * h)),
                    )
                }
            };
            let (lo, hi) = (half(0), half(1));
            Epilogue {
                offset: [lo.0, hi.0],
                scale: [lo.1, hi.1],
                mask,
            }
        }

        /// `out[0..cols] += (sums − offset) · scale · row_scale`.
        #[inline(always)]
        unsafe fn add_row(&self, c: *mut f32, sums: [__m512i; 2], row_scale: f32) {
            let row_scale = _mm512_set1_ps(row_scale);
            for (h, sums) in sums.into_iter().enumerate() {
                if self.mask[h] == 0 {
                    continue;
                }
                let exact = _mm512_cvtepi32_ps(_mm512_sub_epi32(sums, self.offset[h]));
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

    /// An `R × 32` tile: `2R` accumulators, per quad of `k` two panel loads and `R` broadcasts.
    #[inline(always)]
    unsafe fn tile_kernel<const R: usize>(
        quads: usize,
        a: *const u32,
        panel: *const i32,
        c: *mut f32,
        c_stride: usize,
        row_scales: *const f32,
        epilogue: &Epilogue,
    ) {
        let mut lo = [_mm512_setzero_si512(); R];
        let mut hi = [_mm512_setzero_si512(); R];
        for j in 0..quads {
            let w_lo = _mm512_loadu_si512(panel.add(j * PANEL) as *const __m512i);
            let w_hi = _mm512_loadu_si512(panel.add(j * PANEL + 16) as *const __m512i);
            for r in 0..R {
                let av = _mm512_set1_epi32(*a.add(r * quads + j) as i32);
                lo[r] = _mm512_dpbusd_epi32(lo[r], av, w_lo);
                hi[r] = _mm512_dpbusd_epi32(hi[r], av, w_hi);
            }
        }
        for r in 0..R {
            epilogue.add_row(c.add(r * c_stride), [lo[r], hi[r]], *row_scales.add(r));
        }
    }

    /// One row (batch-1 inference): four independent accumulator pairs hide the latency.
    #[inline(always)]
    unsafe fn single_row_kernel(
        quads: usize,
        a: *const u32,
        panel: *const i32,
        c: *mut f32,
        row_scale: f32,
        epilogue: &Epilogue,
    ) {
        let mut lo = [_mm512_setzero_si512(); 4];
        let mut hi = [_mm512_setzero_si512(); 4];
        let mut j = 0;
        while j + 4 <= quads {
            for u in 0..4 {
                let av = _mm512_set1_epi32(*a.add(j + u) as i32);
                let wp = panel.add((j + u) * PANEL);
                lo[u] = _mm512_dpbusd_epi32(lo[u], av, _mm512_loadu_si512(wp as *const __m512i));
                hi[u] = _mm512_dpbusd_epi32(
                    hi[u],
                    av,
                    _mm512_loadu_si512(wp.add(16) as *const __m512i),
                );
            }
            j += 4;
        }
        while j < quads {
            let av = _mm512_set1_epi32(*a.add(j) as i32);
            let wp = panel.add(j * PANEL);
            lo[0] = _mm512_dpbusd_epi32(lo[0], av, _mm512_loadu_si512(wp as *const __m512i));
            hi[0] =
                _mm512_dpbusd_epi32(hi[0], av, _mm512_loadu_si512(wp.add(16) as *const __m512i));
            j += 1;
        }
        let sum = |v: [__m512i; 4]| {
            _mm512_add_epi32(_mm512_add_epi32(v[0], v[1]), _mm512_add_epi32(v[2], v[3]))
        };
        epilogue.add_row(c, [sum(lo), sum(hi)], row_scale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    #[test]
    fn quantised_products_stay_within_the_roundings_of_the_exact_ones() {
        let mut seed = 3;
        // k not a multiple of 4 (a padded quad), a partial last panel, 1–11 rows (every tile size).
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
                        // Per product: h off by ≤ 1/254 of its row's range (here ≤ 1), w by ≤
                        // half a step (largest / 254).
                        let bound = k as f64 * (largest as f64 / 254.0) * 2.0 + 1e-5;
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
        quantise_rows(rows, lhs, k, k, &mut scratch);
        let (quads, row_scales) = scratch.split_at(rows * w.quads);
        portable(rows, quads, row_scales, w, out, w.n);
    }

    #[test]
    fn the_left_hand_side_maps_onto_the_symmetric_byte_range() {
        assert_eq!(quantise(0.0), 128);
        assert_eq!(quantise(1.0), 255);
        assert_eq!(quantise(-1.0), 1);
        assert_eq!(quantise(2.0), 255);
        // −63.5 rounds half up.
        assert_eq!(quantise(-0.5), 128 - 63);
        assert_eq!(quantise(0.5), 128 + 64);
    }
}
