//! Reduced precision: the LSTM's weight matrices stored as bfloat16 (bf16: f32's sign and 8-bit
//! exponent, 8 bits of mantissa), multiplied with `vdpbf16ps` where the CPU has AVX512-BF16, on AMX
//! tiles where it has those. Inference uses the products below; mixed-precision training (`train
//! --precision bf16`, `matmul_bf16_transposed_lhs` for the weight gradients) uses them too.
//!
//! Why: at batch 1 every step of the recurrence multiplies one vector by one direction's whole `W_hh`
//! (`[H × 4H]`, 1 MB in f32 at H = 256), so a step costs what reading `W_hh` from L2 costs, and the
//! three layers' input projections are the rest. In bf16 the matrices are half the bytes, and each
//! `vdpbf16ps` does 32 multiply-adds where an f32 FMA does 16. The products accumulate in f32; what
//! changes is that weights and the left-hand side (`h_{t−1}`, or the layer input) are rounded to bf16
//! first (relative error ≤ 2⁻⁹ each), so the posteriors are close to, not equal to, f32's. Hence an
//! opt-in ([`Precision::Bf16`]), checked by its effect on PER (BENCHMARKS.md), never the default.
//!
//! Layout: as [`PackedMatrix`](super::kernels::PackedMatrix), panels of 32 columns, but each stored
//! `[k/2][32]` of u32, each u32 holding the pair `(w[2j][c], w[2j+1][c])` (even row in the low half):
//! the operand layout of `vdpbf16ps`, which sums the products of both halves into one f32 lane. The
//! left-hand side is converted to such pairs once per call. Without AVX512-BF16 (or with
//! `PHONREC_KERNEL` below `avx512`), a portable loop computes the same products from the same
//! bf16 values in f32, so the mode runs, and is tested, everywhere.

use std::sync::OnceLock;

use super::kernels::{assert_strided_fits, for_row_blocks, simd_level, SimdLevel};
use crate::choice::{Choice, Named};

/// Columns per packed panel: two 16-lane registers.
const PANEL: usize = 32;
/// Rows of the result kept in registers by the AVX-512 micro-kernel.
const TILE_ROWS: usize = 8;
/// Pairs of `k` in one AMX tile row (64 bytes of bf16); packed matrices and converted left-hand
/// sides hold `k` rounded up to whole tiles.
const TILE_PAIRS: usize = 16;
/// Rows in one AMX tile; the converted left-hand side of an AMX product is padded to whole tiles.
const AMX_TILE_ROWS: usize = 16;
/// From this many rows a product runs on AMX where the CPU has it: a tile costs the same for 2
/// rows as for 16, and at 2 rows it already beats `vdpbf16ps` (which, on the CPUs that have AMX,
/// issues once per two cycles); one row (batch-1 recurrence) stays on `vdpbf16ps`.
const AMX_MIN_ROWS: usize = 2;

/// The arithmetic of the LSTM's matrix products (at inference; training uses f32 or bf16, see
/// [`Blstm::set_training_precision`](super::Blstm::set_training_precision)).
///
/// `Precision::default()` is f32, the exact reference that the library's plain constructors
/// ([`Model::from_file`](super::Model::from_file), [`builtin::model`](crate::builtin::model))
/// keep; the command line and the Python package default to [`Precision::inference_default`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 throughout (what training uses, and the reference the others are measured against).
    #[default]
    F32,
    /// Weights and the products' left-hand sides rounded to bfloat16, accumulated in f32: about
    /// twice as fast at batch 1 on CPUs with AVX512-BF16, with posteriors close to f32's.
    Bf16,
    /// The recurrent weights in 8-bit integers and the state in 16-bit ones (`vpdpwssd` with
    /// AVX512-VNNI, `vpmaddwd` with AVX2; see `src/model/int8.rs`), the input projections past
    /// the first layer in 8 bits where `vpdpbusd` runs without AMX and outruns bf16 (the layer
    /// inputs rounded to 127ths; [`Int8Projections`](super::Int8Projections)), else in bf16 where
    /// that outruns f32 ([`bf16_fast`]), else f32: fastest at batch 1, posteriors a little further
    /// from f32's.
    Int8,
}

impl Choice for Precision {
    const CHOICES: &'static [Named<Self>] = &[
        Named {
            value: Precision::F32,
            name: "f32",
            help: "Full precision: the posteriors training measured, the same on every CPU (the default where no int8 kernel runs)",
        },
        Named {
            value: Precision::Bf16,
            name: "bf16",
            help: "LSTM weights in bfloat16: ~1.8x faster at batch 1 with AVX512-BF16 (~3x for batches with AMX; slower than f32 for batches on Intel CPUs without AMX), posteriors within ~1e-2 of f32's",
        },
        Named {
            value: Precision::Int8,
            name: "int8",
            help: "The recurrent weights in 8-bit integers (input projections in bf16 where that outruns f32, else in 8 bits with AVX512-VNNI, else f32): fastest at batch 1 (AVX512-VNNI or AVX2: a quarter of f32's bytes per step), posteriors within ~2e-2 of f32's; PER within 0.4 points of f32's on every evaluation set. The default on x86-64 CPUs with AVX2",
        },
    ];
}

impl Precision {
    /// The precision `transcribe`, `eval`, `probs` and the Python package use unless told
    /// otherwise: [`Precision::Int8`] where an int8 kernel runs natively (x86-64 with AVX2, or
    /// AVX-512 with VNNI, and `PHONREC_KERNEL` not `portable`), else [`Precision::F32`]. int8
    /// moved PER by at most 0.2 points on every evaluation set and runs 1.3–2.5× faster than f32
    /// at batch 1 (BENCHMARKS.md); its portable loop would be slower than f32, so other CPUs keep
    /// f32.
    pub fn inference_default() -> Precision {
        if super::int8::int8_native() {
            Precision::Int8
        } else {
            Precision::F32
        }
    }
}

