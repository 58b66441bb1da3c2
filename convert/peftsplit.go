package convert

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/lora"
)

// peftModel is the sub-folder of a multi-model PEFT output a piece belongs
// in ("unet", "transformer", "text_encoder", "text_encoder_2", ...) and the
// name prefix its keys carry in the mixed naming emit produces.
func peftModel(a *arch.Arch, p *piece) (folder, mixed string) {
	if p.t.Component == arch.DiffusionModel {
		f := "transformer"
		if len(a.DiffusersPrefixes) > 0 {
			f = strings.TrimSuffix(a.DiffusersPrefixes[0], ".")
		}
		return f, "base_model.model."
	}
	e, ok := a.Encoder(p.t.Component)
	if !ok || len(e.Diffusers) == 0 {
		return "", ""
	}
	return strings.TrimSuffix(e.Diffusers[0], "."), e.Diffusers[0]
}

// embeddingTensors returns the output tensors that are the LoRA's
// textual-inversion embeddings (copied unchanged).
func embeddingTensors(ts []outTensor, an *lora.Analysis) []outTensor {
	emb := map[string]bool{}
	for _, e := range an.Embeddings {
		emb[e.Key] = true
	}
	var out []outTensor
	for _, t := range ts {
		if emb[t.name] {
			out = append(out, t)
		}
	}
	return out
}

// peftDir is the folder a multi-model PEFT output goes to: -o without a
// .safetensors extension.
func peftDir(out string) string {
	return strings.TrimSuffix(out, ".safetensors")
}

// needsPEFTSplit reports whether a PEFT output must be one adapter per
// model: the LoRA patches a text encoder.
func needsPEFTSplit(pieces []*piece) bool {
	for _, p := range pieces {
		if p.t.Component != arch.DiffusionModel {
			return true
		}
	}
	return false
}

// writePEFTModels writes one PEFT adapter per model, as PEFT's
// save_pretrained lays out a pipeline's adapters: DIR/unet (or
// DIR/transformer), DIR/text_encoder, DIR/text_encoder_2, ..., each with
// adapter_model.safetensors (keys "base_model.model.<module>") and
// adapter_config.json. extra tensors (embeddings) go with the diffusion
// model's adapter.
func writePEFTModels(a *arch.Arch, pieces []*piece, extra []outTensor, out string, meta map[string]string, from string, opt Options, res *Result) error {
	groups := map[string][]*piece{}
	mixed := map[string]string{}
	var order []string
	for _, p := range pieces {
		f, m := peftModel(a, p)
		if f == "" {
			return fmt.Errorf("module %s: PEFT has no model folder for %s", p.src, p.t.Component)
		}
		if groups[f] == nil {
			order = append(order, f)
		}
		groups[f] = append(groups[f], p)
		mixed[f] = m
	}
	sort.Strings(order)
	dir := peftDir(out)
	dm, _ := peftModel(a, &piece{t: arch.Target{Component: arch.DiffusionModel}})
	type job struct {
		folder string
		ts     []outTensor
		cfg    []byte
		meta   map[string]string
	}
	var jobs []job
	for _, f := range order {
		ts, cfg, err := emit(a, groups[f], "peft")
		if err != nil {
			return err
		}
		pre := mixed[f]
		for i := range ts {
			ts[i].name = "base_model.model." + strings.TrimPrefix(ts[i].name, pre)
		}
		if f == dm {
			ts = append(ts, extra...)
		}
		rename := func(s string) string { return strings.TrimPrefix(s, pre) }
		if tm, ok := cfg["target_modules"].([]string); ok {
			for i := range tm {
				tm[i] = rename(tm[i])
			}
		}
		for _, k := range []string{"rank_pattern", "alpha_pattern"} {
			if pm, ok := cfg[k].(map[string]int); ok {
				n := map[string]int{}
				for kk, v := range pm {
					n[rename(kk)] = v
				}
				cfg[k] = n
			}
		}
		b, _ := json.MarshalIndent(cfg, "", "  ")
		m := copyMeta(meta)
		updateMeta(m, groups[f], from, opt)
		delete(m, "lora_adapter_metadata")
		jobs = append(jobs, job{f, ts, append(b, '\n'), m})
	}
	for _, j := range jobs {
		for _, n := range []string{"adapter_model.safetensors", "adapter_config.json"} {
			if err := checkOut(filepath.Join(dir, j.folder, n), opt.Overwrite); err != nil {
				return err
			}
		}
	}
	var notes []string
	for _, j := range jobs {
		sub := filepath.Join(dir, j.folder)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(sub, "adapter_config.json"), j.cfg, opt.Overwrite); err != nil {
			return err
		}
		n, err := writeTensors(filepath.Join(sub, "adapter_model.safetensors"), j.ts, opt.DType, j.meta, opt.Overwrite)
		if err != nil {
			return err
		}
		res.BytesOut += n
		res.Tensors += len(j.ts)
		res.Adapters = append(res.Adapters, sub)
		notes = append(notes, fmt.Sprintf("%s (%d modules)", sub, len(groups[j.folder])))
	}
	res.Output = dir
	res.Notes = append(res.Notes, "one PEFT adapter per model, as PEFT's save_pretrained lays them out: "+strings.Join(notes, ", "))
	return nil
}
