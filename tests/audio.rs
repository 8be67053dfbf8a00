//! Audio input: every WAV encoding and SPHERE variant phonrec reads, made in the test itself, and the
//! typed error of every bad input.

use std::path::{Path, PathBuf};

use phonrec::audio::{read_audio, read_audio_bytes, sphere_bytes};
use phonrec::Error;

/// A short ramp-and-sine test signal at int16 scale.
fn test_signal(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| ((i as f32 * 0.05).sin() * 12_000.0) as i16)
        .collect()
}

fn write_wav<F>(path: &Path, spec: hound::WavSpec, frames: usize, mut sample: F)
where
    F: FnMut(&mut hound::WavWriter<std::io::BufWriter<std::fs::File>>, usize, usize),
{
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        for c in 0..spec.channels as usize {
            sample(&mut writer, i, c);
        }
    }
    writer.finalize().unwrap();
}

fn spec(channels: u16, rate: u32, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: format,
    }
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn integer_pcm_of_every_width_reaches_int16_scale() {
    let dir = temp();
    let reference = test_signal(1000);
    for bits in [8u16, 16, 24, 32] {
        let path = dir.path().join(format!("pcm{bits}.wav"));
        write_wav(
            &path,
            spec(1, 16_000, bits, hound::SampleFormat::Int),
            reference.len(),
            |w, i, _| {
                let v = reference[i] as i32;
                let scaled = if bits >= 16 { v << (bits - 16) } else { v >> 8 };
                if bits == 8 {
                    w.write_sample(scaled as i8).unwrap()
                } else {
                    w.write_sample(scaled).unwrap()
                }
            },
        );
        let wave = read_audio(&path).unwrap();
        assert_eq!(wave.sample_rate_hz, 16_000);
        assert_eq!(wave.samples.len(), reference.len());
        // 8-bit keeps only the top 8 bits: error up to 256 in int16 units.
        let tolerance = if bits == 8 { 256.0 } else { 0.0 };
        for (a, &r) in wave.samples.iter().zip(&reference) {
            assert!((a - r as f32).abs() <= tolerance, "{bits}-bit: {a} vs {r}");
        }
    }
}

#[test]
fn float_wav_is_scaled_by_32768() {
    let dir = temp();
    let path = dir.path().join("float.wav");
    write_wav(
        &path,
        spec(1, 22_050, 32, hound::SampleFormat::Float),
        100,
        |w, i, _| w.write_sample(i as f32 / 100.0 - 0.5).unwrap(),
    );
    let wave = read_audio(&path).unwrap();
    assert_eq!(wave.sample_rate_hz, 22_050);
    assert!((wave.samples[0] + 16_384.0).abs() < 1e-3);
    assert!((wave.samples[99] - 0.49 * 32_768.0).abs() < 1e-2);
}

#[test]
fn channels_are_averaged() {
    let dir = temp();
    for channels in [2u16, 3, 6] {
        let path = dir.path().join(format!("ch{channels}.wav"));
        write_wav(
            &path,
            spec(channels, 8_000, 16, hound::SampleFormat::Int),
            50,
            |w, i, c| w.write_sample((i * 10 + c * 300) as i16).unwrap(),
        );
        let wave = read_audio(&path).unwrap();
        assert_eq!(wave.samples.len(), 50);
        let mean_offset = 300.0 * (channels as f32 - 1.0) / 2.0;
        assert!((wave.samples[7] - (70.0 + mean_offset)).abs() < 1e-3);
    }
}

/// A signal for channel `c` of a multichannel test file: a tone, then per channel a scale and sign.
fn channel_signal(frames: usize, scales: &[f32]) -> Vec<Vec<i16>> {
    scales
        .iter()
        .map(|&scale| {
            (0..frames)
                .map(|i| ((i as f32 * 0.031).sin() * 9_000.0 * scale).round() as i16)
                .collect()
        })
        .collect()
}

/// What the readers must give for `channels`: their average, or the loudest channel when the
/// average is more than 20 dB below the channels' mean power.
fn expected_mono(channels: &[Vec<i16>]) -> Vec<f32> {
    let n = channels.len() as f32;
    let average: Vec<f32> = (0..channels[0].len())
        .map(|i| channels.iter().map(|c| f32::from(c[i])).sum::<f32>() * (1.0 / n))
        .collect();
    let energy = |x: &mut dyn Iterator<Item = f32>| x.map(|v| f64::from(v).powi(2)).sum::<f64>();
    let channel_energy: Vec<f64> = channels
        .iter()
        .map(|c| energy(&mut c.iter().map(|&v| f32::from(v))))
        .collect();
    let mean_energy = channel_energy.iter().sum::<f64>() / f64::from(n);
    if energy(&mut average.iter().copied()) >= mean_energy * 0.01 {
        return average;
    }
    let loudest = (0..channels.len())
        .max_by(|&a, &b| channel_energy[a].total_cmp(&channel_energy[b]))
        .unwrap();
    channels[loudest].iter().map(|&v| f32::from(v)).collect()
}

#[test]
fn long_multichannel_files_are_mixed_block_by_block_and_a_cancelling_channel_is_dropped() {
    // 800,000 frames of three 16-bit channels (4.8 MB): read from disk in blocks, mixed as they are
    // decoded. Averaged; then with the second channel inverted and louder (a reversed microphone
    // leg: the average is near silence), the loudest channel alone.
    let dir = temp();
    let frames = 800_000;
    for (name, scales) in [
        ("averaged", [1.0f32, 0.5, 0.0]),
        ("cancelling", [1.0f32, -1.02, 0.0]),
    ] {
        let channels = channel_signal(frames, &scales);
        let path = dir.path().join(format!("{name}.wav"));
        write_wav(
            &path,
            spec(3, 48_000, 16, hound::SampleFormat::Int),
            frames,
            |w, i, c| w.write_sample(channels[c][i]).unwrap(),
        );
        let expected = expected_mono(&channels);
        if name == "cancelling" {
            assert_eq!(expected[100], f32::from(channels[1][100]));
        }
        let from_disk = read_audio(&path).unwrap();
        assert_eq!(from_disk.samples, expected, "{name}, read from disk");
        // The same file held in memory (a pipe, standard input) goes through the same mixing.
        let bytes = std::fs::read(&path).unwrap();
        let in_memory = read_audio_bytes(&bytes, &path).unwrap();
        assert_eq!(in_memory.samples, expected, "{name}, read from memory");
    }
}

