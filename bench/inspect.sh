#!/usr/bin/env bash
# Whole-process inspect benchmark: a folder of 1,000 synthetic SD1.5 LoRAs
# (kohya, rank 16, 792 tensors each), headers only and with alpha values.
source "$(dirname "$0")/lib.sh"
build
dir=$WORK/loras-1000
if [[ ! -d $dir ]]; then
  "$GEN" -kind lora-folder -arch sd1 -size full -rank 4 -dtype f16 -n 1000 -o "$dir"
fi
n=$(ls "$dir" | wc -l)
echo "$n files, $(du -sh "$dir" | cut -f1)"
for i in 1 2 3; do
  measure "inspect 1000 --json (run $i)" "$BIN" inspect "$dir" --json
  measure "inspect 1000 --alphas --json (run $i)" "$BIN" inspect "$dir" --alphas --json
done
