package convert

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// synth describes one synthetic module: a native parameter, and the
// factors the test generated for it (per slice when written split).
type synthPiece struct {
	slice    *arch.Slice // full-size slice (naming), nil = whole
	up, down []float32
	rows, r  int
	alpha    float32
}

// pickParams chooses native 2-D weights of the tiny model: plain ones,
// fused ones (qkv, linear1) and a scale/shift-swapped one when present,
// plus a CLIP-L module.
func pickParams(a *arch.Arch) []arch.Param {
	var out []arch.Param
	want := map[string]bool{
		"double_blocks.0.img_attn.qkv.weight": true, "double_blocks.0.txt_attn.qkv.weight": true,
		"single_blocks.0.linear1.weight": true, "final_layer.adaLN_modulation.1.weight": true,
		"joint_blocks.0.x_block.attn.qkv.weight": true, "double_blocks.0.img_attn.proj.weight": true,
	}
	plain := 0
	for _, p := range a.Params(arch.Tiny) {
		if len(p.Shape) != 2 || !strings.HasSuffix(p.Name, ".weight") {
			continue
		}
		mod := strings.TrimSuffix(p.Name, ".weight")
		if want[p.Name] || (plain < 4 && strings.Contains(mod, "attn") && len(a.DiffusersNames(mod)) <= 1) {
			if !want[p.Name] {
				plain++
			}
			out = append(out, p)
		}
	}
	return out
}

type synthMod struct {
	comp, module string
	rows, cols   int
	pieces       []synthPiece
}

// makeSynth generates random factors; alpha is chosen per module so that
// alpha/r is a power of two (exact folding) unless odd is set.
func makeSynth(t *testing.T, a *arch.Arch, format string, seed int64, odd bool) []synthMod {
	rng := rand.New(rand.NewSource(seed))
	var mods []synthMod
	add := func(comp, module string, shape []int64) {
		m := synthMod{comp: comp, module: module, rows: int(shape[0]), cols: int(shape[1])}
		var slices []*arch.Slice
		if comp == arch.DiffusionModel && (format == "diffusers" || format == "peft" || (format == "kohya" && a.KohyaDiffusers)) {
			full := shape[0]
			for _, p := range a.Params(arch.Full) {
				if p.Name == module+".weight" {
					full = p.Shape[0]
				}
			}
			slices = partition(a, module, full)
			for _, s := range slices {
				act, err := arch.ScaleSlice(s, full, shape[0])
				if err != nil {
					t.Fatal(err)
				}
				_ = act
			}
		}
		gen := func(rows int, sl *arch.Slice) synthPiece {
			r := 2 + rng.Intn(3)
			p := synthPiece{slice: sl, rows: rows, r: r, up: make([]float32, rows*r), down: make([]float32, r*m.cols)}
			for i := range p.up {
				p.up[i] = float32(rng.NormFloat64())
			}
			for i := range p.down {
				p.down[i] = float32(rng.NormFloat64())
			}
			p.alpha = float32(r) * []float32{0.5, 1, 2, 0.25}[rng.Intn(4)]
			if odd {
				p.alpha = float32(r) * 0.3
			}
			return p
		}
		if slices == nil {
			m.pieces = append(m.pieces, gen(m.rows, nil))
		} else {
			full := int64(0)
			for _, s := range slices {
				full += s.Size
			}
			for _, s := range slices {
				act, _ := arch.ScaleSlice(s, full, int64(m.rows))
				m.pieces = append(m.pieces, gen(int(act.Size), s))
			}
		}
		mods = append(mods, m)
	}
	for _, p := range pickParams(a) {
		add(arch.DiffusionModel, strings.TrimSuffix(p.Name, ".weight"), p.Shape)
	}
	if e, ok := a.Encoder("clip_l"); ok {
		for _, p := range e.Model(arch.Tiny) {
			if p.Name == "text_model.encoder.layers.0.self_attn.q_proj.weight" {
				add("clip_l", strings.TrimSuffix(p.Name, ".weight"), p.Shape)
			}
		}
	}
	return mods
}

