package gguf

import (
	"math"
	"testing"
)

// TestRoundTripErrorBounds checks quantize → dequantize against the
// total-error limits of ggml's own tests/test-quantize-fns.cpp, on the
// same data (0.1 + 2·cos(i + offset), 4096 values, rmse = √Σd² / n).
func TestRoundTripErrorBounds(t *testing.T) {
	const n = 32 * 128
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(0.1 + 2*math.Cos(float64(i)+0.0))
	}
	for _, c := range []struct {
		typ   Type
		limit float64
	}{
		{F32, 0}, {F16, 0.002}, {BF16, 0.002}, {Q4_0, 0.002}, {Q4_1, 0.002}, {Q5_0, 0.002}, {Q5_1, 0.002}, {Q8_0, 0.002},
		{Q2_K, 0.0075}, {Q3_K, 0.0040}, {Q4_K, 0.002}, {Q5_K, 0.002}, {Q6_K, 0.002},
	} {
		size, _ := c.typ.RowSize(n)
		q := make([]byte, size)
		if err := Quantize(c.typ, x, q); err != nil {
			t.Fatal(err)
		}
		y := make([]float32, n)
		if err := Dequantize(c.typ, q, y); err != nil {
			t.Fatal(err)
		}
		var sum float64
		for i := range x {
			d := float64(x[i]) - float64(y[i])
			sum += d * d
		}
		rmse := math.Sqrt(sum) / n
		if rmse > c.limit {
			t.Errorf("%v: total error %.6f exceeds ggml's limit %.4f", c.typ, rmse, c.limit)
		}
		if c.typ == F32 && rmse != 0 {
			t.Errorf("F32 is not exact")
		}
	}
}

func TestParseType(t *testing.T) {
	for s, want := range map[string]Type{"q4_k": Q4_K, "Q4_K_M": Q4_K, "Q3_K_S": Q3_K, "bf16": BF16, "Q8_0": Q8_0, "iq4_xs": IQ4_XS} {
		if got, err := ParseType(s); err != nil || got != want {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	if _, err := ParseType("Q9_9"); err == nil {
		t.Error("Q9_9 accepted")
	}
}

func TestPolicy(t *testing.T) {
	flux := Policy{Arch: "flux", Quant: Q4_K}
	sdxl := Policy{Arch: "sdxl", Quant: Q8_0, Map: []QuantRule{{"*.proj_in.weight", Q4_0}}}
	for _, c := range []struct {
		p     Policy
		name  string
		src   Type
		shape []int64
		want  Type
		orig  bool
	}{
		{flux, "double_blocks.0.img_attn.qkv.weight", BF16, []int64{9216, 3072}, Q4_K, false},
		{flux, "double_blocks.0.img_attn.qkv.bias", BF16, []int64{9216}, F32, false},
		{flux, "double_blocks.0.img_attn.norm.key_norm.scale", BF16, []int64{128}, F32, false},
		{flux, "img_in.weight", BF16, []int64{3072, 64}, BF16, false},
		{flux, "final_layer.linear.weight", F16, []int64{64, 3072}, F16, false},
		{flux, "double_blocks.0.img_mod.lin.weight", F16, []int64{18432, 3072}, Q4_K, false},
		{flux, "x.weight", BF16, []int64{100, 300}, F16, false}, // row not a multiple of 256
		{flux, "tiny.weight", BF16, []int64{32, 32}, F32, false},
		{flux, "tiny16.weight", F16, []int64{32, 32}, F16, false},
		{Policy{Arch: "flux", Quant: Q4_K, Map: []QuantRule{{"double_blocks.*", Q8_0}}}, "double_blocks.0.img_attn.qkv.weight", BF16, []int64{9216, 3072}, Q8_0, false},
		{sdxl, "input_blocks.4.1.proj_in.weight", F16, []int64{640, 640, 1, 1}, Q4_0, true},
		{sdxl, "input_blocks.1.0.in_layers.2.weight", F16, []int64{320, 320, 3, 3}, Q8_0, true},
		{sdxl, "time_embed.0.weight", F16, []int64{1280, 320}, F16, true},
	} {
		got, err := c.p.Choose(c.name, c.src, c.shape)
		if err != nil || got.Type != c.want || (got.OrigShape != nil) != c.orig {
			t.Errorf("%s %v %v: got %v (%s) orig %v, %v; want %v", c.name, c.src, c.shape, got.Type, got.Reason, got.OrigShape, err, c.want)
		}
	}
}

func TestRoundfMatchesCRound(t *testing.T) {
	g := &splitmix{s: 7}
	vals := []float32{0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 127.49999, 0.49999997, -0.49999997, 0, float32(math.Copysign(0, -1))}
	for i := 0; i < 100000; i++ {
		vals = append(vals, g.sym()*130, float32(int(g.next()%255)-127)+0.5)
	}
	for _, v := range vals {
		if got, want := roundf(v), int32(math.Round(float64(v))); got != want {
			t.Fatalf("roundf(%v) = %d, want %d", v, got, want)
		}
	}
}
