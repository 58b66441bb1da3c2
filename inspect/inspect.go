package inspect

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/convert/pt"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/safetensors"
)

// Options select what inspect reads beyond the header.
type Options struct {
	// Alphas reads the values of the LoRA modules' alpha tensors (a few
	// bytes each). Without it (and without Stats or Hash) inspect reads
	// nothing but the header, and alpha values come from the
	// ss_network_alpha metadata when the file has it.
	Alphas bool
	Stats  bool   // read every tensor: per-block norms, NaN/Inf counts
	Hash   bool   // hash the file (one sequential read)
	Arch   string // force an architecture id instead of detecting it
	// Progress, when set, receives the bytes read by Stats and Hash as
	// they are read (for a progress bar; called concurrently).
	Progress func(bytes int64)
}

// File inspects one safetensors file. It never returns nil; on failure
// Report.Error holds a one-line message naming the file.
func File(path string, opt Options) *Report {
	r := &Report{File: path, Kind: "unknown", Architecture: "unknown", Confidence: "none",
		Algorithms: []string{}, Targets: []string{}, DTypes: []string{}, TriggerWords: []string{},
		Warnings: []string{}, UnknownKeys: []string{}, Metadata: map[string]string{}}
	var forced *arch.Arch
	if opt.Arch != "" {
		a, ok := arch.ByID(opt.Arch)
		if !ok {
			r.Error = fmt.Sprintf("unknown architecture %q (known: %s)", opt.Arch, strings.Join(arch.IDs(), ", "))
			return r
		}
		forced = a
	}
	if isGGUF(path) {
		return inspectGGUF(r, path, forced)
	}
	h, err := safetensors.ReadHeader(path)
	if err != nil {
		if looksLikePickle(path) {
			return inspectPickle(r, path, forced)
		}
		r.Error = err.Error()
		return r
	}
	r.Size = h.FileSize
	r.Tensors = len(h.Tensors)
	if h.Metadata != nil {
		r.Metadata = h.Metadata
	}
	dts := map[string]bool{}
	refs := make([]lora.TensorRef, 0, len(h.Tensors))
	for _, t := range h.Tensors {
		dts[t.DType.String()] = true
		r.Params += t.NumElements()
		refs = append(refs, lora.TensorRef{Key: t.Name, Shape: t.Shape, DType: t.DType.String()})
	}
	return describe(r, path, h, refs, dts, forced, opt)
}

// describe classifies a file from its tensor names, shapes and dtypes.
func describe(r *Report, path string, h *safetensors.Header, refs []lora.TensorRef, dts map[string]bool, forced *arch.Arch, opt Options) *Report {
	for d := range dts {
		r.DTypes = append(r.DTypes, d)
	}
	sort.Strings(r.DTypes)
	sort.Slice(refs, func(i, j int) bool { return refs[i].Key < refs[j].Key })

	var meta map[string]string
	if h != nil {
		meta = h.Metadata
	} else if opt.Stats || opt.Alphas || opt.Hash {
		r.Warnings = append(r.Warnings, "--stats, --alphas and --hash read safetensors files only; convert this pickle first (loratool convert)")
		opt.Stats, opt.Alphas, opt.Hash = false, false, false
	}
	an := lora.Analyze(refs, meta)
	var fit lora.Fit
	switch {
	case len(an.Modules) > 0:
		fit = describeLoRA(r, an, forced)
	case len(an.Embeddings) > 0 && len(an.Other) == 0:
		describeEmbedding(r, an)
	default:
		describeCheckpoint(r, refs, forced)
	}
	describeMetadata(r)

	switch {
	case opt.Stats:
		f, err := safetensors.Open(path)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		defer f.Close()
		if r.Kind == "lora" {
			readAlphas(r, func(key string) (float32, error) { return scalarAt(h, key, f.Bytes) }, an)
		}
		r.Stats = computeStats(f, an, fit, r.Kind == "lora")
		if opt.Progress != nil {
			opt.Progress(h.FileSize)
		}
		if r.Stats.NaN > 0 || r.Stats.Inf > 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("tensors hold %d NaN and %d Inf values", r.Stats.NaN, r.Stats.Inf))
		}
	case r.Kind == "lora" && opt.Alphas:
		// a few bytes per alpha: positioned reads beat faulting in a mapping
		fh, _, err := safetensors.OpenRegular(path)
		if err != nil {
			r.Error = fmt.Sprintf("%s: %v", path, err)
			return r
		}
		defer fh.Close()
		readAlphas(r, func(key string) (float32, error) {
			return scalarAt(h, key, func(t safetensors.TensorInfo) []byte {
				b := make([]byte, t.End-t.Begin)
				if _, err := fh.ReadAt(b, h.DataOffset+t.Begin); err != nil {
					return nil
				}
				return b
			})
		}, an)
	}
	if r.Kind == "lora" && r.Alpha == nil {
		alphaFromHeader(r, an)
	}
	if opt.Hash {
		hs, err := hashFileProgress(path, h.DataOffset, opt.Progress)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		if stored := h.Metadata["sshs_model_hash"]; stored != "" {
			m := strings.EqualFold(strings.TrimPrefix(stored, "0x"), hs.Data)
			hs.SSHSMatches = &m
			if !m && !isEmptyHash(stored) {
				r.Warnings = append(r.Warnings, "stored sshs_model_hash does not match the tensor data (the file was changed after it was hashed)")
			}
		}
		r.Hashes = hs
	}
	return r
}

