package adapter

// Independent float64 re-derivations of ComfyUI's formulas, written with
// plain nested loops straight from comfy/weight_adapter/*.py (einsum and
// reshape semantics spelled out). They share no code with the package.

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func f64s(t *Tensor) []float64 {
	out := make([]float64, len(t.Data))
	for i, v := range t.Data {
		out[i] = float64(v)
	}
	return out
}

func tens(shape []int, vals ...float32) *Tensor {
	return &Tensor{Shape: shape, Data: vals}
}

func ptr(v float32) *float32 { return &v }

func rt(seed uint64, shape ...int) *Tensor {
	rng := rand.New(rand.NewPCG(seed, 99))
	return randTensor(rng, shape...)
}

// closeTo reports the first element where got and want differ by more than
// tol·(1+|want|).
func closeTo(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol*(1+math.Abs(want[i]))) {
			t.Fatalf("%s: [%d] = %v, want %v (diff %g)", name, i, got[i], want[i], d)
		}
	}
}

// refMatmul is C = A·B with A m×k, B k×n.
func refMatmul(a []float64, m, k int, b []float64, n int) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for l := 0; l < k; l++ {
				s += a[i*k+l] * b[l*n+j]
			}
			c[i*n+j] = s
		}
	}
	return c
}

// refLoRA: up [out,r(,1,1)], down [r,in(,kh,kw)]; with mid [r,r,kh,kw] and
// down [r,in,1,1]: down'[p,i,h,w] = Σ_q mid[p,q,h,w]·down[q,i].
// ΔW[o, c] = Σ_p up[o,p]·down'[p, c] with c = flattened (i,h,w).
func refLoRA(up, down, mid *Tensor) []float64 {
	out, r := up.Shape[0], up.Shape[1]
	u, d := f64s(up), f64s(down)
	cols := len(d) / r
	if mid != nil {
		in := down.Shape[1]
		kh, kw := mid.Shape[2], mid.Shape[3]
		md := f64s(mid)
		nd := make([]float64, r*in*kh*kw)
		for p := 0; p < r; p++ {
			for i := 0; i < in; i++ {
				for h := 0; h < kh; h++ {
					for w := 0; w < kw; w++ {
						var s float64
						for q := 0; q < r; q++ {
							s += md[((p*r+q)*kh+h)*kw+w] * d[q*in+i]
						}
						nd[((p*in+i)*kh+h)*kw+w] = s
					}
				}
			}
		}
		d, cols = nd, in*kh*kw
	}
	return refMatmul(u, out, r, d, cols)
}

// refTucker is einsum('i j k l, j r, i p -> p r k l', t, wb, wa).
func refTucker(t, wb, wa *Tensor) []float64 {
	I, J, K, L := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	R, P := wb.Shape[1], wa.Shape[1]
	td, bd, ad := f64s(t), f64s(wb), f64s(wa)
	out := make([]float64, P*R*K*L)
	for p := 0; p < P; p++ {
		for r := 0; r < R; r++ {
			for k := 0; k < K; k++ {
				for l := 0; l < L; l++ {
					var s float64
					for i := 0; i < I; i++ {
						for j := 0; j < J; j++ {
							s += td[((i*J+j)*K+k)*L+l] * bd[j*R+r] * ad[i*P+p]
						}
					}
					out[((p*R+r)*K+k)*L+l] = s
				}
			}
		}
	}
	return out
}

// refKron2 is kron of a [a0,a1] and b [b0,b1]: out[i*b0+p, j*b1+q] = a[i,j]·b[p,q].
// For 4-D b the 2-D a is treated as [a0,a1,1,1].
func refKron(a []float64, a0, a1 int, b []float64, bShape []int) []float64 {
	b0, b1 := bShape[0], bShape[1]
	sp := 1
	for _, d := range bShape[2:] {
		sp *= d
	}
	out := make([]float64, a0*b0*a1*b1*sp)
	for i := 0; i < a0; i++ {
		for j := 0; j < a1; j++ {
			for p := 0; p < b0; p++ {
				for q := 0; q < b1; q++ {
					for s := 0; s < sp; s++ {
						row, col := i*b0+p, j*b1+q
						out[(row*(a1*b1)+col)*sp+s] = a[i*a1+j] * b[(p*b1+q)*sp+s]
					}
				}
			}
		}
	}
	return out
}

// refDoRA is weight_decompose: wc = W + scale·Δ; output-axis norm of W
// (quirk) or wc; input-axis norm of wc; wc *= ds/(norm+eps); blend.
func refDoRA(w []float64, shape []int, delta []float64, scale float64, ds []float64, outputAxis, quirk bool, s float64) []float64 {
	out, in := shape[0], 1
	if len(shape) > 1 {
		in = shape[1]
	}
	inner := len(w) / out / in
	wc := make([]float64, len(w))
	for i := range w {
		wc[i] = w[i] + scale*delta[i]
	}
	eps := math.Pow(2, -23)
	res := make([]float64, len(w))
	if outputAxis {
		src := wc
		if quirk {
			src = w
		}
		for o := 0; o < out; o++ {
			var n float64
			for c := 0; c < in*inner; c++ {
				n += src[o*in*inner+c] * src[o*in*inner+c]
			}
			n = math.Sqrt(n) + eps
			for c := 0; c < in*inner; c++ {
				res[o*in*inner+c] = wc[o*in*inner+c] * ds[o] / n
			}
		}
	} else {
		for i := 0; i < in; i++ {
			var n float64
			for o := 0; o < out; o++ {
				for k := 0; k < inner; k++ {
					v := wc[(o*in+i)*inner+k]
					n += v * v
				}
			}
			n = math.Sqrt(n) + eps
			for o := 0; o < out; o++ {
				for k := 0; k < inner; k++ {
					res[(o*in+i)*inner+k] = wc[(o*in+i)*inner+k] * ds[i] / n
				}
			}
		}
	}
	if s != 1 {
		for i := range res {
			res[i] = w[i] + s*(res[i]-w[i])
		}
	}
	return res
}

