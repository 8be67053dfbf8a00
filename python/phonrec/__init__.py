"""phonrec: phoneme recognition, forced alignment and pronunciation scoring, in Rust, with the model inside.

No PyTorch and no downloads: the default model (a 3-layer bidirectional LSTM trained with CTC), its phone
6-gram LM, its phone-boundary model and the CMU Pronouncing Dictionary are compiled into the extension
module. Phones are lowercase ARPAbet (the 39 of the TIMIT folding), or IPA with ``alphabet="ipa"``.

    >>> import phonrec
    >>> recognizer = phonrec.Recognizer()
    >>> transcript = recognizer.transcribe("speech.wav")
    >>> [(p.phone, p.start, p.end) for p in transcript.phones]
    >>> alignment = recognizer.align("speech.wav", "the words it says")
    >>> probs = recognizer.probs("speech.wav")        # probs.probs: [frames, phones + blank]
    >>> fbank = phonrec.features("speech.wav")        # 80 log-mel bins, as `phonrec features`

Audio is any of: a path (``str`` or ``os.PathLike``) to a WAV (8–32-bit PCM, 32/64-bit float, µ-law,
A-law), NIST SPHERE, Sun .au, FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF, MP4/M4A, raw AAC, WebM or AMR file; the bytes of such a file (``bytes``, ``bytearray``,
``memoryview`` or a binary file object); or a numpy array of samples with its ``sample_rate``: 1-D
(mono) or 2-D ``(samples, channels)`` (channels are averaged), of dtype float32/float64 (full scale
±1; floats peaking above 64, integer samples stored as floats, are refused), int16, int32, uint8
(8-bit WAV: zero at 128) or int8. Audio at any rate from 8 to 192 kHz is resampled to the model's
16 kHz, exactly as the command line does with files.

Work runs in Rust with the GIL released, so one :class:`Recognizer` can serve several Python threads,
and on a thread pool of each process's own, so forked worker processes (``multiprocessing``) work too.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
import warnings
from dataclasses import dataclass
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

try:
    from . import _phonrec
except ImportError as error:  # pragma: no cover - depends on how the package was reached
    raise ImportError(
        f"phonrec's compiled extension is missing beside {os.path.dirname(__file__)}: that is the "
        "source tree, not the installed package (Python looks in the current folder first, so "
        "`python -m pytest` run inside python/ finds it). Install with `pip install ./python` and "
        "run from another folder (e.g. `python -m pytest python/tests` from the repository root), "
        "or build the extension in place with `maturin develop --release`."
    ) from error
from ._phonrec import OutOfVocabularyError, PhonrecError

__version__: str = _phonrec.__version__

__all__ = [
    "Recognizer",
    "Endpointer",
    "LiveUtterance",
    "features",
    "load",
    "Phone",
    "Hypothesis",
    "Transcript",
    "Probs",
    "Word",
    "Alignment",
    "PhoneScore",
    "WordScore",
    "Scores",
    "PhonrecError",
    "OutOfVocabularyError",
    "__version__",
]


@dataclass(frozen=True)
class Phone:
    """One timed phone.

    Attributes:
        phone: Its name (lowercase ARPAbet for the built-in model, or IPA).
        start: Start time in seconds from the start of the audio (to 0.1 ms).
        end: End time in seconds (exclusive). In alignment, a phone the text expects but the audio
            does not have gets 10 ms from a neighbour in its word (or silence beside it), and a
            confidence near 0.
        confidence: In recognition, the phone's mean posterior over the frames the alignment gives
            it; in alignment, the same for the phone the text expects. In [0, 1].
        alternatives: With ``Recognizer(alternatives=K)``, the K phones with the highest mean
            posterior over the same frames, most probable first, as ``(phone, probability)`` pairs
            (the decoded phone's probability is its confidence; ``--alternatives``); else empty.
    """

    phone: str
    start: float
    end: float
    confidence: float
    alternatives: Tuple[Tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Hypothesis:
    """One entry of a recording's n-best list (``Recognizer(nbest=N)``).

    Attributes:
        phones: The phone names, in order.
        score: What the beam search ranks by (natural log; higher is better): ``acoustic`` plus the
            LM weight times ``lm`` plus the insertion bonus per phone.
        acoustic: ln P(phones | audio) under the network, summed over the alignments the beam kept.
        lm: ln P(phones) under the phone LM (0 without one).
    """

    phones: Tuple[str, ...]
    score: float
    acoustic: float
    lm: float

    def __str__(self) -> str:
        """The phones separated by spaces."""
        return " ".join(self.phones)


@dataclass(frozen=True)
class Transcript:
    """The phones recognised in one recording.

    Attributes:
        phones: The phones in time order, with times and confidences.
        duration: Length of the audio in seconds.
        segments: The speech regions that were decoded, as ``(start, end)`` seconds; silence, pauses
            and noise between them give no phones.
        source: The path the audio was read from (``None`` for arrays and bytes).
        clipped: The share of the samples that were clipped (cut flat at full scale) and restored
            before recognition; 0 when the recording was not clipped.
        dereverberated: Whether late reverberation was removed before recognition (``dereverb`` of
            :class:`Recognizer`: by default when the recording is measured reverberant).
        vtln_warp: The mel warp factor the recording was decoded with (``vtln=True`` of
            :class:`Recognizer` chooses one per recording; 1.0 without VTLN).
        peak_dbfs: The loudest sample as read, in dB relative to full scale (``None`` for digital
            silence). A transcript without phones and a peak far below any microphone's noise floor
            (under about -70) means a muted input or a gain set far too low, not a lack of speech.
        nbest: With ``Recognizer(nbest=N)``, the N best phone sequences the beam search found for
            the recording, best first (the first is ``phones``' sequence; fewer when it found
            fewer); else empty. Speech regions are searched one by one, so the list joins theirs:
            each entry is one sequence per region, its scores their sums.
        concealed_dropouts: Packets lost in voiced speech (runs of 5-100 ms of digital zeros cut
            into it) that were filled from the speech around them before recognition
            (``conceal_dropouts`` of :class:`Recognizer`); 0 when there were none.
        concealed_s: The seconds of audio those dropouts filled.
        spectral_holes_filled: Whether the recording sounded coded at a low bit rate (MP3 at
            16-24 kbit/s leaves holes in the spectrum) and the holes were filled with noise before
            recognition (``fill_spectral_holes`` of :class:`Recognizer`).
        clicks_removed: Clicks (keys, a mouse, a tap: a few milliseconds of broadband sound)
            found and replaced by an interpolation of the sound around them before recognition
            (``remove_clicks`` of :class:`Recognizer`); 0 when there were none.
        levels_raised: Stretches more than 6 dB quieter than the recording's speech level (a
            talker far from the microphone beside a near one) raised to that level before
            recognition (``equalise_levels`` of :class:`Recognizer`); 0 when there were none.
        dc_offset_dbfs: The RMS of a DC offset (a converter or preamplifier that is not
            centred) removed before recognition, dB relative to full scale; ``None`` when the
            recording had none large enough to make its pauses louder.
        narrowband: Whether the recording, stored above 8 kHz, held nothing of its own above
            4 kHz (8 kHz audio converted by another tool) and was recognised at 8 kHz
            (``narrowband_as_8k`` of :class:`Recognizer`).
    """

    phones: List[Phone]
    duration: float
    segments: List[Tuple[float, float]]
    source: Optional[str] = None
    clipped: float = 0.0
    dereverberated: bool = False
    vtln_warp: float = 1.0
    peak_dbfs: Optional[float] = None
    nbest: List[Hypothesis] = dataclasses.field(default_factory=list)
    concealed_dropouts: int = 0
    concealed_s: float = 0.0
    spectral_holes_filled: bool = False
    clicks_removed: int = 0
    levels_raised: int = 0
    dc_offset_dbfs: Optional[float] = None
    narrowband: bool = False

    @property
    def labels(self) -> List[str]:
        """The phone names alone, in order."""
        return [p.phone for p in self.phones]

    def __str__(self) -> str:
        """The phones separated by spaces, as ``phonrec transcribe`` prints them."""
        return " ".join(self.labels)

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field, under this class's names (the information of
        ``phonrec transcribe --format json``, unrounded; the CLI's layout differs: ``spans``, ``p``)."""
        return dataclasses.asdict(self)


