package extract

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/internal/cliutil"
)

// SoftMemoryLimit is the Go heap soft limit the command sets unless
// GOMEMLIMIT is given (the live set is a few decoded tensors plus the
// output factors).
const SoftMemoryLimit = 640 << 20

// Command returns the `loratool extract` command.
func Command() *cli.Command {
	return &cli.Command{
		Name:  "extract",
		Usage: "extract a LoRA from the difference of two full models (truncated SVD)",
		Description: `Streams two checkpoints of the same architecture (single-file or
diffusion-model-only safetensors, any float dtype incl. fp8), computes every
weight delta tuned − base and keeps its best low-rank approximation: linear
and 1×1 conv weights become LoRA modules, k×k convs LoCon modules
(--conv-rank). Singular values are folded into the up factor and alpha =
rank (scale 1). Large matrices use a randomized SVD (2 power iterations, 10
oversamples, fixed seed: same inputs, same output); small ones an exact SVD.
Biases, norms and embeddings are skipped; text encoders only with
--text-encoders. The report lists every module's rank and retained
Frobenius fraction, and every skipped weight with the reason.

Dynamic ranks (--rank-rule) use kohya's rule names on each module's
spectrum; --rank is then the cap (default 128). For randomized SVDs the
spectrum beyond the cap is unknown: the rule sees the top values plus the
exactly known remaining energy.

Examples:
   loratool extract --base sd15.safetensors --tuned dreamshaper.safetensors -o ds-r32.safetensors --rank 32
   loratool extract --base sdxl.safetensors --tuned juggernaut.safetensors -o jug.safetensors \
       --rank-rule sv_fro:0.9 --rank 128 --conv-rank 16 --text-encoders --report jug.json
   loratool extract --base flux1-dev.safetensors --tuned flux-ft.safetensors -o ft.safetensors \
       --rank 64 --to comfy --dtype bf16 --json

Exit status: 0 success, 1 failure, 2 bad usage.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "base", Usage: "the original model (safetensors)"},
			&cli.StringFlag{Name: "tuned", Usage: "the fine-tuned model (safetensors)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the LoRA to write (.safetensors)"},
			&cli.IntFlag{Name: "rank", Aliases: []string{"r"}, Usage: "rank of every module; with --rank-rule the rank cap (default 128)"},
			&cli.StringFlag{Name: "rank-rule", Usage: "dynamic rank per module: sv_fro:F (Frobenius fraction), sv_ratio:R (keep s_i >= s_0/R), sv_cumulative:F (fraction of Σs_i)"},
			&cli.IntFlag{Name: "conv-rank", Usage: "rank (cap) of k×k convolutions (LoCon); 0 skips them (default: --rank)"},
			&cli.BoolFlag{Name: "text-encoders", Usage: "also extract the text encoders (an encoder whose max |Δ| <= --te-min-diff counts as unchanged)"},
			&cli.FloatFlag{Name: "min-diff", Usage: "skip modules whose max |Δ| is at most this (default 0: only unchanged modules)"},
			&cli.FloatFlag{Name: "te-min-diff", Value: DefaultTEMinDiff, Usage: "text-encoder-level threshold on max |Δ|"},
			&cli.FloatFlag{Name: "clamp", Usage: "kohya's quantile clamp of the factors, e.g. 0.99 (default off)"},
			&cli.StringFlag{Name: "to", Value: "kohya", Usage: "key format: kohya, comfy or diffusers"},
			&cli.StringFlag{Name: "dtype", Value: "fp16", Usage: "dtype of the factors: fp16, bf16 or fp32"},
			&cli.StringFlag{Name: "arch", Usage: "assume this architecture instead of detecting it"},
			&cli.BoolFlag{Name: "all-modules", Usage: "also extract modules the format's loaders drop (kohya: conv_in, conv_out, time/label embeddings)"},
			&cli.StringFlag{Name: "report", Usage: "write the full report (per module rank, retained fraction, errors, skips) as JSON to this file"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as one JSON line on stdout"},
			&cli.StringFlag{Name: "plot", Usage: "draw every module's retained fraction by rank (singular-value energy) to this .png/.svg/.pdf, to choose a rank by eye"},
			&cli.BoolFlag{Name: "overwrite", Usage: "replace an existing output file"},
			&cli.IntFlag{Name: "power-iters", Value: 2, Usage: "randomized SVD power iterations: 2 is within ~1% of optimal; 1 is ~1/3 faster and a few % worse; 0 is fastest and much worse"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "modules decomposed concurrently (default: 2)", HideDefault: true},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() > 0 {
				return cliutil.Usage("extract takes no arguments (got %q); use --base, --tuned and -o", cmd.Args().First())
			}
			for _, f := range []string{"base", "tuned", "output"} {
				if cmd.String(f) == "" {
					return cliutil.Usage("extract needs --%s", f)
				}
			}
			archID, err := cliutil.ArchFlag(cmd)
			if err != nil {
				return err
			}
			opt := Options{
				Base: cmd.String("base"), Tuned: cmd.String("tuned"), Output: cmd.String("output"),
				Rank: int(cmd.Int("rank")), Rule: cmd.String("rank-rule"),
				TextEncoders: cmd.Bool("text-encoders"), MinDiff: cmd.Float("min-diff"),
				TEMinDiff: cmd.Float("te-min-diff"), Clamp: cmd.Float("clamp"),
				Format: cmd.String("to"), DType: cmd.String("dtype"), Arch: archID, AllModules: cmd.Bool("all-modules"),
				Overwrite: cmd.Bool("overwrite"), Workers: int(cmd.Int("jobs")), PowerIters: powerIters(int(cmd.Int("power-iters"))),
			}
			if cmd.IsSet("conv-rank") {
				opt.ConvRank = int(cmd.Int("conv-rank"))
				if opt.ConvRank == 0 {
					opt.ConvRank = -1
				} else if opt.ConvRank < 0 {
					return cliutil.Usage("--conv-rank %d: must not be negative", opt.ConvRank)
				}
			}
			if opt.TEMinDiff == 0 {
				opt.TEMinDiff = -1 // an explicit 0 means "any difference"
			}
			if os.Getenv("GOMEMLIMIT") == "" {
				// the SVD temporaries are short-lived garbage: a soft limit
				// keeps the heap near the live set instead of twice it
				debug.SetMemoryLimit(SoftMemoryLimit)
			}
			var bar *cliutil.Bar
			progress := func(done, total int64) {
				if bar == nil {
					bar = cliutil.NewBytesBar(total, "extracting", cmd.Bool("quiet") || cmd.Bool("json"))
				}
				bar.Set(done)
			}
			rep, err := Run(ctx, opt, progress)
			if bar != nil {
				bar.Finish()
			}
			if err != nil {
				if IsUsage(err) {
					return cliutil.Usage("%v", err)
				}
				return cliutil.Fail("%v", err)
			}
			if path := cmd.String("report"); path != "" {
				b, _ := json.MarshalIndent(rep, "", "  ")
				if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
					return cliutil.Fail("%s: writing the report: %v", path, err)
				}
			}
			if path := cmd.String("plot"); path != "" {
				if err := Plot(rep, path); err != nil {
					return cliutil.Fail("writing the plot: %v", err)
				}
			}
			rep.WriteSummary(cliutil.SafeWriter(os.Stderr))
			if cmd.Bool("json") {
				if err := cliutil.NewJSONLines(os.Stdout).Write(rep); err != nil {
					return cliutil.Fail("writing JSON: %v", err)
				}
			}
			return nil
		},
	}
}

// WriteSummary prints a short human summary of r.
func (r *Report) WriteSummary(w io.Writer) {
	ranks := map[int]int{}
	for _, m := range r.Modules {
		ranks[m.Rank]++
	}
	var rk []string
	keys := make([]int, 0, len(ranks))
	for k := range ranks {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		rk = append(rk, fmt.Sprintf("%d×r%d", ranks[k], k))
	}
	if len(rk) > 6 {
		rk = append(rk[:3], "…", rk[len(rk)-1])
	}
	fmt.Fprintf(w, "extract: %s (%s), %s rank %s: %d modules (%s)\n", r.Arch, r.Layout, r.Format, r.RankRule, len(r.Modules), strings.Join(rk, " "))
	fmt.Fprintf(w, "  retained %.4f of ‖Δ‖_F overall (relative error %.4f)\n", r.Retained, r.RelError)
	reasons := map[string]int{}
	for _, s := range r.Skipped {
		reason := s.Reason
		if i := strings.IndexAny(reason, "0123456789"); i > 0 && strings.HasPrefix(reason, "max |Δ|") {
			reason = "max |Δ| <= --min-diff"
		}
		reasons[reason]++
	}
	for k, v := range r.NotExamined {
		reasons[k] += v
	}
	rs := make([]string, 0, len(reasons))
	for k := range reasons {
		rs = append(rs, k)
	}
	sort.Strings(rs)
	for _, k := range rs {
		fmt.Fprintf(w, "  skipped %d: %s\n", reasons[k], k)
	}
	writeUnloadable(w, r)
	for _, e := range r.Encoders {
		state := "extracted"
		if !e.Extracted {
			state = e.Reason
		}
		fmt.Fprintf(w, "  text encoder %s: %s\n", e.Name, state)
	}
	fmt.Fprintf(w, "  wrote %s: %d tensors, %.1f MiB, sshs_model_hash %.12s, in %.1f s\n", r.Output, r.Tensors, float64(r.Bytes)/(1<<20), r.ModelHash, r.Seconds.Total)
}

// powerIters maps the flag (0 = none) onto Options.PowerIters (0 = default).
func powerIters(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}
