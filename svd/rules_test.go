package svd

import (
	"math"
	"testing"
)

func TestParseRule(t *testing.T) {
	good := []struct {
		in   string
		want Rule
	}{
		{"sv_fro:0.95", Rule{RuleSVFro, 0.95}},
		{"sv_ratio:20", Rule{RuleSVRatio, 20}},
		{"sv_cumulative:0.9", Rule{RuleSVCumulative, 0.9}},
		{"fixed:8", Rule{RuleFixed, 8}},
		{"8", Rule{RuleFixed, 8}},
		{" SV_FRO : 1 ", Rule{RuleSVFro, 1}},
		{"sv_ratio:1", Rule{RuleSVRatio, 1}},
	}
	for _, c := range good {
		got, err := ParseRule(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if back, err := ParseRule(got.String()); err != nil || back != got {
			t.Errorf("ParseRule(%q.String() = %q) = %+v, %v", c.in, got.String(), back, err)
		}
	}
	for _, in := range []string{
		"", "abc", "sv_fro", "sv_fro:", "sv_fro:0", "sv_fro:1.5", "sv_fro:-0.1", "sv_fro:NaN",
		"sv_cumulative:2", "sv_ratio:0.5", "sv_ratio:Inf", "fixed:0", "fixed:-3", "-3",
		"2.5", "fixed:1e3", "svd:4", "sv_fro:0.9:1",
	} {
		if r, err := ParseRule(in); err == nil {
			t.Errorf("ParseRule(%q) = %+v, want error", in, r)
		}
	}
}

func TestRuleRank(t *testing.T) {
	// s = [4, 2, 1, 1]:
	//   squares 16, 4, 1, 1 → cumulative energy 16, 20, 21, 22 (total 22)
	//   values             → cumulative sum     4, 6, 7, 8     (total 8)
	s := []float64{4, 2, 1, 1}
	cases := []struct {
		rule    string
		s       []float64
		maxRank int
		want    int
	}{
		// sv_fro:f keeps the smallest k with cum energy >= f²·22.
		{"sv_fro:0.5", s, 0, 1},  // 0.25·22 = 5.5   ≤ 16 → k=1
		{"sv_fro:0.9", s, 0, 2},  // 0.81·22 = 17.82 > 16, ≤ 20 → k=2 (kohya keeps 3)
		{"sv_fro:0.95", s, 0, 2}, // 0.9025·22 = 19.855 ≤ 20 → k=2
		{"sv_fro:0.97", s, 0, 3}, // 0.9409·22 = 20.6998 > 20, ≤ 21 → k=3
		{"sv_fro:0.98", s, 0, 4}, // 0.9604·22 = 21.1288 > 21 → k=4
		{"sv_fro:1", s, 0, 4},    // 22 → k=4
		{"sv_fro:0.98", s, 2, 2}, // capped by maxRank
		// Exact tie: s=[4,3], energy 16, 25; 0.8²·25 = 16 exactly → k=1.
		{"sv_fro:0.8", []float64{4, 3}, 0, 1},
		// sv_cumulative:f keeps the smallest k with cum sum >= f·8.
		{"sv_cumulative:0.5", s, 0, 1},  // 4 ≥ 4 (tie) → 1
		{"sv_cumulative:0.75", s, 0, 2}, // 6 ≥ 6 (tie) → 2
		{"sv_cumulative:0.8", s, 0, 3},  // 6.4 > 6, ≤ 7 → 3
		{"sv_cumulative:0.9", s, 0, 4},  // 7.2 > 7 → 4
		{"sv_cumulative:0.9", s, 3, 3},
		// sv_ratio:t keeps the s_i >= 4/t.
		{"sv_ratio:1", s, 0, 1},                          // s ≥ 4
		{"sv_ratio:2", s, 0, 2},                          // s ≥ 2 (tie at 2)
		{"sv_ratio:3", s, 0, 2},                          // s ≥ 1.33
		{"sv_ratio:4", s, 0, 4},                          // s ≥ 1 (ties)
		{"sv_ratio:1000", []float64{5, 0, 0}, 0, 1},      // zeros never count
		{"sv_ratio:10", []float64{10, 9, 1, 0.99}, 0, 3}, // s ≥ 1
		// fixed.
		{"fixed:3", s, 0, 3},
		{"fixed:10", s, 0, 4}, // clamped to len(s)
		{"fixed:10", s, 2, 2}, // clamped to maxRank
		{"1", s, 0, 1},
		// Zero or empty spectrum → 0.
		{"fixed:3", []float64{0, 0, 0}, 0, 0},
		{"sv_fro:0.9", []float64{0, 0}, 0, 0},
		{"sv_ratio:2", nil, 0, 0},
	}
	for _, c := range cases {
		r, err := ParseRule(c.rule)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Rank(c.s, c.maxRank); got != c.want {
			t.Errorf("%s.Rank(%v, %d) = %d, want %d", c.rule, c.s, c.maxRank, got, c.want)
		}
	}
	// Invalid rules keep everything up to the cap instead of panicking.
	for _, r := range []Rule{{}, {Kind: "nope", Value: 1}, {Kind: RuleSVFro, Value: math.NaN()}, {Kind: RuleFixed, Value: -1}} {
		if got := r.Rank(s, 3); got != 3 {
			t.Errorf("%+v.Rank = %d, want 3", r, got)
		}
	}
}

func TestRetainedRelError(t *testing.T) {
	s := []float64{4, 2, 1, 1} // energy 16, 4, 1, 1; total 22
	cases := []struct {
		s                []float64
		k                int
		retained, relErr float64
	}{
		{s, 0, 0, 1},
		{s, 1, math.Sqrt(16.0 / 22), math.Sqrt(6.0 / 22)},
		{s, 2, math.Sqrt(20.0 / 22), math.Sqrt(2.0 / 22)},
		{s, 3, math.Sqrt(21.0 / 22), math.Sqrt(1.0 / 22)},
		{s, 4, 1, 0},
		{s, 9, 1, 0},
		{s, -1, 0, 1},
		{[]float64{3, 0}, 1, 1, 0},
		{[]float64{0, 0}, 1, 1, 0}, // zero spectrum: nothing to lose
		{nil, 0, 1, 0},
	}
	for _, c := range cases {
		if got := Retained(c.s, c.k); math.Abs(got-c.retained) > 1e-15 {
			t.Errorf("Retained(%v, %d) = %g, want %g", c.s, c.k, got, c.retained)
		}
		if got := RelError(c.s, c.k); math.Abs(got-c.relErr) > 1e-15 {
			t.Errorf("RelError(%v, %d) = %g, want %g", c.s, c.k, got, c.relErr)
		}
	}
	// RetainedTotal uses TotalFro2, not just the held values.
	r := Result{S: []float32{4, 2}, TotalFro2: 22}
	if got, want := r.RetainedTotal(1), math.Sqrt(16.0/22); math.Abs(got-want) > 1e-15 {
		t.Errorf("RetainedTotal(1) = %g, want %g", got, want)
	}
	if got, want := r.RetainedTotal(5), math.Sqrt(20.0/22); math.Abs(got-want) > 1e-15 {
		t.Errorf("RetainedTotal(5) = %g, want %g", got, want)
	}
}
