package inspect

import (
	"fmt"
	"sort"
	"strings"

	"github.com/loratool/loratool/lora"
)

// BundledEmbedding is one textual-inversion embedding carried inside a
// LoRA file (A1111 "bundle_emb.<name>.…", pivotal-tuning tokens such as
// cloneofsimo's "<s1>").
type BundledEmbedding struct {
	Name string `json:"name"` // the token a prompt uses
	// Vectors is the number of token vectors; Widths the vector width per
	// text encoder ("clip_l": 768, "clip_g": 1280; "" for the first one).
	Vectors int64            `json:"vectors"`
	Widths  map[string]int64 `json:"widths"`
	Keys    []string         `json:"keys"`
}

// bundledEmbeddings groups a LoRA's embedding tensors by name.
func bundledEmbeddings(es []lora.Embedding) []BundledEmbedding {
	byName := map[string]*BundledEmbedding{}
	var names []string
	for _, e := range es {
		b := byName[e.Name]
		if b == nil {
			b = &BundledEmbedding{Name: e.Name, Widths: map[string]int64{}}
			byName[e.Name] = b
			names = append(names, e.Name)
		}
		b.Vectors = max(b.Vectors, e.Vectors)
		b.Widths[e.Encoder] = e.Width
		b.Keys = append(b.Keys, e.Key)
	}
	sort.Strings(names)
	out := make([]BundledEmbedding, 0, len(names))
	for _, n := range names {
		sort.Strings(byName[n].Keys)
		out = append(out, *byName[n])
	}
	return out
}

// describeBundled renders bundled embeddings for the text report.
func describeBundled(bs []BundledEmbedding) string {
	var parts []string
	for _, b := range bs {
		var ws []string
		for enc, w := range b.Widths {
			if enc == "" {
				ws = append(ws, fmt.Sprint(w))
			} else {
				ws = append(ws, fmt.Sprintf("%s %d", enc, w))
			}
		}
		sort.Strings(ws)
		name := b.Name
		if name == "" {
			name = "(unnamed)"
		}
		parts = append(parts, fmt.Sprintf("%s (%d×%s)", name, b.Vectors, strings.Join(ws, "+")))
	}
	return strings.Join(parts, ", ")
}
