package svd

import (
	"fmt"
	"testing"
)

// benchMatrix is a Gaussian rows×cols matrix (the run time does not depend
// on the spectrum).
func benchMatrix(rows, cols int, seed uint64) Dense {
	d := Dense{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
	newRNG(seed).fillNormal(d.Data)
	return d
}

func BenchmarkRandomized(b *testing.B) {
	for _, c := range []struct{ rows, cols, k int }{
		{1280, 1280, 32},
		{3072, 3072, 32},
		{12288, 3072, 32},
	} {
		b.Run(fmt.Sprintf("%dx%d/k%d", c.rows, c.cols, c.k), func(b *testing.B) {
			m := benchMatrix(c.rows, c.cols, 1)
			b.ResetTimer()
			for b.Loop() {
				if _, err := Randomized(m, c.k, Options{Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFromFactors(b *testing.B) {
	f := Factored{Up: benchMatrix(1280, 32, 2), Down: benchMatrix(32, 1280, 3)}
	b.Run("1280x32x1280/k8", func(b *testing.B) {
		for b.Loop() {
			if _, err := FromFactors(f, 8); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Spectrum/1280x32x1280", func(b *testing.B) {
		for b.Loop() {
			if _, err := Spectrum(f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
