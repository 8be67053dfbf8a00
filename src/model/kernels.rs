//! The inner loops of the fused LSTM ([`super::fused`]): the per-step recurrent matrix product with a
//! weight matrix packed once per layer call, and the gate nonlinearities + cell update (forward and
//! backward) as loops the compiler vectorises.
//!
//! Why not a general GEMM for the per-step product: at batch 16 it is `[16 × 256] · [256 × 1024]`, and
//! the `gemm` crate re-packs the 1 MB weight matrix on every call, which `perf` showed costing as much
//! as the arithmetic. Here the weights are packed into 32-column panels once, and an AVX-512 micro-kernel
//! keeps an 8 × 32 tile of the result in registers, reading each panel (32 KB, L1-resident) once per step
//! for all rows. With AVX2 + FMA only (most laptops) a kernel of the same structure with 8-lane
//! registers runs (2 × 32 tiles); elsewhere a portable loop does the same work.
//!
//! The same kernel, over row blocks that keep the left-hand side in L2 ([`matmul_packed_rows`]), does
//! the layers' input projections and `dx`, a little faster than the `gemm` crate on those shapes. The
//! weight gradients (`dgatesᵀ · x`, a reduction over all frames) go to the `gemm` crate ([`gemm_f32`]).
//!
//! The loops are compiled for AVX-512, AVX2 + FMA and the baseline and chosen at run time, so the
//! binary runs on any x86-64 and uses the wide registers where they exist.

use std::sync::OnceLock;

use candle_core::{CpuStorage, Layout, Storage, Tensor};

/// Which compiled variant of the kernels runs, widest last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// Baseline x86-64 (SSE2) or any other architecture.
    Portable,
    /// AVX2 + FMA.
    Avx2,
    /// AVX-512 F + VL (with AVX2 + FMA).
    Avx512,
}

/// Environment variable that caps the kernel variant: `amx`, `avx512`, `avxvnni`, `avx2` or
/// `portable`. Tests and benchmarks use it to run every variant on one machine; a level the CPU lacks
/// is capped to what it has. `avxvnni` is AVX2 with AVX-VNNI's 256-bit integer dot products for
/// int8 (Intel cores since Alder Lake); `avx2` is plain AVX2 + FMA even where AVX-VNNI runs.
pub const KERNEL_ENV: &str = "PHONREC_KERNEL";

/// [`KERNEL_ENV`]'s value in lower case; set but empty (`PHONREC_KERNEL= phonrec ...`) counts as
/// unset.
fn requested_kernel() -> Option<String> {
    std::env::var(KERNEL_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.to_ascii_lowercase())
}

/// The widest variant this CPU runs, capped by [`KERNEL_ENV`]; decided once per process.
pub fn simd_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let detected = detected_simd_level();
        match requested_kernel() {
            None => detected,
            Some(wanted) => {
                let wanted = match wanted.as_str() {
                    // `amx` adds AMX tiles to AVX-512 for bf16 products (`bf16`); `avx512` leaves them out.
                    "avx512" | "amx" => SimdLevel::Avx512,
                    "avxvnni" | "avx2" => SimdLevel::Avx2,
                    "portable" => SimdLevel::Portable,
                    other => {
                        eprintln!(
                            "phonrec: warning: {KERNEL_ENV}={other} is not amx, avx512, avxvnni, \
                             avx2 or portable; using this CPU's widest kernels"
                        );
                        detected
                    }
                };
                if wanted > detected {
                    eprintln!(
                        "phonrec: warning: {KERNEL_ENV} asks for {wanted:?} kernels but this CPU \
                         runs {detected:?} at most; using {detected:?}"
                    );
                }
                wanted.min(detected)
            }
        }
    })
}

/// Whether AVX-VNNI (the VEX-coded 256-bit `vpdpbusd` and `vpdpwssd`: Intel cores since Alder
/// Lake, AMD Zen 5) may run int8's products where the AVX2 kernels are chosen: the CPU has it and
/// [`KERNEL_ENV`] is not `avx2` (which keeps the plain AVX2 kernels, to test them on any CPU).
/// Decided once per process.
pub(crate) fn avx_vnni() -> bool {
    static AVX_VNNI: OnceLock<bool> = OnceLock::new();
    *AVX_VNNI.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let requested = requested_kernel();
            let has = std::arch::is_x86_feature_detected!("avxvnni");
            if requested.as_deref() == Some("avxvnni") && !has {
                eprintln!(
                    "phonrec: warning: {KERNEL_ENV}=avxvnni but this CPU has no AVX-VNNI; using \
                     the plain AVX2 kernels"
                );
            }
            has && simd_level() >= SimdLevel::Avx2 && requested.as_deref() != Some("avx2")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

fn detected_simd_level() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return SimdLevel::Avx512;
            }
            return SimdLevel::Avx2;
        }
    }
    SimdLevel::Portable
}

/// Compile `$body` (an `#[inline(always)]` fn) for AVX-512, for AVX2 + FMA and for the baseline, and
/// define `$name` to run the one [`simd_level`] chooses.
macro_rules! multiversion {
    ($(#[$doc:meta])* $name:ident => $body:ident ($($arg:ident : $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn wide($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn narrow($($arg: $ty),*) {
                    $body($($arg),*)
                }
                match $crate::model::simd_level() {
                    // SAFETY: simd_level never exceeds what the CPU has, and Avx512 means every
                    // feature `wide` is compiled for is present.
                    $crate::model::SimdLevel::Avx512 => return unsafe { wide($($arg),*) },
                    // SAFETY: as above, AVX2 and FMA are present.
                    $crate::model::SimdLevel::Avx2 => return unsafe { narrow($($arg),*) },
                    $crate::model::SimdLevel::Portable => {}
                }
            }
            $body($($arg),*)
        }
    };
}

