package extract

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
	"github.com/loratool/loratool/svd"
)

// result is one extracted module, factors already encoded in the output
// dtype.
type result struct {
	report              ModuleReport
	upShape, downShape  []int64
	up, down, alphaData []byte
}

type jobResult struct {
	idx     int
	results []result
	skips   []Skip
	bytes   int64
	err     error
}

// release drops the pages of tensor t from this process's mapping once it
// has been decoded (they stay in the page cache), so that the resident set
// does not grow with the size of the checkpoints. Best effort.
func release(f *safetensors.File, t safetensors.TensorInfo) {
	b := f.Bytes(t)
	if len(b) == 0 {
		return
	}
	ps := uintptr(os.Getpagesize())
	addr := uintptr(unsafe.Pointer(&b[0]))
	lo := (addr + ps - 1) &^ (ps - 1)
	hi := (addr + uintptr(len(b))) &^ (ps - 1)
	if hi <= lo {
		return
	}
	_ = unix.Madvise(b[lo-addr:hi-addr], unix.MADV_DONTNEED)
}

// decompose runs the jobs through a bounded pipeline: a feeder, s.Workers
// workers (each holding two decoded tensors) and a results channel of
// capacity 2. Results are returned in job order.
func (p *plan) decompose(ctx context.Context, s *settings, base, tuned *safetensors.File, prog func(int64)) ([]result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *job)
	out := make(chan jobResult, 2)
	go func() {
		defer close(jobs)
		for i := range p.jobs {
			select {
			case jobs <- &p.jobs[i]:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < s.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ws workspace
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				out <- ws.run(s, base, tuned, j)
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	byJob := make([]jobResult, len(p.jobs))
	var firstErr error
	for r := range out {
		if r.err != nil && firstErr == nil {
			firstErr = r.err
			cancel()
		}
		byJob[r.idx] = r
		prog(r.bytes)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var res []result
	for _, r := range byJob {
		res = append(res, r.results...)
		p.skipped = append(p.skipped, r.skips...)
	}
	return res, nil
}

// workspace is a worker's reusable decode buffers.
type workspace struct {
	bb, tb []float32
}

func (ws *workspace) run(s *settings, base, tuned *safetensors.File, j *job) (jr jobResult) {
	jr.idx = j.idx
	jr.bytes = (j.base.End - j.base.Begin) + (j.tuned.End - j.tuned.Begin)
	var err error
	if ws.bb, err = base.Float32(j.base, ws.bb); err != nil {
		jr.err = err
		return
	}
	release(base, j.base)
	if ws.tb, err = tuned.Float32(j.tuned, ws.tb); err != nil {
		jr.err = err
		return
	}
	release(tuned, j.tuned)
	delta := ws.tb
	for i, v := range ws.bb {
		delta[i] -= v
	}
	for _, pt := range j.parts {
		data := delta[pt.off*pt.cols : (pt.off+pt.rows)*pt.cols]
		r, skip, err := extractPart(s, j, pt, data)
		if err != nil {
			jr.err = err
			return
		}
		if skip != "" {
			jr.skips = append(jr.skips, Skip{Key: j.key, Name: pt.name, Reason: skip})
			continue
		}
		jr.results = append(jr.results, r)
	}
	return
}

func moduleSeed(key string, off int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return Seed ^ h.Sum64() ^ uint64(off)*0x9E3779B97F4A7C15
}

// completeSpectrum extends the top singular values s of an mn-dimension
// spectrum with mn−len(s) equal values carrying the remaining energy
// total − Σ s_i² (each at most s's last value, as the true tail is). The
// result has the exact Frobenius total, so sv_fro is decided exactly;
// sv_ratio is unaffected; sv_cumulative sees the largest tail sum
// compatible with the energy (it may keep more, never fewer, values than
// on the true spectrum).
func completeSpectrum(s []float64, total float64, mn int) []float64 {
	m := mn - len(s)
	var head float64
	for _, v := range s {
		head += v * v
	}
	tail := total - head
	if m <= 0 || tail <= 0 || len(s) == 0 {
		return s
	}
	v := math.Sqrt(tail / float64(m))
	if last := s[len(s)-1]; v > last {
		v = last
	}
	out := make([]float64, len(s), mn)
	copy(out, s)
	for i := 0; i < m; i++ {
		out = append(out, v)
	}
	return out
}

func extractPart(s *settings, j *job, pt part, data []float32) (result, string, error) {
	var r result
	var maxAbs, fro2 float64
	for _, v := range data {
		a := math.Abs(float64(v))
		if a > maxAbs {
			maxAbs = a
		}
		fro2 += a * a
	}
	if math.IsNaN(fro2) || math.IsInf(fro2, 0) {
		return r, "", fmt.Errorf("%s / %s: tensor %s: the weight delta has NaN or Inf values", s.Base, s.Tuned, j.key)
	}
	if maxAbs <= s.MinDiff {
		if maxAbs == 0 {
			return r, "unchanged (Δ = 0)", nil
		}
		return r, fmt.Sprintf("max |Δ| %.3g <= --min-diff %.3g", maxAbs, s.MinDiff), nil
	}
	m := svd.Dense{Rows: pt.rows, Cols: pt.cols, Data: data}
	mn := min(pt.rows, pt.cols)
	capRank := min(pt.cap, mn)
	var res svd.Result
	var err error
	method := "exact"
	if mn <= s.exactMax {
		res, err = svd.Exact(m)
	} else {
		if capRank+svd.DefaultOversample < mn {
			method = "randomized"
		}
		res, err = svd.Randomized(m, capRank, svd.Options{Seed: moduleSeed(j.key, pt.off), PowerIters: s.powerIter})
	}
	if err != nil {
		return r, "", fmt.Errorf("%s: tensor %s: %v", s.Tuned, j.key, err)
	}
	spec := res.Spectrum()
	k := capRank
	if s.dynamic {
		k = s.rule.Rank(completeSpectrum(spec, res.TotalFro2, mn), capRank)
	}
	k = max(1, min(k, res.Rank()))
	up, down := res.Factors(k, svd.SplitUp)
	if up.Rows == 0 {
		return r, "", fmt.Errorf("%s: tensor %s: SVD returned no factors", s.Tuned, j.key)
	}
	// with the full spectrum the tail energy is summed directly (exact for
	// tiny errors); otherwise it is total − kept, resolved to about 1e-7
	// of the total (float32 singular values)
	var head, tail float64
	for _, v := range spec[:k] {
		head += v * v
	}
	if len(spec) == mn {
		for _, v := range spec[k:] {
			tail += v * v
		}
	} else {
		tail = max(0, res.TotalFro2-head)
	}
	rep := ModuleReport{
		Name: pt.name, Key: j.key, Kind: j.kind, Rank: k, Method: method,
		DeltaNorm: math.Sqrt(res.TotalFro2), MaxAbs: maxAbs,
		Retained: res.RetainedTotal(k), RelError: math.Sqrt(tail / res.TotalFro2),
		spectrum: spec, region: arch.RegionOf(pt.target),
	}
	if pt.target.Arch != nil {
		rep.Block = pt.target.Arch.Blocks().BlockOf(pt.target)
	}
	if pt.target.Slice != nil {
		rep.Rows = []int64{int64(pt.off), int64(pt.off + pt.rows)}
	}
	rep.Shape = append([]int64{int64(pt.rows)}, j.shape[1:]...)
	if s.Clamp > 0 {
		rep.Clamped = clampFactors(up.Data, down.Data, s.Clamp)
		rep.ClampErr = rep.RelError
		if rep.Clamped > 0 {
			rep.ClampErr = measuredError(m, up, down, res.TotalFro2)
		}
	}
	r.report = rep
	if j.kind == kindLinear {
		r.upShape = []int64{int64(pt.rows), int64(k)}
		r.downShape = []int64{int64(k), int64(pt.cols)}
	} else {
		r.upShape = []int64{int64(pt.rows), int64(k), 1, 1}
		r.downShape = append([]int64{int64(k)}, j.shape[1:]...)
	}
	if r.up, err = encode(s.dt, up.Data); err != nil {
		return r, "", fmt.Errorf("%s: module %s: %v", s.Output, pt.name, err)
	}
	if r.down, err = encode(s.dt, down.Data); err != nil {
		return r, "", fmt.Errorf("%s: module %s: %v", s.Output, pt.name, err)
	}
	if s.Format != "diffusers" {
		r.alphaData, _ = encode(s.dt, []float32{float32(k)})
	}
	return r, "", nil
}

// encode converts values to the output dtype and refuses values the dtype
// cannot hold (fp16 overflow), which would otherwise be written as Inf.
func encode(dt dtype.DType, vals []float32) ([]byte, error) {
	if dt == dtype.F16 {
		for _, v := range vals {
			if v > 65504 || v < -65504 {
				return nil, fmt.Errorf("factor value %g overflows fp16 (use --dtype bf16 or fp32, or --clamp)", v)
			}
		}
	}
	buf := make([]byte, len(vals)*dt.BitSize()/8)
	if _, err := dtype.Encode(dt, vals, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// measuredError returns ‖Δ − up·down‖_F / ‖Δ‖_F from
// ‖Δ‖² − 2⟨Δ, up·down⟩ + ‖up·down‖², with ⟨Δ, up·down⟩ = Σ (upᵀΔ)∘down
// and ‖up·down‖² = Σ (upᵀup)∘(down·downᵀ): one k×cols product, never the
// dense reconstruction. Its resolution is about 1e-3 (float32 products).
func measuredError(m svd.Dense, up, down svd.Dense, fro2 float64) float64 {
	if fro2 == 0 {
		return 0
	}
	k, rows, cols := up.Cols, m.Rows, m.Cols
	impl := blas32.Implementation()
	g := make([]float32, k*cols)
	impl.Sgemm(blas.Trans, blas.NoTrans, k, cols, rows, 1, up.Data, k, m.Data, cols, 0, g, cols)
	var inner float64
	for i, v := range g {
		inner += float64(v) * float64(down.Data[i])
	}
	utu := make([]float32, k*k)
	impl.Sgemm(blas.Trans, blas.NoTrans, k, k, rows, 1, up.Data, k, up.Data, k, 0, utu, k)
	ddt := make([]float32, k*k)
	impl.Sgemm(blas.NoTrans, blas.Trans, k, k, cols, 1, down.Data, cols, down.Data, cols, 0, ddt, k)
	var n2 float64
	for i, v := range utu {
		n2 += float64(v) * float64(ddt[i])
	}
	return math.Sqrt(max(0, fro2-2*inner+n2) / fro2)
}

// clampFactors applies kohya's clamp: hi = the q-quantile (linear
// interpolation, as torch.quantile) of the signed values of up and down
// together, and both are clamped to [−hi, hi]. The quantile is found by
// selection on a copy, so there is no size limit. It returns the number of
// values changed; nothing is clamped when hi <= 0.
func clampFactors(up, down []float32, q float64) int {
	vals := make([]float32, 0, len(up)+len(down))
	vals = append(append(vals, up...), down...)
	hi := quantile(vals, q)
	if !(hi > 0) {
		return 0
	}
	n := 0
	for _, xs := range [][]float32{up, down} {
		for i, v := range xs {
			switch {
			case v > hi:
				xs[i] = hi
				n++
			case v < -hi:
				xs[i] = -hi
				n++
			}
		}
	}
	return n
}

// quantile returns the q-quantile of v with linear interpolation between
// the order statistics at floor and ceil of q·(n−1). v is reordered.
func quantile(v []float32, q float64) float32 {
	if len(v) == 0 {
		return 0
	}
	pos := q * float64(len(v)-1)
	lo := int(math.Floor(pos))
	frac := pos - float64(lo)
	a := selectKth(v, lo)
	if frac == 0 || lo+1 >= len(v) {
		return a
	}
	// the next order statistic is the minimum of the part above lo
	b := v[lo+1]
	for _, x := range v[lo+1:] {
		if x < b {
			b = x
		}
	}
	return float32(float64(a) + frac*(float64(b)-float64(a)))
}

// selectKth partially orders v so that v[k] is its k-th smallest value,
// v[:k] <= v[k] <= v[k+1:], and returns v[k] (Hoare selection with a
// median-of-three pivot and three-way partitioning, so repeated values do
// not degrade it).
func selectKth(v []float32, k int) float32 {
	lo, hi := 0, len(v)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		a, b, c := v[lo], v[mid], v[hi]
		pivot := max(min(a, b), min(max(a, b), c))
		// three-way partition: [lo,lt) < pivot, [lt,gt] == pivot, (gt,hi] > pivot
		lt, i, gt := lo, lo, hi
		for i <= gt {
			switch {
			case v[i] < pivot:
				v[lt], v[i] = v[i], v[lt]
				lt++
				i++
			case v[i] > pivot:
				v[i], v[gt] = v[gt], v[i]
				gt--
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt - 1
		case k > gt:
			lo = gt + 1
		default:
			return v[k]
		}
	}
	return v[k]
}
