#!/usr/bin/env python3
"""Generate loratool's ComfyUI golden cases (testdata/golden/comfyui).

Runs ComfyUI's own LoRA code on CPU -- comfy/lora.py (model_lora_keys_unet,
model_lora_keys_clip, load_lora, calculate_weight), comfy/lora_convert.py,
comfy/weight_adapter/* and the key-map helpers in comfy/utils.py -- on the
tiny synthetic checkpoints loratool's internal/fixture writes, with small
random LoRAs, and records what ComfyUI produces:

  <case>.lora.safetensors      the LoRA file given to ComfyUI
  <case>.expected.safetensors  every base tensor ComfyUI changed, in the
                               checkpoint file's own names and layout
                               (what CheckpointSave would write)
  cases.json                   per case: base, strengths, model-only flag,
                               the patched tensors, the LoRA keys ComfyUI
                               did not load ("lora key not loaded") and the
                               patch targets no model holds ("NOT LOADED")

Only the glue is this script's own: the model objects are stand-ins that
expose state_dict() and model_config.unet_config (what the key-map
functions read), and ModelPatcher.add_patches' bookkeeping (keep a patch
when its target is in the patcher's state dict; record strength_patch,
strength_model, offset, function) is re-stated in add_patches() below.
Key mapping and math are ComfyUI's.

Usage (see testdata/golden/comfyui/README.md):
  go run ./bench/genfixture -kind checkpoint -arch sd1 -size tiny -dtype f32 -seed 7 -o BASES/sd1.safetensors
  ... (sdxl, sd3; flux1 with -layout diffusion-model)
  python3 tools/comfygolden/gen.py --comfy COMFYUI_CHECKOUT --bases BASES --out testdata/golden/comfyui
"""
import argparse
import hashlib
import json
import logging
import os
import struct
import sys
import types

import numpy as np
import torch


# ---------------------------------------------------------------- safetensors I/O (own code)

