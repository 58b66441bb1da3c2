package svd

import "math"

// ExactMax is the largest min(rows, cols) TruncateDense decomposes with
// the exact SVD (the Eckart–Young optimum); wider matrices use Randomized
// with four power iterations, within a fraction of a percent of the
// optimum on the decaying spectra of trained adapter deltas.
const ExactMax = 256

// DenseRuleCap is TruncateDense's rank cap for a rank rule without a
// maximum rank (as extract's default).
const DenseRuleCap = 128

// TruncateDense decomposes a dense delta and chooses its rank: maxRank
// (clamped to the matrix; 0 means no cap), or what rule selects on the
// spectrum, capped by maxRank (DenseRuleCap when maxRank is 0). When the spectrum is truncated (randomized
// SVD), the rule sees the held values plus one value carrying the exactly
// known remaining energy, so sv_fro decides exactly. It returns the
// decomposition and the chosen rank k ≥ 1 (≤ res.Rank()).
func TruncateDense(m Dense, maxRank int, rule *Rule) (Result, int, error) {
	mn := min(m.Rows, m.Cols)
	k := mn
	if maxRank <= 0 && rule != nil {
		maxRank = DenseRuleCap
	}
	if maxRank > 0 {
		k = min(maxRank, mn)
	}
	var res Result
	var err error
	if mn <= ExactMax || k >= mn {
		res, err = Exact(m)
	} else {
		res, err = Randomized(m, k, Options{Seed: 1, PowerIters: 4})
	}
	if err != nil {
		return Result{}, 0, err
	}
	spec := res.Spectrum()
	k = min(k, len(spec))
	if rule != nil {
		s := spec
		var head float64
		for _, v := range spec {
			head += v * v
		}
		if tail := res.TotalFro2 - head; len(spec) < mn && tail > 0 {
			s = append(append([]float64{}, spec...), math.Sqrt(tail))
		}
		k = min(rule.Rank(s, k), len(spec))
	}
	return res, max(k, 1), nil
}
