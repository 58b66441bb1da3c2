package main

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/internal/cliutil"
	"github.com/loratool/loratool/merge"
)

// checkCommand finds an unknown command name before urfave/cli sees it:
// `loratool merg` or `loratool workflow inspct` is a usage error (exit 2)
// with a did-you-mean, not a help-topic lookup.
func checkCommand(root *cli.Command, args []string) error {
	cmd := root
	path := "loratool"
	for _, a := range args {
		if len(cmd.Commands) == 0 || strings.HasPrefix(a, "-") {
			return nil
		}
		if a == "help" || a == "h" {
			// `loratool help merg`: check the topic the same way
			continue
		}
		var next *cli.Command
		var names []string
		for _, c := range cmd.Commands {
			if c.HasName(a) {
				next = c
			}
			if !c.Hidden {
				names = append(names, c.Name)
			}
		}
		if next == nil && cmd != root && cmd.Action != nil {
			return nil // a command with its own arguments (meta FILE)
		}
		if next == nil {
			return cliutil.Usage("unknown command %q%s (%s commands: %s)", a, cliutil.DidYouMean(a, names), path, strings.Join(names, ", "))
		}
		cmd, path = next, path+" "+next.Name
	}
	return nil
}

// usageError turns a parse error into exit status 2, suggesting the
// closest flag for an unknown one.
func usageError(_ context.Context, cmd *cli.Command, err error, _ bool) error {
	const undefined = "flag provided but not defined: "
	msg := err.Error()
	if i := strings.Index(msg, undefined); i >= 0 {
		name := strings.TrimLeft(msg[i+len(undefined):], "-")
		var names []string
		for _, f := range cmd.Flags {
			for _, n := range f.Names() {
				if len(n) > 1 {
					names = append(names, n)
				}
			}
		}
		dash := "--"
		if len([]rune(name)) == 1 {
			dash = "-"
		}
		s := ""
		if m := cliutil.Suggest(name, names); m != "" {
			s = `; did you mean "--` + m + `"?`
		}
		return cliutil.Usage("%s: unknown flag %s%s%s", cmd.FullName(), dash, name, s)
	}
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		return cliutil.Usage("bad value %q for --%s (%s)", m[1], m[2], valueHint(cmd, m[2], m[1]))
	}
	return cliutil.Usage("%v", err)
}

// invalidValue matches the flag library's parse error, whose strconv
// detail means nothing to a user.
var invalidValue = regexp.MustCompile(`invalid value "(.*)" for flag -+([A-Za-z0-9-]+)`)

// valueHint says what a flag wants.
func valueHint(cmd *cli.Command, name, v string) string {
	for _, f := range cmd.Flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		switch f.(type) {
		case *cli.FloatFlag:
			return merge.StrengthHint(v)
		case *cli.IntFlag, *cli.UintFlag, *cli.Int64Flag:
			return "want a whole number"
		}
	}
	return "see --help"
}

// jsonFailures wraps a command's action so that with --json a failure
// that printed no JSON yet (merge, extract, workflow bake) still prints one
// {"file":…,"error":…} object; the file is the input the error names.
func jsonFailures(a cli.ActionFunc) cli.ActionFunc {
	return func(ctx context.Context, cmd *cli.Command) error {
		err := a(ctx, cmd)
		if err == nil || !hasFlag(cmd, "json") {
			return err
		}
		var files []string
		for _, f := range []string{"base", "tuned"} {
			if hasFlag(cmd, f) {
				files = append(files, cmd.String(f))
			}
		}
		if hasFlag(cmd, "lora") {
			for _, l := range cmd.StringSlice("lora") {
				if in, e := merge.ParseInput(l, 1, 1); e == nil {
					files = append(files, in.Path)
				}
			}
		}
		files = append(files, cmd.Args().Slice()...)
		if hasFlag(cmd, "output") {
			files = append(files, cmd.String("output"))
		}
		return cliutil.JSONFailure(cmd, err, files...)
	}
}

func hasFlag(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

// tidyDefaults hides the flag library's "(default: …)" where it misleads:
// a zero that means "not given" (the usage says what happens then) and a
// default the usage text already states, which would show twice.
func tidyDefaults(flags []cli.Flag) {
	for _, f := range flags {
		switch x := f.(type) {
		case *cli.IntFlag:
			x.HideDefault = x.HideDefault || x.Value == 0 || strings.Contains(x.Usage, "(default")
		case *cli.FloatFlag:
			x.HideDefault = x.HideDefault || x.Value == 0 || strings.Contains(x.Usage, "(default")
		case *cli.StringFlag:
			x.HideDefault = x.HideDefault || strings.Contains(x.Usage, "(default")
		}
	}
}
