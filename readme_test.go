package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeGoVersion: the Go version README asks for is go.mod's, and
// no user doc speaks of how the tool was built instead of the tool.
func TestReadmeGoVersion(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "Go "+string(m[1])+" or newer") {
		t.Errorf("README does not ask for Go %s (go.mod)", m[1])
	}
	if strings.Contains(string(readme), "@latest") {
		t.Error("README suggests go install …@latest, but the module is installed from a checkout")
	}
	docs, _ := os.ReadDir("docs")
	files := []string{"README.md"}
	for _, d := range docs {
		if strings.HasSuffix(d.Name(), ".md") && d.Name() != "design.md" {
			files = append(files, "docs/"+d.Name())
		}
	}
	bad := regexp.MustCompile(`(?i)\bthe brief\b|\bbrief's\b|\bthe issue\b`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if loc := bad.FindIndex(b); loc != nil {
			t.Errorf("%s mentions %q: user docs describe the tool", f, b[loc[0]:loc[1]])
		}
	}
}
