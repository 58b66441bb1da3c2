package svd

import "math"

// rng is a xoshiro256** generator seeded through splitmix64. It is private
// to each call, so results never depend on global state.
type rng struct{ s [4]uint64 }

func newRNG(seed uint64) *rng {
	r := &rng{}
	x := seed
	for i := range r.s {
		// splitmix64
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		r.s[i] = z ^ (z >> 31)
	}
	return r
}

func rotl(x uint64, k uint) uint64 { return (x << k) | (x >> (64 - k)) }

func (r *rng) next() uint64 {
	s := &r.s
	result := rotl(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = rotl(s[3], 45)
	return result
}

// float64 returns a uniform value in (0, 1]: never 0, so log is finite.
func (r *rng) float64() float64 {
	return float64((r.next()>>11)+1) * (1.0 / (1 << 53))
}

// fillNormal fills dst with independent standard normal values
// (Box–Muller, both outputs used).
func (r *rng) fillNormal(dst []float32) {
	for i := 0; i < len(dst); i += 2 {
		u1, u2 := r.float64(), r.float64()
		rad := math.Sqrt(-2 * math.Log(u1))
		sn, cs := math.Sincos(2 * math.Pi * u2)
		dst[i] = float32(rad * cs)
		if i+1 < len(dst) {
			dst[i+1] = float32(rad * sn)
		}
	}
}
