package reports

import (
	"bytes"
	"fmt"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// HLogName returns the file name of a workload's interval log.
func HLogName(workload string) string { return fileSafe(workload) + ".hlog" }

// HLogTag returns the tag of a stage's interval histograms in the .hlog:
// "accepted.corrected", "accepted.uncorrected", ...
func HLogTag(st Stage, corrected bool) string {
	if corrected {
		return st.String() + ".corrected"
	}
	return st.String() + ".uncorrected"
}

// WriteHLog writes one HdrHistogram interval log per workload
// (<workload>.hlog, format 1.3): for every interval and stage with
// recordings, a corrected and an uncorrected histogram tagged with HLogTag.
// Values are microseconds, so the log's Interval_Max column is in seconds.
// Timestamps are relative to the start of measuring, recorded as the log's
// StartTime and BaseTime.
func WriteHLog(dir string, snap *Snapshot) ([]string, error) {
	var files []string
	startMs := snap.Start.UnixMilli()
	ivMs := snap.Interval.Milliseconds()
	for _, w := range snap.Workloads {
		var buf bytes.Buffer
		lw := hdr.NewHistogramLogWriter(&buf)
		lw.SetBaseTime(startMs)
		if err := lw.OutputLogFormatVersion(); err != nil {
			return files, err
		}
		_ = lw.OutputComment(fmt.Sprintf("[Rustorium workload %s; values in microseconds; tags STAGE.corrected, STAGE.uncorrected]", w.Name))
		_ = lw.OutputStartTime(startMs)
		_ = lw.OutputBaseTime(startMs)
		_ = lw.OutputLegend()
		for i, iv := range w.Intervals {
			for _, st := range Stages() {
				p := iv.Stages[st]
				for _, view := range recordedViews(p.Corrected, p.Uncorrected) {
					h := view.h.Clone()
					h.SetTag(HLogTag(st, view.corrected))
					h.SetStartTimeMs(startMs + int64(i)*ivMs)
					h.SetEndTimeMs(startMs + int64(i+1)*ivMs)
					if err := lw.OutputIntervalPackedHistogram(h); err != nil {
						return files, fmt.Errorf("reports: hlog: %w", err)
					}
				}
			}
		}
		name := HLogName(w.Name)
		if err := writeFile(dir, name, buf.Bytes()); err != nil {
			return files, err
		}
		files = append(files, name)
	}
	return files, nil
}
