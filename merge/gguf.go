package merge

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/loratool/loratool/gguf"
	"github.com/loratool/loratool/safetensors"
)

// TensorError is the requantization loss of one patched tensor of a GGUF
// merge: the relative error of the delta that reached the file.
type TensorError struct {
	Tensor     string  `json:"tensor"`
	Type       string  `json:"type"`
	DeltaError float64 `json:"delta_rel_error"`
}

func isGGUF(path string) bool { return strings.EqualFold(filepath.Ext(path), ".gguf") }

// openBase opens a safetensors base, or a GGUF base together with its
// safetensors view (every tensor as F32 with its model shape), on which the
// plan maps LoRA modules exactly as for safetensors.
func openBase(path string) (*safetensors.File, *gguf.File, error) {
	if !isGGUF(path) {
		f, err := safetensors.Open(path)
		return f, nil, err
	}
	g, err := gguf.Open(path)
	if err != nil {
		return nil, nil, err
	}
	v, err := gguf.SafetensorsView(g)
	if err != nil {
		g.Close()
		return nil, nil, err
	}
	return v, g, nil
}

// baseFloat32 decodes base tensor t (from the GGUF when the base is one).
func (p *Plan) baseFloat32(t safetensors.TensorInfo, dst []float32) ([]float32, error) {
	if p.gguf == nil {
		return p.Base.Float32(t, dst)
	}
	gt, ok := p.gguf.Lookup(t.Name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %s", p.BasePath, t.Name)
	}
	return p.gguf.Float32(gt, dst)
}

// executeGGUF merges into a GGUF base: tensors no LoRA touches are copied
// byte for byte; each patched tensor is dequantized, patched in float32
// and requantized to its own type (or opt.PatchedType) with ggml's
// reference quantizer. The report gives the loss of the delta per tensor
// and overall, as for fp8 outputs.
func (p *Plan) executeGGUF(ctx context.Context, out string, opt Options) (*Report, error) {
	start := time.Now()
	rep := p.baseReport(out)
	g := p.gguf
	if len(p.Unmatched) > 0 {
		return rep, fmt.Errorf("%d LoRA tensors match nothing in %s (listed above; --allow-unmatched applies the rest)", len(p.Unmatched), filepath.Base(p.BasePath))
	}
	if opt.DType != "" && opt.DType != "keep" {
		return rep, fmt.Errorf("--dtype does not apply to GGUF bases; use --patched-type")
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
	var patched gguf.Type
	if opt.PatchedType != "" {
		t, err := gguf.ParseType(opt.PatchedType)
		if err != nil || !t.CanQuantize() {
			return rep, fmt.Errorf("--patched-type %q is not a writable GGUF type", opt.PatchedType)
		}
		patched = t
	}
	specs := make([]gguf.TensorSpec, len(g.Tensors))
	misfit := 0
	for i, t := range g.Tensors {
		typ := t.Type
		if len(p.ByKey[t.Name]) > 0 {
			if opt.PatchedType != "" && t.Dims[0]%uint64(patched.BlockSize()) == 0 {
				typ = patched
			} else if opt.PatchedType != "" {
				misfit++
			}
			if !typ.CanQuantize() {
				return rep, fmt.Errorf("%s: tensor %s is %v, which loratool reads but cannot write; pass --patched-type (e.g. Q8_0)", p.BasePath, t.Name, t.Type)
			}
			if t.Dims[0]%uint64(typ.BlockSize()) != 0 {
				return rep, fmt.Errorf("%s: tensor %s has rows of %d, not a multiple of the %v block size", p.BasePath, t.Name, t.Dims[0], typ)
			}
		}
		specs[i] = gguf.TensorSpec{Name: t.Name, Type: typ, Shape: t.Shape()}
	}
	if misfit > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d patched tensors keep their own type: their rows are not a multiple of the %v block size", misfit, patched))
	}
	kvs := append([]gguf.KV(nil), g.KV...)
	var merged []string
	for _, in := range p.Inputs {
		merged = append(merged, fmt.Sprintf("%s:%g", filepath.Base(in.Path), in.StrengthModel))
	}
	kvs = setKV(kvs, "loratool.merged_from", strings.Join(merged, ","))
	v := opt.Version
	if v == "" {
		v = "dev"
	}
	kvs = setKV(kvs, "loratool.version", v)
	w, err := gguf.Create(out, kvs, specs)
	if err != nil {
		return rep, err
	}
	defer w.Abort()
	if opt.Progress != nil {
		total := w.FileSize()
		w.SetProgress(func(n int64) { opt.Progress(n, total) })
	}
	g.Advise(true)
	// a soft heap target, as for safetensors merges
	if limit := debug.SetMemoryLimit(-1); limit == math.MaxInt64 {
		debug.SetMemoryLimit(192 << 20)
		defer debug.SetMemoryLimit(limit)
	}
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	// Patched tensors are computed by jobs workers ahead of the writer
	// (each holds one tensor's float32 values, bytes and loss scratch);
	// results are written in file order.
	type result struct {
		data []byte
		st   tensorStats
		err  error
	}
	var idx []int
	for i, t := range g.Tensors {
		if len(p.ByKey[t.Name]) > 0 {
			idx = append(idx, i)
		}
	}
	results := make(map[int]chan result, len(idx))
	for _, i := range idx {
		results[i] = make(chan result, 1)
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // no worker outlives the call
	sem := make(chan struct{}, jobs)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, i := range idx {
			select {
			case sem <- struct{}{}:
			case <-cctx.Done():
				return
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				var r result
				r.data, r.st, r.err = p.patchGGUF(g.Tensors[i], specs[i].Type)
				results[i] <- r
			}(i)
		}
	}()
	var agg tensorStats
	worst := -1.0
	for i, t := range g.Tensors {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if len(p.ByKey[t.Name]) == 0 {
			if err := w.WriteFrom(t.Name, g.OSFile(), g.AbsOffset(t), t.Size); err != nil {
				return rep, err
			}
			g.Release(t)
			continue
		}
		var r result
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return rep, ctx.Err()
		}
		<-sem
		if r.err != nil {
			return rep, fmt.Errorf("%s: %v", t.Name, r.err)
		}
		err := w.Write(t.Name, r.data)
		putBytes(r.data)
		if err != nil {
			return rep, err
		}
		g.Release(t)
		st := r.st
		rep.PatchedTensors++
		agg.intended += st.intended
		agg.lost += st.lost
		e := 0.0
		if st.intended > 0 {
			e = math.Sqrt(st.lost / st.intended)
		}
		rep.TensorErrors = append(rep.TensorErrors, TensorError{Tensor: t.Name, Type: specs[i].Type.String(), DeltaError: e})
		if e > worst {
			worst, rep.WorstTensor, rep.WorstDeltaError = e, t.Name, e
		}
	}
	if err := w.Commit(); err != nil {
		return rep, err
	}
	if agg.intended > 0 {
		rep.DeltaError = math.Sqrt(agg.lost / agg.intended)
	}
	rep.BytesWritten = w.FileSize()
	rep.Seconds = time.Since(start).Seconds()
	if rep.DeltaError > 0.5 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%.0f%% of the LoRA's change was lost to requantization; consider --patched-type Q8_0", 100*rep.DeltaError))
	}
	return rep, nil
}

