package extract

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/loratool/loratool/dtype"
)

// TestExtractLeavesOutUnloadable: a kohya extraction leaves out conv_in,
// conv_out and the time-embedding linears (kohya's loaders drop them) and
// names them; --all-modules and the comfy format extract them.
func TestExtractLeavesOutUnloadable(t *testing.T) {
	pr := makePair(t, "sd1", []change{
		{suffix: "attn1.to_q.weight", minDim: 40, signal: sig, floor: 0.02},
		{suffix: "time_embed.2.weight", minDim: 10, signal: sig},
		{suffix: "input_blocks.0.0.weight", signal: sig},
		{suffix: "out.2.weight", signal: sig},
	}, dtype.F32)
	for _, tc := range []struct {
		format string
		all    bool
		want   int // modules extracted
		left   int // left out as unloadable
	}{
		{"kohya", false, 1, 4}, // time_embed.0 and .2, conv_in, conv_out
		{"kohya", true, 4, 0},
		{"comfy", false, 4, 0},
		{"diffusers", false, 4, 0},
	} {
		out := tmpPath(t, "lora.safetensors")
		rep, err := Run(context.Background(), Options{Base: pr.base, Tuned: pr.tuned, Output: out,
			Rank: 2, DType: "fp32", ExactMaxDim: 8, Format: tc.format, AllModules: tc.all}, nil)
		if err != nil {
			t.Fatal(err)
		}
		left := 0
		for _, s := range rep.Skipped {
			if strings.HasPrefix(s.Reason, unloadablePrefix) {
				left++
			}
		}
		if len(rep.Modules) != tc.want || left != tc.left {
			t.Errorf("%s all=%v: %d modules, %d left out; want %d, %d", tc.format, tc.all, len(rep.Modules), left, tc.want, tc.left)
		}
		var b bytes.Buffer
		writeUnloadable(&b, rep)
		if (tc.left > 0) != strings.Contains(b.String(), "model.diffusion_model.input_blocks.0.0.weight") {
			t.Errorf("%s all=%v: report line %q", tc.format, tc.all, b.String())
		}
	}
}
