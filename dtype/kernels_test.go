package dtype

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// The kernels (dispatch functions decodeF16, encodeF16, ...) and the
// pure-Go fallbacks are compared with the scalar codec (F16ToF32,
// F32ToF16, ...) on every lane: codes bit for bit, NaN and clamp counts, and
// the rounding loss recomputed here from the scalar decoders.

type kernelCase struct {
	d       DType
	scalar  func(float32) (code uint16, clamped bool)
	decode  func(uint16) float32
	kernel  func([]float32, []byte, *lossAcc) (nan, clamped int)
	generic func([]float32, []byte, *lossAcc) (nan, clamped int)
}

func kernelCases() []kernelCase {
	return []kernelCase{
		{F16,
			func(v float32) (uint16, bool) { return F32ToF16(v), false },
			F16ToF32,
			func(s []float32, d []byte, a *lossAcc) (int, int) { return encodeF16(s, d, a), 0 },
			func(s []float32, d []byte, a *lossAcc) (int, int) { return encodeF16Go(s, d, a), 0 }},
		{BF16,
			func(v float32) (uint16, bool) { return F32ToBF16(v), false },
			BF16ToF32,
			func(s []float32, d []byte, a *lossAcc) (int, int) { return encodeBF16(s, d, a), 0 },
			func(s []float32, d []byte, a *lossAcc) (int, int) { return encodeBF16Go(s, d, a), 0 }},
		{F8E4M3,
			func(v float32) (uint16, bool) { b, c := F32ToE4M3(v); return uint16(b), c },
			func(c uint16) float32 { return E4M3ToF32(uint8(c)) },
			encodeE4M3, encodeE4M3Go},
	}
}

// reference encodes vals with the scalar codec and computes the expected
// stats and rounding loss (eight lane sums by index mod 8, combined
// pairwise, each term (stored − v)² in float64, finite v only).
func (c kernelCase) reference(vals []float32) (codes []uint16, st Stats, loss float64) {
	var lanes [8]float64
	codes = make([]uint16, len(vals))
	for i, v := range vals {
		code, cl := c.scalar(v)
		codes[i] = code
		if v != v {
			st.NaN++
		}
		if cl {
			st.Clamped++
		}
		if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
			d := float64(c.decode(code)) - float64(v)
			sq := d * d
			lanes[i%8] += sq
		}
	}
	loss = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
	return codes, st, loss
}

func (c kernelCase) code(buf []byte, i int) uint16 {
	if c.d.BitSize() == 8 {
		return uint16(buf[i])
	}
	return binary.LittleEndian.Uint16(buf[2*i:])
}

// check encodes vals with the kernel, the Go fallback and EncodeLoss and
// compares each with the reference.
func (c kernelCase) check(t *testing.T, vals []float32) {
	t.Helper()
	codes, st, loss := c.reference(vals)
	buf := make([]byte, len(vals)*c.d.BitSize()/8)
	for _, impl := range []struct {
		name string
		f    func([]float32, []byte, *lossAcc) (int, int)
	}{{"kernel", c.kernel}, {"generic", c.generic}} {
		clear(buf)
		var acc lossAcc
		nan, cl := impl.f(vals, buf, &acc)
		for i, v := range vals {
			if got := c.code(buf, i); got != codes[i] {
				t.Fatalf("%v %s: lane %d of %d: %g (0x%08x) -> 0x%04x, scalar 0x%04x", c.d, impl.name, i, len(vals), v, math.Float32bits(v), got, codes[i])
			}
		}
		if nan != st.NaN || cl != st.Clamped {
			t.Fatalf("%v %s: %d NaN %d clamped, scalar %d %d (n=%d)", c.d, impl.name, nan, cl, st.NaN, st.Clamped, len(vals))
		}
		if got := acc.sum(); math.Float64bits(got) != math.Float64bits(loss) || (len(vals) > 1000 && loss == 0) {
			t.Fatalf("%v %s: loss %v, reference %v (n=%d)", c.d, impl.name, got, loss, len(vals))
		}
	}
	gst, gloss, err := EncodeLoss(c.d, vals, buf)
	if err != nil || gst != st || math.Float64bits(gloss) != math.Float64bits(loss) {
		t.Fatalf("%v EncodeLoss: %+v %v %v, reference %+v %v", c.d, gst, gloss, err, st, loss)
	}
}