// Other stages (dereverberation) compile their inner loops the same way.
pub(crate) use multiversion;

/// `$kernel::<R>(args)` for a tile of `$tile` rows, `R` in 2..=8, and `$one` for a single row.
/// The row count is a const generic so that each tile's accumulators are a fixed set of registers;
/// the AVX-512 products (f32, bf16, int8, 8-bit projections) all dispatch their last, shorter tile
/// through this one match.
macro_rules! by_tile_rows {
    ($tile:expr, $kernel:ident($($arg:expr),* $(,)?), $one:expr) => {
        match $tile {
            8 => $kernel::<8>($($arg),*),
            7 => $kernel::<7>($($arg),*),
            6 => $kernel::<6>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            _ => $one,
        }
    };
}

pub(crate) use by_tile_rows;

/// Columns per packed panel: two 16-lane AVX-512 registers.
const PANEL: usize = 32;
/// Rows of the result kept in registers by the micro-kernel.
const TILE_ROWS: usize = 8;

/// A `[k × n]` right-hand matrix packed for [`matmul_packed`]: panels of `PANEL` (32) columns, each stored
/// `[k][PANEL]` (the last panel zero-padded).
pub struct PackedMatrix {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedMatrix {
    /// Pack `w`, which holds the matrix row-major as `[k × n]`, or as `[n × k]` when `transposed`
    /// (then the product uses `wᵀ`).
    pub fn pack(w: &[f32], k: usize, n: usize, transposed: bool) -> Self {
        assert_eq!(w.len(), k * n, "packed matrix: wrong size");
        Self::pack_strided(w, k, n, transposed, if transposed { k } else { n })
    }

