package workflow

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/internal/cliutil"
	"github.com/loratool/loratool/merge"
)

// Command returns the `loratool workflow` command with its subcommands
// "inspect" and "bake".
func Command() *cli.Command {
	return &cli.Command{
		Name:  "workflow",
		Usage: "read, check and bake the model and LoRA stack of ComfyUI workflows",
		Description: `Reads a ComfyUI workflow (the editor's saved JSON or the API format), follows
each sampler's model and clip inputs back to their loaders and lists the stack:
base model file, the LoRAs in the order they apply with their strengths and
modes, the text encoders and the prompts.

  inspect  list (and with --models-dir check) every sampler's stack
  bake     merge a stack's LoRAs into its base model and rewrite the workflow

Model files are looked up as ComfyUI does: the name as written (sub-folders
with '\' or '/') under checkpoints/, unet/ and diffusion_models/, loras/,
text_encoders/ and clip/, vae/ of each --models-dir, then in the folders of
--extra-model-paths (ComfyUI's extra_model_paths.yaml).

Examples:
   loratool workflow inspect pixel-art.json
   loratool workflow inspect pixel-art.json --models-dir ~/ComfyUI/models
   loratool workflow inspect flux-lora.json --extra-model-paths ~/ComfyUI/extra_model_paths.yaml --json
   loratool workflow bake pixel-art.json --models-dir ~/ComfyUI/models -o ~/ComfyUI/models/checkpoints/sd15-pixel.safetensors --write-workflow pixel-art-baked.json`,
		Commands: []*cli.Command{inspectCommand(), bakeCommand()},
	}
}

func folderFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "models-dir", Aliases: []string{"m"}, Usage: "a ComfyUI models/ folder to resolve file names in (repeatable, searched in order)"},
		&cli.StringSliceFlag{Name: "extra-model-paths", Usage: "a ComfyUI extra_model_paths.yaml whose folders are searched after --models-dir (repeatable)"},
	}
}

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "list each sampler's model and LoRA stack, and check its files",
		ArgsUsage: "WORKFLOW.json",
		Description: `Lists, for every sampler, the base model loader, the LoRAs in application order
(file name as written, strength_model, strength_clip, bypassed/muted), the
text-encoder and VAE files and the prompts.

With --models-dir or --extra-model-paths every file is resolved and the base
and the LoRAs are inspected; each active LoRA is mapped onto the base with the
merge engine at the node's strengths (nothing is written). Reported:
  error    missing file (with the paths searched), LoRA architecture ≠ base
           architecture, LoRA tensors that will not load
  warning  a LoRA with text-encoder parts used through LoraLoaderModelOnly,
           trigger words of a LoRA that no prompt contains, LoRA nodes of
           custom node packs (not checked), muted nodes cutting the chain

Exit status: 0 no errors (warnings allowed), 1 errors found or the workflow
cannot be read, 2 usage error.

Examples:
   loratool workflow inspect pixel-art.json
   loratool workflow inspect pixel-art.json --models-dir ~/ComfyUI/models
   loratool workflow inspect flux.json -m /data/models -m ~/ComfyUI/models --json | jq .issues`,
		Flags: append(folderFlags(),
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per sampler stack per line (JSON Lines) on stdout"},
		),
		Action:                    inspectAction,
		DisableSliceFlagSeparator: true,
	}
}

