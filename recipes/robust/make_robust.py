#!/usr/bin/env python3
"""Degraded copies of evaluation manifests, for measuring robustness to recording conditions.

    python3 recipes/robust/make_robust.py --manifest IN.tsv [--manifest ...] --out /work/data/robust \
        [--conditions pad,padfloor,joined,tel8k,reverb,snr20,snr10,snr5] [--seed 0] [--non-speech]

For each input NAME.tsv and condition COND writes OUT/NAME_COND.tsv (absolute paths to 16-bit PCM mono WAVs
under OUT/wav/NAME_COND/, phones unchanged) and OUT/NAME_COND.info.tsv (per-file parameters). `tel8k` also
writes NAME_8k (plain resampling to 8 kHz). --non-speech writes OUT/nonspeech.tsv (empty labels).
Needs Python 3, numpy and the `sox` command (gsm, u-law, a-law). See README.md.
"""

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import time
import wave

import numpy as np

VERSION = "robust-3"  # new conditions need no bump: their outputs are new  # bump when the processing changes: existing outputs are then rebuilt
ALL_CONDITIONS = ["pad", "padfloor", "joined", "tel8k", "reverb", "snr20", "snr10", "snr5", "quiet", "clip", "clipmild",
                  "gated", "loss"]
EXTRA_CONDITIONS = ["8k",  # written with tel8k; may also be asked for alone
                    "8k16k", "tel16k",  # narrowband audio stored at 16 kHz; asked for by name
                    "room",  # needs pyroomacoustics (pip); asked for by name
                    "music20", "music10",  # need --music-dir (recipes/music/get_music.sh); asked for by name
                    "denoised", "echo", "talker", "clicks",  # users' processing and rooms; asked for by name
                    "levels",  # two talkers at different distances; asked for by name
                    "background",  # a television under a talker and in the pauses; asked for by name
                    "dcoffset",  # a converter that is not centred; asked for by name
                    "strings"]  # short clips read one after another (digit strings); asked for by name
FS = 32768.0  # int16 full scale
NOISE_KINDS = ["white", "pink", "brown", "babble"]
CODECS = ["ulaw", "alaw", "gsm"]

DESCRIPTIONS = {
    "pad": "1-3 s (uniform, each side) of digital silence before and after each clip",
    "padfloor": "as pad, plus pink noise (20 Hz-Nyquist) at -55 dBFS RMS (+-3 dB uniform) under the whole file",
    "joined": "consecutive utterances joined into files of >= 30 s (< 60 s where possible) with 0.3-2 s digital "
              "silence between them (none at the ends); labels concatenated in order; rate of the group's first file",
    "strings": "2-5 clips (drawn without replacement in a seeded random order, each clip used once) joined "
               "by 0.03-0.5 s (uniform) of Gaussian noise at the level of the clips' own floor (the 10th "
               "percentile of the next clip's 10 ms frame RMS values): a digit string (a phone number, a PIN) "
               "read with short pauses. For sets of short clips (FSDD)",
    "levels": "as joined, with every second utterance (the first or the second, 50/50 per file) attenuated by "
              "10-25 dB (uniform per file), and pink noise (20 Hz-Nyquist) under the whole file 45 dB below the "
              "loud utterances' active RMS (two talkers at different distances from one microphone)",
    "background": "as joined, with a continuous background talker under the whole file 15-30 dB (uniform per "
                  "file) below the utterances' active RMS: up to 8 other utterances of the manifest (drawn "
                  "uniformly), joined, looped from a uniform offset (a television or radio in the room, "
                  "heard in the talker's pauses)",
    "tel8k": "sox rate -h 8000, sinc 300-3400, then a codec by utterance index (i%3: 0 u-law, 1 A-law, 2 GSM 06.10) "
             "decoded back to 16-bit; 8 kHz output",
    "8k": "sox rate -h 8000 only (narrowband reference for tel8k); 8 kHz output",
    "8k16k": "as 8k (an 8 kHz source as it is), then brought to 16 kHz as `sox in.wav -r 16000 out.wav` does "
             "(rate -h, 16-bit output with sox's default TPDF dither; -R, so repeatable): narrowband "
             "recordings stored at 16 kHz for an ASR pipeline; 16 kHz output",
    "tel16k": "as tel8k, then brought to 16 kHz as 8k16k: telephone calls stored at 16 kHz; 16 kHz output",
    "reverb": "sox reverb (dry+wet), reverberance U(30,80), room-scale U(50,100), other parameters sox defaults; "
              "rescaled so the first len(input) samples have the input RMS; length = input + 0.5 s tail",
    "room": "a shoebox room by pyroomacoustics' image-source method (Allen & Berkley): floor 3-10 x 3-8 m, "
            "height 2.5-4 m, RT60 U(0.25,0.9) s (inverse Sabine, the order it gives), talker and microphone "
            "1.2-1.8 m high, >= 0.5 m from walls, 1-3 m apart; the input convolved with the room's impulse "
            "response, rescaled so the first len(input) samples have the input RMS; length = input + 0.5 s",
    "quiet": "the clip scaled to an RMS of -55 dBFS (+-5 dB uniform; a recorder's input gain set far too low), "
             "then rounded to 16-bit as such a recorder would",
    "clip": "the clip peak-normalised to full scale, then amplified by 9-15 dB (uniform) and rounded to 16-bit, "
            "so its peaks are cut flat at full scale (a recorder's input gain set far too high)",
    "clipmild": "as clip, amplified by 2-6 dB (uniform): a few loud peaks cut flat, as by a recorder whose input "
                "gain was set a little too high",
    "dcoffset": "a DC offset 0-12 dB (uniform) under the clip's RMS, of either sign (50/50), added to every sample "
                "(a converter or preamplifier that is not centred); the clip scaled down when the offset would "
                "push a peak past full scale",
    "loss": "20 ms packets lost (digital zeros), each with a probability of 3-10 % (uniform per file), as audio "
            "from a network call recorded without packet-loss concealment",
    "gated": "pink noise (20 Hz-Nyquist) at -45 dBFS RMS (+-3 dB uniform) under the clip, then a noise gate: "
             "open while the 10 ms RMS envelope is 12 dB above that floor (5 ms look-ahead, 150 ms hold), "
             "closed it attenuates by 25-35 dB (uniform), gain changes smoothed over 5 ms (a VoIP or podcast gate)",
    "music": "a real instrumental track under the clip at {snr} dB SNR w.r.t. the RMS of the whole clip: a "
             "track of --music-dir (recipes/music/get_music.sh: game soundtracks from Debian) drawn uniformly, "
             "from a uniform offset where the segment is within 20 dB of the track's RMS (up to 20 draws)",
    "denoised": "pink noise (20 Hz-Nyquist) at 12-20 dB SNR (uniform) w.r.t. the clip's RMS, with 1 s of it "
                "before the clip, then sox's noise reducer: `noiseprof` of the first 0.9 s and `noisered` at an "
                "amount of 0.2-0.4 (uniform), as a user cleans a recording up before recognition",
    "echo": "one discrete echo: the clip added to itself 100-250 ms (uniform) later and 8-14 dB (uniform) down "
            "(a speakerphone with weak echo cancellation, a hard-walled hall); length = input",
    "talker": "another utterance of the manifest (from a uniform offset, looped) under the clip at 12-20 dB "
              "(uniform) below it, levels measured on frames within 30 dB of each one's loudest (a television, "
              "a radio, a colleague)",
    "clicks": "keyboard clicks: key presses at 3-8 a second (uniform; Poisson), each a press and a release "
              "60-150 ms later, 4 ms decaying noise bursts whose peaks are 0-10 dB (uniform per file) under the "
              "clip's peak",
    "snr": "additive noise at {snr} dB SNR w.r.t. the RMS of the whole clip; kind by utterance index "
           "(i%4: 0 white, 1 pink, 2 brown, 3 babble = 4 other utterances of the manifest at equal RMS)",
}