/// f32 → bf16 bits, rounding to nearest, ties to even (NaN stays NaN).
#[inline(always)]
pub(crate) fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// bf16 bits → f32 (exact).
#[inline(always)]
pub(crate) fn from_bf16(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// Two consecutive values as one bf16 pair, the first in the low half.
#[inline(always)]
fn pair(even: f32, odd: f32) -> u32 {
    to_bf16(even) as u32 | ((to_bf16(odd) as u32) << 16)
}

/// Whether [`Precision::Bf16`] runs natively here (`vdpbf16ps`): AVX-512 chosen ([`simd_level`])
/// and AVX512-BF16 present. Elsewhere it is emulated, slower than f32.
pub fn bf16_native() -> bool {
    native()
}

/// Whether [`Precision::Bf16`] runs its products of two or more rows on AMX tiles here (Intel Xeon
/// since Sapphire Rapids, on Linux, unless `PHONREC_KERNEL` is below `amx`).
pub fn amx_native() -> bool {
    amx::available()
}

/// Whether bf16 products outrun f32 ones on this CPU, so that defaults may choose them (`int8`'s
/// input projections where the 8-bit ones are not chosen, fine-tuning's arithmetic): AMX tiles, or
/// AMD's native `vdpbf16ps` (Zen 4 and 5 retire about twice the multiply-adds per second of an f32
/// FMA: [`bf16_rate_ratio`] 1.9–2.0). Intel cores issue `vdpbf16ps` once per two cycles, half of
/// f32's rate, so where their AMX is absent or hidden (a VM that does not pass it through) bf16
/// measured slower than f32: training 0.65×, an hour of short clips with `int8` (bf16
/// projections) 1.13× the time of f32's (BENCHMARKS.md, 2026-12-07 04:20). Where it returns false,
/// `--precision bf16` still runs natively when asked for.
///
/// Decided by the CPU's make, not by the rates timed at start: on a shared VM those scatter from
/// one process to the next (a 2-core AMD EPYC Zen 3 timed `vpmaddubsw` at 1.0–1.75× the FMA over
/// 150 processes), and a choice that follows them gave the same file other posteriors in one run
/// of forty (BENCHMARKS.md, 2026-12-08).
pub fn bf16_fast() -> bool {
    static FAST: OnceLock<bool> = OnceLock::new();
    *FAST.get_or_init(|| amx::available() || (native() && cpu_is_amd()))
}

/// Whether the CPU is AMD's (CPUID vendor "AuthenticAMD").
fn cpu_is_amd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let id = std::arch::x86_64::__cpuid(0);
        let vendor: Vec<u8> = [id.ebx, id.edx, id.ecx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        vendor == b"AuthenticAMD"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `vdpbf16ps`'s multiply-adds per second over `vfmadd231ps`'s on this core, measured on first use
/// (about 0.5 ms, with `vpdpbusd`'s: the best of eight interleaved timings of independent chains of
/// each, so that a preemption within the measurement does not bias it; what the core shares with
/// its neighbours on a VM still moves it from one process to the next, which is why nothing is
/// chosen by it); `None` where bf16 does not run natively. For `phonrec bench`'s report.
pub fn bf16_rate_ratio() -> Option<f64> {
    let rates = instruction_rates();
    rates.bf16.map(|bf16| bf16 / rates.fma.max(1e-9))
}

/// Multiply-adds per second of one core's independent chains of each instruction the products
/// choose between, measured once per process (see [`bf16_rate_ratio`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct InstructionRates {
    /// `vfmadd231ps` (f32; 16 per instruction where AVX-512 is chosen, 8 where AVX2 is), or 0 on
    /// the portable level.
    pub(crate) fma: f64,
    /// `vdpbf16ps` (32 per instruction) where bf16 runs natively.
    pub(crate) bf16: Option<f64>,
    /// The 8-bit projections' dot product where one of their kernels runs: `vpdpbusd` (u8 × s8,
    /// 64 per 512-bit instruction, 32 per 256-bit one) or AVX2's `vpmaddubsw` + `vpmaddwd` +
    /// `vpaddd` (32 per three instructions).
    pub(crate) u8: Option<f64>,
}

/// `rounds` × [`RATE_CHAINS`] 8-lane `vfmadd231ps` in independent chains (for
/// [`instruction_rates`] where AVX2 is chosen).
///
/// # Safety
/// AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_fma_chains(rounds: usize) -> f32 {
    use std::arch::x86_64::*;
    let one = std::hint::black_box(_mm256_set1_ps(1.0));
    let tiny = std::hint::black_box(_mm256_set1_ps(1e-7));
    let mut acc = [_mm256_setzero_ps(); RATE_CHAINS];
    for _ in 0..rounds {
        for sum in acc.iter_mut() {
            *sum = _mm256_fmadd_ps(*sum, one, tiny);
        }
    }
    let mut total = _mm256_setzero_ps();
    for sum in acc {
        total = _mm256_add_ps(total, sum);
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), total);
    lanes.iter().sum()
}

/// Independent accumulators in each chain function that [`instruction_rates`] times: more than an
/// instruction's latency times its issue rate on any CPU, so the chains measure throughput.
pub(crate) const RATE_CHAINS: usize = 12;

pub(crate) fn instruction_rates() -> InstructionRates {
    static RATES: OnceLock<InstructionRates> = OnceLock::new();
    *RATES.get_or_init(|| {
        let mut rates = InstructionRates {
            fma: 0.0,
            bf16: None,
            u8: None,
        };
        #[cfg(target_arch = "x86_64")]
        if simd_level() != SimdLevel::Portable {
            // Enough rounds that the slowest chain takes ~20 µs, far above the clock's resolution.
            const ROUNDS: usize = 4000;
            let wide = simd_level() == SimdLevel::Avx512;
            let u8_runs = super::projection_u8::available();
            let time = |run: &dyn Fn() -> f32| {
                let start = std::time::Instant::now();
                std::hint::black_box(run());
                start.elapsed().as_secs_f64()
            };
            let mut best = [f64::INFINITY; 3];
            for _ in 0..8 {
                best[0] = best[0].min(time(&|| {
                    if wide {
                        // SAFETY: AVX-512F is present (simd_level never exceeds the CPU).
                        unsafe { avx512::fma_chains(ROUNDS) }
                    } else {
                        // SAFETY: AVX2 and FMA are present (simd_level never exceeds the CPU).
                        unsafe { avx2_fma_chains(ROUNDS) }
                    }
                }));
                if native() {
                    // SAFETY: `native` checked AVX-512F and AVX512-BF16.
                    best[1] = best[1].min(time(&|| unsafe { avx512::dot_chains(ROUNDS) }));
                }
                if u8_runs {
                    best[2] = best[2].min(time(&|| super::projection_u8::dot_chains(ROUNDS)));
                }
            }
            let chains = (ROUNDS * RATE_CHAINS) as f64;
            let rate = |per_instruction: f64, seconds: f64| {
                (seconds.is_finite()).then(|| chains * per_instruction / seconds.max(1e-9))
            };
            let u8_width = super::projection_u8::dot_width() as f64;
            rates = InstructionRates {
                fma: rate(if wide { 16.0 } else { 8.0 }, best[0]).unwrap_or(0.0),
                bf16: rate(32.0, best[1]),
                u8: rate(u8_width, best[2]),
            };
        }
        rates
    })
}

fn native() -> bool {
    static NATIVE: OnceLock<bool> = OnceLock::new();
    *NATIVE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            simd_level() == SimdLevel::Avx512 && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = simd_level;
            false
        }
    })
}

/// A `[k × n]` right-hand matrix in bf16, packed for [`matmul_bf16`].
pub(crate) struct PackedBf16 {
    k: usize,
    n: usize,
    /// `k` rounded up to pairs.
    pairs: usize,
    data: Vec<u32>,
}

impl PackedBf16 {
    /// Pack `w`, which holds the matrix row-major as `[k × n]`, or as `[n × k]` when `transposed`
    /// (then the product uses `wᵀ`), rounding each value to bf16.
    pub(crate) fn pack(w: &[f32], k: usize, n: usize, transposed: bool) -> Self {
        assert_eq!(w.len(), k * n, "packed matrix: wrong size");
        Self::pack_strided(w, k, n, transposed, if transposed { k } else { n })
    }

