package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/loratool/loratool/safetensors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Bake writes to out a copy of the workflow for use with a new base model
// file newBase into which the stack's active LoRAs have been merged:
//
//   - the stack's active LoRA nodes are removed and every link that
//     consumed their MODEL (and CLIP) output is rewired to the node that fed
//     the removed node; bypassed and muted LoRA nodes are left as they are;
//   - the base loader keeps its type and its file-name widget is set to
//     newBase (stale entries for the old file in the node's
//     properties.models are dropped).
//
// newBase must contain every active LoRA's model part at StrengthModel and,
// for a checkpoint base, the text-encoder part at StrengthClip of the LoRAs
// whose ClipChain is true (and no text-encoder part of the others).
//
// Bake refuses, without writing, when the rewrite would change what another
// sampler computes (it shares the base loader but not all baked LoRAs),
// when a baked LoRA's text-encoder part could not be carried by newBase
// (e.g. a LoraLoader with strength_clip on a UNETLoader base), when the
// stack no longer matches the workflow, or when the workflow fails
// Validate. All other JSON content is kept; the result is checked with
// Validate and written atomically (temporary file and rename).
func (w *Workflow) Bake(stack Stack, newBase, out string) error {
	data, err := w.bakeData(stack, newBase)
	if err != nil {
		return err
	}
	if err := writeAtomic(out, data); err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	return nil
}

// bakeData is Bake without the write: the rewritten workflow's bytes.
func (w *Workflow) bakeData(stack Stack, newBase string) ([]byte, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: cannot bake sampler %s: %s", w.Path, stack.SamplerID, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(newBase) == "" || strings.ContainsAny(newBase, "\x00\r\n") {
		return nil, fail("invalid new base name %q", newBase)
	}
	if err := w.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", w.Path, err)
	}
	stacks, err := w.Stacks()
	if err != nil {
		return nil, err
	}
	var t *Stack
	for i := range stacks {
		if stacks[i].SamplerID == stack.SamplerID {
			t = &stacks[i]
		}
	}
	if t == nil {
		return nil, fail("no such sampler")
	}
	if !sameStack(*t, stack) {
		return nil, fail("the given stack does not match the workflow; call Stacks again")
	}
	if t.Base.NodeID == "" {
		return nil, fail("its model chain does not end at a known model loader")
	}
	if err := bakeConflicts(*t, stacks); err != nil {
		return nil, fail("%v", err)
	}

	// Rewrite a fresh copy so w stays unchanged.
	c, err := parse(w.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.Path, err)
	}
	c.Path = w.Path
	removed := activeLoRAs(*t)
	if c.Format == UI {
		deleted := map[int64]bool{}
		for _, l := range t.LoRAs {
			if removed[l.NodeID] {
				if err := c.removeUINode(l.NodeID, deleted); err != nil {
					return nil, fail("%v", err)
				}
			}
		}
		pruneLinkRefs(c.root, deleted)
	} else if err := c.removeAPINodes(removed); err != nil {
		return nil, fail("%v", err)
	}
	base := c.nodes[t.Base.NodeID]
	key := modelLoaders[base.typ].nameKey
	if _, from, _, err := c.widget(base, key); err != nil {
		return nil, fail("%v", err)
	} else if from != "" {
		return nil, fail("%s of %s comes from node %s and cannot be renamed", key, base.label(), from)
	}
	if err := c.setWidget(base, key, newBase); err != nil {
		return nil, fail("%v", err)
	}
	dropModelEntry(base, t.Base.Name)

	data, err := marshal(c.root, c.style)
	if err != nil {
		return nil, fail("%v", err)
	}
	if err := checkBaked(data, *t, newBase); err != nil {
		return nil, fail("internal error: rewritten workflow is inconsistent: %v", err)
	}
	return data, nil
}

func activeLoRAs(s Stack) map[string]bool {
	m := map[string]bool{}
	for _, l := range s.LoRAs {
		if l.Mode == "active" {
			m[l.NodeID] = true
		}
	}
	return m
}

func sameStack(a, b Stack) bool {
	if a.Base.NodeID != b.Base.NodeID || a.Base.Name != b.Base.Name || len(a.LoRAs) != len(b.LoRAs) {
		return false
	}
	for i := range a.LoRAs {
		x, y := a.LoRAs[i], b.LoRAs[i]
		if x.NodeID != y.NodeID || x.Name != y.Name || x.Mode != y.Mode {
			return false
		}
	}
	return true
}

// effectiveClipLoRAs are the active core LoRAs whose text-encoder part
// reaches the stack's prompts with a non-zero strength.
func effectiveClipLoRAs(s Stack) map[string]bool {
	m := map[string]bool{}
	for _, id := range s.clipLoRAs {
		m[id] = true
		for _, l := range s.LoRAs {
			if l.NodeID == id && l.StrengthClip == 0 {
				delete(m, id)
			}
		}
	}
	return m
}