func archOrUnknown(a *arch.Arch) (string, string) {
	if a == nil {
		return "unknown", ""
	}
	return a.ID, a.Name
}

func describeLoRA(r *Report, an *lora.Analysis, forced *arch.Arch) lora.Fit {
	r.Kind = "lora"
	fit := an.FitArch(arch.All(), forced)
	r.Architecture, r.ArchName = archOrUnknown(fit.Arch)
	r.Confidence, r.Evidence = fit.Confidence, fit.Evidence
	setVariant(r, fit.Variants)
	for _, a := range fit.Also {
		if a != fit.Arch {
			r.AlsoFits = append(r.AlsoFits, a.ID)
		}
	}
	r.Modules = len(an.Modules)
	algos := map[string]bool{}
	r.TargetModules = map[string]int{}
	var rmin, rmax int64
	for _, m := range an.Modules {
		mAlgos := m.Algorithms()
		for _, a := range mAlgos {
			algos[a] = true
		}
		part := lora.GuessPart(m.Prefix)
		if m.Target != nil {
			part = m.Target.Part
		}
		r.TargetModules[string(part)]++
		if rk := m.Rank(); rk > 0 {
			if rmin == 0 || rk < rmin {
				rmin = rk
			}
			rmax = max(rmax, rk)
		}
		if len(mAlgos) == 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("module %s has only %s, no adapter weights", m.Prefix, roles(m)))
		} else if w := doraOnlyWarning(m); w != "" {
			r.Warnings = append(r.Warnings, w)
		}
	}
	if len(an.Embeddings) > 0 {
		algos["embedding"] = true
		for _, e := range an.Embeddings {
			r.Vectors += e.Vectors
		}
		r.Embeddings = bundledEmbeddings(an.Embeddings)
	}
	for a := range algos {
		r.Algorithms = append(r.Algorithms, a)
	}
	sort.Strings(r.Algorithms)
	if rmax > 0 {
		r.Rank = &MinMax{Min: rmin, Max: rmax}
	}
	r.Targets = an.Parts(fit)
	r.Format = formatOf(an, fit)

	for _, m := range fit.Unresolved {
		for _, t := range m.Tensors {
			r.UnknownKeys = append(r.UnknownKeys, t.Key)
		}
	}
	for _, t := range an.Other {
		r.UnknownKeys = append(r.UnknownKeys, t.Key)
	}
	sort.Strings(r.UnknownKeys)
	if note := forcedMismatch(an, forced, fit); note != "" {
		r.Warnings = append(r.Warnings, note)
	}
	comfyIgnored(r, an, fit)
	if len(fit.Unresolved) > 0 {
		where := "any known architecture"
		if fit.Arch != nil {
			where = fit.Arch.ID
		} else if forced != nil {
			where = forced.ID
		}
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d modules match no module of %s: ComfyUI would log \"lora key not loaded\" for their %d tensors", len(fit.Unresolved), len(an.Modules), where, countTensors(fit.Unresolved)))
	}
	if len(an.Other) > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d tensors follow no known LoRA naming convention", len(an.Other)))
	}
	r.Warnings = append(r.Warnings, unknownKeyHints(fit, an)...)
	if an.Conventions["nonstandard"] > 0 {
		r.Warnings = append(r.Warnings, "nonstandard names (a kohya prefix over dotted diffusers names, suffix joined with \"_\"): no standard loader reads this file; `loratool convert` can rewrite it")
	}
	if an.Conventions["cloneofsimo"] > 0 {
		r.Warnings = append(r.Warnings, "cloneofsimo/lora format (modules numbered, not named): ComfyUI, A1111 and diffusers do not load it; `loratool convert` can rename it")
	}
	if an.Conventions["kohya-oft"] > 0 {
		r.Warnings = append(r.Warnings, "kohya OFT with numbered oft_blocks.N tensors: ComfyUI expects a single oft_blocks tensor and loads none of them")
	}
	if fit.Arch != nil && len(fit.Also) > 0 && fit.Confidence != "none" {
		r.Warnings = append(r.Warnings, fmt.Sprintf("keys and shapes also fit %s; %s is the usual reading", strings.Join(r.AlsoFits, ", "), fit.Arch.ID))
	}
	if fit.Arch == nil && len(fit.Also) > 0 {
		r.AlsoFits = nil
		for _, a := range fit.Also {
			r.AlsoFits = append(r.AlsoFits, a.ID)
		}
		r.Warnings = append(r.Warnings, "only text-encoder modules: the diffusion architecture cannot be told from this file")
	}
	var misfit []*lora.Module
	for _, m := range an.Modules {
		if m.Target != nil && m.Target.Arch != nil && shapeMisfit(fit, m) {
			misfit = append(misfit, m)
		}
	}
	if len(misfit) > 0 {
		m := misfit[0]
		rows, cols, _ := m.DeltaShape()
		if len(fit.Variants) > 0 {
			r.Warnings = append(r.Warnings, variantMisfitWarning(fit, misfit, len(an.Modules)))
		} else {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d modules have shapes that do not fit the full-size %s model (e.g. %s: %d×%d for %s %v): a reduced-size, pruned or other-variant model", len(misfit), len(an.Modules), m.Target.Arch.ID, m.Prefix, rows, cols, m.Target.Param, m.Target.Shape))
		}
	}
	return fit
}

