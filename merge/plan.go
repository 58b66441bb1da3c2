// Package merge implements `loratool merge`: it bakes LoRAs into a
// checkpoint (streaming, every algorithm, fp8 included) with ComfyUI's
// key mapping and math, and merges several LoRAs into one.
package merge

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/gguf"
	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/safetensors"
)

// Input is one LoRA to apply with its strengths (ComfyUI LoraLoader's
// strength_model and strength_clip).
type Input struct {
	Path          string
	StrengthModel float64
	StrengthClip  float64
	// LBW scales each module's strength by its block's weight (nil: 1).
	LBW *BlockWeights
}

// ParseInput parses "FILE[:STRENGTH[:CLIP_STRENGTH]][:lbw=SPEC]";
// defModel/defClip are used for the parts not given. A file name that
// itself contains ':' is taken whole when such a file exists (see
// splitSpec); a strength that is not a number is a *StrengthError.
func ParseInput(s string, defModel, defClip float64) (Input, error) {
	in := Input{Path: s, StrengthModel: defModel, StrengthClip: defClip}
	whole := s
	if rest, spec, ok := splitLBW(s); ok {
		bw, err := ParseBlockWeights(spec)
		if err != nil {
			return in, fmt.Errorf("--lora %q: %v", whole, err)
		}
		in.LBW, s = bw, rest
	}
	path, nums, err := splitSpec(s)
	if err != nil {
		return in, err
	}
	in.Path = path
	if in.Path == "" {
		return in, fmt.Errorf("--lora %q: no file name", whole)
	}
	switch len(nums) {
	case 1:
		in.StrengthModel = nums[0]
		in.StrengthClip = nums[0]
	case 2:
		in.StrengthModel, in.StrengthClip = nums[0], nums[1]
	}
	return in, finiteStrengths(s, in)
}

// Patch is one adapter applied to (a slice of) one base tensor.
type Patch struct {
	Input     int // index into Plan.Inputs
	Module    *lora.Module
	Algo      string // adapter algorithm
	Key       string // base tensor name
	Slice     *arch.Slice
	Bias      bool // patches the module's bias (diff_b / b_norm)
	Swap      bool // swap the delta's halves (diffusers norm_out → native adaLN)
	Transpose bool // the base stores the target transposed (open_clip text_projection)
	Strength  float64
	Target    arch.Target
	// Block is the module's LoRA Block Weight block and BlockWeight the
	// multiplier folded into Strength (1 without lbw=).
	Block       string
	BlockWeight float64
}

