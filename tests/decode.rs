//! Decoding end to end through the public API: synthetic posteriorgrams -> greedy / beam (+ phone LM)
//! -> timed spans -> PER.
//!
//! The posteriorgrams are made here from known phone sequences (seeded RNG), so the expected outputs are
//! the sequences themselves.

use ndarray::Array2;
use phonrec::ctc::{
    decode_spans, force_align, BeamOptions, Decoder, GreedyDecoder, PhoneLm, PrefixBeamDecoder,
};
use phonrec::eval::PerStats;
use phonrec::phones::{PhoneId, PhoneSet, BLANK};
use rand::{rngs::StdRng, Rng, SeedableRng};

const SEED: u64 = 7;
/// 10 ms frames.
const FRAME_SHIFT_S: f32 = 0.01;
/// Times are multiples of the frame shift, computed in f32.
const TIME_TOLERANCE_S: f32 = 1e-6;
/// Weight of a frame's own class against uniform(0, 1) noise on each class: with 40 classes the
/// class gets ~75% of the probability, as a confident network gives.
const PEAK_WEIGHT: f32 = 60.0;

/// A CTC-like posteriorgram for `phones`: each phone fires for 1–2 frames, separated by 1–4 blank
/// frames, with noise on every class. Returns natural-log probabilities `[frames, classes]`.
fn synthetic_posteriors(rng: &mut StdRng, phones: &[PhoneId], classes: usize) -> Array2<f32> {
    let blank = BLANK.index();
    let mut path = vec![blank; rng.gen_range(1..4)];
    for phone in phones {
        let (spike_frames, gap_frames) = (rng.gen_range(1..3), rng.gen_range(1..5));
        path.extend(std::iter::repeat_n(phone.index(), spike_frames));
        path.extend(std::iter::repeat_n(blank, gap_frames));
    }
    let mut log_probs = Array2::zeros((path.len(), classes));
    for (t, &class) in path.iter().enumerate() {
        let mut row: Vec<f32> = (0..classes).map(|_| rng.gen_range(0.0..1.0)).collect();
        row[class] += PEAK_WEIGHT;
        let total: f32 = row.iter().sum();
        for (k, value) in row.iter().enumerate() {
            log_probs[[t, k]] = (value / total).ln();
        }
    }
    log_probs
}

fn random_sentences(rng: &mut StdRng, count: usize, num_phones: u16) -> Vec<Vec<PhoneId>> {
    (0..count)
        .map(|_| {
            (0..rng.gen_range(3..15))
                .map(|_| PhoneId(rng.gen_range(1..=num_phones)))
                .collect()
        })
        .collect()
}

#[test]
fn clean_posteriors_decode_exactly_with_every_decoder() -> phonrec::Result<()> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let phone_set = PhoneSet::timit39();
    let sentences = random_sentences(&mut rng, 30, 39);
    let lm = PhoneLm::estimate(&sentences, &phone_set, 3)?;
    let beam = PrefixBeamDecoder::new(BeamOptions::default(), None)?;
    let fused = PrefixBeamDecoder::new(
        BeamOptions {
            blank_skip_log_prob: Some(0.95_f32.ln()),
            lm_weight: 0.3,
            ..BeamOptions::default()
        },
        Some(lm),
    )?;
    let decoders: [(&str, &dyn Decoder); 3] = [
        ("greedy", &GreedyDecoder),
        ("beam", &beam),
        ("beam+lm", &fused),
    ];
    for (name, decoder) in decoders {
        let mut stats = PerStats::new();
        for sentence in &sentences {
            let log_probs = synthetic_posteriors(&mut rng, sentence, phone_set.len());
            stats.add(sentence, &decoder.decode(log_probs.view()));
        }
        assert_eq!(stats.per(), 0.0, "{name}: {:?}", stats.counts());
    }
    Ok(())
}

