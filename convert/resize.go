package convert

import (
	"fmt"
	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/safetensors"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/svd"
)

// ResizeOptions controls a resize.
type ResizeOptions struct {
	// Rule chooses each module's rank; MaxRank caps it (0: no cap).
	Rule    svd.Rule
	MaxRank int
	// ConvRank is the rank (with a dynamic rule: the cap) of k×k
	// convolution modules (LoCon, Tucker); 0 treats them like the others.
	ConvRank int
	// DType converts the output (dtype.Invalid keeps the input's).
	DType       dtype.DType
	Approximate bool
	Overwrite   bool
	Version     string
	// MaxDense bounds, in elements, the dense delta a module may imply
	// (0: adapter.DefaultMaxDense).
	MaxDense int64
}

// ModuleReport is one module's outcome.
type ModuleReport struct {
	Module   string  `json:"module"`
	OldRank  int     `json:"old_rank"`
	Rank     int     `json:"rank"`
	Retained float64 `json:"retained_fro"`
	RelError float64 `json:"rel_error"`
	Kept     bool    `json:"unchanged,omitempty"`
}

// ResizeResult describes one resized file.
type ResizeResult struct {
	Input       string         `json:"input"`
	Output      string         `json:"output,omitempty"`
	Rule        string         `json:"rule"`
	Modules     []ModuleReport `json:"modules,omitempty"`
	Retained    float64        `json:"retained_fro"`  // over all modules: sqrt(Σ kept energy / Σ energy)
	MeanRetain  float64        `json:"mean_retained"` // mean of the per-module fractions
	MaxRelError float64        `json:"max_rel_error"`
	BytesOut    int64          `json:"bytes_out"`
	Error       string         `json:"error,omitempty"`
}

// Resize reduces the rank of every LoRA module of in with an exact SVD
// computed from the factors (QR of up and downᵀ, then an r×r SVD) and
// writes out. The scale alpha/r is folded into up, so the new alpha is the
// new rank (scale 1) and the delta is the truncated one.
func Resize(in, out string, opt ResizeOptions) (*ResizeResult, error) {
	res := &ResizeResult{Input: in, Output: out, Rule: opt.Rule.String()}
	if err := resizeFile(in, out, opt, res); err != nil {
		return res, nameInput(in, err)
	}
	return res, nil
}

