//! Stage 1, audio input: a WAV, NIST SPHERE, Sun .au, FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF, MP4/M4A, raw AAC, WebM or AMR file -> mono `f32` samples at
//! int16 scale, at any rate,
//! then resampled to the rate a model expects.
//!
//! Kaldi reads samples as int16 values (range ±32768) and its defaults (dither 1.0, energy floor) assume
//! that scale, so every reader here produces samples at that scale whatever the file's encoding:
//! 8/24/32-bit integers are shifted to 16-bit range, floats are multiplied by 32768.
//! Several channels are averaged to one (the loudest is taken instead when they cancel out, the least
//! clipped when they carry one sound but were clipped separately).

mod amr;
mod au;
mod container;
mod dc_offset;
mod declick;
mod declip;
mod dereverb;
mod dropouts;
mod echo;
mod g711;
mod gsm;
mod levels;
mod lsar;
mod narrowband;
mod noise_floor;
mod opus;
mod resample;
mod silence_fill;
mod span;
mod spectral_holes;
mod sphere;
pub(crate) mod stft;
mod wav;
mod webm;

use std::io::Read;

use rayon::prelude::*;
use std::path::Path;

pub use container::quiet_decoder_panics;
pub use dc_offset::{remove_dc_offset, DcOffsetRemoval};
pub use declick::{remove_clicks, ClickRemoval};
pub use declip::{repair_clipping, repair_clipping_within, ClipRepair};
pub use dereverb::{
    dereverberate, dereverberate_reverberant_sections, is_reverberant, reverberation_db, Dereverb,
    MIN_MEASURED_S, REVERBERANT_BELOW_DB,
};
pub use dropouts::{conceal_dropouts, DropoutRepair};
pub use echo::{cancel_echoes, has_echo, strongest_echo, Echo, EchoMeasure};
pub use levels::{equalise_talker_levels, frame_levels_dbfs, speech_level_dbfs, LevelEqualisation};
pub use narrowband::{measure_upper_band, narrowband_rate_hz, UpperBand, NARROWBAND_RATE_HZ};
pub(crate) use noise_floor::SpeechSpectrum;
pub use noise_floor::{add_noise_floor, measured_band_top_hz, DEFAULT_FLOOR_BELOW_DB};
pub use resample::{resample, resample_owned, Resampler};
pub(crate) use silence_fill::power_and_mean;
pub use silence_fill::{
    fill_digital_silence, fill_quiet_gaps, floor_noise, SilenceFill, DIGITAL_SILENCE_LEVEL,
    MIN_DIGITAL_SILENCE_S,
};
pub use span::{read_audio_pieces, AudioPiece, AudioSpan, PieceReader, MAX_OVERSHOOT_S};
pub use spectral_holes::{
    deep_hole_share, fill_spectral_holes, SpectralHoles, MIN_DEEP_HOLE_SHARE,
};
pub use sphere::sphere_bytes;
pub use wav::WavStream;

use crate::error::{Error, Result};

/// Lowest sample rate phonrec reads.
pub const MIN_SAMPLE_RATE_HZ: u32 = 8_000;
/// Highest sample rate phonrec reads.
pub const MAX_SAMPLE_RATE_HZ: u32 = 192_000;

/// Most channels phonrec reads (WAV's own limit is 65535; real arrays have tens).
pub const MAX_CHANNELS: usize = 1024;

/// Highest sample magnitude read, relative to full scale (±1 in a float WAV): 80 dB of headroom,
/// far above any real recording, far below where the features' power spectrum overflows `f32`.
pub const MAX_LEVEL_OVER_FULL_SCALE: f32 = 1e4;

/// Full scale of int16 audio, the scale Kaldi's features expect (`kWaveSampleMax` in Kaldi).
pub const INT16_SCALE: f32 = 32_768.0;

/// A periodic Hann window of `n` samples (the analysis window of the silence fill's and the
/// dereverberation's STFTs).
fn hann(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / n as f32).cos())
        .collect()
}

/// Which of a recording's channels become the one signal phonrec hears.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChannelChoice {
    /// All channels mixed to one ([`mix_to_mono`]: their average, or one channel alone where the
    /// average would cancel the speech, bury it in another channel's hiss or mix clipped copies).
    #[default]
    Mixed,
    /// One channel alone, counted from 0 as Kaldi's `--channel` counts (0 is a stereo file's left):
    /// a telephone call recorded with a channel per side, features to compare with Kaldi's.
    Only(usize),
}

impl ChannelChoice {
    /// [`Error::NoSuchChannel`] when `self` asks for a channel a recording of `channels` channels
    /// does not have.
    pub(crate) fn check(self, path: &Path, channels: usize) -> Result<()> {
        match self {
            ChannelChoice::Only(channel) if channel >= channels => Err(Error::NoSuchChannel {
                path: path.to_path_buf(),
                channel,
                channels,
            }),
            _ => Ok(()),
        }
    }
}

/// Mono audio at int16 scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Waveform {
    /// Samples in int16 range (±32768), one channel.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate_hz: u32,
}

impl Waveform {
    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate_hz as f64
    }

    /// Refuse samples no recording has: NaN or infinite values (damaged float data), or a level
    /// beyond [`MAX_LEVEL_OVER_FULL_SCALE`] × full scale, where the power spectrum would overflow
    /// `f32` and the features become meaningless. The reason names the first bad sample.
    pub fn check_samples(&self) -> std::result::Result<(), String> {
        let limit = MAX_LEVEL_OVER_FULL_SCALE * INT16_SCALE;
        let at = |i: usize| i as f64 / f64::from(self.sample_rate_hz.max(1));
        // One pass for the common case, all samples fine (NaN fails `<=` too); the reason after.
        // A fold per block rather than `all`, whose early exit keeps the compiler from vectorising;
        // blocks on all cores (an hour of audio is 58 M samples).
        if self
            .samples
            .par_chunks(1 << 16)
            .all(|block| block.iter().fold(true, |fine, x| fine & (x.abs() <= limit)))
        {
            return Ok(());
        }
        if let Some(i) = self.samples.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "sample {i} (at {:.3} s) is {}: the float data is damaged; phonrec does not \
                 guess what it should have been",
                at(i),
                self.samples[i] / INT16_SCALE
            ));
        }
        if let Some(i) = self.samples.iter().position(|x| x.abs() > limit) {
            return Err(format!(
                "sample {i} (at {:.3} s) is {:e} times full scale (at most {MAX_LEVEL_OVER_FULL_SCALE:e} \
                 is read): float samples are expected in ±1; rescale the audio",
                at(i),
                self.samples[i] / INT16_SCALE
            ));
        }
        Ok(())
    }

    /// This audio at another sample rate (band-limited; unchanged if the rate already matches).
    pub fn resampled(self, target_rate_hz: u32) -> Result<Waveform> {
        if target_rate_hz == self.sample_rate_hz {
            return Ok(self);
        }
        let samples = resample_owned(self.samples, self.sample_rate_hz, target_rate_hz)?;
        Ok(Waveform {
            samples,
            sample_rate_hz: target_rate_hz,
        })
    }
}

