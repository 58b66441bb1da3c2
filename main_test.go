package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	// the pseudo-terminal tests re-execute this binary as loratool
	if os.Getenv("LORATOOL_TEST_MAIN") == "1" {
		os.Exit(run(append([]string{"loratool"}, os.Args[1:]...)))
	}
	testscript.Main(m, map[string]func(){
		"loratool":    func() { os.Exit(mainCode()) },
		"lorafixture": loraFixtureMain,
	})
}

// TestScripts runs the CLI scenarios in testdata/script (testscript
// format): exit codes, flags after file names, JSON output, help texts.
func TestScripts(t *testing.T) {
	demo, err := filepath.Abs(filepath.Join("testdata", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("DEMO", demo)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"fixture":     cmdFixture,
			"variantfile": cmdVariantFile,
			"mkst":        cmdMkst,
			"mkfifo":      cmdMkfifo,
			"truncate":    cmdTruncate,
		},
	})
}
