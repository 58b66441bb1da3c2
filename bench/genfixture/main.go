// Command genfixture writes synthetic checkpoints and LoRAs (package
// internal/fixture) for benchmarks:
//
//	go run ./bench/genfixture -kind checkpoint -arch sd1 -size full -dtype f16 -o /tmp/lt-bench/sd15.safetensors
//	go run ./bench/genfixture -kind lora -arch sdxl -rank 32 -format kohya -o x.safetensors
//	go run ./bench/genfixture -kind lora-folder -arch sd1 -size tiny -n 1000 -o /tmp/lt-bench/loras
//
// It prints one summary line on stderr: tensors, bytes, seconds.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loratool/loratool/arch"
	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/fixture"
	"github.com/loratool/loratool/safetensors"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genfixture:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("genfixture", flag.ContinueOnError)
	kind := fl.String("kind", "checkpoint", "checkpoint, lora or lora-folder")
	archID := fl.String("arch", "sd1", "architecture id ("+strings.Join(arch.IDs(), ", ")+")")
	size := fl.String("size", "full", "full or tiny")
	dt := fl.String("dtype", "f16", "f16, bf16, f32 or fp8 (e4m3fn)")
	layout := fl.String("layout", fixture.LayoutSingleFile, "checkpoint layout: single-file or diffusion-model")
	rank := fl.Int("rank", 32, "LoRA rank")
	alpha := fl.Float64("alpha", -1, "LoRA alpha (-1: the rank; 0: no alpha tensor)")
	format := fl.String("format", "kohya", "LoRA format: kohya, comfy, diffusers or peft")
	algo := fl.String("algo", "lora", "LoRA algorithm: lora, loha, lokr, full or dora")
	conv := fl.Bool("conv", false, "LoRA: also adapt 3x3 convolutions")
	n := fl.Int("n", 100, "lora-folder: number of files")
	seed := fl.Uint64("seed", 1, "value seed")
	out := fl.String("o", "", "output file (checkpoint, lora) or directory (lora-folder)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %v", fl.Args())
	}
	if *out == "" {
		return errors.New("-o is required")
	}
	var sz arch.Size
	switch *size {
	case "full":
		sz = arch.Full
	case "tiny":
		sz = arch.Tiny
	default:
		return fmt.Errorf("-size %q: want full or tiny", *size)
	}
	d, err := dtype.ParseUser(*dt)
	if err != nil {
		return err
	}
	a := float32(*alpha)
	if *alpha < 0 {
		a = float32(*rank)
	}
	lspec := fixture.LoRASpec{Arch: *archID, Size: sz, Format: *format, Algo: *algo, Rank: *rank, Alpha: a,
		DType: d, Seed: *seed, Conv: *conv}

	start := time.Now()
	var tensors int
	var bytes int64
	switch *kind {
	case "checkpoint":
		ps, err := fixture.WriteCheckpoint(*out, fixture.CheckpointSpec{Arch: *archID, Size: sz, DType: d, Seed: *seed, Layout: *layout})
		if err != nil {
			return err
		}
		tensors = len(ps)
		bytes, err = fileSize(*out)
		if err != nil {
			return err
		}
	case "lora":
		if _, err := fixture.WriteLoRA(*out, lspec); err != nil {
			return err
		}
		if tensors, bytes, err = countFile(*out); err != nil {
			return err
		}
	case "lora-folder":
		if *n <= 0 {
			return fmt.Errorf("-n %d: want a positive count", *n)
		}
		if err := fixture.LoRAFolder(*out, *n, lspec); err != nil {
			return err
		}
		for i := 0; i < *n; i++ {
			t, b, err := countFile(filepath.Join(*out, fixture.LoRAFolderName(lspec, i)))
			if err != nil {
				return err
			}
			tensors += t
			bytes += b
		}
	default:
		return fmt.Errorf("-kind %q: want checkpoint, lora or lora-folder", *kind)
	}
	secs := time.Since(start).Seconds()
	files := ""
	if *kind == "lora-folder" {
		files = fmt.Sprintf("%d files, ", *n)
	}
	fmt.Fprintf(os.Stderr, "genfixture: %s %s %s %v: %s%d tensors, %d bytes (%.1f MB), %.2f s, %.0f MB/s -> %s\n",
		*kind, *archID, *size, d, files, tensors, bytes, float64(bytes)/1e6, secs, float64(bytes)/1e6/secs, *out)
	return nil
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, &fs.PathError{Op: "stat", Path: path, Err: errors.New("not a regular file")}
	}
	return st.Size(), nil
}

// countFile returns a written file's tensor count and size.
func countFile(path string) (int, int64, error) {
	h, err := safetensors.ReadHeader(path)
	if err != nil {
		return 0, 0, err
	}
	return len(h.Tensors), h.FileSize, nil
}
