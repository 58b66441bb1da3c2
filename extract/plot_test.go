package extract

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestPlotWritesImage(t *testing.T) {
	rep := &Report{Arch: "sd1", Modules: []ModuleReport{
		{Name: "lora_unet_down_blocks_0_attentions_0_proj_in", Rank: 2, DeltaNorm: 5, spectrum: []float64{4, 2, 1, 1, 1}},
		{Name: "lora_unet_up_blocks_1_attentions_0_proj_out", Rank: 1, DeltaNorm: 3, spectrum: []float64{3}},
		{Name: "lora_te_text_model_encoder_layers_0_mlp_fc1", Rank: 1, DeltaNorm: 0}, // skipped: no delta
	}}
	for _, name := range []string{"s.png", "s.svg"} {
		p := filepath.Join(t.TempDir(), name)
		if err := Plot(rep, p); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if name == "s.png" && !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("%s is not a PNG", name)
		}
		if name == "s.svg" && !bytes.Contains(b, []byte("<svg")) {
			t.Fatalf("%s is not an SVG", name)
		}
	}
	if err := Plot(rep, filepath.Join(t.TempDir(), "s.unknownext")); err == nil {
		t.Fatal("an unknown image format was accepted")
	}
}
