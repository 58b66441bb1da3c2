package extract

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/dtype"
)

// runCommand runs `extract args...` and returns its exit code and stdout.
func runCommand(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := Command()
	cmd.ExitErrHandler = func(context.Context, *cli.Command, error) {}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout = w
	devnull, _ := os.Open(os.DevNull)
	os.Stderr = devnull
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	err = cmd.Run(context.Background(), append([]string{"extract"}, args...))
	w.Close()
	os.Stdout, os.Stderr = stdout, stderr
	devnull.Close()
	out := <-done
	code := 0
	if err != nil {
		var ec cli.ExitCoder
		if !errors.As(err, &ec) {
			t.Fatalf("error without exit code: %v", err)
		}
		code = ec.ExitCode()
	}
	return code, out
}

func TestCommand(t *testing.T) {
	cs := []change{{suffix: "attn1.to_q.weight", minDim: 40, signal: sig, floor: 0.02}}
	pr := makePair(t, "sd1", cs, dtype.F16)
	out := tmpPath(t, "lora.safetensors")
	report := tmpPath(t, "report.json")
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"missing base", []string{"--tuned", pr.tuned, "-o", out, "--rank", "4"}, 2},
		{"no rank", []string{"--base", pr.base, "--tuned", pr.tuned, "-o", out}, 2},
		{"bad rule", []string{"--base", pr.base, "--tuned", pr.tuned, "-o", out, "--rank-rule", "bogus:1"}, 2},
		{"missing file", []string{"--base", pr.base + ".nope", "--tuned", pr.tuned, "-o", out, "--rank", "4"}, 1},
	} {
		if code, _ := runCommand(t, tc.args...); code != tc.code {
			t.Errorf("%s: exit code %d, want %d", tc.name, code, tc.code)
		}
	}
	// flags after other flags, --json on stdout, --report file
	code, stdout := runCommand(t, "-o", out, "--rank", "4", "--base", pr.base, "--json", "--tuned", pr.tuned, "--report", report)
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var rep Report
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &rep) != nil || len(rep.Modules) != 1 || rep.Modules[0].Rank != 4 {
		t.Fatalf("--json output %q", stdout)
	}
	b, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(b, &rep) != nil || rep.Output != out {
		t.Errorf("report file: %v", err)
	}
	// the output exists now: refused without --overwrite (failure), accepted with it
	if code, _ := runCommand(t, "--base", pr.base, "--tuned", pr.tuned, "-o", out, "--rank", "4"); code != 1 {
		t.Errorf("existing output: exit code %d, want 1", code)
	}
	if code, _ := runCommand(t, "--base", pr.base, "--tuned", pr.tuned, "-o", out, "--rank", "4", "--overwrite", "--conv-rank", "0"); code != 0 {
		t.Errorf("--overwrite: exit code %d", code)
	}
}
