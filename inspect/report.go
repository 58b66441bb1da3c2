// Package inspect implements `loratool inspect`: it says what a
// safetensors file is (LoRA, checkpoint, embedding), its format,
// architecture, algorithms, targets, ranks, alphas, metadata, trigger
// words and hashes, and what will not load.
package inspect

// Report is the description of one file. Its JSON form is the contract of
// `loratool inspect --json` (one object per line).
type Report struct {
	File         string   `json:"file"`
	Kind         string   `json:"kind"` // lora | checkpoint | embedding | unknown
	Format       string   `json:"format"`
	Architecture string   `json:"architecture"` // registry id or "unknown"
	ArchName     string   `json:"architecture_name,omitempty"`
	Confidence   string   `json:"confidence"` // high | medium | low | none
	Evidence     string   `json:"evidence,omitempty"`
	AlsoFits     []string `json:"also_fits,omitempty"`
	Algorithms   []string `json:"algorithms"`
	Targets      []string `json:"targets"`
	// Variant is the model variant the shapes fit ("SD3.5 Medium"); when
	// the file fits several equally, Variants lists them all.
	Variant  string   `json:"variant,omitempty"`
	Variants []string `json:"variants,omitempty"`
	// TargetModules counts modules per target (LoRAs).
	TargetModules map[string]int    `json:"target_modules,omitempty"`
	Layout        string            `json:"layout,omitempty"` // checkpoints: single-file, diffusion-model, diffusers, ...
	Modules       int               `json:"modules"`
	Rank          *MinMax           `json:"rank,omitempty"`
	Alpha         *AlphaSummary     `json:"alpha,omitempty"`
	Vectors       int64             `json:"vectors,omitempty"` // embeddings: token vectors
	DTypes        []string          `json:"dtypes"`
	Tensors       int               `json:"tensors"`
	Params        int64             `json:"params"`
	Size          int64             `json:"size"`
	Metadata      map[string]string `json:"metadata"`
	Training      map[string]string `json:"training,omitempty"`
	TriggerWords  []string          `json:"trigger_words"`
	// Embeddings lists textual-inversion embeddings bundled in a LoRA.
	Embeddings []BundledEmbedding `json:"embeddings,omitempty"`
	// TopTags are the most frequent caption tags (ss_tag_frequency).
	TopTags     []string  `json:"top_tags,omitempty"`
	Hashes      *Hashes   `json:"hashes,omitempty"`
	Stats       *Stats    `json:"stats,omitempty"`
	GGUF        *GGUFInfo `json:"gguf,omitempty"`
	Warnings    []string  `json:"warnings"`
	UnknownKeys []string  `json:"unknown_keys"`
	// ComfyIgnores are LoRA keys loratool applies but ComfyUI's LoraLoader
	// does not load (docs/merge.md lists the cases).
	ComfyIgnores []string `json:"comfyui_ignores,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// MinMax is a range of integers.
type MinMax struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
}

// AlphaSummary describes the modules' alpha values.
type AlphaSummary struct {
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Dynamic bool    `json:"dynamic"` // alpha/rank varies between modules
	Present int     `json:"present"` // modules with an alpha tensor
	Missing int     `json:"missing"` // low-rank modules without an alpha tensor (scale 1)
	// FromMetadata is true when the values come from ss_network_alpha
	// because tensor values were not read (no --alphas).
	FromMetadata bool `json:"from_metadata,omitempty"`
	// NotRead is true when the file has alpha tensors whose values were not
	// read and its metadata does not state them (use --alphas).
	NotRead bool `json:"not_read,omitempty"`
}

// Hashes are the hashes model sites and tools show for a file.
type Hashes struct {
	SHA256 string `json:"sha256"`      // whole file
	AutoV2 string `json:"autov2"`      // first 10 hex of SHA256
	AutoV3 string `json:"autov3"`      // first 12 hex of the data-section SHA-256
	Data   string `json:"data_sha256"` // SHA-256 of the tensor data (= kohya sshs_model_hash)
	AutoV1 string `json:"autov1"`      // legacy: first 8 hex of SHA-256 of bytes [1 MiB, 1 MiB + 64 KiB)
	CRC32  string `json:"crc32"`
	// SSHSMatches reports whether a stored sshs_model_hash equals Data
	// (nil when the file stores none).
	SSHSMatches *bool `json:"sshs_model_hash_matches,omitempty"`
}

// Stats are tensor statistics (--stats).
type Stats struct {
	NaN    int64        `json:"nan"`
	Inf    int64        `json:"inf"`
	Blocks []BlockStats `json:"blocks"`
}

// BlockStats aggregates one block of the model (for LoRAs: the Frobenius
// norm of the block's weight deltas at strength 1).
type BlockStats struct {
	Block   string  `json:"block"`
	Tensors int     `json:"tensors"`
	Norm    float64 `json:"norm"`
	NaN     int64   `json:"nan,omitempty"`
	Inf     int64   `json:"inf,omitempty"`
}
