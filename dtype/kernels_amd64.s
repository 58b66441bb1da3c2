#include "textflag.h"

// AVX2/F16C kernels for the bulk codecs (see kernels.go). Every kernel
// processes n elements, n a multiple of 8, eight per iteration. k points to
// kconst: constant i (8 lanes) is at byte offset 32·i.
//
// The encoders also accumulate the rounding loss into acc (8 float64
// lanes, Y8 = lanes 0..3, Y9 = lanes 4..7): for each finite input v,
// (float64(stored) − float64(v))² rounded to float64 then added, exactly
// as lossAcc.add. Non-finite lanes are zeroed first and add +0.

// LOSS accumulates the lanes of the stored values Ys and inputs Yv, masked
// by Yf (all ones for finite inputs). Clobbers Ys, Yv, Y13, Y14.
#define LOSS(Ys, Xs, Yv, Xv, Yf) \
	VANDPS Yf, Ys, Ys; \
	VANDPS Yf, Yv, Yv; \
	VCVTPS2PD Xs, Y13; \
	VCVTPS2PD Xv, Y14; \
	VSUBPD Y14, Y13, Y13; \
	VMULPD Y13, Y13, Y13; \
	VADDPD Y13, Y8, Y8; \
	VEXTRACTF128 $1, Ys, Xs; \
	VEXTRACTF128 $1, Yv, Xv; \
	VCVTPS2PD Xs, Y13; \
	VCVTPS2PD Xv, Y14; \
	VSUBPD Y14, Y13, Y13; \
	VMULPD Y13, Y13, Y13; \
	VADDPD Y13, Y9, Y9

// func decF16AVX(src *byte, dst *float32, n int)
//
// VCVTPH2PS quietens signalling NaNs (sets float32 bit 22); F16ToF32 keeps
// the payload as it is, so NaN lanes get bit 22 back from the input's bit 9.
TEXT ·decF16AVX(SB), NOSPLIT, $0-24
	MOVQ src+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), CX
	MOVL $0x7fff, AX
	MOVQ AX, X10
	VPBROADCASTD X10, Y10
	MOVL $0x7c00, AX
	MOVQ AX, X11
	VPBROADCASTD X11, Y11
	MOVL $0x00400000, AX
	MOVQ AX, X12
	VPBROADCASTD X12, Y12
	SHRQ $3, CX
	JZ   decf16done

decf16loop:
	VPMOVZXWD (SI), Y0
	VCVTPH2PS (SI), Y1
	VPAND     Y10, Y0, Y2
	VPCMPGTD  Y11, Y2, Y2
	VPSLLD    $13, Y0, Y3
	VPXOR     Y1, Y3, Y3
	VPAND     Y12, Y3, Y3
	VPAND     Y2, Y3, Y3
	VPXOR     Y3, Y1, Y1
	VMOVUPS   Y1, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       decf16loop

decf16done:
	VZEROUPPER
	RET

// func decBF16AVX(src *byte, dst *float32, n int)
TEXT ·decBF16AVX(SB), NOSPLIT, $0-24
	MOVQ src+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   decbf16done

decbf16loop:
	VPMOVZXWD (SI), Y0
	VPSLLD    $16, Y0, Y0
	VMOVDQU   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       decbf16loop

decbf16done:
	VZEROUPPER
	RET

// func decE4M3AVX(src *byte, dst *float32, n int, k *[kconstN][8]uint32)
//
// Normal codes: (mag<<20) + (120<<23); subnormal codes (mag < 8): mag·2^-9;
// mag 0x7F: NaN 0x7FC00000; then the sign.
TEXT ·decE4M3AVX(SB), NOSPLIT, $0-32
	MOVQ src+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ k+24(FP), R9
	SHRQ $3, CX
	JZ   dece4done

