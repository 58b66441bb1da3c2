package convert

import (
	"context"
	"fmt"
	"github.com/loratool/loratool/safetensors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/internal/cliutil"
	"github.com/loratool/loratool/svd"
)

// Version is loratool's version, written into the metadata note; main
// may set it.
var Version = "dev"

// job is one input file and where its output goes.
type job struct {
	in, out string
	walked  bool // found by a folder search (not named on the command line)
}

// Expand turns PATH arguments (files, folders searched recursively, globs)
// into input files with their output paths: out for a single input,
// outDir mirroring each argument's tree, or beside the input with suffix.
// exts are the accepted extensions for folder search.
func Expand(args []string, out, outDir, suffix string, exts []string) ([]job, []error) {
	type item struct {
		path, root string
		walked     bool
	}
	var items []item
	var errs []error
	accept := func(p string) bool {
		e := strings.ToLower(filepath.Ext(p))
		for _, x := range exts {
			if e == x {
				return true
			}
		}
		return false
	}
	for _, a := range args {
		matches := []string{a}
		if strings.ContainsAny(a, "*?[") {
			m, err := filepath.Glob(a)
			if err != nil || len(m) == 0 {
				errs = append(errs, &pathErr{a, fmt.Errorf("no file matches")})
				continue
			}
			matches = m
		}
		for _, p := range matches {
			st, err := os.Stat(p)
			if err != nil {
				errs = append(errs, &pathErr{p, unwrapPath(err)})
				continue
			}
			if !st.IsDir() || isPEFTDir(p) {
				items = append(items, item{p, filepath.Dir(p), false})
				continue
			}
			filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
				if err != nil {
					errs = append(errs, &pathErr{q, unwrapPath(err)})
					return nil
				}
				if !d.IsDir() && accept(q) && !strings.HasPrefix(d.Name(), ".") {
					items = append(items, item{q, p, true})
				}
				return nil
			})
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].path < items[j].path })
	var jobs []job
	seen := map[string]bool{}
	for _, it := range items {
		if seen[it.path] {
			continue
		}
		seen[it.path] = true
		stem := strings.TrimSuffix(filepath.Base(it.path), filepath.Ext(it.path))
		var o string
		switch {
		case out != "":
			o = out
		case outDir != "":
			rel, err := filepath.Rel(it.root, filepath.Dir(it.path))
			if err != nil {
				rel = "."
			}
			o = filepath.Join(outDir, rel, stem+".safetensors")
		default:
			o = filepath.Join(filepath.Dir(it.path), stem+suffix+".safetensors")
		}
		jobs = append(jobs, job{it.path, o, it.walked})
	}
	return jobs, errs
}

func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// runBatch runs fn over jobs with n workers, reporting each result.
func runBatch(jobs []job, n int, fn func(job) (any, error), report func(any, error)) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	ch := make(chan job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer safetensors.Guard()()
			defer wg.Done()
			for j := range ch {
				r, err := fn(j)
				mu.Lock()
				report(r, err)
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
}

// batchFlags returns fresh instances of the flags convert and resize share
// (urfave/cli flags keep state, so each command needs its own).
func batchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output file (single input only)"},
		&cli.StringFlag{Name: "out-dir", Usage: "write outputs here, mirroring each input folder's tree"},
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "files processed in parallel (default: number of cores)"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace existing output files"},
		&cli.BoolFlag{Name: "json", Usage: "one JSON result object per file per line (JSON Lines) on stdout"},
		&cli.StringFlag{Name: "dtype", Usage: "convert float tensors to fp32, fp16, bf16, fp8_e4m3fn or fp8_e5m2 (round to nearest even)"},
		cliutil.MaxDenseFlag(),
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar and no per-file lines (errors and the summary still print)"},
	}
}

