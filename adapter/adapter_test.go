package adapter

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// apply runs Apply on a copy of w and fails the test on error.
func apply(t *testing.T, w *Tensor, m *Module, opt Options) *Tensor {
	t.Helper()
	out, err := Apply(w.clone(), m, opt)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return out
}

func TestHandDerived(t *testing.T) {
	// Every expected value below is worked out by hand in the comment.
	tests := []struct {
		name string
		w    *Tensor
		m    *Module
		opt  Options
		want []float64
	}{
		{
			// up=[1;2], down=[3 4] → ΔW=[[3,4],[6,8]]; alpha 0.5, r 1 → scale 0.5.
			// W=I: [[1+1.5, 2],[3, 1+4]] = [[2.5,2],[3,5]].
			name: "lora 2x2 alpha",
			w:    tens([]int{2, 2}, 1, 0, 0, 1),
			m: &Module{Algo: LoRA, Alpha: ptr(0.5), Tensors: map[string]*Tensor{
				"up": tens([]int{2, 1}, 1, 2), "down": tens([]int{1, 2}, 3, 4)}},
			opt:  DefaultOptions(1),
			want: []float64{2.5, 2, 3, 5},
		},
		{
			// same, no alpha → scale 1, s=2: W + 2ΔW = [[7,8],[12,17]].
			name: "lora 2x2 no alpha s=2",
			w:    tens([]int{2, 2}, 1, 0, 0, 1),
			m: &Module{Algo: LoRA, Tensors: map[string]*Tensor{
				"up": tens([]int{2, 1}, 1, 2), "down": tens([]int{1, 2}, 3, 4)}},
			opt:  DefaultOptions(2),
			want: []float64{7, 8, 12, 17},
		},
		{
			// alpha from an "alpha" tensor (4, rank 2 → 2). up=[[1,0],[0,1]],
			// down=[[1,1],[0,2]] → ΔW = down; W=0 → 2·down = [[2,2],[0,4]].
			name: "lora alpha tensor",
			w:    New(2, 2),
			m: &Module{Algo: LoRA, Tensors: map[string]*Tensor{"alpha": tens(nil, 4),
				"up": tens([]int{2, 2}, 1, 0, 0, 1), "down": tens([]int{2, 2}, 1, 1, 0, 2)}},
			opt:  DefaultOptions(1),
			want: []float64{2, 2, 0, 4},
		},
		{
			// Linear LoRA on a [2,2,1,1] conv: reshape by numel. ΔW=[[3,4],[6,8]].
			name: "lora linear on 1x1 conv",
			w:    New(2, 2, 1, 1),
			m: &Module{Algo: LoRA, Tensors: map[string]*Tensor{
				"up": tens([]int{2, 1, 1, 1}, 1, 2), "down": tens([]int{1, 2}, 3, 4)}},
			opt:  DefaultOptions(1),
			want: []float64{3, 4, 6, 8},
		},
		{
			// m1 = [1;2]@[1 1] = [[1,1],[2,2]]; m2 = [1;1]@[3 4] = [[3,4],[3,4]];
			// ΔW = m1⊙m2 = [[3,4],[6,8]]; alpha 2 / rank 1 → 2; W=0 → [[6,8],[12,16]].
			name: "loha 2x2",
			w:    New(2, 2),
			m: &Module{Algo: LoHa, Alpha: ptr(2), Tensors: map[string]*Tensor{
				"hada_w1_a": tens([]int{2, 1}, 1, 2), "hada_w1_b": tens([]int{1, 2}, 1, 1),
				"hada_w2_a": tens([]int{2, 1}, 1, 1), "hada_w2_b": tens([]int{1, 2}, 3, 4)}},
			opt:  DefaultOptions(1),
			want: []float64{6, 8, 12, 16},
		},
		{
			// kron([[1,2]], [[1],[3]]) = [[1,2],[3,6]]; both full → alpha 8 ignored.
			name: "lokr full factors ignore alpha",
			w:    tens([]int{2, 2}, 1, 1, 1, 1),
			m: &Module{Algo: LoKr, Alpha: ptr(8), Tensors: map[string]*Tensor{
				"lokr_w1": tens([]int{1, 2}, 1, 2), "lokr_w2": tens([]int{2, 1}, 1, 3)}},
			opt:  DefaultOptions(1),
			want: []float64{2, 3, 4, 7},
		},
		{
			// w2 = [1;3]@[[1]] = [[1],[3]] (w2_b rank 1), alpha 4 → scale 4:
			// 4·[[1,2],[3,6]] = [[4,8],[12,24]].
			name: "lokr decomposed w2 uses alpha",
			w:    New(2, 2),
			m: &Module{Algo: LoKr, Alpha: ptr(4), Tensors: map[string]*Tensor{
				"lokr_w1": tens([]int{1, 2}, 1, 2), "lokr_w2_a": tens([]int{2, 1}, 1, 3),
				"lokr_w2_b": tens([]int{1, 1}, 1)}},
			opt:  DefaultOptions(1),
			want: []float64{4, 8, 12, 24},
		},
		{
			// GLoRA new format (old test also passes but a2.shape[0]=1 ≠ 2):
			// W@a1 = [[1],[3]], @a2=[0 1] → [[0,1],[0,3]]; b1@b2 = [1;1]@[1 0] =
			// [[1,0],[1,0]]; ΔW = [[1,1],[1,3]]; alpha 3 / rank 1 = 3, s = 1:
			// [[1+3, 2+3],[3+3, 4+9]] = [[4,5],[6,13]].
			name: "glora new",
			w:    tens([]int{2, 2}, 1, 2, 3, 4),
			m: &Module{Algo: GLoRA, Alpha: ptr(3), Tensors: map[string]*Tensor{
				"a1": tens([]int{2, 1}, 1, 0), "a2": tens([]int{1, 2}, 0, 1),
				"b1": tens([]int{2, 1}, 1, 1), "b2": tens([]int{1, 2}, 1, 0)}},
			opt:  DefaultOptions(1),
			want: []float64{4, 5, 6, 13},
		},
		{
			// GLoRA old format (both tests pass, W square, a2.shape[0]=2=W rows):
			// W@a2 = [[1],[3]], @a1=[0 1] → [[0,1],[0,3]]; b2@b1 = [1;1]@[1 0];
			// ΔW = [[1,1],[1,3]]; no alpha → 1; s = 0.5: W + 0.5ΔW.
			name: "glora old",
			w:    tens([]int{2, 2}, 1, 2, 3, 4),
			m: &Module{Algo: GLoRA, Tensors: map[string]*Tensor{
				"a2": tens([]int{2, 1}, 1, 0), "a1": tens([]int{1, 2}, 0, 1),
				"b2": tens([]int{2, 1}, 1, 1), "b1": tens([]int{1, 2}, 1, 0)}},
			opt:  DefaultOptions(0.5),
			want: []float64{1.5, 2.5, 3.5, 5.5},
		},
		{
			// B = [[0,1],[0,0]] → Q = [[0,1],[-1,0]]; I−Q = [[1,-1],[1,1]],
			// inv = ½[[1,1],[-1,1]]; R = (I+Q)·inv = ½[[1,1],[-1,1]]² = [[0,1],[-1,0]].
			// OFT at s=1: out[m] = Σ_n R[n,m]·W[n] = RᵀW, Rᵀ = [[0,-1],[1,0]];
			// W=[[1,2],[3,4]] → [[-3,-4],[1,2]].
			name: "oft s=1 exact rotation",
			w:    tens([]int{2, 2}, 1, 2, 3, 4),
			m: &Module{Algo: OFT, Tensors: map[string]*Tensor{
				"oft_blocks": tens([]int{1, 2, 2}, 0, 1, 0, 0)}},
			opt:  DefaultOptions(1),
			want: []float64{-3, -4, 1, 2},
		},
		{
			// Same at s=0.5: W + 0.25·(Rᵀ−I)W; (Rᵀ−I)W = [[-4,-6],[-2,-2]] →
			// [[1-1, 2-1.5],[3-0.5, 4-0.5]] = [[0,0.5],[2.5,3.5]].
			name: "oft s=0.5 strength squared",
			w:    tens([]int{2, 2}, 1, 2, 3, 4),
			m: &Module{Algo: OFT, Tensors: map[string]*Tensor{
				"oft_blocks": tens([]int{1, 2, 2}, 0, 1, 0, 0)}},
			opt:  DefaultOptions(0.5),
			want: []float64{0, 0.5, 2.5, 3.5},
		},
		{
			// Flag off: W + 0.5·(Rᵀ−I)W = [[1-2, 2-3],[3-1, 4-1]] = [[-1,-1],[2,3]].
			name: "oft s=0.5 strength once",
			w:    tens([]int{2, 2}, 1, 2, 3, 4),
			m: &Module{Algo: OFT, Tensors: map[string]*Tensor{
				"oft_blocks": tens([]int{1, 2, 2}, 0, 1, 0, 0)}},
			opt:  Options{Strength: 0.5, DoRAComfyQuirk: true},
			want: []float64{-1, -1, 2, 3},
		},
		{
			// COFT constraint alpha 0.5: ‖Q‖ = √2 > 0.5 → Q·0.5/√2, t = 0.5/√2,
			// t² = 1/8. R = 1/(1+t²)[[1−t², 2t],[−2t, 1−t²]] = [[7/9, (8/9)·(1/√2)],[…]]
			// i.e. c = 7/9, d = 4√2/9. RᵀW for W = I: [[c, -d],[d, c]].
			name: "oft constraint",
			w:    tens([]int{2, 2}, 1, 0, 0, 1),
			m: &Module{Algo: OFT, Alpha: ptr(0.5), Tensors: map[string]*Tensor{
				"oft_blocks": tens([]int{1, 2, 2}, 0, 1, 0, 0)}},
			opt:  DefaultOptions(1),
			want: []float64{7.0 / 9, -4 * math.Sqrt2 / 9, 4 * math.Sqrt2 / 9, 7.0 / 9},
		},
		{
			// BOFT 1 stage, b=2: k=1, the permutation is the identity, and boft
			// multiplies R (not Rᵀ): R W = [[0,1],[-1,0]]·[[1,2],[3,4]] =
			// [[3,4],[-1,-2]]; rescale [2;1] → [[6,8],[-1,-2]]. alpha 0 = no constraint.
			name: "boft one stage rescale",
			w:    tens([]int{2, 2}, 1, 2, 3, 4),
			m: &Module{Algo: BOFT, Alpha: ptr(0), Tensors: map[string]*Tensor{
				"oft_blocks": tens([]int{1, 1, 2, 2}, 0, 1, 0, 0),
				"rescale":    tens([]int{2, 1}, 2, 1)}},
			opt:  DefaultOptions(1),
			want: []float64{6, 8, -1, -2},
		},
		{
			// BOFT s=0.5: B_s = 0.5R + 0.5I = [[0.5,0.5],[-0.5,0.5]];
			// B_s W = [[2,3],[1,1]]; ΔW = [[1,1],[-2,-3]]; W + 0.5ΔW = [[1.5,2.5],[2,2.5]].
			name: "boft s=0.5",
			w:    tens([]int{2, 2}, 1, 2, 3, 4),
			m: &Module{Algo: BOFT, Alpha: ptr(0), Tensors: map[string]*Tensor{
				"oft_blocks": tens([]int{1, 1, 2, 2}, 0, 1, 0, 0)}},
			opt:  DefaultOptions(0.5),
			want: []float64{1.5, 2.5, 2, 2.5},
		},
		{
			// IA3 out dim: w = [0.5, -1], s = 1 → factors [1.5, 0]:
			// [[1.5,3],[0,0]].
			name: "ia3 output",
			w:    tens([]int{2, 2}, 1, 2, 3, 4),
			m: &Module{Algo: IA3, Tensors: map[string]*Tensor{
				"ia3_weight": tens([]int{2}, 0.5, -1), "on_input": tens(nil, 0)}},
			opt:  DefaultOptions(1),
			want: []float64{1.5, 3, 0, 0},
		},
		{
			// IA3 input dim, s = 0.5 → factors [1.25, 0.5] on columns:
			// [[1.25, 1],[3.75, 2]].
			name: "ia3 input",
			w:    tens([]int{2, 2}, 1, 2, 3, 4),
			m: &Module{Algo: IA3, Tensors: map[string]*Tensor{
				"ia3_weight": tens([]int{2}, 0.5, -1), "on_input": tens(nil, 1)}},
			opt:  DefaultOptions(0.5),
			want: []float64{1.25, 1, 3.75, 2},
		},
		{
			// IA3 on a conv [2,3,1,1] along the input dim with weight [1,3,1,1]
			// = [1, 0, -0.5], s=1 → factors [2, 1, 0.5].
			name: "ia3 conv input",
			w:    tens([]int{2, 3, 1, 1}, 1, 1, 1, 2, 2, 2),
			m: &Module{Algo: IA3, Tensors: map[string]*Tensor{
				"ia3_weight": tens([]int{1, 3, 1, 1}, 1, 0, -0.5), "on_input": tens([]int{1}, 1)}},
			opt:  DefaultOptions(1),
			want: []float64{2, 1, 0.5, 4, 2, 1},
		},
		{
			// diff: W + 0.5·[[2,4],[6,8]] = [[2,2],[3,4]] from W=[[1,0],[0,0]].
			name: "diff",
			w:    tens([]int{2, 2}, 1, 0, 0, 0),
			m:    &Module{Algo: Diff, Tensors: map[string]*Tensor{"diff": tens([]int{2, 2}, 2, 4, 6, 8)}},
			opt:  DefaultOptions(0.5),
			want: []float64{2, 2, 3, 4},
		},
		{
			// norm delta on a 1-D weight.
			name: "norm",
			w:    tens([]int{3}, 1, 1, 1),
			m:    &Module{Algo: Norm, Tensors: map[string]*Tensor{"diff": tens([]int{3}, 1, 2, 3)}},
			opt:  DefaultOptions(1),
			want: []float64{2, 3, 4},
		},
		{
			// set ignores strength (0.3).
			name: "set",
			w:    tens([]int{3}, 1, 1, 1),
			m:    &Module{Algo: Set, Tensors: map[string]*Tensor{"set_weight": tens([]int{3}, 7, 8, 9)}},
			opt:  DefaultOptions(0.3),
			want: []float64{7, 8, 9},
		},
		{
			// DoRA output axis, ComfyUI quirk. W=[[3,4],[1,0]], ΔW = [0;1]@[0 1] =
			// [[0,0],[0,1]], Wc = [[3,4],[1,1]]. dora_scale [[5],[2]] (shape[0]=2=out).
			// Norms of ORIGINAL W rows: 5, 1 → W' = [[3,4],[2,2]].
			name: "dora output quirk",
			w:    tens([]int{2, 2}, 3, 4, 1, 0),
			m: &Module{Algo: LoRA, Tensors: map[string]*Tensor{
				"up": tens([]int{2, 1}, 0, 1), "down": tens([]int{1, 2}, 0, 1),
				"dora_scale": tens([]int{2, 1}, 5, 2)}},
			opt:  DefaultOptions(1),
			want: []float64{3, 4, 2, 2},
		},
		{
			// Quirk off: norms of Wc rows: 5, √2 → W' = [[3,4],[√2,√2]].
			name: "dora output no quirk",
			w:    tens([]int{2, 2}, 3, 4, 1, 0),
			m: &Module{Algo: LoRA, Tensors: map[string]*Tensor{
				"up": tens([]int{2, 1}, 0, 1), "down": tens([]int{1, 2}, 0, 1),
				"dora_scale": tens([]int{2, 1}, 5, 2)}},
			opt:  Options{Strength: 1, OFTStrengthSquared: true},
			want: []float64{3, 4, math.Sqrt2, math.Sqrt2},
		},
		{
			// Quirk, s = 0.5 blend: W + 0.5(W' − W) = [[3,4],[1.5,1]]
			// (ΔW itself is NOT scaled by s before the decomposition).
			name: "dora output s=0.5",
			w:    tens([]int{2, 2}, 3, 4, 1, 0),
			m: &Module{Algo: LoRA, Tensors: map[string]*Tensor{
				"up": tens([]int{2, 1}, 0, 1), "down": tens([]int{1, 2}, 0, 1),
				"dora_scale": tens([]int{2, 1}, 5, 2)}},
			opt:  DefaultOptions(0.5),
			want: []float64{3, 4, 1.5, 1},
		},
		{
			// Input axis dora_scale [1,2] = [[1,1]]: Wc = [[3,4],[1,1]], column
			// norms √10, √17 → [[3/√10, 4/√17],[1/√10, 1/√17]].
			name: "dora input axis",
			w:    tens([]int{2, 2}, 3, 4, 1, 0),
			m: &Module{Algo: LoRA, Tensors: map[string]*Tensor{
				"up": tens([]int{2, 1}, 0, 1), "down": tens([]int{1, 2}, 0, 1),
				"dora_scale": tens([]int{1, 2}, 1, 1)}},
			opt:  DefaultOptions(1),
			want: []float64{3 / math.Sqrt(10), 4 / math.Sqrt(17), 1 / math.Sqrt(10), 1 / math.Sqrt(17)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := apply(t, tc.w, tc.m, tc.opt)
			closeTo(t, tc.name, got.Data, tc.want, 2e-6)
		})
	}
}