class Probs(NamedTuple):
    """What the network hears in every output frame (a named tuple: unpack it or use the names).

    Attributes:
        probs: ``numpy.float32`` array ``[frames, len(columns)]``: each frame's probability of the CTC
            blank and of every phone (each row sums to 1), or natural-log probabilities with
            ``log=True``. Row ``t`` starts at ``t * frame_shift`` seconds.
        columns: The column names: ``"<blk>"`` (the CTC blank), then the phones.
        frame_shift: Seconds between two rows.
        transcript: The phones decoded from these posteriors (what :meth:`Recognizer.transcribe`
            returns for the same audio).
    """

    probs: np.ndarray
    columns: List[str]
    frame_shift: float
    transcript: Transcript

    @property
    def times(self) -> np.ndarray:
        """Start time of every row in seconds (``float64``)."""
        return np.arange(self.probs.shape[0]) * self.frame_shift


@dataclass(frozen=True)
class Word:
    """One aligned word.

    Attributes:
        word: The word as normalised (lowercase, punctuation removed).
        start: Its first phone's start, in seconds.
        end: Its last phone's end, in seconds.
        confidence: The mean of its phones' confidences.
        phones: Its phones (also in :attr:`Alignment.phones`).
    """

    word: str
    start: float
    end: float
    confidence: float
    phones: List[Phone]


@dataclass(frozen=True)
class Alignment:
    """A recording aligned to its text.

    Attributes:
        words: The words in order (empty when phones were aligned).
        phones: Every phone in order; gaps between phones are silence.
        duration: Length of the audio in seconds.
        match_score: How well the audio matches the text: minus the mean log-probability per frame
            that forcing the text costs against what the network hears freely (≤ 0; near 0 when they
            match).
        worst_second_score: The same over the recording's worst second (low when some words of the
            text are not in the audio).
        matches_text: Whether both scores reach phonrec's thresholds (-0.8 and -2.5, as
            ``phonrec align``) and at least half of the text's phones fall where speech is heard;
            ``False`` means the audio probably does not say the text (or says nothing at all).
        skipped: Words left out because the lexicon lacks them (with ``oov="skip"``).
        source: The path the audio was read from (``None`` for arrays and bytes).
    """

    words: List[Word]
    phones: List[Phone]
    duration: float
    match_score: float
    worst_second_score: float
    matches_text: bool
    skipped: List[str]
    source: Optional[str] = None

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PhoneScore:
    """How clearly one expected phone was said.

    Attributes:
        expected: The phone the text expects.
        heard: The strongest phone over its frames (``None`` when no phone reaches 10 %).
        start: Its aligned start, in seconds.
        end: Its aligned end, in seconds.
        gop: Goodness of pronunciation: the peak log posterior of the expected phone over its frames
            minus that of the strongest other phone (about +3 for a clear phone, negative when
            another phone is stronger, low when nothing was said).
        mispronounced: Whether the GOP is below the threshold, or nothing is heard.
    """

    expected: str
    heard: Optional[str]
    start: float
    end: float
    gop: float
    mispronounced: bool