// finiteLoss drops the finite inputs that overflow to ±inf, so that the
// loss compared is finite and every term counts.
func (c kernelCase) finiteLoss(vals []float32) []float32 {
	var out []float32
	for _, v := range vals {
		code, _ := c.scalar(v)
		if f := c.decode(code); v != v || math.IsInf(float64(v), 0) || !math.IsInf(float64(f), 0) {
			out = append(out, v)
		}
	}
	return out
}

// edgeValues lists, for the target, the float32 values around every
// finite code and around every midpoint between neighbouring codes
// (rounding ties and their neighbours), both signs, plus NaNs with
// payloads, infinities, zeros, float32 subnormals and the largest floats.
func edgeValues(c kernelCase) []float32 {
	var out []float32
	add := func(u uint32) {
		out = append(out, math.Float32frombits(u), math.Float32frombits(u|0x80000000))
	}
	around := func(f float64) {
		u := math.Float32bits(float32(f))
		for d := -2; d <= 2; d++ {
			add(uint32(int64(u) + int64(d)))
		}
	}
	var mags []float64
	ncodes := 1 << 16
	if c.d.BitSize() == 8 {
		ncodes = 256
	}
	for code := 0; code < ncodes; code++ {
		f := float64(c.decode(uint16(code)))
		if f >= 0 && !math.IsInf(f, 0) && !math.IsNaN(f) && (code != 0 || f == 0) {
			mags = append(mags, f)
		}
	}
	for i, f := range mags {
		around(f)
		if i+1 < len(mags) && mags[i+1] > f {
			around((f + mags[i+1]) / 2)
		}
	}
	if len(mags) > 0 {
		// just past the largest finite code: the saturation/overflow boundary
		top := mags[len(mags)-1]
		ulp := top - mags[len(mags)-2]
		for _, f := range []float64{top + ulp/2, top + ulp, top + 2*ulp, top * 2, 1e30} {
			around(f)
		}
	}
	for _, u := range []uint32{0, 1, 2, 0x3ff, 0x400000, 0x7fffff, 0x800000, 0x7f7fffff, 0x7f7ffffe,
		0x7f800000, 0x7f800001, 0x7f800fff, 0x7f801000, 0x7f802000, 0x7fa00000, 0x7fbfffff,
		0x7fc00000, 0x7fc00001, 0x7fc01234, 0x7fe00000, 0x7fffffff} {
		add(u)
	}
	return out
}

func TestKernelsDecodeExhaustive(t *testing.T) {
	if !haveKernels {
		t.Log("no AVX2/F16C here: checking the pure-Go paths only")
	}
	for _, tc := range []struct {
		d      DType
		n      int
		scalar func(uint16) float32
	}{
		{F16, 1 << 16, F16ToF32},
		{BF16, 1 << 16, BF16ToF32},
		{F8E4M3, 256, func(c uint16) float32 { return E4M3ToF32(uint8(c)) }},
	} {
		size := tc.d.BitSize() / 8
		src := make([]byte, tc.n*size)
		want := make([]uint32, tc.n)
		for c := 0; c < tc.n; c++ {
			if size == 2 {
				binary.LittleEndian.PutUint16(src[2*c:], uint16(c))
			} else {
				src[c] = uint8(c)
			}
			want[c] = math.Float32bits(tc.scalar(uint16(c)))
		}
		dst := make([]float32, tc.n)
		if err := Decode(tc.d, src, dst); err != nil {
			t.Fatal(err)
		}
		for c := range dst {
			if got := math.Float32bits(dst[c]); got != want[c] {
				t.Fatalf("%v code 0x%04x: 0x%08x, scalar 0x%08x", tc.d, c, got, want[c])
			}
		}
		// every length 0..33 at every start (so each code meets each lane
		// and each tail position)
		for l := 0; l <= 33; l++ {
			for off := 0; off+l <= tc.n; off += 1 + 7*(off/64) {
				out := make([]float32, l)
				if err := Decode(tc.d, src[off*size:(off+l)*size], out); err != nil {
					t.Fatal(err)
				}
				for i := range out {
					if got := math.Float32bits(out[i]); got != want[off+i] {
						t.Fatalf("%v len %d off %d lane %d: 0x%08x, scalar 0x%08x", tc.d, l, off, i, got, want[off+i])
					}
				}
			}
		}
	}
}

