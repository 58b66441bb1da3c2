package meta

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/loratool/loratool/safetensors"
)

// writeSynthetic writes a deterministic >1 MiB safetensors file by hand
// (not with loratool's writer): tensors stored in non-canonical order, an
// unpadded header, ss_* and other metadata. Its kohya hashes were computed
// independently once with
//
//	LORATOOL_META_DUMP=/tmp/syn.safetensors go test ./meta -run TestKohyaHashesSynthetic
//	python3 meta/testdata/kohya_hash.py /tmp/syn.safetensors
func writeSynthetic(t *testing.T, path string) {
	t.Helper()
	type tensor struct {
		name, dt string
		shape    []int
		data     []byte
	}
	fill := func(n, mul, add int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*mul + add)
		}
		return b
	}
	ts := []tensor{
		{"w.lora_up.weight", "F16", []int{600, 1000}, fill(1_200_000, 31, 7)},
		{"w.alpha", "F32", []int{}, []byte{0, 0, 0x80, 0x40}},
		{"idx", "I64", []int{3}, fill(24, 5, 1)},
		{"b.lora_down.weight", "F16", []int{4, 10}, fill(80, 3, 2)},
	}
	js := `{"__metadata__":{"ss_network_dim":"4","ss_note":"caf\u00e9 \"q\"","other":"not hashed"}`
	var data []byte
	for _, x := range ts {
		sh, _ := json.Marshal(x.shape)
		js += `,"` + x.name + `":{"dtype":"` + x.dt + `","shape":` + string(sh) + `,"data_offsets":[` +
			itoa(len(data)) + `,` + itoa(len(data)+len(x.data)) + `]}`
		data = append(data, x.data...)
	}
	js += "}"
	var hdr [8]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(len(js)))
	out := append(append(hdr[:], js...), data...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestKohyaHashesSynthetic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "syn.safetensors")
	if p := os.Getenv("LORATOOL_META_DUMP"); p != "" {
		path = p
	}
	writeSynthetic(t, path)
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Compute(f, f.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	// values from meta/testdata/kohya_hash.py (see writeSynthetic)
	want := Hashes{
		ModelHash:      "fdcdfb98c0e7febb048031811a0d72f6b49f38918896dcc5770655ec62a32ea5",
		LegacyHash:     "ae209711",
		LegacyUnpadded: "5884540e",
		SpecHash:       "0xfdcdfb98c0e7febb048031811a0d72f6b49f38918896dcc5770655ec62a32ea5",
	}
	if got != want {
		t.Errorf("hashes\n got %+v\nwant %+v", got, want)
	}
}

// corpusDir holds real LoRA files (skipped when absent).
const corpusDir = "../../shared/corpus/files"

// TestKohyaHashesCorpus checks files trained with kohya sd-scripts
// (LyCORIS LoKr, safetensors before 0.3.1: unpadded headers) and an
// ai-toolkit file whose stored hashes are of an empty file. Expected values
// come from meta/testdata/kohya_hash.py.
func TestKohyaHashesCorpus(t *testing.T) {
	cases := []struct {
		file              string
		model, pad, raw   string
		modelOK, legacyOK string
		rule              string
	}{
		{"lycoris-lokr-sd15-r4_smart_falcon_4_lokr.safetensors", "150ef207aad02214f69756f53c3fc56efacdf6c79e32dd76e5fcbcf6c6a5350f", "e3b0c442", "e3b0c442", "ok", "ok", "both"},
		{"lycoris-lokr-sd15-r8_smart_falcon_8_lokr.safetensors", "1383de39158354915efccfc6b03876ba53e41725c6d20cf996b9529b2831de42", "59404f6d", "bb83ed73", "ok", "ok", "unpadded"},
		{"lycoris-lokr-sd15-r16_smart_falcon_16_lokr.safetensors", "51a16c07bdd8e550c2ea36095a2c25a261a029a7672ad2a26735564c3c3e7ad8", "81b44117", "81b44117", "ok", "ok", "both"},
		{"diffusers-flux-partial-r16_leighwoods.safetensors", "e5a65ec2e1d81ae27f9a538676fa302799a043fd57b6a355587c7c0e9f69eb9a", "bf48438c", "f3697f55", "stale", "stale", ""},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(corpusDir, c.file)
			if _, err := os.Stat(path); err != nil {
				t.Skip("corpus not available")
			}
			f, err := safetensors.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ch, err := CheckHashes(f)
			if err != nil {
				t.Fatal(err)
			}
			got := ch.Computed
			if got.ModelHash != c.model || got.LegacyHash != c.pad || got.LegacyUnpadded != c.raw || got.SpecHash != "0x"+c.model {
				t.Errorf("computed %+v, want model %s padded %s unpadded %s", got, c.model, c.pad, c.raw)
			}
			if ch.Model != c.modelOK || ch.Legacy != c.legacyOK || ch.LegacyRule != c.rule || ch.Spec != "absent" {
				t.Errorf("verdicts model %s legacy %s rule %q spec %s, want %s %s %q absent", ch.Model, ch.Legacy, ch.LegacyRule, ch.Spec, c.modelOK, c.legacyOK, c.rule)
			}
		})
	}
}

