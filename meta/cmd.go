package meta

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/convert"
	"github.com/loratool/loratool/internal/cliutil"
	"github.com/loratool/loratool/safetensors"
)

// outputFlags are the flags of the editing subcommands (fresh instances
// per command: urfave/cli flags keep state).
func outputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the edited file here (single input only)"},
		&cli.BoolFlag{Name: "in-place", Aliases: []string{"i"}, Usage: "replace each input atomically (temp file, fsync, rename; mode kept)"},
		&cli.StringFlag{Name: "out-dir", Usage: "write edited files here, mirroring each input folder's tree"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace existing output files"},
		&cli.BoolFlag{Name: "rehash", Usage: "also recompute sshs_model_hash, sshs_legacy_hash and modelspec.hash_sha256"},
		&cli.StringFlag{Name: "trigger", Usage: `set trigger words, e.g. --trigger "ohwx, red scarf" (see loratool meta set --help)`},
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "files processed in parallel (default: number of cores)"},
		&cli.BoolFlag{Name: "json", Usage: "one JSON result object per file per line (JSON Lines) on stdout"},
	}
}

// Command returns the `loratool meta` command.
func Command() *cli.Command {
	return &cli.Command{
		Name:      "meta",
		Usage:     "show and edit safetensors metadata (ss_*, modelspec.*, trigger words, kohya hashes) safely",
		ArgsUsage: "PATH...",
		Description: `Without a subcommand, prints every metadata entry of each file, sorted by
key; JSON values (ss_tag_frequency, ss_dataset_dirs, ss_datasets,
ss_network_args, modelspec.* …) are pretty-printed. --json prints one object
per file: {"file": …, "metadata": {…}} with the raw strings. --get KEY prints
one raw value (exit 1 if a file lacks it).

Editing subcommands (set, rm, strip, rehash, copy) write with -o OUT, --out-dir
DIR or --in-place: a temporary file in the same folder, fsync, rename. Tensor
data are streamed unchanged (copy_file_range) and read back before the
rename to check every byte; the file mode is kept.

PATH may be files, folders (searched recursively for .safetensors) or globs.

Examples:
   loratool meta lora.safetensors
   loratool meta lora.safetensors --get ss_network_dim
   loratool meta set lora.safetensors modelspec.title="Red scarf" --trigger "ohwx, red scarf" --in-place
   loratool meta rm lora.safetensors 'ss_sd_scripts_commit_hash' --in-place
   loratool meta strip ~/loras --out-dir ~/loras-public -j 4 --json
   loratool meta rehash lora.safetensors            # check the stored hashes
   loratool meta rehash lora.safetensors --in-place # rewrite them
   loratool meta copy --from original.safetensors resized.safetensors --in-place`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "get", Usage: "print only this key's raw value"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per file per line on stdout"},
		},
		Action: showAction,
		Commands: []*cli.Command{
			{
				Name:      "set",
				Usage:     "set KEY=VALUE entries (and/or --trigger words)",
				ArgsUsage: "PATH... KEY=VALUE...",
				Description: `Sets each KEY=VALUE (paths come first; an argument containing "=" that is not
an existing file is an assignment). --trigger "w1, w2" records trigger words
where tools look for them: modelspec.trigger_phrase (SAI ModelSpec, SwarmUI),
ss_tag_frequency under a "1_<words>" folder ranked first (the training tags
A1111/Forge's LoRA card, Civitai's upload form and ComfyUI LoRA Manager show),
and "activation text" in the A1111/Forge user-metadata file <name>.json beside
the output.

Examples:
   loratool meta set lora.safetensors ss_output_name=redscarf modelspec.author=me -i
   loratool meta set lora.safetensors --trigger "ohwx, red scarf" -o tagged.safetensors`,
				Flags:  outputFlags(),
				Action: editAction("set"),
			},
			{
				Name:      "rm",
				Usage:     "remove metadata keys (globs such as 'ss_*' allowed)",
				ArgsUsage: "PATH... KEY...",
				Description: `Removes each KEY (a glob matches several keys). A key that matches nothing is
reported, not an error.

Example:
   loratool meta rm lora.safetensors ss_session_id 'ss_bucket_*' --in-place`,
				Flags:  outputFlags(),
				Action: editAction("rm"),
			},
			{
				Name:  "strip",
				Usage: "drop training-set details (dataset folders, tag frequencies, captions, paths)",
				Description: `Drops ss_tag_frequency, ss_dataset_dirs, ss_reg_dataset_dirs, ss_datasets,
ss_bucket_info and caption settings, and every value that is an absolute path
(model-name keys keep only the file name). Keeps the architecture, rank,
alpha, network arguments, base model, training hyperparameters and
trigger words: when the trigger words lived only in the dropped keys
(ai-toolkit's "1_<trigger>" folder, kohya class tokens), they are moved to
modelspec.trigger_phrase first.

Example:
   loratool meta strip lora.safetensors -o lora-public.safetensors --rehash`,
				ArgsUsage: "PATH...",
				Flags:     outputFlags(),
				Action:    editAction("strip"),
			},
			{
				Name:      "rehash",
				Usage:     "check or recompute sshs_model_hash, sshs_legacy_hash, modelspec.hash_sha256",
				ArgsUsage: "PATH...",
				Description: `Recomputes the hashes kohya sd-scripts stores, as current sd-scripts computes
them (library/train_util.py precalculate_safetensors_hashes): the file is
re-serialized as the Python safetensors library would save it with only the
ss_* metadata; sshs_model_hash = SHA-256 of its data section; sshs_legacy_hash
= the first 8 hex digits of SHA-256 of its bytes [1 MiB, 1 MiB + 64 KiB) with
the header padded to a multiple of 8 (safetensors >= 0.3.1); files written by
older kohya carry the unpadded value, and the report says which rule a stored
hash matches. modelspec.hash_sha256 = "0x" + SHA-256 of the tensor data.

Without -o/--out-dir/--in-place, only checks: each stored hash is ok, stale
or absent.

Examples:
   loratool meta rehash lora.safetensors
   loratool meta rehash ~/loras --in-place --json`,
				Flags:  outputFlags(),
				Action: editAction("rehash"),
			},
			{
				Name:      "copy",
				Usage:     "copy metadata from another file (all of it, or the KEYs given)",
				ArgsUsage: "--from OTHER PATH... [KEY...]",
				Description: `Replaces the metadata with OTHER's, or with KEY arguments sets only those
keys (globs allowed) from OTHER. Useful after a tool that drops metadata.

Examples:
   loratool meta copy --from trained.safetensors merged.safetensors --in-place
   loratool meta copy --from trained.safetensors merged.safetensors 'ss_*' -o out.safetensors`,
				Flags:  append([]cli.Flag{&cli.StringFlag{Name: "from", Usage: "the file to copy metadata from", Required: true}}, outputFlags()...),
				Action: editAction("copy"),
			},
		},
	}
}

