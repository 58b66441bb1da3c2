package arch

// paramList accumulates a component's parameters in declaration order;
// every architecture's table generator builds on it.
type paramList struct{ ps []Param }

func (l *paramList) add(name string, shape ...int64) {
	l.ps = append(l.ps, Param{Name: name, Shape: shape})
}

// linear adds name.weight [out, in] and, with bias, name.bias [out].
func (l *paramList) linear(name string, out, in int64, bias bool) {
	l.add(name+".weight", out, in)
	if bias {
		l.add(name+".bias", out)
	}
}

// conv adds a k×k convolution's weight [out, in, k, k] and bias.
func (l *paramList) conv(name string, out, in, k int64) {
	l.add(name+".weight", out, in, k, k)
	l.add(name+".bias", out)
}

// norm adds an affine norm's (LayerNorm, GroupNorm) weight and bias.
func (l *paramList) norm(name string, c int64) {
	l.add(name+".weight", c)
	l.add(name+".bias", c)
}

// weight adds a 1-D norm weight (RMSNorm, LayerNorm without bias).
func (l *paramList) weight(name string, n int64) { l.add(name+".weight", n) }

// scale adds a Flux-style RMSNorm parameter ("<name>.scale").
func (l *paramList) scale(name string, n int64) { l.add(name+".scale", n) }
