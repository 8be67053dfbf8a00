//! A Kaldi data dir (`wav.scp`, `text`) and a CMUdict lexicon from arbitrary bytes, split at 0xFF
//! bytes into the three files (and an optional `segments`, which is refused).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xFF);
    let scp = parts.next().unwrap_or_default();
    let text = parts.next().unwrap_or_default();
    let lexicon = parts.next().unwrap_or_default();
    let segments = parts.next();
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes);
    if write("wav.scp", scp).is_err() || write("text", text).is_err() || write("lexicon.txt", lexicon).is_err() {
        return;
    }
    if let Some(segments) = segments {
        let _ = write("segments", segments);
    }
    let phones = phonrec::phones::PhoneSet::timit39();
    let Ok(lexicon) = phonrec::data::Lexicon::load(&dir.path().join("lexicon.txt")) else {
        return;
    };
    let _ = phonrec::data::load_kaldi_dir(dir.path(), &lexicon, &phones);
});
