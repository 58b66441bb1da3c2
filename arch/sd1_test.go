package arch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func sharedPath(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not available", p)
	}
	return p
}

type keyListing struct {
	Keys   []string           `json:"keys"`
	Shapes map[string][]int64 `json:"shapes"`
	DTypes map[string]string  `json:"dtypes"`
	Kohya  []struct {
		Name  string  `json:"name"`
		Shape []int64 `json:"shape"`
	} `json:"kohya_lora_modules"`
}

func loadListing(t *testing.T, rel string) keyListing {
	t.Helper()
	b, err := os.ReadFile(sharedPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	var l keyListing
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSD1CheckpointMatchesCorpus compares the generated SD1.5 single-file
// layout with the real key list: every name, shape and the I64 dtype.
func TestSD1CheckpointMatchesCorpus(t *testing.T) {
	l := loadListing(t, "corpus/checkpoint-keys/sd15-ldm-single-file.json")
	a, _ := ByID("sd1")
	got := map[string]Param{}
	for _, p := range CheckpointParams(a, Full) {
		if _, dup := got[p.Name]; dup {
			t.Errorf("duplicate generated name %s", p.Name)
		}
		got[p.Name] = p
	}
	for _, k := range l.Keys {
		p, ok := got[k]
		if !ok {
			t.Errorf("missing %s %v", k, l.Shapes[k])
			continue
		}
		if !reflect.DeepEqual(p.Shape, l.Shapes[k]) {
			t.Errorf("%s: shape %v, real %v", k, p.Shape, l.Shapes[k])
		}
		if l.DTypes[k] == "I64" && p.DType != "I64" {
			t.Errorf("%s: dtype %q, real I64", k, p.DType)
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("generated but not in the real checkpoint: %s", k)
	}
}

func TestUNetParamCounts(t *testing.T) {
	for _, tc := range []struct {
		id          string
		params      int64 // diffusion model only
		tolerancePc float64
	}{
		{"sd1", 859520964, 0},
		{"sd2", 865910724, 0},
		{"sdxl", 2567463684, 0},
		{"sdxl-refiner", 2254383880, 0.5},
	} {
		a, _ := ByID(tc.id)
		n := NumParams(a.Params(Full))
		diff := float64(n-tc.params) / float64(tc.params) * 100
		if diff < -tc.tolerancePc || diff > tc.tolerancePc {
			t.Errorf("%s: %d parameters, want %d (%.2f%%)", tc.id, n, tc.params, diff)
		}
	}
}
