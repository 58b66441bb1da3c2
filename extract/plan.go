package extract

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/safetensors"
)

// Module kinds.
const (
	kindLinear  = "linear"
	kindConv1x1 = "conv1x1"
	kindConv    = "conv"
)

// part is one LoRA module of a job: a whole tensor or a row slice of a
// fused one.
type part struct {
	target arch.Target
	name   string // LoRA prefix in the output format
	off    int    // first row
	rows   int
	cols   int
	cap    int // fixed rank or rank cap
}

// job is one checkpoint tensor to decompose.
type job struct {
	idx         int
	key         string
	base, tuned safetensors.TensorInfo
	shape       []int64
	kind        string
	encoder     string // "" for the diffusion model
	parts       []part
}

type plan struct {
	arch           *arch.Arch
	info           arch.CheckpointInfo
	jobs           []job
	skipped        []Skip
	notExamined    map[string]int
	encoders       []string // encoders with jobs, in first-seen order
	encoderReports []EncoderReport
	total          int64 // progress total in input bytes
}

func (p *plan) skip(key, name, reason string) {
	p.skipped = append(p.skipped, Skip{Key: key, Name: name, Reason: reason})
}

func mapView(h *safetensors.Header) arch.MapView {
	mv := arch.MapView{}
	for _, t := range h.Tensors {
		mv[t.Name] = t.Shape
	}
	return mv
}

func describeLayout(l string) string {
	switch l {
	case "single-file":
		return "a single-file checkpoint"
	case "diffusion-model":
		return "a diffusion-model-only file"
	case "diffusers":
		return "a diffusers-layout file"
	}
	return "a " + l + " file"
}

// detect identifies both files and checks that they are comparable.
func detect(s *settings, base, tuned *safetensors.File) (*arch.Arch, arch.CheckpointInfo, error) {
	bi := arch.DetectCheckpoint(mapView(base.Header))
	ti := arch.DetectCheckpoint(mapView(tuned.Header))
	if s.Arch != "" {
		a, ok := arch.ByID(s.Arch)
		if !ok {
			return nil, bi, usagef("--arch %q: unknown architecture (known: %s)", s.Arch, strings.Join(arch.IDs(), ", "))
		}
		for _, inf := range []*arch.CheckpointInfo{&bi, &ti} {
			inf.Arch = a
			if inf.Layout == "unknown" || inf.Layout == "text-encoder" || inf.Layout == "vae" {
				inf.Layout = "diffusion-model"
			}
		}
	}
	if bi.Arch == nil {
		return nil, bi, fmt.Errorf("%s: not a checkpoint of a known architecture (layout %s; use --arch)", s.Base, bi.Layout)
	}
	if ti.Arch == nil {
		return nil, bi, fmt.Errorf("%s: not a checkpoint of a known architecture (layout %s; use --arch)", s.Tuned, ti.Layout)
	}
	if bi.Arch.ID != ti.Arch.ID {
		return nil, bi, fmt.Errorf("base is %s, tuned is %s: both models must have the same architecture", bi.Arch.ID, ti.Arch.ID)
	}
	if bi.Layout != ti.Layout || bi.DiffusionPrefix != ti.DiffusionPrefix {
		return nil, bi, fmt.Errorf("base is %s, tuned is %s: both files must have the same layout", describeLayout(bi.Layout), describeLayout(ti.Layout))
	}
	if bi.Layout == "diffusers" {
		return nil, bi, fmt.Errorf("%s: diffusers-layout files are not supported; use single-file or diffusion-model checkpoints", s.Base)
	}
	return bi.Arch, bi, nil
}

// isEmbedding reports whether a native module is an embedding table
// (token, position, relative-position, shared vocabulary), which is not a
// linear map and is not extracted.
func isEmbedding(module string) bool {
	last := module[strings.LastIndexByte(module, '.')+1:]
	l := strings.ToLower(last)
	return strings.Contains(l, "embedding") || l == "embed_tokens" || l == "shared" ||
		l == "relative_attention_bias" || l == "wte" || l == "wpe" || strings.Contains(module, "text_projection")
}

