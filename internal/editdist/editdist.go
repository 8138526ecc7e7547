// Package editdist measures how far apart two words are, for the "did you
// mean" hints of error messages (scenario keys, SLO metric names).
package editdist

// Distance returns the Levenshtein edit distance between a and b: the fewest
// single-byte insertions, deletions and substitutions that turn one into the
// other. Words longer than 64 bytes are never close: their distance is huge
// (the cost is quadratic, and a hint for such input helps nobody).
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
