//! Phone n-gram LMs in ARPA format from arbitrary bytes, plain and (first byte odd) gzip-compressed:
//! loading returns an LM whose scores are finite, or an error.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, text)) = data.split_first() else {
        return;
    };
    let phones = phonrec::phones::PhoneSet::timit39();
    let bytes = if kind % 2 == 1 {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if encoder.write_all(text).is_err() {
            return;
        }
        match encoder.finish() {
            Ok(b) => b,
            Err(_) => return,
        }
    } else {
        text.to_vec()
    };
    if let Ok(lm) = phonrec::ctc::PhoneLm::from_arpa_bytes(&bytes, &phones, std::path::Path::new("fuzz.arpa")) {
        assert!(lm.order() >= 1);
    }
});
