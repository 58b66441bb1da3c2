package convert

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/gguf"
	"github.com/loratool/loratool/internal/cliutil"
	"github.com/loratool/loratool/safetensors"
)

// GGUFResult is the outcome of a conversion to or from GGUF.
type GGUFResult struct {
	Input        string         `json:"input"`
	Output       string         `json:"output,omitempty"`
	Architecture string         `json:"architecture,omitempty"`
	Quant        string         `json:"quant,omitempty"`
	Types        map[string]int `json:"types"`
	Tensors      int            `json:"tensors"`
	Dropped      int            `json:"dropped,omitempty"` // tensors outside the diffusion model
	BytesWritten int64          `json:"bytes_written"`
	Error        string         `json:"error,omitempty"`
}

// GGUFOptions control a conversion to GGUF.
type GGUFOptions struct {
	Quant     gguf.Type
	Map       []gguf.QuantRule
	Arch      string
	Overwrite bool
	Jobs      int // goroutines quantizing each tensor (0: cores)
}

func ggufSourceType(d dtype.DType) (gguf.Type, bool) {
	switch d {
	case dtype.F32:
		return gguf.F32, true
	case dtype.BF16:
		return gguf.BF16, true
	case dtype.F16, dtype.F8E4M3, dtype.F8E5M2:
		return gguf.F16, true
	}
	return 0, false
}

// ToGGUF writes the diffusion model of the safetensors checkpoint in as a
// GGUF file that ComfyUI-GGUF loads: native tensor names without the
// checkpoint prefix, its architecture id, file type and quantization
// version, tensor types by gguf.Policy. Tensors are streamed one at a
// time; float tensors whose type does not change are copied byte for byte.
func ToGGUF(in, out string, opt GGUFOptions) (*GGUFResult, error) {
	res := &GGUFResult{Input: in, Quant: opt.Quant.String(), Types: map[string]int{}}
	if !opt.Overwrite {
		if _, err := os.Stat(out); err == nil {
			return res, fmt.Errorf("%s exists (use --overwrite)", out)
		}
	}
	f, err := safetensors.Open(in)
	if err != nil {
		return res, err
	}
	defer f.Close()
	view := arch.MapView{}
	for _, t := range f.Tensors {
		view[t.Name] = t.Shape
	}
	info := arch.DetectCheckpoint(view)
	a := info.Arch
	if opt.Arch != "" {
		x, ok := arch.ByID(opt.Arch)
		if !ok {
			return res, fmt.Errorf("unknown architecture %q (known: %s)", opt.Arch, strings.Join(arch.IDs(), ", "))
		}
		a = x
	}
	if a == nil {
		return res, fmt.Errorf("%s: not a diffusion model loratool knows (pass --arch)", in)
	}
	if info.Layout == "diffusers" {
		return res, fmt.Errorf("%s: diffusers-layout %s model; ComfyUI-GGUF needs the original (single-file) names", in, a.ID)
	}
	garch, ok := gguf.ComfyArch(a.ID)
	if !ok {
		return res, fmt.Errorf("%s: ComfyUI-GGUF has no architecture id for %s", in, a.ID)
	}
	res.Architecture = garch
	prefix := info.DiffusionPrefix
	pol := gguf.Policy{Arch: garch, Quant: opt.Quant, Map: opt.Map}
	type item struct {
		ti     safetensors.TensorInfo
		name   string
		src    gguf.Type
		choice gguf.Choice
	}
	var items []item
	kvs := []gguf.KV{{Key: "general.architecture", Value: garch}, {Key: "general.quantization_version", Value: uint32(gguf.QuantizationVersion)},
		{Key: "general.file_type", Value: gguf.FileType(opt.Quant)}}
	var specs []gguf.TensorSpec
	for _, t := range f.Tensors {
		name := t.Name
		if prefix != "" {
			rest, ok := strings.CutPrefix(name, prefix)
			if !ok {
				res.Dropped++
				continue
			}
			name = rest
		}
		src, ok := ggufSourceType(t.DType)
		if !ok {
			return res, fmt.Errorf("%s: tensor %s has dtype %v, which GGUF conversion does not take", in, t.Name, t.DType)
		}
		if len(t.Shape) == 0 {
			return res, fmt.Errorf("%s: tensor %s is a scalar; GGUF needs at least one dimension", in, t.Name)
		}
		c, err := pol.Choose(name, src, t.Shape)
		if err != nil {
			return res, fmt.Errorf("%s: %v", in, err)
		}
		if c.OrigShape != nil {
			o := make([]int32, len(c.OrigShape))
			for i, d := range c.OrigShape {
				o[i] = int32(d)
			}
			kvs = append(kvs, gguf.KV{Key: gguf.OrigShapeKey + name, Value: o})
		}
		items = append(items, item{t, name, src, c})
	}
	if len(items) == 0 {
		return res, fmt.Errorf("%s: no diffusion-model tensors", in)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].name < items[j].name })
	for _, it := range items {
		specs = append(specs, gguf.TensorSpec{Name: it.name, Type: it.choice.Type, Shape: it.choice.Shape})
		res.Types[it.choice.Type.String()]++
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return res, err
	}
	w, err := gguf.Create(out, kvs, specs)
	if err != nil {
		return res, err
	}
	defer w.Abort()
	f.Advise(true)
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	var buf []float32
	osf, err := os.Open(in)
	if err != nil {
		return res, err
	}
	defer osf.Close()
	for _, it := range items {
		sameBytes := it.choice.Type == gguf.F32 && it.ti.DType == dtype.F32 ||
			it.choice.Type == gguf.F16 && it.ti.DType == dtype.F16 ||
			it.choice.Type == gguf.BF16 && it.ti.DType == dtype.BF16
		if sameBytes {
			err = w.WriteFrom(it.name, osf, f.DataOffset+it.ti.Begin, it.ti.End-it.ti.Begin)
		} else {
			buf, err = f.Float32(it.ti, buf)
			if err == nil {
				err = w.WriteFloat32(it.name, buf, jobs)
			}
		}
		if err != nil {
			return res, err
		}
		f.Release(it.ti)
		if cap(buf) > 64<<20 {
			buf = nil
		}
	}
	if err := w.Commit(); err != nil {
		return res, err
	}
	res.Output, res.Tensors, res.BytesWritten = out, len(items), w.FileSize()
	return res, nil
}

