#!/usr/bin/env bash
# Benchmark: convert a folder of 200 fp32 LoRAs to fp16 (loratool convert
# --dtype fp16 --out-dir, -j cores) vs `cp -r` + `sync` of the same folder,
# measured in the same run. Usage: bench/convert.sh [binary] [count] [rank]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-/tmp/loratool}
N=${2:-200}
R=${3:-4}
[ -x "$BIN" ] || (cd "$ROOT" && go build -o "$BIN" .)
W=$(mktemp -d "${TMPDIR:-/tmp}/ltconv.XXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/gen" "$W/in/a" "$W/in/b"
cat > "$W/go.mod" <<MOD
module ltbench
go 1.26.8
require github.com/loratool/loratool v0.0.0
replace github.com/loratool/loratool => $ROOT
MOD
cp "$ROOT/go.sum" "$W/"
cat > "$W/gen/main.go" <<'GO'
// gen writes a synthetic full-size rank-R SD1.5 kohya LoRA (264 modules).
package main

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

func main() {
	out := os.Args[1]
	r, _ := strconv.Atoi(os.Args[2])
	seed, _ := strconv.Atoi(os.Args[3])
	a, _ := arch.ByID("sd1")
	rng := rand.New(rand.NewSource(int64(seed)))
	var specs []safetensors.TensorSpec
	data := map[string][]float32{}
	add := func(t arch.Target, rows, cols int64) {
		p, err := a.LoRAPrefix(t, "kohya")
		if err != nil {
			panic(err)
		}
		up := make([]float32, rows*int64(r))
		down := make([]float32, int64(r)*cols)
		for i := range up {
			up[i] = float32(rng.NormFloat64() * 0.01)
		}
		for i := range down {
			down[i] = float32(rng.NormFloat64() * 0.01)
		}
		specs = append(specs, safetensors.TensorSpec{Name: p + ".lora_up.weight", DType: dtype.F32, Shape: []int64{rows, int64(r)}},
			safetensors.TensorSpec{Name: p + ".lora_down.weight", DType: dtype.F32, Shape: []int64{int64(r), cols}},
			safetensors.TensorSpec{Name: p + ".alpha", DType: dtype.F32, Shape: []int64{}})
		data[p+".lora_up.weight"], data[p+".lora_down.weight"], data[p+".alpha"] = up, down, []float32{float32(r) / 2}
	}
	n := 0
	for _, p := range a.Params(arch.Full) {
		if !strings.Contains(p.Name, "transformer_blocks") && !strings.HasSuffix(p.Name, "proj_in.weight") && !strings.HasSuffix(p.Name, "proj_out.weight") {
			continue
		}
		if !strings.HasSuffix(p.Name, ".weight") || strings.Contains(p.Name, "norm") {
			continue
		}
		cols := int64(1)
		for _, d := range p.Shape[1:] {
			cols *= d
		}
		add(arch.Target{Component: arch.DiffusionModel, Module: strings.TrimSuffix(p.Name, ".weight")}, p.Shape[0], cols)
		n++
	}
	e, _ := a.Encoder("clip_l")
	for _, p := range e.Model(arch.Full) {
		if strings.Contains(p.Name, "layers.") && strings.HasSuffix(p.Name, ".weight") && (strings.Contains(p.Name, "_proj") || strings.Contains(p.Name, "mlp.fc")) {
			add(arch.Target{Component: "clip_l", Module: strings.TrimSuffix(p.Name, ".weight")}, p.Shape[0], p.Shape[1])
			n++
		}
	}
	err := safetensors.WriteFile(out, specs, map[string]string{"ss_network_dim": strconv.Itoa(r), "ss_network_alpha": strconv.Itoa(r / 2)}, func(s safetensors.TensorSpec) ([]byte, error) {
		v := data[s.Name]
		b := make([]byte, 4*len(v))
		_, err := dtype.Encode(dtype.F32, v, b)
		return b, err
	})
	if err != nil {
		panic(err)
	}
	fmt.Fprintln(os.Stderr, n, "modules")
}
GO
(cd "$W" && GOFLAGS=-mod=mod go build -o "$W/gen-lora" ./gen)
for i in $(seq 1 "$N"); do
  d=a; [ $((i % 2)) -eq 0 ] && d=b
  "$W/gen-lora" "$W/in/$d/lora$i.safetensors" "$R" "$i" 2>/dev/null
done
sync
BYTES=$(du -sb "$W/in" | cut -f1)
echo "input: $N files, $BYTES bytes"
t0=$(date +%s.%N); cp -r "$W/in" "$W/copy"; sync; t1=$(date +%s.%N)
"$BIN" convert --dtype fp16 "$W/in" --out-dir "$W/fp16" >/dev/null; sync; t2=$(date +%s.%N)
OUT=$(du -sb "$W/fp16" | cut -f1)
python3 - "$BYTES" "$OUT" "$t0" "$t1" "$t2" <<'PY'
import sys
b, o, t0, t1, t2 = int(sys.argv[1]), int(sys.argv[2]), *map(float, sys.argv[3:])
print(f"cp -r + sync:           {t1-t0:7.2f} s  {b/1e6/(t1-t0):8.1f} MB/s (input MB per second)")
print(f"convert --dtype fp16:   {t2-t1:7.2f} s  {b/1e6/(t2-t1):8.1f} MB/s (input MB per second), output {o} bytes")
PY
uptime