// writeSynth writes the modules in a format, alphas included for
// kohya/comfy; for diffusers/peft the scale is folded by the test itself
// (in float64, rounded once) — only power-of-two scales are used there.
func writeSynth(t *testing.T, a *arch.Arch, mods []synthMod, format, path string) {
	var specs []safetensors.TensorSpec
	data := map[string][]float32{}
	put := func(name string, shape []int64, v []float32) {
		specs = append(specs, safetensors.TensorSpec{Name: name, DType: dtype.F32, Shape: shape})
		data[name] = v
	}
	for _, m := range mods {
		for _, p := range m.pieces {
			tg := arch.Target{Component: m.comp, Module: m.module, Slice: p.slice}
			prefix, err := a.LoRAPrefix(tg, format)
			if err != nil {
				t.Fatal(err)
			}
			up, down := p.up, p.down
			if m.comp == arch.DiffusionModel && format != "comfy" && aliasSwap(a, m.module, p.slice) && (format != "kohya" || a.KohyaDiffusers) {
				up = swapRows(up, p.rows, p.r)
			}
			switch format {
			case "kohya", "comfy":
				put(prefix+".lora_up.weight", []int64{int64(p.rows), int64(p.r)}, up)
				put(prefix+".lora_down.weight", []int64{int64(p.r), int64(m.cols)}, down)
				put(prefix+".alpha", []int64{}, []float32{p.alpha})
			default:
				s := float64(p.alpha) / float64(p.r)
				d := make([]float32, len(down))
				for i, v := range down {
					d[i] = float32(float64(v) * s)
				}
				put(prefix+".lora_B.weight", []int64{int64(p.rows), int64(p.r)}, up)
				put(prefix+".lora_A.weight", []int64{int64(p.r), int64(m.cols)}, d)
			}
		}
	}
	err := safetensors.WriteFile(path, specs, map[string]string{"ss_network_dim": "4", "sshs_model_hash": "x"}, func(s safetensors.TensorSpec) ([]byte, error) {
		v := data[s.Name]
		b := make([]byte, 4*len(v))
		_, err := dtype.Encode(dtype.F32, v, b)
		return b, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func swapRows(up []float32, rows, r int) []float32 {
	h := rows / 2 * r
	return append(append([]float32(nil), up[h:]...), up[:h]...)
}

// refDeltas computes the expected native deltas, float64, rounded to f32.
func refDeltas(a *arch.Arch, mods []synthMod) map[string][]float32 {
	out := map[string][]float32{}
	for _, m := range mods {
		acc := make([]float64, m.rows*m.cols)
		full := int64(0)
		for _, p := range m.pieces {
			if p.slice != nil {
				full += p.slice.Size
			}
		}
		off := 0
		for _, p := range m.pieces {
			if p.slice != nil {
				act, _ := arch.ScaleSlice(p.slice, full, int64(m.rows))
				off = int(act.Offset)
			}
			s := float64(p.alpha) / float64(p.r)
			for i := 0; i < p.rows; i++ {
				for c := 0; c < m.cols; c++ {
					var sum float64
					for j := 0; j < p.r; j++ {
						sum += float64(p.up[i*p.r+j]) * float64(p.down[j*m.cols+c])
					}
					acc[(off+i)*m.cols+c] += s * sum
				}
			}
		}
		f := make([]float32, len(acc))
		for i, v := range acc {
			f[i] = float32(v)
		}
		out[m.comp+"/"+m.module] = f
	}
	return out
}

// fileDeltas reads a converted file back independently of the converter:
// tensor names are split by their suffix, prefixes resolved with
// arch.Resolve, and every delta is recomputed in float64 from the stored
// factors (scale = alpha/r, 1 without alpha), placed at its slice rows
// and un-swapped, then rounded to float32.
func fileDeltas(t *testing.T, a *arch.Arch, path string, shapes map[string][2]int) map[string][]float32 {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return peftDirDeltas(t, a, path, shapes)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type fm struct{ up, down, alpha *safetensors.TensorInfo }
	mods := map[string]*fm{}
	get := func(p string) *fm {
		if mods[p] == nil {
			mods[p] = &fm{}
		}
		return mods[p]
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		n := ti.Name
		switch {
		case strings.HasSuffix(n, ".lora_up.weight"):
			get(strings.TrimSuffix(n, ".lora_up.weight")).up = ti
		case strings.HasSuffix(n, ".lora_B.weight"):
			get(strings.TrimSuffix(n, ".lora_B.weight")).up = ti
		case strings.HasSuffix(n, ".lora_down.weight"):
			get(strings.TrimSuffix(n, ".lora_down.weight")).down = ti
		case strings.HasSuffix(n, ".lora_A.weight"):
			get(strings.TrimSuffix(n, ".lora_A.weight")).down = ti
		case strings.HasSuffix(n, ".alpha"):
			get(strings.TrimSuffix(n, ".alpha")).alpha = ti
		default:
			t.Fatalf("%s: unexpected tensor %s", path, n)
		}
	}
	acc := map[string][]float64{}
	for p, m := range mods {
		tg, ok := a.Resolve(p)
		if !ok {
			t.Fatalf("%s: %s does not resolve", path, p)
		}
		key := tg.Component + "/" + tg.Module
		sh, ok := shapes[key]
		if !ok {
			t.Fatalf("%s: %s is not a generated module", path, key)
		}
		up, _ := f.Float32(*m.up, nil)
		down, _ := f.Float32(*m.down, nil)
		rows, r := int(m.up.Shape[0]), int(m.up.Shape[1])
		s := 1.0
		if m.alpha != nil {
			av, _ := f.Float32(*m.alpha, nil)
			s = float64(av[0]) / float64(r)
		}
		if tg.SwapScaleShift {
			up = swapRows(up, rows, r)
		}
		off := 0
		if tg.Slice != nil {
			act, err := arch.ScaleSlice(tg.Slice, tg.Shape[0], int64(sh[0]))
			if err != nil {
				t.Fatal(err)
			}
			off = int(act.Offset)
		}
		if acc[key] == nil {
			acc[key] = make([]float64, sh[0]*sh[1])
		}
		cols := sh[1]
		for i := 0; i < rows; i++ {
			for c := 0; c < cols; c++ {
				var sum float64
				for j := 0; j < r; j++ {
					sum += float64(up[i*r+j]) * float64(down[j*cols+c])
				}
				acc[key][(off+i)*cols+c] += s * sum
			}
		}
	}
	out := map[string][]float32{}
	for k, v := range acc {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		out[k] = f
	}
	return out
}

func compare(t *testing.T, what string, want, got map[string][]float32, tol float64) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: module %s missing", what, k)
			continue
		}
		var num, den float64
		exact := true
		for i := range w {
			if math.Float32bits(w[i]) != math.Float32bits(g[i]) {
				exact = false
			}
			d := float64(w[i]) - float64(g[i])
			num += d * d
			den += float64(w[i]) * float64(w[i])
		}
		if tol == 0 && !exact {
			t.Errorf("%s: %s differs (rel %.3g)", what, k, math.Sqrt(num/den))
		} else if tol > 0 && math.Sqrt(num/den) > tol {
			t.Errorf("%s: %s rel error %.3g > %g", what, k, math.Sqrt(num/den), tol)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: extra module %s", what, k)
		}
	}
}

