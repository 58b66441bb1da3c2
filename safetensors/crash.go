package safetensors

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
)

// crash output and exit, replaceable by tests.
var (
	crashOut  io.Writer = os.Stderr
	crashExit           = os.Exit
	crashOnce sync.Once
)

// Guard is deferred first thing in every goroutine of a command and in the
// main one: `defer safetensors.Guard()()`. It turns memory faults on
// mapped inputs into panics (debug.SetPanicOnFault: a file truncated while
// mapped raises SIGBUS) and handles any panic the same way: the temporary
// files of every live Writer are removed, one line is printed (the stack
// trace too when LORATOOL_DEBUG is set) and the process exits with status
// 1. A crash never exits with status 2, which means bad usage.
func Guard() func() {
	debug.SetPanicOnFault(true)
	return func() {
		if r := recover(); r != nil {
			handleCrash(r, debug.Stack())
		}
	}
}

// faultAddr reports whether a recovered value is a memory fault.
func isFault(r any) bool {
	_, ok := r.(interface{ Addr() uintptr })
	return ok
}

func handleCrash(r any, stack []byte) {
	crashOnce.Do(func() {
		liveMu.Lock()
		for w := range live {
			_ = os.Remove(w.tmp)
		}
		liveMu.Unlock()
		msg := fmt.Sprint(r)
		if isFault(r) {
			msg = "an input file was truncated or changed while being read (memory fault on its mapping); nothing written"
		} else {
			msg = "internal error: " + strings.Join(strings.Fields(msg), " ") + " (a bug: please report it; LORATOOL_DEBUG=1 shows the stack trace)"
		}
		fmt.Fprintf(crashOut, "loratool: %s\n", msg)
		if os.Getenv("LORATOOL_DEBUG") != "" {
			crashOut.Write(stack)
		}
		crashExit(1)
	})
}