// tensorBytes reads every tensor's raw bytes by name, parsing the file
// with encoding/json (independently of the package's reader).
func tensorBytes(t *testing.T, path string) (map[string][]byte, map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b[:8])
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	var md map[string]string
	for k, v := range hdr {
		if k == "__metadata__" {
			json.Unmarshal(v, &md)
			continue
		}
		var ti struct {
			Offsets [2]int `json:"data_offsets"`
		}
		json.Unmarshal(v, &ti)
		out[k] = b[8+int(n)+ti.Offsets[0] : 8+int(n)+ti.Offsets[1]]
	}
	return out, md
}

func TestRewriteEdits(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "in.safetensors")
	writeSynthetic(t, src)
	if err := os.Chmod(src, 0o600); err != nil {
		t.Fatal(err)
	}
	wantData, _ := tensorBytes(t, src)
	cases := []struct {
		name  string
		edits []Edit
		want  map[string]string
	}{
		{"set", []Edit{SetKeys(map[string]string{"modelspec.title": "T", "other": "changed"})},
			map[string]string{"ss_network_dim": "4", "ss_note": `café "q"`, "other": "changed", "modelspec.title": "T"}},
		{"rm glob", []Edit{RemoveKeys([]string{"ss_*"})}, map[string]string{"other": "not hashed"}},
		{"copy some", []Edit{CopyFrom(map[string]string{"ss_a": "1", "x": "2"}, []string{"ss_*"})},
			map[string]string{"ss_network_dim": "4", "ss_note": `café "q"`, "other": "not hashed", "ss_a": "1"}},
		{"copy all", []Edit{CopyFrom(map[string]string{"x": "2"}, nil)}, map[string]string{"x": "2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			work := filepath.Join(dir, c.name+".safetensors")
			b, _ := os.ReadFile(src)
			os.WriteFile(work, b, 0o640)
			os.Chmod(work, 0o640)
			res, err := Rewrite(work, work, c.edits, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Verified {
				t.Error("not verified")
			}
			data, md := tensorBytes(t, work)
			if !reflect.DeepEqual(md, c.want) {
				t.Errorf("metadata %v, want %v", md, c.want)
			}
			if !reflect.DeepEqual(data, wantData) {
				t.Error("tensor bytes changed")
			}
			st, _ := os.Stat(work)
			if st.Mode().Perm() != 0o640 {
				t.Errorf("mode %v, want 0640", st.Mode().Perm())
			}
			left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
			if len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestRewriteRehashMatchesIndependentValues(t *testing.T) {
	// After rehash, the stored values are kohya's hashes of the new file's
	// tensors and ss_* keys: equal to those of the input (ss_* unchanged).
	dir := t.TempDir()
	src := filepath.Join(dir, "in.safetensors")
	writeSynthetic(t, src)
	out := filepath.Join(dir, "out.safetensors")
	if _, err := Rewrite(src, out, []Edit{SetKeys(map[string]string{"not_ss": "x"})}, Options{Rehash: true}); err != nil {
		t.Fatal(err)
	}
	_, md := tensorBytes(t, out)
	if md["sshs_model_hash"] != "fdcdfb98c0e7febb048031811a0d72f6b49f38918896dcc5770655ec62a32ea5" || md["sshs_legacy_hash"] != "ae209711" || md["modelspec.hash_sha256"] != "0xfdcdfb98c0e7febb048031811a0d72f6b49f38918896dcc5770655ec62a32ea5" {
		t.Errorf("stored hashes %q %q %q", md["sshs_model_hash"], md["sshs_legacy_hash"], md["modelspec.hash_sha256"])
	}
	// the output was written canonically: its data section is what kohya hashes
	b, _ := os.ReadFile(out)
	n := binary.LittleEndian.Uint64(b[:8])
	if (8+n)%8 != 0 {
		t.Errorf("header of %d bytes is not padded", n)
	}
}

func TestStrip(t *testing.T) {
	cases := []struct {
		name    string
		in      map[string]string
		want    map[string]string
		trigger string
	}{
		{"kohya dataset folders",
			map[string]string{"ss_network_dim": "8", "ss_network_alpha": "4", "ss_base_model_version": "sd_v1",
				"ss_sd_model_name": `C:\models\sd15.safetensors`, "ss_dataset_dirs": `{"10_ohwx man": {"n_repeats": 10, "img_count": 3}}`,
				"ss_tag_frequency": `{"10_ohwx man": {"ohwx": 3, "man": 3}}`, "ss_bucket_info": "{}", "ss_output_dir": "/home/u/out"},
			map[string]string{"ss_network_dim": "8", "ss_network_alpha": "4", "ss_base_model_version": "sd_v1",
				"ss_sd_model_name": "sd15.safetensors", "modelspec.trigger_phrase": "ohwx man"}, "ohwx man"},
		{"explicit trigger kept",
			map[string]string{"modelspec.trigger_phrase": "sks", "ss_tag_frequency": `{"1_other": {"other": 1}}`, "modelspec.architecture": "flux-1-dev/lora"},
			map[string]string{"modelspec.trigger_phrase": "sks", "modelspec.architecture": "flux-1-dev/lora"}, ""},
		{"class tokens",
			map[string]string{"ss_datasets": `[{"subsets": [{"image_dir": "/data/x", "class_tokens": "zwx dog"}]}]`},
			map[string]string{"modelspec.trigger_phrase": "zwx dog"}, "zwx dog"},
		{"nothing to keep",
			map[string]string{"ss_tag_frequency": `{"img": {"a": 1}}`},
			map[string]string{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			md := copyMap(c.in)
			notes, err := Strip()(md)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(md, c.want) {
				t.Errorf("got %v\nwant %v", md, c.want)
			}
			if (c.trigger != "") != (len(notes) == 1 && strings.Contains(notes[0], c.trigger)) {
				t.Errorf("notes %v", notes)
			}
		})
	}
}

func TestSetTrigger(t *testing.T) {
	md := map[string]string{"ss_tag_frequency": `{"5_x": {"1girl": 7, "solo": 2}}`}
	if _, err := SetTrigger([]string{"ohwx", "red scarf"})(md); err != nil {
		t.Fatal(err)
	}
	if md["modelspec.trigger_phrase"] != "ohwx, red scarf" {
		t.Errorf("trigger_phrase %q", md["modelspec.trigger_phrase"])
	}
	var freq map[string]map[string]float64
	if err := json.Unmarshal([]byte(md["ss_tag_frequency"]), &freq); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]float64{"5_x": {"1girl": 7, "solo": 2}, "1_ohwx, red scarf": {"ohwx": 8, "red scarf": 8}}
	if !reflect.DeepEqual(freq, want) {
		t.Errorf("ss_tag_frequency %v", freq)
	}
	// a malformed ss_tag_frequency is an error, not silently replaced
	if _, err := SetTrigger([]string{"a"})(map[string]string{"ss_tag_frequency": "[1]"}); err == nil {
		t.Error("no error for a malformed ss_tag_frequency")
	}
}

func TestShowSafe(t *testing.T) {
	var b bytes.Buffer
	Show(&b, map[string]string{"k\x1b[31m": "v\x1b]0;x\x07", "j": `{"a":[1,2]}`})
	got := b.String()
	if strings.ContainsAny(got, "\x1b\x07") {
		t.Errorf("control characters echoed: %q", got)
	}
	if !strings.Contains(got, "j:\n  {\n    \"a\": [\n") {
		t.Errorf("JSON not pretty-printed: %q", got)
	}
}
