//! Compile the default model into the binary when `models/default.safetensors` exists, so
//! `phonrec transcribe x.wav` works from any directory without `--model`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(phonrec_default_model)");
    println!("cargo::rerun-if-changed=models/default.safetensors");
    if std::path::Path::new("models/default.safetensors").is_file() {
        println!("cargo::rustc-cfg=phonrec_default_model");
    }
}