func TestReshapeWeight(t *testing.T) {
	// W [[1,2],[3,4]] padded to [3,3]; ΔW = [1;0;1]@[0 0 1] puts 1 at (0,2) and (2,2):
	// [[1,2,1],[3,4,0],[0,0,1]].
	w := tens([]int{2, 2}, 1, 2, 3, 4)
	m := &Module{Algo: LoRA, Tensors: map[string]*Tensor{
		"up": tens([]int{3, 1}, 1, 0, 1), "down": tens([]int{1, 3}, 0, 0, 1),
		"reshape_weight": tens([]int{2}, 3, 3)}}
	got, err := Apply(w, m, DefaultOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	if got == w || !sameShape(got.Shape, []int{3, 3}) {
		t.Fatalf("want a new [3 3] tensor, got %v", got.Shape)
	}
	closeTo(t, "padded", got.Data, []float64{1, 2, 1, 3, 4, 0, 0, 0, 1}, 0)
	closeTo(t, "original untouched", w.Data, []float64{1, 2, 3, 4}, 0)
	// A smaller target is an error.
	m.Tensors["reshape_weight"] = tens([]int{2}, 1, 3)
	if _, err := Apply(w, m, DefaultOptions(1)); err == nil {
		t.Fatal("want error for shrinking reshape_weight")
	}
}

func TestAgainstReference(t *testing.T) {
	type tc struct {
		name  string
		shape []int
		m     *Module
		s     float32
		want  func(w []float64) []float64
		opt   func(*Options)
	}
	var cases []tc
	add := func(c tc) { cases = append(cases, c) }

	// Conv 3×3 LoCon: up [4,2,1,1], down [2,3,3,3] → W [4,3,3,3]; alpha 1 / r 2.
	{
		up, down := rt(1, 4, 2, 1, 1), rt(2, 2, 3, 3, 3)
		add(tc{"locon 3x3", []int{4, 3, 3, 3}, &Module{Algo: LoRA, Alpha: ptr(1),
			Tensors: map[string]*Tensor{"up": up, "down": down}}, 0.7,
			func(w []float64) []float64 {
				d := refLoRA(up, down, nil)
				for i := range w {
					w[i] += 0.7 * 0.5 * d[i]
				}
				return w
			}, nil})
	}
	// Tucker mid: up [5,2,1,1], down [2,3,1,1], mid [2,2,3,3] → W [5,3,3,3].
	{
		up, down, mid := rt(3, 5, 2, 1, 1), rt(4, 2, 3, 1, 1), rt(5, 2, 2, 3, 3)
		add(tc{"lora tucker mid", []int{5, 3, 3, 3}, &Module{Algo: LoRA, Alpha: ptr(3),
			Tensors: map[string]*Tensor{"up": up, "down": down, "mid": mid}}, 1,
			func(w []float64) []float64 {
				d := refLoRA(up, down, mid)
				for i := range w {
					w[i] += 1.5 * d[i]
				}
				return w
			}, nil})
	}
	// LoHa plain on a conv: w1a [4,2], w1b [2,27] → W [4,3,3,3].
	{
		a1, b1, a2, b2 := rt(6, 4, 2), rt(7, 2, 27), rt(8, 4, 3), rt(9, 3, 27)
		add(tc{"loha conv", []int{4, 3, 3, 3}, &Module{Algo: LoHa, Alpha: ptr(1),
			Tensors: map[string]*Tensor{"hada_w1_a": a1, "hada_w1_b": b1, "hada_w2_a": a2, "hada_w2_b": b2}}, 0.8,
			func(w []float64) []float64 {
				m1 := refMatmul(f64s(a1), 4, 2, f64s(b1), 27)
				m2 := refMatmul(f64s(a2), 4, 3, f64s(b2), 27)
				for i := range w {
					w[i] += 0.8 * 0.5 * m1[i] * m2[i]
				}
				return w
			}, nil})
	}
	// LoHa Tucker: t [2,2,3,3], w1a [2,out=4] (Tucker layout [r,out]), w1b [2,in=3].
	{
		t1, a1, b1 := rt(10, 2, 2, 3, 3), rt(11, 2, 4), rt(12, 2, 3)
		t2, a2, b2 := rt(13, 2, 2, 3, 3), rt(14, 2, 4), rt(15, 2, 3)
		add(tc{"loha tucker", []int{4, 3, 3, 3}, &Module{Algo: LoHa, Alpha: ptr(4),
			Tensors: map[string]*Tensor{"hada_w1_a": a1, "hada_w1_b": b1, "hada_w2_a": a2, "hada_w2_b": b2,
				"hada_t1": t1, "hada_t2": t2}}, 1,
			func(w []float64) []float64 {
				m1, m2 := refTucker(t1, b1, a1), refTucker(t2, b2, a2)
				for i := range w {
					w[i] += 2 * m1[i] * m2[i]
				}
				return w
			}, nil})
	}
	// LoKr forms. Scale per ComfyUI: dim from w1_b, overwritten by w2_b.
	{
		w1, w2 := rt(16, 2, 3), rt(17, 3, 2)
		w1a, w1b := rt(18, 2, 1), rt(19, 1, 3)
		w2a, w2b := rt(20, 3, 2), rt(21, 2, 2)
		w2full4 := rt(22, 3, 2, 3, 3)
		t2, t2a, t2b := rt(23, 2, 2, 3, 3), rt(24, 2, 3), rt(25, 2, 2)
		kr := func(a []float64, a0, a1 int, b []float64, bs []int, sc float64, s float64) func([]float64) []float64 {
			return func(w []float64) []float64 {
				d := refKron(a, a0, a1, b, bs)
				for i := range w {
					w[i] += s * sc * d[i]
				}
				return w
			}
		}
		w1ab := refMatmul(f64s(w1a), 2, 1, f64s(w1b), 3)
		w2ab := refMatmul(f64s(w2a), 3, 2, f64s(w2b), 2)
		add(tc{"lokr w1 w2 full", []int{6, 6}, &Module{Algo: LoKr, Alpha: ptr(7),
			Tensors: map[string]*Tensor{"lokr_w1": w1, "lokr_w2": w2}}, 0.9,
			kr(f64s(w1), 2, 3, f64s(w2), []int{3, 2}, 1, 0.9), nil})
		add(tc{"lokr w1ab w2 full", []int{6, 6}, &Module{Algo: LoKr, Alpha: ptr(3),
			Tensors: map[string]*Tensor{"lokr_w1_a": w1a, "lokr_w1_b": w1b, "lokr_w2": w2}}, 1,
			kr(w1ab, 2, 3, f64s(w2), []int{3, 2}, 3.0/1, 1), nil})
		add(tc{"lokr w1 full w2ab", []int{6, 6}, &Module{Algo: LoKr, Alpha: ptr(3),
			Tensors: map[string]*Tensor{"lokr_w1": w1, "lokr_w2_a": w2a, "lokr_w2_b": w2b}}, 1,
			kr(f64s(w1), 2, 3, w2ab, []int{3, 2}, 3.0/2, 1), nil})
		add(tc{"lokr both decomposed dim from w2_b", []int{6, 6}, &Module{Algo: LoKr, Alpha: ptr(3),
			Tensors: map[string]*Tensor{"lokr_w1_a": w1a, "lokr_w1_b": w1b, "lokr_w2_a": w2a, "lokr_w2_b": w2b}}, 1,
			kr(w1ab, 2, 3, w2ab, []int{3, 2}, 3.0/2, 1), nil})
		add(tc{"lokr 4-D w2", []int{6, 6, 3, 3}, &Module{Algo: LoKr,
			Tensors: map[string]*Tensor{"lokr_w1": w1, "lokr_w2": w2full4}}, 1,
			kr(f64s(w1), 2, 3, f64s(w2full4), []int{3, 2, 3, 3}, 1, 1), nil})
		add(tc{"lokr t2", []int{6, 6, 3, 3}, &Module{Algo: LoKr, Alpha: ptr(1),
			Tensors: map[string]*Tensor{"lokr_w1": w1, "lokr_w2_a": t2a, "lokr_w2_b": t2b, "lokr_t2": t2}}, 1,
			kr(f64s(w1), 2, 3, refTucker(t2, t2b, t2a), []int{3, 2, 3, 3}, 0.5, 1), nil})
	}
	// GLoRA new format on a conv W [4,3,3,3]: ΔW[o,j,h,w] = Σ_i Σ_r W[o,i,h,w]·a1[i,r]·a2[r,j] + (b1@b2).
	{
		a1, a2, b1, b2 := rt(26, 3, 2), rt(27, 2, 3), rt(28, 4, 2), rt(29, 2, 27)
		add(tc{"glora conv new", []int{4, 3, 3, 3}, &Module{Algo: GLoRA, Alpha: ptr(1),
			Tensors: map[string]*Tensor{"a1": a1, "a2": a2, "b1": b1, "b2": b2}}, 0.6,
			func(w []float64) []float64 {
				A1, A2 := f64s(a1), f64s(a2)
				bb := refMatmul(f64s(b1), 4, 2, f64s(b2), 27)
				out := append([]float64(nil), w...)
				for o := 0; o < 4; o++ {
					for j := 0; j < 3; j++ {
						for hw := 0; hw < 9; hw++ {
							var s float64
							for i := 0; i < 3; i++ {
								for r := 0; r < 2; r++ {
									s += w[(o*3+i)*9+hw] * A1[i*2+r] * A2[r*3+j]
								}
							}
							d := s + bb[(o*3+j)*9+hw]
							out[(o*3+j)*9+hw] += 0.6 * 0.5 * d
						}
					}
				}
				return out
			}, nil})
	}
	// GLoRA shape ambiguity: a1 [2,3], a2 [3,2], b1 [2,3], b2 [3,2] pass both
	// tests. On a 3×3 W: old (a2.shape[0]=3=W rows), rank 2.
	{
		a1, a2, b1, b2 := rt(30, 2, 3), rt(31, 3, 2), rt(32, 2, 3), rt(33, 3, 2)
		mod := &Module{Algo: GLoRA, Alpha: ptr(1), Tensors: map[string]*Tensor{"a1": a1, "a2": a2, "b1": b1, "b2": b2}}
		add(tc{"glora ambiguous old", []int{3, 3}, mod, 1, func(w []float64) []float64 {
			wa := refMatmul(refMatmul(w, 3, 3, f64s(a2), 2), 3, 2, f64s(a1), 3)
			bb := refMatmul(f64s(b2), 3, 2, f64s(b1), 3)
			for i := range w {
				w[i] += 0.5 * (wa[i] + bb[i])
			}
			return w
		}, nil})
		// On a 2×2 W: new, rank a2.shape[0] = 3.
		add(tc{"glora ambiguous new", []int{2, 2}, mod, 1, func(w []float64) []float64 {
			wa := refMatmul(refMatmul(w, 2, 2, f64s(a1), 3), 2, 3, f64s(a2), 2)
			bb := refMatmul(f64s(b1), 2, 3, f64s(b2), 2)
			for i := range w {
				w[i] += (1.0 / 3) * (wa[i] + bb[i])
			}
			return w
		}, nil})
	}
	// DoRA on a conv, both axes, with a LoKr and a LoHa delta and s ≠ 1.
	{
		up, down := rt(34, 4, 2, 1, 1), rt(35, 2, 3, 3, 3)
		dsOut, dsIn := rt(36, 4, 1, 1, 1), rt(37, 1, 3, 1, 1)
		for _, q := range []struct {
			name  string
			ds    *Tensor
			out   bool
			quirk bool
			s     float32
		}{
			{"dora conv out quirk", dsOut, true, true, 1},
			{"dora conv out pure s=0.5", dsOut, true, false, 0.5},
			{"dora conv out quirk s=0.5", dsOut, true, true, 0.5},
			{"dora conv in s=0.3", dsIn, false, true, 0.3},
		} {
			m := &Module{Algo: LoRA, Alpha: ptr(1), Tensors: map[string]*Tensor{"up": up, "down": down, "dora_scale": q.ds}}
			add(tc{q.name, []int{4, 3, 3, 3}, m, q.s, func(w []float64) []float64 {
				return refDoRA(w, []int{4, 3, 3, 3}, refLoRA(up, down, nil), 0.5, f64s(q.ds), q.out, q.quirk, float64(q.s))
			}, func(o *Options) { o.DoRAComfyQuirk = q.quirk }})
		}
	}
	// OFT multi-block on a conv weight, with and without the constraint.
	{
		blocks := rt(38, 3, 2, 2)
		for _, p := range []struct {
			alpha float32
			s     float32
		}{{0, 1}, {0, 0.5}, {0.3, 1}, {0.3, 0.7}} {
			add(tc{"oft conv", []int{6, 2, 3, 3}, &Module{Algo: OFT, Alpha: ptr(p.alpha),
				Tensors: map[string]*Tensor{"oft_blocks": blocks, "rescale": rt(39, 6, 1, 1, 1)}}, p.s,
				func(w []float64) []float64 {
					return refOFT(w, 6, blocks, float64(p.alpha), float64(p.s), true)
				}, nil})
		}
	}
	// BOFT with 2 stages (b = 2, 4 blocks, 8 rows), rescale, s ≠ 1.
	{
		blocks, resc := rt(40, 2, 4, 2, 2), rt(41, 8, 1)
		for _, s := range []float32{1, 0.4} {
			add(tc{"boft 2 stages", []int{8, 3}, &Module{Algo: BOFT, Alpha: ptr(0.8),
				Tensors: map[string]*Tensor{"oft_blocks": blocks, "rescale": resc}}, s,
				func(w []float64) []float64 {
					res := refBOFTResult(w, 8, blocks, 0.8, float64(s), f64s(resc))
					for i := range w {
						w[i] += float64(s) * (res[i] - w[i])
					}
					return w
				}, nil})
		}
		// b = 4, 3 stages, 2 blocks of 4 → 8 rows... needs rows % (2^2·4) = 16: 1 block of 16? use b=4, nb=4, m=3, rows=16.
		blocks4 := rt(42, 3, 4, 4, 4)
		add(tc{"boft b4 3 stages", []int{16, 2}, &Module{Algo: BOFT, Alpha: ptr(0),
			Tensors: map[string]*Tensor{"oft_blocks": blocks4}}, 1,
			func(w []float64) []float64 {
				res := refBOFTResult(w, 16, blocks4, 0, 1, nil)
				return res
			}, nil})
	}

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := rt(uint64(1000+i), c.shape...)
			opt := DefaultOptions(c.s)
			if c.opt != nil {
				c.opt(&opt)
			}
			want := c.want(f64s(w))
			got := apply(t, w, c.m, opt)
			closeTo(t, c.name, got.Data, want, 2e-5)
		})
	}
}

