package extract

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/safetensors"
)

// change puts a known delta with spectrum sigma on (a row third of) one
// checkpoint tensor.
type change struct {
	suffix   string
	minDim   int64
	contains []string
	third    int // 0: whole tensor; 1, 2, 3: first, second, last third of the rows
	signal   []float64
	floor    float64
	module   string // expected resolved native module ("" = from the key)
}

// applied is a change placed on a concrete tensor.
type applied struct {
	key        string
	off, rows  int
	cols       int
	shape      []int64
	sigma      []float64
	delta      []float64 // rows×cols
	module     string
	diffusion  bool
	matrixKind string
}

func applyChanges(t *testing.T, a *arch.Arch, ps []arch.Param, cs []change) (map[string][]float64, []applied) {
	t.Helper()
	add := map[string][]float64{}
	var out []applied
	for ci, c := range cs {
		p := findParam(t, ps, c.suffix, c.minDim, c.contains...)
		rows := int(p.Shape[0])
		cols := 1
		for _, d := range p.Shape[1:] {
			cols *= int(d)
		}
		off := 0
		if c.third > 0 {
			rows /= 3
			off = (c.third - 1) * rows
		}
		sigma := signalPlusNoise(min(rows, cols), c.signal, c.floor)
		d := knownDelta(rows, cols, sigma, uint64(ci+1))
		full := add[p.Name]
		if full == nil {
			full = make([]float64, int(p.Shape[0])*cols)
			add[p.Name] = full
		}
		copy(full[off*cols:], d)
		ap := applied{key: p.Name, off: off, rows: rows, cols: cols, shape: p.Shape, sigma: sigma, delta: d, module: c.module}
		if rest, ok := strings.CutPrefix(p.Name, a.DiffusionPrefix); ok {
			ap.diffusion = true
			if ap.module == "" {
				ap.module = strings.TrimSuffix(rest, ".weight")
			}
		}
		ap.matrixKind = kindLinear
		if len(p.Shape) == 4 {
			ap.matrixKind = kindConv
			if p.Shape[2] == 1 && p.Shape[3] == 1 {
				ap.matrixKind = kindConv1x1
			}
		}
		out = append(out, ap)
	}
	return add, out
}

// addBiasChange changes a 1-D bias, which must never produce a module.
func addBiasChange(ps []arch.Param, prefix string, add map[string][]float64) string {
	for _, p := range ps {
		if strings.HasPrefix(p.Name, prefix) && strings.HasSuffix(p.Name, ".bias") && len(p.Shape) == 1 {
			d := make([]float64, p.Shape[0])
			for i := range d {
				d[i] = 0.5
			}
			add[p.Name] = d
			return p.Name
		}
	}
	return ""
}

type pair struct {
	base, tuned string
	applied     []applied
	arch        *arch.Arch
}

func makePair(t *testing.T, id string, cs []change, dt dtype.DType) pair {
	t.Helper()
	a, ok := arch.ByID(id)
	if !ok {
		t.Skipf("architecture %s is not registered", id)
	}
	ps := arch.CheckpointParams(a, arch.Tiny)
	add, ap := applyChanges(t, a, ps, cs)
	addBiasChange(ps, a.DiffusionPrefix, add)
	pr := pair{base: tmpPath(t, "base.safetensors"), tuned: tmpPath(t, "tuned.safetensors"), applied: ap, arch: a}
	writeCheckpoint(t, pr.base, ps, dt, 7, nil)
	writeCheckpoint(t, pr.tuned, ps, dt, 7, add)
	return pr
}

var sig = []float64{3, 2, 1.5, 1}

