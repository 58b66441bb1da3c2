package workflow

import (
	"fmt"
	"slices"
	"strconv"
)

// Validate checks the structure of a workflow in either format and returns
// the first problem found. UI format: every links-table row joins existing
// nodes and slots, the target input holds that link id and the source
// output lists it; every input and output link id is in the table and
// agrees with it; last_link_id and last_node_id are not below the largest
// ids in use. API format: every [id, slot] reference names an existing
// node (and, for known node types, an existing output slot).
func Validate(data []byte) error {
	w, err := parse(data)
	if err != nil {
		return err
	}
	return w.validate()
}

func (w *Workflow) validate() error {
	if w.Format == API {
		for _, id := range w.order {
			n := w.nodes[id]
			for _, k := range n.apiInputs.keys {
				if _, _, err := w.apiSource(n, k, n.apiInputs.vals[k]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	ids := make([]int64, 0, len(w.links))
	for id := range w.links {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var maxLink int64 = -1
	for _, id := range ids {
		l := w.links[id]
		maxLink = max(maxLink, id)
		from, ok := w.nodes[l.from]
		if !ok {
			return fmt.Errorf("link %d points to node %s, which does not exist", id, l.from)
		}
		to, ok := w.nodes[l.to]
		if !ok {
			return fmt.Errorf("link %d goes to node %s, which does not exist", id, l.to)
		}
		if l.fromSlot >= len(from.outputs) {
			return fmt.Errorf("link %d comes from output slot %d of %s, which has %d outputs", id, l.fromSlot, from.label(), len(from.outputs))
		}
		if l.toSlot >= len(to.inputs) {
			return fmt.Errorf("link %d goes to input slot %d of %s, which has %d inputs", id, l.toSlot, to.label(), len(to.inputs))
		}
		if got, _ := intValueOrNull(to.inputs[l.toSlot], "link"); got != id {
			return fmt.Errorf("link %d goes to input slot %d of %s, but that input holds link %s", id, l.toSlot, to.label(), linkText(to.inputs[l.toSlot]))
		}
		if !containsLink(from.outputs[l.fromSlot], id) {
			return fmt.Errorf("link %d comes from output slot %d of %s, but that output does not list it", id, l.fromSlot, from.label())
		}
	}
	var maxNode int64 = -1
	for _, nid := range w.order {
		n := w.nodes[nid]
		if v, err := strconv.ParseInt(nid, 10, 64); err == nil {
			maxNode = max(maxNode, v)
		}
		for i, in := range n.inputs {
			id, ok := intValueOrNull(in, "link")
			if !ok {
				return fmt.Errorf("node %s input slot %d has an invalid link id", nid, i)
			}
			if id < 0 {
				continue
			}
			l, exists := w.links[id]
			if !exists {
				return fmt.Errorf("node %s input slot %d uses link %d, which is not in the links table", nid, i, id)
			}
			if l.to != nid || l.toSlot != i {
				return fmt.Errorf("node %s input slot %d uses link %d, which goes to node %s slot %d", nid, i, id, l.to, l.toSlot)
			}
		}
		for i, out := range n.outputs {
			lv, _ := out.get("links")
			if lv == nil {
				continue
			}
			arr, ok := lv.([]any)
			if !ok {
				return fmt.Errorf("node %s output slot %d: \"links\" is not an array", nid, i)
			}
			for _, e := range arr {
				id, ok := intValue(e)
				if !ok {
					return fmt.Errorf("node %s output slot %d lists an invalid link id", nid, i)
				}
				l, exists := w.links[int64(id)]
				if !exists {
					return fmt.Errorf("node %s output slot %d lists link %d, which is not in the links table", nid, i, id)
				}
				if l.from != nid || l.fromSlot != i {
					return fmt.Errorf("node %s output slot %d lists link %d, which comes from node %s slot %d", nid, i, id, l.from, l.fromSlot)
				}
			}
		}
	}
	if v, ok := w.root.get("last_link_id"); ok {
		if last, ok := intValue(v); ok && int64(last) < maxLink {
			return fmt.Errorf("last_link_id is %d but link %d exists", last, maxLink)
		}
	}
	if v, ok := w.root.get("last_node_id"); ok {
		if last, ok := intValue(v); ok && int64(last) < maxNode {
			return fmt.Errorf("last_node_id is %d but node %d exists", last, maxNode)
		}
	}
	return nil
}

// intValueOrNull reads an optional link id: -1 for null or absent.
func intValueOrNull(o *object, key string) (int64, bool) {
	v, _ := o.get(key)
	if v == nil {
		return -1, true
	}
	i, ok := intValue(v)
	return int64(i), ok
}

func linkText(in *object) string {
	id, _ := intValueOrNull(in, "link")
	if id < 0 {
		return "none"
	}
	return strconv.FormatInt(id, 10)
}

func containsLink(out *object, id int64) bool {
	lv, _ := out.get("links")
	arr, _ := lv.([]any)
	for _, e := range arr {
		if v, ok := intValue(e); ok && int64(v) == id {
			return true
		}
	}
	return false
}
