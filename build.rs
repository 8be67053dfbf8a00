//! Compile the default model (and its phone LM, `models/default-lm.bin`, and its frame head for
//! alignment, `models/default-frames.safetensors`) into the binary when
//! `models/default.safetensors` exists, so `phonrec transcribe x.wav` works from any directory without
//! `--model`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(phonrec_default_model)");
    println!("cargo::rustc-check-cfg=cfg(phonrec_default_lm)");
    println!("cargo::rustc-check-cfg=cfg(phonrec_default_frames)");
    println!("cargo::rerun-if-changed=models/default.safetensors");
    println!("cargo::rerun-if-changed=models/default-lm.bin");
    println!("cargo::rerun-if-changed=models/default-boundaries.tsv");
    println!("cargo::rerun-if-changed=models/default-frames.safetensors");
    if std::path::Path::new("models/default.safetensors").is_file() {
        println!("cargo::rustc-cfg=phonrec_default_model");
        if std::path::Path::new("models/default-lm.bin").is_file() {
            println!("cargo::rustc-cfg=phonrec_default_lm");
        }
        if std::path::Path::new("models/default-frames.safetensors").is_file() {
            println!("cargo::rustc-cfg=phonrec_default_frames");
        }
    }
}
