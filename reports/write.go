package reports

import (
	"errors"
	"fmt"
	"os"
)

// Report formats this package writes (scenario report.formats); Supported
// tells which are available. "html" writes report.html and every plot as
// PNG and SVG.
const (
	FormatJSON = "json"
	FormatMD   = "md"
	FormatHGRM = "hgrm"
	FormatHLog = "hlog"
	FormatHTML = "html"
)

// snapshotWriters write files from the histograms; each returns the names of
// the files it wrote. New formats slot in here.
var snapshotWriters = map[string]func(dir string, r *Result, snap *Snapshot) ([]string, error){
	FormatHGRM: func(dir string, _ *Result, snap *Snapshot) ([]string, error) { return WriteHGRM(dir, snap) },
	FormatHLog: func(dir string, _ *Result, snap *Snapshot) ([]string, error) {
		files, err := WriteHLog(dir, snap)
		if err != nil {
			return files, err
		}
		totals, err := writeTotals(dir, snap)
		return append(files, totals), err
	},
	FormatHTML: WriteHTML,
}

// Supported reports whether Write can produce format.
func Supported(format string) bool {
	_, ok := snapshotWriters[format]
	return ok || format == FormatJSON || format == FormatMD
}

// Write writes the report folder dir in the given formats: the
// histogram-based files and the plots first, then report.html, report.md
// and result.json, which list them in Result.Files (report.md links the
// PNG plots). snap may be nil: hgrm and hlog are not written then, and the
// HTML report's percentile spectrum comes from the summary percentiles.
// Unsupported formats are skipped and reported as ErrUnsupportedFormat after
// everything else is written.
func Write(dir string, r *Result, snap *Snapshot, formats []string) (files []string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	var errs []error
	want := map[string]bool{}
	for _, f := range formats {
		if !Supported(f) {
			errs = append(errs, fmt.Errorf("%w: %q", ErrUnsupportedFormat, f))
			continue
		}
		want[f] = true
	}
	out := *r
	out.Files = append([]string(nil), r.Files...)
	for _, f := range []string{FormatHGRM, FormatHLog} {
		if !want[f] || snap == nil {
			continue
		}
		names, err := snapshotWriters[f](dir, &out, snap)
		out.Files = append(out.Files, names...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	var plots *plotSet
	if want[FormatHTML] {
		set, names, err := writePlots(dir, &out, snap)
		out.Files = append(out.Files, names...)
		out.Files = append(out.Files, HTMLFile)
		plots = set
		if err != nil {
			errs = append(errs, err)
		}
	}
	if want[FormatMD] {
		out.Files = append(out.Files, MarkdownFile)
	}
	if want[FormatJSON] {
		out.Files = append(out.Files, ResultFile)
	}
	if plots != nil {
		if err := writeHTMLPage(dir, &out, plots); err != nil {
			errs = append(errs, err)
		}
	}
	if want[FormatMD] {
		if err := WriteMarkdown(dir, &out); err != nil {
			errs = append(errs, err)
		}
	}
	if want[FormatJSON] {
		if err := WriteJSON(dir, &out); err != nil {
			errs = append(errs, err)
		}
	}
	return out.Files, errors.Join(errs...)
}
