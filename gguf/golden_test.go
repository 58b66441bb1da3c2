package gguf

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The golden files in testdata/golden were produced once by ggml's own C
// code (see testdata/golden/README.md for the provenance). The inputs are
// not stored: goldenInputs regenerates them with the same generator the C
// driver used (splitmix64, float32 arithmetic only).

const (
	goldenFull = 32   // super-blocks stored byte for byte
	goldenHash = 1024 // super-blocks covered by the SHA-256 digests
	goldenRand = 4    // super-blocks of random bytes with ggml's dequantization
)

type splitmix struct{ s uint64 }

func (g *splitmix) next() uint64 {
	g.s += 0x9E3779B97F4A7C15
	z := g.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}
func (g *splitmix) unif() float32 { return float32(g.next()>>40) * (1.0 / 16777216.0) }
func (g *splitmix) sym() float32  { return float32(g.unif()*2) - 1 }
func (g *splitmix) gauss() float32 {
	a := g.unif()
	b := g.unif()
	c := g.unif()
	d := g.unif()
	s := a + b
	s = s + c
	s = s + d
	return s - 2
}

// fill writes one super-block of pattern p (16 patterns: typical weights,
// uniform, outliers, all positive, all negative, half zero, zero,
// constant, tiny, huge, integer grids with ties, -0.0 minima, sparse
// spikes, sub-block scales spanning 2^15, eighths, mixed sign).
func (g *splitmix) fill(x []float32, p int) {
	for j := range x[:256] {
		var v float32
		switch p {
		case 0:
			v = g.gauss() * 0.02
		case 1:
			v = g.sym() * 3.7
		case 2:
			v = g.gauss() * 0.05
			if g.next()&63 == 0 {
				v = v * 50
			}
		case 3:
			v = float32(g.unif()*0.999) + 0.001
		case 4:
			v = -float32(g.unif()*0.5) - 0.25
		case 5:
			if j < 128 {
				v = 0
			} else {
				v = g.gauss()
			}
		case 6:
			v = 0
		case 7:
			v = 0.5
		case 8:
			v = g.gauss() * 1e-7
		case 9:
			v = g.sym() * 30000
		case 10:
			v = float32(int(g.next()%16) - 8)
		case 11:
			if g.next()&3 == 0 {
				v = float32(math.Copysign(0, -1))
			} else {
				v = g.unif()
			}
		case 12:
			if g.next()%97 == 0 {
				v = g.sym() * 4
			}
		case 13:
			s := float32(1)
			for k := 0; k < j/16; k++ {
				s = s * 2
			}
			v = float32(g.gauss()*s) * (1.0 / 256.0)
		case 14:
			v = float32(int(g.next()%64)-32) * 0.125
		default:
			v = g.gauss()
			if g.next()&7 == 0 {
				v = -v * 3
			}
		}
		x[j] = v
	}
}

func goldenInputs(nsb int) []float32 {
	g := &splitmix{s: 0x6c6f7261746f6f6c}
	x := make([]float32, nsb*256)
	for b := 0; b < nsb; b++ {
		g.fill(x[b*256:], b%16)
	}
	return x
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

var goldenTypes = []Type{F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, MXFP4}

func TestGoldenQuantize(t *testing.T) {
	x := goldenInputs(goldenHash)
	for _, typ := range goldenTypes {
		if !typ.CanQuantize() {
			continue
		}
		t.Run(typ.String(), func(t *testing.T) {
			g, err := os.ReadFile(filepath.Join("testdata", "golden", typ.String()+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			rowb, _ := typ.RowSize(256)
			full := g[:goldenFull*rowb]
			wantQ, wantD := g[goldenFull*rowb:goldenFull*rowb+32], g[goldenFull*rowb+32:goldenFull*rowb+64]
			got := make([]byte, goldenHash*rowb)
			if err := Quantize(typ, x, got); err != nil {
				t.Fatal(err)
			}
			bs, ts := typ.BlockSize(), typ.TypeSize()
			for i := 0; i < len(full)/ts; i++ {
				if !bytes.Equal(got[i*ts:(i+1)*ts], full[i*ts:(i+1)*ts]) {
					t.Fatalf("block %d (pattern %d): got % x\nwant % x", i, (i*bs/256)%16, got[i*ts:(i+1)*ts], full[i*ts:(i+1)*ts])
				}
			}
			if h := sha256.Sum256(got); !bytes.Equal(h[:], wantQ) {
				t.Fatalf("quantized bytes of %d super-blocks differ from ggml's (SHA-256)", goldenHash)
			}
			// Our bytes equal ggml's, so dequantizing them must give
			// exactly ggml's floats.
			d := make([]float32, len(x))
			if err := Dequantize(typ, got, d); err != nil {
				t.Fatal(err)
			}
			if h := sha256.Sum256(f32Bytes(d)); !bytes.Equal(h[:], wantD) {
				t.Fatalf("dequantized values differ from ggml's (SHA-256)")
			}
		})
	}
}

func TestGoldenDequantizeRandomBlocks(t *testing.T) {
	for _, typ := range goldenTypes {
		t.Run(typ.String(), func(t *testing.T) {
			g, err := os.ReadFile(filepath.Join("testdata", "golden", typ.String()+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			rowb, _ := typ.RowSize(256)
			if typ.CanQuantize() {
				g = g[goldenFull*rowb+64:]
			}
			if int64(len(g)) != goldenRand*rowb+goldenRand*256*4 {
				t.Fatalf("golden file has %d bytes", len(g))
			}
			src, want := g[:goldenRand*rowb], g[goldenRand*rowb:]
			d := make([]float32, goldenRand*256)
			if err := Dequantize(typ, src, d); err != nil {
				t.Fatal(err)
			}
			for i, v := range d {
				w := binary.LittleEndian.Uint32(want[4*i:])
				if math.Float32bits(v) != w {
					t.Fatalf("element %d: got %g (%08x), ggml %g (%08x)", i, v, math.Float32bits(v), math.Float32frombits(w), w)
				}
			}
		})
	}
}
