package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Quantize encodes src (a whole number of blocks) as type t into dst, which
// must be exactly RowSize(len(src)) bytes. Block types follow ggml's
// reference row quantizers (quantize_row_*_ref: no importance matrix)
// byte for byte; F16 and BF16 round to nearest even as ggml does.
func Quantize(t Type, src []float32, dst []byte) error {
	if !t.CanQuantize() {
		return fmt.Errorf("cannot quantize to tensor type %v", t)
	}
	need, err := t.RowSize(int64(len(src)))
	if err != nil {
		return err
	}
	if int64(len(dst)) != need {
		return fmt.Errorf("%v: %d bytes for %d elements, want %d", t, len(dst), len(src), need)
	}
	switch t {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
		return nil
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], fp32ToFP16(v))
		}
		return nil
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], fp32ToBF16(v))
		}
		return nil
	}
	var f func(x []float32, y []byte)
	switch t {
	case Q4_0:
		f = quantQ4_0
	case Q4_1:
		f = quantQ4_1
	case Q5_0:
		f = quantQ5_0
	case Q5_1:
		f = quantQ5_1
	case Q8_0:
		f = quantQ8_0
	case Q2_K:
		f = quantQ2_K
	case Q3_K:
		f = quantQ3_K
	case Q4_K:
		f = quantQ4_K
	case Q5_K:
		f = quantQ5_K
	case Q6_K:
		f = quantQ6_K
	}
	bs, ts := t.BlockSize(), t.TypeSize()
	for i := 0; i < len(src)/bs; i++ {
		f(src[i*bs:(i+1)*bs], dst[i*ts:(i+1)*ts])
	}
	return nil
}

// roundf is C's roundf (half away from zero) followed by the conversion to
// a 32-bit integer (what storing it to an int8_t does on x86-64), for
// |x| < 2^31; NaN gives the same 0x80000000 as cvttss2si.
func roundf(x float32) int32 {
	i := int32(x)
	f := x - float32(i)
	if f >= 0.5 {
		i++
	} else if f <= -0.5 {
		i--
	}
	return i
}

// cInt8 converts like C's (int8_t) of a float on x86-64: truncate to a
// 32-bit integer (cvttss2si), keep the low byte.
func cInt8(f float32) int8 { return int8(int32(f)) }

const groupMaxEps = float32(1e-15)

// nearestInt is ggml's nearest_int (round half to even via the 1.5*2^23
// trick; valid for |f| <= 4194303).
func nearestInt(f float32) int {
	v := float32(f + 12582912)
	i := int32(math.Float32bits(v))
	return int(i&0x007fffff) - 0x00400000
}

func clampInt(v, lo, hi int) int { return max(lo, min(hi, v)) }

func quantQ4_0(x []float32, y []byte) {
	var amax, mx float32
	for _, v := range x {
		if amax < abs32(v) {
			amax, mx = abs32(v), v
		}
	}
	d := mx / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(y, d)
	for j := 0; j < 16; j++ {
		x0, x1 := float32(x[j]*id), float32(x[j+16]*id)
		xi0 := min(15, cInt8(float32(x0+8.5)))
		xi1 := min(15, cInt8(float32(x1+8.5)))
		y[2+j] = byte(xi0) | byte(xi1)<<4
	}
}

func quantQ4_1(x []float32, y []byte) {
	mn, mx := float32(math.MaxFloat32), float32(-math.MaxFloat32)
	for _, v := range x {
		if v < mn {
			mn = v
		}
		if v > mx {
			mx = v
		}
	}
	d := (mx - mn) / 15
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(y, d)
	putF16(y[2:], mn)
	for j := 0; j < 16; j++ {
		x0, x1 := float32((x[j]-mn)*id), float32((x[j+16]-mn)*id)
		xi0 := min(15, cInt8(float32(x0+0.5)))
		xi1 := min(15, cInt8(float32(x1+0.5)))
		y[4+j] = byte(xi0) | byte(xi1)<<4
	}
}

