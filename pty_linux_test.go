//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/internal/fixture"
)

// openPTY opens a pseudo-terminal pair of cols columns (Linux /dev/ptmx;
// x/sys/unix instead of a pty library, see docs/design.md).
func openPTY(t *testing.T, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pts: %v", err)
	}
	ws := unix.Winsize{Row: 40, Col: cols}
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &ws)
	return m, s
}

// runTTY runs loratool (this test binary re-executed) with stderr — and
// stdout too when both — on a pseudo-terminal; it returns what the
// terminal received and, when stdout is not the terminal, stdout.
func runTTY(t *testing.T, dir string, both bool, args ...string) (tty, stdout string, code int) {
	t.Helper()
	m, s := openPTY(t, 120)
	defer m.Close()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LORATOOL_TEST_MAIN=1")
	var out bytes.Buffer
	cmd.Stderr = s
	cmd.Stdout = &out
	if both {
		cmd.Stdout = s
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&buf, m) // ends with EIO once the child has exited
		close(done)
	}()
	err := cmd.Wait()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("pty output did not end")
	}
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return buf.String(), out.String(), code
}

// screen replays terminal output (\r, \n, backspace-free text, CSI K / 2K
// erases, other escape sequences ignored) and returns the final lines,
// trailing blanks trimmed.
func screen(s string) []string {
	lines := [][]rune{{}}
	row, col := 0, 0
	put := func(r rune) {
		for len(lines[row]) <= col {
			lines[row] = append(lines[row], ' ')
		}
		lines[row][col] = r
		col++
	}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\r':
			col = 0
		case '\n':
			row++
			col = 0
			if row == len(lines) {
				lines = append(lines, []rune{})
			}
		case 0x1b:
			j := i + 1
			if j < len(rs) && rs[j] == '[' {
				j++
				start := j
				for j < len(rs) && (rs[j] < 0x40 || rs[j] > 0x7e) {
					j++
				}
				if j < len(rs) && rs[j] == 'K' {
					arg := string(rs[start:j])
					if arg == "2" {
						lines[row] = lines[row][:0]
					} else if col < len(lines[row]) {
						lines[row] = lines[row][:col]
					}
				}
			}
			i = j
		default:
			put(r)
		}
	}
	var out []string
	for _, l := range lines {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func writeFixtures(t *testing.T, dir string) {
	t.Helper()
	if _, err := fixture.WriteCheckpoint(filepath.Join(dir, "base.safetensors"), fixture.CheckpointSpec{Arch: "sd1", Size: arch.Tiny, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		if _, err := fixture.WriteLoRA(filepath.Join(dir, "loras", fmt.Sprintf("l%d.safetensors", i)), fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Rank: 4, Alpha: 2, Seed: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fixture.WriteCheckpoint(filepath.Join(dir, "loras", "zz-model.safetensors"), fixture.CheckpointSpec{Arch: "sd1", Size: arch.Tiny, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	// a ComfyUI workflow over a models folder, for workflow bake
	for _, d := range []string{"checkpoints", "loras"} {
		if err := os.MkdirAll(filepath.Join(dir, "models", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fixture.WriteCheckpoint(filepath.Join(dir, "models", "checkpoints", "base.safetensors"), fixture.CheckpointSpec{Arch: "sd1", Size: arch.Tiny, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.WriteLoRA(filepath.Join(dir, "models", "loras", "style.safetensors"), fixture.LoRASpec{Arch: "sd1", Size: arch.Tiny, Rank: 4, Alpha: 2, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	wf := `{"3": {"inputs": {"seed": 1, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "model": ["11", 0], "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["5", 0]}, "class_type": "KSampler"},
"4": {"inputs": {"ckpt_name": "base.safetensors"}, "class_type": "CheckpointLoaderSimple"},
"5": {"inputs": {"width": 512, "height": 512, "batch_size": 1}, "class_type": "EmptyLatentImage"},
"6": {"inputs": {"text": "sks, a rose", "clip": ["11", 1]}, "class_type": "CLIPTextEncode"},
"11": {"inputs": {"lora_name": "style.safetensors", "strength_model": 0.8, "strength_clip": 0.5, "model": ["4", 0], "clip": ["4", 1]}, "class_type": "LoraLoader"}}`
	if err := os.WriteFile(filepath.Join(dir, "wf.json"), []byte(wf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// etaRE matches the bar's "[elapsed:remaining]" ETA.
var etaRE = regexp.MustCompile(`\[[0-9hms.]+:[0-9hms.]+\]`)

// TestProgressOnTerminal runs the real binary with stderr on a
// pseudo-terminal: each long job draws a bar (phase name, percentage) and
// leaves the screen clean — the final screen holds the result lines only,
// each whole on its own line.
func TestProgressOnTerminal(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "loras"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFixtures(t, dir)
	cases := []struct {
		name   string
		both   bool
		args   []string
		phases []string // drawn at some point
		final  []string // the final screen, line by line (regexp-free prefixes)
	}{
		{"merge", false, []string{"merge", "--base", "base.safetensors", "--lora", "loras/l0.safetensors", "-o", "out.safetensors"},
			[]string{"planning", "merging", "%", "B/s", "fsync"}, []string{"wrote out.safetensors: sd1,", "kept "}},
		{"workflow bake", false, []string{"workflow", "bake", "wf.json", "--models-dir", "models", "-o", "models/checkpoints/baked.safetensors"},
			[]string{"baking", "%"}, []string{"wrote models/checkpoints/baked.safetensors: sd1", "kept "}},
		{"convert folder", true, []string{"convert", "--to", "comfy", "loras", "--out-dir", "conv", "-j", "1"},
			[]string{"converting", "%", "files/s"}, nil},
		{"inspect folder --hash", false, []string{"inspect", "loras", "--hash", "--json"},
			[]string{"hashing", "%"}, []string{"7 inspected (6 LoRAs, 1 checkpoint), 0 failed"}},
		{"extract", false, []string{"extract", "--base", "base.safetensors", "--tuned", "out.safetensors", "-o", "ex.safetensors", "--rank", "2"},
			[]string{"extracting", "%"}, []string{"extract: sd1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tty, _, code := runTTY(t, dir, c.both, c.args...)
			if code != 0 {
				t.Fatalf("exit %d; terminal:\n%q", code, tty)
			}
			for _, p := range c.phases {
				if !strings.Contains(tty, p) {
					t.Errorf("no %q drawn on the terminal:\n%q", p, tty)
				}
			}
			if !etaRE.MatchString(tty) {
				t.Errorf("no [elapsed:left] ETA drawn:\n%q", tty)
			}
			if !strings.Contains(tty, "\r") {
				t.Errorf("no bar redraw (\\r) on the terminal:\n%q", tty)
			}
			scr := screen(tty)
			for _, l := range scr {
				for _, p := range append(c.phases, "|", "█") {
					if p != "%" && strings.Contains(l, p) && !strings.HasPrefix(l, "wrote") {
						t.Errorf("bar left on the final screen: %q\nscreen:\n%s", l, strings.Join(scr, "\n"))
					}
				}
				if strings.Contains(l, "%|") || strings.Contains(l, "it/s") || strings.Contains(l, "files/s") {
					t.Errorf("bar fragment on the final screen: %q", l)
				}
			}
			for i, want := range c.final {
				found := false
				for _, l := range scr {
					found = found || strings.HasPrefix(l, want)
				}
				if !found {
					t.Errorf("final screen lacks line %d %q:\n%s", i, want, strings.Join(scr, "\n"))
				}
			}
			if c.name == "convert folder" {
				// result lines print above the bar, whole
				n := 0
				for _, l := range scr {
					if strings.HasPrefix(l, "loras/l") && strings.Contains(l, " → conv/l") && strings.HasSuffix(l, "modules)") {
						n++
					}
				}
				if n != 6 {
					t.Errorf("%d whole result lines on the final screen, want 6:\n%s", n, strings.Join(scr, "\n"))
				}
				if scr[len(scr)-1] != "6 converted, 1 skipped, 0 failed" {
					t.Errorf("last line %q", scr[len(scr)-1])
				}
			}
		})
	}
}

// TestNoControlCodesWithoutTerminal: with stderr a pipe, no \r and no
// escape sequence reaches it.
func TestNoControlCodesWithoutTerminal(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "loras"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFixtures(t, dir)
	for _, args := range [][]string{
		{"merge", "--base", "base.safetensors", "--lora", "loras/l0.safetensors", "-o", "out.safetensors"},
		{"convert", "--to", "comfy", "loras", "--out-dir", "conv"},
		{"resize", "loras", "--rank", "2", "--out-dir", "rs"},
		{"inspect", "loras", "--hash", "--stats"},
		{"extract", "--base", "base.safetensors", "--tuned", "out.safetensors", "-o", "ex.safetensors", "--rank", "2"},
		{"workflow", "bake", "wf.json", "--models-dir", "models", "-o", "models/checkpoints/baked.safetensors"},
	} {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LORATOOL_TEST_MAIN=1")
		var stderr, stdout bytes.Buffer
		cmd.Stderr, cmd.Stdout = &stderr, &stdout
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr.String())
		}
		for name, b := range map[string][]byte{"stderr": stderr.Bytes(), "stdout": stdout.Bytes()} {
			if i := bytes.IndexAny(b, "\r\x1b"); i >= 0 {
				t.Errorf("%s %v: control character at %d: %q", name, args[0], i, b[max(0, i-40):min(len(b), i+40)])
			}
		}
	}
}