func parseBatch(cmd *cli.Command, suffix string, exts []string) ([]job, []error, dtype.DType, error) {
	if cmd.Args().Len() == 0 {
		return nil, nil, 0, cliutil.Usage("%s needs at least one file or folder", cmd.Name)
	}
	dt := dtype.Invalid
	if s := cmd.String("dtype"); s != "" {
		d, err := dtype.ParseUser(s)
		if err != nil {
			return nil, nil, 0, cliutil.Usage("%v", err)
		}
		dt = d
	}
	if cmd.String("output") != "" && cmd.String("out-dir") != "" {
		return nil, nil, 0, cliutil.Usage("use either -o or --out-dir")
	}
	jobs, errs := Expand(cmd.Args().Slice(), cmd.String("output"), cmd.String("out-dir"), suffix, exts)
	if cmd.String("output") != "" && len(jobs)+len(errs) > 1 {
		return nil, nil, 0, cliutil.Usage("-o takes a single input; use --out-dir for several")
	}
	return jobs, errs, dt, nil
}

// Command returns the `loratool convert` command.
func Command() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "convert LoRAs between kohya, comfy, diffusers and PEFT names, change dtypes, import pickles safely",
		ArgsUsage: "PATH...",
		Description: `Renames every module of a LoRA into the target format without changing its
effect: kohya (lora_unet_/lora_te*_ with alpha), comfy (ComfyUI/BFL native
names, diffusion_model./text_encoders.), diffusers (unet./transformer./
text_encoder., lora_A/lora_B, alpha folded into the factors the way
diffusers does) or raw PEFT (base_model.model., plus an adapter config
written beside the output; a LoRA with text-encoder modules becomes one
adapter per model in the folder -o names: unet/ or transformer/,
text_encoder/, text_encoder_2/, as PEFT's save_pretrained lays them out).
Separate q/k/v LoRAs are stacked exactly into one LoRA on a fused weight
(Flux qkv, linear1; SD3 qkv) and split back exactly. LyCORIS algorithms keep their algorithm in kohya/comfy; where the
format cannot express one, convert stops and lists the modules, or with
--approximate converts them via their delta and a truncated SVD and reports
the error. A key that cannot be converted is an error; nothing is written.

Without --to, names are kept and only the dtype/container changes: this
converts full checkpoints too (streaming, one tensor in memory) and imports
.ckpt/.pt/.pth/.bin PyTorch files without executing any pickle code.

PATH may be files, folders (searched recursively for .safetensors, .ckpt,
.pt, .pth, .bin) or globs. Outputs go to -o (single input), --out-dir
(mirroring the tree) or beside the input as NAME-<to|dtype>.safetensors.
Existing files are never replaced without --overwrite; writes are atomic.

Examples:
   loratool convert --to comfy flux-diffusers.safetensors -o flux-comfy.safetensors
   loratool convert --to diffusers --arch sdxl my-kohya-lora.safetensors
   loratool convert --to peft lora.safetensors -o out/adapter_model.safetensors
   loratool convert --to peft sd15-lora-with-te.safetensors -o pixel   (writes pixel/unet/, pixel/text_encoder/)
   loratool convert --dtype fp16 ~/loras --out-dir ~/loras-fp16 -j 4 --json
   loratool convert old-lora.pt -o old-lora.safetensors
   loratool convert --to diffusers --approximate --rank 16 lokr.safetensors
   loratool convert flux1-dev.safetensors --to gguf --quant Q4_K -o flux1-dev-Q4_K.gguf
   loratool convert flux1-dev.safetensors --to gguf --quant Q4_K --quant-map "*.linear2.weight=Q6_K"
   loratool convert flux1-dev-Q4_K.gguf --to safetensors --dtype bf16

GGUF (docs/gguf.md): --to gguf takes the diffusion model out of a checkpoint
and writes it the way ComfyUI-GGUF's loader expects; --quant is the type of
the quantizable tensors (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
Q2_K..Q6_K), sensitive tensors stay float. A .gguf input converts
--to safetensors (dequantized; --dtype, default bf16).`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "target format: kohya, comfy, diffusers or peft (default: keep names)"},
			&cli.StringFlag{Name: "arch", Usage: "assume this architecture instead of detecting it"},
			&cli.BoolFlag{Name: "approximate", Usage: "convert modules the target cannot express via delta + SVD"},
			&cli.IntFlag{Name: "rank", Usage: "rank for --approximate (default: the module's rank)"},
			&cli.StringFlag{Name: "quant", Usage: "--to gguf: type of the quantized tensors (Q8_0, Q4_K, Q5_K, Q6_K, Q4_0, BF16, ...)"},
			&cli.StringFlag{Name: "quant-map", Usage: "--to gguf: per-tensor types, \"GLOB=TYPE,...\" (first match wins over the default policy)"},
		}, batchFlags()...),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			to := cmd.String("to")
			if to == "gguf" || to == "safetensors" || anyGGUF(cmd.Args().Slice()) {
				return ggufAction(ctx, cmd)
			}
			if to != "" && !validFormat(to) {
				return cliutil.Usage("unknown format %q (want kohya, comfy, diffusers or peft)", to)
			}
			suffix := "-" + to
			if to == "" {
				suffix = "-" + strings.ToLower(cmd.String("dtype"))
				if cmd.String("dtype") == "" {
					suffix = ""
				}
			}
			jobs, errs, dt, err := parseBatch(cmd, suffix, []string{".safetensors", ".ckpt", ".pt", ".pth", ".bin"})
			if err != nil {
				return err
			}
			if to == "" && dt == dtype.Invalid {
				for _, j := range jobs {
					if !isPickle(j.in) {
						return cliutil.Usage("nothing to do: give --to and/or --dtype (or a .ckpt/.pt file to import)")
					}
				}
			}
			archID, err := cliutil.ArchFlag(cmd)
			if err != nil {
				return err
			}
			opt := Options{MaxDense: cmd.Int64("max-dense"), To: to, DType: dt, Arch: archID, Approximate: cmd.Bool("approximate"),
				Rank: int(cmd.Int("rank")), Overwrite: cmd.Bool("overwrite"), Version: Version}
			return batch(cmd, jobs, errs, func(j job) (any, error) {
				if j.in == j.out {
					return &Result{Input: j.in}, fmt.Errorf("%s: output would replace the input", j.in)
				}
				o := opt
				o.LoRAOnly = j.walked
				return File(j.in, j.out, o)
			}, func(r any) string {
				x := r.(*Result)
				s := fmt.Sprintf("%s → %s", x.Input, x.Output)
				if x.Kind == "lora" && x.To != "" {
					s += fmt.Sprintf(" (%s %s → %s, %d modules", x.Arch, x.From, x.To, x.Modules)
					if x.Fused > 0 {
						s += fmt.Sprintf(", %d fused", x.Fused)
					}
					if x.Split > 0 {
						s += fmt.Sprintf(", %d split", x.Split)
					}
					s += ")"
				}
				for _, a := range x.Approximated {
					s += fmt.Sprintf("\n  approximated %s at rank %d: relative error %.3g", a.Module, a.Rank, a.RelError)
				}
				for _, n := range x.Notes {
					s += "\n  note: " + n
				}
				return s
			})
		},
	}
}

