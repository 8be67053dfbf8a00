#!/usr/bin/env python3
"""Praat itself (through praat-parselmouth) and the `textgrid` package read phonrec's TextGrids: the
ones `phonrec align` and `phonrec transcribe --format textgrid` write for the audio/ examples.

Usage (run by .ci/run): python3 tests/python/textgrid_readers.py PHONREC_BINARY
"""
import os
import subprocess
import sys
import tempfile

import parselmouth
import textgrid
from parselmouth.praat import call

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SUIT = os.path.join(ROOT, "audio", "slt_dark_suit_16k.wav")
WORDS = "she had your dark suit in greasy wash water all year".split()


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        aligned = os.path.join(tmp, "suit.TextGrid")
        with open(aligned, "wb") as f:
            subprocess.run([binary, "align", SUIT, "--text", " ".join(WORDS)], check=True, stdout=f)
        recognised = os.path.join(tmp, "recognised")
        subprocess.run([binary, "transcribe", os.path.join(ROOT, "audio"), "--format", "textgrid",
                        "--output-dir", recognised], check=True)

        # Praat: the object, its tiers and their intervals.
        grid = parselmouth.read(aligned)
        assert call(grid, "Get number of tiers") == 2
        assert call(grid, "Get tier name...", 1) == "words"
        assert call(grid, "Get tier name...", 2) == "phones"
        n = call(grid, "Get number of intervals...", 1)
        labels = [call(grid, "Get label of interval...", 1, i) for i in range(1, n + 1)]
        assert [l for l in labels if l] == WORDS, labels
        assert abs(call(grid, "Get end time") - 3.08) < 1e-3

        # The textgrid package: same words, intervals touching from 0 to the end.
        tg = textgrid.TextGrid.fromFile(aligned)
        words = tg.getFirst("words")
        assert [i.mark for i in words if i.mark] == WORDS
        assert words[0].minTime == 0
        for a, b in zip(words, words[1:]):
            assert a.maxTime == b.minTime

        for name in sorted(os.listdir(recognised)):
            path = os.path.join(recognised, name)
            grid = parselmouth.read(path)
            assert call(grid, "Get number of tiers") == 1
            phones = textgrid.TextGrid.fromFile(path).getFirst("phones")
            assert any(i.mark for i in phones), name
        print(f"Praat {parselmouth.PRAAT_VERSION} and textgrid read {1 + len(os.listdir(recognised))} "
              "TextGrids from phonrec")


if __name__ == "__main__":
    main()
