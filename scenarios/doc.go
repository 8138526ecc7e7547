// Package scenarios loads, defaults and validates the YAML scenario files that
// drive a Rustorium run: the cluster to start, the network impairments, the
// workloads, the timeline of faults and the SLOs a run must meet.
//
// Decoding is strict: an unknown field, a value of the wrong shape or a bad
// duration, rate or percentage is an [*Error] naming the file, line and field.
// [Scenario.EnsureDefaults] fills every default in one documented place,
// [Scenario.Validate] checks the semantics, and [Scenario.Resolved] gives the
// fully defaulted form that result.json records. The JSON Schema of the format,
// generated from these Go types, is scenario.schema.json ([Schema]).
package scenarios
