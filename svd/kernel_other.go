//go:build !amd64

package svd

// haveKernel is false: no SIMD micro-kernel on this architecture.
const haveKernel = false

func kern4x16(a *float32, sT, sI uintptr, b *float32, sB uintptr, n int, c *float32, ldc uintptr) {
	panic("svd: no SIMD kernel on this architecture")
}