/// Largest audio input read (a pipe or FIFO is read up to this and then refused): 8 GB is over 69
/// hours of 16 kHz 16-bit stereo.
pub const MAX_AUDIO_BYTES: u64 = 8 << 30;

/// Read a WAV (8–32-bit integer PCM, 32/64-bit float, µ-law, A-law), NIST SPHERE, Sun/NeXT .au, FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF or
/// MP4/M4A (AAC) file,
/// detected by its content
/// (not its extension), mixed down to mono at int16 scale. Regular files and pipes (`/dev/stdin`,
/// `<(sox ...)`) are read; folders and devices are refused with what they are.
pub fn read_audio(path: &Path) -> Result<Waveform> {
    read_audio_channel(path, ChannelChoice::Mixed)
}

/// [`read_audio`] taking `channel`: the channels mixed, or one of them alone.
pub fn read_audio_channel(path: &Path, channel: ChannelChoice) -> Result<Waveform> {
    let not_a_file = |what: &str| Error::NotAudio {
        path: path.to_path_buf(),
        reason: format!("it is {what}, not an audio file"),
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => match archive_entry(path) {
            Some((archive, offset)) => return read_archive_entry(path, &archive, offset, channel),
            None => return Err(Error::io(path, e)),
        },
    };
    if meta.is_dir() {
        return Err(not_a_file("a folder"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        if kind.is_char_device() || kind.is_block_device() {
            return Err(not_a_file("a device"));
        }
        if kind.is_socket() {
            return Err(not_a_file("a socket"));
        }
    }
    if meta.is_file() && meta.len() > MAX_AUDIO_BYTES {
        return Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!(
                "{} bytes is more than phonrec reads at once ({MAX_AUDIO_BYTES}); split it first",
                meta.len()
            ),
        });
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    if meta.is_file() && meta.len() >= DIRECT_READ_MIN_BYTES {
        if let Some(wave) = wav::read_wav_file_by_blocks(path, &file, meta.len(), channel)? {
            return checked(path, wave);
        }
        // A large FLAC, MP3, ...: decoded as it is read, not read whole first.
        let mut head = [0u8; 16];
        let filled = std::os::unix::fs::FileExt::read_at(&file, &mut head, 0)
            .map_err(|e| Error::io(path, e))?;
        if container::is_container(&head[..filled]) {
            return checked(path, container::read_container_file(path, channel)?);
        }
    }
    // A regular file's size is known: one buffer of that size, not a growing one copied at every
    // doubling (streams start empty; the size is at most MAX_AUDIO_BYTES, checked above).
    let expected = if meta.is_file() {
        meta.len() as usize + 1
    } else {
        0
    };
    let mut bytes = Vec::with_capacity(expected);
    file.take(MAX_AUDIO_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_AUDIO_BYTES {
        return Err(Error::MalformedAudio {
            path: path.to_path_buf(),
            reason: format!("the stream is longer than {MAX_AUDIO_BYTES} bytes; split it first"),
        });
    }
    read_audio_bytes_channel(&bytes, path, channel)
}

/// `path` as a Kaldi extended filename `ARCHIVE:OFFSET` (what `wav-copy scp:wav.scp
/// ark,scp:wav.ark,new.scp` lists): the archive and the byte offset of a WAV file in it. `None` when
/// `path` exists as it is (a file named `x:12` is that file), or its part before the last `:` does
/// not, or what follows is not a number.
pub fn archive_entry(path: &Path) -> Option<(std::path::PathBuf, u64)> {
    if path.exists() {
        return None;
    }
    let text = path.to_str()?;
    let (archive, offset) = text.rsplit_once(':')?;
    let offset = offset.parse::<u64>().ok()?;
    let archive = Path::new(archive);
    archive.is_file().then(|| (archive.to_path_buf(), offset))
}

/// The WAV file at `offset` in a Kaldi archive (`name` is the extended filename it was asked by):
/// its RIFF chunk, read as a WAV file is (Kaldi writes wave data in archives without the `\0B`
/// binary marker other objects carry; one is skipped if present).
fn read_archive_entry(
    name: &Path,
    archive: &Path,
    offset: u64,
    channel: ChannelChoice,
) -> Result<Waveform> {
    use std::io::{Seek, SeekFrom};
    let malformed = |reason: String| Error::MalformedAudio {
        path: name.to_path_buf(),
        reason,
    };
    let mut file = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io(archive, e))?;
    let mut head = [0u8; 10];
    let filled = file.read(&mut head).map_err(|e| Error::io(archive, e))?;
    let start = if head[..filled].starts_with(b"\0B") {
        2
    } else {
        0
    };
    let riff = &head[start..filled];
    if riff.len() < 8 || !(riff.starts_with(b"RIFF") || riff.starts_with(b"RIFX")) {
        return Err(malformed(format!(
            "no WAV data at byte {offset} of the archive {} (Kaldi extended filename \
             ARCHIVE:OFFSET; was the archive rewritten after its scp?)",
            archive.display()
        )));
    }
    let size = if riff.starts_with(b"RIFX") {
        u32::from_be_bytes([riff[4], riff[5], riff[6], riff[7]])
    } else {
        u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]])
    };
    let total = 8 + u64::from(size);
    if total > MAX_AUDIO_BYTES {
        return Err(malformed(format!(
            "its RIFF chunk declares {total} bytes, more than phonrec reads at once"
        )));
    }
    file.seek(SeekFrom::Start(offset + start as u64))
        .map_err(|e| Error::io(archive, e))?;
    let mut bytes = Vec::with_capacity(total as usize);
    file.take(total)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(archive, e))?;
    read_audio_bytes_channel(&bytes, name, channel)
}

