package merge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loratool/loratool/adapter"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/safetensors"
)

// Options control how a plan is executed.
type Options struct {
	// DType is the output dtype of floating-point tensors: "keep" (each
	// tensor keeps the base's dtype; default), or a dtype name such as
	// fp32, fp16, bf16, fp8 (e4m3fn), fp8_e5m2.
	DType     string
	Jobs      int // tensors computed in parallel (0 = cores)
	Overwrite bool
	// Progress is called with bytes written so far and the total.
	Progress func(written, total int64)
	// Version is recorded in the output metadata.
	Version string
	// AllowUnmatched applies what matches even when some LoRA tensors
	// match nothing (they stay listed in Report.Unmatched).
	AllowUnmatched bool
	// PatchedType is the GGUF type of patched tensors of a GGUF base
	// ("" keeps each tensor's own type).
	PatchedType string
}

// Report is the outcome of a merge.
type Report struct {
	Output         string   `json:"output"`
	Base           string   `json:"base"`
	Architecture   string   `json:"architecture"`
	LoRAs          []string `json:"loras"`
	Patches        int      `json:"patches"`
	PatchedTensors int      `json:"patched_tensors"`
	Tensors        int      `json:"tensors"`
	Unmatched      []Issue  `json:"unmatched"`
	Skipped        []Issue  `json:"skipped"`
	// ComfyIgnored are LoRA tensors loratool applies but ComfyUI's
	// LoraLoader ignores (a ComfyUI workflow renders without them).
	ComfyIgnored []Issue  `json:"comfyui_ignores"`
	Warnings     []string `json:"warnings"`
	// DeltaError is ‖stored − intended‖/‖intended‖ of the applied deltas
	// over the whole model: how much of the LoRA's change the output dtype
	// lost to rounding (0 for fp32 outputs).
	DeltaError float64 `json:"delta_rel_error"`
	// WorstTensor is the patched tensor whose delta lost most.
	WorstTensor     string  `json:"worst_tensor,omitempty"`
	WorstDeltaError float64 `json:"worst_tensor_delta_rel_error,omitempty"`
	Clamped         int     `json:"clamped_values"`
	// LossDType is the output dtype of the tensor that lost most.
	LossDType string `json:"loss_dtype,omitempty"`
	// TensorErrors lists, for GGUF bases, each patched tensor's
	// requantization loss.
	TensorErrors []TensorError `json:"tensor_delta_rel_errors,omitempty"`
	BytesWritten int64         `json:"bytes_written"`
	Seconds      float64       `json:"seconds"`
	DryRun       bool          `json:"dry_run,omitempty"`
}

// outDType decides a tensor's output dtype.
func outDType(in dtype.DType, want string) (dtype.DType, error) {
	if want == "" || want == "keep" || !in.IsFloat() {
		return in, nil
	}
	d, err := dtype.ParseUser(want)
	if err != nil {
		return 0, err
	}
	if !d.IsFloat() {
		return 0, fmt.Errorf("--dtype %s is not a floating-point type", want)
	}
	return d, nil
}

// scaleKeyOf finds the per-tensor scale of a scaled-fp8 weight ("X.scale_weight"
// in ComfyUI's older scaled_fp8 files, "X.weight_scale" in newer ones).
func (p *Plan) scaleKeyOf(key string) (safetensors.TensorInfo, bool) {
	mod, ok := strings.CutSuffix(key, ".weight")
	if !ok {
		return safetensors.TensorInfo{}, false
	}
	for _, k := range []string{mod + ".scale_weight", mod + ".weight_scale"} {
		if t, ok := p.Base.Lookup(k); ok && t.NumElements() == 1 && t.DType.IsFloat() {
			return t, true
		}
	}
	return safetensors.TensorInfo{}, false
}

func isFP8(d dtype.DType) bool { return d == dtype.F8E4M3 || d == dtype.F8E5M2 }

