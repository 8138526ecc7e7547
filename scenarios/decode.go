package scenarios

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rustorium/rustorium/internal/editdist"
)

// Limits on input, so a hostile file costs bounded time and memory.
const (
	// MaxFileSize is the largest scenario file accepted, in bytes.
	MaxFileSize = 1 << 20
	// maxNodes bounds the YAML nodes visited while decoding, counting every
	// expansion of an alias, so alias bombs stop early.
	maxNodes = 200_000
)

// Load reads, decodes, defaults and validates the scenario file at path.
// Errors are *Error values naming path, line and field (several are joined
// with errors.Join when Validate finds more than one problem).
func Load(path string) (*Scenario, error) {
	s, err := load(path)
	if err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// LoadSimulation is Load for rustorium simulate: it validates with
// ValidateSimulation (more nodes than a run may start).
func LoadSimulation(path string) (*Scenario, error) {
	s, err := load(path)
	if err != nil {
		return nil, err
	}
	if err := s.ValidateSimulation(); err != nil {
		return nil, err
	}
	return s, nil
}

// load reads, decodes and defaults the scenario file at path.
func load(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("scenarios: read %s: %w", path, err)
	}
	s, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	s.EnsureDefaults()
	return s, nil
}

// Parse strictly decodes a scenario from data; name is the file name used in
// error messages (it may be empty). It neither defaults nor validates: call
// EnsureDefaults and Validate (Load does all three).
func Parse(name string, data []byte) (*Scenario, error) {
	s := &Scenario{file: name}
	lines, err := DecodeStrict(name, data, s)
	if err != nil {
		return nil, err
	}
	s.lines = lines
	return s, nil
}

// DecodeStrict decodes one YAML document from data into v, a pointer to a
// struct with yaml tags, as strictly as a scenario: unknown fields, fields
// given twice, wrong shapes and bad values (scalar types of this package
// such as Duration included) fail with an *Error naming name, the line and
// the field path. It returns the line of every field path it decoded to a
// value (a null is not given), so a caller's own validation can point at
// lines and tell a field given as zero from one left out. Other formats of the
// project (the node's cluster file) use it.
func DecodeStrict(name string, data []byte, v any) (lines map[string]int, err error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("file larger than %d bytes", MaxFileSize), Err: ErrSyntax}
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("scenarios: DecodeStrict wants a pointer to a struct, not %T", v)
	}
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, err
	}
	lines = map[string]int{}
	d := &decoder{file: name, lines: lines}
	defer func() {
		// The decoder never panics by design; this turns a bug into an error
		// instead of crashing a run.
		if r := recover(); r != nil {
			lines, err = nil, &Error{File: name, Msg: fmt.Sprintf("internal decoder error: %v", r), Err: ErrSyntax}
		}
	}()
	if err := d.decode("", root, rv.Elem()); err != nil {
		return nil, err
	}
	return lines, nil
}

var integerRE = regexp.MustCompile(`^[-+]?[0-9][0-9_]*$`)

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses exactly one YAML document into a node tree.
func parseYAML(name string, data []byte) (root *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, &Error{File: name, Msg: fmt.Sprintf("yaml parser failed: %v", r), Err: ErrSyntax}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Msg: "empty scenario", Err: ErrSyntax}
		}
		return nil, syntaxError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: name, Line: extra.Line, Msg: "more than one YAML document (remove the extra ---)", Err: ErrSyntax}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(name, err)
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, &Error{File: name, Msg: "empty scenario", Err: ErrSyntax}
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

func syntaxError(name string, err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: line, Msg: m[2], Err: ErrSyntax}
	}
	return &Error{File: name, Msg: strings.TrimPrefix(msg, "yaml: "), Err: ErrSyntax}
}

// decoder walks a YAML node tree into Go values, reporting every problem
// with its path and line.
type decoder struct {
	file    string
	lines   map[string]int
	visited int
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

func (d *decoder) errorf(n *yaml.Node, path string, class error, format string, args ...any) *Error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...), Err: class}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) error {
	d.visited++
	if d.visited > maxNodes {
		return d.errorf(n, path, ErrSyntax, "document too large (more than %d nodes after expanding aliases)", maxNodes)
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return d.errorf(n, path, ErrSyntax, "unknown alias")
		}
		return d.decode(path, n.Alias, v)
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return d.decode(path, n.Content[0], v)
	}
	if path != "" {
		if _, ok := d.lines[path]; !ok {
			d.lines[path] = n.Line
		}
	}
	if isNull(n) {
		delete(d.lines, path) // unset: keep the zero value, as if not given
		return nil
	}

	if handled, err := d.decodeCustom(path, n, v); handled {
		return err
	}
	return d.decodeKind(path, n, v)
}

