package merge

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/cliutil"
	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/safetensors"
	"github.com/loratool/loratool/svd"
)

// LoRAMergeOptions control a LoRA+LoRA merge.
type LoRAMergeOptions struct {
	Arch      string // force the architecture
	Rank      int    // re-compress each module to this rank (0: exact)
	Rule      string // dynamic rank rule (sv_fro:0.95 ...), capped by Rank when both are given
	DType     string // output dtype ("" = the first LoRA's)
	Format    string // output naming: kohya (default), comfy, diffusers
	Overwrite bool
	Version   string
}

// ModuleResult reports one output module of a LoRA merge.
type ModuleResult struct {
	Name     string  `json:"name"`
	Sources  int     `json:"sources"`
	Rank     int     `json:"rank"`
	Retained float64 `json:"retained"` // Frobenius fraction kept (1 for exact merges)
}

// LoRAMergeReport is the outcome of a LoRA+LoRA merge.
type LoRAMergeReport struct {
	Output       string         `json:"output"`
	Architecture string         `json:"architecture"`
	LoRAs        []string       `json:"loras"`
	Modules      []ModuleResult `json:"modules"`
	Exact        bool           `json:"exact"`
	Retained     float64        `json:"retained"` // overall Frobenius fraction kept
	RankMin      int            `json:"rank_min"`
	RankMax      int            `json:"rank_max"`
}

// contribution is one LoRA module's factors landing on one native weight.
type contribution struct {
	up        []float32 // rows × r (rows of the slice)
	down      []float32 // r × cols
	r         int
	rowOffset int
	coef      float64 // strength × alpha/rank
	conv      []int64 // down's trailing kernel dims, nil for linear
}

type group struct {
	target arch.Target // unsliced native weight
	rows   int
	cols   int
	upTail []int64 // trailing dims of up (conv: 1,1)
	kernel []int64
	parts  []contribution
}