    /// As [`pack`](Self::pack), with the stored rows `stride` values apart (e.g. `[W_ih | b]`, whose
    /// rows hold one more value than the weights).
    pub(crate) fn pack_strided(
        w: &[f32],
        k: usize,
        n: usize,
        transposed: bool,
        stride: usize,
    ) -> Self {
        assert_strided_fits(w, k, n, transposed, stride);
        let panels = n.div_ceil(PANEL);
        let mut data = vec![0f32; panels * k * PANEL];
        for p in 0..panels {
            let panel = &mut data[p * k * PANEL..(p + 1) * k * PANEL];
            let cols = (n - p * PANEL).min(PANEL);
            for kk in 0..k {
                let dst = &mut panel[kk * PANEL..kk * PANEL + cols];
                for (c, d) in dst.iter_mut().enumerate() {
                    let col = p * PANEL + c;
                    *d = if transposed {
                        w[col * stride + kk]
                    } else {
                        w[kk * stride + col]
                    };
                }
            }
        }
        PackedMatrix { k, n, data }
    }
}

/// Panics unless `w` holds a `[k × n]` matrix (`[n × k]` when `transposed`) whose stored rows lie
/// `stride` values apart: the packers' one bounds check.
pub(crate) fn assert_strided_fits(w: &[f32], k: usize, n: usize, transposed: bool, stride: usize) {
    let (stored_rows, stored_cols) = if transposed { (n, k) } else { (k, n) };
    assert!(
        stride >= stored_cols
            && (stored_rows == 0 || w.len() >= (stored_rows - 1) * stride + stored_cols),
        "packed matrix: wrong size"
    );
}

/// `out[r, 0..n] (+)= Σ_k lhs[r, k] · W[k, 0..n]` for `rows` rows; `lhs` and `out` are row-major with
/// the given row strides. `accumulate` adds to `out` instead of overwriting it.
pub fn matmul_packed(
    rows: usize,
    lhs: &[f32],
    lhs_stride: usize,
    w: &PackedMatrix,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
) {
    matmul_packed_in_order(rows, lhs, lhs_stride, w, out, out_stride, accumulate, false);
}

/// [`matmul_packed`], walking `w`'s panels last to first if `backwards` (same results). A recurrence
/// that alternates the direction step by step finds the panels it used last still in L2: `W_hh` of one
/// direction is as large as the L2 (1 MB), so the same order every step evicts each panel just before
/// its next use and streams all of `W_hh` from L3 per step, which bounds batch-1 inference.
#[allow(clippy::too_many_arguments)] // a BLAS-style signature: matrices as slices with strides, as the callers hold them
pub fn matmul_packed_in_order(
    rows: usize,
    lhs: &[f32],
    lhs_stride: usize,
    w: &PackedMatrix,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
    backwards: bool,
) {
    if rows == 0 || w.n == 0 {
        return;
    }
    // Every element touched below lies inside these bounds (the kernels index unchecked).
    assert!(lhs_stride >= w.k && lhs.len() >= (rows - 1) * lhs_stride + w.k);
    assert!(out_stride >= w.n && out.len() >= (rows - 1) * out_stride + w.n);
    #[cfg(target_arch = "x86_64")]
    if simd_level() == SimdLevel::Avx512 {
        // SAFETY: the CPU has AVX-512F (simd_level never exceeds it); bounds were checked above.
        unsafe {
            avx512::matmul_packed(
                rows, lhs, lhs_stride, w, out, out_stride, accumulate, backwards,
            );
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if simd_level() == SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 and FMA (simd_level never exceeds it); bounds were checked above.
        unsafe {
            avx2::matmul_packed(
                rows, lhs, lhs_stride, w, out, out_stride, accumulate, backwards,
            );
        }
        return;
    }
    matmul_packed_portable(rows, lhs, lhs_stride, w, out, out_stride, accumulate);
}

/// [`matmul_packed`] for many rows (an input projection over all frames): row blocks of
/// `ROW_BLOCK` (128) rows, so each block of `lhs` stays in L2 while the panels of `w` stream past it, split
/// over `threads` threads. The blocks make this ~6 % faster than the `gemm` crate on these shapes.
#[allow(clippy::too_many_arguments)] // a BLAS-style signature: matrices as slices with strides, as the callers hold them
pub fn matmul_packed_rows(
    threads: usize,
    rows: usize,
    lhs: &[f32],
    lhs_stride: usize,
    w: &PackedMatrix,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
) {
    // Bounds are checked by `matmul_packed_in_order` for each block.
    for_row_blocks(threads, rows, out, out_stride, |first, block, out| {
        matmul_packed(
            block,
            &lhs[first * lhs_stride..],
            lhs_stride,
            w,
            out,
            out_stride,
            accumulate,
        );
    });
}

/// Run `product(first_row, rows, out_rows)` over blocks of at most `ROW_BLOCK` rows, so each block's
/// left-hand side stays in L2 while a packed matrix's panels stream past it, on up to `threads`
/// threads, each taking a contiguous share of whole blocks (and its slice of `out`, rows
/// `out_stride` apart). The products that project many rows, in f32 and in bf16, share it.
pub(crate) fn for_row_blocks(
    threads: usize,
    rows: usize,
    out: &mut [f32],
    out_stride: usize,
    product: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    if rows == 0 {
        return;
    }
    let run = |first: usize, count: usize, out: &mut [f32]| {
        let mut r = 0;
        while r < count {
            let block = (count - r).min(ROW_BLOCK);
            product(first + r, block, &mut out[r * out_stride..]);
            r += block;
        }
    };
    let threads = threads.clamp(1, rows.div_ceil(ROW_BLOCK));
    if threads == 1 {
        run(0, rows, out);
        return;
    }
    // Contiguous shares of whole blocks, one per thread.
    let share = rows.div_ceil(ROW_BLOCK).div_ceil(threads) * ROW_BLOCK;
    std::thread::scope(|scope| {
        let mut rest = out;
        let mut first = 0;
        while first < rows {
            let count = share.min(rows - first);
            let (mine, others) = rest.split_at_mut((count * out_stride).min(rest.len()));
            rest = others;
            let start = first;
            let run = &run;
            if first + count < rows {
                scope.spawn(move || run(start, count, mine));
            } else {
                run(start, count, mine);
            }
            first += count;
        }
    });
}

/// Rows per block in [`matmul_packed_rows`]: 128 rows of 512 inputs are 256 KB, a quarter of L2.
const ROW_BLOCK: usize = 128;

multiversion! {
    /// The same product without explicit SIMD intrinsics: the compiler vectorises the column loop, for
    /// AVX2 on CPUs without AVX-512 (most laptops) and for the baseline elsewhere.
    matmul_packed_portable => matmul_packed_portable_body(
        rows: usize,
        lhs: &[f32],
        lhs_stride: usize,
        w: &PackedMatrix,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
    )
}

#[inline(always)]
fn matmul_packed_portable_body(
    rows: usize,
    lhs: &[f32],
    lhs_stride: usize,
    w: &PackedMatrix,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
) {
    let k = w.k;
    for (p, panel) in w.data.chunks_exact(k * PANEL).enumerate() {
        let col0 = p * PANEL;
        let cols = (w.n - col0).min(PANEL);
        for r in 0..rows {
            let a = &lhs[r * lhs_stride..r * lhs_stride + k];
            let mut acc = [0f32; PANEL];
            for (&av, wrow) in a.iter().zip(panel.chunks_exact(PANEL)) {
                for (s, &wv) in acc.iter_mut().zip(wrow) {
                    *s += av * wv;
                }
            }
            let dst = &mut out[r * out_stride + col0..r * out_stride + col0 + cols];
            for (d, &s) in dst.iter_mut().zip(&acc) {
                *d = if accumulate { *d + s } else { s };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx512 {
    use std::arch::x86_64::*;

    use super::{PackedMatrix, PANEL, TILE_ROWS};

    /// See [`super::matmul_packed`]. For each panel (kept in L1), all rows in tiles of up to 8.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, and the bounds asserted by the caller must hold.
    #[allow(clippy::too_many_arguments)] // a BLAS-style signature: matrices as slices with strides, as the callers hold them
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn matmul_packed(
        rows: usize,
        lhs: &[f32],
        lhs_stride: usize,
        w: &PackedMatrix,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
        backwards: bool,
    ) {
        let k = w.k;
        let panels = w.n.div_ceil(PANEL);
        // In the recurrence `out` is a fresh slice of a gate buffer far larger than the caches: without
        // these prefetches every tile's first touch of its output rows waits for memory (20 % of the
        // product at batch 16). The next panel's output rows are fetched while this one computes.
        let out_start = out.as_ptr() as *const i8;
        let prefetch_panel = |p: usize| {
            for r in 0..rows {
                let c = out_start.add((r * out_stride + p * PANEL) * 4);
                _mm_prefetch::<_MM_HINT_T0>(c);
                if w.n - p * PANEL > 16 {
                    _mm_prefetch::<_MM_HINT_T0>(c.add(64));
                }
            }
        };
        let panel_at = |i: usize| if backwards { panels - 1 - i } else { i };
        prefetch_panel(panel_at(0));
        for i in 0..panels {
            let p = panel_at(i);
            if i + 1 < panels {
                prefetch_panel(panel_at(i + 1));
            }
            let panel = w.data.as_ptr().add(p * k * PANEL);
            let col0 = p * PANEL;
            let cols = (w.n - col0).min(PANEL);
            let mut r = 0;
            while r < rows {
                let tile = (rows - r).min(TILE_ROWS);
                let a = lhs.as_ptr().add(r * lhs_stride);
                let c = out.as_mut_ptr().add(r * out_stride + col0);
                super::by_tile_rows!(
                    tile,
                    tile_kernel(k, a, lhs_stride, panel, c, out_stride, cols, accumulate),
                    single_row_kernel(k, a, panel, c, cols, accumulate)
                );
                r += tile;
            }
        }
    }

    /// The lanes of a 16-lane register that hold the first `n` columns (all for `n` ≥ 16).
    #[inline(always)]
    pub(in crate::model) fn column_mask(n: usize) -> __mmask16 {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    /// Store two registers (32 columns) into a row, only the first `cols` columns, optionally adding.
    /// (Also the bf16 kernel's store: `super::super::bf16`.)
    ///
    /// # Safety
    /// AVX-512F, and `c` valid for `cols` (≤ 32) floats.
    #[inline(always)]
    pub(in crate::model) unsafe fn store_row(
        c: *mut f32,
        lo: __m512,
        hi: __m512,
        cols: usize,
        accumulate: bool,
    ) {
        let mut lo = lo;
        let m_lo = column_mask(cols);
        if accumulate {
            lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(m_lo, c));
        }
        _mm512_mask_storeu_ps(c, m_lo, lo);
        // The upper half only when the row has columns there: with cols ≤ 16, `c.add(16)` may lie
        // past the end of the output, and forming such a pointer is undefined even if the masked
        // store would touch nothing.
        if cols > 16 {
            let c_hi = c.add(16);
            let m_hi = column_mask(cols - 16);
            let mut hi = hi;
            if accumulate {
                hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(m_hi, c_hi));
            }
            _mm512_mask_storeu_ps(c_hi, m_hi, hi);
        }
    }

    /// An `R × 32` tile of the result: `2R` accumulators, per `k` two panel loads and `R` broadcasts.
    #[allow(clippy::too_many_arguments)] // a BLAS-style signature: matrices as slices with strides, as the callers hold them
    #[inline(always)]
    unsafe fn tile_kernel<const R: usize>(
        k: usize,
        a: *const f32,
        a_stride: usize,
        panel: *const f32,
        c: *mut f32,
        c_stride: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let mut lo = [_mm512_setzero_ps(); R];
        let mut hi = [_mm512_setzero_ps(); R];
        for kk in 0..k {
            let w_lo = _mm512_loadu_ps(panel.add(kk * PANEL));
            let w_hi = _mm512_loadu_ps(panel.add(kk * PANEL + 16));
            for r in 0..R {
                let av = _mm512_set1_ps(*a.add(r * a_stride + kk));
                lo[r] = _mm512_fmadd_ps(av, w_lo, lo[r]);
                hi[r] = _mm512_fmadd_ps(av, w_hi, hi[r]);
            }
        }
        for r in 0..R {
            store_row(c.add(r * c_stride), lo[r], hi[r], cols, accumulate);
        }
    }

    /// One row (batch-1 inference): four independent accumulator pairs over `k` so the FMA latency
    /// is hidden, summed at the end.
    #[inline(always)]
    unsafe fn single_row_kernel(
        k: usize,
        a: *const f32,
        panel: *const f32,
        c: *mut f32,
        cols: usize,
        accumulate: bool,
    ) {
        let mut lo = [_mm512_setzero_ps(); 4];
        let mut hi = [_mm512_setzero_ps(); 4];
        let mut kk = 0;
        while kk + 4 <= k {
            for u in 0..4 {
                let av = _mm512_set1_ps(*a.add(kk + u));
                let wp = panel.add((kk + u) * PANEL);
                lo[u] = _mm512_fmadd_ps(av, _mm512_loadu_ps(wp), lo[u]);
                hi[u] = _mm512_fmadd_ps(av, _mm512_loadu_ps(wp.add(16)), hi[u]);
            }
            kk += 4;
        }
        while kk < k {
            let av = _mm512_set1_ps(*a.add(kk));
            let wp = panel.add(kk * PANEL);
            lo[0] = _mm512_fmadd_ps(av, _mm512_loadu_ps(wp), lo[0]);
            hi[0] = _mm512_fmadd_ps(av, _mm512_loadu_ps(wp.add(16)), hi[0]);
            kk += 1;
        }
        let lo_sum = _mm512_add_ps(_mm512_add_ps(lo[0], lo[1]), _mm512_add_ps(lo[2], lo[3]));
        let hi_sum = _mm512_add_ps(_mm512_add_ps(hi[0], hi[1]), _mm512_add_ps(hi[2], hi[3]));
        store_row(c, lo_sum, hi_sum, cols, accumulate);
    }
}

/// The packed product for CPUs with AVX2 + FMA but not AVX-512 (most laptops): the AVX-512 kernel's
/// structure with 8-lane registers. Each 32-column panel is walked as two 16-column halves (a half
/// of `W_ih`'s panel, 32 KB at 512 inputs, stays in L1 while every row passes over it), in tiles of
/// six rows: 12 accumulators, the half-row of the panel and a broadcast fill the 16 registers, and
/// each panel load feeds six FMAs, not two. (Whole-panel tiles of two rows, the first kernel,
/// streamed the panel from L2 at two loads per two FMAs: an hour of short clips took 1.2x as long.
/// Whole-panel tiles of three rows spilled. The compiler's vectorisation of the portable loop
/// reached ~1.6 k frames/s on shape A where this kernel is needed at 10 k+.) Every element is
/// summed over `k` in the same order as by the two-row kernel, so the results are the same to the
/// bit.
#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use std::arch::x86_64::*;

    use super::{PackedMatrix, PANEL};

    /// Rows of the result kept in registers.
    const TILE_ROWS: usize = 6;
    /// Columns of a half panel: two registers.
    const HALF: usize = PANEL / 2;

    /// See [`super::matmul_packed_in_order`].
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, and the bounds asserted by the caller must hold.
    #[allow(clippy::too_many_arguments)] // a BLAS-style signature: matrices as slices with strides, as the callers hold them
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn matmul_packed(
        rows: usize,
        lhs: &[f32],
        lhs_stride: usize,
        w: &PackedMatrix,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
        backwards: bool,
    ) {
        let k = w.k;
        let panels = w.n.div_ceil(PANEL);
        for i in 0..panels {
            let p = if backwards { panels - 1 - i } else { i };
            let panel = w.data.as_ptr().add(p * k * PANEL);
            let col0 = p * PANEL;
            let cols = (w.n - col0).min(PANEL);
            for half in 0..2 {
                if cols <= half * HALF {
                    break; // no columns in the upper half (never form a pointer past the output)
                }
                let half_cols = (cols - half * HALF).min(HALF);
                let half_panel = panel.add(half * HALF);
                let mut r = 0;
                // Even tiles only, so that an odd row count leaves the last row to the one-row
                // kernel, whose two chains sum in another order, as the two-row kernel did.
                while r + 1 < rows {
                    let tile = (rows - r).min(TILE_ROWS) & !1;
                    let a = lhs.as_ptr().add(r * lhs_stride);
                    let c = out.as_mut_ptr().add(r * out_stride + col0 + half * HALF);
                    match tile {
                        6 => tile_kernel::<6>(
                            k, a, lhs_stride, half_panel, c, out_stride, half_cols, accumulate,
                        ),
                        4 => tile_kernel::<4>(
                            k, a, lhs_stride, half_panel, c, out_stride, half_cols, accumulate,
                        ),
                        _ => tile_kernel::<2>(
                            k, a, lhs_stride, half_panel, c, out_stride, half_cols, accumulate,
                        ),
                    }
                    r += tile;
                }
            }
            if rows % 2 == 1 {
                // The last row, over the whole panel (batch-1 inference: four registers a step).
                let a = lhs.as_ptr().add((rows - 1) * lhs_stride);
                let c = out.as_mut_ptr().add((rows - 1) * out_stride + col0);
                single_row_kernel(k, a, panel, c, cols, accumulate);
            }
        }
    }

    /// Store `N` registers (8`N` columns) into a row, only the first `cols` columns, optionally
    /// adding.
    #[inline(always)]
    pub(in crate::model) unsafe fn store_row<const N: usize>(
        c: *mut f32,
        acc: [__m256; N],
        cols: usize,
        accumulate: bool,
    ) {
        for (q, &value) in acc.iter().enumerate() {
            let first = 8 * q;
            if cols <= first {
                break; // `c.add(first)` may lie past the output: never form it
            }
            let dst = c.add(first);
            let n = cols - first;
            if n >= 8 {
                let v = if accumulate {
                    _mm256_add_ps(value, _mm256_loadu_ps(dst))
                } else {
                    value
                };
                _mm256_storeu_ps(dst, v);
            } else {
                let mask = _mm256_cmpgt_epi32(
                    _mm256_set1_epi32(n as i32),
                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                );
                let v = if accumulate {
                    _mm256_add_ps(value, _mm256_maskload_ps(dst, mask))
                } else {
                    value
                };
                _mm256_maskstore_ps(dst, mask, v);
            }
        }
    }

    /// An `R × 16` tile of a half panel (`panel` points at the half's first column; its rows lie
    /// `PANEL` apart): `2R` accumulators, per `k` two panel loads and `R` broadcasts.
    #[allow(clippy::too_many_arguments)] // a BLAS-style signature: matrices as slices with strides, as the callers hold them
    #[inline(always)]
    unsafe fn tile_kernel<const R: usize>(
        k: usize,
        a: *const f32,
        a_stride: usize,
        panel: *const f32,
        c: *mut f32,
        c_stride: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for kk in 0..k {
            let wp = panel.add(kk * PANEL);
            let w = [_mm256_loadu_ps(wp), _mm256_loadu_ps(wp.add(8))];
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(*a.add(r * a_stride + kk));
                for (sum, &wq) in row.iter_mut().zip(&w) {
                    *sum = _mm256_fmadd_ps(av, wq, *sum);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            store_row(c.add(r * c_stride), *row, cols, accumulate);
        }
    }

    /// One row (batch-1 inference): two independent accumulator sets over `k` hide the FMA latency.
    #[inline(always)]
    unsafe fn single_row_kernel(
        k: usize,
        a: *const f32,
        panel: *const f32,
        c: *mut f32,
        cols: usize,
        accumulate: bool,
    ) {
        // Two chains, each a fixed set of registers (indexing the chain by `kk % 2` would put the
        // accumulators in memory).
        let mut even = [_mm256_setzero_ps(); 4];
        let mut odd = [_mm256_setzero_ps(); 4];
        let step = |sum: &mut [__m256; 4], kk: usize| {
            let av = _mm256_set1_ps(*a.add(kk));
            let wp = panel.add(kk * PANEL);
            for (q, s) in sum.iter_mut().enumerate() {
                *s = _mm256_fmadd_ps(av, _mm256_loadu_ps(wp.add(8 * q)), *s);
            }
        };
        let mut kk = 0;
        while kk + 2 <= k {
            step(&mut even, kk);
            step(&mut odd, kk + 1);
            kk += 2;
        }
        if kk < k {
            step(&mut even, kk);
        }
        let total = [0, 1, 2, 3].map(|q| _mm256_add_ps(even[q], odd[q]));
        store_row(c, total, cols, accumulate);
    }
}

/// Borrow a contiguous f32 CPU tensor's values.
pub(crate) fn f32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        candle_core::bail!("the fused kernels take f32 {what}");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("the fused kernels need a contiguous {what}");
    };
    Ok(&values[start..end])
}

/// Run `f` on a tensor's values (made contiguous first).
pub(crate) fn with_values<R>(
    tensor: &Tensor,
    what: &str,
    f: impl FnOnce(&[f32]) -> R,
) -> candle_core::Result<R> {
    let tensor = tensor.contiguous()?;
    let (storage, layout) = tensor.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("the fused kernels run on the CPU only");
    };
    Ok(f(f32_slice(cpu, layout, what)?))
}

/// `dst[m×n] = (accumulate ? dst : 0) + lhs[m×k] · rhs[k×n]`, all row-major with the given row strides
/// (`rhs_transposed`: rhs is stored as `[n×k]` and used transposed), on `threads` threads of rayon's
/// pool (1: the calling thread only).
#[allow(clippy::too_many_arguments)] // a GEMM's shape and strides are its arguments
pub fn gemm_f32(
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_row_stride: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_row_stride: usize,
    lhs_transposed: bool,
    rhs: &[f32],
    rhs_row_stride: usize,
    rhs_transposed: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    // Bounds: the last element each operand is read or written at must be inside its slice.
    let last = |rows: usize, cols: usize, stride: usize| (rows - 1) * stride + cols;
    assert!(
        dst.len() >= last(m, n, dst_row_stride),
        "gemm dst too small"
    );
    if k > 0 {
        let (lr, lc) = if lhs_transposed { (k, m) } else { (m, k) };
        let (rr, rc) = if rhs_transposed { (n, k) } else { (k, n) };
        assert!(
            lhs.len() >= last(lr, lc, lhs_row_stride),
            "gemm lhs too small"
        );
        assert!(
            rhs.len() >= last(rr, rc, rhs_row_stride),
            "gemm rhs too small"
        );
    }
    let (lhs_rs, lhs_cs) = if lhs_transposed {
        (1, lhs_row_stride as isize)
    } else {
        (lhs_row_stride as isize, 1)
    };
    let (rhs_rs, rhs_cs) = if rhs_transposed {
        (1, rhs_row_stride as isize)
    } else {
        (rhs_row_stride as isize, 1)
    };
    // SAFETY: the asserts above keep every element gemm touches inside the slices; dst does not alias
    // lhs or rhs (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            if threads > 1 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            },
        );
    }
}

