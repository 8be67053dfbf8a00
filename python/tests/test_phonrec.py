"""The Python package against the command line: the same recogniser, aligner and features, so the same
results on the audio/ examples; arrays of every dtype and layout read as the WAV reader reads files;
bad input raises a clear exception.

Run from anywhere (paths are relative to this file); the comparisons need the CLI binary, by default
`target/release/phonrec` of this repository (`PHONREC_CLI=path` to choose another). Without it they
are skipped, unless `PHONREC_CLI` is set (as CI does): then a missing binary is a failure.
"""

import io
import json
import os
import pathlib
import pickle
import subprocess
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import phonrec

ROOT = pathlib.Path(__file__).resolve().parents[2]
AUDIO = ROOT / "audio"
FILES = sorted(AUDIO.glob("*.wav"))
SUIT = AUDIO / "slt_dark_suit_16k.wav"
SUIT_TEXT = "She had your dark suit in greasy wash water all year."
SUIT_WORDS = SUIT_TEXT.lower().rstrip(".").split()

# The CLI prints times and confidences to 3 decimals.
CLI_ROUNDING = 5e-4 + 1e-6
# Confidences of a file recognised alone (this package, file by file) against the CLI's batch: the
# default precision projects the inputs in bf16 where the CPU has AVX512-BF16, and without AMX the
# batched and single-row products sum in another order (one confidence 0.9575 against 0.9570 on an
# AMD Zen 4). Phones and times stay equal.
ONE_BY_ONE = CLI_ROUNDING + 2e-3


@pytest.fixture(scope="session")
def cli():
    path = os.path.abspath(os.environ.get("PHONREC_CLI") or ROOT / "target" / "release" / "phonrec")
    if not os.path.isfile(path):
        if os.environ.get("PHONREC_CLI"):
            pytest.fail(f"PHONREC_CLI={path} does not exist")
        pytest.skip(f"no phonrec binary at {path} (cargo build --release) to compare with")

    def run(*args, **kwargs):
        result = subprocess.run([path, *map(str, args)], capture_output=True, check=False, **kwargs)
        assert result.returncode == 0, result.stderr.decode()
        return result.stdout

    return run


@pytest.fixture(scope="session")
def recognizer():
    return phonrec.Recognizer()


def cli_json_lines(stdout):
    return [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]


def read_wav(path):
    """Samples as Python's wave module gives them: int16 [frames] or [frames, channels], and the rate."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        channels = w.getnchannels()
        rate = w.getframerate()
    return (data if channels == 1 else data.reshape(-1, channels)), rate


def write_wav(path, samples, rate, width):
    """Write integer samples [frames] or [frames, channels] as a PCM WAV of `width` bytes per sample."""
    samples = np.asarray(samples)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    dtype = {1: "u1", 2: "<i2", 4: "<i4"}[width]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.astype(dtype).tobytes())


def assert_same_transcript(py, cli_record, times_tol=1e-6, confidence_tol=CLI_ROUNDING):
    """A Transcript equal to a `transcribe --format json` record: the same phones, times (frame
    multiples, which 3 decimals write exactly), confidences and segments to the CLI's rounding."""
    assert " ".join(py.labels) == cli_record["phones"]
    assert len(py.phones) == len(cli_record["spans"])
    for ours, theirs in zip(py.phones, cli_record["spans"]):
        assert ours.phone == theirs["phone"]
        assert abs(ours.start - theirs["start"]) <= times_tol, (ours, theirs)
        assert abs(ours.end - theirs["end"]) <= times_tol, (ours, theirs)
        assert abs(ours.confidence - theirs["confidence"]) <= confidence_tol, (ours, theirs)
    assert abs(py.duration - cli_record["duration"]) <= CLI_ROUNDING
    assert len(py.segments) == len(cli_record["segments"])
    for ours, theirs in zip(py.segments, cli_record["segments"]):
        assert np.allclose(ours, theirs, atol=1e-6)
    # The CLI writes "clipped" (4 decimals) and "dereverberated" only when they apply.
    assert abs(py.clipped - cli_record.get("clipped", 0.0)) <= 5e-5
    # ... and "concealed_dropouts" / "concealed_s" (3 decimals) only when there were any.
    assert py.concealed_dropouts == cli_record.get("concealed_dropouts", 0)
    assert abs(py.concealed_s - cli_record.get("concealed_s", 0.0)) <= CLI_ROUNDING
    assert py.spectral_holes_filled == cli_record.get("spectral_holes_filled", False)
    assert py.clicks_removed == cli_record.get("clicks_removed", 0)
    assert py.levels_raised == cli_record.get("levels_raised", 0)
    # The CLI writes the offset to 0.1 dB, only when one was removed.
    if "dc_offset_dbfs" in cli_record:
        assert abs(py.dc_offset_dbfs - cli_record["dc_offset_dbfs"]) <= 0.05 + 1e-6
    else:
        assert py.dc_offset_dbfs is None
    assert py.dereverberated == cli_record.get("dereverberated", False)
    assert py.narrowband == cli_record.get("narrowband", False)
    assert abs(py.vtln_warp - cli_record.get("vtln_warp", 1.0)) <= 1e-6
    # The CLI writes the peak to 0.1 dB, null for digital silence.
    if cli_record["peak_dbfs"] is None:
        assert py.peak_dbfs is None
    else:
        assert abs(py.peak_dbfs - cli_record["peak_dbfs"]) <= 0.05 + 1e-6


def assert_same_phones(a, b, confidence_tol=1e-6):
    assert a.labels == b.labels
    for x, y in zip(a.phones, b.phones):
        assert abs(x.start - y.start) <= 1e-6 and abs(x.end - y.end) <= 1e-6, (x, y)
        assert abs(x.confidence - y.confidence) <= confidence_tol, (x, y)


# --- the CLI's results ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_transcribe_equals_the_cli(cli, recognizer, path):
    (record,) = cli_json_lines(cli("transcribe", "--format", "json", path))
    transcript = recognizer.transcribe(path)
    assert transcript.phones, "the examples all have phones"
    assert transcript.source == str(path)
    assert_same_transcript(transcript, record)