func resizeFile(in, out string, opt ResizeOptions, res *ResizeResult) error {
	if err := opt.Rule.Validate(); err != nil {
		return err
	}
	src, err := openSource(in)
	if err != nil {
		return err
	}
	defer src.Close()
	meta := copyMeta(src.Metadata())
	refs := map[string]srcTensor{}
	var trefs []lora.TensorRef
	for _, t := range src.Tensors() {
		refs[t.Name] = t
		trefs = append(trefs, lora.TensorRef{Key: t.Name, Shape: t.Shape, DType: t.DType.String()})
	}
	an := lora.Analyze(trefs, meta)
	if len(an.Modules) == 0 {
		return fmt.Errorf("%w (no adapter tensors)", ErrNotLoRA)
	}
	// the architecture, when it can be told, gives each module's kernel
	an.FitArch(arch.All(), nil)
	if err := validateModules(an, opt.MaxDense); err != nil {
		return err
	}
	used := map[string]bool{}
	var ts []outTensor
	var bad []string
	var head, total float64
	var sumRet float64
	ranks := map[int]bool{}
	type slot struct {
		rep  moduleOutcome
		outs []outTensor
		err  error
	}
	slots := make([]slot, len(an.Modules))
	var todo []int
	approx := 0 // LyCORIS modules resized via their dense delta
	for i, m := range an.Modules {
		algos := m.Algorithms()
		plain := len(algos) > 0
		for _, a := range algos {
			plain = plain && (a == "lora" || a == "dora")
		}
		if (!plain || !m.Has(lora.RoleUp) || !m.Has(lora.RoleDown)) && !(opt.Approximate && denseResizable(m)) {
			bad = append(bad, m.Prefix+" ("+strings.Join(algos, "+")+")")
			continue
		}
		if !plain {
			approx++
		}
		todo = append(todo, i)
	}
	if len(bad) == 0 {
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < runtime.GOMAXPROCS(0); w++ {
			wg.Add(1)
			go func() {
				defer safetensors.Guard()()
				defer wg.Done()
				for i := range next {
					sl := &slots[i]
					sl.rep, sl.outs, sl.err = resizeAny(src, refs, an.Modules[i], opt)
				}
			}()
		}
		for _, i := range todo {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	for _, i := range todo {
		m, sl := an.Modules[i], slots[i]
		if sl.err != nil {
			return fmt.Errorf("module %s: %v", m.Prefix, sl.err)
		}
		rep := sl.rep
		for _, ref := range m.Tensors {
			used[ref.Key] = true
		}
		ts = append(ts, sl.outs...)
		res.Modules = append(res.Modules, rep.ModuleReport)
		head += rep.head
		total += rep.total
		sumRet += rep.Retained
		res.MaxRelError = math.Max(res.MaxRelError, rep.RelError)
		ranks[rep.Rank] = true
	}
	if len(bad) > 0 {
		hint := " (LoKr, LoHa and full diffs: use --approximate)"
		if opt.Approximate {
			hint = ""
		}
		return fmt.Errorf("resize handles plain LoRA/LoCon/Tucker modules only%s; %d modules are not: %s", hint, len(bad), list(bad))
	}
	// everything else (embeddings, unknown keys) is carried unchanged
	for _, t := range src.Tensors() {
		if !used[t.Name] {
			b, err := src.Read(t)
			if err != nil {
				return err
			}
			ts = append(ts, outTensor{name: t.Name, v: &val{dt: t.DType, shape: t.Shape, raw: b}})
		}
	}
	res.Retained = 1
	if total > 0 {
		res.Retained = math.Sqrt(head / total)
	}
	if n := len(res.Modules); n > 0 {
		res.MeanRetain = sumRet / float64(n)
	}
	dim := "Dynamic"
	if len(ranks) == 1 {
		for r := range ranks {
			dim = strconv.Itoa(r)
		}
	}
	old := meta["ss_network_dim"]
	if _, ok := meta["ss_network_dim"]; ok {
		meta["ss_network_dim"] = dim
	}
	if _, ok := meta["ss_network_alpha"]; ok {
		meta["ss_network_alpha"] = dim
		if dim != "Dynamic" {
			meta["ss_network_alpha"] = dim + ".0"
		}
	}
	note := fmt.Sprintf("rank resized from %s with %s (retained Frobenius %.4f)", orUnknown(old), opt.Rule, res.Retained)
	if approx > 0 {
		note += fmt.Sprintf("; %d LoKr/LoHa/full modules approximated as LoRA", approx)
	}
	if c, ok := meta["ss_training_comment"]; ok {
		meta["ss_training_comment"] = note + "; " + c
	}
	v := opt.Version
	if v == "" {
		v = "dev"
	}
	meta["loratool.resize"] = note + " by loratool " + v
	n, err := writeTensors(out, ts, opt.DType, meta, opt.Overwrite)
	if err != nil {
		return err
	}
	res.BytesOut = n
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

type moduleOutcome struct {
	ModuleReport
	head, total float64
}

// resizeModule computes the exact spectrum of scale·up@down from the
// factors and writes the truncated factors.
func resizeModule(src source, refs map[string]srcTensor, m *lora.Module, opt ResizeOptions) (moduleOutcome, []outTensor, error) {
	var oc moduleOutcome
	oc.Module = m.Prefix
	ld := func(role string) (*val, error) {
		t := refs[m.Tensors[role].Key]
		b, err := src.Read(t)
		if err != nil {
			return nil, err
		}
		v := &val{dt: t.DType, shape: t.Shape, raw: b}
		return v, checkFinite(v, t.Name)
	}
	up, err := ld(lora.RoleUp)
	if err != nil {
		return oc, nil, err
	}
	down, err := ld(lora.RoleDown)
	if err != nil {
		return oc, nil, err
	}
	if len(up.shape) < 2 || len(down.shape) < 2 || up.shape[1] != down.shape[0] {
		return oc, nil, fmt.Errorf("up %v and down %v do not multiply", up.shape, down.shape)
	}
	r := int(down.shape[0])
	rows := int(up.shape[0])
	oc.OldRank = r
	scale := 1.0
	var alphaV *val
	if m.Has(lora.RoleAlpha) {
		if alphaV, err = ld(lora.RoleAlpha); err != nil {
			return oc, nil, err
		}
		a, err := alphaV.floats()
		if err != nil || len(a) == 0 {
			return oc, nil, fmt.Errorf("unreadable alpha")
		}
		scale = float64(a[0]) / float64(r)
	}
	uf, err := up.floats()
	if err != nil {
		return oc, nil, err
	}
	df, err := down.floats()
	if err != nil {
		return oc, nil, err
	}
	downShape := down.shape
	if m.Has(lora.RoleMid) {
		mid, err := ld(lora.RoleMid)
		if err != nil {
			return oc, nil, err
		}
		mf, err := mid.floats()
		if err != nil {
			return oc, nil, err
		}
		if len(mid.shape) != 4 || int(mid.shape[0]) != r || int(mid.shape[1]) != r {
			return oc, nil, fmt.Errorf("Tucker mid %v does not match rank %d", mid.shape, r)
		}
		in := 1
		for _, d := range down.shape[1:] {
			in *= int(d)
		}
		kk := int(mid.shape[2] * mid.shape[3])
		// D[a, c, y, x] = Σ_b mid[a, b, y, x] · down[b, c]
		nd := make([]float32, r*in*kk)
		for a := 0; a < r; a++ {
			for c := 0; c < in; c++ {
				for p := 0; p < kk; p++ {
					var s float64
					for b := 0; b < r; b++ {
						s += float64(mf[(a*r+b)*kk+p]) * float64(df[b*in+c])
					}
					nd[(a*in+c)*kk+p] = float32(s)
				}
			}
		}
		df = nd
		downShape = []int64{int64(r), int64(in), mid.shape[2], mid.shape[3]}
	}
	cols := len(df) / r
	f := svd.Factored{Up: svd.Dense{Rows: rows, Cols: r, Data: uf}, Down: svd.Dense{Rows: r, Cols: cols, Data: df}}
	spec, err := svd.Spectrum(f)
	if err != nil {
		return oc, nil, err
	}
	for i := range spec {
		spec[i] *= math.Abs(scale)
	}
	k := opt.Rule.Rank(spec, opt.MaxRank)
	if isConv := len(downShape) == 4 && downShape[2]*downShape[3] > 1; isConv && opt.ConvRank > 0 {
		k = convRank(opt, spec)
	}
	if k < 1 {
		k = 1
	}
	oc.Rank = k
	oc.Retained = svd.Retained(spec, k)
	oc.RelError = svd.RelError(spec, k)
	for i, s := range spec {
		oc.total += s * s
		if i < k {
			oc.head += s * s
		}
	}
	var outs []outTensor
	keepOthers := func() error {
		roles := make([]string, 0)
		for role := range m.Tensors {
			if role != lora.RoleUp && role != lora.RoleDown && role != lora.RoleAlpha && role != lora.RoleMid {
				roles = append(roles, role)
			}
		}
		sort.Strings(roles)
		for _, role := range roles {
			v, err := ld(role)
			if err != nil {
				return err
			}
			outs = append(outs, outTensor{m.Tensors[role].Key, v})
		}
		return nil
	}
	if k >= r || k >= len(spec) && k >= r {
		// already at or below the rank: unchanged
		oc.Rank, oc.Kept = r, true
		oc.Retained, oc.RelError = 1, 0
		oc.head = oc.total
		for _, role := range []string{lora.RoleUp, lora.RoleDown, lora.RoleAlpha, lora.RoleMid} {
			if m.Has(role) {
				v, err := ld(role)
				if err != nil {
					return oc, nil, err
				}
				outs = append(outs, outTensor{m.Tensors[role].Key, v})
			}
		}
		return oc, outs, keepOthers()
	}
	dec, err := svd.FromFactors(f, k)
	if err != nil {
		return oc, nil, err
	}
	k = dec.Rank()
	oc.Rank = k
	// up' = U·S·scale, down' = Vt; alpha' = k (scale 1)
	nu := make([]float32, rows*k)
	for i := 0; i < rows; i++ {
		for j := 0; j < k; j++ {
			nu[i*k+j] = float32(float64(dec.U.Data[i*dec.U.Cols+j]) * float64(dec.S[j]) * scale)
		}
	}
	nd := dec.Vt.Data[:k*cols]
	upShape := append([]int64{int64(rows), int64(k)}, up.shape[2:]...)
	dShape := append([]int64{int64(k)}, downShape[1:]...)
	upKey, downKey := m.Tensors[lora.RoleUp].Key, m.Tensors[lora.RoleDown].Key
	outs = append(outs, outTensor{upKey, computed(up.dt, upShape, nu)}, outTensor{downKey, computed(down.dt, dShape, nd)})
	if alphaV != nil {
		outs = append(outs, outTensor{m.Tensors[lora.RoleAlpha].Key, computed(alphaDType(alphaV.dt), []int64{}, []float32{float32(k)})})
	}
	return oc, outs, keepOthers()
}

func alphaDType(d dtype.DType) dtype.DType {
	if d.IsFloat() && d.CanDecode() {
		return d
	}
	return dtype.F32
}