// ResizeCommand returns the `loratool resize` command.
func ResizeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resize",
		Usage:     "reduce the rank of LoRAs with an exact SVD computed from their factors",
		ArgsUsage: "PATH...",
		Description: `For every LoRA module the SVD of scale·up@down is computed exactly from the
factors (QR of up and downᵀ, then an r×r SVD; never the dense product), so a
rank-32 SD1.5 LoRA resizes in well under a second. Conv LoRAs (3×3) and
Tucker (lora_mid) modules are handled. The new rank is --rank N, or what a
rule says (capped by --rank if given): sv_fro:F keeps the smallest rank
whose Frobenius fraction reaches F, sv_cumulative:F the smallest whose sum of
singular values reaches F, sv_ratio:T the singular values ≥ s_max/T —
exactly that rank (kohya's resize_lora.py keeps one more). The scale is
folded into up; the new alpha equals the new rank. Modules already at or
below the rank are copied unchanged.

With --approximate, LoKr, LoHa and full-diff (LyCORIS "full") modules are
resized too: their dense delta is decomposed by SVD (exact up to 256 wide,
randomized beyond; a rule without --rank is capped at 128) and written as a
plain LoRA of the chosen rank; bias deltas (diff_b) are kept.

Reports per module the kept rank, the retained Frobenius fraction (exact,
from the full spectrum) and the relative error, and overall figures.

Examples:
   loratool resize big-lora.safetensors --rank 8 -o small-lora.safetensors
   loratool resize lora.safetensors --rank-rule sv_fro:0.95 --rank 64 -o out.safetensors
   loratool resize ~/loras --rank 16 --out-dir ~/loras-r16 --json
   loratool resize lokr.safetensors --approximate --rank-rule sv_fro:0.98 --rank 32 -o lokr-r32.safetensors`,
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "rank", Aliases: []string{"r"}, Usage: "new rank (with --rank-rule: the maximum)"},
			&cli.StringFlag{Name: "rank-rule", Usage: "sv_fro:F, sv_ratio:T, sv_cumulative:F or fixed:N"},
			&cli.IntFlag{Name: "conv-rank", Usage: "rank (with --rank-rule: the cap) of k×k convolution modules (LoCon); kohya's --new_conv_rank (default: as --rank)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print every module's report"},
			&cli.BoolFlag{Name: "approximate", Usage: "also resize LoKr, LoHa and full-diff modules: SVD of their dense delta, written as plain LoRA"},
		}, batchFlags()...),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			var rule svd.Rule
			n := int(cmd.Int("rank"))
			switch {
			case cmd.String("rank-rule") != "":
				r, err := svd.ParseRule(cmd.String("rank-rule"))
				if err != nil {
					return cliutil.Usage("%v", err)
				}
				rule = r
			case n > 0:
				rule = svd.Rule{Kind: svd.RuleFixed, Value: float64(n)}
			default:
				return cliutil.Usage("resize needs --rank N or --rank-rule")
			}
			if n < 0 {
				return cliutil.Usage("--rank must be positive")
			}
			suffix := "-" + strings.ReplaceAll(rule.String(), ":", "")
			if rule.Kind == svd.RuleFixed {
				suffix = fmt.Sprintf("-r%d", int(rule.Value))
			}
			jobs, errs, dt, err := parseBatch(cmd, suffix, []string{".safetensors"})
			if err != nil {
				return err
			}
			if cmd.Int("conv-rank") < 0 {
				return cliutil.Usage("--conv-rank must be positive")
			}
			opt := ResizeOptions{MaxDense: cmd.Int64("max-dense"), Rule: rule, MaxRank: n, ConvRank: int(cmd.Int("conv-rank")), DType: dt, Approximate: cmd.Bool("approximate"), Overwrite: cmd.Bool("overwrite"), Version: Version}
			verbose := cmd.Bool("verbose")
			return batch(cmd, jobs, errs, func(j job) (any, error) {
				if j.in == j.out {
					return &ResizeResult{Input: j.in}, fmt.Errorf("%s: output would replace the input", j.in)
				}
				return Resize(j.in, j.out, opt)
			}, func(r any) string {
				x := r.(*ResizeResult)
				var b strings.Builder
				if verbose {
					for _, m := range x.Modules {
						fmt.Fprintf(&b, "  %-70s rank %3d → %3d  retained %.4f  rel.err %.4f\n", m.Module, m.OldRank, m.Rank, m.Retained, m.RelError)
					}
				}
				fmt.Fprintf(&b, "%s → %s: %d modules, retained Frobenius %.4f overall (mean %.4f), max relative error %.4f",
					x.Input, x.Output, len(x.Modules), x.Retained, x.MeanRetain, x.MaxRelError)
				return b.String()
			})
		},
	}
}