// isPath reports whether arg names existing files (a path or a glob that
// matches).
func isPath(arg string) bool {
	if _, err := os.Stat(arg); err == nil {
		return true
	}
	if strings.ContainsAny(arg, "*?[") {
		m, _ := filepath.Glob(arg)
		return len(m) > 0
	}
	return false
}

// splitArgs separates the leading paths from the operands that follow.
func splitArgs(args []string, operand func(string) bool) (paths, ops []string) {
	for i, a := range args {
		if operand(a) {
			return paths, args[i:]
		}
		paths = append(paths, a)
	}
	return paths, nil
}

func showAction(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Len() == 0 {
		return cliutil.Usage("meta needs a file, or a subcommand: set, rm, strip, rehash, copy")
	}
	jobs, errs := convert.ExpandJobs(cmd.Args().Slice(), "", "", "", []string{".safetensors"})
	out := cliutil.NewJSONLines(os.Stdout)
	asJSON, get := cmd.Bool("json"), cmd.String("get")
	failed := 0
	fail := func(err error) {
		failed++
		if asJSON {
			out.Write(map[string]string{"error": err.Error()})
		} else {
			fmt.Fprintln(os.Stderr, "loratool: "+safe(err.Error()))
		}
	}
	for _, e := range errs {
		fail(e)
	}
	if len(jobs) == 0 && len(errs) == 0 {
		return cliutil.Fail("no input files found")
	}
	for _, j := range jobs {
		h, err := safetensors.ReadHeader(j.In)
		if err != nil {
			fail(err)
			continue
		}
		md := h.Metadata
		if md == nil {
			md = map[string]string{}
		}
		switch {
		case get != "":
			v, ok := md[get]
			if !ok {
				fail(fmt.Errorf("%s: no metadata key %s", j.In, get))
				continue
			}
			switch {
			case asJSON:
				out.Write(map[string]string{"file": j.In, "key": get, "value": v})
			case len(jobs) > 1:
				fmt.Printf("%s: %s\n", safe(j.In), safe(v))
			default:
				// the raw value, for scripts; control characters escaped on terminals
				if cliutil.StderrIsTerminal() {
					v = safeBlock(v)
				}
				fmt.Println(v)
			}
		case asJSON:
			out.Write(map[string]any{"file": j.In, "metadata": md})
		default:
			if len(jobs) > 1 {
				fmt.Printf("== %s\n", safe(j.In))
			}
			if len(md) == 0 {
				fmt.Println("(no metadata)")
			}
			Show(os.Stdout, md)
		}
	}
	if failed > 0 {
		return cliutil.Silent()
	}
	return nil
}