def test_8_khz_audio_stored_at_16_khz_is_heard_at_8_khz_as_the_cli_does(cli, recognizer, tmp_path):
    samples, rate = read_wav(AUDIO / "fsdd_7_jackson_0_8k.wav")
    assert rate == 8000
    # Band-limited interpolation to 16 kHz (nothing above 4 kHz), then 16 bits with triangular
    # dither of +-1 LSB, as `sox in.wav -r 16000 out.wav` writes it.
    spectrum = np.fft.rfft(samples.astype(np.float64))
    wide = np.zeros(len(samples) + 1, dtype=complex)
    wide[: len(spectrum)] = spectrum * 2.0
    up = np.fft.irfft(wide, 2 * len(samples))
    rng = np.random.default_rng(5)
    dither = rng.uniform(-1, 1, len(up)) + rng.uniform(-1, 1, len(up))
    path = tmp_path / "jackson_16k.wav"
    write_wav(path, np.clip(np.rint(up + dither), -32768, 32767), 16000, 2)
    (record,) = cli_json_lines(cli("transcribe", "--format", "json", path))
    transcript = recognizer.transcribe(path)
    assert_same_transcript(transcript, record)
    assert transcript.narrowband and record["narrowband"] is True
    assert not recognizer.transcribe(AUDIO / "fsdd_7_jackson_0_8k.wav").narrowband
    assert not recognizer.transcribe(SUIT).narrowband
    kept = phonrec.Recognizer(narrowband_as_8k=False).transcribe(path)
    assert not kept.narrowband


def test_a_dc_offset_is_removed_and_reported_as_the_cli_does(cli, recognizer, tmp_path):
    samples, rate = read_wav(SUIT)
    path = tmp_path / "offset.wav"
    # An offset of 3000 (-20.8 dBFS), far over the clip's pauses.
    write_wav(path, np.clip(samples.astype(np.int32) + 3000, -32768, 32767), rate, 2)
    (record,) = cli_json_lines(cli("transcribe", "--format", "json", path))
    transcript = recognizer.transcribe(path)
    assert_same_transcript(transcript, record)
    assert abs(transcript.dc_offset_dbfs - 20 * np.log10(3000 / 32768)) < 0.5, transcript.dc_offset_dbfs
    assert transcript.labels == recognizer.transcribe(SUIT).labels
    assert recognizer.transcribe(SUIT).dc_offset_dbfs is None


def test_transcribe_batch_equals_the_cli_on_the_folder(cli, recognizer):
    # `phonrec transcribe audio/` recognises the three files together (shared network batches).
    records = cli_json_lines(cli("transcribe", "--format", "json", AUDIO))
    assert [pathlib.Path(r["file"]).name for r in records] == [p.name for p in FILES]
    batch = recognizer.transcribe_batch(FILES)
    for transcript, record in zip(batch, records):
        assert_same_transcript(transcript, record)


def test_batch_equals_one_by_one(recognizer):
    samples, rate = read_wav(SUIT)
    inputs = [*FILES, (samples, rate), str(SUIT)]
    batch = recognizer.transcribe_batch(inputs)
    alone = [recognizer.transcribe(*i) if isinstance(i, tuple) else recognizer.transcribe(i) for i in inputs]
    assert len(batch) == len(inputs)
    for b, a in zip(batch, alone):
        # Batched products round differently in the last bits; the phones and times do not move.
        # Where int8 projects the upper layers' inputs in 8 bits (AVX512-VNNI without AMX),
        # such a difference can cross one of the 127ths those inputs are rounded to, which moved a
        # confidence by 1.7e-3: the same slack as the CLI's batched-against-single test.
        assert_same_phones(b, a, confidence_tol=5e-3)
    assert batch[-1].source == str(SUIT) and batch[-2].source is None


