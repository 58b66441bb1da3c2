package arch

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// Shared test machinery for hunyuan-video, wan, qwen-image, hidream, z-image,
// lumina2 and ltxv (suffix B).

// viewB is the registry's MapView (name → shape).
type viewB = MapView

// edited returns a copy of v with shapes replaced or added (nil deletes);
// the tests of every architecture use it.
func (v MapView) edited(edits map[string][]int64) MapView {
	out := MapView{}
	for k, s := range v {
		out[k] = s
	}
	for k, s := range edits {
		if s == nil {
			delete(out, k)
		} else {
			out[k] = s
		}
	}
	return out
}

// moduleB is what a module name resolves to in the test's own lookup.
type moduleB struct {
	target     string
	rows, cols int64
}

// lookupB indexes an architecture's native modules and aliases, dotted and
// flattened ("." → "_"), independently of the package's resolver.
type lookupB struct {
	dotted, flat map[string]moduleB
}

func newLookupB(a *Arch) lookupB {
	ps := a.Params(Full)
	mods := map[string]moduleB{}
	for _, p := range ps {
		mod, suffix, ok := ModuleOf(p.Name)
		if !ok {
			mod = p.Name
		}
		if _, have := mods[mod]; have && suffix == "bias" {
			continue
		}
		m := moduleB{target: mod, rows: 1, cols: 1}
		if len(p.Shape) > 0 {
			m.rows = p.Shape[0]
			for _, d := range p.Shape[1:] {
				m.cols *= d
			}
		}
		mods[mod] = m
	}
	l := lookupB{dotted: map[string]moduleB{}, flat: map[string]moduleB{}}
	for k, m := range mods {
		l.dotted[k] = m
		l.flat[strings.ReplaceAll(k, ".", "_")] = m
	}
	if a.Aliases != nil {
		for _, al := range a.Aliases() {
			m, ok := mods[al.Target]
			if !ok {
				continue
			}
			if al.Slice != nil {
				m.rows = al.Slice.Size
			}
			l.dotted[al.Name] = m
			l.flat[strings.ReplaceAll(al.Name, ".", "_")] = m
		}
	}
	return l
}

var loraSuffixB = regexp.MustCompile(`\.(lora_[AB](\.default)?\.weight|lora_(down|up)\.weight|alpha|diff|diff_b|dora_scale|lokr_\w+)$`)

// splitLoRAKeyB strips a LoRA tensor name to its module and reports the
// adapter role ("up", "down", other) and whether the module is flattened.
func splitLoRAKeyB(key string) (module, role string, flat bool) {
	suffix := loraSuffixB.FindString(key)
	module = strings.TrimSuffix(key, suffix)
	switch {
	case strings.HasPrefix(suffix, ".lora_B"), suffix == ".lora_up.weight":
		role = "up"
	case strings.HasPrefix(suffix, ".lora_A"), suffix == ".lora_down.weight":
		role = "down"
	}
	for _, p := range []string{"lora_unet_", "lycoris_"} {
		if rest, ok := strings.CutPrefix(module, p); ok {
			return rest, role, true
		}
	}
	for _, p := range []string{"diffusion_model.", "transformer."} {
		if rest, ok := strings.CutPrefix(module, p); ok {
			return rest, role, false
		}
	}
	return module, role, false
}

func (l lookupB) find(module string, flat bool) (moduleB, bool) {
	if flat {
		m, ok := l.flat[module]
		return m, ok
	}
	m, ok := l.dotted[module]
	return m, ok
}

type listingB struct {
	Keys   []string           `json:"keys"`
	Shapes map[string][]int64 `json:"shapes"`
}

func loadListingB(t *testing.T, rel string) (listingB, bool) {
	t.Helper()
	p := filepath.Join("..", "..", "shared", rel)
	b, err := os.ReadFile(p)
	if err != nil {
		return listingB{}, false
	}
	var l listingB
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return l, true
}

// variantB is one detection case built by editing the Full view.
type variantB struct {
	name     string
	edits    map[string][]int64
	ok       bool
	evidence []string
}

// archCaseB is one row of an architecture's table test.
type archCaseB struct {
	id, name string
	priority int
	tensors  int                // Full parameter tensors
	shapes   map[string][]int64 // exact Full shapes of key parameters
	// published total (elements) of Full, and optionally of the subset
	// kept by subset (e.g. Wan T2V without the I2V extras), within tol.
	published, subsetPublished float64
	subset                     func(name string) bool
	tol                        float64
	aliases                    map[string]Alias // spot checks: foreign name → expected alias
	noAliases                  []string         // foreign names that must not resolve
	evidence, tinyEvidence     []string         // substrings of Detect's evidence
	variants                   []variantB
	encoders                   []string // Comfy names of the encoders, in order
	listings                   []string // real corpus listings: names and shapes
	samples                    []string // hand-written samples: names only
	rejects                    []string // listings none of whose modules may resolve
	modelSpec, kohyaVersion    string
	vae                        bool
}

