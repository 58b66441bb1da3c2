// Package convert implements `loratool convert` (LoRA formats kohya,
// comfy, diffusers and raw PEFT, exact fused↔split q/k/v, dtype
// conversion of LoRAs and full checkpoints, pickle-free import of PyTorch
// files) and `loratool resize` (exact factor-form SVD rank reduction).
package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/loratool/loratool/adapter"
	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/svd"
)

// Formats are the LoRA formats convert writes.
var Formats = []string{"kohya", "comfy", "diffusers", "peft"}

// Options controls a conversion.
type Options struct {
	// To is the target format ("" keeps names: dtype/container only).
	To string
	// DType converts every float tensor (dtype.Invalid keeps each dtype).
	DType dtype.DType
	// Arch forces the architecture (an arch ID); "" detects it.
	Arch string
	// Approximate converts modules the target format cannot express via
	// their dense delta and a truncated SVD of rank Rank (0: the module's
	// rank, or 32 when it has none).
	Approximate bool
	Rank        int
	// Overwrite replaces existing outputs.
	Overwrite bool
	// Version is loratool's version for the metadata note.
	Version string
	// MaxDense bounds, in elements, the dense delta a module may imply
	// (0: adapter.DefaultMaxDense).
	MaxDense int64
	// LoRAOnly refuses inputs without adapter tensors with ErrNotLoRA
	// (files found by a folder search are skipped that way).
	LoRAOnly bool
}

// ModuleError is the relative Frobenius error of an approximated module.
type ModuleError struct {
	Module   string  `json:"module"`
	Rank     int     `json:"rank"`
	RelError float64 `json:"rel_error"`
}