/// True when `bytes` start like a file phonrec reads: WAV (RIFF/RIFX/RF64), NIST SPHERE, Sun .au, FLAC, Ogg, MP3,
/// AIFF, CAF, MP4, WebM or AMR.
pub fn looks_like_audio(bytes: &[u8]) -> bool {
    wav::is_wav(bytes)
        || bytes.starts_with(b"NIST_1A")
        || au::is_au(bytes)
        || webm::is_webm(bytes)
        || amr::is_amr(bytes)
        || container::is_container(bytes)
}

/// Read an audio file held in memory, as [`read_audio`] reads files; `name` stands for
/// it in error messages (e.g. `-` for standard input).
pub fn read_audio_bytes(bytes: &[u8], name: &Path) -> Result<Waveform> {
    read_audio_bytes_channel(bytes, name, ChannelChoice::Mixed)
}

/// [`read_audio_bytes`] taking `channel`: the channels mixed, or one of them alone.
pub fn read_audio_bytes_channel(
    bytes: &[u8],
    name: &Path,
    channel: ChannelChoice,
) -> Result<Waveform> {
    let path = name;
    let filled = bytes.len().min(8);
    let magic = &bytes[..filled];
    let wave = if magic.starts_with(b"NIST_1A") {
        sphere::read_sphere(path, bytes, channel)?
    } else if wav::is_wav(magic) {
        wav::read_wav(path, bytes, channel)?
    } else if au::is_au(magic) {
        au::read_au(path, bytes, channel)?
    } else if webm::is_webm(magic) {
        webm::read_webm(path, bytes, channel)?
    } else if gsm::is_gsm(bytes, path) {
        let wave = gsm::read_gsm(path, bytes)?;
        channel.check(path, 1)?;
        wave
    } else if amr::is_amr(magic) {
        let wave = amr::read_amr(path, bytes)?;
        // The AMR files phonrec reads are mono (`#!AMR\n`, `#!AMR-WB\n`).
        channel.check(path, 1)?;
        wave
    } else if container::is_container(bytes) {
        container::read_container(path, bytes, channel)?
    } else if filled == 0 {
        return Err(Error::NotAudio {
            path: path.to_path_buf(),
            reason: "the file is empty".to_string(),
        });
    } else if let Some((what, hint)) = recognised_but_unread(bytes) {
        return Err(Error::NotAudio {
            path: path.to_path_buf(),
            reason: format!("it is {what}; {hint}"),
        });
    } else {
        return Err(Error::NotAudio {
            path: path.to_path_buf(),
            reason: format!(
                "it starts with {:?}, expected a WAV, SPHERE, Sun .au, FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF, MP4/M4A, AAC, WebM or AMR file",
                String::from_utf8_lossy(&magic[..filled.min(4)])
            ),
        });
    };
    checked(path, wave)
}

/// Kinds of file users hand over that phonrec does not read, told by their first bytes: what it
/// is, and what to do. Better than "not an audio file" when it is audio, and names the mistake when
/// it is not (a download that saved an error page, an archive).
fn recognised_but_unread(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    const CONVERT: &str = "convert it with e.g. `ffmpeg -i IN out.wav`";
    let known: [(&[u8], &str, &str); 8] = [
        (
            &[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11],
            "Windows Media (ASF/WMA)",
            CONVERT,
        ),
        (b"riff", "Sony Wave64", CONVERT),
        (b"FORM", "an IFF file other than AIFF", CONVERT),
        (
            b"MThd",
            "a MIDI file (notes, not a recording)",
            "render it to audio first",
        ),
        (b"PK\x03\x04", "a ZIP archive", "unpack it first"),
        (
            &[0x1F, 0x8B],
            "gzip-compressed",
            "decompress it first (`gunzip`)",
        ),
        (
            b"<!DOCTYPE",
            "an HTML page (a download that saved an error page?)",
            "download the audio again",
        ),
        (
            b"<html",
            "an HTML page (a download that saved an error page?)",
            "download the audio again",
        ),
    ];
    known
        .iter()
        .find(|(magic, _, _)| bytes.starts_with(magic))
        .map(|&(_, what, hint)| (what, hint))
}

/// WAV files at least this large are read by blocks in parallel.
const DIRECT_READ_MIN_BYTES: u64 = 4 << 20;

/// `wave` as read from `path`, refused if its rate, length or samples are not what phonrec reads.
fn checked(path: &Path, wave: Waveform) -> Result<Waveform> {
    check_rate(path, wave.sample_rate_hz)?;
    if wave.samples.is_empty() {
        return Err(Error::EmptyAudio {
            path: path.to_path_buf(),
        });
    }
    wave.check_samples()
        .map_err(|reason| Error::MalformedAudio {
            path: path.to_path_buf(),
            reason,
        })?;
    Ok(wave)
}

fn check_rate(path: &Path, sample_rate_hz: u32) -> Result<()> {
    if !(MIN_SAMPLE_RATE_HZ..=MAX_SAMPLE_RATE_HZ).contains(&sample_rate_hz) {
        return Err(Error::SampleRate {
            path: path.to_path_buf(),
            sample_rate_hz,
            min_hz: MIN_SAMPLE_RATE_HZ,
            max_hz: MAX_SAMPLE_RATE_HZ,
        });
    }
    Ok(())
}

/// How far (dB) the channels' average may fall below their mean power before the channels count as
/// cancelling each other: a balanced microphone wired with one leg reversed, or a stereo file with
/// one channel inverted, averages to near silence. Channels of one source that merely differ
/// (stereo music, two microphones, one channel silent: at most −6 dB) stay far above this.
const CANCELLATION_DB: f64 = 20.0;

