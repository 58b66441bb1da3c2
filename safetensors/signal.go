package safetensors

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

var signalOnce sync.Once

// CleanupOnSignal installs, once per process, a handler for SIGINT,
// SIGTERM, SIGHUP (terminal or SSH session closed) and SIGQUIT that removes
// the temporary files of every live Writer and then exits with status
// 128+signal (130, 143, 129, 131). Destination files are never partially
// written, so after the handler runs no trace of the interrupted writes
// remains. (SIGKILL cannot be caught: it can leave a stray
// ".loratool-<pid>-*.tmp" file, never a partial destination; the next run
// writing to that folder removes it, see CleanStale.)
func CleanupOnSignal() {
	signalOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
		go func() {
			sig := <-ch
			abortAll()
			code := 128 + int(syscall.SIGINT)
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			os.Exit(code)
		}()
	})
}

// abortAll removes the temporary files of all live writers. It removes the
// files directly (without taking each writer's lock) so that it cannot
// block behind a write in progress; the registry lock stays held so no new
// temporary file appears before the process exits.
func abortAll() {
	liveMu.Lock()
	for w := range live {
		_ = os.Remove(w.tmp)
	}
	// The lock is intentionally not released: the caller exits.
}
