package extract

import (
	"path/filepath"
	"strings"

	"github.com/loratool/loratool/gguf"
	"github.com/loratool/loratool/safetensors"
)

// openInput opens a checkpoint: safetensors, or GGUF through its
// dequantizing safetensors view.
func openInput(path string) (*safetensors.File, error) {
	if strings.EqualFold(filepath.Ext(path), ".gguf") {
		return gguf.OpenView(path)
	}
	return safetensors.Open(path)
}
