"""Type stubs of the phonrec package (the documentation is in the docstrings of phonrec/__init__.py)."""

import os
from dataclasses import dataclass
from typing import IO, Any, Dict, List, Literal, NamedTuple, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

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

#: Audio: a path to a WAV/SPHERE/.au/FLAC/Ogg/MP3 file, the bytes of one (or a binary file object), or a
#: numpy array of samples [samples] or [samples, channels] (float32/float64 in ±1, int16, int32,
#: uint8, int8) with its sample_rate.
AudioInput = Union[
    str, os.PathLike[str], bytes, bytearray, memoryview, IO[bytes], npt.NDArray[Any], Sequence[float]
]
_PathInput = Union[str, os.PathLike[str]]

class PhonrecError(Exception):
    """An error from phonrec (unreadable audio, a model that does not load, an impossible alignment)."""

class OutOfVocabularyError(PhonrecError):
    """Words of a text to align that the lexicon does not have."""

    words: List[str]

@dataclass(frozen=True)
class Phone:
    """One timed phone: name, start and end (seconds), confidence in [0, 1], and (with
    ``alternatives=K``) the K most probable phones over its frames as (phone, probability) pairs."""

    phone: str
    start: float
    end: float
    confidence: float
    alternatives: Tuple[Tuple[str, float], ...] = ()

@dataclass(frozen=True)
class Hypothesis:
    """One entry of an n-best list (``nbest=N``): phones, score (natural log, what the beam ranks
    by), its acoustic and LM log-probabilities."""

    phones: Tuple[str, ...]
    score: float
    acoustic: float
    lm: float

