package merge

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/gguf"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

// writeGGUFBase stores a tiny Flux checkpoint as GGUF: 2-D weights whose
// rows fit the block size as typ, everything else F32.
func writeGGUFBase(t *testing.T, src, dst string, typ gguf.Type) {
	t.Helper()
	f, err := safetensors.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var specs []gguf.TensorSpec
	for _, ti := range f.Tensors {
		tt := gguf.F32
		if len(ti.Shape) == 2 && ti.Shape[1]%int64(typ.BlockSize()) == 0 {
			tt = typ
		}
		specs = append(specs, gguf.TensorSpec{Name: ti.Name, Type: tt, Shape: ti.Shape})
	}
	w, err := gguf.Create(dst, []gguf.KV{{Key: "general.architecture", Value: "flux"}}, specs)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		ti, _ := f.Lookup(s.Name)
		v, err := f.Float32(ti, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFloat32(s.Name, v, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestMergeIntoGGUF checks a merge into a quantized base against an
// independent computation: the base dequantized to float64, plus the LoRA
// delta recomputed in float64, rounded to float32 and quantized with the
// reference quantizer. Untouched tensors must be byte-identical.
func TestMergeIntoGGUF(t *testing.T) {
	for _, c := range []struct {
		base, patched gguf.Type
		opt           string
	}{{gguf.Q8_0, gguf.Q8_0, ""}, {gguf.Q4_1, gguf.Q4_1, ""}, {gguf.Q5_0, gguf.Q8_0, "Q8_0"}} {
		t.Run(c.base.String()+"-"+c.patched.String(), func(t *testing.T) {
			dir := t.TempDir()
			st := filepath.Join(dir, "flux.safetensors")
			if _, err := fixture.WriteCheckpoint(st, fixture.CheckpointSpec{Arch: "flux1", Size: arch.Tiny, DType: dtype.BF16, Seed: 5, Layout: fixture.LayoutDiffusionModel}); err != nil {
				t.Fatal(err)
			}
			basePath := filepath.Join(dir, "flux.gguf")
			writeGGUFBase(t, st, basePath, c.base)
			loraPath := filepath.Join(dir, "lora.safetensors")
			mods, err := fixture.WriteLoRA(loraPath, fixture.LoRASpec{Arch: "flux1", Size: arch.Tiny, Format: "comfy", Rank: 4, Alpha: 4, DType: dtype.BF16, Seed: 9})
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "merged.gguf")
			plan, err := NewPlan(basePath, []Input{{Path: loraPath, StrengthModel: 0.8, StrengthClip: 0.8}}, PlanOptions{ModelOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer plan.Close()
			rep, err := plan.Execute(context.Background(), out, Options{PatchedType: c.opt})
			if err != nil {
				t.Fatal(err)
			}
			base, err := gguf.Open(basePath)
			if err != nil {
				t.Fatal(err)
			}
			defer base.Close()
			merged, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer merged.Close()
			lf, _ := safetensors.Open(loraPath)
			defer lf.Close()
			patched := map[string]bool{}
			blocks, differing := 0, 0
			for _, m := range mods {
				if m.Target.Component != arch.DiffusionModel {
					continue
				}
				bt, _ := base.Lookup(m.Target.Param)
				mt, _ := merged.Lookup(m.Target.Param)
				want := bt.Type
				if bt.Type.IsQuantized() && c.opt != "" {
					want = c.patched
				}
				if mt.Type != want {
					t.Fatalf("%s: type %v, want %v", mt.Name, mt.Type, want)
				}
				patched[m.Target.Param] = true
				bv, _ := base.Float32(bt, nil)
				d, _, _ := loraDelta(t, lf, m)
				ref := make([]float32, len(d))
				for i := range d {
					ref[i] = float32(float64(bv[i]) + 0.8*d[i])
				}
				refQ := make([]byte, mt.Size)
				if err := gguf.Quantize(mt.Type, ref, refQ); err != nil {
					t.Fatal(err)
				}
				got := merged.Bytes(mt)
				bs := mt.Type.TypeSize()
				for i := 0; i < len(got); i += bs {
					blocks++
					if !bytes.Equal(got[i:i+bs], refQ[i:i+bs]) {
						differing++
					}
				}
				// values: within one quantization step of the reference
				gv, _ := merged.Float32(mt, nil)
				rv := make([]float32, len(gv))
				gguf.Dequantize(mt.Type, refQ, rv)
				for i := range gv {
					if math.Abs(float64(gv[i]-rv[i])) > 0.05*math.Abs(float64(rv[i]))+0.02 {
						t.Fatalf("%s[%d]: %g, reference %g", mt.Name, i, gv[i], rv[i])
					}
				}
			}
			// float32 vs float64 application may move a value across a
			// rounding boundary: a few blocks may differ, not more
			if blocks == 0 || differing*50 > blocks {
				t.Fatalf("%d of %d blocks differ from the float64 reference", differing, blocks)
			}
			for _, bt := range base.Tensors {
				if patched[bt.Name] {
					continue
				}
				mt, _ := merged.Lookup(bt.Name)
				if mt.Type != bt.Type || !bytes.Equal(merged.Bytes(mt), base.Bytes(bt)) {
					t.Fatalf("untouched tensor %s changed", bt.Name)
				}
			}
			if rep.PatchedTensors != len(patched) || len(rep.TensorErrors) != len(patched) {
				t.Fatalf("report: %d patched, %d tensor errors, want %d", rep.PatchedTensors, len(rep.TensorErrors), len(patched))
			}
			if rep.DeltaError <= 0 || math.IsInf(rep.DeltaError, 0) || rep.WorstTensor == "" || (c.patched == gguf.Q8_0 && rep.DeltaError >= 1) {
				t.Errorf("delta error %.3g worst %q", rep.DeltaError, rep.WorstTensor)
			}
			if s, _ := merged.GetString("general.architecture"); s != "flux" {
				t.Errorf("architecture %q", s)
			}
		})
	}
}