/// Average interleaved channels into one; when they cancel (the average is more than 20 dB below
/// the channels' mean power), take the loudest channel instead, so that out-of-phase channels do not
/// turn speech into silence; when they carry one sound but were clipped separately, take the least
/// clipped channel (each channel tested as the clipping repair tests it, and their agreement
/// checked: a microphone per talker keeps the average).
pub fn mix_to_mono(interleaved: Vec<f32>, channels: usize) -> Vec<f32> {
    if channels <= 1 {
        // Mono stays where it is: a copy of an hour's samples cost `features` a tenth of its time.
        return interleaved;
    }
    let mut mixdown = Mixdown::new(channels);
    let mut mono = vec![0.0; interleaved.len() / channels];
    mixdown.mix(&interleaved, &mut mono);
    if let Some(alone) = mixdown.channel_alone() {
        take_channel(&interleaved, channels, alone, &mut mono);
        return mono;
    }
    let picked = least_clipped_channel(&mixdown, |channel, samples| {
        samples.resize(interleaved.len() / channels, 0.0);
        take_channel(&interleaved, channels, channel, samples);
        Ok::<(), std::convert::Infallible>(())
    });
    match picked {
        Ok(Some(samples)) => samples,
        _ => mono,
    }
}

/// `interleaved` frames of `channels` channels as mono: [`mix_to_mono`], or the one channel chosen
/// (checked against `channels` by the caller).
pub(crate) fn to_mono(interleaved: Vec<f32>, channels: usize, choice: ChannelChoice) -> Vec<f32> {
    match choice {
        ChannelChoice::Only(_) if channels <= 1 => interleaved,
        ChannelChoice::Only(channel) => {
            let mut mono = vec![0.0; interleaved.len() / channels];
            take_channel(&interleaved, channels, channel, &mut mono);
            mono
        }
        ChannelChoice::Mixed => mix_to_mono(interleaved, channels),
    }
}

/// Most channels [`least_clipped_channel`] examines one by one (each is decoded again alone);
/// recordings with more keep their average.
const MAX_CHANNELS_EXAMINED: usize = 8;

/// The least clipped channel, when [`Mixdown::may_be_clipped_separately`] says the channels may
/// have been clipped at different samples and they carry one sound ([`one_sound`]): each channel
/// is decoded alone (`decode_channel(c, samples)` fills `samples`) and its clipped samples counted
/// as the clipping repair finds them. `None` when no channel is clipped or the channels hold
/// different sounds (the average stands). Channels clipped at different samples average to peaks
/// that are no longer flat: the repair cannot find them, and the average mixes the cut waveform
/// into the whole one; a channel alone keeps its flat tops for the repair, and the least clipped
/// one lost least. (Channels with different sounds, an interview with a microphone per talker,
/// keep their average: taking one would drop a talker.)
pub(crate) fn least_clipped_channel<E>(
    mixdown: &Mixdown,
    mut decode_channel: impl FnMut(usize, &mut Vec<f32>) -> std::result::Result<(), E>,
) -> std::result::Result<Option<Vec<f32>>, E> {
    if mixdown.channels > MAX_CHANNELS_EXAMINED || !mixdown.may_be_clipped_separately() {
        return Ok(None);
    }
    // One channel held at a time (beside the caller's average), and stretches of the first for the
    // comparison: an hour of 44.1 kHz audio is 635 MB a channel.
    let mut samples = Vec::new();
    let mut reference: Vec<(usize, Vec<f32>)> = Vec::new();
    let mut clipped = Vec::with_capacity(mixdown.channels);
    for channel in 0..mixdown.channels {
        samples.clear();
        decode_channel(channel, &mut samples)?;
        if channel == 0 {
            reference = compared_stretches(samples.len())
                .map(|start| (start, samples[start..start + COMPARED_STRETCH].to_vec()))
                .collect();
        } else if !one_sound(&reference, &samples) {
            return Ok(None);
        }
        clipped.push(declip::clipped_samples(&samples));
    }
    let Some(least) = (0..clipped.len()).min_by_key(|&c| clipped[c]) else {
        return Ok(None);
    };
    if clipped.iter().all(|&count| count == 0) {
        return Ok(None);
    }
    if least != mixdown.channels - 1 {
        samples.clear();
        decode_channel(least, &mut samples)?;
    }
    Ok(Some(samples))
}

/// Lags (samples, each way) at which [`one_sound`] looks for two channels' agreement: microphones
/// up to 1 m apart at 44.1 kHz (2.9 ms), more at lower rates.
const MAX_CHANNEL_LAG: usize = 128;

/// Stretches of [`one_sound`]'s comparison, samples each, spread over the recording.
const COMPARED_STRETCHES: usize = 16;
const COMPARED_STRETCH: usize = 4096;

/// Two channels agree at least this well (normalised cross-correlation at their best lag) to carry
/// one sound: two microphones of one talker, where the average of the two at zero lag can be as
/// low as for unrelated channels (0.7 ms apart at 44.1 kHz, speech averages 3 dB below the
/// channels' mean power).
const ONE_SOUND_CORRELATION: f64 = 0.5;

/// Where [`one_sound`]'s stretches start in channels of `len` samples: up to
/// [`COMPARED_STRETCHES`] of [`COMPARED_STRETCH`] samples, evenly spaced, each with
/// [`MAX_CHANNEL_LAG`] samples to spare on both sides (none in a recording too short for one).
fn compared_stretches(len: usize) -> impl Iterator<Item = usize> {
    let usable = len.saturating_sub(2 * MAX_CHANNEL_LAG + COMPARED_STRETCH);
    let count = if len < 2 * MAX_CHANNEL_LAG + COMPARED_STRETCH {
        0
    } else {
        COMPARED_STRETCHES.min(usable / COMPARED_STRETCH + 1)
    };
    let step = if count > 1 { usable / (count - 1) } else { 0 };
    (0..count).map(move |k| MAX_CHANNEL_LAG + k * step)
}