func archCases() []struct {
	id      string
	te      bool
	changes []change
} {
	return []struct {
		id      string
		te      bool
		changes []change
	}{
		{"sd1", false, []change{
			{suffix: "attn1.to_q.weight", minDim: 40, signal: sig, floor: 0.02},           // linear, randomized
			{suffix: "attn2.to_k.weight", minDim: 10, signal: sig[:2]},                    // exact low rank (2 < 4)
			{suffix: "proj_in.weight", minDim: 10, signal: sig, floor: 0.01},              // 1×1 conv
			{suffix: "in_layers.2.weight", minDim: 10, signal: sig, floor: 0.01},          // 3×3 conv: LoCon
			{suffix: "ff.net.0.proj.weight", minDim: 20, signal: sig, floor: 0.03},        // tall, randomized
			{suffix: "time_embed.0.weight", minDim: 10, signal: []float64{1, 0.5, 0.25}},  // linear outside blocks
			{suffix: "output_blocks.11.0.out_layers.3.weight", signal: sig, floor: 0.005}, // last resnet conv
		}},
		{"sdxl", true, []change{
			{suffix: "attn1.to_q.weight", minDim: 40, signal: sig, floor: 0.02},
			{suffix: "in_layers.2.weight", minDim: 10, signal: sig, floor: 0.01},
			{suffix: "resblocks.0.attn.in_proj_weight", third: 1, signal: sig, floor: 0.01,
				module: "text_model.encoder.layers.0.self_attn.q_proj"},
			{suffix: "resblocks.1.attn.in_proj_weight", third: 3, signal: sig[:3],
				module: "text_model.encoder.layers.1.self_attn.v_proj"},
		}},
		{"flux1", false, []change{
			{suffix: "img_attn.qkv.weight", minDim: 32, contains: []string{"double_blocks.0."}, signal: sig, floor: 0.02},
			{suffix: "linear1.weight", minDim: 32, contains: []string{"single_blocks.0."}, signal: sig, floor: 0.02},
			{suffix: "linear2.weight", minDim: 32, contains: []string{"single_blocks.1."}, signal: sig, floor: 0.01},
		}},
		{"sd3", false, []change{
			{suffix: "x_block.attn.qkv.weight", minDim: 32, contains: []string{"joint_blocks.0."}, signal: sig, floor: 0.02},
			{suffix: "x_block.mlp.fc1.weight", minDim: 32, contains: []string{"joint_blocks.0."}, signal: sig, floor: 0.01},
		}},
	}
}

