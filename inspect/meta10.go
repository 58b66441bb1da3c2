package inspect

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// alphaFolded reports whether a file without alpha tensors follows a
// convention where that is normal: diffusers and PEFT files carry no
// alpha (the scale is folded into the factors, as loratool convert writes
// them, or is 1). Only a file mixing modules with and without alpha, or a
// kohya/comfy file without any, has a genuinely unknown scale.
func alphaFolded(r *Report, s AlphaSummary) bool {
	if s.Present > 0 {
		return false
	}
	f := strings.ToLower(r.Format)
	return strings.HasPrefix(f, "diffusers") || strings.HasPrefix(f, "peft")
}

// emptySHA256 is the SHA-256 of no bytes: a hash some trainers store when
// they hashed before writing any data.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// hashKeys are the metadata keys that hold a SHA-256.
var hashKeys = []string{"sshs_model_hash", "modelspec.hash_sha256", "ss_new_sd_model_hash"}

// isEmptyHash reports whether a stored hash (hex, optional 0x) is the
// SHA-256 of empty input.
func isEmptyHash(v string) bool {
	return strings.EqualFold(strings.TrimPrefix(strings.TrimSpace(v), "0x"), emptySHA256)
}

// emptyHashWarnings names the known trainer bug for each stored hash that
// is the SHA-256 of empty input.
func emptyHashWarnings(m map[string]string) []string {
	var ws []string
	for _, k := range hashKeys {
		if isEmptyHash(m[k]) {
			ws = append(ws, fmt.Sprintf("stored %s is the SHA-256 of empty input (e3b0c442…): a known trainer bug (the hash was taken before any data was written); it identifies nothing — loratool inspect --hash computes the real one", k))
		}
	}
	return ws
}

// triggerComment finds trigger words a training comment names ("trigger
// word is X", "trigger words: a, b").
var triggerComment = regexp.MustCompile(`(?i)trigger[ _-]?(?:words?|phrases?|tokens?)?\s*(?:is|are|:|=)\s*(.+)`)

// TopTags ranks ss_tag_frequency tags by total count (at most 10): what
// the training captions said most, which is not the same as the words the
// LoRA needs in a prompt.
func TopTags(m map[string]string) []string {
	var out []string
	tf := m["ss_tag_frequency"]
	if tf == "" {
		return nil
	}
	var dirs map[string]map[string]float64
	if json.Unmarshal([]byte(tf), &dirs) != nil {
		return nil
	}
	total := map[string]float64{}
	for _, tags := range dirs {
		for tag, n := range tags {
			if t := strings.TrimSpace(tag); t != "" {
				total[t] += n
			}
		}
	}
	for _, tag := range rankedKeys(total) {
		if len(out) == 10 {
			break
		}
		out = append(out, tag)
	}
	return out
}

// summaryLines are the training facts a person looks for, one per line:
// base model (name and hash), date, resolution, epochs/steps, dataset
// repeats ("16 × 43 images").
func summaryLines(m map[string]string) [][2]string {
	var out [][2]string
	add := func(label, v string) {
		if v = strings.TrimSpace(v); v != "" && v != "None" {
			out = append(out, [2]string{label, v})
		}
	}
	base := m["ss_sd_model_name"]
	if h := firstOf(m, "ss_new_sd_model_hash", "ss_sd_model_hash"); h != "" {
		if base == "" {
			base = "(unnamed)"
		}
		short := h
		if len(short) > 12 {
			short = short[:12]
		}
		base += " (hash " + short + ")"
		if isEmptyHash(h) {
			base += " — the SHA-256 of empty input, a trainer bug"
		}
	}
	add("base model", base)
	add("trained", trainingDate(m))
	add("resolution", resolution(m["ss_resolution"]))
	var es []string
	if v := m["ss_num_epochs"]; v != "" {
		es = append(es, v+" epochs")
	}
	if v := firstOf(m, "ss_steps", "ss_max_train_steps"); v != "" {
		es = append(es, v+" steps")
	}
	add("epochs/steps", strings.Join(es, ", "))
	add("dataset", repeats(m["ss_dataset_dirs"]))
	return out
}

func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(m[k]); v != "" && v != "None" {
			return v
		}
	}
	return ""
}

// trainingDate formats ss_training_started_at / finished_at (Unix
// seconds) or modelspec.date.
func trainingDate(m map[string]string) string {
	for _, k := range []string{"ss_training_finished_at", "ss_training_started_at"} {
		if f, err := strconv.ParseFloat(strings.TrimSpace(m[k]), 64); err == nil && f > 0 && !math.IsInf(f, 0) && f < 1e11 {
			return time.Unix(int64(f), 0).UTC().Format("2006-01-02 15:04 UTC")
		}
	}
	return m["modelspec.date"]
}

// resolution turns "(768, 768)" or "768,768" into "768×768".
func resolution(v string) string {
	v = strings.Trim(strings.TrimSpace(v), "()[]")
	parts := strings.Split(v, ",")
	if len(parts) == 2 {
		a, b := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
		if _, err := strconv.Atoi(a); err == nil {
			if _, err := strconv.Atoi(b); err == nil {
				return a + "×" + b
			}
		}
	}
	return v
}

// repeats reads ss_dataset_dirs ({"16_name": {"n_repeats": 16,
// "img_count": 43}}) as "16 × 43 images", folders joined with " + ".
func repeats(v string) string {
	if v == "" {
		return ""
	}
	var dirs map[string]struct {
		Repeats int `json:"n_repeats"`
		Images  int `json:"img_count"`
	}
	if json.Unmarshal([]byte(v), &dirs) != nil {
		return ""
	}
	var parts []string
	for _, k := range sortedKeys(dirs) {
		d := dirs[k]
		parts = append(parts, fmt.Sprintf("%d × %d images", d.Repeats, d.Images))
	}
	return strings.Join(parts, " + ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// summaryLabels are the labels summaryLines adds to Report.Training.
var summaryLabels = []string{"base model", "trained", "resolution", "epochs/steps", "dataset"}

// folderToken is a kohya/ai-toolkit dataset folder "<repeats>_<token>":
// the token is the word the LoRA was trained on.
var folderToken = regexp.MustCompile(`^\d+_(.+)$`)

// namedTriggers are trigger words the file itself names: explicit keys, a
// training comment that says so, dataset folder tokens and class tokens.
func namedTriggers(m map[string]string, add func(string)) {
	for _, k := range []string{"modelspec.trigger_phrase", "trained_words", "ss_trigger_words"} {
		for _, w := range strings.Split(m[k], ",") {
			add(w)
		}
	}
	if c := triggerComment.FindStringSubmatch(m["ss_training_comment"]); c != nil {
		for _, w := range strings.Split(c[1], ",") {
			add(strings.TrimRight(strings.TrimSpace(w), "."))
		}
	}
	for _, key := range []string{"ss_tag_frequency", "ss_dataset_dirs"} {
		var dirs map[string]json.RawMessage
		if json.Unmarshal([]byte(m[key]), &dirs) == nil {
			for _, d := range sortedKeys(dirs) {
				if t := folderToken.FindStringSubmatch(d); t != nil {
					add(t[1])
				}
			}
		}
	}
}

// trainingOrder is the order of the training lines: the summary first,
// then the other facts (trainingKeys) not already shown.
func trainingOrder() []string {
	out := append([]string(nil), summaryLabels...)
	skip := map[string]bool{"trained on": true, "date": true, "epochs": true, "steps": true, "max steps": true, "resolution": true}
	for _, k := range trainingKeys {
		if !skip[k.label] {
			out = append(out, k.label)
		}
	}
	return out
}
