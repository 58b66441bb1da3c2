#!/usr/bin/env bash
# GGUF benchmark: quantize a full-size synthetic Flux.1 (12 B params, bf16,
# 23.8 GB) to Q8_0 and Q4_K, and merge a rank-16 LoRA into the Q4_K file,
# each against `cp` + `sync` of a file of the output's size measured in the
# same run, with wall time and peak RSS (/usr/bin/time).
# Usage: bench/gguf.sh [q8 q4k merge-q4k merge-q8 ...] (default: q8 q4k merge-q4k)
# The fixture is generated on the fly and deleted at the end.
source "$(dirname "$0")/lib.sh"
stages=${*:-q8 q4k merge-q4k}
build
base=$WORK/flux-full-bf16.safetensors
lora=$WORK/flux-r16.safetensors
[[ -f $base ]] || "$GEN" -kind checkpoint -arch flux1 -size full -dtype bf16 -layout diffusion-model -seed 1 -o "$base"
[[ -f $lora ]] || "$GEN" -kind lora -arch flux1 -size full -rank 16 -alpha 16 -dtype bf16 -format comfy -seed 3 -o "$lora"
ls -l "$base" "$lora"
# cp_baseline NAME SIZE_FILE: cp + sync of a file as large as SIZE_FILE
cp_baseline() {
  local name=$1 ref=$2
  rm -f "$WORK/copy.bin"; sync
  measure "cp+sync $name ($(du -BM --apparent-size "$ref" | cut -f1))" bash -c "cp '$ref' '$WORK/copy.bin' && sync '$WORK/copy.bin'"
  rm -f "$WORK/copy.bin"
}
for s in $stages; do
  case $s in
  q8 | q4k)
    q=Q8_0; [[ $s == q4k ]] && q=Q4_K
    out=$WORK/flux-$q.gguf
    rm -f "$out"; sync
    measure "convert --to gguf --quant $q" bash -c "'$BIN' convert '$base' --to gguf --quant $q -o '$out' && sync '$out'"
    cp_baseline "$q output" "$out"
    ;;
  merge-q4k | merge-q8)
    q=Q4_K; [[ $s == merge-q8 ]] && q=Q8_0
    in=$WORK/flux-$q.gguf
    [[ -f $in ]] || "$BIN" convert "$base" --to gguf --quant $q -o "$in"
    rm -f "$WORK/merged.gguf"; sync
    measure "merge r16 into $q gguf" bash -c "'$BIN' merge -q --base '$in' --lora '$lora:0.8' -o '$WORK/merged.gguf' && sync '$WORK/merged.gguf'"
    cp_baseline "$q gguf" "$in"
    rm -f "$WORK/merged.gguf"
    ;;
  *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done
rm -f "$WORK"/flux-*.gguf "$WORK/merged.gguf" "$base" "$lora"
