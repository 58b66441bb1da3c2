package svd

import "golang.org/x/sys/cpu"

// haveKernel reports whether the AVX2/FMA micro-kernel can run here.
var haveKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kern4x16 is implemented in kernel_amd64.s.
//
//go:noescape
func kern4x16(a *float32, sT, sI uintptr, b *float32, sB uintptr, n int, c *float32, ldc uintptr)
