#!/usr/bin/env bash
# Benchmark of `loratool extract` on two full-size synthetic checkpoints.
#
#   bench/extract.sh [WORKDIR]          (default /tmp/extract-bench)
#   ARCH=flux1 BLOCKS=2 DTYPE=BF16 bench/extract.sh   reduced-depth DiT run
#
# Generates base/tuned (tuned = base + an exactly known rank-64 change with
# σ_i ∝ 0.9^i on every linear/conv weight of the diffusion model) through
# the generator in extract/benchgen_test.go, runs `extract --rank 32` under
# /usr/bin/time -v and compares the reported relative error with the
# optimal (Eckart–Young) one. Needs ~4.5 GB free for SD1.5.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/extract-bench}
ARCH=${ARCH:-sd1}
RANK=${RANK:-32}
mkdir -p "$W"

if [ ! -f "$W/tuned.safetensors" ]; then
  EXTRACT_BENCH_DIR="$W" EXTRACT_BENCH_ARCH="$ARCH" EXTRACT_BENCH_DTYPE="${DTYPE:-F16}" \
  EXTRACT_BENCH_BLOCKS="${BLOCKS:-0}" EXTRACT_BENCH_KEEP="$RANK" \
    go test ./extract -run TestGenerateBenchPair -count=1 -timeout 60m
fi

BIN=/tmp/extract-bench-loratool
if grep -q 'extract\.Command' main.go; then
  go build -o "$BIN" .
else
  # main.go does not register extract yet: a throw-away main outside the repo
  M=$(mktemp -d /tmp/extract-bench-main.XXXX)
  cat > "$M/main.go" <<'GO'
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/loratool/loratool/extract"
	"github.com/loratool/loratool/safetensors"
	"github.com/urfave/cli/v3"
)

func main() {
	safetensors.CleanupOnSignal()
	root := &cli.Command{Name: "loratool", Commands: []*cli.Command{extract.Command()},
		ExitErrHandler: func(context.Context, *cli.Command, error) {}}
	err := root.Run(context.Background(), os.Args)
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		fmt.Fprintln(os.Stderr, ec.Error())
		os.Exit(ec.ExitCode())
	} else if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
GO
  printf 'module extractbench\n\ngo 1.26.8\n\nrequire github.com/loratool/loratool v0.0.0\n\nreplace github.com/loratool/loratool => %s\n' "$PWD" > "$M/go.mod"
  cp go.sum "$M/"
  (cd "$M" && GOFLAGS=-mod=mod GOPROXY=off go build -o "$BIN" .)
  rm -rf "$M"
fi

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v "$BIN" extract --base "$W/base.safetensors" --tuned "$W/tuned.safetensors" \
  -o "$W/out.safetensors" --rank "$RANK" --report "$W/report.json" --overwrite 2> "$W/time.txt" || { cat "$W/time.txt"; exit 1; }
grep -E 'extract:|retained|wrote' "$W/time.txt"
grep -E 'Elapsed|Maximum resident|User time|System time' "$W/time.txt"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$W" <<'PY' 2>/dev/null || true
import json, sys
w = sys.argv[1]
e = json.load(open(w + "/expected.json")); r = json.load(open(w + "/report.json"))
print(f"relative error {r['rel_error']:.5f}, optimal {e['optimal_rel_error']:.5f} (ratio {r['rel_error']/e['optimal_rel_error']:.4f}; the tuned file's {e['dtype']} rounding adds full-rank noise)")
PY
