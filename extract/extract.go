// Package extract implements `loratool extract`: a low-rank LoRA (LoCon for
// k×k convolutions) that approximates the difference between two full
// models of the same architecture, by truncated SVD of every weight delta.
//
// Both checkpoints are memory-mapped and streamed in file order through a
// small bounded pipeline (a few tensors in flight), so the memory in use is
// a few decoded tensors plus the (small) factors of the output LoRA, which
// are kept until the end because the safetensors header — and with it the
// rank of every module and the sshs_model_hash of the data — must be known
// before the first tensor byte is written.
package extract

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/loratool/loratool/dtype"
	"github.com/loratool/loratool/svd"
)

// Defaults.
const (
	// DefaultMaxRank is the rank cap of the dynamic rank rules when no
	// rank is given.
	DefaultMaxRank = 128
	// DefaultTEMinDiff is the encoder-level threshold: a text encoder
	// whose largest |tuned − base| over its extractable weights does not
	// exceed it is treated as unchanged (kohya's old default, which its
	// users restore with --min_diff 0.0001; kohya's current 0.01 drops
	// text encoders that really were trained).
	DefaultTEMinDiff = 1e-4
	// DefaultExactMaxDim: matrices whose smaller dimension is at most this
	// are decomposed by exact SVD, larger ones by randomized SVD.
	DefaultExactMaxDim = 64
	// Seed is the base seed of the randomized SVD; each module's seed is
	// derived from it and the tensor name, so the output does not depend
	// on scheduling.
	Seed = 0x10A7001
)

// Options configures Run. The zero value of a field selects its default
// where one is stated.
type Options struct {
	Base, Tuned string // input checkpoints (safetensors)
	Output      string // output LoRA path
	// Rank is the fixed rank of every module, or with Rule the rank cap
	// (0 with a Rule: DefaultMaxRank). Either Rank or Rule is required.
	Rank int
	// Rule is a dynamic rank rule in svd.ParseRule syntax
	// ("sv_fro:0.9", "sv_ratio:20", "sv_cumulative:0.9"); "" = fixed Rank.
	Rule string
	// ConvRank is the rank (cap) of k×k convolutions (LoCon):
	// 0 = same as Rank, negative = do not extract k×k convolutions.
	ConvRank int
	// TextEncoders also extracts the text encoders found in both files.
	TextEncoders bool
	// MinDiff: a module whose max |tuned − base| is <= MinDiff is skipped
	// (0: only exactly unchanged modules are skipped).
	MinDiff float64
	// TEMinDiff is the text-encoder-level threshold (see
	// DefaultTEMinDiff; 0 selects the default, negative means 0).
	TEMinDiff float64
	// Clamp is kohya's quantile clamp: both factors of a module are
	// clamped to ±(the Clamp-quantile of their concatenated signed
	// values). 0 = off.
	Clamp float64
	// Format names the output keys: "kohya" (default), "comfy",
	// "diffusers".
	Format string
	// DType of the written factors: "fp16" (default), "bf16", "fp32".
	DType string
	// Arch forces an architecture id instead of detecting it.
	Arch string
	// AllModules also extracts modules the output format's loaders drop
	// (kohya: conv_in, conv_out, time/label embedding linears).
	AllModules bool
	// Overwrite allows replacing an existing output file.
	Overwrite bool
	// Workers is the number of modules decomposed concurrently
	// (default 2).
	Workers int
	// ExactMaxDim overrides DefaultExactMaxDim (tests).
	ExactMaxDim int
	// PowerIters is the randomized SVD's number of power iterations
	// (0: svd.DefaultPowerIters = 2; negative: none). Each one costs two
	// passes over the delta; fewer are faster and less accurate.
	PowerIters int
}

// ModuleReport describes one extracted module.
type ModuleReport struct {
	Name      string  `json:"name"`           // LoRA module prefix in the output
	Key       string  `json:"key"`            // checkpoint tensor
	Rows      []int64 `json:"rows,omitempty"` // [first, end) rows of a fused tensor
	Shape     []int64 `json:"shape"`          // shape of the (sliced) weight
	Kind      string  `json:"kind"`           // linear, conv1x1, conv
	Rank      int     `json:"rank"`           // rank kept
	Retained  float64 `json:"retained"`       // kept fraction of ‖Δ‖_F
	RelError  float64 `json:"rel_error"`      // ‖Δ − LoRA‖_F / ‖Δ‖_F before clamp and rounding
	Clamped   int     `json:"clamped,omitempty"`
	ClampErr  float64 `json:"clamp_rel_error,omitempty"` // measured error after the clamp
	DeltaNorm float64 `json:"delta_norm"`                // ‖Δ‖_F
	MaxAbs    float64 `json:"max_abs_delta"`
	Method    string  `json:"svd"` // exact or randomized
	// Block is the module's LoRA Block Weight block (IN04, M00, D07, ...;
	// "" when in none), the name merge's lbw= and inspect --stats use.
	Block string `json:"block,omitempty"`

	spectrum []float64 // singular values held (for the plot / summary)
	region   string    // plot region, from the architecture's block table
}

