// Package meta reads and edits the metadata of safetensors files
// (`loratool meta`): show, set, remove, strip training-set details,
// recompute kohya's hashes, copy from another file, set trigger words.
// Edits rewrite the file atomically and stream the tensor data unchanged.
package meta

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/loratool/loratool/inspect"
	"github.com/loratool/loratool/safetensors"
)

// Edit changes a metadata map in place; it may return notes for the report.
type Edit func(md map[string]string) ([]string, error)

// Result reports one rewritten file.
type Result struct {
	Input   string   `json:"input"`
	Output  string   `json:"output,omitempty"`
	Set     []string `json:"set,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	// Hashes is the hash check of the input (rehash) or the hashes
	// written (with --rehash).
	Hashes *Check `json:"hashes,omitempty"`
	// Verified is true when the output's tensor data were read back and
	// found byte-identical to the input's.
	Verified bool   `json:"verified,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Options control Rewrite.
type Options struct {
	// Rehash recomputes sshs_model_hash, sshs_legacy_hash and
	// modelspec.hash_sha256 after the edits.
	Rehash bool
	// Overwrite allows replacing an existing output that is not the input.
	Overwrite bool
	// Trigger, when set, is also written as "activation text" to the
	// A1111/Forge user-metadata file <output stem>.json.
	Trigger []string
}

// Rewrite applies edits to the metadata of in and writes the result to
// out (which may equal in: in-place). The tensor data are streamed with
// copy_file_range and read back before the rename to check that every
// byte is unchanged; the file mode of in is kept.
func Rewrite(in, out string, edits []Edit, opt Options) (*Result, error) {
	res := &Result{Input: in}
	if _, err := os.Lstat(out); err == nil && !opt.Overwrite && !sameFile(in, out) {
		return res, fmt.Errorf("%s exists (use --overwrite)", out)
	}
	f, err := safetensors.Open(in)
	if err != nil {
		return res, err
	}
	defer f.Close()
	st, err := os.Stat(in)
	if err != nil {
		return res, err
	}
	md := map[string]string{}
	for k, v := range f.Metadata {
		md[k] = v
	}
	before := copyMap(md)
	for _, e := range edits {
		notes, err := e(md)
		if err != nil {
			return res, fmt.Errorf("%s: %v", in, err)
		}
		res.Notes = append(res.Notes, notes...)
	}
	if opt.Rehash {
		h, err := Compute(f, md)
		if err != nil {
			return res, err
		}
		setHashes(md, h)
		res.Hashes = &Check{Computed: h}
	}
	res.Set, res.Removed = diff(before, md)
	var mdArg map[string]string
	if len(md) > 0 || f.Metadata != nil {
		mdArg = md
	}
	src, err := os.Open(in)
	if err != nil {
		return res, err
	}
	defer src.Close()
	if out != in {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return res, err
		}
	}
	w, err := safetensors.Create(out, tensorSpecs(f.Header), mdArg)
	if err != nil {
		return res, err
	}
	w.SetMode(st.Mode())
	want := sha256.New()
	buf := make([]byte, 1<<20)
	for _, s := range w.Order() {
		t, _ := f.Lookup(s.Name)
		// hash the input's bytes with ReadAt (bounded memory), then let
		// the kernel copy them
		if _, err := io.CopyBuffer(want, io.NewSectionReader(src, f.DataOffset+t.Begin, t.End-t.Begin), buf); err != nil {
			w.Abort()
			return res, fmt.Errorf("%s: reading tensor %q: %v", in, s.Name, err)
		}
		if err := w.WriteFrom(s.Name, src, f.DataOffset+t.Begin, t.End-t.Begin); err != nil {
			w.Abort()
			return res, err
		}
	}
	if err := verify(w, f, want.Sum(nil)); err != nil {
		w.Abort()
		return res, fmt.Errorf("%s: %v; nothing written", out, err)
	}
	if err := w.Commit(); err != nil {
		return res, err
	}
	res.Verified = true
	res.Output = out
	if len(opt.Trigger) > 0 {
		note, err := writeSidecar(out, opt.Trigger)
		if err != nil {
			return res, err
		}
		res.Notes = append(res.Notes, note)
	}
	return res, nil
}

