package safetensors

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/loratool/loratool/dtype"
)

// FuzzParseHeader feeds arbitrary files to ParseHeader: it must never
// panic, it must agree with the original encoding/json-based parser
// (parseHeaderStdlib: same verdict, same error message, same header), and
// every accepted header must satisfy the layout invariants (sorted,
// contiguous from 0, ending exactly at the end of the file).
func FuzzParseHeader(f *testing.F) {
	for _, v := range failVectors {
		f.Add(v.file)
	}
	for _, v := range goodVectors {
		f.Add(v.file)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20; i++ {
		f.Add(genHeader(rng))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compareParsers(t, data)
		h, err := ParseHeader(data, int64(len(data)))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		checkInvariants(t, h)
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzParseHeader from the
// vectors when LORATOOL_WRITE_FUZZ_SEEDS=1 (maintenance helper).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("LORATOOL_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set LORATOOL_WRITE_FUZZ_SEEDS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParseHeader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range append(append([]vector{}, failVectors...), goodVectors...) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", v.file)
		if err := os.WriteFile(filepath.Join(dir, v.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// realisticSpecs returns 1,000 kohya-style LoRA tensors (down/up/alpha).
func realisticSpecs() []TensorSpec {
	var specs []TensorSpec
	for i := 0; len(specs) < 1000; i++ {
		base := fmt.Sprintf("lora_unet_output_blocks_%d_1_transformer_blocks_%d_attn2_to_k", i/10, i%10)
		specs = append(specs,
			TensorSpec{Name: base + ".lora_down.weight", DType: dtype.F16, Shape: []int64{16, 1280}},
			TensorSpec{Name: base + ".lora_up.weight", DType: dtype.F16, Shape: []int64{1280, 16}},
		)
		if len(specs) < 1000 {
			specs = append(specs, TensorSpec{Name: base + ".alpha", DType: dtype.F16, Shape: []int64{}})
		}
	}
	return specs[:1000]
}

func BenchmarkParseHeader1000(b *testing.B) {
	specs := realisticSpecs()
	meta := map[string]string{"ss_network_dim": "16", "ss_network_alpha": "8", "ss_base_model_version": "sdxl_base_v1-0"}
	_, sizes, hdr, err := buildHeader(specs, meta)
	if err != nil {
		b.Fatal(err)
	}
	fileSize := int64(len(hdr))
	for _, s := range sizes {
		fileSize += s
	}
	b.SetBytes(int64(len(hdr)))
	b.ReportAllocs()
	for b.Loop() {
		h, err := ParseHeader(hdr, fileSize)
		if err != nil || len(h.Tensors) != 1000 {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenClose(b *testing.B) {
	specs := realisticSpecs()[:300]
	p := filepath.Join(b.TempDir(), "bench.safetensors")
	err := WriteFile(p, specs, nil, func(s TensorSpec) ([]byte, error) {
		n, _ := dtype.Size(s.DType, TensorInfo{Shape: s.Shape}.NumElements())
		return make([]byte, n), nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		f, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