/// A 16-bit AIFF file (big-endian; read by symphonia, the reader of FLAC, MP3 and the other
/// containers) of interleaved `channels`.
fn aiff_bytes(channels: &[Vec<i16>], rate: u32) -> Vec<u8> {
    let frames = channels[0].len();
    // The sample rate as an 80-bit extended float: exponent, then a 64-bit mantissa with its
    // leading one explicit.
    let shift = 31 - rate.leading_zeros();
    let mut rate80 = (16_383u16 + shift as u16).to_be_bytes().to_vec();
    rate80.extend((u64::from(rate) << (63 - shift)).to_be_bytes());
    let mut comm = (channels.len() as u16).to_be_bytes().to_vec();
    comm.extend((frames as u32).to_be_bytes());
    comm.extend(16u16.to_be_bytes());
    comm.extend(rate80);
    let mut ssnd = vec![0u8; 8];
    for i in 0..frames {
        for channel in channels {
            ssnd.extend(channel[i].to_be_bytes());
        }
    }
    let mut body = b"AIFF".to_vec();
    for (id, chunk) in [(b"COMM", comm), (b"SSND", ssnd)] {
        body.extend(id);
        body.extend((chunk.len() as u32).to_be_bytes());
        body.extend(chunk);
    }
    let mut out = b"FORM".to_vec();
    out.extend((body.len() as u32).to_be_bytes());
    out.extend(body);
    out
}

#[test]
fn container_streams_are_mixed_packet_by_packet_and_a_cancelling_channel_is_dropped() {
    // Short files are read into memory first; files of 4 MB and more are decoded from disk.
    let dir = temp();
    for (name, scales, frames) in [
        ("averaged", [0.8f32, 0.3], 50_000),
        ("cancelling", [-0.9f32, 0.91], 50_000),
        ("long_averaged", [0.8f32, 0.3], 1_100_000),
        ("long_cancelling", [-0.9f32, 0.91], 1_100_000),
    ] {
        let channels = channel_signal(frames, &scales);
        let path = dir.path().join(format!("{name}.aiff"));
        std::fs::write(&path, aiff_bytes(&channels, 16_000)).unwrap();
        let wave = read_audio(&path).unwrap();
        assert_eq!(wave.sample_rate_hz, 16_000);
        let expected = expected_mono(&channels);
        if name.ends_with("cancelling") {
            assert_eq!(expected[100], f32::from(channels[1][100]));
        }
        assert_eq!(&wave.samples[..expected.len()], &expected[..], "{name}");
    }
}