def test_probs_equal_the_cli(cli, recognizer, tmp_path):
    for path in FILES:
        out = tmp_path / (path.stem + ".npy")
        cli("probs", path, "--format", "npy", "--output", out)
        expected = np.load(out)
        sidecar = json.loads((tmp_path / (path.stem + ".npy.json")).read_text())
        probs = recognizer.probs(path)
        assert probs.probs.dtype == np.float32
        assert probs.probs.shape == expected.shape
        np.testing.assert_allclose(probs.probs, expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(probs.probs.sum(axis=1), 1.0, atol=1e-4)
        assert probs.columns == sidecar["phones"] == recognizer.columns
        assert probs.frame_shift == pytest.approx(sidecar["frame_shift_s"])
        assert probs.times[1] == pytest.approx(probs.frame_shift)
        # The transcript decoded on the way is transcribe's.
        assert_same_phones(probs.transcript, recognizer.transcribe(path))
        # Unpacks as a tuple, too; log=True gives the logarithms.
        array, columns, shift, _ = probs
        log = recognizer.probs(path, log=True).probs
        np.testing.assert_allclose(np.exp(log), array, atol=1e-6)


@pytest.mark.parametrize(
    "flags, options",
    [
        ([], {}),
        (["--kind", "mfcc", "--deltas", "--cmvn"], dict(kind="mfcc", deltas=True, cmvn=True)),
        (
            ["--num-mel-bins", "40", "--resample", "16000", "--snip-edges", "false", "--use-energy"],
            dict(num_mel_bins=40, resample=16000, snip_edges=False, use_energy=True),
        ),
    ],
    ids=["defaults", "mfcc-deltas-cmvn", "resampled-40-bins"],
)
def test_features_equal_the_cli(cli, tmp_path, flags, options):
    for path in FILES:
        out = tmp_path / (path.stem + ".npy")
        cli("features", path, "--format", "npy", "--output", out, *flags)
        expected = np.load(out)
        ours = phonrec.features(path, **options)
        assert ours.dtype == np.float32 and ours.shape == expected.shape
        np.testing.assert_array_equal(ours, expected)


def test_features_of_an_array_at_its_own_rate():
    samples, rate = read_wav(AUDIO / "fsdd_7_jackson_0_8k.wav")
    np.testing.assert_array_equal(
        phonrec.features(samples, rate), phonrec.features(AUDIO / "fsdd_7_jackson_0_8k.wav")
    )
    assert phonrec.features(samples, rate).shape[1] == 80


def test_align_equals_the_cli_and_spells_the_text(cli, recognizer):
    alignment = recognizer.align(SUIT, SUIT_TEXT)
    assert [w.word for w in alignment.words] == SUIT_WORDS
    assert alignment.matches_text and alignment.skipped == []
    starts = [w.start for w in alignment.words]
    assert starts == sorted(starts)
    for word in alignment.words:
        assert word.start < word.end
        assert word.phones and word.phones[0].start == word.start and word.phones[-1].end == word.end
    dark = next(w for w in alignment.words if w.word == "dark")
    assert [p.phone for p in dark.phones] == ["d", "aa", "r", "k"]

    record = json.loads(cli("align", SUIT, "--text", SUIT_TEXT, "--format", "json"))
    assert [w["word"] for w in record["words"]] == SUIT_WORDS
    ours = [p for w in alignment.words for p in w.phones]
    theirs = [p for w in record["words"] for p in w["phones"]]
    assert [p.phone for p in ours] == [p["phone"] for p in theirs]
    for p, q in zip(ours, theirs):
        assert abs(p.start - q["start"]) <= CLI_ROUNDING and abs(p.end - q["end"]) <= CLI_ROUNDING
        assert abs(p.confidence - q["confidence"]) <= CLI_ROUNDING
    assert abs(alignment.match_score - record["match_score"]) <= CLI_ROUNDING
    assert alignment.matches_text == record["matches_text"]


def test_score_equals_the_cli(cli, recognizer):
    scores = recognizer.score(SUIT, SUIT_TEXT)
    record = json.loads(cli("score", SUIT, "--text", SUIT_TEXT, "--format", "json"))
    assert [w.word for w in scores.words] == [w["word"] for w in record["words"]] == SUIT_WORDS
    theirs = [p for w in record["words"] for p in w["phones"]]
    assert len(scores.phones) == len(theirs)
    for p, q in zip(scores.phones, theirs):
        assert (p.expected, p.heard, p.mispronounced) == (q["expected"], q["heard"], q["mispronounced"])
        assert abs(p.gop - q["gop"]) <= CLI_ROUNDING
    for w, q in zip(scores.words, record["words"]):
        assert abs(w.score - q["score"]) <= CLI_ROUNDING and w.mispronounced == q["mispronounced"]
    assert scores.threshold == -1.0 and scores.matches_text


def test_align_phones_and_out_of_vocabulary_words(recognizer):
    by_phones = recognizer.align(SUIT, phones="sh iy hh ae d".split() + ["y", "ao1", "r"])
    assert by_phones.words == []
    assert [p.phone for p in by_phones.phones] == ["sh", "iy", "hh", "ae", "d", "y", "aa", "r"]

    with pytest.raises(phonrec.OutOfVocabularyError) as caught:
        recognizer.align(SUIT, "She had your zzqx suit in qqzx wash water all year")
    assert caught.value.words == ["zzqx", "qqzx"]
    assert "zzqx" in str(caught.value) and isinstance(caught.value, phonrec.PhonrecError)
    skipped = recognizer.align(SUIT, "She had your zzqx dark suit", oov="skip")
    assert skipped.skipped == ["zzqx"]
    assert [w.word for w in skipped.words] == ["she", "had", "your", "dark", "suit"]

    with_lexicon = phonrec.Recognizer(lexicon={"zzqx": "D AA1 R K"})
    assert with_lexicon.align(SUIT, "She had your zzqx suit").words[3].word == "zzqx"

    with pytest.raises(ValueError, match=r"\(text=\) or the phones"):
        recognizer.align(SUIT)
    with pytest.raises(ValueError, match="not both"):
        recognizer.align(SUIT, "she", phones="sh iy")
    with pytest.raises(ValueError, match="unknown phone"):
        recognizer.align(SUIT, phones="sh qqq")
    with pytest.raises(ValueError, match="oov"):
        recognizer.align(SUIT, "she", oov="guess")


# --- other models and decoders, as the CLI's flags -------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, flags",
    [
        (dict(model=ROOT / "models" / "default.safetensors"), ["--model", "models/default.safetensors"]),
        (
            dict(model=str(ROOT / "models" / "default.safetensors"), lm=ROOT / "models" / "default-lm.arpa.gz"),
            ["--model", "models/default.safetensors", "--lm", "models/default-lm.arpa.gz"],
        ),
        (dict(no_lm=True), ["--no-lm"]),
        (dict(beam=4, lm_weight=0.6), ["--beam", "4", "--lm-weight", "0.6"]),
        (dict(alphabet="ipa"), ["--alphabet", "ipa"]),
        (dict(precision="bf16"), ["--precision", "bf16"]),
        (dict(precision="f32"), ["--precision", "f32"]),
        (dict(precision="int8"), ["--precision", "int8"]),
        (dict(dereverb="on"), ["--dereverb", "on"]),
        (dict(segment=False), ["--no-segment"]),
        (dict(vtln=True), ["--vtln"]),
        (
            dict(
                repair_clipping=False,
                fill_digital_silence=False,
                pad_edges=False,
                conceal_dropouts=False,
                fill_spectral_holes=False,
                remove_clicks=False,
                equalise_levels=False,
                narrowband_as_8k=False,
            ),
            [
                "--keep-clipping",
                "--keep-digital-silence",
                "--keep-edges",
                "--keep-dropouts",
                "--keep-spectral-holes",
                "--keep-clicks",
                "--keep-levels",
                "--keep-rate",
            ],
        ),
        (dict(floor_below=0), ["--floor-below", "0"]),
        (dict(floor_below=30, unsure_below=0), ["--floor-below", "30", "--unsure-below", "0"]),
    ],
    ids=[
        "model-greedy",
        "model-with-lm",
        "no-lm",
        "beam-weight",
        "ipa",
        "bf16",
        "f32",
        "int8",
        "dereverb-on",
        "no-segment",
        "vtln",
        "keep-clipping-and-zeros",
        "no-floor",
        "floor-30",
    ],
)
def test_decoding_options_equal_the_cli_flags(cli, kwargs, flags):
    recognizer = phonrec.Recognizer(**kwargs)
    records = cli_json_lines(cli("transcribe", "--format", "json", *flags, *FILES, cwd=ROOT))
    # The CLI recognises the files in one network batch, this test one by one: sums in another order
    # (~1e-7 apart), which bf16 can amplify where a step's input lands on the other side of a bf16
    # rounding boundary (steps of 2^-9 relative): confidences ~1e-3 apart, the same phones and times.
    # In bf16 one phone can land further: since dropped packets are concealed (which also fills a gap
    # of exact zeros between two of espeak's vowels in the quick-fox example) its "ey" at 2.22 s came
    # out 0.816 one by one against 0.793 in the batch, the phones and times still equal.
    tolerance = CLI_ROUNDING + {"bf16": 3e-2}.get(kwargs.get("precision"), 2e-3)
    for path, record in zip(FILES, records):
        assert_same_transcript(recognizer.transcribe(path), record, confidence_tol=tolerance)


