package reports

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// HGRMScale is the unit of the values in the .hgrm files: milliseconds
// (recorded microseconds divided by 1000), as wrk2 and HdrHistogram's
// plotter use.
const HGRMScale = 1000.0

// hgrmTicks is the number of reporting points per half distance, as in
// HdrHistogram's default output.
const hgrmTicks = 5

// HGRMName returns the file name of a stage's percentile distribution.
func HGRMName(workload string, st Stage, corrected bool) string {
	view := "uncorrected"
	if corrected {
		view = "corrected"
	}
	return fmt.Sprintf("%s.%s.%s.hgrm", fileSafe(workload), st, view)
}

// view is one view of a stage's latencies, corrected (from the intended
// send time) or not, as file names and hlog tags name it.
type view[H any] struct {
	h         H
	corrected bool
}

// recordedViews returns a stage's corrected view, then its uncorrected one;
// none when the stage recorded nothing.
func recordedViews[H interface {
	comparable
	TotalCount() int64
}](corrected, uncorrected H) []view[H] {
	var none H
	if corrected == none || corrected.TotalCount() == 0 {
		return nil
	}
	return []view[H]{{corrected, true}, {uncorrected, false}}
}

// WriteHGRM writes, for every workload and every stage that recorded
// anything, the corrected and uncorrected percentile distributions in
// HdrHistogram's text format (values in milliseconds). It returns the names
// of the files written.
func WriteHGRM(dir string, snap *Snapshot) ([]string, error) {
	var files []string
	for _, w := range snap.Workloads {
		for _, st := range Stages() {
			s := w.Stages[st]
			for _, view := range recordedViews(s.Corrected, s.Uncorrected) {
				var buf bytes.Buffer
				if _, err := view.h.PercentilesPrint(&buf, hgrmTicks, HGRMScale); err != nil {
					return files, fmt.Errorf("reports: %w", err)
				}
				name := HGRMName(w.Name, st, view.corrected)
				if err := writeFile(dir, name, buf.Bytes()); err != nil {
					return files, err
				}
				files = append(files, name)
			}
		}
	}
	return files, nil
}

// HGRM is a parsed .hgrm percentile distribution.
type HGRM struct {
	Points     []HGRMPoint
	Mean       float64
	StdDev     float64
	Max        float64
	TotalCount int64
	Buckets    int64
	SubBuckets int64
}

// HGRMPoint is one line of a percentile distribution.
type HGRMPoint struct {
	Value      float64 // in the file's unit
	Percentile float64 // 0..1
	TotalCount int64   // values at or below Value
}

// ValueAt returns the value at percentile p (0..1): the first point whose
// percentile reaches p.
func (h *HGRM) ValueAt(p float64) float64 {
	for _, pt := range h.Points {
		if pt.Percentile >= p {
			return pt.Value
		}
	}
	if len(h.Points) > 0 {
		return h.Points[len(h.Points)-1].Value
	}
	return 0
}

// ParseHGRM reads HdrHistogram's percentile distribution text format (as
// written by WriteHGRM, wrk2 or HdrHistogram's own tools).
func ParseHGRM(r io.Reader) (*HGRM, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	h := &HGRM{}
	sawHeader, footer := false, 0
	lineNo := 0
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: hgrm line %d: %s", ErrFormat, lineNo, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "Value"):
			sawHeader = true
			continue
		case strings.HasPrefix(line, "#["):
			if err := h.parseFooter(line); err != nil {
				return nil, bad("%v", err)
			}
			footer++
			continue
		}
		if !sawHeader {
			return nil, bad("data before the Value/Percentile header")
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, bad("want 4 columns, got %d", len(f))
		}
		v, err1 := strconv.ParseFloat(f[0], 64)
		p, err2 := strconv.ParseFloat(f[1], 64)
		n, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || !(p >= 0 && p <= 1) || n < 0 {
			return nil, bad("bad numbers %q", line)
		}
		if k := len(h.Points); k > 0 {
			prev := h.Points[k-1]
			if p < prev.Percentile || v < prev.Value || n < prev.TotalCount {
				return nil, bad("not monotonic")
			}
		}
		h.Points = append(h.Points, HGRMPoint{Value: v, Percentile: p, TotalCount: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if !sawHeader {
		return nil, fmt.Errorf("%w: no Value/Percentile header", ErrFormat)
	}
	if footer != 3 {
		return nil, fmt.Errorf("%w: want 3 footer lines, got %d", ErrFormat, footer)
	}
	if k := len(h.Points); k > 0 && h.Points[k-1].TotalCount != h.TotalCount {
		return nil, fmt.Errorf("%w: last point counts %d, footer says %d", ErrFormat, h.Points[k-1].TotalCount, h.TotalCount)
	}
	return h, nil
}

// parseFooter reads "#[Name = value, Name = value]".
func (h *HGRM) parseFooter(line string) error {
	body := strings.TrimSuffix(strings.TrimPrefix(line, "#["), "]")
	for _, part := range strings.Split(body, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return fmt.Errorf("bad footer %q", line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("bad footer value %q", v)
		}
		switch k {
		case "Mean":
			h.Mean = f
		case "StdDeviation":
			h.StdDev = f
		case "Max":
			h.Max = f
		case "Total count":
			h.TotalCount = int64(f)
		case "Buckets":
			h.Buckets = int64(f)
		case "SubBuckets":
			h.SubBuckets = int64(f)
		default:
			return fmt.Errorf("unknown footer field %q", k)
		}
	}
	return nil
}
