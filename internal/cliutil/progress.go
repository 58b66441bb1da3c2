package cliutil

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// refresh is how often a bar is redrawn at most.
const refresh = 100 * time.Millisecond

// Bar is a progress bar on stderr that is drawn only when stderr is a
// terminal (and never with quiet); otherwise its methods do nothing but
// Println. A bar shows its phase name, the done/total count (or bytes),
// the rate and the ETA. It is created lazily once a positive total is
// known, so callers that learn the total late (merge, bake) can pass 0 at
// first. It is safe for concurrent use.
type Bar struct {
	mu    sync.Mutex
	on    bool // stderr is a terminal and not quiet
	bytes bool // count bytes (else items)
	unit  string
	phase string
	total int64 // of the current phase
	done  int64 // reported
	shown int64 // forwarded to b
	last  time.Time
	b     *progressbar.ProgressBar
	note  string // an indeterminate phase's line, drawn by Bar itself
}

// NewBytesBar returns a byte-counting bar with rate and ETA. total may be
// 0 when not yet known (see Set).
func NewBytesBar(total int64, desc string, quiet bool) *Bar {
	return newBar(total, desc, true, "", quiet)
}

// NewCountBar returns a bar counting items (files, modules) with rate and
// ETA.
func NewCountBar(total int, desc string, quiet bool) *Bar {
	return newBar(int64(total), desc, false, "files", quiet)
}

// NewUnitBar is NewCountBar with another unit name ("modules", "tensors").
func NewUnitBar(total int, desc, unit string, quiet bool) *Bar {
	return newBar(int64(total), desc, false, unit, quiet)
}

func newBar(total int64, desc string, bytes bool, unit string, quiet bool) *Bar {
	return &Bar{on: !quiet && StderrIsTerminal(), bytes: bytes, unit: unit, phase: desc, total: total}
}

// start creates the underlying bar for the current phase (mu held).
func (b *Bar) start() {
	if !b.on || b.b != nil || b.total <= 0 {
		return
	}
	if b.note != "" {
		b.clear()
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(fmt.Sprintf("%-10s", b.phase)),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetVisibility(true),
		progressbar.OptionSetWidth(30),
	}
	if b.bytes {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionShowTotalBytes(true), progressbar.OptionUseIECUnits(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(b.unit))
	}
	b.b = progressbar.NewOptions64(b.total, opts...)
	b.shown = 0
	b.last = time.Time{}
	b.b.RenderBlank()
}

// forward passes the reported progress to the bar, at most every refresh
// interval and always when the phase completes (mu held).
func (b *Bar) forward() {
	b.start()
	if b.b == nil {
		return
	}
	d := min(b.done, b.total)
	if d == b.shown || (d < b.total && time.Since(b.last) < refresh) {
		return
	}
	if d == b.total {
		// keep the bar on screen until Finish or the next phase: a
		// completed progressbar clears itself
		d = b.total - 1
		if d <= b.shown {
			return
		}
	}
	b.b.Add64(d - b.shown)
	b.shown = d
	b.last = time.Now()
}

// Add advances the bar by n.
func (b *Bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.forward()
}

// Set moves the bar to n.
func (b *Bar) Set(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = n
	b.forward()
}

// SetTotal moves the bar to n of total (for callers that learn the total
// with the first report).
func (b *Bar) SetTotal(n, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if total != b.total {
		b.total = total
		if b.b != nil {
			b.b.ChangeMax64(total)
		}
	}
	b.done = n
	b.forward()
}

// Phase ends the current phase (clearing its bar) and starts a new one
// with its own name and total; a total of 0 or less shows the phase name
// alone, for a step without measurable progress (such as "fsync").
func (b *Bar) Phase(name string, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clear()
	b.phase, b.total, b.done = name, total, 0
	if total <= 0 && b.on {
		b.note = fmt.Sprintf("%-10s …", name)
		b.drawNote()
		return
	}
	b.start()
}

// drawNote draws an indeterminate phase's line (mu held).
func (b *Bar) drawNote() {
	if b.note != "" {
		fmt.Fprint(os.Stderr, "\r"+b.note)
	}
}

// clear removes the current bar or phase line from the terminal (mu held).
func (b *Bar) clear() {
	if b.b != nil {
		b.b.Exit()
		b.b.Clear()
		b.b = nil
	}
	if b.note != "" {
		fmt.Fprintf(os.Stderr, "\r%*s\r", len([]rune(b.note)), "")
		b.note = ""
	}
}

// Println writes a line to w above the bar: the bar is erased, the line
// written and the bar drawn again below it, so result lines never mix
// with the bar.
func (b *Bar) Println(w io.Writer, a ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.b != nil:
		b.b.Clear()
		fmt.Fprintln(w, a...)
		b.b.RenderBlank()
	case b.note != "":
		fmt.Fprintf(os.Stderr, "\r%*s\r", len([]rune(b.note)), "")
		fmt.Fprintln(w, a...)
		b.drawNote()
	default:
		fmt.Fprintln(w, a...)
	}
}

// Finish erases the bar; the terminal is left as it was before the bar.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clear()
}

// WriterProgress returns a callback for a streaming writer's (written,
// total) reports: the bar counts the bytes written in the current phase,
// then shows "fsync" from the last byte until Finish (the file is being
// synced and renamed into place).
func (b *Bar) WriterProgress() func(written, total int64) {
	synced := false
	return func(n, total int64) {
		if synced {
			return
		}
		b.SetTotal(n, total)
		if n >= total && total > 0 {
			synced = true
			b.Phase("fsync", 0)
		}
	}
}

// JSON writes v as one JSON line on stdout above the bar (JSON Lines
// output with a bar on the same terminal stays whole).
func (b *Bar) JSON(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Println(os.Stdout, string(line))
	jsonWritten.Add(1)
	return nil
}
