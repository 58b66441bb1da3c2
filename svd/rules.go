package svd

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Rule kinds (kohya resize_lora.py names plus "fixed").
const (
	RuleFixed        = "fixed"
	RuleSVFro        = "sv_fro"
	RuleSVRatio      = "sv_ratio"
	RuleSVCumulative = "sv_cumulative"
)

// Rule chooses a rank from a singular value spectrum. Use ParseRule to build
// one; see Rank for the exact criteria.
type Rule struct {
	// Kind is one of RuleFixed, RuleSVFro, RuleSVRatio, RuleSVCumulative.
	Kind string
	// Value is the rank (fixed), the Frobenius fraction in (0, 1] (sv_fro),
	// the ratio >= 1 (sv_ratio) or the fraction of Σ s_i in (0, 1]
	// (sv_cumulative).
	Value float64
}

// ParseRule parses "sv_fro:0.95", "sv_ratio:20", "sv_cumulative:0.9",
// "fixed:8" or a bare rank "8". Kind names are case-insensitive and
// surrounding spaces are ignored.
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	kind, val, found := strings.Cut(s, ":")
	if !found {
		kind, val = RuleFixed, s
	}
	kind = strings.ToLower(strings.TrimSpace(kind))
	val = strings.TrimSpace(val)
	var r Rule
	switch kind {
	case RuleFixed:
		n, err := strconv.Atoi(val)
		if err != nil {
			return Rule{}, fmt.Errorf("svd: rank rule %q: fixed rank must be an integer", s)
		}
		r = Rule{Kind: RuleFixed, Value: float64(n)}
	case RuleSVFro, RuleSVRatio, RuleSVCumulative:
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return Rule{}, fmt.Errorf("svd: rank rule %q: bad number %q", s, val)
		}
		r = Rule{Kind: kind, Value: v}
	default:
		return Rule{}, fmt.Errorf("svd: rank rule %q: unknown kind %q (want fixed, sv_fro, sv_ratio or sv_cumulative)", s, kind)
	}
	if err := r.Validate(); err != nil {
		return Rule{}, fmt.Errorf("svd: rank rule %q: %w", s, err)
	}
	return r, nil
}

// Validate reports whether r has a known kind and a value in range.
func (r Rule) Validate() error {
	v := r.Value
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("value %v is not finite", v)
	}
	switch r.Kind {
	case RuleFixed:
		if v < 1 || v != math.Trunc(v) || v > math.MaxInt32 {
			return fmt.Errorf("fixed rank %v must be a positive integer", v)
		}
	case RuleSVFro, RuleSVCumulative:
		if !(v > 0 && v <= 1) {
			return fmt.Errorf("%s fraction %v must be in (0, 1]", r.Kind, v)
		}
	case RuleSVRatio:
		if !(v >= 1) {
			return fmt.Errorf("sv_ratio %v must be >= 1", v)
		}
	default:
		return fmt.Errorf("unknown rule kind %q", r.Kind)
	}
	return nil
}

// String formats r in the syntax ParseRule accepts.
func (r Rule) String() string {
	return r.Kind + ":" + strconv.FormatFloat(r.Value, 'g', -1, 64)
}

// tieTol is the relative slack used when comparing accumulated sums with a
// threshold, so that a threshold hit exactly in exact arithmetic (e.g.
// sv_fro:0.8 on s = [4, 3]: 16 = 0.64·25) is not lost to rounding of f².
const tieTol = 1e-12

// Rank returns the rank rule r selects on the full spectrum s (descending,
// non-negative). Exactly the k stated below is returned — not k+1 as in
// kohya's resize_lora.py, whose helpers return an index that rank_resize
// then increments again:
//
//   - fixed:n          k = n.
//   - sv_fro:f         smallest k with Σ_{i<k} s_i² >= f²·Σ_i s_i², i.e.
//     sqrt(retained energy) = Retained(s, k) >= f (f is a Frobenius-norm
//     fraction, as in kohya).
//   - sv_cumulative:f  smallest k with Σ_{i<k} s_i >= f·Σ_i s_i.
//   - sv_ratio:t       the number of s_i with s_i >= s_0/t.
//
// Threshold comparisons allow a relative slack of 1e-12 of the total for
// rounding. The result is clamped to [1, min(maxRank, len(s))]; maxRank <= 0
// means no cap. An empty or all-zero spectrum gives 0. A Rule that fails
// Validate keeps min(maxRank, len(s)) (no truncation beyond the cap).
func (r Rule) Rank(s []float64, maxRank int) int {
	hi := len(s)
	if maxRank > 0 && maxRank < hi {
		hi = maxRank
	}
	var sum, sum2 float64
	for _, v := range s {
		sum += v
		sum2 += v * v
	}
	if len(s) == 0 || !(sum2 > 0) {
		return 0
	}
	if r.Validate() != nil {
		return hi
	}
	k := hi
	switch r.Kind {
	case RuleFixed:
		k = int(r.Value)
	case RuleSVFro:
		k = firstReaching(s, r.Value*r.Value*sum2, sum2, func(v float64) float64 { return v * v })
	case RuleSVCumulative:
		k = firstReaching(s, r.Value*sum, sum, func(v float64) float64 { return v })
	case RuleSVRatio:
		lim := s[0] / r.Value * (1 - tieTol)
		k = 0
		for _, v := range s {
			if v >= lim {
				k++
			}
		}
	}
	return clampInt(k, 1, hi)
}

// firstReaching returns the smallest k with Σ_{i<k} g(s_i) >= target
// (within tieTol·total), or len(s) if it is never reached.
func firstReaching(s []float64, target, total float64, g func(float64) float64) int {
	target -= tieTol * total
	var acc float64
	for i, v := range s {
		acc += g(v)
		if acc >= target {
			return i + 1
		}
	}
	return len(s)
}

// Retained returns sqrt(Σ_{i<k} s_i² / Σ_i s_i²), the fraction of the
// Frobenius norm kept by the rank-k truncation of a matrix with full
// spectrum s (k is clamped to [0, len(s)]). A zero spectrum gives 1.
func Retained(s []float64, k int) float64 {
	k = clampInt(k, 0, len(s))
	head, tail := energy(s, k)
	if !(head+tail > 0) {
		return 1
	}
	return math.Sqrt(head / (head + tail))
}

// RelError returns sqrt(Σ_{i>=k} s_i² / Σ_i s_i²), the relative Frobenius
// error ‖M − M_k‖_F/‖M‖_F of the best rank-k approximation (Eckart–Young),
// for the full spectrum s (k is clamped to [0, len(s)]). A zero spectrum
// gives 0.
func RelError(s []float64, k int) float64 {
	k = clampInt(k, 0, len(s))
	head, tail := energy(s, k)
	if !(head+tail > 0) {
		return 0
	}
	return math.Sqrt(tail / (head + tail))
}

func energy(s []float64, k int) (head, tail float64) {
	for i, v := range s {
		if i < k {
			head += v * v
		} else {
			tail += v * v
		}
	}
	return head, tail
}
