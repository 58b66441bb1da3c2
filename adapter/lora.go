package adapter

import (
	"fmt"

	"gonum.org/v1/gonum/blas/blas32"
	"math"
	"runtime"
	"sync"
)

// loraFactors returns up.flatten(1) [rows×r] and the (Tucker-rebuilt) down
// flattened to [r×cols].
func loraFactors(m *Module) (up, down []float32, rows, r, cols int, err error) {
	upT, err := m.tensor(RoleUp)
	if err != nil {
		return
	}
	downT, err := m.tensor(RoleDown)
	if err != nil {
		return
	}
	mid, err := m.optTensor(RoleMid)
	if err != nil {
		return
	}
	rows, r, err = flat2(upT, "lora up")
	if err != nil {
		return
	}
	var dr int
	dr, cols, err = flat2(downT, "lora down")
	if err != nil {
		return
	}
	down = downT.Data
	if mid != nil {
		down, dr, cols, err = tuckerDown(downT, mid)
		if err != nil {
			return
		}
	}
	if dr != r {
		err = fmt.Errorf("adapter: lora: shape mismatch: up %v @ down %v (inner %d != %d)", upT.Shape, downT.Shape, r, dr)
		return
	}
	return upT.Data, down, rows, r, cols, nil
}

// tuckerDown rebuilds down'[p,i,h,w] = Σ_q mid[p,q,h,w]·down[q,i] for a
// LoRA Tucker mid [r,r,kh,kw] and down [r,in(,1,1)], returning down' as
// [r × in·kh·kw].
func tuckerDown(down, mid *Tensor) ([]float32, int, int, error) {
	if len(mid.Shape) != 4 {
		return nil, 0, 0, fmt.Errorf("adapter: lora mid: need 4-D [r,r,kh,kw], have %v", mid.Shape)
	}
	r, in := down.Shape[0], down.Shape[1]
	if r*in != len(down.Data) {
		return nil, 0, 0, fmt.Errorf("adapter: lora: shape mismatch: down %v with mid needs trailing dims of 1", down.Shape)
	}
	p, q, kh, kw := mid.Shape[0], mid.Shape[1], mid.Shape[2], mid.Shape[3]
	if q != r || p != r {
		return nil, 0, 0, fmt.Errorf("adapter: lora: shape mismatch: mid %v with down %v", mid.Shape, down.Shape)
	}
	hw := kh * kw
	out := make([]float32, p*in*hw)
	// For each output rank index pp: out[pp] [in × hw] = downᵀ [in×q] @ mid[pp] [q×hw].
	for pp := 0; pp < p; pp++ {
		gemm(true, false, in, hw, q, down.Data, in, mid.Data[pp*q*hw:], hw, out[pp*in*hw:], hw)
	}
	return out, p, in * hw, nil
}

// applyLoRA applies a LoRA/LoCon/Tucker module, padding w first when
// reshape_weight is present.
func applyLoRA(w *Tensor, m *Module, opt Options) (*Tensor, error) {
	orig := w
	rs, err := m.optTensor(RoleReshapeWeight)
	if err != nil {
		return orig, err
	}
	up, down, rows, r, cols, err := loraFactors(m)
	if err != nil {
		return orig, err
	}
	target := w.Shape
	if rs != nil {
		target, err = padShape(w.Shape, rs)
		if err != nil {
			return orig, err
		}
	}
	n, _ := shapeNumel(target)
	if rows*cols != n {
		return orig, fmt.Errorf("adapter: lora: shape mismatch: delta [%d %d] cannot be reshaped to %v", rows, cols, target)
	}
	sc, err := scale64(m, target)
	if err != nil {
		return orig, err
	}
	ds, err := m.optTensor(RoleDoRAScale)
	if err != nil {
		return orig, err
	}
	if ds != nil {
		if err := checkDoRA(target, ds); err != nil {
			return orig, err
		}
	}
	if rs != nil {
		w = padTo(w, target)
	}
	if ds != nil {
		d := matmul(up, rows, r, down, cols)
		if err := applyDoRA(w, d, sc, opt, ds); err != nil {
			return orig, err
		}
		return w, nil
	}
	addProduct(w.Data, up, down, rows, r, cols, float32(float64(opt.Strength)*sc))
	return w, nil
}