#[test]
fn rates_from_8k_to_192k_are_read_and_others_refused() {
    let dir = temp();
    for rate in [
        8_000u32, 11_025, 16_000, 22_050, 44_100, 48_000, 96_000, 192_000,
    ] {
        let path = dir.path().join(format!("r{rate}.wav"));
        write_wav(
            &path,
            spec(1, rate, 16, hound::SampleFormat::Int),
            10,
            |w, _, _| w.write_sample(1i16).unwrap(),
        );
        assert_eq!(read_audio(&path).unwrap().sample_rate_hz, rate);
    }
    let path = dir.path().join("r4000.wav");
    write_wav(
        &path,
        spec(1, 4_000, 16, hound::SampleFormat::Int),
        10,
        |w, _, _| w.write_sample(1i16).unwrap(),
    );
    let err = read_audio(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SampleRate {
                sample_rate_hz: 4_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("r4000.wav"));
}

#[test]
fn sphere_little_and_big_endian_detected_by_content() {
    let dir = temp();
    let samples = test_signal(3000);
    for big_endian in [false, true] {
        // TIMIT names its SPHERE files .WAV: detection must not trust the extension.
        let path = dir.path().join(format!("SA1_{big_endian}.WAV"));
        std::fs::write(&path, sphere_bytes(&samples, 16_000, big_endian)).unwrap();
        let wave = read_audio(&path).unwrap();
        assert_eq!(wave.sample_rate_hz, 16_000);
        assert_eq!(wave.samples.len(), samples.len());
        for (a, &r) in wave.samples.iter().zip(&samples) {
            assert_eq!(*a, r as f32);
        }
    }
}

fn sphere_with_header(fields: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = format!("NIST_1A\n   1024\n{fields}end_head\n").into_bytes();
    bytes.resize(1024, b' ');
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn shorten_sphere_names_sph2pipe() {
    let dir = temp();
    let path = dir.path().join("shorten.wav");
    let header =
        "sample_count -i 100\nsample_rate -i 16000\nchannel_count -i 1\nsample_n_bytes -i 2\n\
                  sample_byte_format -s2 01\nsample_coding -s26 pcm,embedded-shorten-v2.00\n";
    std::fs::write(&path, sphere_with_header(header, &[0u8; 77])).unwrap();
    let err = read_audio(&path).unwrap_err();
    assert!(matches!(err, Error::UnsupportedEncoding { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("sph2pipe") && message.contains("shorten.wav"),
        "{message}"
    );
}

#[test]
fn truncated_sphere_and_wav_are_errors() {
    let dir = temp();
    let mut bytes = sphere_bytes(&test_signal(1000), 16_000, false);
    bytes.truncate(1024 + 500);
    let path = dir.path().join("cut.sph");
    std::fs::write(&path, bytes).unwrap();
    let err = read_audio(&path).unwrap_err();
    assert!(matches!(err, Error::MalformedAudio { .. }), "{err}");
    assert!(err.to_string().contains("cut short"), "{err}");

    let path = dir.path().join("cut.wav");
    write_wav(
        &path,
        spec(1, 16_000, 16, hound::SampleFormat::Int),
        1000,
        |w, i, _| w.write_sample(i as i16).unwrap(),
    );
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 601);
    std::fs::write(&path, bytes).unwrap();
    let err = read_audio(&path).unwrap_err();
    assert!(matches!(err, Error::MalformedAudio { .. }), "{err}");
    assert!(err.to_string().contains("cut.wav"), "{err}");
}

#[test]
fn every_container_cut_short_says_so_and_whole_ones_read() {
    // The fixtures of tests/data cut to 60 % (an interrupted download): each is "cut short", not
    // "not an audio file", a codec's "buffer underrun", or (AIFF) a silently shorter recording.
    let dir = temp();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for name in [
        "fsdd_7_jackson_0_8k.aiff",
        "fsdd_7_jackson_0_8k.caf",
        "fsdd_7_jackson_0_8k.flac",
        "fsdd_7_jackson_0_8k.m4a",
        "fsdd_7_jackson_0_8k.aac",
        "fsdd_7_jackson_0_8k.mp3",
        "fsdd_7_jackson_0_8k.ogg",
        "fsdd_7_jackson_0_8k.opus",
        "fsdd_7_jackson_0_8k.webm",
        "fsdd_7_jackson_0_8k_aac.mkv",
        "fsdd_7_jackson_0_8k_vorbis.mka",
        "fsdd_7_jackson_0_8k_alac.m4a",
        "fsdd_7_jackson_0_8k_ima_adpcm.wav",
        "fsdd_7_jackson_0_8k_ms_adpcm.wav",
    ] {
        let whole = data.join(name);
        assert!(read_audio(&whole).is_ok(), "{name}");
        let mut bytes = std::fs::read(&whole).unwrap();
        bytes.truncate(bytes.len() * 6 / 10);
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = match read_audio(&path) {
            Ok(w) => panic!("{name}: read {} samples", w.samples.len()),
            Err(err) => err,
        };
        assert!(matches!(err, Error::MalformedAudio { .. }), "{name}: {err}");
        assert!(err.to_string().contains("cut short"), "{name}: {err}");
    }
}

/// An AIFF written to a pipe has no sizes (sox writes placeholders from 0x7f000000 up, ffmpeg
/// zeros): from standard input, held whole, it reads as the file does.
#[test]
fn aiff_streamed_to_a_pipe_reads_as_the_file() {
    let whole = std::fs::read(container_fixture("aiff")).unwrap();
    let file = read_audio(&container_fixture("aiff")).unwrap();
    let at = |kind: &[u8]| whole.windows(4).position(|w| w == kind).expect("chunk");
    let (comm, ssnd) = (at(b"COMM"), at(b"SSND"));
    for (form, frames, sound) in [(0x7f00_0050u32, 0x3f80_0000u32, 0x7f00_0008u32), (0, 0, 0)] {
        let mut streamed = whole.clone();
        streamed[4..8].copy_from_slice(&form.to_be_bytes());
        streamed[comm + 10..comm + 14].copy_from_slice(&frames.to_be_bytes());
        streamed[ssnd + 4..ssnd + 8].copy_from_slice(&sound.to_be_bytes());
        let read = read_audio_bytes(&streamed, Path::new("-")).unwrap();
        assert_eq!(read, file, "sizes {form:#x}");
    }
}

/// An Ogg file cut at a page boundary decodes "fine" up to the cut: the last page's missing
/// end-of-stream flag tells it, in a chain's last stream too.
#[test]
fn ogg_cut_at_a_page_boundary_is_cut_short() {
    let dir = temp();
    for extension in ["ogg", "opus"] {
        let bytes = std::fs::read(container_fixture(extension)).unwrap();
        let last_page = bytes.windows(4).rposition(|w| w == b"OggS").expect("pages");
        assert!(last_page > 0);
        let cut = dir.path().join(format!("cut.{extension}"));
        std::fs::write(&cut, &bytes[..last_page]).unwrap();
        let err = read_audio(&cut).unwrap_err();
        assert!(
            matches!(err, Error::MalformedAudio { .. })
                && err.to_string().contains("cut short")
                && err.to_string().contains("end-of-stream"),
            "{extension}: {err}"
        );
        // Joined to a whole copy of itself, the cut stream comes last.
        let chain = dir.path().join(format!("chain.{extension}"));
        std::fs::write(&chain, [&bytes[..], &bytes[..last_page]].concat()).unwrap();
        let err = read_audio(&chain).unwrap_err();
        assert!(
            err.to_string().contains("end-of-stream"),
            "{extension}: {err}"
        );
        // Whole, joined, it is read.
        std::fs::write(&chain, [&bytes[..], &bytes[..]].concat()).unwrap();
        assert!(read_audio(&chain).is_ok(), "{extension}");
    }
}

/// Raw AAC (ADTS) records neither its length nor its encoder's delay: it is read to its last
/// frame (its frames counted, not symphonia's estimate from the first frames' bit rate), the
/// delay kept as ffmpeg keeps it, whole files joined with `cat` read one after the other and an
/// ID3 tag before the frames passed over.
#[test]
fn raw_aac_is_read_frame_by_frame_as_ffmpeg_reads_it() {
    let wav =
        read_audio(&Path::new(env!("CARGO_MANIFEST_DIR")).join("audio/fsdd_7_jackson_0_8k.wav"))
            .unwrap();
    let path = container_fixture("aac");
    let aac = read_audio(&path).unwrap();
    assert_eq!(aac.sample_rate_hz, 8_000);
    // ffmpeg's encoder primes 1024 samples and pads the last frame: whole frames of 1024.
    assert_eq!(aac.samples.len() % 1024, 0);
    assert!(
        aac.samples.len() >= wav.samples.len() + 1024
            && aac.samples.len() < wav.samples.len() + 3 * 1024,
        "{} samples against the WAV's {}",
        aac.samples.len(),
        wav.samples.len()
    );
    let (lag, correlation) = best_alignment(&wav.samples, &aac.samples, 1400);
    assert_eq!(lag, 1024, "the encoder's priming, as ffmpeg decodes it");
    assert!(correlation > 0.9, "correlation {correlation}");
    let bytes = std::fs::read(&path).unwrap();
    let dir = temp();
    let joined = dir.path().join("joined.aac");
    std::fs::write(&joined, [bytes.clone(), bytes.clone()].concat()).unwrap();
    assert_eq!(
        read_audio(&joined).unwrap().samples.len(),
        2 * aac.samples.len()
    );
    // ID3v2.4, 16 bytes of tag after its 10-byte header (as ffmpeg's `-write_id3v2 1` writes).
    let mut tagged = b"ID3\x04\x00\x00\x00\x00\x00\x10".to_vec();
    tagged.extend_from_slice(b"TIT2\x00\x00\x00\x06\x00\x00\x03hello");
    tagged.extend_from_slice(&bytes);
    let tagged_path = dir.path().join("tagged.aac");
    std::fs::write(&tagged_path, tagged).unwrap();
    assert_eq!(read_audio(&tagged_path).unwrap(), aac);
    // A cut ID3-tagged file is cut short too, counted from after its tag.
    let mut cut = std::fs::read(&tagged_path).unwrap();
    cut.truncate(cut.len() - 100);
    std::fs::write(&tagged_path, cut).unwrap();
    let err = read_audio(&tagged_path).unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
}

#[test]
fn zero_samples_is_an_error() {
    let dir = temp();
    let path = dir.path().join("empty.wav");
    write_wav(
        &path,
        spec(1, 16_000, 16, hound::SampleFormat::Int),
        0,
        |_, _, _| {},
    );
    let err = read_audio(&path).unwrap_err();
    assert!(matches!(err, Error::EmptyAudio { .. }), "{err}");
    assert!(err.to_string().contains("empty.wav"));
}

#[test]
fn missing_file_and_non_audio_are_errors() {
    let dir = temp();
    let missing: PathBuf = dir.path().join("nope.wav");
    let err = read_audio(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("nope.wav"));

    let text = dir.path().join("notes.wav");
    std::fs::write(&text, "hello, this is not audio").unwrap();
    let err = read_audio(&text).unwrap_err();
    assert!(matches!(err, Error::NotAudio { .. }), "{err}");
    assert!(err.to_string().contains("notes.wav"));

    let empty = dir.path().join("zero.wav");
    std::fs::write(&empty, "").unwrap();
    assert!(matches!(
        read_audio(&empty).unwrap_err(),
        Error::NotAudio { .. }
    ));

    // Files users mistake for audio, or audio phonrec does not decode: named, with what to do.
    for (name, bytes, said) in [
        (
            "voice.wma",
            b"\x30\x26\xB2\x75\x8E\x66\xCF\x11".to_vec(),
            "Windows Media",
        ),
        (
            "page.wav",
            b"<!DOCTYPE html><html>404</html>".to_vec(),
            "HTML page",
        ),
        ("clips.wav", b"PK\x03\x04rest of a zip".to_vec(), "ZIP"),
        ("song.mid", b"MThd\0\0\0\x06".to_vec(), "MIDI"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_audio(&path).unwrap_err();
        assert!(matches!(err, Error::NotAudio { .. }), "{err}");
        assert!(err.to_string().contains(said), "{name}: {err}");
    }
}

/// A canonical 44-byte-header WAV with any format tag and width (hound cannot write these).
fn raw_wav(format_tag: u16, bits: u16, data: &[u8]) -> Vec<u8> {
    let channels = 1u16;
    let rate = 8_000u32;
    let block_align = channels * bits / 8;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&format_tag.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * block_align as u32).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn unsupported_encodings_are_named() {
    let dir = temp();
    // Compressed WAV payloads phonrec does not decode: GSM 6.10 (format tag 0x31) and MPEG (0x50).
    for (name, tag, bits, encoding) in [
        ("gsm.wav", 0x31u16, 8u16, "GSM 6.10"),
        ("mpeg.wav", 0x50, 8, "MPEG"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, raw_wav(tag, bits, &[0u8; 64])).unwrap();
        let err = read_audio(&path).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedEncoding { .. }),
            "{name}: expected UnsupportedEncoding, got {err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
        assert!(err.to_string().contains(encoding), "{err}");
    }
}

#[test]
fn telephone_and_double_precision_wavs_are_read() {
    let dir = temp();
    // µ-law (tag 7), A-law (tag 6) and 64-bit float (tag 3): one sample each at a known level.
    let f64_half: Vec<u8> = 0.5f64.to_le_bytes().to_vec();
    for (name, tag, bits, data, expected) in [
        ("mulaw.wav", 7u16, 8u16, vec![0x80u8], 32_124.0f32),
        ("alaw.wav", 6, 8, vec![0xD5], 8.0),
        ("f64.wav", 3, 64, f64_half, 16_384.0),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, raw_wav(tag, bits, &data)).unwrap();
        let wave = read_audio(&path).unwrap();
        assert_eq!(
            (wave.samples, wave.sample_rate_hz),
            (vec![expected], 8_000),
            "{name}"
        );
    }
}

#[test]
fn resampled_audio_keeps_duration() {
    let dir = temp();
    let path = dir.path().join("44k.wav");
    write_wav(
        &path,
        spec(2, 44_100, 16, hound::SampleFormat::Int),
        44_100,
        |w, i, _| {
            w.write_sample(((i as f32 * 0.1).sin() * 1000.0) as i16)
                .unwrap()
        },
    );
    let wave = read_audio(&path).unwrap().resampled(16_000).unwrap();
    assert_eq!(wave.sample_rate_hz, 16_000);
    assert_eq!(wave.samples.len(), 16_000);
}

/// The FSDD example (`audio/fsdd_7_jackson_0_8k.wav`) encoded with sox (FLAC, Ogg Vorbis), opusenc
/// (Opus at 16 kbit/s, as voice messages), ffmpeg (Opus in WebM, as browsers record) and lame (MP3, `--preset phone`):
/// `tests/data/fsdd_7_jackson_0_8k.*`.
fn container_fixture(extension: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(format!("fsdd_7_jackson_0_8k.{extension}"))
}

/// The lag (samples `decoded` is late by, below `max_lag`) at which it best matches `original`, and
/// the normalised correlation there.
fn best_alignment(original: &[f32], decoded: &[f32], max_lag: usize) -> (usize, f64) {
    let energy = |x: &[f32]| x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
    (0..max_lag.min(decoded.len()))
        .map(|lag| {
            let a = &original[..original.len().min(decoded.len() - lag)];
            let b = &decoded[lag..lag + a.len()];
            let dot: f64 = a
                .iter()
                .zip(b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            (lag, dot / (energy(a) * energy(b)).sqrt())
        })
        .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a })
}

#[test]
fn flac_decodes_to_exactly_the_wav_samples_and_lossy_codecs_to_nearly_them() {
    let wav =
        read_audio(&Path::new(env!("CARGO_MANIFEST_DIR")).join("audio/fsdd_7_jackson_0_8k.wav"))
            .unwrap();
    for lossless in ["flac", "aiff", "caf"] {
        let decoded = read_audio(&container_fixture(lossless)).unwrap();
        assert_eq!(decoded, wav, "{lossless} is lossless");
    }
    // ALAC in MP4 and in CAF (whose wrapped cookie symphonia alone refuses); FLAC and 24-bit PCM
    // in Matroska; 24-bit big-endian PCM in QuickTime (which symphonia alone reads as
    // little-endian: noise).
    for lossless in [
        "_alac.m4a",
        "_alac.caf",
        "_flac.mka",
        "_s24.mka",
        "_s24be.mov",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/data/fsdd_7_jackson_0_8k{lossless}"));
        assert_eq!(read_audio(&path).unwrap(), wav, "{lossless} is lossless");
    }
    for extension in [
        "ogg",
        "opus",
        "webm",
        "_opus.mp4",
        "mp3",
        "m4a",
        "_ima_adpcm.wav",
        "_ms_adpcm.wav",
        "_aac.mkv",
        "_vorbis.mka",
        "_mp3.mka",
    ] {
        let path = if extension.starts_with('_') {
            // ADPCM WAVs (voice recorders, decoded by symphonia), Opus in MP4, and AAC, Vorbis
            // and MP3 in Matroska (OBS's recordings; ffmpeg's `.mka`).
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/data/fsdd_7_jackson_0_8k{extension}"))
        } else {
            container_fixture(extension)
        };
        let mut lossy = read_audio(&path).unwrap();
        if ["opus", "webm", "_opus.mp4"].contains(&extension) {
            // Opus decodes at 48 kHz, its encoder's start-up (pre-skip) dropped and its padding
            // cut where the container says the stream ends (Ogg: the last granule position, WebM:
            // the last block's DiscardPadding, MP4: the edit list): six samples for each of the
            // 8 kHz input, to within 1 ms (MP4's edit list is in the movie's milliseconds).
            assert_eq!(lossy.sample_rate_hz, 48_000);
            let expected = 6 * wav.samples.len();
            let tolerance = if extension == "_opus.mp4" { 48 } else { 0 };
            assert!(
                lossy.samples.len().abs_diff(expected) <= tolerance,
                "{extension}: {} samples, {expected} expected",
                lossy.samples.len()
            );
            lossy = lossy.resampled(wav.sample_rate_hz).unwrap();
        }
        // The codecs' delay and padding are cut (MP3's LAME header, MP4's edit list, Ogg's last
        // granule position, the ADPCM WAV's `fact` length, Matroska's `CodecDelay`): the decoded
        // length is the WAV's to within 1 ms. (Matroska gives an AAC stream's end padding nowhere
        // ffmpeg writes it: up to one frame of 1024 samples stays at the end.)
        let tolerance = if extension == "_aac.mkv" {
            1024
        } else {
            wav.sample_rate_hz as usize / 1000
        };
        assert!(
            lossy.samples.len() >= wav.samples.len().saturating_sub(tolerance)
                && lossy.samples.len() <= wav.samples.len() + tolerance,
            "{extension}: {} samples against the WAV's {}",
            lossy.samples.len(),
            wav.samples.len()
        );
        // ... and the samples line up with the WAV's: the best-aligned correlation is high and at a
        // lag of 0 (before, MP3 and AAC came 1105 and 1024 samples late: the phones' times too).
        let (best_lag, best) = best_alignment(&wav.samples, &lossy.samples, 400);
        assert!(best > 0.9, "{extension}: correlation {best}");
        assert_eq!(best_lag, 0, "{extension}: the samples come {best_lag} late");
        if extension == "mp3" || extension == "_mp3.mka" {
            // The rate is the file's (lame may resample); phonrec resamples to the model's later.
            assert!(lossy.sample_rate_hz >= 8_000);
        } else {
            assert_eq!(lossy.sample_rate_hz, wav.sample_rate_hz);
        }
    }
}

/// An MP3 stream is read to its end whatever its first frames suggest: a VBR stream without a
/// Xing header (no length declared; symphonia's estimate from the first frames' bit rate cut 0.36 s
/// off this 3.1 s clip) and two files joined with `cat` (the first's header declares only its own
/// length).
#[test]
fn mp3_streams_are_read_to_their_end() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let wav =
        read_audio(&Path::new(env!("CARGO_MANIFEST_DIR")).join("audio/slt_dark_suit_16k.wav"))
            .unwrap();
    let vbr = read_audio(&data.join("slt_dark_suit_vbr_noxing.mp3")).unwrap();
    assert_eq!(vbr.sample_rate_hz, wav.sample_rate_hz);
    // Without a LAME header the encoder's delay and padding are unknown and stay in: at most two
    // frames (2 x 1152 samples at 16 kHz) more than the recording, never less.
    assert!(
        vbr.samples.len() >= wav.samples.len() && vbr.samples.len() <= wav.samples.len() + 2304,
        "{} samples decoded, the recording has {}",
        vbr.samples.len(),
        wav.samples.len()
    );

    let dir = temp();
    let single = std::fs::read(container_fixture("mp3")).unwrap();
    let joined = dir.path().join("joined.mp3");
    std::fs::write(&joined, [&single[..], &single[..]].concat()).unwrap();
    let one = read_audio(&container_fixture("mp3")).unwrap();
    let two = read_audio(&joined).unwrap();
    // The second file's LAME header is skipped; its encoder delay and the first's padding stay.
    assert!(
        two.samples.len() >= 2 * one.samples.len()
            && two.samples.len() <= 2 * one.samples.len() + 2 * 2304,
        "joined: {} samples, each file {}",
        two.samples.len(),
        one.samples.len()
    );
    // The first file's samples are those of the file alone.
    assert_eq!(two.samples[..one.samples.len()], one.samples[..]);
}

