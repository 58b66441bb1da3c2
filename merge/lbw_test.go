package merge

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

// The test's own copy of sd-webui-lora-block-weight's orders
// (scripts/lora_block_weight.py, BLOCKID26/17/12/20 and BLOCKIDFLUX),
// written out independently of package arch.
var (
	refID26 = strings.Split("BASE,IN00,IN01,IN02,IN03,IN04,IN05,IN06,IN07,IN08,IN09,IN10,IN11,M00,OUT00,OUT01,OUT02,OUT03,OUT04,OUT05,OUT06,OUT07,OUT08,OUT09,OUT10,OUT11", ",")
	refID17 = strings.Split("BASE,IN01,IN02,IN04,IN05,IN07,IN08,M00,OUT03,OUT04,OUT05,OUT06,OUT07,OUT08,OUT09,OUT10,OUT11", ",")
	refID12 = strings.Split("BASE,IN04,IN05,IN07,IN08,M00,OUT00,OUT01,OUT02,OUT03,OUT04,OUT05", ",")
	refID20 = strings.Split("BASE,IN00,IN01,IN02,IN03,IN04,IN05,IN06,IN07,IN08,M00,OUT00,OUT01,OUT02,OUT03,OUT04,OUT05,OUT06,OUT07,OUT08", ",")
)

func refFlux61() []string {
	ids := []string{"CLIP", "T5", "IN"}
	for i := 0; i < 19; i++ {
		ids = append(ids, fmt.Sprintf("D%02d", i))
	}
	for i := 0; i < 38; i++ {
		ids = append(ids, fmt.Sprintf("S%02d", i))
	}
	return append(ids, "OUT")
}

var (
	reIn     = regexp.MustCompile(`^input_blocks\.(\d+)\.`)
	reOut    = regexp.MustCompile(`^output_blocks\.(\d+)\.`)
	reDouble = regexp.MustCompile(`^double_blocks\.(\d+)\.`)
	reSingle = regexp.MustCompile(`^single_blocks\.(\d+)\.`)
)

// refBlock is the extension's module → block rule (ratiodealer's BLOCKS
// list for UNets, get_flux_blocks for Flux) on native names; "" = no
// block (ratio 1).
func refBlock(m fixture.Module) string {
	mod := m.Target.Module
	num := func(re *regexp.Regexp, p string) string {
		n, _ := strconv.Atoi(re.FindStringSubmatch(mod)[1])
		return fmt.Sprintf("%s%02d", p, n)
	}
	switch m.Target.Component {
	case arch.DiffusionModel:
	case "clip_l":
		if m.Target.Arch.ID == "flux1" {
			return "CLIP"
		}
		return "BASE"
	case "t5xxl":
		return "T5"
	default:
		return "BASE"
	}
	switch {
	case reIn.MatchString(mod):
		return num(reIn, "IN")
	case reOut.MatchString(mod):
		return num(reOut, "OUT")
	case strings.HasPrefix(mod, "middle_block."):
		return "M00"
	case reDouble.MatchString(mod):
		return num(reDouble, "D")
	case reSingle.MatchString(mod):
		return num(reSingle, "S")
	case strings.HasPrefix(mod, "final_layer"):
		return "OUT"
	case strings.Contains(mod, "_in"):
		return "IN"
	}
	return ""
}

// vectorWeights: the vector's values by the reference order; blocks it
// does not list 0, modules in no block 1.
func vectorWeights(order []string, vals []float64) func(fixture.Module) float64 {
	w := map[string]float64{}
	for i, b := range order {
		w[b] = vals[i]
	}
	return func(m fixture.Module) float64 {
		b := refBlock(m)
		if b == "" {
			return 1
		}
		return w[b]
	}
}

func testVector(n int) ([]float64, string) {
	var vs []float64
	var ss []string
	for i := 0; i < n; i++ {
		// distinct, signed, some zero
		v := float64((i*7)%11-3) * 0.25
		vs = append(vs, v)
		ss = append(ss, strconv.FormatFloat(v, 'g', -1, 64))
	}
	return vs, strings.Join(ss, ",")
}

