package inspect

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/loratool/loratool/internal/cliutil"
)

// Table writes one line per file (inspect --table): name, kind,
// architecture, algorithm, rank/alpha, targets, size. Lines are aligned
// when Flush is called.
type Table struct{ tw *tabwriter.Writer }

// NewTable returns a table on w with its header line.
func NewTable(w io.Writer) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(t.tw, "FILE\tKIND\tARCHITECTURE\tALGORITHM\tRANK/ALPHA\tTARGETS\tSIZE")
	return t
}

// Add writes r's line.
func (t *Table) Add(r *Report) {
	name := cell(filepath.Base(r.File))
	if r.Error != "" {
		fmt.Fprintf(t.tw, "%s\terror: %s\n", name, cell(r.Error))
		return
	}
	algo := strings.Join(r.Algorithms, "+")
	if algo == "" {
		algo = "-"
	}
	targets := strings.Join(r.Targets, "+")
	if targets == "" {
		targets = "-"
	}
	fmt.Fprintf(t.tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, r.Kind, r.Architecture, algo, rankAlpha(r), targets, human(float64(r.Size), "B"))
}

// Flush aligns and writes the lines.
func (t *Table) Flush() error { return t.tw.Flush() }

// rankAlpha is "16/8", "4..32/16", "16/?" (alpha not read), "16/-" (no
// alpha, scale 1) or "-".
func rankAlpha(r *Report) string {
	if r.Rank == nil {
		return "-"
	}
	s := strconv.FormatInt(r.Rank.Min, 10)
	if r.Rank.Max != r.Rank.Min {
		s += ".." + strconv.FormatInt(r.Rank.Max, 10)
	}
	a := r.Alpha
	switch {
	case a == nil || a.NotRead:
		s += "/?"
	case a.Present == 0 && !a.FromMetadata:
		s += "/-" // no alpha: scale 1
	case a.Min == a.Max:
		s += "/" + strconv.FormatFloat(a.Min, 'g', 4, 64)
	default:
		s += "/" + strconv.FormatFloat(a.Min, 'g', 4, 64) + ".." + strconv.FormatFloat(a.Max, 'g', 4, 64)
	}
	return s
}

// tally counts a folder's reports for inspect's summary line.
type tally struct {
	kinds  map[string]int
	order  []string
	failed int
}

func (t *tally) add(r *Report) {
	if r.Error != "" {
		t.failed++
		return
	}
	if t.kinds == nil {
		t.kinds = map[string]int{}
	}
	if t.kinds[r.Kind] == 0 {
		t.order = append(t.order, r.Kind)
	}
	t.kinds[r.Kind]++
}

// summary is e.g. "14 inspected (12 LoRAs, 1 embedding, 1 checkpoint), 0 failed".
func (t *tally) summary() string {
	n := 0
	var parts []string
	for _, k := range t.order {
		c := t.kinds[k]
		n += c
		name := k
		switch k {
		case "lora":
			name = "LoRA"
		case "unknown":
			name = "unknown file"
		}
		if c != 1 {
			name += "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s", c, name))
	}
	s := fmt.Sprintf("%d inspected", n)
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s + fmt.Sprintf(", %d failed", t.failed)
}

// inspectBar returns inspect's progress bar: bytes read when --hash or
// --stats read whole files (the long part, even for one file), else files
// done for a folder of several.
func inspectBar(files []string, opt *Options, quiet bool) *cliutil.Bar {
	if !opt.Hash && !opt.Stats {
		return cliutil.NewCountBar(len(files), "inspecting", quiet || len(files) < 2)
	}
	var total int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			total += st.Size()
		}
	}
	if opt.Hash && opt.Stats {
		total *= 2
	}
	phase := "hashing"
	if opt.Stats {
		phase = "reading"
	}
	bar := cliutil.NewBytesBar(total, phase, quiet)
	opt.Progress = bar.Add
	return bar
}

// cell makes text from a file safe for a table cell: control characters
// escaped, tabs too (they would break the columns).
func cell(s string) string {
	return strings.ReplaceAll(cliutil.Safe(s), "\t", `\t`)
}
