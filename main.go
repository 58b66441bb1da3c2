// Command loratool inspects, merges, converts and extracts LoRA files of
// diffusion models without Python, without a GPU and in bounded memory.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/convert"
	"github.com/loratool/loratool/extract"
	"github.com/loratool/loratool/inspect"
	"github.com/loratool/loratool/internal/cliutil"
	"github.com/loratool/loratool/merge"
	"github.com/loratool/loratool/meta"
	"github.com/loratool/loratool/safetensors"
	"github.com/loratool/loratool/workflow"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func root() *cli.Command {
	return &cli.Command{
		Name:    "loratool",
		Usage:   "inspect, merge, convert and extract LoRA files of diffusion models",
		Version: version,
		Description: `loratool reads LoRA files of every common dialect (kohya, LyCORIS,
diffusers/PEFT, ComfyUI/BFL, ai-toolkit, OneTrainer, XLabs, cloneofsimo) for
SD1.x, SD2.x, SDXL, SD3, Flux and later DiTs, and transforms them streaming
from memory-mapped files: no Python, no GPU, memory bounded by the largest
tensor.

Exit status: 0 success, 1 failure, 2 bad usage.`,
		Commands:       commands(),
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		OnUsageError:   usageError,
	}
}

func commands() []*cli.Command {
	merge.Version = version
	convert.Version = version
	cmds := []*cli.Command{inspect.Command(), merge.Command(), convert.Command(), convert.ResizeCommand(), extract.Command(), workflow.Command(), meta.Command()}
	var prepare func(cs []*cli.Command)
	prepare = func(cs []*cli.Command) {
		for _, c := range cs {
			c.OnUsageError = usageError
			tidyDefaults(c.Flags)
			if c.Action != nil {
				c.Action = jsonFailures(c.Action)
			}
			// file names may contain commas: never split --lora a,b.safetensors
			c.DisableSliceFlagSeparator = true
			prepare(c.Commands)
		}
	}
	prepare(cmds)
	return cmds
}

func main() { os.Exit(mainCode()) }

// mainCode is the whole program (signals, profiling, the command) and
// returns the exit status.
func mainCode() int {
	safetensors.CleanupOnSignal()
	safetensors.StaleNotice = func(p string, size int64) {
		fmt.Fprintf(os.Stderr, "loratool: removed %s (%d bytes), a temporary file left by an interrupted run\n", cliutil.Safe(p), size)
	}
	// LORATOOL_CPUPROFILE=file writes a CPU profile (for benchmarking).
	if p := os.Getenv("LORATOOL_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			code := run(os.Args)
			pprof.StopCPUProfile()
			f.Close()
			return code
		}
	}
	return run(os.Args)
}

func run(args []string) int {
	defer safetensors.Guard()()
	r := root()
	err := checkCommand(r, args[1:])
	if err == nil {
		err = r.Run(context.Background(), args)
	}
	if err == nil {
		return cliutil.ExitOK
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := ec.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, cliutil.SafeLines(msg))
		}
		return ec.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "loratool: %s (see --help)\n", cliutil.SafeLines(err.Error()))
	return cliutil.ExitUsage
}
