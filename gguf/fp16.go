package gguf

import "math"

// fp16ToFP32 is ggml's ggml_compute_fp16_to_fp32 (exact; NaN payloads kept).
func fp16ToFP32(h uint16) float32 {
	w := uint32(h) << 16
	sign := w & 0x80000000
	twoW := w + w
	const expOffset = uint32(0xE0) << 23
	const expScale = float32(0x1.0p-112)
	normalized := float32(math.Float32frombits((twoW>>4)+expOffset) * expScale)
	const magicMask = uint32(126) << 23
	denormalized := float32(math.Float32frombits((twoW>>17)|magicMask) - 0.5)
	var r uint32
	if twoW < 1<<27 {
		r = math.Float32bits(denormalized)
	} else {
		r = math.Float32bits(normalized)
	}
	return math.Float32frombits(sign | r)
}

// fp32ToFP16 is ggml's ggml_compute_fp32_to_fp16: round to nearest even,
// overflow to infinity, NaN to a quiet NaN with the sign kept.
func fp32ToFP16(f float32) uint16 {
	const scaleToInf = float32(0x1.0p+112)
	const scaleToZero = float32(0x1.0p-110)
	base := float32(float32(abs32(f)*scaleToInf) * scaleToZero)
	w := math.Float32bits(f)
	shl1W := w + w
	sign := w & 0x80000000
	bias := shl1W & 0xFF000000
	if bias < 0x71000000 {
		bias = 0x71000000
	}
	base = float32(math.Float32frombits((bias>>1)+0x07800000) + base)
	bits := math.Float32bits(base)
	expBits := (bits >> 13) & 0x00007C00
	mantissaBits := bits & 0x00000FFF
	nonsign := expBits + mantissaBits
	if shl1W > 0xFF000000 {
		return uint16(sign>>16) | 0x7E00
	}
	return uint16(sign>>16) | uint16(nonsign)
}

// bf16ToFP32 widens a bfloat16.
func bf16ToFP32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// fp32ToBF16 is ggml's ggml_compute_fp32_to_bf16 (round to nearest even,
// NaN forced quiet).
func fp32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + (0x7fff + ((u >> 16) & 1))) >> 16)
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

func f16le(b []byte) float32 { return fp16ToFP32(uint16(b[0]) | uint16(b[1])<<8) }

func putF16(b []byte, f float32) {
	h := fp32ToFP16(f)
	b[0], b[1] = byte(h), byte(h>>8)
}
