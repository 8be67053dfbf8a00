//! Proof that the network learns: a 2 × 32 BiLSTM trained with CTC on a handful of toy utterances
//! (tones standing for phones, see `common/`) until greedy decoding reproduces their labels.

mod common;

use phonrec::ctc::{Decoder, GreedyDecoder};
use phonrec::data::load_manifest;
use phonrec::features::{BaseFeatures, CmvnOptions, FbankOptions, FeatureOptions, MelOptions};
use phonrec::model::{InitOptions, Model, NetworkConfig, Precision, WeightInit};
use phonrec::phones::PhoneSet;
use phonrec::train::{
    train, AugmentOptions, ModelBytes, RunStart, ScheduleOptions, TrainObserver, TrainOptions,
};

struct Quiet;
impl TrainObserver for Quiet {}

fn small_options() -> TrainOptions {
    TrainOptions {
        features: FeatureOptions {
            base: BaseFeatures::Fbank(FbankOptions {
                mel: MelOptions {
                    num_bins: 23,
                    ..MelOptions::default()
                },
                ..FbankOptions::default()
            }),
            deltas: None,
            cmvn: Some(CmvnOptions::default()),
        },
        network: NetworkConfig {
            num_layers: 2,
            hidden_size: 32,
            dropout: 0.0,
            stack_frames: 2,
            ..NetworkConfig::default()
        },
        schedule: ScheduleOptions {
            learning_rate: 0.01,
            warmup_updates: 5,
            early_stop_patience: 100,
            patience: 100,
            warmup_fraction: None,
            ..ScheduleOptions::default()
        },
        augment: AugmentOptions::default(),
        epochs: 60,
        batch_frames: 300,
        // The epochs and batches as given, not fitted to the data (see the last test).
        min_updates: 0,
        max_batch_utterances: 0,
        seed: 1,
        checkpoint_every_s: 0,
        ..TrainOptions::default()
    }
}