// FromGGUF dequantizes every tensor of the GGUF file in to a safetensors
// file with dtype dt (tensors that were F32 in the GGUF stay F32 when dt
// is a 16-bit or 8-bit type and they are 1-D), restoring the original
// shapes of reshaped tensors.
func FromGGUF(in, out string, dt dtype.DType, overwrite bool) (*GGUFResult, error) {
	res := &GGUFResult{Input: in, Types: map[string]int{}}
	if !overwrite {
		if _, err := os.Stat(out); err == nil {
			return res, fmt.Errorf("%s exists (use --overwrite)", out)
		}
	}
	f, err := gguf.Open(in)
	if err != nil {
		return res, err
	}
	defer f.Close()
	res.Architecture, _ = f.GetString("general.architecture")
	specs := make([]safetensors.TensorSpec, 0, len(f.Tensors))
	byName := map[string]gguf.TensorInfo{}
	for _, t := range f.Tensors {
		if !t.Type.CanDequantize() {
			return res, fmt.Errorf("%s: tensor %s is %v, which loratool cannot dequantize", in, t.Name, t.Type)
		}
		shape, err := f.ModelShape(t)
		if err != nil {
			return res, &gguf.Error{Path: in, Msg: err.Error()}
		}
		specs = append(specs, safetensors.TensorSpec{Name: t.Name, DType: dt, Shape: shape})
		byName[t.Name] = t
		res.Types[t.Type.String()]++
	}
	meta := map[string]string{"format": "pt"}
	if res.Architecture != "" {
		meta["gguf.architecture"] = res.Architecture
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return res, err
	}
	w, err := safetensors.Create(out, specs, meta)
	if err != nil {
		return res, err
	}
	defer w.Abort()
	f.Advise(true)
	var buf []float32
	for _, s := range w.Order() {
		t := byName[s.Name]
		if buf, err = f.Float32(t, buf); err != nil {
			return res, err
		}
		if _, err := w.WriteFloat32(s.Name, buf); err != nil {
			return res, err
		}
		f.Release(t)
		if cap(buf) > 64<<20 {
			buf = nil
		}
	}
	if err := w.Commit(); err != nil {
		return res, err
	}
	res.Output, res.Tensors, res.BytesWritten = out, len(specs), w.FileSize()
	return res, nil
}