ST_DT = {"F32": (np.float32, torch.float32), "F64": (np.float64, torch.float64), "I64": (np.int64, torch.int64),
         "F16": (np.float16, torch.float16)}


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        npdt, _ = ST_DT[v["dtype"]]
        a, b = v["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=npdt).reshape(v["shape"]).copy()
        out[k] = torch.from_numpy(arr)
    return out


def write_st(path, tensors, metadata=None):
    hdr = {}
    if metadata:
        hdr["__metadata__"] = metadata
    blobs = []
    off = 0
    for k in sorted(tensors):
        t = tensors[k].contiguous()
        if t.dtype == torch.float32:
            dt = "F32"
        elif t.dtype == torch.int64:
            dt = "I64"
        else:
            raise ValueError("dtype %s" % t.dtype)
        b = t.numpy().tobytes()
        hdr[k] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- importing ComfyUI

MODEL_CLASSES = ["BaseModel", "SD15", "SDXL", "SD3", "Flux", "StableCascade_C", "AuraFlow", "PixArt", "HunyuanDiT",
                 "GenmoMochi", "HunyuanVideo", "HiDream", "ACEStep", "Omnigen2", "QwenImage"]


def import_comfy(path):
    sys.path.insert(0, path)
    # comfy/utils.py imports safetensors.torch (file loading) and einops
    # (image helpers) at module level; neither is used by the LoRA code.
    # Debian has no package for them, so empty modules stand in when absent.
    for name in ("safetensors", "safetensors.torch", "einops"):
        try:
            __import__(name)
        except ImportError:
            m = types.ModuleType(name)
            m.rearrange = None
            sys.modules[name] = m
    if "safetensors" in sys.modules and not hasattr(sys.modules["safetensors"], "torch"):
        sys.modules["safetensors"].torch = sys.modules["safetensors.torch"]
    # comfy.model_base pulls in every model implementation; the key-map
    # functions only use its classes for isinstance(), so stand-in classes
    # with the real names are enough.
    mb = types.ModuleType("comfy.model_base")
    base = type("BaseModel", (), {})
    mb.BaseModel = base
    for n in MODEL_CLASSES[1:]:
        setattr(mb, n, type(n, (base,), {}))
    import comfy  # noqa: F401  (package)
    import comfy.cli_args
    comfy.cli_args.args.cpu = True  # ComfyUI's --cpu
    sys.modules["comfy.model_base"] = mb
    comfy.model_base = mb
    import comfy.lora
    import comfy.lora_convert
    import comfy.utils
    import comfy.weight_adapter
    return comfy


class Model:
    """Stand-in for a ComfyUI BaseModel / CLIP cond_stage_model: the key-map
    functions read state_dict() and model_config.unet_config."""

    def __init__(self, sd, unet_config=None):
        self._sd = sd
        self.model_config = types.SimpleNamespace(unet_config=unet_config or {})

    def state_dict(self):
        return self._sd


def make_model(comfy, cls, sd, unet_config):
    c = type("Golden" + cls, (getattr(comfy.model_base, cls), Model), {})
    return c(sd, unet_config)


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.msgs = []

    def emit(self, record):
        self.msgs.append(record.getMessage())


def add_patches(patches_out, model_sd, patches, strength_patch):
    """ModelPatcher.add_patches: keep patches whose target the model holds."""
    kept = set()
    for k in patches:
        offset = None
        function = None
        if isinstance(k, str):
            key = k
        else:
            offset = k[1]
            key = k[0]
            if len(k) > 2:
                function = k[2]
        if key in model_sd:
            kept.add(k)
            patches_out.setdefault(key, []).append((strength_patch, patches[k], 1.0, offset, function))
    return kept


# ---------------------------------------------------------------- checkpoint file <-> ComfyUI model keys

def to_comfy(comfy, arch, file_sd):
    """Rename/reshape a checkpoint file's tensors into ComfyUI's model and
    text-encoder state dicts, as ComfyUI's supported_models do on load."""
    u = comfy.utils
    sd = dict(file_sd)
    if arch == "sd1":
        sd = u.state_dict_prefix_replace(sd, {"model.diffusion_model.": "diffusion_model.",
                                              "cond_stage_model.transformer.": "clip_l.transformer."})
    elif arch == "sdxl":
        sd = u.state_dict_prefix_replace(sd, {"model.diffusion_model.": "diffusion_model.",
                                              "conditioner.embedders.0.transformer.": "clip_l.transformer."})
        sd = u.clip_text_transformers_convert(sd, "conditioner.embedders.1.model.", "clip_g.transformer.")
    elif arch == "sd3":
        sd = u.state_dict_prefix_replace(sd, {"model.diffusion_model.": "diffusion_model.",
                                              "text_encoders.": ""})
    elif arch == "flux1":
        sd = {"diffusion_model." + k: v for k, v in sd.items()}
    unet = {k: v for k, v in sd.items() if k.startswith("diffusion_model.")}
    clip = {k: v for k, v in sd.items() if k.split(".")[0] in ("clip_l", "clip_g", "t5xxl")}
    return unet, clip


def unet_config(arch, file_sd):
    if arch == "sd1":
        return {"num_res_blocks": [2, 2, 2, 2], "channel_mult": [1, 2, 4, 4],
                "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
                "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
                "transformer_depth_middle": 1}
    if arch == "sdxl":
        return {"num_res_blocks": [2, 2, 2], "channel_mult": [1, 2, 4],
                "transformer_depth": [0, 0, 2, 2, 10, 10],
                "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
                "transformer_depth_middle": 10}
    if arch == "flux1":
        nd = 1 + max(int(k.split(".")[1]) for k in file_sd if k.startswith("double_blocks."))
        ns = 1 + max(int(k.split(".")[1]) for k in file_sd if k.startswith("single_blocks."))
        return {"depth": nd, "depth_single_blocks": ns, "hidden_size": file_sd["img_in.weight"].shape[0]}
    if arch == "sd3":
        pre = "model.diffusion_model.joint_blocks."
        n = 1 + max(int(k[len(pre):].split(".")[0]) for k in file_sd if k.startswith(pre))
        hidden = file_sd["model.diffusion_model.x_embedder.proj.weight"].shape[0]
        # mmdit_to_diffusers derives the q/k/v width as depth*64 (true for
        # every released SD3); the tiny model is narrower, so depth is the
        # block count whose "*64" gives the real width.
        return {"depth": _Depth(n, hidden)}
    raise ValueError(arch)


class _Depth(int):
    """SD3 depth whose depth*64 is the tiny model's width (see unet_config)."""

    def __new__(cls, n, width):
        o = int.__new__(cls, n)
        o.width = width
        return o

    def __mul__(self, other):
        if other == 64:
            return self.width
        return int(self) * other


MODEL_CLASS = {"sd1": "SD15", "sdxl": "SDXL", "flux1": "Flux", "sd3": "SD3"}


# ---------------------------------------------------------------- LoRA builders

class Gen:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def r(self, *shape, scale=0.1):
        return (torch.randn(*shape, generator=self.g, dtype=torch.float32) * scale)

    def pos(self, *shape):
        return torch.rand(*shape, generator=self.g, dtype=torch.float32) + 0.5


def lora(g, d, pre, out, inn, rank, alpha=None, up=".lora_up.weight", down=".lora_down.weight", kernel=None):
    if kernel:
        d[pre + up] = g.r(out, rank, 1, 1)
        d[pre + down] = g.r(rank, inn, *kernel)
    else:
        d[pre + up] = g.r(out, rank)
        d[pre + down] = g.r(rank, inn)
    if alpha is not None:
        d[pre + ".alpha"] = torch.tensor(float(alpha))


# ---------------------------------------------------------------- cases

SD1_ATTN = "input_blocks_1_1_transformer_blocks_0_attn1_to_q"
SD1_ATTN_N = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"


def cases(base):
    """Each case: name, arch, LoRA tensors, strength_model, strength_clip, model_only."""
    out = []

    def shp(arch, k):
        return list(base[arch][k].shape)

    # SD1.5 kohya LoRA + LoCon conv + Tucker mid + text encoder, 0.8/0.5
    g = Gen(1)
    d = {}
    lora(g, d, "lora_unet_" + SD1_ATTN, 10, 10, 4, alpha=2)
    lora(g, d, "lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_k", 10, 24, 4, alpha=8)
    lora(g, d, "lora_unet_input_blocks_1_1_proj_in", *shp("sd1", "model.diffusion_model.input_blocks.1.1.proj_in.weight")[:2], 2, alpha=1, kernel=None) \
        if len(shp("sd1", "model.diffusion_model.input_blocks.1.1.proj_in.weight")) == 2 else \
        lora(g, d, "lora_unet_input_blocks_1_1_proj_in", *shp("sd1", "model.diffusion_model.input_blocks.1.1.proj_in.weight")[:2], 2, alpha=1, kernel=(1, 1))
    c = shp("sd1", "model.diffusion_model.input_blocks.1.0.in_layers.2.weight")  # 3x3 conv
    lora(g, d, "lora_unet_input_blocks_1_0_in_layers_2", c[0], c[1], 3, alpha=3, kernel=(3, 3))
    c = shp("sd1", "model.diffusion_model.output_blocks.3.0.in_layers.2.weight")
    p = "lora_unet_output_blocks_3_0_in_layers_2"
    d[p + ".lora_up.weight"] = g.r(c[0], 2, 1, 1)
    d[p + ".lora_down.weight"] = g.r(2, c[1], 1, 1)
    d[p + ".lora_mid.weight"] = g.r(2, 2, 3, 3)
    d[p + ".alpha"] = torch.tensor(1.0)
    lora(g, d, "lora_te_text_model_encoder_layers_0_self_attn_q_proj", 16, 16, 4, alpha=4)
    lora(g, d, "lora_te_text_model_encoder_layers_1_mlp_fc1", *shp("sd1", "cond_stage_model.transformer.text_model.encoder.layers.1.mlp.fc1.weight"), 2)
    out.append(("sd1_kohya_locon", "sd1", d, 0.8, 0.5, False))
    # same file, model only
    out.append(("sd1_kohya_model_only", "sd1", d, 0.7, 0.0, True))

    # SD1.5 LyCORIS algorithms, one module each
    g = Gen(2)
    d = {}
    def n(k):
        return shp("sd1", "model.diffusion_model." + k + ".weight")
    p = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_k"  # LoHa
    o, i = n("input_blocks.1.1.transformer_blocks.0.attn1.to_k")
    d[p + ".hada_w1_a"], d[p + ".hada_w1_b"] = g.r(o, 2), g.r(2, i)
    d[p + ".hada_w2_a"], d[p + ".hada_w2_b"] = g.r(o, 2), g.r(2, i)
    d[p + ".alpha"] = torch.tensor(1.0)
    p = "lora_unet_input_blocks_1_0_in_layers_2"  # LoHa Tucker conv
    o, i, kh, kw = n("input_blocks.1.0.in_layers.2")
    d[p + ".hada_w1_a"], d[p + ".hada_w1_b"] = g.r(2, o), g.r(2, i)
    d[p + ".hada_w2_a"], d[p + ".hada_w2_b"] = g.r(2, o), g.r(2, i)
    d[p + ".hada_t1"], d[p + ".hada_t2"] = g.r(2, 2, kh, kw), g.r(2, 2, kh, kw)
    d[p + ".alpha"] = torch.tensor(2.0)
    p = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"  # LoKr full factors
    o, i = n("input_blocks.4.1.transformer_blocks.0.attn1.to_q")  # 20x20
    d[p + ".lokr_w1"] = g.r(4, 4)
    d[p + ".lokr_w2"] = g.r(o // 4, i // 4)
    p = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_k"  # LoKr low-rank w2, alpha
    d[p + ".lokr_w1"] = g.r(4, 4)
    d[p + ".lokr_w2_a"], d[p + ".lokr_w2_b"] = g.r(o // 4, 2), g.r(2, i // 4)
    d[p + ".alpha"] = torch.tensor(1.0)
    p = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_v"  # LoKr both low-rank
    d[p + ".lokr_w1_a"], d[p + ".lokr_w1_b"] = g.r(4, 2), g.r(2, 4)
    d[p + ".lokr_w2_a"], d[p + ".lokr_w2_b"] = g.r(o // 4, 2), g.r(2, i // 4)
    d[p + ".alpha"] = torch.tensor(3.0)
    p = "lora_unet_input_blocks_4_0_in_layers_2"  # LoKr conv, low-rank w2 (no Tucker)
    o, i, kh, kw = n("input_blocks.4.0.in_layers.2")
    d[p + ".lokr_w1"] = g.r(2, 2)
    d[p + ".lokr_w2_a"], d[p + ".lokr_w2_b"] = g.r(o // 2, 2), g.r(2, (i // 2) * kh * kw)
    d[p + ".alpha"] = torch.tensor(1.0)
    p = "lora_unet_input_blocks_2_1_transformer_blocks_0_attn1_to_q"  # GLoRA
    o, i = n("input_blocks.2.1.transformer_blocks.0.attn1.to_q")
    d[p + ".a1.weight"], d[p + ".a2.weight"] = g.r(2, i), g.r(i, 2)
    d[p + ".b1.weight"], d[p + ".b2.weight"] = g.r(2, i), g.r(o, 2)
    d[p + ".alpha"] = torch.tensor(2.0)
    p = "lora_unet_input_blocks_2_1_transformer_blocks_0_attn1_to_k"  # OFT (2 blocks of 5)
    o, i = n("input_blocks.2.1.transformer_blocks.0.attn1.to_k")
    d[p + ".oft_blocks"] = g.r(2, o // 2, o // 2)
    d[p + ".alpha"] = torch.tensor(0.0)
    p = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_out_0"  # BOFT
    d[p + ".oft_blocks"] = g.r(2, 10, 2, 2)  # boft_m=2, 10 blocks of 2 (20 rows)
    d[p + ".alpha"] = torch.tensor(0.0)
    p = "lora_unet_input_blocks_5_1_transformer_blocks_0_attn1_to_q"  # DoRA (output axis)
    o, i = n("input_blocks.5.1.transformer_blocks.0.attn1.to_q")
    lora(g, d, p, o, i, 2, alpha=1)
    d[p + ".dora_scale"] = g.pos(o, 1)
    p = "lora_unet_input_blocks_5_1_transformer_blocks_0_attn1_to_k"  # DoRA (input axis, LyCORIS)
    lora(g, d, p, o, i, 2, alpha=2)
    d[p + ".dora_scale"] = g.pos(1, i)
    p = "lora_unet_input_blocks_5_1_transformer_blocks_0_attn2_to_out_0"  # full diff + diff_b
    o, i = n("input_blocks.5.1.transformer_blocks.0.attn2.to_out.0")
    d[p + ".diff"] = g.r(o, i)
    d[p + ".diff_b"] = g.r(o)
    p = "lora_unet_input_blocks_5_1_norm"  # w_norm / b_norm (GroupNorm)
    o = shp("sd1", "model.diffusion_model.input_blocks.5.1.norm.weight")[0]
    d[p + ".w_norm"] = g.r(o)
    d[p + ".b_norm"] = g.r(o)
    p = "lora_unet_input_blocks_5_1_transformer_blocks_0_norm1"  # set_weight
    d[p + ".set_weight"] = g.r(o)
    p = "lora_unet_input_blocks_7_1_transformer_blocks_0_attn1_to_q"  # (IA)^3: not a ComfyUI algorithm
    o, i = n("input_blocks.7.1.transformer_blocks.0.attn1.to_q")
    d[p + ".weight"] = g.r(o)
    d[p + ".on_input"] = torch.tensor(0.0)
    p = "lora_te_text_model_encoder_layers_0_self_attn_k_proj"  # LoHa on the text encoder
    d[p + ".hada_w1_a"], d[p + ".hada_w1_b"] = g.r(16, 2), g.r(2, 16)
    d[p + ".hada_w2_a"], d[p + ".hada_w2_b"] = g.r(16, 2), g.r(2, 16)
    d[p + ".alpha"] = torch.tensor(2.0)
    out.append(("sd1_lycoris_algos", "sd1", d, 1.0, 1.0, False))
    out.append(("sd1_lycoris_algos_s06", "sd1", d, 0.6, 1.3, False))

    # DoRA on LyCORIS algorithms, OFT with a constraint and DoRA
    g = Gen(12)
    d = {}
    p = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_k"  # LoHa + DoRA
    o, i = n("input_blocks.1.1.transformer_blocks.0.attn1.to_k")
    d[p + ".hada_w1_a"], d[p + ".hada_w1_b"] = g.r(o, 2), g.r(2, i)
    d[p + ".hada_w2_a"], d[p + ".hada_w2_b"] = g.r(o, 2), g.r(2, i)
    d[p + ".alpha"] = torch.tensor(1.0)
    d[p + ".dora_scale"] = g.pos(o, 1)
    p = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"  # LoKr + DoRA (input axis)
    o, i = n("input_blocks.4.1.transformer_blocks.0.attn1.to_q")
    d[p + ".lokr_w1"] = g.r(4, 4)
    d[p + ".lokr_w2_a"], d[p + ".lokr_w2_b"] = g.r(o // 4, 2), g.r(2, i // 4)
    d[p + ".alpha"] = torch.tensor(2.0)
    d[p + ".dora_scale"] = g.pos(1, i)
    p = "lora_unet_input_blocks_2_1_transformer_blocks_0_attn1_to_q"  # GLoRA + DoRA
    o, i = n("input_blocks.2.1.transformer_blocks.0.attn1.to_q")
    d[p + ".a1.weight"], d[p + ".a2.weight"] = g.r(2, i), g.r(i, 2)
    d[p + ".b1.weight"], d[p + ".b2.weight"] = g.r(2, i), g.r(o, 2)
    d[p + ".alpha"] = torch.tensor(2.0)
    d[p + ".dora_scale"] = g.pos(o, 1)
    p = "lora_unet_input_blocks_2_1_transformer_blocks_0_attn1_to_k"  # OFT, constraint alpha, rescale
    o, i = n("input_blocks.2.1.transformer_blocks.0.attn1.to_k")
    d[p + ".oft_blocks"] = g.r(2, o // 2, o // 2, scale=0.5)
    d[p + ".alpha"] = torch.tensor(0.05)
    d[p + ".rescale"] = g.pos(o, 1)
    p = "lora_unet_input_blocks_2_1_transformer_blocks_0_attn1_to_v"  # OFT + DoRA
    d[p + ".oft_blocks"] = g.r(5, 2, 2)
    d[p + ".alpha"] = torch.tensor(0.0)
    d[p + ".dora_scale"] = g.pos(o, 1)
    out.append(("sd1_dora_oft", "sd1", d, 0.75, 1.0, False))

    # LoKr with a Tucker core lokr_t2 (conv), and two names for one weight
    g = Gen(9)
    d = {}
    p = "lora_unet_input_blocks_4_0_in_layers_2"
    o, i, kh, kw = n("input_blocks.4.0.in_layers.2")
    d[p + ".lokr_w1"] = g.r(2, 2)
    d[p + ".lokr_w2_a"], d[p + ".lokr_w2_b"] = g.r(2, o // 2), g.r(2, i // 2)
    d[p + ".lokr_t2"] = g.r(2, 2, kh, kw)
    d[p + ".alpha"] = torch.tensor(1.0)
    lora(g, d, "lora_unet_" + SD1_ATTN, 10, 10, 2, alpha=2)
    lora(g, d, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 10, 10, 2, alpha=1)
    out.append(("sd1_comfy_bugs", "sd1", d, 1.0, 1.0, False))

    # lora_unet_unet_ (kohya names of diffusers keys with the unet. prefix kept), text-encoder DoRA magnitude
    g = Gen(11)
    d = {}
    lora(g, d, "lora_unet_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k", 10, 10, 2, alpha=1)
    lora(g, d, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_v", 10, 10, 2, alpha=1)
    p = "text_encoder.text_model.encoder.layers.1.self_attn.q_proj"
    lora(g, d, p, 16, 16, 2, up=".lora_B.weight", down=".lora_A.weight")
    d[p + ".lora_magnitude_vector"] = g.pos(16)
    out.append(("sd1_unet_unet_te_dora", "sd1", d, 1.0, 1.0, False))

    # lora_te1_ on an SD1 model (ComfyUI maps it to CLIP-L)
    g = Gen(16)
    d = {}
    lora(g, d, "lora_te1_text_model_encoder_layers_0_self_attn_v_proj", 16, 16, 2, alpha=1)
    lora(g, d, "lora_unet_" + SD1_ATTN, 10, 10, 2, alpha=1)
    out.append(("sd1_te1_prefix", "sd1", d, 1.0, 1.0, False))

    # strength 0: set_weight still applied (LoraLoader runs when the clip strength is not 0)
    g = Gen(3)
    d = {}
    lora(g, d, "lora_unet_" + SD1_ATTN, 10, 10, 2, alpha=2)
    o = shp("sd1", "model.diffusion_model.input_blocks.5.1.transformer_blocks.0.norm1.weight")[0]
    d["lora_unet_input_blocks_5_1_transformer_blocks_0_norm1.set_weight"] = g.r(o)
    d["lora_unet_input_blocks_5_1_transformer_blocks_0_attn2_to_out_0.diff"] = g.r(*shp("sd1", "model.diffusion_model.input_blocks.5.1.transformer_blocks.0.attn2.to_out.0.weight"))
    lora(g, d, "lora_te_text_model_encoder_layers_0_self_attn_q_proj", 16, 16, 2, alpha=2)
    out.append(("sd1_strength0", "sd1", d, 0.0, 1.0, False))

    # SD1.5 diffusers / PEFT names (unet. + text_encoder.), PEFT DoRA magnitude
    g = Gen(4)
    d = {}
    lora(g, d, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", 10, 10, 4, up=".lora_B.weight", down=".lora_A.weight")
    lora(g, d, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0", 10, 10, 4, up=".lora_B.weight", down=".lora_A.weight")
    lora(g, d, "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k", 40, 24, 2, up=".lora.up.weight", down=".lora.down.weight")
    lora(g, d, "down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_q", 20, 20, 2, up="_lora.up.weight", down="_lora.down.weight")
    lora(g, d, "text_encoder.text_model.encoder.layers.0.self_attn.v_proj", 16, 16, 2, up=".lora_B.weight", down=".lora_A.weight")
    p = "unet.up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_v"
    lora(g, d, p, 40, 40, 2, up=".lora_B.weight", down=".lora_A.weight")
    d[p + ".lora_magnitude_vector"] = g.pos(40)
    out.append(("sd1_diffusers_peft", "sd1", d, 0.9, 0.4, False))

    # SDXL: kohya te1/te2 (CLIP-G thirds of in_proj), diffusers text_encoder_2, unet
    g = Gen(5)
    d = {}
    for proj in ("q", "k", "v"):
        lora(g, d, "lora_te2_text_model_encoder_layers_0_self_attn_%s_proj" % proj, 16, 16, 2, alpha=1)
    lora(g, d, "lora_te2_text_model_encoder_layers_1_mlp_fc2", *shp("sdxl", "conditioner.embedders.1.model.transformer.resblocks.1.mlp.c_proj.weight"), 2)
    lora(g, d, "text_encoder_2.text_model.encoder.layers.1.self_attn.k_proj", 16, 16, 2, up=".lora_B.weight", down=".lora_A.weight")
    lora(g, d, "lora_te1_text_model_encoder_layers_0_self_attn_out_proj", 16, 16, 2, alpha=2)
    lora(g, d, "lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k", 20, 64, 4, alpha=4)
    lora(g, d, "lora_unet_output_blocks_0_1_transformer_blocks_9_ff_net_2", *shp("sdxl", "model.diffusion_model.output_blocks.0.1.transformer_blocks.9.ff.net.2.weight"), 2, alpha=1)
    lora(g, d, "lora_te2_text_projection", 16, 16, 2, alpha=1)  # open_clip stores it transposed
    lora(g, d, "lora_unet_input_blocks_4_0_in_layers_2", *shp("sdxl", "model.diffusion_model.input_blocks.4.0.in_layers.2.weight")[:2], 2, alpha=1, kernel=(3, 3))
    out.append(("sdxl_kohya_te2_thirds", "sdxl", d, 1.0, 0.75, False))

    # Flux: diffusers q/k/v + proj_mlp slices, kohya/comfy fused names, linear1_qkv, norm_out swap
    g = Gen(6)
    d = {}
    H = base["flux1"]["img_in.weight"].shape[0]
    for q in ("to_q", "to_k", "to_v", "add_q_proj", "add_v_proj"):
        lora(g, d, "transformer.transformer_blocks.0.attn." + q, H, H, 2, up=".lora_B.weight", down=".lora_A.weight")
    for q in ("to_q", "to_v"):
        lora(g, d, "transformer.single_transformer_blocks.1.attn." + q, H, H, 2, up=".lora_B.weight", down=".lora_A.weight")
    lora(g, d, "transformer.single_transformer_blocks.1.proj_mlp", 4 * H, H, 2, up=".lora_B.weight", down=".lora_A.weight")
    lora(g, d, "transformer.norm_out.linear", 2 * H, H, 2, up=".lora_B.weight", down=".lora_A.weight")
    lora(g, d, "lora_unet_double_blocks_1_img_attn_qkv", 3 * H, H, 4, alpha=2)
    lora(g, d, "lora_unet_single_blocks_2_linear2", H, shp("flux1", "single_blocks.2.linear2.weight")[1], 2, alpha=1)
    lora(g, d, "diffusion_model.single_blocks.3.linear1_qkv", 3 * H, H, 2)
    lora(g, d, "diffusion_model.double_blocks.2.txt_mlp.0", *shp("flux1", "double_blocks.2.txt_mlp.0.weight"), 2)
    d["diffusion_model.double_blocks.2.txt_mlp.0.diff_b"] = g.r(shp("flux1", "double_blocks.2.txt_mlp.0.bias")[0])
    out.append(("flux1_mixed_names", "flux1", d, 0.85, 1.0, True))

    # raw PEFT / diffusers names ComfyUI does or does not load, PEFT DoRA magnitude
    g = Gen(10)
    d = {}
    p = "transformer.transformer_blocks.1.attn.to_out.0"
    lora(g, d, p, H, H, 2, up=".lora_B.weight", down=".lora_A.weight")
    d[p + ".lora_magnitude_vector"] = g.pos(H)
    lora(g, d, "base_model.model.transformer_blocks.2.attn.to_out.0", H, H, 2, up=".lora_B.weight", down=".lora_A.weight")
    lora(g, d, "base_model.model.single_transformer_blocks.0.proj_out", H, shp("flux1", "single_blocks.0.linear2.weight")[1], 2, up=".lora_B.weight", down=".lora_A.weight")
    out.append(("flux1_peft_dora_raw", "flux1", d, 1.0, 1.0, True))

    # Flux kohya-style names of diffusers modules: OneTrainer (lora_transformer_), SimpleTuner
    # LyCORIS (lycoris_), and lora_unet_ + diffusers path
    g = Gen(13)
    d = {}
    lora(g, d, "lora_unet_transformer_blocks_0_attn_to_q", H, H, 2, alpha=1)
    lora(g, d, "lora_transformer_transformer_blocks_0_attn_to_k", H, H, 2, alpha=1)
    lora(g, d, "lycoris_transformer_blocks_0_attn_to_v", H, H, 2, alpha=1)
    lora(g, d, "lora_unet_single_transformer_blocks_0_proj_out", H, shp("flux1", "single_blocks.0.linear2.weight")[1], 2, alpha=1)
    out.append(("flux1_kohya_diffusers_names", "flux1", d, 1.0, 1.0, True))

    # parameters that are not .weight: norm scales (diff / set_weight), bias diffs, and the
    # module-level norm name ComfyUI does not know
    g = Gen(15)
    d = {}
    qn = shp("flux1", "double_blocks.0.img_attn.norm.query_norm.scale")[0]
    d["diffusion_model.double_blocks.0.img_attn.norm.query_norm.scale.diff"] = g.r(qn)
    d["diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale.set_weight"] = g.pos(qn)
    d["diffusion_model.double_blocks.1.img_attn.norm.query_norm.diff"] = g.r(qn)
    d["diffusion_model.single_blocks.0.linear2.bias.diff"] = g.r(H)
    out.append(("flux1_param_diffs", "flux1", d, 0.9, 1.0, True))

    # BFL Depth/Canny control LoRA: img_in widened 64 -> 128 input channels
    g = Gen(7)
    d = {}
    inch = shp("flux1", "img_in.weight")[1]
    lora(g, d, "img_in", H, 2 * inch, 2, up=".lora_B.weight", down=".lora_A.weight")
    d["img_in.lora_B.bias"] = g.r(H)
    lora(g, d, "double_blocks.0.img_attn.proj", H, H, 2, up=".lora_B.weight", down=".lora_A.weight")
    d["double_blocks.0.img_attn.proj.lora_B.bias"] = g.r(H)
    d["single_blocks.0.norm.key_norm.scale"] = g.pos(shp("flux1", "single_blocks.0.norm.key_norm.scale")[0])
    d["single_blocks.0.norm.query_norm.scale"] = g.pos(shp("flux1", "single_blocks.0.norm.query_norm.scale")[0])
    out.append(("flux1_bfl_control", "flux1", d, 1.0, 1.0, True))

    # SD3: diffusers transformer.* (q/k/v slices of qkv), OneTrainer lora_transformer_, text encoders
    g = Gen(8)
    d = {}
    H3 = shp("sd3", "model.diffusion_model.x_embedder.proj.weight")[0]
    for q in ("to_q", "to_k", "add_v_proj"):
        lora(g, d, "transformer.transformer_blocks.0.attn." + q, H3, H3, 2, up=".lora_B.weight", down=".lora_A.weight")
    lora(g, d, "base_model.model.transformer_blocks.1.attn.to_v", H3, H3, 2, up=".lora_B.weight", down=".lora_A.weight")
    lora(g, d, "lora_transformer_transformer_blocks_1_ff_net_0_proj", *shp("sd3", "model.diffusion_model.joint_blocks.1.x_block.mlp.fc1.weight"), 2, alpha=1)
    lora(g, d, "lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 16, 16, 2, alpha=1)
    lora(g, d, "lora_te2_text_model_encoder_layers_0_self_attn_k_proj", 16, 16, 2, alpha=1)
    out.append(("sd3_diffusers", "sd3", d, 1.0, 0.6, False))

    # SD3 lora_unet_ + diffusers path, lycoris_
    g = Gen(14)
    d = {}
    lora(g, d, "lora_unet_transformer_blocks_0_attn_to_q", H3, H3, 2, alpha=1)
    lora(g, d, "lycoris_transformer_blocks_1_attn_to_k", H3, H3, 2, alpha=1)
    lora(g, d, "lora_unet_joint_blocks_2_x_block_attn_proj", H3, H3, 2, alpha=1)
    out.append(("sd3_kohya_diffusers_names", "sd3", d, 1.0, 1.0, True))

    # SD3 text encoders in OneTrainer names: lora_te1_ (CLIP-L), lora_te2_ (CLIP-G), lora_te3_ (T5),
    # the generic text_encoders.<name> form, and the CLIP-G text_projection
    g = Gen(17)
    d = {}
    lora(g, d, "lora_te3_encoder_block_0_layer_0_SelfAttention_q", 16, 16, 2, alpha=1)
    lora(g, d, "lora_te3_encoder_block_0_layer_1_DenseReluDense_wi_1", 32, 16, 2, alpha=1)
    lora(g, d, "lora_te2_text_model_encoder_layers_1_mlp_fc1", *shp("sd3", "text_encoders.clip_g.transformer.text_model.encoder.layers.1.mlp.fc1.weight"), 2, alpha=1)
    lora(g, d, "lora_te2_text_projection", 16, 16, 2, alpha=1)
    lora(g, d, "text_encoders.clip_l.transformer.text_model.encoder.layers.0.self_attn.k_proj", 16, 16, 2)
    out.append(("sd3_text_encoders", "sd3", d, 1.0, 0.7, False))
    return out


# ---------------------------------------------------------------- running ComfyUI

def run_case(comfy, arch, file_sd, lora_sd, sm, sc, model_only):
    unet_sd, clip_sd = to_comfy(comfy, arch, file_sd)
    cfg = unet_config(arch, file_sd)
    model = make_model(comfy, MODEL_CLASS[arch], unet_sd, cfg)
    clip = None if model_only else Model(clip_sd)
    if sm == 0 and sc == 0:  # LoraLoader returns its inputs unchanged
        return {}, [], [], []
    cap = Capture()
    root = logging.getLogger()
    root.addHandler(cap)
    root.setLevel(logging.DEBUG)
    try:
        key_map = {}
        key_map = comfy.lora.model_lora_keys_unet(model, key_map)
        if clip is not None:
            key_map = comfy.lora.model_lora_keys_clip(clip, key_map)
        conv = comfy.lora_convert.convert_lora(dict(lora_sd))
        loaded = comfy.lora.load_lora(conv, key_map)
        patches = {}
        k = add_patches(patches, unet_sd, loaded, sm)
        k1 = add_patches(patches, clip_sd, loaded, sc) if clip is not None else set()
        not_loaded_targets = sorted(str(x if isinstance(x, str) else x[0]) for x in loaded if x not in k and x not in k1)
        results = {}
        for key, ps in patches.items():
            w = (unet_sd.get(key) if key in unet_sd else clip_sd[key]).clone().to(torch.float32)
            results[key] = comfy.lora.calculate_weight(ps, w, key, intermediate_dtype=torch.float32)
    finally:
        root.removeHandler(cap)
    not_loaded = sorted(m[len("lora key not loaded: "):] for m in cap.msgs if m.startswith("lora key not loaded: "))
    failed = sorted(m for m in cap.msgs if m.startswith("ERROR") or m.startswith("Calculate Weight Failed") or "SHAPE MISMATCH" in m)
    return results, not_loaded, not_loaded_targets, failed


def scatter_back(comfy, arch, file_sd, results):
    """Write ComfyUI's patched model tensors back into the checkpoint file's
    names and layout (the inverse of to_comfy, derived by pushing element
    ids through the same conversion)."""
    ids = {}
    off = 0
    order = sorted(file_sd)
    for k in order:
        n = file_sd[k].numel()
        ids[k] = (torch.arange(n, dtype=torch.float64) + off).reshape(file_sd[k].shape)
        off += n
    starts = {k: int(ids[k].reshape(-1)[0].item()) if ids[k].numel() else 0 for k in order}
    u_ids, c_ids = to_comfy(comfy, arch, ids)
    all_ids = dict(u_ids)
    all_ids.update(c_ids)
    out = {}
    for key, val in results.items():
        idt = all_ids[key]
        if list(val.shape) != list(idt.shape):
            # the patch changed the tensor's shape (BFL control img_in): a
            # 1:1 diffusion-model tensor, written with its new shape.
            first = int(idt.reshape(-1)[0].item())
            fk = max(k for k in order if starts[k] <= first and file_sd[k].numel() > 0 and starts[k] + file_sd[k].numel() > first)
            assert file_sd[fk].numel() == idt.numel()
            out[fk] = val.clone()
            continue
        flat_ids = idt.reshape(-1).to(torch.int64)
        flat_val = val.reshape(-1)
        for fk in order:
            s, n = starts[fk], file_sd[fk].numel()
            m = (flat_ids >= s) & (flat_ids < s + n)
            if not bool(m.any()):
                continue
            t = out.get(fk)
            if t is None:
                t = file_sd[fk].clone().to(torch.float32)
            tf = t.reshape(-1)
            tf[flat_ids[m] - s] = flat_val[m]
            out[fk] = tf.reshape(file_sd[fk].shape)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--comfy", required=True)
    ap.add_argument("--bases", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--comfy-commit", required=True)
    a = ap.parse_args()
    comfy = import_comfy(a.comfy)
    base = {arch: read_st(os.path.join(a.bases, arch + ".safetensors")) for arch in ("sd1", "sdxl", "flux1", "sd3")}
    # the key-map configs must name real tensors
    for arch in ("sd1", "sdxl"):
        unet_sd, _ = to_comfy(comfy, arch, base[arch])
        for k, v in comfy.utils.unet_to_diffusers(unet_config(arch, base[arch])).items():
            # unet_to_diffusers also lists the optional skip convolutions,
            # down- and upsamplers of every level
            optional = "skip_connection" in v or v.startswith("label_emb.") or ".op." in v or (v.startswith("output_blocks.") and ".conv." in v)
            assert "diffusion_model." + v in unet_sd or optional, (arch, k, v)
    os.makedirs(a.out, exist_ok=True)
    sha = {}
    for arch in base:
        with open(os.path.join(a.bases, arch + ".safetensors"), "rb") as f:
            sha[arch] = hashlib.sha256(f.read()).hexdigest()
    meta = {"base_sha256": sha, "comfyui_commit": a.comfy_commit, "torch": torch.__version__,
            "generator": "tools/comfygolden/gen.py", "bases": "internal/fixture tiny F32 seed 7", "cases": []}
    for name, arch, lsd, sm, sc, mo in cases(base):
        res, nl, nlt, failed = run_case(comfy, arch, base[arch], lsd, sm, sc, mo)
        exp = scatter_back(comfy, arch, base[arch], res)
        changed = sorted(k for k, v in exp.items() if list(v.shape) != list(base[arch][k].shape) or not torch.equal(v, base[arch][k].to(torch.float32)))
        write_st(os.path.join(a.out, name + ".lora.safetensors"), lsd, {"golden_case": name})
        write_st(os.path.join(a.out, name + ".expected.safetensors"), {k: exp[k] for k in changed})
        meta["cases"].append({"name": name, "arch": arch, "strength_model": sm, "strength_clip": sc, "model_only": mo,
                              "patched": sorted(exp), "changed": changed, "comfy_not_loaded": nl,
                              "comfy_not_loaded_targets": nlt, "comfy_errors": failed})
        print("%-26s patched %3d changed %3d not-loaded %2d errors %d" % (name, len(exp), len(changed), len(nl), len(failed)))
    with open(os.path.join(a.out, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
