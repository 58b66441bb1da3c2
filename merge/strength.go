package merge

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// StrengthError is a --lora spec whose strength is not a number.
type StrengthError struct {
	Spec, Value string
	TooMany     bool
}

func (e *StrengthError) Error() string {
	if e.TooMany {
		return fmt.Sprintf("too many strengths in --lora %s (want FILE[:MODEL_STRENGTH[:CLIP_STRENGTH]])", e.Spec)
	}
	return fmt.Sprintf("bad strength %q in --lora %s (%s)", e.Value, e.Spec, StrengthHint(e.Value))
}

// StrengthHint says how to write a strength the user got wrong: a decimal
// comma gets "use a dot: 0.8".
func StrengthHint(v string) string {
	if strings.Count(v, ",") == 1 {
		if _, err := strconv.ParseFloat(strings.Replace(v, ",", ".", 1), 64); err == nil {
			return "use a dot: " + strings.Replace(v, ",", ".", 1)
		}
	}
	return "want a number such as 0.8"
}

// parseStrength parses one strength. NaN, infinities and values beyond
// float32 parse here and are refused, with their own message, once the
// whole spec is read (finiteStrengths).
func parseStrength(v string) (float64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil && !(errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0)) {
		return 0, false
	}
	return f, true
}

// looksNumeric reports whether s was meant as a number (digits, signs,
// dots, commas, exponents) rather than part of a file name.
func looksNumeric(s string) bool {
	if s == "" || strings.ContainsAny(s, "/\\") {
		return false
	}
	digit := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digit = true
		case strings.ContainsRune("+-.,eE", r):
		default:
			return false
		}
	}
	return digit
}

// splitSpec splits FILE[:MODEL[:CLIP]] where FILE may itself contain
// colons: a prefix that names an existing file wins, and what follows it
// must be one or two strengths. Without an existing prefix, trailing
// numbers are strengths and a trailing segment that looks like a number
// but does not parse ("0,8") is an error.
func splitSpec(s string) (path string, nums []float64, err error) {
	if st, e := os.Stat(s); e == nil && !st.IsDir() {
		return s, nil, nil
	}
	parts := strings.Split(s, ":")
	for i := len(parts) - 1; i >= 1; i-- {
		p := strings.Join(parts[:i], ":")
		if st, e := os.Stat(p); e != nil || st.IsDir() {
			continue
		}
		rest := parts[i:]
		if len(rest) > 2 {
			return "", nil, &StrengthError{Spec: s, TooMany: true}
		}
		for _, v := range rest {
			f, ok := parseStrength(v)
			if !ok {
				return "", nil, &StrengthError{Spec: s, Value: v}
			}
			nums = append(nums, f)
		}
		return p, nums, nil
	}
	for len(parts) > 1 && len(nums) < 2 {
		last := parts[len(parts)-1]
		f, ok := parseStrength(last)
		if !ok {
			if looksNumeric(last) || last == "" {
				return "", nil, &StrengthError{Spec: s, Value: last}
			}
			break
		}
		nums = append([]float64{f}, nums...)
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 1 && len(nums) == 2 {
		if _, ok := parseStrength(parts[len(parts)-1]); ok {
			return "", nil, &StrengthError{Spec: s, TooMany: true}
		}
	}
	return strings.Join(parts, ":"), nums, nil
}
