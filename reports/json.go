package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File names in the report folder.
const (
	ResultFile   = "result.json"
	MarkdownFile = "report.md"
)

// MaxResultSize is the largest result.json ReadJSON accepts.
const MaxResultSize = 256 << 20

// WriteJSON writes dir/result.json (creating dir) with the derived fields
// (ok, checker.ok, version) set.
func WriteJSON(dir string, r *Result) error {
	data, err := json.MarshalIndent(r.normalized(), "", "  ")
	if err != nil {
		return fmt.Errorf("reports: encode result: %w", err)
	}
	return writeFile(dir, ResultFile, append(data, '\n'))
}

// ReadJSON reads a result.json.
func ReadJSON(path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxResultSize+1))
	if err != nil {
		return nil, fmt.Errorf("reports: read %s: %w", path, err)
	}
	r, err := ParseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ParseJSON decodes a result.json. Unknown fields are ignored (results from
// newer versions stay readable); a document that is not one JSON object, or
// has null workloads or stages, is ErrFormat.
func ParseJSON(data []byte) (*Result, error) {
	if len(data) > MaxResultSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrFormat, MaxResultSize)
	}
	if trimmed := bytes.TrimSpace(data); len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var r Result
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the result object", ErrFormat)
	}
	for name, w := range r.Workloads {
		if w == nil {
			return nil, fmt.Errorf("%w: workload %q is null", ErrFormat, name)
		}
		for st, s := range w.Stages {
			if s == nil {
				return nil, fmt.Errorf("%w: workload %q stage %q is null", ErrFormat, name, st)
			}
		}
	}
	return &r, nil
}

func writeFile(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	return nil
}
