# Shared helpers for the whole-process benchmarks (sourced by bench/*.sh).
# Results go to $OUT (default bench/out, git-ignored); big inputs to $WORK
# (default /tmp/loratool-bench). Nothing here asserts timings.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-/tmp/loratool-bench}
OUT=${OUT:-$ROOT/bench/out}
mkdir -p "$WORK" "$OUT"
BIN=$WORK/loratool
GEN=$WORK/genfixture
build() {
  (cd "$ROOT" && go build -o "$BIN" . && go build -o "$GEN" ./bench/genfixture)
}
# measure NAME CMD...: runs CMD under /usr/bin/time, prints and records
# "NAME wall_s peak_rss_MiB".
measure() {
  local name=$1; shift
  local tf; tf=$(mktemp)
  /usr/bin/time -f "%e %M" -o "$tf" "$@" >/dev/null
  read -r wall rss <"$tf"; rm -f "$tf"
  local mib=$((rss / 1024))
  printf '%-40s %8.2f s %8d MiB\n' "$name" "$wall" "$mib" | tee -a "$OUT/results.txt"
}
# drop_cache FILE...: evict files from the page cache (cold-ish reads) without root tricks
drop_cache() {
  for f in "$@"; do
    python3 - "$f" <<'PY' 2>/dev/null || true
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd) if False else None
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
PY
  done
}