/// A chained Ogg file (streams one after another: `cat a.ogg b.ogg`, joined voice messages) is read
/// through all its streams, not only the first; streams of different rates are an error that says so.
#[test]
fn chained_ogg_files_are_read_to_their_end() {
    let dir = temp();
    for extension in ["ogg", "opus"] {
        let single = std::fs::read(container_fixture(extension)).unwrap();
        let joined = dir.path().join(format!("joined.{extension}"));
        std::fs::write(&joined, [&single[..], &single[..], &single[..]].concat()).unwrap();
        let one = read_audio(&container_fixture(extension)).unwrap();
        let three = read_audio(&joined).unwrap();
        assert_eq!(three.sample_rate_hz, one.sample_rate_hz);
        assert_eq!(three.samples.len(), 3 * one.samples.len(), "{extension}");
        assert_eq!(
            three.samples[..one.samples.len()],
            one.samples[..],
            "{extension}"
        );
    }
    // Vorbis at 8 kHz, then Opus (48 kHz).
    let mixed = dir.path().join("mixed.ogg");
    std::fs::write(
        &mixed,
        [
            std::fs::read(container_fixture("ogg")).unwrap(),
            std::fs::read(container_fixture("opus")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let error = read_audio(&mixed).unwrap_err().to_string();
    assert!(
        error.contains("differ") && error.contains("ffmpeg"),
        "{error}"
    );
}

/// Complete files in encodings phonrec does not decode are said to be that, not "cut short".
#[test]
fn undecodable_encodings_are_not_called_truncated() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let error = read_audio(&data.join("fsdd_7_jackson_0_8k_ima4.caf"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unsupported audio encoding") && !error.contains("cut short"),
        "{error}"
    );
    // An Opus stream with channel mapping family 255 (channels without a layout).
    let mut opus = std::fs::read(container_fixture("opus")).unwrap();
    let head = opus.windows(8).position(|w| w == b"OpusHead").unwrap();
    opus[head + 18] = 255;
    let dir = temp();
    let path = dir.path().join("family255.opus");
    std::fs::write(&path, opus).unwrap();
    let error = read_audio(&path).unwrap_err().to_string();
    assert!(error.contains("channel mapping family 255"), "{error}");
}

#[test]
fn truncated_or_damaged_containers_are_errors() {
    let dir = temp();
    let mp3 = std::fs::read(container_fixture("mp3")).unwrap();
    let cut = dir.path().join("cut.mp3");
    std::fs::write(&cut, &mp3[..mp3.len() / 5]).unwrap();
    let error = read_audio(&cut).unwrap_err().to_string();
    assert!(error.contains("cut short"), "{error}");

    let flac = std::fs::read(container_fixture("flac")).unwrap();
    let cut = dir.path().join("cut.flac");
    std::fs::write(&cut, &flac[..flac.len() / 2]).unwrap();
    assert!(matches!(
        read_audio(&cut),
        Err(Error::MalformedAudio { .. })
    ));

    let ogg = std::fs::read(container_fixture("ogg")).unwrap();
    let mut damaged = ogg.clone();
    for i in (200..damaged.len()).step_by(61) {
        damaged[i] ^= 0x5a;
    }
    let path = dir.path().join("damaged.ogg");
    std::fs::write(&path, damaged).unwrap();
    assert!(read_audio(&path).is_err());
    // One flipped byte in the first audio page of an Opus voice message fails its page CRC:
    // "damaged", not "not an audio file".
    let mut opus = std::fs::read(container_fixture("opus")).unwrap();
    let at = opus.len() - 40;
    opus[at] ^= 0x5a;
    let path = dir.path().join("damaged.opus");
    std::fs::write(&path, opus).unwrap();
    let error = read_audio(&path).unwrap_err();
    assert!(matches!(error, Error::MalformedAudio { .. }), "{error}");
    assert!(error.to_string().contains("damaged"), "{error}");

    // Damaged M4A files that made symphonia 0.5 abort the process (a sample table declaring 4
    // billion entries: a 46 GB allocation) or panic (a broken `esds` descriptor): each is this
    // file's error, and a batch goes on.
    let m4a = std::fs::read(container_fixture("m4a")).unwrap();
    let stsc = m4a
        .windows(4)
        .position(|w| w == b"stsc")
        .expect("an stsc box");
    let mut huge_table = m4a.clone();
    huge_table[stsc + 8..stsc + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut broken_esds = m4a.clone();
    let esds = m4a
        .windows(4)
        .position(|w| w == b"esds")
        .expect("an esds box");
    // The decoder-config descriptor's tag (4) and its decoder-specific info's tag (5) follow the
    // ES descriptor's tag (3): turn the latter into an unknown tag.
    let es_tag = esds + 8 + m4a[esds + 8..].iter().position(|&b| b == 3).unwrap();
    broken_esds[es_tag] = 225;
    // An ALAC magic cookie (the 24 bytes after the inner `alac` box's version and flags) whose
    // frame length reads 3.5 billion: the decoder sized its buffer from it (14 GB) and aborted.
    let alac = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fsdd_7_jackson_0_8k_alac.m4a"),
    )
    .unwrap();
    let cookie = alac
        .windows(8)
        .position(|w| w == b"\0\0\0\x24alac")
        .expect("an alac box of 36 bytes")
        + 12;
    assert_eq!(alac[cookie..cookie + 4], 4096u32.to_be_bytes());
    let mut huge_frames = alac.clone();
    huge_frames[cookie..cookie + 4].copy_from_slice(&0xD200_0000u32.to_be_bytes());
    // A PCM CAF whose description gives packets of 0 bytes: symphonia divided by it (a panic the
    // guard caught, but that aborts a fuzzing run).
    let mut empty_packets = std::fs::read(container_fixture("caf")).unwrap();
    let desc = empty_packets
        .windows(4)
        .position(|w| w == b"desc")
        .expect("a desc chunk")
        + 12;
    empty_packets[desc + 16..desc + 20].copy_from_slice(&[0; 4]);
    for (name, bytes) in [
        ("huge_table.m4a", huge_table),
        ("broken_esds.m4a", broken_esds),
        ("huge_frames.m4a", huge_frames),
        ("empty_packets.caf", empty_packets),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let error = read_audio(&path).unwrap_err();
        assert!(
            matches!(error, Error::MalformedAudio { .. }),
            "{name}: {error}"
        );
        assert!(error.to_string().contains("damaged"), "{name}: {error}");
    }
}

/// Files of 4 MB and more are read by blocks straight from disk, the rest whole: the two paths must
/// give the same samples, and the same errors.
#[test]
fn large_wav_files_read_by_blocks_as_small_ones_are_read_whole() {
    let dir = temp();
    let path = dir.path().join("long.wav");
    // 1.5 M stereo frames = 6 MB of data: over the threshold, and not a whole number of blocks.
    let frames = 1_500_001;
    write_wav(
        &path,
        spec(2, 16_000, 16, hound::SampleFormat::Int),
        frames,
        |w, i, c| {
            let v = ((i * 7919 + c * 104_729) % 65_536) as i64 - 32_768;
            w.write_sample(v as i16).unwrap()
        },
    );
    let bytes = std::fs::read(&path).unwrap();
    let direct = read_audio(&path).unwrap();
    let whole = phonrec::audio::read_audio_bytes(&bytes, &path).unwrap();
    assert_eq!(direct.sample_rate_hz, 16_000);
    assert_eq!(direct.samples.len(), frames);
    assert_eq!(direct.samples, whole.samples);
    // Frame 0: channel 0 is -32768, channel 1 (104729 % 65536) - 32768 = 6425; averaged.
    assert_eq!(direct.samples[0], (-32_768.0 + 6_425.0) / 2.0);

    // Cut short: the same "cut short" error as a small file's.
    let mut cut = bytes.clone();
    cut.truncate(bytes.len() - 1001);
    std::fs::write(&path, &cut).unwrap();
    let err = read_audio(&path).unwrap_err();
    assert!(matches!(err, Error::MalformedAudio { .. }), "{err}");
    assert!(err.to_string().contains("cut short"), "{err}");
}

/// Every fixture with random bytes changed and cut at random points (a fixed seed): each read
/// ends in samples or an error, never a panic or an abort. The damaged-M4A abort and panic above
/// were found this way (3,000 mutations per file then; 1,000 here, about 2 s).
#[test]
fn mutated_files_never_panic_or_abort() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("fsdd_7_jackson_0_8k")
        })
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 11, "{fixtures:?}");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for fixture in &fixtures {
        let original = std::fs::read(fixture).unwrap();
        for _ in 0..1000 {
            let mut bytes = original.clone();
            for _ in 0..1 + next() % 8 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            if next() % 4 == 0 {
                bytes.truncate(1 + (next() % bytes.len() as u64) as usize);
            }
            let read = std::panic::catch_unwind(|| {
                phonrec::audio::read_audio_bytes(&bytes, Path::new("mutated"))
            });
            assert!(read.is_ok(), "{}: a mutation panicked", fixture.display());
        }
    }
}