// MergeLoRAs merges several LoRAs into one LoRA file. The default is exact:
// ranks are concatenated and each LoRA's strength and alpha/rank are folded
// into the factors (√|c| on each side, the sign on down), so the result's
// delta equals Σ strength·ΔW — unlike kohya's merge, which squares the
// strengths. With Rank or Rule each module's summed delta is re-compressed
// by an exact SVD computed from the concatenated factors.
func MergeLoRAs(inputs []Input, out string, opt LoRAMergeOptions) (*LoRAMergeReport, error) {
	if !opt.Overwrite {
		if _, err := os.Stat(out); err == nil {
			return nil, fmt.Errorf("%s exists (use --overwrite)", out)
		}
	}
	var rule *svd.Rule
	if opt.Rule != "" {
		r, err := svd.ParseRule(opt.Rule)
		if err != nil {
			return nil, err
		}
		rule = &r
	}
	format := opt.Format
	if format == "" {
		format = "kohya"
	}
	var forced *arch.Arch
	if opt.Arch != "" {
		a, ok := arch.ByID(opt.Arch)
		if !ok {
			return nil, fmt.Errorf("unknown architecture %q", opt.Arch)
		}
		forced = a
	}
	rep := &LoRAMergeReport{Output: out, Exact: rule == nil && opt.Rank == 0}
	groups := map[string]*group{}
	var order []string
	var a *arch.Arch
	var outDT dtype.DType
	var metas []map[string]string
	for i, in := range inputs {
		rep.LoRAs = append(rep.LoRAs, in.Path)
		f, err := safetensors.Open(in.Path)
		if err != nil {
			return nil, err
		}
		metas = append(metas, f.Metadata)
		refs := make([]lora.TensorRef, 0, len(f.Tensors))
		for _, t := range f.Tensors {
			refs = append(refs, lora.TensorRef{Key: t.Name, Shape: t.Shape, DType: t.DType.String()})
			if i == 0 && outDT == 0 && t.DType.IsFloat() && !strings.HasSuffix(t.Name, ".alpha") {
				outDT = t.DType
			}
		}
		an := lora.Analyze(refs, f.Metadata)
		fit := an.FitArch(arch.All(), forced)
		if fit.Arch == nil {
			f.Close()
			return nil, fmt.Errorf("%s: cannot tell the LoRA's architecture (pass --arch)", in.Path)
		}
		if a == nil {
			a = fit.Arch
			forced = a
		} else if fit.Arch != a {
			f.Close()
			return nil, fmt.Errorf("%s is a %s LoRA, %s is %s", in.Path, fit.Arch.ID, inputs[0].Path, a.ID)
		}
		if len(fit.Unresolved) > 0 || len(an.Other) > 0 {
			f.Close()
			return nil, fmt.Errorf("%s: %d modules and %d tensors match no %s module; nothing merged", in.Path, len(fit.Unresolved), len(an.Other), a.ID)
		}
		if err := in.LBW.Resolve(a); err != nil {
			f.Close()
			return nil, &UsageError{fmt.Sprintf("--lora %s: %v", in.Path, err)}
		}
		for _, m := range an.Modules {
			c, full, err := contributionOf(f, m, in)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %s: %v", in.Path, m.Prefix, err)
			}
			if c.coef == 0 {
				continue
			}
			key := full.Component + "\x00" + full.Module
			g := groups[key]
			if g == nil {
				rows := int(full.Shape[0])
				if m.Target.Slice != nil {
					// the fused weight's rows at this file's width
					rows = len(c.up) / c.r * int(full.Shape[0]) / int(m.Target.Slice.Size)
				}
				g = &group{target: full, rows: rows, cols: len(c.down) / c.r, kernel: c.conv}
				groups[key] = g
				order = append(order, key)
			}
			if g.cols != len(c.down)/c.r {
				f.Close()
				return nil, fmt.Errorf("%s: %s has %d input features, another LoRA has %d", in.Path, m.Prefix, len(c.down)/c.r, g.cols)
			}
			g.parts = append(g.parts, c)
		}
		f.Close()
	}
	rep.Architecture = a.ID
	if opt.DType != "" {
		d, err := dtype.ParseUser(opt.DType)
		if err != nil {
			return nil, err
		}
		outDT = d
	}
	if outDT == 0 {
		outDT = dtype.F16
	}
	sort.Strings(order)
	// build every module's factors (LoRAs are small; kept in memory)
	type outModule struct {
		name     string
		up, down []float32
		upShape  []int64
		dnShape  []int64
		rank     int
	}
	var mods []outModule
	var keptE, totalE float64
	for _, key := range order {
		g := groups[key]
		name, err := a.LoRAPrefix(g.target, format)
		if err != nil {
			return nil, err
		}
		R := 0
		for _, c := range g.parts {
			R += c.r
		}
		up := make([]float32, g.rows*R)
		down := make([]float32, R*g.cols)
		col := 0
		for _, c := range g.parts {
			su := float32(math.Sqrt(math.Abs(c.coef)))
			sd := su
			if c.coef < 0 {
				sd = -sd
			}
			srows := len(c.up) / c.r
			for i := 0; i < srows; i++ {
				for k := 0; k < c.r; k++ {
					up[(c.rowOffset+i)*R+col+k] = c.up[i*c.r+k] * su
				}
			}
			for k := 0; k < c.r; k++ {
				for j := 0; j < g.cols; j++ {
					down[(col+k)*g.cols+j] = c.down[k*g.cols+j] * sd
				}
			}
			col += c.r
		}
		rank, retained := R, 1.0
		if !rep.Exact {
			res, err := svd.FromFactors(svd.Factored{Up: svd.Dense{Rows: g.rows, Cols: R, Data: up}, Down: svd.Dense{Rows: R, Cols: g.cols, Data: down}}, min(R, g.rows, g.cols))
			if err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			spec := res.Spectrum()
			k := len(spec)
			if opt.Rank > 0 {
				k = min(k, opt.Rank)
			}
			if rule != nil {
				k = rule.Rank(spec, k)
			}
			k = max(k, 1)
			u, d := res.Factors(k, svd.SplitSqrt)
			up, down, rank = u.Data, d.Data, k
			retained = res.RetainedTotal(k)
			var e float64
			for _, s := range spec[:k] {
				e += s * s
			}
			keptE += e
			totalE += res.TotalFro2
		}
		upShape := []int64{int64(g.rows), int64(rank)}
		dnShape := []int64{int64(rank), int64(g.cols)}
		if g.kernel != nil {
			upShape = append(upShape, 1, 1)
			dnShape = []int64{int64(rank), int64(g.cols) / (g.kernel[0] * g.kernel[1]), g.kernel[0], g.kernel[1]}
		}
		mods = append(mods, outModule{name: name, up: up, down: down, upShape: upShape, dnShape: dnShape, rank: rank})
		rep.Modules = append(rep.Modules, ModuleResult{Name: name, Sources: len(g.parts), Rank: rank, Retained: retained})
		if rep.RankMin == 0 || rank < rep.RankMin {
			rep.RankMin = rank
		}
		rep.RankMax = max(rep.RankMax, rank)
	}
	rep.Retained = 1
	if totalE > 0 {
		rep.Retained = math.Sqrt(keptE / totalE)
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("nothing to merge (all strengths 0?)")
	}
	upSuf, downSuf, withAlpha := ".lora_up.weight", ".lora_down.weight", true
	if format == "diffusers" || format == "peft" {
		upSuf, downSuf, withAlpha = ".lora_B.weight", ".lora_A.weight", false
	}
	var specs []safetensors.TensorSpec
	data := map[string][]float32{}
	for _, m := range mods {
		specs = append(specs, safetensors.TensorSpec{Name: m.name + upSuf, DType: outDT, Shape: m.upShape},
			safetensors.TensorSpec{Name: m.name + downSuf, DType: outDT, Shape: m.dnShape})
		data[m.name+upSuf], data[m.name+downSuf] = m.up, m.down
		if withAlpha {
			specs = append(specs, safetensors.TensorSpec{Name: m.name + ".alpha", DType: outDT, Shape: []int64{}})
			data[m.name+".alpha"] = []float32{float32(m.rank)}
		}
	}
	meta := loraMergeMetadata(a, inputs, metas, rep, opt)
	w, err := safetensors.Create(out, specs, meta)
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	for _, s := range w.Order() {
		if _, err := w.WriteFloat32(s.Name, data[s.Name]); err != nil {
			return nil, err
		}
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return rep, nil
}