@dataclass(frozen=True)
class WordScore:
    """How well one word was said.

    Attributes:
        word: The word.
        start: Start time in seconds.
        end: End time in seconds.
        score: The lowest GOP of its phones.
        mispronounced: Whether any of its phones is flagged.
        phones: Its phones' scores (also in :attr:`Scores.phones`).
    """

    word: str
    start: float
    end: float
    score: float
    mispronounced: bool
    phones: List[PhoneScore]


@dataclass(frozen=True)
class Scores:
    """A recording's pronunciation scored against its text.

    Attributes:
        words: One score per word (empty when phones were scored).
        phones: One score per expected phone, in order.
        threshold: The GOP below which phones are flagged.
        alignment: The alignment the scores were computed on (times, match scores).
    """

    words: List[WordScore]
    phones: List[PhoneScore]
    threshold: float
    alignment: Alignment

    @property
    def matches_text(self) -> bool:
        """Whether the audio seems to say its text (see :attr:`Alignment.matches_text`)."""
        return self.alignment.matches_text

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


#: What the audio arguments take (see the module documentation).
AudioInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, np.ndarray, Any]


def _integer(value: Any) -> Any:
    """`value` as a Python int when it is an integer of another kind (numpy's); else as it is."""
    if value is None or isinstance(value, (bool, int, np.bool_)):
        return value
    try:
        return operator.index(value)
    except TypeError:
        return value


def _channel(channel: Any) -> Optional[int]:
    """A ``channel=`` argument checked: ``None`` or a channel number from 0."""
    if channel is None:
        return None
    channel = _integer(channel)
    if isinstance(channel, bool) or not isinstance(channel, int) or channel < 0:
        raise ValueError(
            f"channel must be a channel number counted from 0 (or None to mix them), got {channel!r}"
        )
    return channel


def _decibels(name: str, level: Any, most: float) -> float:
    """A level argument in dB checked: a number from 0 to ``most``."""
    message = f"{name} must be a number of dB from 0 to {most:g}, got {level!r}"
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)):
        raise ValueError(message)
    level = float(level)
    if not (math.isfinite(level) and 0.0 <= level <= most):
        raise ValueError(message)
    return level


def _audio(audio: Any) -> Tuple[Any, Optional[str]]:
    """The audio argument as the extension takes it (a ``str`` path, ``bytes`` or a numpy array) and
    the path it names, if any."""
    if isinstance(audio, str):
        return audio, audio
    if isinstance(audio, os.PathLike):
        path = os.fsdecode(os.fspath(audio))
        return path, path
    if isinstance(audio, bytes):
        return audio, None
    if isinstance(audio, (bytearray, memoryview)):
        return bytes(audio), None
    if isinstance(audio, np.ndarray):
        if not audio.dtype.isnative:
            audio = audio.astype(audio.dtype.newbyteorder("="))
        return audio, None
    if hasattr(audio, "read"):
        data = audio.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("a file object passed as audio must be opened in binary mode ('rb')")
        if not data:
            name = getattr(audio, "name", "the file object")
            raise ValueError(
                f"{name}: the file object gave no bytes: an empty file, or one read to its end "
                "already (seek(0) first, or pass its path)"
            )
        return bytes(data), None
    if isinstance(audio, (list, tuple)):
        return np.asarray(audio), None
    raise TypeError(
        "audio must be a path (str or os.PathLike), the bytes of an audio file, a binary file "
        f"object, or a numpy array of samples; got {type(audio).__name__}"
    )


def _phones(items: Sequence[tuple]) -> List[Phone]:
    return [
        Phone(phone, start, end, confidence, tuple(alternatives))
        for (phone, start, end, confidence, alternatives) in items
    ]


def _transcript(raw: tuple, source: Optional[str]) -> Transcript:
    duration, phones, segments, clipped, dereverberated, vtln_warp, peak_dbfs, nbest, repairs = raw
    # `repairs` holds the Transcript fields that follow `nbest`, in their order: concealed_dropouts,
    # concealed_s, spectral_holes_filled, clicks_removed, levels_raised, dc_offset_dbfs, narrowband.
    return Transcript(
        _phones(phones),
        duration,
        list(segments),
        source,
        clipped,
        dereverberated,
        vtln_warp,
        peak_dbfs,
        [Hypothesis(tuple(names), score, acoustic, lm) for (names, score, acoustic, lm) in nbest],
        *repairs,
    )


def _alignment(raw: tuple, source: Optional[str]) -> Alignment:
    duration, match_score, worst_second_score, matches_text, words, phones, skipped = raw
    phones = _phones(phones)
    return Alignment(
        words=[Word(w, s, e, c, phones[a:b]) for (w, s, e, c, a, b) in words],
        phones=phones,
        duration=duration,
        match_score=match_score,
        worst_second_score=worst_second_score,
        matches_text=matches_text,
        skipped=list(skipped),
        source=source,
    )


def _scores(raw: tuple, source: Optional[str]) -> Scores:
    alignment, phones, words, threshold = raw
    phones = [PhoneScore(*p) for p in phones]
    return Scores(
        words=[WordScore(w, s, e, score, bad, phones[a:b]) for (w, s, e, score, bad, a, b) in words],
        phones=phones,
        threshold=threshold,
        alignment=_alignment(alignment, source),
    )


def _phone_text(phones: Union[None, str, Sequence[str]]) -> Optional[str]:
    if phones is None or isinstance(phones, str):
        return phones
    return " ".join(phones)