#[test]
fn a_small_network_learns_toy_phones_until_greedy_decoding_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::tone_corpus(dir.path(), "train", 12, 7);
    let phones = PhoneSet::timit39();
    let data = load_manifest(&manifest, &phones).unwrap();
    assert_eq!(data.len(), 12);
    let out = dir.path().join("run");
    let outcome = train(
        &data.utterances,
        &data.utterances,
        &phones,
        &small_options(),
        &out,
        RunStart::New,
        serde_json::Value::Null,
        &mut Quiet,
    )
    .unwrap();
    let (best_per, _) = outcome.best.unwrap();
    assert_eq!(best_per, 0.0, "dev PER never reached 0: {outcome:?}");

    // A second new run in the same folder is refused (it would overwrite this one's best model).
    let err = train(
        &data.utterances,
        &data.utterances,
        &phones,
        &small_options(),
        &out,
        RunStart::New,
        serde_json::Value::Null,
        &mut Quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("already holds a run") && err.contains("--force"),
        "{err}"
    );

    // The saved best model decodes every utterance exactly.
    let model = Model::load(&out.join("best.safetensors")).unwrap();
    for utt in &data.utterances {
        let wave = phonrec::audio::read_audio(&utt.audio).unwrap();
        let log_probs = model.log_probs_for_wave(&wave.samples).unwrap();
        let decoded = GreedyDecoder.decode(log_probs.view());
        assert_eq!(
            phones.format_sequence(&decoded),
            phones.format_sequence(&utt.phones)
        );
    }

    // Fine-tuning starts from the trained weights, not a new network: one epoch at a small rate (with
    // VTLP on, and another architecture asked for, which --init-from overrides) still decodes exactly,
    // which a freshly initialised network after one epoch cannot.
    let mut fine_tune = small_options();
    fine_tune.init_from = Some(out.join("best.safetensors"));
    fine_tune.network.hidden_size = 16;
    fine_tune.schedule.learning_rate = 1e-4;
    fine_tune.augment.vtlp = 0.1;
    fine_tune.epochs = 1;
    fine_tune.save_epoch_models = true;
    let tuned_dir = dir.path().join("tuned");
    let tuned = train(
        &data.utterances,
        &data.utterances,
        &phones,
        &fine_tune,
        &tuned_dir,
        RunStart::New,
        serde_json::Value::Null,
        &mut Quiet,
    )
    .unwrap();
    assert_eq!(tuned.best.unwrap().0, 0.0, "{tuned:?}");
    let tuned_model = phonrec::model::ModelFile::load(&tuned_dir.join("best.safetensors")).unwrap();
    assert_eq!(tuned_model.config().network.hidden_size, 32);
    // --save-epoch-models kept epoch 1's model; the first run kept none.
    let epoch_one = tuned_dir.join(phonrec::train::epoch_model_file(1));
    // It is best.safetensors too when epoch 1 beat the starting model (the same PER at a lower dev
    // loss); otherwise best.safetensors holds the starting weights (epoch 0).
    let (epoch_one_bytes, best_bytes) = (
        std::fs::read(&epoch_one).unwrap(),
        std::fs::read(tuned_dir.join("best.safetensors")).unwrap(),
    );
    match tuned.best.map(|(_, epoch)| epoch) {
        Some(1) => assert_eq!(epoch_one_bytes, best_bytes),
        Some(0) => assert_ne!(epoch_one_bytes, best_bytes),
        other => panic!("best epoch {other:?} of a one-epoch run"),
    }
    assert_eq!(
        phonrec::model::ModelFile::load(&epoch_one)
            .unwrap()
            .config()
            .network
            .hidden_size,
        32
    );
    assert!(!out.join(phonrec::train::epoch_model_file(1)).exists());

    // The model file records where fine-tuning started: none for a new network, the file's name,
    // or `builtin` for the model held in memory (a binary's built-in one), kept through a chain of
    // fine-tunes (it sets the default decoding: the built-in LM).
    let first = phonrec::model::ModelFile::load(&out.join("best.safetensors")).unwrap();
    assert_eq!(first.config().training.init_from, None);
    assert_eq!(
        tuned_model.config().training.init_from.as_deref(),
        Some("best.safetensors")
    );
    assert!(!tuned_model.config().training.fine_tuned_from_built_in());
    let mut from_memory = fine_tune.clone();
    from_memory.save_epoch_models = false;
    from_memory.init_from = Some("builtin".into());
    from_memory.init_from_bytes = Some(ModelBytes(Box::leak(
        std::fs::read(out.join("best.safetensors"))
            .unwrap()
            .into_boxed_slice(),
    )));
    let fine_tuned_from = |options: &TrainOptions, dir: &std::path::Path| {
        train(
            &data.utterances,
            &data.utterances,
            &phones,
            options,
            dir,
            RunStart::New,
            serde_json::Value::Null,
            &mut Quiet,
        )
        .unwrap();
        let model = phonrec::model::ModelFile::load(&dir.join("best.safetensors")).unwrap();
        model.config().training.init_from.clone()
    };
    let memory_dir = dir.path().join("from_memory");
    assert_eq!(
        fine_tuned_from(&from_memory, &memory_dir).as_deref(),
        Some("builtin")
    );
    let mut chained = from_memory.clone();
    chained.init_from = Some(memory_dir.join("best.safetensors"));
    chained.init_from_bytes = None;
    assert_eq!(
        fine_tuned_from(&chained, &dir.path().join("chained")).as_deref(),
        Some("builtin")
    );

    // Freezing the lowest layer: its weights come out exactly as they went in, the rest move.
    let mut frozen = fine_tune.clone();
    frozen.freeze_layers = 1;
    frozen.save_epoch_models = false;
    frozen.schedule.learning_rate = 1e-3;
    let frozen_dir = dir.path().join("frozen");
    train(
        &data.utterances,
        &data.utterances,
        &phones,
        &frozen,
        &frozen_dir,
        RunStart::New,
        serde_json::Value::Null,
        &mut Quiet,
    )
    .unwrap();
    let start = phonrec::model::ModelFile::load(&out.join("best.safetensors")).unwrap();
    let after = std::fs::read(frozen_dir.join("checkpoint.safetensors")).unwrap();
    let after = safetensors::SafeTensors::deserialize(&after).unwrap();
    for (name, tensor) in start.weights() {
        let before: Vec<f32> = tensor.flatten_all().unwrap().to_vec1().unwrap();
        let moved: Vec<f32> = after
            .tensor(name)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if name.starts_with("lstm.0.") {
            assert_eq!(moved, before, "{name} is frozen");
        } else {
            assert_ne!(moved, before, "{name} trains");
        }
    }

    // A fine-tune that only makes the dev set worse (a rate far too high) hands back the model it
    // started from: scored before the first update, it stays the best model (epoch 0).
    let mut harmful = fine_tune.clone();
    harmful.save_epoch_models = false;
    harmful.schedule.learning_rate = 1.0;
    harmful.schedule.warmup_updates = 0;
    harmful.epochs = 2;
    let harmful_dir = dir.path().join("harmful");
    let harmed = train(
        &data.utterances,
        &data.utterances,
        &phones,
        &harmful,
        &harmful_dir,
        RunStart::New,
        serde_json::Value::Null,
        &mut Quiet,
    )
    .unwrap();
    assert_eq!(harmed.best, Some((0.0, 0)), "{harmed:?}");
    let kept = phonrec::model::ModelFile::load(&harmful_dir.join("best.safetensors")).unwrap();
    assert_eq!(kept.config().training.epochs, Some(0));
    for (name, tensor) in start.weights() {
        let before: Vec<f32> = tensor.flatten_all().unwrap().to_vec1().unwrap();
        let held = &kept.weights()[name];
        assert_eq!(
            held.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            before,
            "{name}"
        );
    }
    // The epochs did move the weights (so the test above could fail).
    let moved = std::fs::read(harmful_dir.join("checkpoint.safetensors")).unwrap();
    let moved = safetensors::SafeTensors::deserialize(&moved).unwrap();
    let output: Vec<f32> = start.weights()["out.weight"]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let trained: Vec<f32> = moved
        .tensor("out.weight")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_ne!(trained, output);

    let mut fresh = fine_tune.clone();
    fresh.init_from = None;
    fresh.network.hidden_size = 32;
    let fresh_outcome = train(
        &data.utterances,
        &data.utterances,
        &phones,
        &fresh,
        &dir.path().join("fresh"),
        RunStart::New,
        serde_json::Value::Null,
        &mut Quiet,
    )
    .unwrap();
    assert!(fresh_outcome.best.unwrap().0 > 0.5, "{fresh_outcome:?}");

    // A model trained on another phone inventory cannot be the starting point.
    let other_phones =
        PhoneSet::from_phones(["aa", "iy", "s", "m", "z"].map(String::from)).unwrap();
    let other_data = load_manifest(&manifest, &other_phones).unwrap();
    let mut mismatched = fine_tune.clone();
    mismatched.epochs = 1;
    let err = train(
        &other_data.utterances,
        &other_data.utterances,
        &other_phones,
        &mismatched,
        &dir.path().join("mismatched"),
        RunStart::New,
        serde_json::Value::Null,
        &mut Quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("phone set"), "{err}");
}

