package convert

import (
	"errors"
	"fmt"
	"github.com/loratool/loratool/dtype"
	"strings"

	"github.com/loratool/loratool/lora"
)

// validateModules checks every module's shapes against its algorithm's
// rules (adapter.ValidateShapes) from the header alone, before any tensor
// is read: the dense delta a module implies is bounded by maxDense
// elements (0: adapter.DefaultMaxDense). The error names the module and
// the rule.
func validateModules(an *lora.Analysis, maxDense int64) error {
	for _, m := range an.Modules {
		if err := m.ValidateShapes("", nil, maxDense); err != nil {
			return err
		}
	}
	return nil
}

// checkFinite refuses a float tensor holding NaN or ±Inf values: they
// would only produce a broken LoRA.
func checkFinite(v *val, key string) error {
	if !v.dt.IsFloat() || !v.dt.CanDecode() {
		return nil
	}
	f, err := v.floats()
	if err != nil {
		return err
	}
	n := 0
	for _, x := range f {
		if x-x != 0 {
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("tensor %s holds %d NaN/Inf values", key, n)
	}
	return nil
}

// nameInput prefixes a one-line error with the input's name, unless the
// error already starts with it (errors of the file readers name the file).
func nameInput(in string, err error) error {
	if errors.Is(err, ErrNotLoRA) && !strings.HasPrefix(err.Error(), in+": ") {
		return fmt.Errorf("%s: %w", in, err)
	}
	msg := oneLine(err)
	if strings.HasPrefix(msg, in+": ") {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", in, msg)
}

// countSaturated counts the values that saturate to the largest finite
// value when the tensors are encoded to an fp8 dtype.
func countSaturated(ts []outTensor, dt dtype.DType) int {
	if dt != dtype.F8E4M3 && dt != dtype.F8E5M2 {
		return 0
	}
	n := 0
	for _, t := range ts {
		if !t.v.dt.IsFloat() {
			continue
		}
		f, err := t.v.floats()
		if err != nil {
			continue
		}
		st, err := dtype.Encode(dt, f, make([]byte, len(f)))
		if err == nil {
			n += st.Clamped
		}
	}
	return n
}

func saturatedNote(n int) string {
	return fmt.Sprintf("%d values saturated to the fp8 range", n)
}
