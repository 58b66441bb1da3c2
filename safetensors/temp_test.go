package safetensors

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOutputModeFollowsUmask: new outputs get 0666 minus the umask, a
// replaced output keeps its mode.
func TestOutputModeFollowsUmask(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "new.safetensors")
	if err := WriteFile(p, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode %v, want 0640 under umask 027", fi.Mode().Perm())
	}
	q := filepath.Join(dir, "kept.safetensors")
	if err := os.WriteFile(q, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(q, 0o604)
	if err := WriteFile(q, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(q); fi.Mode().Perm() != 0o604 {
		t.Errorf("replaced file mode %v, want 0604 kept", fi.Mode().Perm())
	}
}

// TestLongOutputName: a 255-byte destination name works (the temporary
// name is short) and a missing folder is created.
func TestLongOutputName(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "b", strings.Repeat("x", 255-len(".safetensors"))+".safetensors")
	if err := WriteFile(p, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
}

func TestTempPID(t *testing.T) {
	for _, tc := range []struct {
		name string
		pid  int
		ok   bool
	}{
		{".loratool-123-456.tmp", 123, true},
		{".loratool-123-.tmp", 0, false},
		{".loratool-x-456.tmp", 0, false},
		{".loratool-123-45a.tmp", 0, false},
		{".out.safetensors.tmp-123", 0, false},
		{"loratool-123-456.tmp", 0, false},
	} {
		pid, ok := tempPID(tc.name)
		if ok != tc.ok || (ok && pid != tc.pid) {
			t.Errorf("tempPID(%q) = %d, %v", tc.name, pid, ok)
		}
	}
}

// TestHugeNumberClipped: a 100 KB number in a header is not echoed whole.
func TestHugeNumberClipped(t *testing.T) {
	num := strings.Repeat("9", 100_000)
	js := `{"t":{"dtype":"F32","shape":[` + num + `],"data_offsets":[0,4]}}`
	buf := make([]byte, 8, 8+len(js))
	binary.LittleEndian.PutUint64(buf, uint64(len(js)))
	buf = append(buf, js...)
	_, err := ParseHeader(buf, int64(len(buf)+4))
	if err == nil || len(err.Error()) > 300 || !strings.Contains(err.Error(), "(100000 characters)") {
		t.Errorf("err = %.400v", err)
	}
}