// Issue is a LoRA tensor or module that is not applied, and why.
type Issue struct {
	Input  int    `json:"lora"`
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// Plan is the complete mapping of LoRA modules onto base tensors; building
// it reads only headers.
type Plan struct {
	BasePath  string
	Base      *safetensors.File
	gguf      *gguf.File // set when the base is a GGUF file (Base is then a header-only view)
	Arch      *arch.Arch
	Info      arch.CheckpointInfo
	Inputs    []Input
	LoRAs     []*safetensors.File
	LoRAArch  []string
	Analyses  []*lora.Analysis
	Patches   []*Patch
	ByKey     map[string][]*Patch
	Unmatched []Issue
	Skipped   []Issue
	Warnings  []string

	lycoris bool // LyCORIS semantics instead of ComfyUI quirks

	// ComfyIgnored lists the LoRA tensors loratool applies but ComfyUI's
	// LoraLoader does not load (see comfydiverge.go).
	ComfyIgnored []Issue
	// comfy holds the ComfyUI-compatibility state (comfydiverge.go).
	comfy comfyState
}

// Close unmaps every file the plan opened.
func (p *Plan) Close() {
	if p.Base != nil {
		p.Base.Close()
	}

	for _, l := range p.LoRAs {
		if l != nil {
			l.Close()
		}
	}
}

// PlanOptions control the mapping.
type PlanOptions struct {
	Arch      string // force the checkpoint architecture
	ModelOnly bool   // apply only the diffusion-model part
	// LyCORISSemantics turns off ComfyUI's DoRA / OFT quirks.
	LyCORISSemantics bool
	// ForceArch merges a LoRA detected as another architecture than the
	// checkpoint's instead of refusing it.
	ForceArch bool
	// ComfyExact skips what ComfyUI's LoraLoader does not load (IA3,
	// names its key map lacks), so the result renders like a ComfyUI
	// workflow with the same LoRAs.
	ComfyExact bool
	// PEFTDoRA applies PEFT's DoRA for lora_magnitude_vector (norms of
	// W+ΔW); by default the magnitude is ignored and the module is a plain
	// LoRA, as in ComfyUI.
	PEFTDoRA bool
}

// algoOf picks the adapter a module applies to its weight, following
// ComfyUI's "last match wins" order (LoRA, LoHa, LoKr, GLoRA, OFT, BOFT,
// then w_norm, diff, set); bias-only modules return "".
func algoOf(m *lora.Module) (string, error) {
	algo := ""
	has := m.Has
	if has(lora.RoleUp) && has(lora.RoleDown) {
		algo = "lora"
	} else if has(lora.RoleUp) != has(lora.RoleDown) {
		return "", fmt.Errorf("has only one of the up/down pair")
	}
	if has("hada_w1_a") {
		algo = "loha"
	}
	if has("lokr_w1") || has("lokr_w1_a") || has("lokr_w2") || has("lokr_w2_a") {
		algo = "lokr"
	}
	if has("a1") && has("a2") && has("b1") && has("b2") {
		algo = "glora"
	}
	if t, ok := m.Tensors[lora.RoleOFTBlocks]; ok {
		if len(t.Shape) == 4 {
			algo = "boft"
		} else {
			algo = "oft"
		}
	}
	for role := range m.Tensors {
		if strings.HasPrefix(role, lora.RoleOFTBlocks+".") {
			return "", fmt.Errorf("kohya OFT with numbered oft_blocks.N tensors is not loadable (ComfyUI rejects it too)")
		}
	}
	if has(lora.RoleIA3Weight) {
		algo = "ia3"
	}
	if has(lora.RoleWNorm) {
		algo = "norm"
	}
	if has(lora.RoleDiff) {
		algo = "full"
	}
	if has(lora.RoleSetWeight) {
		algo = "set"
	}
	return algo, nil
}

// NewPlan opens the base and the LoRAs and maps every module.
func NewPlan(base string, inputs []Input, opt PlanOptions) (*Plan, error) {
	p := &Plan{BasePath: base, Inputs: inputs, ByKey: map[string][]*Patch{}, lycoris: opt.LyCORISSemantics}
	f, gf, err := openBase(base)
	if err != nil {
		return nil, err
	}
	p.Base, p.gguf = f, gf
	view := arch.MapView{}
	for _, t := range f.Tensors {
		view[t.Name] = t.Shape
	}
	p.Info = arch.DetectCheckpoint(view)
	if opt.Arch != "" {
		a, ok := arch.ByID(opt.Arch)
		if !ok {
			p.Close()
			return nil, fmt.Errorf("unknown architecture %q (known: %s)", opt.Arch, strings.Join(arch.IDs(), ", "))
		}
		if p.Info.Arch != nil && p.Info.Arch != a {
			p.Warnings = append(p.Warnings, fmt.Sprintf("--arch %s overrides the detected %s", a.ID, p.Info.Arch.ID))
		}
		p.Arch = a
		if p.Info.Layout == "unknown" {
			p.Info.Layout = "diffusion-model"
		}
	} else {
		p.Arch = p.Info.Arch
	}
	if p.Arch == nil {
		p.Close()
		return nil, fmt.Errorf("%s: cannot tell the checkpoint's architecture from its keys; pass --arch (one of %s)", base, strings.Join(arch.IDs(), ", "))
	}
	for i, in := range inputs {
		if err := in.LBW.Resolve(p.Arch); err != nil {
			p.Close()
			return nil, &UsageError{fmt.Sprintf("--lora %s: %v", in.Path, err)}
		}
		lf, err := safetensors.Open(in.Path)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.LoRAs = append(p.LoRAs, lf)
		if err := p.mapLoRA(i, lf, opt); err != nil {
			p.Close()
			return nil, err
		}
	}
	p.comfyPass(opt)
	for _, pt := range p.Patches {
		p.ByKey[pt.Key] = append(p.ByKey[pt.Key], pt)
	}
	return p, nil
}

func (p *Plan) mapLoRA(i int, lf *safetensors.File, opt PlanOptions) error {
	in := p.Inputs[i]
	refs := make([]lora.TensorRef, 0, len(lf.Tensors))
	for _, t := range lf.Tensors {
		refs = append(refs, lora.TensorRef{Key: t.Name, Shape: t.Shape, DType: t.DType.String()})
	}
	sort.Slice(refs, func(a, b int) bool { return refs[a].Key < refs[b].Key })
	an := lora.Analyze(refs, lf.Metadata)
	p.Analyses = append(p.Analyses, an)
	if len(an.Modules) == 0 {
		return fmt.Errorf("%s: not a LoRA (no adapter tensors found)", in.Path)
	}
	own := an.FitArch(arch.All(), nil)
	ownID := "unknown"
	if own.Arch != nil {
		ownID = own.Arch.ID
	}
	p.LoRAArch = append(p.LoRAArch, ownID)
	if err := variantMismatch(in.Path, own, p.Arch, p.Info); err != nil {
		return err
	}
	// map onto the checkpoint's architecture
	fit := an.FitArch(nil, p.Arch)
	for _, m := range fit.Unresolved {
		reason := "no module of " + p.Arch.ID + " has this name" + probablyMeant(p.Arch, m.Prefix)
		for _, t := range sortedTensors(m) {
			p.Unmatched = append(p.Unmatched, Issue{Input: i, Key: t, Reason: reason})
		}
	}
	for _, t := range an.Other {
		p.Unmatched = append(p.Unmatched, Issue{Input: i, Key: t.Key, Reason: "not a LoRA tensor of any known convention"})
	}
	for _, e := range an.Embeddings {
		p.Skipped = append(p.Skipped, Issue{Input: i, Key: e.Key, Reason: "textual-inversion embedding (not merged into weights)"})
	}
	before, unmatchedBefore := len(p.Patches), len(p.Unmatched)
	p.noteReshape(lf, loaderInput(in, opt))
	for _, m := range an.Modules {
		if m.Target == nil {
			continue
		}
		p.mapModule(i, m, opt)
	}
	if err := refuseOtherArch(in.Path, own, p.Arch, len(p.Unmatched) > unmatchedBefore, opt.ForceArch); err != nil {
		return err
	}
	// a LoRA for another architecture: say so in one line instead of
	// listing every tensor
	applied := 0
	seen := map[*lora.Module]bool{}
	for _, pt := range p.Patches[before:] {
		if !seen[pt.Module] {
			seen[pt.Module] = true
			applied++
		}
	}
	if !opt.ForceArch && own.Arch != nil && own.Arch != p.Arch && applied*2 < len(an.Modules) && len(p.Unmatched) > unmatchedBefore {
		also := false
		for _, a := range own.Also {
			also = also || a == p.Arch
		}
		if !also {
			return fmt.Errorf("%s: this is a%s %s LoRA; the checkpoint is %s (%s)", in.Path, article(own.Arch.ID), own.Arch.ID, p.Arch.ID, p.Arch.Name)
		}
	}
	return nil
}

func article(id string) string {
	if strings.HasPrefix(id, "sd") {
		return "n"
	}
	return ""
}

func sortedTensors(m *lora.Module) []string {
	var ks []string
	for _, t := range m.Tensors {
		ks = append(ks, t.Key)
	}
	sort.Strings(ks)
	return ks
}

func (p *Plan) mapModule(i int, m *lora.Module, opt PlanOptions) {
	in := p.Inputs[i]
	t := *m.Target
	fail := func(reason string) {
		for _, k := range sortedTensors(m) {
			p.Unmatched = append(p.Unmatched, Issue{Input: i, Key: k, Reason: reason})
		}
	}
	skip := func(reason string) {
		for _, k := range sortedTensors(m) {
			p.Skipped = append(p.Skipped, Issue{Input: i, Key: k, Reason: reason})
		}
	}
	strength := in.StrengthModel
	if t.Component != arch.DiffusionModel {
		strength = in.StrengthClip
		if opt.ModelOnly {
			skip("text encoder " + t.Component + " (model-only merge)")
			return
		}
	}
	block, bw := in.LBW.Of(t)
	if bw == 0 {
		skip("block weight 0 (lbw)")
		return
	}
	strength *= bw
	algo, err := algoOf(m)
	if err != nil {
		fail(err.Error())
		return
	}
	if reason := zeroStrengthSkip(t, algo, loaderInput(in, opt)); reason != "" {
		skip(reason)
		return
	}
	place := func(param string) (arch.Placement, *safetensors.TensorInfo, string) {
		pl, err := p.Arch.Locate(t, p.Info, param)
		if err != nil {
			return pl, nil, err.Error()
		}
		ti, ok := p.Base.Lookup(pl.Key)
		if !ok {
			return pl, nil, "the checkpoint has no tensor " + pl.Key
		}
		return pl, &ti, ""
	}
	if algo != "" {
		pl, ti, reason := place("")
		if ti == nil {
			if t.Component != arch.DiffusionModel && !p.hasComponent(t.Component) {
				skip("the checkpoint has no " + t.Component + " text encoder")
				return
			}
			if t.Component == arch.DiffusionModel && p.Info.Layout == "text-encoder" {
				skip("the file is a text encoder; it has no diffusion model")
				return
			}
			if why := notStoredProjection(t); why != "" {
				skip(why)
				return
			}
			fail(reason)
			return
		}
		sl := pl.Slice
		var err error
		if sl != nil && len(t.Shape) > 0 {
			// slices are given for the full-size model; map them onto this
			// file's rows (reduced-size models, other widths)
			fullRows := t.Shape[0]
			if t.Slice == nil {
				fullRows = 3 * t.Shape[0] // open_clip: q/k/v thirds of in_proj
			}
			sl, err = arch.ScaleSlice(sl, fullRows, ti.Shape[0])
		}
		if err != nil {
			fail(err.Error())
			return
		}
		ti = p.reshaped(ti)
		if msg := shapeRules(m, algo, ti, sl, pl.Transposed); msg != "" {
			fail(msg)
			return
		}
		if msg := shapeCheck(m, algo, ti, sl, pl.Transposed); msg != "" {
			fail(msg)
			return
		}
		p.Patches = append(p.Patches, &Patch{Input: i, Module: m, Algo: algo, Key: pl.Key, Slice: sl, Swap: t.SwapScaleShift,
			Transpose: pl.Transposed, Strength: strength, Target: t, Block: block, BlockWeight: bw})
	}
	if m.Has(lora.RoleDiffB) || m.Has(lora.RoleBNorm) {
		if t.Slice != nil {
			fail("a bias delta on a slice of a fused weight (ComfyUI cannot apply it either)")
			return
		}
		pl, ti, reason := place(t.Module + ".bias")
		if ti == nil {
			fail(reason)
			return
		}
		p.Patches = append(p.Patches, &Patch{Input: i, Module: m, Algo: "full", Key: pl.Key, Bias: true, Strength: strength, Target: t, Block: block, BlockWeight: bw})
	}
	if algo == "" && !m.Has(lora.RoleDiffB) && !m.Has(lora.RoleBNorm) {
		fail("module has no adapter weights (only " + strings.Join(roleNames(m), ", ") + ")")
	}
}

func roleNames(m *lora.Module) []string {
	var rs []string
	for r := range m.Tensors {
		rs = append(rs, r)
	}
	sort.Strings(rs)
	return rs
}

func (p *Plan) hasComponent(comp string) bool {
	e, ok := p.Arch.Encoder(comp)
	if !ok {
		return false
	}
	if p.Info.Layout == "text-encoder" {
		return len(p.Info.Parts) == 1 && p.Info.Parts[0] == e.Part
	}
	for _, t := range p.Base.Tensors {
		if strings.HasPrefix(t.Name, e.CheckpointPrefix) {
			return true
		}
	}
	return false
}

// shapeCheck verifies the module's delta fits the (slice of the) tensor.
func shapeCheck(m *lora.Module, algo string, ti *safetensors.TensorInfo, sl *arch.Slice, transposed bool) string {
	rows, cols, ok := m.DeltaShape()
	if !ok || len(ti.Shape) == 0 {
		return ""
	}
	trows := ti.Shape[0]
	tcols := ti.NumElements() / max(trows, 1)
	if transposed && len(ti.Shape) == 2 {
		trows, tcols = ti.Shape[1], ti.Shape[0]
	}
	if sl != nil {
		if sl.Offset+sl.Size > trows {
			return fmt.Sprintf("rows %d..%d lie outside %s %v", sl.Offset, sl.Offset+sl.Size, ti.Name, ti.Shape)
		}
		trows = sl.Size
	}
	switch algo {
	case "full", "norm", "set":
		if rows*cols != trows*tcols {
			return fmt.Sprintf("shape mismatch: delta has %d×%d elements, %s is %v", rows, cols, ti.Name, ti.Shape)
		}
		return ""
	}
	if rows != trows || cols != tcols {
		return fmt.Sprintf("shape mismatch: delta is %d×%d, %s is %v%s", rows, cols, ti.Name, ti.Shape, sliceNote(sl))
	}
	return ""
}

func sliceNote(sl *arch.Slice) string {
	if sl == nil {
		return ""
	}
	return fmt.Sprintf(" rows %d..%d", sl.Offset, sl.Offset+sl.Size)
}

// Describe writes the mapping report of --dry-run.
func (p *Plan) Describe() []string {
	var out []string
	name := p.Arch.Name
	if p.Info.Variant != "" && p.Info.Arch == p.Arch {
		name = p.Info.Variant
	}
	out = append(out, fmt.Sprintf("base %s: %s (%s), %s layout", p.BasePath, p.Arch.ID, name, p.Info.Layout))
	for i, in := range p.Inputs {
		n := 0
		for _, pt := range p.Patches {
			if pt.Input == i {
				n++
			}
		}
		out = append(out, fmt.Sprintf("lora %d %s (%s): %d patches, %s%s", i+1, filepath.Base(in.Path), p.LoRAArch[i], n, p.strengthsText(i), lbwNote(in)))
	}
	for _, pt := range p.Patches {
		tgt := pt.Key
		if pt.Slice != nil {
			tgt += fmt.Sprintf("[rows %d:%d]", pt.Slice.Offset, pt.Slice.Offset+pt.Slice.Size)
		}
		extra := ""
		if pt.Swap {
			extra += ", shift/scale halves swapped"
		}
		if pt.Transpose {
			extra += ", transposed"
		}
		what := pt.Algo
		if pt.Bias {
			what = "bias delta"
		}
		if pt.Module.Has(lora.RoleDoRAScale) {
			what += "+dora"
		}
		out = append(out, fmt.Sprintf("  [%d] %s -> %s (%s, strength %g%s%s)", pt.Input+1, pt.Module.Prefix, tgt, what, pt.Strength, p.blockNote(pt), extra))
	}
	for _, s := range p.Skipped {
		out = append(out, fmt.Sprintf("  [%d] skipped %s: %s", s.Input+1, s.Key, s.Reason))
	}
	for _, u := range p.Unmatched {
		out = append(out, fmt.Sprintf("  [%d] NOT MATCHED %s: %s", u.Input+1, u.Key, u.Reason))
	}
	return out
}
