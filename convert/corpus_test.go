package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCorpus converts the real files of ../shared/corpus to every format
// and back to kohya; LoRAs must convert to kohya and comfy, diffusers/peft
// may refuse only with a one-line error naming the modules.
func TestCorpus(t *testing.T) {
	files, _ := filepath.Glob("../../shared/corpus/files/*.safetensors")
	if len(files) == 0 {
		t.Skip("corpus absent")
	}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "ti-") {
			continue
		}
		for _, to := range Formats {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.safetensors")
			res, err := File(f, out, Options{To: to})
			if err != nil {
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("multi-line error: %v", err)
				}
				if to == "kohya" || to == "comfy" {
					t.Errorf("%s → %s: %v", filepath.Base(f), to, err)
				} else {
					t.Logf("%s → %s refused: %v", filepath.Base(f), to, err)
				}
				continue
			}
			back := filepath.Join(dir, "back.safetensors")
			if _, err := File(res.Output, back, Options{To: "kohya", Arch: res.Arch}); err != nil {
				t.Errorf("%s → %s → kohya: %v", filepath.Base(f), to, err)
			}
			if _, err := os.Stat(back); err != nil {
				t.Errorf("no output: %v", err)
			}
		}
	}
}
