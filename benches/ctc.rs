//! CTC benchmarks: the fused loss (forward + backward) against its plain-loop twin, and the decoders.
//!
//! Shapes are those of a training batch of 4 s utterances at 10 ms frames with 40 outputs (39 phones +
//! blank). Throughput is in frames, so criterion prints frames/s. Run with
//! `cargo bench --bench ctc`; record figures, command and machine in BENCHMARKS.md.

use std::hint::black_box;

use candle_core::{Device, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;
use phonrec::ctc::{
    ctc_loss, ctc_loss_reference, force_align, BeamOptions, Decoder, GreedyDecoder, PhoneLm,
    PrefixBeamDecoder, Reduction,
};
use phonrec::phones::{PhoneId, PhoneSet};
use rand::{rngs::StdRng, Rng, SeedableRng};

const SEED: u64 = 42;
const BATCH: usize = 8;
const FRAMES: usize = 400;
const CLASSES: usize = 40;
/// About 12 phones per second of speech.
const TARGET_LEN: usize = 48;
/// How far a peaky frame's class stands above the others in the logits: as confident as trained CTC
/// networks typically are on blank frames.
const PEAK_LOGIT: f32 = 12.0;

fn random_targets(rng: &mut StdRng, count: usize, len: usize) -> Vec<Vec<PhoneId>> {
    (0..count)
        .map(|_| {
            (0..len)
                .map(|_| PhoneId(rng.gen_range(1..CLASSES as u16)))
                .collect()
        })
        .collect()
}

/// Log-probs `[frames, classes]` shaped like a trained CTC network's: mostly blank, phone spikes.
fn peaky_log_probs(rng: &mut StdRng, phones: &[PhoneId], frames: usize) -> Array2<f32> {
    let mut log_probs = Array2::zeros((frames, CLASSES));
    let spacing = frames / (phones.len() + 1);
    for t in 0..frames {
        let spike = (t % spacing == spacing / 2)
            .then(|| phones.get(t / spacing))
            .flatten();
        let class = spike.map_or(0, |p| p.index());
        // Logits: noise in [0, 1), the frame's class PEAK_LOGIT higher (probability ~0.9996).
        let mut row: Vec<f32> = (0..CLASSES).map(|_| rng.gen_range(0.0..1.0)).collect();
        row[class] += PEAK_LOGIT;
        let log_norm = row.iter().map(|x| x.exp()).sum::<f32>().ln();
        for (k, value) in row.iter().enumerate() {
            log_probs[[t, k]] = value - log_norm;
        }
    }
    log_probs
}

fn loss(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let logits: Vec<f32> = (0..BATCH * FRAMES * CLASSES)
        .map(|_| rng.gen_range(-4.0..4.0))
        .collect();
    let targets = random_targets(&mut rng, BATCH, TARGET_LEN);
    let lengths = vec![FRAMES; BATCH];
    let logits = Var::from_vec(logits, (BATCH, FRAMES, CLASSES), &Device::Cpu).expect("logits");

    let mut group = c.benchmark_group("ctc_loss");
    group.throughput(Throughput::Elements((BATCH * FRAMES) as u64));
    group.bench_function(
        BenchmarkId::new("fused_fwd_bwd", format!("{BATCH}x{FRAMES}x{CLASSES}")),
        |b| {
            b.iter(|| {
                let output = ctc_loss(logits.as_tensor(), &targets, &lengths, Reduction::Mean)
                    .expect("loss");
                black_box(output.loss.backward().expect("backward"))
            })
        },
    );
    group.bench_function(
        BenchmarkId::new("fused_fwd_only", format!("{BATCH}x{FRAMES}x{CLASSES}")),
        |b| {
            let plain = logits.as_tensor().detach();
            b.iter(|| {
                black_box(ctc_loss(&plain, &targets, &lengths, Reduction::Mean).expect("loss"))
            })
        },
    );
    group.throughput(Throughput::Elements(FRAMES as u64));
    let log_probs = Array2::from_shape_fn((FRAMES, CLASSES), |_| -(CLASSES as f64).ln());
    group.bench_function(
        BenchmarkId::new("reference_one_utterance", format!("{FRAMES}x{CLASSES}")),
        |b| b.iter(|| black_box(ctc_loss_reference(log_probs.view(), &targets[0]))),
    );
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let phones = random_targets(&mut rng, 1, TARGET_LEN).remove(0);
    let log_probs = peaky_log_probs(&mut rng, &phones, FRAMES);
    let phone_set = PhoneSet::timit39();
    let lm =
        PhoneLm::estimate(&random_targets(&mut rng, 500, TARGET_LEN), &phone_set, 3).expect("lm");
    let beam = |options: BeamOptions, lm: Option<PhoneLm>| {
        PrefixBeamDecoder::new(options, lm).expect("options")
    };
    let skip = BeamOptions {
        blank_skip_log_prob: Some(0.999_f32.ln()),
        ..BeamOptions::default()
    };
    let exhaustive = BeamOptions {
        min_phone_log_prob: None,
        ..BeamOptions::default()
    };
    let decoders: Vec<(&str, Box<dyn Decoder>)> = vec![
        ("greedy", Box::new(GreedyDecoder)),
        ("beam16_all_phones", Box::new(beam(exhaustive, None))),
        ("beam16", Box::new(beam(BeamOptions::default(), None))),
        ("beam16_skip", Box::new(beam(skip.clone(), None))),
        (
            "beam16_lm3",
            Box::new(beam(BeamOptions::default(), Some(lm.clone()))),
        ),
        ("beam16_lm3_skip", Box::new(beam(skip, Some(lm)))),
    ];
    let mut group = c.benchmark_group("ctc_decode");
    group.throughput(Throughput::Elements(FRAMES as u64));
    for (name, decoder) in &decoders {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(decoder.decode(log_probs.view())))
        });
    }
    group.bench_function("force_align", |b| {
        b.iter(|| black_box(force_align(log_probs.view(), &phones).expect("align")))
    });
    group.finish();
}

criterion_group!(benches, loss, decode);
criterion_main!(benches);