def test_alternatives_equal_the_cli_and_include_the_confidence(cli):
    recognizer = phonrec.Recognizer(alternatives=3, alphabet="ipa")
    (record,) = cli_json_lines(
        cli("transcribe", "--format", "json", "--alternatives", "3", "--alphabet", "ipa", SUIT)
    )
    transcript = recognizer.transcribe(SUIT)
    assert_same_transcript(transcript, record)
    for phone, span in zip(transcript.phones, record["spans"]):
        assert [a[0] for a in phone.alternatives] == [a["phone"] for a in span["alternatives"]]
        for (_, p), theirs in zip(phone.alternatives, span["alternatives"]):
            assert abs(p - theirs["p"]) <= CLI_ROUNDING
        probabilities = [p for _, p in phone.alternatives]
        assert probabilities == sorted(probabilities, reverse=True)
        if phone.alternatives[0][0] == phone.phone:
            assert abs(phone.alternatives[0][1] - phone.confidence) <= 1e-6
    # Not asked for: none; out of range: refused.
    assert all(p.alternatives == () for p in phonrec.Recognizer().transcribe(SUIT).phones)
    for bad in (-1, 65, 2.5, True):
        with pytest.raises(ValueError, match="alternatives"):
            phonrec.Recognizer(alternatives=bad)


def test_nbest_equals_the_cli_and_starts_with_the_transcript(cli):
    recognizer = phonrec.Recognizer(nbest=4)
    (record,) = cli_json_lines(cli("transcribe", "--format", "json", "--nbest", "4", SUIT))
    transcript = recognizer.transcribe(SUIT)
    assert_same_transcript(transcript, record, confidence_tol=ONE_BY_ONE)
    assert len(transcript.nbest) == len(record["nbest"]) == 4
    assert str(transcript.nbest[0]) == str(transcript)
    for ours, theirs in zip(transcript.nbest, record["nbest"]):
        assert " ".join(ours.phones) == theirs["phones"]
        for name in ("score", "acoustic", "lm"):
            assert abs(getattr(ours, name) - theirs[name]) <= 1e-3
    scores = [h.score for h in transcript.nbest]
    assert scores == sorted(scores, reverse=True)
    # Not asked for: none; more than the beam keeps, greedy decoding or out of range: refused.
    assert phonrec.Recognizer().transcribe(SUIT).nbest == []
    for kwargs, says in (
        (dict(nbest=17), "beam=17"),
        (dict(nbest=2, no_lm=True), "greedy"),
        (dict(nbest=-1), "nbest"),
        (dict(nbest=True), "nbest"),
    ):
        with pytest.raises(ValueError, match=says):
            phonrec.Recognizer(**kwargs)


def test_endpointer_cuts_a_stream_as_phonrec_live_does(cli, recognizer, tmp_path):
    # The three examples at 16 kHz between 1.5 s pauses over a faint seeded floor.
    rng = np.random.default_rng(3)
    pieces = []
    for path in FILES:
        samples, _ = phonrec.load(path, resample=16000)
        pieces += [rng.normal(0, 0.001, 24000).astype(np.float32), samples]
    pieces.append(rng.normal(0, 0.001, 24000).astype(np.float32))
    stream = np.concatenate(pieces)
    floor = rng.normal(0, 0.001, stream.size).astype(np.float32)
    stream = np.clip(stream + floor, -1, 1)
    path = tmp_path / "stream.wav"
    write_wav(path, np.round(stream * 32767), 16000, 2)
    lines = cli("live", path).decode().splitlines()
    assert len(lines) == 3, lines

    endpointer = phonrec.Endpointer(16000)
    int16 = np.round(stream * 32767).astype("<i2")
    utterances = []
    for start in range(0, int16.size, 1000):  # blocks as a sound card delivers them
        utterances += endpointer.push(int16[start : start + 1000])
    assert endpointer.finish() is None  # the stream ends in a pause
    assert len(utterances) == len(lines)
    for utterance, line in zip(utterances, lines):
        start, end, phones = line.split("\t")
        assert abs(utterance.start - float(start)) < 0.006, (utterance.start, line)
        duration = utterance.samples.size / 16000
        assert abs(utterance.start + duration - float(end)) < 0.006, line
        assert utterance.samples.dtype == np.float32
        transcript = recognizer.transcribe(utterance.samples, sample_rate=16000)
        assert " ".join(transcript.labels) == phones
    with pytest.raises(ValueError, match="finished"):
        endpointer.push(int16[:100])
    with pytest.raises(ValueError, match="finished"):
        endpointer.push([])
    with pytest.raises(AttributeError):
        endpointer.sample_rate = 8000  # the rate is the stream's: a new one needs a new endpointer
    with pytest.raises(ValueError, match="pause"):
        phonrec.Endpointer(16000, min_pause=0)
    # One side of a call: the stream in channel 1, channel 0 all but silent, cut as the mono stream
    # is; a block without the asked-for channel is refused.
    call = np.stack([np.zeros_like(int16) + 3, int16], axis=1)
    side = phonrec.Endpointer(16000, channel=1)
    from_call = []
    for start in range(0, int16.size, 1000):
        from_call += side.push(call[start : start + 1000])
    assert side.finish() is None
    assert [u.start for u in from_call] == [u.start for u in utterances]
    for ours, mono in zip(from_call, utterances):
        np.testing.assert_array_equal(ours.samples, mono.samples)
    with pytest.raises(ValueError, match="channel=2"):
        phonrec.Endpointer(16000, channel=2).push(call[:1000])
    with pytest.raises(ValueError, match="channel"):
        phonrec.Endpointer(16000, channel=-1)
    # A damaged sample is refused, as transcribe refuses it (it left the endpointer deaf).
    damaged = phonrec.Endpointer(16000)
    block = np.zeros(1600, dtype=np.float32)
    block[10] = np.nan
    with pytest.raises(ValueError, match="live sample 10 "):
        damaged.push(block)


