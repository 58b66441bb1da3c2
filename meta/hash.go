package meta

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/loratool/loratool/safetensors"
)

// Kohya's legacy hash window (sd-scripts addnet_hash_legacy): 64 KiB at
// 1 MiB of the file the Python safetensors library would save.
const (
	legacyOffset = 0x100000
	legacySize   = 0x10000
)

// Hashes are the hashes kohya sd-scripts stores in a LoRA's metadata,
// recomputed from its tensors and its ss_* metadata.
type Hashes struct {
	// ModelHash is sshs_model_hash: SHA-256 of the data section of the
	// file safetensors.torch.save(tensors, ss_metadata) writes (tensors in
	// the library's canonical order).
	ModelHash string `json:"sshs_model_hash"`
	// LegacyHash is sshs_legacy_hash as current sd-scripts computes it:
	// the first 8 hex digits of SHA-256 of bytes [1 MiB, 1 MiB + 64 KiB)
	// of that file, whose header is padded to a multiple of 8 (safetensors
	// ≥ 0.3.1). Files smaller than 1 MiB hash the empty string (e3b0c442).
	LegacyHash string `json:"sshs_legacy_hash"`
	// LegacyUnpadded is the same window with the unpadded header older
	// safetensors versions wrote.
	LegacyUnpadded string `json:"sshs_legacy_hash_unpadded"`
	// SpecHash is modelspec.hash_sha256: "0x" + SHA-256 of the tensor data
	// (the same bytes as ModelHash).
	SpecHash string `json:"modelspec.hash_sha256"`
}

// Check compares the stored hashes of a file with recomputed ones.
type Check struct {
	Computed Hashes `json:"computed"`
	// Stored holds the stored values (empty when absent).
	Stored Hashes `json:"stored"`
	// Model, Legacy and Spec are "ok", "absent" or "stale".
	Model  string `json:"model"`
	Spec   string `json:"spec"`
	Legacy string `json:"legacy"`
	// LegacyRule says which header rule the stored legacy hash matches:
	// "padded" (safetensors ≥ 0.3.1, current sd-scripts), "unpadded"
	// (files written with older safetensors), "both" (the header length
	// is already a multiple of 8, or the file is smaller than 1 MiB), or
	// "" when it matches neither or is absent.
	LegacyRule string `json:"legacy_rule,omitempty"`
}

// tensorSpecs returns the write specs of f's tensors.
func tensorSpecs(h *safetensors.Header) []safetensors.TensorSpec {
	specs := make([]safetensors.TensorSpec, len(h.Tensors))
	for i, t := range h.Tensors {
		specs[i] = safetensors.TensorSpec{Name: t.Name, DType: t.DType, Shape: t.Shape}
	}
	return specs
}

// ssOnly returns the ss_* entries of m (what kohya hashes).
func ssOnly(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if strings.HasPrefix(k, "ss_") {
			out[k] = v
		}
	}
	return out
}

// Compute returns kohya's hashes of the tensors of f as if saved with
// metadata md (only its ss_* keys count). Tensor bytes are read from the
// mapping in canonical order; the file is read once.
func Compute(f *safetensors.File, md map[string]string) (Hashes, error) {
	order, hdr, err := safetensors.CanonicalHeader(tensorSpecs(f.Header), ssOnly(md))
	if err != nil {
		return Hashes{}, fmt.Errorf("%s: %v", f.Path, err)
	}
	unpadded := bytes.TrimRight(hdr, " ")
	// the length prefix of the unpadded header
	unpadded = append([]byte{}, unpadded...)
	n := uint64(len(unpadded) - 8)
	for i := 0; i < 8; i++ {
		unpadded[i] = byte(n >> (8 * i))
	}
	padWin := newWindow(hdr)
	rawWin := newWindow(unpadded)
	data := sha256.New()
	// read with ReadAt in chunks (not through the mapping): memory stays
	// bounded by the buffer whatever the tensor sizes
	src, err := os.Open(f.Path)
	if err != nil {
		return Hashes{}, err
	}
	defer src.Close()
	buf := make([]byte, 1<<20)
	var off int64
	for _, s := range order {
		t, ok := f.Lookup(s.Name)
		if !ok {
			return Hashes{}, fmt.Errorf("%s: tensor %q vanished", f.Path, s.Name)
		}
		r := io.NewSectionReader(src, f.DataOffset+t.Begin, t.End-t.Begin)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				b := buf[:n]
				data.Write(b)
				padWin.feed(off, b)
				rawWin.feed(off, b)
				off += int64(n)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return Hashes{}, fmt.Errorf("%s: reading tensor %q: %v", f.Path, s.Name, err)
			}
		}
	}
	sum := hex.EncodeToString(data.Sum(nil))
	return Hashes{ModelHash: sum, LegacyHash: padWin.sum(), LegacyUnpadded: rawWin.sum(), SpecHash: "0x" + sum}, nil
}

// window collects the legacy-hash window of header+data.
type window struct {
	hdrLen int64
	buf    []byte
}

func newWindow(hdr []byte) *window {
	w := &window{hdrLen: int64(len(hdr))}
	if lo, hi := int64(legacyOffset), min(int64(len(hdr)), legacyOffset+legacySize); lo < hi {
		w.buf = append(w.buf, hdr[lo:hi]...)
	}
	return w
}

// feed offers data bytes b that start at data offset off.
func (w *window) feed(off int64, b []byte) {
	start := w.hdrLen + off
	lo, hi := max(start, legacyOffset), min(start+int64(len(b)), legacyOffset+legacySize)
	if lo < hi {
		w.buf = append(w.buf, b[lo-start:hi-start]...)
	}
}

func (w *window) sum() string {
	s := sha256.Sum256(w.buf)
	return hex.EncodeToString(s[:])[:8]
}

// CheckHashes compares f's stored hashes with recomputed ones.
func CheckHashes(f *safetensors.File) (*Check, error) {
	h, err := Compute(f, f.Metadata)
	if err != nil {
		return nil, err
	}
	m := f.Metadata
	c := &Check{Computed: h, Stored: Hashes{ModelHash: m["sshs_model_hash"], LegacyHash: m["sshs_legacy_hash"], SpecHash: m["modelspec.hash_sha256"]}}
	verdict := func(stored string, ok bool) string {
		switch {
		case stored == "":
			return "absent"
		case ok:
			return "ok"
		}
		return "stale"
	}
	c.Model = verdict(c.Stored.ModelHash, strings.EqualFold(c.Stored.ModelHash, h.ModelHash))
	c.Spec = verdict(c.Stored.SpecHash, strings.EqualFold(strings.TrimPrefix(c.Stored.SpecHash, "0x"), h.ModelHash))
	sl := strings.ToLower(c.Stored.LegacyHash)
	pad, raw := sl == h.LegacyHash, sl == h.LegacyUnpadded
	c.Legacy = verdict(sl, pad || raw)
	switch {
	case pad && raw:
		c.LegacyRule = "both"
	case pad:
		c.LegacyRule = "padded"
	case raw:
		c.LegacyRule = "unpadded"
	}
	return c, nil
}

// setHashes writes h into md (the keys kohya and ModelSpec use).
func setHashes(md map[string]string, h Hashes) {
	md["sshs_model_hash"] = h.ModelHash
	md["sshs_legacy_hash"] = h.LegacyHash
	md["modelspec.hash_sha256"] = h.SpecHash
}