func TestOFTOrthogonality(t *testing.T) {
	// At s=1 each output block is rotated: for every block and column the
	// Euclidean norm of the block's column segment is preserved.
	blocks := rt(50, 4, 3, 3)
	w := rt(51, 12, 5)
	got := apply(t, w, &Module{Algo: OFT, Tensors: map[string]*Tensor{"oft_blocks": blocks}}, DefaultOptions(1))
	for k := 0; k < 4; k++ {
		for c := 0; c < 5; c++ {
			var a, b float64
			for n := 0; n < 3; n++ {
				x, y := float64(w.Data[(k*3+n)*5+c]), float64(got.Data[(k*3+n)*5+c])
				a += x * x
				b += y * y
			}
			if math.Abs(math.Sqrt(a)-math.Sqrt(b)) > 1e-5*(1+math.Sqrt(a)) {
				t.Fatalf("block %d col %d: norm %v → %v", k, c, math.Sqrt(a), math.Sqrt(b))
			}
		}
	}
	// And s=0.5 adds exactly 0.25·(W_rot − W).
	half := apply(t, w, &Module{Algo: OFT, Tensors: map[string]*Tensor{"oft_blocks": blocks}}, DefaultOptions(0.5))
	want := make([]float64, len(w.Data))
	for i := range want {
		want[i] = float64(w.Data[i]) + 0.25*(float64(got.Data[i])-float64(w.Data[i]))
	}
	closeTo(t, "oft s=0.5", half.Data, want, 1e-5)
}

