package workflow

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckInspectsEachLoRAOnce: a long chain of nodes loading the same
// LoRA is inspected and mapped once, not once per node.
func TestCheckInspectsEachLoRAOnce(t *testing.T) {
	dir := t.TempDir()
	for sub, src := range map[string]string{"checkpoints/m.safetensors": "../testdata/demo/sd15-tiny.safetensors", "loras/a.safetensors": "../testdata/demo/sd15-lora-tiny.safetensors"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dir, sub)), 0o755)
		os.WriteFile(filepath.Join(dir, sub), b, 0o644)
	}
	const n = 2000
	var b strings.Builder
	b.WriteString(`{"1":{"class_type":"CheckpointLoaderSimple","inputs":{"ckpt_name":"m.safetensors"}}`)
	prev := "1"
	for i := 0; i < n; i++ {
		id := fmt.Sprint(10 + i)
		fmt.Fprintf(&b, `,"%s":{"class_type":"LoraLoaderModelOnly","inputs":{"model":["%s",0],"lora_name":"a.safetensors","strength_model":0.1}}`, id, prev)
		prev = id
	}
	fmt.Fprintf(&b, `,"2":{"class_type":"KSampler","inputs":{"model":["%s",0]}}}`, prev)
	w, err := Parse([]byte(b.String()), "chain.json")
	if err != nil {
		t.Fatal(err)
	}
	stacks, err := w.Stacks()
	if err != nil || len(stacks) != 1 || len(stacks[0].LoRAs) != n {
		t.Fatalf("stacks %v, err %v", len(stacks), err)
	}
	f := NewFolders()
	f.AddModelsDir(dir)
	start := time.Now()
	r := w.Check(stacks[0], f)
	if len(w.cache.reports) != 1 || len(w.cache.mappings) != 1 {
		t.Errorf("%d inspections and %d mappings for one LoRA file", len(w.cache.reports), len(w.cache.mappings))
	}
	for _, l := range r.LoRAs {
		if l.Patches == 0 {
			t.Fatalf("node %s: no patches", l.NodeID)
		}
	}
	t.Logf("%d nodes checked in %v", n, time.Since(start))
}