func fp8Max(d dtype.DType) float32 {
	if d == dtype.F8E5M2 {
		return dtype.MaxE5M2
	}
	return dtype.MaxE4M3
}

// Execute streams the merged checkpoint to out.
func (p *Plan) Execute(ctx context.Context, out string, opt Options) (*Report, error) {
	if p.gguf != nil {
		return p.executeGGUF(ctx, out, opt)
	}
	start := time.Now()
	rep := p.baseReport(out)
	if len(p.Unmatched) > 0 && !opt.AllowUnmatched {
		return rep, fmt.Errorf("%d LoRA tensors match nothing in %s (listed above; --allow-unmatched applies the rest)", len(p.Unmatched), filepath.Base(p.BasePath))
	}
	if !opt.Overwrite {
		if _, err := os.Stat(out); err == nil {
			return rep, fmt.Errorf("%s exists (use --overwrite)", out)
		}
	}
	if abs, err := filepath.Abs(out); err == nil {
		if babs, err := filepath.Abs(p.BasePath); err == nil && abs == babs {
			return rep, fmt.Errorf("the output would replace the base %s; choose another -o", out)
		}
	}
	ins := []string{p.BasePath}
	for _, in := range p.Inputs {
		ins = append(ins, in.Path)
	}
	if err := checkNotInput(out, ins...); err != nil {
		return rep, err
	}
	if len(p.Patches) == 0 && len(p.comfy.reshape) == 0 {
		return rep, ErrNothingApplies
	}
	// output specs
	specs := make([]safetensors.TensorSpec, 0, len(p.Base.Tensors))
	outDT := map[string]dtype.DType{}
	scaleOf := map[string]string{} // scale tensor → weight it scales
	for _, t := range p.Base.Tensors {
		d, err := outDType(t.DType, opt.DType)
		if err != nil {
			return rep, err
		}
		if st, ok := p.scaleKeyOf(t.Name); ok && isFP8(t.DType) {
			if d != t.DType {
				return rep, fmt.Errorf("%s is a scaled-fp8 checkpoint: changing its dtype is not supported (omit --dtype)", p.BasePath)
			}
			scaleOf[st.Name] = t.Name
		}
		outDT[t.Name] = d
		specs = append(specs, safetensors.TensorSpec{Name: t.Name, DType: d, Shape: p.outShape(t)})
	}
	meta, err := p.outputMetadata(opt)
	if err != nil {
		return rep, err
	}
	// scaled fp8: the new per-tensor scales must be known before the scale
	// tensors (F32, written before F8 weights in canonical order) are written
	newScale := map[string]float32{}
	for sk, wk := range scaleOf {
		if len(p.ByKey[wk]) == 0 {
			continue
		}
		ti, _ := p.Base.Lookup(wk)
		w, err := p.compute(ti)
		if err != nil {
			return rep, err
		}
		var amax float32
		for _, v := range w.Data {
			if a := float32(math.Abs(float64(v))); a > amax && !math.IsInf(float64(a), 0) {
				amax = a
			}
		}
		s := amax / fp8Max(ti.DType)
		if s == 0 {
			s = 1
		}
		newScale[sk] = s
		newScale[wk] = s
	}
	src, err := os.Open(p.BasePath)
	if err != nil {
		return rep, err
	}
	defer src.Close()
	w, err := safetensors.Create(out, specs, meta)
	if err != nil {
		return rep, err
	}
	defer w.Abort()
	p.Base.Advise(true)
	// a soft heap target: the collector works harder rather than letting
	// the heap grow to twice the few tensors actually in flight
	if limit := debug.SetMemoryLimit(-1); limit == math.MaxInt64 {
		debug.SetMemoryLimit(192 << 20)
		defer debug.SetMemoryLimit(limit)
	}
	if opt.Progress != nil {
		total := w.FileSize()
		w.SetProgress(func(n int64) { opt.Progress(n, total) })
	}
	order := w.Order()
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	type result struct {
		copyFrom bool // pass-through: copied file-to-file by the kernel
		data     []byte
		pooled   bool // data came from bufPool
		stats    tensorStats
		err      error
	}
	results := make([]chan result, len(order))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	// in-flight work is bounded by bytes, not tensors: computed tensors hold
	// float32 values plus their encoding; zero-copy tensors cost nothing,
	// so the workers can run ahead across them
	cost := make([]int64, len(order))
	var biggest int64
	for i, spec := range order {
		ti, _ := p.Base.Lookup(spec.Name)
		if len(p.ByKey[spec.Name]) > 0 || spec.DType != ti.DType || scaleOf[spec.Name] != "" || p.comfy.reshape[spec.Name] != nil {
			cost[i] = numel(p.outShape(ti)) * 6
			biggest = max(biggest, cost[i])
		}
	}
	budget := newBudget(max(64<<20, 2*biggest))
	work := make(chan int)
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for j := 0; j < jobs; j++ {
		wg.Add(1)
		go func() {
			defer safetensors.Guard()()
			defer wg.Done()
			for i := range work {
				spec := order[i]
				ti, _ := p.Base.Lookup(spec.Name)
				var r result
				if len(p.ByKey[spec.Name]) == 0 && spec.DType == ti.DType && scaleOf[spec.Name] == "" && p.comfy.reshape[spec.Name] == nil {
					r.copyFrom = true
				} else if s, ok := newScale[spec.Name]; ok && scaleOf[spec.Name] != "" {
					r.data = make([]byte, ti.End-ti.Begin)
					_, r.err = dtype.Encode(ti.DType, []float32{s}, r.data)
				} else {
					r.data, r.stats, r.err = p.produce(ti, spec.DType, newScale[spec.Name], scaledBase(p, ti))
					r.pooled = r.err == nil && (len(p.ByKey[spec.Name]) > 0 || spec.DType != ti.DType)
				}
				results[i] <- r
			}
		}()
	}
	go func() {
		defer safetensors.Guard()()
		defer close(work)
		for i := range order {
			if !budget.acquire(cctx, cost[i]) {
				return
			}
			select {
			case work <- i:
			case <-cctx.Done():
				return
			}
		}
	}()
	var agg tensorStats
	worst := -1.0
	for i, spec := range order {
		var r result
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			cancel()
			wg.Wait()
			return rep, ctx.Err()
		}
		budget.release(cost[i])
		if r.err != nil {
			cancel()
			wg.Wait()
			return rep, fmt.Errorf("%s: %v", spec.Name, r.err)
		}
		ti, _ := p.Base.Lookup(spec.Name)
		if r.copyFrom {
			err = w.WriteFrom(spec.Name, src, p.Base.DataOffset+ti.Begin, ti.End-ti.Begin)
		} else {
			err = w.Write(spec.Name, r.data)
		}
		if err != nil {
			cancel()
			wg.Wait()
			return rep, err
		}
		p.Base.Release(ti) // keep the resident set bounded on huge bases
		if r.pooled {
			putBytes(r.data)
		}
		if r.stats.patched {
			rep.PatchedTensors++
			agg.intended += r.stats.intended
			agg.lost += r.stats.lost
			agg.clamped += r.stats.clamped
			if r.stats.intended > 0 {
				e := math.Sqrt(r.stats.lost / r.stats.intended)
				if e > worst {
					worst, rep.WorstTensor, rep.WorstDeltaError = e, spec.Name, e
					rep.LossDType = dtypeName(spec.DType)
				}
			}
		}
	}
	wg.Wait()
	if err := w.Commit(); err != nil {
		return rep, err
	}
	if agg.intended > 0 {
		rep.DeltaError = math.Sqrt(agg.lost / agg.intended)
	}
	rep.Clamped = agg.clamped
	rep.BytesWritten = w.FileSize()
	rep.Seconds = time.Since(start).Seconds()
	if w := lossWarning(rep, len(scaleOf) > 0); w != "" {
		rep.Warnings = append(rep.Warnings, w)
	}
	return rep, nil
}

