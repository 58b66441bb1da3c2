package convert

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/lora"
)

// val is a tensor value: either raw bytes of the input (kept bit-exact when
// nothing changes) or float32 values computed by the converter.
type val struct {
	dt    dtype.DType
	shape []int64
	raw   []byte    // nil when computed
	f32   []float32 // decoded or computed values (nil until needed)
}

func (v *val) floats() ([]float32, error) {
	if v.f32 != nil {
		return v.f32, nil
	}
	n := int64(1)
	for _, d := range v.shape {
		n *= d
	}
	if !v.dt.IsFloat() || !v.dt.CanDecode() {
		return nil, fmt.Errorf("%v tensor cannot be used as float", v.dt)
	}
	out := make([]float32, n)
	if err := dtype.Decode(v.dt, v.raw, out); err != nil {
		return nil, err
	}
	v.f32 = out
	return out, nil
}

func computed(dt dtype.DType, shape []int64, f []float32) *val {
	return &val{dt: dt, shape: append([]int64(nil), shape...), f32: f}
}

// loraMod is the canonical form of one LoRA module: ΔW = up · diag(scale) ·
// down over the rows of its slice, in native row order.
type loraMod struct {
	up, down   *val // up [rows, r(,1,1)], down [r, cols...]
	mid        *val // Tucker core (kept only when the module is passed through)
	dora       *val // DoRA magnitude, LyCORIS layout
	diffB      *val // bias delta
	alpha      *val // original alpha tensor (nil: none)
	scale      []float64
	rows, r    int
	cols       int
	unchanged  bool // up/down/alpha are the input's bytes
	uniformSrc bool // every column had the same scale in the input
}

// module is one input module placed on its native target.
type module struct {
	src    *lora.Module
	t      arch.Target // as resolved; Slice is full-size
	act    *arch.Slice // actual rows inside the native weight (nil: all)
	total  int64       // actual rows of the whole native weight
	algo   []string
	lora   *loraMod
	others map[string]*val // non-LoRA algorithms: role → tensor
}

func (m *module) isLoRA() bool {
	for _, a := range m.algo {
		if a != "lora" && a != "dora" {
			return false
		}
	}
	return m.lora != nil
}

func (m *module) hasDoRA() bool {
	for _, a := range m.algo {
		if a == "dora" {
			return true
		}
	}
	return false
}

// peftConfig is the part of a PEFT LoraConfig that sets the scale.
type peftConfig struct {
	R            int                `json:"r"`
	LoRAAlpha    float64            `json:"lora_alpha"`
	RSLoRA       bool               `json:"use_rslora"`
	RankPattern  map[string]int     `json:"rank_pattern"`
	AlphaPattern map[string]float64 `json:"alpha_pattern"`
	found        string
}

// readPEFTConfig looks for adapter_config.json (or <stem>_adapter_config.json)
// beside the input, then for diffusers' lora_adapter_metadata.
func readPEFTConfig(path string, meta map[string]string) (*peftConfig, error) {
	dir := filepath.Dir(path)
	stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	for _, p := range []string{filepath.Join(dir, stem+"_adapter_config.json"), filepath.Join(dir, "adapter_config.json")} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var c peftConfig
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		c.found = p
		return &c, nil
	}
	if s, ok := meta["lora_adapter_metadata"]; ok {
		var c peftConfig
		if err := json.Unmarshal([]byte(s), &c); err == nil && c.LoRAAlpha != 0 {
			c.found = "lora_adapter_metadata"
			return &c, nil
		}
	}
	return nil, nil
}

// scaleFor returns lora_alpha/r for a module path under the config.
func (c *peftConfig) scaleFor(prefix string, rank int) float64 {
	alpha := c.LoRAAlpha
	r := float64(rank)
	match := func(key string) bool {
		return prefix == key || strings.HasSuffix(prefix, "."+key)
	}
	for k, v := range c.AlphaPattern {
		if match(k) {
			alpha = v
		}
	}
	if alpha == 0 {
		return 1
	}
	if c.RSLoRA {
		return alpha / math.Sqrt(r)
	}
	return alpha / r
}

