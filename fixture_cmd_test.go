package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
)

// cmdFixture is the scenarios' `fixture` command: it writes synthetic
// tiny files from the architecture tables.
//
//	fixture lora ARCH FILE [algo=A] [rank=N] [alpha=F] [format=F] [dtype=D] [conv] [meta:K=V]...
//	fixture checkpoint ARCH FILE [dtype=D]
func cmdFixture(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("fixture does not fail")
	}
	if len(args) < 3 {
		ts.Fatalf("usage: fixture lora|checkpoint ARCH FILE [options]")
	}
	kind, id, path := args[0], args[1], ts.MkAbs(args[2])
	spec := fixture.LoRASpec{Arch: id, Size: arch.Tiny, Rank: 4, Alpha: 2, Seed: 1}
	cspec := fixture.CheckpointSpec{Arch: id, Size: arch.Tiny, Seed: 1}
	for _, o := range args[3:] {
		k, v, _ := strings.Cut(o, "=")
		switch {
		case k == "algo":
			spec.Algo = v
		case k == "rank":
			n, err := strconv.Atoi(v)
			ts.Check(err)
			spec.Rank = n
		case k == "alpha":
			f, err := strconv.ParseFloat(v, 32)
			ts.Check(err)
			spec.Alpha = float32(f)
		case k == "format":
			spec.Format = v
		case k == "dtype":
			d, err := dtype.ParseUser(v)
			ts.Check(err)
			spec.DType, cspec.DType = d, d
		case k == "conv":
			spec.Conv = true
		case strings.HasPrefix(k, "meta:"):
			if spec.Metadata == nil {
				spec.Metadata = fixture.DefaultMetadata(spec)
			}
			spec.Metadata[strings.TrimPrefix(k, "meta:")] = v
		default:
			ts.Fatalf("fixture: unknown option %q", o)
		}
	}
	ts.Check(os.MkdirAll(filepath.Dir(path), 0o755))
	var err error
	switch kind {
	case "lora":
		_, err = fixture.WriteLoRA(path, spec)
	case "checkpoint":
		_, err = fixture.WriteCheckpoint(path, cspec)
	default:
		ts.Fatalf("fixture: unknown kind %q", kind)
	}
	ts.Check(err)
}
