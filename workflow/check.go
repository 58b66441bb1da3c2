package workflow

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/loratool/loratool/merge"
)

// Issue severities.
const (
	// SeverityError marks a problem that makes the workflow fail or the
	// LoRA not load: missing file, architecture mismatch, unloadable keys.
	SeverityError = "error"
	// SeverityWarning marks something that probably is not what the user
	// wants but runs.
	SeverityWarning = "warning"
)

// Issue codes.
const (
	// CodeMissingFile: a file a loader names is not in the model folders.
	CodeMissingFile = "missing_file"
	// CodeUnreadable: the base or a LoRA cannot be read.
	CodeUnreadable = "unreadable_file"
	// CodeArchMismatch: a LoRA for another architecture than the base, or
	// a LoRA loader pointing at something that is not a LoRA.
	CodeArchMismatch = "arch_mismatch"
	// CodeUnloadable: LoRA tensors that match nothing in the base.
	CodeUnloadable = "unloadable_keys"
	// CodeModelOnlyTE: a LoRA with text-encoder parts in LoraLoaderModelOnly.
	CodeModelOnlyTE = "text_encoder_part_unused"
	// CodeTriggerWords: trigger words no prompt of the stack contains.
	CodeTriggerWords = "trigger_words_missing"
	// CodeUnsupported: a LoRA node of another node pack.
	CodeUnsupported = "unsupported_node"
	// CodeChain: one of Stack.Problems (muted nodes, unknown loaders, ...).
	CodeChain = "chain"
	// CodeLoaderMisfit: a checkpoint loader pointing at a file without
	// text encoder and VAE.
	CodeLoaderMisfit = "loader_mismatch"
	// CodeNotChecked: trigger words could not be checked (linked prompt).
	CodeNotChecked = "not_checked"
)

// Issue is one finding of Check.
type Issue struct {
	Severity string `json:"severity"`
	Code     string `json:"code"`
	// NodeID is the node concerned ("" for the stack as a whole).
	NodeID  string `json:"node,omitempty"`
	Message string `json:"message"`
}

// File is where a file named by a loader widget was found and what it is.
type File struct {
	// Type is the ComfyUI model type searched (checkpoints, loras, ...).
	Type string `json:"type"`
	// Path is the resolved file ("" when not resolved).
	Path string `json:"path,omitempty"`
	// Searched lists the paths tried when the file was not found.
	Searched []string `json:"searched,omitempty"`
	// Architecture is the detected architecture (base and LoRAs).
	Architecture string `json:"architecture,omitempty"`
	// Layout is the checkpoint layout (base only): single-file,
	// diffusion-model, ...
	Layout string `json:"layout,omitempty"`
}

// LoaderFile is a file named by a text-encoder or VAE loader.
type LoaderFile struct {
	NodeID   string `json:"node"`
	NodeType string `json:"node_type"`
	// Name is the name as written in the workflow.
	Name string `json:"name"`
	File
}

// BaseReport is a stack's base loader and its file.
type BaseReport struct {
	Base
	File
}

// LoRAReport is a LoRA of a stack and what was found out about its file.
type LoRAReport struct {
	LoRA
	File
	// Targets are the parts the LoRA adapts (inspect's vocabulary:
	// unet, dit, clip-l, t5, ...).
	Targets      []string `json:"targets,omitempty"`
	TriggerWords []string `json:"trigger_words,omitempty"`
	// Patches is the number of patches of base tensors the merge mapping
	// produced at the node's strengths (active LoRAs only).
	Patches int `json:"patches"`
	// Unmatched is the number of LoRA tensors that will not load.
	Unmatched int `json:"unmatched"`

	mapped bool // Patches and Unmatched are known
}