// scaledBase returns the base's per-tensor fp8 scale for t (1 when none).
func scaledBase(p *Plan, t safetensors.TensorInfo) float32 {
	if !isFP8(t.DType) {
		return 1
	}
	st, ok := p.scaleKeyOf(t.Name)
	if !ok {
		return 1
	}
	v, err := p.Base.Float32(st, nil)
	if err != nil || len(v) != 1 {
		return 1
	}
	return v[0]
}

type tensorStats struct {
	patched        bool
	sampled        bool    // measured on a sample of the values
	intended, lost float64 // Σ intended², Σ (stored − intended)²
	clamped        int
}

// produce returns the output bytes of one tensor.
func (p *Plan) produce(t safetensors.TensorInfo, out dtype.DType, newScale, baseScale float32) ([]byte, tensorStats, error) {
	var st tensorStats
	patches := p.ByKey[t.Name]
	raw := p.Base.Bytes(t)
	if len(patches) == 0 && out == t.DType && p.comfy.reshape[t.Name] == nil {
		return raw, st, nil // zero-copy from the mapping
	}
	if !t.DType.CanDecode() {
		return nil, st, fmt.Errorf("cannot convert %s", t.DType)
	}
	var w *adapter.Tensor
	if len(patches) == 0 && p.comfy.reshape[t.Name] == nil {
		v, err := p.Base.Float32(t, getF32(int(t.NumElements())))
		if err != nil {
			return nil, st, err
		}
		w = &adapter.Tensor{Shape: intShape(t.Shape), Data: v}
	} else {
		var err error
		w, err = p.compute(t)
		if err != nil {
			return nil, st, err
		}
		st.patched = true
	}
	s := float32(1)
	if newScale != 0 && newScale != 1 {
		s = newScale
		for i := range w.Data {
			w.Data[i] /= s
		}
	}
	n, err := dtype.Size(out, int64(len(w.Data)))
	if err != nil {
		return nil, st, err
	}
	buf := getBytes(int(n))
	defer putF32(w.Data)
	defer p.Base.Release(t) // the base bytes of a computed tensor are not needed again
	es, err := dtype.Encode(out, w.Data, buf)
	if err != nil {
		return nil, st, err
	}
	st.clamped = es.Clamped
	if st.patched {
		if err := checkOverflow(p.patchNames(t.Name), out, w.Data, buf); err != nil {
			return nil, st, err
		}
	}
	if st.patched && p.comfy.reshape[t.Name] == nil {
		// how much of the intended delta survived the output dtype,
		// compared chunk by chunk (no full-size scratch arrays)
		// large tensors are measured on a 1-in-8 sample of rows' chunks:
		// millions of values make the estimate tight, at an eighth of the cost
		const chunk = 1 << 16
		step := chunk
		if len(w.Data) > 1<<20 {
			step = 8 * chunk
			st.sampled = true
		}
		orig := make([]float32, chunk)
		back := make([]float32, chunk)
		ib, ob := t.DType.BitSize()/8, out.BitSize()/8
		for lo := 0; lo < len(w.Data); lo += step {
			hi := min(lo+chunk, len(w.Data))
			o, b := orig[:hi-lo], back[:hi-lo]
			if err := dtype.Decode(t.DType, raw[lo*ib:hi*ib], o); err != nil {
				return nil, st, err
			}
			if out == dtype.F32 {
				copy(b, w.Data[lo:hi])
			} else if err := dtype.Decode(out, buf[lo*ob:hi*ob], b); err != nil {
				return nil, st, err
			}
			for i := range o {
				ov := float64(o[i]) * float64(baseScale)
				intended := float64(w.Data[lo+i])*float64(s) - ov
				stored := float64(b[i])*float64(s) - ov
				if math.IsNaN(intended) || math.IsInf(intended, 0) {
					continue
				}
				st.intended += intended * intended
				st.lost += (stored - intended) * (stored - intended)
			}
		}
	}
	return buf, st, nil
}