/// The tensors a run's checkpoint holds (weights and optimizer state), by name.
fn checkpoint_weights(run: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut weights: Vec<(String, Vec<u8>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect();
    weights.sort();
    weights
}

/// Distillation (`--distill W`): a fine-tune with a noise floor under every utterance learns from
/// the starting model's posteriors of the floorless copies as well as from the labels, so its
/// updates differ from the same run's without the term; it needs a starting model and the
/// recording conditions, and says so.
#[test]
fn distillation_changes_a_fine_tune_and_needs_a_teacher_and_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::tone_corpus(dir.path(), "train", 6, 3);
    let phones = PhoneSet::timit39();
    let data = load_manifest(&manifest, &phones).unwrap();
    let run = |options: &TrainOptions, name: &str| {
        train(
            &data.utterances,
            &data.utterances,
            &phones,
            options,
            &dir.path().join(name),
            RunStart::New,
            serde_json::Value::Null,
            &mut Quiet,
        )
    };
    let mut start = small_options();
    start.epochs = 3;
    run(&start, "start").unwrap();

    let mut plain = small_options();
    plain.init_from = Some(dir.path().join("start").join("best.safetensors"));
    plain.epochs = 1;
    plain.augment.conditions.noise_floor_probability = 1.0;
    let mut distilled = plain.clone();
    distilled.distill = 1.0;
    run(&plain, "plain").unwrap();
    run(&distilled, "distilled").unwrap();
    let (plain, distilled_weights) = (
        checkpoint_weights(&dir.path().join("plain")),
        checkpoint_weights(&dir.path().join("distilled")),
    );
    assert_eq!(plain.len(), distilled_weights.len());
    assert!(plain.iter().any(|(name, _)| name == "out.weight"));
    // The same batches, draws and dropout masks: only the distillation term tells them apart.
    assert_ne!(plain, distilled_weights);

    let mut no_teacher = distilled.clone();
    no_teacher.init_from = None;
    let err = run(&no_teacher, "no_teacher").unwrap_err().to_string();
    assert!(err.contains("--init-from"), "{err}");
    let mut no_conditions = distilled.clone();
    no_conditions.augment = AugmentOptions::default();
    let err = run(&no_conditions, "no_conditions")
        .unwrap_err()
        .to_string();
    assert!(err.contains("--augment robust"), "{err}");
}

