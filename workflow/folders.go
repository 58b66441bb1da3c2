package workflow

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ComfyUI model types (folder_paths names) whose files a workflow names.
const (
	TypeCheckpoints     = "checkpoints"
	TypeDiffusionModels = "diffusion_models"
	TypeLoRAs           = "loras"
	TypeTextEncoders    = "text_encoders"
	TypeVAE             = "vae"
)

// modelsSubdirs are the sub-folders of a ComfyUI models/ folder searched
// for each type, in ComfyUI's order.
var modelsSubdirs = map[string][]string{
	TypeCheckpoints:     {"checkpoints"},
	TypeDiffusionModels: {"unet", "diffusion_models"},
	TypeLoRAs:           {"loras"},
	TypeTextEncoders:    {"text_encoders", "clip"},
	TypeVAE:             {"vae"},
}

// legacyTypes maps the keys extra_model_paths.yaml may use to the types.
var legacyTypes = map[string]string{
	"checkpoints":      TypeCheckpoints,
	"diffusion_models": TypeDiffusionModels,
	"unet":             TypeDiffusionModels,
	"loras":            TypeLoRAs,
	"text_encoders":    TypeTextEncoders,
	"clip":             TypeTextEncoders,
	"vae":              TypeVAE,
}

// Folders is where model files are looked up, per type, in search order
// (ComfyUI's folder_paths for the types a workflow's loaders use).
type Folders struct {
	dirs map[string][]string
}

// NewFolders returns an empty search list.
func NewFolders() *Folders { return &Folders{dirs: map[string][]string{}} }

// Empty reports whether no folder has been added.
func (f *Folders) Empty() bool { return f == nil || len(f.dirs) == 0 }

// AddModelsDir adds the sub-folders of a ComfyUI models/ folder:
// checkpoints/, unet/ and diffusion_models/, loras/, text_encoders/ and
// clip/, vae/.
func (f *Folders) AddModelsDir(dir string) {
	for typ, subs := range modelsSubdirs {
		for _, s := range subs {
			f.Add(typ, filepath.Join(dir, s), false)
		}
	}
}

// Add adds a folder for a type (legacy names "unet" and "clip" are
// accepted); first puts it ahead of the folders already known, as
// extra_model_paths.yaml's is_default does. Types other than those of
// Type* constants are ignored.
func (f *Folders) Add(typ, dir string, first bool) {
	t, ok := legacyTypes[typ]
	if !ok {
		return
	}
	for _, d := range f.dirs[t] {
		if d == dir {
			return
		}
	}
	if first {
		f.dirs[t] = append([]string{dir}, f.dirs[t]...)
	} else {
		f.dirs[t] = append(f.dirs[t], dir)
	}
}

// Dirs returns the folders searched for a type, in order.
func (f *Folders) Dirs(typ string) []string {
	if f == nil {
		return nil
	}
	return append([]string(nil), f.dirs[typ]...)
}

