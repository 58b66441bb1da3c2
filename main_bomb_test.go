package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/loratool/loratool/convert/pt/pttest"
)

// bombEnv makes the test binary run loratool under a data-segment limit
// (RLIMIT_DATA: heap and anonymous mappings, not the read-only file
// mappings of the inputs) with the arguments in bombArgs.
const (
	bombEnv     = "LORATOOL_BOMB_ARGS"
	bombLimitMB = 512
)

func init() {
	args := os.Getenv(bombEnv)
	if args == "" {
		return
	}
	lim := syscall.Rlimit{Cur: bombLimitMB << 20, Max: bombLimitMB << 20}
	if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(3)
	}
	var a []string
	if err := json.Unmarshal([]byte(args), &a); err != nil {
		os.Exit(3)
	}
	os.Args = append([]string{"loratool"}, a...)
	os.Exit(mainCode())
}

// writeSparse writes a safetensors file whose data section is a hole: the
// header declares the tensors, the file is extended to its full size.
func writeSparse(t *testing.T, path string, tensors map[string][]int64, dt string, elem int64) {
	t.Helper()
	hdr := map[string]any{}
	var off int64
	for name, shape := range tensors {
		n := elem
		for _, d := range shape {
			n *= d
		}
		hdr[name] = map[string]any{"dtype": dt, "shape": shape, "data_offsets": []int64{off, off + n}}
		off += n
	}
	b, _ := json.Marshal(hdr)
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	binary.Write(f, binary.LittleEndian, uint64(len(b)))
	f.Write(b)
	if err := f.Truncate(8 + int64(len(b)) + off); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// writePTBomb writes a 2 MB torch zip whose deflated storage inflates to
// 2 GiB, viewed as the lora_down [2^19, 1024] of a module.
func writePTBomb(t *testing.T, path string) {
	t.Helper()
	const m = "lora_te_text_model_encoder_layers_0_mlp_fc1"
	tmp := path + ".src"
	err := pttest.WriteStateDict(tmp, []pttest.Tensor{
		{Name: m + ".lora_down.weight", Storage: "FloatStorage", Shape: []int64{1 << 19, 1024}},
		{Name: m + ".lora_up.weight", Storage: "FloatStorage", Shape: []int64{32, 4}, Data: make([]byte, 512)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var chunk bytes.Buffer
	fw, _ := flate.NewWriter(&chunk, flate.BestCompression)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if f.Name == "archive/data/0" {
			raw, err := zw.CreateRaw(&zip.FileHeader{Name: f.Name, Method: zip.Deflate,
				CompressedSize64: uint64(chunk.Len()*2048 + 2), UncompressedSize64: 1 << 31})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2048; i++ {
				raw.Write(chunk.Bytes())
			}
			raw.Write([]byte{0x03, 0x00})
			continue
		}
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMemoryBombs runs every command on crafted files whose shapes would
// need gigabytes, in a child process limited to 512 MiB of data: each
// sees a clean one-line error (or, for inspect, a clean report) within the
// limit, never a runtime crash.
func TestMemoryBombs(t *testing.T) {
	if testing.Short() {
		t.Skip("child processes")
	}
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	const m = "lora_te_text_model_encoder_layers_0_mlp_fc1"
	// rank 4M on a [32,16] weight: 512 MiB of factors (sparse)
	writeSparse(t, p("rank.safetensors"), map[string][]int64{m + ".lora_up.weight": {32, 1 << 22}, m + ".lora_down.weight": {1 << 22, 16}}, "F16", 2)
	// a [2^20, 2^20] dense delta from 32 MiB of factors
	writeSparse(t, p("wide.safetensors"), map[string][]int64{m + ".lora_up.weight": {1 << 20, 8}, m + ".lora_down.weight": {8, 1 << 20}}, "F16", 2)
	// a LoKr of kron([4096,4096], [4096,4096]) from 64 MiB of factors
	writeSparse(t, p("lokr.safetensors"), map[string][]int64{m + ".lokr_w1": {4096, 4096}, m + ".lokr_w2": {4096, 4096}}, "F16", 2)
	// rank 65536 on a [32,16] weight: r×r Gram matrices would be 32 GiB
	writeSparse(t, p("gram.safetensors"), map[string][]int64{m + ".lora_up.weight": {32, 1 << 16}, m + ".lora_down.weight": {1 << 16, 16}}, "F16", 2)
	writePTBomb(t, p("bomb.pt"))
	mdir := p("models")
	os.MkdirAll(filepath.Join(mdir, "checkpoints"), 0o755)
	os.MkdirAll(filepath.Join(mdir, "loras"), 0o755)
	base, _ := os.ReadFile("testdata/demo/sd15-tiny.safetensors")
	os.WriteFile(filepath.Join(mdir, "checkpoints", "m.safetensors"), base, 0o644)
	os.Link(p("rank.safetensors"), filepath.Join(mdir, "loras", "r.safetensors"))
	wf := `{"1":{"class_type":"CheckpointLoaderSimple","inputs":{"ckpt_name":"m.safetensors"}},"2":{"class_type":"LoraLoader","inputs":{"model":["1",0],"clip":["1",1],"lora_name":"r.safetensors","strength_model":1,"strength_clip":1}},"3":{"class_type":"KSampler","inputs":{"model":["2",0],"positive":["4",0]}},"4":{"class_type":"CLIPTextEncode","inputs":{"clip":["2",1],"text":"x"}}}`
	os.WriteFile(p("wf.json"), []byte(wf), 0o644)
	demo := "testdata/demo/sd15-tiny.safetensors"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"inspect", []string{"inspect", "--stats", p("lokr.safetensors"), p("gram.safetensors"), p("wide.safetensors")}, 0, ""},
		{"merge", []string{"merge", "--base", demo, "--lora", p("rank.safetensors"), "-o", p("o1.safetensors")}, 1, "dense size limit"},
		{"merge loras", []string{"merge", "--arch", "sd1", "--lora", p("wide.safetensors"), "--lora", p("wide.safetensors"), "-o", p("o2.safetensors")}, 1, "dense size limit"},
		{"convert", []string{"convert", p("lokr.safetensors"), "--arch", "sd1", "--to", "diffusers", "--approximate", "-o", p("o3.safetensors")}, 1, "dense size limit"},
		{"convert pt", []string{"convert", p("bomb.pt"), "--arch", "sd1", "--to", "diffusers", "-o", p("o4.safetensors")}, 1, "dense size limit"},
		{"resize", []string{"resize", p("wide.safetensors"), "--rank", "4", "-o", p("o5.safetensors")}, 1, "dense size limit"},
		{"extract", []string{"extract", "--base", demo, "--tuned", p("wide.safetensors"), "--rank", "4", "-o", p("o6.safetensors")}, 1, ""},
		{"workflow bake", []string{"workflow", "bake", p("wf.json"), "-m", mdir, "-o", p("o7.safetensors")}, 1, "dense size limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := json.Marshal(tc.args)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), bombEnv+"="+string(a))
			var stderr bytes.Buffer
			cmd.Stderr, cmd.Stdout = &stderr, &bytes.Buffer{}
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			out := stderr.String()
			if code != tc.code || strings.Contains(out, "goroutine") || strings.Contains(out, "fatal error") || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d (want %d), stderr:\n%.2000s", code, tc.code, out)
			}
		})
	}
}