func TestBOFTOneStageIsPermutedOFT(t *testing.T) {
	// One BOFT stage with block size b interleaves rows inside each group of b
	// (permuted position 2κ+γ ← row γ·b/2+κ), multiplies R, and undoes it.
	// OFT multiplies Rᵀ, and R(B) = Rᵀ(Bᵀ); so BOFT(B) = P⁻¹·OFT(Bᵀ)·P.
	const nb, b, cols = 2, 4, 3
	blocks := rt(60, 1, nb, b, b)
	w := rt(61, nb*b, cols)
	got := apply(t, w, &Module{Algo: BOFT, Alpha: ptr(0), Tensors: map[string]*Tensor{"oft_blocks": blocks}}, DefaultOptions(1))

	src := func(p int) int { // original row at permuted position p
		a, rem := p/b, p%b
		return a*b + (rem%2)*(b/2) + rem/2
	}
	pw := New(nb*b, cols)
	for p := 0; p < nb*b; p++ {
		copy(pw.Data[p*cols:(p+1)*cols], w.Data[src(p)*cols:(src(p)+1)*cols])
	}
	bt := New(nb, b, b)
	for k := 0; k < nb; k++ {
		for i := 0; i < b; i++ {
			for j := 0; j < b; j++ {
				bt.Data[(k*b+i)*b+j] = blocks.Data[(k*b+j)*b+i]
			}
		}
	}
	rot := apply(t, pw, &Module{Algo: OFT, Tensors: map[string]*Tensor{"oft_blocks": bt}}, DefaultOptions(1))
	want := make([]float64, len(w.Data))
	for p := 0; p < nb*b; p++ {
		for c := 0; c < cols; c++ {
			want[src(p)*cols+c] = float64(rot.Data[p*cols+c])
		}
	}
	closeTo(t, "boft vs permuted oft", got.Data, want, 1e-5)
}

