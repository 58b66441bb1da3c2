package convert

import (
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