/// A pause between two phones stays a pause: each phone takes at most 80 ms of the blank run on
/// its side, where a short run is split between them.
#[test]
fn a_pause_between_phones_belongs_to_neither() -> phonrec::Result<()> {
    // Frames: blank, phone 5, 40 blank frames (0.4 s), phone 7, 2 blanks, phone 9, blank.
    let mut path = vec![0u16, 5];
    path.extend(std::iter::repeat_n(0, 40));
    path.extend([7, 0, 0, 9, 0]);
    let mut log_probs = Array2::from_elem((path.len(), 40), (0.01_f32 / 39.0).ln());
    for (t, &class) in path.iter().enumerate() {
        log_probs[[t, class as usize]] = 0.99_f32.ln();
    }
    let spans = decode_spans(&GreedyDecoder, log_probs.view(), FRAME_SHIFT_S)?;
    let phones: Vec<u16> = spans.iter().map(|s| s.phone.0).collect();
    assert_eq!(phones, [5, 7, 9]);
    let cap = (0.08 / FRAME_SHIFT_S).round();
    // Phone 5's spike is frame 1: it ends 80 ms after it; phone 7 (frame 42) starts 80 ms before.
    assert!(
        (spans[0].end_s - (2.0 + cap) * FRAME_SHIFT_S).abs() < TIME_TOLERANCE_S,
        "{spans:?}"
    );
    assert!(
        (spans[1].start_s - (42.0 - cap) * FRAME_SHIFT_S).abs() < TIME_TOLERANCE_S,
        "{spans:?}"
    );
    // Two blank frames between 7 and 9 are split: the spans touch.
    assert!(
        (spans[1].end_s - spans[2].start_s).abs() < TIME_TOLERANCE_S,
        "{spans:?}"
    );
    assert!(
        (spans[1].end_s - 44.0 * FRAME_SHIFT_S).abs() < TIME_TOLERANCE_S,
        "{spans:?}"
    );
    // force_align, the library's plain alignment, still splits the whole run.
    let aligned = force_align(log_probs.view(), &[PhoneId(5), PhoneId(7), PhoneId(9)])?;
    assert_eq!(aligned[0].end_frame, aligned[1].start_frame);
    Ok(())
}

#[test]
fn spans_are_ordered_cover_the_spikes_and_carry_confidences() -> phonrec::Result<()> {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let sentence = vec![PhoneId(3), PhoneId(3), PhoneId(17), PhoneId(39), PhoneId(5)];
    let log_probs = synthetic_posteriors(&mut rng, &sentence, 40);
    let spans = decode_spans(&GreedyDecoder, log_probs.view(), FRAME_SHIFT_S)?;
    let aligned = force_align(log_probs.view(), &sentence)?;
    assert_eq!(spans.len(), sentence.len());
    for (i, (span, frames)) in spans.iter().zip(&aligned).enumerate() {
        assert_eq!(span.phone, sentence[i]);
        assert!(span.start_s < span.end_s);
        assert!(
            (span.start_s - frames.start_frame as f32 * FRAME_SHIFT_S).abs() < TIME_TOLERANCE_S
        );
        assert!(span.confidence > 0.5 && span.confidence <= 1.0, "{span:?}");
        // The phone's spike frame lies inside its span.
        let spike = (frames.start_frame..frames.end_frame)
            .find(|&t| log_probs[[t, sentence[i].index()]] > 0.5_f32.ln());
        assert!(spike.is_some(), "{span:?}");
        if i > 0 {
            assert!((spans[i - 1].end_s - span.start_s).abs() < TIME_TOLERANCE_S);
        }
    }
    Ok(())
}

/// A posteriorgram row: `mass` on each listed class, the rest spread evenly over the others.
fn row(classes: usize, mass: &[(usize, f32)]) -> Vec<f32> {
    let listed: f32 = mass.iter().map(|m| m.1).sum();
    let rest = (1.0 - listed) / (classes - mass.len()) as f32;
    let mut row = vec![rest; classes];
    for &(class, p) in mass {
        row[class] = p;
    }
    row.iter().map(|p| p.ln()).collect()
}

/// Classes of [`close_calls`]: blank and 39 phones.
const CLASSES: usize = 40;

/// Six frames of [`CLASSES`] classes: phone 17 fires for two frames with 20 close behind (0.6 / 0.3, then
/// 0.8 / 0.1); phone 5 for one frame with 6 close behind (0.5 / 0.45); blank (0.99) around them.
fn close_calls() -> Array2<f32> {
    let blank = BLANK.index();
    let rows = [
        row(CLASSES, &[(blank, 0.99)]),
        row(CLASSES, &[(17, 0.6), (20, 0.3), (blank, 0.09)]),
        row(CLASSES, &[(17, 0.8), (20, 0.1), (blank, 0.09)]),
        row(CLASSES, &[(blank, 0.99)]),
        row(CLASSES, &[(5, 0.5), (6, 0.45), (blank, 0.04)]),
        row(CLASSES, &[(blank, 0.99)]),
    ];
    Array2::from_shape_fn((rows.len(), CLASSES), |(t, k)| rows[t][k])
}

