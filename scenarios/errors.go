package scenarios

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every *Error wraps exactly one of them, so callers can
// tell the classes apart with errors.Is.
var (
	// ErrSyntax: the file is not well-formed YAML (or is empty, too large, or
	// holds several documents).
	ErrSyntax = errors.New("yaml syntax")
	// ErrUnknownField: a mapping key that the format does not define.
	ErrUnknownField = errors.New("unknown field")
	// ErrType: a value of the wrong shape (a list where a mapping belongs, a
	// string where a number belongs, ...).
	ErrType = errors.New("wrong type")
	// ErrValue: a scalar that does not parse (a bad duration, rate, percentage,
	// bandwidth, key distribution or enum value).
	ErrValue = errors.New("bad value")
	// ErrInvalid: the scenario parses but breaks a semantic rule checked by
	// Validate (a rate of zero, a timeline event naming a node that does not
	// exist, ...).
	ErrInvalid = errors.New("invalid scenario")
)

// Error is a problem with a scenario, located as precisely as possible.
// Its message reads like `scenarios/x.yaml:12: workload[0].rate: "fast" is not
// a rate (want N/s)`.
type Error struct {
	File  string // file name as given to Load or Parse; may be empty
	Line  int    // 1-based line; 0 when unknown
	Field string // dotted path such as "workload[0].rate"; empty for the whole file
	Msg   string // what is wrong
	Err   error  // one of the sentinel errors above
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel class of the error.
func (e *Error) Unwrap() error { return e.Err }
