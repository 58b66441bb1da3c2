package convert

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loratool/loratool/lora"
)

// Embeddings carried by pivotal-tuning LoRAs (textual-inversion vectors
// trained with the LoRA: cloneofsimo "<s1>", A1111 bundles, kohya's
// bundle_emb) are placed where the target's loaders find them:
//
//   - kohya: inside the LoRA as A1111 bundle tensors,
//     "bundle_emb.<name>.string_to_param.*" [vectors, width] (SD1/SD2) or
//     "bundle_emb.<name>.clip_l" / ".clip_g" (SDXL), which A1111 and Forge
//     load with the LoRA;
//   - diffusers, peft and comfy: in a separate textual-inversion file per
//     embedding beside the output, "<stem>_emb_<name>.safetensors", holding
//     one tensor named after the token ([vectors, width]; SDXL: "clip_l" and
//     "clip_g"), which diffusers' load_textual_inversion, ComfyUI's
//     embeddings folder and A1111 load. diffusers' load_lora_weights rejects
//     a LoRA file that contains embedding tensors, and ComfyUI's LoraLoader
//     ignores them.

// embeddingGroup is one named embedding and its tensors by encoder.
type embeddingGroup struct {
	name string
	vecs map[string]lora.Embedding // encoder ("" = first) → tensor
}

func groupEmbeddings(es []lora.Embedding, fallback string) []embeddingGroup {
	by := map[string]*embeddingGroup{}
	var names []string
	for _, e := range es {
		n := e.Name
		if n == "" {
			n = fallback
		}
		g := by[n]
		if g == nil {
			g = &embeddingGroup{name: n, vecs: map[string]lora.Embedding{}}
			by[n] = g
			names = append(names, n)
		}
		g.vecs[e.Encoder] = e
	}
	sort.Strings(names)
	out := make([]embeddingGroup, len(names))
	for i, n := range names {
		out[i] = *by[n]
	}
	return out
}

// bundleName makes name usable between the dots of a bundle_emb key.
func bundleName(name string) string { return strings.ReplaceAll(name, ".", "_") }

// fileToken makes name usable in a file name on every system.
func fileToken(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == '<' || r == '>':
		default:
			b.WriteRune('_')
		}
	}
	if b.Len() == 0 {
		return "emb"
	}
	return b.String()
}

// EmbeddingPath is where a separate textual-inversion file for embedding
// name goes, beside out.
func EmbeddingPath(out, name string) string {
	stem := strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
	return filepath.Join(filepath.Dir(out), stem+"_emb_"+fileToken(name)+".safetensors")
}

// matrixVal reads an embedding tensor as [vectors, width] (raw bytes kept).
func matrixVal(src source, refs map[string]srcTensor, e lora.Embedding) (*val, error) {
	t := refs[e.Key]
	b, err := src.Read(t)
	if err != nil {
		return nil, err
	}
	return &val{dt: t.DType, shape: []int64{e.Vectors, e.Width}, raw: b}, nil
}

// placeEmbeddings returns the embedding tensors to write into the LoRA
// (kohya) and writes the separate files (other formats), noting each;
// it drops the LoRA metadata's markers of the moved token tensors.
func placeEmbeddings(src source, refs map[string]srcTensor, an *lora.Analysis, in, out string, meta map[string]string, opt Options, res *Result) ([]outTensor, error) {
	if len(an.Embeddings) == 0 {
		return nil, nil
	}
	for _, e := range an.Embeddings {
		if meta[e.Key] == "<embed>" {
			delete(meta, e.Key) // cloneofsimo's marker of a token tensor that moves
		}
	}
	stem := strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
	groups := groupEmbeddings(an.Embeddings, stem)
	if opt.To != "kohya" {
		// refuse before writing anything when an output exists
		if err := checkOut(out, opt.Overwrite); err != nil {
			return nil, err
		}
		for _, g := range groups {
			if err := checkOut(EmbeddingPath(out, g.name), opt.Overwrite); err != nil {
				return nil, err
			}
		}
	}
	var ts []outTensor
	for _, g := range groups {
		if opt.To == "kohya" {
			for enc, e := range g.vecs {
				v, err := matrixVal(src, refs, e)
				if err != nil {
					return nil, err
				}
				key := "bundle_emb." + bundleName(g.name) + ".string_to_param.*"
				if enc != "" {
					key = "bundle_emb." + bundleName(g.name) + "." + enc
				}
				ts = append(ts, outTensor{name: key, v: v})
			}
			res.Notes = append(res.Notes, fmt.Sprintf("embedding %s bundled as A1111 bundle_emb.%s", g.name, bundleName(g.name)))
			continue
		}
		path := EmbeddingPath(out, g.name)
		var outs []outTensor
		for enc, e := range g.vecs {
			v, err := matrixVal(src, refs, e)
			if err != nil {
				return nil, err
			}
			key := g.name
			if enc != "" {
				key = enc
			}
			outs = append(outs, outTensor{name: key, v: v})
		}
		meta := map[string]string{"loratool.token": g.name, "loratool.source": filepath.Base(in)}
		if _, ok := g.vecs[""]; ok {
			meta[g.name] = "<embed>" // the pivotal-tuning marker cloneofsimo's files use
		}
		if err := checkOut(path, opt.Overwrite); err != nil {
			return nil, err
		}
		if _, err := writeTensors(path, outs, opt.DType, meta, opt.Overwrite); err != nil {
			return nil, err
		}
		res.Embeddings = append(res.Embeddings, path)
		res.Notes = append(res.Notes, fmt.Sprintf("embedding %s written to %s (textual inversion, token %s)", g.name, path, g.name))
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	return ts, nil
}