// contributionOf reads a plain LoRA module and its target.
func contributionOf(f *safetensors.File, m *lora.Module, in Input) (contribution, arch.Target, error) {
	var c contribution
	t := *m.Target
	for _, a := range m.Algorithms() {
		if a != "lora" {
			return c, t, fmt.Errorf("%s modules cannot be merged into a LoRA (only plain LoRA/LoCon)", a)
		}
	}
	if !m.Has(lora.RoleUp) || !m.Has(lora.RoleDown) {
		return c, t, fmt.Errorf("not a LoRA module")
	}
	read := func(role string) ([]float32, []int64, error) {
		ti, ok := f.Lookup(m.Tensors[role].Key)
		if !ok {
			return nil, nil, fmt.Errorf("missing %s", role)
		}
		v, err := f.Float32(ti, nil)
		return v, ti.Shape, err
	}
	up, us, err := read(lora.RoleUp)
	if err != nil {
		return c, t, err
	}
	down, ds, err := read(lora.RoleDown)
	if err != nil {
		return c, t, err
	}
	r := int(ds[0])
	if r == 0 || len(us) < 2 || int(us[1]) != r {
		return c, t, fmt.Errorf("up %v and down %v do not share a rank", us, ds)
	}
	if m.Has(lora.RoleMid) {
		mid, ms, err := read(lora.RoleMid)
		if err != nil {
			return c, t, err
		}
		if len(ms) != 4 || int(ms[0]) != r || int(ms[1]) != r {
			return c, t, fmt.Errorf("lora_mid %v does not fit rank %d", ms, r)
		}
		in := len(down) / r
		kh, kw := int(ms[2]), int(ms[3])
		nd := make([]float32, r*in*kh*kw)
		for p := 0; p < r; p++ {
			for q := 0; q < r; q++ {
				for h := 0; h < kh; h++ {
					for w := 0; w < kw; w++ {
						mv := mid[((p*r+q)*kh+h)*kw+w]
						for i := 0; i < in; i++ {
							nd[((p*in+i)*kh+h)*kw+w] += mv * down[q*in+i]
						}
					}
				}
			}
		}
		down = nd
		ds = []int64{int64(r), int64(in), int64(kh), int64(kw)}
	}
	scale := 1.0
	if m.Has(lora.RoleAlpha) {
		a, _, err := read(lora.RoleAlpha)
		if err != nil || len(a) != 1 {
			return c, t, fmt.Errorf("alpha is not a scalar")
		}
		scale = float64(a[0]) / float64(r)
	}
	s := in.StrengthModel
	if t.Component != arch.DiffusionModel {
		s = in.StrengthClip
	}
	_, bw := in.LBW.Of(t)
	s *= bw
	c = contribution{up: up, down: down, r: r, coef: s * scale}
	if len(ds) == 4 && (ds[2] != 1 || ds[3] != 1) {
		c.conv = []int64{ds[2], ds[3]}
	}
	full := t
	if t.Slice != nil {
		rows := int64(len(up) / r)
		// this file's slice rows: scale the full-size slice to the file's width
		c.rowOffset = int(t.Slice.Offset * rows / t.Slice.Size)
		full.Slice = nil
	}
	if t.SwapScaleShift {
		half := len(up) / r / 2
		sw := make([]float32, len(up))
		copy(sw, up[half*r:])
		copy(sw[half*r:], up[:half*r])
		c.up = sw
		full.SwapScaleShift = false
	}
	return c, full, nil
}

