package inspect

import (
	"encoding/json"
	"sort"
	"strings"
)

// trainingKeys are the metadata facts the human summary shows, in order,
// with their labels.
var trainingKeys = []struct{ key, label string }{
	{"modelspec.title", "title"},
	{"modelspec.architecture", "modelspec architecture"},
	{"modelspec.author", "author"},
	{"modelspec.date", "date"},
	{"ss_base_model_version", "base model version"},
	{"ss_sd_model_name", "trained on"},
	{"ss_network_module", "network module"},
	{"ss_network_dim", "network dim"},
	{"ss_network_alpha", "network alpha"},
	{"ss_network_args", "network args"},
	{"ss_resolution", "resolution"},
	{"ss_num_train_images", "training images"},
	{"ss_num_epochs", "epochs"},
	{"ss_epoch", "epoch"},
	{"ss_steps", "steps"},
	{"ss_max_train_steps", "max steps"},
	{"ss_learning_rate", "learning rate"},
	{"ss_unet_lr", "unet lr"},
	{"ss_text_encoder_lr", "text encoder lr"},
	{"ss_optimizer", "optimizer"},
	{"ss_mixed_precision", "precision"},
	{"ss_output_name", "output name"},
	{"modelspec.merged_from", "merged from"},
	{"ss_training_comment", "comment"},
}

// describeMetadata fills Training and TriggerWords from the metadata.
func describeMetadata(r *Report) {
	m := r.Metadata
	if len(m) == 0 {
		return
	}
	r.Training = map[string]string{}
	for _, k := range trainingKeys {
		if v := strings.TrimSpace(m[k.key]); v != "" && v != "None" {
			r.Training[k.label] = v
		}
	}
	for _, l := range summaryLines(m) {
		r.Training[l[0]] = l[1]
	}
	if len(r.Training) == 0 {
		r.Training = nil
	}
	r.TriggerWords = TriggerWords(m)
	r.TopTags = TopTags(m)
	r.Warnings = append(r.Warnings, emptyHashWarnings(m)...)
}

// TriggerWords lists the words a LoRA expects in prompts as the file
// names them, most reliable source first: modelspec.trigger_phrase,
// SimpleTuner's trained_words, a training comment naming them, dataset
// folder tokens ("10_sks"; ai-toolkit writes its trigger as "1_<trigger>"),
// then dataset class tokens, at most 10. Caption tag frequencies are not
// trigger words: see TopTags.
func TriggerWords(m map[string]string) []string {
	out := []string{}
	seen := map[string]bool{}
	add := func(w string) {
		w = strings.TrimSpace(w)
		if w == "" || seen[strings.ToLower(w)] || len(out) >= 10 {
			return
		}
		seen[strings.ToLower(w)] = true
		out = append(out, w)
	}
	namedTriggers(m, add)
	if ds := m["ss_datasets"]; ds != "" {
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
	return out
}

// rankedKeys returns m's keys by descending count, ties by name.
func rankedKeys[N int | float64](m map[string]N) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
