package cliutil

import "testing"

func TestSuggest(t *testing.T) {
	cmds := []string{"inspect", "merge", "convert", "resize", "extract", "workflow"}
	for _, c := range []struct{ in, want string }{
		{"merg", "merge"},
		{"inspct", "inspect"},
		{"Merge", "merge"},
		{"conv", "convert"},
		{"rezise", "resize"},
		{"xyz", ""},
		{"m", ""},
		{"bake", ""},
	} {
		if got := Suggest(c.in, cmds); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"flux", "flux", 0}, {"sd15", "sd1", 1}, {"bsae", "base", 1}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}
