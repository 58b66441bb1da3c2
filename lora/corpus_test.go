package lora

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
)

type expectation struct {
	Kind         string          `json:"kind"`
	Architecture json.RawMessage `json:"architecture"`
	Preferred    string          `json:"preferred"`
	Targets      []string        `json:"targets"`
	Algorithms   []string        `json:"algorithms"`
	Rank         *struct {
		Min int64 `json:"min"`
		Max int64 `json:"max"`
	} `json:"rank"`
	FormatRecognised *bool `json:"format_recognised"`
}

func corpusDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join("..", "..", "shared", "corpus")
	if _, err := os.Stat(filepath.Join(d, "expected.json")); err != nil {
		t.Skip("../shared/corpus not available")
	}
	return d
}

// readHeaderForTest parses a safetensors header independently of package
// safetensors: 8-byte little-endian length, then JSON.
func readHeaderForTest(t *testing.T, path string) ([]TensorRef, map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b[:8])
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		t.Fatal(err)
	}
	var meta map[string]string
	var ts []TensorRef
	for k, v := range raw {
		if k == "__metadata__" {
			json.Unmarshal(v, &meta)
			continue
		}
		var info struct {
			DType string  `json:"dtype"`
			Shape []int64 `json:"shape"`
		}
		json.Unmarshal(v, &info)
		ts = append(ts, TensorRef{Key: k, Shape: info.Shape, DType: info.DType})
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Key < ts[j].Key })
	return ts, meta
}

func readListing(t *testing.T, path string) []TensorRef {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Keys   []string           `json:"keys"`
		Shapes map[string][]int64 `json:"shapes"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	var ts []TensorRef
	for _, k := range l.Keys {
		ts = append(ts, TensorRef{Key: k, Shape: l.Shapes[k]})
	}
	return ts
}

// Summary is the classification the corpus expectations describe.
type summary struct {
	arch       string
	targets    []string
	algorithms []string
	rankMin    int64
	rankMax    int64
	unresolved int
}

func classify(ts []TensorRef, meta map[string]string) summary {
	an := Analyze(ts, meta)
	f := an.FitArch(arch.All(), nil)
	s := summary{arch: "unknown", targets: an.Parts(f), unresolved: len(f.Unresolved)}
	if f.Arch != nil {
		s.arch = f.Arch.ID
	} else if a := EmbeddingArch(an.Embeddings, arch.All()); a != nil && len(an.Modules) == 0 {
		s.arch = a.ID
	}
	algos := map[string]bool{}
	for _, m := range an.Modules {
		for _, a := range m.Algorithms() {
			algos[a] = true
		}
		if r := m.Rank(); r > 0 {
			if s.rankMin == 0 || r < s.rankMin {
				s.rankMin = r
			}
			if r > s.rankMax {
				s.rankMax = r
			}
		}
	}
	if len(an.Embeddings) > 0 {
		algos["embedding"] = true
	}
	for a := range algos {
		s.algorithms = append(s.algorithms, a)
	}
	sort.Strings(s.algorithms)
	return s
}

func checkExpectation(t *testing.T, name string, got summary, exp expectation) {
	t.Helper()
	var one string
	var list []string
	if json.Unmarshal(exp.Architecture, &one) != nil {
		json.Unmarshal(exp.Architecture, &list)
	}
	switch {
	case one != "":
		if got.arch != one {
			t.Errorf("%s: architecture %s, want %s", name, got.arch, one)
		}
	case exp.Preferred != "":
		if got.arch != exp.Preferred {
			t.Errorf("%s: architecture %s, want preferred %s of %v", name, got.arch, exp.Preferred, list)
		}
	default:
		ok := false
		for _, a := range list {
			ok = ok || a == got.arch
		}
		if !ok {
			t.Errorf("%s: architecture %s, want one of %v", name, got.arch, list)
		}
	}
	want := append([]string(nil), exp.Targets...)
	sort.Strings(want)
	if !reflect.DeepEqual(got.targets, want) {
		t.Errorf("%s: targets %v, want %v", name, got.targets, want)
	}
	wantA := append([]string(nil), exp.Algorithms...)
	sort.Strings(wantA)
	if !reflect.DeepEqual(got.algorithms, wantA) {
		t.Errorf("%s: algorithms %v, want %v", name, got.algorithms, wantA)
	}
	if exp.Rank != nil && (got.rankMin != exp.Rank.Min || got.rankMax != exp.Rank.Max) {
		t.Errorf("%s: rank %d..%d, want %d..%d", name, got.rankMin, got.rankMax, exp.Rank.Min, exp.Rank.Max)
	}
}

func loadExpected(t *testing.T, dir string) map[string]map[string]expectation {
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	json.Unmarshal(b, &all)
	out := map[string]map[string]expectation{}
	for _, sec := range []string{"files", "keys"} {
		m := map[string]expectation{}
		json.Unmarshal(all[sec], &m)
		out[sec] = m
	}
	return out
}

func TestCorpusFiles(t *testing.T) {
	dir := corpusDir(t)
	exp := loadExpected(t, dir)
	for name, e := range exp["files"] {
		t.Run(name, func(t *testing.T) {
			ts, meta := readHeaderForTest(t, filepath.Join(dir, "files", name))
			got := classify(ts, meta)
			checkExpectation(t, name, got, e)
			if e.Kind == "lora" && got.unresolved != 0 && (e.FormatRecognised == nil || *e.FormatRecognised) {
				t.Errorf("%s: %d modules unresolved", name, got.unresolved)
			}
		})
	}
}

func TestCorpusKeyListings(t *testing.T) {
	dir := corpusDir(t)
	exp := loadExpected(t, dir)
	for name, e := range exp["keys"] {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			ts := readListing(t, filepath.Join(dir, "keys", name))
			got := classify(ts, nil)
			checkExpectation(t, name, got, e)
		})
	}
}
