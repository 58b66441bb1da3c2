// Package workflow reads ComfyUI workflows, finds the model and LoRA stack
// that feeds each sampler, and rewrites a workflow after its LoRAs have been
// baked into a new base model.
//
// Both of ComfyUI's JSON shapes are understood: the UI format saved by the
// editor ({"nodes": [...], "links": [...]}) and the API format used to queue
// prompts ({"<id>": {"class_type": ..., "inputs": {...}}}). Rewrites edit the
// parsed JSON tree in place, so key order, number literals and content this
// package does not know about are kept.
package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/loratool/loratool/safetensors"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Format is the JSON shape of a workflow file.
type Format int

const (
	// UI is the editor format: a "nodes" array plus a "links" table.
	UI Format = iota + 1
	// API is the prompt format: an object of nodes keyed by id, whose
	// inputs reference other nodes as [id, output_slot].
	API
)

// String returns "ui" or "api".
func (f Format) String() string {
	switch f {
	case UI:
		return "ui"
	case API:
		return "api"
	}
	return "unknown"
}

// Node modes of the UI format.
const (
	modeActive   = 0
	modeMuted    = 2
	modeBypassed = 4
)

// Workflow is a parsed ComfyUI workflow. It keeps the file's JSON tree so
// that Bake can rewrite it faithfully.
type Workflow struct {
	// Path is the file name used in error messages (the path given to Load
	// or the name given to Parse).
	Path string
	// Format is the detected JSON shape.
	Format Format

	data  []byte
	style style
	root  *object
	nodes map[string]*gnode
	order []string         // node ids in file order
	links map[int64]*glink // UI only
	cache checkCache       // Check's per-file results, shared by all nodes and samplers
}

// gnode is one node of either format.
type gnode struct {
	id    string
	rawID any // the id as written (json.Number or string), UI only
	typ   string
	mode  int
	obj   *object
	// UI
	inputs  []*object
	outputs []*object
	// API
	apiInputs *object
}

// glink is one row of the UI links table.
type glink struct {
	id               int64
	from, to         string
	fromSlot, toSlot int
	row              []any   // array form
	obj              *object // object form (schema version 1)
}

// ref names an output: node id and output slot.
type ref struct {
	node string
	slot int
}

// MaxWorkflowBytes is the largest workflow JSON Load reads (real workflows
// are well under a megabyte; a device or a huge file is refused).
const MaxWorkflowBytes = 32 << 20

// Load reads and parses the workflow file at path (a regular file of at
// most MaxWorkflowBytes).
func Load(path string) (*Workflow, error) {
	data, err := safetensors.ReadFileLimit(path, MaxWorkflowBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPathError(err))
	}
	return Parse(data, path)
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse parses a workflow in either format; name is used in error messages
// and becomes Workflow.Path.
func Parse(data []byte, name string) (*Workflow, error) {
	w, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	w.Path = name
	return w, nil
}

