package scenarios

import (
	"bytes"
	_ "embed" // the committed schema
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/reports"
)

//go:generate go test -run TestSchemaUpToDate -update .

//go:embed scenario.schema.json
var schemaJSON []byte

// SchemaID is the $id of the scenario JSON Schema.
const SchemaID = "https://github.com/rustorium/rustorium/scenarios/scenario.schema.json"

// Schema returns the JSON Schema (draft 2020-12) of the scenario format, as
// committed in scenario.schema.json. A test regenerates it from the Go types
// with GenerateSchema and fails when the file is stale.
func Schema() []byte { return bytes.Clone(schemaJSON) }

// schemaer is implemented by scalar types that describe themselves.
type schemaer interface{ jsonSchema() map[string]any }

var schemaerType = reflect.TypeFor[schemaer]()

// foreignSchemas describe the scalar types of other packages that the
// format uses (which cannot implement schemaer).
var foreignSchemas = map[reflect.Type]func() map[string]any{
	reflect.TypeFor[reports.Stage](): func() map[string]any { return enumSchema(reports.StageNames()) },
}

// GenerateSchema builds the JSON Schema of Scenario by reflection over the
// Go types, using the yaml field names. docs maps "Type" and "Type.Field" to
// descriptions (the test fills it from the doc comments of this package);
// fields tagged `schema:"required"` are required.
func GenerateSchema(docs map[string]string) ([]byte, error) {
	g := &schemaGen{docs: docs, defs: map[string]any{}}
	root := g.structDef(reflect.TypeFor[Scenario]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "Rustorium scenario"
	root["$defs"] = g.defs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if g.err != nil {
		return nil, g.err
	}
	return buf.Bytes(), nil
}

type schemaGen struct {
	docs map[string]string
	defs map[string]any
	err  error
}

func (g *schemaGen) describe(s map[string]any, key string) map[string]any {
	if d := g.docs[key]; d != "" {
		s["description"] = d
	}
	return s
}

func (g *schemaGen) typeSchema(t reflect.Type) map[string]any {
	if t.Kind() != reflect.Pointer && t.Implements(schemaerType) {
		s := reflect.Zero(t).Interface().(schemaer).jsonSchema()
		return g.describe(s, t.Name())
	}
	if f, ok := foreignSchemas[t]; ok {
		return f()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.typeSchema(t.Elem())
	case reflect.Struct:
		if _, ok := g.defs[t.Name()]; !ok {
			g.defs[t.Name()] = nil // reserve against recursion
			g.defs[t.Name()] = g.structDef(t)
		}
		return map[string]any{"$ref": "#/$defs/" + t.Name()}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.typeSchema(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	}
	g.err = fmt.Errorf("scenarios: no schema for Go type %s", t)
	return map[string]any{}
}

func (g *schemaGen) structDef(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if strings.Contains(opts, "inline") {
				walk(f.Type)
				continue
			}
			if name == "-" {
				continue
			}
			s := g.typeSchema(f.Type)
			if d := g.docs[t.Name()+"."+f.Name]; d != "" {
				s["description"] = d
			}
			props[name] = s
			if f.Tag.Get("schema") == "required" {
				required = append(required, name)
			}
		}
	}
	walk(t)
	def := map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		def["required"] = required
	}
	return g.describe(def, t.Name())
}

func stringPattern(pattern string) map[string]any {
	return map[string]any{"type": "string", "pattern": pattern}
}

func enumSchema(values []string) map[string]any {
	return map[string]any{"type": "string", "enum": values}
}

const hostPortPattern = `(\[[0-9A-Fa-f:.]+\]|[^,:\s\[\]]+):[0-9]{1,5}`

func (Duration) jsonSchema() map[string]any {
	return stringPattern(`^(0|([0-9]*\.?[0-9]+(ns|us|µs|μs|ms|s|m|h))+)$`)
}
func (Rate) jsonSchema() map[string]any {
	return stringPattern(`^[0-9]*\.?[0-9]+([eE][+-]?[0-9]+)?\s*[kM]?\s*/\s*(s|sec|ms|m|min|h)$`)
}
func (Percent) jsonSchema() map[string]any {
	return stringPattern(`^[0-9]*\.?[0-9]+([eE][+-]?[0-9]+)?\s*%$`)
}
func (Bandwidth) jsonSchema() map[string]any {
	return stringPattern(`^[0-9]*\.?[0-9]+\s*([kKmMgGtT][iI]?)?[bB][iI][tT](/s)?$`)
}
func (KeyDist) jsonSchema() map[string]any {
	return stringPattern(`^(uniform|sequential|zipf\(\s*[0-9]*\.?[0-9]+\s*\))$`)
}
func (Broker) jsonSchema() map[string]any {
	return map[string]any{"anyOf": []any{
		map[string]any{"const": BrokerEmbedded},
		stringPattern(`^` + hostPortPattern + `(\s*,\s*` + hostPortPattern + `)*$`),
		map[string]any{"type": "array", "minItems": 1, "items": stringPattern(`^` + hostPortPattern + `$`)},
	}}
}
func (Threshold) jsonSchema() map[string]any {
	return map[string]any{"type": []any{"string", "number"}}
}
func (Kind) jsonSchema() map[string]any         { return enumSchema(kindValues) }
func (Client) jsonSchema() map[string]any       { return enumSchema(clientValues) }
func (ClusterMode) jsonSchema() map[string]any  { return enumSchema(clusterModeValues) }
func (BlockHold) jsonSchema() map[string]any    { return enumSchema(consensus.HoldValues) }
func (Arrival) jsonSchema() map[string]any      { return enumSchema(arrivalValues) }
func (SimMode) jsonSchema() map[string]any      { return enumSchema(simModeValues) }
func (Distribution) jsonSchema() map[string]any { return enumSchema(distributionValues) }
func (LossModel) jsonSchema() map[string]any    { return enumSchema(lossModelValues) }
func (Format) jsonSchema() map[string]any       { return enumSchema(formatValues) }
func (Profile) jsonSchema() map[string]any      { return enumSchema(profileValues) }
