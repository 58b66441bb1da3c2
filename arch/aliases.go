package arch

import (
	"fmt"
	"sort"
	"strings"
)

// aliases maps the names people type for an architecture (after
// normalisation: lower case, spaces and underscores as '-') to a registry
// id.
var aliases = map[string]string{
	"sd15": "sd1", "sd1.5": "sd1", "sd-1.5": "sd1", "sd1.x": "sd1", "sd-1": "sd1", "sd14": "sd1", "sd1.4": "sd1", "v1": "sd1", "sd-v1": "sd1",
	"sd21": "sd2", "sd2.1": "sd2", "sd-2.1": "sd2", "sd20": "sd2", "sd2.0": "sd2", "sd2.x": "sd2", "sd-2": "sd2", "v2": "sd2",
	"xl": "sdxl", "sdxl1": "sdxl", "sdxl1.0": "sdxl", "sdxl-1.0": "sdxl", "sdxl-base": "sdxl", "sd-xl": "sdxl", "pony": "sdxl", "illustrious": "sdxl",
	"xl-refiner": "sdxl-refiner", "refiner": "sdxl-refiner", "sdxlrefiner": "sdxl-refiner",
	"sd35": "sd3", "sd3.5": "sd3", "sd3-medium": "sd3", "sd3.5-large": "sd3", "sd3.5-medium": "sd3",
	"flux": "flux1", "flux.1": "flux1", "flux-dev": "flux1", "flux1-dev": "flux1", "flux-schnell": "flux1", "flux1-schnell": "flux1", "flux-1": "flux1",
	"flux2-dev": "flux2", "flux.2": "flux2", "flux-2": "flux2",
	"wan21": "wan", "wan2.1": "wan", "wan-2.1": "wan", "wan22": "wan", "wan2.2": "wan", "wan-2.2": "wan", "wan2": "wan",
	"qwen": "qwen-image", "qwenimage": "qwen-image", "qwen-image-edit": "qwen-image",
	"hunyuan": "hunyuan-video", "hunyuanvideo": "hunyuan-video", "hyv": "hunyuan-video",
	"ltx": "ltxv", "ltx-video": "ltxv", "ltxvideo": "ltxv",
	"lumina": "lumina2", "lumina-2": "lumina2", "lumina-image-2": "lumina2",
	"zimage": "z-image", "z-image-turbo": "z-image",
	"hidream-i1": "hidream", "aura": "auraflow", "aura-flow": "auraflow",
}

func normaliseName(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.NewReplacer(" ", "-", "_", "-").Replace(s)
	return s
}

// Lookup returns the architecture for an id or a common alias ("sd15",
// "sd1.5", "xl", "flux-dev", "wan22", "qwen", ...), case-insensitive.
func Lookup(name string) (*Arch, bool) {
	n := normaliseName(name)
	if a, ok := ByID(n); ok {
		return a, true
	}
	if id, ok := aliases[n]; ok {
		return ByID(id)
	}
	return nil, false
}

// Aliases returns the aliases of the architecture id, sorted.
func Aliases(id string) []string {
	var out []string
	for k, v := range aliases {
		if v == id {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// UnknownError is the error for a --arch value that is neither an id nor
// an alias; it lists the ids.
type UnknownError struct{ Name string }

func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown architecture %q (known: %s; aliases such as sd15, xl, flux-dev, wan22, qwen are accepted)", e.Name, strings.Join(IDs(), ", "))
}

// ParseID resolves a user-given architecture name to its registry id;
// "" stays "" (detect). The error is an *UnknownError.
func ParseID(name string) (string, error) {
	if strings.TrimSpace(name) == "" {
		return "", nil
	}
	if a, ok := Lookup(name); ok {
		return a.ID, nil
	}
	return "", &UnknownError{name}
}