// Report is the result of checking one stack: the stack, its files and
// the issues found. Its JSON form is one line of `workflow inspect --json`.
type Report struct {
	Workflow     string       `json:"workflow"`
	SamplerID    string       `json:"sampler"`
	SamplerType  string       `json:"sampler_type"`
	Base         BaseReport   `json:"base"`
	LoRAs        []LoRAReport `json:"loras"`
	TextEncoders []LoaderFile `json:"text_encoders"`
	VAEs         []LoaderFile `json:"vae"`
	Prompts      []Prompt     `json:"prompts"`
	Unsupported  []NodeRef    `json:"unsupported"`
	Issues       []Issue      `json:"issues"`
	Errors       int          `json:"errors"`
	Warnings     int          `json:"warnings"`
	// Checked is false when no model folders were given, so files were
	// neither resolved nor inspected.
	Checked bool `json:"files_checked"`

	stack Stack
}

// Stack returns the stack the report describes.
func (r *Report) Stack() Stack { return r.stack }

func (r *Report) add(sev, code, node, format string, args ...any) {
	r.Issues = append(r.Issues, Issue{Severity: sev, Code: code, NodeID: node, Message: fmt.Sprintf(format, args...)})
	if sev == SeverityError {
		r.Errors++
	} else {
		r.Warnings++
	}
}

// isModelPart reports whether an inspect target is part of the diffusion
// model (the rest are text encoders; "vae" is neither).
func isModelPart(p string) bool { return p == "unet" || p == "dit" }

func isTextEncoderPart(p string) bool { return !isModelPart(p) && p != "vae" }

