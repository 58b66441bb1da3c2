package arch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// widthKey is where each architecture's checkpoints show the hidden width
// (the tensor and dimension ComfyUI's model detection reads).
var widthKey = map[string]struct {
	name string
	dim  int
}{
	"sd3":           {"x_embedder.proj.weight", 0},
	"flux1":         {"img_in.weight", 0},
	"flux2":         {"img_in.weight", 0},
	"wan":           {"head.modulation", 2},
	"hunyuan-video": {"img_in.proj.weight", 0},
	"qwen-image":    {"img_in.weight", 0},
	"sdxl":          {"input_blocks.0.0.weight", 0},
	"sdxl-refiner":  {"input_blocks.0.0.weight", 0},
}

func TestVariantTables(t *testing.T) {
	ids := sortedVariantIDs()
	for _, want := range []string{"sd3", "flux1", "flux2", "wan", "hunyuan-video", "qwen-image", "sdxl", "sdxl-refiner"} {
		if !strings.Contains(" "+strings.Join(ids, " ")+" ", " "+want+" ") {
			t.Errorf("%s declares no variants", want)
		}
	}
	for _, id := range ids {
		a, ok := ByID(id)
		if !ok {
			t.Fatalf("variants for unregistered %s", id)
		}
		wk, ok := widthKey[id]
		if !ok {
			t.Fatalf("%s: no width key in the test", id)
		}
		seen := map[string]bool{}
		full := ParamsView(a.Params(Full))
		for i, v := range a.Variants() {
			adds := false
			for _, p := range v.Params() {
				adds = adds || !full.Has(p.Name)
			}
			if adds != v.Adds {
				t.Errorf("%s %s: Adds is %v, but the table has parameters Full lacks: %v", id, v.Name, v.Adds, adds)
			}
			if v.Name == "" || v.Source == "" || v.Depth == "" || seen[v.Name] {
				t.Errorf("%s variant %d: name %q source %q depth %q", id, i, v.Name, v.Source, v.Depth)
			}
			seen[v.Name] = true
			view := ParamsView(v.Params())
			if s := view.Shape(wk.name); len(s) <= wk.dim || s[wk.dim] != v.Width {
				t.Errorf("%s %s: declared width %d, table's %s is %v", id, v.Name, v.Width, wk.name, s)
			}
			// the registry's own detection accepts the variant's table
			if ok, ev := a.Detect(view); !ok {
				t.Errorf("%s %s: Detect rejects the variant's own table (%s)", id, v.Name, ev)
			}
			// checkpoint detection names this variant or one with the very
			// same table
			got, ok := a.DetectVariant(view)
			if !ok {
				t.Errorf("%s %s: no variant detected", id, v.Name)
				continue
			}
			if got != i && !sameTable(v.Params(), a.Variants()[got].Params()) {
				t.Errorf("%s %s: detected as %s", id, v.Name, a.Variants()[got].Name)
			}
		}
	}
}

func sameTable(a, b []Param) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string][]int64{}
	for _, p := range a {
		m[p.Name] = p.Shape
	}
	for _, p := range b {
		if !sameShape(m[p.Name], p.Shape) {
			return false
		}
	}
	return true
}

// The widths and depths the issue tracker's real files need, spelled out.
func TestVariantWidths(t *testing.T) {
	for _, tc := range []struct {
		id, name string
		width    int64
		blocks   string // a prefix and the block count expected under it
		n        int
	}{
		{"sd3", "SD3 Medium", 1536, "joint_blocks.", 24},
		{"sd3", "SD3.5 Medium", 1536, "joint_blocks.", 24},
		{"sd3", "SD3.5 Large", 2432, "joint_blocks.", 38},
		{"flux2", "FLUX.2 dev", 6144, "single_blocks.", 48},
		{"flux2", "FLUX.2 klein 9B", 4096, "single_blocks.", 24},
		{"flux2", "FLUX.2 klein 4B", 3072, "double_blocks.", 5},
		{"wan", "Wan 2.1 T2V 1.3B", 1536, "blocks.", 30},
		{"wan", "Wan 2.1 T2V 14B", 5120, "blocks.", 40},
		{"wan", "Wan 2.2 TI2V 5B", 3072, "blocks.", 30},
		{"hunyuan-video", "HunyuanVideo 1.0 T2V", 3072, "single_blocks.", 40},
		{"hunyuan-video", "HunyuanVideo 1.5", 2048, "double_blocks.", 54},
		{"qwen-image", "Qwen-Image", 3072, "transformer_blocks.", 60},
	} {
		a, _ := ByID(tc.id)
		i, ok := a.VariantIndex(tc.name)
		if !ok {
			t.Errorf("%s: no variant %q", tc.id, tc.name)
			continue
		}
		v := a.Variants()[i]
		if v.Width != tc.width {
			t.Errorf("%s: width %d, want %d", tc.name, v.Width, tc.width)
		}
		if n := ParamsView(v.Params()).Count(tc.blocks); n != tc.n {
			t.Errorf("%s: %d %s, want %d", tc.name, n, tc.blocks, tc.n)
		}
	}
	// variant-only modules
	a, _ := ByID("sd3")
	i, _ := a.VariantIndex("SD3.5 Medium")
	v := ParamsView(a.Variants()[i].Params())
	for b := 0; b < 24; b++ {
		has := v.Has("joint_blocks." + itoa(int64(b)) + ".x_block.attn2.qkv.weight")
		if has != (b <= 12) {
			t.Errorf("SD3.5 Medium block %d: attn2 %v", b, has)
		}
	}
	w, _ := ByID("wan")
	for _, name := range []string{"Wan 2.1 I2V 14B", "Wan 2.1 T2V 14B", "Wan 2.2 I2V A14B (high/low noise)"} {
		i, _ := w.VariantIndex(name)
		has := ParamsView(w.Variants()[i].Params()).Has("blocks.0.cross_attn.k_img.weight")
		if has != (name == "Wan 2.1 I2V 14B") {
			t.Errorf("%s: k_img %v", name, has)
		}
	}
}

// docs/formats.md lists every declared variant with its width.
func TestFormatsDocListsVariants(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "formats.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) > 4 {
			rows[strings.Trim(strings.TrimSpace(cells[1]), "`")+"/"+strings.TrimSpace(cells[2])] = strings.TrimSpace(cells[3])
		}
	}
	for _, id := range sortedVariantIDs() {
		a, _ := ByID(id)
		for _, v := range a.Variants() {
			w, ok := rows[id+"/"+v.Name]
			if !ok {
				t.Errorf("docs/formats.md has no row for %s %s", id, v.Name)
				continue
			}
			if w != itoa(v.Width) {
				t.Errorf("docs/formats.md: %s %s width %s, registry %d", id, v.Name, w, v.Width)
			}
		}
	}
}
