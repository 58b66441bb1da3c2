package inspect

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteText writes the human summary of a report.
func (r *Report) WriteText(w io.Writer, verbose bool) {
	fmt.Fprintf(w, "%s\n", r.File)
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
		return
	}
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-13s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	kind := r.Kind
	if r.Format != "" {
		kind += ", " + r.Format
	}
	line("kind", "%s", kind)
	arch := r.Architecture
	switch {
	case len(r.Variants) > 1:
		arch = fmt.Sprintf("%s (%s)", r.Architecture, strings.Join(r.Variants, " / "))
	case r.Variant != "":
		arch = fmt.Sprintf("%s (%s)", r.Architecture, r.Variant)
	case r.ArchName != "":
		arch = fmt.Sprintf("%s (%s)", r.Architecture, r.ArchName)
	}
	if r.Confidence != "" && r.Confidence != "none" {
		arch += ", confidence " + r.Confidence
	}
	if len(r.AlsoFits) > 0 {
		arch += "; also fits " + strings.Join(r.AlsoFits, ", ")
	}
	line("architecture", "%s", arch)
	if r.Evidence != "" {
		line("evidence", "%s", r.Evidence)
	}
	r.writeGGUF(line)
	if len(r.Algorithms) > 0 {
		line("algorithms", "%s", strings.Join(r.Algorithms, ", "))
	}
	if len(r.Targets) > 0 {
		var ts []string
		for _, t := range r.Targets {
			if n, ok := r.TargetModules[t]; ok {
				ts = append(ts, fmt.Sprintf("%s (%d modules)", t, n))
			} else {
				ts = append(ts, t)
			}
		}
		label := "targets"
		if r.Kind == "checkpoint" {
			label = "components"
		}
		line(label, "%s", strings.Join(ts, ", "))
	}
	if r.Rank != nil {
		if r.Rank.Min == r.Rank.Max {
			line("rank", "%d", r.Rank.Min)
		} else {
			line("rank", "%d..%d (dynamic)", r.Rank.Min, r.Rank.Max)
		}
	}
	if a := r.Alpha; a != nil {
		s := fmt.Sprintf("%g", a.Min)
		if a.Present == 0 {
			s = "none"
		} else if a.NotRead {
			s = fmt.Sprintf("in %d modules (values not read: --alphas)", a.Present)
		} else if a.Min != a.Max {
			s = fmt.Sprintf("%g..%g", a.Min, a.Max)
		}
		if a.Dynamic {
			s += " (alpha/rank varies)"
		}
		if a.Missing > 0 {
			s += fmt.Sprintf("; %d modules without alpha (scale 1)", a.Missing)
		}
		if a.FromMetadata {
			s += " (from ss_network_alpha)"
		}
		line("alpha", "%s", s)
	}
	if len(r.Embeddings) > 0 && r.Kind == "lora" {
		line("embeddings", "%s", describeBundled(r.Embeddings))
	}
	if r.Vectors > 0 {
		line("vectors", "%d", r.Vectors)
	}
	line("tensors", "%d, %s params, %s, dtypes %s", r.Tensors, human(float64(r.Params), ""), human(float64(r.Size), "B"), strings.Join(r.DTypes, " "))
	if len(r.Training) > 0 {
		fmt.Fprintf(w, "  training:\n")
		for _, k := range trainingOrder() {
			if v, ok := r.Training[k]; ok {
				if len(v) > 120 && !verbose {
					v = v[:117] + "..."
				}
				fmt.Fprintf(w, "    %-17s %s\n", k+":", v)
			}
		}
	}
	if len(r.TriggerWords) > 0 {
		line("trigger words", "%s", strings.Join(r.TriggerWords, ", "))
	}
	if len(r.TopTags) > 0 {
		line("top tags", "%s", strings.Join(r.TopTags, ", "))
	}
	if h := r.Hashes; h != nil {
		line("hashes", "AutoV2 %s  AutoV3 %s  AutoV1 %s  CRC32 %s", strings.ToUpper(h.AutoV2), strings.ToUpper(h.AutoV3), h.AutoV1, h.CRC32)
		line("sha256", "%s (file), %s (data)", h.SHA256, h.Data)
	}
	if s := r.Stats; s != nil {
		line("stats", "%d NaN, %d Inf; norms by block:", s.NaN, s.Inf)
		for _, b := range s.Blocks {
			fmt.Fprintf(w, "    %-48s %10.4g  (%d tensors)\n", b.Block, b.Norm, b.Tensors)
		}
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", wn)
	}
	if len(r.UnknownKeys) > 0 {
		n := len(r.UnknownKeys)
		show := r.UnknownKeys
		if !verbose && n > 8 {
			show = show[:8]
		}
		fmt.Fprintf(w, "  unknown keys (%d):\n", n)
		for _, k := range show {
			fmt.Fprintf(w, "    %s\n", k)
		}
		if len(show) < n {
			fmt.Fprintf(w, "    ... %d more (--verbose or --json lists all)\n", n-len(show))
		}
	}
	if verbose && len(r.Metadata) > 0 {
		var ks []string
		for k := range r.Metadata {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		fmt.Fprintf(w, "  metadata:\n")
		for _, k := range ks {
			v := r.Metadata[k]
			if len(v) > 200 {
				v = v[:197] + "..."
			}
			fmt.Fprintf(w, "    %s = %s\n", k, v)
		}
	}
}

func human(v float64, unit string) string {
	for _, p := range []struct {
		s string
		f float64
	}{{"T", 1e12}, {"G", 1e9}, {"M", 1e6}, {"k", 1e3}} {
		if v >= p.f {
			return fmt.Sprintf("%.2f %s%s", v/p.f, p.s, unit)
		}
	}
	if unit == "" {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}