// Skip is a weight that was not extracted, with the reason.
type Skip struct {
	Key    string `json:"key"`
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason"`
}

// EncoderReport says what happened to one text encoder.
type EncoderReport struct {
	Name      string  `json:"name"` // ComfyUI name: clip_l, clip_g, t5xxl ...
	MaxAbs    float64 `json:"max_abs_delta"`
	Extracted bool    `json:"extracted"`
	Reason    string  `json:"reason,omitempty"`
}

// Report is the result of Run.
type Report struct {
	Base        string          `json:"base"`
	Tuned       string          `json:"tuned"`
	Output      string          `json:"output"`
	Arch        string          `json:"architecture"`
	Layout      string          `json:"layout"`
	Format      string          `json:"format"`
	DType       string          `json:"dtype"`
	RankRule    string          `json:"rank_rule"`
	MaxRank     int             `json:"max_rank"`
	ConvRank    int             `json:"conv_rank"`
	Clamp       float64         `json:"clamp,omitempty"`
	Modules     []ModuleReport  `json:"modules"`
	Skipped     []Skip          `json:"skipped"`
	NotExamined map[string]int  `json:"not_examined"` // reason → tensor count (1-D params, VAE, ...)
	Encoders    []EncoderReport `json:"text_encoders,omitempty"`
	Retained    float64         `json:"retained"`  // sqrt(Σ kept energy / Σ total energy)
	RelError    float64         `json:"rel_error"` // sqrt(1 − Retained²)
	Tensors     int             `json:"tensors"`
	Bytes       int64           `json:"bytes"`
	ModelHash   string          `json:"sshs_model_hash"`
	Seconds     Timing          `json:"seconds"`
}

// Timing is the wall time of the phases, in seconds.
type Timing struct {
	Decompose float64 `json:"decompose"` // reading, deltas and SVDs
	Write     float64 `json:"write"`
	Total     float64 `json:"total"`
}

// UsageError is returned by Run for invalid options (exit status 2 in the
// CLI); other errors are failures.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// settings are the validated options.
type settings struct {
	Options
	rule      svd.Rule
	dynamic   bool
	maxRank   int // fixed rank or cap for linear / 1×1
	convRank  int // fixed rank or cap for k×k; 0 = skip
	teMinDiff float64
	dt        dtype.DType
	exactMax  int
	powerIter int
}

func validate(opt Options) (*settings, error) {
	s := &settings{Options: opt}
	if opt.Base == "" || opt.Tuned == "" || opt.Output == "" {
		return nil, usagef("extract needs --base, --tuned and -o/--output")
	}
	if opt.Rank < 0 {
		return nil, usagef("--rank %d: must be positive", opt.Rank)
	}
	switch {
	case opt.Rule != "":
		r, err := svd.ParseRule(opt.Rule)
		if err != nil {
			return nil, usagef("--rank-rule %q: %v", opt.Rule, err)
		}
		s.rule = r
		if r.Kind == svd.RuleFixed {
			if opt.Rank > 0 && opt.Rank != int(r.Value) {
				return nil, usagef("--rank %d contradicts --rank-rule %s", opt.Rank, opt.Rule)
			}
			s.maxRank = int(r.Value)
		} else {
			s.dynamic = true
			s.maxRank = opt.Rank
			if s.maxRank == 0 {
				s.maxRank = DefaultMaxRank
			}
		}
	case opt.Rank > 0:
		s.maxRank = opt.Rank
		s.rule = svd.Rule{Kind: svd.RuleFixed, Value: float64(opt.Rank)}
	default:
		return nil, usagef("extract needs --rank N or --rank-rule RULE")
	}
	switch {
	case opt.ConvRank == 0:
		s.convRank = s.maxRank
	case opt.ConvRank < 0:
		s.convRank = 0
	default:
		s.convRank = opt.ConvRank
	}
	if opt.MinDiff < 0 {
		return nil, usagef("--min-diff %g: must not be negative", opt.MinDiff)
	}
	switch {
	case opt.TEMinDiff == 0:
		s.teMinDiff = DefaultTEMinDiff
	case opt.TEMinDiff < 0:
		s.teMinDiff = 0
	default:
		s.teMinDiff = opt.TEMinDiff
	}
	if opt.Clamp < 0 || opt.Clamp > 1 {
		return nil, usagef("--clamp %g: must be a quantile in (0, 1]", opt.Clamp)
	}
	if s.Format == "" {
		s.Format = "kohya"
	}
	switch s.Format {
	case "kohya", "comfy", "diffusers":
	default:
		return nil, usagef("--to %q: want kohya, comfy or diffusers", s.Format)
	}
	if s.DType == "" {
		s.DType = "fp16"
	}
	dt, err := dtype.ParseUser(s.DType)
	if err != nil || (dt != dtype.F16 && dt != dtype.BF16 && dt != dtype.F32) {
		return nil, usagef("--dtype %q: want fp16, bf16 or fp32", s.DType)
	}
	s.dt = dt
	if s.Workers <= 0 {
		s.Workers = min(2, max(1, runtime.GOMAXPROCS(0)))
	}
	s.powerIter = opt.PowerIters
	s.exactMax = opt.ExactMaxDim
	if s.exactMax <= 0 {
		s.exactMax = DefaultExactMaxDim
	}
	if !strings.HasSuffix(strings.ToLower(opt.Output), ".safetensors") {
		return nil, usagef("-o %s: the output must be a .safetensors file", opt.Output)
	}
	for _, in := range []string{opt.Base, opt.Tuned} {
		if sameFile(in, opt.Output) {
			return nil, usagef("-o %s: the output would overwrite an input", opt.Output)
		}
	}
	if _, err := os.Stat(opt.Output); err == nil && !opt.Overwrite {
		return nil, fmt.Errorf("%s: already exists (use --overwrite)", opt.Output)
	}
	return s, nil
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	if err1 == nil && err2 == nil {
		return os.SameFile(fa, fb)
	}
	aa, _ := filepath.Abs(a)
	bb, _ := filepath.Abs(b)
	return aa == bb
}