func TestExtractKnownDeltas(t *testing.T) {
	for _, tc := range archCases() {
		t.Run(tc.id, func(t *testing.T) {
			pr := makePair(t, tc.id, tc.changes, dtype.F32)
			out := tmpPath(t, "lora.safetensors")
			rep, err := Run(context.Background(), Options{Base: pr.base, Tuned: pr.tuned, Output: out,
				Rank: 4, DType: "fp32", TextEncoders: tc.te, ExactMaxDim: 8, AllModules: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkExtraction(t, pr, out, rep, "kohya")
		})
	}
}

func checkExtraction(t *testing.T, pr pair, out string, rep *Report, format string) {
	t.Helper()
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(rep.Modules) != len(pr.applied) {
		var names []string
		for _, m := range rep.Modules {
			names = append(names, m.Name)
		}
		t.Fatalf("%d modules extracted, want %d: %v", len(rep.Modules), len(pr.applied), names)
	}
	nAlpha := 0
	if format != "diffusers" {
		nAlpha = 1
	}
	if len(f.Header.Tensors) != len(pr.applied)*(2+nAlpha) {
		t.Errorf("%d tensors in the file, want %d", len(f.Header.Tensors), len(pr.applied)*(2+nAlpha))
	}
	unchanged := 0
	for _, s := range rep.Skipped {
		if strings.HasPrefix(s.Reason, "unchanged") {
			unchanged++
		}
	}
	if unchanged == 0 {
		t.Error("no module reported as unchanged")
	}
	if rep.NotExamined["not a .weight parameter (biases, norm scales, raw parameters)"] == 0 {
		t.Error("biases not reported as skipped")
	}
	for _, ap := range pr.applied {
		var m *ModuleReport
		for i := range rep.Modules {
			mm := &rep.Modules[i]
			if mm.Key == ap.key && (mm.Rows == nil || mm.Rows[0] == int64(ap.off)) {
				m = mm
			}
		}
		if m == nil {
			t.Errorf("%s rows %d: not extracted", ap.key, ap.off)
			continue
		}
		// the name resolves back onto the changed parameter
		tg, ok := pr.arch.Resolve(m.Name)
		if !ok || tg.Module != ap.module {
			t.Errorf("%s resolves to %q (ok=%v), want %q", m.Name, tg.Module, ok, ap.module)
		}
		got, rank, upShape, downShape := loraDelta(t, f, m.Name, format)
		wantRank := min(4, len(ap.sigma))
		if rank != wantRank {
			t.Errorf("%s: rank %d, want %d", m.Name, rank, wantRank)
		}
		var wantUp, wantDown []int64
		switch ap.matrixKind {
		case kindLinear:
			wantUp, wantDown = []int64{int64(ap.rows), int64(rank)}, []int64{int64(rank), int64(ap.cols)}
		default:
			wantUp = []int64{int64(ap.rows), int64(rank), 1, 1}
			wantDown = append([]int64{int64(rank)}, ap.shape[1:]...)
		}
		if !slices.Equal(upShape, wantUp) || !slices.Equal(downShape, wantDown) {
			t.Errorf("%s: shapes up %v down %v, want %v %v", m.Name, upShape, downShape, wantUp, wantDown)
		}
		var norm float64
		for _, s := range ap.sigma {
			norm += s * s
		}
		norm = math.Sqrt(norm)
		opt := optimalError(ap.sigma, rank)
		e := froDiff(got, ap.delta)
		if e > 1.01*opt+1e-5*norm {
			t.Errorf("%s (%s): ‖LoRA − Δ‖ = %.6g, optimal %.6g (ratio %.4f)", m.Name, m.Method, e, opt, e/opt)
		}
		// the reported figure comes from float32 singular values: sqrt(1 − kept/total)
		// resolves relative errors to about 5e-4
		if m.RelError > 1.01*opt/norm+5e-4 || m.RelError < opt/norm-5e-4 {
			t.Errorf("%s: reported relative error %.6g, optimal %.6g", m.Name, m.RelError, opt/norm)
		}
		if math.Abs(m.DeltaNorm-norm) > 1e-4*norm {
			t.Errorf("%s: reported ‖Δ‖ %.6g, want %.6g", m.Name, m.DeltaNorm, norm)
		}
	}
}

func TestTextEncoderNamesAndSkips(t *testing.T) {
	cs := archCases()[1].changes
	pr := makePair(t, "sdxl", cs, dtype.F32)
	// without --text-encoders only the two UNet modules are extracted
	out := tmpPath(t, "unet.safetensors")
	rep, err := Run(context.Background(), Options{Base: pr.base, Tuned: pr.tuned, Output: out, Rank: 4, DType: "fp32"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Modules) != 2 || len(rep.Encoders) != 2 || rep.Encoders[0].Extracted || !strings.Contains(rep.Encoders[1].Reason, "--text-encoders") {
		t.Errorf("without --text-encoders: %d modules, encoders %+v", len(rep.Modules), rep.Encoders)
	}
	// with it: clip_l is unchanged (skipped), clip_g gives q of layer 0 and v of layer 1
	out2 := tmpPath(t, "te.safetensors")
	rep, err = Run(context.Background(), Options{Base: pr.base, Tuned: pr.tuned, Output: out2, Rank: 4, DType: "fp32", TextEncoders: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"lora_te2_text_model_encoder_layers_0_self_attn_q_proj": true, "lora_te2_text_model_encoder_layers_1_self_attn_v_proj": true}
	for _, m := range rep.Modules {
		if strings.HasPrefix(m.Name, "lora_te") && !want[m.Name] {
			t.Errorf("unexpected text-encoder module %s", m.Name)
		}
		delete(want, m.Name)
	}
	if len(want) > 0 {
		t.Errorf("missing modules %v", want)
	}
	enc := map[string]EncoderReport{}
	for _, e := range rep.Encoders {
		enc[e.Name] = e
	}
	if enc["clip_l"].Extracted || !enc["clip_g"].Extracted {
		t.Errorf("encoders: %+v", rep.Encoders)
	}
	// the k and v thirds of layer 0 are unchanged and listed as such
	found := false
	for _, s := range rep.Skipped {
		if s.Name == "lora_te2_text_model_encoder_layers_0_self_attn_k_proj" && strings.HasPrefix(s.Reason, "unchanged") {
			found = true
		}
	}
	if !found {
		t.Error("unchanged k third of layer 0 not listed as skipped")
	}
}

func TestDynamicRules(t *testing.T) {
	sigma := []float64{4, 3, 2, 1.5, 1, 0.5, 0.25}
	cs := []change{
		{suffix: "attn1.to_q.weight", minDim: 40, signal: sigma, floor: 0.05}, // randomized (40×40)
		{suffix: "attn2.to_k.weight", minDim: 10, signal: sigma, floor: 0.05}, // exact
	}
	pr := makePair(t, "sd1", cs, dtype.F32)
	for _, tc := range []struct {
		rule string
		cap  int
		want func(s []float64) int
	}{
		{"sv_fro:0.9", 0, func(s []float64) int { return firstEnergy(s, 0.81, func(v float64) float64 { return v * v }) }},
		{"sv_fro:0.99", 5, func(s []float64) int { return min(5, firstEnergy(s, 0.9801, func(v float64) float64 { return v * v })) }},
		{"sv_ratio:3.5", 0, func(s []float64) int {
			n := 0
			for _, v := range s {
				if v >= s[0]/3.5 {
					n++
				}
			}
			return n
		}},
		{"sv_cumulative:0.5", 0, func(s []float64) int { return firstEnergy(s, 0.5, func(v float64) float64 { return v }) }},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			out := tmpPath(t, "dyn.safetensors")
			rep, err := Run(context.Background(), Options{Base: pr.base, Tuned: pr.tuned, Output: out, Rule: tc.rule, Rank: tc.cap, DType: "fp32", ExactMaxDim: 16}, nil)
			if err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Metadata["ss_network_dim"] != "Dynamic" {
				t.Errorf("ss_network_dim = %q", f.Metadata["ss_network_dim"])
			}
			for _, ap := range pr.applied {
				want := tc.want(ap.sigma)
				for _, m := range rep.Modules {
					if m.Key != ap.key {
						continue
					}
					if m.Rank != want {
						t.Errorf("%s (%s, %d×%d): rank %d, want %d", m.Name, m.Method, ap.rows, ap.cols, m.Rank, want)
					}
					got, _, _, _ := loraDelta(t, f, m.Name, "kohya")
					if e, opt := froDiff(got, ap.delta), optimalError(ap.sigma, want); e > 1.01*opt+1e-6 {
						t.Errorf("%s: error %.6g, optimal %.6g", m.Name, e, opt)
					}
				}
			}
		})
	}
}

// firstEnergy is the smallest k with Σ_{i<k} g(s_i) >= f·Σ g(s_i).
func firstEnergy(s []float64, f float64, g func(float64) float64) int {
	var total float64
	for _, v := range s {
		total += g(v)
	}
	var acc float64
	for i, v := range s {
		acc += g(v)
		if acc >= f*total*(1-1e-12) {
			return i + 1
		}
	}
	return len(s)
}

func TestFormats(t *testing.T) {
	cs := []change{
		{suffix: "attn1.to_q.weight", minDim: 40, signal: sig, floor: 0.02},
		{suffix: "proj_in.weight", minDim: 10, signal: sig},
	}
	pr := makePair(t, "sd1", cs, dtype.F32)
	for _, tc := range []struct {
		format string
		prefix string
	}{
		{"diffusers", "unet.down_blocks."},
		{"comfy", "diffusion_model.input_blocks."},
	} {
		t.Run(tc.format, func(t *testing.T) {
			out := tmpPath(t, "lora.safetensors")
			rep, err := Run(context.Background(), Options{Base: pr.base, Tuned: pr.tuned, Output: out, Rank: 4, DType: "fp32", Format: tc.format}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range rep.Modules {
				if !strings.HasPrefix(m.Name, tc.prefix) {
					t.Errorf("module %s does not start with %s", m.Name, tc.prefix)
				}
			}
			checkExtraction(t, pr, out, rep, tc.format)
			f, _ := safetensors.Open(out)
			defer f.Close()
			for _, ti := range f.Header.Tensors {
				if tc.format == "diffusers" && !strings.HasSuffix(ti.Name, ".lora_A.weight") && !strings.HasSuffix(ti.Name, ".lora_B.weight") {
					t.Errorf("diffusers output has %s", ti.Name)
				}
			}
		})
	}
}

func TestConvRank(t *testing.T) {
	cs := []change{
		{suffix: "in_layers.2.weight", minDim: 10, signal: sig, floor: 0.01},
		{suffix: "attn1.to_q.weight", minDim: 40, signal: sig, floor: 0.02},
	}
	pr := makePair(t, "sd1", cs, dtype.F32)
	for _, tc := range []struct {
		convRank  int
		wantConv  int // 0: skipped
		wantSkips bool
	}{{-1, 0, true}, {2, 2, false}, {0, 4, false}} {
		out := tmpPath(t, "lora.safetensors")
		rep, err := Run(context.Background(), Options{Base: pr.base, Tuned: pr.tuned, Output: out, Rank: 4, ConvRank: tc.convRank}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, m := range rep.Modules {
			if m.Kind == kindConv {
				got = m.Rank
			}
		}
		skipped := false
		for _, s := range rep.Skipped {
			if strings.Contains(s.Reason, "--conv-rank 0") {
				skipped = true
			}
		}
		if got != tc.wantConv || skipped != tc.wantSkips {
			t.Errorf("ConvRank %d: conv rank %d skipped %v, want %d %v", tc.convRank, got, skipped, tc.wantConv, tc.wantSkips)
		}
	}
}

func TestMinDiff(t *testing.T) {
	cs := []change{
		{suffix: "attn1.to_q.weight", minDim: 40, signal: sig, floor: 0.02},
		{suffix: "attn2.to_k.weight", minDim: 10, signal: []float64{0.01}}, // max |Δ| well below 0.01
	}
	pr := makePair(t, "sd1", cs, dtype.F32)
	out := tmpPath(t, "lora.safetensors")
	rep, err := Run(context.Background(), Options{Base: pr.base, Tuned: pr.tuned, Output: out, Rank: 4, MinDiff: 0.01}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Modules) != 1 || rep.Modules[0].Key != pr.applied[0].key {
		t.Fatalf("modules %+v", rep.Modules)
	}
	found := false
	for _, s := range rep.Skipped {
		if s.Key == pr.applied[1].key && strings.Contains(s.Reason, "--min-diff") {
			found = true
		}
	}
	if !found {
		t.Error("small change not listed as skipped by --min-diff")
	}
}

func TestMetadataHashDeterminism(t *testing.T) {
	cs := []change{{suffix: "attn1.to_q.weight", minDim: 40, signal: sig, floor: 0.02}, {suffix: "in_layers.2.weight", minDim: 10, signal: sig}}
	pr := makePair(t, "sd1", cs, dtype.F16)
	out1, out2 := tmpPath(t, "a.safetensors"), tmpPath(t, "b.safetensors")
	for _, out := range []string{out1, out2} {
		if _, err := Run(context.Background(), Options{Base: pr.base, Tuned: pr.tuned, Output: out, Rank: 8, Workers: 2}, nil); err != nil {
			t.Fatal(err)
		}
	}
	b1, _ := os.ReadFile(out1)
	b2, _ := os.ReadFile(out2)
	n := binary.LittleEndian.Uint64(b1)
	h := sha256.Sum256(b1[8+n:])
	f, err := safetensors.Open(out1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md := f.Metadata
	want := map[string]string{
		"ss_network_module": "networks.lora", "ss_network_dim": "8", "ss_network_alpha": "8.0",
		"ss_base_model_version": "sd_v1", "ss_v2": "False", "modelspec.sai_model_spec": "1.0.1",
		"modelspec.architecture": "stable-diffusion-v1/lora", "modelspec.title": "a",
		"sshs_model_hash": hex.EncodeToString(h[:]), "modelspec.hash_sha256": "0x" + hex.EncodeToString(h[:]),
		"ss_network_args": `{"conv_alpha":"8.0","conv_dim":"8"}`,
	}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, md[k], v)
		}
	}
	if !strings.Contains(md["ss_training_comment"], "extracted by loratool from base.safetensors and tuned.safetensors") {
		t.Errorf("ss_training_comment = %q", md["ss_training_comment"])
	}
	for _, ti := range f.Header.Tensors {
		if ti.DType != dtype.F16 {
			t.Errorf("%s is %v, want F16", ti.Name, ti.DType)
		}
	}
	// identical data (the title differs with the file name, so compare data sections)
	m := binary.LittleEndian.Uint64(b2)
	if !slices.Equal(b1[8+n:], b2[8+m:]) {
		t.Error("two runs wrote different tensor data")
	}
}

func TestErrors(t *testing.T) {
	sd1, _ := arch.ByID("sd1")
	sdxl, _ := arch.ByID("sdxl")
	dir := t.TempDir()
	p1, p2 := dir+"/sd1.safetensors", dir+"/sdxl.safetensors"
	ps1 := arch.CheckpointParams(sd1, arch.Tiny)
	writeCheckpoint(t, p1, ps1, dtype.F16, 1, nil)
	writeCheckpoint(t, p2, arch.CheckpointParams(sdxl, arch.Tiny), dtype.F16, 1, nil)
	// tuned with one tensor of another shape
	bad := slices.Clone(ps1)
	victim := ""
	for i, p := range bad {
		if strings.HasSuffix(p.Name, "attn1.to_q.weight") {
			bad[i].Shape = []int64{p.Shape[0], p.Shape[1] + 1}
			victim = p.Name
			break
		}
	}
	p3 := dir + "/badshape.safetensors"
	writeCheckpoint(t, p3, bad, dtype.F16, 1, nil)
	for _, tc := range []struct {
		name  string
		opt   Options
		want  string
		usage bool
	}{
		{"arch mismatch", Options{Base: p2, Tuned: p1, Rank: 4}, "base is sdxl, tuned is sd1", false},
		{"shape mismatch", Options{Base: p1, Tuned: p3, Rank: 4}, victim, false},
		{"identical", Options{Base: p1, Tuned: p1, Rank: 4}, "no weight differs", false},
		{"no rank", Options{Base: p1, Tuned: p2}, "--rank", true},
		{"bad rule", Options{Base: p1, Tuned: p2, Rule: "sv_fro:2"}, "--rank-rule", true},
		{"bad format", Options{Base: p1, Tuned: p2, Rank: 4, Format: "peft"}, "--to", true},
		{"bad dtype", Options{Base: p1, Tuned: p2, Rank: 4, DType: "int8"}, "--dtype", true},
		{"missing file", Options{Base: dir + "/nope.safetensors", Tuned: p1, Rank: 4}, "nope.safetensors", false},
		{"unknown arch", Options{Base: p1, Tuned: p1, Rank: 4, Arch: "nope"}, "--arch", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Output = dir + "/out.safetensors"
			_, err := Run(context.Background(), tc.opt, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || IsUsage(err) != tc.usage || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v (usage %v), want one line containing %q (usage %v)", err, IsUsage(err), tc.want, tc.usage)
			}
			if _, err := os.Stat(tc.opt.Output); err == nil {
				t.Error("output written despite the error")
			}
		})
	}
	// an existing output is kept without --overwrite
	out := dir + "/exists.safetensors"
	os.WriteFile(out, []byte("x"), 0o644)
	if _, err := Run(context.Background(), Options{Base: p1, Tuned: p1, Output: out, Rank: 4}, nil); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("existing output: %v", err)
	}
}

