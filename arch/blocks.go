package arch

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
)

// BlockTable is an architecture's block list in the vocabulary of LoRA
// Block Weight (sd-webui-lora-block-weight, ComfyUI Inspire Pack's
// LoraLoaderBlockWeight): the names a user gives per-block multipliers to,
// the positional vector forms those tools accept, and which block every
// module of the model belongs to. merge (lbw=), inspect --stats and
// extract --plot all group modules by it.
type BlockTable struct {
	// Blocks in canonical order (the order of the longest vector form).
	Blocks []Block
	// Forms are the positional vectors accepted, by value count.
	Forms []BlockForm
	// Aliases are extra names accepted in named specs ("MID" for "M00";
	// "BASE" for Flux's CLIP and T5).
	Aliases map[string][]string
	// SDNames is true for LDM UNets, whose blocks carry
	// sd-webui-lora-block-weight's BLOCKID26 names: vectors of its other
	// forms (12/17/20/26 values) map onto them by name.
	SDNames bool

	of func(component, module string) string
}

// Block is one block of a BlockTable.
type Block struct {
	Name   string
	Region string // RegionIn, RegionMid, RegionOut, RegionTextEncoder, RegionOther
}

// BlockForm is one positional vector form: value i sets the blocks of
// Slots[i].
type BlockForm struct {
	Name  string
	Slots [][]string
}

// Names lists the form's slots, each slot's blocks joined by "+".
func (f BlockForm) Names() []string {
	out := make([]string, len(f.Slots))
	for i, s := range f.Slots {
		out[i] = strings.Join(s, "+")
	}
	return out
}

// BlockOf names the block a resolved module sits in ("" when it is in no
// block: such modules, e.g. a UNet's time embedding, keep multiplier 1, as
// sd-webui-lora-block-weight leaves them).
func (bt *BlockTable) BlockOf(t Target) string {
	return bt.of(t.Component, t.Module)
}

// Index is a block's position in Blocks (-1 when absent).
func (bt *BlockTable) Index(name string) int {
	for i, b := range bt.Blocks {
		if b.Name == name {
			return i
		}
	}
	return -1
}

// Region is the region of a block ("" or unknown: RegionOther).
func (bt *BlockTable) Region(block string) string {
	if i := bt.Index(block); i >= 0 {
		return bt.Blocks[i].Region
	}
	return RegionOther
}

// Match returns the blocks a name or glob (path.Match syntax, case
// insensitive) selects, aliases included; nil when none.
func (bt *BlockTable) Match(pattern string) ([]string, error) {
	p := strings.ToUpper(strings.TrimSpace(pattern))
	if _, err := path.Match(p, ""); err != nil {
		return nil, fmt.Errorf("bad pattern %q", pattern)
	}
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, b := range bt.Blocks {
		if ok, _ := path.Match(p, b.Name); ok {
			add(b.Name)
		}
	}
	for a, bs := range bt.Aliases {
		if ok, _ := path.Match(p, a); ok {
			for _, b := range bs {
				add(b)
			}
		}
	}
	return out, nil
}

// DescribeBlocks lists the block names compactly: runs of numbered blocks with
// the same prefix become "IN00–IN11".
func DescribeBlocks(names []string) string {
	var out []string
	for i := 0; i < len(names); {
		p, n, ok := splitNumbered(names[i])
		j := i + 1
		if ok {
			for j < len(names) {
				q, m, ok2 := splitNumbered(names[j])
				if !ok2 || q != p || m != n+(j-i) {
					break
				}
				j++
			}
		}
		if j-i >= 3 {
			out = append(out, names[i]+"–"+names[j-1])
		} else {
			out = append(out, names[i:j]...)
		}
		i = j
	}
	return strings.Join(out, ",")
}

func splitNumbered(s string) (string, int, bool) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) || i == 0 {
		return s, 0, false
	}
	n, err := strconv.Atoi(s[i:])
	return s[:i], n, err == nil
}

// sd-webui-lora-block-weight's block orders (BLOCKID26, BLOCKID17,
// BLOCKID12, BLOCKID20 in scripts/lora_block_weight.py).
var (
	lbwID26 = append(append(append([]string{"BASE"}, numbered("IN", 0, 12)...), "M00"), numbered("OUT", 0, 12)...)
	lbwID17 = []string{"BASE", "IN01", "IN02", "IN04", "IN05", "IN07", "IN08", "M00", "OUT03", "OUT04", "OUT05", "OUT06", "OUT07", "OUT08", "OUT09", "OUT10", "OUT11"}
	lbwID12 = []string{"BASE", "IN04", "IN05", "IN07", "IN08", "M00", "OUT00", "OUT01", "OUT02", "OUT03", "OUT04", "OUT05"}
	lbwID20 = append(append(append([]string{"BASE"}, numbered("IN", 0, 9)...), "M00"), numbered("OUT", 0, 9)...)
)