func runArchB(t *testing.T, c archCaseB) {
	t.Helper()
	a, ok := ByID(c.id)
	if !ok {
		t.Fatalf("%s not registered", c.id)
	}
	full, tiny := a.Params(Full), a.Params(Tiny)

	t.Run("fields", func(t *testing.T) {
		if a.Name != c.name || a.Part != DiT || a.Priority != c.priority {
			t.Errorf("Name/Part/Priority = %q/%s/%d, want %q/dit/%d", a.Name, a.Part, a.Priority, c.name, c.priority)
		}
		if a.DiffusionPrefix != "model.diffusion_model." || a.VAEPrefix != "vae." {
			t.Errorf("prefixes %q %q", a.DiffusionPrefix, a.VAEPrefix)
		}
		if !reflect.DeepEqual(a.DiffusersPrefixes, []string{"transformer."}) {
			t.Errorf("DiffusersPrefixes = %v", a.DiffusersPrefixes)
		}
		if a.ModelSpec != c.modelSpec || a.KohyaVersion != c.kohyaVersion {
			t.Errorf("ModelSpec/KohyaVersion = %q/%q, want %q/%q", a.ModelSpec, a.KohyaVersion, c.modelSpec, c.kohyaVersion)
		}
		var encs []string
		for _, e := range a.Encoders {
			encs = append(encs, e.Comfy)
			if e.CheckpointPrefix != "text_encoders."+e.Comfy+".transformer." {
				t.Errorf("encoder %s: CheckpointPrefix %q", e.Comfy, e.CheckpointPrefix)
			}
			if (e.Part == LLM || e.Comfy == "umt5xxl") != (e.Model == nil) {
				t.Errorf("encoder %s: Model set = %v", e.Comfy, e.Model != nil)
			}
			// an encoder without a table accepts any name after its prefix,
			// so only the unambiguous text_encoders.<name>. form may reach it
			if e.Model == nil && (len(e.Kohya) > 0 || len(e.Diffusers) > 0) {
				t.Errorf("encoder %s has no table but prefixes %v %v", e.Comfy, e.Kohya, e.Diffusers)
			}
		}
		if !reflect.DeepEqual(encs, c.encoders) {
			t.Errorf("encoders %v, want %v", encs, c.encoders)
		}
		if (a.VAE != nil) != c.vae {
			t.Errorf("VAE set = %v, want %v", a.VAE != nil, c.vae)
		}
		if a.VAE != nil && len(a.VAE(Full)) != len(VAEParams(Full, 16, false)) {
			t.Errorf("VAE is not the 16-channel LDM VAE")
		}
	})

	t.Run("params", func(t *testing.T) {
		if len(full) != c.tensors {
			t.Errorf("%d tensors, want %d", len(full), c.tensors)
		}
		v := ParamsView(full)
		if len(v) != len(full) {
			t.Errorf("duplicate parameter names")
		}
		for n, want := range c.shapes {
			if got, ok := v[n]; !ok {
				t.Errorf("%s missing", n)
			} else if !reflect.DeepEqual(got, want) {
				t.Errorf("%s = %v, want %v", n, got, want)
			}
		}
		total := float64(NumParams(full))
		if d := math.Abs(total/c.published - 1); d > c.tol {
			t.Errorf("Full has %.4gB parameters, published %.4gB (off by %.1f%%)", total/1e9, c.published/1e9, 100*d)
		}
		if c.subset != nil {
			var ps []Param
			for _, p := range full {
				if c.subset(p.Name) {
					ps = append(ps, p)
				}
			}
			sub := float64(NumParams(ps))
			if d := math.Abs(sub/c.subsetPublished - 1); d > c.tol {
				t.Errorf("subset has %.4gB parameters, published %.4gB (off by %.1f%%)", sub/1e9, c.subsetPublished/1e9, 100*d)
			}
		}
	})

	t.Run("tiny", func(t *testing.T) {
		if len(tiny) != len(full) {
			t.Fatalf("Tiny has %d tensors, Full %d", len(tiny), len(full))
		}
		tv := ParamsView(tiny)
		for _, p := range full {
			s, ok := tv[p.Name]
			if !ok {
				t.Errorf("Tiny lacks %s", p.Name)
			} else if len(s) != len(p.Shape) {
				t.Errorf("%s: Tiny rank %d, Full %d", p.Name, len(s), len(p.Shape))
			}
		}
		if n := NumParams(tiny); n > 4_000_000 {
			t.Errorf("Tiny has %d elements", n)
		}
	})

	t.Run("aliases", func(t *testing.T) {
		fv, tv := ParamsView(full), ParamsView(tiny)
		native := map[string]bool{}
		for _, p := range full {
			mod, _, ok := ModuleOf(p.Name)
			if !ok {
				mod = p.Name
			}
			native[mod] = true
		}
		seen := map[string]Alias{}
		var as []Alias
		if a.Aliases != nil {
			as = a.Aliases()
		}
		for _, al := range as {
			if !native[al.Target] {
				t.Errorf("alias %s → %s: no such module", al.Name, al.Target)
				continue
			}
			if native[al.Name] {
				t.Errorf("alias %s shadows a native module", al.Name)
			}
			if prev, dup := seen[al.Name]; dup && !reflect.DeepEqual(prev, al) {
				t.Errorf("alias %s defined twice differently", al.Name)
			}
			seen[al.Name] = al
			if al.Slice == nil {
				continue
			}
			w, tw := fv[al.Target+".weight"], tv[al.Target+".weight"]
			if w == nil || tw == nil {
				t.Errorf("sliced alias %s: %s has no weight", al.Name, al.Target)
				continue
			}
			rows, trows := w[0], tw[0]
			if s := al.Slice; s.Size <= 0 || s.Offset < 0 || s.Offset+s.Size > rows {
				t.Errorf("alias %s: slice %+v outside %d rows", al.Name, *s, rows)
			} else if (s.Offset*trows)%rows != 0 || (s.Size*trows)%rows != 0 {
				t.Errorf("alias %s: slice %+v does not scale onto Tiny's %d rows", al.Name, *s, trows)
			}
		}
		for name, want := range c.aliases {
			got, ok := seen[name]
			want.Name = name
			if !ok {
				t.Errorf("alias %s missing", name)
			} else if !reflect.DeepEqual(got, want) {
				t.Errorf("alias %s = %+v (slice %v), want %+v (slice %v)", name, got, got.Slice, want, want.Slice)
			}
		}
		l := newLookupB(a)
		for _, name := range c.noAliases {
			if _, ok := l.find(name, false); ok {
				t.Errorf("%s resolves, must not", name)
			}
		}
	})

	t.Run("detect", func(t *testing.T) {
		for _, s := range []struct {
			size string
			ps   []Param
			want []string
		}{{"Full", full, c.evidence}, {"Tiny", tiny, c.tinyEvidence}} {
			ok, ev := a.Detect(ParamsView(s.ps))
			if !ok {
				t.Errorf("%s: own %s params not detected", c.id, s.size)
				continue
			}
			for _, w := range s.want {
				if !strings.Contains(ev, w) {
					t.Errorf("%s evidence %q lacks %q", s.size, ev, w)
				}
			}
		}
		for _, vc := range c.variants {
			ok, ev := a.Detect(ParamsView(full).edited(vc.edits))
			if ok != vc.ok {
				t.Errorf("variant %s: detected %v, want %v (%s)", vc.name, ok, vc.ok, ev)
			}
			for _, w := range vc.evidence {
				if !strings.Contains(ev, w) {
					t.Errorf("variant %s: evidence %q lacks %q", vc.name, ev, w)
				}
			}
		}
		for _, o := range All() {
			if o == a || o.Params == nil {
				continue
			}
			for _, s := range []Size{Full, Tiny} {
				if ok, ev := a.Detect(ParamsView(o.Params(s))); ok {
					t.Errorf("detects %s (size %d) as %s: %s", o.ID, s, c.id, ev)
				}
			}
		}
	})

	t.Run("corpus", func(t *testing.T) {
		l := newLookupB(a)
		check := func(rel string, shapes bool) {
			lst, ok := loadListingB(t, rel)
			if !ok {
				t.Skipf("%s not available", rel)
			}
			for _, k := range lst.Keys {
				mod, role, flat := splitLoRAKeyB(k)
				m, ok := l.find(mod, flat)
				if !ok {
					t.Errorf("%s: module %q of %s not found", rel, mod, k)
					continue
				}
				s, has := lst.Shapes[k]
				if !shapes || !has || len(s) < 2 {
					continue
				}
				switch role {
				case "up":
					if s[0] != m.rows {
						t.Errorf("%s: %s has %d rows, %s wants %d", rel, k, s[0], m.target, m.rows)
					}
				case "down":
					cols := int64(1)
					for _, d := range s[1:] {
						cols *= d
					}
					if cols != m.cols {
						t.Errorf("%s: %s has %d columns, %s wants %d", rel, k, cols, m.target, m.cols)
					}
				}
			}
		}
		for _, rel := range c.listings {
			check(rel, true)
		}
		for _, rel := range c.samples {
			check(rel, false)
		}
		for _, rel := range c.rejects {
			lst, ok := loadListingB(t, rel)
			if !ok {
				t.Skipf("%s not available", rel)
			}
			for _, k := range lst.Keys {
				if mod, _, flat := splitLoRAKeyB(k); func() bool { _, ok := l.find(mod, flat); return ok }() {
					t.Errorf("%s: %s resolves for %s, must not", rel, k, c.id)
				}
			}
		}
	})
}

// sliceB builds an expected sliced alias.
func sliceB(target string, offset, size int64) Alias {
	return Alias{Target: target, Slice: &Slice{Offset: offset, Size: size}}
}
