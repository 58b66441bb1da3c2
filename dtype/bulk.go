package dtype

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Stats counts the noteworthy events of an Encode call.
type Stats struct {
	Clamped int // finite values saturated to the largest finite value (FP8 targets)
	NaN     int // NaN inputs (encoded as the target's NaN)
}

// Add returns the element-wise sum of s and o.
func (s Stats) Add(o Stats) Stats {
	return Stats{Clamped: s.Clamped + o.Clamped, NaN: s.NaN + o.NaN}
}

// Decode tables, built once at package initialisation from the scalar
// decoders (exact by construction; the tests check every code).
var (
	f16Table      [65536]float32
	e4m3Table     [256]float32
	e5m2Table     [256]float32
	e4m3fnuzTable [256]float32
	e5m2fnuzTable [256]float32
	e8m0Table     [256]float32
)

func init() {
	for i := range f16Table {
		f16Table[i] = F16ToF32(uint16(i))
	}
	for i := 0; i < 256; i++ {
		b := uint8(i)
		e4m3Table[i] = E4M3ToF32(b)
		e5m2Table[i] = E5M2ToF32(b)
		e4m3fnuzTable[i] = E4M3FNUZToF32(b)
		e5m2fnuzTable[i] = E5M2FNUZToF32(b)
		e8m0Table[i] = E8M0ToF32(b)
	}
}

func checkLen(d DType, nbytes int, numel int) error {
	want, err := Size(d, int64(numel))
	if err != nil {
		return err
	}
	if int64(nbytes) != want {
		return fmt.Errorf("%d elements of %v need %d bytes, buffer has %d", numel, d, want, nbytes)
	}
	return nil
}

// Decode converts little-endian elements of dtype d in src to float32 in
// dst. len(src) must be exactly len(dst) elements of d. Every dtype for
// which CanDecode is true is supported; BOOL decodes to 0 or 1.
func Decode(d DType, src []byte, dst []float32) error {
	if !d.CanDecode() {
		return fmt.Errorf("cannot decode %v to float32", d)
	}
	if err := checkLen(d, len(src), len(dst)); err != nil {
		return err
	}
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		decodeF16(src, dst)
	case BF16:
		decodeBF16(src, dst)
	case F8E4M3:
		decodeE4M3(src, dst)
	case F8E5M2:
		decode8(src, dst, &e5m2Table)
	case F8E4M3FNUZ:
		decode8(src, dst, &e4m3fnuzTable)
	case F8E5M2FNUZ:
		decode8(src, dst, &e5m2fnuzTable)
	case F8E8M0:
		decode8(src, dst, &e8m0Table)
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	case Bool:
		for i := range dst {
			if src[i] != 0 {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	case U8:
		for i := range dst {
			dst[i] = float32(src[i])
		}
	case I8:
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case I16:
		for i := range dst {
			dst[i] = float32(int16(binary.LittleEndian.Uint16(src[2*i:])))
		}
	case U16:
		for i := range dst {
			dst[i] = float32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case I32:
		for i := range dst {
			dst[i] = float32(int32(binary.LittleEndian.Uint32(src[4*i:])))
		}
	case U32:
		for i := range dst {
			dst[i] = float32(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case I64:
		for i := range dst {
			dst[i] = float32(int64(binary.LittleEndian.Uint64(src[8*i:])))
		}
	case U64:
		for i := range dst {
			dst[i] = float32(binary.LittleEndian.Uint64(src[8*i:]))
		}
	default:
		return fmt.Errorf("cannot decode %v to float32", d)
	}
	return nil
}

func decode16(src []byte, dst []float32, t *[65536]float32) {
	src = src[:2*len(dst)]
	for i := range dst {
		b := src[2*i : 2*i+2 : 2*i+2]
		dst[i] = t[uint16(b[0])|uint16(b[1])<<8]
	}
}

func decode8(src []byte, dst []float32, t *[256]float32) {
	src = src[:len(dst)]
	for i, b := range src {
		dst[i] = t[b]
	}
}

// Encode converts float32 values to little-endian elements of the float
// dtype d (F32, F64, F16, BF16, F8_E4M3, F8_E5M2) in dst, which must be
// exactly len(src) elements of d long. Rounding is as in the scalar
// functions (F32ToF16, F32ToBF16, F32ToE4M3, F32ToE5M2); the returned Stats
// count NaN inputs and values saturated by the FP8 encoders.
func Encode(d DType, src []float32, dst []byte) (Stats, error) {
	return encode(d, src, dst, nil)
}

// encode is Encode; acc, when not nil, accumulates the rounding loss.
func encode(d DType, src []float32, dst []byte, acc *lossAcc) (Stats, error) {
	var st Stats
	if !d.IsFloat() {
		return st, fmt.Errorf("cannot encode float32 to %v", d)
	}
	if err := checkLen(d, len(dst), len(src)); err != nil {
		return st, err
	}
	switch d {
	case F32:
		for i, v := range src {
			if v != v {
				st.NaN++
			}
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F64:
		for i, v := range src {
			if v != v {
				st.NaN++
			}
			binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(float64(v)))
		}
	case F16:
		st.NaN = encodeF16(src, dst, acc)
	case BF16:
		st.NaN = encodeBF16(src, dst, acc)
	case F8E4M3:
		st.NaN, st.Clamped = encodeE4M3(src, dst, acc)
	case F8E5M2:
		st.NaN, st.Clamped = encodeE5M2Go(src, dst, acc)
	}
	return st, nil
}
