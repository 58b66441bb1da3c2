package workflow

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// LoRA loader strength bounds (ComfyUI's LoraLoader INPUT_TYPES: FLOAT,
// min -100, max 100).
const (
	minStrength = -100
	maxStrength = 100
)

// comfyFloat reads a FLOAT widget value the way ComfyUI's validate_inputs
// does: a {"__value__": v} wrapper is unwrapped, then Python's float(v)
// (numbers, booleans, numeric strings with surrounding spaces, underscores
// between digits, inf/nan spellings). A value ComfyUI would refuse (not
// convertible, below min, above max) is an error, and so is a non-finite
// one, which ComfyUI would accept but which only produces a broken model.
func comfyFloat(v any) (float64, error) {
	if o, ok := v.(*object); ok {
		if inner, ok := o.get("__value__"); ok {
			v = inner
		}
	}
	var x float64
	switch t := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !math.IsInf(f, 0) {
			return 0, fmt.Errorf("%s is not a number", t)
		}
		x = f
	case bool:
		if t {
			x = 1
		}
	case string:
		s := strings.TrimSpace(t)
		if strings.ContainsAny(s, "xXpP") && !isInfNaNWord(s) {
			return 0, fmt.Errorf("%q is not a number ComfyUI reads", t)
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !math.IsInf(f, 0) {
			return 0, fmt.Errorf("%q is not a number ComfyUI reads", t)
		}
		x = f
	case nil:
		return 0, fmt.Errorf("null is not a number")
	default:
		return 0, fmt.Errorf("a %s is not a number", describeJSON(v))
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("%v is not a finite number", x)
	}
	if x < minStrength || x > maxStrength {
		return 0, fmt.Errorf("%g is outside ComfyUI's range %d..%d", x, minStrength, maxStrength)
	}
	return x, nil
}

func isInfNaNWord(s string) bool {
	s = strings.TrimLeft(strings.ToLower(s), "+-")
	return s == "inf" || s == "infinity" || s == "nan"
}

func describeJSON(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case *object:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// CodeInvalidValue: a widget value ComfyUI would refuse (a strength it
// cannot convert or that is out of range, a non-finite strength, an empty
// lora_name). It is an error: bake refuses the stack.
const CodeInvalidValue = "invalid_value"

// invalidValue records a widget value that makes the stack unusable.
func (t *tracer) invalidValue(format string, args ...any) {
	t.st.invalid = append(t.st.invalid, fmt.Sprintf(format, args...))
}