func TestScaleAndRank(t *testing.T) {
	tests := []struct {
		name  string
		m     *Module
		scale float32
		rank  int
	}{
		{"lora", &Module{Algo: LoRA, Alpha: ptr(8), Tensors: map[string]*Tensor{"up": New(4, 16), "down": New(16, 4)}}, 0.5, 16},
		{"lora no alpha", &Module{Algo: LoRA, Tensors: map[string]*Tensor{"up": New(4, 16), "down": New(16, 4)}}, 1, 16},
		{"loha", &Module{Algo: LoHa, Alpha: ptr(2), Tensors: map[string]*Tensor{"hada_w1_b": New(4, 3)}}, 0.5, 4},
		{"lokr full", &Module{Algo: LoKr, Alpha: ptr(2), Tensors: map[string]*Tensor{"lokr_w1": New(2, 2), "lokr_w2": New(2, 2)}}, 1, 0},
		{"lokr w1 decomposed", &Module{Algo: LoKr, Alpha: ptr(2), Tensors: map[string]*Tensor{"lokr_w1_a": New(2, 8), "lokr_w1_b": New(8, 2), "lokr_w2": New(2, 2)}}, 0.25, 8},
		{"lokr both", &Module{Algo: LoKr, Alpha: ptr(2), Tensors: map[string]*Tensor{"lokr_w1_a": New(2, 8), "lokr_w1_b": New(8, 2), "lokr_w2_a": New(2, 4), "lokr_w2_b": New(4, 2)}}, 0.5, 4},
		{"lokr no alpha", &Module{Algo: LoKr, Tensors: map[string]*Tensor{"lokr_w1": New(2, 2), "lokr_w2_a": New(2, 4), "lokr_w2_b": New(4, 2)}}, 1, 4},
		{"glora new", &Module{Algo: GLoRA, Alpha: ptr(1), Tensors: map[string]*Tensor{"a1": New(8, 4), "a2": New(4, 8), "b1": New(6, 4), "b2": New(4, 8)}}, 0.25, 4},
		{"glora old", &Module{Algo: GLoRA, Alpha: ptr(1), Tensors: map[string]*Tensor{"a1": New(2, 8), "a2": New(8, 2), "b1": New(2, 8), "b2": New(6, 2)}}, 0.5, 2},
		{"oft", &Module{Algo: OFT, Alpha: ptr(5), Tensors: map[string]*Tensor{"oft_blocks": New(2, 2, 2)}}, 1, 0},
		{"diff", &Module{Algo: Diff, Tensors: map[string]*Tensor{"diff": New(2)}}, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Scale(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if s != tc.scale {
				t.Errorf("Scale = %v, want %v", s, tc.scale)
			}
			if r := Rank(tc.m); r != tc.rank {
				t.Errorf("Rank = %d, want %d", r, tc.rank)
			}
		})
	}
}

