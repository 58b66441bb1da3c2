package merge

import (
	"errors"
	"fmt"
	"os"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/internal/cliutil"
	"github.com/loratool/loratool/lora"
	"github.com/loratool/loratool/safetensors"
)

// ErrNothingApplies is returned when no LoRA module of a merge applies to
// the checkpoint: nothing is written.
var ErrNothingApplies = errors.New("no LoRA module applies to this checkpoint; nothing written")

// shapeRules validates a module against the (slice of the) base tensor it
// patches with the adapter's shape rules; "" when it passes.
func shapeRules(m *lora.Module, algo string, ti *safetensors.TensorInfo, sl *arch.Slice, transposed bool) string {
	var target []int64
	if !m.Has(lora.RoleReshapeWeight) && len(ti.Shape) > 0 {
		target = append([]int64(nil), ti.Shape...)
		if transposed && len(target) == 2 {
			target[0], target[1] = target[1], target[0]
		}
		if sl != nil {
			target[0] = sl.Size
		}
	}
	if err := m.ValidateShapes(algo, target, 0); err != nil {
		return err.Error()
	}
	return ""
}

// checkNotInput refuses an output that is the same file as one of the
// inputs (by file identity, so links and other spellings are caught too).
func checkNotInput(out string, inputs ...string) error {
	ost, err := os.Stat(out)
	if err != nil {
		return nil
	}
	for _, in := range inputs {
		if ist, err := os.Stat(in); err == nil && os.SameFile(ost, ist) {
			return fmt.Errorf("the output %s is the input %s; choose another -o", out, in)
		}
	}
	return nil
}

// groupRows returns the rows of the whole weight a LoRA+LoRA contribution
// patches, at the file's own width: the up rows for a whole-weight module,
// the slice scaled to the file's width for a slice. It never invents a
// width the file does not have.
func groupRows(m *lora.Module, c contribution) (int, error) {
	srows := c.numRows()
	t := m.Target
	if t.Slice == nil {
		return srows, nil
	}
	if len(t.Shape) == 0 || t.Slice.Size <= 0 || (int64(srows)*t.Shape[0])%t.Slice.Size != 0 {
		return 0, fmt.Errorf("up has %d rows, which is no scaled slice of %s", srows, t.Module)
	}
	return int(int64(srows) * t.Shape[0] / t.Slice.Size), nil
}

// accepts checks that a contribution fits the group's weight: same rows,
// same input features, same conv kernel, its rows inside the weight. A
// group begun by a bias-only diff takes its columns and kernel from the
// first contribution that has them.
func (g *group) accepts(c contribution, rows int) error {
	if rows != g.rows {
		return fmt.Errorf("patches a weight of %d rows, another LoRA's module has %d", rows, g.rows)
	}
	if hasCols := c.dense != nil || c.r > 0; hasCols && g.cols == 0 {
		g.cols, g.kernel = c.numCols(), c.conv
	} else if hasCols {
		if cols := c.numCols(); cols != g.cols {
			return fmt.Errorf("has %d input features, another LoRA's module has %d", cols, g.cols)
		}
		if fmt.Sprint(c.conv) != fmt.Sprint(g.kernel) {
			return fmt.Errorf("has conv kernel %v, another LoRA's module has %v", c.conv, g.kernel)
		}
	}
	if srows := c.numRows(); c.rowOffset < 0 || c.rowOffset+srows > g.rows {
		return fmt.Errorf("rows %d..%d lie outside the weight's %d rows", c.rowOffset, c.rowOffset+srows, g.rows)
	}
	return nil
}

// finiteStrengths refuses NaN, infinite and float32-overflowing strengths:
// they can only produce a broken model.
func finiteStrengths(arg string, in Input) error {
	for _, v := range []float64{in.StrengthModel, in.StrengthClip} {
		if err := cliutil.Finite("strength", v); err != nil {
			return fmt.Errorf("--lora %q: %v", arg, err)
		}
	}
	return nil
}