def test_a_model_fine_tuned_from_the_built_in_one_decodes_as_the_built_in_model(recognizer, tmp_path):
    # The built-in model's file, its metadata saying what `train --init-from builtin` writes.
    data = (ROOT / "models" / "default.safetensors").read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    training = json.loads(header["__metadata__"]["training"])
    training["init_from"] = "builtin"
    header["__metadata__"]["training"] = json.dumps(training)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    tuned = tmp_path / "tuned.safetensors"
    tuned.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size :])
    fine_tuned = phonrec.Recognizer(tuned)
    assert fine_tuned.decoding == recognizer.decoding
    for path in FILES:
        assert fine_tuned.transcribe(path).labels == recognizer.transcribe(path).labels
    # Without the mark the same weights decode greedily.
    assert "greedy" in phonrec.Recognizer(ROOT / "models" / "default.safetensors").decoding


def test_recognizer_properties_and_options(recognizer):
    assert recognizer.sample_rate == 16000 and recognizer.frame_shift == pytest.approx(0.02)
    assert len(recognizer.phones) == 39 and recognizer.columns == ["<blk>", *recognizer.phones]
    assert "beam search of width 16" in recognizer.decoding and "6-gram" in recognizer.decoding
    assert "greedy" in phonrec.Recognizer(no_lm=True).decoding
    assert "ʃ" in phonrec.Recognizer(alphabet="ipa").phones
    with pytest.raises(ValueError, match="beam"):
        phonrec.Recognizer(beam=0)
    with pytest.raises(ValueError, match="beam search"):
        phonrec.Recognizer(beam=1, lm="builtin")
    with pytest.raises(ValueError, match="contradict"):
        phonrec.Recognizer(no_lm=True, lm="builtin")
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        phonrec.Recognizer("no-such-model.safetensors")
    with pytest.raises(ValueError, match="alphabet"):
        phonrec.Recognizer(alphabet="klingon")
    with pytest.raises(ValueError, match="precision"):
        phonrec.Recognizer(precision="f16")
    with pytest.raises(ValueError, match="dereverb"):
        phonrec.Recognizer(dereverb="yes")