func parse(data []byte) (*Workflow, error) {
	v, err := decodeTree(data)
	if err != nil {
		return nil, err
	}
	root, ok := v.(*object)
	if !ok {
		return nil, errors.New("not a ComfyUI workflow: the top-level JSON value is not an object")
	}
	w := &Workflow{data: data, style: detectStyle(data), root: root, nodes: map[string]*gnode{}}
	if _, ok := root.get("nodes"); ok {
		w.Format = UI
		err = w.parseUI()
	} else {
		w.Format = API
		err = w.parseAPI()
	}
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Workflow) parseUI() error {
	nv, _ := w.root.get("nodes")
	nodes, ok := nv.([]any)
	if !ok {
		return errors.New("\"nodes\" is not an array")
	}
	for i, e := range nodes {
		o, ok := e.(*object)
		if !ok {
			return fmt.Errorf("nodes[%d] is not an object", i)
		}
		idv, _ := o.get("id")
		id, ok := idString(idv)
		if !ok {
			return fmt.Errorf("nodes[%d] has no valid id", i)
		}
		if _, dup := w.nodes[id]; dup {
			return fmt.Errorf("node id %s appears more than once", id)
		}
		n := &gnode{id: id, rawID: idv, obj: o}
		n.typ, _ = getString(o, "type")
		if n.typ == "" {
			return fmt.Errorf("node %s has no type", id)
		}
		if mv, ok := o.get("mode"); ok && mv != nil {
			m, ok := intValue(mv)
			if !ok {
				return fmt.Errorf("node %s has an invalid mode", id)
			}
			n.mode = m
		}
		var err error
		if n.inputs, err = slotList(o, "inputs"); err != nil {
			return fmt.Errorf("node %s: %v", id, err)
		}
		if n.outputs, err = slotList(o, "outputs"); err != nil {
			return fmt.Errorf("node %s: %v", id, err)
		}
		w.nodes[id] = n
		w.order = append(w.order, id)
	}
	w.links = map[int64]*glink{}
	lv, _ := w.root.get("links")
	if lv == nil {
		return nil
	}
	rows, ok := lv.([]any)
	if !ok {
		return errors.New("\"links\" is not an array")
	}
	for i, e := range rows {
		l, err := parseLink(e)
		if err != nil {
			return fmt.Errorf("links[%d]: %v", i, err)
		}
		if _, dup := w.links[l.id]; dup {
			return fmt.Errorf("link %d appears more than once in the links table", l.id)
		}
		w.links[l.id] = l
	}
	return nil
}

func slotList(o *object, key string) ([]*object, error) {
	v, ok := o.get(key)
	if !ok || v == nil {
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%q is not an array", key)
	}
	out := make([]*object, len(a))
	for i, e := range a {
		so, ok := e.(*object)
		if !ok {
			return nil, fmt.Errorf("%s[%d] is not an object", key, i)
		}
		out[i] = so
	}
	return out, nil
}

func parseLink(e any) (*glink, error) {
	l := &glink{}
	var vals [5]any
	switch t := e.(type) {
	case []any:
		if len(t) < 5 {
			return nil, fmt.Errorf("has %d fields, want [id, from_node, from_slot, to_node, to_slot, type]", len(t))
		}
		copy(vals[:], t[:5])
		l.row = t
	case *object:
		for i, k := range []string{"id", "origin_id", "origin_slot", "target_id", "target_slot"} {
			vals[i], _ = t.get(k)
		}
		l.obj = t
	default:
		return nil, errors.New("is neither an array nor an object")
	}
	id, ok := intValue(vals[0])
	if !ok {
		return nil, errors.New("has no valid link id")
	}
	l.id = int64(id)
	var ok1, ok2, ok3, ok4 bool
	l.from, ok1 = idString(vals[1])
	l.fromSlot, ok2 = intValue(vals[2])
	l.to, ok3 = idString(vals[3])
	l.toSlot, ok4 = intValue(vals[4])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, fmt.Errorf("link %d has an invalid node id or slot", l.id)
	}
	return l, nil
}

// setOrigin points the link at a new source output, editing the JSON too.
func (l *glink) setOrigin(n *gnode, slot int) {
	l.from, l.fromSlot = n.id, slot
	s := json.Number(strconv.Itoa(slot))
	if l.row != nil {
		l.row[1], l.row[2] = n.rawID, s
	} else {
		l.obj.set("origin_id", n.rawID)
		l.obj.set("origin_slot", s)
	}
}

func (w *Workflow) parseAPI() error {
	if len(w.root.keys) == 0 {
		return errors.New("not a ComfyUI workflow: empty object")
	}
	for _, k := range w.root.keys {
		o, ok := w.root.vals[k].(*object)
		ct := ""
		if ok {
			ct, _ = getString(o, "class_type")
		}
		if ct == "" {
			if _, isPrompt := w.root.vals["prompt"].(*object); isPrompt {
				return errors.New("not a ComfyUI workflow: this looks like a /prompt request body; use the object under \"prompt\"")
			}
			return fmt.Errorf("not a ComfyUI workflow: neither UI format (no \"nodes\" array) nor API format (entry %q has no class_type)", k)
		}
		n := &gnode{id: k, rawID: k, typ: ct, obj: o}
		if iv, ok := o.get("inputs"); ok && iv != nil {
			io, ok := iv.(*object)
			if !ok {
				return fmt.Errorf("node %q: \"inputs\" is not an object", k)
			}
			n.apiInputs = io
		} else {
			n.apiInputs = newObject()
			o.set("inputs", n.apiInputs)
		}
		w.nodes[k] = n
		w.order = append(w.order, k)
	}
	return nil
}

