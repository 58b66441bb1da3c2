#!/usr/bin/env bash
# Whole-process convert benchmark: a folder of 200 synthetic fp32 SD1.5
# LoRAs (rank 8, kohya) converted to fp16, against `cp -r` + `sync` of the
# same folder measured in the same run. Every output is fsynced and renamed
# (atomic), so the fair baseline syncs too.
source "$(dirname "$0")/lib.sh"
build
dir=$WORK/loras-200-f32
[[ -d $dir ]] || "$GEN" -kind lora-folder -arch sd1 -size full -rank 8 -dtype f32 -n 200 -o "$dir"
echo "200 files, $(du -sh "$dir" | cut -f1)"
for i in 1 2; do
  rm -rf "$WORK/cp-200"; sync
  measure "cp -r + sync 200 LoRAs (run $i)" bash -c "cp -r '$dir' '$WORK/cp-200' && sync -f '$WORK/cp-200'"
  rm -rf "$WORK/cp-200" "$WORK/f16-200"; sync
  measure "convert 200 fp32->fp16 -j2 (run $i)" "$BIN" convert --dtype fp16 --out-dir "$WORK/f16-200" "$dir" --json
  rm -rf "$WORK/f16-200"; sync
  measure "convert 200 fp32->fp16 -j8 (run $i)" "$BIN" convert --dtype fp16 -j 8 --out-dir "$WORK/f16-200" "$dir" --json
  rm -rf "$WORK/f16-200"
done
du -sh "$dir"
