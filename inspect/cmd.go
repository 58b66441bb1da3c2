package inspect

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/internal/cliutil"
)

// Command returns the `loratool inspect` command.
func Command() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "say what LoRA, checkpoint or embedding files are",
		ArgsUsage: "FILE|FOLDER...",
		Description: `Reads each file's header (nothing else unless --alphas, --stats or --hash)
and reports kind, format, architecture with the evidence, algorithms,
targets, ranks, alphas, dtypes, training metadata, trigger words and what
will not load. Folders are searched recursively for *.safetensors (and
*.ckpt/*.pt/*.pth pickles, read without running them); files are read in
parallel and a bad file does not stop the others (exit status 1 at the end).

Examples:
   loratool inspect pixel-art.safetensors
   loratool inspect ~/ComfyUI/models/loras --json > loras.jsonl
   loratool inspect flux-lora.safetensors --hash --stats
   loratool inspect old-lora.safetensors --arch sd2 --alphas --verbose`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per file per line (JSON Lines) on stdout"},
			&cli.BoolFlag{Name: "hash", Usage: "compute AutoV1/AutoV2/AutoV3 (sshs_model_hash) hashes and check the stored one (reads the whole file)"},
			&cli.BoolFlag{Name: "stats", Usage: "read every tensor: per-block norms (LoRAs: of the weight deltas) and NaN/Inf counts"},
			&cli.BoolFlag{Name: "alphas", Usage: "also read the alpha tensors' values (a few bytes each); by default only the header is read and alphas come from ss_network_alpha"},
			&cli.StringFlag{Name: "arch", Usage: "assume this architecture instead of detecting it"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "list all unknown keys and the full metadata"},
			&cli.BoolFlag{Name: "table", Usage: "one line per file: name, kind, architecture, algorithm, rank/alpha, targets, size"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "files inspected in parallel (default: 2 per core)", HideDefault: true},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() == 0 {
				return cliutil.Usage("inspect needs at least one file or folder")
			}
			archID, err := cliutil.ArchFlag(cmd)
			if err != nil {
				return err
			}
			opt := Options{Hash: cmd.Bool("hash"), Stats: cmd.Bool("stats"), Alphas: cmd.Bool("alphas"), Arch: archID}
			files, bad := Expand(cmd.Args().Slice())
			failed := 0
			asJSON := cmd.Bool("json")
			bar := inspectBar(files, &opt, cmd.Bool("quiet"))
			var table *Table
			if cmd.Bool("table") && !asJSON {
				table = NewTable(os.Stdout)
			}
			var t tally
			emit := func(r *Report) {
				t.add(r)
				if r.Error != "" {
					failed++
				}
				switch {
				case asJSON:
					bar.JSON(r)
				case table != nil:
					table.Add(r)
				default:
					var b strings.Builder
					r.WriteText(cliutil.SafeWriter(&b), cmd.Bool("verbose"))
					bar.Println(os.Stdout, strings.TrimSuffix(b.String(), "\n"))
				}
				if r.Error != "" && !asJSON {
					// as Unix tools do: failures reach the terminal even
					// when the report goes to a file
					bar.Println(os.Stderr, "loratool: "+cliutil.Safe(r.File+": "+r.Error))
				}
			}
			for _, r := range bad {
				r.Kind, r.Architecture = "unknown", "unknown"
				emit(r)
			}
			jobs := int(cmd.Int("jobs"))
			if jobs <= 0 {
				jobs = 2 * runtime.GOMAXPROCS(0)
			}
			Many(files, opt, jobs, func(r *Report) {
				if opt.Progress == nil {
					bar.Add(1)
				}
				emit(r)
			})
			bar.Finish()
			if table != nil {
				table.Flush()
			}
			if len(files)+len(bad) > 1 {
				fmt.Fprintln(os.Stderr, t.summary())
			}
			if failed > 0 {
				return cliutil.Silent()
			}
			if len(files) == 0 && len(bad) == 0 {
				return cliutil.Fail("no .safetensors files found")
			}
			return nil
		},
	}
}
