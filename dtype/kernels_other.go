//go:build !amd64

package dtype

// haveKernels is false: no SIMD kernels on this architecture.
const haveKernels = false

func decF16AVX(src *byte, dst *float32, n int)  { panic("dtype: no SIMD kernel") }
func decBF16AVX(src *byte, dst *float32, n int) { panic("dtype: no SIMD kernel") }
func decE4M3AVX(src *byte, dst *float32, n int, k *[kconstN][8]uint32) {
	panic("dtype: no SIMD kernel")
}
func encF16AVX(src *float32, dst *byte, n int, acc *lossAcc, k *[kconstN][8]uint32) int {
	panic("dtype: no SIMD kernel")
}
func encBF16AVX(src *float32, dst *byte, n int, acc *lossAcc, k *[kconstN][8]uint32) int {
	panic("dtype: no SIMD kernel")
}
func encE4M3AVX(src *float32, dst *byte, n int, acc *lossAcc, k *[kconstN][8]uint32) (int, int) {
	panic("dtype: no SIMD kernel")
}
