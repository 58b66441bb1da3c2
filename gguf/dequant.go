package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Every float expression below is written with explicit float32
// conversions around products that are followed by an addition or a
// subtraction: a conversion rounds and forbids the compiler from fusing
// the two into a multiply-add (which arm64 would otherwise do), so the
// results equal ggml's C code built with -ffp-contract=off.

// kvaluesIQ4NL is ggml's non-linear 4-bit codebook (kvalues_iq4nl).
var kvaluesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// Dequantize decodes src, a whole number of blocks of type t, into dst
// (len(dst) elements; src must be exactly RowSize(len(dst)) bytes). The
// results are bit-identical to ggml's dequantize_row_* functions.
func Dequantize(t Type, src []byte, dst []float32) error {
	if !t.CanDequantize() {
		return fmt.Errorf("cannot dequantize tensor type %v", t)
	}
	need, err := t.RowSize(int64(len(dst)))
	if err != nil {
		return err
	}
	if int64(len(src)) != need {
		return fmt.Errorf("%v: %d bytes for %d elements, want %d", t, len(src), len(dst), need)
	}
	bs, ts := t.BlockSize(), t.TypeSize()
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return nil
	case F16:
		for i := range dst {
			dst[i] = fp16ToFP32(binary.LittleEndian.Uint16(src[2*i:]))
		}
		return nil
	case BF16:
		for i := range dst {
			dst[i] = bf16ToFP32(binary.LittleEndian.Uint16(src[2*i:]))
		}
		return nil
	}
	var f func(b []byte, y []float32)
	switch t {
	case Q4_0:
		f = dequantQ4_0
	case Q4_1:
		f = dequantQ4_1
	case Q5_0:
		f = dequantQ5_0
	case Q5_1:
		f = dequantQ5_1
	case Q8_0:
		f = dequantQ8_0
	case Q2_K:
		f = dequantQ2_K
	case Q3_K:
		f = dequantQ3_K
	case Q4_K:
		f = dequantQ4_K
	case Q5_K:
		f = dequantQ5_K
	case Q6_K:
		f = dequantQ6_K
	case IQ4_NL:
		f = dequantIQ4_NL
	case IQ4_XS:
		f = dequantIQ4_XS
	case TQ1_0:
		f = dequantTQ1_0
	case TQ2_0:
		f = dequantTQ2_0
	case MXFP4:
		f = dequantMXFP4
	}
	for i := 0; i < len(dst)/bs; i++ {
		f(src[i*ts:(i+1)*ts], dst[i*bs:(i+1)*bs])
	}
	return nil
}