func TestKernelsEncodeEdges(t *testing.T) {
	for _, c := range kernelCases() {
		edges := edgeValues(c)
		c.check(t, edges)
		c.check(t, c.finiteLoss(edges))
		// every tail length 0..33, starting at every lane, over the first
		// few hundred edge values and the specials at the end
		specials := edges[len(edges)-42:]
		for _, win := range [][]float32{edges[:min(len(edges), 300)], specials, append(append([]float32{}, specials...), edges[:64]...)} {
			for l := 0; l <= 33; l++ {
				for off := 0; off+l <= len(win); off++ {
					c.check(t, win[off:off+l])
				}
			}
		}
	}
}

func TestKernelsEncodeSweep(t *testing.T) {
	step := uint64(2039)
	if testing.Short() {
		step = 4093
	}
	var vals []float32
	for u := uint64(0); u < 1<<32; u += step {
		vals = append(vals, math.Float32frombits(uint32(u)))
	}
	r := rand.New(rand.NewPCG(14, 1))
	for range 1 << 17 {
		vals = append(vals, math.Float32frombits(r.Uint32()), float32(r.NormFloat64()*0.05), float32(r.NormFloat64()*300))
	}
	for _, c := range kernelCases() {
		c.check(t, vals)
		c.check(t, vals[3:len(vals)-2]) // other lane alignment, ragged tail
		c.check(t, c.finiteLoss(vals))
	}
}

// TestKernelsEncodeAllFloat32 checks the kernels on every float32 bit
// pattern (codes, counts and loss against the scalar codec). It takes
// minutes, so it runs only with LORATOOL_EXHAUSTIVE=1.
func TestKernelsEncodeAllFloat32(t *testing.T) {
	if os.Getenv("LORATOOL_EXHAUSTIVE") == "" {
		t.Skip("set LORATOOL_EXHAUSTIVE=1 to check all 2^32 float32 inputs")
	}
	const chunk = 1 << 20
	vals := make([]float32, chunk)
	buf := make([]byte, 2*chunk)
	for _, c := range kernelCases() {
		for base := uint64(0); base < 1<<32; base += chunk {
			for i := range vals {
				vals[i] = math.Float32frombits(uint32(base) + uint32(i))
			}
			codes, st, loss := c.reference(vals)
			var acc lossAcc
			nan, cl := c.kernel(vals, buf, &acc)
			for i := range vals {
				if got := c.code(buf, i); got != codes[i] {
					t.Fatalf("%v: 0x%08x -> 0x%04x, scalar 0x%04x", c.d, math.Float32bits(vals[i]), got, codes[i])
				}
			}
			if nan != st.NaN || cl != st.Clamped || math.Float64bits(acc.sum()) != math.Float64bits(loss) {
				t.Fatalf("%v chunk 0x%08x: %d %d %v, scalar %d %d %v", c.d, base, nan, cl, acc.sum(), st.NaN, st.Clamped, loss)
			}
		}
		t.Logf("%v: all 2^32 float32 inputs identical", c.d)
	}
}

// TestEncodeLossOtherDTypes pins the loss of the dtypes without kernels.
func TestEncodeLossOtherDTypes(t *testing.T) {
	vals := []float32{1, 0.1, -3e-8, float32(math.NaN()), float32(math.Inf(-1)), 70000}
	for _, d := range []DType{F32, F64} {
		buf := make([]byte, len(vals)*d.BitSize()/8)
		st, loss, err := EncodeLoss(d, vals, buf)
		if err != nil || loss != 0 || st.NaN != 1 {
			t.Errorf("%v: %+v %v %v", d, st, loss, err)
		}
	}
	// E5M2: 0.1 -> 0.09375, -3e-8 -> -0, 70000 -> 57344 (clamped)
	buf := make([]byte, len(vals))
	st, loss, err := EncodeLoss(F8E5M2, vals, buf)
	want := math.Pow(0.09375-float64(float32(0.1)), 2) + math.Pow(float64(float32(3e-8)), 2) + math.Pow(70000-57344, 2)
	if err != nil || st != (Stats{NaN: 1, Clamped: 1}) || math.Abs(loss-want) > 1e-9*want {
		t.Errorf("E5M2: %+v %v %v, want loss %v", st, loss, err, want)
	}
}
