//! Manifests (TSV and JSON Lines) from arbitrary bytes. The first byte picks the file name (and so
//! the format guess); audio paths point into a folder holding one real WAV, so lines can succeed.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

struct Fixture {
    dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let wave = phonrec::audio::Waveform {
            samples: (0..1600).map(|i| (i as f32 * 0.1).sin() * 3000.0).collect(),
            sample_rate_hz: 16_000,
        };
        phonrec::audio::write_wav_i16(&dir.path().join("a.wav"), &wave).expect("fixture wav");
        Fixture { dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, text)) = data.split_first() else {
        return;
    };
    let name = if kind % 2 == 0 { "m.tsv" } else { "m.jsonl" };
    let path = fixture().dir.path().join(name);
    std::fs::write(&path, text).expect("write manifest");
    let phones = phonrec::phones::PhoneSet::timit39();
    if let Ok(dataset) = phonrec::data::load_manifest(&path, &phones) {
        for utterance in &dataset.utterances {
            assert!(!utterance.phones.is_empty());
            assert!(utterance.phones.iter().all(|p| p.index() > 0 && p.index() < phones.len()));
        }
    }
});
