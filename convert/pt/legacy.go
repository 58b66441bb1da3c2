package pt

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// legacyMagic is the first pickle of a legacy (pre-zip) torch.save stream.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// legacyProtocolVersion is the second pickle of a legacy stream.
const legacyProtocolVersion = 1001

// openLegacy reads the legacy stream format: magic number, protocol
// version, sys info, the main pickle, the sorted storage keys, then each
// storage as an int64 element count followed by its raw bytes.
func (c *Checkpoint) openLegacy() error {
	pos := int64(0)
	next := func(ld *loader) (any, error) {
		br := bufio.NewReader(io.NewSectionReader(c.f, pos, c.fileSize-pos))
		data, err := scanPickle(br, min(c.fileSize-pos, maxPickleBytes), checkGlobal)
		if err != nil {
			return nil, c.pickleErr(err)
		}
		pos += int64(len(data))
		v, err := ld.unpickle(data)
		if err != nil {
			return nil, c.pickleErr(err)
		}
		return v, nil
	}
	meta := &loader{storages: map[string]*storageRef{}}

	magic, err := next(meta)
	if err != nil {
		return err
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return c.errf("not a PyTorch checkpoint (a pickle stream without the torch.save magic number)")
	}
	ver, err := next(meta)
	if err != nil {
		return err
	}
	if v, ok := toInt64(ver); !ok || v != legacyProtocolVersion {
		return c.errf("legacy PyTorch format: unsupported protocol version %s", describe(ver))
	}
	sys, err := next(meta)
	if err != nil {
		return err
	}
	if d, ok := sys.(*types.Dict); ok {
		if le, ok := d.Get("little_endian"); ok && le == false {
			c.bigEndian = true
		}
	}
	ld := &loader{storages: map[string]*storageRef{}, legacy: true}
	root, err := next(ld)
	if err != nil {
		return err
	}
	keysV, err := next(meta)
	if err != nil {
		return err
	}
	keys, ok := seq(keysV)
	if !ok {
		return c.errf("legacy PyTorch format: storage key list is a %s", describe(keysV))
	}
	c.storages = make(map[string]*storage, len(keys))
	for _, kv := range keys {
		key, ok := kv.(string)
		if !ok {
			return c.errf("legacy PyTorch format: storage key is a %s", describe(kv))
		}
		ref := ld.storages[key]
		if ref == nil {
			return c.errf("legacy PyTorch format: storage %s has no declared type", printable(key))
		}
		if _, dup := c.storages[key]; dup {
			return c.errf("legacy PyTorch format: storage %s listed twice", printable(key))
		}
		var hdr [8]byte
		if _, err := c.f.ReadAt(hdr[:], pos); err != nil {
			return c.errf("legacy PyTorch format: storage %s: truncated file", printable(key))
		}
		count := binary.LittleEndian.Uint64(hdr[:])
		if c.bigEndian {
			count = binary.BigEndian.Uint64(hdr[:])
		}
		pos += 8
		if count > uint64(c.fileSize-pos)/uint64(ref.size) {
			return c.errf("legacy PyTorch format: storage %s claims %d elements of %d bytes, beyond the end of the file",
				printable(key), count, ref.size)
		}
		nbytes := int64(count) * ref.size
		c.storages[key] = &storage{ref: ref, off: pos, nbytes: nbytes}
		pos += nbytes
	}
	for key := range ld.storages {
		if c.storages[key] == nil {
			return c.errf("legacy PyTorch format: storage %s is not in the file", printable(key))
		}
	}
	if err := c.collect(root); err != nil {
		return err
	}
	if pos != c.fileSize {
		return fmt.Errorf("%s: legacy PyTorch format: %d unexpected bytes after the last storage", c.Path, c.fileSize-pos)
	}
	return nil
}