// TestBlockWeightsAgainstReference merges with lbw= on SD1.5, SDXL and
// Flux.1 and checks every patched value against base + strength·weight·ΔW
// computed in float64, the weight taken from the test's own copy of the
// extension's orders and module rules.
func TestBlockWeightsAgainstReference(t *testing.T) {
	v17, s17 := testVector(17)
	v26, s26 := testVector(26)
	v12, s12 := testVector(12)
	v20, s20 := testVector(20)
	v61, s61 := testVector(61)
	v58, s58 := testVector(58)
	flux58 := func(m fixture.Module) float64 {
		b := refBlock(m)
		switch {
		case b == "":
			return 1
		case b[0] == 'D':
			n, _ := strconv.Atoi(b[1:])
			return v58[1+n]
		case b[0] == 'S':
			n, _ := strconv.Atoi(b[1:])
			return v58[20+n]
		}
		return v58[0]
	}
	named := func(w map[string]float64, glob map[string]float64) func(fixture.Module) float64 {
		return func(m fixture.Module) float64 {
			b := refBlock(m)
			if v, ok := w[b]; ok {
				return v
			}
			for p, v := range glob {
				if strings.HasPrefix(b, p) {
					return v
				}
			}
			return 1
		}
	}
	outall := []float64{1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	fluxDM := []arch.Part{arch.DiT}
	// SDXL: a few modules per block keep the test fast
	few := func(m string) bool {
		return strings.HasSuffix(m, "proj_in") || strings.HasSuffix(m, "attn2.to_k") || strings.HasSuffix(m, "in_layers.2") || strings.Contains(m, "layers.0.")
	}
	for _, tc := range []mergeCase{
		{name: "sd1 17", arch: "sd1", lbw: s17, blockWeight: vectorWeights(refID17, v17), sModel: 0.8, sClip: 0.6, place: sd1Place},
		{name: "sd1 26", arch: "sd1", lbw: s26, blockWeight: vectorWeights(refID26, v26), sModel: 1, sClip: 0.5, place: sd1Place},
		{name: "sd1 named", arch: "sd1", lbw: "IN0*:0.5,MID:2,OUT1?:-1,BASE:0.3", sModel: 0.9, sClip: 1, place: sd1Place,
			blockWeight: named(map[string]float64{"M00": 2, "OUT10": -1, "OUT11": -1, "BASE": 0.3}, map[string]float64{"IN0": 0.5})},
		{name: "sd1 preset OUTD", arch: "sd1", lbw: "OUTD", sModel: 1, sClip: 1, place: sd1Place,
			blockWeight: vectorWeights(refID17, []float64{1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0})},
		{name: "sdxl 12", arch: "sdxl", lbw: s12, blockWeight: vectorWeights(refID12, v12), sModel: 1, sClip: 0.7, place: sdxlPlace, filter: few},
		{name: "sdxl 20", arch: "sdxl", lbw: s20, blockWeight: vectorWeights(refID20, v20), sModel: 0.6, sClip: 1, place: sdxlPlace, filter: few},
		// the extension applies its 17-value presets to SDXL by block name
		{name: "sdxl preset OUTALL", arch: "sdxl", lbw: "OUTALL", blockWeight: vectorWeights(refID17, outall), sModel: 1, sClip: 1, place: sdxlPlace, filter: few},
		{name: "flux 61", arch: "flux1", layout: fixture.LayoutDiffusionModel, parts: fluxDM, lbw: s61, blockWeight: vectorWeights(refFlux61(), v61), sModel: 0.8, sClip: 1, place: bareSlicePlace},
		{name: "flux 58", arch: "flux1", layout: fixture.LayoutDiffusionModel, parts: fluxDM, lbw: s58, blockWeight: flux58, sModel: 1, sClip: 1, place: bareSlicePlace},
		{name: "flux diffusers named", arch: "flux1", layout: fixture.LayoutDiffusionModel, parts: fluxDM, format: "diffusers", lbw: "D0*:0.5,S3?:2,IN:0", sModel: 1, sClip: 1, place: bareSlicePlace,
			blockWeight: named(map[string]float64{"IN": 0}, map[string]float64{"D0": 0.5, "S3": 2})},
	} {
		if tc.format == "" {
			tc.format = "kohya"
			tc.alpha = 2
		}
		tc.base, tc.loraDT, tc.rank, tc.tol = dtype.F32, dtype.F32, 4, 1e-5
		t.Run(tc.name, func(t *testing.T) { runMergeCase(t, tc) })
	}
}

// TestLoRAMergeBlockWeights: LoRA+LoRA (exact) with a different lbw= per
// input; every output module's up@down equals Σ strength·weight·ΔW.
func TestLoRAMergeBlockWeights(t *testing.T) {
	dir := t.TempDir()
	lp := filepath.Join(dir, "a.safetensors")
	mods, err := fixture.WriteLoRA(lp, fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Rank: 2, Alpha: 1, DType: dtype.F32, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	v17, s17 := testVector(17)
	in1, err := ParseInput(lp+":0.7:0.4:lbw="+s17, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	in2, err := ParseInput(lp+":0.5:lbw=OUT*:2,BASE:0", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "m.safetensors")
	if _, err := MergeLoRAs([]Input{in1, in2}, out, LoRAMergeOptions{DType: "fp32"}); err != nil {
		t.Fatal(err)
	}
	w1 := vectorWeights(refID17, v17)
	w2 := func(m fixture.Module) float64 {
		switch b := refBlock(m); {
		case strings.HasPrefix(b, "OUT"):
			return 2
		case b == "BASE":
			return 0
		}
		return 1
	}
	lf, _ := safetensors.Open(lp)
	defer lf.Close()
	mf, _ := safetensors.Open(out)
	defer mf.Close()
	checked := 0
	for _, m := range mods {
		s1, s2 := 0.7, 0.5
		if m.Target.Component != arch.DiffusionModel {
			s1, s2 = 0.4, 0.5
		}
		c := s1*w1(m) + s2*w2(m)
		d, rows, cols := loraDelta(t, lf, m)
		_, hasUp := mf.Lookup(m.Prefix + ".lora_up.weight")
		if c == 0 {
			if hasUp {
				t.Errorf("%s: weight 0 but written", m.Prefix)
			}
			continue
		}
		if !hasUp {
			t.Errorf("%s: missing from the merged LoRA", m.Prefix)
			continue
		}
		got, _, _ := loraDelta(t, mf, fixtureModule(m.Prefix+".lora_up.weight", m.Prefix+".lora_down.weight"))
		var num, den float64
		for i := 0; i < rows*cols; i++ {
			// merged alpha = rank: scale 1
			want := c * d[i]
			num += (got[i] - want) * (got[i] - want)
			den += want * want
		}
		if rel := math.Sqrt(num / den); rel > 1e-5 {
			t.Errorf("%s: merged delta off by %.3g (want %g·ΔW)", m.Prefix, rel, c)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("nothing checked")
	}
}

func TestParseBlockWeights(t *testing.T) {
	sd1, _ := arch.ByID("sd1")
	sdxl, _ := arch.ByID("sdxl")
	flux, _ := arch.ByID("flux1")
	wan, _ := arch.ByID("wan")
	mod := func(a *arch.Arch, comp, module string) arch.Target {
		return arch.Target{Arch: a, Component: comp, Module: module}
	}
	dm := arch.DiffusionModel
	type probe struct {
		t     arch.Target
		block string
		w     float64
	}
	ones := strings.TrimSuffix(strings.Repeat("1,", 17), ",")
	for _, tc := range []struct {
		spec    string
		a       *arch.Arch
		presets map[string]string
		probes  []probe
	}{
		{"1,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,0.5", sd1, nil, []probe{
			{mod(sd1, dm, "input_blocks.4.1.proj_in"), "IN04", 0},
			{mod(sd1, dm, "input_blocks.3.0.op"), "IN03", 0}, // not in the 17: 0
			{mod(sd1, dm, "output_blocks.11.1.proj_out"), "OUT11", 0.5},
			{mod(sd1, dm, "output_blocks.0.0.in_layers.2"), "OUT00", 0},
			{mod(sd1, dm, "time_embed.0"), "", 1}, // in no block: 1
			{mod(sd1, "clip_l", "text_model.encoder.layers.0.mlp.fc1"), "BASE", 1},
		}},
		{" 0.5 , 2 ,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,-1", sd1, nil, []probe{
			{mod(sd1, dm, "input_blocks.0.0"), "IN00", 2},
			{mod(sd1, "clip_l", "x"), "BASE", 0.5},
			{mod(sd1, dm, "output_blocks.11.0.skip_connection"), "OUT11", -1},
		}},
		{"IN04:0,MID:1.5,OUT*:0.5", sd1, nil, []probe{
			{mod(sd1, dm, "input_blocks.4.1.proj_in"), "IN04", 0},
			{mod(sd1, dm, "input_blocks.5.1.proj_in"), "IN05", 1}, // unnamed: 1
			{mod(sd1, dm, "middle_block.1.proj_in"), "M00", 1.5},
			{mod(sd1, dm, "output_blocks.3.1.proj_in"), "OUT03", 0.5},
		}},
		{"m00:3,base:0", sdxl, nil, []probe{
			{mod(sdxl, dm, "middle_block.1.proj_in"), "M00", 3},
			{mod(sdxl, "clip_g", "x"), "BASE", 0},
		}},
		{"ALL0.5", sd1, nil, []probe{{mod(sd1, dm, "input_blocks.1.1.proj_in"), "IN01", 0.5}, {mod(sd1, dm, "input_blocks.0.0"), "IN00", 0}}},
		{"outall", sd1, nil, []probe{{mod(sd1, dm, "output_blocks.3.1.proj_in"), "OUT03", 1}, {mod(sd1, dm, "input_blocks.1.1.proj_in"), "IN01", 0}}},
		{"NONE", sdxl, nil, []probe{{mod(sdxl, dm, "output_blocks.3.1.proj_in"), "OUT03", 0}, {mod(sdxl, dm, "label_emb.0.0"), "", 1}}},
		{"1,1,1,1,1,0,0,0,0,0,0,0", sdxl, nil, []probe{{mod(sdxl, dm, "input_blocks.8.1.proj_in"), "IN08", 1}, {mod(sdxl, dm, "input_blocks.1.0.in_layers.2"), "IN01", 0}, {mod(sdxl, dm, "output_blocks.0.1.proj_in"), "OUT00", 0}}},
		{"FLUXALL", flux, nil, []probe{{mod(flux, dm, "single_blocks.37.linear2"), "S37", 1}}},
		{"BASE:0,D1?:0.5", flux, nil, []probe{
			{mod(flux, "t5xxl", "x"), "T5", 0}, {mod(flux, "clip_l", "x"), "CLIP", 0},
			{mod(flux, dm, "double_blocks.12.img_mlp.0"), "D12", 0.5}, {mod(flux, dm, "double_blocks.2.img_mlp.0"), "D02", 1},
			{mod(flux, dm, "txt_in"), "IN", 1},
		}},
		{"MINE", sd1, map[string]string{"MINE": "0," + strings.TrimSuffix(strings.Repeat("2,", 16), ",")}, []probe{{mod(sd1, dm, "middle_block.0.in_layers.2"), "M00", 2}, {mod(sd1, "clip_l", "x"), "BASE", 0}}},
		// a user preset shadows a built-in one
		{"ALL", sd1, map[string]string{"ALL": "0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1"}, []probe{{mod(sd1, "clip_l", "x"), "BASE", 0}}},
		{"L*:0.5,OUT:2", wan, nil, []probe{{mod(wan, dm, "blocks.39.ffn.2"), "L39", 0.5}, {mod(wan, dm, "head.head"), "OUT", 2}, {mod(wan, "umt5xxl", "x"), "BASE", 1}}},
		{ones, sd1, nil, nil},
	} {
		bw, err := ParseBlockWeights(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		bw.Presets = tc.presets
		if err := bw.Resolve(tc.a); err != nil {
			t.Errorf("%q on %s: %v", tc.spec, tc.a.ID, err)
			continue
		}
		for _, p := range tc.probes {
			b, w := bw.Of(p.t)
			if b != p.block || w != p.w {
				t.Errorf("%q on %s: %s = %s %g, want %s %g", tc.spec, tc.a.ID, p.t.Module, b, w, p.block, p.w)
			}
		}
	}
	// no spec: multiplier 1
	var none *BlockWeights
	if b, w := none.Of(mod(sd1, dm, "input_blocks.4.1.proj_in")); b != "" || w != 1 {
		t.Errorf("nil spec: %s %g", b, w)
	}
}

func TestBlockWeightErrors(t *testing.T) {
	sd1, _ := arch.ByID("sd1")
	sdxl, _ := arch.ByID("sdxl")
	flux, _ := arch.ByID("flux1")
	v := func(n int) string { _, s := testVector(n); return s }
	for _, tc := range []struct {
		spec  string
		a     *arch.Arch // nil: a syntax error
		want  string
		usage bool
	}{
		{"", nil, "lbw= is empty", false},
		{"1,x,0", nil, `value 2: "x" is not a number`, false},
		{"1,R,0", nil, "random and A/B values are not supported", false},
		{"1,X+0.5,0", nil, "inherited (X) values are not supported", false},
		{"1,NaN,0", nil, `"NaN" is not a number`, false},
		{"IN04=0", nil, "no preset", true}, // no ':' or ',': a preset name
		{"IN04:", nil, `block IN04: "" is not a number`, false},
		{":1", nil, `":1" is not BLOCK:WEIGHT`, false},
		{"IN04:1,OUT", nil, `"OUT" is not BLOCK:WEIGHT`, false},
		{v(12), sd1, `has 12 values; sd1 takes 17 (sd-webui-lora-block-weight 17: BASE,IN01,IN02,IN04,IN05,IN07,IN08,M00,OUT03–OUT11) or 26 (sd-webui-lora-block-weight 26: BASE,IN00–IN11,M00,OUT00–OUT11)`, true},
		{v(17), sdxl, `has 17 values; sdxl takes 12 (sd-webui-lora-block-weight 12: BASE,IN04,IN05,IN07,IN08,M00,OUT00–OUT05) or 20 (sd-webui-lora-block-weight 20: BASE,IN00–IN08,M00,OUT00–OUT08)`, true},
		{v(26), flux, `has 26 values; flux1 takes 61 (sd-webui-lora-block-weight 61 (Flux): CLIP,T5,IN,D00–D18,S00–S37,OUT) or 58 (Inspire Pack 58 (Flux): CLIP+T5+IN+OUT,D00–D18,S00–S37)`, true},
		{"1", sd1, `has 1 values; sd1 takes 17`, true},
		{"OUTD", flux, `lbw preset OUTD has 17 values; flux1 takes 61`, true},
		{"NOPE", sd1, `no preset "NOPE" (built-in: ALL, ALL0.5, FLUXALL, INALL, IND, INS, MIDD, NONE, OUTALL, OUTD, OUTS;`, true},
		{"D00:1", sd1, "D00 names no block of sd1 (blocks: BASE,IN00–IN11,M00,OUT00–OUT11,MID)", true},
		{"IN0[:1", sd1, `bad pattern "IN0["`, true},
	} {
		bw, err := ParseBlockWeights(tc.spec)
		if tc.a == nil && !tc.usage {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: error %v, want %q", tc.spec, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: syntax error %v", tc.spec, err)
			continue
		}
		a := tc.a
		if a == nil {
			a = sd1
		}
		err = bw.Resolve(a)
		var ue *UsageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !asUsage(err, &ue) {
			t.Errorf("%q on %s: error %v, want usage error %q", tc.spec, a.ID, err, tc.want)
		}
	}
}

func asUsage(err error, ue **UsageError) bool {
	u, ok := err.(*UsageError)
	*ue = u
	return ok
}

func TestParseInputLBW(t *testing.T) {
	for _, tc := range []struct {
		in, path, spec string
		sm, sc         float64
	}{
		{"a.safetensors:lbw=OUTD", "a.safetensors", "OUTD", 1, 0.5},
		{"a.safetensors:0.8:lbw=1,0,1", "a.safetensors", "1,0,1", 0.8, 0.8},
		{"a.safetensors:0.8:0.3:lbw=IN04:0,MID:1,OUT*:0.5", "a.safetensors", "IN04:0,MID:1,OUT*:0.5", 0.8, 0.3},
		{"C:/loras/x.safetensors:-1:lbw=ALL", "C:/loras/x.safetensors", "ALL", -1, -1},
	} {
		got, err := ParseInput(tc.in, 1, 0.5)
		if err != nil || got.Path != tc.path || got.StrengthModel != tc.sm || got.StrengthClip != tc.sc || got.LBW == nil || got.LBW.Spec != tc.spec {
			t.Errorf("ParseInput(%q) = %+v %+v, %v", tc.in, got, got.LBW, err)
		}
	}
	if _, err := ParseInput("a.safetensors:lbw=1,zz", 1, 1); err == nil || !strings.Contains(err.Error(), `--lora "a.safetensors:lbw=1,zz": lbw "1,zz": value 2`) {
		t.Errorf("bad lbw: %v", err)
	}
}

func TestLoadPresets(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "lbwpresets.txt")
	os.WriteFile(good, []byte("\ufeffNONE:0,0\n# comment\n\n@SD-FULL-TEST:17\nMY FACE: 1,0,1 \nSD-ROUT:1,R\n"), 0o644)
	p, err := LoadPresets(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 3 || p["MY FACE"] != "1,0,1" || p["NONE"] != "0,0" {
		t.Errorf("presets %v", p)
	}
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("A:1\nno colon here\n"), 0o644)
	if _, err := LoadPresets(bad); err == nil || !strings.Contains(err.Error(), "bad.txt:2: not a preset line") {
		t.Errorf("bad file: %v", err)
	}
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, []byte("# nothing\n"), 0o644)
	if _, err := LoadPresets(empty); err == nil {
		t.Error("empty preset file accepted")
	}
	if _, err := LoadPresets(filepath.Join(dir, "missing.txt")); err == nil {
		t.Error("missing file accepted")
	}
	// a preset with random values fails when used, naming it
	bw, _ := ParseBlockWeights("SD-ROUT")
	bw.Presets = p
	sd1, _ := arch.ByID("sd1")
	if err := bw.Resolve(sd1); err == nil || !strings.Contains(err.Error(), "lbw preset SD-ROUT: value 2") {
		t.Errorf("random preset: %v", err)
	}
}

// FuzzBlockWeights: any --lora value parses or fails with an error, and a
// parsed spec resolves or fails on every architecture, never panicking;
// resolved weights are finite.
func FuzzBlockWeights(f *testing.F) {
	for _, s := range []string{"a:lbw=OUTD", "a:0.5:lbw=IN0*:0,MID:1", "a:lbw=1,0,0", "a:lbw=[", "a:lbw=:", "a:lbw=,", "a:1:2:lbw=BASE:0,D?:1e308"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, err := ParseInput(s, 1, 1)
		if err != nil || in.LBW == nil {
			return
		}
		for _, a := range arch.All() {
			if in.LBW.Resolve(a) != nil {
				continue
			}
			for b, w := range in.LBW.weights {
				if math.IsNaN(w) || math.IsInf(w, 0) || a.Blocks().Index(b) < 0 {
					t.Fatalf("%q on %s: block %s weight %g", s, a.ID, b, w)
				}
			}
		}
	})
}
