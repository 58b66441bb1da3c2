package workflow

import (
	"fmt"
	"strings"
)

// LoRA is a core LoRA node (LoraLoader or LoraLoaderModelOnly) on a
// sampler's model chain.
type LoRA struct {
	NodeID   string `json:"node"`
	NodeType string `json:"node_type"`
	// Name is the lora_name as written, e.g. "Flux.1\\x.safetensors".
	Name          string  `json:"name"`
	StrengthModel float64 `json:"strength_model"`
	// StrengthClip is 0 for LoraLoaderModelOnly.
	StrengthClip float64 `json:"strength_clip"`
	// ModelOnly is true for LoraLoaderModelOnly.
	ModelOnly bool `json:"model_only"`
	// Mode is "active", "muted" or "bypassed".
	Mode string `json:"mode"`
	// ClipChain reports that the node's CLIP output reaches this sampler's
	// prompt encoders, i.e. its text-encoder part is in effect.
	ClipChain bool `json:"clip_chain"`
}

// Base is the node that loads the base model of a stack.
type Base struct {
	NodeID   string `json:"node"`
	NodeType string `json:"node_type"`
	// Name is the file name as written in the widget.
	Name string `json:"name"`
	// Kind is KindCheckpoint or KindDiffusionModel.
	Kind string `json:"kind"`
	// WeightDType is UNETLoader's weight_dtype ("" for checkpoints).
	WeightDType string `json:"weight_dtype,omitempty"`
}

// CLIPLoader is a text-encoder loader reached from a stack's clip chain.
type CLIPLoader struct {
	NodeID   string   `json:"node"`
	NodeType string   `json:"node_type"`
	Names    []string `json:"names"`
	// Type is the loader's "type" widget, e.g. "flux" ("" if it has none).
	Type string `json:"type,omitempty"`
}

// Prompt is a text field of a text encoder that feeds the sampler.
type Prompt struct {
	NodeID   string `json:"node"`
	NodeType string `json:"node_type"`
	// Field is the widget name, e.g. "text" or "t5xxl".
	Field string `json:"field"`
	// Role is the sampler (or guider) input the encoder feeds, e.g.
	// "positive" or "negative".
	Role string `json:"role"`
	// Text is the prompt text; empty when TextFrom is set.
	Text string `json:"text"`
	// TextFrom is the id of the node that supplies the text through a link.
	TextFrom string `json:"text_from,omitempty"`
}

// NodeRef names a node.
type NodeRef struct {
	NodeID   string `json:"node"`
	NodeType string `json:"node_type"`
}

// Stack is the model, LoRAs and text encoders that feed one sampler.
type Stack struct {
	SamplerID   string `json:"sampler"`
	SamplerType string `json:"sampler_type"`
	// Base is the model loader; Base.NodeID is empty when the model chain
	// does not end at a known loader (see Problems).
	Base Base `json:"base"`
	// LoRAs are in application order: nearest the base first.
	LoRAs       []LoRA       `json:"loras"`
	CLIPLoaders []CLIPLoader `json:"clip_loaders"`
	Prompts     []Prompt     `json:"prompts"`
	// Unsupported lists LoRA-like nodes of custom node packs found on the
	// chains; their effect is not described by LoRAs.
	Unsupported []NodeRef `json:"unsupported"`
	// Problems are reasons the stack is incomplete or the sampler cannot
	// run as wired (muted nodes, unknown loaders, ...), one line each.
	Problems []string `json:"problems"`

	invalid     []string // widget values ComfyUI would refuse (errors)
	clipSources []string // nodes at the end of the clip chain
	clipLoRAs   []string // core LoRA nodes on the clip chain
}