    /// As [`pack`](Self::pack), from a matrix whose stored rows lie `stride` values apart (as
    /// [`PackedMatrix::pack_strided`](super::kernels::PackedMatrix::pack_strided)).
    pub(crate) fn pack_strided(
        w: &[f32],
        k: usize,
        n: usize,
        transposed: bool,
        stride: usize,
    ) -> Self {
        assert_strided_fits(w, k, n, transposed, stride);
        // Whole AMX tiles of k (zero pairs past `k` add nothing), so every kernel reads one layout.
        let pairs = k.div_ceil(2).next_multiple_of(TILE_PAIRS);
        let panels = n.div_ceil(PANEL);
        let mut data = vec![0u32; panels * pairs * PANEL];
        if transposed {
            // Stored row `col` holds column `col` of the matrix: its consecutive values are the
            // pairs of that column.
            let mut converted = vec![0u32; k.div_ceil(2)];
            for col in 0..n {
                convert_row(&w[col * stride..col * stride + k], &mut converted);
                let panel = &mut data[(col / PANEL) * pairs * PANEL..];
                for (j, &v) in converted.iter().enumerate() {
                    panel[j * PANEL + col % PANEL] = v;
                }
            }
        } else {
            // Two stored rows (2j, 2j + 1) give pair row j of every panel.
            for j in 0..k.div_ceil(2) {
                let even = &w[2 * j * stride..2 * j * stride + n];
                let odd =
                    (2 * j + 1 < k).then(|| &w[(2 * j + 1) * stride..(2 * j + 1) * stride + n]);
                for p in 0..panels {
                    let cols = (n - p * PANEL).min(PANEL);
                    let dst = &mut data[(p * pairs + j) * PANEL..][..cols];
                    let even = &even[p * PANEL..p * PANEL + cols];
                    match odd {
                        Some(odd) => interleave(even, &odd[p * PANEL..p * PANEL + cols], dst),
                        None => {
                            for (d, &e) in dst.iter_mut().zip(even) {
                                *d = pair(e, 0.0);
                            }
                        }
                    }
                }
            }
        }
        PackedBf16 { k, n, pairs, data }
    }
}

/// `out[r, 0..n] (+)= Σ_k lhs[r, k] · W[k, 0..n]` for `rows` rows, in bf16 products accumulated in
/// f32 (see the module). `lhs` and `out` are row-major with the given row strides; `accumulate` adds
/// to `out`; `backwards` walks the panels last to first (as
/// [`matmul_packed_in_order`](super::kernels::matmul_packed_in_order), so a recurrence finds the
/// panels it used last in L2). `scratch` holds the converted left-hand side between calls.
#[allow(clippy::too_many_arguments)] // a BLAS-style signature, as the f32 kernel's
pub(crate) fn matmul_bf16(
    rows: usize,
    lhs: &[f32],
    lhs_stride: usize,
    w: &PackedBf16,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
    backwards: bool,
    scratch: &mut Vec<u32>,
) {
    if rows == 0 || w.n == 0 {
        return;
    }
    // Every element touched below lies inside these bounds (the kernels index unchecked).
    assert!(lhs_stride >= w.k && lhs.len() >= (rows - 1) * lhs_stride + w.k);
    assert!(out_stride >= w.n && out.len() >= (rows - 1) * out_stride + w.n);
    let pairs = w.pairs;
    let use_amx = rows >= AMX_MIN_ROWS && amx::available();
    // AMX reads whole tiles of 16 rows: the rows past `rows` are zeros.
    let stored_rows = if use_amx {
        rows.next_multiple_of(AMX_TILE_ROWS)
    } else {
        rows
    };
    scratch.clear();
    scratch.reserve(stored_rows * pairs);
    scratch.resize(stored_rows * pairs, 0);
    for (r, converted) in scratch.chunks_exact_mut(pairs).take(rows).enumerate() {
        convert_row(
            &lhs[r * lhs_stride..r * lhs_stride + w.k],
            &mut converted[..w.k.div_ceil(2)],
        );
    }
    // SAFETY: `scratch` holds `stored_rows × pairs` values; `out`'s bounds were checked above.
    unsafe {
        products(
            rows, use_amx, scratch, w, out, out_stride, accumulate, backwards,
        )
    }
}

