//! The fused LSTM's inner loops on the shapes of the default model (3 × 256 per direction at the
//! time these were tuned; batch 16 × 400 steps for training): the per-step recurrent product, the
//! blocked input projection (and why its row block is 128), and the weight-gradient GEMMs.
//!
//! `cargo bench --bench kernels`; `PHONREC_KERNEL=avx2|portable` times the narrower variants.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use phonrec::model::kernel_internals::{
    gemm_f32, matmul_packed, matmul_packed_in_order, matmul_packed_rows, matmul_recurrent_i8,
    projection_u8_rows, PackedI8, PackedMatrix, PackedU8,
};

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

/// One step of the recurrence: `[rows × k] · W_hh` added into a new slice of the gate buffer each
/// step (as the fused layer does), in alternating panel order or not.
fn per_step_product(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_step_product");
    for (rows, k, n) in [(16, 256, 1024), (1, 256, 1024), (16, 1024, 256)] {
        let lhs = values(rows * k, 1);
        let packed = PackedMatrix::pack(&values(k * n, 2), k, n, false);
        let steps = 400;
        let mut out = values(steps * rows * n, 3);
        group.throughput(Throughput::Elements((2 * rows * k * n) as u64));
        for (name, alternate) in [("forward_order", false), ("alternating_order", true)] {
            let mut rep = 0usize;
            group.bench_function(BenchmarkId::new(name, format!("{rows}x{k}x{n}")), |b| {
                b.iter(|| {
                    let slice = &mut out[(rep % steps) * rows * n..];
                    let backwards = alternate && rep % 2 == 1;
                    rep += 1;
                    matmul_packed_in_order(rows, &lhs, k, &packed, slice, n, true, backwards);
                })
            });
        }
    }
    group.finish();
}

/// The same step with `--precision int8`'s recurrent product (8-bit weights, the state quantised
/// to 16 bits each step, exact i32 sums) against f32's, at the built-in model's width (320 units)
/// and shape A's (256).
fn per_step_product_int8(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_step_product_int8");
    for (rows, k, n) in [(1, 256, 1024), (1, 320, 1280), (16, 256, 1024)] {
        let lhs = values(rows * k, 1);
        let w = values(k * n, 2);
        let int8 = PackedI8::pack(&w, k, n, false);
        let f32_packed = PackedMatrix::pack(&w, k, n, false);
        let mut out = values(rows * n, 3);
        let mut scratch = Vec::new();
        group.throughput(Throughput::Elements((2 * rows * k * n) as u64));
        let shape = format!("{rows}x{k}x{n}");
        group.bench_function(BenchmarkId::new("int8", &shape), |b| {
            b.iter(|| {
                matmul_recurrent_i8(rows, &lhs, k, &int8, &mut out, n, false, &mut scratch);
                black_box(&out);
            })
        });
        group.bench_function(BenchmarkId::new("f32", &shape), |b| {
            b.iter(|| {
                matmul_packed_in_order(rows, &lhs, k, &f32_packed, &mut out, n, true, false);
                black_box(&out);
            })
        });
    }
    group.finish();
}

/// The input projection of one layer over a batch (6400 frames × 512 inputs → 1024 gates): the
/// library's blocked, threaded form (f32, and `int8`'s 8-bit one), and single-threaded by
/// row-block size (128 is the library's).
fn projection(c: &mut Criterion) {
    let (rows, k, n) = (6400, 512, 1024);
    let lhs = values(rows * k, 1);
    let w = values(k * n, 2);
    let packed = PackedMatrix::pack(&w, k, n, true);
    let mut out = vec![0f32; rows * n];
    let mut group = c.benchmark_group("projection_6400x512x1024");
    group.sample_size(10);
    group.throughput(Throughput::Elements((2 * rows * k * n) as u64));
    group.bench_function("library_2_threads", |b| {
        b.iter(|| matmul_packed_rows(2, rows, &lhs, k, &packed, &mut out, n, false))
    });
    // int8's 8-bit projections (`vpdpbusd` where AVX512-VNNI runs; a portable loop elsewhere),
    // the left-hand side's quantisation included. `w` is stored `[n × k]` for them (`W_ih`).
    let w_ih: Vec<f32> = (0..n * k).map(|i| w[(i % k) * n + i / k]).collect();
    let packed_u8 = PackedU8::pack_transposed(&w_ih, k, n);
    group.bench_function("u8_2_threads", |b| {
        b.iter(|| projection_u8_rows(2, rows, &lhs, k, &packed_u8, &mut out, n, false))
    });
    for block in [32, 64, 128, 256, 6400] {
        group.bench_function(BenchmarkId::new("row_block", block), |b| {
            b.iter(|| {
                for (a, c) in lhs.chunks(block * k).zip(out.chunks_mut(block * n)) {
                    matmul_packed(a.len() / k, a, k, &packed, c, n, false);
                }
            })
        });
    }
    group.finish();
}

/// The weight-gradient products of one training step (one direction), with the fused layer's layouts.
fn weight_gradients(c: &mut Criterion) {
    let (rows, h4, inputs, hidden) = (6400, 1024, 512, 256);
    // (name, threads, m, n, k, lhs stride, lhs transposed, rhs stride, rhs transposed)
    let shapes = [
        ("dW_ih", 2, h4, inputs, rows, h4, true, inputs, false),
        ("dx", 2, rows, inputs, h4, h4, false, inputs + 1, false),
        ("dW_hh", 1, h4, hidden, rows, h4, true, 2 * hidden, false),
    ];
    let mut group = c.benchmark_group("weight_gradients");
    group.sample_size(10);
    for (name, threads, m, n, k, ls, lt, rs, rt) in shapes {
        let lhs = values(if lt { k * ls } else { m * ls }, 1);
        let rhs = values(if rt { n * rs } else { k * rs }, 2);
        let mut dst = vec![0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                gemm_f32(
                    threads, m, n, k, &mut dst, n, false, &lhs, ls, lt, &rhs, rs, rt,
                );
                black_box(&dst);
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    per_step_product,
    per_step_product_int8,
    projection,
    weight_gradients
);
criterion_main!(benches);