// Stacks returns one Stack per sampler node (KSampler, KSamplerAdvanced,
// SamplerCustom, SamplerCustomAdvanced via its guider, and other
// "*KSampler*" nodes with a model input), ordered by node id.
//
// The model chain is followed from the sampler's model input through core
// LoRA nodes, Reroutes, bypassed nodes (ComfyUI semantics: the input of the
// output's type passes through) and any node that has a "model" input and
// outputs MODEL, up to the loader. Prompts are the text encoders reached
// from the sampler's (or guider's) conditioning inputs, through
// conditioning nodes such as FluxGuidance; the clip chain is followed from
// their clip inputs. Semantic trouble goes into Stack.Problems; broken
// links met on the way (missing link, node or slot) are returned as an
// error naming the link or node.
func (w *Workflow) Stacks() ([]Stack, error) {
	var ids []string
	for _, id := range w.order {
		if w.isSampler(w.nodes[id]) {
			ids = append(ids, id)
		}
	}
	sortIDs(ids)
	out := make([]Stack, 0, len(ids))
	for _, id := range ids {
		st, err := w.trace(w.nodes[id])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.Path, err)
		}
		out = append(out, *st)
	}
	return out, nil
}

func (w *Workflow) isSampler(n *gnode) bool {
	if knownSamplers[n.typ] {
		return true
	}
	return strings.Contains(strings.ToLower(n.typ), "ksampler") && n.hasInput("model")
}

type tracer struct {
	w      *Workflow
	st     *Stack
	unsup  map[string]bool
	prompt map[string]bool
	clip   map[string]bool
}

