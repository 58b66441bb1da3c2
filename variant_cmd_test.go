package main

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

// cmdVariantFile is the scenarios' `variantfile` command: files at a
// model variant's real sizes (sparse: only headers cost disk) and small
// hand-named tensor files.
//
//	variantfile checkpoint ARCH VARIANT FILE   bare diffusion model of the variant (zeros)
//	variantfile lora ARCH VARIANT FILE         rank-4 comfy-named LoRA over the variant's 2-D weights (zeros)
//	variantfile tiny ARCH FILE                 reduced-size F32 diffusion model (fixture values)
//	variantfile tensors FILE NAME=D1xD2... ... F32 tensors holding a deterministic ramp
func cmdVariantFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("variantfile does not fail")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: variantfile checkpoint|lora|tiny|tensors ...")
	}
	variantParams := func(id, name string) []arch.Param {
		a, ok := arch.ByID(id)
		if !ok {
			ts.Fatalf("unknown architecture %s", id)
		}
		i, ok := a.VariantIndex(name)
		if !ok {
			ts.Fatalf("%s has no variant %q", id, name)
		}
		return a.Variants()[i].Params()
	}
	switch args[0] {
	case "checkpoint", "lora":
		if len(args) != 4 {
			ts.Fatalf("usage: variantfile %s ARCH VARIANT FILE", args[0])
		}
		ps := variantParams(args[1], args[2])
		if args[0] == "lora" {
			var lps []arch.Param
			for _, p := range ps {
				mod, ok := strings.CutSuffix(p.Name, ".weight")
				if !ok || len(p.Shape) != 2 {
					continue
				}
				lps = append(lps, arch.Param{Name: "diffusion_model." + mod + ".lora_A.weight", Shape: []int64{4, p.Shape[1]}},
					arch.Param{Name: "diffusion_model." + mod + ".lora_B.weight", Shape: []int64{p.Shape[0], 4}})
			}
			ps = lps
		}
		ts.Check(fixture.WriteSparse(ts.MkAbs(args[3]), ps, dtype.BF16, nil))
	case "tiny":
		if len(args) != 3 {
			ts.Fatalf("usage: variantfile tiny ARCH FILE")
		}
		_, err := fixture.WriteCheckpoint(ts.MkAbs(args[2]), fixture.CheckpointSpec{Arch: args[1], Size: arch.Tiny, DType: dtype.F32, Seed: 1, Layout: fixture.LayoutDiffusionModel})
		ts.Check(err)
	case "tensors":
		var specs []safetensors.TensorSpec
		for _, a := range args[2:] {
			name, dims, ok := strings.Cut(a, "=")
			if !ok {
				ts.Fatalf("tensor %q: want NAME=D1xD2", a)
			}
			var shape []int64
			for _, d := range strings.Split(dims, "x") {
				n, err := strconv.ParseInt(d, 10, 64)
				ts.Check(err)
				shape = append(shape, n)
			}
			specs = append(specs, safetensors.TensorSpec{Name: name, DType: dtype.F32, Shape: shape})
		}
		w, err := safetensors.Create(ts.MkAbs(args[1]), specs, nil)
		ts.Check(err)
		for _, s := range w.Order() {
			n := int64(1)
			for _, d := range s.Shape {
				n *= d
			}
			b := make([]byte, 4*n)
			for i := int64(0); i < n; i++ {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(i%7-3)/8))
			}
			ts.Check(w.Write(s.Name, b))
		}
		ts.Check(w.Commit())
	default:
		ts.Fatalf("variantfile: unknown kind %q", args[0])
	}
}