func dequantQ4_0(b []byte, y []float32) {
	d := f16le(b)
	qs := b[2:18]
	for j := 0; j < 16; j++ {
		y[j] = float32(int(qs[j]&0x0F)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

func dequantQ4_1(b []byte, y []float32) {
	d, m := f16le(b), f16le(b[2:])
	qs := b[4:20]
	for j := 0; j < 16; j++ {
		y[j] = float32(float32(qs[j]&0x0F)*d) + m
		y[j+16] = float32(float32(qs[j]>>4)*d) + m
	}
}

func dequantQ5_0(b []byte, y []float32) {
	d := f16le(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:22]
	for j := 0; j < 16; j++ {
		xh0 := byte((qh>>j)<<4) & 0x10
		xh1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(int32(qs[j]&0x0F|xh0)-16) * d
		y[j+16] = float32(int32(qs[j]>>4|xh1)-16) * d
	}
}

func dequantQ5_1(b []byte, y []float32) {
	d, m := f16le(b), f16le(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	qs := b[8:24]
	for j := 0; j < 16; j++ {
		xh0 := byte((qh>>j)<<4) & 0x10
		xh1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(float32(qs[j]&0x0F|xh0)*d) + m
		y[j+16] = float32(float32(qs[j]>>4|xh1)*d) + m
	}
}

func dequantQ8_0(b []byte, y []float32) {
	d := f16le(b)
	for j := 0; j < 32; j++ {
		y[j] = float32(int8(b[2+j])) * d
	}
}

func dequantQ2_K(b []byte, y []float32) {
	scales, q := b[0:16], b[16:80]
	d, mn := f16le(b[80:]), f16le(b[82:])
	is := 0
	for n := 0; n < QK_K; n += 128 {
		shift := 0
		for j := 0; j < 4; j++ {
			sc := scales[is]
			is++
			dl, ml := float32(d*float32(sc&0xF)), float32(mn*float32(sc>>4))
			for l := 0; l < 16; l++ {
				y[0] = float32(dl*float32((q[l]>>shift)&3)) - ml
				y = y[1:]
			}
			sc = scales[is]
			is++
			dl, ml = float32(d*float32(sc&0xF)), float32(mn*float32(sc>>4))
			for l := 0; l < 16; l++ {
				y[0] = float32(dl*float32((q[l+16]>>shift)&3)) - ml
				y = y[1:]
			}
			shift += 2
		}
		q = q[32:]
	}
}

// q3Scale returns the j-th 6-bit scale of a Q3_K block (before -32).
func q3Scale(sc []byte, j int) int {
	var lo byte
	if j < 8 {
		lo = sc[j] & 0xF
	} else {
		lo = sc[j-8] >> 4
	}
	return int(lo | ((sc[8+j%4]>>(2*(j/4)))&3)<<4)
}

func dequantQ3_K(b []byte, y []float32) {
	hm, q, sc := b[0:32], b[32:96], b[96:108]
	dAll := f16le(b[108:])
	var m byte = 1
	is := 0
	for n := 0; n < QK_K; n += 128 {
		shift := 0
		for j := 0; j < 4; j++ {
			dl := float32(dAll * float32(q3Scale(sc, is)-32))
			is++
			for l := 0; l < 16; l++ {
				v := int((q[l] >> shift) & 3)
				if hm[l]&m == 0 {
					v -= 4
				}
				y[0] = dl * float32(v)
				y = y[1:]
			}
			dl = float32(dAll * float32(q3Scale(sc, is)-32))
			is++
			for l := 0; l < 16; l++ {
				v := int((q[l+16] >> shift) & 3)
				if hm[l+16]&m == 0 {
					v -= 4
				}
				y[0] = dl * float32(v)
				y = y[1:]
			}
			shift += 2
			m <<= 1
		}
		q = q[32:]
	}
}

// scaleMinK4 is ggml's get_scale_min_k4.
func scaleMinK4(j int, q []byte) (d, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j] >> 6) << 4)
}

func dequantQ4_K(b []byte, y []float32) {
	d, mn := f16le(b), f16le(b[2:])
	scales, q := b[4:16], b[16:144]
	is := 0
	for j := 0; j < QK_K; j += 64 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := float32(d*float32(sc)), float32(mn*float32(m))
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := float32(d*float32(sc)), float32(mn*float32(m))
		for l := 0; l < 32; l++ {
			y[l] = float32(d1*float32(q[l]&0xF)) - m1
		}
		for l := 0; l < 32; l++ {
			y[32+l] = float32(d2*float32(q[l]>>4)) - m2
		}
		y = y[64:]
		q = q[32:]
		is += 2
	}
}

func dequantQ5_K(b []byte, y []float32) {
	d, mn := f16le(b), f16le(b[2:])
	scales, qh, ql := b[4:16], b[16:48], b[48:176]
	is := 0
	var u1, u2 byte = 1, 2
	for j := 0; j < QK_K; j += 64 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := float32(d*float32(sc)), float32(mn*float32(m))
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := float32(d*float32(sc)), float32(mn*float32(m))
		for l := 0; l < 32; l++ {
			v := int(ql[l] & 0xF)
			if qh[l]&u1 != 0 {
				v += 16
			}
			y[l] = float32(d1*float32(v)) - m1
		}
		for l := 0; l < 32; l++ {
			v := int(ql[l] >> 4)
			if qh[l]&u2 != 0 {
				v += 16
			}
			y[32+l] = float32(d2*float32(v)) - m2
		}
		y = y[64:]
		ql = ql[32:]
		is += 2
		u1 <<= 2
		u2 <<= 2
	}
}