/// Whether channel `b` carries the sound of the channel whose stretches (start, samples) are
/// `reference`: their normalised cross-correlation at the best lag within [`MAX_CHANNEL_LAG`],
/// summed over the stretches (cheap on an hour's channels). `false` without stretches (a
/// recording shorter than one) or energy.
fn one_sound(reference: &[(usize, Vec<f32>)], b: &[f32]) -> bool {
    let mut products = vec![0.0f64; 2 * MAX_CHANNEL_LAG + 1];
    let (mut energy_a, mut energy_b) = (0.0f64, 0.0f64);
    let energy = |x: &[f32]| x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
    for (start, x) in reference {
        let Some(around) = b.get(start - MAX_CHANNEL_LAG..start + x.len() + MAX_CHANNEL_LAG) else {
            return false;
        };
        energy_a += energy(x);
        energy_b += energy(&around[MAX_CHANNEL_LAG..MAX_CHANNEL_LAG + x.len()]);
        for (lag, product) in products.iter_mut().enumerate() {
            let y = &around[lag..lag + x.len()];
            *product += f64::from(x.iter().zip(y).map(|(&u, &v)| u * v).sum::<f32>());
        }
    }
    if energy_a <= 0.0 || energy_b <= 0.0 {
        return false;
    }
    let best = products.iter().fold(0.0f64, |m, &p| m.max(p.abs()));
    best / (energy_a * energy_b).sqrt() >= ONE_SOUND_CORRELATION
}

/// A channel's largest magnitude so far and how many samples lie within the clipping detector's
/// tolerance of it (`declip`'s rail test, kept while decoding, both sides together): when the
/// extreme grows past the tolerance the count starts again, so it never misses a sample on the
/// final extreme and over-counts at most the samples just below it.
#[derive(Clone, Copy, Debug, Default)]
struct Extreme {
    /// The largest magnitude so far.
    value: f32,
    /// The lowest magnitude within the tolerance of `value`.
    floor: f32,
    /// Samples at `floor` or above.
    count: usize,
}

impl Extreme {
    #[inline]
    fn see(&mut self, magnitude: f32) {
        // Nearly every sample is below the floor: one predictable comparison.
        if magnitude < self.floor {
            return;
        }
        if magnitude > self.value {
            let floor = magnitude * (1.0 - declip::RAIL_TOLERANCE);
            if floor > self.value {
                self.count = 0;
            }
            self.value = magnitude;
            self.floor = floor;
        }
        self.count += 1;
    }

    /// The two blocks' extremes together (an over-count, like `see`'s).
    fn merged(self, other: Extreme) -> Extreme {
        let value = self.value.max(other.value);
        let floor = value * (1.0 - declip::RAIL_TOLERANCE);
        let count = [self, other]
            .iter()
            .filter(|e| e.value >= floor)
            .map(|e| e.count)
            .sum();
        Extreme {
            value,
            floor,
            count,
        }
    }
}

/// Channels averaged into one block by block as a file is decoded, so that a long multichannel
/// recording is never held with all its channels (an hour of 44.1 kHz stereo is 1.3 GB as `f32`),
/// with what tells at the end whether one channel should be taken instead of the average (the
/// reader then decodes it alone): the channels' and the average's energies, for
/// [`cancelling_channel`](Self::cancelling_channel); each channel's extremes and whether the
/// channels differ at all, for [`least_clipped_channel`].
#[derive(Clone, Debug)]
pub(crate) struct Mixdown {
    channels: usize,
    channel_energy: Vec<f64>,
    mono_energy: f64,
    frames: usize,
    /// Each channel's extreme magnitude.
    extremes: Vec<Extreme>,
    /// Whether any frame's channels differ (dual mono does not).
    channels_differ: bool,
    /// Each channel's levels over blocks of [`LEVEL_BLOCK_FRAMES`] frames, in 1 dB bins, for
    /// [`noise_floor_beside_speech`](Self::noise_floor_beside_speech).
    levels: Vec<[u32; LEVEL_BINS]>,
    /// Each channel's energy in the block being summed, and the frames in it.
    block_energy: Vec<f64>,
    block_frames: usize,
}

/// Frames per block of a channel's level histogram (10-64 ms at 8-48 kHz).
const LEVEL_BLOCK_FRAMES: usize = 512;
/// Level bins: 1 dB each from −120 dBFS (and below: digital silence) to 0 dBFS (and above).
const LEVEL_BINS: usize = 121;
/// A channel whose block levels stay within this range (from its 10th to its 99.5th percentile)
/// holds a steady sound: hiss, hum, a preamplifier with nothing plugged in. Speech, with its pauses
/// and syllables, spreads over 20-40 dB.
const STEADY_RANGE_DB: usize = 10;
/// ... and is left out of the mix when the loud blocks of a channel that is not steady stand this
/// far above its own: it adds its noise to the speech and nothing else.
const FLOOR_BELOW_SPEECH_DB: usize = 10;
/// Blocks needed before the levels are judged (a second or so).
const MIN_LEVEL_BLOCKS: u32 = 20;

impl Mixdown {
    pub(crate) fn new(channels: usize) -> Self {
        Mixdown {
            channels,
            channel_energy: vec![0.0; channels],
            mono_energy: 0.0,
            frames: 0,
            extremes: vec![Extreme::default(); channels],
            channels_differ: false,
            levels: vec![[0; LEVEL_BINS]; channels],
            block_energy: vec![0.0; channels],
            block_frames: 0,
        }
    }

    /// Average the whole frames of `interleaved` into `mono`, one sample per frame.
    pub(crate) fn mix(&mut self, interleaved: &[f32], mono: &mut [f32]) {
        debug_assert_eq!(interleaved.len(), mono.len() * self.channels);
        let scale = 1.0 / self.channels as f32;
        let mut differ = false;
        for (frame, out) in interleaved.chunks_exact(self.channels).zip(mono.iter_mut()) {
            for (((energy, block), extreme), &x) in self
                .channel_energy
                .iter_mut()
                .zip(self.block_energy.iter_mut())
                .zip(self.extremes.iter_mut())
                .zip(frame)
            {
                let power = f64::from(x) * f64::from(x);
                *energy += power;
                *block += power;
                extreme.see(x.abs());
                differ |= x != frame[0];
            }
            let mean = frame.iter().sum::<f32>() * scale;
            self.mono_energy += f64::from(mean) * f64::from(mean);
            *out = mean;
            self.block_frames += 1;
            if self.block_frames == LEVEL_BLOCK_FRAMES {
                self.end_level_block();
            }
        }
        self.channels_differ |= differ;
        self.frames += mono.len();
    }

