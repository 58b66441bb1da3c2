package convert

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/internal/cliutil"
	"github.com/loratool/loratool/svd"
)

// ErrNotLoRA is the error of an input without adapter tensors; files that
// a folder search found are skipped with it instead of failing.
var ErrNotLoRA = errors.New("not a LoRA")

// skipped is the JSON line of an input a batch skipped.
type skipped struct {
	Input   string `json:"input"`
	Skipped string `json:"skipped"`
}

// tally counts a batch's outcomes for its summary line.
type tally struct{ done, skipped, failed int }

// summary is the batch's last line, e.g. "12 converted, 1 skipped, 0 failed".
func (t tally) summary(verb string) string {
	return fmt.Sprintf("%d %s, %d skipped, %d failed", t.done, verb, t.skipped, t.failed)
}

// batch runs the jobs, printing text or JSON Lines, with a progress bar on
// terminals (result lines print above it). Non-LoRA files found by a
// folder search are skipped ("skipped (not a LoRA)"); a summary line ends
// a batch of several inputs. It fails (exit 1) at the end when any file
// failed.
func batch(cmd *cli.Command, jobs []job, errs []error, fn func(job) (any, error), text func(any) string) error {
	asJSON := cmd.Bool("json")
	quiet := cmd.Bool("quiet")
	out := cliutil.NewJSONLines(os.Stdout)
	var t tally
	for _, e := range errs {
		t.failed++
		if asJSON {
			out.Write(map[string]string{"file": errFile(e), "error": e.Error()})
		} else {
			fmt.Fprintln(os.Stderr, "loratool: "+cliutil.Safe(e.Error()))
		}
	}
	if len(jobs) == 0 && len(errs) == 0 {
		return cliutil.Fail("no input files found")
	}
	verb, phase := "converted", "converting"
	if cmd.Name == "resize" {
		verb, phase = "resized", "resizing"
	}
	bar := cliutil.NewUnitBar(len(jobs), phase, "files", quiet || len(jobs) < 2)
	runBatch(jobs, int(cmd.Int("jobs")), func(j job) (any, error) {
		r, err := fn(j)
		if err != nil && j.walked && errors.Is(err, ErrNotLoRA) {
			return skipped{Input: j.in, Skipped: "not a LoRA"}, nil
		}
		return r, err
	}, func(r any, err error) {
		bar.Add(1)
		if err != nil {
			t.failed++
			switch x := r.(type) {
			case *Result:
				x.Error = err.Error()
				x.Output = ""
			case *ResizeResult:
				x.Error = err.Error()
				x.Output = ""
			case *GGUFResult:
				x.Error = err.Error()
				x.Output = ""
			}
			if asJSON {
				bar.JSON(r)
			} else {
				bar.Println(os.Stderr, "loratool: "+cliutil.Safe(err.Error()))
			}
			return
		}
		if s, ok := r.(skipped); ok {
			t.skipped++
			if asJSON {
				bar.JSON(s)
			} else if !quiet {
				bar.Println(os.Stdout, cliutil.Safe(s.Input)+": skipped (not a LoRA)")
			}
			return
		}
		t.done++
		if asJSON {
			bar.JSON(r)
		} else if !quiet {
			bar.Println(os.Stdout, cliutil.SafeLines(text(r)))
		}
	})
	bar.Finish()
	if len(jobs)+len(errs) > 1 || t.skipped > 0 {
		fmt.Fprintln(os.Stderr, t.summary(verb))
	}
	if t.failed > 0 {
		return cliutil.Silent()
	}
	return nil
}

// pathErr is an input error that knows its file.
type pathErr struct {
	path string
	err  error
}

func (e *pathErr) Error() string { return fmt.Sprintf("%s: %v", e.path, e.err) }

// errFile returns the file an Expand error is about.
func errFile(err error) string {
	var pe *pathErr
	if errors.As(err, &pe) {
		return pe.path
	}
	return ""
}

// convRank is the new rank of a k×k convolution module under --conv-rank:
// that rank for a fixed rule, else the rule's choice capped by it.
func convRank(opt ResizeOptions, spec []float64) int {
	if opt.Rule.Kind == svd.RuleFixed {
		return min(opt.ConvRank, len(spec))
	}
	return opt.Rule.Rank(spec, opt.ConvRank)
}