func quantQ5_0(x []float32, y []byte) {
	var amax, mx float32
	for _, v := range x {
		if amax < abs32(v) {
			amax, mx = abs32(v), v
		}
	}
	d := mx / -16
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(y, d)
	var qh uint32
	for j := 0; j < 16; j++ {
		x0, x1 := float32(x[j]*id), float32(x[j+16]*id)
		xi0 := byte(min(31, cInt8(float32(x0+16.5))))
		xi1 := byte(min(31, cInt8(float32(x1+16.5))))
		y[6+j] = xi0&0x0F | (xi1&0x0F)<<4
		qh |= uint32((xi0&0x10)>>4) << j
		qh |= uint32((xi1&0x10)>>4) << (j + 16)
	}
	binary.LittleEndian.PutUint32(y[2:], qh)
}

func quantQ5_1(x []float32, y []byte) {
	mn, mx := float32(math.MaxFloat32), float32(-math.MaxFloat32)
	for _, v := range x {
		if v < mn {
			mn = v
		}
		if v > mx {
			mx = v
		}
	}
	d := (mx - mn) / 31
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(y, d)
	putF16(y[2:], mn)
	var qh uint32
	for j := 0; j < 16; j++ {
		x0, x1 := float32((x[j]-mn)*id), float32((x[j+16]-mn)*id)
		xi0 := byte(int32(float32(x0 + 0.5)))
		xi1 := byte(int32(float32(x1 + 0.5)))
		y[8+j] = xi0&0x0F | (xi1&0x0F)<<4
		qh |= uint32((xi0&0x10)>>4) << j
		qh |= uint32((xi1&0x10)>>4) << (j + 16)
	}
	binary.LittleEndian.PutUint32(y[4:], qh)
}