def reverberant(samples, rate, rt60_s=0.6, seed=0):
    """`samples` in a synthetic room: convolved with exponentially decaying noise (the energy falls
    60 dB in `rt60_s`) after a direct path, at the dry recording's RMS."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rt60_s * rate)) / rate
    response = rng.standard_normal(t.size) * 10 ** (-3 * t / rt60_s) * 0.3
    response[0] = 1.0
    dry = samples.astype(np.float64) / 32768
    wet = np.convolve(dry, response)
    wet *= np.sqrt(np.mean(dry**2) / np.mean(wet**2))
    return np.clip(np.round(wet * 32768), -32768, 32767).astype(np.int16)


def test_reverberant_recordings_are_dereverberated_as_the_cli_does(cli, recognizer, tmp_path):
    # The dry examples are not dereverberated and not clipped.
    for transcript in recognizer.transcribe_batch(FILES):
        assert not transcript.dereverberated and transcript.clipped == 0.0
    samples, rate = read_wav(SUIT)
    wet = reverberant(samples, rate)
    room = tmp_path / "room.wav"
    write_wav(room, wet, rate, 2)
    (record,) = cli_json_lines(cli("transcribe", "--format", "json", room))
    auto = recognizer.transcribe(wet, rate)
    assert auto.dereverberated and auto.to_dict()["dereverberated"] is True
    assert_same_transcript(auto, record)
    off = phonrec.Recognizer(dereverb="off").transcribe(wet, rate)
    assert not off.dereverberated
    assert off.labels != auto.labels, "dereverberation changes what the network hears"
    assert phonrec.Recognizer(dereverb="on").transcribe(room).dereverberated


def test_clipped_recordings_say_how_much_was_restored(cli, recognizer, tmp_path):
    samples, rate = read_wav(SUIT)
    loud = np.clip(samples.astype(np.int32) * 4, -32768, 32767).astype(np.int16)
    path = tmp_path / "clipped.wav"
    write_wav(path, loud, rate, 2)
    (record,) = cli_json_lines(cli("transcribe", "--format", "json", path))
    transcript = recognizer.transcribe(path)
    assert 0.0 < transcript.clipped < 0.5
    assert_same_transcript(transcript, record)
    kept = phonrec.Recognizer(repair_clipping=False).transcribe(path)
    assert kept.clipped == 0.0
    (record,) = cli_json_lines(cli("transcribe", "--format", "json", "--keep-clipping", path))
    assert_same_transcript(kept, record)


def test_without_segmentation_the_whole_recording_is_one_region(recognizer):
    samples, rate = read_wav(SUIT)
    padded = np.concatenate([np.zeros(2 * rate, np.int16), samples, np.zeros(3 * rate, np.int16)])
    regions = recognizer.transcribe(padded, rate).segments
    assert len(regions) == 1 and regions[0][0] >= 1.5, regions
    whole = phonrec.Recognizer(segment=False).transcribe(padded, rate)
    assert len(whole.segments) == 1 and whole.segments[0][0] == 0.0
    assert whole.segments[0][1] == pytest.approx(whole.duration, abs=0.03)


def test_the_peak_level_is_reported_and_digital_silence_has_none(recognizer):
    samples, rate = read_wav(SUIT)
    peak = 20 * np.log10(np.abs(samples.astype(np.float64)).max() / 32768)
    assert recognizer.transcribe(samples, rate).peak_dbfs == pytest.approx(peak, abs=1e-3)
    silent = recognizer.transcribe(np.zeros(rate, np.int16), rate)
    assert silent.phones == [] and silent.peak_dbfs is None
    assert silent.to_dict()["peak_dbfs"] is None


def test_version_is_the_cli_version(cli):
    assert cli("--version").decode().split() == ["phonrec", phonrec.__version__]


# --- arrays, bytes and file objects ---------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_an_array_read_with_the_wave_module_gives_the_files_phones(recognizer, path):
    samples, rate = read_wav(path)
    assert samples.dtype == np.int16
    assert_same_phones(recognizer.transcribe(samples, rate), recognizer.transcribe(path))
    assert_same_phones(recognizer.transcribe(samples, sample_rate=rate), recognizer.transcribe(path))


def test_dtypes_and_channels_agree(recognizer):
    samples, rate = read_wav(SUIT)
    reference = recognizer.probs(SUIT).probs
    as_float = samples.astype(np.float32) / 32768
    same = {
        "int16": samples,
        "float32": as_float,
        "float64": samples.astype(np.float64) / 32768,
        "int32": samples.astype(np.int32) << 16,
        "two equal channels": np.stack([samples, samples], axis=1),
        "a (samples, 1) column": samples[:, None],
        "non-contiguous": np.stack([as_float, as_float * 0], axis=1)[:, 0],
        "big-endian": samples.astype(">i2"),
        "a list": list(as_float.astype(np.float64)),
    }
    for name, array in same.items():
        np.testing.assert_array_equal(recognizer.probs(array, rate).probs, reference, err_msg=name)
    # int16 samples made floats without dividing: refused, not read as audio at +80 dBFS.
    quiet = samples.astype(np.float32) * (0.05 / np.abs(as_float).max())
    with pytest.raises(ValueError, match="integer samples stored as floats"):
        recognizer.transcribe(quiet, rate)
    # Floats a little over full scale (a gain after the ADC) are audio.
    assert recognizer.transcribe(as_float * 1.5, rate).labels


def test_channels_and_8_bit_are_mixed_and_scaled_as_the_wav_reader_does(recognizer, tmp_path):
    samples, rate = read_wav(SUIT)
    stereo = np.stack([samples, (samples // 3)], axis=1)
    write_wav(tmp_path / "stereo.wav", stereo, rate, 2)
    np.testing.assert_array_equal(
        recognizer.probs(stereo, rate).probs, recognizer.probs(tmp_path / "stereo.wav").probs
    )
    eight_bit = (samples.astype(np.int32) // 256 + 128).astype(np.uint8)
    write_wav(tmp_path / "8bit.wav", eight_bit, rate, 1)
    np.testing.assert_array_equal(
        recognizer.probs(eight_bit, rate).probs, recognizer.probs(tmp_path / "8bit.wav").probs
    )
    thirty_two = samples.astype(np.int32) * 65536 + 12345
    write_wav(tmp_path / "32bit.wav", thirty_two, rate, 4)
    np.testing.assert_array_equal(
        recognizer.probs(thirty_two, rate).probs, recognizer.probs(tmp_path / "32bit.wav").probs
    )


def test_channel_hears_one_side_of_a_call_as_the_cli_does(cli, recognizer, tmp_path):
    samples, rate = read_wav(SUIT)
    # The other side: the same speech reversed in time, half as loud (a different phone sequence).
    other = samples[::-1] // 2
    stereo = np.stack([samples, other], axis=1)
    path = tmp_path / "call.wav"
    write_wav(path, stereo, rate, 2)
    left, right = phonrec.Recognizer(channel=0), phonrec.Recognizer(channel=1)
    # Channel 0 alone is the mono recording; channel 1 is what `--channel 1` hears.
    assert_same_phones(left.transcribe(path), recognizer.transcribe(SUIT))
    (record,) = cli_json_lines(cli("transcribe", "--format", "json", "--channel", "1", path))
    assert_same_transcript(right.transcribe(path), record)
    assert right.transcribe(path).labels != left.transcribe(path).labels
    # Arrays and bytes take the same channel as the file.
    np.testing.assert_array_equal(right.probs(stereo, rate).probs, right.probs(path).probs)
    assert_same_phones(right.transcribe(path.read_bytes()), right.transcribe(path))
    # load and features read one channel too.
    loaded, _ = phonrec.load(path, channel=1)
    np.testing.assert_array_equal(loaded, other.astype(np.float32) / 32768)
    np.testing.assert_array_equal(
        phonrec.features(path, channel=0), phonrec.features(SUIT)
    )
    # A channel the input does not have is an error, never the mix.
    with pytest.raises(phonrec.PhonrecError, match="channel"):
        phonrec.Recognizer(channel=2).transcribe(path)
    with pytest.raises(ValueError, match="channel=2"):
        phonrec.Recognizer(channel=2).transcribe(stereo, rate)
    with pytest.raises(ValueError, match="channel=1"):
        right.transcribe(samples, rate)
    for bad in (-1, 1.5, True, "0"):
        with pytest.raises(ValueError, match="channel must be"):
            phonrec.Recognizer(channel=bad)


def music_like(seed=3, seconds=10.0, rate=16000):
    """Plucked harmonic notes every 0.25 s over a faint hiss: no speech, but sounds the network can
    take for phones."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * 0.25)) / rate
    notes = []
    for _ in range(int(seconds / 0.25)):
        f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
        notes.append(sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12)) * np.exp(-3 * t))
    x = np.concatenate(notes) + rng.normal(0, 0.02, len(notes) * len(t))
    return (x / np.abs(x).max() * 0.3).astype(np.float32), rate


def test_unsure_below_drops_faint_unsure_regions_as_the_cli_does(cli, recognizer, tmp_path):
    music, rate = music_like()
    path = tmp_path / "music.wav"
    write_wav(path, (music * 32767).astype(np.int16), rate, 2)
    keep_all = phonrec.Recognizer(unsure_below=0)
    (record,) = cli_json_lines(cli("transcribe", "--format", "json", "--unsure-below", "0", path))
    assert_same_transcript(keep_all.transcribe(path), record)
    (record,) = cli_json_lines(cli("transcribe", "--format", "json", path))
    assert_same_transcript(recognizer.transcribe(path), record)
    # The default level drops what keeping every region hears in these notes.
    assert len(recognizer.transcribe(path).labels) < len(keep_all.transcribe(path).labels)
    assert_same_phones(phonrec.Recognizer(unsure_below=6).transcribe(path), recognizer.transcribe(path))
    for bad in (-1, 61, float("nan"), "6", True):
        with pytest.raises(ValueError, match="unsure_below must be"):
            phonrec.Recognizer(unsure_below=bad)
    for bad in (-1, 101, float("inf"), "40", False):
        with pytest.raises(ValueError, match="floor_below must be"):
            phonrec.Recognizer(floor_below=bad)


