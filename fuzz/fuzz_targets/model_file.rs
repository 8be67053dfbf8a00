//! Model files (safetensors with phonrec's metadata) from arbitrary bytes: loading returns a model
//! that was checked, or an error; never a panic, a huge allocation or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = phonrec::model::ModelFile::load_from_bytes(data, "fuzz.safetensors") {
        assert!(model.config().validate().is_ok());
    }
});