/// Mixed-precision training (`--precision bf16`) learns the same toy task to the same end: dev PER
/// 0, and the saved model (f32 weights, decoded in f32) spells every utterance exactly. The run's
/// options, checkpoint included, record the precision, so `--resume` keeps it.
#[test]
fn bf16_training_learns_the_toy_phones_too() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::tone_corpus(dir.path(), "train", 12, 7);
    let phones = PhoneSet::timit39();
    let data = load_manifest(&manifest, &phones).unwrap();
    let out = dir.path().join("run");
    let options = TrainOptions {
        precision: Precision::Bf16,
        ..small_options()
    };
    let outcome = train(
        &data.utterances,
        &data.utterances,
        &phones,
        &options,
        &out,
        RunStart::New,
        serde_json::Value::Null,
        &mut Quiet,
    )
    .unwrap();
    assert_eq!(outcome.best.unwrap().0, 0.0, "{outcome:?}");
    let model = Model::load(&out.join("best.safetensors")).unwrap();
    for utt in &data.utterances {
        let wave = phonrec::audio::read_audio(&utt.audio).unwrap();
        let log_probs = model.log_probs_for_wave(&wave.samples).unwrap();
        assert_eq!(
            phones.format_sequence(&GreedyDecoder.decode(log_probs.view())),
            phones.format_sequence(&utt.phones)
        );
    }
    let checkpoint = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&checkpoint).unwrap();
    let recorded = metadata
        .metadata()
        .as_ref()
        .unwrap()
        .values()
        .any(|v| v.contains("\"precision\":\"bf16\""));
    assert!(recorded, "the checkpoint does not record the precision");
    // The checkpoint given where a model belongs says which file to use instead.
    let err = Model::load(&out.join("checkpoint.safetensors"))
        .err()
        .expect("a checkpoint is not a model")
        .to_string();
    assert!(
        err.contains("training checkpoint") && err.contains("best.safetensors"),
        "{err}"
    );
    // int8 is not a training precision.
    let int8 = TrainOptions {
        precision: Precision::Int8,
        ..small_options()
    };
    let err = train(
        &data.utterances,
        &data.utterances,
        &phones,
        &int8,
        &dir.path().join("int8"),
        RunStart::New,
        serde_json::Value::Null,
        &mut Quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("int8"), "{err}");
}

#[test]
fn all_zero_initialisation_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::tone_corpus(dir.path(), "train", 2, 3);
    let phones = PhoneSet::timit39();
    let data = load_manifest(&manifest, &phones).unwrap();
    let mut options = small_options();
    options.init = InitOptions {
        weights: WeightInit::Zeros,
        ..InitOptions::default()
    };
    let err = train(
        &data.utterances,
        &data.utterances,
        &phones,
        &options,
        &dir.path().join("run"),
        RunStart::New,
        serde_json::Value::Null,
        &mut Quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("symmetr"), "{err}");
}

/// Collects the problems a run reports.
#[derive(Default)]
struct Problems(Vec<String>);
impl TrainObserver for Problems {
    fn on_problem(&mut self, message: &str) {
        self.0.push(message.to_string());
    }
}

