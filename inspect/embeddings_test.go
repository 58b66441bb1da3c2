package inspect

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
)

func TestBundledEmbeddingsListed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.safetensors")
	if _, err := fixture.WriteLoRA(path, fixture.LoRASpec{Arch: "sdxl", Size: arch.Tiny, Format: "kohya", Rank: 2, Alpha: 1, DType: dtype.F16, Seed: 1,
		Filter: func(m string) bool { return strings.Contains(m, "attn2.to_k") }}); err != nil {
		t.Fatal(err)
	}
	extra := map[string][]float32{
		"bundle_emb.ohwx.clip_l":             make([]float32, 2*768),
		"bundle_emb.ohwx.clip_g":             make([]float32, 2*1280),
		"bundle_emb.style.string_to_param.*": make([]float32, 3*768),
	}
	shapes := map[string][]int64{
		"bundle_emb.ohwx.clip_l": {2, 768}, "bundle_emb.ohwx.clip_g": {2, 1280}, "bundle_emb.style.string_to_param.*": {3, 768},
	}
	if err := fixture.AddTensors(path, extra, shapes, nil); err != nil {
		t.Fatal(err)
	}
	r := File(path, Options{})
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	want := []BundledEmbedding{
		{Name: "ohwx", Vectors: 2, Widths: map[string]int64{"clip_l": 768, "clip_g": 1280}, Keys: []string{"bundle_emb.ohwx.clip_g", "bundle_emb.ohwx.clip_l"}},
		{Name: "style", Vectors: 3, Widths: map[string]int64{"": 768}, Keys: []string{"bundle_emb.style.string_to_param.*"}},
	}
	if r.Kind != "lora" || !reflect.DeepEqual(r.Embeddings, want) {
		t.Errorf("kind %s, embeddings %+v\nwant %+v", r.Kind, r.Embeddings, want)
	}
	if len(r.UnknownKeys) > 0 {
		t.Errorf("bundle keys reported unknown: %v", r.UnknownKeys)
	}
	if got := describeBundled(r.Embeddings); got != "ohwx (2×clip_g 1280+clip_l 768), style (3×768)" {
		t.Errorf("text %q", got)
	}
}
