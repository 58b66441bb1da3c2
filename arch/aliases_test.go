package arch

import (
	"errors"
	"strings"
	"testing"
)

func TestLookupAliases(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"sd1", "sd1"}, {"sd15", "sd1"}, {"SD1.5", "sd1"}, {"sd 1.5", "sd1"},
		{"sd21", "sd2"}, {"xl", "sdxl"}, {"sdxl1", "sdxl"}, {"SDXL", "sdxl"},
		{"flux", "flux1"}, {"flux-dev", "flux1"}, {"flux_dev", "flux1"}, {"flux1", "flux1"},
		{"wan21", "wan"}, {"wan22", "wan"}, {"qwen", "qwen-image"}, {"sd3.5", "sd3"},
	} {
		a, ok := Lookup(c.in)
		if !ok || a.ID != c.want {
			t.Errorf("Lookup(%q) = %v, %v; want %s", c.in, a, ok, c.want)
		}
	}
	if _, err := ParseID("sd9"); err == nil || !strings.Contains(err.Error(), "sd1, sd2") {
		t.Errorf("ParseID(sd9) = %v", err)
	} else if ue := (*UnknownError)(nil); !errors.As(err, &ue) {
		t.Errorf("ParseID error is %T", err)
	}
	// every alias names a registered architecture
	for k, v := range aliases {
		if _, ok := ByID(v); !ok {
			t.Errorf("alias %q -> %q: no such architecture", k, v)
		}
		if _, ok := ByID(k); ok {
			t.Errorf("alias %q shadows an id", k)
		}
	}
}
