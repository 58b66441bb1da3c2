// Package gguf reads and writes GGUF files (versions 2 and 3) as used by
// ComfyUI-GGUF, stable-diffusion.cpp and llama.cpp: a strict memory-mapped
// reader, an atomic streaming writer, and ggml's block quantization formats
// with dequantizers bit-identical to ggml's and quantizers byte-identical to
// ggml's reference row quantizers (quantize_row_*_ref, no importance matrix,
// no fused multiply-add).
package gguf

import (
	"fmt"
	"strings"
)

// Type is a ggml tensor type id as stored in a GGUF tensor info.
type Type uint32

// The ggml tensor types this package knows by name.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

// QK_K is the super-block size of the K-quants and IQ4_XS.
const QK_K = 256

type typeInfo struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
}

// typeInfos holds the block geometry of every type ggml can store in a
// file (ggml.c type_traits); sizes are needed to validate the layout even
// of types this package cannot decode.
var typeInfos = map[Type]typeInfo{
	F32: {"F32", 1, 4}, F16: {"F16", 1, 2}, BF16: {"BF16", 1, 2}, F64: {"F64", 1, 8},
	I8: {"I8", 1, 1}, I16: {"I16", 1, 2}, I32: {"I32", 1, 4}, I64: {"I64", 1, 8},
	Q4_0: {"Q4_0", 32, 18}, Q4_1: {"Q4_1", 32, 20}, Q5_0: {"Q5_0", 32, 22}, Q5_1: {"Q5_1", 32, 24},
	Q8_0: {"Q8_0", 32, 34}, Q8_1: {"Q8_1", 32, 36},
	Q2_K: {"Q2_K", QK_K, 84}, Q3_K: {"Q3_K", QK_K, 110}, Q4_K: {"Q4_K", QK_K, 144},
	Q5_K: {"Q5_K", QK_K, 176}, Q6_K: {"Q6_K", QK_K, 210}, Q8_K: {"Q8_K", QK_K, 292},
	IQ2_XXS: {"IQ2_XXS", QK_K, 66}, IQ2_XS: {"IQ2_XS", QK_K, 74}, IQ3_XXS: {"IQ3_XXS", QK_K, 98},
	IQ1_S: {"IQ1_S", QK_K, 50}, IQ4_NL: {"IQ4_NL", 32, 18}, IQ3_S: {"IQ3_S", QK_K, 110},
	IQ2_S: {"IQ2_S", QK_K, 82}, IQ4_XS: {"IQ4_XS", QK_K, 136}, IQ1_M: {"IQ1_M", QK_K, 56},
	TQ1_0: {"TQ1_0", QK_K, 54}, TQ2_0: {"TQ2_0", QK_K, 66}, MXFP4: {"MXFP4", 32, 17},
}

// Known reports whether t is a ggml type whose block geometry is known.
func (t Type) Known() bool { _, ok := typeInfos[t]; return ok }

// String returns ggml's name of the type (e.g. "Q4_K"), or "type(N)".
func (t Type) String() string {
	if ti, ok := typeInfos[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize returns the number of elements per block (1 for plain types).
func (t Type) BlockSize() int { return typeInfos[t].blockSize }

// TypeSize returns the number of bytes per block.
func (t Type) TypeSize() int { return typeInfos[t].typeSize }

// IsQuantized reports whether t is a block-quantized type.
func (t Type) IsQuantized() bool { return t.Known() && t.BlockSize() > 1 }

// CanDequantize reports whether this package can decode t to float32.
func (t Type) CanDequantize() bool {
	switch t {
	case F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, MXFP4:
		return true
	}
	return false
}

// CanQuantize reports whether this package can encode float32 to t (the
// writable types).
func (t Type) CanQuantize() bool {
	switch t {
	case F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K:
		return true
	}
	return false
}

// RowSize returns the byte size of n elements of type t, or an error when n
// is not a whole number of blocks.
func (t Type) RowSize(n int64) (int64, error) {
	ti, ok := typeInfos[t]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if n < 0 || n%int64(ti.blockSize) != 0 {
		return 0, fmt.Errorf("%d elements are not a whole number of %s blocks of %d", n, ti.name, ti.blockSize)
	}
	nb := n / int64(ti.blockSize)
	if nb > (1<<62)/int64(ti.typeSize) {
		return 0, fmt.Errorf("%d elements of %s overflow", n, ti.name)
	}
	return nb * int64(ti.typeSize), nil
}

// WritableTypes lists the types Quantize accepts, in ggml's id order.
func WritableTypes() []Type {
	return []Type{F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, BF16}
}

// ParseType parses a type name as ggml spells it ("Q4_K", "q8_0", "bf16").
// The llama.cpp file-type aliases Q4_K_M/Q4_K_S, Q3_K_*, Q5_K_* name the
// base K type.
func ParseType(s string) (Type, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	for _, suf := range []string{"_S", "_M", "_L"} {
		if strings.HasSuffix(u, "_K"+suf) {
			u = strings.TrimSuffix(u, suf)
		}
	}
	for t, ti := range typeInfos {
		if ti.name == u {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown GGUF tensor type %q", s)
}