func TestQuantileAndClamp(t *testing.T) {
	for _, n := range []int{1, 2, 7, 1000, 1 << 16} {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(math.Sin(float64(i)*12.9898) * 43758.5453)
			v[i] -= float32(math.Floor(float64(v[i])))
			if i%7 == 0 {
				v[i] = 0.25 // repeated values
			}
		}
		sorted := slices.Clone(v)
		slices.Sort(sorted)
		for _, q := range []float64{0, 0.5, 0.9, 0.99, 1} {
			pos := q * float64(n-1)
			lo := int(math.Floor(pos))
			want := float64(sorted[lo])
			if lo+1 < n {
				want += (pos - float64(lo)) * (float64(sorted[lo+1]) - float64(sorted[lo]))
			}
			got := quantile(slices.Clone(v), q)
			if math.Abs(float64(got)-want) > 1e-6 {
				t.Errorf("n=%d q=%g: %g, want %g", n, q, got, want)
			}
		}
	}
	up := []float32{-5, 1, 2, 3}
	down := []float32{0.5, -0.5, 4, 10}
	// signed values sorted: -5 -0.5 0.5 1 2 3 4 10; q=0.5 → pos 3.5 → 1.5
	if n := clampFactors(up, down, 0.5); n != 5 || !slices.Equal(up, []float32{-1.5, 1, 1.5, 1.5}) || !slices.Equal(down, []float32{0.5, -0.5, 1.5, 1.5}) {
		t.Errorf("clamp: n=%d up=%v down=%v", n, up, down)
	}
}

