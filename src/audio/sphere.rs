//! NIST SPHERE files as TIMIT ships them: a text header starting `NIST_1A`, its size on the second line
//! (usually 1024), `key -type value` fields up to `end_head`, then raw PCM samples.
//! Linear PCM and the telephone corpora's G.711 `ulaw`/`alaw` (Switchboard, CallHome) are read;
//! shorten-compressed SPHERE (`sample_coding pcm,embedded-shorten-...`) is refused with a pointer to
//! `sph2pipe`, which decompresses it.

use std::collections::HashMap;
use std::path::Path;

use super::g711::{alaw_to_linear, mulaw_to_linear};
use super::{to_mono, ChannelChoice, Waveform, MAX_CHANNELS};
use crate::error::{Error, Result};

/// Parsed SPHERE header fields that matter for reading samples.
#[derive(Debug)]
struct SphereHeader {
    header_bytes: usize,
    sample_rate_hz: u32,
    sample_count: Option<usize>,
    channels: usize,
    bytes_per_sample: usize,
    big_endian: bool,
    coding: Coding,
}

/// How SPHERE samples are coded.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Coding {
    /// Signed linear PCM of `bytes_per_sample` bytes.
    Linear,
    MuLaw,
    ALaw,
}

/// Read a NIST SPHERE file held in memory (`path` names it in errors) to mono int16-scale samples.
pub(crate) fn read_sphere(path: &Path, bytes: &[u8], channel: ChannelChoice) -> Result<Waveform> {
    let header = parse_header(path, bytes)?;
    channel.check(path, header.channels)?;
    let data = &bytes[header.header_bytes.min(bytes.len())..];
    // channels ≤ MAX_CHANNELS and bytes_per_sample ≤ 4 (checked in parse_header): no overflow.
    let frame_bytes = header.bytes_per_sample * header.channels;
    let available_frames = data.len() / frame_bytes;
    let num_frames = match header.sample_count {
        Some(count) if count > available_frames => {
            return Err(Error::MalformedAudio {
                path: path.to_path_buf(),
                reason: format!(
                "data cut short: the header declares {count} samples per channel, the file holds \
                     {available_frames}"
            ),
            })
        }
        Some(count) => count,
        None => available_frames,
    };
    let mut interleaved = Vec::with_capacity(num_frames * header.channels);
    let scale = 2f32.powi(16 - 8 * header.bytes_per_sample as i32);
    for chunk in data[..num_frames * frame_bytes].chunks_exact(header.bytes_per_sample) {
        interleaved.push(match header.coding {
            Coding::Linear => decode_int(chunk, header.big_endian) as f32 * scale,
            Coding::MuLaw => f32::from(mulaw_to_linear(chunk[0])),
            Coding::ALaw => f32::from(alaw_to_linear(chunk[0])),
        });
    }
    Ok(Waveform {
        samples: to_mono(interleaved, header.channels, channel),
        sample_rate_hz: header.sample_rate_hz,
    })
}