class Recognizer:
    """A phoneme recognizer and aligner: a model with its decoder.

    ``Recognizer()`` is exactly what ``phonrec transcribe`` and ``phonrec align`` use by default: the
    built-in model, a prefix beam search (width 16) with its phone 6-gram LM (weight 0.4, insertion
    bonus 1.0), speech segmentation, and its phone-boundary model for alignment.

    Args:
        model: Path to a model file made by ``phonrec train`` (``None``: the built-in model). Another
            model decodes greedily with no LM unless ``lm`` is given or it was fine-tuned from the
            built-in one, as ``phonrec transcribe --model``.
        beam: Beam width of the prefix beam search; 1 decodes greedily (fastest). Default: 16 with a
            phone LM, else 1.
        lm: A phone n-gram LM in ARPA format (path, plain or gzipped), or ``"builtin"`` for the
            built-in model's LM with any model of the same phones. Default: the built-in LM with the
            built-in model and with models fine-tuned from it (``phonrec train --init-from
            builtin``), none with another model.
        no_lm: Decode without any phone LM (also without the built-in model's).
        lm_weight: Weight of the LM against the network. Default: 0.4 with the built-in model and its
            LM, else 0.3.
        insertion_bonus: Bonus per output phone in the beam search. Default: 1.0 with the built-in
            model and its LM, else 0.
        alphabet: ``"arpabet"`` (the model's own phone names) or ``"ipa"`` for every phone name in
            results.
        lexicon: Pronunciations for :meth:`align` and :meth:`score`, extending or correcting the
            built-in CMU Pronouncing Dictionary: a path to a CMUdict-format file (``WORD  P1 P2 ...``,
            or Kaldi's ``lexicon.txt``), or a dict such as ``{"phonrec": "F OW N R EH K"}`` (a value
            may be a list of pronunciations). A word given here takes these pronunciations only.
        builtin_lexicon: Start from the built-in dictionary (``False``: only ``lexicon``).
        precision: The LSTM's arithmetic, as ``phonrec transcribe --precision``. ``None`` (default):
            ``"int8"`` on x86-64 CPUs with AVX2, else ``"f32"``, for transcription; alignment and
            scoring then compute in ``"f32"`` (as ``phonrec align`` and ``phonrec score``).
            ``"int8"``: the recurrent weights in 8-bit integers, PER within 0.2 points of f32's on
            our evaluation sets, 1.3-2.5x faster at batch 1. ``"f32"``: the exact reference, the
            same numbers on every CPU. ``"bf16"``: weights in bfloat16, fastest for batches on
            Intel Xeons with AMX, ~1.8x f32 at batch 1 with AVX512-BF16 (emulated, slower,
            elsewhere). A precision given here is used for alignment and scoring too.
        dereverb: When to remove late reverberation before the features (weighted prediction
            error): ``"auto"`` (default) measures each recording of 2 s or more (a longer one 30 s
            at a time) and dereverberates what was recorded in a reverberant room; ``"on"`` every
            recording (on dry speech it costs 0.4-2 points of PER); ``"off"`` none (``phonrec
            transcribe --dereverb``).
            :attr:`Transcript.dereverberated` says what was done.
        segment: Decode only the speech regions (default); ``False`` decodes the whole recording as
            one (``--no-segment``).
        vtln: Speaker adaptation: try the mel warp factors 0.9-1.15 on each recording's first 30 s and
            decode it with the one the network is most confident under (``--vtln``; one extra network
            pass over at most 30 s per factor).
        repair_clipping: Restore peaks cut flat at full scale before the features (default); ``False``
            keeps them (``--keep-clipping``). :attr:`Transcript.clipped` says how much was restored.
        fill_digital_silence: Fill runs of digital silence with the recording's own noise floor,
            and raise gaps a noise gate or a cut made far quieter than the floor under the speech
            to that floor (default); ``False`` keeps both as they are (``--keep-digital-silence``).
        pad_edges: Recognise a recording that starts or ends loud, as a clip cut at the speech
            does, with 0.08 s of its own floor before or after it, its phones' times clamped to
            the recording (default); ``False`` hears it as it is (``--keep-edges``).
        conceal_dropouts: Fill packets lost in speech (5-100 ms of digital zeros cut into it, as a
            network call recorded without loss concealment has them) with the pitch periods on
            either side (default); ``False`` keeps the zeros (``--keep-dropouts``).
        fill_spectral_holes: Fill the holes a perceptual coder at a low bit rate leaves in the
            spectrum (MP3 at 16-24 kbit/s) with noise just under the spectrum around them, in
            recordings that measure as coded (default); ``False`` keeps them
            (``--keep-spectral-holes``).
        remove_clicks: Replace clicks (keys of a keyboard, a mouse, a pen tapped on the desk: a
            few milliseconds of broadband sound standing 25 dB over the sound on either side) by
            an autoregressive interpolation of the sound around them (default); ``False`` keeps
            them (``--keep-clicks``).
        equalise_levels: Raise the stretches of a recording more than 6 dB quieter than its
            speech level (runs of sound of 1 s or more between pauses: a talker far from the
            microphone beside a near one) to that level (default); ``False`` keeps the levels as
            recorded (``--keep-levels``).
        narrowband_as_8k: Bring a recording stored above 8 kHz that holds nothing of its own
            above 4 kHz (a telephone call or an 8 kHz recording converted to 16 kHz by another
            tool) back to 8 kHz first, and recognise it as the 8 kHz recording it is (default);
            ``False`` recognises it at the rate it is stored at (``--keep-rate``).
        unsure_below: Drop a speech region whose loudest frames stand less than this many dB over
            the sound around the regions and whose phones the network is unsure of (mean
            confidence below 0.5): music or noise taken for speech (``--unsure-below DB``). ``None``
            (default) uses phonrec's default level, 6 dB; 0 keeps every region.
        floor_below: Add white noise this many dB under the recording's speech level, within its
            band, just before the features (``--floor-below DB``), so that every floor is at least
            that loud and that flat: a noise suppressor's gated silence or a microphone's faint
            coloured hiss is not what the network heard in training. ``None`` (default) uses
            phonrec's default, 40 dB; 0 adds none.
        channel: Hear only this channel of multichannel input, counted from 0 (0 is a stereo file's
            left; ``--channel N``): one side of a call recorded with a channel per side. Applies to
            files, bytes and ``(samples, channels)`` arrays; input without that channel raises
            :class:`PhonrecError` (files) or ``ValueError`` (arrays). ``None`` (default) mixes the
            channels as phonrec mixes them.
        alternatives: Give each recognised phone the K phones the network found most probable
            over its frames (:attr:`Phone.alternatives`; ``--alternatives K``, Allosaurus's
            ``topk``); 0 (default) gives none. At most 64.
        nbest: Keep the N best phone sequences the beam search found for each recording, with
            their scores (:attr:`Transcript.nbest`; ``--nbest N``, pocketsphinx's ``-nbest``); 0
            (default) keeps none. At most ``beam``; needs the beam search.

    Raises:
        FileNotFoundError: ``model``, ``lm`` or ``lexicon`` does not exist.
        ValueError: Options that cannot work together (an LM with ``beam=1``, ``lm`` with ``no_lm``,
            ``nbest`` above ``beam``).
        PhonrecError: A model or LM file that does not load.

    A Recognizer is safe to share between threads; each call releases the GIL while it works.
    Pickling one pickles its arguments (the model loads again where it is unpickled).
    """

    def __init__(
        self,
        model: Union[None, str, "os.PathLike[str]"] = None,
        *,
        beam: Optional[int] = None,
        lm: Union[None, str, "os.PathLike[str]"] = None,
        no_lm: bool = False,
        lm_weight: Optional[float] = None,
        insertion_bonus: Optional[float] = None,
        alphabet: str = "arpabet",
        lexicon: Union[None, str, "os.PathLike[str]", dict] = None,
        builtin_lexicon: bool = True,
        precision: Optional[str] = None,
        dereverb: str = "auto",
        segment: bool = True,
        vtln: bool = False,
        repair_clipping: bool = True,
        fill_digital_silence: bool = True,
        pad_edges: bool = True,
        conceal_dropouts: bool = True,
        fill_spectral_holes: bool = True,
        remove_clicks: bool = True,
        equalise_levels: bool = True,
        narrowband_as_8k: bool = True,
        unsure_below: Optional[float] = None,
        floor_below: Optional[float] = None,
        channel: Optional[int] = None,
        alternatives: int = 0,
        nbest: int = 0,
    ) -> None:
        self._args = dict(
            model=model,
            beam=beam,
            lm=lm,
            no_lm=no_lm,
            lm_weight=lm_weight,
            insertion_bonus=insertion_bonus,
            alphabet=alphabet,
            lexicon=lexicon,
            builtin_lexicon=builtin_lexicon,
            precision=precision,
            dereverb=dereverb,
            segment=segment,
            vtln=vtln,
            repair_clipping=repair_clipping,
            fill_digital_silence=fill_digital_silence,
            pad_edges=pad_edges,
            conceal_dropouts=conceal_dropouts,
            fill_spectral_holes=fill_spectral_holes,
            remove_clicks=remove_clicks,
            equalise_levels=equalise_levels,
            narrowband_as_8k=narrowband_as_8k,
            unsure_below=unsure_below,
            floor_below=floor_below,
            channel=channel,
            alternatives=alternatives,
            nbest=nbest,
        )
        # numpy's integers count as integers (operator.index), bools do not.
        alternatives, nbest, beam = (_integer(alternatives), _integer(nbest), _integer(beam))
        channel = _channel(channel)
        if unsure_below is not None:
            unsure_below = _decibels("unsure_below", unsure_below, 60.0)
        if floor_below is not None:
            floor_below = _decibels("floor_below", floor_below, 100.0)
        # Weights of a search that does not run would be dropped without a word (the CLI warns).
        greedy = no_lm or beam == 1
        if greedy and (lm_weight is not None or insertion_bonus is not None) and lm is None:
            warnings.warn(
                "lm_weight and insertion_bonus have no effect: "
                + ("no_lm=True decodes without a phone LM" if no_lm else "beam=1 decodes greedily"),
                stacklevel=2,
            )
        if (
            isinstance(alternatives, bool)
            or not isinstance(alternatives, int)
            or not 0 <= alternatives <= 64
        ):
            raise ValueError(f"alternatives must be an integer from 0 to 64, got {alternatives!r}")
        if isinstance(nbest, bool) or not isinstance(nbest, int) or not 0 <= nbest <= 4096:
            raise ValueError(f"nbest must be an integer from 0 to 4096, got {nbest!r}")
        if beam is not None and (isinstance(beam, bool) or not isinstance(beam, int) or beam < 1):
            raise ValueError(f"beam must be a positive integer, got {beam!r}")
        self._inner = _phonrec.Recognizer(
            None if model is None else os.fsdecode(os.fspath(model)),
            beam,
            None if lm is None else os.fsdecode(os.fspath(lm)),
            no_lm,
            lm_weight,
            insertion_bonus,
            alphabet,
            lexicon if lexicon is None or isinstance(lexicon, dict) else os.fsdecode(os.fspath(lexicon)),
            builtin_lexicon,
            precision,
            dereverb,
            bool(segment),
            bool(vtln),
            bool(repair_clipping),
            bool(fill_digital_silence),
            bool(pad_edges),
            bool(conceal_dropouts),
            bool(fill_spectral_holes),
            bool(remove_clicks),
            bool(equalise_levels),
            bool(narrowband_as_8k),
            unsure_below,
            floor_below,
            channel,
            alternatives,
            nbest,
        )

    def __reduce__(self):
        return (_rebuild, (self._args,))

    def __repr__(self) -> str:
        model = "built-in model" if self._inner.builtin_model else repr(self._args["model"])
        return f"<phonrec.Recognizer {model}, {self.decoding}>"

    @property
    def phones(self) -> List[str]:
        """The model's phone names (in the chosen alphabet), without the CTC blank."""
        return self._inner.columns[1:]

    @property
    def columns(self) -> List[str]:
        """Column names of :meth:`probs`: ``"<blk>"`` (the CTC blank), then the phones."""
        return self._inner.columns

    @property
    def sample_rate(self) -> int:
        """The sample rate the model hears, in Hz (other rates are resampled to it)."""
        return self._inner.sample_rate

    @property
    def frame_shift(self) -> float:
        """Seconds per network output frame (a row of :meth:`probs`)."""
        return self._inner.frame_shift

    @property
    def decoding(self) -> str:
        """How this recognizer decodes, in words (beam, LM, segmentation)."""
        return self._inner.decoding

    def transcribe(self, audio: AudioInput, sample_rate: Optional[int] = None) -> Transcript:
        """Recognise the phones of one recording.

        Args:
            audio: A path, the bytes of an audio file, or an array of samples (see the module
                documentation).
            sample_rate: The rate of an array's samples, in Hz (required for arrays, refused for
                files, which carry their own).

        Returns:
            The phones with start/end times (seconds) and confidences, the duration and the speech
            segments: what ``phonrec transcribe --format json`` writes.

        Raises:
            FileNotFoundError: The file does not exist.
            ValueError: Bad samples (NaN, infinite, absurdly loud; floats at integer scale), an empty
                or 3-D array, a missing or unsupported ``sample_rate``.
            TypeError: An argument of an unsupported type or dtype.
            PhonrecError: A file phonrec cannot read (not audio, damaged, an unsupported encoding).
        """
        data, source = _audio(audio)
        return _transcript(self._inner.transcribe(data, sample_rate), source)

    def transcribe_batch(
        self,
        audios: Sequence[AudioInput],
        sample_rate: Optional[int] = None,
        *,
        errors: str = "raise",
    ) -> List[Any]:
        """Recognise several recordings at once: faster than one by one for many short clips.

        Files are read in parallel and short recordings of similar length share network batches (32
        recordings at a time, as ``phonrec transcribe`` does with many files). Results are those of
        :meth:`transcribe` up to float rounding in the batched network.

        Args:
            audios: Paths, bytes or arrays; an item may also be an ``(array, sample_rate)`` pair.
            sample_rate: The rate of every array given without its own.
            errors: ``"raise"``: the first recording that fails raises its exception (after all are
                done). ``"return"``: a failed recording's exception object takes its place in the
                list. Arguments of the wrong type or shape always raise at once.

        Returns:
            One :class:`Transcript` per input, in order (or an exception, with ``errors="return"``).
        """
        if errors not in ("raise", "return"):
            raise ValueError(f'errors={errors!r}: expected "raise" or "return"')
        if isinstance(audios, (str, bytes, os.PathLike, np.ndarray)):
            raise TypeError("transcribe_batch takes a list of recordings; use transcribe for one")
        items = []
        sources = []
        for item in audios:
            rate = sample_rate
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], np.ndarray):
                item, rate = item
            data, source = _audio(item)
            if not isinstance(data, np.ndarray):
                # The shared rate is for arrays; a file (path, bytes, file object) has its own.
                rate = None
            items.append((data, rate))
            sources.append(source)
        results = self._inner.transcribe_batch(items)
        out: List[Any] = []
        for raw, source in zip(results, sources):
            if isinstance(raw, BaseException):
                if errors == "raise":
                    raise raw
                out.append(raw)
            else:
                out.append(_transcript(raw, source))
        return out

    def probs(
        self, audio: AudioInput, sample_rate: Optional[int] = None, *, log: bool = False
    ) -> Probs:
        """What the network hears in every output frame, and what is decoded from it.

        The same pass as :meth:`transcribe` (features, network, speech segmentation, decoder), so the
        posteriors are those the transcript was decoded from; ``phonrec probs FILE --format npy``
        writes the same array.

        Args:
            audio: A path, the bytes of an audio file, or an array of samples.
            sample_rate: The rate of an array's samples, in Hz.
            log: Natural-log probabilities instead of probabilities.

        Returns:
            ``Probs(probs, columns, frame_shift, transcript)``: a ``float32`` array
            ``[frames, phones + 1]`` (the blank first; each row sums to 1), its column names, the
            seconds between rows, and the decoded :class:`Transcript`.
        """
        data, source = _audio(audio)
        array, raw = self._inner.probs(data, sample_rate, log)
        return Probs(array, self.columns, self.frame_shift, _transcript(raw, source))

    def align(
        self,
        audio: AudioInput,
        text: Optional[str] = None,
        *,
        phones: Union[None, str, Sequence[str]] = None,
        sample_rate: Optional[int] = None,
        oov: str = "error",
    ) -> Alignment:
        """Align a recording to what it says: the time of every word and phone.

        Words become phones through the lexicon (the built-in CMU Pronouncing Dictionary and the
        Recognizer's ``lexicon``); where a word has several pronunciations the audio chooses. Text
        is lowercased and split at whitespace and punctuation, as ``phonrec align --text`` does. The
        whole recording is aligned at once, so silence around and between the words needs no
        trimming; it shows as gaps between phones.

        Args:
            audio: A path, the bytes of an audio file, or an array of samples.
            text: The words the audio says.
            phones: Or the phones it says (ARPAbet, a string or a list; stress digits and TIMIT
                symbols are folded).
            sample_rate: The rate of an array's samples, in Hz.
            oov: Words the lexicon lacks: ``"error"`` raises :class:`OutOfVocabularyError` listing
                them, ``"spell"`` says them letter by letter and digit by digit, ``"skip"`` leaves
                them out (see :attr:`Alignment.skipped`).

        Returns:
            The :class:`Alignment`: words and phones with times and confidences, and how well the
            audio matches the text (:attr:`Alignment.matches_text`).

        Raises:
            OutOfVocabularyError: Words the lexicon lacks (with ``oov="error"``); ``.words`` lists them.
            PhonrecError: An alignment that cannot be made (far more phones than the audio can hold,
                a transcript that disagrees badly with the audio), or a file phonrec cannot read.
            ValueError: Neither or both of ``text`` and ``phones``; a text with no words (or none left
                by ``oov="skip"``); a phone the model does not have.
        """
        data, source = _audio(audio)
        raw = self._inner.align(data, text, _phone_text(phones), sample_rate, oov)
        return _alignment(raw, source)

    def score(
        self,
        audio: AudioInput,
        text: Optional[str] = None,
        *,
        phones: Union[None, str, Sequence[str]] = None,
        sample_rate: Optional[int] = None,
        threshold: float = -1.0,
        oov: str = "error",
    ) -> Scores:
        """Score pronunciation: how clearly each phone the text expects was said, and what was heard.

        The audio is aligned as :meth:`align` does; then each expected phone gets its goodness of
        pronunciation (GOP, see :class:`PhoneScore`) and the phone heard there, and each word the
        lowest GOP of its phones, as ``phonrec score`` computes them.

        Args:
            audio: A path, the bytes of an audio file, or an array of samples.
            text: The words the audio should say.
            phones: Or the phones it should say.
            sample_rate: The rate of an array's samples, in Hz.
            threshold: The GOP below which a phone is flagged as mispronounced (higher flags more).
            oov: Words the lexicon lacks, as in :meth:`align`.

        Returns:
            The :class:`Scores` per phone and per word, with the alignment they rest on.
        """
        data, source = _audio(audio)
        raw = self._inner.score(data, text, _phone_text(phones), sample_rate, threshold, oov)
        return _scores(raw, source)