// verify reads back the data section of the temporary file and compares
// its SHA-256 with the input tensors' bytes in the same order.
func verify(w *safetensors.Writer, f *safetensors.File, want []byte) error {
	r, err := w.ReadBack()
	if err != nil {
		return err
	}
	size := f.DataSize()
	hdr := w.FileSize() - size
	got := sha256.New()
	if _, err := io.CopyBuffer(got, io.NewSectionReader(r, hdr, size), make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("reading back: %v", err)
	}
	if !bytes.Equal(got.Sum(nil), want) {
		return fmt.Errorf("tensor data read back differ from the input")
	}
	return nil
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// diff lists keys added or changed, and keys removed, sorted.
func diff(a, b map[string]string) (set, removed []string) {
	for k, v := range b {
		if old, ok := a[k]; !ok || old != v {
			set = append(set, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			removed = append(removed, k)
		}
	}
	sort.Strings(set)
	sort.Strings(removed)
	return set, removed
}

// SetKeys returns an edit that sets each KEY=VALUE.
func SetKeys(kv map[string]string) Edit {
	return func(md map[string]string) ([]string, error) {
		for k, v := range kv {
			md[k] = v
		}
		return nil, nil
	}
}

// RemoveKeys returns an edit that deletes keys (a key may be a glob such
// as "ss_*"); a key that matches nothing is reported in a note.
func RemoveKeys(keys []string) Edit {
	return func(md map[string]string) ([]string, error) {
		var notes []string
		for _, pat := range keys {
			n := 0
			for k := range md {
				if ok, _ := filepath.Match(pat, k); ok || k == pat {
					delete(md, k)
					n++
				}
			}
			if n == 0 {
				notes = append(notes, fmt.Sprintf("no key %s", safe(pat)))
			}
		}
		return notes, nil
	}
}

// CopyFrom returns an edit that replaces the metadata with other's
// (keys listed in only lists only those keys, when given).
func CopyFrom(other map[string]string, only []string) Edit {
	return func(md map[string]string) ([]string, error) {
		if len(only) == 0 {
			for k := range md {
				delete(md, k)
			}
			for k, v := range other {
				md[k] = v
			}
			return nil, nil
		}
		var notes []string
		for _, pat := range only {
			n := 0
			for k, v := range other {
				if ok, _ := filepath.Match(pat, k); ok || k == pat {
					md[k] = v
					n++
				}
			}
			if n == 0 {
				notes = append(notes, fmt.Sprintf("the other file has no key %s", safe(pat)))
			}
		}
		return notes, nil
	}
}

// strippedKeys are training-set details: dataset folders, per-image tag
// counts (captions), bucket statistics and dataset configurations with
// their image and caption paths.
var strippedKeys = []string{
	"ss_tag_frequency", "ss_dataset_dirs", "ss_reg_dataset_dirs", "ss_datasets",
	"ss_bucket_info", "ss_caption_extension", "ss_sample_prompts", "ss_training_comment_dataset",
}

// pathKeys name a model file; strip keeps only its base name.
var pathKeys = map[string]bool{"ss_sd_model_name": true, "ss_vae_name": true, "ss_base_model": true, "modelspec.base_model": true}

var absPath = regexp.MustCompile(`^(/|~/|[A-Za-z]:[\\/]|\\\\)`)

// Strip returns an edit that drops training-set details (see
// strippedKeys) and absolute paths, keeping architecture, rank, base model
// and trigger words. Trigger words that lived only in the dropped keys
// (ai-toolkit's "1_<trigger>" folder, kohya dataset class tokens) are
// moved to modelspec.trigger_phrase first.
func Strip() Edit {
	return func(md map[string]string) ([]string, error) {
		var notes []string
		if explicitTrigger(md) == "" {
			if t := implicitTrigger(md); len(t) > 0 {
				md["modelspec.trigger_phrase"] = strings.Join(t, ", ")
				notes = append(notes, "kept trigger words in modelspec.trigger_phrase: "+safe(md["modelspec.trigger_phrase"]))
			}
		}
		for _, k := range strippedKeys {
			delete(md, k)
		}
		for k, v := range md {
			if !absPath.MatchString(strings.TrimSpace(v)) {
				continue
			}
			if pathKeys[k] {
				md[k] = baseName(v)
			} else {
				delete(md, k)
			}
		}
		return notes, nil
	}
}

// baseName is the last element of a Unix or Windows path.
func baseName(p string) string {
	p = strings.TrimSpace(p)
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// explicitTrigger returns the trigger words stored in a key meant for them.
func explicitTrigger(md map[string]string) string {
	for _, k := range []string{"modelspec.trigger_phrase", "trained_words", "ss_trigger_words"} {
		if v := strings.TrimSpace(md[k]); v != "" {
			return v
		}
	}
	return ""
}

// implicitTrigger finds trigger words trainers leave in training-set keys:
// ai-toolkit's ss_tag_frequency {"1_<w>": {"<w>": 1}} and the class tokens
// of kohya's datasets (ss_datasets subsets, or "<repeats>_<token>" dataset
// folder names).
func implicitTrigger(md map[string]string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(w string) {
		w = strings.TrimSpace(w)
		if w != "" && !seen[strings.ToLower(w)] {
			seen[strings.ToLower(w)] = true
			out = append(out, w)
		}
	}
	if ds := md["ss_datasets"]; ds != "" {
		var sets []struct {
			Subsets []struct {
				ClassTokens string `json:"class_tokens"`
			} `json:"subsets"`
		}
		if json.Unmarshal([]byte(ds), &sets) == nil {
			for _, s := range sets {
				for _, sub := range s.Subsets {
					add(sub.ClassTokens)
				}
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	var dirs map[string]json.RawMessage
	for _, k := range []string{"ss_dataset_dirs", "ss_tag_frequency"} {
		if json.Unmarshal([]byte(md[k]), &dirs) != nil {
			continue
		}
		names := make([]string, 0, len(dirs))
		for d := range dirs {
			names = append(names, d)
		}
		sort.Strings(names)
		for _, d := range names {
			if i := strings.IndexByte(d, '_'); i > 0 && allDigits(d[:i]) {
				add(d[i+1:])
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return out
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// SplitTrigger splits "word, word" into trimmed, non-empty words.
func SplitTrigger(s string) []string {
	var out []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// SetTrigger returns an edit that records trigger words where the tools
// look for them: modelspec.trigger_phrase (SAI ModelSpec; SwarmUI,
// loratool inspect) and ss_tag_frequency, where A1111/Forge's LoRA card
// ("training tags"), Civitai's upload form and ComfyUI LoRA Manager read
// a LoRA's tags. The words enter ss_tag_frequency under a "1_<words>"
// folder, as ai-toolkit writes its trigger, with a count above every
// existing tag so they rank first; existing tags are kept.
func SetTrigger(words []string) Edit {
	return func(md map[string]string) ([]string, error) {
		md["modelspec.trigger_phrase"] = strings.Join(words, ", ")
		freq := map[string]map[string]float64{}
		if tf := md["ss_tag_frequency"]; tf != "" {
			if err := json.Unmarshal([]byte(tf), &freq); err != nil {
				return nil, fmt.Errorf("ss_tag_frequency is not a JSON object of folders: %v", err)
			}
		}
		top := 0.0
		for _, tags := range freq {
			for _, n := range tags {
				top = max(top, n)
			}
		}
		folder := map[string]float64{}
		for _, w := range words {
			folder[w] = top + 1
		}
		freq["1_"+strings.Join(words, ", ")] = folder
		b, err := json.Marshal(freq)
		if err != nil {
			return nil, err
		}
		md["ss_tag_frequency"] = string(b)
		return nil, nil
	}
}

// writeSidecar sets "activation text" in the A1111/Forge user-metadata
// file <stem>.json beside out (other keys kept), atomically.
func writeSidecar(out string, words []string) (string, error) {
	path := strings.TrimSuffix(out, filepath.Ext(out)) + ".json"
	doc := map[string]any{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &doc); err != nil {
			return "", fmt.Errorf("%s: not a JSON object, left unchanged: %v", path, err)
		}
	} else if !os.IsNotExist(err) {
		return "", err
	}
	doc["activation text"] = strings.Join(words, ", ")
	b, err := json.MarshalIndent(doc, "", "    ")
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("%s: %v", path, err)
	}
	return "activation text written to " + path, nil
}

// Triggers returns the trigger words loratool inspect reports.
func Triggers(md map[string]string) []string { return inspect.TriggerWords(md) }