func shapeMismatch(m *lora.Module) bool {
	rows, cols, ok := m.DeltaShape()
	if !ok || len(m.Target.Shape) == 0 {
		return false
	}
	if m.Has(lora.RoleSetWeight) || m.Has(lora.RoleDiff) || m.Has(lora.RoleWNorm) {
		return rows*cols != m.Target.Rows()*m.Target.Cols()
	}
	return rows != m.Target.Rows() || cols != m.Target.Cols()
}

func roles(m *lora.Module) string {
	var rs []string
	for r := range m.Tensors {
		rs = append(rs, r)
	}
	sort.Strings(rs)
	return strings.Join(rs, ", ")
}

func countTensors(ms []*lora.Module) int {
	n := 0
	for _, m := range ms {
		n += len(m.Tensors)
	}
	return n
}

// formatOf names the file's format from its prefix and suffix
// conventions.
func formatOf(an *lora.Analysis, fit lora.Fit) string {
	labels := map[string]int{}
	lyco := false
	for _, m := range an.Modules {
		for _, a := range m.Algorithms() {
			switch a {
			case "loha", "lokr", "glora", "oft", "boft", "ia3", "full", "norm":
				lyco = true
			}
		}
	}
	for _, m := range an.Modules {
		suffix := ""
		if len(m.Conventions) > 0 {
			suffix = m.Conventions[0]
		}
		prefix := ""
		if m.Target != nil {
			prefix = m.Target.Convention
		} else {
			prefix = guessPrefixConvention(m.Prefix)
		}
		labels[label(prefix, suffix, lyco, fit.Arch)]++
	}
	if len(labels) == 0 {
		return "unknown"
	}
	ls := rankedKeys(labels)
	if len(ls) == 1 {
		return ls[0]
	}
	return "mixed (" + strings.Join(ls, " + ") + ")"
}

