package convert

import (
	"fmt"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// chunkElems is how many elements are converted at a time when streaming.
const chunkElems = 1 << 20

// passthrough writes every tensor under its own name, converting float
// tensors to opt.DType (round to nearest even): full checkpoints, .ckpt
// imports, and LoRAs without --to. Memory stays bounded by one tensor.
func passthrough(src source, out string, opt Options, meta map[string]string, res *Result) error {
	ts := src.Tensors()
	specs := make([]safetensors.TensorSpec, len(ts))
	byName := map[string]srcTensor{}
	for i, t := range ts {
		d := t.DType
		if opt.DType != dtype.Invalid && d.IsFloat() && d.CanDecode() {
			d = opt.DType
		}
		specs[i] = safetensors.TensorSpec{Name: t.Name, DType: d, Shape: t.Shape}
		byName[t.Name] = t
	}
	for _, s := range src.Skipped() {
		res.Notes = append(res.Notes, "skipped "+s)
	}
	// data hashes would need a second pass over the whole file
	for _, k := range []string{"sshs_model_hash", "sshs_legacy_hash", "modelspec.hash_sha256"} {
		if _, ok := meta[k]; ok {
			delete(meta, k)
			res.Notes = append(res.Notes, "dropped stale "+k)
		}
	}
	if len(meta) == 0 {
		meta = nil
	}
	if res.Kind == "lora" {
		if meta == nil {
			meta = map[string]string{}
		}
		v := opt.Version
		if v == "" {
			v = "dev"
		}
		meta["loratool.convert"] = fmt.Sprintf("dtype converted to %v by loratool %s", opt.DType, v)
		if opt.DType == dtype.Invalid {
			meta["loratool.convert"] = "imported by loratool " + v
		}
	}
	if err := checkOut(out, opt.Overwrite); err != nil {
		return err
	}
	w, err := safetensors.Create(out, specs, meta)
	if err != nil {
		return err
	}
	defer w.Abort()
	order := w.Order()
	var fbuf []float32
	var obuf []byte
	saturated := 0
	for _, s := range order {
		t := byName[s.Name]
		b, err := src.Read(t)
		if err != nil {
			return err
		}
		if s.DType == t.DType {
			if err := w.Write(s.Name, b); err != nil {
				return err
			}
			continue
		}
		n := t.numel()
		inSz, _ := dtype.Size(t.DType, 1)
		outSz, _ := dtype.Size(s.DType, n)
		if int64(cap(obuf)) < outSz {
			obuf = make([]byte, outSz)
		}
		ob := obuf[:outSz]
		per := outSz / max(n, 1)
		for off := int64(0); off < n; off += chunkElems {
			m := min(chunkElems, n-off)
			if int64(cap(fbuf)) < m {
				fbuf = make([]float32, m)
			}
			f := fbuf[:m]
			if err := dtype.Decode(t.DType, b[off*inSz:(off+m)*inSz], f); err != nil {
				return fmt.Errorf("tensor %q: %v", t.Name, err)
			}
			st, err := dtype.Encode(s.DType, f, ob[off*per:(off+m)*per])
			if err != nil {
				return fmt.Errorf("tensor %q: %v", t.Name, err)
			}
			saturated += st.Clamped
		}
		if err := w.Write(s.Name, ob); err != nil {
			return err
		}
	}
	if err := w.Commit(); err != nil {
		return err
	}
	res.Tensors = len(ts)
	res.BytesOut = w.FileSize()
	if saturated > 0 {
		res.Notes = append(res.Notes, saturatedNote(saturated))
	}
	return nil
}