// Check describes a stack and, when f has folders, resolves every file
// the stack's loaders (and the workflow's VAELoaders) name, inspects the
// base and the LoRAs and maps each active LoRA onto the base with the
// merge engine at the node's strengths (without writing anything). The
// issues found are in Report.Issues; only missing files, architecture
// mismatches and LoRA tensors that will not load are errors.
func (w *Workflow) Check(st Stack, f *Folders) *Report {
	r := &Report{Workflow: w.Path, SamplerID: st.SamplerID, SamplerType: st.SamplerType,
		Base:  BaseReport{Base: st.Base, File: File{Type: baseType(st.Base)}},
		LoRAs: []LoRAReport{}, TextEncoders: []LoaderFile{}, VAEs: []LoaderFile{}, Prompts: st.Prompts, Unsupported: st.Unsupported,
		Issues: []Issue{}, Checked: !f.Empty(), stack: st}
	if r.Prompts == nil {
		r.Prompts = []Prompt{}
	}
	if r.Unsupported == nil {
		r.Unsupported = []NodeRef{}
	}
	for _, p := range st.invalid {
		r.add(SeverityError, CodeInvalidValue, "", "%s", p)
	}
	for _, p := range st.Problems {
		r.add(SeverityWarning, CodeChain, "", "%s", p)
	}
	for _, u := range st.Unsupported {
		r.add(SeverityWarning, CodeUnsupported, u.NodeID, "node %s (%s) is a LoRA node of a custom node pack; its effect is not checked and bake does not include it", u.NodeID, u.NodeType)
	}
	for _, l := range st.LoRAs {
		r.LoRAs = append(r.LoRAs, LoRAReport{LoRA: l, File: File{Type: TypeLoRAs}})
	}
	for _, c := range st.CLIPLoaders {
		for _, n := range c.Names {
			r.TextEncoders = append(r.TextEncoders, LoaderFile{NodeID: c.NodeID, NodeType: c.NodeType, Name: n, File: File{Type: TypeTextEncoders}})
		}
	}
	r.VAEs = append(r.VAEs, w.vaeFiles()...)
	if !r.Checked {
		return r
	}

	resolveAs := func(fl *File, node, typ, name, sev, note string) bool {
		if name == "" {
			return false
		}
		p, searched, ok := f.Resolve(fl.Type, name)
		if ok {
			fl.Path = p
			return true
		}
		fl.Searched = searched
		r.add(sev, CodeMissingFile, node, "%s \"%s\" of node %s (%s)%s not found; looked in %s", typeLabel(fl.Type), name, node, typ, note, strings.Join(searched, ", "))
		return false
	}
	for _, list := range [][]LoaderFile{r.TextEncoders, r.VAEs} {
		for i := range list {
			l := &list[i]
			resolveAs(&l.File, l.NodeID, l.NodeType, l.Name, SeverityError, "")
		}
	}

	// The base: the merge engine's view of it (architecture and layout).
	baseArch := ""
	if st.Base.NodeID != "" && resolveAs(&r.Base.File, st.Base.NodeID, st.Base.NodeType, st.Base.Name, SeverityError, "") {
		p, err := merge.NewPlan(r.Base.Path, nil, merge.PlanOptions{})
		if err != nil {
			r.add(SeverityError, CodeUnreadable, st.Base.NodeID, "base %s: %v", r.Base.Path, err)
		} else {
			baseArch = p.Arch.ID
			r.Base.Architecture, r.Base.Layout = p.Arch.ID, p.Info.Layout
			if st.Base.Kind == KindCheckpoint && p.Info.Layout != "single-file" {
				r.add(SeverityWarning, CodeLoaderMisfit, st.Base.NodeID, "%s loads %s, a %s file without text encoder and VAE; use UNETLoader (Load Diffusion Model) for it", st.Base.NodeType, st.Base.Name, p.Info.Layout)
			}
			p.Close()
		}
	}

	for i := range r.LoRAs {
		lr := &r.LoRAs[i]
		if lr.Mode != "active" {
			resolveAs(&lr.File, lr.NodeID, lr.NodeType, lr.Name, SeverityWarning, ", "+lr.Mode+",")
			continue
		}
		if !resolveAs(&lr.File, lr.NodeID, lr.NodeType, lr.Name, SeverityError, "") {
			continue
		}
		rep := w.cache.inspect(lr.Path)
		if rep.Error != "" {
			r.add(SeverityError, CodeUnreadable, lr.NodeID, "LoRA %s: %s", lr.Path, rep.Error)
			continue
		}
		if rep.Kind != "lora" {
			r.add(SeverityError, CodeArchMismatch, lr.NodeID, "LoRA node %s loads %s, which is a %s file, not a LoRA", lr.NodeID, lr.Name, rep.Kind)
			continue
		}
		lr.Architecture, lr.Targets, lr.TriggerWords = rep.Architecture, rep.Targets, rep.TriggerWords
		if lr.ModelOnly {
			var te []string
			for _, t := range rep.Targets {
				if isTextEncoderPart(t) {
					te = append(te, t)
				}
			}
			if len(te) > 0 {
				r.add(SeverityWarning, CodeModelOnlyTE, lr.NodeID, "LoRA %s also trains the text encoder (%s), which LoraLoaderModelOnly node %s does not apply; use LoraLoader to get it", lr.Name, strings.Join(te, ", "), lr.NodeID)
			}
		}
		w.checkTriggers(r, lr, st.Prompts)
		if baseArch == "" {
			continue
		}
		if rep.Architecture != "unknown" && rep.Architecture != baseArch && !slices.Contains(rep.AlsoFits, baseArch) {
			r.add(SeverityError, CodeArchMismatch, lr.NodeID, "%s is %s %s LoRA on %s %s %s (%s, node %s)", lr.Name, aOrAn(rep.Architecture), rep.Architecture, aOrAn(baseArch), baseArch, typeLabel(r.Base.Type), st.Base.Name, st.Base.NodeID)
			continue
		}
		in := mergeInput(st, lr.LoRA, lr.Path)
		mp := w.cache.mapping(r.Base.Path, in, lr.ModelOnly || st.Base.Kind == KindDiffusionModel)
		if mp.err != nil {
			r.add(SeverityError, CodeArchMismatch, lr.NodeID, "LoRA node %s: %v", lr.NodeID, mp.err)
			continue
		}
		lr.Patches, lr.Unmatched, lr.mapped = mp.patches, mp.unmatched, true
		if mp.unmatched > 0 {
			r.add(SeverityError, CodeUnloadable, lr.NodeID, "%d tensors of LoRA %s will not load on %s: %s", mp.unmatched, lr.Name, st.Base.Name, strings.Join(mp.first, "; "))
		}
	}
	// errors first, each group in the order found
	sort.SliceStable(r.Issues, func(i, j int) bool {
		return r.Issues[i].Severity == SeverityError && r.Issues[j].Severity != SeverityError
	})
	return r
}

