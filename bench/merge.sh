#!/usr/bin/env bash
# Whole-process merge benchmark: a rank-32 kohya LoRA into a full-size
# synthetic SD1.5 fp16 checkpoint (2.1 GB), against `cp` + `sync` of the
# same file measured in the same run; then a Flux-shaped (12 B params) fp8
# run showing bounded memory. Usage: bench/merge.sh [sd15|flux|all]
source "$(dirname "$0")/lib.sh"
what=${1:-all}
build
if [[ $what == sd15 || $what == all ]]; then
  base=$WORK/sd15-full-f16.safetensors
  lora=$WORK/sd15-r32.safetensors
  [[ -f $base ]] || "$GEN" -kind checkpoint -arch sd1 -size full -dtype f16 -seed 1 -o "$base"
  [[ -f $lora ]] || "$GEN" -kind lora -arch sd1 -size full -rank 32 -alpha 16 -dtype f16 -seed 2 -o "$lora"
  ls -l "$base" "$lora"
  for i in 1 2 3; do
    rm -f "$WORK/copy.safetensors" "$WORK/merged.safetensors"; sync
    measure "cp+sync sd15 2.1GB (run $i)" bash -c "cp '$base' '$WORK/copy.safetensors' && sync '$WORK/copy.safetensors'"
    rm -f "$WORK/copy.safetensors"; sync
    measure "merge sd15 r32 (run $i)" "$BIN" merge -q --base "$base" --lora "$lora:0.8:0.5" -o "$WORK/merged.safetensors" --overwrite
  done
  rm -f "$WORK/merged.safetensors" "$WORK/copy.safetensors"
fi
if [[ $what == flux || $what == all ]]; then
  base=$WORK/flux-full-fp8.safetensors
  lora=$WORK/flux-r16.safetensors
  [[ -f $base ]] || "$GEN" -kind checkpoint -arch flux1 -size full -dtype fp8 -layout diffusion-model -seed 1 -o "$base"
  [[ -f $lora ]] || "$GEN" -kind lora -arch flux1 -size full -rank 16 -alpha 16 -dtype bf16 -format comfy -seed 3 -o "$lora"
  ls -l "$base" "$lora"
  rm -f "$WORK/flux-copy.safetensors"; sync
  measure "cp+sync flux fp8 11.9GB" bash -c "cp '$base' '$WORK/flux-copy.safetensors' && sync '$WORK/flux-copy.safetensors'"
  rm -f "$WORK/flux-copy.safetensors"; sync
  measure "merge flux fp8 r16 model-only" "$BIN" merge -q --base "$base" --lora "$lora:0.8" --model-only -o "$WORK/flux-merged.safetensors" --overwrite
  rm -f "$WORK/flux-merged.safetensors"
fi