// cleanName turns a file name as written in a workflow into a relative
// slash path: ComfyUI sub-folder separators may be '\' (workflows saved on
// Windows) or '/', and names cannot climb out of their folder (ComfyUI
// resolves them against "/" first, too).
func cleanName(name string) string {
	n := strings.ReplaceAll(name, `\`, "/")
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

// Resolve finds the file a loader of the given type would load for name.
// searched lists the candidate paths in the order they were tried (all of
// them when the file is not found).
func (f *Folders) Resolve(typ, name string) (found string, searched []string, ok bool) {
	rel := cleanName(name)
	if rel == "" {
		return "", nil, false
	}
	for _, d := range f.Dirs(typ) {
		p := filepath.Join(d, filepath.FromSlash(rel))
		searched = append(searched, p)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, searched, true
		}
	}
	return "", searched, false
}

// ComfyName is the name ComfyUI lists for the file at p among the models
// of typ: its path relative to the first folder of that type it lies
// under (with the operating system's separator, as ComfyUI lists it), or
// its base name when it lies under none. under reports which.
func (f *Folders) ComfyName(typ, p string) (name string, under bool) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Base(p), false
	}
	for _, d := range f.Dirs(typ) {
		da, err := filepath.Abs(d)
		if err != nil {
			continue
		}
		rel, err := filepath.Rel(da, abs)
		if err == nil && filepath.IsLocal(rel) {
			return rel, true
		}
	}
	return filepath.Base(p), false
}

// LoadExtraModelPaths reads an extra_model_paths.yaml file into f.
func (f *Folders) LoadExtraModelPaths(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, unwrapPathError(err))
	}
	entries, err := ParseExtraModelPaths(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	dir := filepath.Dir(file)
	for _, e := range entries {
		f.Add(e.Type, e.resolve(dir), e.Default)
	}
	return nil
}

// ExtraPath is one folder of an extra_model_paths.yaml file.
type ExtraPath struct {
	// Section is the top-level key, e.g. "comfyui" or "a111".
	Section string
	// Type is the key as written (checkpoints, loras, unet, clip, ...).
	Type string
	// Base is the section's base_path ("" if none), "~" and $VARS expanded.
	Base string
	// Path is the folder as written.
	Path string
	// Default is the section's is_default.
	Default bool
}

// resolve returns the folder: Path joined to Base; a relative result is
// taken relative to dir (the YAML file's folder), as ComfyUI does.
func (e ExtraPath) resolve(dir string) string {
	p := e.Path
	if e.Base != "" {
		p = filepath.Join(e.Base, p)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p)
}

// ParseExtraModelPaths reads ComfyUI's extra_model_paths.yaml: top-level
// sections whose keys are base_path, is_default and model types, each type
// holding one folder or several in a "|" block, one per line. It is a
// small line-based reader for that shape, not a YAML parser; comments and
// quoted scalars are understood, other YAML features are reported as
// errors naming the line. Entries come in file order.
func ParseExtraModelPaths(data []byte) ([]ExtraPath, error) {
	type sec struct {
		name, base string
		def        bool
		entries    []ExtraPath
	}
	var secs []*sec
	var cur *sec
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	indentOf := func(l string) int { return len(l) - len(strings.TrimLeft(l, " \t")) }
	for i := 0; i < len(lines); i++ {
		raw := lines[i]
		line := stripComment(raw)
		if strings.TrimSpace(line) == "" || strings.TrimSpace(line) == "---" {
			continue
		}
		ln := i + 1
		ind := indentOf(line)
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			return nil, fmt.Errorf("line %d: expected \"key: value\", got %q", ln, strings.TrimSpace(raw))
		}
		key = strings.TrimSpace(unquote(strings.TrimSpace(key)))
		val = strings.TrimSpace(val)
		if ind == 0 {
			if val != "" {
				return nil, fmt.Errorf("line %d: top-level key %q should start a section (\"%s:\" followed by indented entries)", ln, key, key)
			}
			cur = &sec{name: key}
			secs = append(secs, cur)
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: indented entry before any section", ln)
		}
		var values []string
		switch {
		case val == "|" || val == "|-" || val == "|+" || val == ">" || val == ">-":
			for i+1 < len(lines) {
				next := lines[i+1]
				if strings.TrimSpace(next) != "" && indentOf(next) <= ind {
					break
				}
				i++
				if s := strings.TrimSpace(next); s != "" {
					values = append(values, s)
				}
			}
		case strings.HasPrefix(val, "[") || strings.HasPrefix(val, "{") || strings.HasPrefix(val, "&") || strings.HasPrefix(val, "*"):
			return nil, fmt.Errorf("line %d: %q: flow collections, anchors and aliases are not supported; write one folder per line in a \"|\" block", ln, key)
		case val == "":
			// a "- item" list below?
			for i+1 < len(lines) {
				next := stripComment(lines[i+1])
				s := strings.TrimSpace(next)
				if s == "" {
					i++
					continue
				}
				if !strings.HasPrefix(s, "- ") && s != "-" {
					break
				}
				i++
				if v := unquote(strings.TrimSpace(strings.TrimPrefix(s, "-"))); v != "" {
					values = append(values, v)
				}
			}
		default:
			values = []string{unquote(val)}
		}
		switch key {
		case "base_path":
			if len(values) != 1 {
				return nil, fmt.Errorf("line %d: base_path needs one value", ln)
			}
			cur.base = expandPath(values[0])
		case "is_default":
			if len(values) == 1 {
				cur.def = strings.EqualFold(values[0], "true") || strings.EqualFold(values[0], "yes")
			}
		default:
			for _, v := range values {
				cur.entries = append(cur.entries, ExtraPath{Section: cur.name, Type: key, Path: expandPath(v)})
			}
		}
	}
	var out []ExtraPath
	for _, s := range secs {
		for _, e := range s.entries {
			e.Base, e.Default = s.base, s.def
			out = append(out, e)
		}
	}
	return out, nil
}

// stripComment drops a YAML comment: '#' at the start or after a space,
// outside quotes.
func stripComment(l string) string {
	var q byte
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return l[:i]
		}
	}
	return l
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// expandPath expands a leading "~" and $VAR / ${VAR}, as ComfyUI does
// (os.path.expanduser, os.path.expandvars).
func expandPath(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			p = h + p[1:]
		}
	}
	return os.Expand(p, func(v string) string {
		if s, ok := os.LookupEnv(v); ok {
			return s
		}
		return "$" + v
	})
}
