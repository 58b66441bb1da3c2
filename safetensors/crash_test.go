package safetensors

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/loratool/loratool/dtype"
)

// runGuarded runs f in a goroutine under Guard and returns what the crash
// handler printed and the exit status it asked for (-1: none).
func runGuarded(t *testing.T, f func()) (string, int) {
	t.Helper()
	var buf bytes.Buffer
	code := -1
	crashOut, crashOnce = &buf, sync.Once{}
	crashExit = func(c int) { code = c; runtime.Goexit() }
	defer func() { crashOut, crashExit, crashOnce = os.Stderr, os.Exit, sync.Once{} }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer Guard()()
		f()
	}()
	<-done
	return buf.String(), code
}

// TestGuardPanic: a panic in a goroutine prints one line, exits 1 and
// removes the temporary files of live writers.
func TestGuardPanic(t *testing.T) {
	t.Setenv("LORATOOL_DEBUG", "")
	dir := t.TempDir()
	w, err := Create(filepath.Join(dir, "o.safetensors"), []TensorSpec{{Name: "a", DType: dtype.F32, Shape: []int64{4}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	out, code := runGuarded(t, func() {
		var m map[string]int
		m["x"] = 1
	})
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "internal error: assignment to entry in nil map") {
		t.Errorf("code %d, output %q", code, out)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".loratool-*.tmp")); len(tmps) != 0 {
		t.Errorf("temp files left: %v", tmps)
	}
}

// TestGuardTruncatedMapping: reading a mapped file truncated underneath
// (SIGBUS) is one line, status 1.
func TestGuardTruncatedMapping(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "in.safetensors")
	data := make([]byte, 1<<16)
	if err := WriteFile(p, []TensorSpec{{Name: "a", DType: dtype.F32, Shape: []int64{1 << 14}}}, nil, func(TensorSpec) ([]byte, error) { return data, nil }); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	var sum byte
	out, code := runGuarded(t, func() {
		for _, b := range f.Bytes(f.Tensors[0]) {
			sum += b
		}
	})
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "truncated or changed while being read") {
		t.Errorf("code %d, output %q", code, out)
	}
}
