//! `Recognizer::recognize_batch` (what `transcribe` runs: short files share network batches) gives
//! each file what recognising it alone gives (the same phones, times and regions; confidences up to
//! float rounding), in input order, with the built-in model.

use std::path::Path;

use phonrec::audio::{read_audio, Waveform};
use phonrec::model::Model;
use phonrec::recognize::{Recognizer, RecognizerOptions};

#[test]
fn a_batch_of_files_of_mixed_lengths_and_rates_recognises_each_as_alone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model_path = root.join("models/default.safetensors");
    if !model_path.is_file() {
        return;
    }
    let recognizer = Recognizer::new(
        Model::load(&model_path).unwrap(),
        RecognizerOptions::default(),
    )
    .unwrap();
    let mut waves: Vec<Waveform> = [
        "audio/slt_dark_suit_16k.wav",
        "audio/fsdd_7_jackson_0_8k.wav",
        "audio/espeak_quick_fox_22k.wav",
    ]
    .iter()
    .map(|p| read_audio(&root.join(p)).unwrap())
    .collect();
    // Two more of similar length to share a batch, one padded with 2 s of silence, and silence.
    let suit = waves[0].clone();
    let mut quieter = suit.clone();
    quieter.samples.iter_mut().for_each(|s| *s *= 0.25);
    let mut padded = suit.clone();
    padded.samples.splice(0..0, vec![0.0; 32_000]);
    waves.extend([quieter, padded]);
    waves.push(Waveform {
        samples: vec![0.0; 16_000],
        sample_rate_hz: 16_000,
    });
    let alone: Vec<_> = waves
        .iter()
        .map(|w| recognizer.recognize(w.clone()).unwrap().transcript)
        .collect();
    let together: Vec<_> = recognizer
        .recognize_batch(waves)
        .into_iter()
        .map(|r| r.unwrap().transcript)
        .collect();
    // The same phones, times and regions; confidences equal up to float rounding (a batched product
    // may sum in another order), far below the 3 decimals outputs print.
    assert_eq!(together.len(), alone.len());
    for (t, a) in together.iter().zip(&alone) {
        assert_eq!(t.segments, a.segments);
        assert_eq!(t.spans.len(), a.spans.len());
        for (x, y) in t.spans.iter().zip(&a.spans) {
            assert_eq!((x.phone, x.start_s, x.end_s), (y.phone, y.start_s, y.end_s));
            assert!((x.confidence - y.confidence).abs() < 1e-4);
        }
    }
    assert!(together[5].spans.is_empty(), "silence gives no phones");
    assert!(together[0].spans.len() > 25);
}

#[test]
fn a_phone_lm_loaded_on_another_thread_decodes_as_one_given_up_front() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model_path = root.join("models/default.safetensors");
    let lm_path = root.join("models/default-lm.arpa.gz");
    if !model_path.is_file() || !lm_path.is_file() {
        return;
    }
    let model = || Model::load(&model_path).unwrap();
    let phones = model().phones().clone();
    let options = RecognizerOptions {
        beam: 8,
        lm_weight: 0.4,
        insertion_bonus: 1.0,
        ..RecognizerOptions::default()
    };
    let lm = phonrec::ctc::PhoneLm::load(&lm_path, &phones).unwrap();
    let up_front = Recognizer::new(
        model(),
        RecognizerOptions {
            lm: Some(lm.clone()),
            ..options.clone()
        },
    )
    .unwrap();
    let deferred =
        Recognizer::with_deferred_lm(model(), options.clone(), move || Ok(Some(lm))).unwrap();
    let wave = read_audio(&root.join("audio/slt_dark_suit_16k.wav")).unwrap();
    assert_eq!(
        deferred.recognize(wave.clone()).unwrap().transcript,
        up_front.recognize(wave.clone()).unwrap().transcript
    );
    assert_eq!(deferred.decoding(), up_front.decoding());
    // A loader that fails makes recognition fail with its error, not hang or panic.
    let failing = Recognizer::with_deferred_lm(model(), options, || {
        Err(phonrec::Error::InvalidOptions {
            what: "test LM",
            reason: "no such LM".into(),
        })
    })
    .unwrap();
    let error = failing.recognize(wave.clone()).unwrap_err().to_string();
    assert!(error.contains("no such LM"), "{error}");
    assert!(failing.recognize(wave).is_err());
}