#[test]
fn a_warm_up_longer_than_the_run_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::tone_corpus(dir.path(), "train", 4, 3);
    let phones = PhoneSet::timit39();
    let data = load_manifest(&manifest, &phones).unwrap();
    let run = |warmup_updates: u64, epochs: usize, name: &str| {
        let options = TrainOptions {
            epochs,
            batch_frames: 100_000, // every utterance in one batch: one update per epoch
            schedule: ScheduleOptions {
                warmup_updates,
                ..small_options().schedule
            },
            ..small_options()
        };
        let mut problems = Problems::default();
        train(
            &data.utterances,
            &data.utterances,
            &phones,
            &options,
            &dir.path().join(name),
            RunStart::New,
            serde_json::Value::Null,
            &mut problems,
        )
        .unwrap();
        problems.0
    };
    let warned = run(200, 2, "long-warm-up");
    assert!(
        warned
            .iter()
            .any(|p| p.contains("warm-up (200 updates)") && p.contains("2 updates")),
        "{warned:?}"
    );
    assert!(run(1, 2, "short-warm-up")
        .iter()
        .all(|p| !p.contains("warm-up")));
    // One update in all: a warm-up of one update is none, and nothing lower can be suggested.
    assert!(run(1, 1, "one-update")
        .iter()
        .all(|p| !p.contains("warm-up")));
}

/// Collects the notes a run prints.
#[derive(Default)]
struct Notes(Vec<String>);
impl TrainObserver for Notes {
    fn on_note(&mut self, message: &str) {
        self.0.push(message.to_string());
    }
}

/// A new run of `options` on 12 short utterances: its notes (joined), how many epochs it
/// completed, and the last line of its metrics.
fn run_on_twelve_utterances(options: &TrainOptions) -> (String, usize, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::tone_corpus(dir.path(), "train", 12, 5);
    let phones = PhoneSet::timit39();
    let data = load_manifest(&manifest, &phones).unwrap();
    let mut notes = Notes::default();
    let out = dir.path().join("run");
    let outcome = train(
        &data.utterances,
        &data.utterances,
        &phones,
        options,
        &out,
        RunStart::New,
        serde_json::Value::Null,
        &mut notes,
    )
    .unwrap();
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let last = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    (notes.0.join(" | "), outcome.epochs_completed, last)
}

#[test]
fn a_tiny_run_is_fitted_to_its_data_and_says_so() {
    // 12 utterances and a 300-frame budget that fits them all in very few batches: with
    // `min_updates` the run gets batches of at most 2 (12 / 8 rounded up), enough epochs for 40
    // updates, and a warm-up of 5 % of them.
    let (note, epochs, last) = run_on_twelve_utterances(&TrainOptions {
        epochs: 1,
        min_updates: 40,
        max_batch_utterances: 32,
        batch_frames: 100_000,
        schedule: ScheduleOptions {
            warmup_updates: 200,
            warmup_fraction: Some(0.05),
            ..small_options().schedule
        },
        ..small_options()
    });
    assert!(note.contains("batches of at most 2"), "{note}");
    assert!(note.contains("up to 7 epochs instead of 1"), "{note}");
    assert!(note.contains("warm-up 3 updates instead of 200"), "{note}");
    assert_eq!(epochs, 7);
    assert!(last["updates"].as_u64().unwrap() >= 40, "{last}");
}

#[test]
fn an_epoch_limit_given_still_gets_batches_fitted_to_tiny_data() {
    // `phonrec train --epochs 2` on 12 utterances: the epoch limit is the user's, but an epoch
    // still has 6 updates (batches of 2), not one batch of 12.
    let (note, epochs, last) = run_on_twelve_utterances(&TrainOptions {
        epochs: 2,
        min_updates: 0,
        fit_batches_to_data: true,
        max_batch_utterances: 32,
        batch_frames: 100_000,
        ..small_options()
    });
    assert!(
        note.contains("batches of at most 2 (not 32), for 6 updates per epoch"),
        "{note}"
    );
    assert!(!note.contains("epochs instead of"), "{note}");
    assert_eq!(epochs, 2);
    assert_eq!(last["updates"].as_u64(), Some(12), "{last}");
}
