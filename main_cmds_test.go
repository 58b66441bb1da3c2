package main

import (
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// cmdMkst writes a small safetensors file:
//
//	mkst FILE [meta:KEY=VALUE]... NAME:DTYPE:SHAPE[:FILL]...
//
// SHAPE is dims joined by "x" ("-" for a scalar); FILL is one value for
// every element (nan, inf, -inf accepted), by default a small pattern
// (i%7-3)/16. In FILE, KEY=VALUE and NAME, \e, \a, \n and \t are read as
// escapes.
func cmdMkst(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! mkst")
	}
	if len(args) < 1 {
		ts.Fatalf("usage: mkst FILE [meta:K=V]... NAME:DTYPE:SHAPE[:FILL]...")
	}
	unesc := strings.NewReplacer(`\e`, "\x1b", `\a`, "\a", `\n`, "\n", `\t`, "\t").Replace
	meta := map[string]string{}
	var specs []safetensors.TensorSpec
	fills := map[string]*float64{}
	for _, a := range args[1:] {
		if kv, ok := strings.CutPrefix(a, "meta:"); ok {
			k, v, _ := strings.Cut(kv, "=")
			meta[unesc(k)] = unesc(v)
			continue
		}
		parts := strings.Split(a, ":")
		if len(parts) < 3 {
			ts.Fatalf("mkst: bad tensor %q", a)
		}
		name := unesc(parts[0])
		dt, err := dtype.Parse(parts[1])
		ts.Check(err)
		var shape []int64
		if parts[2] != "-" {
			for _, d := range strings.Split(parts[2], "x") {
				v, err := strconv.ParseInt(d, 10, 64)
				ts.Check(err)
				shape = append(shape, v)
			}
		}
		if len(parts) > 3 {
			v, err := strconv.ParseFloat(parts[3], 64)
			ts.Check(err)
			fills[name] = &v
		}
		specs = append(specs, safetensors.TensorSpec{Name: name, DType: dt, Shape: shape})
	}
	err := safetensors.WriteFile(ts.MkAbs(unesc(args[0])), specs, meta, func(s safetensors.TensorSpec) ([]byte, error) {
		n := int64(1)
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			if f := fills[s.Name]; f != nil {
				v[i] = float32(*f)
				if math.IsInf(*f, 0) {
					v[i] = float32(math.Inf(int(math.Copysign(1, *f))))
				}
			} else {
				v[i] = float32(i%7-3) / 16
			}
		}
		b := make([]byte, n*int64(s.DType.BitSize()/8))
		if _, err := dtype.Encode(s.DType, v, b); err != nil {
			return nil, err
		}
		return b, nil
	})
	ts.Check(err)
}

// cmdMkfifo creates a named pipe: mkfifo PATH.
func cmdMkfifo(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: mkfifo PATH")
	}
	err := syscall.Mkfifo(ts.MkAbs(args[0]), 0o644)
	if neg {
		if err == nil {
			ts.Fatalf("mkfifo succeeded")
		}
		return
	}
	ts.Check(err)
}

// cmdTruncate creates a sparse file of 40,000,000 bytes: truncate PATH.
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: truncate PATH")
	}
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Check(f.Truncate(40000000))
	ts.Check(f.Close())
}