func intShape(s []int64) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}

// compute decodes a base tensor to float32 (dequantising scaled fp8) and
// applies its patches in order.
func (p *Plan) compute(t safetensors.TensorInfo) (*adapter.Tensor, error) {
	v, err := p.baseFloat32(t, getF32(int(t.NumElements())))
	if err != nil {
		return nil, err
	}
	if s := scaledBase(p, t); s != 1 {
		for i := range v {
			v[i] *= s
		}
	}
	w := &adapter.Tensor{Shape: intShape(t.Shape), Data: v}
	w = p.pad(t, w)
	bad := nonFinite(w.Data)
	for _, pt := range p.ByKey[t.Name] {
		if err := p.apply(w, pt); err != nil {
			return nil, fmt.Errorf("%s from %s: %v", pt.Module.Prefix, filepath.Base(p.Inputs[pt.Input].Path), err)
		}
		if n := nonFinite(w.Data); n > bad {
			return nil, fmt.Errorf("%s from %s: the patched %s has %d NaN/Inf values (the math overflowed float32)", pt.Module.Prefix, filepath.Base(p.Inputs[pt.Input].Path), t.Name, n-bad)
		}
	}
	return w, nil
}

// apply runs one patch on the weight (or its row slice).
func (p *Plan) apply(w *adapter.Tensor, pt *Patch) error {
	m, err := p.adapterModule(pt)
	if err != nil {
		return err
	}
	view := w
	if pt.Slice != nil {
		rows := w.Shape[0]
		rowLen := len(w.Data) / max(rows, 1)
		off, size := int(pt.Slice.Offset), int(pt.Slice.Size)
		shape := append([]int{size}, w.Shape[1:]...)
		view = &adapter.Tensor{Shape: shape, Data: w.Data[off*rowLen : (off+size)*rowLen]}
	}
	if pt.Transpose {
		if len(view.Shape) != 2 {
			return fmt.Errorf("cannot transpose a %d-D weight", len(view.Shape))
		}
		tv := transpose(view)
		if _, err := adapter.Apply(tv, m, p.adapterOptions(pt)); err != nil {
			return err
		}
		copy(view.Data, transpose(tv).Data)
		return nil
	}
	if pt.Swap {
		d, err := adapter.Delta(m, view.Shape)
		if err != nil {
			return fmt.Errorf("swapped shift/scale target: %v", err)
		}
		half := len(d.Data) / 2
		f := float32(pt.Strength)
		for i := 0; i < half; i++ {
			view.Data[i] += f * d.Data[half+i]
			view.Data[half+i] += f * d.Data[i]
		}
		return nil
	}
	res, err := adapter.Apply(view, m, p.adapterOptions(pt))
	if err != nil {
		return err
	}
	if res != view {
		return fmt.Errorf("the LoRA reshapes the weight (%v → %v), which a checkpoint merge cannot do", view.Shape, res.Shape)
	}
	return nil
}