/// AMR-NB speech files (`.amr`: Android voice recorders, MMS) decode to what the 3GPP reference
/// decoder gives (libopencore-amrnb through ffmpeg: `tests/data/*_amr_decoded.wav`), at 12.2 and
/// 4.75 kbit/s, also inside a 3GP file; a file cut inside a frame is "cut short".
#[test]
fn amr_narrowband_decodes_as_the_reference_decoder_does() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for (amr, reference) in [
        (
            "fsdd_7_jackson_0_8k.amr",
            "fsdd_7_jackson_0_8k_amr_decoded.wav",
        ),
        (
            "fsdd_7_jackson_0_8k_475.amr",
            "fsdd_7_jackson_0_8k_475_amr_decoded.wav",
        ),
    ] {
        let decoded = read_audio(&data.join(amr)).unwrap();
        let expected = read_audio(&data.join(reference)).unwrap();
        assert_eq!(decoded.sample_rate_hz, 8000, "{amr}");
        assert_eq!(decoded.samples.len(), expected.samples.len(), "{amr}");
        // AMR-NB's output is 13-bit: samples may differ from another decoder's in the 3 bits the
        // standard leaves undefined, no more.
        let worst = decoded
            .samples
            .iter()
            .zip(&expected.samples)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 7.0, "{amr}: a sample differs by {worst}");
        let energy: f32 = decoded.samples.iter().map(|v| v * v).sum();
        assert!(energy > 0.0, "{amr}: silence");
    }
    // The same frames in a 3GP file (Android's voice recorder; symphonia does not know AMR tracks).
    let amr = read_audio(&data.join("fsdd_7_jackson_0_8k.amr")).unwrap();
    let three_gp = read_audio(&data.join("fsdd_7_jackson_0_8k_amr.3gp")).unwrap();
    assert_eq!(three_gp, amr);
    let dir = temp();
    let bytes = std::fs::read(data.join("fsdd_7_jackson_0_8k.amr")).unwrap();
    let cut = dir.path().join("cut.amr");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let err = read_audio(&cut).unwrap_err();
    assert!(matches!(err, Error::MalformedAudio { .. }), "{err}");
    assert!(err.to_string().contains("cut short"), "{err}");
}

