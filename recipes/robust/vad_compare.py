#!/usr/bin/env python3
"""Speech/non-speech segmentation against known truth: phonrec vs webrtcvad vs silero-vad.

Usage (needs numpy, webrtcvad (or webrtcvad-wheels), onnxruntime, silero-vad, and sox on PATH):
  python3 -m venv /work/data/vadvenv
  /work/data/vadvenv/bin/pip install numpy webrtcvad-wheels onnxruntime
  /work/data/vadvenv/bin/pip install --no-deps silero-vad      # skip torch: see "silero" below
  nice -n 10 /work/data/vadvenv/bin/python recipes/robust/vad_compare.py \
      [--data /work/data/robust] [--phonrec target/release/phonrec] [--json out.json] \
      [--sets psdata_eval_pad,dctts_eval_joined,test_heldout_voice_pad:50,nonspeech,...] \
      [-- extra phonrec transcribe flags]

Sets are robust manifests NAME_COND (pad, padfloor, joined) or `nonspeech`; `:N` keeps the first N files.
Truth: pad/padfloor: speech = the original clip, [pre_samples, len - post_samples) from NAME_COND.info.tsv;
joined: speech = each member utterance, non-speech = the pauses; info.tsv lists members and pauses but not
offsets, so member lengths are read from the source files (scaled to the joined file's rate, as
make_robust.py resamples a mixed-rate group) and offsets accumulated; the sum is checked against the file;
nonspeech: all non-speech.
Scoring at 10 ms frames (frame k = [10k, 10k+10) ms is speech if its centre is inside a segment):
accuracy = frames agreeing; miss = % of truth-speech frames labelled non-speech; FA = % of truth-non-speech
frames labelled speech. Totals over all files of a set (frame-weighted).
Methods:
  phonrec      `phonrec transcribe --format json FILES...` "segments" (default segmentation settings)
  webrtc2/3    webrtcvad mode 2/3 on 30 ms frames of the 16 kHz audio (sox rate conversion), raw decisions;
               a fresh Vad per file (it is stateful: reusing one across files changes the results)
  webrtc2s/3s  the same, smoothed like phonrec: speech runs with gaps < 0.5 s merged, then 0.2 s padding
  silero       silero-vad's bundled silero_vad.onnx (the file load_silero_vad(onnx=True) loads) run with
               onnxruntime exactly as the package's OnnxWrapper does (512-sample windows, 64-sample
               context, state carried), then the package's own get_speech_timestamps_from_probs with
               default parameters (taken verbatim from silero_vad/utils_vad.py; that module imports
               torch at the top, so its function is extracted with ast rather than imported)
Output: Markdown tables on stdout, and the figures (plus per-file nonspeech results) as JSON.
"""
import argparse
import ast
import json
import os
import subprocess
import sys
import time
import typing
import warnings
import wave

import numpy as np

FRAME = 0.01
RATE = 16000
METHODS = ["phonrec", "webrtc2", "webrtc2s", "webrtc3", "webrtc3s", "silero"]
DEFAULT_SETS = ("psdata_eval_pad,psdata_eval_padfloor,librivox_eval_joined,dctts_eval_pad,dctts_eval_joined,"
                "dctts_eval_padfloor,test_heldout_voice_pad:50,fsdd_eval_pad:100,nonspeech")


# ---------------------------------------------------------------- audio / manifests
def samples_and_rate(path):
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes(), w.getframerate()
    except (wave.Error, EOFError):
        out = subprocess.run(["soxi", "-s", path], capture_output=True, check=True).stdout
        r = subprocess.run(["soxi", "-r", path], capture_output=True, check=True).stdout
        return int(out.split()[0]), int(float(r.split()[0]))


def load16k(path):
    """int16 mono samples at 16 kHz (sox, as recipes/real/pocketsphinx_baseline.py)."""
    cmd = ["sox", path, "-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c", "1", "-L", "-"]
    return np.frombuffer(subprocess.run(cmd, check=True, capture_output=True).stdout, dtype="<i2")