func bakeCommand() *cli.Command {
	return &cli.Command{
		Name:      "bake",
		Usage:     "merge a sampler's active LoRAs into its base model (and rewrite the workflow)",
		ArgsUsage: "WORKFLOW.json",
		Description: `Applies the active LoRAs of one sampler's stack, in order and with each node's
strengths, to the base model file with the engine of 'loratool merge'
(streaming; fp8 bases stay fp8 with --dtype keep) and writes OUT. Bypassed
LoRAs are left out, as ComfyUI leaves them out. The text-encoder part of a
LoraLoader goes into a checkpoint base at strength_clip when its CLIP output
feeds the sampler's prompts; LoraLoaderModelOnly nodes and diffusion-model
bases (UNETLoader) get the model part only.

--write-workflow writes a copy of the workflow with the baked LoRA nodes
removed, their links rewired and the base loader pointing at OUT under the
name ComfyUI lists it by (OUT's path relative to the models folder it lies in,
else its base name). The rewritten workflow is checked before the merge
starts.

The bake follows ComfyUI exactly: LoRA keys ComfyUI's LoraLoader ignores
((IA)³ modules, names its key map lacks; see docs/merge.md) are skipped with
a warning that names them, so the baked model renders like the workflow.
--apply-all applies them too.

Nothing is written when the stack has errors (see 'workflow inspect'), when
a muted node cuts the chain, or when the rewrite would change another
sampler. --sampler is required when the workflow's samplers have different
stacks.

Exit status: 0 written, 1 refused or failed (nothing written), 2 usage error.

Examples:
   loratool workflow bake pixel-art.json --models-dir ~/ComfyUI/models -o sd15-pixel.safetensors
   loratool workflow bake pixel-art.json -m ~/ComfyUI/models -o ~/ComfyUI/models/checkpoints/sd15-pixel.safetensors --write-workflow pixel-art-baked.json
   loratool workflow bake flux.json -m ~/ComfyUI/models --sampler 31 -o ~/ComfyUI/models/diffusion_models/flux-portrait-fp8.safetensors --write-workflow flux-baked.json`,
		Flags: append(folderFlags(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the merged model file to write"},
			&cli.StringFlag{Name: "sampler", Usage: "node id of the sampler whose stack to bake"},
			&cli.StringFlag{Name: "write-workflow", Usage: "also write the rewritten workflow here"},
			&cli.StringFlag{Name: "dtype", Value: "keep", Usage: "output dtype: keep, fp32, fp16, bf16, fp8 (e4m3fn), fp8_e5m2"},
			&cli.BoolFlag{Name: "overwrite", Usage: "replace existing output files"},
			&cli.BoolFlag{Name: "apply-all", Usage: "also apply LoRA keys ComfyUI's LoraLoader ignores (the result then renders unlike the workflow)"},
			&cli.BoolFlag{Name: "json", Usage: "print the merge report as one JSON line on stdout"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		),
		Action:                    bakeAction,
		DisableSliceFlagSeparator: true,
	}
}

func stdout(cmd *cli.Command) io.Writer {
	if w := cmd.Root().Writer; w != nil {
		return w
	}
	return os.Stdout
}

// stderr is for human output only: file-derived text is made safe.
func stderr(cmd *cli.Command) io.Writer {
	if w := cmd.Root().ErrWriter; w != nil {
		return cliutil.SafeWriter(w)
	}
	return cliutil.SafeWriter(os.Stderr)
}

// folders builds the search list from --models-dir and --extra-model-paths.
func folders(cmd *cli.Command) (*Folders, error) {
	f := NewFolders()
	for _, d := range cmd.StringSlice("models-dir") {
		fi, err := os.Stat(d)
		if err != nil {
			return nil, cliutil.Usage("--models-dir %s: %v", d, unwrapPathError(err))
		}
		if !fi.IsDir() {
			return nil, cliutil.Usage("--models-dir %s: not a folder", d)
		}
		f.AddModelsDir(d)
	}
	for _, y := range cmd.StringSlice("extra-model-paths") {
		if err := f.LoadExtraModelPaths(y); err != nil {
			return nil, cliutil.Fail("%v", err)
		}
	}
	return f, nil
}

func loadArg(cmd *cli.Command, name string) (*Workflow, []Stack, error) {
	if cmd.Args().Len() != 1 {
		return nil, nil, cliutil.Usage("workflow %s needs exactly one WORKFLOW.json (got %d arguments)", name, cmd.Args().Len())
	}
	w, err := Load(cmd.Args().First())
	if err != nil {
		return nil, nil, cliutil.Fail("%v", err)
	}
	stacks, err := w.Stacks()
	if err != nil {
		return nil, nil, cliutil.Fail("%v", err)
	}
	return w, stacks, nil
}

func inspectAction(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Len() != 1 {
		return cliutil.Usage("workflow inspect needs exactly one WORKFLOW.json (got %d arguments)", cmd.Args().Len())
	}
	f, err := folders(cmd)
	if err != nil {
		return err
	}
	w, stacks, err := loadArg(cmd, "inspect")
	if err != nil {
		return err
	}
	out := stdout(cmd)
	jl := cliutil.NewJSONLines(out)
	errs := 0
	for i, st := range stacks {
		r := w.Check(st, f)
		errs += r.Errors
		if cmd.Bool("json") {
			if err := jl.Write(r); err != nil {
				return cliutil.Fail("writing JSON: %v", err)
			}
			continue
		}
		if i > 0 {
			fmt.Fprintln(out)
		}
		r.WriteText(cliutil.SafeWriter(out))
	}
	if len(stacks) == 0 {
		if !cmd.Bool("json") {
			fmt.Fprintf(out, "%s: no sampler nodes found\n", w.Path)
		}
		return nil
	}
	if errs > 0 {
		return cliutil.Fail("%s: %d error(s); the workflow will not run as intended", w.Path, errs)
	}
	return nil
}

// WriteText writes the report in the human-readable form of
// `workflow inspect`.
func (r *Report) WriteText(out io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("%s: sampler %s (%s)", r.Workflow, r.SamplerID, r.SamplerType)
	b := r.Base
	if b.NodeID != "" {
		extra := ""
		if b.WeightDType != "" {
			extra = ", weight_dtype " + b.WeightDType
		}
		p("  base    node %s %s \"%s\"%s", b.NodeID, b.NodeType, b.Name, extra)
		if b.Path != "" {
			what := b.Architecture
			if b.Layout != "" {
				what += ", " + b.Layout
			}
			p("          = %s (%s)", b.Path, what)
		}
	} else {
		p("  base    unknown")
	}
	for i, l := range r.LoRAs {
		var s string
		switch {
		case l.ModelOnly:
			s = fmt.Sprintf("strength %g (model only)", l.StrengthModel)
		case l.ClipChain:
			s = fmt.Sprintf("strength model %g, clip %g", l.StrengthModel, l.StrengthClip)
		default:
			s = fmt.Sprintf("strength model %g, clip %g (CLIP output unused)", l.StrengthModel, l.StrengthClip)
		}
		if l.Mode != "active" {
			s += " [" + l.Mode + "]"
		}
		p("  lora %d  node %s %s \"%s\" %s", i+1, l.NodeID, l.NodeType, l.Name, s)
		if l.Path != "" {
			var what []string
			if l.Architecture != "" {
				what = append(what, l.Architecture+" LoRA")
			}
			if len(l.Targets) > 0 {
				what = append(what, "targets "+strings.Join(l.Targets, ", "))
			}
			if l.mapped {
				what = append(what, fmt.Sprintf("%d patches", l.Patches))
			}
			if len(l.TriggerWords) > 0 {
				what = append(what, "trigger words "+strings.Join(l.TriggerWords[:min(3, len(l.TriggerWords))], ", "))
			}
			p("          = %s (%s)", l.Path, strings.Join(what, "; "))
		}
	}
	if len(r.LoRAs) == 0 {
		p("  loras   none")
	}
	files := func(label string, fs []LoaderFile) {
		for _, f := range fs {
			p("  %-7s node %s %s \"%s\"", label, f.NodeID, f.NodeType, f.Name)
			if f.Path != "" {
				p("          = %s", f.Path)
			}
		}
	}
	files("clip", r.TextEncoders)
	files("vae", r.VAEs)
	for _, pr := range r.Prompts {
		text := fmt.Sprintf("%q", shorten(pr.Text, 72))
		if pr.TextFrom != "" {
			text = "from node " + pr.TextFrom
		}
		p("  prompt  node %s %s.%s (%s): %s", pr.NodeID, pr.NodeType, pr.Field, pr.Role, text)
	}
	for _, is := range r.Issues {
		p("  %-7s %s", is.Severity, is.Message)
	}
	switch {
	case !r.Checked:
		p("  files not checked (give --models-dir or --extra-model-paths)")
	case r.Errors == 0 && r.Warnings == 0:
		p("  ok: no problems found")
	default:
		p("  %d error(s), %d warning(s)", r.Errors, r.Warnings)
	}
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// bakeKey identifies what baking a stack means, to tell whether several
// samplers share one stack.
func bakeKey(st Stack) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s", st.Base.NodeID, st.Base.Name)
	for _, l := range st.LoRAs {
		fmt.Fprintf(&b, "|%s:%s:%g:%g:%v", l.NodeID, l.Mode, l.StrengthModel, l.StrengthClip, clipBaked(st, l))
	}
	return b.String()
}

// chooseStack picks the stack to bake: --sampler, or the only stack (or
// the first of several identical ones).
func chooseStack(w *Workflow, stacks []Stack, sampler string) (Stack, error) {
	var ids []string
	for _, st := range stacks {
		ids = append(ids, st.SamplerID)
		if sampler != "" && st.SamplerID == sampler {
			return st, nil
		}
	}
	switch {
	case len(stacks) == 0:
		return Stack{}, cliutil.Fail("%s: no sampler nodes found; nothing to bake", w.Path)
	case sampler != "":
		return Stack{}, cliutil.Usage("%s has no sampler %s (samplers: %s)", w.Path, sampler, strings.Join(ids, ", "))
	}
	for _, st := range stacks[1:] {
		if bakeKey(st) != bakeKey(stacks[0]) {
			return Stack{}, cliutil.Usage("%s has %d samplers with different stacks (%s); choose one with --sampler", w.Path, len(stacks), strings.Join(ids, ", "))
		}
	}
	return stacks[0], nil
}

func bakeAction(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Len() != 1 {
		return cliutil.Usage("workflow bake needs exactly one WORKFLOW.json (got %d arguments)", cmd.Args().Len())
	}
	out := cmd.String("output")
	if out == "" {
		return cliutil.Usage("workflow bake needs -o OUT.safetensors")
	}
	f, err := folders(cmd)
	if err != nil {
		return err
	}
	if f.Empty() {
		return cliutil.Usage("workflow bake needs --models-dir (or --extra-model-paths) to find the model files")
	}
	w, stacks, err := loadArg(cmd, "bake")
	if err != nil {
		return err
	}
	st, err := chooseStack(w, stacks, cmd.String("sampler"))
	if err != nil {
		return err
	}
	ew := stderr(cmd)
	r := w.Check(st, f)
	for _, is := range r.Issues {
		fmt.Fprintf(ew, "%s: %s\n", is.Severity, is.Message)
	}
	if r.Errors > 0 {
		return cliutil.Fail("%s: refusing to bake sampler %s: %d error(s) (see above); nothing written", w.Path, st.SamplerID, r.Errors)
	}
	var inputs []merge.Input
	var baked []string
	modelOnly := st.Base.Kind == KindDiffusionModel
	allModelOnly := true
	for i, l := range st.LoRAs {
		switch l.Mode {
		case "muted":
			return cliutil.Fail("%s: refusing to bake sampler %s: LoRA node %s is muted, so ComfyUI would not run this sampler; unmute or bypass it", w.Path, st.SamplerID, l.NodeID)
		case "active":
			inputs = append(inputs, mergeInput(st, l, r.LoRAs[i].Path))
			baked = append(baked, l.NodeID)
			allModelOnly = allModelOnly && l.ModelOnly
			if l.ClipChain && !l.ModelOnly && l.StrengthClip != 0 && !clipBaked(st, l) {
				fmt.Fprintf(ew, "warning: the text-encoder part of LoRA node %s (strength_clip %g) is not baked: the sampler's text encoder is not the base checkpoint's\n", l.NodeID, l.StrengthClip)
			}
		}
	}
	if len(inputs) == 0 {
		return cliutil.Fail("%s: sampler %s has no active LoRA; nothing to bake", w.Path, st.SamplerID)
	}
	modelOnly = modelOnly || allModelOnly
	if d := filepath.Dir(out); d != "" {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return cliutil.Fail("%s: folder %s does not exist; nothing written", out, d)
		}
	}
	wfOut := cmd.String("write-workflow")
	if !cmd.Bool("overwrite") {
		for _, p := range []string{out, wfOut} {
			if _, err := os.Stat(p); p != "" && err == nil {
				return cliutil.Fail("%s exists (use --overwrite); nothing written", p)
			}
		}
	}
	newBase, under := f.ComfyName(r.Base.Type, out)
	var wfData []byte
	if wfOut != "" {
		if !under {
			fmt.Fprintf(ew, "warning: %s is not in a %s folder of the model folders given; the rewritten workflow names it %q, which ComfyUI finds once it is moved there\n", out, r.Base.Type, newBase)
		}
		if wfData, err = w.bakeData(st, newBase); err != nil {
			return cliutil.Fail("%v; nothing written", err)
		}
	}

	plan, err := merge.NewPlan(r.Base.Path, inputs, merge.PlanOptions{ModelOnly: modelOnly, ComfyExact: !cmd.Bool("apply-all")})
	if err != nil {
		return cliutil.Fail("%v", err)
	}
	defer plan.Close()
	for _, m := range plan.Warnings {
		fmt.Fprintln(ew, "warning:", m)
	}
	if len(plan.ComfyIgnored) > 0 && !cmd.Bool("apply-all") {
		fmt.Fprint(ew, "warning: ")
	}
	merge.WriteComfyIgnored(ew, plan, !cmd.Bool("apply-all"))
	bar := cliutil.NewBytesBar(0, "baking", cmd.Bool("quiet") || cmd.Bool("json"))
	rep, err := plan.Execute(ctx, out, merge.Options{DType: cmd.String("dtype"), Overwrite: cmd.Bool("overwrite"), Version: merge.Version,
		Progress: bar.WriterProgress()})
	bar.Finish()
	if err != nil {
		return cliutil.Fail("%v", err)
	}
	if wfOut != "" {
		if err := writeAtomic(wfOut, wfData); err != nil {
			return cliutil.Fail("%s: %v (the merged model %s was written)", wfOut, err, out)
		}
	}
	if cmd.Bool("json") {
		return cliutil.NewJSONLines(stdout(cmd)).Write(struct {
			*merge.Report
			Sampler      string   `json:"sampler"`
			BakedNodes   []string `json:"baked_nodes"`
			Workflow     string   `json:"workflow_written,omitempty"`
			WorkflowBase string   `json:"workflow_base_name,omitempty"`
		}{rep, st.SamplerID, baked, wfOut, map[bool]string{true: newBase}[wfOut != ""]})
	}
	fmt.Fprintf(ew, "wrote %s: %s, %d patches on %d tensors from %d LoRA(s) of sampler %s (nodes %s), %.1f s\n",
		out, rep.Architecture, rep.Patches, rep.PatchedTensors, len(rep.LoRAs), st.SamplerID, strings.Join(baked, ", "), rep.Seconds)
	fmt.Fprintln(ew, merge.LossLine(rep))
	for _, m := range rep.Warnings {
		fmt.Fprintln(ew, "warning:", m)
	}
	if wfOut != "" {
		fmt.Fprintf(ew, "wrote %s: node %s (%s) loads %q; LoRA node(s) %s removed\n", wfOut, st.Base.NodeID, st.Base.NodeType, newBase, strings.Join(baked, ", "))
	}
	return nil
}