// patchGGUF computes and requantizes one patched tensor and measures how
// much of the delta survived: Σ intended² and Σ (stored − intended)² with
// intended = patched − base and stored = dequant(requant(patched)) − base,
// all from the dequantized base. The bytes come from the buffer cache.
func (p *Plan) patchGGUF(t gguf.TensorInfo, typ gguf.Type) ([]byte, tensorStats, error) {
	var st tensorStats
	ti, _ := p.Base.Lookup(t.Name)
	pw, err := p.compute(ti)
	if err != nil {
		return nil, st, err
	}
	defer putF32(pw.Data)
	size, err := typ.RowSize(int64(len(pw.Data)))
	if err != nil {
		return nil, st, err
	}
	buf := getBytes(int(size))
	if err := gguf.Quantize(typ, pw.Data, buf); err != nil {
		putBytes(buf)
		return nil, st, err
	}
	// compare chunk by chunk: no full-size scratch arrays
	raw := p.gguf.Bytes(t)
	bs, ts := t.Type.BlockSize(), t.Type.TypeSize()
	obs, ots := typ.BlockSize(), typ.TypeSize()
	chunk := 1 << 16 // a multiple of every block size
	base := make([]float32, chunk)
	back := make([]float32, chunk)
	for lo := 0; lo < len(pw.Data); lo += chunk {
		hi := min(lo+chunk, len(pw.Data))
		b, k := base[:hi-lo], back[:hi-lo]
		if err := gguf.Dequantize(t.Type, raw[lo/bs*ts:hi/bs*ts], b); err != nil {
			putBytes(buf)
			return nil, st, err
		}
		if err := gguf.Dequantize(typ, buf[lo/obs*ots:hi/obs*ots], k); err != nil {
			putBytes(buf)
			return nil, st, err
		}
		for i, bv := range b {
			intended := float64(pw.Data[lo+i]) - float64(bv)
			stored := float64(k[i]) - float64(bv)
			if math.IsNaN(intended) || math.IsInf(intended, 0) {
				continue
			}
			st.intended += intended * intended
			st.lost += (stored - intended) * (stored - intended)
		}
	}
	st.patched = true
	return buf, st, nil
}

func setKV(kvs []gguf.KV, key string, v any) []gguf.KV {
	for i := range kvs {
		if kvs[i].Key == key {
			kvs[i].Value = v
			return kvs
		}
	}
	return append(kvs, gguf.KV{Key: key, Value: v})
}
