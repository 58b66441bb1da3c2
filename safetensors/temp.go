package safetensors

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Temporary files are named ".loratool-<pid>-<random>.tmp" in the
// destination's folder: short (so that destination names up to the 255-byte
// limit work) and recognisable, so that the files a killed run left behind
// (SIGKILL, power loss) can be removed by the next run.
const tempPrefix = ".loratool-"

// StaleNotice, when set, is called for every stale temporary file removed
// by CreateTemp, so that the command can say so.
var StaleNotice func(path string, size int64)

var (
	staleMu   sync.Mutex
	staleDone = map[string]bool{}
)

// CreateTemp creates a temporary file for a destination in dir, after
// removing (once per folder and process) the stale temporary files of
// loratool runs that are no longer alive.
func CreateTemp(dir string) (*os.File, error) {
	CleanStale(dir)
	return os.CreateTemp(dir, tempPrefix+strconv.Itoa(os.Getpid())+"-*.tmp")
}

// CleanStale removes the temporary files in dir named by loratool runs whose
// process no longer exists, and returns their names.
func CleanStale(dir string) []string {
	staleMu.Lock()
	defer staleMu.Unlock()
	if staleDone[dir] {
		return nil
	}
	staleDone[dir] = true
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		pid, ok := tempPID(e.Name())
		if !ok || pid == os.Getpid() || alive(pid) || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		var size int64
		if fi, err := e.Info(); err == nil {
			size = fi.Size()
		}
		if os.Remove(p) == nil {
			removed = append(removed, p)
			if StaleNotice != nil {
				StaleNotice(p, size)
			}
		}
	}
	return removed
}

// tempPID parses ".loratool-<pid>-<digits>.tmp".
func tempPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, ".tmp")
	if !ok {
		return 0, false
	}
	p, r, ok := strings.Cut(rest, "-")
	if !ok || r == "" || strings.Trim(r, "0123456789") != "" {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

// alive reports whether a process with this pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// OutputMode is the permission of a new output file at path: the mode of
// the file it replaces, else 0666 minus the process umask (as a plain
// create would give).
func OutputMode(path string) os.FileMode {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		return fi.Mode().Perm()
	}
	return 0o666 &^ currentUmask()
}

// currentUmask reads the umask from /proc (no window in which another
// goroutine's create would see a changed umask), else sets and restores it.
func currentUmask() os.FileMode {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return os.FileMode(m)
				}
			}
		}
	}
	m := syscall.Umask(0o022)
	syscall.Umask(m)
	return os.FileMode(m)
}
