#!/usr/bin/env python3
"""Run diffusers' own LoRA key conversion on loratool outputs.

diffusers' load_lora_weights() first converts non-diffusers (kohya) state
dicts with the functions in src/diffusers/loaders/lora_conversion_utils.py,
then hands the result to PEFT. This script loads that one file from a
diffusers checkout (it needs only torch; diffusers' own `..utils` import is
served by a two-function stand-in: a logger and state_dict_all_zero) and, for
every LoRA given, runs the converter diffusers would pick:

  kohya SD/SDXL (lora_unet_/lora_te*_)  _convert_non_diffusers_lora_to_diffusers
  kohya Flux (lora_unet_double_blocks_)  _convert_kohya_flux_lora_to_diffusers

It reports, per file: an exception (diffusers rejects the file), keys left
unconverted, and two source modules mapped onto one diffusers name (a
collision: one of them is silently lost). diffusers/PEFT-named files
(unet./transformer./text_encoder./base_model.model.) are loaded by PEFT as
they are; for those it checks that every key has a lora_A/lora_B/
lora_magnitude_vector suffix and a known model prefix.

Usage:
  python3 bench/loaders/diffusers_keys.py --diffusers DIFFUSERS_CHECKOUT FILE.safetensors...
Exit status 1 when a file fails.
"""
import argparse
import importlib.util
import json
import logging
import struct
import sys
import types

import numpy as np
import torch


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    dts = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        if v["dtype"] == "BF16":
            raw = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[a:b], dtype=dts[v["dtype"]])
        out[k] = torch.from_numpy(arr.reshape(v["shape"]).copy())
    return out


def load_converter(checkout):
    pkg = types.ModuleType("diffusers")
    pkg.__path__ = []
    loaders = types.ModuleType("diffusers.loaders")
    loaders.__path__ = []
    utils = types.ModuleType("diffusers.utils")
    utils.logging = types.SimpleNamespace(get_logger=logging.getLogger)
    utils.state_dict_all_zero = lambda sd, filter_str=None: all(torch.all(v == 0) for v in sd.values())
    sys.modules.update({"diffusers": pkg, "diffusers.loaders": loaders, "diffusers.utils": utils})
    path = checkout + "/src/diffusers/loaders/lora_conversion_utils.py"
    spec = importlib.util.spec_from_file_location("diffusers.loaders.lora_conversion_utils", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PEFT_SUFFIXES = (".lora_A.weight", ".lora_B.weight", ".lora_magnitude_vector", ".lora_B.bias")
PEFT_PREFIXES = ("unet.", "transformer.", "text_encoder.", "text_encoder_2.", "text_encoder_3.", "base_model.model.")


def check(conv, path):
    sd = read_st(path)
    keys = list(sd)
    if any(k.startswith(PEFT_PREFIXES) for k in keys):
        bad = [k for k in keys if not (k.startswith(PEFT_PREFIXES) and k.endswith(PEFT_SUFFIXES))]
        return "peft/diffusers names", [], bad
    if any(k.startswith("lora_unet_double_blocks_") or k.startswith("lora_unet_single_blocks_") for k in keys):
        name = "_convert_kohya_flux_lora_to_diffusers"
        out = conv._convert_kohya_flux_lora_to_diffusers(dict(sd))
        # every lora_A in the output should come from one source module (q/k/v splits excepted)
        ok = PEFT_SUFFIXES + (".down.weight", ".up.weight", ".alpha")  # text encoders: lora_linear_layer
        return name, [], [k for k in out if not k.endswith(ok)]
    name = "_convert_non_diffusers_lora_to_diffusers"
    out, alphas = conv._convert_non_diffusers_lora_to_diffusers(dict(sd))
    n_src = sum(1 for k in keys if k.endswith("lora_down.weight"))
    n_out = sum(1 for k in out if k.endswith(".down.weight") or "lora_linear_layer.down" in k)
    collisions = []
    if n_out != n_src:
        collisions.append("%d source modules became %d diffusers modules" % (n_src, n_out))
    return name, collisions, []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diffusers", required=True)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    conv = load_converter(a.diffusers)
    failed = 0
    for f in a.files:
        try:
            name, coll, bad = check(conv, f)
        except Exception as e:  # diffusers rejects the file
            import traceback
            where = traceback.extract_tb(e.__traceback__)[-1]
            msg = (str(e).splitlines() or [""])[0][:300]
            print("FAIL %s: %s at %s:%d: %s" % (f, type(e).__name__, where.name, where.lineno, msg))
            failed += 1
            continue
        if coll or bad:
            failed += 1
            print("FAIL %s (%s): %s %s" % (f, name, "; ".join(coll), bad[:5]))
        else:
            print("ok   %s (%s)" % (f, name))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
