package merge

import (
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"

	"github.com/loratool/loratool/dtype"
)

// nonFinite counts the NaN and ±Inf values of v.
func nonFinite(v []float32) int {
	n := 0
	for _, x := range v {
		if x-x != 0 {
			n++
		}
	}
	return n
}

// countInf counts the ±Inf values of v.
func countInf(v []float32) int {
	n := 0
	for _, x := range v {
		if math.IsInf(float64(x), 0) {
			n++
		}
	}
	return n
}

// encodedInf counts the ±Inf codes of an encoded buffer (dtypes that have
// them: F16, BF16, F8_E5M2, F32).
func encodedInf(d dtype.DType, b []byte) int {
	n := 0
	switch d {
	case dtype.F16:
		for i := 0; i+1 < len(b); i += 2 {
			if binary.LittleEndian.Uint16(b[i:])&0x7fff == 0x7c00 {
				n++
			}
		}
	case dtype.BF16:
		for i := 0; i+1 < len(b); i += 2 {
			if binary.LittleEndian.Uint16(b[i:])&0x7fff == 0x7f80 {
				n++
			}
		}
	case dtype.F8E5M2:
		for _, c := range b {
			if c&0x7f == 0x7c {
				n++
			}
		}
	case dtype.F32:
		for i := 0; i+3 < len(b); i += 4 {
			if binary.LittleEndian.Uint32(b[i:])&0x7fffffff == 0x7f800000 {
				n++
			}
		}
	}
	return n
}

// checkOverflow fails when encoding w to out turned finite values into
// ±Inf (a delta too large for the output dtype).
func checkOverflow(name string, out dtype.DType, w []float32, buf []byte) error {
	if got, had := encodedInf(out, buf), countInf(w); got > had {
		return fmt.Errorf("%s: %d values overflow to infinity in %s", name, got-had, out)
	}
	return nil
}

// patchNames names the modules patching a base tensor, for errors.
func (p *Plan) patchNames(key string) string {
	s := ""
	for i, pt := range p.ByKey[key] {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s from %s", pt.Module.Prefix, filepath.Base(p.Inputs[pt.Input].Path))
	}
	return s + " on " + key
}
