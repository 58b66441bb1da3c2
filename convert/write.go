package convert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// outTensor is a tensor of the output file.
type outTensor struct {
	name string
	v    *val
}

// encode returns the tensor's bytes in dtype dt (Invalid: its own dtype).
// Input bytes are passed through unchanged when the dtype is unchanged;
// non-float tensors are never converted.
func (o outTensor) encode(dt dtype.DType) (dtype.DType, []byte, error) {
	v := o.v
	if dt == dtype.Invalid || !v.dt.IsFloat() {
		dt = v.dt
	}
	if v.raw != nil && v.f32 == nil && dt == v.dt {
		return dt, v.raw, nil
	}
	if v.raw != nil && dt == v.dt && v.f32 != nil {
		return dt, v.raw, nil
	}
	f, err := v.floats()
	if err != nil {
		return dt, nil, fmt.Errorf("tensor %q: %v", o.name, err)
	}
	n, err := dtype.Size(dt, int64(len(f)))
	if err != nil {
		return dt, nil, fmt.Errorf("tensor %q: %v", o.name, err)
	}
	b := make([]byte, n)
	if _, err := dtype.Encode(dt, f, b); err != nil {
		return dt, nil, fmt.Errorf("tensor %q: %v", o.name, err)
	}
	return dt, b, nil
}

// writeTensors encodes every tensor, recomputes the data hashes the
// metadata carries (sshs_model_hash, modelspec.hash_sha256) and writes the
// file atomically. It returns the file size.
func writeTensors(path string, ts []outTensor, dt dtype.DType, meta map[string]string, overwrite bool) (int64, error) {
	type enc struct {
		spec safetensors.TensorSpec
		data []byte
	}
	encs := make([]enc, 0, len(ts))
	seen := map[string]bool{}
	for _, t := range ts {
		if seen[t.name] {
			return 0, fmt.Errorf("two modules would both be written as %q", t.name)
		}
		seen[t.name] = true
		d, b, err := t.encode(dt)
		if err != nil {
			return 0, err
		}
		encs = append(encs, enc{safetensors.TensorSpec{Name: t.name, DType: d, Shape: t.v.shape}, b})
	}
	// the writer's canonical order: dtype descending, then name
	sort.SliceStable(encs, func(i, j int) bool {
		if encs[i].spec.DType != encs[j].spec.DType {
			return encs[i].spec.DType > encs[j].spec.DType
		}
		return encs[i].spec.Name < encs[j].spec.Name
	})
	_, hasSSHS := meta["sshs_model_hash"]
	_, hasMS := meta["modelspec.hash_sha256"]
	if hasSSHS || hasMS {
		h := sha256.New()
		for _, e := range encs {
			h.Write(e.data)
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if hasSSHS {
			meta["sshs_model_hash"] = sum
			delete(meta, "sshs_legacy_hash")
		}
		if hasMS {
			meta["modelspec.hash_sha256"] = "0x" + sum
		}
	}
	specs := make([]safetensors.TensorSpec, len(encs))
	byName := map[string][]byte{}
	for i, e := range encs {
		specs[i] = e.spec
		byName[e.spec.Name] = e.data
	}
	if err := checkOut(path, overwrite); err != nil {
		return 0, err
	}
	w, err := safetensors.Create(path, specs, meta)
	if err != nil {
		return 0, err
	}
	for _, s := range w.Order() {
		if err := w.Write(s.Name, byName[s.Name]); err != nil {
			w.Abort()
			return 0, err
		}
	}
	if err := w.Commit(); err != nil {
		return 0, err
	}
	return w.FileSize(), nil
}

// checkOut refuses to replace an existing file without overwrite.
func checkOut(path string, overwrite bool) error {
	if _, err := os.Stat(path); err == nil && !overwrite {
		return fmt.Errorf("%s exists (use --overwrite to replace it)", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return nil
}

// stageFile writes a small file (adapter_config.json) to a synced
// temporary file next to path, with path's output mode, and returns its
// name: the caller renames it into place (or removes it).
func stageFile(path string, data []byte) (string, error) {
	f, err := safetensors.CreateTemp(filepath.Dir(path))
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	err = f.Chmod(safetensors.OutputMode(path))
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}