// decodeCustom decodes into a type of its own decoding (a yaml.Unmarshaler
// or encoding.TextUnmarshaler, as the scalars of this package); handled is
// false for other types.
func (d *decoder) decodeCustom(path string, n *yaml.Node, v reflect.Value) (handled bool, err error) {
	if !v.CanAddr() {
		return false, nil
	}
	pv := v.Addr()
	switch {
	case pv.Type().Implements(yamlUnmarshalerType):
		err := pv.Interface().(yaml.Unmarshaler).UnmarshalYAML(n)
		if err == nil {
			return true, nil
		}
		var e *Error
		if errors.As(err, &e) {
			e.File = d.file
			e.Field = path + e.Field
			if e.Line == 0 {
				e.Line = n.Line
			}
			return true, e
		}
		return true, d.errorf(n, path, ErrValue, "%v", err)
	case pv.Type().Implements(textUnmarshalerType):
		if n.Kind != yaml.ScalarNode {
			return true, d.errorf(n, path, ErrType, "want a single value, not %s", kindName(n))
		}
		if err := pv.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			return true, d.errorf(n, path, ErrValue, "%v", err)
		}
		return true, nil
	}
	return false, nil
}

// decodeKind decodes by the Go kind of v.
func (d *decoder) decodeKind(path string, n *yaml.Node, v reflect.Value) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.decode(path, n, v.Elem())
	case reflect.Struct:
		return d.decodeStruct(path, n, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.errorf(n, path, ErrType, "want a list, not %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := d.decode(fmt.Sprintf("%s[%d]", path, i), c, s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return d.errorf(n, path, ErrType, "want a string, not %s", kindName(n))
		}
		v.SetString(n.Value)
		return nil
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			return d.errorf(n, path, ErrType, "want true or false, not %s", kindName(n))
		}
		v.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := decodeNumber[int64](d, path, n, "a whole number", v.OverflowInt)
		if err == nil {
			v.SetInt(i)
		}
		return err
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := decodeNumber[uint64](d, path, n, "a whole number ≥ 0", v.OverflowUint)
		if err == nil {
			v.SetUint(u)
		}
		return err
	case reflect.Float32, reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || n.Decode(&f) != nil {
			return d.errorf(n, path, ErrType, "want a number, not %s", kindName(n))
		}
		v.SetFloat(f)
		return nil
	}
	return d.errorf(n, path, ErrType, "unsupported Go type %s", v.Type())
}

// decodeNumber decodes a whole number (what names it in errors) that must
// not overflow its field.
func decodeNumber[T int64 | uint64](d *decoder, path string, n *yaml.Node, what string, overflows func(T) bool) (T, error) {
	var x T
	if n.Kind == yaml.ScalarNode && integerRE.MatchString(n.Value) && n.Decode(&x) != nil {
		return 0, d.errorf(n, path, ErrValue, "%s is out of range (%s)", n.Value, what)
	}
	if n.Kind != yaml.ScalarNode || n.Decode(&x) != nil {
		return 0, d.errorf(n, path, ErrType, "want %s, not %s", what, kindName(n))
	}
	if overflows(x) {
		return 0, d.errorf(n, path, ErrValue, "%d is out of range", x)
	}
	return x, nil
}

// fieldInfo locates a struct field by its YAML name, following inline
// embedded structs.
type fieldInfo struct {
	index []int
}

func yamlFields(t reflect.Type) (map[string]fieldInfo, []string) {
	fields := map[string]fieldInfo{}
	var names []string
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), prefix...), i)
			if strings.Contains(opts, "inline") {
				walk(f.Type, idx)
				continue
			}
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = fieldInfo{index: idx}
			names = append(names, name)
		}
	}
	walk(t, nil)
	return fields, names
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decodeStruct(path string, n *yaml.Node, v reflect.Value) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, ErrType, "want a mapping of fields, not %s", kindName(n))
	}
	fields, names := yamlFields(v.Type())
	// Merge keys (<<) first, so explicit keys override what they bring in.
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			srcs := []*yaml.Node{val}
			if val.Kind == yaml.SequenceNode {
				srcs = val.Content
			}
			for _, src := range srcs {
				if err := d.decode(path, src, v); err != nil {
					return err
				}
			}
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return d.errorf(k, path, ErrType, "a field name must be a plain string, not %s", kindName(k))
		}
		field := joinPath(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			return d.errorf(k, field, ErrSyntax, "field given twice (first on line %d)", line)
		}
		seen[k.Value] = k.Line
		fi, ok := fields[k.Value]
		if !ok {
			return d.errorf(k, field, ErrUnknownField, "unknown field%s", suggest(k.Value, names))
		}
		d.lines[field] = k.Line
		if err := d.decode(field, val, v.FieldByIndex(fi.index)); err != nil {
			return err
		}
	}
	return nil
}

// suggest names the closest known field, or lists them all.
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if dist := editdist.Distance(name, k); dist < bestD {
			best, bestD = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	return " (known: " + strings.Join(sorted, ", ") + ")"
}