// SDBlockOrders are sd-webui-lora-block-weight's positional orders for LDM
// UNets, by value count.
var SDBlockOrders = map[int][]string{12: lbwID12, 17: lbwID17, 20: lbwID20, 26: lbwID26}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%02d", prefix, i))
	}
	return out
}

func singleSlots(names []string) [][]string {
	out := make([][]string, len(names))
	for i, n := range names {
		out[i] = []string{n}
	}
	return out
}

var (
	blockMu     sync.Mutex
	blockTables = map[string]*BlockTable{}
)

// Blocks returns the architecture's block table (built once).
func (a *Arch) Blocks() *BlockTable {
	blockMu.Lock()
	defer blockMu.Unlock()
	if bt, ok := blockTables[a.ID]; ok {
		return bt
	}
	var bt *BlockTable
	if a.Part == UNet {
		bt = unetBlockTable(a)
	} else {
		bt = ditBlockTable(a)
	}
	blockTables[a.ID] = bt
	return bt
}

// unetBlockTable: BASE = every text encoder, INnn = input_blocks.nn,
// M00 = middle_block, OUTnn = output_blocks.nn (LDM indices), as
// sd-webui-lora-block-weight's BLOCKS list defines them. time_embed,
// label_emb and out.* are in no block.
func unetBlockTable(a *Arch) *BlockTable {
	in, out := countIndices(a, "input_blocks."), countIndices(a, "output_blocks.")
	bt := &BlockTable{SDNames: true, Aliases: map[string][]string{"MID": {"M00"}}}
	bt.Blocks = append(bt.Blocks, Block{"BASE", RegionTextEncoder})
	for _, n := range numbered("IN", 0, in) {
		bt.Blocks = append(bt.Blocks, Block{n, RegionIn})
	}
	bt.Blocks = append(bt.Blocks, Block{"M00", RegionMid})
	for _, n := range numbered("OUT", 0, out) {
		bt.Blocks = append(bt.Blocks, Block{n, RegionOut})
	}
	var all []string
	for _, b := range bt.Blocks {
		all = append(all, b.Name)
	}
	for _, n := range []int{12, 17, 20, 26} {
		order := SDBlockOrders[n]
		// a form applies when it names exactly this UNet's blocks or a
		// subset of them of the same family (17 within 26, 12 within 20)
		fits := true
		for _, b := range order {
			fits = fits && bt.Index(b) >= 0
		}
		if fits && (n == len(all) || (n == 17 && len(all) == 26) || (n == 12 && len(all) == 20)) {
			bt.Forms = append(bt.Forms, BlockForm{Name: fmt.Sprintf("sd-webui-lora-block-weight %d", n), Slots: singleSlots(order)})
		}
	}
	if len(bt.Forms) == 0 {
		bt.Forms = append(bt.Forms, BlockForm{Name: "block list", Slots: singleSlots(all)})
	}
	bt.of = func(component, module string) string {
		if component != DiffusionModel {
			return "BASE"
		}
		if rest, ok := strings.CutPrefix(module, "input_blocks."); ok {
			return indexedBlock("IN", rest)
		}
		if rest, ok := strings.CutPrefix(module, "output_blocks."); ok {
			return indexedBlock("OUT", rest)
		}
		if strings.HasPrefix(module, "middle_block.") {
			return "M00"
		}
		return ""
	}
	return bt
}

// indexedBlock names the block "<prefix>NN" from "NN.rest".
func indexedBlock(prefix, rest string) string {
	num, _, _ := strings.Cut(rest, ".")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return ""
	}
	return fmt.Sprintf("%s%02d", prefix, n)
}

// countIndices counts the distinct N of "<prefix>N." among the
// architecture's parameters.
func countIndices(a *Arch, prefix string) int {
	seen := map[string]bool{}
	for _, p := range a.Params(Tiny) {
		if rest, ok := strings.CutPrefix(p.Name, prefix); ok {
			num, _, _ := strings.Cut(rest, ".")
			if _, err := strconv.Atoi(num); err == nil {
				seen[num] = true
			}
		}
	}
	return len(seen)
}

// ditGroup is a numbered block list of a DiT: modules under Prefix+"N."
// are in block Letter+NN.
type ditGroup struct {
	Prefix, Letter string
}

// ditBlockSpec describes a DiT's blocks: its numbered block groups in
// forward order, the module prefixes after the blocks (OUT; every other
// diffusion-model module — embedders, refiners, modulation — is IN) and
// the names of its text encoders (default BASE).
type ditBlockSpec struct {
	Groups   []ditGroup
	Out      []string
	Encoders map[string]string // ComfyUI encoder name → block name
}