def read_tsv_rows(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.strip() and not line.startswith("#"):
                rows.append(line.split("\t"))
    return rows


def truth_for_set(data, name):
    """-> list of (wav path, duration s, [(start_s, end_s) speech...]) in manifest order."""
    files = [r[0] for r in read_tsv_rows(os.path.join(data, name + ".tsv"))]
    info_rows = read_tsv_rows(os.path.join(data, name + ".info.tsv"))
    header, info = info_rows[0], {r[0]: dict(zip(info_rows[0], r)) for r in info_rows[1:]}
    out = []
    for path in files:
        n, rate = samples_and_rate(path)
        dur = n / rate
        d = info[path]
        if name == "nonspeech":
            speech = []
        elif "pre_samples" in header:
            speech = [(int(d["pre_samples"]) / rate, (n - int(d["post_samples"])) / rate)]
        elif "pauses_s" in header:
            members = [m.split(":", 1)[1] for m in d["utterances(index:source)"].split()]
            pauses = [float(p) for p in d["pauses_s"].split()]
            assert len(pauses) == len(members) - 1, path
            t, speech = 0, []
            for k, src in enumerate(members):
                ns, sr = samples_and_rate(src)
                m = ns if sr == rate else round(ns * rate / sr)
                speech.append((t / rate, (t + m) / rate))
                t += m
                if k < len(pauses):
                    t += int(round(pauses[k] * rate))
            if abs(t - n) > 0.005 * rate:
                print(f"warning: {path}: members+pauses = {t} samples, file has {n}", file=sys.stderr)
        else:
            raise SystemExit(f"{name}: no truth in info.tsv (need pre/post samples or pauses)")
        out.append((path, dur, speech))
    return out


def frames_of(segments, dur):
    n = int(round(dur / FRAME))
    centres = (np.arange(n) + 0.5) * FRAME
    lab = np.zeros(n, dtype=bool)
    for a, b in segments:
        lab |= (centres >= a) & (centres < b)
    return lab


# ---------------------------------------------------------------- methods
def run_phonrec(phonrec, paths, extra):
    cmd = ["nice", "-n", "10", phonrec, "transcribe", "--format", "json"] + extra + list(paths)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"warning: phonrec exit {p.returncode}: {p.stderr[-500:]}", file=sys.stderr)
    segs = {}
    for line in p.stdout.splitlines():
        if line.strip().startswith("{"):
            o = json.loads(line)
            segs[os.path.abspath(o["file"])] = [tuple(s[:2]) for s in o.get("segments", [])]
    missing = [x for x in paths if os.path.abspath(x) not in segs]
    if missing:
        raise SystemExit(f"phonrec gave no result for {len(missing)} files, e.g. {missing[0]}")
    return [segs[os.path.abspath(x)] for x in paths]


def webrtc_segments(x, mode):
    import webrtcvad
    vad = webrtcvad.Vad(mode)  # fresh per file: the detector adapts its noise model and keeps that state
    fl = int(0.03 * RATE)
    segs, start = [], None
    nfr = len(x) // fl
    for i in range(nfr):
        sp = vad.is_speech(x[i * fl:(i + 1) * fl].tobytes(), RATE)
        if sp and start is None:
            start = i * 0.03
        elif not sp and start is not None:
            segs.append((start, i * 0.03))
            start = None
    if start is not None:
        segs.append((start, nfr * 0.03))
    return segs


def smooth(segs, dur, gap=0.5, pad=0.2):
    merged = []
    for a, b in segs:
        if merged and a - merged[-1][1] < gap:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return [(max(0.0, a - pad), min(dur, b + pad)) for a, b in merged]


def load_silero_from_probs():
    """get_speech_timestamps_from_probs from the installed silero_vad/utils_vad.py, without torch."""
    import importlib.util
    spec = importlib.util.find_spec("silero_vad")
    src_path = os.path.join(os.path.dirname(spec.origin), "utils_vad.py")
    tree = ast.parse(open(src_path, encoding="utf-8").read())
    fn = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_speech_timestamps_from_probs"]
    ns = {"List": typing.List, "Callable": typing.Callable, "warnings": warnings}
    exec(compile(ast.Module(body=fn, type_ignores=[]), src_path, "exec"), ns)
    onnx_path = os.path.join(os.path.dirname(spec.origin), "data", "silero_vad.onnx")
    return ns["get_speech_timestamps_from_probs"], onnx_path


class Silero:
    def __init__(self):
        import onnxruntime
        self.from_probs, path = load_silero_from_probs()
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        self.sess = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=opts)

    def segments(self, x):
        audio = x.astype(np.float32) / 32768.0
        win, ctx = 512, 64
        state = np.zeros((2, 1, 128), dtype=np.float32)
        context = np.zeros((1, ctx), dtype=np.float32)
        sr = np.array(RATE, dtype=np.int64)
        probs = []
        for s in range(0, len(audio), win):
            chunk = audio[s:s + win]
            if len(chunk) < win:
                chunk = np.pad(chunk, (0, win - len(chunk)))
            inp = np.concatenate([context, chunk[None, :]], axis=1)
            out, state = self.sess.run(None, {"input": inp, "state": state, "sr": sr})
            context = inp[:, -ctx:]
            probs.append(float(out.reshape(-1)[0]))
        ts = self.from_probs(probs, sampling_rate=RATE, audio_length_samples=len(audio))
        return [(t["start"] / RATE, t["end"] / RATE) for t in ts]


