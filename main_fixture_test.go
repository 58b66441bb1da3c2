package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
)

// loraFixtureMain is the test-only script command
//
//	lorafixture ALGO OUT [emb]
//
// writing a reduced-size SD1.5 kohya LoRA of algorithm ALGO (lora, lokr,
// loha, full, dora) on the cross-attention modules; "emb" adds a
// pivotal-tuning token embedding "<s1>" (cloneofsimo style).
func loraFixtureMain() {
	args := os.Args[1:]
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lorafixture ALGO OUT [emb]")
		os.Exit(2)
	}
	spec := fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Format: "kohya", Algo: args[0], Rank: 4, Alpha: 2, DType: dtype.F16, Seed: 7,
		Filter: func(m string) bool { return strings.Contains(m, "attn2") }}
	if _, err := fixture.WriteLoRA(args[1], spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if len(args) > 2 && args[2] == "emb" {
		v := make([]float32, 768)
		for i := range v {
			v[i] = float32(i%7) / 7
		}
		if err := fixture.AddTensors(args[1], map[string][]float32{"<s1>": v}, map[string][]int64{"<s1>": {768}}, map[string]string{"<s1>": "<embed>"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(0)
}