// ditBlockSpecs is the block table of every registered DiT.
var ditBlockSpecs = map[string]ditBlockSpec{
	"flux1":         {Groups: []ditGroup{{"double_blocks.", "D"}, {"single_blocks.", "S"}}, Out: []string{"final_layer."}, Encoders: map[string]string{"clip_l": "CLIP", "t5xxl": "T5"}},
	"chroma":        {Groups: []ditGroup{{"double_blocks.", "D"}, {"single_blocks.", "S"}}, Out: []string{"final_layer."}},
	"flux2":         {Groups: []ditGroup{{"double_blocks.", "D"}, {"single_blocks.", "S"}}, Out: []string{"final_layer."}},
	"hunyuan-video": {Groups: []ditGroup{{"double_blocks.", "D"}, {"single_blocks.", "S"}}, Out: []string{"final_layer."}},
	"sd3":           {Groups: []ditGroup{{"joint_blocks.", "J"}}, Out: []string{"final_layer."}},
	"auraflow":      {Groups: []ditGroup{{"double_layers.", "D"}, {"single_layers.", "S"}}, Out: []string{"final_linear", "modF."}},
	"wan":           {Groups: []ditGroup{{"blocks.", "L"}}, Out: []string{"head."}},
	"qwen-image":    {Groups: []ditGroup{{"transformer_blocks.", "L"}}, Out: []string{"norm_out.", "proj_out"}},
	"hidream":       {Groups: []ditGroup{{"double_stream_blocks.", "D"}, {"single_stream_blocks.", "S"}}, Out: []string{"final_layer."}},
	"z-image":       {Groups: []ditGroup{{"layers.", "L"}}, Out: []string{"final_layer."}},
	"lumina2":       {Groups: []ditGroup{{"layers.", "L"}}, Out: []string{"final_layer.", "norm_final"}},
	"ltxv":          {Groups: []ditGroup{{"transformer_blocks.", "L"}}, Out: []string{"proj_out", "scale_shift_table"}},
}

// ditBlockTable builds a DiT's table from its spec: text-encoder blocks,
// IN, the numbered groups, OUT. An architecture without a spec gets BASE,
// IN (the whole diffusion model).
func ditBlockTable(a *Arch) *BlockTable {
	spec := ditBlockSpecs[a.ID]
	bt := &BlockTable{Aliases: map[string][]string{}}
	var encBlocks []string
	seen := map[string]bool{}
	for _, e := range a.Encoders {
		n := spec.Encoders[e.Comfy]
		if n == "" {
			n = "BASE"
		}
		if !seen[n] {
			seen[n] = true
			encBlocks = append(encBlocks, n)
			bt.Blocks = append(bt.Blocks, Block{n, RegionTextEncoder})
		}
	}
	if len(encBlocks) > 0 && !seen["BASE"] {
		bt.Aliases["BASE"] = encBlocks
	}
	bt.Blocks = append(bt.Blocks, Block{"IN", RegionOther})
	groupBlocks := make([][]string, len(spec.Groups))
	for gi, g := range spec.Groups {
		region := RegionIn
		if gi > 0 {
			region = RegionMid
		}
		for _, n := range numbered(g.Letter, 0, countIndices(a, g.Prefix)) {
			groupBlocks[gi] = append(groupBlocks[gi], n)
			bt.Blocks = append(bt.Blocks, Block{n, region})
		}
	}
	bt.Blocks = append(bt.Blocks, Block{"OUT", RegionOther})
	var all []string
	for _, b := range bt.Blocks {
		all = append(all, b.Name)
	}
	form := "block list"
	if a.ID == "flux1" {
		form = "sd-webui-lora-block-weight 61 (Flux)"
	}
	bt.Forms = append(bt.Forms, BlockForm{Name: form, Slots: singleSlots(all)})
	if a.ID == "flux1" {
		// Inspire Pack's 58 values: BASE (everything outside the double
		// and single blocks) + 19 double + 38 single
		slots := [][]string{append(append([]string{}, encBlocks...), "IN", "OUT")}
		for _, g := range groupBlocks {
			slots = append(slots, singleSlots(g)...)
		}
		bt.Forms = append(bt.Forms, BlockForm{Name: "Inspire Pack 58 (Flux)", Slots: slots})
	}
	bt.of = func(component, module string) string {
		if component != DiffusionModel {
			if n := spec.Encoders[component]; n != "" {
				return n
			}
			return "BASE"
		}
		for _, g := range spec.Groups {
			if rest, ok := strings.CutPrefix(module, g.Prefix); ok {
				if b := indexedBlock(g.Letter, rest); b != "" {
					return b
				}
			}
		}
		for _, o := range spec.Out {
			if strings.HasPrefix(module, o) || module == strings.TrimSuffix(o, ".") {
				return "OUT"
			}
		}
		return "IN"
	}
	return bt
}

// RegionOf is the region a resolved module sits in, from its
// architecture's block table.
func RegionOf(t Target) string {
	if t.Arch == nil {
		return Region(t.Module)
	}
	bt := t.Arch.Blocks()
	b := bt.BlockOf(t)
	if b == "" {
		return RegionOther
	}
	return bt.Region(b)
}
