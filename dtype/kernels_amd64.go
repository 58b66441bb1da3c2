package dtype

import "golang.org/x/sys/cpu"

// haveKernels reports whether the AVX2/F16C kernels can run here.
var haveKernels = cpu.X86.HasAVX2 && cpu.X86.HasF16C && cpu.X86.HasPOPCNT

// The kernels below are implemented in kernels_amd64.s. n is a multiple of
// 8; acc's lanes accumulate the rounding loss as lossAcc.add does.

//go:noescape
func decF16AVX(src *byte, dst *float32, n int)

//go:noescape
func decBF16AVX(src *byte, dst *float32, n int)

//go:noescape
func decE4M3AVX(src *byte, dst *float32, n int, k *[kconstN][8]uint32)

//go:noescape
func encF16AVX(src *float32, dst *byte, n int, acc *lossAcc, k *[kconstN][8]uint32) (nan int)

//go:noescape
func encBF16AVX(src *float32, dst *byte, n int, acc *lossAcc, k *[kconstN][8]uint32) (nan int)

//go:noescape
func encE4M3AVX(src *float32, dst *byte, n int, acc *lossAcc, k *[kconstN][8]uint32) (nan, clamped int)