def _rebuild(args: dict) -> Recognizer:
    return Recognizer(**args)


def features(
    audio: AudioInput,
    sample_rate: Optional[int] = None,
    *,
    kind: str = "fbank",
    num_mel_bins: Optional[int] = None,
    num_ceps: int = 13,
    cepstral_lifter: float = 22.0,
    use_energy: Optional[bool] = None,
    energy_floor: float = 0.0,
    raw_energy: bool = True,
    window_type: str = "povey",
    snip_edges: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    vtln_warp: float = 1.0,
    vtln_low: float = 100.0,
    vtln_high: float = -500.0,
    dither: float = 0.0,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    preemphasis_coefficient: float = 0.97,
    remove_dc_offset: bool = True,
    round_to_power_of_two: bool = True,
    deltas: bool = False,
    delta_order: int = 2,
    delta_window: int = 2,
    cmvn: bool = False,
    norm_vars: bool = False,
    resample: Optional[int] = None,
    channel: Optional[int] = None,
) -> np.ndarray:
    """Kaldi-compatible features of one recording, as ``phonrec features`` computes them.

    The options are Kaldi's ``compute-fbank-feats`` / ``compute-mfcc-feats`` options and default to
    Kaldi's values, except 80 mel bins for fbank and dither 0 (reproducible output): with no options
    the result equals ``phonrec features FILE --format npy``. Samples are at int16 scale (±32768)
    whatever the input's encoding, as Kaldi expects. Features are computed at the audio's own rate
    unless ``resample`` is given.

    Args:
        audio: A path, the bytes of an audio file, or an array of samples.
        sample_rate: The rate of an array's samples, in Hz.
        kind: ``"fbank"`` (log-mel filterbank) or ``"mfcc"``.
        num_mel_bins: Number of mel bins (default 80 for fbank, 23 for mfcc).
        num_ceps: Number of cepstra (mfcc), C0 included.
        cepstral_lifter: Cepstral lifter coefficient (mfcc); 0 disables liftering.
        use_energy: Add the log energy: fbank prepends it as column 0, mfcc puts it in place of C0
            (default False for fbank, True for mfcc).
        energy_floor: Floor on the energy (absolute value); 0 means no floor.
        raw_energy: Compute the energy before pre-emphasis and windowing.
        window_type: ``"povey"``, ``"hamming"``, ``"hanning"``, ``"rectangular"`` or ``"blackman"``.
        snip_edges: True: only frames that fit in the signal; False: frames centred every shift.
        low_freq: Low edge of the mel filters in Hz.
        high_freq: High edge of the mel filters in Hz; ≤ 0 is an offset from Nyquist.
        vtln_warp: Vocal-tract-length warp factor of the mel filters; 1 = none.
        vtln_low: Lower inflection point of the VTLN warp in Hz.
        vtln_high: Upper inflection point of the VTLN warp in Hz; < 0 is an offset from the high edge.
        dither: Gaussian dither standard deviation in int16 units (seeded: reproducible).
        frame_length: Frame length in ms.
        frame_shift: Frame shift in ms.
        preemphasis_coefficient: Pre-emphasis coefficient.
        remove_dc_offset: Subtract each frame's mean before processing.
        round_to_power_of_two: Zero-pad frames to a power of two before the FFT.
        deltas: Append deltas (and delta-deltas with ``delta_order=2``).
        delta_order: 1 = deltas, 2 = deltas + delta-deltas.
        delta_window: Delta regression window (frames on each side).
        cmvn: Per-utterance mean normalisation (after deltas).
        norm_vars: With ``cmvn``, also normalise the variance.
        resample: Resample the audio to this rate (Hz) first.
        channel: Features of this channel alone, counted from 0 (``--channel N``; Kaldi reads
            channel 0 of a stereo file); ``None`` (default) mixes the channels.

    Returns:
        A ``float32`` array ``[frames, dims]`` (0 rows for audio shorter than one frame).
    """
    options = dict(
        kind=kind,
        num_mel_bins=num_mel_bins,
        num_ceps=num_ceps,
        cepstral_lifter=cepstral_lifter,
        use_energy=use_energy,
        energy_floor=energy_floor,
        raw_energy=raw_energy,
        window_type=window_type,
        snip_edges=snip_edges,
        low_freq=low_freq,
        high_freq=high_freq,
        vtln_warp=vtln_warp,
        vtln_low=vtln_low,
        vtln_high=vtln_high,
        dither=dither,
        frame_length=frame_length,
        frame_shift=frame_shift,
        preemphasis_coefficient=preemphasis_coefficient,
        remove_dc_offset=remove_dc_offset,
        round_to_power_of_two=round_to_power_of_two,
        deltas=deltas,
        delta_order=delta_order,
        delta_window=delta_window,
        cmvn=cmvn,
        norm_vars=norm_vars,
        resample=resample,
    )
    data, _ = _audio(audio)
    return _phonrec.features(data, sample_rate, options, _channel(channel))