func makePlan(s *settings, base, tuned *safetensors.File) (*plan, error) {
	a, info, err := detect(s, base, tuned)
	if err != nil {
		return nil, err
	}
	p := &plan{arch: a, info: info, notExamined: map[string]int{}}
	encSeen := map[string]bool{}
	encNotRequested := map[string]int{}
	names := map[string]string{}
	for _, bt := range base.Header.Tensors {
		targets, ok := a.KeyTargets(bt.Name, info, bt.Shape)
		if !ok {
			p.notExamined["outside the diffusion model and text encoders (VAE, buffers)"]++
			continue
		}
		tt, inTuned := tuned.Header.Lookup(bt.Name)
		if inTuned && !slices.Equal(tt.Shape, bt.Shape) {
			return nil, fmt.Errorf("%s: tensor %s has shape %v, base has %v: not the same model", s.Tuned, bt.Name, tt.Shape, bt.Shape)
		}
		t0 := targets[0]
		if !strings.HasSuffix(t0.Param, ".weight") {
			p.notExamined["not a .weight parameter (biases, norm scales, raw parameters)"]++
			continue
		}
		if len(bt.Shape) < 2 {
			p.notExamined["1-D parameters (norms)"]++
			continue
		}
		enc := ""
		if t0.Component != arch.DiffusionModel {
			enc = t0.Component
			if isEmbedding(t0.Module) {
				p.notExamined["text-encoder embeddings / projections"]++
				continue
			}
			if !s.TextEncoders {
				encNotRequested[enc]++
				p.notExamined["text-encoder weights (use --text-encoders)"]++
				continue
			}
		} else if isEmbedding(t0.Module) {
			p.skip(bt.Name, "", "embedding table")
			continue
		} else if why := unloadable(a, s.Format, t0); why != "" && !s.AllModules {
			p.skip(bt.Name, "", why)
			continue
		}
		if !inTuned {
			return nil, fmt.Errorf("%s: has no tensor %s (present in base): not the same model", s.Tuned, bt.Name)
		}
		if !bt.DType.CanDecode() || !tt.DType.CanDecode() {
			p.skip(bt.Name, "", fmt.Sprintf("cannot decode %v / %v", bt.DType, tt.DType))
			continue
		}
		j := job{key: bt.Name, base: bt, tuned: tt, shape: bt.Shape, encoder: enc}
		var cols int64 = 1
		for _, d := range bt.Shape[1:] {
			cols *= d
		}
		switch len(bt.Shape) {
		case 2:
			j.kind = kindLinear
		case 4:
			j.kind = kindConv
			if bt.Shape[2] == 1 && bt.Shape[3] == 1 {
				j.kind = kindConv1x1
			}
		default:
			p.skip(bt.Name, "", fmt.Sprintf("%d-D weight (only linear and 2-D convolution weights are extracted)", len(bt.Shape)))
			continue
		}
		if bt.Shape[0] > math.MaxInt32 || cols > math.MaxInt32 {
			p.skip(bt.Name, "", "matrix too large")
			continue
		}
		capRank := s.maxRank
		if j.kind == kindConv {
			capRank = s.convRank
			if capRank == 0 {
				p.skip(bt.Name, "", "k×k convolution (--conv-rank 0)")
				continue
			}
		}
		var bad string
		for _, t := range targets {
			name, err := a.LoRAPrefix(t, s.Format)
			if err != nil {
				bad = err.Error()
				break
			}
			pt := part{target: t, name: name, rows: int(bt.Shape[0]), cols: int(cols), cap: capRank}
			if t.Slice != nil {
				pt.off, pt.rows = int(t.Slice.Offset), int(t.Slice.Size)
				if pt.off < 0 || pt.rows <= 0 || int64(pt.off+pt.rows) > bt.Shape[0] {
					bad = fmt.Sprintf("rows %d..%d outside the tensor", pt.off, pt.off+pt.rows)
					break
				}
			}
			if prev, dup := names[name]; dup {
				return nil, fmt.Errorf("%s: tensors %s and %s both map to LoRA module %s", s.Base, prev, bt.Name, name)
			}
			names[name] = bt.Name
			j.parts = append(j.parts, pt)
		}
		if bad != "" {
			for _, pt := range j.parts {
				delete(names, pt.name)
			}
			p.skip(bt.Name, "", "no "+s.Format+" LoRA name: "+bad)
			continue
		}
		// fused thirds are listed in table order; write them in row order
		slices.SortStableFunc(j.parts, func(x, y part) int { return x.off - y.off })
		if enc != "" && !encSeen[enc] {
			encSeen[enc] = true
			p.encoders = append(p.encoders, enc)
		}
		j.idx = len(p.jobs)
		p.jobs = append(p.jobs, j)
		p.total += (bt.End - bt.Begin) + (tt.End - tt.Begin)
	}
	for _, e := range a.Encoders {
		if n := encNotRequested[e.Comfy]; n > 0 {
			p.encoderReports = append(p.encoderReports, EncoderReport{Name: e.Comfy, Reason: fmt.Sprintf("not requested (--text-encoders); %d weights", n)})
		}
	}
	if s.TextEncoders {
		for _, j := range p.jobs {
			if j.encoder != "" {
				p.total += (j.base.End - j.base.Begin) + (j.tuned.End - j.tuned.Begin)
			}
		}
	}
	if len(p.jobs) == 0 {
		return nil, fmt.Errorf("%s: no extractable weights (linear or convolution) found for %s", s.Base, a.ID)
	}
	return p, nil
}

// checkEncoders computes each text encoder's largest |Δ| and drops the
// jobs of encoders at or below the text-encoder threshold.
func (p *plan) checkEncoders(ctx context.Context, s *settings, base, tuned *safetensors.File, prog func(int64)) error {
	maxAbs := map[string]float64{}
	var bb, tb []float32
	for _, j := range p.jobs {
		if j.encoder == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		if bb, err = base.Float32(j.base, bb); err != nil {
			return err
		}
		if tb, err = tuned.Float32(j.tuned, tb); err != nil {
			return err
		}
		m := maxAbs[j.encoder]
		for i, v := range tb {
			if d := math.Abs(float64(v - bb[i])); d > m || d != d {
				m = d
			}
		}
		maxAbs[j.encoder] = m
		release(base, j.base)
		release(tuned, j.tuned)
		prog((j.base.End - j.base.Begin) + (j.tuned.End - j.tuned.Begin))
	}
	drop := map[string]bool{}
	for _, e := range p.encoders {
		r := EncoderReport{Name: e, MaxAbs: maxAbs[e], Extracted: true}
		if maxAbs[e] <= s.teMinDiff {
			r.Extracted = false
			r.Reason = fmt.Sprintf("unchanged: max |Δ| %.3g <= text-encoder threshold %.3g", maxAbs[e], s.teMinDiff)
			drop[e] = true
		}
		p.encoderReports = append(p.encoderReports, r)
	}
	if len(drop) == 0 {
		return nil
	}
	kept := p.jobs[:0]
	for _, j := range p.jobs {
		if drop[j.encoder] {
			p.notExamined["weights of unchanged text encoders"]++
			p.total -= (j.base.End - j.base.Begin) + (j.tuned.End - j.tuned.Begin)
			continue
		}
		j.idx = len(kept)
		kept = append(kept, j)
	}
	p.jobs = kept
	return nil
}
