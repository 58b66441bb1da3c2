package merge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/internal/cliutil"
)

// Version is recorded in merged files' metadata (set by main).
var Version = "dev"

// Command returns the `loratool merge` command.
func Command() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "bake LoRAs into a checkpoint, or merge several LoRAs into one",
		ArgsUsage: " ",
		Description: `With --base: applies each LoRA to the checkpoint with ComfyUI's key mapping
and math (LoraLoader's strength_model / strength_clip) and writes a new
checkpoint, streaming tensor by tensor from the memory-mapped base (the base is
never modified; the output appears only when complete). fp8 bases are decoded,
patched in float32 and re-encoded (round to nearest even, saturating); scaled-fp8
files get recomputed scales. The report says how much of the LoRA's change
survived the output dtype's rounding.

Without --base: merges the LoRAs into one LoRA file (exact: ranks concatenated,
each LoRA's strength and alpha folded in), or re-compressed with --rank / --rank-rule.

LoRA Block Weight: --lora FILE:STRENGTH:CLIP:lbw=SPEC scales each module by
its block's weight on top of the strength, as sd-webui-lora-block-weight and
Inspire Pack's LoraLoaderBlockWeight do. SPEC is a vector in the
architecture's order (SD1.x/SD2.x 17 or 26 values, SDXL 12 or 20, Flux.1 61 or
58; blocks a vector does not list get 0), a preset (NONE, ALL, INS, IND,
INALL, MIDD, OUTD, OUTS, OUTALL, ALL0.5, FLUXALL, or from --lbw-presets FILE),
or named blocks with globs (IN04:0,MID:1,OUT*:0.5; unnamed blocks keep 1).
--dry-run shows every module's block and effective strength; docs/merge.md
has the block orders of every architecture.

A LoRA tensor that matches nothing in the checkpoint is an error (exit 1,
nothing written) unless --allow-unmatched, which applies the rest and still
lists them. --dry-run prints the full mapping and writes nothing.

Examples:
   loratool merge --base v1-5-pruned-emaonly-fp16.safetensors --lora pixel-art.safetensors -o sd15-pixel.safetensors
   loratool merge --base sd15.safetensors --lora style.safetensors:0.8:0.5 --lora detail.safetensors:0.3 -o out.safetensors
   loratool merge --base flux1-dev-fp8.safetensors --lora flux-lora.safetensors:0.8 --model-only -o flux-merged.safetensors
   loratool merge --base sdxl.safetensors --lora a.safetensors --dry-run
   loratool merge --lora a.safetensors:0.7 --lora b.safetensors:0.5 -o ab.safetensors
   loratool merge --lora a.safetensors --lora b.safetensors --rank 32 -o ab-r32.safetensors
   loratool merge --base sd15.safetensors --lora style.safetensors:0.8:lbw=1,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1 -o out.safetensors
   loratool merge --base sdxl.safetensors --lora face.safetensors:1:lbw=OUTALL --dry-run
   loratool merge --base flux1-dev.safetensors --lora 'f.safetensors:lbw=D*:1,S*:0.5' --model-only -o out.safetensors`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "base", Usage: "checkpoint to merge into (single-file, diffusion-model-only or diffusers component file)"},
			&cli.StringSliceFlag{Name: "lora", Usage: "LoRA as FILE[:STRENGTH[:CLIP_STRENGTH]][:lbw=BLOCK_WEIGHTS] (repeatable, applied in order)"},
			&cli.StringFlag{Name: "lbw-presets", Usage: "block-weight preset file (sd-webui-lora-block-weight's NAME:v,v,v lines) for lbw=NAME"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output file"},
			&cli.FloatFlag{Name: "strength", Value: 1, Usage: "default strength for model and text encoders"},
			&cli.FloatFlag{Name: "strength-model", Usage: "model strength of LoRAs given without one (default: --strength)"},
			&cli.FloatFlag{Name: "strength-clip", Usage: "text-encoder strength of LoRAs given without one (default: --strength)"},
			&cli.BoolFlag{Name: "model-only", Usage: "apply only the diffusion-model part (ComfyUI LoraLoaderModelOnly)"},
			&cli.StringFlag{Name: "dtype", Value: "keep", Usage: "output dtype: keep, fp32, fp16, bf16, fp8 (e4m3fn), fp8_e5m2"},
			&cli.StringFlag{Name: "arch", Usage: "the checkpoint's architecture, when detection cannot tell"},
			&cli.StringFlag{Name: "patched-type", Usage: "GGUF base: requantize patched tensors to this type (e.g. Q8_0) instead of their own"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the mapping report (module → tensor/slice, algorithm, strength) and write nothing"},
			cliutil.MaxDenseFlag(),
			&cli.BoolFlag{Name: "allow-unmatched", Usage: "apply what matches; still list LoRA tensors that match nothing"},
			&cli.BoolFlag{Name: "force-arch", Usage: "merge a LoRA made for another architecture than the checkpoint's (refused by default)"},
			&cli.BoolFlag{Name: "lycoris-semantics", Usage: "DoRA/OFT as LyCORIS defines them instead of ComfyUI's quirks (see docs/merge.md)"},
			&cli.BoolFlag{Name: "peft-dora", Usage: "apply PEFT DoRA (lora_magnitude_vector) as PEFT does; by default it is ignored, as ComfyUI does"},
			&cli.BoolFlag{Name: "comfy-exact", Usage: "skip what ComfyUI's LoraLoader ignores, so the result renders like a ComfyUI workflow"},
			&cli.IntFlag{Name: "rank", Usage: "LoRA+LoRA merge: re-compress every module to this rank by SVD"},
			&cli.StringFlag{Name: "rank-rule", Usage: "LoRA+LoRA merge: dynamic rank, e.g. sv_fro:0.95, sv_ratio:20, sv_cumulative:0.9"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "tensors computed in parallel (default: cores)"},
			&cli.BoolFlag{Name: "overwrite", Usage: "replace an existing output file"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as one JSON line on stdout"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		},
		Action: action,
	}
}

func action(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Len() > 0 {
		return cliutil.Usage("merge takes no positional arguments (got %q); LoRAs go in --lora", cmd.Args().First())
	}
	loras := cmd.StringSlice("lora")
	if len(loras) == 0 {
		return cliutil.Usage("merge needs at least one --lora")
	}
	sm, sc := cmd.Float("strength"), cmd.Float("strength")
	if cmd.IsSet("strength-model") {
		sm = cmd.Float("strength-model")
	}
	if cmd.IsSet("strength-clip") {
		sc = cmd.Float("strength-clip")
	}
	archID, err := cliutil.ArchFlag(cmd)
	if err != nil {
		return err
	}
	cmd.Set("arch", archID)
	var presets map[string]string
	if f := cmd.String("lbw-presets"); f != "" {
		p, err := LoadPresets(f)
		if err != nil {
			return cliutil.Usage("--lbw-presets: %v", err)
		}
		presets = p
	}
	var inputs []Input
	for _, l := range loras {
		in, err := ParseInput(l, sm, sc)
		if err != nil {
			return cliutil.Usage("%v", err)
		}
		if in.LBW != nil {
			in.LBW.Presets = presets
		}
		inputs = append(inputs, in)
	}
	out := cmd.String("output")
	if out == "" && !cmd.Bool("dry-run") {
		return cliutil.Usage("merge needs -o OUTPUT (or --dry-run)")
	}
	if cmd.String("base") == "" {
		if len(inputs) < 2 {
			return cliutil.Usage("merge needs --base, or two or more --lora to merge LoRAs")
		}
		return loraMergeAction(ctx, cmd, inputs, out)
	}
	if cmd.IsSet("rank") || cmd.IsSet("rank-rule") {
		return cliutil.Usage("--rank/--rank-rule apply to LoRA+LoRA merges (without --base)")
	}
	bar := cliutil.NewBytesBar(0, "merging", cmd.Bool("quiet") || cmd.Bool("json") || cmd.Bool("dry-run"))
	bar.Phase("planning", 0)
	plan, err := NewPlan(cmd.String("base"), inputs, PlanOptions{Arch: cmd.String("arch"), ModelOnly: cmd.Bool("model-only"), LyCORISSemantics: cmd.Bool("lycoris-semantics"),
		PEFTDoRA: cmd.Bool("peft-dora"), ComfyExact: cmd.Bool("comfy-exact"), ForceArch: cmd.Bool("force-arch")})
	bar.Finish()
	if err != nil {
		return failOrUsage(err)
	}
	defer plan.Close()
	for _, w := range plan.Warnings {
		fmt.Fprintln(os.Stderr, "warning:", cliutil.Safe(w))
	}
	WriteComfyIgnored(os.Stderr, plan, cmd.Bool("comfy-exact"))
	if cmd.Bool("dry-run") {
		if cmd.Bool("json") {
			rep := plan.baseReport(out)
			rep.DryRun = true
			rep.Patches = len(plan.Patches)
			cliutil.NewJSONLines(os.Stdout).Write(struct {
				*Report
				Mapping []string `json:"mapping"`
			}{rep, plan.Describe()})
		} else {
			for _, l := range plan.Describe() {
				fmt.Println(cliutil.Safe(l))
			}
		}
		if len(plan.Unmatched) > 0 && !cmd.Bool("allow-unmatched") {
			return cliutil.Fail("%d LoRA tensors match nothing in %s", len(plan.Unmatched), filepath.Base(plan.BasePath))
		}
		return nil
	}
	if len(plan.Unmatched) > 0 {
		for _, u := range plan.Unmatched {
			fmt.Fprintln(os.Stderr, cliutil.Safe(fmt.Sprintf("not matched [%s] %s: %s", filepath.Base(inputs[u.Input].Path), u.Key, u.Reason)))
		}
		if !cmd.Bool("allow-unmatched") {
			return cliutil.Fail("%d LoRA tensors match nothing in %s; nothing written (--allow-unmatched applies the rest, --dry-run shows the mapping)", len(plan.Unmatched), filepath.Base(plan.BasePath))
		}
	}
	bar.Phase("merging", 0)
	rep, err := plan.Execute(ctx, out, Options{DType: cmd.String("dtype"), Jobs: int(cmd.Int("jobs")), Overwrite: cmd.Bool("overwrite"), Version: Version,
		AllowUnmatched: cmd.Bool("allow-unmatched"),
		PatchedType:    cmd.String("patched-type"),
		Progress:       bar.WriterProgress()})
	bar.Finish()
	if err != nil {
		return cliutil.Fail("%v", err)
	}
	for _, s := range rep.Skipped {
		_ = s
	}
	if cmd.Bool("json") {
		return cliutil.NewJSONLines(os.Stdout).Write(rep)
	}
	fmt.Fprintf(cliutil.SafeWriter(os.Stderr), "wrote %s: %s, %d patches on %d tensors from %d LoRA(s), %d skipped (%s), %.1f s\n",
		rep.Output, rep.Architecture, rep.Patches, rep.PatchedTensors, len(rep.LoRAs), len(rep.Skipped), skippedSummary(rep.Skipped), rep.Seconds)
	fmt.Fprint(cliutil.SafeWriter(os.Stderr), LossLine(rep))
	if rep.Clamped > 0 {
		fmt.Fprintf(os.Stderr, ", %d values saturated", rep.Clamped)
	}
	fmt.Fprintln(os.Stderr)
	for _, w := range rep.Warnings {
		fmt.Fprintln(os.Stderr, "warning:", cliutil.Safe(w))
	}
	return nil
}

func skippedSummary(is []Issue) string {
	if len(is) == 0 {
		return "none"
	}
	reasons := map[string]int{}
	var order []string
	for _, i := range is {
		if reasons[i.Reason] == 0 {
			order = append(order, i.Reason)
		}
		reasons[i.Reason]++
	}
	s := ""
	for j, r := range order {
		if j > 0 {
			s += "; "
		}
		s += fmt.Sprintf("%d tensors: %s", reasons[r], r)
	}
	return s
}
