#!/usr/bin/env bash
# Whole-process resize benchmark: a synthetic full-size rank-32 SD1.5 kohya
# LoRA (302 modules: kohya's 264 attention/MLP/proj modules plus the
# resnets' time-embedding and 1×1 shortcut linears) resized to rank 8.
source "$(dirname "$0")/lib.sh"
build
in=$WORK/sd15-r32-f16.safetensors
[[ -f $in ]] || "$GEN" -kind lora -arch sd1 -size full -rank 32 -alpha 16 -dtype f16 -seed 4 -o "$in"
ls -l "$in"
for i in 1 2 3; do
  measure "resize sd15 r32 -> r8 (run $i)" "$BIN" resize "$in" --rank 8 -o "$WORK/r8.safetensors" --overwrite
  measure "resize sd15 r32 sv_fro:0.9 (run $i)" "$BIN" resize "$in" --rank-rule sv_fro:0.9 -o "$WORK/fro.safetensors" --overwrite
done
rm -f "$WORK/r8.safetensors" "$WORK/fro.safetensors"