// checkTriggers warns about trigger words the LoRA expects (the first
// three inspect lists) that no prompt of the stack contains.
func (w *Workflow) checkTriggers(r *Report, lr *LoRAReport, prompts []Prompt) {
	words := lr.TriggerWords[:min(3, len(lr.TriggerWords))]
	if len(words) == 0 {
		return
	}
	var texts []string
	for _, p := range prompts {
		if p.TextFrom != "" {
			r.add(SeverityWarning, CodeNotChecked, lr.NodeID, "trigger words of LoRA %s not checked: the text of prompt node %s comes from node %s", lr.Name, p.NodeID, p.TextFrom)
			return
		}
		texts = append(texts, strings.ToLower(p.Text))
	}
	var missing []string
	for _, word := range words {
		found := false
		for _, t := range texts {
			found = found || strings.Contains(t, strings.ToLower(word))
		}
		if !found {
			missing = append(missing, word)
		}
	}
	if len(missing) > 0 {
		r.add(SeverityWarning, CodeTriggerWords, lr.NodeID, "no prompt contains the trigger word(s) %s of LoRA %s", quoteList(missing), lr.Name)
	}
}

func quoteList(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = fmt.Sprintf("%q", w)
	}
	return strings.Join(q, ", ")
}

// mergeInput is a LoRA node as a merge input: its strengths, with the
// text-encoder strength 0 when the text-encoder part does not go into the
// base (LoraLoaderModelOnly, a diffusion-model base, or a CLIP output
// that does not reach the stack's prompts through the base's CLIP).
func mergeInput(st Stack, l LoRA, path string) merge.Input {
	in := merge.Input{Path: path, StrengthModel: l.StrengthModel}
	if clipBaked(st, l) {
		in.StrengthClip = l.StrengthClip
	}
	return in
}

// clipBaked reports whether a LoRA's text-encoder part belongs in the
// baked base: a LoraLoader whose CLIP output feeds the prompts, on a
// checkpoint base whose CLIP is the one the prompts use.
func clipBaked(st Stack, l LoRA) bool {
	return !l.ModelOnly && l.ClipChain && st.Base.Kind == KindCheckpoint && slices.Contains(st.clipSources, st.Base.NodeID)
}

func baseType(b Base) string {
	if b.Kind == KindDiffusionModel {
		return TypeDiffusionModels
	}
	return TypeCheckpoints
}

func typeLabel(typ string) string {
	switch typ {
	case TypeCheckpoints:
		return "checkpoint"
	case TypeDiffusionModels:
		return "diffusion model"
	case TypeLoRAs:
		return "LoRA"
	case TypeTextEncoders:
		return "text encoder"
	case TypeVAE:
		return "VAE"
	}
	return typ
}

// aOrAn is the article for an architecture id as read aloud ("an sdxl").
func aOrAn(id string) string {
	if strings.HasPrefix(id, "sd") || strings.HasPrefix(id, "unknown") {
		return "an"
	}
	return "a"
}

// vaeFiles lists the files of the workflow's active VAELoader nodes.
func (w *Workflow) vaeFiles() []LoaderFile {
	var out []LoaderFile
	for _, id := range w.order {
		n := w.nodes[id]
		if n.typ != "VAELoader" || n.mode != modeActive {
			continue
		}
		v, _, _, err := w.widget(n, "vae_name")
		if s, ok := v.(string); ok && err == nil && s != "" {
			out = append(out, LoaderFile{NodeID: id, NodeType: n.typ, Name: s, File: File{Type: TypeVAE}})
		}
	}
	return out
}