dece4loop:
	VPMOVZXBD (SI), Y0
	VPAND     544(R9), Y0, Y1
	VPSLLD    $20, Y1, Y2
	VPADDD    448(R9), Y2, Y2
	VCVTDQ2PS Y1, Y3
	VMULPS    608(R9), Y3, Y3
	VMOVDQU   576(R9), Y4
	VPCMPGTD  Y1, Y4, Y4
	VPBLENDVB Y4, Y3, Y2, Y2
	VPCMPEQD  544(R9), Y1, Y4
	VPBLENDVB Y4, 640(R9), Y2, Y2
	VPSRLD    $7, Y0, Y0
	VPSLLD    $31, Y0, Y0
	VPOR      Y0, Y2, Y2
	VMOVUPS   Y2, (DI)
	ADDQ      $8, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       dece4loop

dece4done:
	VZEROUPPER
	RET

// func encF16AVX(src *float32, dst *byte, n int, acc *lossAcc, k *[kconstN][8]uint32) (nan int)
//
// VCVTPS2PH with imm 0 rounds to nearest even, overflows to ±inf and
// handles half subnormals as F32ToF16 does. NaNs come out as a quiet NaN
// with the input's sign and the top of its payload; F32ToF16 gives
// sign|0x7E00, so the payload bits 0x01FF of NaN lanes are cleared.
TEXT ·encF16AVX(SB), NOSPLIT, $0-48
	MOVQ    src+0(FP), SI
	MOVQ    dst+8(FP), DI
	MOVQ    n+16(FP), CX
	MOVQ    acc+24(FP), DX
	MOVQ    k+32(FP), R9
	XORQ    BX, BX
	VMOVUPD (DX), Y8
	VMOVUPD 32(DX), Y9
	VMOVDQU 0(R9), Y10
	VMOVDQU 32(R9), Y11
	VMOVDQU 160(R9), X12
	SHRQ    $3, CX
	JZ      encf16done

encf16loop:
	VMOVUPS      (SI), Y0
	VCVTPS2PH    $0, Y0, X1
	VPAND        Y10, Y0, Y2
	VPCMPGTD     Y11, Y2, Y3
	VPCMPGTD     Y2, Y11, Y4
	VMOVMSKPS    Y3, AX
	POPCNTL      AX, AX
	ADDQ         AX, BX
	VEXTRACTI128 $1, Y3, X5
	VPACKSSDW    X5, X3, X5
	VPAND        X12, X5, X5
	VPANDN       X1, X5, X1
	VMOVDQU      X1, (DI)
	VCVTPH2PS    X1, Y6
	LOSS(Y6, X6, Y0, X0, Y4)
	ADDQ         $32, SI
	ADDQ         $16, DI
	DECQ         CX
	JNZ          encf16loop

encf16done:
	VMOVUPD Y8, (DX)
	VMOVUPD Y9, 32(DX)
	MOVQ    BX, nan+40(FP)
	VZEROUPPER
	RET

// func encBF16AVX(src *float32, dst *byte, n int, acc *lossAcc, k *[kconstN][8]uint32) (nan int)
//
// (u + 0x7FFF + (u>>16)&1) >> 16, NaN lanes 0x7FC0, as F32ToBF16.
TEXT ·encBF16AVX(SB), NOSPLIT, $0-48
	MOVQ    src+0(FP), SI
	MOVQ    dst+8(FP), DI
	MOVQ    n+16(FP), CX
	MOVQ    acc+24(FP), DX
	MOVQ    k+32(FP), R9
	XORQ    BX, BX
	VMOVUPD (DX), Y8
	VMOVUPD 32(DX), Y9
	VMOVDQU 0(R9), Y10
	VMOVDQU 32(R9), Y11
	VMOVDQU 192(R9), Y12
	VMOVDQU 224(R9), Y15
	SHRQ    $3, CX
	JZ      encbf16done