    /// Put each channel's level over the block just summed into its histogram.
    fn end_level_block(&mut self) {
        let full_scale = f64::from(INT16_SCALE) * f64::from(INT16_SCALE);
        for (histogram, energy) in self.levels.iter_mut().zip(self.block_energy.iter_mut()) {
            let mean_square = *energy / LEVEL_BLOCK_FRAMES as f64 / full_scale;
            let db = 10.0 * mean_square.max(1e-13).log10();
            let bin = (db + (LEVEL_BINS - 1) as f64).clamp(0.0, (LEVEL_BINS - 1) as f64);
            histogram[bin as usize] += 1;
            *energy = 0.0;
        }
        self.block_frames = 0;
    }

    /// A channel's level (dBFS bin) at quantile `q` of its blocks.
    fn level_quantile(histogram: &[u32; LEVEL_BINS], q: f64) -> usize {
        let total: u32 = histogram.iter().sum();
        let target = (f64::from(total) * q).ceil().max(1.0) as u32;
        let mut seen = 0;
        for (bin, &count) in histogram.iter().enumerate() {
            seen += count;
            if seen >= target {
                return bin;
            }
        }
        LEVEL_BINS - 1
    }

    /// The one channel to take alone when every other channel holds only a steady noise floor
    /// (or digital silence) well below it: a microphone on one input of a stereo interface whose
    /// other input hisses, a 5.1 file with the voice in the centre alone. Averaging would add the
    /// hiss to the speech (real recordings with a −35 dBFS floor on the other channel: PER 0.17 →
    /// 0.24) and gain nothing. `None` when two or more channels carry sound that is not steady (a
    /// microphone per talker, stereo music) or when there are too few blocks to tell.
    pub(crate) fn noise_floor_beside_speech(&self) -> Option<usize> {
        if self.levels[0].iter().sum::<u32>() < MIN_LEVEL_BLOCKS {
            return None;
        }
        // (10th percentile, 99.5th percentile) of each channel's block levels.
        let spans: Vec<(usize, usize)> = self
            .levels
            .iter()
            .map(|h| {
                (
                    Self::level_quantile(h, 0.10),
                    Self::level_quantile(h, 0.995),
                )
            })
            .collect();
        let moving = |&(low, high): &(usize, usize)| high - low >= STEADY_RANGE_DB;
        let mut loud = (0..self.channels).filter(|&c| moving(&spans[c]));
        let (speech, None) = (loud.next()?, loud.next()) else {
            return None;
        };
        let speech_peak = spans[speech].1;
        let all_below = (0..self.channels)
            .filter(|&c| c != speech)
            .all(|c| spans[c].1 + FLOOR_BELOW_SPEECH_DB <= speech_peak);
        all_below.then_some(speech)
    }

    /// The channel to take instead of the average: [`cancelling_channel`](Self::cancelling_channel),
    /// else [`noise_floor_beside_speech`](Self::noise_floor_beside_speech).
    pub(crate) fn channel_alone(&self) -> Option<usize> {
        self.cancelling_channel()
            .or_else(|| self.noise_floor_beside_speech())
    }

    /// [`mix`](Self::mix) appending to `mono`.
    pub(crate) fn mix_extend(&mut self, interleaved: &[f32], mono: &mut Vec<f32>) {
        let start = mono.len();
        mono.resize(start + interleaved.len() / self.channels, 0.0);
        self.mix(interleaved, &mut mono[start..]);
    }

    /// The energies and extremes of `self`'s blocks and `other`'s together.
    pub(crate) fn merged(mut self, other: &Mixdown) -> Self {
        for (a, b) in self.channel_energy.iter_mut().zip(&other.channel_energy) {
            *a += b;
        }
        for (a, b) in self.extremes.iter_mut().zip(&other.extremes) {
            *a = a.merged(*b);
        }
        self.mono_energy += other.mono_energy;
        self.frames += other.frames;
        self.channels_differ |= other.channels_differ;
        // (The partial blocks at the two ends are left out: a few ms of a histogram.)
        for (a, b) in self.levels.iter_mut().zip(&other.levels) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self
    }

    /// `None` when the average stands; the loudest channel when the channels cancel in it.
    pub(crate) fn cancelling_channel(&self) -> Option<usize> {
        let mean_energy = self.mean_channel_energy();
        // Below 1 LSB RMS there is nothing to cancel (digital silence, dither).
        let audible = mean_energy > self.frames as f64;
        if !audible || self.mono_energy >= mean_energy * 10f64.powf(-CANCELLATION_DB / 10.0) {
            return None;
        }
        (0..self.channels)
            .max_by(|&a, &b| self.channel_energy[a].total_cmp(&self.channel_energy[b]))
    }

    /// Whether the channels differ (dual mono does not) and some channel's samples pile up on its
    /// extreme the way clipping piles them (a count only: [`least_clipped_channel`] then applies
    /// the clipping repair's own test, and checks that the channels carry one sound).
    pub(crate) fn may_be_clipped_separately(&self) -> bool {
        if !self.channels_differ || self.mean_channel_energy() <= self.frames as f64 {
            return false;
        }
        let minimum = declip::min_clipped_samples(self.frames);
        self.extremes.iter().any(|extreme| extreme.count >= minimum)
    }

    fn mean_channel_energy(&self) -> f64 {
        self.channel_energy.iter().sum::<f64>() / self.channels as f64
    }
}