// TestRoundTrips converts every pair of formats for every architecture,
// there and back, and compares every delta bit for bit (power-of-two
// scales) against the deltas computed from the generated factors.
func TestRoundTrips(t *testing.T) {
	for _, id := range []string{"sd1", "sdxl", "sd3", "flux1"} {
		a, ok := arch.ByID(id)
		if !ok {
			t.Logf("%s not registered", id)
			continue
		}
		for _, from := range Formats {
			for _, to := range Formats {
				if from == to {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s-%s", id, from, to), func(t *testing.T) {
					dir := t.TempDir()
					mods := makeSynth(t, a, from, int64(len(id)*7+len(from)*3+len(to)), false)
					shapes := map[string][2]int{}
					for _, m := range mods {
						shapes[m.comp+"/"+m.module] = [2]int{m.rows, m.cols}
					}
					in := filepath.Join(dir, "in.safetensors")
					writeSynth(t, a, mods, from, in)
					want := refDeltas(a, mods)
					compare(t, "input", want, fileDeltas(t, a, in, shapes), 0)
					mid := filepath.Join(dir, "mid.safetensors")
					res, err := File(in, mid, Options{To: to, Arch: id})
					if err != nil {
						t.Fatal(err)
					}
					mid = res.Output // a folder of per-model PEFT adapters for peft with text encoders
					compare(t, from+"→"+to, want, fileDeltas(t, a, mid, shapes), 0)
					back := filepath.Join(dir, "back.safetensors")
					res2, err := File(mid, back, Options{To: from, Arch: id})
					if err != nil {
						t.Fatal(err)
					}
					back = res2.Output
					compare(t, from+"→"+to+"→"+from, want, fileDeltas(t, a, back, shapes), 0)
				})
			}
		}
	}
}

