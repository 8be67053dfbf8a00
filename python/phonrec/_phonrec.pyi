"""Type stubs of the extension module (private: use the `phonrec` package)."""

from typing import Any, Dict, List, Optional, Tuple, final

import numpy as np
import numpy.typing as npt

__version__: str
__all__ = ["Endpointer", "OutOfVocabularyError", "PhonrecError", "Recognizer", "__version__", "features", "load"]

class PhonrecError(Exception): ...

class OutOfVocabularyError(PhonrecError):
    words: List[str]

_Phone = Tuple[str, float, float, float, List[Tuple[str, float]]]
_Hypothesis = Tuple[List[str], float, float, float]
_Transcript = Tuple[
    float,
    List[_Phone],
    List[Tuple[float, float]],
    float,
    bool,
    float,
    Optional[float],
    List[_Hypothesis],
    int,
    float,
    bool,
]
_Alignment = Tuple[
    float, float, float, bool, List[Tuple[str, float, float, float, int, int]], List[_Phone], List[str]
]
_Scores = Tuple[
    _Alignment,
    List[Tuple[str, Optional[str], float, float, float, bool]],
    List[Tuple[str, float, float, float, bool, int, int]],
    float,
]

@final
class Recognizer:
    def __new__(
        cls,
        model: Optional[str] = None,
        beam: Optional[int] = None,
        lm: Optional[str] = None,
        no_lm: bool = False,
        lm_weight: Optional[float] = None,
        insertion_bonus: Optional[float] = None,
        alphabet: str = "arpabet",
        lexicon: Optional[Any] = None,
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
    ) -> Recognizer: ...
    @property
    def columns(self) -> List[str]: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def frame_shift(self) -> float: ...
    @property
    def decoding(self) -> str: ...
    @property
    def builtin_model(self) -> bool: ...
    def transcribe(self, audio: Any, sample_rate: Optional[int] = None) -> _Transcript: ...
    def transcribe_batch(self, items: List[Tuple[Any, Optional[int]]]) -> List[Any]: ...
    def probs(
        self, audio: Any, sample_rate: Optional[int] = None, log: bool = False
    ) -> Tuple[npt.NDArray[np.float32], _Transcript]: ...
    def align(
        self,
        audio: Any,
        text: Optional[str] = None,
        phones: Optional[str] = None,
        sample_rate: Optional[int] = None,
        oov: str = "error",
    ) -> _Alignment: ...
    def score(
        self,
        audio: Any,
        text: Optional[str] = None,
        phones: Optional[str] = None,
        sample_rate: Optional[int] = None,
        threshold: float = ...,
        oov: str = "error",
    ) -> _Scores: ...

def features(
    audio: Any, sample_rate: Optional[int], options: Dict[str, Any], channel: Optional[int] = None
) -> npt.NDArray[np.float32]: ...
def load(
    audio: Any, resample: Optional[int], channel: Optional[int] = None
) -> Tuple[npt.NDArray[np.float32], int]: ...

@final
class Endpointer:
    def __new__(
        cls,
        sample_rate: int,
        min_pause: float = 0.5,
        max_utterance: float = 20.0,
        speech_above: float = 6.0,
        channel: Optional[int] = None,
    ) -> Endpointer: ...
    def push(self, samples: npt.NDArray[Any]) -> List[Tuple[float, npt.NDArray[np.float32]]]: ...
    def finish(self) -> Optional[Tuple[float, npt.NDArray[np.float32]]]: ...