// loadModules reads and places every module of the analysed file.
func loadModules(src source, an *lora.Analysis, refs map[string]srcTensor, cfg *peftConfig) ([]*module, error) {
	var out []*module
	read := func(ref lora.TensorRef) (*val, error) {
		t := refs[ref.Key]
		b, err := src.Read(t)
		if err != nil {
			return nil, err
		}
		return &val{dt: t.DType, shape: t.Shape, raw: b}, nil
	}
	for _, m := range an.Modules {
		md := &module{src: m, t: *m.Target, algo: m.Algorithms()}
		// (a module with only a DoRA magnitude is no LoRA module: copied as is)
		isLoRA := len(md.algo) > 0 && (m.Has(lora.RoleUp) || m.Has(lora.RoleDown))
		for _, a := range md.algo {
			if a != "lora" && a != "dora" {
				isLoRA = false
			}
		}
		if isLoRA {
			for role := range m.Tensors {
				switch role {
				case lora.RoleUp, lora.RoleDown, lora.RoleMid, lora.RoleAlpha, lora.RoleDoRAScale, lora.RoleDiffB:
				default:
					isLoRA = false
				}
			}
		}
		if isLoRA && (!m.Has(lora.RoleUp) || !m.Has(lora.RoleDown)) {
			return nil, fmt.Errorf("module %s has only one of its up/down factors", m.Prefix)
		}
		if !isLoRA {
			md.others = map[string]*val{}
			for role, ref := range m.Tensors {
				v, err := read(ref)
				if err != nil {
					return nil, err
				}
				md.others[role] = v
			}
			rows, _, ok := m.DeltaShape()
			if ok {
				if err := md.place(rows); err != nil {
					return nil, err
				}
			} else if md.t.Slice != nil {
				return nil, fmt.Errorf("module %s: cannot tell the rows of its slice of %s", m.Prefix, md.t.Module)
			}
			if md.t.SwapScaleShift {
				return nil, fmt.Errorf("module %s: %s module on a scale/shift-swapped name is not supported", m.Prefix, strings.Join(md.algo, "+"))
			}
			out = append(out, md)
			continue
		}
		lm := &loraMod{unchanged: true}
		var err error
		if lm.up, err = read(m.Tensors[lora.RoleUp]); err != nil {
			return nil, err
		}
		if lm.down, err = read(m.Tensors[lora.RoleDown]); err != nil {
			return nil, err
		}
		for role, dst := range map[string]**val{lora.RoleMid: &lm.mid, lora.RoleDoRAScale: &lm.dora, lora.RoleDiffB: &lm.diffB, lora.RoleAlpha: &lm.alpha} {
			if ref, ok := m.Tensors[role]; ok {
				if *dst, err = read(ref); err != nil {
					return nil, err
				}
			}
		}
		us, ds := lm.up.shape, lm.down.shape
		if len(us) < 2 || len(ds) < 2 || us[1] != ds[0] {
			return nil, fmt.Errorf("module %s: up %v and down %v do not multiply", m.Prefix, us, ds)
		}
		for _, d := range us[2:] {
			if d != 1 {
				return nil, fmt.Errorf("module %s: up %v is not [out, r(,1,1)]", m.Prefix, us)
			}
		}
		lm.rows, lm.r = int(us[0]), int(us[1])
		lm.cols = 1
		for _, d := range ds[1:] {
			lm.cols *= int(d)
		}
		s := 1.0
		if lm.alpha != nil {
			a, err := lm.alpha.floats()
			if err != nil || len(a) < 1 {
				return nil, fmt.Errorf("module %s: unreadable alpha", m.Prefix)
			}
			s = float64(a[0]) / float64(lm.r)
		} else if cfg != nil && hasConvention(m, "peft") {
			s = cfg.scaleFor(m.Prefix, lm.r)
			lm.unchanged = s == 1
		}
		lm.scale = make([]float64, lm.r)
		for i := range lm.scale {
			lm.scale[i] = s
		}
		lm.uniformSrc = true
		md.lora = lm
		if err := md.place(int64(lm.rows)); err != nil {
			return nil, err
		}
		if md.t.SwapScaleShift {
			if err := lm.swapHalves(); err != nil {
				return nil, fmt.Errorf("module %s: %v", m.Prefix, err)
			}
			md.t.SwapScaleShift = false
		}
		out = append(out, md)
	}
	return out, nil
}