/// Mono from a decoder that hands over blocks of interleaved frames (`decode(sink)` calls
/// `sink(block, channels)` once per packet), as the streamed readers (symphonia's containers,
/// WebM) need: channels averaged block by block ([`Mixdown`]), and when they cancel in the
/// average, the stream decoded a second time for its loudest channel alone (rare: an inverted
/// channel; decoding twice costs less than keeping every channel); when they may have been
/// clipped separately, once more per channel ([`least_clipped_channel`]). With `choice` one channel,
/// that channel alone (a stream without it is `path`'s [`Error::NoSuchChannel`]). Returns what
/// `decode` returned on its first pass, beside the samples.
pub(crate) fn mono_from_blocks<T>(
    path: &Path,
    choice: ChannelChoice,
    mut decode: impl FnMut(&mut dyn FnMut(&[f32], usize)) -> crate::error::Result<T>,
) -> crate::error::Result<(Vec<f32>, T)> {
    let mut mono = Vec::new();
    if let ChannelChoice::Only(channel) = choice {
        // The fewest channels a block had (a stream's blocks agree; checked after decoding, the
        // sink cannot fail).
        let mut fewest = usize::MAX;
        let first = decode(&mut |interleaved, channels| {
            fewest = fewest.min(channels);
            if channel < channels {
                let start = mono.len();
                mono.resize(start + interleaved.len() / channels, 0.0);
                take_channel(interleaved, channels, channel, &mut mono[start..]);
            }
        })?;
        if fewest != usize::MAX {
            choice.check(path, fewest)?;
        }
        return Ok((mono, first));
    }
    let mut mixdown: Option<Mixdown> = None;
    let first = decode(&mut |interleaved, channels| {
        if channels == 1 {
            mono.extend_from_slice(interleaved);
        } else {
            mixdown
                .get_or_insert_with(|| Mixdown::new(channels))
                .mix_extend(interleaved, &mut mono);
        }
    })?;
    let Some(mixdown) = mixdown else {
        return Ok((mono, first));
    };
    let mut decode_channel = |channel: usize, samples: &mut Vec<f32>| {
        samples.clear();
        decode(&mut |interleaved, channels| {
            let start = samples.len();
            samples.resize(start + interleaved.len() / channels, 0.0);
            take_channel(interleaved, channels, channel, &mut samples[start..]);
        })
        .map(|_| ())
    };
    if let Some(alone) = mixdown.channel_alone() {
        decode_channel(alone, &mut mono)?;
    } else if let Some(samples) = least_clipped_channel(&mixdown, decode_channel)? {
        mono = samples;
    }
    Ok((mono, first))
}

/// Copy channel `channel` of `interleaved` frames into `mono`.
pub(crate) fn take_channel(interleaved: &[f32], channels: usize, channel: usize, mono: &mut [f32]) {
    for (frame, out) in interleaved.chunks_exact(channels).zip(mono.iter_mut()) {
        *out = frame[channel];
    }
}

/// Encode mono int16-scale samples as a 16-bit PCM WAV (values are rounded and clipped to int16).
pub fn wav_i16_bytes(wave: &Waveform) -> std::io::Result<Vec<u8>> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: wave.sample_rate_hz,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let to_io = |e: hound::Error| match e {
        hound::Error::IoError(io) => io,
        other => std::io::Error::other(other.to_string()),
    };
    let mut buffer = std::io::Cursor::new(Vec::with_capacity(44 + 2 * wave.samples.len()));
    let mut writer = hound::WavWriter::new(&mut buffer, spec).map_err(to_io)?;
    for &sample in &wave.samples {
        // Samples are at int16 scale already; clip what a resampler overshot.
        let value = sample.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16;
        writer.write_sample(value).map_err(to_io)?;
    }
    writer.finalize().map_err(to_io)?;
    Ok(buffer.into_inner())
}

