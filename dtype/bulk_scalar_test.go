package dtype

import (
	"math"
	"testing"
)

// TestBulkEncodeMatchesScalar sweeps float32 bit patterns (every 1021st,
// both signs, every exponent incl. subnormals, inf and NaN) and checks that
// Encode's inlined fast paths give the same codes and counts as the scalar
// encoders.
func TestBulkEncodeMatchesScalar(t *testing.T) {
	var vals []float32
	for u := uint64(0); u < 1<<32; u += 1021 {
		vals = append(vals, math.Float32frombits(uint32(u)))
	}
	vals = append(vals, 0, float32(math.Copysign(0, -1)), 464, -464, 448, 465, float32(math.Inf(1)), float32(math.Inf(-1)))
	for _, d := range []DType{F16, F8E4M3} {
		buf := make([]byte, len(vals)*d.BitSize()/8)
		st, err := Encode(d, vals, buf)
		if err != nil {
			t.Fatal(err)
		}
		var want Stats
		for i, v := range vals {
			switch d {
			case F16:
				h := F32ToF16(v)
				if got := uint16(buf[2*i]) | uint16(buf[2*i+1])<<8; got != h {
					t.Fatalf("F16 %g (0x%08x): 0x%04x, scalar 0x%04x", v, math.Float32bits(v), got, h)
				}
				if v != v {
					want.NaN++
				}
			case F8E4M3:
				b, c := F32ToE4M3(v)
				if buf[i] != b {
					t.Fatalf("E4M3 %g (0x%08x): 0x%02x, scalar 0x%02x", v, math.Float32bits(v), buf[i], b)
				}
				if v != v {
					want.NaN++
				}
				if c {
					want.Clamped++
				}
			}
		}
		if st != want {
			t.Errorf("%v: stats %+v, scalar %+v", d, st, want)
		}
	}
}