func hasConvention(m *lora.Module, c string) bool {
	for _, x := range m.Conventions {
		if x == c {
			return true
		}
	}
	return false
}

// place computes the actual slice of a module from its delta rows.
func (m *module) place(rows int64) error {
	if len(m.t.Shape) == 0 {
		m.total = rows
		return nil
	}
	full := m.t.Shape[0]
	if m.t.Slice == nil {
		m.total = rows
		return nil
	}
	if m.t.Slice.Size <= 0 || (rows*full)%m.t.Slice.Size != 0 {
		return fmt.Errorf("module %s: %d rows do not fit rows %d..%d of %s", m.src.Prefix, rows, m.t.Slice.Offset, m.t.Slice.Offset+m.t.Slice.Size, m.t.Module)
	}
	m.total = rows * full / m.t.Slice.Size
	sl, err := arch.ScaleSlice(m.t.Slice, full, m.total)
	if err != nil {
		return fmt.Errorf("module %s: %v", m.src.Prefix, err)
	}
	m.act = sl
	return nil
}

// swapHalves exchanges the two halves of the up rows (and of the bias
// delta): diffusers' norm_out stores (scale, shift), BFL (shift, scale).
func (lm *loraMod) swapHalves() error {
	if lm.rows%2 != 0 {
		return fmt.Errorf("%d rows cannot be swapped in halves", lm.rows)
	}
	up, err := lm.up.floats()
	if err != nil {
		return err
	}
	h := lm.rows / 2 * lm.r
	n := append(append([]float32(nil), up[h:]...), up[:h]...)
	lm.up = computed(lm.up.dt, lm.up.shape, n)
	if lm.diffB != nil {
		b, err := lm.diffB.floats()
		if err != nil {
			return err
		}
		k := len(b) / 2
		lm.diffB = computed(lm.diffB.dt, lm.diffB.shape, append(append([]float32(nil), b[k:]...), b[:k]...))
	}
	if lm.dora != nil {
		return fmt.Errorf("DoRA on a scale/shift-swapped module is not supported")
	}
	lm.unchanged = false
	return nil
}

// partition returns the non-overlapping alias slices (full-size) that
// cover a fused module, or nil when its diffusers name is whole.
func partition(a *arch.Arch, module string, full int64) []*arch.Slice {
	var sl []*arch.Slice
	for _, al := range a.DiffusersNames(module) {
		if al.Slice == nil {
			return nil
		}
		sl = append(sl, al.Slice)
	}
	sort.SliceStable(sl, func(i, j int) bool {
		if sl[i].Offset != sl[j].Offset {
			return sl[i].Offset < sl[j].Offset
		}
		return sl[i].Size < sl[j].Size
	})
	var out []*arch.Slice
	var cur int64
	for _, s := range sl {
		if s.Offset == cur {
			out = append(out, s)
			cur += s.Size
		}
	}
	if len(out) == 0 || cur != full {
		return nil
	}
	return out
}

// aliasSwap reports whether the alias naming (module, slice) stores its
// rows scale/shift-swapped.
func aliasSwap(a *arch.Arch, module string, sl *arch.Slice) bool {
	for _, al := range a.DiffusersNames(module) {
		if (al.Slice == nil && sl == nil) || (al.Slice != nil && sl != nil && *al.Slice == *sl) {
			return al.SwapScaleShift
		}
	}
	return false
}