def test_bytes_file_objects_and_pathlike_read_as_the_path(recognizer):
    reference = recognizer.transcribe(SUIT)
    data = SUIT.read_bytes()
    for audio in (data, bytearray(data), memoryview(data), io.BytesIO(data), SUIT, str(SUIT)):
        assert_same_phones(recognizer.transcribe(audio), reference)
    with open(SUIT, "rb") as f:
        assert_same_phones(recognizer.transcribe(f), reference)
    assert recognizer.transcribe(data).source is None
    assert recognizer.transcribe(SUIT).source == str(SUIT)


@pytest.mark.parametrize(
    "name",
    [
        "fsdd_7_jackson_0_8k.opus",
        "fsdd_7_jackson_0_8k.webm",
        "fsdd_7_jackson_0_8k.amr",
        "fsdd_7_jackson_0_8k_amr.3gp",
    ],
)
def test_voice_messages_and_browser_recordings_read_as_the_cli_reads_them(recognizer, cli, name):
    path = ROOT / "tests" / "data" / name
    (record,) = cli_json_lines(cli("transcribe", "--format", "json", path))
    for audio in (path, path.read_bytes()):
        transcript = recognizer.transcribe(audio)
        assert transcript.labels == record["phones"].split()
        assert abs(transcript.duration - record["duration"]) <= CLI_ROUNDING
    # A damaged voice message is this file's error, not a crash of the interpreter.
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2 :] = bytes(len(damaged) - len(damaged) // 2)
    with pytest.raises(phonrec.PhonrecError):
        recognizer.transcribe(bytes(damaged))


# --- bad input ------------------------------------------------------------------------------------


def test_bad_input_raises_clear_exceptions(recognizer, tmp_path):
    samples, rate = read_wav(SUIT)
    with pytest.raises(FileNotFoundError, match="no-such.wav"):
        recognizer.transcribe(tmp_path / "no-such.wav")
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are not samples")
    with pytest.raises(phonrec.PhonrecError, match="not an audio file"):
        recognizer.transcribe(not_audio)
    with pytest.raises(phonrec.PhonrecError, match="not an audio file"):
        recognizer.transcribe(b"neither are these")
    with pytest.raises(phonrec.PhonrecError, match="folder"):
        recognizer.transcribe(tmp_path)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(SUIT.read_bytes()[:1000])
    with pytest.raises(phonrec.PhonrecError, match="truncated.wav"):
        recognizer.transcribe(truncated)
    with pytest.raises(ValueError, match="no samples"):
        recognizer.transcribe(np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match="no samples"):
        recognizer.transcribe(np.zeros((100, 0), np.float32), 16000)
    with_nan = samples.astype(np.float32) / 32768
    with_nan[1000] = np.nan
    with pytest.raises(ValueError, match="sample 1000"):
        recognizer.transcribe(with_nan, rate)
    with pytest.raises(ValueError, match="sample 1000"):
        phonrec.features(with_nan, rate)
    with pytest.raises(ValueError, match="sample_rate is required"):
        recognizer.transcribe(samples)
    with pytest.raises(ValueError, match="sample_rate"):
        recognizer.transcribe(SUIT, 16000)
    with pytest.raises(ValueError, match="outside the supported range"):
        recognizer.transcribe(samples, 100)
    with pytest.raises(ValueError, match="3-D"):
        recognizer.transcribe(np.zeros((10, 10, 2), np.float32), 16000)
    with pytest.raises(ValueError, match="transpose"):
        recognizer.transcribe(np.stack([samples, samples]), rate)
    with pytest.raises(TypeError, match="int64"):
        recognizer.transcribe(samples.astype(np.int64), rate)
    with pytest.raises(TypeError, match="audio must be"):
        recognizer.transcribe(12345)
    with pytest.raises(ValueError, match="kind"):
        phonrec.features(SUIT, kind="plp")
    with pytest.raises(ValueError, match="window"):
        phonrec.features(SUIT, window_type="triangle")
    for error in (FileNotFoundError, ValueError, TypeError, phonrec.PhonrecError):
        assert issubclass(error, Exception)


def test_batch_errors_raise_or_take_their_place(recognizer, tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        recognizer.transcribe_batch([SUIT, missing])
    results = recognizer.transcribe_batch([SUIT, missing, b"junk"], errors="return")
    assert isinstance(results[0], phonrec.Transcript)
    assert isinstance(results[1], FileNotFoundError)
    assert isinstance(results[2], phonrec.PhonrecError)
    with pytest.raises(ValueError, match="item 1: sample_rate is required"):
        recognizer.transcribe_batch([SUIT, np.zeros(100, np.float32)])
    assert recognizer.transcribe_batch([]) == []


# --- threads, the GIL, pickling -------------------------------------------------------------------


def test_one_recognizer_serves_several_threads(recognizer):
    expected = {path: recognizer.transcribe(path) for path in FILES}
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: (p, recognizer.transcribe(p)), FILES * 4))
    for path, transcript in results:
        assert_same_phones(transcript, expected[path])


def test_the_gil_is_released_while_recognising(recognizer):
    samples, rate = read_wav(SUIT)
    long = np.tile(samples, 10)  # 30 s
    counter = [0]
    running = threading.Event()
    stop = threading.Event()

    def count():
        running.set()
        while not stop.is_set():
            counter[0] += 1

    thread = threading.Thread(target=count)
    thread.start()
    running.wait()
    try:
        started = time.perf_counter()
        before = counter[0]
        recognizer.transcribe(long, rate)
        during = counter[0] - before
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        thread.join()
    # With the GIL held for the whole call the counter could not move (a thread switch needs the GIL).
    assert elapsed > 0.05 and during > 1000, (elapsed, during)