/// AMR-WB (16 kHz) files, made here with the same crate's encoder (ffmpeg and sox ship no AMR-WB
/// encoder): the decoded speech follows the input at 16 kHz, lagging it by the codec's own delay.
#[test]
fn amr_wideband_files_decode_to_the_speech_encoded() {
    use codec_core::codecs::amr::AmrCodec;
    use codec_core::types::{CodecConfig, FrameKind, VariableRateCodec};
    let wav =
        read_audio(&Path::new(env!("CARGO_MANIFEST_DIR")).join("audio/slt_dark_suit_16k.wav"))
            .unwrap();
    assert_eq!(wav.sample_rate_hz, 16_000);
    let mut codec = AmrCodec::new(&CodecConfig::amr_wb()).unwrap();
    let mut file = b"#!AMR-WB\n".to_vec();
    let frames = wav.samples.len() / 320;
    for frame in wav.samples.chunks_exact(320) {
        let pcm: Vec<i16> = frame.iter().map(|&v| v as i16).collect();
        let coded = codec.encode_frame(&pcm).unwrap();
        assert_eq!(coded.kind, FrameKind::Speech);
        // The storage record: the frame type (the mode) and the quality bit, then the bits.
        file.push(coded.mode << 3 | 0x04);
        file.extend(&coded.data);
    }
    let dir = temp();
    let path = dir.path().join("memo.amr");
    std::fs::write(&path, &file).unwrap();
    let decoded = read_audio(&path).unwrap();
    assert_eq!(decoded.sample_rate_hz, 16_000);
    assert_eq!(decoded.samples.len(), frames * 320);
    let (lag, best) = best_alignment(&wav.samples, &decoded.samples, 200);
    assert!(best > 0.8, "correlation {best} at lag {lag}");
    // The codec's delay (look-ahead and filters): a few milliseconds, far under a phone's length.
    assert!(lag <= 160, "the decoded speech lags by {lag} samples");
}