// TestOddScales uses alpha/r = 0.3: folding into the factors rounds once
// in float32, so deltas agree to a relative 1e-6, not bit for bit.
func TestOddScales(t *testing.T) {
	a, _ := arch.ByID("flux1")
	for _, to := range []string{"diffusers", "peft", "comfy"} {
		dir := t.TempDir()
		mods := makeSynth(t, a, "kohya", 5, true)
		shapes := map[string][2]int{}
		for _, m := range mods {
			shapes[m.comp+"/"+m.module] = [2]int{m.rows, m.cols}
		}
		in := filepath.Join(dir, "in.safetensors")
		writeSynth(t, a, mods, "kohya", in)
		want := refDeltas(a, mods)
		out := filepath.Join(dir, "out.safetensors")
		res, err := File(in, out, Options{To: to, Arch: "flux1"})
		if err != nil {
			t.Fatal(err)
		}
		out = res.Output
		compare(t, "kohya→"+to, want, fileDeltas(t, a, out, shapes), 1e-6)
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	a, _ := arch.ByID("flux1")
	mods := makeSynth(t, a, "comfy", 1, false)
	in := filepath.Join(dir, "in.safetensors")
	writeSynth(t, a, mods, "comfy", in)
	out := filepath.Join(dir, "out.safetensors")
	if _, err := File(in, out, Options{To: "kohya", Arch: "flux1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := File(in, out, Options{To: "kohya", Arch: "flux1"}); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("overwrite not refused: %v", err)
	}
	// a stray key is an error and nothing is written
	bad := filepath.Join(dir, "bad.safetensors")
	err := safetensors.WriteFile(bad, []safetensors.TensorSpec{
		{Name: "diffusion_model.img_in.lora_up.weight", DType: dtype.F32, Shape: []int64{32, 1}},
		{Name: "diffusion_model.img_in.lora_down.weight", DType: dtype.F32, Shape: []int64{1, 64}},
		{Name: "something_else", DType: dtype.F32, Shape: []int64{1}},
	}, nil, func(s safetensors.TensorSpec) ([]byte, error) {
		n := int64(1)
		for _, d := range s.Shape {
			n *= d
		}
		return make([]byte, 4*n), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	o2 := filepath.Join(dir, "bad-out.safetensors")
	_, err = File(bad, o2, Options{To: "diffusers", Arch: "flux1"})
	if err == nil || !strings.Contains(err.Error(), "something_else") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("stray key: %v", err)
	}
	if _, err := os.Stat(o2); err == nil {
		t.Fatal("output written despite the error")
	}
}
