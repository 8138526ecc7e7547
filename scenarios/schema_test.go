package scenarios

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite scenario.schema.json from the Go types")

// sourceDocs collects the doc comments of this package's types and struct
// fields, keyed "Type" and "Type.Field", as one line each.
func sourceDocs(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	fset := token.NewFileSet()
	clean := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				if doc != nil {
					docs[ts.Name.Name] = clean(doc.Text())
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, field := range st.Fields.List {
					if field.Doc == nil {
						continue
					}
					for _, n := range field.Names {
						docs[ts.Name.Name+"."+n.Name] = clean(field.Doc.Text())
					}
				}
			}
		}
	}
	return docs
}

func TestSchemaUpToDate(t *testing.T) {
	got, err := GenerateSchema(sourceDocs(t))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("scenario.schema.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile("scenario.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, committed) {
		t.Fatal("scenario.schema.json is out of date with the Go types: run `go generate ./scenarios` (or go test ./scenarios -run TestSchemaUpToDate -update)")
	}
	if !bytes.Equal(Schema(), committed) {
		t.Fatal("the embedded schema differs from the file: rebuild")
	}
}

func TestSchemaShape(t *testing.T) {
	var s struct {
		Schema     string                     `json:"$schema"`
		Properties map[string]json.RawMessage `json:"properties"`
		AddProps   bool                       `json:"additionalProperties"`
		Defs       map[string]struct {
			Properties map[string]map[string]any `json:"properties"`
			Required   []string                  `json:"required"`
			AddProps   *bool                     `json:"additionalProperties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "seed", "warmup", "duration", "cluster", "network", "workload", "timeline", "slo", "report"} {
		if _, ok := s.Properties[k]; !ok {
			t.Errorf("top-level property %s missing", k)
		}
	}
	if s.AddProps {
		t.Error("top level allows additional properties")
	}
	w := s.Defs["Workload"]
	for _, k := range []string{"name", "kind", "accounts", "keys", "rate", "ramp", "clients", "client", "value_size"} {
		if _, ok := w.Properties[k]; !ok {
			t.Errorf("workload property %s missing", k)
		}
	}
	if w.Required == nil || w.Required[0] != "kind" {
		t.Errorf("workload required = %v", w.Required)
	}
	if enum, _ := w.Properties["kind"]["enum"].([]any); len(enum) != 4 {
		t.Errorf("kind enum = %v", w.Properties["kind"])
	}
	if w.Properties["rate"]["description"] == nil {
		t.Error("field descriptions missing")
	}
	link := s.Defs["Link"]
	for _, k := range []string{"from", "to", "delay", "jitter", "distribution", "correlation", "loss", "loss_model", "duplicate", "corrupt", "reorder", "reorder_gap", "rate", "queue", "mtu"} {
		if _, ok := link.Properties[k]; !ok {
			t.Errorf("link property %s missing (inline impairment)", k)
		}
	}
	for name, d := range s.Defs {
		if d.AddProps == nil || *d.AddProps {
			t.Errorf("$defs.%s allows additional properties", name)
		}
	}
}

// miniValidate checks v against the subset of JSON Schema the generator
// emits, so the tests can hold the shipped scenarios against the schema.
func miniValidate(root, s map[string]any, v any, path string) []string {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		def, _ := root["$defs"].(map[string]any)[name].(map[string]any)
		if def == nil {
			return []string{path + ": unresolved " + ref}
		}
		return miniValidate(root, def, v, path)
	}
	if alts, ok := s["anyOf"].([]any); ok {
		for _, alt := range alts {
			if len(miniValidate(root, alt.(map[string]any), v, path)) == 0 {
				return nil
			}
		}
		return []string{path + ": matches no alternative"}
	}
	if c, ok := s["const"]; ok && c != v {
		return []string{path + ": not the constant"}
	}
	switch t := s["type"].(type) {
	case string:
		if !jsonTypeOK(t, v) {
			return []string{path + ": not " + t}
		}
	case []any:
		ok := false
		for _, tt := range t {
			ok = ok || jsonTypeOK(tt.(string), v)
		}
		if !ok {
			return []string{path + ": wrong type"}
		}
	}
	var errs []string
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || e == v
		}
		if !found {
			errs = append(errs, path+": not in enum")
		}
	}
	if p, ok := s["pattern"].(string); ok {
		if str, ok := v.(string); ok && !regexp.MustCompile(p).MatchString(str) {
			errs = append(errs, path+": does not match "+p)
		}
	}
	return append(errs, miniValidateChildren(root, s, v, path)...)
}

// miniValidateChildren checks the properties of an object or the items of
// an array against s.
func miniValidateChildren(root, s map[string]any, v any, path string) []string {
	var errs []string
	if obj, ok := v.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		for k, val := range obj {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					errs = append(errs, path+"."+k+": not allowed")
				}
				continue
			}
			errs = append(errs, miniValidate(root, ps, val, path+"."+k)...)
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					errs = append(errs, path+"."+r.(string)+": required")
				}
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, it := range arr {
				errs = append(errs, miniValidate(root, items, it, path+"["+strconv.Itoa(i)+"]")...)
			}
		}
	}
	return errs
}

// jsonTypeOK reports whether v, as yaml.v3 decodes it, has JSON Schema type t.
func jsonTypeOK(t string, v any) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "integer":
		_, ok := v.(int)
		return ok
	case "number":
		switch v.(type) {
		case int, float64:
			return true
		}
	case "boolean":
		_, ok := v.(bool)
		return ok
	}
	return false
}

func TestShippedScenariosMatchSchema(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(Schema(), &root); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		if errs := miniValidate(root, root, doc, f); len(errs) > 0 {
			t.Errorf("%s does not match the schema:\n%s", f, strings.Join(errs, "\n"))
		}
		// The resolved JSON form matches the schema too.
		s, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(s.Resolved())
		var generic any
		dec := json.NewDecoder(bytes.NewReader(js))
		if err := dec.Decode(&generic); err != nil {
			t.Fatal(err)
		}
		if errs := miniValidate(root, root, intify(generic), f+"(resolved)"); len(errs) > 0 {
			t.Errorf("resolved %s does not match the schema:\n%s", f, strings.Join(errs, "\n"))
		}
	}
	// And the schema does reject what the decoder rejects.
	var bad any
	_ = yaml.Unmarshal([]byte("workload: [{kind: put, rat: 1/s}]\nduration: 5\n"), &bad)
	if errs := miniValidate(root, root, bad, "bad"); len(errs) != 2 {
		t.Errorf("schema errors for a bad file: %v", errs)
	}
}

// intify turns JSON's float64 whole numbers into ints, as YAML decodes them.
func intify(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = intify(e)
		}
	case []any:
		for i, e := range x {
			x[i] = intify(e)
		}
	case float64:
		if x == float64(int(x)) {
			return int(x)
		}
	}
	return v
}
