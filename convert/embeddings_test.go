package convert

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

// f32bytes is the little-endian float32 encoding of v.
func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// TestPivotalEmbeddings converts a LoRA carrying a cloneofsimo token
// ("<s1>", 1-D) and an A1111 bundle ("sks", 2 vectors): kohya bundles both
// as bundle_emb tensors; diffusers writes them to separate
// textual-inversion files and keeps them out of the LoRA.
func TestPivotalEmbeddings(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "pti.safetensors")
	if _, err := fixture.WriteLoRA(in, fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Format: "kohya", Rank: 2, Alpha: 1, DType: dtype.F32, Seed: 2,
		Filter: func(m string) bool { return strings.Contains(m, "attn2") }}); err != nil {
		t.Fatal(err)
	}
	s1 := make([]float32, 768)
	sks := make([]float32, 2*768)
	for i := range s1 {
		s1[i] = float32(i) / 768
	}
	for i := range sks {
		sks[i] = -float32(i) / 100
	}
	if err := fixture.AddTensors(in, map[string][]float32{"<s1>": s1, "bundle_emb.sks.string_to_param.*": sks},
		map[string][]int64{"<s1>": {768}, "bundle_emb.sks.string_to_param.*": {2, 768}}, map[string]string{"<s1>": "<embed>"}); err != nil {
		t.Fatal(err)
	}
	check := func(path, key string, shape []int64, want []float32) {
		t.Helper()
		f, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ti, ok := f.Lookup(key)
		if !ok {
			t.Fatalf("%s: no tensor %q", filepath.Base(path), key)
		}
		if len(ti.Shape) != len(shape) || ti.Shape[0] != shape[0] || ti.Shape[1] != shape[1] {
			t.Errorf("%s %s: shape %v, want %v", filepath.Base(path), key, ti.Shape, shape)
		}
		if !bytes.Equal(f.Bytes(ti), f32bytes(want)) {
			t.Errorf("%s %s: vectors changed", filepath.Base(path), key)
		}
	}
	kohya := filepath.Join(dir, "k.safetensors")
	if _, err := File(in, kohya, Options{To: "kohya", Arch: "sd1"}); err != nil {
		t.Fatal(err)
	}
	check(kohya, "bundle_emb.<s1>.string_to_param.*", []int64{1, 768}, s1)
	check(kohya, "bundle_emb.sks.string_to_param.*", []int64{2, 768}, sks)

	diff := filepath.Join(dir, "d.safetensors")
	res, err := File(kohya, diff, Options{To: "diffusers", Arch: "sd1"})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{filepath.Join(dir, "d_emb_s1.safetensors"), filepath.Join(dir, "d_emb_sks.safetensors")}
	if len(res.Embeddings) != 2 || res.Embeddings[0] != wantFiles[0] || res.Embeddings[1] != wantFiles[1] {
		t.Fatalf("embedding files %v, want %v", res.Embeddings, wantFiles)
	}
	check(wantFiles[0], "<s1>", []int64{1, 768}, s1)
	check(wantFiles[1], "sks", []int64{2, 768}, sks)
	h, err := safetensors.ReadHeader(diff)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range h.Tensors {
		if !strings.HasSuffix(ti.Name, ".lora_A.weight") && !strings.HasSuffix(ti.Name, ".lora_B.weight") {
			t.Errorf("diffusers LoRA holds %s", ti.Name)
		}
	}
	// an existing embedding file is not replaced without --overwrite, and
	// then nothing is written
	d2 := filepath.Join(dir, "d2.safetensors")
	if err := os.WriteFile(filepath.Join(dir, "d2_emb_sks.safetensors"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := File(kohya, d2, Options{To: "diffusers", Arch: "sd1"}); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("conversion over an existing embedding file: %v", err)
	}
	for _, p := range []string{d2, filepath.Join(dir, "d2_emb_s1.safetensors")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s written despite the refusal", p)
		}
	}
}