// Run extracts the LoRA described by opt and writes it to opt.Output.
// progress, if not nil, is called with the input bytes processed so far and
// the total (from one goroutine). Invalid options give a *UsageError.
func Run(ctx context.Context, opt Options, progress func(done, total int64)) (*Report, error) {
	start := time.Now()
	s, err := validate(opt)
	if err != nil {
		return nil, err
	}
	base, err := openInput(s.Base)
	if err != nil {
		return nil, err
	}
	defer base.Close()
	tuned, err := openInput(s.Tuned)
	if err != nil {
		return nil, err
	}
	defer tuned.Close()
	// both files are read once, front to back: aggressive readahead
	base.Advise(true)
	tuned.Advise(true)
	p, err := makePlan(s, base, tuned)
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Base: s.Base, Tuned: s.Tuned, Output: s.Output, Arch: p.arch.ID, Layout: p.info.Layout,
		Format: s.Format, DType: s.dt.String(), RankRule: s.rule.String(), MaxRank: s.maxRank,
		ConvRank: s.convRank, Clamp: s.Clamp, Skipped: p.skipped, NotExamined: p.notExamined,
	}
	if p.total > 0 && progress != nil {
		progress(0, p.total)
	}
	var done int64
	prog := func(n int64) {
		done += n
		if progress != nil {
			progress(done, p.total)
		}
	}
	if s.TextEncoders && len(p.encoders) > 0 {
		if err := p.checkEncoders(ctx, s, base, tuned, prog); err != nil {
			return nil, err
		}
	}
	rep.Encoders = p.encoderReports
	results, err := p.decompose(ctx, s, base, tuned, prog)
	if err != nil {
		return nil, err
	}
	rep.Skipped = p.skipped
	rep.Seconds.Decompose = time.Since(start).Seconds()
	if len(results) == 0 {
		return rep, fmt.Errorf("%s and %s: no weight differs (nothing to extract; %d weights compared)", s.Base, s.Tuned, len(p.jobs))
	}
	var kept, total float64
	for _, r := range results {
		rep.Modules = append(rep.Modules, r.report)
		total += r.report.DeltaNorm * r.report.DeltaNorm
		kept += r.report.Retained * r.report.Retained * r.report.DeltaNorm * r.report.DeltaNorm
	}
	rep.Retained, rep.RelError = 1, 0
	if total > 0 {
		rep.Retained = sqrtClamp(kept / total)
		rep.RelError = sqrtClamp(1 - kept/total)
	}
	w0 := time.Now()
	if err := write(s, p, results, rep); err != nil {
		return nil, err
	}
	rep.Seconds.Write = time.Since(w0).Seconds()
	rep.Seconds.Total = time.Since(start).Seconds()
	return rep, nil
}

// IsUsage reports whether err is a *UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

func sqrtClamp(x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	return math.Sqrt(x)
}