func dequantQ6_K(b []byte, y []float32) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := f16le(b[208:])
	for n := 0; n < QK_K; n += 128 {
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int8(ql[l]&0xF|((qh[l]>>0)&3)<<4) - 32
			q2 := int8(ql[l+32]&0xF|((qh[l]>>2)&3)<<4) - 32
			q3 := int8(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
			q4 := int8(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
			y[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
			y[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
			y[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
			y[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
		}
		y = y[128:]
		ql = ql[64:]
		qh = qh[32:]
		sc = sc[8:]
	}
}

func dequantIQ4_NL(b []byte, y []float32) {
	d := f16le(b)
	qs := b[2:18]
	for j := 0; j < 16; j++ {
		y[j] = d * float32(kvaluesIQ4NL[qs[j]&0xf])
		y[j+16] = d * float32(kvaluesIQ4NL[qs[j]>>4])
	}
}

func dequantIQ4_XS(b []byte, y []float32) {
	d := f16le(b)
	scalesH := binary.LittleEndian.Uint16(b[2:])
	scalesL := b[4:8]
	qs := b[8:136]
	for ib := 0; ib < QK_K/32; ib++ {
		ls := int((scalesL[ib/2]>>(4*(ib%2)))&0xf) | int((scalesH>>(2*ib))&3)<<4
		dl := float32(d * float32(ls-32))
		for j := 0; j < 16; j++ {
			y[j] = dl * float32(kvaluesIQ4NL[qs[j]&0xf])
			y[j+16] = dl * float32(kvaluesIQ4NL[qs[j]>>4])
		}
		y = y[32:]
		qs = qs[16:]
	}
}

// kvaluesFP4 is ggml's kvalues_mxfp4 (twice the E2M1 values).
var kvaluesFP4 = [16]int8{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

// e8m0Half is ggml_e8m0_to_fp32_half: 2^(x-128).
func e8m0Half(x uint8) float32 {
	var bits uint32
	if x < 2 {
		bits = 0x00200000 << x
	} else {
		bits = uint32(x-1) << 23
	}
	return math.Float32frombits(bits)
}

func dequantMXFP4(b []byte, y []float32) {
	d := e8m0Half(b[0])
	qs := b[1:17]
	for j := 0; j < 16; j++ {
		y[j] = float32(kvaluesFP4[qs[j]&0x0F]) * d
		y[j+16] = float32(kvaluesFP4[qs[j]>>4]) * d
	}
}

func dequantTQ1_0(b []byte, y []float32) {
	pow3 := [6]uint8{1, 3, 9, 27, 81, 243}
	qs, qh := b[0:48], b[48:52]
	d := f16le(b[52:])
	for j := 0; j < 32; j += 32 {
		for n := 0; n < 5; n++ {
			for m := 0; m < 32; m++ {
				q := qs[j+m] * pow3[n]
				xi := int16((uint16(q) * 3) >> 8)
				y[0] = float32(xi-1) * d
				y = y[1:]
			}
		}
	}
	for j := 32; j < 48; j += 16 {
		for n := 0; n < 5; n++ {
			for m := 0; m < 16; m++ {
				q := qs[j+m] * pow3[n]
				xi := int16((uint16(q) * 3) >> 8)
				y[0] = float32(xi-1) * d
				y = y[1:]
			}
		}
	}
	for n := 0; n < 4; n++ {
		for j := 0; j < 4; j++ {
			q := qh[j] * pow3[n]
			xi := int16((uint16(q) * 3) >> 8)
			y[0] = float32(xi-1) * d
			y = y[1:]
		}
	}
}

func dequantTQ2_0(b []byte, y []float32) {
	qs := b[0:64]
	d := f16le(b[64:])
	for j := 0; j < 64; j += 32 {
		for l := 0; l < 4; l++ {
			for m := 0; m < 32; m++ {
				q := int8((qs[j+m] >> (l * 2)) & 3)
				y[0] = float32(q-1) * d
				y = y[1:]
			}
		}
	}
}
