package pt

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzPickle drives the pickle reader in memory (no zip, no files): the
// pre-scan, the restricted unpickler and the state-dict walk with every
// tensor validated against its declared storage. Seeds are small pickles
// so the mutator works on opcodes, not on archive bytes.
func FuzzPickle(f *testing.F) {
	f.Add(dictPickle(entry{"w", tensorVal("FloatStorage", "0", 6, 0, []int64{3, 2}, []int64{1, 3})}))
	f.Add(dictPickle(entry{"a", tensorVal("HalfStorage", "0", 4, 0, []int64{2, 2}, []int64{2, 1})}, entry{"b", tensorVal("HalfStorage", "0", 4, 1, []int64{3}, []int64{1})}))
	f.Add((&pw{}).proto(4).shortStr("torch").shortStr("HalfStorage").op(0x93).stop().Bytes())
	f.Add([]byte("\x80\x02}q\x00."))
	f.Fuzz(func(t *testing.T, pkl []byte) {
		c := &Checkpoint{Path: "f.pt"}
		ld := &loader{storages: map[string]*storageRef{}}
		root, err := c.decode(bytes.NewReader(pkl), int64(len(pkl)), ld)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		c.storages = map[string]*storage{}
		for key, ref := range ld.storages {
			c.storages[key] = &storage{ref: ref, nbytes: 1 << 20}
		}
		if err := c.collect(root); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
		for _, ten := range c.Tensors {
			c.plan(ten, c.storages[ten.storage])
		}
	})
}