func guessPrefixConvention(p string) string {
	switch {
	case strings.HasPrefix(p, "lora_unet_unet_"):
		return "kohya-over-diffusers"
	case strings.HasPrefix(p, "lora_unet_"), strings.HasPrefix(p, "lora_te"), strings.HasPrefix(p, "oft_unet_"):
		return "kohya"
	case strings.HasPrefix(p, "lora_transformer_"):
		return "onetrainer"
	case strings.HasPrefix(p, "lycoris_"):
		return "lycoris"
	case strings.HasPrefix(p, "diffusion_model."), strings.HasPrefix(p, "text_encoders."):
		return "comfy"
	case strings.HasPrefix(p, "base_model.model."):
		return "peft"
	case strings.HasPrefix(p, "transformer."), strings.HasPrefix(p, "unet."), strings.HasPrefix(p, "text_encoder"):
		return "diffusers"
	case strings.Contains(p, ":"):
		return "cloneofsimo"
	}
	return "bare"
}

func label(prefix, suffix string, lyco bool, a *arch.Arch) string {
	switch suffix {
	case "cloneofsimo", "xlabs", "nonstandard":
		return suffix
	case "diffusers-attn-processor":
		return "diffusers-attn-processor"
	}
	switch prefix {
	case "kohya", "kohya-over-diffusers":
		if suffix == "kohya-oft" {
			return "kohya"
		}
		if lyco {
			return "lycoris"
		}
		return "kohya"
	case "lycoris":
		return "lycoris"
	case "onetrainer":
		return "onetrainer"
	case "comfy":
		if lyco && suffix == "lycoris" {
			return "lycoris (comfy names)"
		}
		return "comfy"
	case "peft":
		return "peft"
	case "diffusers", "diffusers-attn-processor":
		if suffix == "diffusers" {
			return "diffusers (legacy lora.down/up)"
		}
		return "diffusers"
	case "cloneofsimo":
		return "cloneofsimo"
	}
	if a != nil && a.Part == arch.DiT {
		return "bfl (bare native names)"
	}
	return "bare (no prefix)"
}

func describeEmbedding(r *Report, an *lora.Analysis) {
	r.Kind = "embedding"
	r.Format = "textual-inversion"
	r.Algorithms = []string{"embedding"}
	a := lora.EmbeddingArch(an.Embeddings, arch.All())
	r.Architecture, r.ArchName = archOrUnknown(a)
	parts := map[string]bool{}
	for _, e := range an.Embeddings {
		r.Vectors += e.Vectors
		parts[string(lora.EmbeddingPart(e, a))] = true
	}
	for p := range parts {
		r.Targets = append(r.Targets, p)
	}
	sort.Strings(r.Targets)
	if a != nil {
		r.Confidence = "medium"
		r.Evidence = fmt.Sprintf("token vectors of width %d", an.Embeddings[0].Width)
	}
}

func describeCheckpoint(r *Report, refs []lora.TensorRef, forced *arch.Arch) {
	view := arch.MapView{}
	for _, t := range refs {
		view[t.Key] = t.Shape
	}
	info := arch.DetectCheckpoint(view)
	if len(info.Parts) == 0 {
		r.Format = "unknown"
		r.Warnings = append(r.Warnings, "no known LoRA, embedding or model layout: the tensor names match nothing loratool knows")
		for i, t := range refs {
			if i == 50 {
				break
			}
			r.UnknownKeys = append(r.UnknownKeys, t.Key)
		}
		return
	}
	r.Kind = "checkpoint"
	r.Format = "safetensors " + info.Layout
	r.Layout = info.Layout
	r.Architecture, r.ArchName = archOrUnknown(info.Arch)
	if forced != nil && info.Arch != forced {
		r.Warnings = append(r.Warnings, fmt.Sprintf("--arch %s given, but the keys say %s", forced.ID, r.Architecture))
	}
	r.Evidence = info.Evidence
	if info.Variant != "" {
		setVariant(r, []string{info.Variant})
	}
	if info.Arch != nil {
		r.Confidence = "high"
	} else {
		r.Warnings = append(r.Warnings, "no diffusion model in this file: its architecture cannot be told from the keys")
	}
	for _, p := range info.Parts {
		r.Targets = append(r.Targets, string(p))
	}
}

