//! The decoders on 60 s of network output (3000 frames at 20 ms, 40 classes) shaped like speech: a
//! phone spike every ~4 frames between blanks. Greedy, the prefix beam search at `transcribe`'s
//! default width (`builtin::BEAM_WITH_LM`) without and with the built-in phone LM (as `transcribe`
//! decodes by default), and decoding + forced alignment into timed spans.
//!
//! `cargo bench --bench decode`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array2;
use phonrec::ctc::{decode_spans, BeamOptions, Decoder, GreedyDecoder, PhoneLm, PrefixBeamDecoder};
use phonrec::phones::PhoneSet;

/// Log-posteriors `[frames, classes]`: mostly blank, a confident-ish phone spike every few frames,
/// with some probability mass spread over the other classes.
fn speech_like(frames: usize, classes: usize) -> Array2<f32> {
    let mut state = 12345u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut out = Array2::from_elem((frames, classes), 0.0f32);
    for t in 0..frames {
        let spike = next() % 4 == 0;
        let winner = if spike {
            1 + (next() as usize % (classes - 1))
        } else {
            0
        };
        let runner_up = 1 + (next() as usize % (classes - 1));
        let mut row = vec![0.002f32; classes];
        row[winner] = 0.8;
        row[runner_up] += 0.1;
        let total: f32 = row.iter().sum();
        for (k, p) in row.iter().enumerate() {
            out[[t, k]] = (p / total).ln();
        }
    }
    out
}

fn decoders(c: &mut Criterion) {
    let phones = PhoneSet::timit39();
    let log_probs = speech_like(3000, phones.len());
    let lm_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default-lm.arpa.gz");
    let lm = PhoneLm::load(&lm_path, &phones).expect("the built-in phone LM");
    let beam = |lm: Option<PhoneLm>, lm_weight: f32, insertion_bonus: f32| {
        PrefixBeamDecoder::new(
            BeamOptions {
                beam_width: phonrec::builtin::BEAM_WITH_LM,
                lm_weight,
                insertion_bonus,
                ..BeamOptions::default()
            },
            lm,
        )
        .expect("valid options")
    };
    let beam_no_lm = beam(None, 0.0, 0.0);
    let beam_lm = beam(Some(lm), 0.4, 1.0);
    // The same LM as compiled in: the binary trie, scored in place (same results, other lookups).
    let binary_lm = phonrec::builtin::lm(&phones)
        .expect("the built-in binary LM")
        .expect("this build has the built-in LM");
    let beam_binary_lm = beam(Some(binary_lm), 0.4, 1.0);

    let mut group = c.benchmark_group("decode_60s");
    group.sample_size(20);
    group.throughput(Throughput::Elements(log_probs.nrows() as u64));
    group.bench_function("greedy", |b| {
        b.iter(|| black_box(GreedyDecoder.decode(log_probs.view())))
    });
    group.bench_function("beam", |b| {
        b.iter(|| black_box(beam_no_lm.decode(log_probs.view())))
    });
    group.bench_function("beam_lm", |b| {
        b.iter(|| black_box(beam_lm.decode(log_probs.view())))
    });
    group.bench_function("beam_lm_binary", |b| {
        b.iter(|| black_box(beam_binary_lm.decode(log_probs.view())))
    });
    group.bench_function("beam_lm_aligned_spans", |b| {
        b.iter(|| black_box(decode_spans(&beam_lm, log_probs.view(), 0.02).expect("spans")))
    });
    group.finish();
}

criterion_group!(benches, decoders);
criterion_main!(benches);