#[test]
fn matroska_codecs_not_read_are_named_with_the_way_out() {
    // The Vorbis fixture with its codec ID changed to AC-3 (Dolby Digital, from DVDs).
    let dir = temp();
    let mut bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fsdd_7_jackson_0_8k_vorbis.mka"),
    )
    .unwrap();
    let at = bytes
        .windows(8)
        .position(|w| w == b"A_VORBIS")
        .expect("the codec ID");
    bytes[at..at + 8].copy_from_slice(b"A_AC3\0\0\0");
    let path = dir.path().join("ac3.mka");
    std::fs::write(&path, bytes).unwrap();
    let error = read_audio(&path).unwrap_err();
    assert!(
        matches!(error, Error::UnsupportedEncoding { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("A_AC3") && message.contains("ffmpeg -i"),
        "{message}"
    );
}

/// Two microphones of one talker (a voice-like signal; the second `delay` frames later at `gain`),
/// `over` times too hot for 16 bits: both cut flat at full scale, at different samples.
fn overloaded_pair(frames: usize, over: f32, delay: usize, gain: f32) -> Vec<Vec<i16>> {
    let tau = std::f32::consts::TAU;
    let voice: Vec<f32> = (0..frames)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            let envelope = 0.55 + 0.45 * (tau * 2.5 * t).sin();
            let f0 = 120.0;
            envelope
                * (1..=5)
                    .map(|h| (tau * f0 * h as f32 * t + h as f32).sin() / h as f32)
                    .sum::<f32>()
        })
        .collect();
    let peak = voice.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    let level = over * 32_767.0 / peak;
    [(0, 1.0), (delay, gain)]
        .iter()
        .map(|&(shift, g)| {
            (0..frames)
                .map(|i| {
                    let x = if i >= shift { voice[i - shift] } else { 0.0 };
                    (x * level * g).round().clamp(-32_768.0, 32_767.0) as i16
                })
                .collect()
        })
        .collect()
}

#[test]
fn microphones_clipped_separately_are_read_as_the_least_clipped_one() {
    // Averaged, two channels clipped at different samples have no flat tops left for the clipping
    // repair; every reader takes the less clipped channel instead (here the second, 3 dB quieter).
    // WAV read whole and from disk by blocks, and AIFF (symphonia's containers) short and long.
    let dir = temp();
    for frames in [40_000, 1_100_000] {
        let channels = overloaded_pair(frames, 2.0, 9, 0.7);
        let on_rail = |c: &[i16]| c.iter().filter(|&&v| v == 32_767 || v == -32_768).count();
        assert!(on_rail(&channels[0]) > on_rail(&channels[1]));
        assert!(on_rail(&channels[1]) > frames / 100);
        let expected: Vec<f32> = channels[1].iter().map(|&v| f32::from(v)).collect();

        let wav = dir.path().join(format!("pair{frames}.wav"));
        write_wav(
            &wav,
            spec(2, 16_000, 16, hound::SampleFormat::Int),
            frames,
            |w, i, c| w.write_sample(channels[c][i]).unwrap(),
        );
        assert_eq!(read_audio(&wav).unwrap().samples, expected, "{frames} WAV");
        let bytes = std::fs::read(&wav).unwrap();
        assert_eq!(
            read_audio_bytes(&bytes, &wav).unwrap().samples,
            expected,
            "{frames} WAV in memory"
        );

        let aiff = dir.path().join(format!("pair{frames}.aiff"));
        std::fs::write(&aiff, aiff_bytes(&channels, 16_000)).unwrap();
        let wave = read_audio(&aiff).unwrap();
        assert_eq!(&wave.samples[..frames], &expected[..], "{frames} AIFF");
    }
    // The same pair not overloaded: averaged as before.
    let channels = overloaded_pair(40_000, 0.5, 9, 0.7);
    let path = dir.path().join("quiet_pair.wav");
    write_wav(
        &path,
        spec(2, 16_000, 16, hound::SampleFormat::Int),
        40_000,
        |w, i, c| w.write_sample(channels[c][i]).unwrap(),
    );
    assert_eq!(read_audio(&path).unwrap().samples, expected_mono(&channels));
}

