package merge

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/safetensors"
)

// Pivotal-tuning embeddings of the inputs are carried into a merged LoRA
// as A1111 bundle tensors ("bundle_emb.<name>.string_to_param.*", SDXL
// ".clip_l"/".clip_g"), which A1111 and Forge load with the LoRA; a name
// used by two inputs gets a "_2", "_3" … suffix. diffusers/PEFT LoRA files
// cannot hold embeddings (diffusers rejects the file); they are then left
// out and named in a note (convert --to diffusers writes them to separate
// textual-inversion files).

// carriedEmbedding is one embedding vector set read from an input.
type carriedEmbedding struct {
	name, encoder string
	shape         []int64
	data          []float32
}

// readEmbeddings reads an input's embeddings (vectors as [n, width]).
func readEmbeddings(f *safetensors.File, an *lora.Analysis, path string) ([]carriedEmbedding, error) {
	stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	var out []carriedEmbedding
	for _, e := range an.Embeddings {
		ti, ok := f.Lookup(e.Key)
		if !ok {
			continue
		}
		v, err := f.Float32(ti, nil)
		if err != nil {
			return nil, err
		}
		name := e.Name
		if name == "" {
			name = stem
		}
		out = append(out, carriedEmbedding{name: strings.ReplaceAll(name, ".", "_"), encoder: e.Encoder, shape: []int64{e.Vectors, e.Width}, data: v})
	}
	return out, nil
}

// embeddingSpecs names the carried embeddings (renaming collisions between
// inputs) and returns their tensors and notes. perInput[i] are input i's.
func embeddingSpecs(perInput [][]carriedEmbedding, paths []string, format string) ([]safetensors.TensorSpec, map[string][]float32, []string) {
	var specs []safetensors.TensorSpec
	data := map[string][]float32{}
	var notes []string
	used := map[string]bool{}
	for i, es := range perInput {
		if len(es) == 0 {
			continue
		}
		if format == "diffusers" || format == "peft" {
			var names []string
			for _, e := range es {
				names = append(names, e.name)
			}
			notes = append(notes, fmt.Sprintf("%s: embeddings %s left out: a %s LoRA file cannot hold them (merge to kohya, or convert the input with --to %s to get textual-inversion files)", paths[i], strings.Join(names, ", "), format, format))
			continue
		}
		rename := map[string]string{}
		for _, e := range es {
			if _, ok := rename[e.name]; ok {
				continue
			}
			n := e.name
			for k := 2; used[n]; k++ {
				n = fmt.Sprintf("%s_%d", e.name, k)
			}
			used[n] = true
			rename[e.name] = n
			if n != e.name {
				notes = append(notes, fmt.Sprintf("%s: embedding %s renamed %s (another input has one of that name)", paths[i], e.name, n))
			}
		}
		for _, e := range es {
			key := "bundle_emb." + rename[e.name] + ".string_to_param.*"
			if e.encoder != "" {
				key = "bundle_emb." + rename[e.name] + "." + e.encoder
			}
			specs = append(specs, safetensors.TensorSpec{Name: key, Shape: e.shape})
			data[key] = e.data
		}
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs, data, notes
}