func (p *Plan) adapterOptions(pt *Patch) adapter.Options {
	o := adapter.DefaultOptions(float32(pt.Strength))
	if p.lycoris {
		o.DoRAComfyQuirk, o.OFTStrengthSquared = false, false
	}
	if p.comfy.peftDoRA && isPEFTMagnitude(pt.Module) {
		o.DoRAComfyQuirk = false // PEFT: norms of W+ΔW
	}
	return o
}

func transpose(t *adapter.Tensor) *adapter.Tensor {
	r, c := t.Shape[0], t.Shape[1]
	out := &adapter.Tensor{Shape: []int{c, r}, Data: make([]float32, len(t.Data))}
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out.Data[j*r+i] = t.Data[i*c+j]
		}
	}
	return out
}

// adapterRoles maps grammar roles onto adapter roles.
var adapterRoles = map[string]string{
	lora.RoleWNorm: adapter.RoleDiff,
}

// adapterModule decodes a patch's LoRA tensors.
func (p *Plan) adapterModule(pt *Patch) (*adapter.Module, error) {
	lf := p.LoRAs[pt.Input]
	m := &adapter.Module{Algo: adapter.Algo(pt.Algo), Tensors: map[string]*adapter.Tensor{}}
	load := func(role, key string) error {
		ti, ok := lf.Lookup(key)
		if !ok {
			return fmt.Errorf("missing tensor %s", key)
		}
		v, err := lf.Float32(ti, nil)
		if err != nil {
			return err
		}
		lf.Release(ti)
		if n := nonFinite(v); n > 0 {
			return fmt.Errorf("tensor %s holds %d NaN/Inf values", key, n)
		}
		m.Tensors[role] = &adapter.Tensor{Shape: intShape(ti.Shape), Data: v}
		return nil
	}
	if pt.Bias {
		m.Algo = adapter.Diff
		ref, ok := pt.Module.Tensors[lora.RoleDiffB]
		if !ok {
			ref = pt.Module.Tensors[lora.RoleBNorm]
		}
		return m, load(adapter.RoleDiff, ref.Key)
	}
	for role, ref := range pt.Module.Tensors {
		switch role {
		case lora.RoleDiffB, lora.RoleBNorm:
			continue
		}
		if role == lora.RoleDoRAScale && isPEFTMagnitude(pt.Module) && !p.comfy.peftDoRA {
			continue // ComfyUI ignores PEFT's magnitude: a plain LoRA
		}
		ar := role
		if r, ok := adapterRoles[role]; ok {
			ar = r
		}
		if err := load(ar, ref.Key); err != nil {
			return nil, err
		}
	}
	if ds, ok := m.Tensors[adapter.RoleDoRAScale]; ok && len(ds.Shape) == 1 {
		// PEFT lora_magnitude_vector [out] is the output-axis magnitude
		ds.Shape = []int{ds.Shape[0], 1}
	}
	if a, ok := m.Tensors[lora.RoleAlpha]; ok {
		if len(a.Data) != 1 {
			return nil, fmt.Errorf("alpha is not a scalar")
		}
		v := a.Data[0]
		m.Alpha = &v
		delete(m.Tensors, lora.RoleAlpha)
	}
	return m, nil
}