// refCayley returns R_k = (I+Q_k)·inv(I−Q_k) for each block, Q = B − Bᵀ,
// with the COFT constraint over the whole tensor; inverse via gonum/mat.
func refCayley(blocks []float64, nb, b int, alpha float64) [][]float64 {
	q := make([]float64, len(blocks))
	var n2 float64
	for k := 0; k < nb; k++ {
		for i := 0; i < b; i++ {
			for j := 0; j < b; j++ {
				v := blocks[(k*b+i)*b+j] - blocks[(k*b+j)*b+i]
				q[(k*b+i)*b+j] = v
				n2 += v * v
			}
		}
	}
	if qn := math.Sqrt(n2) + 1e-8; alpha > 0 && qn > alpha {
		for i := range q {
			q[i] *= alpha / qn
		}
	}
	rs := make([][]float64, nb)
	for k := 0; k < nb; k++ {
		ip := mat.NewDense(b, b, nil)
		im := mat.NewDense(b, b, nil)
		for i := 0; i < b; i++ {
			for j := 0; j < b; j++ {
				d := 0.0
				if i == j {
					d = 1
				}
				ip.Set(i, j, d+q[(k*b+i)*b+j])
				im.Set(i, j, d-q[(k*b+i)*b+j])
			}
		}
		var inv, r mat.Dense
		if err := inv.Inverse(im); err != nil {
			panic(err)
		}
		r.Mul(ip, &inv)
		rs[k] = make([]float64, b*b)
		for i := 0; i < b; i++ {
			for j := 0; j < b; j++ {
				rs[k][i*b+j] = r.At(i, j)
			}
		}
	}
	return rs
}

// refOFT: out[k,m,…] = Σ_n (sR−sI)[k,n,m]·W[k,n,…]; W + s·out (squared)
// or W + s·Σ_n (R−I)[k,n,m]·W[k,n,…] (once).
func refOFT(w []float64, rows int, blocks *Tensor, alpha, s float64, squared bool) []float64 {
	nb, b := blocks.Shape[0], blocks.Shape[1]
	rs := refCayley(f64s(blocks), nb, b, alpha)
	rest := len(w) / rows
	out := append([]float64(nil), w...)
	for k := 0; k < nb; k++ {
		for m := 0; m < b; m++ {
			for c := 0; c < rest; c++ {
				var acc float64
				for n := 0; n < b; n++ {
					d := 0.0
					if n == m {
						d = 1
					}
					a := rs[k][n*b+m] - d
					if squared {
						a *= s
					}
					acc += a * w[(k*b+n)*rest+c]
				}
				out[(k*b+m)*rest+c] += s * acc
			}
		}
	}
	return out
}

// refBOFTResult follows boft.py literally: per stage i, view rows as
// [A, g, k] (g=2, k=2^i·b/2), transpose to [A, k, g], flatten, split into
// blocks of b, multiply each by its (blended) R, and undo. Returns the
// rotated (and rescaled) weight, not yet blended with W.
func refBOFTResult(w []float64, rows int, blocks *Tensor, alpha, s float64, rescale []float64) []float64 {
	m, nb, b := blocks.Shape[0], blocks.Shape[1], blocks.Shape[2]
	rs := refCayley(f64s(blocks), m*nb, b, alpha)
	rest := len(w) / rows
	cur := append([]float64(nil), w...)
	for st := 0; st < m; st++ {
		g, k := 2, (1<<st)*(b/2)
		A := rows / (g * k)
		// perm[p] = original row at permuted position p.
		perm := make([]int, 0, rows)
		for a := 0; a < A; a++ {
			for kk := 0; kk < k; kk++ {
				for gg := 0; gg < g; gg++ {
					perm = append(perm, a*g*k+gg*k+kk)
				}
			}
		}
		next := append([]float64(nil), cur...)
		for blk := 0; blk < nb; blk++ {
			r := rs[st*nb+blk]
			for i := 0; i < b; i++ {
				for c := 0; c < rest; c++ {
					var acc float64
					for j := 0; j < b; j++ {
						bij := r[i*b+j]
						if s != 1 {
							d := 0.0
							if i == j {
								d = 1
							}
							bij = bij*s + (1-s)*d
						}
						acc += bij * cur[perm[blk*b+j]*rest+c]
					}
					next[perm[blk*b+i]*rest+c] = acc
				}
			}
		}
		cur = next
	}
	if rescale != nil {
		for i := range cur {
			cur[i] *= rescale[i/rest]
		}
	}
	return cur
}