encbf16loop:
	VMOVUPS      (SI), Y0
	VPSRLD       $16, Y0, Y1
	VPAND        Y12, Y1, Y1
	VPADDD       Y15, Y1, Y1
	VPADDD       Y0, Y1, Y1
	VPSRLD       $16, Y1, Y1
	VPAND        Y10, Y0, Y2
	VPCMPGTD     Y11, Y2, Y3
	VPCMPGTD     Y2, Y11, Y4
	VMOVMSKPS    Y3, AX
	POPCNTL      AX, AX
	ADDQ         AX, BX
	VPBLENDVB    Y3, 256(R9), Y1, Y1
	VPSLLD       $16, Y1, Y6
	VEXTRACTI128 $1, Y1, X5
	VPACKUSDW    X5, X1, X5
	VMOVDQU      X5, (DI)
	LOSS(Y6, X6, Y0, X0, Y4)
	ADDQ         $32, SI
	ADDQ         $16, DI
	DECQ         CX
	JNZ          encbf16loop

encbf16done:
	VMOVUPD Y8, (DX)
	VMOVUPD Y9, 32(DX)
	MOVQ    BX, nan+40(FP)
	VZEROUPPER
	RET

// func encE4M3AVX(src *float32, dst *byte, n int, acc *lossAcc, k *[kconstN][8]uint32) (nan, clamped int)
//
// F32ToE4M3 lane by lane: |v| < 2^-6 by the float add of 2^14 (subnormal
// codes), |v| <= 464 by integer rounding, larger and ±inf saturate to 0x7E
// (counted as clamped), NaN gives 0x7F (counted as NaN); then the sign.
TEXT ·encE4M3AVX(SB), NOSPLIT, $0-56
	MOVQ    src+0(FP), SI
	MOVQ    dst+8(FP), DI
	MOVQ    n+16(FP), CX
	MOVQ    acc+24(FP), DX
	MOVQ    k+32(FP), R9
	XORQ    BX, BX
	XORQ    R8, R8
	VMOVUPD (DX), Y8
	VMOVUPD 32(DX), Y9
	VMOVDQU 0(R9), Y10
	VMOVDQU 32(R9), Y11
	SHRQ    $3, CX
	JZ      ence4done

ence4loop:
	VMOVUPS      (SI), Y0
	VPAND        Y10, Y0, Y1
	VPSRLD       $20, Y1, Y2
	VPAND        192(R9), Y2, Y2
	VPADDD       352(R9), Y2, Y2
	VPADDD       Y1, Y2, Y2
	VPSRLD       $20, Y2, Y2
	VPSUBD       384(R9), Y2, Y2
	VADDPS       416(R9), Y1, Y3
	VPSUBD       416(R9), Y3, Y4
	VSUBPS       416(R9), Y3, Y3
	VMOVDQU      320(R9), Y5
	VPCMPGTD     Y1, Y5, Y5
	VPBLENDVB    Y5, Y4, Y2, Y2
	VPSLLD       $20, Y2, Y6
	VPADDD       448(R9), Y6, Y6
	VPBLENDVB    Y5, Y3, Y6, Y6
	VPCMPGTD     288(R9), Y1, Y7
	VPBLENDVB    Y7, 480(R9), Y2, Y2
	VPBLENDVB    Y7, 512(R9), Y6, Y6
	VPCMPGTD     Y11, Y1, Y3
	VPSUBD       Y3, Y2, Y2
	VMOVMSKPS    Y7, AX
	POPCNTL      AX, AX
	ADDQ         AX, R8
	VMOVMSKPS    Y3, AX
	POPCNTL      AX, AX
	ADDQ         AX, BX
	VPXOR        Y1, Y0, Y4
	VPOR         Y4, Y6, Y6
	VPSRLD       $24, Y4, Y4
	VPOR         Y4, Y2, Y2
	VEXTRACTI128 $1, Y2, X5
	VPACKUSDW    X5, X2, X5
	VPACKUSWB    X5, X5, X5
	MOVQ         X5, (DI)
	VPCMPGTD     Y1, Y11, Y4
	LOSS(Y6, X6, Y0, X0, Y4)
	ADDQ         $32, SI
	ADDQ         $8, DI
	DECQ         CX
	JNZ          ence4loop

ence4done:
	VMOVUPD Y8, (DX)
	VMOVUPD Y9, 32(DX)
	SUBQ    BX, R8
	MOVQ    BX, nan+40(FP)
	MOVQ    R8, clamped+48(FP)
	VZEROUPPER
	RET