func (p *Plan) baseReport(out string) *Report {
	r := &Report{Output: out, Base: p.BasePath, Architecture: p.Arch.ID, Patches: len(p.Patches), Tensors: len(p.Base.Tensors),
		Unmatched: p.Unmatched, Skipped: p.Skipped, Warnings: append([]string(nil), p.Warnings...)}
	if r.Unmatched == nil {
		r.Unmatched = []Issue{}
	}
	if r.Skipped == nil {
		r.Skipped = []Issue{}
	}
	r.ComfyIgnored = append([]Issue{}, p.ComfyIgnored...)
	for _, in := range p.Inputs {
		r.LoRAs = append(r.LoRAs, in.Path)
	}
	return r
}

// dataHash is the SHA-256 of a safetensors file's data section (AutoV3,
// kohya's sshs_model_hash).
func dataHash(f *safetensors.File) (string, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	if _, err := fh.Seek(f.DataOffset, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type mergedLoRA struct {
	File          string   `json:"file"`
	StrengthModel float64  `json:"strength_model"`
	StrengthClip  *float64 `json:"strength_clip,omitempty"` // only when text encoders were patched
	SHA256Data    string   `json:"sshs_model_hash"`
	Architecture  string   `json:"architecture"`
	LBW           string   `json:"lbw,omitempty"` // block weights (lbw= spec)
}

// outputMetadata keeps the base's metadata and records the merged LoRAs.
func (p *Plan) outputMetadata(opt Options) (map[string]string, error) {
	meta := map[string]string{}
	for k, v := range p.Base.Metadata {
		meta[k] = v
	}
	var list []mergedLoRA
	var titles []string
	if prev := meta["modelspec.merged_from"]; prev != "" {
		titles = append(titles, prev)
	}
	for i, in := range p.Inputs {
		h, err := dataHash(p.LoRAs[i])
		if err != nil {
			return nil, err
		}
		name := filepath.Base(in.Path)
		clip := p.appliedClip(i)
		list = append(list, mergedLoRA{File: name, StrengthModel: in.StrengthModel, StrengthClip: clip, SHA256Data: h, Architecture: p.LoRAArch[i], LBW: in.LBW.spec()})
		title := p.LoRAs[i].Metadata["modelspec.title"]
		if title == "" {
			title = strings.TrimSuffix(name, filepath.Ext(name))
		}
		titles = append(titles, mergedFromEntry(title, in.StrengthModel, p.mergedFromClip(i)))
	}
	var prev []mergedLoRA
	if old := meta["loratool.merged_loras"]; old != "" {
		json.Unmarshal([]byte(old), &prev)
	}
	b, _ := json.Marshal(append(prev, list...))
	meta["loratool.merged_loras"] = string(b)
	meta["modelspec.merged_from"] = strings.Join(titles, ",")
	if meta["modelspec.architecture"] == "" && p.Arch.ModelSpec != "" {
		meta["modelspec.architecture"] = p.Arch.ModelSpec
	}
	if meta["modelspec.sai_model_spec"] == "" {
		meta["modelspec.sai_model_spec"] = "1.0.1"
	}
	v := opt.Version
	if v == "" {
		v = "dev"
	}
	meta["loratool.version"] = v
	delete(meta, "sshs_model_hash") // the data changed
	delete(meta, "sshs_legacy_hash")
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return meta, nil
}

// Buffer caches: merging a checkpoint decodes and encodes hundreds of
// large tensors; reusing a few buffers keeps the heap flat and avoids
// zeroing fresh memory. (sync.Pool is emptied by every GC, which here runs
// often under the soft memory limit.)
type cache[T any] struct {
	mu   sync.Mutex
	bufs [][]T
}

const cacheSlots = 2

func (c *cache[T]) get(n int) []T {
	c.mu.Lock()
	best := -1
	for i, b := range c.bufs {
		if cap(b) >= n && (best < 0 || cap(b) < cap(c.bufs[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := c.bufs[best]
		c.bufs = append(c.bufs[:best], c.bufs[best+1:]...)
		c.mu.Unlock()
		return b[:n]
	}
	c.mu.Unlock()
	return make([]T, n)
}

func (c *cache[T]) put(b []T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bufs = append(c.bufs, b)
	if len(c.bufs) > cacheSlots {
		small := 0
		for i, x := range c.bufs {
			if cap(x) < cap(c.bufs[small]) {
				small = i
			}
		}
		c.bufs = append(c.bufs[:small], c.bufs[small+1:]...)
	}
}

var (
	f32Cache  cache[float32]
	byteCache cache[byte]
)

func getF32(n int) []float32 { return f32Cache.get(n) }
func putF32(b []float32)     { f32Cache.put(b) }
func getBytes(n int) []byte  { return byteCache.get(n) }
func putBytes(b []byte)      { byteCache.put(b) }

// budget is a byte-weighted semaphore.
type budget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	free  int64
	total int64
}

func newBudget(n int64) *budget {
	b := &budget{free: n, total: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire waits for n bytes (at most the total); false if ctx ends first.
func (b *budget) acquire(ctx context.Context, n int64) bool {
	n = min(n, b.total)
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.free < n {
		if ctx.Err() != nil {
			return false
		}
		b.cond.Wait()
	}
	b.free -= n
	return true
}

func (b *budget) release(n int64) {
	n = min(n, b.total)
	b.mu.Lock()
	b.free += n
	b.cond.Broadcast()
	b.mu.Unlock()
}