func editAction(op string) cli.ActionFunc {
	return func(ctx context.Context, cmd *cli.Command) error {
		args := cmd.Args().Slice()
		var paths, ops []string
		switch op {
		case "set":
			paths, ops = splitArgs(args, func(a string) bool { return strings.Contains(a, "=") && !isPath(a) })
		case "rm", "copy":
			paths, ops = splitArgs(args, func(a string) bool { return !isPath(a) })
		default:
			paths = args
		}
		if len(paths) == 0 {
			if len(ops) > 0 && op != "set" {
				return cliutil.Usage("%s: no such file", ops[0])
			}
			return cliutil.Usage("meta %s needs at least one file or folder", op)
		}
		var edits []Edit
		trigger := SplitTrigger(cmd.String("trigger"))
		if cmd.IsSet("trigger") && len(trigger) == 0 {
			return cliutil.Usage("--trigger needs at least one word")
		}
		switch op {
		case "set":
			kv := map[string]string{}
			for _, a := range ops {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return cliutil.Usage("%q is not KEY=VALUE", a)
				}
				kv[k] = v
			}
			if len(kv) == 0 && len(trigger) == 0 {
				return cliutil.Usage("meta set needs KEY=VALUE arguments or --trigger")
			}
			if len(kv) > 0 {
				edits = append(edits, SetKeys(kv))
			}
		case "rm":
			if len(ops) == 0 {
				return cliutil.Usage("meta rm needs the keys to remove after the files")
			}
			edits = append(edits, RemoveKeys(ops))
		case "strip":
			edits = append(edits, Strip())
		case "copy":
			h, err := safetensors.ReadHeader(cmd.String("from"))
			if err != nil {
				return cliutil.Fail("%v", err)
			}
			edits = append(edits, CopyFrom(h.Metadata, ops))
		}
		if len(trigger) > 0 {
			edits = append(edits, SetTrigger(trigger))
		}
		o, outDir, inPlace := cmd.String("output"), cmd.String("out-dir"), cmd.Bool("in-place")
		n := 0
		for _, b := range []bool{o != "", outDir != "", inPlace} {
			if b {
				n++
			}
		}
		if n > 1 {
			return cliutil.Usage("use one of -o, --out-dir and --in-place")
		}
		checkOnly := op == "rehash" && n == 0
		if n == 0 && !checkOnly {
			return cliutil.Usage("meta %s writes a file: give -o OUT, --out-dir DIR or --in-place", op)
		}
		jobs, errs := convert.ExpandJobs(paths, o, outDir, "", []string{".safetensors"})
		if o != "" && len(jobs)+len(errs) > 1 {
			return cliutil.Usage("-o takes a single input; use --out-dir or --in-place for several")
		}
		if inPlace {
			for i := range jobs {
				// a symlink keeps pointing at the edited file
				jobs[i].Out = jobs[i].In
				if p, err := filepath.EvalSymlinks(jobs[i].In); err == nil {
					jobs[i].Out = p
				}
			}
		}
		opt := Options{Rehash: cmd.Bool("rehash") || op == "rehash", Overwrite: cmd.Bool("overwrite"), Trigger: trigger}
		return runEdits(cmd, jobs, errs, func(j convert.Job) (*Result, error) {
			if checkOnly {
				return checkFile(j.In)
			}
			if !inPlace && sameFile(j.In, j.Out) {
				return &Result{Input: j.In}, fmt.Errorf("%s: output would replace the input (use --in-place)", j.In)
			}
			var res *Result
			var err error
			if op == "rehash" {
				// report the stored hashes against the recomputed ones too
				c, cerr := checkFile(j.In)
				if cerr != nil {
					return c, cerr
				}
				res, err = Rewrite(j.In, j.Out, edits, opt)
				if err == nil {
					c.Hashes.Computed = res.Hashes.Computed
					res.Hashes = c.Hashes
				}
				return res, err
			}
			return Rewrite(j.In, j.Out, edits, opt)
		})
	}
}

