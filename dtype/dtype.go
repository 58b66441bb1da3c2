// Package dtype describes the 22 element types of the safetensors format and
// provides exact conversions between the floating-point storage formats
// (F16, BF16, F8_E4M3, F8_E5M2, F32, F64, ...) and float32.
//
// The DType constants are declared in the order of the Rust reference crate's
// Dtype enum (huggingface/safetensors), which is ordered by increasing
// alignment. That numeric order is significant: the canonical safetensors
// writer orders tensors by dtype descending (larger alignment first), then by
// name, and data-section hashes (kohya sshs_model_hash, Civitai AutoV3) depend
// on it. Compare DType values with < and > to get that order.
//
// Rounding follows PyTorch (c10): every float32 to narrower-format conversion
// is round-to-nearest, ties-to-even, done once from the float32 value. The
// only deliberate differences are that the FP8 encoders saturate finite
// overflow to the largest finite value instead of producing NaN (E4M3) or
// infinity (E5M2); see F32ToE4M3 and F32ToE5M2.
package dtype

import (
	"fmt"
	"math"
	"strings"
)

// DType is a safetensors element type. The zero value is Invalid.
type DType uint8

// The safetensors dtypes, in the Rust crate's enum order (increasing alignment).
const (
	Invalid    DType = iota // not a dtype
	Bool                    // BOOL: one byte, 0 or 1
	F4                      // F4: 4-bit float (e2m1), two per byte
	F6E2M3                  // F6_E2M3: 6-bit float
	F6E3M2                  // F6_E3M2: 6-bit float
	U8                      // U8: unsigned 8-bit integer
	I8                      // I8: signed 8-bit integer
	F8E5M2                  // F8_E5M2: 8-bit float, 5 exponent bits, IEEE-like (has inf)
	F8E4M3                  // F8_E4M3: 8-bit float e4m3fn (no inf, NaN 0x7F/0xFF, max 448)
	F8E8M0                  // F8_E8M0: 8-bit power-of-two scale (2^(c-127), 0xFF NaN)
	F8E4M3FNUZ              // F8_E4M3FNUZ: e4m3, bias 8, no inf, no -0, NaN 0x80
	F8E5M2FNUZ              // F8_E5M2FNUZ: e5m2, bias 16, no inf, no -0, NaN 0x80
	I16                     // I16: signed 16-bit integer
	U16                     // U16: unsigned 16-bit integer
	F16                     // F16: IEEE 754 binary16
	BF16                    // BF16: bfloat16
	I32                     // I32: signed 32-bit integer
	U32                     // U32: unsigned 32-bit integer
	F32                     // F32: IEEE 754 binary32
	C64                     // C64: complex of two float32
	F64                     // F64: IEEE 754 binary64
	I64                     // I64: signed 64-bit integer
	U64                     // U64: unsigned 64-bit integer
)

// Count is the number of valid dtypes; valid values are 1..Count.
const Count = int(U64)

var names = [...]string{
	Invalid:    "INVALID",
	Bool:       "BOOL",
	F4:         "F4",
	F6E2M3:     "F6_E2M3",
	F6E3M2:     "F6_E3M2",
	U8:         "U8",
	I8:         "I8",
	F8E5M2:     "F8_E5M2",
	F8E4M3:     "F8_E4M3",
	F8E8M0:     "F8_E8M0",
	F8E4M3FNUZ: "F8_E4M3FNUZ",
	F8E5M2FNUZ: "F8_E5M2FNUZ",
	I16:        "I16",
	U16:        "U16",
	F16:        "F16",
	BF16:       "BF16",
	I32:        "I32",
	U32:        "U32",
	F32:        "F32",
	C64:        "C64",
	F64:        "F64",
	I64:        "I64",
	U64:        "U64",
}

var bitSizes = [...]int{
	Bool: 8, F4: 4, F6E2M3: 6, F6E3M2: 6, U8: 8, I8: 8,
	F8E5M2: 8, F8E4M3: 8, F8E8M0: 8, F8E4M3FNUZ: 8, F8E5M2FNUZ: 8,
	I16: 16, U16: 16, F16: 16, BF16: 16,
	I32: 32, U32: 32, F32: 32,
	C64: 64, F64: 64, I64: 64, U64: 64,
}