// idString returns a node id (a number or a string) in canonical text form.
func idString(v any) (string, bool) {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return strconv.FormatInt(i, 10), true
		}
		f, err := t.Float64()
		if err != nil || f != math.Trunc(f) {
			return "", false
		}
		return strconv.FormatInt(int64(f), 10), true
	case string:
		if t == "" {
			return "", false
		}
		return t, true
	}
	return "", false
}

// intValue returns a non-negative integral JSON number as an int.
func intValue(v any) (int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || f < 0 || f > math.MaxInt32 {
		return 0, false
	}
	return int(f), true
}

func getString(o *object, k string) (string, bool) {
	v, _ := o.get(k)
	s, ok := v.(string)
	return s, ok
}

// sortIDs orders node ids numerically where possible.
func sortIDs(ids []string) {
	sort.SliceStable(ids, func(i, j int) bool {
		a, ea := strconv.ParseInt(ids[i], 10, 64)
		b, eb := strconv.ParseInt(ids[j], 10, 64)
		if ea == nil && eb == nil {
			return a < b
		}
		if (ea == nil) != (eb == nil) {
			return ea == nil
		}
		return ids[i] < ids[j]
	})
}

func modeName(m int) string {
	switch m {
	case modeMuted:
		return "muted"
	case modeBypassed:
		return "bypassed"
	}
	return "active"
}

func (n *gnode) label() string { return fmt.Sprintf("node %s (%s)", n.id, n.typ) }

// --- inputs and widgets -------------------------------------------------

// inputIndex returns the index of the named UI input, or -1.
func (n *gnode) inputIndex(name string) int {
	for i, in := range n.inputs {
		if s, _ := getString(in, "name"); s == name {
			return i
		}
	}
	return -1
}

// hasInput reports whether the node declares the named input (UI) or has a
// value for it (API).
func (n *gnode) hasInput(name string) bool {
	if n.apiInputs != nil {
		_, ok := n.apiInputs.get(name)
		return ok
	}
	return n.inputIndex(name) >= 0
}

// inputType is the declared type of a UI input ("" in API format).
func (n *gnode) inputType(i int) string {
	if i < 0 || i >= len(n.inputs) {
		return ""
	}
	s, _ := getString(n.inputs[i], "type")
	return s
}

// outputType is the declared type of a UI output ("" in API format or when
// the slot does not exist).
func (n *gnode) outputType(slot int) string {
	if slot < 0 || slot >= len(n.outputs) {
		return ""
	}
	s, _ := getString(n.outputs[slot], "type")
	return s
}

// source resolves the named input to the output feeding it. ok is false
// when the input is absent or unconnected; err reports broken references.
func (w *Workflow) source(n *gnode, name string) (ref, bool, error) {
	if n.apiInputs != nil {
		v, _ := n.apiInputs.get(name)
		return w.apiSource(n, name, v)
	}
	i := n.inputIndex(name)
	if i < 0 {
		return ref{}, false, nil
	}
	return w.sourceAt(n, i)
}

