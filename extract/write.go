package extract

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/loratool/loratool/safetensors"
)

// suffixes returns the up, down and alpha tensor suffixes of a format.
func suffixes(format string) (up, down, alpha string) {
	if format == "diffusers" {
		return ".lora_B.weight", ".lora_A.weight", ""
	}
	return ".lora_up.weight", ".lora_down.weight", ".alpha"
}

type outTensor struct {
	spec safetensors.TensorSpec
	data []byte
}

// networkModule is kohya's ss_network_module for an architecture.
func networkModule(id string) string {
	switch id {
	case "flux1", "chroma":
		return "networks.lora_flux"
	case "sd3":
		return "networks.lora_sd3"
	}
	return "networks.lora"
}

// implementation is the modelspec.implementation kohya writes for LoRAs of
// an architecture.
func implementation(id string) string {
	switch id {
	case "sd1", "sd2":
		return "diffusers"
	case "sdxl", "sdxl-refiner", "sd3":
		return "https://github.com/Stability-AI/generative-models"
	case "flux1":
		return "https://github.com/black-forest-labs/flux"
	case "chroma":
		return "https://huggingface.co/lodestones/Chroma"
	}
	return "https://github.com/loratool/loratool"
}

func resolution(id string) string {
	switch id {
	case "sd1":
		return "512x512"
	case "sd2":
		return "768x768"
	}
	return "1024x1024"
}

func fmtFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func metadata(s *settings, p *plan, rep *Report, hash string) map[string]string {
	dim, alpha := strconv.Itoa(s.maxRank), fmtFloat(float64(s.maxRank))
	args := map[string]string{}
	if s.dynamic {
		dim, alpha = "Dynamic", "Dynamic"
	} else if s.convRank > 0 {
		args["conv_dim"] = strconv.Itoa(s.convRank)
		args["conv_alpha"] = fmtFloat(float64(s.convRank))
	}
	argsJSON, _ := json.Marshal(args)
	ruleDesc := "rank " + strconv.Itoa(s.maxRank)
	if s.dynamic {
		ruleDesc = fmt.Sprintf("rank rule %s, max rank %d", s.rule, s.maxRank)
	}
	if s.convRank > 0 && s.convRank != s.maxRank {
		ruleDesc += fmt.Sprintf(", conv rank %d", s.convRank)
	}
	if s.Clamp > 0 {
		ruleDesc += fmt.Sprintf(", clamp quantile %g", s.Clamp)
	}
	comment := fmt.Sprintf("extracted by loratool from %s and %s (%s; retained %.4f of the Frobenius norm)",
		filepath.Base(s.Base), filepath.Base(s.Tuned), ruleDesc, rep.Retained)
	v2 := "False"
	if strings.HasPrefix(p.arch.ID, "sd2") {
		v2 = "True"
	}
	title := strings.TrimSuffix(filepath.Base(s.Output), filepath.Ext(s.Output))
	md := map[string]string{
		"ss_network_module":          networkModule(p.arch.ID),
		"ss_network_dim":             dim,
		"ss_network_alpha":           alpha,
		"ss_network_args":            string(argsJSON),
		"ss_base_model_version":      p.arch.KohyaVersion,
		"ss_v2":                      v2,
		"ss_training_comment":        comment,
		"ss_output_name":             title,
		"sshs_model_hash":            hash,
		"modelspec.sai_model_spec":   "1.0.1",
		"modelspec.architecture":     p.arch.ModelSpec + "/lora",
		"modelspec.implementation":   implementation(p.arch.ID),
		"modelspec.title":            title,
		"modelspec.resolution":       resolution(p.arch.ID),
		"modelspec.description":      comment,
		"modelspec.hash_sha256":      "0x" + hash,
		"modelspec.merged_from":      filepath.Base(s.Base) + "," + filepath.Base(s.Tuned),
		"loratool.extract.rank_rule": s.rule.String(),
	}
	if p.arch.KohyaVersion == "" {
		delete(md, "ss_base_model_version")
	}
	if p.arch.ModelSpec == "" {
		delete(md, "modelspec.architecture")
	}
	return md
}

// write lays out the output tensors, hashes the data section in the
// writer's canonical order (every tensor has the same dtype, so that is
// name order), puts the hash into the metadata and streams the file.
func write(s *settings, p *plan, results []result, rep *Report) error {
	upS, downS, alphaS := suffixes(s.Format)
	var ts []outTensor
	for _, r := range results {
		n := r.report.Name
		ts = append(ts,
			outTensor{safetensors.TensorSpec{Name: n + upS, DType: s.dt, Shape: r.upShape}, r.up},
			outTensor{safetensors.TensorSpec{Name: n + downS, DType: s.dt, Shape: r.downShape}, r.down})
		if alphaS != "" {
			ts = append(ts, outTensor{safetensors.TensorSpec{Name: n + alphaS, DType: s.dt, Shape: []int64{}}, r.alphaData})
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].spec.Name < ts[j].spec.Name })
	h := sha256.New()
	specs := make([]safetensors.TensorSpec, len(ts))
	var size int64
	for i, t := range ts {
		h.Write(t.data)
		specs[i] = t.spec
		size += int64(len(t.data))
	}
	hash := hex.EncodeToString(h.Sum(nil))
	w, err := safetensors.Create(s.Output, specs, metadata(s, p, rep, hash))
	if err != nil {
		return err
	}
	order := w.Order()
	for i, t := range ts {
		if order[i].Name != t.spec.Name {
			w.Abort()
			return fmt.Errorf("%s: internal error: writer order differs at %s (expected %s)", s.Output, order[i].Name, t.spec.Name)
		}
		if err := w.Write(t.spec.Name, t.data); err != nil {
			w.Abort()
			return err
		}
	}
	if err := w.Commit(); err != nil {
		return err
	}
	rep.Tensors = len(ts)
	rep.Bytes = w.FileSize()
	rep.ModelHash = hash
	return nil
}
