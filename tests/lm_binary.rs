//! The built-in phone LM ships in phonrec's binary format (`models/default-lm.bin`), converted from
//! the ARPA file beside it (`models/default-lm.arpa.gz`). The two must never drift apart: the binary
//! is exactly what converting the ARPA gives, scores exactly alike, and converts back to the same text.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::{phonrec, stderr};
use phonrec::ctc::PhoneLm;
use phonrec::phones::{PhoneId, PhoneSet};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn arpa_text() -> Vec<u8> {
    let gz = std::fs::read(models().join("default-lm.arpa.gz")).expect("models/default-lm.arpa.gz");
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut text)
        .expect("gzip");
    text
}

#[test]
fn the_built_in_binary_lm_is_the_arpa_file_converted_and_scores_exactly_alike() {
    let phones = PhoneSet::timit39();
    let arpa = PhoneLm::load(&models().join("default-lm.arpa.gz"), &phones).expect("ARPA loads");
    let shipped = std::fs::read(models().join("default-lm.bin")).expect("models/default-lm.bin");
    assert!(
        arpa.binary_bytes(&phones) == shipped,
        "models/default-lm.bin is not models/default-lm.arpa.gz converted: run \
         `phonrec lm --input models/default-lm.arpa.gz --output models/default-lm.bin`"
    );
    // Fully checked (arrays sorted, child ranges tiling), then scored like the ARPA model along
    // pseudo-random phone strings: every score and every end-of-sentence score bit for bit.
    let binary = PhoneLm::from_bytes(&shipped, &phones, Path::new("default-lm.bin"))
        .expect("the shipped binary LM is well formed");
    let built_in = phonrec::builtin::lm(&phones)
        .expect("built-in LM")
        .expect("this build has the built-in LM");
    assert_eq!(built_in.order(), 6);
    let mut seed = 1u64;
    let mut checked = 0;
    for _ in 0..400 {
        let (mut a, mut b, mut c) = (arpa.start(), binary.start(), built_in.start());
        for _ in 0..25 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Mostly frequent phones (low ids) so that long n-grams are hit, sometimes any.
            let id = if seed >> 63 == 0 {
                (seed >> 40) % 8
            } else {
                (seed >> 40) % 39
            };
            let phone = PhoneId(1 + id as u16);
            let (score_a, next_a) = arpa.score(&a, phone);
            let (score_b, next_b) = binary.score(&b, phone);
            let (score_c, next_c) = built_in.score(&c, phone);
            assert_eq!(score_a, score_b);
            assert_eq!(score_a, score_c);
            assert_eq!(arpa.score_end(&next_a), binary.score_end(&next_b));
            (a, b, c) = (next_a, next_b, next_c);
            checked += 1;
        }
    }
    assert_eq!(checked, 10_000);
}

#[test]
fn phonrec_lm_converts_arpa_to_binary_and_back_unchanged() {
    let temp = tempfile::tempdir().expect("temp dir");
    let bin = temp.path().join("lm.bin");
    let arpa = temp.path().join("lm.arpa");
    let gz = models().join("default-lm.arpa.gz");
    let run = |args: &[&str]| {
        let output = phonrec(args);
        assert!(output.status.success(), "{}", stderr(&output));
    };
    run(&[
        "lm",
        "--input",
        gz.to_str().unwrap(),
        "--output",
        bin.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&bin).unwrap() == std::fs::read(models().join("default-lm.bin")).unwrap()
    );
    run(&[
        "lm",
        "--input",
        bin.to_str().unwrap(),
        "--output",
        arpa.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&arpa).unwrap() == arpa_text(),
        "ARPA -> binary -> ARPA changed the text"
    );

    // `transcribe --lm` reads either, with the same result.
    let with = |lm: &Path| {
        let output = phonrec(&[
            "transcribe",
            "audio/slt_dark_suit_16k.wav",
            "--model",
            "models/default.safetensors",
            "--lm",
            lm.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        output.stdout
    };
    assert_eq!(with(&bin), with(&gz));

    // A damaged binary is refused with the file's name.
    let bytes = std::fs::read(&bin).unwrap();
    let cut = temp.path().join("cut.bin");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let output = phonrec(&[
        "transcribe",
        "audio/slt_dark_suit_16k.wav",
        "--lm",
        cut.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("cut.bin") && message.contains("binary phone LM"),
        "{message}"
    );
}

#[test]
fn the_built_in_model_and_lm_fit_the_20_mb_budget() {
    // Issue 14's budget for what `phonrec` compiles in: the model's weights and the phone LM.
    let size = |name: &str| {
        std::fs::metadata(models().join(name))
            .unwrap_or_else(|e| panic!("models/{name}: {e}"))
            .len()
    };
    let total = size("default.safetensors") + size("default-lm.bin");
    assert!(
        total <= 20_000_000,
        "model + LM compiled in = {total} bytes, over 20 MB"
    );
}
