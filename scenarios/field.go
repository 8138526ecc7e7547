package scenarios

import "fmt"

// Invalid returns an ErrInvalid problem at the field path (such as
// "workload[1].maxrate"), located at the field's line, or its nearest
// ancestor's: for the rules that what runs a scenario checks beyond
// Validate, so that they read like Validate's.
func (s *Scenario) Invalid(path, format string, args ...any) *Error {
	return &Error{File: s.file, Line: s.line(path), Field: path, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid}
}