/// Write mono int16-scale samples as a 16-bit PCM WAV file (see [`wav_i16_bytes`]).
pub fn write_wav_i16(path: &Path, wave: &Waveform) -> Result<()> {
    let bytes = wav_i16_bytes(wave).map_err(|e| Error::io(path, e))?;
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::mix_to_mono;

    fn tone(len: usize) -> Vec<f32> {
        (0..len).map(|i| 3000.0 * (i as f32 * 0.05).sin()).collect()
    }

    /// Speech-like at 16 kHz: 0.2 s bursts of a tone with 0.2 s pauses, `phase` bursts in.
    fn bursts(len: usize, phase: usize) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let on = (i / 3200 + phase).is_multiple_of(2);
                if on {
                    3000.0 * (i as f32 * 0.05).sin()
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Steady noise at about `rms` (int16 units), reproducible.
    fn hiss(len: usize, rms: f32) -> Vec<f32> {
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32 - 0.5) * rms * 12f32.sqrt()
            })
            .collect()
    }

    #[test]
    fn a_channel_of_steady_noise_beside_speech_is_left_out() {
        let len = 48_000;
        let speech = bursts(len, 0);
        // The other input of a stereo interface hissing 25 dB below the speech: speech alone.
        let stereo = interleave(&[hiss(len, 120.0), speech.clone()]);
        assert_eq!(mix_to_mono(stereo, 2), speech);
        // Digital silence on the other channels of 5.1, the voice in the centre: the centre.
        let silent = vec![0.0; len];
        let mut surround = vec![silent.clone(); 6];
        surround[2] = speech.clone();
        assert_eq!(mix_to_mono(interleave(&surround), 6), speech);
        // A talker per channel: both are heard, the average stands.
        let other = bursts(len, 1);
        let two = mix_to_mono(interleave(&[speech.clone(), other.clone()]), 2);
        assert_eq!(two[100], (speech[100] + other[100]) / 2.0);
        assert_eq!(two[3300], (speech[3300] + other[3300]) / 2.0);
        // Noise as loud as the speech is not a floor beside it: the average stands.
        let loud = hiss(len, 1500.0);
        let mixed = mix_to_mono(interleave(&[loud.clone(), speech.clone()]), 2);
        assert_eq!(mixed[100], (loud[100] + speech[100]) / 2.0);
    }

    fn interleave(channels: &[Vec<f32>]) -> Vec<f32> {
        (0..channels[0].len())
            .flat_map(|i| channels.iter().map(move |c| c[i]))
            .collect()
    }

    #[test]
    fn channels_are_averaged_unless_they_cancel() {
        let a = tone(1000);
        let quiet: Vec<f32> = a.iter().map(|x| 0.5 * x).collect();
        let averaged = mix_to_mono(interleave(&[a.clone(), quiet.clone()]), 2);
        assert!(averaged
            .iter()
            .zip(&a)
            .all(|(m, x)| (m - 0.75 * x).abs() < 1e-3));
        // One channel silent: still the average (−6 dB), not a channel pick.
        let half = mix_to_mono(interleave(&[a.clone(), vec![0.0; 1000]]), 2);
        assert!(half.iter().zip(&a).all(|(m, x)| (m - 0.5 * x).abs() < 1e-3));
        // The second channel inverted (a reversed microphone leg): the average would be silence.
        let inverted: Vec<f32> = quiet.iter().map(|x| -x * 2.0).collect();
        let slightly_louder: Vec<f32> = a.iter().map(|x| 1.01 * x).collect();
        let picked = mix_to_mono(interleave(&[inverted, slightly_louder.clone()]), 2);
        assert_eq!(picked, slightly_louder);
        // Digital silence in every channel is left alone.
        assert_eq!(mix_to_mono(vec![0.0; 200], 2), vec![0.0; 100]);
    }

    /// A voice-like test signal: harmonics of a gliding 130 Hz voice under a syllable envelope
    /// (16 kHz), peak `peak`; `seed` shifts the harmonics' phases.
    fn voice(len: usize, peak: f32, seed: u32) -> Vec<f32> {
        let tau = std::f32::consts::TAU;
        let mut phase = 0.0f32;
        let raw: Vec<f32> = (0..len)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                phase += tau * (130.0 + 15.0 * (tau * 0.8 * t).sin()) / 16_000.0;
                let envelope = 0.55 + 0.45 * (tau * 3.0 * t).sin();
                envelope
                    * (1..=5)
                        .map(|h| (h as f32 * phase + (h * seed) as f32).sin() / h as f32)
                        .sum::<f32>()
            })
            .collect();
        let max = raw.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        raw.iter().map(|x| x * peak / max).collect()
    }

    fn delayed(x: &[f32], by: usize, gain: f32) -> Vec<f32> {
        (0..x.len())
            .map(|i| if i >= by { gain * x[i - by] } else { 0.0 })
            .collect()
    }

    fn clipped(x: &[f32], rail: f32) -> Vec<f32> {
        x.iter().map(|v| v.clamp(-rail, rail)).collect()
    }

    #[test]
    fn channels_of_one_sound_clipped_separately_give_the_least_clipped_one() {
        let rail = 32_767.0;
        let talker = voice(32_000, 60_000.0, 1);
        // Two microphones of one talker, the second 12 samples later and 2 dB quieter: both
        // overloaded, the first more. Their average has no flat tops left for the repair.
        let near = clipped(&talker, rail);
        let far = clipped(&delayed(&talker, 12, 0.8), rail);
        assert!(far.iter().filter(|x| x.abs() >= rail).count() > 100);
        let mono = mix_to_mono(interleave(&[near.clone(), far.clone()]), 2);
        assert_eq!(mono, far);
        assert!(super::declip::clipped_samples(&mono) > 0);
        // The second microphone not overloaded: taken as it is.
        let quiet = delayed(&talker, 12, 0.4);
        let mono = mix_to_mono(interleave(&[near.clone(), quiet.clone()]), 2);
        assert_eq!(mono, quiet);

        // A microphone per talker (different sounds): the average, clipped or not.
        let other = voice(32_000, 20_000.0, 7);
        let other = delayed(&other, 4_000, 1.0);
        let average = |a: &[f32], b: &[f32]| -> Vec<f32> {
            a.iter().zip(b).map(|(x, y)| (x + y) / 2.0).collect()
        };
        let mono = mix_to_mono(interleave(&[near.clone(), other.clone()]), 2);
        assert_eq!(mono, average(&near, &other));
        // Dual mono, clipped: the average is the channel, flat tops and all.
        assert_eq!(
            mix_to_mono(interleave(&[near.clone(), near.clone()]), 2),
            near
        );
        // Two microphones, neither clipped: the average.
        let unclipped = delayed(&talker, 0, 0.5);
        let second = delayed(&talker, 12, 0.3);
        let mono = mix_to_mono(interleave(&[unclipped.clone(), second.clone()]), 2);
        assert_eq!(mono, average(&unclipped, &second));
    }

    #[test]
    fn extremes_counted_by_blocks_cover_the_samples_on_the_final_extreme() {
        use super::Mixdown;
        let rail = 20_000.0;
        let x = clipped(&voice(20_000, 30_000.0, 3), rail);
        let y = delayed(&x, 5, 0.5);
        let interleaved = interleave(&[x.clone(), y]);
        let mut whole = Mixdown::new(2);
        let mut mono = vec![0.0; x.len()];
        whole.mix(&interleaved, &mut mono);
        let merged = interleaved
            .chunks(2 * 777)
            .map(|block| {
                let mut part = Mixdown::new(2);
                part.mix(block, &mut vec![0.0; block.len() / 2]);
                part
            })
            .fold(Mixdown::new(2), |a, b| a.merged(&b));
        let on_rail = x
            .iter()
            .filter(|&&v| v.abs() >= rail * (1.0 - 1e-3))
            .count();
        for mixdown in [&whole, &merged] {
            assert_eq!(mixdown.extremes[0].value, rail);
            assert!(mixdown.extremes[0].count >= on_rail);
            assert!(mixdown.may_be_clipped_separately());
        }
    }

    #[test]
    fn wav_files_inside_a_kaldi_archive_are_read_by_offset() {
        use super::{read_audio, wav_i16_bytes, Waveform};
        let dir = tempfile::tempdir().unwrap();
        let wave = |value: f32, len: usize, rate: u32| Waveform {
            samples: vec![value; len],
            sample_rate_hz: rate,
        };
        let (first, second) = (wave(1000.0, 800, 8000), wave(-2000.0, 1600, 16000));
        // As `wav-copy ark,scp:` writes them: `key ` then the WAV file, entry after entry.
        let mut archive = b"utt1 ".to_vec();
        let first_at = archive.len();
        archive.extend(wav_i16_bytes(&first).unwrap());
        archive.extend(b"utt2 ");
        let second_at = archive.len();
        archive.extend(wav_i16_bytes(&second).unwrap());
        let ark = dir.path().join("wav.ark");
        std::fs::write(&ark, &archive).unwrap();
        let at = |offset: usize| std::path::PathBuf::from(format!("{}:{offset}", ark.display()));
        assert_eq!(read_audio(&at(first_at)).unwrap(), first);
        assert_eq!(read_audio(&at(second_at)).unwrap(), second);
        // An offset that is not the start of an entry, and a missing archive, are errors that say so.
        let message = read_audio(&at(first_at + 3)).unwrap_err().to_string();
        assert!(message.contains("no WAV data at byte"), "{message}");
        let missing = dir.path().join("other.ark:5");
        assert!(read_audio(&missing)
            .unwrap_err()
            .to_string()
            .contains("other.ark:5"));
        // A file whose own name ends in `:N` is that file.
        let named = dir.path().join("odd.wav:5");
        std::fs::write(&named, wav_i16_bytes(&first).unwrap()).unwrap();
        assert_eq!(read_audio(&named).unwrap(), first);
    }
}