def test_results_and_recognizers_pickle(recognizer):
    transcript = recognizer.transcribe(SUIT)
    assert pickle.loads(pickle.dumps(transcript)) == transcript
    alignment = recognizer.align(SUIT, SUIT_TEXT)
    assert pickle.loads(pickle.dumps(alignment)) == alignment
    assert json.dumps(recognizer.score(SUIT, SUIT_TEXT).to_dict())
    copy = pickle.loads(pickle.dumps(phonrec.Recognizer(no_lm=True)))
    assert "greedy" in copy.decoding
    assert str(transcript) == " ".join(transcript.labels)


def test_a_file_object_read_to_its_end_says_so(recognizer):
    with open(SUIT, "rb") as f:
        recognizer.transcribe(f)
        with pytest.raises(ValueError, match="seek"):
            recognizer.transcribe(f)


def test_a_batch_mixes_arrays_with_files_of_every_kind(recognizer):
    samples, rate = phonrec.load(SUIT)
    with open(SUIT, "rb") as f:
        results = recognizer.transcribe_batch(
            [samples, str(SUIT), SUIT.read_bytes(), f], sample_rate=rate
        )
    assert len({tuple(r.labels) for r in results}) == 1, results


def test_times_are_clean_decimals_past_eight_seconds(recognizer):
    samples, rate = phonrec.load(SUIT)
    long = np.concatenate([samples] * 4)
    times = [t for p in recognizer.transcribe(long, rate).phones for t in (p.start, p.end)]
    assert max(times) > 8
    assert all(abs(t * 100 - round(t * 100)) < 1e-6 for t in times), times


def test_a_short_channels_first_clip_is_refused_not_read_as_a_thousand_channels(recognizer):
    clip = np.zeros((2, 1000), dtype=np.float32)
    with pytest.raises(ValueError, match="array.T"):
        recognizer.transcribe(clip, 16000)


def test_options_without_effect_warn_as_the_cli_does():
    with pytest.warns(UserWarning, match="no_lm=True"):
        phonrec.Recognizer(no_lm=True, lm_weight=0.5)
    with pytest.warns(UserWarning, match="beam=1"):
        phonrec.Recognizer(beam=1, insertion_bonus=1.0)


def test_numpy_integers_are_integers_for_options():
    r = phonrec.Recognizer(beam=np.int64(4), alternatives=np.int32(2), nbest=np.int64(2))
    assert len(r.transcribe(SUIT).nbest) == 2
    with pytest.raises(ValueError, match="beam"):
        phonrec.Recognizer(beam=True)


def test_nothing_to_align_is_an_error_not_an_empty_result(recognizer):
    # An empty result read as "nothing mispronounced"; the CLI refuses it.
    for call in (recognizer.align, recognizer.score):
        with pytest.raises(ValueError, match="empty"):
            call(SUIT, "  ...  ")
        with pytest.raises(ValueError, match="qqfoo zzbar"):
            call(SUIT, "qqfoo zzbar", oov="skip")
        with pytest.raises(ValueError, match="empty"):
            call(SUIT, phones="")


def test_errors_pickle_so_worker_processes_can_report_them(recognizer):
    # multiprocessing sends a worker's exception to the parent pickled.
    with pytest.raises(phonrec.OutOfVocabularyError) as oov:
        recognizer.align(SUIT, "she had qqfoo")
    copy = pickle.loads(pickle.dumps(oov.value))
    assert type(copy) is phonrec.OutOfVocabularyError and copy.words == ["qqfoo"]
    assert str(copy) == str(oov.value)
    assert "Recognizer(lexicon=...)" in str(copy) and "--" not in str(copy), str(copy)
    with pytest.raises(phonrec.PhonrecError) as bad:
        recognizer.transcribe(b"not audio at all")
    assert str(pickle.loads(pickle.dumps(bad.value))) == str(bad.value)


def _transcribe_in_worker(path):
    return phonrec.Recognizer().transcribe(path).labels


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_a_forked_worker_recognises_after_the_parent_did(recognizer):
    # A child forked after the parent used phonrec inherited its thread pool without the threads,
    # and waited for them forever (multiprocessing's default start method on Linux).
    import multiprocessing

    expected = recognizer.transcribe(SUIT).labels
    with multiprocessing.get_context("fork").Pool(2) as pool:
        result = pool.map_async(_transcribe_in_worker, [str(SUIT), str(SUIT)])
        assert result.get(timeout=120) == [expected, expected]


# --- load -----------------------------------------------------------------------------------------


def test_load_reads_files_as_phonrec_does():
    wav_path = ROOT / "audio" / "fsdd_7_jackson_0_8k.wav"
    samples, rate = phonrec.load(wav_path)
    with wave.open(str(wav_path)) as w:
        expected = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    assert rate == 8000 and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, expected / 32768)
    # Bytes and file objects read as the path; the resampler's length follows the rate.
    np.testing.assert_array_equal(phonrec.load(wav_path.read_bytes())[0], samples)
    with open(wav_path, "rb") as f:
        np.testing.assert_array_equal(phonrec.load(f)[0], samples)
    up, up_rate = phonrec.load(wav_path, resample=16000)
    assert up_rate == 16000 and abs(len(up) - 2 * len(samples)) <= 2
    # Lossy copies are read gapless: the WAV's length to within 1 ms (8 samples), not a codec
    # frame longer; AMR decodes as the 3GPP reference decoder does (within its 13-bit output).
    data = ROOT / "tests" / "data"
    for name in ["fsdd_7_jackson_0_8k.m4a", "fsdd_7_jackson_0_8k.mp3", "fsdd_7_jackson_0_8k.ogg"]:
        lossy, lossy_rate = phonrec.load(data / name)
        assert lossy_rate == 8000 and abs(len(lossy) - len(samples)) <= 8, name
    amr, amr_rate = phonrec.load(data / "fsdd_7_jackson_0_8k.amr")
    reference, _ = phonrec.load(data / "fsdd_7_jackson_0_8k_amr_decoded.wav")
    assert amr_rate == 8000 and len(amr) == len(reference)
    assert np.max(np.abs(amr - reference)) <= 7 / 32768
    with pytest.raises(TypeError):
        phonrec.load(samples)
    with pytest.raises(ValueError):
        phonrec.load(wav_path, resample=10)
    with pytest.raises(phonrec.PhonrecError):
        phonrec.load(b"not audio at all")