func TestClampReport(t *testing.T) {
	cs := []change{{suffix: "attn1.to_q.weight", minDim: 40, signal: sig, floor: 0.02}}
	pr := makePair(t, "sd1", cs, dtype.F32)
	out := tmpPath(t, "lora.safetensors")
	rep, err := Run(context.Background(), Options{Base: pr.base, Tuned: pr.tuned, Output: out, Rank: 4, Clamp: 0.9, DType: "fp32"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Modules[0]
	f, _ := safetensors.Open(out)
	defer f.Close()
	got, _, _, _ := loraDelta(t, f, m.Name, "kohya")
	want := froDiff(got, pr.applied[0].delta) / m.DeltaNorm
	if m.Clamped == 0 || math.Abs(m.ClampErr-want) > 2e-3 || m.ClampErr < m.RelError {
		t.Errorf("clamped %d, reported error %.5g, measured from the file %.5g (unclamped %.5g)", m.Clamped, m.ClampErr, want, m.RelError)
	}
}

func TestCompleteSpectrum(t *testing.T) {
	s := completeSpectrum([]float64{3, 2}, 9+4+3, 5)
	if len(s) != 5 || math.Abs(s[2]-1) > 1e-12 || s[4] != s[2] {
		t.Errorf("got %v", s)
	}
	var e float64
	for _, v := range s {
		e += v * v
	}
	if math.Abs(e-16) > 1e-12 {
		t.Errorf("energy %g", e)
	}

}