/// `--channel`: every reader takes the one channel asked for (WAV read whole and by blocks, SPHERE,
/// a container decoded packet by packet, standard input's bytes), and a channel the recording lacks
/// is an error that names it.
#[test]
fn one_channel_is_read_alone_when_asked() {
    use phonrec::audio::{read_audio_bytes_channel, read_audio_channel, ChannelChoice};
    let dir = temp();
    let left = test_signal(1000);
    let right: Vec<i16> = left.iter().map(|&v| -(v / 3) + 100).collect();
    let as_f32 = |x: &[i16]| x.iter().map(|&v| f32::from(v)).collect::<Vec<_>>();
    let path = dir.path().join("stereo.wav");
    write_wav(
        &path,
        spec(2, 16_000, 16, hound::SampleFormat::Int),
        left.len(),
        |w, i, c| w.write_sample([left[i], right[i]][c]).unwrap(),
    );
    let only = |c| ChannelChoice::Only(c);
    assert_eq!(
        read_audio_channel(&path, only(0)).unwrap().samples,
        as_f32(&left)
    );
    assert_eq!(
        read_audio_channel(&path, only(1)).unwrap().samples,
        as_f32(&right)
    );
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        read_audio_bytes_channel(&bytes, Path::new("-"), only(1))
            .unwrap()
            .samples,
        as_f32(&right)
    );
    let mixed = read_audio_channel(&path, ChannelChoice::Mixed).unwrap();
    assert_eq!(mixed, read_audio(&path).unwrap());
    assert_eq!(
        mixed.samples[1],
        (f32::from(left[1]) + f32::from(right[1])) / 2.0
    );
    let error = read_audio_channel(&path, only(2)).unwrap_err();
    assert!(
        matches!(
            error,
            Error::NoSuchChannel {
                channel: 2,
                channels: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("no channel 2"), "{error}");

    // SPHERE (NIST's stereo telephone corpora keep a side per channel).
    let sphere = sphere_bytes(&left, 8_000, false);
    let sph = dir.path().join("mono.sph");
    std::fs::write(&sph, &sphere).unwrap();
    assert_eq!(
        read_audio_channel(&sph, only(0)).unwrap().samples,
        as_f32(&left)
    );
    let error = read_audio_channel(&sph, only(1)).unwrap_err();
    assert!(
        matches!(error, Error::NoSuchChannel { channels: 1, .. }),
        "{error}"
    );

    // Over 4 MB: read by blocks from disk.
    let long = dir.path().join("long.wav");
    let frames = 1_100_001;
    let sample = |i: usize, c: usize| (((i * 7919 + c * 104_729) % 65_536) as i64 - 32_768) as i16;
    write_wav(
        &long,
        spec(2, 16_000, 16, hound::SampleFormat::Int),
        frames,
        |w, i, c| w.write_sample(sample(i, c)).unwrap(),
    );
    for c in 0..2 {
        let read = read_audio_channel(&long, only(c)).unwrap().samples;
        assert_eq!(read.len(), frames);
        assert!(read
            .iter()
            .enumerate()
            .all(|(i, &v)| v == f32::from(sample(i, c))));
    }
    assert!(matches!(
        read_audio_channel(&long, only(5)).unwrap_err(),
        Error::NoSuchChannel { channel: 5, .. }
    ));

    // A container decoded packet by packet: FSDD's digit on the left, a sine on the right.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let flac = data.join("fsdd_7_jackson_0_8k_left_sine_right.flac");
    let digit = read_audio(&data.join("fsdd_7_jackson_0_8k.flac")).unwrap();
    assert_eq!(read_audio_channel(&flac, only(0)).unwrap(), digit);
    let sine = read_audio_channel(&flac, only(1)).unwrap().samples;
    assert_eq!(sine.len(), digit.samples.len());
    assert!(sine.iter().any(|&v| v > 9_000.0) && sine.iter().all(|v| v.abs() < 10_000.0));
    assert!(matches!(
        read_audio_channel(&flac, only(2)).unwrap_err(),
        Error::NoSuchChannel {
            channel: 2,
            channels: 2,
            ..
        }
    ));
}

/// GSM 06.10, as telephone systems record it: WAV49 (WAV format tag 0x0031, 65-byte blocks) and
/// Asterisk's headerless `.gsm` (33-byte frames), decoded sample for sample as sox (libgsm)
/// decodes them: FSDD's digit, speech normalised to full scale (the decoder's saturation), and
/// 150 frames of random parameters (invalid pitch lags, extreme gains: its rare paths).
#[test]
fn gsm_610_decodes_bit_exact_with_libgsm() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for (coded, decoded) in [
        (
            "fsdd_7_jackson_0_8k_gsm.wav",
            "gsm_fsdd_7_jackson_0_8k_sox_decoded.wav",
        ),
        ("gsm_slt_loud.wav", "gsm_slt_loud_sox_decoded.wav"),
        ("gsm_random_frames.gsm", "gsm_random_frames_sox_decoded.wav"),
    ] {
        let ours = read_audio(&data.join(coded)).unwrap();
        let sox = read_audio(&data.join(decoded)).unwrap();
        assert_eq!(ours.sample_rate_hz, 8_000, "{coded}");
        // sox decodes the last block whole; the `fact` chunk says where the recording ends (the
        // FSDD clip's 3457 samples, not 11 blocks' 3520), and phonrec stops there.
        let expected = match coded {
            "fsdd_7_jackson_0_8k_gsm.wav" => 3457,
            _ => sox.samples.len(),
        };
        assert_eq!(ours.samples.len(), expected, "{coded}");
        let differing = ours
            .samples
            .iter()
            .zip(&sox.samples)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differing, 0,
            "{coded}: {differing} samples differ from sox's"
        );
    }
    // The same frames from standard input (told by their signatures, not a name), and a `.gsm`
    // cut mid-frame.
    let frames = std::fs::read(data.join("gsm_random_frames.gsm")).unwrap();
    let piped = read_audio_bytes(&frames, Path::new("-")).unwrap();
    assert_eq!(piped.samples.len(), 150 * 160);
    let dir = temp();
    let cut = dir.path().join("cut.gsm");
    std::fs::write(&cut, &frames[..frames.len() - 10]).unwrap();
    let error = read_audio(&cut).unwrap_err();
    assert!(
        matches!(error, Error::MalformedAudio { .. }) && error.to_string().contains("cut short"),
        "{error}"
    );
}
