//! WAV and NIST SPHERE from arbitrary bytes: `read_audio_bytes` must return samples or an error,
//! never panic, abort on a huge allocation, or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(wave) = phonrec::audio::read_audio_bytes(data, std::path::Path::new("fuzz.wav")) {
        // What is returned is usable: finite samples at a supported rate.
        assert!(wave.check_samples().is_ok());
        assert!(wave.sample_rate_hz >= phonrec::audio::MIN_SAMPLE_RATE_HZ);
        assert!(!wave.samples.is_empty());
    }
});