// sameFile reports whether a and b name the same existing file.
func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// checkFile compares a file's stored hashes with recomputed ones.
func checkFile(path string) (*Result, error) {
	res := &Result{Input: path}
	f, err := safetensors.Open(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	f.Advise(true)
	c, err := CheckHashes(f)
	if err != nil {
		return res, err
	}
	res.Hashes = c
	return res, nil
}

// runEdits runs the jobs in parallel and prints text or JSON Lines; it
// fails (exit 1) at the end when any file failed.
func runEdits(cmd *cli.Command, jobs []convert.Job, errs []error, fn func(convert.Job) (*Result, error)) error {
	asJSON := cmd.Bool("json")
	out := cliutil.NewJSONLines(os.Stdout)
	failed := 0
	for _, e := range errs {
		failed++
		if asJSON {
			out.Write(map[string]string{"error": e.Error()})
		} else {
			fmt.Fprintln(os.Stderr, "loratool: "+safe(e.Error()))
		}
	}
	if len(jobs) == 0 && len(errs) == 0 {
		return cliutil.Fail("no input files found")
	}
	bar := cliutil.NewCountBar(len(jobs), "meta", len(jobs) < 2)
	convert.RunJobs(jobs, int(cmd.Int("jobs")), func(j convert.Job) (any, error) { return fn(j) }, func(r any, err error) {
		bar.Add(1)
		x := r.(*Result)
		if err != nil {
			failed++
			x.Error, x.Output, x.Set, x.Removed, x.Notes = err.Error(), "", nil, nil, nil
			if asJSON {
				out.Write(x)
			} else {
				fmt.Fprintln(os.Stderr, "loratool: "+safe(err.Error()))
			}
			return
		}
		if asJSON {
			out.Write(x)
		} else {
			fmt.Print(describe(x))
		}
	})
	bar.Finish()
	if failed > 0 {
		return cliutil.Silent()
	}
	return nil
}

// describe renders a result for people.
func describe(r *Result) string {
	var b strings.Builder
	if r.Output != "" {
		fmt.Fprintf(&b, "%s → %s", safe(r.Input), safe(r.Output))
		if r.Verified {
			b.WriteString(" (tensor data verified unchanged)")
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "%s\n", safe(r.Input))
	}
	if len(r.Set) > 0 {
		fmt.Fprintf(&b, "  set: %s\n", safe(strings.Join(r.Set, ", ")))
	}
	if len(r.Removed) > 0 {
		fmt.Fprintf(&b, "  removed: %s\n", safe(strings.Join(r.Removed, ", ")))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", safe(n))
	}
	if c := r.Hashes; c != nil {
		line := func(key, stored, computed, verdict, extra string) {
			if verdict == "" {
				fmt.Fprintf(&b, "  %-22s %s\n", key, computed)
				return
			}
			if stored == "" {
				stored = "-"
			}
			fmt.Fprintf(&b, "  %-22s stored %s, computed %s: %s%s\n", key, safe(stored), computed, verdict, extra)
		}
		extra := ""
		switch c.LegacyRule {
		case "unpadded":
			extra = " (older unpadded-header rule; current sd-scripts gives " + c.Computed.LegacyHash + ")"
		case "padded":
			extra = " (current padded-header rule)"
		case "both":
			extra = " (padded and unpadded rules agree)"
		}
		if c.Legacy == "stale" {
			extra = " (unpadded-header rule gives " + c.Computed.LegacyUnpadded + ")"
		}
		line("sshs_model_hash", c.Stored.ModelHash, c.Computed.ModelHash, c.Model, "")
		line("sshs_legacy_hash", c.Stored.LegacyHash, c.Computed.LegacyHash, c.Legacy, extra)
		line("modelspec.hash_sha256", c.Stored.SpecHash, c.Computed.SpecHash, c.Spec, "")
	}
	return b.String()
}
