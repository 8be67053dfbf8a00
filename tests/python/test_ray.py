"""Ray Data scale-out (recipes/cluster/ray_transcribe.py) on a local Ray cluster of 2 CPUs: the rows it
writes equal what `phonrec transcribe --format json` prints for the same files, and a file that cannot
be read becomes a row with its error instead of stopping the job.

Run by .ci/run: PHONREC_CLI=target/release/phonrec python -m pytest tests/python/test_ray.py
(needs the phonrec package, pytest and "ray[data]").
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = os.environ.get("PHONREC_CLI", str(ROOT / "target" / "release" / "phonrec"))
SCRIPT = ROOT / "recipes" / "cluster" / "ray_transcribe.py"
EXAMPLES = sorted((ROOT / "audio").glob("*.wav"))


def cli_json(paths):
    """`phonrec transcribe --format json` for each path, by path."""
    out = subprocess.run(
        [CLI, "transcribe", "--format", "json", *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {row["file"]: row for row in map(json.loads, out.splitlines())}


def test_ray_data_rows_equal_the_cli(tmp_path):
    assert len(EXAMPLES) == 3, EXAMPLES
    # The examples twice under other names (so both workers get work), and a missing file.
    folder = tmp_path / "clips"
    folder.mkdir()
    listed = []
    for copy in range(2):
        for example in EXAMPLES:
            target = folder / f"{copy}_{example.name}"
            target.write_bytes(example.read_bytes())
            listed.append(target)
    manifest = tmp_path / "list.tsv"
    lines = ["audio\tnote", "# a comment"]
    lines += [f"clips/{p.name}\tanything" for p in listed]
    lines.append("clips/missing.wav")
    manifest.write_text("\n".join(lines) + "\n")

    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(manifest), str(out), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for f in sorted(out.glob("*.json")) for line in f.read_text().splitlines()]
    assert len(rows) == len(listed) + 1

    expected = cli_json(listed)
    by_audio = {row["audio"]: row for row in rows}
    for path in listed:
        row = by_audio[str(path)]
        want = expected[str(path)]
        assert row["error"] == ""
        assert row["phones"] == want["phones"]
        assert abs(row["duration"] - want["duration"]) < 1e-3
        spans = want["spans"]
        assert len(row["starts"]) == len(spans)
        for start, end, confidence, span in zip(
            row["starts"], row["ends"], row["confidences"], spans
        ):
            # The CLI prints times to the ms and confidences to 3 decimals.
            assert abs(start - span["start"]) < 1e-3
            assert abs(end - span["end"]) < 1e-3
            assert abs(confidence - span["confidence"]) < 1e-3
    missing = by_audio[str(folder / "missing.wav")]
    assert missing["phones"] == "" and "missing.wav" in missing["error"]