func (w *Workflow) trace(s *gnode) (*Stack, error) {
	st := &Stack{SamplerID: s.id, SamplerType: s.typ}
	t := &tracer{w: w, st: st, unsup: map[string]bool{}, prompt: map[string]bool{}, clip: map[string]bool{}}
	switch s.mode {
	case modeMuted:
		t.problem("sampler %s is muted", s.id)
	case modeBypassed:
		t.problem("sampler %s is bypassed", s.id)
	}

	// The node holding the model and conditioning inputs: the sampler
	// itself, or the guider of SamplerCustomAdvanced.
	owner := s
	if !s.hasInput("model") && s.hasInput("guider") {
		g, ok, err := t.follow(s, "guider")
		if err != nil {
			return nil, err
		}
		if !ok {
			t.problem("sampler %s has no guider connected", s.id)
			return st, nil
		}
		owner = w.nodes[g.node]
		if owner.mode != modeActive {
			t.problem("guider %s is %s", owner.label(), modeName(owner.mode))
		}
	}

	m, ok, err := t.follow(owner, "model")
	if err != nil {
		return nil, err
	}
	if ok {
		if err := t.modelChain(m); err != nil {
			return nil, err
		}
	} else {
		t.problem("%s has no model connected", owner.label())
	}

	var roots []ref
	var roles []string
	for _, name := range t.condInputs(owner) {
		r, ok, err := t.follow(owner, name)
		if err != nil {
			return nil, err
		}
		if ok {
			roots = append(roots, r)
			roles = append(roles, name)
		}
	}
	var clipRoots []ref
	seen := map[string]bool{}
	for i, r := range roots {
		cr, err := t.condChain(r, roles[i], seen)
		if err != nil {
			return nil, err
		}
		clipRoots = append(clipRoots, cr...)
	}
	for _, r := range clipRoots {
		if err := t.clipChain(r); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (t *tracer) problem(format string, args ...any) {
	t.st.Problems = append(t.st.Problems, fmt.Sprintf(format, args...))
}

// follow resolves a Reroute-transparent input source.
func (t *tracer) follow(n *gnode, input string) (ref, bool, error) {
	r, ok, err := t.w.source(n, input)
	if err != nil || !ok {
		return r, ok, err
	}
	return t.skipReroutes(r)
}

func (t *tracer) skipReroutes(r ref) (ref, bool, error) {
	for hops := 0; ; hops++ {
		n := t.w.nodes[r.node]
		if n.typ != "Reroute" || n.apiInputs != nil {
			return r, true, nil
		}
		if hops > len(t.w.nodes) {
			return r, false, fmt.Errorf("reroute loop at node %s", n.id)
		}
		next, ok, err := t.w.sourceAt(n, 0)
		if err != nil || !ok {
			return next, ok, err
		}
		r = next
	}
}

// bypassSource is where a bypassed node's output slot gets its value: the
// input of the same type, preferring the one at the same index.
func (t *tracer) bypassSource(n *gnode, slot int) (ref, bool, error) {
	typ := n.outputType(slot)
	if typ == "" {
		return ref{}, false, nil
	}
	idx := -1
	if n.inputType(slot) == typ {
		idx = slot
	} else {
		for i := range n.inputs {
			if n.inputType(i) == typ {
				idx = i
				break
			}
		}
	}
	if idx < 0 {
		return ref{}, false, nil
	}
	r, ok, err := t.w.sourceAt(n, idx)
	if err != nil || !ok {
		return r, ok, err
	}
	return t.skipReroutes(r)
}

func (t *tracer) addUnsupported(n *gnode) {
	if t.unsup[n.id] {
		return
	}
	t.unsup[n.id] = true
	t.st.Unsupported = append(t.st.Unsupported, NodeRef{n.id, n.typ})
	t.scanLoRAInputs(n)
}

// scanLoRAInputs lists LoRA-like nodes feeding n through any input (LoRA
// stacks of custom packs feed their loaders through LORA_STACK inputs).
func (t *tracer) scanLoRAInputs(n *gnode) {
	var names []string
	if n.apiInputs != nil {
		names = n.apiInputs.keys
	} else {
		for _, in := range n.inputs {
			s, _ := getString(in, "name")
			names = append(names, s)
		}
	}
	for _, name := range names {
		r, ok, err := t.w.source(n, name)
		if err != nil || !ok {
			continue
		}
		if up := t.w.nodes[r.node]; isLoRALike(up.typ) {
			t.addUnsupported(up)
		}
	}
}

// modelChain walks from the sampler's model source back to the loader.
func (t *tracer) modelChain(r ref) error {
	var loras []LoRA
	defer func() {
		for i := len(loras) - 1; i >= 0; i-- {
			t.st.LoRAs = append(t.st.LoRAs, loras[i])
		}
	}()
	seen := map[string]bool{}
	for {
		n := t.w.nodes[r.node]
		if seen[n.id] {
			t.problem("model chain loops at %s", n.label())
			return nil
		}
		seen[n.id] = true
		next := ""
		switch {
		case coreLoRA(n.typ):
			if r.slot != 0 {
				t.problem("model input is fed by output %d of %s, which is not its MODEL output", r.slot, n.label())
				return nil
			}
			l, err := t.readLoRA(n)
			if err != nil {
				return err
			}
			loras = append(loras, l)
			if n.mode == modeMuted {
				t.problem("LoRA %s is muted, so sampler %s gets no model", n.label(), t.st.SamplerID)
			}
			next = "model"
		case modelLoaders[n.typ].kind != "":
			if r.slot != 0 {
				t.problem("model input is fed by output %d of %s, which is not its MODEL output", r.slot, n.label())
				return nil
			}
			if err := t.readBase(n); err != nil {
				return err
			}
			if n.mode != modeActive {
				t.problem("base loader %s is %s, so sampler %s gets no model", n.label(), modeName(n.mode), t.st.SamplerID)
			}
			return nil
		case isLoRALike(n.typ):
			t.addUnsupported(n)
			if !n.hasInput("model") {
				t.problem("model chain ends at unsupported LoRA node %s; the base model is unknown", n.label())
				return nil
			}
			next = "model"
		case n.mode == modeBypassed:
			nr, ok, err := t.bypassSource(n, r.slot)
			if err != nil {
				return err
			}
			if !ok {
				t.problem("bypassed %s on the model chain has no matching input, so sampler %s gets no model", n.label(), t.st.SamplerID)
				return nil
			}
			r = nr
			continue
		case n.hasInput("model") && (n.apiInputs != nil || n.outputType(r.slot) == "MODEL"):
			if n.mode == modeMuted {
				t.problem("%s on the model chain is muted, so sampler %s gets no model", n.label(), t.st.SamplerID)
			}
			next = "model"
		default:
			t.scanLoRAInputs(n)
			t.problem("model chain ends at %s, which is not a known model loader", n.label())
			return nil
		}
		nr, ok, err := t.follow(n, next)
		if err != nil {
			return err
		}
		if !ok {
			t.problem("%s has no model connected", n.label())
			return nil
		}
		r = nr
	}
}

func (t *tracer) readLoRA(n *gnode) (LoRA, error) {
	l := LoRA{NodeID: n.id, NodeType: n.typ, ModelOnly: n.typ == "LoraLoaderModelOnly", Mode: modeName(n.mode)}
	v, from, found, err := t.w.widget(n, "lora_name")
	if err != nil {
		return l, err
	}
	switch s, isStr := v.(string); {
	case found && isStr && strings.TrimSpace(s) == "":
		t.invalidValue("%s has an empty lora_name", n.label())
	case found && isStr:
		l.Name = s
	case from != "":
		t.problem("lora_name of %s comes from node %s; its value is unknown", n.label(), from)
	default:
		t.problem("%s has no lora_name", n.label())
	}
	fields := []string{"strength_model"}
	if !l.ModelOnly {
		fields = append(fields, "strength_clip")
	}
	for _, f := range fields {
		v, from, found, err := t.w.widget(n, f)
		if err != nil {
			return l, err
		}
		x, ferr := comfyFloat(v)
		switch {
		case found && ferr != nil:
			t.invalidValue("%s of %s: %v", f, n.label(), ferr)
		case found:
			if f == "strength_model" {
				l.StrengthModel = x
			} else {
				l.StrengthClip = x
			}
		case from != "":
			t.problem("%s of %s comes from node %s; its value is unknown", f, n.label(), from)
		default:
			t.problem("%s has no numeric %s", n.label(), f)
		}
	}
	return l, nil
}

func (t *tracer) readBase(n *gnode) error {
	ml := modelLoaders[n.typ]
	b := Base{NodeID: n.id, NodeType: n.typ, Kind: ml.kind}
	v, from, found, err := t.w.widget(n, ml.nameKey)
	if err != nil {
		return err
	}
	switch s, isStr := v.(string); {
	case found && isStr:
		b.Name = s
	case from != "":
		t.problem("%s of %s comes from node %s; its value is unknown", ml.nameKey, n.label(), from)
	default:
		t.problem("%s has no %s", n.label(), ml.nameKey)
	}
	if ml.kind == KindDiffusionModel {
		if v, _, _, err := t.w.widget(n, "weight_dtype"); err != nil {
			return err
		} else if s, ok := v.(string); ok {
			b.WeightDType = s
		}
	}
	t.st.Base = b
	return nil
}

// condInputs lists the conditioning inputs of a sampler or guider.
func (t *tracer) condInputs(n *gnode) []string {
	var out []string
	if n.apiInputs != nil {
		for _, k := range n.apiInputs.keys {
			if isCondName(k) {
				out = append(out, k)
			}
		}
		return out
	}
	for i, in := range n.inputs {
		if n.inputType(i) == "CONDITIONING" {
			s, _ := getString(in, "name")
			out = append(out, s)
		}
	}
	return out
}

func isCondName(k string) bool {
	return k == "positive" || k == "negative" || strings.Contains(k, "cond")
}

// condChain walks conditioning back to text encoders, records their
// prompts and returns the sources of their clip inputs.
func (t *tracer) condChain(r ref, role string, seen map[string]bool) ([]ref, error) {
	n := t.w.nodes[r.node]
	key := fmt.Sprintf("%s/%d", n.id, r.slot)
	if seen[key] {
		return nil, nil
	}
	seen[key] = true
	if n.hasInput("clip") && n.mode != modeBypassed {
		if err := t.readPrompts(n, role); err != nil {
			return nil, err
		}
		if n.mode == modeMuted {
			t.problem("prompt %s is muted", n.label())
		}
		c, ok, err := t.follow(n, "clip")
		if err != nil {
			return nil, err
		}
		if !ok {
			t.problem("prompt %s has no clip connected", n.label())
			return nil, nil
		}
		return []ref{c}, nil
	}
	var inputs []string
	switch {
	case n.mode == modeBypassed:
		nr, ok, err := t.bypassSource(n, r.slot)
		if err != nil || !ok {
			return nil, err
		}
		return t.condChain(nr, role, seen)
	case n.hasInput("positive") && n.hasInput("negative") && r.slot <= 1:
		// ControlNetApplyAdvanced & co: output 0 is positive, 1 negative.
		inputs = []string{[]string{"positive", "negative"}[r.slot]}
	default:
		inputs = t.condInputs(n)
	}
	var out []ref
	for _, in := range inputs {
		nr, ok, err := t.follow(n, in)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		c, err := t.condChain(nr, role, seen)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}

func (t *tracer) readPrompts(n *gnode, role string) error {
	fields, known := promptFields[n.typ]
	if !known {
		fields = []string{"text"}
	}
	for _, f := range fields {
		key := n.id + "/" + f
		if t.prompt[key] {
			continue
		}
		v, from, found, err := t.w.widget(n, f)
		if err != nil {
			return err
		}
		s, isStr := v.(string)
		if !(found && isStr) && from == "" {
			continue
		}
		t.prompt[key] = true
		t.st.Prompts = append(t.st.Prompts, Prompt{NodeID: n.id, NodeType: n.typ, Field: f, Role: role, Text: s, TextFrom: from})
	}
	return nil
}

// clipChain walks a text encoder's clip input back to its loader.
func (t *tracer) clipChain(r ref) error {
	for {
		n := t.w.nodes[r.node]
		if t.clip[n.id] {
			return nil
		}
		t.clip[n.id] = true
		next := "clip"
		switch {
		case n.typ == "LoraLoader":
			if r.slot != 1 {
				t.problem("clip input is fed by output %d of %s, which is not its CLIP output", r.slot, n.label())
				return nil
			}
			found := false
			for i := range t.st.LoRAs {
				if t.st.LoRAs[i].NodeID == n.id {
					t.st.LoRAs[i].ClipChain = true
					found = true
				}
			}
			if !found {
				t.problem("LoRA %s changes the text encoder of sampler %s but is not on its model chain", n.label(), t.st.SamplerID)
			}
			if n.mode == modeActive {
				t.st.clipLoRAs = append(t.st.clipLoRAs, n.id)
			}
		case modelLoaders[n.typ].kind != "":
			t.st.clipSources = append(t.st.clipSources, n.id)
			if r.slot != modelLoaders[n.typ].clipSlot {
				t.problem("clip input is fed by output %d of %s, which is not a CLIP output", r.slot, n.label())
			} else if n.id != t.st.Base.NodeID {
				t.problem("text encoder comes from %s, not from the base model loader", n.label())
			}
			return nil
		case clipLoaders[n.typ] != nil:
			t.st.clipSources = append(t.st.clipSources, n.id)
			cl := CLIPLoader{NodeID: n.id, NodeType: n.typ}
			for _, k := range clipLoaders[n.typ] {
				v, _, _, err := t.w.widget(n, k)
				if err != nil {
					return err
				}
				if s, ok := v.(string); ok {
					cl.Names = append(cl.Names, s)
				}
			}
			v, _, _, err := t.w.widget(n, "type")
			if err != nil {
				return err
			}
			cl.Type, _ = v.(string)
			t.st.CLIPLoaders = append(t.st.CLIPLoaders, cl)
			if n.mode != modeActive {
				t.problem("text-encoder loader %s is %s", n.label(), modeName(n.mode))
			}
			return nil
		case isLoRALike(n.typ):
			t.addUnsupported(n)
			if !n.hasInput("clip") {
				t.problem("clip chain ends at unsupported LoRA node %s", n.label())
				return nil
			}
		case n.mode == modeBypassed:
			nr, ok, err := t.bypassSource(n, r.slot)
			if err != nil {
				return err
			}
			if !ok {
				t.problem("bypassed %s on the clip chain has no matching input", n.label())
				return nil
			}
			r = nr
			continue
		case n.hasInput("clip") && (n.apiInputs != nil || n.outputType(r.slot) == "CLIP"):
			// pass-through such as CLIPSetLastLayer
		default:
			t.scanLoRAInputs(n)
			t.st.clipSources = append(t.st.clipSources, n.id)
			t.problem("clip chain ends at %s, which is not a known text-encoder loader", n.label())
			return nil
		}
		if n.mode == modeMuted {
			t.problem("%s on the clip chain is muted", n.label())
		}
		nr, ok, err := t.follow(n, next)
		if err != nil {
			return err
		}
		if !ok {
			t.problem("%s has no clip connected", n.label())
			return nil
		}
		r = nr
	}
}
