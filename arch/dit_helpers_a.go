package arch

import (
	"fmt"
	"strconv"
	"strings"
)

// Helpers shared by the MMDiT-style architectures (flux1, chroma, flux2,
// sd3, auraflow).

// mmParams is the shared parameter-table builder.
type mmParams = paramList

// mmI formats a block index.
func mmI(i int) string { return strconv.Itoa(i) }

// mmAliases accumulates aliases.
type mmAliases struct{ as []Alias }

func (l *mmAliases) add(name, target string) {
	l.as = append(l.as, Alias{Name: name, Target: target})
}

func (l *mmAliases) slice(name, target string, offset, size int64) {
	l.as = append(l.as, Alias{Name: name, Target: target, Slice: &Slice{Offset: offset, Size: size}})
}

func (l *mmAliases) swap(name, target string) {
	l.as = append(l.as, Alias{Name: name, Target: target, SwapScaleShift: true})
}

// qkvSlices maps three diffusers projections onto the row thirds of a fused
// qkv weight of width h.
func (l *mmAliases) qkvSlices(q, k, v, target string, h int64) {
	l.slice(q, target, 0, h)
	l.slice(k, target, h, h)
	l.slice(v, target, 2*h, h)
}

// mmShape renders a shape as "[3072 64]".
func mmShape(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// mmWithShape renders "name [shape]" for evidence strings.
func mmWithShape(v View, name string) string {
	return fmt.Sprintf("%s %s", name, mmShape(v.Shape(name)))
}

// mmDim returns dimension i of a tensor's shape, or -1.
func mmDim(v View, name string, i int) int64 {
	s := v.Shape(name)
	if i < 0 || i >= len(s) {
		return -1
	}
	return s[i]
}

// mmHasAny reports whether any of the names is present.
func mmHasAny(v View, names ...string) (string, bool) {
	for _, n := range names {
		if v.Has(n) {
			return n, true
		}
	}
	return "", false
}

// mmFlux holds the dimensions of a FLUX.1-style transformer (also Chroma).
type mmFlux struct {
	hidden, heads   int64
	mlp             int64 // MLP hidden width (4 × hidden)
	inCh, outCh     int64 // img_in input and final_layer.linear output widths
	ctx, vec        int64 // txt_in and vector_in input widths
	nDouble, single int
}

// doubleBlock adds one FLUX.1 DoubleStreamBlock; mod adds the per-block
// img_mod/txt_mod (absent in Chroma).
func (d mmFlux) doubleBlock(l *mmParams, p string, mod bool) {
	h, hd := d.hidden, d.hidden/d.heads
	for _, s := range []string{"img", "txt"} {
		if mod {
			l.linear(p+s+"_mod.lin", 6*h, h, true)
		}
		l.linear(p+s+"_attn.qkv", 3*h, h, true)
		l.add(p+s+"_attn.norm.query_norm.scale", hd)
		l.add(p+s+"_attn.norm.key_norm.scale", hd)
		l.linear(p+s+"_attn.proj", h, h, true)
		l.linear(p+s+"_mlp.0", d.mlp, h, true)
		l.linear(p+s+"_mlp.2", h, d.mlp, true)
	}
}

// singleBlock adds one FLUX.1 SingleStreamBlock: linear1 fuses q, k, v and
// the MLP input (rows 3H + mlp), linear2 the attention output and MLP
// output (columns H + mlp).
func (d mmFlux) singleBlock(l *mmParams, p string, mod bool) {
	h, hd := d.hidden, d.hidden/d.heads
	l.linear(p+"linear1", 3*h+d.mlp, h, true)
	l.linear(p+"linear2", h, h+d.mlp, true)
	l.add(p+"norm.query_norm.scale", hd)
	l.add(p+"norm.key_norm.scale", hd)
	if mod {
		l.linear(p+"modulation.lin", 3*h, h, true)
	}
}

// mmFluxAliases is ComfyUI's flux_to_diffusers map (comfy/utils.py) at
// module level, for nDouble/nSingle blocks of width h. mod includes the
// per-block modulation entries (norm1.linear, norm1_context.linear,
// norm.linear) and the vector/guidance embedders, which Chroma lacks.
func mmFluxAliases(l *mmAliases, nDouble, nSingle int, h int64, mod bool) {
	for i := 0; i < nDouble; i++ {
		f, t := "transformer_blocks."+mmI(i)+".", "double_blocks."+mmI(i)+"."
		l.qkvSlices(f+"attn.to_q", f+"attn.to_k", f+"attn.to_v", t+"img_attn.qkv", h)
		l.qkvSlices(f+"attn.add_q_proj", f+"attn.add_k_proj", f+"attn.add_v_proj", t+"txt_attn.qkv", h)
		l.add(f+"attn.to_out.0", t+"img_attn.proj")
		l.add(f+"attn.to_add_out", t+"txt_attn.proj")
		if mod {
			l.add(f+"norm1.linear", t+"img_mod.lin")
			l.add(f+"norm1_context.linear", t+"txt_mod.lin")
		}
		l.add(f+"ff.net.0.proj", t+"img_mlp.0")
		l.add(f+"ff.net.2", t+"img_mlp.2")
		l.add(f+"ff_context.net.0.proj", t+"txt_mlp.0")
		l.add(f+"ff_context.net.2", t+"txt_mlp.2")
		// LyCORIS LoKr / Flux.2-style feed-forward names (also in ComfyUI's map)
		l.add(f+"ff.linear_in", t+"img_mlp.0")
		l.add(f+"ff.linear_out", t+"img_mlp.2")
		l.add(f+"ff_context.linear_in", t+"txt_mlp.0")
		l.add(f+"ff_context.linear_out", t+"txt_mlp.2")
		l.add(f+"attn.norm_q", t+"img_attn.norm.query_norm")
		l.add(f+"attn.norm_k", t+"img_attn.norm.key_norm")
		l.add(f+"attn.norm_added_q", t+"txt_attn.norm.query_norm")
		l.add(f+"attn.norm_added_k", t+"txt_attn.norm.key_norm")
	}
	for i := 0; i < nSingle; i++ {
		f, t := "single_transformer_blocks."+mmI(i)+".", "single_blocks."+mmI(i)+"."
		l.qkvSlices(f+"attn.to_q", f+"attn.to_k", f+"attn.to_v", t+"linear1", h)
		l.slice(f+"proj_mlp", t+"linear1", 3*h, 4*h)
		if mod {
			l.add(f+"norm.linear", t+"modulation.lin")
		}
		l.add(f+"proj_out", t+"linear2")
		l.add(f+"attn.norm_q", t+"norm.query_norm")
		l.add(f+"attn.norm_k", t+"norm.key_norm")
		// USO / XLabs fused single-block qkv LoRAs (native-style name)
		l.slice(t+"linear1_qkv", t+"linear1", 0, 3*h)
	}
	l.add("x_embedder", "img_in")
	l.add("context_embedder", "txt_in")
	l.add("proj_out", "final_layer.linear")
	if mod {
		l.add("time_text_embed.timestep_embedder.linear_1", "time_in.in_layer")
		l.add("time_text_embed.timestep_embedder.linear_2", "time_in.out_layer")
		l.add("time_text_embed.text_embedder.linear_1", "vector_in.in_layer")
		l.add("time_text_embed.text_embedder.linear_2", "vector_in.out_layer")
		l.add("time_text_embed.guidance_embedder.linear_1", "guidance_in.in_layer")
		l.add("time_text_embed.guidance_embedder.linear_2", "guidance_in.out_layer")
		l.swap("norm_out.linear", "final_layer.adaLN_modulation.1")
	}
}
