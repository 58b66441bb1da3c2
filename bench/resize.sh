#!/usr/bin/env bash
# Benchmark: resize a synthetic rank-32 SD1.5 kohya LoRA (264 modules,
# full-size shapes) to rank 8. Usage: bench/resize.sh [loratool binary]
# (default: go build -o /tmp/loratool . from the repo root).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-/tmp/loratool}
[ -x "$BIN" ] || (cd "$ROOT" && go build -o "$BIN" .)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/gen"
# the generator lives outside the repo, in a throw-away module
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
"$W/gen-lora" "$W/sd15-r32.safetensors" 32 1
ls -l "$W/sd15-r32.safetensors"
for i in 1 2 3; do
  rm -f "$W/r8.safetensors"
  /usr/bin/time -f "run $i: %e s wall, %U s user, %S s sys, %M KB max RSS" \
    "$BIN" resize "$W/sd15-r32.safetensors" --rank 8 -o "$W/r8.safetensors"
done
uptime
