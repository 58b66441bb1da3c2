package cliutil

import (
	"bytes"
	"fmt"
	"math"
	"testing"
)

func TestSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain name.safetensors", "plain name.safetensors"},
		{"tab\tkept", "tab\tkept"},
		{"\x1b]0;TITLE\a\x1b[2J", `\x1b]0;TITLE\a\x1b[2J`},
		{"line\nbreak\r", `line\nbreak\r`},
		{"del\x7f c1\u009b", `del\x7f c1\u009b`},
		{"bidi\u202eevil", `bidi\u202eevil`},
		{"bad \xff utf8", `bad \xff utf8`},
		{"日本語 ok", "日本語 ok"},
	} {
		if got := Safe(tc.in); got != tc.want {
			t.Errorf("Safe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSafeWriter(t *testing.T) {
	var b bytes.Buffer
	w := SafeWriter(&b)
	fmt.Fprintf(w, "file %s\n", "a\x1b[2J\nb")
	fmt.Fprint(w, "no newline \x07")
	fmt.Fprintln(w)
	want := "file a\\x1b[2J\\nb\nno newline \\a\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestFinite(t *testing.T) {
	for _, v := range []float64{0, 1, -100, 3.4e38} {
		if err := Finite("strength", v); err != nil {
			t.Errorf("Finite(%v) = %v", v, err)
		}
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e39, -1e300} {
		if err := Finite("strength", v); err == nil {
			t.Errorf("Finite(%v) accepted", v)
		}
	}
}
