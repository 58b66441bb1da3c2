package convert

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/loratool/loratool/convert/pt"
	"github.com/loratool/loratool/convert/pt/pttest"
	"github.com/loratool/loratool/safetensors"
)

// TestPickleImportThroughPT builds a kohya LoRA saved as a torch pickle and
// checks that pt reads it back: names, shapes and the exact f16 bytes.
func TestPickleImportThroughPT(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "old-lora.pt")
	// f16 1.0 = 0x3C00, 2.5 = 0x4100, -0.5 = 0xB800; f32 1.0 = 0x3F800000
	down := []byte{0x00, 0x3C, 0x00, 0x41, 0x00, 0xB8, 0x00, 0x3C}
	up := []byte{0x00, 0x41, 0x00, 0xB8}
	alpha := []byte{0x00, 0x00, 0x80, 0x3F}
	err := pttest.WriteStateDict(in, []pttest.Tensor{
		{Name: "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", Storage: "HalfStorage", Shape: []int64{1, 4}, Data: down},
		{Name: "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", Storage: "HalfStorage", Shape: []int64{2, 1}, Data: up},
		{Name: "lora_unet_down_blocks_0_attentions_0_proj_in.alpha", Storage: "FloatStorage", Shape: []int64{}, Data: alpha},
	}, []pttest.Extra{{Name: "global_step", Value: 5}})
	if err != nil {
		t.Fatal(err)
	}
	ck, err := pt.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	want := map[string][]byte{
		"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": down,
		"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight":   up,
		"lora_unet_down_blocks_0_attentions_0_proj_in.alpha":            alpha,
	}
	if len(ck.Tensors) != 3 {
		t.Fatalf("%d tensors, want 3 (skipped: %v)", len(ck.Tensors), ck.Skipped)
	}
	for _, tn := range ck.Tensors {
		b, err := ck.Read(tn)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want[tn.Name]) {
			t.Errorf("%s: bytes %x, want %x", tn.Name, b, want[tn.Name])
		}
	}
	// the whole path: .pt → safetensors (names kept, f16 bytes unchanged)
	out := filepath.Join(dir, "old-lora.safetensors")
	if _, err := File(in, out, Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, b := range want {
		ti, ok := f.Lookup(name)
		if !ok {
			t.Fatalf("output lacks %s", name)
		}
		if !bytes.Equal(f.Bytes(ti), b) {
			t.Errorf("%s: %x, want %x", name, f.Bytes(ti), b)
		}
	}
	// a pickle that tries to run code is refused and runs nothing
	evil := filepath.Join(dir, "evil.pt")
	marker := filepath.Join(dir, "pwned")
	if err := os.WriteFile(evil, evilPickleZip(t, "touch "+marker), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := File(evil, filepath.Join(dir, "evil.safetensors"), Options{}); err == nil {
		t.Fatal("a pickle calling os.system was converted")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the pickle's command ran")
	}
	if _, err := os.Stat(filepath.Join(dir, "evil.safetensors")); err == nil {
		t.Fatal("output written for a refused pickle")
	}
}

// evilPickleZip is a torch-style archive whose pickle calls os.system(cmd).
func evilPickleZip(t *testing.T, cmd string) []byte {
	t.Helper()
	var p bytes.Buffer
	p.Write([]byte{0x80, 2})
	p.WriteString("cos\nsystem\n")
	p.WriteString("(X")
	n := len(cmd)
	p.Write([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	p.WriteString(cmd)
	p.WriteString("tR.")
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	w, _ := zw.Create("archive/data.pkl")
	w.Write(p.Bytes())
	zw.Close()
	return z.Bytes()
}