func TestDelta(t *testing.T) {
	// up=[1;2], down=[3 4], alpha 0.5 → 0.5·[[3,4],[6,8]], reshaped to [2,2,1,1].
	m := &Module{Algo: LoRA, Alpha: ptr(0.5), Tensors: map[string]*Tensor{
		"up": tens([]int{2, 1}, 1, 2), "down": tens([]int{1, 2}, 3, 4)}}
	d, err := Delta(m, []int{2, 2, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if !sameShape(d.Shape, []int{2, 2, 1, 1}) {
		t.Fatalf("shape %v", d.Shape)
	}
	closeTo(t, "delta", d.Data, []float64{1.5, 2, 3, 4}, 0)
	if _, err := Delta(m, []int{3, 2}); err == nil || !strings.Contains(err.Error(), "shape mismatch") {
		t.Fatalf("want shape mismatch, got %v", err)
	}
	// Delta + W equals Apply at s = 1 for a LoKr.
	lk := &Module{Algo: LoKr, Alpha: ptr(3), Tensors: map[string]*Tensor{
		"lokr_w1": rt(70, 2, 2), "lokr_w2_a": rt(71, 3, 2), "lokr_w2_b": rt(72, 2, 3)}}
	w := rt(73, 6, 6)
	dd, err := Delta(lk, w.Shape)
	if err != nil {
		t.Fatal(err)
	}
	got := apply(t, w, lk, DefaultOptions(1))
	want := make([]float64, len(w.Data))
	for i := range want {
		want[i] = float64(w.Data[i]) + float64(dd.Data[i])
	}
	closeTo(t, "lokr delta+W", got.Data, want, 1e-6)
	for _, a := range []Algo{GLoRA, OFT, BOFT, IA3, Set} {
		if _, err := Delta(&Module{Algo: a}, []int{2, 2}); !errors.Is(err, ErrNeedsWeight) {
			t.Errorf("%s: want ErrNeedsWeight, got %v", a, err)
		}
	}
	m.Tensors["dora_scale"] = New(2, 1)
	if _, err := Delta(m, []int{2, 2}); !errors.Is(err, ErrNeedsWeight) {
		t.Errorf("dora: want ErrNeedsWeight, got %v", err)
	}
}

func TestErrors(t *testing.T) {
	w2 := func() *Tensor { return tens([]int{2, 2}, 1, 2, 3, 4) }
	tests := []struct {
		name string
		w    *Tensor
		m    *Module
		want string
	}{
		{"diff shape mismatch", w2(), &Module{Algo: Diff, Tensors: map[string]*Tensor{"diff": New(4)}}, "shape mismatch"},
		{"lora numel mismatch", w2(), &Module{Algo: LoRA, Tensors: map[string]*Tensor{"up": New(3, 1), "down": New(1, 2)}}, "shape mismatch"},
		{"lora inner mismatch", w2(), &Module{Algo: LoRA, Tensors: map[string]*Tensor{"up": New(2, 2), "down": New(1, 4)}}, "shape mismatch"},
		{"lora missing down", w2(), &Module{Algo: LoRA, Tensors: map[string]*Tensor{"up": New(2, 1)}}, "missing"},
		{"lora bad data", w2(), &Module{Algo: LoRA, Tensors: map[string]*Tensor{"up": {Shape: []int{2, 1}}, "down": New(1, 2)}}, "needs 2 values"},
		{"lora 1-D up", w2(), &Module{Algo: LoRA, Tensors: map[string]*Tensor{"up": New(2), "down": New(1, 2)}}, "[out, rank]"},
		{"lora zero rank alpha", w2(), &Module{Algo: LoRA, Alpha: ptr(1), Tensors: map[string]*Tensor{"up": New(2, 0), "down": New(0, 2)}}, "rank ≥ 1"},
		{"lora bad mid", w2(), &Module{Algo: LoRA, Tensors: map[string]*Tensor{"up": New(2, 1), "down": New(1, 2), "mid": New(1, 1)}}, "[rank, rank, kh, kw]"},
		{"loha mismatch", w2(), &Module{Algo: LoHa, Tensors: map[string]*Tensor{"hada_w1_a": New(2, 1), "hada_w1_b": New(1, 2), "hada_w2_a": New(2, 1), "hada_w2_b": New(1, 3)}}, "shape mismatch"},
		{"lokr missing", w2(), &Module{Algo: LoKr, Tensors: map[string]*Tensor{"lokr_w1": New(1, 1)}}, "missing"},
		{"glora neither alpha", w2(), &Module{Algo: GLoRA, Alpha: ptr(1), Tensors: map[string]*Tensor{"a1": New(2, 1), "a2": New(3, 4), "b1": New(5, 6), "b2": New(7, 8)}}, "rank unknown"},
		{"oft rows", w2(), &Module{Algo: OFT, Tensors: map[string]*Tensor{"oft_blocks": New(1, 3, 3)}}, "shape mismatch"},
		{"oft 4-D", w2(), &Module{Algo: OFT, Tensors: map[string]*Tensor{"oft_blocks": New(1, 1, 2, 2)}}, "oft_blocks"},
		{"boft no alpha", w2(), &Module{Algo: BOFT, Tensors: map[string]*Tensor{"oft_blocks": New(1, 1, 2, 2)}}, "alpha"},
		{"boft stages", tens([]int{2, 1}, 1, 2), &Module{Algo: BOFT, Alpha: ptr(0), Tensors: map[string]*Tensor{"oft_blocks": New(2, 1, 2, 2)}}, "stage"},
		{"ia3 mismatch", w2(), &Module{Algo: IA3, Tensors: map[string]*Tensor{"ia3_weight": New(3)}}, "shape mismatch"},
		{"set mismatch", w2(), &Module{Algo: Set, Tensors: map[string]*Tensor{"set_weight": New(3)}}, "shape mismatch"},
		{"dora mismatch", w2(), &Module{Algo: LoRA, Tensors: map[string]*Tensor{"up": New(2, 1), "down": New(1, 2), "dora_scale": New(1, 3)}}, "shape mismatch"},
		{"unknown algo", w2(), &Module{Algo: "nope"}, "unknown"},
		{"nil module", w2(), nil, "nil module"},
		{"bad weight", New(-1, 2), &Module{Algo: Diff}, "invalid shape"},
		{"nil weight", nil, &Module{Algo: Diff}, "nil tensor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before []float32
			if tc.w != nil {
				before = append([]float32(nil), tc.w.Data...)
			}
			got, err := Apply(tc.w, tc.m, DefaultOptions(1))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
			if got != tc.w {
				t.Fatal("on error Apply must return the input tensor")
			}
			if tc.w != nil {
				for i := range before {
					if before[i] != tc.w.Data[i] {
						t.Fatal("weight modified on error")
					}
				}
			}
		})
	}
}

func TestDiffZeroStrength(t *testing.T) {
	// s = 0 leaves W untouched even when diff holds NaN (ComfyUI skips the patch).
	w := tens([]int{2}, 1, 2)
	got := apply(t, w, &Module{Algo: Diff, Tensors: map[string]*Tensor{"diff": tens([]int{2}, float32(math.NaN()), 1)}}, DefaultOptions(0))
	closeTo(t, "diff s=0", got.Data, []float64{1, 2}, 0)
}

func TestNewNumel(t *testing.T) {
	tests := []struct {
		shape []int
		n     int
	}{{nil, 1}, {[]int{2, 3}, 6}, {[]int{0, 5}, 0}, {[]int{-1}, -1}, {[]int{1 << 40, 1 << 40}, -1}}
	for _, tc := range tests {
		if got := New(tc.shape...).Numel(); got != tc.n {
			t.Errorf("New(%v).Numel() = %d, want %d", tc.shape, got, tc.n)
		}
	}
	var nilT *Tensor
	if nilT.Numel() != 0 {
		t.Error("nil Numel")
	}
}

func TestLargeLoRAMatchesReference(t *testing.T) {
	// The chunked, parallel fast path on a weight with more rows than one
	// chunk and a ragged last chunk.
	up, down := rt(80, 200, 8), rt(81, 8, 150)
	w := rt(82, 200, 150)
	m := &Module{Algo: LoRA, Alpha: ptr(4), Tensors: map[string]*Tensor{"up": up, "down": down}}
	got := apply(t, w, m, DefaultOptions(0.75))
	d := refLoRA(up, down, nil)
	want := f64s(w)
	for i := range want {
		want[i] += 0.75 * 0.5 * d[i]
	}
	closeTo(t, "large lora", got.Data, want, 1e-5)
}
