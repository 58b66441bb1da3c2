package merge

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/internal/cliutil"
)

// UsageError is a mistake in the command line found only once the files
// are open (an lbw= vector of the wrong length for the architecture, an
// unknown preset or block name): the command exits with status 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// lbwPresets are sd-webui-lora-block-weight's standard presets
// (DEF_WEIGHT_PRESET in scripts/lora_block_weight.py): 17-value SD1.x
// vectors, plus FLUXALL for Flux.1.
var lbwPresets = map[string]string{
	"NONE":    "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0",
	"ALL":     "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
	"INS":     "1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0",
	"IND":     "1,0,0,0,1,1,1,0,0,0,0,0,0,0,0,0,0",
	"INALL":   "1,1,1,1,1,1,1,0,0,0,0,0,0,0,0,0,0",
	"MIDD":    "1,0,0,0,1,1,1,1,1,1,1,1,0,0,0,0,0",
	"OUTD":    "1,0,0,0,0,0,0,0,1,1,1,1,0,0,0,0,0",
	"OUTS":    "1,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,1",
	"OUTALL":  "1,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1",
	"ALL0.5":  "0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5",
	"FLUXALL": strings.TrimSuffix(strings.Repeat("1,", 61), ","),
}

// PresetNames lists the built-in preset names, sorted.
func PresetNames() []string {
	var ns []string
	for n := range lbwPresets {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// LoadPresets reads a preset file in sd-webui-lora-block-weight's format
// (lbwpresets.txt; also ComfyUI Inspire Pack's lbw-preset.txt): one
// "NAME:v,v,v" per line. Empty lines and lines starting with '#' or '@'
// (Inspire's XY-plot entries) are skipped; values are checked when a
// preset is used.
func LoadPresets(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" || line[0] == '#' || line[0] == '@' {
			continue
		}
		name, vals, ok := strings.Cut(line, ":")
		name, vals = strings.TrimSpace(name), strings.TrimSpace(vals)
		if !ok || name == "" || vals == "" {
			return nil, fmt.Errorf("%s:%d: not a preset line (want NAME:v,v,v)", path, n)
		}
		out[name] = vals
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no presets (want NAME:v,v,v lines)", path)
	}
	return out, nil
}

// BlockWeights is a LoRA Block Weight spec (the SPEC of
// --lora FILE:...:lbw=SPEC): a positional vector, a preset name or named
// blocks. Resolve binds it to an architecture's block table; Of then gives
// each module's multiplier.
type BlockWeights struct {
	Spec string
	// Presets are user presets (--lbw-presets); they take precedence over
	// the built-in ones.
	Presets map[string]string

	values []float64     // positional form
	named  []namedWeight // named form
	preset string        // preset name

	table   *arch.BlockTable
	weights map[string]float64
	dflt    float64 // weight of table blocks not set
	form    string  // the form used, for reports
}

type namedWeight struct {
	pattern string
	value   float64
}

