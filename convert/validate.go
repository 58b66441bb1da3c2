package convert

import (
	"errors"
	"fmt"
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
	msg := oneLine(err)
	if strings.HasPrefix(msg, in+": ") {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", in, msg)
}
