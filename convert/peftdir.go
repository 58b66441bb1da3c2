package convert

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/loratool/loratool/safetensors"
)

// peftDirSource reads a folder of per-model PEFT adapters (DIR/unet,
// DIR/transformer, DIR/text_encoder, ... each with adapter_model.safetensors
// and adapter_config.json) as one LoRA whose keys carry the model folder
// as their diffusers prefix: base_model.model.X in DIR/text_encoder becomes
// text_encoder.X. Each adapter's lora_alpha/r goes into cfg per module.
type peftDirSource struct {
	files  []*safetensors.File
	ts     []srcTensor
	byName map[string]struct {
		f  *safetensors.File
		ti safetensors.TensorInfo
	}
	meta map[string]string
	size int64
	cfg  *peftConfig
}

// isPEFTDir reports whether path is a folder holding per-model adapters.
func isPEFTDir(path string) bool {
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		return false
	}
	for _, f := range peftFolders {
		if _, err := os.Stat(filepath.Join(path, f, "adapter_model.safetensors")); err == nil {
			return true
		}
	}
	return false
}

// peftFolders are the model folders of a diffusers pipeline that hold
// per-model adapters.
var peftFolders = []string{"unet", "transformer", "text_encoder", "text_encoder_2", "text_encoder_3"}

func openPEFTDir(dir string) (*peftDirSource, error) {
	var paths []string
	for _, f := range peftFolders {
		p := filepath.Join(dir, f, "adapter_model.safetensors")
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		}
	}
	s := &peftDirSource{byName: map[string]struct {
		f  *safetensors.File
		ti safetensors.TensorInfo
	}{}, meta: map[string]string{}, cfg: &peftConfig{AlphaPattern: map[string]float64{}, found: dir}}
	for _, p := range paths {
		folder := filepath.Base(filepath.Dir(p))
		f, err := safetensors.Open(p)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.files = append(s.files, f)
		s.size += f.FileSize
		for k, v := range f.Metadata {
			s.meta[k] = v
		}
		var c peftConfig
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(p), "adapter_config.json")); err == nil {
			if err := json.Unmarshal(b, &c); err != nil {
				s.Close()
				return nil, fmt.Errorf("%s: %v", filepath.Join(filepath.Dir(p), "adapter_config.json"), err)
			}
		}
		for _, t := range f.Tensors {
			name := t.Name // other tensors (embeddings) keep their names
			if rest, ok := strings.CutPrefix(t.Name, "base_model.model."); ok {
				name = folder + "." + rest
			}
			if _, dup := s.byName[name]; dup {
				s.Close()
				return nil, fmt.Errorf("%s: tensor %q appears in two adapters", dir, name)
			}
			s.ts = append(s.ts, srcTensor{Name: name, DType: t.DType, Shape: t.Shape})
			s.byName[name] = struct {
				f  *safetensors.File
				ti safetensors.TensorInfo
			}{f, t}
			if mod, ok := strings.CutSuffix(name, ".lora_A.weight"); ok && len(t.Shape) > 0 {
				local := strings.TrimPrefix(mod, folder+".")
				alpha := c.LoRAAlpha
				for k, v := range c.AlphaPattern {
					if local == k || strings.HasSuffix(local, "."+k) {
						alpha = v
					}
				}
				if alpha == 0 {
					alpha = float64(t.Shape[0]) // no config: scale 1
				}
				if c.RSLoRA {
					s.cfg.RSLoRA = true
				}
				s.cfg.AlphaPattern[mod] = alpha
			}
		}
	}
	if len(s.files) == 0 {
		return nil, fmt.Errorf("%s: no */adapter_model.safetensors", dir)
	}
	return s, nil
}

func (s *peftDirSource) Tensors() []srcTensor        { return s.ts }
func (s *peftDirSource) Metadata() map[string]string { return s.meta }
func (s *peftDirSource) Size() int64                 { return s.size }
func (s *peftDirSource) Skipped() []string           { return nil }
func (s *peftDirSource) Close() error {
	for _, f := range s.files {
		f.Close()
	}
	return nil
}
func (s *peftDirSource) Read(t srcTensor) ([]byte, error) {
	e, ok := s.byName[t.Name]
	if !ok {
		return nil, fmt.Errorf("no tensor %q", t.Name)
	}
	b := e.f.Bytes(e.ti)
	if b == nil {
		return nil, fmt.Errorf("%s: tensor %q lies outside the data section", e.f.Path, e.ti.Name)
	}
	return b, nil
}