# ---------------------------------------------------------------- main
def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/data/robust")
    ap.add_argument("--phonrec", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "..", "..", "target", "release", "phonrec"))
    ap.add_argument("--sets", default=DEFAULT_SETS)
    ap.add_argument("--json", default="/work/data/robust/vad_compare.json")
    a = ap.parse_args(argv)
    silero = Silero()

    results, nonspeech_files, times = {}, [], {}
    for spec in a.sets.split(","):
        name, _, lim = spec.partition(":")
        items = truth_for_set(a.data, name)
        if lim:
            items = items[:int(lim)]
        paths = [p for p, _, _ in items]
        t0 = time.time()
        hyp = {"phonrec": run_phonrec(a.phonrec, paths, extra)}
        tm = {"phonrec": time.time() - t0}
        for m in METHODS[1:]:
            hyp[m] = []
            tm[m] = 0.0
        for path, dur, _ in items:
            x = load16k(path)
            for mode in (2, 3):
                t0 = time.time()
                raw = webrtc_segments(x, mode)
                hyp[f"webrtc{mode}"].append(raw)
                hyp[f"webrtc{mode}s"].append(smooth(raw, dur))
                tm[f"webrtc{mode}"] += time.time() - t0
            t0 = time.time()
            hyp["silero"].append(silero.segments(x))
            tm["silero"] += time.time() - t0
        times[spec] = {m: round(v, 2) for m, v in tm.items()}
        audio_s = sum(d for _, d, _ in items)
        results[spec] = {"files": len(items), "audio_s": round(audio_s, 1)}
        for m in METHODS:
            agree = sp = ns = miss = fa = 0
            for (path, dur, truth), h in zip(items, hyp[m]):
                t, y = frames_of(truth, dur), frames_of(h, dur)
                agree += int(np.sum(t == y))
                sp += int(t.sum())
                ns += int((~t).sum())
                miss += int(np.sum(t & ~y))
                fa += int(np.sum(~t & y))
                if name == "nonspeech":
                    nonspeech_files.append({"file": os.path.basename(path), "method": m,
                                            "speech_s": round(float(y.sum()) * FRAME, 2), "segments": len(h)})
            results[spec][m] = {
                "accuracy": round(100.0 * agree / max(1, sp + ns), 2),
                "miss": round(100.0 * miss / sp, 2) if sp else None,
                "fa": round(100.0 * fa / ns, 2) if ns else None,
                "speech_frames": sp, "nonspeech_frames": ns}
        print(f"done {spec}: {len(items)} files, {audio_s:.0f} s audio; times {times[spec]}", file=sys.stderr,
              flush=True)

    def cell(v):
        return "-" if v is None else f"{v:.1f}"

    for key, title in (("accuracy", "Frame accuracy %"), ("miss", "Missed speech % (of truth-speech frames)"),
                       ("fa", "False alarm % (of truth-non-speech frames)")):
        print(f"\n### {title}\n")
        print("| set | files | audio s | speech % | " + " | ".join(METHODS) + " |")
        print("|---|---|---|---|" + "---|" * len(METHODS))
        for spec, r in results.items():
            f0 = r[METHODS[0]]
            sp_pct = 100.0 * f0["speech_frames"] / max(1, f0["speech_frames"] + f0["nonspeech_frames"])
            print(f"| {spec} | {r['files']} | {r['audio_s']:.0f} | {sp_pct:.0f} | "
                  + " | ".join(cell(r[m][key]) for m in METHODS) + " |")
    if nonspeech_files:
        print("\n### nonspeech: seconds labelled speech per 10 s file\n")
        print("| file | " + " | ".join(METHODS) + " |")
        print("|---|" + "---|" * len(METHODS))
        for f in dict.fromkeys(x["file"] for x in nonspeech_files):
            row = {x["method"]: x["speech_s"] for x in nonspeech_files if x["file"] == f}
            print(f"| {f} | " + " | ".join(f"{row[m]:.2f}" for m in METHODS) + " |")
    print("\n### compute time (s) per set\n")
    print("| set | " + " | ".join(METHODS[:2] + METHODS[3:4] + ["silero"]) + " |")
    print("|---|---|---|---|---|")
    for spec, t in times.items():
        print(f"| {spec} | {t['phonrec']} | {t['webrtc2']} | {t['webrtc3']} | {t['silero']} |")
    with open(a.json, "w") as f:
        json.dump({"sets": results, "nonspeech_files": nonspeech_files, "times_s": times,
                   "phonrec": os.path.realpath(a.phonrec), "phonrec_extra_args": extra,
                   "frame_s": FRAME}, f, indent=1)
    print(f"\n(JSON: {a.json})")


if __name__ == "__main__":
    main()