#[test]
fn alternatives_rank_the_phones_over_each_spike_and_include_the_decoded_one() -> phonrec::Result<()>
{
    let log_probs = close_calls();
    let spans = phonrec::ctc::decode_spans_with_alternatives(
        &GreedyDecoder,
        log_probs.view(),
        FRAME_SHIFT_S,
        2,
    )?;
    let got: Vec<Vec<(u16, f32)>> = spans
        .iter()
        .map(|s| s.alternatives.iter().map(|&(p, m)| (p.0, m)).collect())
        .collect();
    let close = |a: &[(u16, f32)], b: &[(u16, f32)]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() < 1e-5)
    };
    assert!(close(&got[0], &[(17, 0.7), (20, 0.2)]), "{got:?}");
    assert!(close(&got[1], &[(5, 0.5), (6, 0.45)]), "{got:?}");
    // Without asking, none; asking for every phone, the decoded phone's mean posterior is its
    // confidence and the list runs from most to least probable.
    let plain = decode_spans(&GreedyDecoder, log_probs.view(), FRAME_SHIFT_S)?;
    assert!(plain.iter().all(|s| s.alternatives.is_empty()));
    let all = phonrec::ctc::decode_spans_with_alternatives(
        &GreedyDecoder,
        log_probs.view(),
        FRAME_SHIFT_S,
        64,
    )?;
    for span in &all {
        assert_eq!(
            span.alternatives.len(),
            CLASSES - 1,
            "every phone, no blank"
        );
        assert!(span.alternatives.iter().all(|a| a.0 != BLANK));
        assert!(span.alternatives.windows(2).all(|w| w[0].1 >= w[1].1));
        let own = span.alternatives.iter().find(|a| a.0 == span.phone);
        assert!(
            own.is_some_and(|a| (a.1 - span.confidence).abs() < 1e-6),
            "{span:?}"
        );
    }
    Ok(())
}

/// The beam's n-best list on a hand-made posteriorgram: best first, the first one is what
/// `decode` gives and what the spans time, the runner-up swaps the one close call (5 against 6,
/// 0.5 against 0.45 on one frame); greedy decoding gives its one path with the path's probability.
#[test]
fn hypotheses_rank_the_close_calls_and_the_first_is_the_decoded_sequence() -> phonrec::Result<()> {
    let log_probs = close_calls();
    let beam = PrefixBeamDecoder::new(
        BeamOptions {
            beam_width: 8,
            num_best: 4,
            ..BeamOptions::default()
        },
        None,
    )?;
    let (spans, hypotheses) =
        phonrec::ctc::decode_spans_with_hypotheses(&beam, log_probs.view(), FRAME_SHIFT_S, 0)?;
    assert_eq!(hypotheses.len(), 4);
    let ids = |phones: &[PhoneId]| phones.iter().map(|p| p.0).collect::<Vec<_>>();
    assert_eq!(ids(&hypotheses[0].phones), [17, 5]);
    assert_eq!(ids(&hypotheses[1].phones), [17, 6]);
    assert_eq!(hypotheses[0].phones, beam.decode(log_probs.view()));
    let timed: Vec<PhoneId> = spans.iter().map(|s| s.phone).collect();
    assert_eq!(timed, hypotheses[0].phones);
    for pair in hypotheses.windows(2) {
        assert!(pair[0].score >= pair[1].score, "{hypotheses:?}");
    }
    // Without an LM or bonus the score is the acoustic log-probability; the runner-up's is the
    // best's times about 0.45 / 0.5 (the frame where they differ).
    let ratio = (hypotheses[1].score - hypotheses[0].score).exp();
    assert!((ratio - 0.9).abs() < 0.02, "{ratio}");
    assert_eq!(hypotheses[0].score, hypotheses[0].acoustic_log_prob);

    let greedy = GreedyDecoder.hypotheses(log_probs.view());
    assert_eq!(greedy.len(), 1);
    assert_eq!(ids(&greedy[0].phones), [17, 5]);
    let path: f64 = [0.99f64, 0.6, 0.8, 0.99, 0.5, 0.99]
        .iter()
        .map(|p| p.ln())
        .sum();
    assert!((greedy[0].score - path).abs() < 1e-5, "{greedy:?}");
    Ok(())
}