/// exp(x) for f32, branch-free so loops over it vectorise: x = n·ln2 + r, |r| ≤ ln2/2, a degree-6
/// polynomial for e^r (relative error < 2e-7), 2^n built from the exponent bits.
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding 1.5·2²³ (f32::round is a libm call that blocks vectorisation); valid
    // for |x·log2 e| < 2²², far beyond the clamp. The sum's low mantissa bits then hold n itself.
    const ROUNDER: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    // Cody–Waite: ln 2 split in two so n·ln2_hi is exact and r keeps its accuracy for large |x|.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2^n from integer arithmetic on the bits (a float-to-int `as` cast saturates and does not
    // vectorise): bits(shifted) − bits(ROUNDER) = n.
    let exponent = (shifted.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32) + 127;
    p * f32::from_bits((exponent << 23) as u32)
}

#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + fast_exp(-x))
}

#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    // tanh(x) = 2σ(2x) − 1, written so it stays accurate near 0: (1 − e^{−2x}) / (1 + e^{−2x}).
    let e = fast_exp(-2.0 * x.abs());
    let t = (1.0 - e) / (1.0 + e);
    t.copysign(x)
}

multiversion! {
    /// One sequence's LSTM step after the matrix products: `gates` (`[4H]`, pre-activations i, f, g, o
    /// without the bias) plus `bias` are replaced by their activations; the cell `c` and hidden state `h`
    /// (`[H]`) are updated in place and `h` is also written to `out`.
    cell_forward => cell_forward_body(
        gates: &mut [f32],
        bias: &[f32],
        c: &mut [f32],
        h: &mut [f32],
        out: &mut [f32],
    )
}