// parseWeight parses one multiplier.
func parseWeight(s string) (float64, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		switch strings.ToUpper(s) {
		case "R", "U", "A", "B":
			return 0, fmt.Errorf("%q: random and A/B values are not supported (a merge must be reproducible); give numbers", s)
		}
		if strings.HasPrefix(s, "X") {
			return 0, fmt.Errorf("%q: inherited (X) values are not supported; give numbers", s)
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v, nil
}

// ParseBlockWeights checks the syntax of an lbw= spec: "v,v,…" (a
// positional vector), "NAME" (a preset) or "BLOCK:v,GLOB:v,…" (named
// blocks, globs allowed).
func ParseBlockWeights(spec string) (*BlockWeights, error) {
	bw := &BlockWeights{Spec: spec}
	s := strings.TrimSpace(spec)
	switch {
	case s == "":
		return nil, fmt.Errorf("lbw= is empty")
	case strings.Contains(s, ":"):
		for _, item := range strings.Split(s, ",") {
			pat, val, ok := strings.Cut(item, ":")
			pat = strings.TrimSpace(pat)
			if !ok || pat == "" {
				return nil, fmt.Errorf("lbw %q: %q is not BLOCK:WEIGHT", spec, item)
			}
			v, err := parseWeight(val)
			if err != nil {
				return nil, fmt.Errorf("lbw %q: block %s: %v", spec, pat, err)
			}
			bw.named = append(bw.named, namedWeight{pattern: pat, value: v})
		}
	case strings.Contains(s, ","):
		vs, err := parseVector(s)
		if err != nil {
			return nil, fmt.Errorf("lbw %q: %v", spec, err)
		}
		bw.values = vs
	default:
		if v, err := parseWeight(s); err == nil {
			bw.values = []float64{v} // a one-value vector: Resolve names the counts expected
		} else {
			bw.preset = s
		}
	}
	return bw, nil
}

func parseVector(s string) ([]float64, error) {
	var vs []float64
	for i, x := range strings.Split(s, ",") {
		v, err := parseWeight(x)
		if err != nil {
			return nil, fmt.Errorf("value %d: %v", i+1, err)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// expectation says which counts and orders an architecture takes.
func expectation(a *arch.Arch, bt *arch.BlockTable) string {
	var fs []string
	for _, f := range bt.Forms {
		fs = append(fs, fmt.Sprintf("%d (%s: %s)", len(f.Slots), f.Name, arch.DescribeBlocks(f.Names())))
	}
	return fmt.Sprintf("%s takes %s", a.ID, strings.Join(fs, " or "))
}

// Resolve binds the spec to an architecture. A vector (or preset) sets the
// blocks of its form; the table's other blocks get 0, as
// sd-webui-lora-block-weight does. The named form sets the blocks it names
// and leaves the others at 1. Modules in no block always keep 1.
func (bw *BlockWeights) Resolve(a *arch.Arch) error {
	if bw == nil {
		return nil
	}
	bt := a.Blocks()
	bw.table, bw.weights = bt, map[string]float64{}
	if bw.named != nil {
		bw.dflt, bw.form = 1, "named blocks"
		for _, n := range bw.named {
			bs, err := bt.Match(n.pattern)
			if err != nil {
				return &UsageError{fmt.Sprintf("lbw %q: %v", bw.Spec, err)}
			}
			if len(bs) == 0 {
				var names []string
				for _, b := range bt.Blocks {
					names = append(names, b.Name)
				}
				var aliases []string
				for al := range bt.Aliases {
					aliases = append(aliases, al)
				}
				sort.Strings(aliases)
				names = append(names, aliases...)
				return &UsageError{fmt.Sprintf("lbw %q: %s names no block of %s (blocks: %s)", bw.Spec, n.pattern, a.ID, arch.DescribeBlocks(names))}
			}
			for _, b := range bs {
				bw.weights[b] = n.value
			}
		}
		return nil
	}
	values, fromPreset := bw.values, false
	if bw.preset != "" {
		raw, ok := bw.Presets[bw.preset]
		if !ok {
			raw, ok = lbwPresets[bw.preset]
		}
		if !ok {
			for n, v := range lbwPresets {
				if strings.EqualFold(n, bw.preset) {
					raw, ok = v, true
				}
			}
		}
		if !ok {
			return &UsageError{fmt.Sprintf("lbw: no preset %q (built-in: %s; --lbw-presets FILE adds more)", bw.preset, strings.Join(PresetNames(), ", "))}
		}
		vs, err := parseVector(raw)
		if err != nil {
			return &UsageError{fmt.Sprintf("lbw preset %s: %v", bw.preset, err)}
		}
		values, fromPreset = vs, true
	}
	for _, f := range bt.Forms {
		if len(f.Slots) == len(values) {
			bw.dflt, bw.form = 0, f.Name
			for i, slot := range f.Slots {
				for _, b := range slot {
					bw.weights[b] = values[i]
				}
			}
			return nil
		}
	}
	// a preset in one of the extension's SD orders applies to any LDM UNet
	// by block name, as the extension applies its presets (blocks this
	// UNet lacks are ignored)
	if order, ok := arch.SDBlockOrders[len(values)]; ok && fromPreset && bt.SDNames {
		bw.dflt, bw.form = 0, fmt.Sprintf("sd-webui-lora-block-weight %d, by block name", len(values))
		for i, b := range order {
			if bt.Index(b) >= 0 {
				bw.weights[b] = values[i]
			}
		}
		return nil
	}
	what := fmt.Sprintf("lbw %q has %d values", bw.Spec, len(values))
	if fromPreset {
		what = fmt.Sprintf("lbw preset %s has %d values", bw.preset, len(values))
	}
	return &UsageError{fmt.Sprintf("%s; %s", what, expectation(a, bt))}
}

// Of returns the block a module sits in and its multiplier (1 without a
// spec, and for modules in no block).
func (bw *BlockWeights) Of(t arch.Target) (string, float64) {
	if bw == nil || bw.table == nil {
		return "", 1
	}
	b := bw.table.BlockOf(t)
	if b == "" {
		return "", 1
	}
	if w, ok := bw.weights[b]; ok {
		return b, w
	}
	return b, bw.dflt
}

// Form names the vector form the spec was read in (after Resolve).
func (bw *BlockWeights) Form() string {
	if bw == nil {
		return ""
	}
	return bw.form
}

// splitLBW cuts a ":lbw=SPEC" suffix off a --lora value.
func splitLBW(s string) (rest, spec string, ok bool) {
	i := strings.LastIndex(s, ":lbw=")
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(":lbw="):], true
}

// lbwNote describes an input's block weights for the --dry-run header.
func lbwNote(in Input) string {
	if in.LBW == nil {
		return ""
	}
	return fmt.Sprintf(", lbw %s (%s)", in.LBW.Spec, in.LBW.Form())
}

// blockNote shows how a patch's strength was made: "= 0.8 × IN04 0.5".
func (p *Plan) blockNote(pt *Patch) string {
	in := p.Inputs[pt.Input]
	if in.LBW == nil {
		return ""
	}
	base := in.StrengthModel
	if pt.Target.Component != arch.DiffusionModel {
		base = in.StrengthClip
	}
	if pt.Block == "" {
		return " (in no block: 1)"
	}
	return fmt.Sprintf(" = %g × %s %g", base, pt.Block, pt.BlockWeight)
}

// failOrUsage maps an error to exit status 2 for a usage mistake found
// after opening the files, 1 otherwise.
func failOrUsage(err error) error {
	var ue *UsageError
	if errors.As(err, &ue) {
		return cliutil.Usage("%v", ue.Msg)
	}
	return cliutil.Fail("%v", err)
}

// spec is the spec as given ("" without one), for metadata.
func (bw *BlockWeights) spec() string {
	if bw == nil {
		return ""
	}
	return bw.Spec
}