/// A signed integer of 1..=4 bytes.
fn decode_int(bytes: &[u8], big_endian: bool) -> i32 {
    let mut value: u32 = 0;
    if big_endian {
        for &b in bytes {
            value = (value << 8) | b as u32;
        }
    } else {
        for &b in bytes.iter().rev() {
            value = (value << 8) | b as u32;
        }
    }
    // Sign-extend from the sample width.
    let shift = 32 - 8 * bytes.len() as u32;
    ((value << shift) as i32) >> shift
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<SphereHeader> {
    let malformed = |reason: String| Error::MalformedAudio {
        path: path.to_path_buf(),
        reason: format!("SPHERE header: {reason}"),
    };
    // The header size is on the second line; look only at the first 64 bytes for it.
    let preamble = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]);
    let mut lines = preamble.lines();
    let _magic = lines.next();
    let header_bytes: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| malformed("the second line must give the header size".to_string()))?;
    if header_bytes > bytes.len() {
        return Err(malformed(format!(
            "it declares {header_bytes} header bytes but the file has {}",
            bytes.len()
        )));
    }
    let text = String::from_utf8_lossy(&bytes[..header_bytes]);
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut ended = false;
    for line in text.lines().skip(2) {
        let line = line.trim();
        if line == "end_head" {
            ended = true;
            break;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        if let (Some(key), Some(_type), Some(value)) = (parts.next(), parts.next(), parts.next()) {
            fields.insert(key.to_string(), value.trim().to_string());
        }
    }
    if !ended {
        return Err(malformed("no 'end_head' line".to_string()));
    }
    let int_field = |key: &str| -> Result<Option<usize>> {
        match fields.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| malformed(format!("field {key} = '{v}' is not an integer"))),
        }
    };
    let coding = if let Some(coding) = fields.get("sample_coding") {
        let coding = coding.to_ascii_lowercase();
        if coding.contains("shorten") {
            return Err(Error::UnsupportedEncoding {
                path: path.to_path_buf(),
                encoding: format!("shorten-compressed NIST SPHERE ({coding})"),
                hint: Some(
                    "decompress it first: `sph2pipe -f wav in.sph out.wav` (or `sph2pipe -f sph`)"
                        .to_string(),
                ),
            });
        }
        match coding.as_str() {
            "pcm" => Coding::Linear,
            "ulaw" | "mu-law" => Coding::MuLaw,
            "alaw" | "a-law" => Coding::ALaw,
            _ => {
                return Err(Error::UnsupportedEncoding {
                    path: path.to_path_buf(),
                    encoding: format!("NIST SPHERE sample_coding '{coding}'"),
                    hint: Some(
                        "linear PCM, ulaw and alaw SPHERE are read; convert with sph2pipe or sox"
                            .to_string(),
                    ),
                });
            }
        }
    } else {
        Coding::Linear
    };
    let sample_rate_hz =
        int_field("sample_rate")?.ok_or_else(|| malformed("no sample_rate field".to_string()))?;
    let channels = int_field("channel_count")?.unwrap_or(1);
    let bytes_per_sample =
        int_field("sample_n_bytes")?.unwrap_or(if coding == Coding::Linear { 2 } else { 1 });
    if coding != Coding::Linear && bytes_per_sample != 1 {
        return Err(malformed(format!(
            "sample_n_bytes {bytes_per_sample} with {coding:?} coding, which is 8-bit"
        )));
    }
    if channels == 0 {
        return Err(malformed("channel_count is 0".to_string()));
    }
    if channels > MAX_CHANNELS {
        return Err(malformed(format!(
            "channel_count {channels} is more than any recording has (at most {MAX_CHANNELS})"
        )));
    }
    if !(1..=4).contains(&bytes_per_sample) {
        return Err(Error::UnsupportedEncoding {
            path: path.to_path_buf(),
            encoding: format!("NIST SPHERE with {bytes_per_sample}-byte samples"),
            hint: None,
        });
    }
    let big_endian = match fields.get("sample_byte_format").map(String::as_str) {
        None | Some("01") | Some("1") => false,
        Some("10") => true,
        Some(other) => {
            return Err(Error::UnsupportedEncoding {
                path: path.to_path_buf(),
                encoding: format!("NIST SPHERE sample_byte_format '{other}'"),
                hint: Some("expected 01 (little-endian) or 10 (big-endian)".to_string()),
            })
        }
    };
    Ok(SphereHeader {
        header_bytes,
        sample_rate_hz: u32::try_from(sample_rate_hz)
            .map_err(|_| malformed(format!("sample_rate {sample_rate_hz} is too large")))?,
        sample_count: int_field("sample_count")?,
        channels,
        bytes_per_sample,
        big_endian,
        coding,
    })
}

/// Build a SPHERE file in memory (16-bit PCM), as TIMIT's `.WAV` files are laid out. Used by tests and
/// by fixtures that imitate TIMIT.
pub fn sphere_bytes(samples: &[i16], sample_rate_hz: u32, big_endian: bool) -> Vec<u8> {
    let mut header = format!(
        "NIST_1A\n   1024\ndatabase_id -s5 TIMIT\nsample_count -i {}\nsample_rate -i {}\n\
         channel_count -i 1\nsample_n_bytes -i 2\nsample_byte_format -s2 {}\nsample_coding -s3 pcm\n\
         sample_sig_bits -i 16\nend_head\n",
        samples.len(),
        sample_rate_hz,
        if big_endian { "10" } else { "01" }
    )
    .into_bytes();
    header.resize(1024, b' ');
    for &s in samples {
        if big_endian {
            header.extend_from_slice(&s.to_be_bytes());
        } else {
            header.extend_from_slice(&s.to_le_bytes());
        }
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_signed_integers_of_each_width() {
        assert_eq!(decode_int(&[0xff, 0x7f], false), 32767);
        assert_eq!(decode_int(&[0x80, 0x00], true), -32768);
        assert_eq!(decode_int(&[0xff], false), -1);
        assert_eq!(decode_int(&[0x00, 0x00, 0x80], false), -8_388_608);
    }

    #[test]
    fn ulaw_and_alaw_sphere_decode_as_g711() {
        let file = |coding: &str, data: &[u8]| {
            let text = format!(
                "NIST_1A\n   1024\nsample_rate -i 8000\nchannel_count -i 1\nsample_coding -s4 \
                 {coding}\nend_head\n"
            );
            let mut bytes = text.into_bytes();
            bytes.resize(1024, b' ');
            bytes.extend(data);
            read_sphere(Path::new("t.sph"), &bytes, ChannelChoice::Mixed)
        };
        let mu = file("ulaw", &[0x00, 0x80, 0xFF]).unwrap();
        assert_eq!(mu.samples, vec![-32124.0, 32124.0, 0.0]);
        let a = file("alaw", &[0xD5]).unwrap();
        assert_eq!(a.samples, vec![8.0]);
        let err = file("ulaw,embedded-shorten-v2.00", &[0]).unwrap_err();
        assert!(err.to_string().contains("sph2pipe"), "{err}");
    }
}