#[inline(always)]
fn cell_forward_body(
    gates: &mut [f32],
    bias: &[f32],
    c: &mut [f32],
    h: &mut [f32],
    out: &mut [f32],
) {
    let n = c.len();
    let (gi, rest) = gates.split_at_mut(n);
    let (gf, rest) = rest.split_at_mut(n);
    let (gg, go) = rest.split_at_mut(n);
    let (bi, rest) = bias.split_at(n);
    let (bf, rest) = rest.split_at(n);
    let (bg, bo) = rest.split_at(n);
    // Equal lengths up front let the compiler drop the bounds checks and vectorise.
    let (go, bo, h, out) = (&mut go[..n], &bo[..n], &mut h[..n], &mut out[..n]);
    for j in 0..n {
        let i = sigmoid(gi[j] + bi[j]);
        let f = sigmoid(gf[j] + bf[j]);
        let cand = tanh(gg[j] + bg[j]);
        let o = sigmoid(go[j] + bo[j]);
        let cell = f * c[j] + i * cand;
        let hv = o * tanh(cell);
        gi[j] = i;
        gf[j] = f;
        gg[j] = cand;
        go[j] = o;
        c[j] = cell;
        h[j] = hv;
        out[j] = hv;
    }
}

multiversion! {
    /// One sequence's LSTM step backwards (formulas in [`super::fused`]), in place: `gates` (`[4H]`)
    /// holds the saved activations i, f, g, o and is overwritten with their gradients. Also reads the
    /// cell `cell` and previous cell `c_prev` (`[H]`), the output gradient `dout` plus the recurrent
    /// `dh_next`, replaces `dc_next` by the gradient for the previous step's cell and adds the gate
    /// gradients to `bias_grad` (`[4H]`).
    cell_backward => cell_backward_body(
        gates: &mut [f32],
        cell: &[f32],
        c_prev: &[f32],
        dout: &[f32],
        dh_next: &[f32],
        dc_next: &mut [f32],
        bias_grad: &mut [f32],
    )
}

