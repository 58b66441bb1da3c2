package arch

import (
	"fmt"
	"strconv"
	"strings"
)

// Unexported helpers shared by the DiT tables of hunyuanvideo.go, wan.go,
// qwenimage.go, hidream.go, zimage.go, lumina2.go and ltxv.go. Names carry a
// "B" suffix so they cannot collide with other files' helpers.

// tableB accumulates the parameters of one diffusion model.
type tableB struct{ ps []Param }

func (t *tableB) add(name string, shape ...int64) {
	t.ps = append(t.ps, Param{Name: name, Shape: shape})
}

// linear adds a Linear layer's weight [out, in] and, with bias, its bias.
func (t *tableB) linear(name string, out, in int64, bias bool) {
	t.add(name+".weight", out, in)
	if bias {
		t.add(name+".bias", out)
	}
}

// weight adds a 1-D norm weight (RMSNorm, affine LayerNorm without bias).
func (t *tableB) weight(name string, n int64) { t.add(name+".weight", n) }

// layerNorm adds an affine LayerNorm's weight and bias.
func (t *tableB) layerNorm(name string, n int64) {
	t.add(name+".weight", n)
	t.add(name+".bias", n)
}

// scale adds a Flux-style RMSNorm parameter ("<name>.scale").
func (t *tableB) scale(name string, n int64) { t.add(name+".scale", n) }

// aliasesB accumulates foreign module names.
type aliasesB struct{ as []Alias }

func (a *aliasesB) to(name, target string) {
	a.as = append(a.as, Alias{Name: name, Target: target})
}

func (a *aliasesB) slice(name, target string, offset, size int64) {
	a.as = append(a.as, Alias{Name: name, Target: target, Slice: &Slice{Offset: offset, Size: size}})
}

func (a *aliasesB) swapped(name, target string) {
	a.as = append(a.as, Alias{Name: name, Target: target, SwapScaleShift: true})
}

func itoaB(i int) string { return strconv.Itoa(i) }

// shapeB formats a shape for evidence strings: [3072 16 1 2 2].
func shapeB(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// dimB returns dimension i of a tensor's shape; -1 when the tensor is
// absent or has fewer dimensions (negative i counts from the end).
func dimB(v View, name string, i int) int64 {
	s := v.Shape(name)
	if i < 0 {
		i += len(s)
	}
	if s == nil || i < 0 || i >= len(s) {
		return -1
	}
	return s[i]
}

// keyEvidenceB renders "name shape" for an evidence string.
func keyEvidenceB(v View, name string) string {
	return fmt.Sprintf("%s %s", name, shapeB(v.Shape(name)))
}
