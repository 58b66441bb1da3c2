package inspect

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/gguf"
)

// GGUFInfo is what inspect reports for a GGUF file beyond a checkpoint's
// usual fields.
type GGUFInfo struct {
	Version      uint32      `json:"version"`
	Architecture string      `json:"general_architecture,omitempty"` // general.architecture
	FileType     *int64      `json:"file_type,omitempty"`            // general.file_type
	QuantVersion *int64      `json:"quantization_version,omitempty"`
	Types        []TypeCount `json:"types"` // histogram, most bytes first
	Reshaped     int         `json:"reshaped_tensors,omitempty"`
	LoadsAs      string      `json:"loads_as"`
}

// TypeCount is one bar of the quant-type histogram.
type TypeCount struct {
	Type    string `json:"type"`
	Tensors int    `json:"tensors"`
	Bytes   int64  `json:"bytes"`
}

// comfyLoaderArchs is ComfyUI-GGUF's IMG_ARCH_LIST.
var comfyLoaderArchs = map[string]bool{"flux": true, "sd1": true, "sdxl": true, "sd3": true, "aura": true, "hidream": true,
	"cosmos": true, "ltxv": true, "hyvid": true, "wan": true, "lumina2": true, "qwen_image": true}

func isGGUF(path string) bool { return strings.EqualFold(filepath.Ext(path), ".gguf") }

// inspectGGUF describes a GGUF file from its header.
func inspectGGUF(r *Report, path string, forced *arch.Arch) *Report {
	f, err := gguf.Open(path)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer f.Close()
	gi := &GGUFInfo{Version: f.Version, Types: []TypeCount{}}
	r.GGUF = gi
	r.Size = f.FileSize
	r.Tensors = len(f.Tensors)
	r.Format = fmt.Sprintf("gguf v%d", f.Version)
	gi.Architecture, _ = f.GetString("general.architecture")
	if v, ok := f.GetInt("general.file_type"); ok {
		gi.FileType = &v
	}
	if v, ok := f.GetInt("general.quantization_version"); ok {
		gi.QuantVersion = &v
	}
	hist := map[gguf.Type]*TypeCount{}
	view := arch.MapView{}
	for _, t := range f.Tensors {
		c := hist[t.Type]
		if c == nil {
			c = &TypeCount{Type: t.Type.String()}
			hist[t.Type] = c
		}
		c.Tensors++
		c.Bytes += t.Size
		r.Params += t.NumElements()
		shape, err := f.ModelShape(t)
		if err != nil {
			r.Warnings = append(r.Warnings, err.Error())
			shape = t.Shape()
		} else if _, re := f.Get(gguf.OrigShapeKey + t.Name); re {
			gi.Reshaped++
		}
		view[t.Name] = shape
	}
	for _, c := range hist {
		gi.Types = append(gi.Types, *c)
		r.DTypes = append(r.DTypes, c.Type)
	}
	sort.Slice(gi.Types, func(i, j int) bool {
		if gi.Types[i].Bytes != gi.Types[j].Bytes {
			return gi.Types[i].Bytes > gi.Types[j].Bytes
		}
		return gi.Types[i].Type < gi.Types[j].Type
	})
	sort.Strings(r.DTypes)
	for _, kv := range f.KV {
		if strings.HasPrefix(kv.Key, gguf.OrigShapeKey) {
			continue
		}
		r.Metadata[kv.Key] = metaString(kv.Value)
	}
	info := arch.DetectCheckpoint(view)
	r.Kind = "checkpoint"
	r.Layout = info.Layout
	r.Architecture, r.ArchName = archOrUnknown(info.Arch)
	r.Evidence = info.Evidence
	if info.Arch != nil {
		r.Confidence = "high"
	}
	if forced != nil && info.Arch != forced {
		r.Warnings = append(r.Warnings, fmt.Sprintf("--arch %s given, but the tensors say %s", forced.ID, r.Architecture))
	}
	for _, p := range info.Parts {
		r.Targets = append(r.Targets, string(p))
	}
	want := ""
	if info.Arch != nil {
		want, _ = gguf.ComfyArch(info.Arch.ID)
	}
	switch {
	case gi.Architecture == "" || gi.Architecture == "pig" || gi.Architecture == "cow":
		gi.LoadsAs = "ComfyUI-GGUF Unet Loader, compatibility mode (no general.architecture; detected from the tensors)"
		if want == "" {
			gi.LoadsAs = "not loadable by ComfyUI-GGUF: no general.architecture and the tensors match no architecture it knows"
		}
	case comfyLoaderArchs[gi.Architecture]:
		gi.LoadsAs = "ComfyUI-GGUF Unet Loader (" + gi.Architecture + ")"
		if want != "" && want != gi.Architecture {
			r.Warnings = append(r.Warnings, fmt.Sprintf("general.architecture is %q but the tensors are %s (ComfyUI-GGUF id %q)", gi.Architecture, info.Arch.ID, want))
		}
	default:
		gi.LoadsAs = fmt.Sprintf("not a diffusion model for ComfyUI-GGUF's Unet Loader (general.architecture %q; a text model or other llama.cpp file)", gi.Architecture)
	}
	for _, t := range f.Tensors {
		if !t.Type.CanDequantize() {
			r.Warnings = append(r.Warnings, fmt.Sprintf("tensor %s is %v: loratool can read the file but not dequantize that type", t.Name, t.Type))
			break
		}
	}
	return r
}

// metaString renders a metadata value in one line (long arrays summarized).
func metaString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []string:
		if len(x) > 8 {
			return fmt.Sprintf("[%d strings]", len(x))
		}
		return "[" + strings.Join(x, ", ") + "]"
	}
	s := fmt.Sprint(v)
	if len(s) > 200 {
		return fmt.Sprintf("%s (%d chars)", gguf.TypeName(v), len(s))
	}
	return s
}

// writeGGUF adds the GGUF lines to the text report.
func (r *Report) writeGGUF(line func(label, format string, args ...any)) {
	g := r.GGUF
	if g == nil {
		return
	}
	var hs []string
	for _, c := range g.Types {
		hs = append(hs, fmt.Sprintf("%s %d tensors %s", c.Type, c.Tensors, humanBytes(c.Bytes)))
	}
	line("quant types", "%s", strings.Join(hs, "; "))
	line("loads as", "%s", g.LoadsAs)
	if g.Reshaped > 0 {
		line("reshaped", "%d tensors (comfy.gguf.orig_shape)", g.Reshaped)
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
