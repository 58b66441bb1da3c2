package cliutil

import "strings"

// Suggest returns the candidate closest to s by edit distance (case
// insensitive) when it is close enough to be a typo — at most a third of
// the word's length, and at least 1, away — or "" otherwise.
func Suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := editDistance(ls, strings.ToLower(c))
		if strings.HasPrefix(strings.ToLower(c), ls) && len(ls) >= 3 {
			d = min(d, 1) // a prefix of a long name: "conv" → "convert"
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(1, len([]rune(s))/3) {
		return best
	}
	return ""
}

// DidYouMean formats Suggest's answer as `; did you mean "x"?`, or "".
func DidYouMean(s string, candidates []string) string {
	if m := Suggest(s, candidates); m != "" {
		return `; did you mean "` + m + `"?`
	}
	return ""
}

// editDistance is the optimal-string-alignment distance between a and b
// (in runes): insertions, deletions, substitutions and transpositions of
// neighbours ("bsae" → "base") each count 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			c := d[i-1][j-1]
			if ra[i-1] != rb[j-1] {
				c++
			}
			d[i][j] = min(c, d[i-1][j]+1, d[i][j-1]+1)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