def load(
    audio: AudioInput, *, resample: Optional[int] = None, channel: Optional[int] = None
) -> Tuple[np.ndarray, int]:
    """The samples of an audio file, read as ``phonrec transcribe`` reads it.

    Every format phonrec reads (WAV of any encoding, SPHERE, .au, FLAC, Ogg Vorbis or Opus, MP3,
    AIFF, CAF, MP4/M4A, raw AAC, WebM, AMR and 3GP), channels mixed to mono as phonrec mixes them, lossy
    files read gapless (the encoder's delay and padding cut, so times are the recording's): the
    ``torchaudio.load`` of phonrec's inputs.

    Args:
        audio: A path, the bytes of an audio file, or a binary file object.
        resample: Resample to this rate (Hz) with phonrec's resampler.
        channel: Read this channel alone, counted from 0 (0 is a stereo file's left); ``None``
            (default) mixes the channels.

    Returns:
        ``(samples, sample_rate)``: a 1-D ``float32`` array at full scale ±1 and the rate in Hz.
    """
    data, _ = _audio(audio)
    return _phonrec.load(data, resample, _channel(channel))


class LiveUtterance(NamedTuple):
    """An utterance cut from live audio by :class:`Endpointer`.

    Attributes:
        start: Where it starts, seconds from the start of the stream.
        samples: Its samples, mono ``float32`` at full scale ±1, at the endpointer's rate.
    """

    start: float
    samples: np.ndarray