// bakeConflicts reports a sampler whose model or text encoder the bake of
// t would change.
func bakeConflicts(t Stack, all []Stack) error {
	removed := activeLoRAs(t)
	usesBaseClip := func(s Stack) bool {
		if t.Base.Kind != KindCheckpoint {
			return false
		}
		for _, id := range s.clipSources {
			if id == t.Base.NodeID {
				return true
			}
		}
		return false
	}
	baked := map[string]bool{} // LoRAs whose text-encoder part goes into newBase
	if usesBaseClip(t) {
		for id := range effectiveClipLoRAs(t) {
			if removed[id] {
				baked[id] = true
			}
		}
	}
	ids := func(m map[string]bool) []string {
		var out []string
		for id := range m {
			out = append(out, id)
		}
		sortIDs(out)
		return out
	}
	for _, s := range all {
		act := activeLoRAs(s)
		for _, id := range ids(removed) {
			if s.Base.NodeID == t.Base.NodeID && !act[id] {
				return fmt.Errorf("sampler %s also uses base node %s but not LoRA node %s, so it would change", s.SamplerID, t.Base.NodeID, id)
			}
			if s.Base.NodeID != t.Base.NodeID && act[id] {
				return fmt.Errorf("sampler %s uses LoRA node %s but its model chain does not end at base node %s", s.SamplerID, id, t.Base.NodeID)
			}
		}
		eff := effectiveClipLoRAs(s)
		if usesBaseClip(s) {
			for _, id := range ids(baked) {
				if !eff[id] {
					return fmt.Errorf("sampler %s takes its text encoder from base node %s without LoRA node %s, so it would change", s.SamplerID, t.Base.NodeID, id)
				}
			}
		}
		for _, id := range ids(eff) {
			if !removed[id] || baked[id] {
				continue
			}
			if s.SamplerID == t.SamplerID && t.Base.Kind == KindDiffusionModel {
				return fmt.Errorf("LoRA node %s also changes the text encoder (non-zero strength_clip), which a diffusion-model base (%s) cannot carry; set strength_clip to 0 or use LoraLoaderModelOnly", id, t.Base.NodeType)
			}
			return fmt.Errorf("sampler %s uses the text-encoder part of LoRA node %s with a text encoder that the new base would not carry", s.SamplerID, id)
		}
	}
	return nil
}

// removeUINode deletes a LoRA node, rewiring the consumers of each output
// to whatever fed the node's input of the same slot (model → MODEL,
// clip → CLIP). Deleted link ids are added to deleted.
func (w *Workflow) removeUINode(id string, deleted map[int64]bool) error {
	n := w.nodes[id]
	inputFor := []string{"model", "clip"}
	for slot, out := range n.outputs {
		consumers := outputLinks(out)
		if len(consumers) == 0 {
			continue
		}
		if slot >= len(inputFor) {
			return fmt.Errorf("%s has an unexpected output slot %d in use", n.label(), slot)
		}
		up, ok, err := w.source(n, inputFor[slot])
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s output %d is used but its %s input is not connected", n.label(), slot, inputFor[slot])
		}
		u := w.nodes[up.node]
		for _, lid := range consumers {
			w.links[lid].setOrigin(u, up.slot)
			setOutputLinks(u.outputs[up.slot], append(outputLinks(u.outputs[up.slot]), lid))
		}
	}
	for _, in := range n.inputs {
		lid, _ := intValueOrNull(in, "link")
		if lid < 0 {
			continue
		}
		l := w.links[lid]
		if from, ok := w.nodes[l.from]; ok && l.fromSlot < len(from.outputs) {
			o := from.outputs[l.fromSlot]
			kept := outputLinks(o)[:0]
			for _, x := range outputLinks(o) {
				if x != lid {
					kept = append(kept, x)
				}
			}
			setOutputLinks(o, kept)
		}
		delete(w.links, lid)
		deleted[lid] = true
	}
	// Drop the node and the deleted rows from the JSON.
	nv, _ := w.root.get("nodes")
	var nodes []any
	for _, e := range nv.([]any) {
		if o, _ := e.(*object); o != n.obj {
			nodes = append(nodes, e)
		}
	}
	if nodes == nil {
		nodes = []any{}
	}
	w.root.set("nodes", nodes)
	delete(w.nodes, id)
	if lv, ok := w.root.vals["links"].([]any); ok {
		kept := []any{}
		for _, e := range lv {
			if l, err := parseLink(e); err == nil && deleted[l.id] {
				continue
			}
			kept = append(kept, e)
		}
		w.root.set("links", kept)
	}
	return nil
}

func outputLinks(o *object) []int64 {
	lv, _ := o.get("links")
	arr, _ := lv.([]any)
	var out []int64
	for _, e := range arr {
		if v, ok := intValue(e); ok {
			out = append(out, int64(v))
		}
	}
	return out
}

func setOutputLinks(o *object, ids []int64) {
	arr := make([]any, len(ids))
	for i, id := range ids {
		arr[i] = jsonInt(id)
	}
	o.set("links", arr)
}