// Result describes one converted file.
type Result struct {
	Input  string `json:"input"`
	Output string `json:"output,omitempty"`
	Config string `json:"adapter_config,omitempty"`
	// Adapters are the per-model PEFT adapter folders (--to peft of a LoRA
	// with text-encoder modules).
	Adapters     []string      `json:"adapters,omitempty"`
	Kind         string        `json:"kind,omitempty"` // lora or checkpoint
	From         string        `json:"from,omitempty"`
	To           string        `json:"to,omitempty"`
	Arch         string        `json:"architecture,omitempty"`
	Modules      int           `json:"modules,omitempty"`
	Fused        int           `json:"fused,omitempty"`
	Split        int           `json:"split,omitempty"`
	Tensors      int           `json:"tensors"`
	BytesIn      int64         `json:"bytes_in"`
	BytesOut     int64         `json:"bytes_out"`
	Approximated []ModuleError `json:"approximated,omitempty"`
	// Embeddings lists the separate textual-inversion files written beside
	// the output (pivotal-tuning embeddings, non-kohya targets).
	Embeddings []string `json:"embeddings,omitempty"`
	Notes      []string `json:"notes,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// piece is one module of the output.
type piece struct {
	t      arch.Target // naming target (full-size slice)
	lm     *loraMod
	others map[string]*val
	src    string
}

// File converts one file. Errors name the input file.
func File(in, out string, opt Options) (*Result, error) {
	res := &Result{Input: in, Output: out, To: opt.To}
	err := convertFile(in, out, opt, res)
	if errors.Is(err, ErrNotLoRA) {
		return res, fmt.Errorf("%s: %w", in, err)
	}
	if err != nil {
		return res, nameInput(in, err)
	}
	return res, nil
}

func oneLine(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, "\n", "; ")
	return s
}

func convertFile(in, out string, opt Options, res *Result) error {
	if opt.To != "" && !validFormat(opt.To) {
		return fmt.Errorf("unknown format %q (want kohya, comfy, diffusers or peft)", opt.To)
	}
	src, err := openSource(in)
	if err != nil {
		return err
	}
	defer src.Close()
	res.BytesIn = src.Size()
	meta := copyMeta(src.Metadata())
	refs := map[string]srcTensor{}
	var trefs []lora.TensorRef
	for _, t := range src.Tensors() {
		refs[t.Name] = t
		trefs = append(trefs, lora.TensorRef{Key: t.Name, Shape: t.Shape, DType: t.DType.String()})
	}
	an := lora.Analyze(trefs, meta)
	if len(an.Modules) == 0 && opt.LoRAOnly {
		return ErrNotLoRA
	}
	if len(an.Modules) == 0 || opt.To == "" {
		if opt.To != "" {
			return fmt.Errorf("%w (no adapter tensors): only --dtype conversion applies to checkpoints", ErrNotLoRA)
		}
		res.Kind = "checkpoint"
		if len(an.Modules) > 0 {
			res.Kind = "lora"
		}
		return passthrough(src, out, opt, meta, res)
	}
	res.Kind = "lora"
	var forced *arch.Arch
	if opt.Arch != "" {
		a, ok := arch.ByID(opt.Arch)
		if !ok {
			return fmt.Errorf("unknown architecture %q (known: %s)", opt.Arch, strings.Join(arch.IDs(), ", "))
		}
		forced = a
	}
	fit := an.FitArch(arch.All(), forced)
	if fit.Arch == nil {
		return fmt.Errorf("cannot tell the architecture (%s); use --arch", fit.Evidence)
	}
	a := fit.Arch
	res.Arch = a.ID
	var bad []string
	for _, m := range fit.Unresolved {
		bad = append(bad, m.Prefix)
	}
	for _, o := range an.Other {
		bad = append(bad, o.Key)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d keys cannot be converted for %s: %s", len(bad), a.ID, list(bad))
	}
	if err := validateModules(an, opt.MaxDense); err != nil {
		return err
	}
	cfg, err := readPEFTConfig(in, meta)
	if err != nil {
		return err
	}
	if d, ok := src.(*peftDirSource); ok {
		cfg = d.cfg
	}
	mods, err := loadModules(src, an, refs, cfg)
	if err != nil {
		return err
	}
	res.From = detectFormat(mods)
	res.Modules = len(mods)
	pieces, err := plan(a, mods, opt, res)
	if err != nil {
		return err
	}
	ts, cfgOut, err := emit(a, pieces, opt.To)
	if err != nil {
		return err
	}
	embs, err := placeEmbeddings(src, refs, an, in, out, meta, opt, res)
	if err != nil {
		return err
	}
	ts = append(ts, embs...)
	if opt.To == "peft" && needsPEFTSplit(pieces) {
		return writePEFTModels(a, pieces, embeddingTensors(ts, an), out, meta, res.From, opt, res)
	}
	updateMeta(meta, pieces, res.From, opt)
	if opt.To == "diffusers" || opt.To == "peft" {
		delete(meta, "lora_adapter_metadata") // alphas are folded now
	}
	res.Tensors = len(ts)
	if opt.To == "peft" {
		res.Config = configPath(out)
		b, _ := json.MarshalIndent(cfgOut, "", "  ")
		if err := checkOut(res.Config, opt.Overwrite); err != nil {
			return err
		}
		if err := checkOut(out, opt.Overwrite); err != nil {
			return err
		}
		// the config is staged and renamed only once the tensors are
		// written: a failure leaves neither file behind
		tmp, err := stageFile(res.Config, append(b, '\n'))
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		n, err := writeTensors(out, ts, opt.DType, meta, opt.Overwrite)
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, res.Config); err != nil {
			return fmt.Errorf("%s: %v", res.Config, unwrapPath(err))
		}
		res.BytesOut = n
		return nil
	}
	if n := countSaturated(ts, opt.DType); n > 0 {
		res.Notes = append(res.Notes, saturatedNote(n))
	}
	n, err := writeTensors(out, ts, opt.DType, meta, opt.Overwrite)
	if err != nil {
		return err
	}
	res.BytesOut = n
	return nil
}

func validFormat(f string) bool {
	for _, x := range Formats {
		if x == f {
			return true
		}
	}
	return false
}

// configPath names the PEFT adapter config written beside out:
// adapter_config.json for adapter_model.safetensors, else
// <stem>_adapter_config.json (several outputs may share a folder).
func configPath(out string) string {
	dir, base := filepath.Dir(out), filepath.Base(out)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	if stem == "adapter_model" {
		return filepath.Join(dir, "adapter_config.json")
	}
	return filepath.Join(dir, stem+"_adapter_config.json")
}

func list(s []string) string {
	if len(s) > 12 {
		return strings.Join(s[:12], ", ") + fmt.Sprintf(" and %d more", len(s)-12)
	}
	return strings.Join(s, ", ")
}

func copyMeta(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func detectFormat(mods []*module) string {
	count := map[string]int{}
	for _, m := range mods {
		c := m.t.Convention
		if c == "bare" && hasConvention(m.src, "xlabs") {
			c = "xlabs"
		}
		count[c]++
	}
	best, n := "", 0
	for c, k := range count {
		if k > n || (k == n && c < best) {
			best, n = c, k
		}
	}
	return best
}

type groupKey struct{ comp, module string }

// desired returns the slices the target format names a module by (nil:
// the whole weight).
func desired(a *arch.Arch, comp, module string, full int64, format string) []*arch.Slice {
	if comp != arch.DiffusionModel {
		return nil
	}
	switch format {
	case "comfy":
		return nil
	case "kohya":
		if !a.KohyaDiffusers {
			return nil
		}
	}
	return partition(a, module, full)
}

// plan groups modules by native weight and fuses or splits them into the
// pieces the target format names.
func plan(a *arch.Arch, mods []*module, opt Options, res *Result) ([]*piece, error) {
	groups := map[groupKey][]*module{}
	var order []groupKey
	var unexpressible []string
	for _, m := range mods {
		if !m.isLoRA() {
			lyco := opt.To == "kohya" || opt.To == "comfy"
			if lyco && m.t.Slice == nil && desired(a, m.t.Component, m.t.Module, fullRows(m.t), opt.To) == nil {
				// kept as it is
			} else if lyco && m.t.Slice != nil && desired(a, m.t.Component, m.t.Module, fullRows(m.t), opt.To) != nil {
				// kept on its slice
			} else if opt.Approximate {
				lm, e, err := approximate(m, opt.Rank)
				if err != nil {
					return nil, fmt.Errorf("module %s: %v", m.src.Prefix, err)
				}
				res.Approximated = append(res.Approximated, e)
				m.lora, m.others, m.algo = lm, nil, []string{"lora"}
			} else {
				unexpressible = append(unexpressible, m.src.Prefix+" ("+strings.Join(m.algo, "+")+")")
			}
		} else if m.lora.mid != nil && (opt.To == "diffusers" || opt.To == "peft") {
			if opt.Approximate {
				lm, e, err := approximate(m, opt.Rank)
				if err != nil {
					return nil, fmt.Errorf("module %s: %v", m.src.Prefix, err)
				}
				res.Approximated = append(res.Approximated, e)
				m.lora = lm
			} else {
				unexpressible = append(unexpressible, m.src.Prefix+" (lora with Tucker mid)")
			}
		}
		k := groupKey{m.t.Component, m.t.Module}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], m)
	}
	if len(unexpressible) > 0 {
		return nil, fmt.Errorf("the %s format cannot express %d modules (use --approximate to convert them via their delta): %s", opt.To, len(unexpressible), list(unexpressible))
	}
	var out []*piece
	for _, k := range order {
		g := groups[k]
		t0 := g[0].t
		want := desired(a, k.comp, k.module, fullRows(t0), opt.To)
		if matches(g, want) {
			for _, m := range g {
				out = append(out, &piece{t: m.t, lm: m.lora, others: m.others, src: m.src.Prefix})
			}
			continue
		}
		for _, m := range g {
			if !m.isLoRA() {
				return nil, fmt.Errorf("module %s (%s) would have to be fused or split, which only plain LoRA allows", m.src.Prefix, strings.Join(m.algo, "+"))
			}
		}
		// fuse into the whole weight
		var whole *loraMod
		total := g[0].total
		if len(g) == 1 && g[0].act == nil {
			whole = g[0].lora
		} else {
			for _, m := range g {
				if m.act == nil {
					return nil, fmt.Errorf("module %s and a module on a slice of %s both adapt it", m.src.Prefix, k.module)
				}
			}
			var err error
			if whole, err = fuse(g, total); err != nil {
				return nil, err
			}
			res.Fused++
		}
		base := t0
		base.Slice, base.SwapScaleShift = nil, false
		if want == nil {
			out = append(out, &piece{t: base, lm: whole, src: g[0].src.Prefix})
			continue
		}
		acts := make([]*arch.Slice, len(want))
		for i, s := range want {
			sl, err := arch.ScaleSlice(s, fullRows(t0), total)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", k.module, err)
			}
			acts[i] = sl
		}
		parts, keep, err := split(whole, acts)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", g[0].src.Prefix, err)
		}
		res.Split++
		for i, p := range parts {
			if !keep[i] {
				continue
			}
			t := base
			t.Slice = want[i]
			out = append(out, &piece{t: t, lm: p, src: g[0].src.Prefix})
		}
	}
	return out, nil
}

func fullRows(t arch.Target) int64 {
	if len(t.Shape) == 0 {
		return 0
	}
	return t.Shape[0]
}

// matches reports whether the group's modules already sit on the slices
// the format wants (or on the whole weight when it wants that).
func matches(g []*module, want []*arch.Slice) bool {
	if want == nil {
		return len(g) == 1 && g[0].t.Slice == nil
	}
	for _, m := range g {
		if m.t.Slice == nil {
			return false
		}
		ok := false
		for _, s := range want {
			ok = ok || *s == *m.t.Slice
		}
		if !ok {
			return false
		}
	}
	seen := map[arch.Slice]bool{}
	for _, m := range g {
		if seen[*m.t.Slice] {
			return false
		}
		seen[*m.t.Slice] = true
	}
	return true
}

// approximate replaces a module by a plain LoRA of its dense delta.
func approximate(m *module, rank int) (*loraMod, ModuleError, error) {
	am := &adapter.Module{Tensors: map[string]*adapter.Tensor{}}
	if len(m.algo) != 1 && !(len(m.algo) == 2 && m.algo[1] == "lora") {
		return nil, ModuleError{}, fmt.Errorf("%s cannot be approximated", strings.Join(m.algo, "+"))
	}
	am.Algo = adapter.Algo(m.algo[0])
	tensors := m.others
	if m.lora != nil {
		am.Algo = adapter.LoRA
		tensors = map[string]*val{lora.RoleUp: m.lora.up, lora.RoleDown: m.lora.down}
		if m.lora.mid != nil {
			tensors[lora.RoleMid] = m.lora.mid
		}
		if m.lora.alpha != nil {
			tensors[lora.RoleAlpha] = m.lora.alpha
		}
	}
	var diffB *val
	for role, v := range tensors {
		if role == lora.RoleDiffB {
			diffB = v
			continue
		}
		f, err := v.floats()
		if err != nil {
			return nil, ModuleError{}, err
		}
		sh := make([]int, len(v.shape))
		for i, d := range v.shape {
			sh[i] = int(d)
		}
		if role == lora.RoleWNorm {
			role = adapter.RoleDiff
		}
		am.Tensors[role] = &adapter.Tensor{Shape: sh, Data: f}
	}
	rows, cols, ok := m.src.DeltaShape()
	if !ok {
		return nil, ModuleError{}, fmt.Errorf("the delta's shape is unknown")
	}
	shape := []int{int(rows), int(cols)}
	var downShape []int64
	if len(m.t.Shape) > 2 {
		inner := int64(1)
		for _, d := range m.t.Shape[2:] {
			inner *= d
		}
		if cols%inner == 0 {
			shape = []int{int(rows), int(cols / inner)}
			downShape = []int64{0, cols / inner}
			for _, d := range m.t.Shape[2:] {
				shape = append(shape, int(d))
				downShape = append(downShape, d)
			}
		}
	}
	if d, ok := tensors[lora.RoleDiff]; ok && len(d.shape) == len(shape) {
		shape = shape[:0]
		for _, x := range d.shape {
			shape = append(shape, int(x))
		}
	}
	dl, err := adapter.Delta(am, shape)
	if err != nil {
		return nil, ModuleError{}, err
	}
	k := rank
	if k <= 0 {
		k = adapter.Rank(am)
		if k <= 0 {
			k = 32
		}
	}
	k = min(k, int(rows), int(cols))
	res, err := svd.Randomized(svd.Dense{Rows: int(rows), Cols: int(cols), Data: dl.Data}, k, svd.Options{Seed: 1})
	if err != nil {
		return nil, ModuleError{}, err
	}
	up, down := res.Factors(k, svd.SplitUp)
	ret := res.RetainedTotal(k)
	relErr := math.Sqrt(math.Max(0, 1-ret*ret))
	ds := []int64{int64(k), cols}
	us := []int64{rows, int64(k)}
	if downShape != nil {
		ds = append([]int64{int64(k)}, downShape[1:]...)
		us = []int64{rows, int64(k), 1, 1}
	}
	dt := dtype.F32
	for _, v := range tensors {
		if v.dt.IsFloat() {
			dt = v.dt
			break
		}
	}
	lm := &loraMod{rows: int(rows), r: k, cols: int(cols), scale: make([]float64, k), uniformSrc: true,
		up: computed(dt, us, up.Data), down: computed(dt, ds, down.Data), diffB: diffB}
	for i := range lm.scale {
		lm.scale[i] = 1
	}
	return lm, ModuleError{Module: m.src.Prefix, Rank: k, RelError: relErr}, nil
}

// suffixes of the kohya/comfy family by role.
func lycoSuffix(role string) string {
	switch role {
	case lora.RoleUp:
		return ".lora_up.weight"
	case lora.RoleDown:
		return ".lora_down.weight"
	case lora.RoleMid:
		return ".lora_mid.weight"
	case lora.RoleIA3Weight:
		return ".weight"
	case "a1", "a2", "b1", "b2":
		return "." + role + ".weight"
	}
	return "." + role
}

// emit names every piece in the format and lays out its tensors. It
// returns the PEFT adapter config for format peft.
func emit(a *arch.Arch, pieces []*piece, format string) ([]outTensor, map[string]any, error) {
	var ts []outTensor
	ranks := map[string]int{}
	var targets []string
	for _, p := range pieces {
		prefix, err := a.LoRAPrefix(p.t, format)
		if err != nil {
			return nil, nil, fmt.Errorf("module %s: %v", p.src, err)
		}
		foreignName := p.t.Component == arch.DiffusionModel && (format == "diffusers" || format == "peft" || (format == "kohya" && (a.KohyaDiffusers || p.t.Slice != nil)))
		swap := foreignName && aliasSwap(a, p.t.Module, p.t.Slice)
		if p.lm == nil {
			if swap {
				return nil, nil, fmt.Errorf("module %s: scale/shift-swapped names support plain LoRA only", p.src)
			}
			roles := make([]string, 0, len(p.others))
			for r := range p.others {
				roles = append(roles, r)
			}
			sort.Strings(roles)
			for _, r := range roles {
				ts = append(ts, outTensor{name: prefix + lycoSuffix(r), v: p.others[r]})
			}
			continue
		}
		lm := *p.lm
		lm.scale = append([]float64(nil), p.lm.scale...)
		if swap {
			if err := lm.swapHalves(); err != nil {
				return nil, nil, fmt.Errorf("module %s: %v", p.src, err)
			}
		}
		switch format {
		case "kohya", "comfy":
			alpha := lm.alpha
			if !lm.unchanged || lm.alpha == nil {
				alpha = nil
				s, ok := lm.uniform()
				if ok && s == 1 && lm.unchanged {
					// no alpha in the input (scale 1): write alpha = rank so
					// every loader reads scale 1 explicitly (kohya's own
					// loaders and ComfyUI agree on it then)
					alpha = computed(dtype.F32, []int64{}, []float32{float32(lm.r)})
				} else {
					af := float32(s * float64(lm.r))
					if !ok || float64(af)/float64(lm.r) != s {
						if err := lm.foldDown(); err != nil {
							return nil, nil, err
						}
						af = float32(lm.r)
					}
					alpha = computed(dtype.F32, []int64{}, []float32{af})
				}
			}
			ts = append(ts, outTensor{prefix + ".lora_up.weight", lm.up}, outTensor{prefix + ".lora_down.weight", lm.down})
			if alpha != nil {
				ts = append(ts, outTensor{prefix + ".alpha", alpha})
			}
			if lm.mid != nil {
				ts = append(ts, outTensor{prefix + ".lora_mid.weight", lm.mid})
			}
			if lm.dora != nil {
				d := lm.dora
				if len(d.shape) == 1 { // PEFT magnitude [out] → LyCORIS [out, 1(,1,1)]
					sh := []int64{d.shape[0]}
					for range lm.down.shape[1:] {
						sh = append(sh, 1)
					}
					d = &val{dt: d.dt, shape: sh, raw: d.raw, f32: d.f32}
				}
				ts = append(ts, outTensor{prefix + ".dora_scale", d})
			}
			if lm.diffB != nil {
				ts = append(ts, outTensor{prefix + ".diff_b", lm.diffB})
			}
		case "diffusers", "peft":
			if lm.mid != nil {
				return nil, nil, fmt.Errorf("module %s: %s cannot express a Tucker LoRA", p.src, format)
			}
			if err := lm.foldDiffusers(); err != nil {
				return nil, nil, err
			}
			ts = append(ts, outTensor{prefix + ".lora_B.weight", lm.up}, outTensor{prefix + ".lora_A.weight", lm.down})
			if lm.dora != nil {
				d := lm.dora
				if len(d.shape) > 1 {
					n := int64(1)
					for _, x := range d.shape[1:] {
						n *= x
					}
					if n != 1 || d.shape[0] != int64(lm.rows) {
						return nil, nil, fmt.Errorf("module %s: DoRA magnitude %v is not along the output axis, which %s cannot express", p.src, d.shape, format)
					}
					d = &val{dt: d.dt, shape: []int64{d.shape[0]}, raw: d.raw, f32: d.f32}
				}
				ts = append(ts, outTensor{prefix + ".lora_magnitude_vector", d})
			}
			if lm.diffB != nil {
				ts = append(ts, outTensor{prefix + ".lora_B.bias", lm.diffB})
			}
			name := strings.TrimPrefix(prefix, "base_model.model.")
			ranks[name] = lm.r
			targets = append(targets, name)
		}
	}
	if format != "peft" {
		return ts, nil, nil
	}
	// most common rank as r; deviations in rank_pattern/alpha_pattern
	cnt := map[int]int{}
	for _, r := range ranks {
		cnt[r]++
	}
	best, n := 0, -1
	for r, c := range cnt {
		if c > n || (c == n && r < best) {
			best, n = r, c
		}
	}
	rp, ap := map[string]int{}, map[string]int{}
	for k, r := range ranks {
		if r != best {
			rp[k], ap[k] = r, r
		}
	}
	sort.Strings(targets)
	cfg := map[string]any{
		"peft_type": "LORA", "r": best, "lora_alpha": best, "target_modules": targets,
		"rank_pattern": rp, "alpha_pattern": ap, "use_rslora": false, "use_dora": hasDoRA(pieces),
		"lora_dropout": 0.0, "bias": "none", "init_lora_weights": true,
	}
	return ts, cfg, nil
}

func hasDoRA(ps []*piece) bool {
	for _, p := range ps {
		if p.lm != nil && p.lm.dora != nil {
			return true
		}
	}
	return false
}

// updateMeta updates ss_network_dim/alpha and notes the conversion.
func updateMeta(meta map[string]string, pieces []*piece, from string, opt Options) {
	ranks, alphas := map[int]bool{}, map[string]bool{}
	for _, p := range pieces {
		if p.lm == nil {
			continue
		}
		ranks[p.lm.r] = true
		s, ok := p.lm.uniform()
		if opt.To == "diffusers" || opt.To == "peft" {
			s, ok = 1, true
		}
		if ok {
			alphas[strconv.FormatFloat(s*float64(p.lm.r), 'f', -1, 64)] = true
		} else {
			alphas["x"] = true
		}
	}
	if _, ok := meta["ss_network_dim"]; ok && len(ranks) > 0 {
		meta["ss_network_dim"] = "Dynamic"
		if len(ranks) == 1 {
			for r := range ranks {
				meta["ss_network_dim"] = strconv.Itoa(r)
			}
		}
	}
	if _, ok := meta["ss_network_alpha"]; ok && len(alphas) > 0 {
		meta["ss_network_alpha"] = "Dynamic"
		if len(alphas) == 1 {
			for a := range alphas {
				if a != "x" {
					f, _ := strconv.ParseFloat(a, 64)
					meta["ss_network_alpha"] = strconv.FormatFloat(f, 'f', 1, 64)
				}
			}
		}
	}
	v := opt.Version
	if v == "" {
		v = "dev"
	}
	meta["loratool.convert"] = fmt.Sprintf("converted from %s to %s by loratool %s", from, opt.To, v)
}
