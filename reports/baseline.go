package reports

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// A baseline set is several runs of one scenario on the same machine:
// recordings made at different hours, or a reference build's runs made
// just before and just after head's (the CI gate, scripts/bench-ci.sh), so
// that the comparison knows how far the machine alone moves a figure. On a
// shared host every stage of a run can be a third slower in one hour than
// in the next (session 38: the CI gate called p99s +57–60% worse, with
// every stage uniformly +30–38%, against a baseline recorded an hour
// earlier on the same code). Against a set, a metric is worse only when it
// is worse than every run of it: a regression must exceed the slowest of
// them by the minimum effect.

// MaxBaselineRuns is the most runs ReadBaseline reads from a baseline set
// (each up to MaxResultSize): more is ErrFormat, not hundreds of results
// held at once.
const MaxBaselineRuns = 32

// ReadBaseline reads a baseline: a result.json, a report folder holding
// one, or a baseline set — a folder of result files (*.json, read in name
// order, at most MaxBaselineRuns), each one run of the same scenario. A
// folder with neither is ErrNoData.
func ReadBaseline(path string) ([]*Result, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		r, err := ReadJSON(path)
		if err != nil {
			return nil, err
		}
		return []*Result{r}, nil
	}
	if r, err := ReadJSON(filepath.Join(path, ResultFile)); err == nil {
		return []*Result{r}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(path, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: %w: neither %s nor a recording (*.json) in the folder", path, ErrNoData, ResultFile)
	}
	if len(files) > MaxBaselineRuns {
		return nil, fmt.Errorf("%s: %w: %d runs in the baseline set, at most %d", path, ErrFormat, len(files), MaxBaselineRuns)
	}
	sort.Strings(files)
	set := make([]*Result, 0, len(files))
	for _, f := range files {
		r, err := ReadJSON(f)
		if err != nil {
			return nil, err
		}
		set = append(set, r)
	}
	return set, nil
}

// CompareSet compares head against every recording of a baseline set
// (Compare, each with the same options) and joins the verdicts metric by
// metric: a metric is worse, better or same only when it is so against
// every recording, inconclusive otherwise (its note says against how many
// it was worse or better). The figures shown for a metric (base, change,
// interval, p) are those against the recording nearest to head — the
// smallest change — so a regression is shown by how much it exceeds the
// slowest hour of the set; BaseMin and BaseMax give the recordings' range
// (the text and Markdown tables show it as the base). With one recording
// CompareSet is Compare.
func CompareSet(bases []*Result, head *Result, opts CompareOptions) *Comparison {
	if len(bases) == 1 {
		return Compare(bases[0], head, opts)
	}
	opts = opts.withDefaults()
	c := &Comparison{Head: runLabel(head), Options: opts}
	if len(bases) == 0 {
		return c
	}
	type key struct{ workload, stage, metric string }
	var order []key
	byKey := map[key][]ComparisonRow{}
	var labels []string
	seenNote := map[string]bool{}
	for _, b := range bases {
		one := Compare(b, head, opts)
		labels = append(labels, one.Base)
		for _, r := range one.Rows {
			k := key{r.Workload, r.Stage, r.Metric}
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], r)
		}
		for _, n := range one.Notes {
			if !seenNote[n] {
				seenNote[n] = true
				c.Notes = append(c.Notes, n)
			}
		}
	}
	c.Base = setLabel(labels)
	for _, k := range order {
		c.Rows = append(c.Rows, joinRows(byKey[k], len(bases)))
	}
	return c
}

// joinRows joins one metric's rows against the n recordings of a set.
func joinRows(rows []ComparisonRow, n int) ComparisonRow {
	count := map[Verdict]int{}
	nearest := 0
	for i, r := range rows {
		count[r.Verdict]++
		if near := rows[nearest]; r.Tested && (!near.Tested || math.Abs(r.Change) < math.Abs(near.Change)) {
			nearest = i
		}
	}
	out := rows[nearest]
	out.Recordings, out.WorseIn = n, count[VerdictWorse]
	first := true
	for _, r := range rows {
		if !r.HasBase {
			continue
		}
		if first || r.Base < out.BaseMin {
			out.BaseMin = r.Base
		}
		if first || r.Base > out.BaseMax {
			out.BaseMax = r.Base
		}
		first = false
	}
	switch {
	case len(rows) < n:
		out.Verdict, out.Note = VerdictInconclusive, fmt.Sprintf("in %d of %d baseline recordings", len(rows), n)
	case count[out.Verdict] == n:
		// The same verdict against every recording: it stands.
	case count[VerdictWorse] > 0:
		out.Verdict, out.Note = VerdictInconclusive, fmt.Sprintf("worse than %d of %d baseline recordings", count[VerdictWorse], n)
	case count[VerdictBetter] > 0:
		out.Verdict, out.Note = VerdictInconclusive, fmt.Sprintf("better than %d of %d baseline recordings", count[VerdictBetter], n)
	default:
		out.Verdict = VerdictInconclusive
		if out.Note == "" {
			out.Note = fmt.Sprintf("same as %d of %d baseline recordings", count[VerdictSame], n)
		}
	}
	return out
}

// setLabel names a baseline set by its recordings' labels, each once.
func setLabel(labels []string) string {
	var uniq []string
	seen := map[string]int{}
	for _, l := range labels {
		if seen[l] == 0 {
			uniq = append(uniq, l)
		}
		seen[l]++
	}
	for i, l := range uniq {
		if seen[l] > 1 {
			uniq[i] = fmt.Sprintf("%s ×%d", l, seen[l])
		}
	}
	return fmt.Sprintf("%d recordings (%s)", len(labels), strings.Join(uniq, ", "))
}