func loraMergeMetadata(a *arch.Arch, inputs []Input, metas []map[string]string, rep *LoRAMergeReport, opt LoRAMergeOptions) map[string]string {
	meta := map[string]string{
		"ss_network_module":        "networks.lora",
		"modelspec.sai_model_spec": "1.0.1",
		"loratool.version":         opt.Version,
	}
	if a.ModelSpec != "" {
		meta["modelspec.architecture"] = a.ModelSpec + "/lora"
	}
	if a.KohyaVersion != "" {
		meta["ss_base_model_version"] = a.KohyaVersion
	}
	if rep.RankMin == rep.RankMax {
		meta["ss_network_dim"] = strconv.Itoa(rep.RankMin)
		meta["ss_network_alpha"] = strconv.Itoa(rep.RankMin)
	} else {
		meta["ss_network_dim"], meta["ss_network_alpha"] = "Dynamic", "Dynamic"
	}
	var titles, triggers []string
	tags := map[string]map[string]float64{}
	var list []mergedLoRA
	for i, in := range inputs {
		m := metas[i]
		name := filepath.Base(in.Path)
		title := m["modelspec.title"]
		if title == "" {
			title = strings.TrimSuffix(name, filepath.Ext(name))
		}
		titles = append(titles, title)
		if tp := m["modelspec.trigger_phrase"]; tp != "" {
			triggers = append(triggers, tp)
		}
		var tf map[string]map[string]float64
		if json.Unmarshal([]byte(m["ss_tag_frequency"]), &tf) == nil {
			for dir, t := range tf {
				tags[title+"/"+dir] = t
			}
		}
		list = append(list, mergedLoRA{File: name, StrengthModel: in.StrengthModel, StrengthClip: in.StrengthClip, Architecture: a.ID, LBW: in.LBW.spec()})
	}
	meta["modelspec.merged_from"] = strings.Join(titles, ",")
	meta["modelspec.title"] = strings.TrimSuffix(filepath.Base(rep.Output), filepath.Ext(rep.Output))
	if len(triggers) > 0 {
		meta["modelspec.trigger_phrase"] = strings.Join(triggers, ", ")
	}
	if len(tags) > 0 {
		b, _ := json.Marshal(tags)
		meta["ss_tag_frequency"] = string(b)
	}
	b, _ := json.Marshal(list)
	meta["loratool.merged_loras"] = string(b)
	how := "exact (ranks concatenated, strengths and alphas folded in)"
	if !rep.Exact {
		how = fmt.Sprintf("re-compressed by SVD (rank %s, rule %q)", meta["ss_network_dim"], opt.Rule)
	}
	meta["ss_training_comment"] = "merged by loratool: " + how
	return meta
}

// loraMergeAction merges LoRAs into one LoRA (no --base).
func loraMergeAction(ctx context.Context, cmd *cli.Command, inputs []Input, out string) error {
	if cmd.Bool("dry-run") {
		return cliutil.Usage("--dry-run needs --base")
	}
	if cmd.Bool("model-only") || cmd.Bool("allow-unmatched") {
		return cliutil.Usage("--model-only and --allow-unmatched need --base")
	}
	dt := cmd.String("dtype")
	if dt == "keep" {
		dt = ""
	}
	rep, err := MergeLoRAs(inputs, out, LoRAMergeOptions{Arch: cmd.String("arch"), Rank: int(cmd.Int("rank")), Rule: cmd.String("rank-rule"),
		DType: dt, Overwrite: cmd.Bool("overwrite"), Version: Version})
	if err != nil {
		return failOrUsage(err)
	}
	if cmd.Bool("json") {
		return cliutil.NewJSONLines(os.Stdout).Write(rep)
	}
	how := "exact"
	if !rep.Exact {
		how = fmt.Sprintf("re-compressed, %.4f of the Frobenius norm kept", rep.Retained)
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %s LoRA, %d modules, rank %d..%d, %s\n", rep.Output, rep.Architecture, len(rep.Modules), rep.RankMin, rep.RankMax, how)
	return nil
}