func quantQ8_0(x []float32, y []byte) {
	var amax float32
	for _, v := range x {
		if !(amax > abs32(v)) {
			amax = abs32(v)
		}
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(y, d)
	for j := 0; j < 32; j++ {
		y[2+j] = byte(roundf(float32(x[j] * id)))
	}
}

// makeQXQuants is ggml's make_qx_quants with rmse_type 1 and no weights
// (the only form the reference quantizers use).
func makeQXQuants(n, nmax int, x []float32, L []int8) float32 {
	var mx, amax float32
	for i := 0; i < n; i++ {
		if ax := abs32(x[i]); ax > amax {
			amax, mx = ax, x[i]
		}
	}
	if amax < groupMaxEps {
		for i := 0; i < n; i++ {
			L[i] = 0
		}
		return 0
	}
	fnmax := float32(nmax)
	iscale := -fnmax / mx
	var sumlx, suml2 float32
	for i := 0; i < n; i++ {
		l := clampInt(nearestInt(float32(iscale*x[i])), -nmax, nmax-1)
		L[i] = int8(l + nmax)
		w := float32(x[i] * x[i])
		fl := float32(l)
		sumlx = sumlx + float32(float32(w*x[i])*fl)
		suml2 = suml2 + float32(float32(w*fl)*fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := float32(scale * sumlx)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -float32(fnmax+float32(float32(0.1)*float32(is))) / mx
		sumlx, suml2 = 0, 0
		for i := 0; i < n; i++ {
			l := clampInt(nearestInt(float32(iscale*x[i])), -nmax, nmax-1)
			w := float32(x[i] * x[i])
			fl := float32(l)
			sumlx = sumlx + float32(float32(w*x[i])*fl)
			suml2 = suml2 + float32(float32(w*fl)*fl)
		}
		if suml2 > 0 && float32(sumlx*sumlx) > float32(best*suml2) {
			for i := 0; i < n; i++ {
				l := nearestInt(float32(iscale * x[i]))
				L[i] = int8(nmax + clampInt(l, -nmax, nmax-1))
			}
			scale = sumlx / suml2
			best = float32(scale * sumlx)
		}
	}
	return scale
}

// makeQ3Quants is ggml's make_q3_quants with do_rmse.
func makeQ3Quants(n, nmax int, x []float32, L []int8) float32 {
	var mx, amax float32
	for i := 0; i < n; i++ {
		if ax := abs32(x[i]); ax > amax {
			amax, mx = ax, x[i]
		}
	}
	if amax < groupMaxEps {
		for i := 0; i < n; i++ {
			L[i] = 0
		}
		return 0
	}
	iscale := -float32(nmax) / mx
	var sumlx, suml2 float32
	for i := 0; i < n; i++ {
		l := clampInt(nearestInt(float32(iscale*x[i])), -nmax, nmax-1)
		L[i] = int8(l)
		w := float32(x[i] * x[i])
		fl := float32(l)
		sumlx = sumlx + float32(float32(w*x[i])*fl)
		suml2 = suml2 + float32(float32(w*fl)*fl)
	}
	for itry := 0; itry < 5; itry++ {
		changed := 0
		for i := 0; i < n; i++ {
			w := float32(x[i] * x[i])
			fL := float32(L[i])
			slx := sumlx - float32(float32(w*x[i])*fL)
			if slx > 0 {
				sl2 := suml2 - float32(float32(w*fL)*fL)
				newL := clampInt(nearestInt(float32(x[i]*sl2)/slx), -nmax, nmax-1)
				if newL != int(L[i]) {
					fn := float32(newL)
					slx = slx + float32(float32(w*x[i])*fn)
					sl2 = sl2 + float32(float32(w*fn)*fn)
					if sl2 > 0 && float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
						L[i] = int8(newL)
						sumlx, suml2 = slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := 0; i < n; i++ {
		L[i] += int8(nmax)
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// makeQKX2Quants is ggml's make_qkx2_quants. It returns the scale and the
// (positive) minimum.
func makeQKX2Quants(n, nmax int, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMAD bool) (float32, float32) {
	x, weights, L, Laux = x[:n], weights[:n], L[:n], Laux[:n]
	mn, mx := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < mn {
			mn = x[i]
		}
		if x[i] > mx {
			mx = x[i]
		}
		w := weights[i]
		sumW = sumW + w
		sumX = sumX + float32(w*x[i])
	}
	if mn > 0 {
		mn = 0
	}
	if mx == mn {
		for i := 0; i < n; i++ {
			L[i] = 0
		}
		return 0, -mn
	}
	fnmax := float32(nmax)
	iscale := fnmax / (mx - mn)
	scale := 1 / iscale
	var bestError float32
	for i := 0; i < n; i++ {
		l := nearestInt(float32(iscale * float32(x[i]-mn)))
		L[i] = uint8(clampInt(l, 0, nmax))
		diff := float32(float32(float32(scale*float32(L[i]))+mn) - x[i])
		if useMAD {
			diff = abs32(diff)
		} else {
			diff = float32(diff * diff)
		}
		bestError = bestError + float32(weights[i]*diff)
	}
	for is := 0; is <= nstep; is++ {
		iscale = float32(float32(rmin+float32(rdelta*float32(is)))+fnmax) / (mx - mn)
		var sumL, sumL2, sumXL float32
		for i, xi := range x {
			v := float32(float32(iscale*float32(xi-mn)) + 12582912)
			l := int(int32(math.Float32bits(v))&0x007fffff) - 0x00400000
			if l < 0 {
				l = 0
			} else if l > nmax {
				l = nmax
			}
			Laux[i] = uint8(l)
			fl := float32(l)
			wl := float32(weights[i] * fl)
			sumL = sumL + wl
			sumL2 = sumL2 + float32(wl*fl)
			sumXL = sumXL + float32(wl*xi)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curError float32
			for i, xi := range x {
				diff := float32(float32(float32(thisScale*float32(Laux[i]))+thisMin) - xi)
				if useMAD {
					diff = abs32(diff)
				} else {
					diff = float32(diff * diff)
				}
				curError = curError + float32(weights[i]*diff)
			}
			if curError < bestError {
				copy(L[:n], Laux[:n])
				bestError = curError
				scale, mn = thisScale, thisMin
			}
		}
	}
	return scale, -mn
}

func quantQ2_K(x []float32, y []byte) {
	var L [QK_K]uint8
	var weights [16]float32
	var laux [16]uint8
	var mins, scales [QK_K / 16]float32
	const q4scale = float32(15)
	var maxScale, maxMin float32
	for j := 0; j < QK_K/16; j++ {
		for l := 0; l < 16; l++ {
			weights[l] = abs32(x[16*j+l])
		}
		scales[j], mins[j] = makeQKX2Quants(16, 3, x[16*j:], weights[:], L[16*j:], laux[:], -0.5, 0.1, 15, true)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	sc := y[0:16]
	if maxScale > 0 {
		iscale := q4scale / maxScale
		for j := range sc {
			sc[j] = byte(nearestInt(float32(iscale * scales[j])))
		}
		putF16(y[80:], maxScale/q4scale)
	} else {
		for j := range sc {
			sc[j] = 0
		}
		putF16(y[80:], 0)
	}
	if maxMin > 0 {
		iscale := q4scale / maxMin
		for j := range sc {
			l := nearestInt(float32(iscale * mins[j]))
			sc[j] |= byte(l << 4)
		}
		putF16(y[82:], maxMin/q4scale)
	} else {
		putF16(y[82:], 0)
	}
	yd, ydmin := f16le(y[80:]), f16le(y[82:])
	for j := 0; j < QK_K/16; j++ {
		d := float32(yd * float32(sc[j]&0xF))
		if d == 0 {
			continue
		}
		dm := float32(ydmin * float32(sc[j]>>4))
		for ii := 0; ii < 16; ii++ {
			l := nearestInt(float32(x[16*j+ii]+dm) / d)
			L[16*j+ii] = uint8(clampInt(l, 0, 3))
		}
	}
	qs := y[16:80]
	for j := 0; j < QK_K; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

func quantQ3_K(x []float32, y []byte) {
	var L [QK_K]int8
	var scales [QK_K / 16]float32
	var maxScale, amax float32
	for j := 0; j < QK_K/16; j++ {
		scales[j] = makeQ3Quants(16, 4, x[16*j:], L[16*j:])
		if s := abs32(scales[j]); s > amax {
			amax, maxScale = s, scales[j]
		}
	}
	hmask, qs, sc := y[0:32], y[32:96], y[96:108]
	clear(sc)
	if maxScale != 0 {
		iscale := -32 / maxScale
		for j := 0; j < QK_K/16; j++ {
			l := int8(nearestInt(float32(iscale * scales[j])))
			l = int8(clampInt(int(l), -32, 31) + 32)
			if j < 8 {
				sc[j] = byte(l) & 0xF
			} else {
				sc[j-8] |= (byte(l) & 0xF) << 4
			}
			l >>= 4
			sc[j%4+8] |= byte(l) << (2 * (j / 4))
		}
		putF16(y[108:], 1/iscale)
	} else {
		putF16(y[108:], 0)
	}
	yd := f16le(y[108:])
	for j := 0; j < QK_K/16; j++ {
		s := int8(q3Scale(sc, j)) - 32
		d := float32(yd * float32(s))
		if d == 0 {
			continue
		}
		for ii := 0; ii < 16; ii++ {
			l := clampInt(nearestInt(x[16*j+ii]/d), -4, 3)
			L[16*j+ii] = int8(l + 4)
		}
	}
	clear(hmask)
	m, hm := 0, byte(1)
	for j := 0; j < QK_K; j++ {
		if L[j] > 3 {
			hmask[m] |= hm
			L[j] -= 4
		}
		m++
		if m == QK_K/8 {
			m, hm = 0, hm<<1
		}
	}
	for j := 0; j < QK_K; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = byte(L[j+l]) | byte(L[j+l+32])<<2 | byte(L[j+l+64])<<4 | byte(L[j+l+96])<<6
		}
	}
}

// quantK45 holds the shared part of the Q4_K and Q5_K reference
// quantizers: sub-block scales and mins, the 12-byte packed scales, d and
// dmin in y[0:16], and the final levels in L.
func quantK45(x []float32, y []byte, nmax int, rmin float32, nstep int, L *[QK_K]uint8) {
	var Laux [32]uint8
	var weights [32]float32
	var mins, scales [QK_K / 32]float32
	var maxScale, maxMin float32
	for j := 0; j < QK_K/32; j++ {
		var sumX2 float32
		for l := 0; l < 32; l++ {
			sumX2 = sumX2 + float32(x[32*j+l]*x[32*j+l])
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l := 0; l < 32; l++ {
			weights[l] = avX + abs32(x[32*j+l])
		}
		scales[j], mins[j] = makeQKX2Quants(32, nmax, x[32*j:], weights[:], L[32*j:], Laux[:], rmin, 0.1, nstep, false)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := y[4:16]
	for j := 0; j < QK_K/32; j++ {
		ls := min(63, uint8(nearestInt(float32(invScale*scales[j]))))
		lm := min(63, uint8(nearestInt(float32(invMin*mins[j]))))
		if j < 4 {
			sc[j] = ls
			sc[j+4] = lm
		} else {
			sc[j+4] = ls&0xF | (lm&0xF)<<4
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	putF16(y, maxScale/63)
	putF16(y[2:], maxMin/63)
	yd, ydmin := f16le(y), f16le(y[2:])
	for j := 0; j < QK_K/32; j++ {
		s, m := scaleMinK4(j, sc)
		d := float32(yd * float32(s))
		if d == 0 {
			continue
		}
		dm := float32(ydmin * float32(m))
		for ii := 0; ii < 32; ii++ {
			l := nearestInt(float32(x[32*j+ii]+dm) / d)
			L[32*j+ii] = uint8(clampInt(l, 0, nmax))
		}
	}
}

func quantQ4_K(x []float32, y []byte) {
	var L [QK_K]uint8
	quantK45(x, y, 15, -1, 20, &L)
	q := y[16:144]
	for j := 0; j < QK_K; j += 64 {
		for l := 0; l < 32; l++ {
			q[l] = L[j+l] | L[j+l+32]<<4
		}
		q = q[32:]
	}
}

func quantQ5_K(x []float32, y []byte) {
	var L [QK_K]uint8
	quantK45(x, y, 31, -0.5, 15, &L)
	qh, ql := y[16:48], y[48:176]
	clear(qh)
	var m1, m2 byte = 1, 2
	for n := 0; n < QK_K; n += 64 {
		for j := 0; j < 32; j++ {
			l1 := L[n+j]
			if l1 > 15 {
				l1 -= 16
				qh[j] |= m1
			}
			l2 := L[n+j+32]
			if l2 > 15 {
				l2 -= 16
				qh[j] |= m2
			}
			ql[j] = l1 | l2<<4
		}
		m1 <<= 2
		m2 <<= 2
		ql = ql[32:]
	}
}

func quantQ6_K(x []float32, y []byte) {
	var L [QK_K]int8
	var scales [QK_K / 16]float32
	var maxScale, maxAbsScale float32
	for ib := 0; ib < QK_K/16; ib++ {
		scale := makeQXQuants(16, 32, x[16*ib:], L[16*ib:])
		scales[ib] = scale
		if a := abs32(scale); a > maxAbsScale {
			maxAbsScale, maxScale = a, scale
		}
	}
	if maxAbsScale < groupMaxEps {
		clear(y[:210])
		return
	}
	iscale := -128 / maxScale
	putF16(y[208:], 1/iscale)
	sc := y[192:208]
	for ib := 0; ib < QK_K/16; ib++ {
		sc[ib] = byte(int8(min(127, nearestInt(float32(iscale*scales[ib])))))
	}
	yd := f16le(y[208:])
	for j := 0; j < QK_K/16; j++ {
		d := float32(yd * float32(int8(sc[j])))
		if d == 0 {
			continue
		}
		for ii := 0; ii < 16; ii++ {
			l := clampInt(nearestInt(x[16*j+ii]/d), -32, 31)
			L[16*j+ii] = int8(l + 32)
		}
	}
	ql, qh := y[0:128], y[128:192]
	for j := 0; j < QK_K; j += 128 {
		for l := 0; l < 32; l++ {
			q1 := byte(L[j+l]) & 0xF
			q2 := byte(L[j+l+32]) & 0xF
			q3 := byte(L[j+l+64]) & 0xF
			q4 := byte(L[j+l+96]) & 0xF
			ql[l] = q1 | q3<<4
			ql[l+32] = q2 | q4<<4
			qh[l] = byte(L[j+l])>>4 | (byte(L[j+l+32])>>4)<<2 | (byte(L[j+l+64])>>4)<<4 | (byte(L[j+l+96])>>4)<<6
		}
		ql = ql[64:]
		qh = qh[32:]
	}
}