// padShape reads reshape_weight (integral values) and checks it can hold w.
func padShape(shape []int, rs *Tensor) ([]int, error) {
	if len(rs.Data) != len(shape) {
		return nil, fmt.Errorf("adapter: lora: reshape_weight %v has %d dims, weight %v has %d", rs.Data, len(rs.Data), shape, len(shape))
	}
	out := make([]int, len(rs.Data))
	for i, v := range rs.Data {
		if v != float32(math.Trunc(float64(v))) || v < 0 || v > 1<<30 {
			return nil, fmt.Errorf("adapter: lora: reshape_weight value %v is not a dimension", v)
		}
		out[i] = int(v)
		if out[i] < shape[i] {
			return nil, fmt.Errorf("adapter: lora: reshape_weight %v is smaller than weight %v", out, shape)
		}
	}
	if _, ok := shapeNumel(out); !ok {
		return nil, fmt.Errorf("adapter: lora: reshape_weight %v too large", out)
	}
	return out, nil
}

// padTo returns a new zero tensor of shape with w copied into its leading
// corner.
func padTo(w *Tensor, shape []int) *Tensor {
	out := New(shape...)
	if len(w.Data) == 0 {
		return out
	}
	nd := len(shape)
	if nd == 0 {
		copy(out.Data, w.Data)
		return out
	}
	// Copy innermost rows of length w.Shape[nd-1].
	inner := w.Shape[nd-1]
	outer := len(w.Data) / max(inner, 1)
	idx := make([]int, nd-1)
	for o := 0; o < outer; o++ {
		off := 0
		for d := 0; d < nd-1; d++ {
			off = off*shape[d] + idx[d]
		}
		off *= shape[nd-1]
		copy(out.Data[off:off+inner], w.Data[o*inner:(o+1)*inner])
		for d := nd - 2; d >= 0; d-- {
			idx[d]++
			if idx[d] < w.Shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}

// loraChunkRows is the number of delta rows materialised at a time.
const loraChunkRows = 64

// addProduct does w[rows×cols] += float32(f · (up[rows×r] @ down[r×cols]))
// with the product rounded to float32 before scaling, as torch does. The
// product is computed in row chunks (no full-size temporary), in parallel
// over GOMAXPROCS workers for large weights.
func addProduct(w, up, down []float32, rows, r, cols int, f float32) {
	if rows == 0 || cols == 0 {
		return
	}
	nChunks := (rows + loraChunkRows - 1) / loraChunkRows
	workers := min(runtime.GOMAXPROCS(0), nChunks)
	if rows*cols*max(r, 1) < 1<<18 {
		workers = 1
	}
	work := func(wi int) {
		buf := make([]float32, min(loraChunkRows, rows)*cols)
		for c := wi; c < nChunks; c += workers {
			r0 := c * loraChunkRows
			nr := min(loraChunkRows, rows-r0)
			b := buf[:nr*cols]
			rowProduct(nr, cols, r, up[r0*r:], down, b)
			addScaled(w[r0*cols:(r0+nr)*cols], b, f)
		}
	}
	if workers == 1 {
		work(0)
		return
	}
	var wg sync.WaitGroup
	for wi := 0; wi < workers; wi++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(wi)
		}()
	}
	wg.Wait()
}

// rowProduct computes c[m×n] = a[m×k] @ b[k×n] row by row with blas32
// Saxpy over full rows: for a thin inner dimension (LoRA ranks) long axpys
// are much faster than gonum's 64×64-blocked Sgemm. Each c element is the
// float32 sum over l in order 0..k-1.
func rowProduct(m, n, k int, a, b, c []float32) {
	impl := blas32.Implementation()
	for i := 0; i < m; i++ {
		ci := c[i*n : (i+1)*n]
		clear(ci)
		for l := 0; l < k; l++ {
			impl.Saxpy(n, a[i*k+l], b[l*n:(l+1)*n], 1, ci, 1)
		}
	}
}
