package reports

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"regexp"
	"strings"
	"time"
)

// HTMLFile is the name of the HTML report in the report folder.
const HTMLFile = "report.html"

// renderedFigure is a figure drawn: its files and its inline SVG.
type renderedFigure struct {
	ID, Title, Caption string
	Workload           string        // "" for run-wide plots
	PNG, SVG           string        // file names in the report folder
	Inline             template.HTML // the SVG, ready to inline
}

// plotSet is what writePlots drew, for the HTML page.
type plotSet struct {
	figs  []renderedFigure
	notes []string
}

// writePlots draws every figure of the report as PNG and SVG into dir and
// returns the names of the files written. A figure that cannot be drawn is
// skipped, named in the notes and in the error; the others are written.
func writePlots(dir string, r *Result, snap *Snapshot) (*plotSet, []string, error) {
	figs, notes := figures(r, snap)
	set := &plotSet{notes: notes}
	var files []string
	var errs []error
	for _, f := range figs {
		png, err := f.render("png")
		if err != nil {
			errs = append(errs, err)
			set.notes = append(set.notes, err.Error())
			continue
		}
		svg, err := f.render("svg")
		if err != nil {
			errs = append(errs, err)
			set.notes = append(set.notes, err.Error())
			continue
		}
		pngName, svgName := f.ID+".png", f.ID+".svg"
		if err := writeFile(dir, pngName, png); err != nil {
			return set, files, err
		}
		if err := writeFile(dir, svgName, svg); err != nil {
			return set, files, err
		}
		files = append(files, pngName, svgName)
		set.figs = append(set.figs, renderedFigure{
			ID: f.ID, Title: f.Title, Caption: f.Caption, Workload: f.Workload, PNG: pngName, SVG: svgName,
			Inline: inlineSVG(svg, f.ID, f.Title),
		})
	}
	return set, files, errors.Join(errs...)
}

var svgOpenTag = regexp.MustCompile(`<svg\s+width="[^"]*"\s+height="[^"]*"`)

// inlineSVG turns a standalone SVG document into an element for the HTML
// page: no XML prologue, an id, and a width that follows the page (the
// viewBox keeps the aspect ratio).
func inlineSVG(svg []byte, id, title string) template.HTML {
	s := string(svg)
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	attrs := fmt.Sprintf(`<svg id="%s" class="plot-svg" role="img" aria-label="%s" width="100%%"`,
		template.HTMLEscapeString(id), template.HTMLEscapeString(title))
	s = svgOpenTag.ReplaceAllLiteralString(s, attrs)
	// The SVG comes from gonum/plot, which escapes all text it draws.
	return template.HTML(s)
}

// WriteHTML draws the plots (PNG and SVG files) into dir and writes
// dir/report.html, a self-contained page with the plots inlined as SVG and
// the report's tables. snap may be nil; the percentile spectrum is then
// drawn from the summary percentiles. It returns the names of the files
// written. A plot that cannot be drawn is left out (and named in the page
// and the error); everything else is still written.
func WriteHTML(dir string, r *Result, snap *Snapshot) ([]string, error) {
	set, files, perr := writePlots(dir, r, snap)
	out := *r
	out.Files = append(append(append([]string(nil), r.Files...), files...), HTMLFile)
	if err := writeHTMLPage(dir, &out, set); err != nil {
		return files, errors.Join(perr, err)
	}
	return append(files, HTMLFile), perr
}

// writeHTMLPage writes report.html with the plots of set.
func writeHTMLPage(dir string, r *Result, set *plotSet) error {
	var buf bytes.Buffer
	if err := htmlPage(&buf, r, set, time.Now()); err != nil {
		return err
	}
	return writeFile(dir, HTMLFile, buf.Bytes())
}

// htmlPage renders the HTML report of r with the plots of set, saying it
// was generated at the given time.
func htmlPage(w io.Writer, r *Result, set *plotSet, generated time.Time) error {
	return pageTemplate.Execute(w, newView(r, set, generated))
}
