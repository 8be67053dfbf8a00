"""Prompt text for the synthetic corpus (standard library only).

Sources (none is redistributed: only used as TTS prompts):
- Debian `fortunes` (/usr/share/games/fortunes/*, apt package `fortunes`): split into sentences and
  kept if 4-20 words of plain text,
- flite's public-domain Alice text (/usr/share/doc/flite/examples/alice, apt package `flite`; the
  opening chapters), split into sentences and, where over 20 words, into clauses at ; : and commas,
- random CMUdict word strings (built in make_synth.py from the lexicon).
"""
import glob
import os
import re

FORTUNE_DIR = "/usr/share/games/fortunes"
ALICE = "/usr/share/doc/flite/examples/alice"

# Plain text only: letters, spaces and light punctuation. Digits, symbols, markup and URLs are left
# out (engines read them in engine-specific ways and they are not natural speech prompts).
_OK = re.compile(r"^[A-Za-z][A-Za-z ,.;:!?'\"\-()]*$")
_SENT_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(]?[A-Z])")


def _clean(s):
    s = s.replace("`", "'").replace("''", '"').replace("--", ", ").replace("(", "").replace(")", "")
    s = re.sub(r"\s+", " ", s).strip()
    return s


def _chunks(s, max_words):
    """Split an over-long sentence at ; : and then at commas into pieces of at most max_words."""
    if len(s.split()) <= max_words:
        return [s]
    out = []
    for part in re.split(r"(?<=[;:])\s+", s):
        if len(part.split()) <= max_words:
            out.append(part)
            continue
        cur = []
        for piece in re.split(r"(?<=,)\s+", part):
            if cur and len(" ".join(cur + [piece]).split()) > max_words:
                out.append(" ".join(cur))
                cur = []
            cur.append(piece)
        if cur:
            out.append(" ".join(cur))
    return [re.sub(r"[,;:]$", ".", c.strip()) for c in out]


def _sentences(text, min_words=4, max_words=20, split_long=False):
    out = []
    pieces = []
    for s in _SENT_SPLIT.split(text):
        s = _clean(s)
        pieces.extend(_chunks(s, max_words) if split_long else [s])
    for s in pieces:
        s = s.strip("\"' ")
        if not s or not _OK.match(s) or re.search(r"[:;]-|\bA:", s):
            continue
        if s.count('"') % 2:
            s = s.replace('"', "")
        n = len(s.split())
        if min_words <= n <= max_words:
            out.append(s)
    return out


def fortune_sentences(fortune_dir=FORTUNE_DIR):
    """Unique 4-20-word sentences from the Debian fortune files, in a fixed (sorted-file) order."""
    seen, out = set(), []
    for path in sorted(glob.glob(os.path.join(fortune_dir, "*"))):
        if path.endswith((".dat", ".u8")) or os.path.isdir(path) or os.path.islink(path):
            continue
        try:
            text = open(path, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        for entry in re.split(r"^%\s*$", text, flags=re.M):
            # attribution lines ("-- Author") and indented verse are joined like prose
            entry = re.sub(r"^\s*--.*$", "", entry, flags=re.M)
            for s in _sentences(entry.replace("\n", " ")):
                if s.lower() not in seen:
                    seen.add(s.lower())
                    out.append(s)
    return out


def alice_sentences(path=ALICE):
    if not os.path.exists(path):
        return []
    text = open(path, encoding="utf-8", errors="replace").read()
    text = re.sub(r"CHAPTER [IVXL]+\.?[^\n]*", " ", text)
    seen, out = set(), []
    for para in re.split(r"\n\s*\n", text):
        for s in _sentences(para.replace("\n", " "), split_long=True):
            if s.lower() not in seen:
                seen.add(s.lower())
                out.append(s)
    return out
