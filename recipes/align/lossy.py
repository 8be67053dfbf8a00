#!/usr/bin/env python3
"""Alignment through lossy codecs: `phonrec align --phones` on MP3 and AAC copies of the timed
flite files in tests/data, scored against flite's own phone timings.

usage: lossy.py PHONREC [PHONREC ...]     (ffmpeg with libmp3lame and aac on the PATH)

For each binary and each copy (FLAC as shipped; MP3 and AAC at 32 kbit/s, 16 and 8 kHz), prints the
mean absolute boundary error and the share within 25 ms. A reader that ignores the codecs' delay
(MP3's LAME header, an MP4's edit list) shows it here as a constant offset. Standard library only.
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data")
CODECS = {"mp3": ["-c:a", "libmp3lame", "-b:a", "32k"], "m4a": ["-c:a", "aac", "-b:a", "32k"]}


def align(binary, path, phones):
    out = subprocess.run([binary, "align", path, "--phones", " ".join(phones), "--format", "json"],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{binary} align {path} failed: {out.stderr.strip()}")
    record = json.loads(out.stdout.splitlines()[0])
    return [(p["start"], p["end"]) for p in record["phones"]]


def main():
    binaries = sys.argv[1:]
    if not binaries:
        sys.exit(__doc__)
    records = [json.loads(line) for line in open(os.path.join(ROOT, "flite_rms_timed.jsonl"))]
    work = tempfile.mkdtemp()
    copies = ["flac"] + [f"{codec}-{khz}k" for codec in CODECS for khz in (16, 8)]
    for binary in binaries:
        for copy in copies:
            errors = []
            for record in records:
                source = os.path.join(ROOT, record["audio"])
                if copy == "flac":
                    path = source
                else:
                    codec, khz = copy.split("-")
                    path = os.path.join(work, f"{os.path.splitext(record['audio'])[0]}_{copy}.{codec}")
                    if not os.path.exists(path):
                        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", source, "-ar",
                                        str(int(khz[:-1]) * 1000), *CODECS[codec], path], check=True)
                reference = record["phones"]
                hypothesis = align(binary, path, [p[0] for p in reference])
                for (_, start, end), (start2, end2) in zip(reference, hypothesis):
                    errors += [abs(start - start2), abs(end - end2)]
            mean = 1000 * sum(errors) / len(errors)
            within = 100 * sum(e <= 0.025 for e in errors) / len(errors)
            print(f"{binary}\t{copy}\tmean {mean:.1f} ms\t{within:.1f} % <= 25 ms\t({len(errors)} boundaries)")


if __name__ == "__main__":
    main()