# ---------------------------------------------------------------- utilities

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def rng_for(seed, name, cond, index):
    h = hashlib.sha256(f"{seed}|{name}|{cond}|{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def read_manifest(path):
    """-> (comment lines, [(absolute audio path, phone string)])."""
    base = os.path.dirname(os.path.abspath(path))
    comments, rows = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n").rstrip("\r")
            if line.startswith("#"):
                comments.append(line)
                continue
            if not line.strip():
                continue
            audio, _, phones = line.partition("\t")
            audio = audio.strip()
            if not os.path.isabs(audio):
                audio = os.path.join(base, audio)
            rows.append((audio, " ".join(phones.split())))
    return comments, rows


def run_sox(args, data=b""):
    cmd = ["sox", "-V1", "-R", "-D"] + args
    p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError(f"sox failed ({' '.join(cmd)}): {p.stderr.decode(errors='replace')}")
    return p.stdout


def raw_s16(rate):
    return ["-t", "raw", "-r", str(rate), "-e", "signed", "-b", "16", "-c", "1"]


def raw_f32(rate=None):
    r = ["-r", str(rate)] if rate else []
    return ["-t", "raw"] + r + ["-e", "floating-point", "-b", "32", "-c", "1", "-L"]


def read_audio(path):
    """-> (float64 samples in int16 units, rate). Mono 16-bit PCM via `wave`, anything else via sox."""
    try:
        with wave.open(path, "rb") as w:
            if w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getcomptype() == "NONE":
                rate = w.getframerate()
                x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
                return x.astype(np.float64), rate
    except (wave.Error, EOFError):
        pass
    rate = int(subprocess.run(["soxi", "-r", path], stdout=subprocess.PIPE, check=True).stdout.split()[0])
    out = run_sox([path] + raw_f32() + ["remix", "-"])  # mix channels down
    return np.frombuffer(out, dtype="<f4").astype(np.float64) * FS, rate


def to_int16(x):
    """Round and clip to int16. -> (int16 array, number of clipped samples)."""
    y = np.rint(x)
    clipped = int(np.count_nonzero((y > 32767) | (y < -32768)))
    return np.clip(y, -32768, 32767).astype("<i2"), clipped


def write_wav(path, x_int16, rate):
    tmp = path + ".tmp"
    with wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(x_int16.astype("<i2").tobytes())
    os.replace(tmp, path)


def sox_float(x, rate, out_rate, effects):
    """Run float samples (int16 units) through sox effects; float output, so nothing clips inside sox.
    Input is passed as float too (no rounding before the effect)."""
    data = (np.asarray(x, dtype=np.float64) / FS).astype("<f4").tobytes()
    out = run_sox(raw_f32(rate) + ["-"] + raw_f32(out_rate) + ["-"] + effects, data)
    return np.frombuffer(out, dtype="<f4").astype(np.float64) * FS


def reverberant_output(x, y, rate, tail):
    """The reverberant `y` of the clip `x` as written: len(x) + `tail` samples (cut or zero-padded), scaled
    so its first len(x) samples have x's RMS, with a 20 ms fade at the end. Returns (samples, gain)."""
    y = y[:len(x) + tail]
    if len(y) < len(x) + tail:
        y = np.concatenate([y, np.zeros(len(x) + tail - len(y))])
    r_in, r_out = rms(x), rms(y[:len(x)])
    gain = r_in / r_out if r_out > 0 else 1.0
    y = y * gain
    fade = min(int(0.02 * rate), tail)
    if fade > 0:
        y[-fade:] *= np.linspace(1.0, 0.0, fade)
    return y, gain


def room_impulse_response(rng, rate):
    """A random shoebox room's impulse response by pyroomacoustics' image-source method.

    Returns (h, room dimensions, target RT60, talker-microphone distance)."""
    import pyroomacoustics as pra  # only this condition needs it
    dim = [float(rng.uniform(3.0, 10.0)), float(rng.uniform(3.0, 8.0)), float(rng.uniform(2.5, 4.0))]
    rt60 = float(rng.uniform(0.25, 0.9))
    margin = 0.5
    while True:  # a talker and a microphone 1-3 m apart, both >= 0.5 m from every wall
        src = [float(rng.uniform(margin, dim[0] - margin)), float(rng.uniform(margin, dim[1] - margin)),
               float(rng.uniform(1.2, 1.8))]
        mic = [float(rng.uniform(margin, dim[0] - margin)), float(rng.uniform(margin, dim[1] - margin)),
               float(rng.uniform(1.2, 1.8))]
        dist = float(np.linalg.norm(np.subtract(src, mic)))
        if 1.0 <= dist <= 3.0:
            break
    e_abs, max_order = pra.inverse_sabine(rt60, dim)
    room = pra.ShoeBox(dim, fs=rate, materials=pra.Material(e_abs), max_order=max_order)
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64), dim, rt60, dist


def resample(x, rate, new_rate):
    if rate == new_rate:
        return np.asarray(x, dtype=np.float64)
    return sox_float(x, rate, new_rate, ["rate", "-h", str(new_rate)])