func isGGUFPath(p string) bool { return strings.EqualFold(filepath.Ext(p), ".gguf") }

// ggufAction runs `convert --to gguf` and `convert x.gguf --to safetensors`.
func ggufAction(_ context.Context, cmd *cli.Command) error {
	to := cmd.String("to")
	switch to {
	case "gguf":
		q := cmd.String("quant")
		if q == "" {
			return cliutil.Usage("--to gguf needs --quant (one of %s)", writableNames())
		}
		typ, err := gguf.ParseType(q)
		if err != nil || !typ.CanQuantize() {
			return cliutil.Usage("--quant %q: not a writable type (one of %s)", q, writableNames())
		}
		rules, err := gguf.ParseQuantMap(cmd.String("quant-map"))
		if err != nil {
			return cliutil.Usage("%v", err)
		}
		jobs, errs, _, err := parseBatch(cmd, "-"+typ.String(), []string{".safetensors"})
		if err != nil {
			return err
		}
		for i := range jobs {
			if cmd.String("output") == "" {
				jobs[i].out = strings.TrimSuffix(jobs[i].out, filepath.Ext(jobs[i].out)) + ".gguf"
			}
		}
		opt := GGUFOptions{Quant: typ, Map: rules, Arch: cmd.String("arch"), Overwrite: cmd.Bool("overwrite")}
		return batch(cmd, jobs, errs, func(j job) (any, error) {
			if isGGUFPath(j.in) {
				return &GGUFResult{Input: j.in}, fmt.Errorf("%s is already GGUF; convert it --to safetensors first", j.in)
			}
			return ToGGUF(j.in, j.out, opt)
		}, ggufText)
	case "safetensors":
		if cmd.String("quant") != "" || cmd.String("quant-map") != "" {
			return cliutil.Usage("--quant and --quant-map apply to --to gguf")
		}
		jobs, errs, dt, err := parseBatch(cmd, "", []string{".gguf"})
		if err != nil {
			return err
		}
		if dt == dtype.Invalid {
			dt = dtype.BF16
		}
		for i := range jobs {
			if cmd.String("output") == "" {
				jobs[i].out = strings.TrimSuffix(jobs[i].out, filepath.Ext(jobs[i].out)) + "-" + strings.ToLower(dtypeUser(dt)) + ".safetensors"
			}
		}
		return batch(cmd, jobs, errs, func(j job) (any, error) {
			if !isGGUFPath(j.in) {
				return &GGUFResult{Input: j.in}, fmt.Errorf("%s: --to safetensors converts .gguf files", j.in)
			}
			return FromGGUF(j.in, j.out, dt, cmd.Bool("overwrite"))
		}, ggufText)
	}
	return cliutil.Usage("GGUF files convert --to safetensors")
}

func dtypeUser(d dtype.DType) string {
	switch d {
	case dtype.BF16:
		return "bf16"
	case dtype.F16:
		return "fp16"
	case dtype.F32:
		return "fp32"
	}
	return d.String()
}

func writableNames() string {
	var s []string
	for _, t := range gguf.WritableTypes() {
		s = append(s, t.String())
	}
	return strings.Join(s, ", ")
}

func ggufText(r any) string {
	x := r.(*GGUFResult)
	var types []string
	for t, n := range x.Types {
		types = append(types, fmt.Sprintf("%s %d", t, n))
	}
	sort.Strings(types)
	s := fmt.Sprintf("%s → %s (%s, %d tensors: %s)", x.Input, x.Output, x.Architecture, x.Tensors, strings.Join(types, ", "))
	if x.Dropped > 0 {
		s += fmt.Sprintf("\n  note: %d tensors outside the diffusion model (text encoders, VAE) were left out", x.Dropped)
	}
	return s
}

func anyGGUF(args []string) bool {
	for _, a := range args {
		if isGGUFPath(a) {
			return true
		}
	}
	return false
}
