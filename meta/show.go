package meta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"
)

// safe renders s for a terminal: control characters (and the other
// invisible format characters) are escaped, so metadata or file names can
// never move the cursor or change colours.
func safe(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == unicode.ReplacementChar, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// safeBlock is safe for multi-line text: newlines are kept.
func safeBlock(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = safe(l)
	}
	return strings.Join(lines, "\n")
}

// isJSONValued reports whether key's value is shown pretty-printed: the
// known JSON-valued kohya keys, every modelspec.* key and any value that
// is a JSON object or array.
func isJSONValued(key, v string) bool {
	t := strings.TrimSpace(v)
	if !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, "[") {
		return false
	}
	return json.Valid([]byte(t))
}

// pretty indents a JSON value (keeping its key order and numbers).
func pretty(v, indent string) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(strings.TrimSpace(v)), indent, "  "); err != nil {
		return v
	}
	return buf.String()
}

// Show writes every metadata entry of md, sorted by key; JSON values
// (ss_tag_frequency, ss_dataset_dirs, ss_datasets, ss_network_args,
// modelspec.* …) are pretty-printed under their key.
func Show(w io.Writer, md map[string]string) {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := md[k]
		if isJSONValued(k, v) {
			fmt.Fprintf(w, "%s:\n  %s\n", safe(k), safeBlock(pretty(v, "  ")))
			continue
		}
		fmt.Fprintf(w, "%s: %s\n", safe(k), safe(v))
	}
}