// sourceAt resolves the UI input at index i.
func (w *Workflow) sourceAt(n *gnode, i int) (ref, bool, error) {
	if i < 0 || i >= len(n.inputs) {
		return ref{}, false, nil
	}
	in := n.inputs[i]
	lv, _ := in.get("link")
	if lv == nil {
		return ref{}, false, nil
	}
	name, _ := getString(in, "name")
	id, ok := intValue(lv)
	if !ok {
		return ref{}, false, fmt.Errorf("node %s input %q has an invalid link id", n.id, name)
	}
	l, ok := w.links[int64(id)]
	if !ok {
		return ref{}, false, fmt.Errorf("node %s input %q uses link %d, which is not in the links table", n.id, name, id)
	}
	if l.to != n.id || l.toSlot != i {
		return ref{}, false, fmt.Errorf("link %d goes to node %s slot %d, but node %s input %q (slot %d) uses it", id, l.to, l.toSlot, n.id, name, i)
	}
	from, ok := w.nodes[l.from]
	if !ok {
		return ref{}, false, fmt.Errorf("link %d points to node %s, which does not exist", id, l.from)
	}
	if l.fromSlot >= len(from.outputs) {
		return ref{}, false, fmt.Errorf("link %d comes from output slot %d of %s, which has %d outputs", id, l.fromSlot, from.label(), len(from.outputs))
	}
	return ref{l.from, l.fromSlot}, true, nil
}

// isAPILink reports whether v has the shape ComfyUI treats as a link.
func isAPILink(v any) bool {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return false
	}
	_, s := a[0].(string)
	_, num := a[1].(json.Number)
	return s && num
}

func (w *Workflow) apiSource(n *gnode, name string, v any) (ref, bool, error) {
	if !isAPILink(v) {
		return ref{}, false, nil
	}
	a := v.([]any)
	id := a[0].(string)
	slot, ok := intValue(a[1])
	if !ok {
		return ref{}, false, fmt.Errorf("node %q input %q has an invalid output slot %v", n.id, name, a[1])
	}
	from, ok := w.nodes[id]
	if !ok {
		return ref{}, false, fmt.Errorf("node %q input %q refers to node %q, which does not exist", n.id, name, id)
	}
	if c, known := outputCount[from.typ]; known && slot >= c {
		return ref{}, false, fmt.Errorf("node %q input %q refers to output slot %d of %s, which has %d outputs", n.id, name, slot, from.label(), c)
	}
	return ref{id, slot}, true, nil
}

// widget returns the value of a widget (UI) or literal input (API) by name.
// from is set when the value is supplied by a link instead; found is false
// when the value is unknown.
func (w *Workflow) widget(n *gnode, name string) (v any, from string, found bool, err error) {
	if n.apiInputs != nil {
		v, ok := n.apiInputs.get(name)
		if !ok {
			return nil, "", false, nil
		}
		r, linked, err := w.apiSource(n, name, v)
		if err != nil || linked {
			return nil, r.node, false, err
		}
		return v, "", true, nil
	}
	if i := n.inputIndex(name); i >= 0 {
		r, linked, err := w.sourceAt(n, i)
		if err != nil {
			return nil, "", false, err
		}
		if linked {
			return nil, r.node, false, nil
		}
	}
	wv, _ := n.obj.get("widgets_values")
	switch t := wv.(type) {
	case []any:
		idx, ok := widgetIndex[n.typ][name]
		if ok && idx < len(t) {
			return t[idx], "", true, nil
		}
	case *object:
		if v, ok := t.get(name); ok {
			return v, "", true, nil
		}
	}
	return nil, "", false, nil
}

// setWidget writes a widget value (UI) or literal input (API).
func (w *Workflow) setWidget(n *gnode, name string, v any) error {
	if n.apiInputs != nil {
		n.apiInputs.set(name, v)
		return nil
	}
	wv, _ := n.obj.get("widgets_values")
	switch t := wv.(type) {
	case []any:
		idx, ok := widgetIndex[n.typ][name]
		if ok && idx < len(t) {
			t[idx] = v
			return nil
		}
	case *object:
		t.set(name, v)
		return nil
	}
	return fmt.Errorf("%s has no %s widget value", n.label(), name)
}

func numberValue(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// isLoRALike reports whether a node type looks like a LoRA node of a
// custom node pack (the core LoraLoader/LoraLoaderModelOnly excluded).
func isLoRALike(typ string) bool {
	if coreLoRA(typ) {
		return false
	}
	return strings.Contains(strings.ToLower(typ), "lora")
}

func coreLoRA(typ string) bool { return typ == "LoraLoader" || typ == "LoraLoaderModelOnly" }