@dataclass(frozen=True)
class Transcript:
    """The phones recognised in one recording."""

    phones: List[Phone]
    duration: float
    segments: List[Tuple[float, float]]
    source: Optional[str] = None
    clipped: float = 0.0
    dereverberated: bool = False
    vtln_warp: float = 1.0
    peak_dbfs: Optional[float] = None
    nbest: List[Hypothesis] = ...
    concealed_dropouts: int = 0
    concealed_s: float = 0.0
    spectral_holes_filled: bool = False
    clicks_removed: int = 0
    levels_raised: int = 0
    dc_offset_dbfs: Optional[float] = None
    narrowband: bool = False
    @property
    def labels(self) -> List[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...

class Probs(NamedTuple):
    """Per-frame probabilities [frames, phones + blank] (float32), column names ("<blk>" first),
    seconds between rows, and the decoded transcript."""

    probs: npt.NDArray[np.float32]
    columns: List[str]
    frame_shift: float
    transcript: Transcript
    @property
    def times(self) -> npt.NDArray[np.float64]: ...

@dataclass(frozen=True)
class Word:
    """One aligned word with its phones."""

    word: str
    start: float
    end: float
    confidence: float
    phones: List[Phone]

@dataclass(frozen=True)
class Alignment:
    """A recording aligned to its text."""

    words: List[Word]
    phones: List[Phone]
    duration: float
    match_score: float
    worst_second_score: float
    matches_text: bool
    skipped: List[str]
    source: Optional[str] = None
    def to_dict(self) -> Dict[str, Any]: ...

@dataclass(frozen=True)
class PhoneScore:
    """The goodness of pronunciation of one expected phone and the phone heard there."""

    expected: str
    heard: Optional[str]
    start: float
    end: float
    gop: float
    mispronounced: bool

@dataclass(frozen=True)
class WordScore:
    """A word's score: the lowest GOP of its phones."""

    word: str
    start: float
    end: float
    score: float
    mispronounced: bool
    phones: List[PhoneScore]

@dataclass(frozen=True)
class Scores:
    """A recording's pronunciation scored against its text."""

    words: List[WordScore]
    phones: List[PhoneScore]
    threshold: float
    alignment: Alignment
    @property
    def matches_text(self) -> bool: ...
    def to_dict(self) -> Dict[str, Any]: ...

class Recognizer:
    """A phoneme recognizer and aligner: the built-in model with the CLI's default decoding, or a
    model file of your own. Safe to share between threads."""

    def __init__(
        self,
        model: Optional[_PathInput] = None,
        *,
        beam: Optional[int] = None,
        lm: Optional[_PathInput] = None,
        no_lm: bool = False,
        lm_weight: Optional[float] = None,
        insertion_bonus: Optional[float] = None,
        alphabet: Literal["arpabet", "ipa"] = "arpabet",
        lexicon: Union[None, _PathInput, Dict[str, Union[str, List[str]]]] = None,
        builtin_lexicon: bool = True,
        precision: Optional[Literal["f32", "bf16", "int8"]] = None,
        dereverb: Literal["auto", "on", "off"] = "auto",
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
    ) -> None: ...
    @property
    def phones(self) -> List[str]: ...
    @property
    def columns(self) -> List[str]: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def frame_shift(self) -> float: ...
    @property
    def decoding(self) -> str: ...
    def transcribe(self, audio: AudioInput, sample_rate: Optional[int] = None) -> Transcript: ...
    @overload
    def transcribe_batch(
        self,
        audios: Sequence[Union[AudioInput, Tuple[npt.NDArray[Any], int]]],
        sample_rate: Optional[int] = None,
        *,
        errors: Literal["raise"] = "raise",
    ) -> List[Transcript]: ...
    @overload
    def transcribe_batch(
        self,
        audios: Sequence[Union[AudioInput, Tuple[npt.NDArray[Any], int]]],
        sample_rate: Optional[int] = None,
        *,
        errors: Literal["return"],
    ) -> List[Union[Transcript, Exception]]: ...
    def probs(
        self, audio: AudioInput, sample_rate: Optional[int] = None, *, log: bool = False
    ) -> Probs: ...
    def align(
        self,
        audio: AudioInput,
        text: Optional[str] = None,
        *,
        phones: Union[None, str, Sequence[str]] = None,
        sample_rate: Optional[int] = None,
        oov: Literal["error", "spell", "skip"] = "error",
    ) -> Alignment: ...
    def score(
        self,
        audio: AudioInput,
        text: Optional[str] = None,
        *,
        phones: Union[None, str, Sequence[str]] = None,
        sample_rate: Optional[int] = None,
        threshold: float = -1.0,
        oov: Literal["error", "spell", "skip"] = "error",
    ) -> Scores: ...

def features(
    audio: AudioInput,
    sample_rate: Optional[int] = None,
    *,
    kind: Literal["fbank", "mfcc"] = "fbank",
    num_mel_bins: Optional[int] = None,
    num_ceps: int = 13,
    cepstral_lifter: float = 22.0,
    use_energy: Optional[bool] = None,
    energy_floor: float = 0.0,
    raw_energy: bool = True,
    window_type: Literal["povey", "hamming", "hanning", "rectangular", "blackman"] = "povey",
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
) -> npt.NDArray[np.float32]: ...

def load(
    audio: AudioInput, *, resample: Optional[int] = None, channel: Optional[int] = None
) -> Tuple[npt.NDArray[np.float32], int]: ...

class LiveUtterance(NamedTuple):
    """An utterance cut from live audio: its start (seconds in the stream) and samples (float32, ±1)."""

    start: float
    samples: npt.NDArray[np.float32]

class Endpointer:
    """Cuts live audio into utterances at pauses, as ``phonrec live`` does."""

    @property
    def sample_rate(self) -> int: ...

    def __init__(
        self,
        sample_rate: int,
        *,
        min_pause: float = 0.5,
        max_utterance: float = 20.0,
        speech_above: float = 6.0,
        channel: Optional[int] = None,
    ) -> None: ...
    def push(self, samples: Union[npt.NDArray[Any], Sequence[float]]) -> List[LiveUtterance]: ...
    def finish(self) -> Optional[LiveUtterance]: ...
