// Package cliutil holds what every loratool command shares: exit codes,
// JSON Lines output and progress bars that appear only on terminals.
package cliutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/urfave/cli/v3"
	"golang.org/x/term"

	"github.com/loratool/loratool/arch"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Usage returns an error that makes loratool exit with status 2.
func Usage(format string, args ...any) error {
	return cli.Exit("loratool: "+fmt.Sprintf(format, args...)+" (see --help)", ExitUsage)
}

// Fail returns an error that makes loratool exit with status 1.
func Fail(format string, args ...any) error {
	return cli.Exit("loratool: "+fmt.Sprintf(format, args...), ExitFailed)
}

// Silent returns an error that exits with status 1 without a message
// (the command already reported each failure).
func Silent() error { return cli.Exit("", ExitFailed) }

// StderrIsTerminal reports whether progress bars should be drawn.
func StderrIsTerminal() bool { return term.IsTerminal(int(os.Stderr.Fd())) }

// jsonWritten counts the JSON lines written (JSONFailure adds none when a
// command already reported its inputs).
var jsonWritten atomic.Int64

// JSONLines writes one JSON object per line, safe for concurrent use.
type JSONLines struct {
	mu sync.Mutex
	w  io.Writer
}

// NewJSONLines returns a JSON Lines writer on w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// Write encodes v as one line.
func (j *JSONLines) Write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, err = j.w.Write(append(b, '\n'))
	jsonWritten.Add(1)
	return err
}

// ArchFlag resolves the command's --arch value (an id or an alias such as
// sd15, xl, flux-dev) to a registry id; an unknown name is bad usage
// (exit 2) listing the ids. "" means: detect.
func ArchFlag(cmd *cli.Command) (string, error) {
	id, err := arch.ParseID(cmd.String("arch"))
	if err != nil {
		return "", Usage("--arch: %v", err)
	}
	return id, nil
}

// JSONFailure makes a command that failed (exit 1) with --json and printed
// no JSON yet still print one JSON object, {"file":…,"error":…}, on stdout. file is the first of
// candidates that the message starts with (the input the error is
// about), else the first candidate. err is returned unchanged.
func JSONFailure(cmd *cli.Command, err error, candidates ...string) error {
	var ec cli.ExitCoder
	if err == nil || !cmd.Bool("json") || !errors.As(err, &ec) || ec.ExitCode() != ExitFailed || ec.Error() == "" || jsonWritten.Load() > 0 {
		return err
	}
	msg := strings.TrimPrefix(ec.Error(), "loratool: ")
	file := ""
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if file == "" || strings.HasPrefix(msg, c+":") {
			file = c
			if strings.HasPrefix(msg, c+":") {
				break
			}
		}
	}
	NewJSONLines(os.Stdout).Write(struct {
		File  string `json:"file"`
		Error string `json:"error"`
	}{file, msg})
	return err
}