#[inline(always)]
fn cell_backward_body(
    gates: &mut [f32],
    cell: &[f32],
    c_prev: &[f32],
    dout: &[f32],
    dh_next: &[f32],
    dc_next: &mut [f32],
    bias_grad: &mut [f32],
) {
    let n = cell.len();
    let (bi, rest) = bias_grad.split_at_mut(n);
    let (bf, rest) = rest.split_at_mut(n);
    let (bg, bo) = rest.split_at_mut(n);
    let bo = &mut bo[..n];
    let (gi, rest) = gates.split_at_mut(n);
    let (gf, rest) = rest.split_at_mut(n);
    let (gg, go) = rest.split_at_mut(n);
    let (go, c_prev, dout, dh_next, dc_next) = (
        &mut go[..n],
        &c_prev[..n],
        &dout[..n],
        &dh_next[..n],
        &mut dc_next[..n],
    );
    for j in 0..n {
        // All four activations are read before their slots are overwritten.
        let (i, f, g, o) = (gi[j], gf[j], gg[j], go[j]);
        let tc = tanh(cell[j]);
        let dh = dout[j] + dh_next[j];
        let dc = dc_next[j] + dh * o * (1.0 - tc * tc);
        let (di, df) = (dc * g * i * (1.0 - i), dc * c_prev[j] * f * (1.0 - f));
        let (dg, d_o) = (dc * i * (1.0 - g * g), dh * tc * o * (1.0 - o));
        (gi[j], gf[j], gg[j], go[j]) = (di, df, dg, d_o);
        bi[j] += di;
        bf[j] += df;
        bg[j] += dg;
        bo[j] += d_o;
        dc_next[j] = dc * f;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_transcendentals_are_accurate() {
        let mut x = -30.0f32;
        while x < 30.0 {
            let e = fast_exp(x);
            assert!(((e - x.exp()) / x.exp()).abs() < 1e-6, "exp({x})");
            assert!(
                (sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() < 1e-6,
                "sigmoid({x})"
            );
            assert!((tanh(x) - x.tanh()).abs() < 1e-6, "tanh({x})");
            x += 0.0137;
        }
        assert!((tanh(1e-4) - 1e-4).abs() < 1e-7);
        assert!(sigmoid(-200.0) < 1e-30);
        assert_eq!(sigmoid(200.0), 1.0);
        assert!(fast_exp(-100.0) > 0.0 && fast_exp(-100.0) < 1e-37);
        assert!(fast_exp(100.0).is_finite());
    }

    /// Deterministic pseudo-random values in [−1, 1).
    fn values(count: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn check_product(rows: usize, k: usize, n: usize, transposed: bool, accumulate: bool) {
        let lhs_stride = k + 3;
        let out_stride = n + 5;
        let lhs = values(rows * lhs_stride, 1);
        let w = values(k * n, 2);
        let start = values(rows * out_stride, 3);
        let packed = PackedMatrix::pack(&w, k, n, transposed);
        let weight = |kk: usize, col: usize| {
            if transposed {
                w[col * k + kk]
            } else {
                w[kk * n + col]
            }
        };
        let mut out = start.clone();
        let mut portable = start.clone();
        matmul_packed(
            rows, &lhs, lhs_stride, &packed, &mut out, out_stride, accumulate,
        );
        matmul_packed_portable(
            rows,
            &lhs,
            lhs_stride,
            &packed,
            &mut portable,
            out_stride,
            accumulate,
        );
        for r in 0..rows {
            for col in 0..out_stride {
                let index = r * out_stride + col;
                let expected = if col < n {
                    let dot: f64 = (0..k)
                        .map(|kk| lhs[r * lhs_stride + kk] as f64 * weight(kk, col) as f64)
                        .sum();
                    dot + if accumulate { start[index] as f64 } else { 0.0 }
                } else {
                    start[index] as f64 // columns past n are never written
                };
                for (got, which) in [(out[index], "dispatched"), (portable[index], "portable")] {
                    assert!(
                        (got as f64 - expected).abs() < 1e-4 * (1.0 + expected.abs()),
                        "{which} rows {rows} k {k} n {n} at ({r}, {col}): {got} vs {expected}"
                    );
                }
            }
        }
    }

    #[test]
    fn packed_products_match_a_plain_sum_for_odd_shapes() {
        for rows in [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 16, 17] {
            for (k, n) in [(1, 1), (5, 20), (16, 64), (33, 100), (256, 32), (7, 47)] {
                check_product(rows, k, n, rows % 2 == 0, rows % 3 == 0);
                check_product(rows, k, n, rows % 2 == 1, rows % 3 != 0);
            }
        }
    }

    #[test]
    fn row_blocked_products_from_strided_weights_match_a_plain_sum() {
        // Rows across several blocks and both threads' shares, the last block partial.
        for (rows, k, n, threads) in [
            (300, 19, 45, 2),
            (129, 8, 33, 2),
            (5, 3, 7, 2),
            (260, 4, 16, 1),
        ] {
            for transposed in [false, true] {
                let stride = if transposed { k + 2 } else { n + 3 };
                let stored = if transposed { n * stride } else { k * stride };
                let w = values(stored, 7);
                let weight = |kk: usize, col: usize| {
                    if transposed {
                        w[col * stride + kk]
                    } else {
                        w[kk * stride + col]
                    }
                };
                let packed = PackedMatrix::pack_strided(&w, k, n, transposed, stride);
                let lhs = values(rows * k, 8);
                for accumulate in [false, true] {
                    let start = values(rows * n, 9);
                    let mut out = start.clone();
                    matmul_packed_rows(threads, rows, &lhs, k, &packed, &mut out, n, accumulate);
                    for r in 0..rows {
                        for col in 0..n {
                            let sum: f32 = (0..k).map(|kk| lhs[r * k + kk] * weight(kk, col)).sum();
                            let want = if accumulate {
                                start[r * n + col] + sum
                            } else {
                                sum
                            };
                            let got = out[r * n + col];
                            assert!(
                                (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                                "rows {rows} k {k} n {n} [{r}, {col}]: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn cell_kernels_match_their_formulas() {
        let h = 37;
        let mut gates = values(4 * h, 4).iter().map(|v| 3.0 * v).collect::<Vec<_>>();
        let bias = values(4 * h, 9);
        let pre: Vec<f32> = gates.iter().zip(&bias).map(|(g, b)| g + b).collect();
        let mut c = values(h, 5);
        let c0 = c.clone();
        let (mut hv, mut out) = (vec![0f32; h], vec![0f32; h]);
        cell_forward(&mut gates, &bias, &mut c, &mut hv, &mut out);
        let s = |x: f32| 1.0 / (1.0 + (-x).exp());
        for j in 0..h {
            let (i, f, g, o) = (
                s(pre[j]),
                s(pre[h + j]),
                pre[2 * h + j].tanh(),
                s(pre[3 * h + j]),
            );
            let cell = f * c0[j] + i * g;
            assert!((c[j] - cell).abs() < 1e-5);
            assert!((hv[j] - o * cell.tanh()).abs() < 1e-5 && out[j] == hv[j]);
            assert!((gates[j] - i).abs() < 1e-6 && (gates[2 * h + j] - g).abs() < 1e-6);
        }
        // Backward against the same formulas written out in f64.
        let (dout, dh_next) = (values(h, 6), values(h, 7));
        let mut dc_next = values(h, 8);
        let dc0 = dc_next.clone();
        let mut dgates = gates.clone();
        let mut bias_grad = vec![1f32; 4 * h];
        cell_backward(
            &mut dgates,
            &c,
            &c0,
            &dout,
            &dh_next,
            &mut dc_next,
            &mut bias_grad,
        );
        for j in 0..h {
            let (i, f, g, o) = (
                gates[j] as f64,
                gates[h + j] as f64,
                gates[2 * h + j] as f64,
                gates[3 * h + j] as f64,
            );
            let tc = (c[j] as f64).tanh();
            let dh = (dout[j] + dh_next[j]) as f64;
            let dc = dc0[j] as f64 + dh * o * (1.0 - tc * tc);
            let expected = [
                dc * g * i * (1.0 - i),
                dc * c0[j] as f64 * f * (1.0 - f),
                dc * i * (1.0 - g * g),
                dh * tc * o * (1.0 - o),
            ];
            for (q, e) in expected.iter().enumerate() {
                assert!(
                    (dgates[q * h + j] as f64 - e).abs() < 1e-5,
                    "gate {q} at {j}"
                );
            }
            assert!((dc_next[j] as f64 - dc * f).abs() < 1e-5);
        }
    }
}
