package inspect

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/convert/pt/pttest"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
)

func corpus(t *testing.T) string {
	t.Helper()
	d := filepath.Join("..", "..", "shared", "corpus")
	if _, err := os.Stat(filepath.Join(d, "expected.json")); err != nil {
		t.Skip("../shared/corpus not available")
	}
	return d
}

type expected struct {
	Kind         string          `json:"kind"`
	Architecture json.RawMessage `json:"architecture"`
	Preferred    string          `json:"preferred"`
	Targets      []string        `json:"targets"`
	Components   []string        `json:"components"`
	Algorithms   []string        `json:"algorithms"`
	Rank         *MinMax         `json:"rank"`
}

func loadExpected(t *testing.T, dir string) map[string]map[string]expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]expected{}
	for _, s := range []string{"files", "keys", "checkpoints"} {
		m := map[string]expected{}
		if err := json.Unmarshal(raw[s], &m); err != nil {
			t.Fatal(err)
		}
		out[s] = m
	}
	return out
}

// sparseFromListing writes a safetensors file (zeros, sparse) with the
// listing's keys and shapes; keys without shapes get shape [1].
func sparseFromListing(t *testing.T, listing, out string) {
	t.Helper()
	b, err := os.ReadFile(listing)
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Keys   []string           `json:"keys"`
		Shapes map[string][]int64 `json:"shapes"`
		DTypes map[string]string  `json:"dtypes"`
		Meta   map[string]string  `json:"metadata"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	var ps []arch.Param
	for _, k := range l.Keys {
		shape, ok := l.Shapes[k]
		if !ok {
			shape = []int64{1}
			if strings.HasSuffix(k, ".alpha") {
				shape = []int64{}
			}
		}
		ps = append(ps, arch.Param{Name: k, Shape: shape, DType: l.DTypes[k]})
	}
	if err := fixture.WriteSparse(out, ps, dtype.F16, l.Meta); err != nil {
		t.Fatal(err)
	}
}

func checkReport(t *testing.T, r *Report, e expected, isCheckpoint bool) {
	t.Helper()
	if r.Error != "" {
		t.Fatalf("error: %s", r.Error)
	}
	if r.Kind != e.Kind {
		t.Errorf("kind %s, want %s", r.Kind, e.Kind)
	}
	var one string
	var list []string
	if json.Unmarshal(e.Architecture, &one) != nil {
		json.Unmarshal(e.Architecture, &list)
	}
	switch {
	case one != "" && r.Architecture != one:
		t.Errorf("architecture %s, want %s", r.Architecture, one)
	case one == "" && e.Preferred != "" && r.Architecture != e.Preferred:
		t.Errorf("architecture %s, want preferred %s of %v", r.Architecture, e.Preferred, list)
	case one == "" && e.Preferred == "":
		ok := false
		for _, a := range list {
			ok = ok || a == r.Architecture
		}
		if !ok {
			t.Errorf("architecture %s, want one of %v", r.Architecture, list)
		}
	}
	want := e.Targets
	if isCheckpoint {
		want = e.Components
	}
	want = append([]string(nil), want...)
	sort.Strings(want)
	if !reflect.DeepEqual(r.Targets, want) {
		t.Errorf("targets %v, want %v", r.Targets, want)
	}
	if !isCheckpoint {
		wa := append([]string(nil), e.Algorithms...)
		sort.Strings(wa)
		if !reflect.DeepEqual(r.Algorithms, wa) {
			t.Errorf("algorithms %v, want %v", r.Algorithms, wa)
		}
		if e.Rank != nil && (r.Rank == nil || *r.Rank != *e.Rank) {
			t.Errorf("rank %v, want %v", r.Rank, e.Rank)
		}
	}
}

// TestCorpus runs the whole inspect pipeline on every corpus entry: the
// real files, and sparse files built from the key listings and checkpoint
// key lists (real names and shapes, zero data).
func TestCorpus(t *testing.T) {
	dir := corpus(t)
	exp := loadExpected(t, dir)
	tmp := t.TempDir()
	for name, e := range exp["files"] {
		t.Run("files/"+name, func(t *testing.T) {
			checkReport(t, File(filepath.Join(dir, "files", name), Options{}), e, false)
		})
	}
	for name, e := range exp["keys"] {
		t.Run("keys/"+name, func(t *testing.T) {
			p := filepath.Join(tmp, strings.TrimSuffix(name, ".json")+".safetensors")
			sparseFromListing(t, filepath.Join(dir, "keys", name), p)
			checkReport(t, File(p, Options{}), e, false)
		})
	}
	for name, e := range exp["checkpoints"] {
		t.Run("checkpoints/"+name, func(t *testing.T) {
			p := filepath.Join(tmp, strings.TrimSuffix(name, ".json")+".safetensors")
			sparseFromListing(t, filepath.Join(dir, "checkpoint-keys", name), p)
			checkReport(t, File(p, Options{}), e, true)
		})
	}
}

func TestFormatsDocListsRegistry(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "formats.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range arch.IDs() {
		if !strings.Contains(string(b), "| `"+id+"` |") {
			t.Errorf("docs/formats.md does not list architecture %s", id)
		}
	}
}

func TestTriggerWords(t *testing.T) {
	for _, tc := range []struct {
		meta map[string]string
		want []string
	}{
		{map[string]string{"modelspec.trigger_phrase": "pixel_art, 8bit"}, []string{"pixel_art", "8bit"}},
		// caption tags are not trigger words; dataset folder tokens are
		{map[string]string{"ss_tag_frequency": `{"10_pxl": {"pxl": 30, "sky": 2}, "5_b": {"sky": 4, "tree": 1}}`}, []string{"pxl", "b"}},
		{map[string]string{"ss_tag_frequency": `{"img": {"sky": 4}}`}, []string{}},
		{map[string]string{"ss_training_comment": "Trigger words: falcon girl, smf."}, []string{"falcon girl", "smf"}},
		{map[string]string{"ss_tag_frequency": `{"1_ohwx": {"ohwx": 1}}`, "modelspec.trigger_phrase": "ohwx"}, []string{"ohwx"}},
		{map[string]string{}, []string{}},
	} {
		if got := TriggerWords(tc.meta); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("TriggerWords(%v) = %v, want %v", tc.meta, got, tc.want)
		}
	}
	got := TopTags(map[string]string{"ss_tag_frequency": `{"10_pxl": {"pxl": 30, "sky": 2}, "5_b": {"sky": 4, "tree": 1}}`})
	if want := []string{"pxl", "sky", "tree"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TopTags = %v, want %v", got, want)
	}
}

func TestTrainingSummary(t *testing.T) {
	m := map[string]string{
		"ss_sd_model_name": "v1-5-pruned.safetensors", "ss_new_sd_model_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"ss_training_started_at": "1680721200.5", "ss_resolution": "(512, 768)", "ss_num_epochs": "10", "ss_steps": "3010",
		"ss_dataset_dirs": `{"16_falcon": {"n_repeats": 16, "img_count": 43}}`,
	}
	got := map[string]string{}
	for _, l := range summaryLines(m) {
		got[l[0]] = l[1]
	}
	want := map[string]string{
		"base model":   "v1-5-pruned.safetensors (hash e3b0c44298fc) — the SHA-256 of empty input, a trainer bug",
		"trained":      "2023-04-05 19:00 UTC",
		"resolution":   "512×768",
		"epochs/steps": "10 epochs, 3010 steps",
		"dataset":      "16 × 43 images",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summaryLines = %v\nwant %v", got, want)
	}
	if ws := emptyHashWarnings(map[string]string{"sshs_model_hash": "0xE3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "modelspec.hash_sha256": "0x12"}); len(ws) != 1 || !strings.Contains(ws[0], "sshs_model_hash is the SHA-256 of empty input") {
		t.Errorf("emptyHashWarnings = %v", ws)
	}
}

// TestFullCheckpointsAreCheckpoints: full-size synthetic model files of
// every architecture (sparse, zero data) are reported as checkpoints of
// that architecture — not as LoRAs, although Flux-family files carry
// "…_norm.scale" names that BFL control LoRAs also use.
func TestFullCheckpointsAreCheckpoints(t *testing.T) {
	tmp := t.TempDir()
	for _, a := range arch.All() {
		t.Run(a.ID, func(t *testing.T) {
			p := filepath.Join(tmp, a.ID+".safetensors")
			writeSparseParams(t, p, a.Params(arch.Full))
			r := File(p, Options{})
			if r.Kind != "checkpoint" || r.Architecture != a.ID {
				t.Fatalf("bare %s diffusion model: kind %s, architecture %s (%s)", a.ID, r.Kind, r.Architecture, r.Evidence)
			}
		})
	}
}

func writeSparseParams(t *testing.T, path string, ps []arch.Param) {
	t.Helper()
	if err := fixture.WriteSparse(path, ps, dtype.F16, nil); err != nil {
		t.Fatal(err)
	}
}

// TestInspectPickle: an old LoRA saved by torch is described from its
// pickle (names, shapes) without running it.
func TestInspectPickle(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "old.pt")
	f16 := func(n int) []byte { return make([]byte, 2*n) }
	err := pttest.WriteStateDict(p, []pttest.Tensor{
		{Name: "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", Storage: "HalfStorage", Shape: []int64{4, 768}, Data: f16(4 * 768)},
		{Name: "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", Storage: "HalfStorage", Shape: []int64{320, 4}, Data: f16(320 * 4)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := File(p, Options{})
	if r.Error != "" || r.Kind != "lora" || r.Architecture != "sd1" || !strings.HasPrefix(r.Format, "pytorch pickle") {
		t.Fatalf("report %+v", r)
	}
}
