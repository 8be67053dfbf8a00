#!/usr/bin/env python3
"""Transcribe a list of recordings with Ray Data: one phonrec Recognizer per worker actor.

    python recipes/cluster/ray_transcribe.py corpus.tsv out/ --workers 8 --format parquet
    python recipes/cluster/ray_transcribe.py corpus.tsv out/ --address auto   # an existing cluster

The list is phonrec's manifest format (`phonrec transcribe --manifest`): one recording per line, a
path relative to the list's folder optionally followed by a tab and other columns (ignored), `#`
comments, an optional `audio<TAB>...` header; or JSON Lines with "audio" and an optional "id".

Each worker actor loads the built-in model once (`phonrec.Recognizer()`) and transcribes batches of
paths with `Recognizer.transcribe_batch`, which shares network batches between short files. Rows of the
output (JSON Lines or Parquet files in the output folder, one per block): `audio`, `id`, `phones` (the
phones separated by spaces), `starts`, `ends`, `confidences` (per phone, seconds), `duration`, and
`error` (empty, or why the file could not be transcribed: a bad file does not stop the job).

Needs `pip install ./python "ray[data]"` (the phonrec package and Ray). Each actor uses
`--threads-per-worker` cores (RAYON_NUM_THREADS); give a cluster node's cores to actors of 1-2 threads
each rather than one actor of many: short files parallelise across actors better than inside one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def read_manifest(path: Path) -> list[dict]:
    """The recordings a manifest lists, as {"audio": absolute path, "id": id or ""} rows."""
    base = path.resolve().parent
    rows: list[dict] = []
    first = True
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        if line.lstrip().startswith("{"):
            record = json.loads(line)
            if "audio" not in record:
                raise ValueError(f"{path}:{number}: a JSON line without \"audio\"")
            audio, utterance = str(record["audio"]), str(record.get("id") or "")
        else:
            audio, utterance = line.split("\t", 1)[0].strip(), ""
            if first and audio == "audio":
                first = False
                continue
        first = False
        if not audio:
            raise ValueError(f"{path}:{number}: no audio path")
        rows.append({"audio": str(base / audio), "id": utterance})
    return rows


class Transcriber:
    """A Ray Data callable class: one Recognizer per actor, reused for every batch."""

    def __init__(self) -> None:
        import phonrec

        self.recognizer = phonrec.Recognizer()

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["audio"]]
        columns: dict[str, list] = {
            "audio": paths,
            "id": [str(i) for i in batch["id"]],
            "phones": [],
            "starts": [],
            "ends": [],
            "confidences": [],
            "duration": [],
            "error": [],
        }
        for result in self.recognizer.transcribe_batch(paths, errors="return"):
            if isinstance(result, Exception):
                phones, error, duration = [], str(result), 0.0
            else:
                phones, error, duration = list(result.phones), "", float(result.duration)
            columns["phones"].append(" ".join(p.phone for p in phones))
            columns["starts"].append([p.start for p in phones])
            columns["ends"].append([p.end for p in phones])
            columns["confidences"].append([p.confidence for p in phones])
            columns["duration"].append(duration)
            columns["error"].append(error)
        return columns


def transcribe(
    rows: list[dict],
    output: Path,
    workers: int,
    threads_per_worker: int,
    batch_size: int,
    output_format: str,
) -> None:
    """Run the Ray Data pipeline over `rows`, writing `output_format` files into `output`."""
    import ray

    dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // batch_size))
    transcribed = dataset.map_batches(
        Transcriber,
        batch_size=batch_size,
        concurrency=workers,
        num_cpus=threads_per_worker,
        batch_format="default",
    )
    if output_format == "parquet":
        transcribed.write_parquet(str(output))
    else:
        transcribed.write_json(str(output))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="list of recordings (phonrec manifest format)")
    parser.add_argument("output", type=Path, help="folder for the JSON Lines or Parquet files")
    parser.add_argument("--workers", type=int, default=2, help="Recognizer actors (default 2)")
    parser.add_argument("--threads-per-worker", type=int, default=1, help="cores per actor")
    parser.add_argument("--batch-size", type=int, default=32, help="files per batch (default 32)")
    parser.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    parser.add_argument(
        "--address",
        default=None,
        help="a running Ray cluster (`auto`); default: start a local one with --workers × "
        "--threads-per-worker CPUs",
    )
    args = parser.parse_args()

    import ray

    rows = read_manifest(args.manifest)
    if not rows:
        print(f"{args.manifest}: no recordings listed", file=sys.stderr)
        return 1
    # Rayon (phonrec's thread pool) reads this when an actor's process first uses it.
    runtime_env = {"env_vars": {"RAYON_NUM_THREADS": str(args.threads_per_worker)}}
    if args.address:
        ray.init(address=args.address, runtime_env=runtime_env)
    else:
        ray.init(
            num_cpus=args.workers * args.threads_per_worker,
            runtime_env=runtime_env,
            include_dashboard=False,
        )
    started = time.perf_counter()
    transcribe(
        rows, args.output, args.workers, args.threads_per_worker, args.batch_size, args.format
    )
    elapsed = time.perf_counter() - started
    print(f"{len(rows)} recordings in {elapsed:.1f} s with {args.workers} workers", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