func jsonInt(v int64) json.Number { return json.Number(strconv.FormatInt(v, 10)) }

// pruneLinkRefs removes deleted link ids from the frontend's native
// reroute bookkeeping (extra.reroutes, extra.linkExtensions and the
// top-level reroutes of newer schemas).
func pruneLinkRefs(root *object, deleted map[int64]bool) {
	if len(deleted) == 0 {
		return
	}
	pruneReroutes := func(v any) {
		arr, _ := v.([]any)
		for _, e := range arr {
			r, ok := e.(*object)
			if !ok {
				continue
			}
			ids, ok := r.vals["linkIds"].([]any)
			if !ok {
				continue
			}
			kept := []any{}
			for _, x := range ids {
				if v, ok := intValue(x); !ok || !deleted[int64(v)] {
					kept = append(kept, x)
				}
			}
			r.set("linkIds", kept)
		}
	}
	pruneReroutes(root.vals["reroutes"])
	extra, ok := root.vals["extra"].(*object)
	if !ok {
		return
	}
	pruneReroutes(extra.vals["reroutes"])
	if arr, ok := extra.vals["linkExtensions"].([]any); ok {
		kept := []any{}
		for _, e := range arr {
			if o, ok := e.(*object); ok {
				if v, ok := intValue(o.vals["id"]); ok && deleted[int64(v)] {
					continue
				}
			}
			kept = append(kept, e)
		}
		extra.set("linkExtensions", kept)
	}
}

// removeAPINodes deletes LoRA nodes from an API-format workflow, pointing
// every reference to them at their own model (slot 0) or clip (slot 1)
// source.
func (w *Workflow) removeAPINodes(removed map[string]bool) error {
	inputFor := []string{"model", "clip"}
	resolve := func(v []any) ([]any, error) {
		for hops := 0; hops <= len(removed); hops++ {
			id := v[0].(string)
			if !removed[id] {
				return []any{v[0], v[1]}, nil
			}
			n := w.nodes[id]
			slot, _ := intValue(v[1])
			if slot >= len(inputFor) {
				return nil, fmt.Errorf("output %d of %s is used", slot, n.label())
			}
			src, _ := n.apiInputs.get(inputFor[slot])
			if !isAPILink(src) {
				return nil, fmt.Errorf("output %d of %s is used but its %s input is not connected", slot, n.label(), inputFor[slot])
			}
			v = src.([]any)
		}
		return nil, errors.New("LoRA nodes reference each other in a loop")
	}
	for _, id := range w.order {
		if removed[id] {
			continue
		}
		n := w.nodes[id]
		for _, k := range n.apiInputs.keys {
			v := n.apiInputs.vals[k]
			if !isAPILink(v) || !removed[v.([]any)[0].(string)] {
				continue
			}
			nv, err := resolve(v.([]any))
			if err != nil {
				return err
			}
			n.apiInputs.set(k, nv)
		}
	}
	for id := range removed {
		w.root.del(id)
		delete(w.nodes, id)
	}
	return nil
}

// dropModelEntry removes the old file from a UI node's properties.models
// (download hints the frontend shows for missing models).
func dropModelEntry(n *gnode, oldName string) {
	props, ok := n.obj.vals["properties"].(*object)
	if !ok {
		return
	}
	models, ok := props.vals["models"].([]any)
	if !ok {
		return
	}
	base := fileBase(oldName)
	kept := []any{}
	for _, e := range models {
		if o, ok := e.(*object); ok {
			if name, _ := getString(o, "name"); name != "" && fileBase(name) == base {
				continue
			}
		}
		kept = append(kept, e)
	}
	props.set("models", kept)
}

// fileBase strips ComfyUI sub-folders, which may use either separator.
func fileBase(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		return name[i+1:]
	}
	return name
}

// checkBaked re-reads the rewritten workflow and checks that it is valid
// and that the sampler now starts from newBase without the baked LoRAs.
func checkBaked(data []byte, t Stack, newBase string) error {
	c, err := parse(data)
	if err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	s, ok := c.nodes[t.SamplerID]
	if !ok {
		return errors.New("sampler is gone")
	}
	st, err := c.trace(s)
	if err != nil {
		return err
	}
	if st.Base.NodeID != t.Base.NodeID || st.Base.Name != newBase {
		return fmt.Errorf("sampler base is node %s %q", st.Base.NodeID, st.Base.Name)
	}
	removed := activeLoRAs(t)
	for _, l := range st.LoRAs {
		if removed[l.NodeID] {
			return fmt.Errorf("LoRA node %s is still present", l.NodeID)
		}
	}
	return nil
}

// writeAtomic writes data to a temporary file next to path and renames it
// into place, keeping the permissions of an existing file.
func writeAtomic(path string, data []byte) (err error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	perm := safetensors.OutputMode(path)
	f, err := safetensors.CreateTemp(filepath.Dir(path))
	if err != nil {
		return unwrapPathError(err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return unwrapPathError(os.Rename(f.Name(), path))
}