// Valid reports whether d is one of the 22 safetensors dtypes.
func (d DType) Valid() bool { return d >= Bool && d <= U64 }

// String returns the safetensors name ("F16", "F8_E4M3", ...), or
// "DType(n)" for an invalid value.
func (d DType) String() string {
	if d.Valid() {
		return names[d]
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// BitSize returns the number of bits per element (4 for F4, 6 for F6_*),
// or 0 for an invalid dtype.
func (d DType) BitSize() int {
	if d.Valid() {
		return bitSizes[d]
	}
	return 0
}

// Alignment returns the natural byte alignment of one element (1 for the
// sub-byte and 8-bit types), or 0 for an invalid dtype. The canonical writer
// order uses the DType value itself (see the package comment), which refines
// this alignment order.
func (d DType) Alignment() int {
	b := d.BitSize()
	if b == 0 {
		return 0
	}
	if b < 8 {
		return 1
	}
	return b / 8
}

// IsFloat reports whether d is one of the floating-point formats with exact
// codecs in both directions: F16, BF16, F32, F64, F8_E4M3 and F8_E5M2.
// These are the dtypes Encode accepts.
func (d DType) IsFloat() bool {
	switch d {
	case F16, BF16, F32, F64, F8E4M3, F8E5M2:
		return true
	}
	return false
}

// CanDecode reports whether Decode can convert d to float32. This is every
// dtype except F4, F6_E2M3, F6_E3M2 and C64. Integers wider than 24 bits and
// F64 are rounded to the nearest float32.
func (d DType) CanDecode() bool {
	switch d {
	case F4, F6E2M3, F6E3M2, C64:
		return false
	}
	return d.Valid()
}

// Parse returns the dtype with the exact safetensors name s (e.g. "BF16").
func Parse(s string) (DType, error) {
	for d := Bool; d <= U64; d++ {
		if names[d] == s {
			return d, nil
		}
	}
	return Invalid, fmt.Errorf("unknown dtype %q", s)
}

var userNames = map[string]DType{
	"fp32": F32, "float32": F32, "float": F32, "f32": F32,
	"fp16": F16, "float16": F16, "half": F16, "f16": F16,
	"bf16": BF16, "bfloat16": BF16,
	"fp8": F8E4M3, "fp8_e4m3fn": F8E4M3, "f8_e4m3": F8E4M3, "e4m3": F8E4M3,
	"float8_e4m3fn": F8E4M3, "e4m3fn": F8E4M3,
	"fp8_e5m2": F8E5M2, "f8_e5m2": F8E5M2, "e5m2": F8E5M2, "float8_e5m2": F8E5M2,
	"fp64": F64, "float64": F64, "double": F64, "f64": F64,
}

// ParseUser parses a dtype as a user would type it on the command line:
// fp32/float32/float/f32, fp16/float16/half/f16, bf16/bfloat16,
// fp8/fp8_e4m3fn/f8_e4m3/e4m3, fp8_e5m2/f8_e5m2/e5m2, fp64/float64/double,
// or any safetensors name. Matching is case-insensitive.
func ParseUser(s string) (DType, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if d, ok := userNames[t]; ok {
		return d, nil
	}
	if d, err := Parse(strings.ToUpper(t)); err == nil {
		return d, nil
	}
	return Invalid, fmt.Errorf("unknown dtype %q (want fp32, fp16, bf16, fp8_e4m3fn, fp8_e5m2, fp64 or a safetensors name such as F16)", s)
}

// Size returns the number of bytes occupied by numel elements of d. It fails
// for an invalid dtype, a negative count, an int64 overflow, and sub-byte
// dtypes whose total is not a whole number of bytes.
func Size(d DType, numel int64) (int64, error) {
	bits := int64(d.BitSize())
	if bits == 0 {
		return 0, fmt.Errorf("invalid dtype %v", d)
	}
	if numel < 0 {
		return 0, fmt.Errorf("negative element count %d", numel)
	}
	if numel > math.MaxInt64/bits {
		return 0, fmt.Errorf("%d elements of %v overflow a 64-bit byte count", numel, d)
	}
	total := numel * bits
	if total%8 != 0 {
		return 0, fmt.Errorf("%d elements of %v are %d bits, not a whole number of bytes", numel, d, total)
	}
	return total / 8, nil
}
