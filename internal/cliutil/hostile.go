package cliutil

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v3"
)

// MaxDenseFlag returns the --max-dense flag: the bound, in elements, on the
// dense delta one adapter module may imply where no target weight bounds
// it (LoRA+LoRA merges, convert --approximate, resize).
func MaxDenseFlag() cli.Flag {
	return &cli.Int64Flag{Name: "max-dense", Value: 1 << 28, Usage: "refuse modules whose dense delta would exceed this many elements where no target weight bounds it; the default, 268435456, is 1 GiB of float32",
		Validator: func(v int64) error {
			if v < 0 {
				return fmt.Errorf("--max-dense must be positive")
			}
			return nil
		}}
}

// Safe returns s made safe for a terminal: control characters (C0, DEL,
// C1, bidi overrides and other format characters) and invalid UTF-8 are
// shown escaped the way %q shows them, everything else is unchanged. It
// is for human output only; JSON output keeps exact strings.
func Safe(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || unsafeRune(r) {
			return true
		}
		i += n
	}
	return false
}

func unsafeRune(r rune) bool {
	if r == '\t' {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// Finite returns an error when v (a strength) is NaN, infinite, or too
// large to be a float32 (it would become infinite in the math).
func Finite(what string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s %v is not a finite number", what, v)
		}
		return fmt.Errorf("%s %v is too large (beyond float32)", what, v)
	}
	return nil
}

// SafeWriter wraps w for human output: every Write is passed through Safe,
// except that a final newline is kept, so each Fprintf/Fprintln call
// produces its line with file-derived control characters (embedded
// newlines included) shown escaped. JSON output must not go through it.
func SafeWriter(w io.Writer) io.Writer { return safeWriter{w} }

type safeWriter struct{ w io.Writer }

func (s safeWriter) Write(p []byte) (int, error) {
	body, nl := p, false
	if len(body) > 0 && body[len(body)-1] == '\n' {
		body, nl = body[:len(body)-1], true
	}
	str := string(body)
	if !needsEscape(str) {
		return s.w.Write(p)
	}
	out := Safe(str)
	if nl {
		out += "\n"
	}
	if _, err := io.WriteString(s.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SafeLines is Safe applied to each line of a multi-line text of our own
// (the line breaks between lines are kept).
func SafeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Safe(l)
	}
	return strings.Join(lines, "\n")
}