class Endpointer:
    """Cuts live audio into utterances at pauses, as ``phonrec live`` does, so that each can be
    recognised (whole: the network is bidirectional) while the talker goes on::

        endpointer = phonrec.Endpointer(16000)
        for block in microphone_blocks():            # arrays of samples as they arrive
            for utterance in endpointer.push(block):
                t = recognizer.transcribe(utterance.samples, sample_rate=16000)
                print(utterance.start, t)            # t's times count from utterance.start

    Args:
        sample_rate: The stream's rate in Hz.
        min_pause: A pause at least this long ends an utterance, seconds (``--min-pause``).
        max_utterance: An utterance this long is cut at its quietest moment of its last seconds
            (``--max-utterance``).
        speech_above: A frame is speech when its level stands this many dB above the background,
            the lowest level of the last 30 s (``--speech-above``).
        channel: Of ``(samples, channels)`` blocks, hear this channel alone, counted from 0 (one
            side of a call; ``--channel``); ``None`` (default) mixes them as files are mixed.

    Raises:
        ValueError: Options out of range (a pause of 0.1-10 s, utterances of 1-600 s and longer
            than twice the pause, a threshold of 1-40 dB), a rate phonrec does not read, or a
            channel that is not a number from 0.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        min_pause: float = 0.5,
        max_utterance: float = 20.0,
        speech_above: float = 6.0,
        channel: Optional[int] = None,
    ) -> None:
        self._sample_rate = sample_rate
        self._finished = False
        self._inner = _phonrec.Endpointer(
            sample_rate,
            float(min_pause),
            float(max_utterance),
            float(speech_above),
            _channel(channel),
        )

    @property
    def sample_rate(self) -> int:
        """The stream's rate in Hz, as given (a new rate needs a new endpointer)."""
        return self._sample_rate

    def push(self, samples: Any) -> List[LiveUtterance]:
        """Add the samples that arrived (an array as :meth:`Recognizer.transcribe` takes one:
        float in ±1, int16, ...; mono or ``(samples, channels)``); the utterances that ended in
        them.

        Raises:
            ValueError: A sample no recording has (NaN, infinite, far beyond full scale), as
                :meth:`Recognizer.transcribe` refuses it; nothing of that push is taken, and the
                stream goes on with the next. So are blocks without the channel ``channel=``
                asks for.
        """
        if self._finished:
            raise ValueError("the endpointer was finished; make a new one for a new stream")
        array = np.asarray(samples)
        if array.size == 0:
            return []
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return [LiveUtterance(start, audio) for start, audio in self._inner.push(array)]

    def finish(self) -> Optional[LiveUtterance]:
        """The stream has ended: the utterance under way, if any. The endpointer takes no more."""
        self._finished = True
        last = self._inner.finish()
        return None if last is None else LiveUtterance(*last)