/// The products of a converted left-hand side (`rows` rows of `w.pairs` bf16 pairs, whole AMX
/// tiles of rows when `use_amx`) with `w`, on the best kernel the CPU has.
///
/// # Safety
/// `a` must hold `rows × w.pairs` values (`rows` rounded up to 16 when `use_amx`), `out` `rows`
/// rows of `w.n` values `out_stride` apart, and `use_amx` imply [`amx::available`].
#[allow(clippy::too_many_arguments)] // a BLAS-style signature, as the f32 kernel's
unsafe fn products(
    rows: usize,
    use_amx: bool,
    a: &[u32],
    w: &PackedBf16,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
    backwards: bool,
) {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if use_amx {
        // SAFETY: the caller's contract, and `available` checked the CPU's AMX-BF16 and the
        // kernel's permission.
        unsafe {
            amx::matmul(rows, a, w, out, out_stride, accumulate, backwards);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if native() {
        // SAFETY: `native` checked AVX-512F and AVX512-BF16; the caller's contract.
        unsafe {
            avx512::matmul(rows, a, w, out, out_stride, accumulate, backwards);
        }
        return;
    }
    let _ = use_amx;
    portable(rows, a, w, out, out_stride, accumulate);
}

/// `out[j] = pair(x[2j], x[2j + 1])` (a zero after an odd last value): a row as bf16 pairs, which
/// is the row's values as bf16 in order.
fn convert_row(x: &[f32], out: &mut [u32]) {
    debug_assert_eq!(out.len(), x.len().div_ceil(2));
    #[cfg(target_arch = "x86_64")]
    if native() {
        // SAFETY: `native` checked AVX-512F and AVX512-BF16; the lengths agree.
        unsafe { avx512::convert_row(x, out) };
        return;
    }
    let mut chunks = x.chunks_exact(2);
    for (o, p) in out.iter_mut().zip(chunks.by_ref()) {
        *o = pair(p[0], p[1]);
    }
    if let ([last], Some(o)) = (chunks.remainder(), out.last_mut()) {
        *o = pair(*last, 0.0);
    }
}

/// `out[c] = pair(even[c], odd[c])`: two rows' values as the pairs of a packed panel row.
fn interleave(even: &[f32], odd: &[f32], out: &mut [u32]) {
    debug_assert!(even.len() == out.len() && odd.len() == out.len());
    #[cfg(target_arch = "x86_64")]
    if native() {
        // SAFETY: `native` checked AVX-512F and AVX512-BF16; the lengths agree.
        unsafe { avx512::interleave(even, odd, out) };
        return;
    }
    for ((o, &e), &d) in out.iter_mut().zip(even).zip(odd) {
        *o = pair(e, d);
    }
}

/// The left-hand side of `lhsᵀ · rhs` as bf16 pairs: `a[r · pairs + j] = pair(lhs[2j][r],
/// lhs[2j + 1][r])` for the `k` rows of `lhs` (row stride `lhs_stride`) and its first `m` columns.
fn convert_transposed(
    lhs: &[f32],
    lhs_stride: usize,
    k: usize,
    m: usize,
    a: &mut [u32],
    pairs: usize,
) {
    assert!(k <= 2 * pairs && a.len() >= m * pairs && lhs.len() >= (k - 1) * lhs_stride + m);
    #[cfg(target_arch = "x86_64")]
    if native() {
        // SAFETY: `native` checked AVX-512F and AVX512-BF16; the bounds were asserted above.
        unsafe { avx512::convert_transposed(lhs, lhs_stride, k, m, a, pairs) };
        return;
    }
    // Pair by pair of lhs rows, so lhs is read in order.
    for j in 0..k.div_ceil(2) {
        let even = &lhs[2 * j * lhs_stride..][..m];
        let odd = (2 * j + 1 < k).then(|| &lhs[(2 * j + 1) * lhs_stride..][..m]);
        for (r, &e) in even.iter().enumerate() {
            a[r * pairs + j] = pair(e, odd.map_or(0.0, |odd| odd[r]));
        }
    }
}

/// Frames of the sum per block in [`matmul_bf16_transposed_lhs`]: a block's converted operands
/// (the left-hand side `m × 256` pairs, the right-hand side packed) stay in L2 while it is used.
const SUM_BLOCK: usize = 512;

/// `dst[m × n] (+)= lhsᵀ · rhs`, with `lhs` stored `[k × m]` and `rhs` `[k × n]` (row-major, the
/// given row strides): a weight gradient, the sum over `k` frames of outer products, in bf16
/// products accumulated in f32, in blocks of [`SUM_BLOCK`] frames. Single-threaded.
#[allow(clippy::too_many_arguments)] // a BLAS-style signature, as `gemm_f32`'s
pub(crate) fn matmul_bf16_transposed_lhs(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_stride: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_stride: usize,
    rhs: &[f32],
    rhs_stride: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst_stride >= n && dst.len() >= (m - 1) * dst_stride + n);
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(dst_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    assert!(lhs_stride >= m && lhs.len() >= (k - 1) * lhs_stride + m);
    assert!(rhs_stride >= n && rhs.len() >= (k - 1) * rhs_stride + n);
    let use_amx = m >= AMX_MIN_ROWS && amx::available();
    let stored_rows = if use_amx {
        m.next_multiple_of(AMX_TILE_ROWS)
    } else {
        m
    };
    let mut a = Vec::new();
    for (block, k0) in (0..k).step_by(SUM_BLOCK).enumerate() {
        let kc = (k - k0).min(SUM_BLOCK);
        let w = PackedBf16::pack_strided(&rhs[k0 * rhs_stride..], kc, n, false, rhs_stride);
        // Row r of this block's left-hand side is column r of lhs's rows k0..k0 + kc: converted
        // pair by pair of lhs rows, so lhs is read in order.
        a.clear();
        a.resize(stored_rows * w.pairs, 0);
        convert_transposed(&lhs[k0 * lhs_stride..], lhs_stride, kc, m, &mut a, w.pairs);
        // SAFETY: `a` holds `stored_rows × w.pairs` values; `dst`'s bounds were checked above.
        unsafe {
            products(
                m,
                use_amx,
                &a,
                &w,
                dst,
                dst_stride,
                accumulate || block > 0,
                false,
            )
        }
    }
}

/// [`matmul_bf16`] for many rows (an input projection over all frames), in row blocks of 128 so each
/// block's converted left-hand side stays in L2 while the panels stream past, on up to `threads`
/// threads.
#[allow(clippy::too_many_arguments)] // a BLAS-style signature, as the f32 kernel's
pub(crate) fn matmul_bf16_rows(
    threads: usize,
    rows: usize,
    lhs: &[f32],
    lhs_stride: usize,
    w: &PackedBf16,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
) {
    // One conversion buffer per block (`matmul_bf16` clears it); bounds are checked there.
    for_row_blocks(threads, rows, out, out_stride, |first, block, out| {
        matmul_bf16(
            block,
            &lhs[first * lhs_stride..],
            lhs_stride,
            w,
            out,
            out_stride,
            accumulate,
            false,
            &mut Vec::new(),
        );
    });
}

/// The products from the same bf16 values in f32, for CPUs without AVX512-BF16. Each pair's two
/// products are summed before they are added to the accumulator, as `vdpbf16ps` does.
fn portable(
    rows: usize,
    lhs_pairs: &[u32],
    w: &PackedBf16,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
) {
    let pairs = w.pairs;
    let split = |v: u32| (from_bf16(v as u16), from_bf16((v >> 16) as u16));
    for (p, panel) in w.data.chunks_exact(pairs * PANEL).enumerate() {
        let col0 = p * PANEL;
        let cols = (w.n - col0).min(PANEL);
        for r in 0..rows {
            let a = &lhs_pairs[r * pairs..(r + 1) * pairs];
            let mut acc = [0f32; PANEL];
            for (&av, wrow) in a.iter().zip(panel.chunks_exact(PANEL)) {
                let (a0, a1) = split(av);
                for (s, &wv) in acc.iter_mut().zip(wrow) {
                    let (w0, w1) = split(wv);
                    *s += a0 * w0 + a1 * w1;
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
mod avx512 {
    use std::arch::x86_64::*;

    use super::super::kernels::avx512::store_row;
    use super::{PackedBf16, PANEL, TILE_ROWS};

    /// See [`super::matmul_bf16`]: for each panel, all rows in tiles of up to 8; `a` holds the
    /// left-hand side as bf16 pairs, `rows × w.pairs`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX512-BF16; `a` must hold `rows × w.pairs` values and
    /// `out` the rows the caller's bounds checks guarantee.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn matmul(
        rows: usize,
        a: &[u32],
        w: &PackedBf16,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
        backwards: bool,
    ) {
        let pairs = w.pairs;
        let panels = w.n.div_ceil(PANEL);
        for i in 0..panels {
            let p = if backwards { panels - 1 - i } else { i };
            let panel = w.data.as_ptr().add(p * pairs * PANEL);
            let col0 = p * PANEL;
            let cols = (w.n - col0).min(PANEL);
            let mut r = 0;
            while r < rows {
                let tile = (rows - r).min(TILE_ROWS);
                let ap = a.as_ptr().add(r * pairs);
                let c = out.as_mut_ptr().add(r * out_stride + col0);
                super::super::kernels::by_tile_rows!(
                    tile,
                    tile_kernel(pairs, ap, panel, c, out_stride, cols, accumulate),
                    single_row_kernel(pairs, ap, panel, c, cols, accumulate)
                );
                r += tile;
            }
        }
    }

    use super::RATE_CHAINS as CHAINS;

    /// `rounds` × [`CHAINS`] `vdpbf16ps` in independent chains (for [`super::bf16_rate_ratio`]).
    ///
    /// # Safety
    /// AVX-512F and AVX512-BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn dot_chains(rounds: usize) -> f32 {
        // bf16 1.0 and 2^-24: the sums grow slowly and stay normal.
        let ones = std::hint::black_box(_mm512_set1_epi16(0x3f80));
        let tiny = std::hint::black_box(_mm512_set1_epi16(0x3380));
        let (a, b) = (
            std::mem::transmute::<__m512i, __m512bh>(ones),
            std::mem::transmute::<__m512i, __m512bh>(tiny),
        );
        let mut acc = [_mm512_setzero_ps(); CHAINS];
        for _ in 0..rounds {
            for sum in acc.iter_mut() {
                *sum = _mm512_dpbf16_ps(*sum, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    /// `rounds` × [`CHAINS`] `vfmadd231ps` in independent chains (for [`super::bf16_rate_ratio`]).
    ///
    /// # Safety
    /// AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma_chains(rounds: usize) -> f32 {
        let one = std::hint::black_box(_mm512_set1_ps(1.0));
        let tiny = std::hint::black_box(_mm512_set1_ps(1e-7));
        let mut acc = [_mm512_setzero_ps(); CHAINS];
        for _ in 0..rounds {
            for sum in acc.iter_mut() {
                *sum = _mm512_fmadd_ps(*sum, one, tiny);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    /// 16 values as 16 bf16 (round to nearest even, in hardware; inputs below f32's normal range
    /// count as zeros, which the scalar conversion keeps: a difference below 1.2e-38).
    #[inline(always)]
    unsafe fn to_bf16x16(v: __m512) -> __m256i {
        std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(v))
    }

    /// 16 pairs: each `(even[c], odd[c])` as a u32, `even` in the low half.
    #[inline(always)]
    unsafe fn pairs16(even: __m512, odd: __m512) -> __m512i {
        let e = _mm512_cvtepu16_epi32(to_bf16x16(even));
        let o = _mm512_cvtepu16_epi32(to_bf16x16(odd));
        _mm512_or_si512(e, _mm512_slli_epi32::<16>(o))
    }

    /// See [`super::convert_row`].
    ///
    /// # Safety
    /// AVX-512F and AVX512-BF16; `out.len() == x.len().div_ceil(2)`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn convert_row(x: &[f32], out: &mut [u32]) {
        let whole = x.len() / 16 * 16;
        let dst = out.as_mut_ptr() as *mut __m256i;
        for i in (0..whole).step_by(16) {
            let v = _mm512_loadu_ps(x.as_ptr().add(i));
            _mm256_storeu_si256(dst.add(i / 16), to_bf16x16(v));
        }
        let mut rest = x[whole..].chunks_exact(2);
        let mut j = whole / 2;
        for p in rest.by_ref() {
            out[j] = super::pair(p[0], p[1]);
            j += 1;
        }
        if let [last] = rest.remainder() {
            out[j] = super::pair(*last, 0.0);
        }
    }

    /// See [`super::interleave`].
    ///
    /// # Safety
    /// AVX-512F and AVX512-BF16; the three slices of equal length.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn interleave(even: &[f32], odd: &[f32], out: &mut [u32]) {
        let whole = out.len() / 16 * 16;
        for c in (0..whole).step_by(16) {
            let v = pairs16(
                _mm512_loadu_ps(even.as_ptr().add(c)),
                _mm512_loadu_ps(odd.as_ptr().add(c)),
            );
            _mm512_storeu_si512(out.as_mut_ptr().add(c) as *mut __m512i, v);
        }
        for c in whole..out.len() {
            out[c] = super::pair(even[c], odd[c]);
        }
    }

    /// See [`super::convert_transposed`]: blocks of 16 columns of `lhs` by 16 pairs of its rows.
    /// Each pair of rows becomes 16 pairs (one per column) in a register; the 16 registers are
    /// transposed (a 16 × 16 transpose of u32) into 16 converted rows' 64-byte lines.
    ///
    /// # Safety
    /// AVX-512F and AVX512-BF16; the bounds [`super::convert_transposed`] asserts, and `pairs` a
    /// multiple of 16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn convert_transposed(
        lhs: &[f32],
        lhs_stride: usize,
        k: usize,
        m: usize,
        a: &mut [u32],
        pairs: usize,
    ) {
        debug_assert!(pairs.is_multiple_of(16));
        let used_pairs = k.div_ceil(2);
        let zeros = _mm512_setzero_ps();
        // 32 rows of `lhs` at a time, each read in order (the prefetchers follow 32 streams; a
        // strip of 16 columns down all rows would touch a new line per load).
        for j0 in (0..used_pairs).step_by(16) {
            for r0 in (0..m).step_by(16) {
                let columns = (m - r0).min(16);
                let mask = super::super::kernels::avx512::column_mask(columns);
                let mut rows = [_mm512_setzero_si512(); 16];
                for (jj, row) in rows.iter_mut().enumerate() {
                    let j = j0 + jj;
                    if j >= used_pairs {
                        break;
                    }
                    let even =
                        _mm512_maskz_loadu_ps(mask, lhs.as_ptr().add(2 * j * lhs_stride + r0));
                    let odd = if 2 * j + 1 < k {
                        _mm512_maskz_loadu_ps(mask, lhs.as_ptr().add((2 * j + 1) * lhs_stride + r0))
                    } else {
                        zeros
                    };
                    *row = pairs16(even, odd);
                }
                let columns_out = transpose16(rows);
                for (c, v) in columns_out.iter().enumerate().take(columns) {
                    _mm512_storeu_si512(
                        a.as_mut_ptr().add((r0 + c) * pairs + j0) as *mut __m512i,
                        *v,
                    );
                }
            }
        }
    }

    /// The 16 × 16 transpose of u32: `out[c]` lane `j` = `rows[j]` lane `c`. Pairs of rows
    /// interleaved by 32 then 64 bits within each 128-bit lane give four rows' values of one
    /// column per lane; two rounds of 128-bit lane shuffles gather a column's four lanes.
    #[inline(always)]
    unsafe fn transpose16(rows: [__m512i; 16]) -> [__m512i; 16] {
        let mut t = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(rows[2 * i], rows[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(rows[2 * i], rows[2 * i + 1]);
        }
        // u[4g + i]: rows 4g..4g + 4 of column i of each 128-bit lane.
        let mut u = [_mm512_setzero_si512(); 16];
        for g in 0..4 {
            u[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
            u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
            u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
            u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
        }
        let mut out = [_mm512_setzero_si512(); 16];
        for i in 0..4 {
            let v0 = _mm512_shuffle_i32x4::<0x88>(u[i], u[4 + i]);
            let v1 = _mm512_shuffle_i32x4::<0xdd>(u[i], u[4 + i]);
            let w0 = _mm512_shuffle_i32x4::<0x88>(u[8 + i], u[12 + i]);
            let w1 = _mm512_shuffle_i32x4::<0xdd>(u[8 + i], u[12 + i]);
            out[i] = _mm512_shuffle_i32x4::<0x88>(v0, w0);
            out[8 + i] = _mm512_shuffle_i32x4::<0xdd>(v0, w0);
            out[4 + i] = _mm512_shuffle_i32x4::<0x88>(v1, w1);
            out[12 + i] = _mm512_shuffle_i32x4::<0xdd>(v1, w1);
        }
        out
    }

    #[inline(always)]
    unsafe fn dot(acc: __m512, a: __m512i, w: __m512i) -> __m512 {
        // SAFETY (of the transmutes): both are 512-bit plain-data vectors.
        _mm512_dpbf16_ps(
            acc,
            std::mem::transmute::<__m512i, __m512bh>(a),
            std::mem::transmute::<__m512i, __m512bh>(w),
        )
    }

    /// An `R × 32` tile: `2R` accumulators, per pair of `k` two panel loads and `R` broadcasts.
    #[inline(always)]
    unsafe fn tile_kernel<const R: usize>(
        pairs: usize,
        a: *const u32,
        panel: *const u32,
        c: *mut f32,
        c_stride: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let mut lo = [_mm512_setzero_ps(); R];
        let mut hi = [_mm512_setzero_ps(); R];
        for j in 0..pairs {
            let w_lo = _mm512_loadu_si512(panel.add(j * PANEL) as *const __m512i);
            let w_hi = _mm512_loadu_si512(panel.add(j * PANEL + 16) as *const __m512i);
            for r in 0..R {
                let av = _mm512_set1_epi32(*a.add(r * pairs + j) as i32);
                lo[r] = dot(lo[r], av, w_lo);
                hi[r] = dot(hi[r], av, w_hi);
            }
        }
        for r in 0..R {
            store_row(c.add(r * c_stride), lo[r], hi[r], cols, accumulate);
        }
    }

    /// One row (batch-1 inference): four independent accumulator pairs hide the latency.
    #[inline(always)]
    unsafe fn single_row_kernel(
        pairs: usize,
        a: *const u32,
        panel: *const u32,
        c: *mut f32,
        cols: usize,
        accumulate: bool,
    ) {
        let mut lo = [_mm512_setzero_ps(); 4];
        let mut hi = [_mm512_setzero_ps(); 4];
        let mut j = 0;
        while j + 4 <= pairs {
            for u in 0..4 {
                let av = _mm512_set1_epi32(*a.add(j + u) as i32);
                let wp = panel.add((j + u) * PANEL);
                let w_lo = _mm512_loadu_si512(wp as *const __m512i);
                let w_hi = _mm512_loadu_si512(wp.add(16) as *const __m512i);
                lo[u] = dot(lo[u], av, w_lo);
                hi[u] = dot(hi[u], av, w_hi);
            }
            j += 4;
        }
        while j < pairs {
            let av = _mm512_set1_epi32(*a.add(j) as i32);
            let wp = panel.add(j * PANEL);
            let w_lo = _mm512_loadu_si512(wp as *const __m512i);
            let w_hi = _mm512_loadu_si512(wp.add(16) as *const __m512i);
            lo[0] = dot(lo[0], av, w_lo);
            hi[0] = dot(hi[0], av, w_hi);
            j += 1;
        }
        let lo_sum = _mm512_add_ps(_mm512_add_ps(lo[0], lo[1]), _mm512_add_ps(lo[2], lo[3]));
        let hi_sum = _mm512_add_ps(_mm512_add_ps(hi[0], hi[1]), _mm512_add_ps(hi[2], hi[3]));
        store_row(c, lo_sum, hi_sum, cols, accumulate);
    }
}

/// The products on AMX tiles (Intel Sapphire Rapids and later): `tdpbf16ps` multiplies a 16 × 32
/// bf16 tile by a 32 × 16 one into 16 × 16 f32 sums, 8,192 multiply-adds per instruction. On those
/// CPUs `vdpbf16ps` issues only once per two cycles, so without AMX bf16 computes no faster than
/// f32 and only saves bytes; measured on a 2-core Xeon (BENCHMARKS.md) AMX runs a batch-16 step of
/// the recurrence ~5× faster than the f32 kernel.
///
/// The packed panels are already the tiles' layout: 32 columns of bf16 pairs per row, so a B tile is
/// 16 pair-rows of one half-panel (64 bytes, 128 apart), and an A tile is 16 rows of the converted
/// left-hand side (`pairs` u32 apart), 16 pairs wide. Stable Rust has no AMX intrinsics: the
/// instructions are written as inline assembly, which the assembler accepts on any x86-64 target.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod amx {
    use std::arch::asm;
    use std::sync::OnceLock;

    use super::super::kernels::KERNEL_ENV;
    use super::{PackedBf16, AMX_TILE_ROWS, PANEL, TILE_PAIRS};

    /// The `ldtilecfg` operand: palette 1, then each tile's bytes per row and rows.
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    /// Every tile used is 16 rows of 64 bytes: C (f32 sums) tmm0–3, A (left-hand side) tmm4–5,
    /// B (weights) tmm6–7.
    static CONFIG: TileConfig = TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        bytes_per_row: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
        rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
    };

    /// Whether the products run on AMX: the CPU has AMX-TILE and AMX-BF16, the AVX-512 kernels are
    /// chosen (`PHONREC_KERNEL` unset or `amx`; `avx512` and below turn AMX off, so the
    /// `vdpbf16ps` path can be tested on the same machine), and Linux grants this process the tile
    /// state (`arch_prctl(ARCH_REQ_XCOMP_PERM)`; without it the first tile instruction would fault).
    pub(super) fn available() -> bool {
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            if !super::native() {
                return false;
            }
            if let Some(wanted) = std::env::var(KERNEL_ENV).ok().filter(|v| !v.is_empty()) {
                if !wanted.eq_ignore_ascii_case("amx") {
                    return false;
                }
            }
            // CPUID leaf 7 (present on every CPU with AVX-512): EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
            let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
            if edx & (1 << 22) == 0 || edx & (1 << 24) == 0 {
                return false;
            }
            const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
            const XFEATURE_XTILEDATA: libc::c_long = 18;
            // SAFETY: a request for a permission; it changes nothing else in the process.
            let granted = unsafe {
                libc::syscall(
                    libc::SYS_arch_prctl,
                    ARCH_REQ_XCOMP_PERM,
                    XFEATURE_XTILEDATA,
                )
            };
            granted == 0
        })
    }

    /// See [`super::matmul_bf16`]: `a` holds the left-hand side as bf16 pairs, `rows` rounded up
    /// to whole tiles of 16 (zeros past `rows`) × `w.pairs`. Row blocks of 32 (two A tiles) or 16,
    /// each against every panel: four C tiles (2 × 2) of sums per block and panel.
    ///
    /// # Safety
    /// [`available`] must have returned true; `a` must hold `rows.next_multiple_of(16) × w.pairs`
    /// values, and `out` `rows` rows of `w.n` values `out_stride` apart.
    pub(super) unsafe fn matmul(
        rows: usize,
        a: &[u32],
        w: &PackedBf16,
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
        backwards: bool,
    ) {
        let pairs = w.pairs;
        debug_assert!(pairs.is_multiple_of(TILE_PAIRS));
        debug_assert!(a.len() >= rows.next_multiple_of(AMX_TILE_ROWS) * pairs);
        let panels = w.n.div_ceil(PANEL);
        let a_stride = pairs * 4;
        let out_bytes = out_stride * 4;
        // Sums of a tile that only partly lies inside `out` (the last rows or columns): stored here,
        // then the valid part is added or copied.
        let mut partial = [0f32; 2 * AMX_TILE_ROWS * PANEL];
        asm!("ldtilecfg [{}]", in(reg) &CONFIG as *const TileConfig, options(nostack, readonly));
        let mut r = 0;
        while r < rows {
            let two = rows - r > AMX_TILE_ROWS;
            let block_rows = (rows - r).min(2 * AMX_TILE_ROWS);
            let a0 = a.as_ptr().add(r * pairs);
            let a1 = a0.add(AMX_TILE_ROWS * pairs);
            for i in 0..panels {
                let p = if backwards { panels - 1 - i } else { i };
                let panel = w.data.as_ptr().add(p * pairs * PANEL);
                let col0 = p * PANEL;
                let cols = (w.n - col0).min(PANEL);
                // The block's sums go straight to `out` when the tiles lie wholly inside it.
                let direct = cols == PANEL && block_rows == if two { 32 } else { 16 };
                let c = out.as_mut_ptr().add(r * out_stride + col0);
                if direct && accumulate {
                    asm!(
                        "tileloadd tmm0, [{c} + {s}*1]",
                        "tileloadd tmm1, [{c} + {s}*1 + 64]",
                        c = in(reg) c, s = in(reg) out_bytes, options(nostack, readonly),
                    );
                    if two {
                        let c1 = c.add(AMX_TILE_ROWS * out_stride);
                        asm!(
                            "tileloadd tmm2, [{c} + {s}*1]",
                            "tileloadd tmm3, [{c} + {s}*1 + 64]",
                            c = in(reg) c1, s = in(reg) out_bytes, options(nostack, readonly),
                        );
                    }
                } else {
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        options(nostack, nomem)
                    );
                }
                for kt in 0..pairs / TILE_PAIRS {
                    let b = panel.add(kt * TILE_PAIRS * PANEL);
                    if two {
                        asm!(
                            "tileloadd tmm4, [{a0} + {sa}*1]",
                            "tileloadd tmm5, [{a1} + {sa}*1]",
                            "tileloadd tmm6, [{b} + {sb}*1]",
                            "tileloadd tmm7, [{b} + {sb}*1 + 64]",
                            "tdpbf16ps tmm0, tmm4, tmm6",
                            "tdpbf16ps tmm1, tmm4, tmm7",
                            "tdpbf16ps tmm2, tmm5, tmm6",
                            "tdpbf16ps tmm3, tmm5, tmm7",
                            a0 = in(reg) a0.add(kt * TILE_PAIRS),
                            a1 = in(reg) a1.add(kt * TILE_PAIRS),
                            b = in(reg) b,
                            sa = in(reg) a_stride,
                            sb = in(reg) PANEL * 4,
                            options(nostack, readonly),
                        );
                    } else {
                        asm!(
                            "tileloadd tmm4, [{a0} + {sa}*1]",
                            "tileloadd tmm6, [{b} + {sb}*1]",
                            "tileloadd tmm7, [{b} + {sb}*1 + 64]",
                            "tdpbf16ps tmm0, tmm4, tmm6",
                            "tdpbf16ps tmm1, tmm4, tmm7",
                            a0 = in(reg) a0.add(kt * TILE_PAIRS),
                            b = in(reg) b,
                            sa = in(reg) a_stride,
                            sb = in(reg) PANEL * 4,
                            options(nostack, readonly),
                        );
                    }
                }
                if direct {
                    asm!(
                        "tilestored [{c} + {s}*1], tmm0",
                        "tilestored [{c} + {s}*1 + 64], tmm1",
                        c = in(reg) c, s = in(reg) out_bytes, options(nostack),
                    );
                    if two {
                        let c1 = c.add(AMX_TILE_ROWS * out_stride);
                        asm!(
                            "tilestored [{c} + {s}*1], tmm2",
                            "tilestored [{c} + {s}*1 + 64], tmm3",
                            c = in(reg) c1, s = in(reg) out_bytes, options(nostack),
                        );
                    }
                    continue;
                }
                // A partial block: all 32 columns of its (up to) 32 rows into `partial`, then the
                // valid rows and columns into `out`.
                let t = partial.as_mut_ptr();
                asm!(
                    "tilestored [{t} + {s}*1], tmm0",
                    "tilestored [{t} + {s}*1 + 64], tmm1",
                    "tilestored [{t1} + {s}*1], tmm2",
                    "tilestored [{t1} + {s}*1 + 64], tmm3",
                    t = in(reg) t, t1 = in(reg) t.add(AMX_TILE_ROWS * PANEL),
                    s = in(reg) PANEL * 4, options(nostack),
                );
                for row in 0..block_rows {
                    let sums = &partial[row * PANEL..row * PANEL + cols];
                    let dst = std::slice::from_raw_parts_mut(c.add(row * out_stride), cols);
                    for (d, &s) in dst.iter_mut().zip(sums) {
                        *d = if accumulate { *d + s } else { s };
                    }
                }
            }
            r += block_rows;
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

/// Elsewhere there are no AMX tiles.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod amx {
    pub(super) fn available() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values::lcg;
    use super::*;

    #[test]
    fn bf16_is_chosen_by_the_cpu_and_its_rate_measured() {
        let ratio = bf16_rate_ratio();
        assert_eq!(ratio.is_some(), bf16_native());
        if let Some(ratio) = ratio {
            // Two instruction streams of equal count: the ratio of their multiply-add rates lies
            // within what any CPU issues (one to four per cycle of each, 32 and 16 per instruction).
            assert!((0.1..=10.0).contains(&ratio), "{ratio}");
        }
        // Chosen by the CPU's make (AMX, or AMD's native bf16), never by the timing.
        assert_eq!(bf16_fast(), amx_native() || (bf16_native() && cpu_is_amd()));
        // Decided once: every product of the process agrees.
        assert_eq!(bf16_rate_ratio(), ratio);
        if !bf16_native() {
            assert!(!bf16_fast(), "emulated bf16 is never the fast choice");
        }
    }

    #[test]
    fn rounding_to_bf16_is_to_nearest_even() {
        assert_eq!(from_bf16(to_bf16(1.0)), 1.0);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        // Just above halfway rounds up.
        assert_eq!(
            from_bf16(to_bf16(1.0 + 1.0 / 256.0 + 1.0 / 65536.0)),
            1.0 + 1.0 / 128.0
        );
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        for x in [0.1f32, -3.7, 1e-20, 6.0e4] {
            assert!((from_bf16(to_bf16(x)) - x).abs() <= x.abs() / 256.0);
        }
    }

    /// The exact product of the bf16-rounded operands, in f64.
    fn reference(rows: usize, lhs: &[f32], w: &[f32], k: usize, n: usize) -> Vec<f64> {
        let round = |x: f32| from_bf16(to_bf16(x)) as f64;
        let mut out = vec![0f64; rows * n];
        for r in 0..rows {
            for c in 0..n {
                out[r * n + c] = (0..k)
                    .map(|i| round(lhs[r * k + i]) * round(w[i * n + c]))
                    .sum();
            }
        }
        out
    }

    #[test]
    fn products_match_the_rounded_operands_for_every_tile_shape_and_order() {
        let mut seed = 5;
        // Odd k (a padded pair), a partial last panel (n = 70), and 1–11 rows (every tile size).
        for (k, n) in [(7, 70), (64, 32), (33, 100)] {
            let w: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed)).collect();
            let packed = PackedBf16::pack(&w, k, n, false);
            let transposed: Vec<f32> = (0..n * k).map(|i| w[(i % k) * n + i / k]).collect();
            let packed_t = PackedBf16::pack(&transposed, k, n, true);
            for rows in 1..=11 {
                let lhs: Vec<f32> = (0..rows * k).map(|_| lcg(&mut seed)).collect();
                let want = reference(rows, &lhs, &w, k, n);
                for (matrix, backwards) in [(&packed, false), (&packed_t, true)] {
                    let mut out = vec![0.5f32; rows * n];
                    matmul_bf16(
                        rows,
                        &lhs,
                        k,
                        matrix,
                        &mut out,
                        n,
                        true,
                        backwards,
                        &mut Vec::new(),
                    );
                    for (got, want) in out.iter().zip(&want) {
                        // Only the f32 accumulation differs from the exact sum.
                        assert!(
                            (*got as f64 - 0.5 - want).abs() < 1e-5 * (k as f64),
                            "k {k} n {n} rows {rows}: {got} vs {}",
                            want + 0.5
                        );
                    }
                }
            }
        }
    }

    /// The AMX kernel's blocks: one and two row tiles, partial tiles of rows and columns, `k`
    /// beyond one tile, both panel orders (elsewhere the same shapes test the other kernels).
    #[test]
    fn products_match_the_rounded_operands_for_amx_sized_blocks() {
        let mut seed = 11;
        for (k, n) in [(256, 96), (40, 70), (70, 32)] {
            let w: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed)).collect();
            let packed = PackedBf16::pack(&w, k, n, false);
            for rows in [16, 17, 31, 32, 33, 48, 70] {
                let lhs: Vec<f32> = (0..rows * k).map(|_| lcg(&mut seed)).collect();
                let want = reference(rows, &lhs, &w, k, n);
                for (accumulate, backwards) in [(true, false), (false, true)] {
                    let mut out = vec![0.5f32; rows * n];
                    matmul_bf16(
                        rows,
                        &lhs,
                        k,
                        &packed,
                        &mut out,
                        n,
                        accumulate,
                        backwards,
                        &mut Vec::new(),
                    );
                    let base = if accumulate { 0.5 } else { 0.0 };
                    for (i, (got, want)) in out.iter().zip(&want).enumerate() {
                        assert!(
                            (*got as f64 - base - want).abs() < 1e-5 * (k as f64),
                            "k {k} n {n} rows {rows} element {i}: {got} vs {}",
                            want + base
                        );
                    }
                }
            }
        }
    }

    /// Packing from strided storage (a weight matrix with its bias as an extra column) gives the
    /// packing of the plain matrix, stored either way round.
    #[test]
    fn strided_packing_equals_plain_packing() {
        let mut seed = 13;
        for (k, n) in [(7, 70), (64, 33), (40, 96)] {
            let w: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed)).collect();
            let plain = PackedBf16::pack(&w, k, n, false);
            // [k × (n + 1)]: each row one value longer.
            let strided: Vec<f32> = (0..k)
                .flat_map(|r| w[r * n..(r + 1) * n].iter().copied().chain([9.0]))
                .collect();
            let from_strided = PackedBf16::pack_strided(&strided, k, n, false, n + 1);
            assert_eq!(plain.data, from_strided.data, "k {k} n {n}");
            // [n × (k + 1)], used transposed.
            let transposed: Vec<f32> = (0..n)
                .flat_map(|c| {
                    (0..k)
                        .map(move |r| (r, c))
                        .map(|(r, c)| w[r * n + c])
                        .chain([9.0])
                })
                .collect();
            let from_transposed = PackedBf16::pack_strided(&transposed, k, n, true, k + 1);
            assert_eq!(plain.data, from_transposed.data, "k {k} n {n} transposed");
        }
    }

    /// `lhsᵀ · rhs` (a weight gradient): shapes with a partial tile of rows and columns, an odd
    /// number of frames, and more frames than one block of the sum.
    #[test]
    fn transposed_products_match_the_rounded_operands() {
        let mut seed = 17;
        for (m, n, k) in [
            (64, 40, 7),
            (33, 70, 100),
            (16, 32, SUM_BLOCK + 37),
            (5, 3, 2),
        ] {
            // lhs [k × m] and rhs [k × n], each with one extra value per row (strided).
            let lhs: Vec<f32> = (0..k * (m + 1)).map(|_| lcg(&mut seed)).collect();
            let rhs: Vec<f32> = (0..k * (n + 1)).map(|_| lcg(&mut seed)).collect();
            let lhs_t: Vec<f32> = (0..m * k).map(|i| lhs[(i % k) * (m + 1) + i / k]).collect();
            let rhs_plain: Vec<f32> = (0..k * n).map(|i| rhs[(i / n) * (n + 1) + i % n]).collect();
            let want = reference(m, &lhs_t, &rhs_plain, k, n);
            for accumulate in [false, true] {
                let mut out = vec![0.5f32; m * (n + 2)];
                matmul_bf16_transposed_lhs(
                    m,
                    n,
                    k,
                    &mut out,
                    n + 2,
                    accumulate,
                    &lhs,
                    m + 1,
                    &rhs,
                    n + 1,
                );
                let base = if accumulate { 0.5 } else { 0.0 };
                for r in 0..m {
                    for c in 0..n + 2 {
                        let got = out[r * (n + 2) + c] as f64;
                        if c >= n {
                            assert_eq!(got, 0.5, "m {m} n {n} k {k}: wrote past the row");
                            continue;
                        }
                        let want = want[r * n + c] + base;
                        assert!(
                            (got - want).abs() < 1e-5 * (k as f64),
                            "m {m} n {n} k {k} ({r}, {c}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn row_blocks_on_two_threads_give_the_single_call() {
        let mut seed = 9;
        let (rows, k, n) = (300, 40, 64);
        let w: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed)).collect();
        let packed = PackedBf16::pack(&w, k, n, false);
        let lhs: Vec<f32> = (0..rows * k).map(|_| lcg(&mut seed)).collect();
        let mut whole = vec![0f32; rows * n];
        matmul_bf16(
            rows,
            &lhs,
            k,
            &packed,
            &mut whole,
            n,
            false,
            false,
            &mut Vec::new(),
        );
        let mut blocked = vec![0f32; rows * n];
        matmul_bf16_rows(2, rows, &lhs, k, &packed, &mut blocked, n, false);
        assert_eq!(whole, blocked);
    }
}