def up_to_16k_as_sox_does(x_int16):
    """8 kHz int16 -> 16 kHz as `sox in.wav -r 16000 out.wav` writes it: rate -h and 16-bit output with
    sox's default TPDF dither (run_sox turns dither off; here it stays on, -R keeps it repeatable).
    -> float (int16 units)."""
    cmd = ["sox", "-V1", "-R"] + raw_s16(8000) + ["-"] + raw_s16(16000) + ["-", "rate", "-h", "16000"]
    p = subprocess.run(cmd, input=x_int16.astype("<i2").tobytes(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError(f"sox failed ({' '.join(cmd)}): {p.stderr.decode(errors='replace')}")
    return np.frombuffer(p.stdout, dtype="<i2").astype(np.float64)


def codec_roundtrip(x_int16, codec):
    """8 kHz int16 -> encode (u-law / A-law / GSM 06.10) -> decode -> float (int16 units), same length."""
    if codec == "ulaw":
        fmt = ["-t", "raw", "-e", "u-law", "-b", "8"]
    elif codec == "alaw":
        fmt = ["-t", "raw", "-e", "a-law", "-b", "8"]
    elif codec == "gsm":
        fmt = ["-t", "gsm"]
    else:
        raise ValueError(codec)
    enc = run_sox(raw_s16(8000) + ["-"] + fmt + ["-r", "8000", "-c", "1", "-"], x_int16.astype("<i2").tobytes())
    dec = run_sox(fmt + ["-r", "8000", "-c", "1", "-"] + raw_s16(8000) + ["-"], enc)
    y = np.frombuffer(dec, dtype="<i2").astype(np.float64)
    n = len(x_int16)
    if len(y) < n:
        y = np.concatenate([y, np.zeros(n - len(y))])
    return y[:n]


def noise_gate(x, rate, floor_dbfs, attenuation_db):
    """A noise gate over `x` (int16 scale): open while the 10 ms RMS envelope is 12 dB above
    `floor_dbfs`, from 5 ms before to 150 ms after; closed, `attenuation_db` down; the gain smoothed
    over 5 ms. Returns the gated signal and the fraction of samples closed."""
    n = len(x)
    if n == 0:
        return x, 0.0
    win = max(1, int(0.010 * rate))
    env = np.sqrt(np.convolve(x * x, np.ones(win) / win, mode="same"))
    above = env > db_to_rms(floor_dbfs + 12.0)
    idx = np.arange(n)
    last = np.maximum.accumulate(np.where(above, idx, -(10 ** 9)))
    nxt = np.minimum.accumulate(np.where(above, idx, 10 ** 9)[::-1])[::-1]
    is_open = ((idx - last) <= int(0.150 * rate)) | ((nxt - idx) <= int(0.005 * rate))
    gain = np.where(is_open, 1.0, 10.0 ** (-attenuation_db / 20.0))
    ramp = max(1, int(0.005 * rate))
    gain = np.convolve(gain, np.ones(ramp) / ramp, mode="same")
    return x * gain, float(np.mean(~is_open))


def denoise_with_sox(x, rate, amount):
    """sox's noise reducer over `x` (int16 scale): a profile of its first 0.9 s, then `noisered`."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        src, prof = os.path.join(tmp, "in.wav"), os.path.join(tmp, "noise.prof")
        y16, _ = to_int16(x)
        write_wav(src, y16, rate)
        subprocess.run(["sox", src, "-n", "trim", "0", "0.9", "noiseprof", prof], check=True,
                       stderr=subprocess.DEVNULL)
        out = run_sox([src, "-t", "raw", "-e", "floating-point", "-b", "32", "-", "noisered", prof,
                       f"{amount:.3f}"])
    return np.frombuffer(out, dtype=np.float32).astype(np.float64) * FS


def active_rms(x, rate):
    """RMS over the 25 ms frames within 30 dB of the loudest frame (the speech, not its pauses)."""
    f = max(1, int(0.025 * rate))
    m = len(x) // f
    if m == 0:
        return rms(x)
    e = np.mean(x[:m * f].reshape(m, f) ** 2, axis=1)
    keep = e > e.max() * 10.0 ** (-3.0)
    return float(np.sqrt(np.mean(e[keep]))) if keep.any() else 0.0


def keyboard_clicks(rng, n, rate, peak, below_db):
    """Key presses at 3-8 a second (Poisson), each with a release 60-150 ms later: 4 ms decaying
    noise bursts with peaks `below_db` under `peak` (each burst 0.5-1 of that)."""
    out = np.zeros(n)
    if n == 0 or peak <= 0:
        return out
    level = peak * 10.0 ** (-below_db / 20.0)
    per_s = float(rng.uniform(3.0, 8.0))
    t = 0.0
    burst = max(1, int(0.004 * rate))
    shape = np.exp(-5.0 * np.arange(burst) / burst)
    while True:
        t += float(rng.exponential(1.0 / per_s))
        press = int(t * rate)
        if press >= n:
            break
        for start in (press, press + int(float(rng.uniform(0.06, 0.15)) * rate)):
            seg = out[start:start + burst]
            noise = np.clip(rng.standard_normal(len(seg)), -3, 3) / 3
            seg += level * float(rng.uniform(0.5, 1.0)) * shape[:len(seg)] * noise
    return out


def db_to_rms(dbfs):
    return FS * 10.0 ** (dbfs / 20.0)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def white_noise(rng, n):
    """Gaussian white noise scaled to unit RMS."""
    y = rng.standard_normal(n)
    r = rms(y)
    return y / r if r > 0 else y


def pink_noise(rng, n, rate, f_low=20.0):
    """1/f power (FFT shaping of white noise), nothing below f_low; unit RMS."""
    if n == 0:
        return np.zeros(0)
    m_fft = 1 << (n - 1).bit_length()  # power of two: fast FFT; the first n samples are kept
    spec = np.fft.rfft(rng.standard_normal(m_fft))
    f = np.fft.rfftfreq(m_fft, 1.0 / rate)
    g = np.zeros_like(f)
    m = f >= f_low
    g[m] = 1.0 / np.sqrt(f[m])
    y = np.fft.irfft(spec * g, m_fft)[:n]
    y -= y.mean()
    r = rms(y)
    return y / r if r > 0 else y


def brown_noise(rng, n, rate, f_leak=20.0, block=1024):
    """Leaky integration of white noise, y[k] = a*y[k-1] + w[k] with a = exp(-2*pi*f_leak/rate)
    (1/f^2 power above f_leak); computed in blocks with cumsum; unit RMS."""
    if n == 0:
        return np.zeros(0)
    a = float(np.exp(-2.0 * np.pi * f_leak / rate))
    w = rng.standard_normal(n)
    y = np.empty(n)
    j = np.arange(block, dtype=np.float64)
    ap = a ** j           # a^j
    am = a ** (-j)        # a^-j
    prev = 0.0
    for s in range(0, n, block):
        wb = w[s:s + block]
        L = len(wb)
        yb = ap[:L] * (a * prev + np.cumsum(wb * am[:L]))
        y[s:s + L] = yb
        prev = yb[-1]
    y -= y.mean()
    r = rms(y)
    return y / r if r > 0 else y


def hum(rng, n, rate, f0, harmonics=(1.0, 0.5, 0.35, 0.2, 0.12, 0.08)):
    t = np.arange(n) / rate
    y = np.zeros(n)
    for k, amp in enumerate(harmonics, start=1):
        y += amp * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
    return y / rms(y)


# ---------------------------------------------------------------- per-manifest processing

class Source:
    """The input manifest's audio, loaded once (float64 in int16 units, native rate)."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.comments, self.rows = read_manifest(path)
        with open(path, "rb") as f:
            self.sha = hashlib.sha256(f.read()).hexdigest()[:16]
        self._audio = {}
        self._at_rate = {}

    def audio(self, i):
        if i not in self._audio:
            self._audio[i] = read_audio(self.rows[i][0])
        return self._audio[i]

    def audio_at(self, i, rate):
        x, r = self.audio(i)
        if r == rate:
            return x
        key = (i, rate)
        if key not in self._at_rate:
            self._at_rate[key] = resample(x, r, rate)
        return self._at_rate[key]


_MUSIC = {}


def music_tracks(folder):
    """The 16 kHz WAV tracks of `folder` as (name, float samples), read once."""
    if folder not in _MUSIC:
        names = sorted(f for f in os.listdir(folder) if f.endswith(".wav"))
        if not names:
            raise ValueError(f"no .wav tracks in {folder} (run recipes/music/get_music.sh)")
        tracks = []
        for f in names:
            x, rate = read_audio(os.path.join(folder, f))
            if rate != 16000:
                raise ValueError(f"{f}: {rate} Hz, expected 16000 (recipes/music/get_music.sh writes 16 kHz)")
            tracks.append((os.path.splitext(f)[0], x))
        _MUSIC[folder] = tracks
    return _MUSIC[folder]


def fingerprint(src, cond, seed):
    return f"{VERSION} seed={seed} source_sha256={src.sha} cond={cond}"


def manifest_complete(path, fp):
    """Complete = written by this version with the same parameters, end marker present, every WAV present."""
    if not os.path.isfile(path):
        return False
    ok_fp = ok_end = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line == "# params: " + fp:
                ok_fp = True
            elif line.startswith("# complete:"):
                ok_end = True
            elif not line.startswith("#") and line.strip():
                if not os.path.isfile(line.split("\t", 1)[0]):
                    return False
    return ok_fp and ok_end


def write_outputs(out, stem, fp, header, lines, info_header, info_rows):
    man = os.path.join(out, f"{stem}.tsv")
    info = os.path.join(out, f"{stem}.info.tsv")
    with open(info + ".tmp", "w", encoding="utf-8") as f:
        f.write("\t".join(info_header) + "\n")
        for r in info_rows:
            f.write("\t".join(str(v) for v in r) + "\n")
    os.replace(info + ".tmp", info)
    with open(man + ".tmp", "w", encoding="utf-8") as f:
        for h in header:
            f.write(h + "\n")
        f.write(f"# params: {fp}\n")
        for path, phones in lines:
            f.write(f"{path}\t{phones}\n")
        f.write(f"# complete: {len(lines)} files\n")
    os.replace(man + ".tmp", man)
    return man


def fresh_output(out, stem, fp):
    """The empty folder OUT/wav/STEM for a manifest to be (re)written, or None when OUT/STEM.tsv is
    complete with the fingerprint `fp` (logged as skipped)."""
    if manifest_complete(os.path.join(out, f"{stem}.tsv"), fp):
        log(f"  {stem}: complete, skipped")
        return None
    wavdir = os.path.join(out, "wav", stem)
    if os.path.isdir(wavdir):
        shutil.rmtree(wavdir)
    os.makedirs(wavdir)
    return wavdir


def process(src, cond, args, command):
    name = src.name
    fp = fingerprint(src, cond, args.seed)
    wavdir = fresh_output(args.out, f"{name}_{cond}", fp)
    if wavdir is None:
        return None
    t0 = time.time()
    lines, info, clipped_total = [], [], 0
    total_sec = 0.0
    n = len(src.rows)

    def out_name(i):
        base = os.path.splitext(os.path.basename(src.rows[i][0]))[0]
        return os.path.join(wavdir, f"{i:05d}_{base}.wav")

    if cond == "strings":
        info_header = ["file", "rate", "seconds", "utterances(index:source)", "gaps_s"]
        order = [int(k) for k in rng_for(args.seed, name, cond, 0).permutation(n)]
        g = 0
        pos = 0
        while pos < n:
            rng = rng_for(args.seed, name, cond, pos + 1)
            members = order[pos:pos + int(rng.integers(2, 6))]
            pos += len(members)
            _, rate = src.audio(members[0])
            parts, gaps = [], []
            for k, m in enumerate(members):
                x = src.audio_at(m, rate)
                if k:
                    hop = max(1, rate // 100)
                    frames = x[: len(x) // hop * hop].reshape(-1, hop)
                    floor = float(np.percentile(np.sqrt((frames ** 2).mean(axis=1)), 10)) if len(frames) else 0.0
                    gap = float(rng.uniform(0.03, 0.5))
                    parts.append(floor * rng.standard_normal(int(round(gap * rate))))
                    gaps.append(round(gap, 3))
                parts.append(x)
            y, c = to_int16(np.concatenate(parts))
            clipped_total += c
            path = os.path.join(wavdir, f"{cond}_{g:04d}.wav")
            write_wav(path, y, rate)
            total_sec += len(y) / rate
            lines.append((path, " ".join(src.rows[m][1] for m in members if src.rows[m][1])))
            info.append([path, rate, round(len(y) / rate, 3), " ".join(f"{m}:{src.rows[m][0]}" for m in members),
                         " ".join(map(str, gaps))])
            g += 1
    elif cond in ("joined", "levels", "background"):
        info_header = ["file", "rate", "seconds", "utterances(index:source)", "pauses_s"]
        if cond == "levels":
            info_header += ["quiet_first", "attenuation_db", "floor_dbfs"]
        elif cond == "background":
            info_header += ["below_db", "background_utterances"]
        i = 0
        g = 0
        while i < n:
            rng = rng_for(args.seed, name, cond, i)
            x0, rate = src.audio(i)
            parts, members, pauses = [src.audio_at(i, rate)], [i], []
            dur = len(x0) / rate
            j = i + 1
            while dur < 30.0 and j < n:
                p = float(rng.uniform(0.3, 2.0))
                xj = src.audio_at(j, rate)
                add = p + len(xj) / rate
                if dur + add > 60.0:
                    break  # would pass 60 s: start a new file with j
                parts += [np.zeros(int(round(p * rate))), xj]
                members.append(j)
                pauses.append(round(p, 3))
                dur += add
                j += 1
            extra = []
            if cond == "levels":
                quiet_first = bool(rng.uniform() < 0.5)
                attenuation_db = float(rng.uniform(10.0, 25.0))
                # The utterances are the even parts (the pauses between them the odd ones); the
                # arrays are the source's cache, so scaled copies replace them.
                quiet = [k for k in range(0, len(parts), 2) if (k % 4 == 0) == quiet_first]
                for k in quiet:
                    parts[k] = parts[k] * 10.0 ** (-attenuation_db / 20.0)
                loud = [parts[k] for k in range(0, len(parts), 2) if k not in quiet] or [parts[0]]
                loud_rms = active_rms(np.concatenate(loud), rate)
                total = np.concatenate(parts)
                floor = loud_rms * 10.0 ** (-45.0 / 20.0)
                total += floor * pink_noise(rng, len(total), rate)
                parts = [total]
                floor_dbfs = 20.0 * np.log10(max(floor, 1e-9) / FS)
                extra = [int(quiet_first), round(attenuation_db, 2), round(floor_dbfs, 2)]
            elif cond == "background":
                below_db = float(rng.uniform(15.0, 30.0))
                others = [k for k in range(n) if k not in members]
                chosen = [int(k) for k in rng.permutation(others)[:8]] if others else members
                b = np.concatenate([src.audio_at(k, rate) for k in chosen])
                total = np.concatenate(parts)
                if len(b) and len(total):
                    reps = int(np.ceil((len(total) + len(b)) / len(b)))
                    off = int(rng.integers(0, len(b)))
                    b = np.tile(b, reps)[off:off + len(total)]
                    la = active_rms(np.concatenate(parts[0::2]), rate)
                    lb = active_rms(b, rate)
                    if la > 0 and lb > 0:
                        total = total + b * (la / lb) * 10.0 ** (-below_db / 20.0)
                parts = [total]
                extra = [round(below_db, 2), " ".join(map(str, chosen))]
            y, c = to_int16(np.concatenate(parts))
            clipped_total += c
            path = os.path.join(wavdir, f"{cond}_{g:04d}.wav")
            write_wav(path, y, rate)
            total_sec += len(y) / rate
            phones = " ".join(src.rows[k][1] for k in members if src.rows[k][1])
            lines.append((path, phones))
            info.append([path, rate, round(len(y) / rate, 3),
                         " ".join(f"{k}:{src.rows[k][0]}" for k in members), " ".join(map(str, pauses))] + extra)
            g += 1
            i = j
    else:
        info_header = {
            "pad": ["file", "source", "rate", "seconds", "pre_s", "post_s", "pre_samples", "post_samples"],
            "padfloor": ["file", "source", "rate", "seconds", "pre_s", "post_s", "pre_samples", "post_samples",
                         "floor_dbfs"],
            "tel8k": ["file", "source", "rate", "seconds", "codec"],
            "8k": ["file", "source", "rate", "seconds"],
            "8k16k": ["file", "source", "rate", "seconds"],
            "tel16k": ["file", "source", "rate", "seconds", "codec"],
            "reverb": ["file", "source", "rate", "seconds", "reverberance", "room_scale", "gain"],
            "room": ["file", "source", "rate", "seconds", "room_m", "rt60_s", "distance_m", "gain"],
            "quiet": ["file", "source", "rate", "seconds", "rms_dbfs"],
            "clip": ["file", "source", "rate", "seconds", "gain_db", "clipped_fraction"],
            "clipmild": ["file", "source", "rate", "seconds", "gain_db", "clipped_fraction"],
            "gated": ["file", "source", "rate", "seconds", "floor_dbfs", "attenuation_db", "closed_fraction"],
            "loss": ["file", "source", "rate", "seconds", "loss_probability", "lost_fraction"],
            "music20": ["file", "source", "rate", "seconds", "track", "offset", "snr_db_target", "snr_db_actual"],
            "music10": ["file", "source", "rate", "seconds", "track", "offset", "snr_db_target", "snr_db_actual"],
            "denoised": ["file", "source", "rate", "seconds", "snr_db", "noisered_amount"],
            "echo": ["file", "source", "rate", "seconds", "down_db", "delay_s"],
            "talker": ["file", "source", "rate", "seconds", "sir_db", "other_index"],
            "clicks": ["file", "source", "rate", "seconds", "below_peak_db"],
            "dcoffset": ["file", "source", "rate", "seconds", "below_rms_db", "sign", "scale_db"],
        }.get(cond, ["file", "source", "rate", "seconds", "noise", "snr_db_target", "snr_db_actual", "babble_sources"])
        for i in range(n):
            rng = rng_for(args.seed, name, cond, i)
            x, rate = src.audio(i)
            extra = []
            out_rate = rate
            if cond in ("pad", "padfloor"):
                pre, post = float(rng.uniform(1.0, 3.0)), float(rng.uniform(1.0, 3.0))
                npre, npost = int(round(pre * rate)), int(round(post * rate))
                y = np.concatenate([np.zeros(npre), x, np.zeros(npost)])
                extra = [round(pre, 3), round(post, 3), npre, npost]
                if cond == "padfloor":
                    level = -55.0 + float(rng.uniform(-3.0, 3.0))
                    y = y + db_to_rms(level) * pink_noise(rng, len(y), rate)
                    extra.append(round(level, 2))
            elif cond == "8k":
                y = resample(x, rate, 8000)
                out_rate = 8000
            elif cond == "8k16k":
                y8, c = to_int16(resample(x, rate, 8000))
                clipped_total += c
                y = up_to_16k_as_sox_does(y8)
                out_rate = 16000
            elif cond in ("tel8k", "tel16k"):
                codec = CODECS[i % 3]
                bp = sox_float(x, rate, 8000, ["rate", "-h", "8000", "sinc", "300-3400"])
                bp16, c = to_int16(bp)
                clipped_total += c
                y = codec_roundtrip(bp16, codec)
                out_rate = 8000
                if cond == "tel16k":
                    y = up_to_16k_as_sox_does(y.astype("<i2"))
                    out_rate = 16000
                extra = [codec]
            elif cond == "reverb":
                rev = float(rng.uniform(30.0, 80.0))
                room = float(rng.uniform(50.0, 100.0))
                tail = int(round(0.5 * rate))
                xp = np.concatenate([x, np.zeros(tail)])
                y = sox_float(xp, rate, rate, ["reverb", f"{rev:.2f}", "50", f"{room:.2f}"])
                y, gain = reverberant_output(x, y, rate, tail)
                extra = [round(rev, 2), round(room, 2), round(gain, 4)]
            elif cond == "room":
                h, room_dim, rt60, dist = room_impulse_response(rng, rate)
                tail = int(round(0.5 * rate))
                size = len(x) + len(h) - 1
                nfft = 1 << (size - 1).bit_length()  # FFT convolution: long responses, long files
                y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(h, nfft), nfft)[:size]
                y, gain = reverberant_output(x, y, rate, tail)
                extra = ["x".join(f"{d:.2f}" for d in room_dim), round(rt60, 3), round(dist, 2), round(gain, 4)]
            elif cond == "quiet":
                level = -55.0 + float(rng.uniform(-5.0, 5.0))
                r = rms(x)
                y = x * (db_to_rms(level) / r) if r > 0 else x
                extra = [round(level, 2)]
            elif cond in ("clip", "clipmild"):
                gain_db = float(rng.uniform(9.0, 15.0) if cond == "clip" else rng.uniform(2.0, 6.0))
                peak = float(np.max(np.abs(x))) if len(x) else 0.0
                y = x * (FS / peak) * 10.0 ** (gain_db / 20.0) if peak > 0 else x
                share = float(np.mean(np.abs(np.rint(y)) > 32767)) if len(y) else 0.0
                extra = [round(gain_db, 2), round(share, 4)]
            elif cond == "loss":
                probability = float(rng.uniform(0.03, 0.10))
                packet = int(round(0.02 * rate))
                lost = rng.random((len(x) + packet - 1) // packet) < probability
                y = x.copy()
                for k in np.flatnonzero(lost):
                    y[k * packet:(k + 1) * packet] = 0.0
                extra = [round(probability, 4), round(float(lost.mean()) if len(lost) else 0.0, 4)]
            elif cond == "gated":
                level = -45.0 + float(rng.uniform(-3.0, 3.0))
                atten = float(rng.uniform(25.0, 35.0))
                y, closed = noise_gate(x + db_to_rms(level) * pink_noise(rng, len(x), rate), rate, level, atten)
                extra = [round(level, 2), round(atten, 2), round(closed, 3)]
            elif cond.startswith("music"):
                snr = float(cond[5:])
                tracks = music_tracks(args.music_dir)
                k = int(rng.integers(0, len(tracks)))
                name_k, track = tracks[k]
                if rate != 16000:
                    track = resample(track, 16000, rate)
                reps = int(np.ceil((len(x) + 1) / max(len(track), 1)))
                loop = np.tile(track, reps) if reps > 1 else track
                whole = rms(track)
                for _ in range(20):
                    off = int(rng.integers(0, max(len(loop) - len(x), 0) + 1))
                    seg = loop[off:off + len(x)]
                    if rms(seg) > whole * 0.1:
                        break
                rs, rm = rms(x), rms(seg)
                y = x + seg * (rs / rm) * 10.0 ** (-snr / 20.0) if rs > 0 and rm > 0 else x.copy()
                actual = 20 * np.log10(rs / rms(y - x)) if rs > 0 and rms(y - x) > 0 else float("nan")
                extra = [name_k, off, snr, round(float(actual), 2)]
            elif cond == "denoised":
                snr = float(rng.uniform(12.0, 20.0))
                amount = float(rng.uniform(0.2, 0.4))
                lead = int(rate)
                xp = np.concatenate([np.zeros(lead), x])
                noise = pink_noise(rng, len(xp), rate)
                rs = rms(x)
                noisy = xp + noise * (rs * 10.0 ** (-snr / 20.0) / max(rms(noise), 1e-9))
                y = denoise_with_sox(noisy, rate, amount)
                extra = [round(snr, 2), round(amount, 3)]
            elif cond == "echo":
                delay = int(round(float(rng.uniform(0.10, 0.25)) * rate))
                down = float(rng.uniform(8.0, 14.0))
                y = x.copy()
                if delay < len(x):
                    y[delay:] += x[:-delay] * 10.0 ** (-down / 20.0)
                extra = [round(down, 2), round(delay / rate, 4)]
            elif cond == "talker":
                sir = float(rng.uniform(12.0, 20.0))
                others = [k for k in range(n) if k != i]
                k = int(rng.choice(others)) if others else i
                b = src.audio_at(k, rate)
                if len(b) == 0:
                    b = np.zeros(1)
                reps = int(np.ceil((len(x) + len(b)) / len(b)))
                off = int(rng.integers(0, len(b)))
                other = np.tile(b, reps)[off:off + len(x)]
                la, lb = active_rms(x, rate), active_rms(other, rate)
                y = x + other * (la / lb) * 10.0 ** (-sir / 20.0) if la > 0 and lb > 0 else x.copy()
                extra = [round(sir, 2), k]
            elif cond == "clicks":
                below = float(rng.uniform(0.0, 10.0))
                y = x + keyboard_clicks(rng, len(x), rate, float(np.max(np.abs(x))) if len(x) else 0.0, below)
                extra = [round(below, 2)]
            elif cond == "dcoffset":
                below = float(rng.uniform(0.0, 12.0))
                sign = 1.0 if rng.random() < 0.5 else -1.0
                offset = sign * rms(x) * 10.0 ** (-below / 20.0)
                peak = float(np.max(np.abs(x))) if len(x) else 0.0
                scale = min(1.0, 0.99 * FS / (peak + abs(offset))) if peak > 0 else 1.0
                y = (x + offset) * scale
                extra = [round(below, 2), int(sign), round(20.0 * np.log10(scale), 2)]
            elif cond.startswith("snr"):
                snr = float(cond[3:])
                kind = NOISE_KINDS[i % 4]
                babble_src = ""
                if kind == "babble" and n < 2:
                    kind = "pink"  # no other utterance to babble with
                if kind == "white":
                    noise = white_noise(rng, len(x))
                elif kind == "pink":
                    noise = pink_noise(rng, len(x), rate)
                elif kind == "brown":
                    noise = brown_noise(rng, len(x), rate)
                else:
                    others = [k for k in range(n) if k != i]
                    pick = rng.choice(others, size=4, replace=len(others) < 4)
                    noise = np.zeros(len(x))
                    for k in pick:
                        b = src.audio_at(int(k), rate)
                        rb = rms(b)
                        if rb == 0 or len(b) == 0:
                            continue
                        reps = int(np.ceil((len(x) + len(b)) / len(b)))
                        loop = np.tile(b / rb, reps)
                        off = int(rng.integers(0, len(b)))
                        noise += loop[off:off + len(x)]
                    babble_src = " ".join(str(int(k)) for k in pick)
                    rn = rms(noise)
                    noise = noise / rn if rn > 0 else noise
                rs = rms(x)
                y = x + noise * rs * 10.0 ** (-snr / 20.0)
                actual = 20 * np.log10(rs / rms(y - x)) if rs > 0 and rms(y - x) > 0 else float("nan")
                extra = [kind, snr, round(float(actual), 2), babble_src]
            else:
                raise ValueError(cond)
            y16, c = to_int16(y)
            clipped_total += c
            path = out_name(i)
            write_wav(path, y16, out_rate)
            total_sec += len(y16) / out_rate
            lines.append((path, src.rows[i][1]))
            info.append([path, src.rows[i][0], out_rate, round(len(y16) / out_rate, 3)] + extra)

    if cond.startswith("snr"):
        desc = DESCRIPTIONS["snr"].format(snr=cond[3:])
    elif cond.startswith("music"):
        desc = DESCRIPTIONS["music"].format(snr=cond[5:]) + f"; tracks: {args.music_dir}"
    else:
        desc = DESCRIPTIONS[cond]
    header = [
        f"# robust: {name}_{cond} = condition '{cond}' applied to {src.path} ({n} utterances -> {len(lines)} files, "
        f"{total_sec:.1f} s)",
        f"# condition: {desc}",
        f"# command: {command}",
        f"# seed: {args.seed} (numpy default_rng per (seed, manifest name, condition, utterance index)); "
        f"16-bit PCM mono WAV; per-file parameters in {name}_{cond}.info.tsv",
        f"# clipped samples (int16 range, total): {clipped_total}",
        "# derived from the same recordings as the source; same licence. Source manifest comments:",
    ] + ["#   " + c.lstrip("#").strip() for c in src.comments]
    write_outputs(args.out, f"{name}_{cond}", fp, header, lines, info_header, info)
    log(f"  {name}_{cond}: {len(lines)} files, {total_sec:.1f} s audio, clipped {clipped_total}, "
        f"{time.time() - t0:.1f} s")
    return clipped_total


SYNTH = {  # sox -n synth effects of each tonal non-speech file (label -> effects), 10 s at 16 kHz
    "beeps_1kHz_-20dBFS": ["synth", "0.3", "sine", "1000", "pad", "0", "0.7", "repeat", "9"],
    "dtmf_-20dBFS": ["synth", "0.2", "sine", "697", "sine", "1209", "channels", "1", "pad", "0", "0.3",
                     "repeat", "19"],
    "melody_pluck_-20dBFS": ["synth", "0.4", "pluck", "C4", ":", "synth", "0.4", "pluck", "E4", ":",
                             "synth", "0.4", "pluck", "G4", ":", "synth", "0.4", "pluck", "A4", ":",
                             "synth", "0.4", "pluck", "C5", "repeat", "4"],
    "chord_pluck_-20dBFS": ["synth", "2", "pluck", "C3", "pluck", "E3", "pluck", "G3", "pluck", "C4",
                            "channels", "1", "repeat", "4"],
    "tremolo_440Hz_-20dBFS": ["synth", "10", "sine", "440", "tremolo", "6", "80"],
    "sweep_100-4000Hz_-20dBFS": ["synth", "10", "sine", "100-4000"],
    "square_220Hz_-30dBFS": ["synth", "10", "square", "220"],
    "pink_pulsing_4Hz_-30dBFS": ["synth", "10", "pinknoise", "tremolo", "4", "90"],
    "brown_pulsing_1.5Hz_-25dBFS": ["synth", "10", "brownnoise", "tremolo", "1.5", "70"],
}


def sox_synth(label, rate, n):
    """The tonal file `label` (SYNTH) as float samples, cut or padded to n."""
    out = run_sox(["-n"] + raw_f32(rate) + ["-"] + SYNTH[label])
    y = np.frombuffer(out, dtype="<f4").astype(np.float64) * FS
    return np.concatenate([y, np.zeros(max(0, n - len(y)))])[:n]


def non_speech(args, command):
    fp = f"{VERSION} seed={args.seed} nonspeech+tonal+pulsing"
    wavdir = fresh_output(args.out, "nonspeech", fp)
    if wavdir is None:
        return
    rate, n = 16000, 160000
    items = [
        ("silence", None, None),
        ("white_-30dBFS", "white", -30.0),
        ("pink_-30dBFS", "pink", -30.0),
        ("brown_-30dBFS", "brown", -30.0),
        ("hum60_-25dBFS", "hum60", -25.0),
        ("hum50_-25dBFS", "hum50", -25.0),
        ("pink_-60dBFS", "pink", -60.0),
        ("tel8k_ulaw_pink_-35dBFS", "telpink", -35.0),
        # Tonal sounds (sox synth, not the training generator's): beeps, a DTMF-like two-tone, plucked
        # notes and chords, a warbling tone, a sweep, a square wave.
        ("beeps_1kHz_-20dBFS", "synth", -20.0),
        ("dtmf_-20dBFS", "synth", -20.0),
        ("melody_pluck_-20dBFS", "synth", -20.0),
        ("chord_pluck_-20dBFS", "synth", -20.0),
        ("tremolo_440Hz_-20dBFS", "synth", -20.0),
        ("sweep_100-4000Hz_-20dBFS", "synth", -20.0),
        ("square_220Hz_-30dBFS", "synth", -30.0),
        # Noise that rises and falls (wind, breathing, a fan): sox's noise through its tremolo.
        ("pink_pulsing_4Hz_-30dBFS", "synth", -30.0),
        ("brown_pulsing_1.5Hz_-25dBFS", "synth", -25.0),
    ]
    lines, info, clipped_total = [], [], 0
    for idx, (label, kind, level) in enumerate(items):
        rng = rng_for(args.seed, "nonspeech", label, idx)
        out_rate = rate
        if kind is None:
            y = np.zeros(n)
        elif kind == "white":
            y = db_to_rms(level) * white_noise(rng, n)
        elif kind == "pink":
            y = db_to_rms(level) * pink_noise(rng, n, rate)
        elif kind == "brown":
            y = db_to_rms(level) * brown_noise(rng, n, rate)
        elif kind.startswith("hum"):
            y = db_to_rms(level) * hum(rng, n, rate, float(kind[3:]))
        elif kind == "synth":
            y = sox_synth(label, rate, n)
            y = y * db_to_rms(level) / rms(y)
        elif kind == "telpink":
            bp = sox_float(pink_noise(rng, n, rate), rate, 8000, ["rate", "-h", "8000", "sinc", "300-3400"])
            bp = bp * db_to_rms(level) / rms(bp)
            bp16, c = to_int16(bp)
            clipped_total += c
            y = codec_roundtrip(bp16, "ulaw")
            out_rate = 8000
        y16, c = to_int16(y)
        clipped_total += c
        path = os.path.join(wavdir, f"{idx:02d}_{label}.wav")
        write_wav(path, y16, out_rate)
        lines.append((path, ""))
        info.append([path, out_rate, round(len(y16) / out_rate, 3), label,
                     "-inf" if not np.any(y16) else round(20 * np.log10(rms(y16.astype(float)) / FS), 2)])
    header = [
        "# robust: nonspeech = 10 s files without speech; labels empty (expected output: no phones)",
        "# files: digital silence; white, pink (20 Hz-Nyquist), brown (leaky integral, 20 Hz) noise at -30 dBFS RMS; "
        "60 Hz and 50 Hz hum (6 harmonics) at -25 dBFS; pink at -60 dBFS; telephone pink (sox rate -h 8000, "
        "sinc 300-3400, G.711 u-law, 8 kHz output) at -35 dBFS; tonal sounds made with sox synth (effects in "
        "make_robust.py's SYNTH) at -20 dBFS RMS (square wave -30); 16 kHz unless said",
        f"# command: {command}",
        f"# seed: {args.seed}; per-file parameters in nonspeech.info.tsv",
        f"# clipped samples (int16 range, total): {clipped_total}",
    ]
    write_outputs(args.out, "nonspeech", fp, header, lines, ["file", "rate", "seconds", "what", "rms_dbfs"], info)
    log(f"  nonspeech: {len(lines)} files")


def music_non_speech(args, command, count=24):
    """OUT/nonspeech_music.tsv: `count` 10 s excerpts of real instrumental tracks, no speech."""
    fp = f"{VERSION} seed={args.seed} nonspeech_music count={count} dir={args.music_dir}"
    wavdir = fresh_output(args.out, "nonspeech_music", fp)
    if wavdir is None:
        return
    tracks = music_tracks(args.music_dir)
    rng = rng_for(args.seed, "nonspeech_music", "music", 0)
    picks = rng.choice(len(tracks), size=min(count, len(tracks)), replace=False)
    n = 160000
    lines, info = [], []
    for idx, k in enumerate(sorted(int(k) for k in picks)):
        name, x = tracks[k]
        whole = rms(x)
        for _ in range(20):  # an excerpt near the track's level, not a fade or a pause
            off = int(rng.integers(0, max(len(x) - n, 0) + 1))
            seg = x[off:off + n]
            if rms(seg) > whole * 0.3:
                break
        level = -20.0 + float(rng.uniform(-10.0, 10.0))
        y16, _ = to_int16(seg * db_to_rms(level) / rms(seg) if rms(seg) > 0 else seg)
        path = os.path.join(wavdir, f"{idx:02d}_{name}.wav")
        write_wav(path, y16, 16000)
        lines.append((path, ""))
        info.append([path, 16000, round(len(y16) / 16000, 3), name, off, round(level, 2)])
    header = [
        "# robust: nonspeech_music = 10 s excerpts of instrumental music without speech; labels empty "
        "(expected output: no phones)",
        f"# files: one excerpt each of {len(lines)} tracks drawn from {args.music_dir} (recipes/music/get_music.sh: "
        "game soundtracks from Debian; their SOURCE.md gives the licences), from a uniform offset where the "
        "excerpt's RMS is within 10 dB of the track's, scaled to -20 dBFS RMS (+-10 dB uniform); 16 kHz",
        f"# command: {command}",
        f"# seed: {args.seed}; per-file parameters in nonspeech_music.info.tsv",
    ]
    write_outputs(args.out, "nonspeech_music", fp, header, lines,
                  ["file", "rate", "seconds", "track", "offset", "rms_dbfs"], info)
    log(f"  nonspeech_music: {len(lines)} files")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", action="append", default=[], help="input manifest (repeatable)")
    ap.add_argument("--out", required=True, help="output folder, e.g. /work/data/robust")
    ap.add_argument("--conditions", default=",".join(ALL_CONDITIONS),
                    help=f"comma-separated subset of {','.join(ALL_CONDITIONS + EXTRA_CONDITIONS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--non-speech", action="store_true", help="also write OUT/nonspeech.tsv")
    ap.add_argument("--music-non-speech", action="store_true",
                    help="also write OUT/nonspeech_music.tsv (10 s excerpts of the --music-dir tracks)")
    ap.add_argument("--music-dir", default=os.path.join(os.environ.get("PHONREC_DATA", "/work/data"), "music_real"),
                    help="16 kHz WAV tracks for the music conditions (recipes/music/get_music.sh)")
    args = ap.parse_args()

    conds = [c.strip() for c in args.conditions.split(",") if c.strip()]
    bad = [c for c in conds if c not in ALL_CONDITIONS + EXTRA_CONDITIONS]
    if bad:
        ap.error(f"unknown condition(s): {','.join(bad)}")
    if "tel8k" in conds and "8k" not in conds:
        conds.insert(conds.index("tel8k"), "8k")
    if not args.manifest and not args.non_speech and not args.music_non_speech:
        ap.error("nothing to do: give --manifest, --non-speech and/or --music-non-speech")
    names = [os.path.splitext(os.path.basename(m))[0] for m in args.manifest]
    if len(set(names)) != len(names):
        ap.error("two input manifests have the same file name; outputs would collide")
    if "room" in conds:
        try:
            import pyroomacoustics  # noqa: F401
        except ImportError:
            sys.exit("make_robust.py: the `room` condition needs pyroomacoustics (pip install pyroomacoustics)")
    if (args.music_non_speech or any(c.startswith("music") for c in conds)) and not os.path.isdir(args.music_dir):
        sys.exit(f"make_robust.py: the music conditions need tracks in {args.music_dir} "
                 "(bash recipes/music/get_music.sh)")
    if shutil.which("sox") is None:
        sys.exit("make_robust.py: the `sox` command is needed (apt-get install sox libsox-fmt-all)")

    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    command = " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable)] + sys.argv)
    t_all = time.time()
    failed = []
    for m in args.manifest:
        t0 = time.time()
        try:
            src = Source(m)
            log(f"{src.path}: {len(src.rows)} utterances")
            for cond in conds:
                process(src, cond, args, command)
        except Exception as e:  # report, go on with the other manifests, exit non-zero at the end
            log(f"ERROR {m}: {e}")
            failed.append(m)
            continue
        log(f"{src.name}: {time.time() - t0:.1f} s")
    if args.non_speech:
        non_speech(args, command)
    if args.music_non_speech:
        music_non_speech(args, command)
    log(f"done in {time.time() - t_all:.1f} s -> {args.out}")
    if failed:
        sys.exit(f"make_robust.py: failed: {' '.join(failed)}")


if __name__ == "__main__":
    main()
