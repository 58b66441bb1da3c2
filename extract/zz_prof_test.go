package extract

import (
	"context"
	"os"
	"testing"
)

func TestProfBench(t *testing.T) {
	if os.Getenv("PROF") == "" {
		t.Skip()
	}
	_, err := Run(context.Background(), Options{Base: "/tmp/xbench/base.safetensors", Tuned: "/tmp/xbench/tuned.safetensors", Output: "/tmp/xbench/p.safetensors", Rank: 32, Overwrite: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
}
