package adapter

import (
	"errors"
	"testing"
)

// TestValidateShapes: each crafted shape breaks the rule it names; valid
// modules pass and give their dense shape.
func TestValidateShapes(t *testing.T) {
	type sh = map[string][]int
	for _, tc := range []struct {
		name   string
		algo   Algo
		shapes sh
		target []int
		max    int64
		rule   string // "" = valid
	}{
		{"lora ok", LoRA, sh{"up": {8, 2}, "down": {2, 4}}, []int{8, 4}, 0, ""},
		{"lora conv ok", LoRA, sh{"up": {8, 2, 1, 1}, "down": {2, 4, 3, 3}}, []int{8, 4, 3, 3}, 0, ""},
		{"lora tucker ok", LoRA, sh{"up": {8, 2, 1, 1}, "down": {2, 4, 1, 1}, "mid": {2, 2, 3, 3}}, []int{8, 4, 3, 3}, 0, ""},
		{"rank 0", LoRA, sh{"up": {8, 0}, "down": {0, 4}}, []int{8, 4}, 0, RuleRank},
		{"inner", LoRA, sh{"up": {8, 3}, "down": {2, 4}}, []int{8, 4}, 0, RuleInner},
		{"3-D down", LoRA, sh{"up": {8, 2}, "down": {2, 4, 1}}, []int{8, 4}, 0, RuleTensor},
		{"kernel", LoRA, sh{"up": {8, 2, 1, 1}, "down": {2, 4, 5, 5}}, []int{8, 4, 3, 3}, 0, RuleKernel},
		{"rows", LoRA, sh{"up": {9, 2}, "down": {2, 4}}, []int{8, 4}, 0, RuleFactors},
		{"dora length", LoRA, sh{"up": {8, 2}, "down": {2, 4}, "dora_scale": {5, 1}}, []int{8, 4}, 0, RuleDoRA},
		{"dora ok", LoRA, sh{"up": {8, 2}, "down": {2, 4}, "dora_scale": {8, 1}}, []int{8, 4}, 0, ""},
		{"loha ok", LoHa, sh{"hada_w1_a": {8, 2}, "hada_w1_b": {2, 4}, "hada_w2_a": {8, 2}, "hada_w2_b": {2, 4}}, []int{8, 4}, 0, ""},
		{"loha halves", LoHa, sh{"hada_w1_a": {8, 2}, "hada_w1_b": {2, 4}, "hada_w2_a": {8, 2}, "hada_w2_b": {2, 5}}, []int{8, 4}, 0, RuleFactors},
		{"loha tucker", LoHa, sh{"hada_w1_a": {2, 8}, "hada_w1_b": {2, 4}, "hada_w2_a": {2, 8}, "hada_w2_b": {2, 4}, "hada_t1": {2, 2, 3, 3}, "hada_t2": {2, 2, 3, 3}}, []int{8, 4, 3, 3}, 0, ""},
		{"lokr ok", LoKr, sh{"lokr_w1": {2, 2}, "lokr_w2_a": {4, 1}, "lokr_w2_b": {1, 2}}, []int{8, 4}, 0, ""},
		{"lokr target", LoKr, sh{"lokr_w1": {2, 2}, "lokr_w2": {4, 3}}, []int{8, 4}, 0, RuleFactors},
		{"lokr bomb", LoKr, sh{"lokr_w1": {4096, 4096}, "lokr_w2": {4096, 4096}}, nil, 0, RuleDense},
		{"dense limit", LoRA, sh{"up": {1 << 20, 8}, "down": {8, 1 << 20}}, nil, 1 << 30, RuleDense},
		{"factor limit", LoRA, sh{"up": {32, 1 << 22}, "down": {1 << 22, 16}}, []int{32, 16}, 0, RuleDense},
		{"diff ok", Diff, sh{"diff": {8, 4}}, []int{8, 4}, 0, ""},
		{"diff size", Diff, sh{"diff": {8, 5}}, []int{8, 4}, 0, RuleFactors},
		{"oft rows", OFT, sh{"oft_blocks": {2, 3, 3}}, []int{8, 4}, 0, RuleFactors},
		{"no target", LoRA, sh{"up": {8, 2}, "down": {2, 4}}, nil, 0, ""},
	} {
		_, err := ValidateShapes(tc.algo, tc.shapes, tc.target, tc.max)
		var se *ShapeError
		switch {
		case tc.rule == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.rule != "" && (!errors.As(err, &se) || se.Rule != tc.rule):
			t.Errorf("%s: err = %v, want rule %q", tc.name, err, tc.rule)
		}
	}
}
