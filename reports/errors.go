package reports

import "errors"

// Sentinel errors, wrapped with %w by the functions that return them.
var (
	// ErrFormat: a file (result.json, .hgrm) that does not parse.
	ErrFormat = errors.New("reports: bad file format")
	// ErrUnknownMetric: an SLO metric the result has no value for.
	ErrUnknownMetric = errors.New("reports: unknown metric")
	// ErrNoData: the metric exists but nothing was recorded for it.
	ErrNoData = errors.New("reports: no data")
	// ErrUnsupportedFormat: a report format this package cannot write yet.
	ErrUnsupportedFormat = errors.New("reports: unsupported report format")
	// ErrPlot: a plot could not be drawn.
	ErrPlot = errors.New("reports: cannot draw plot")
	// ErrSamplerStarted: ResourceSampler.Start called a second time.
	ErrSamplerStarted = errors.New("reports: resource sampler already started")
)