// readAlphas reads the scalar alpha tensors (a few bytes each).
func readAlphas(r *Report, scalar func(key string) (float32, error), an *lora.Analysis) {
	var s AlphaSummary
	first := true
	ratio := math.NaN()
	for _, m := range an.Modules {
		rank := m.Rank()
		t, ok := m.Tensors[lora.RoleAlpha]
		if !ok {
			if rank > 0 {
				s.Missing++
			}
			continue
		}
		v, err := scalar(t.Key)
		if err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: %v", t.Key, err))
			continue
		}
		a := float64(v)
		s.Present++
		if first {
			s.Min, s.Max, first = a, a, false
		}
		s.Min, s.Max = math.Min(s.Min, a), math.Max(s.Max, a)
		if rank > 0 {
			q := a / float64(rank)
			if math.IsNaN(ratio) {
				ratio = q
			} else if math.Abs(q-ratio) > 1e-6*math.Abs(ratio) {
				s.Dynamic = true
			}
		}
	}
	if first && s.Missing == 0 {
		return
	}
	r.Alpha = &s
	if s.Missing > 0 && !alphaFolded(r, s) {
		r.Warnings = append(r.Warnings, missingAlphaWarning(s.Missing))
	}
}

// alphaFromHeader summarises alphas without reading tensor data: which
// modules carry an alpha tensor, and the value from ss_network_alpha.
func alphaFromHeader(r *Report, an *lora.Analysis) {
	s := AlphaSummary{}
	for _, m := range an.Modules {
		if m.Has(lora.RoleAlpha) {
			s.Present++
		} else if m.Rank() > 0 {
			s.Missing++
		}
	}
	if s.Present == 0 && s.Missing == 0 {
		return
	}
	var a float64
	if _, err := fmt.Sscanf(r.Metadata["ss_network_alpha"], "%g", &a); err == nil && s.Present > 0 {
		s.Min, s.Max, s.FromMetadata = a, a, true
	} else if s.Present > 0 {
		s.NotRead = true
	}
	r.Alpha = &s
	if s.Missing > 0 && !alphaFolded(r, s) {
		r.Warnings = append(r.Warnings, missingAlphaWarning(s.Missing))
	}
}

func missingAlphaWarning(n int) string {
	return fmt.Sprintf("%d low-rank modules have no alpha: loaders use scale 1.0 (alpha = rank); a PEFT lora_alpha kept outside the file is lost", n)
}

// scalarAt decodes a one-element tensor; bytes returns its raw bytes.
func scalarAt(h *safetensors.Header, key string, bytes func(safetensors.TensorInfo) []byte) (float32, error) {
	t, ok := h.Lookup(key)
	if !ok {
		return 0, fmt.Errorf("no tensor %s", key)
	}
	if t.NumElements() != 1 {
		return 0, fmt.Errorf("not a scalar (shape %v)", t.Shape)
	}
	if !t.DType.CanDecode() {
		return 0, fmt.Errorf("cannot decode %v", t.DType)
	}
	b := bytes(t)
	if b == nil {
		return 0, fmt.Errorf("cannot read its %d bytes", t.End-t.Begin)
	}
	var v [1]float32
	if err := dtype.Decode(t.DType, b, v[:]); err != nil {
		return 0, err
	}
	return v[0], nil
}

// looksLikePickle reports whether a file is a PyTorch checkpoint: a zip
// archive (torch.save since 1.6) or a raw pickle (older torch.save).
func looksLikePickle(path string) bool {
	f, _, err := safetensors.OpenRegular(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return false
	}
	return string(b[:]) == "PK\x03\x04" || b[0] == 0x80 && b[1] >= 2 && b[1] <= 5
}

// inspectPickle describes a PyTorch pickle checkpoint from its tensor
// names and shapes, read without executing anything (package convert/pt).
func inspectPickle(r *Report, path string, forced *arch.Arch) *Report {
	ck, err := pt.Open(path)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer ck.Close()
	if st, err := os.Stat(path); err == nil {
		r.Size = st.Size()
	}
	r.Tensors = len(ck.Tensors)
	dts := map[string]bool{}
	refs := make([]lora.TensorRef, 0, len(ck.Tensors))
	for _, t := range ck.Tensors {
		dts[t.DType] = true
		n := int64(1)
		for _, d := range t.Shape {
			n *= d
		}
		r.Params += n
		refs = append(refs, lora.TensorRef{Key: t.Name, Shape: t.Shape, DType: t.DType})
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Key < refs[j].Key })
	r = describe(r, path, nil, refs, dts, forced, Options{})
	r.Format = "pytorch pickle; " + r.Format
	r.Warnings = append(r.Warnings, "a PyTorch pickle: `loratool convert "+filepath.Base(path)+"` turns it into safetensors without running its code")
	return r
}
