package adapter

import (
	"errors"
	"math"
	"testing"
)

// fuzzRoles lists the roles each algorithm's fuzzed module draws.
var fuzzRoles = map[Algo][]string{
	LoRA:  {RoleUp, RoleDown, RoleMid, RoleAlpha, RoleDoRAScale},
	LoHa:  {RoleHadaW1A, RoleHadaW1B, RoleHadaW2A, RoleHadaW2B, RoleHadaT1, RoleHadaT2, RoleAlpha, RoleDoRAScale},
	LoKr:  {RoleLoKrW1, RoleLoKrW1A, RoleLoKrW1B, RoleLoKrW2, RoleLoKrW2A, RoleLoKrW2B, RoleLoKrT2, RoleAlpha},
	GLoRA: {RoleA1, RoleA2, RoleB1, RoleB2, RoleAlpha},
	OFT:   {RoleOFTBlocks, RoleAlpha},
	BOFT:  {RoleOFTBlocks, RoleRescale, RoleAlpha},
	IA3:   {RoleIA3Weight, RoleOnInput},
	Diff:  {RoleDiff},
	Norm:  {RoleDiff},
	Set:   {RoleSetWeight},
}

var fuzzAlgos = []Algo{LoRA, LoHa, LoKr, GLoRA, OFT, BOFT, IA3, Diff, Norm, Set}

// fuzzModule decodes a module and a target weight from fuzz bytes: one
// byte picks the algorithm, one byte per role says whether it is present
// and its dimension count, two bytes give up to four dims of 0–6.
func fuzzModule(data []byte) (*Module, *Tensor, float32, bool) {
	if len(data) < 4 {
		return nil, nil, 0, false
	}
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	algo := fuzzAlgos[int(next())%len(fuzzAlgos)]
	strength := []float32{1, 0.5, -2, 0, 1e30, float32(math.NaN())}[int(next())%6]
	shape := func(nd int) []int {
		s := make([]int, nd)
		v := uint16(next()) | uint16(next())<<8
		for i := range s {
			s[i] = int(v % 7)
			v /= 7
		}
		return s
	}
	fill := func(sh []int, special byte) *Tensor {
		t := New(sh...)
		for i := range t.Data {
			t.Data[i] = float32(i%5-2) / 4
		}
		if special%11 == 10 && len(t.Data) > 0 {
			t.Data[0] = float32(math.NaN())
		}
		return t
	}
	tb := next()
	w := fill(shape(1+int(tb%4)), 0)
	m := &Module{Algo: algo, Tensors: map[string]*Tensor{}}
	for _, role := range fuzzRoles[algo] {
		b := next()
		if b&1 == 0 && role != fuzzRoles[algo][0] {
			continue
		}
		nd := int(b>>1) % 5
		if role == RoleAlpha || role == RoleOnInput {
			nd = 0
		}
		m.Tensors[role] = fill(shape(nd), b>>4)
	}
	return m, w, strength, true
}

// FuzzAdapter feeds random shapes, ranks and algorithm mixes through the
// shape rules and the math: nothing panics, and a module the rules accept
// for a weight has a delta for it (the rules and the math agree).
func FuzzAdapter(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8})                   // lora
	f.Add([]byte{0, 0, 1, 0x31, 0x00, 5, 0x31, 0x01, 0, 4, 0, 0}) // lora, rank-0 / mismatched
	f.Add([]byte{1, 1, 1, 0x31, 0x00, 5, 0x31, 0x01, 0, 5, 9, 0}) // loha
	f.Add([]byte{2, 0, 1, 0x31, 0x00, 5, 0x31, 0xff, 0xff, 5, 9, 0})
	f.Add([]byte{7, 3, 2, 0x31, 0x00, 7, 0x31, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, w, s, ok := fuzzModule(data)
		if !ok {
			return
		}
		_, verr := ValidateShapes(m.Algo, moduleShapes(m), w.Shape, 1<<16)
		d, derr := Delta(m, w.Shape)
		if verr == nil && derr != nil && !errors.Is(derr, ErrNeedsWeight) {
			var se *ShapeError
			if errors.As(derr, &se) {
				t.Fatalf("rules accept %v for %v, Delta refuses: %v", moduleShapes(m), w.Shape, derr)
			}
		}
		if derr == nil && len(d.Data) != len(w.Data) {
			t.Fatalf("delta of %d values for a weight of %d", len(d.Data), len(w.Data))
		}
		Apply(w, m, DefaultOptions(s))
	})
}
