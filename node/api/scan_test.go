package api

import "testing"

// TestScanQuery: the pre-parse scan counts field selections (aliases once,
// fragment definitions, not spreads, type conditions, directives,
// variables or arguments), spots introspection outside strings and
// comments, and mutations.
func TestScanQuery(t *testing.T) {
	for _, c := range []struct {
		q                       string
		selections              int
		introspection, mutation bool
	}{
		{`{ status { cache { entries } } }`, 3, false, false},
		{`{ a: status { cache { entries } } b: status { shards { shard } } }`, 6, false, false},
		{`query Q($k: String! = "{ __schema }") { value(key: $k) { found } }`, 2, false, false},
		{`{ value(key: "x", obj: {a: {b: 1}}) @include(if: true) { found } }`, 2, false, false},
		{"{ # __schema { types }\n status { ready } }", 2, false, false},
		{`{ __typename status { __typename } }`, 3, false, false},
		{`{ __schema { types { name } } }`, 3, true, false},
		{`{ t: __type(name: "Query") { name } }`, 2, true, false},
		{`{ ...F ... on Query { status { ready } } } fragment F on Query { status { ready } }`, 4, false, false},
		{`mutation($tx: String!) { submit(tx: $tx) { accepted { id } } }`, 3, false, true},
		{`query A { status { ready } } mutation B { submit(tx: "00") { accepted { id } } }`, 5, false, false}, // which runs: operationName's
		{`mutation { submit(tx: "00") { accepted { id } } } fragment F on Query { status { ready } }`, 5, false, true},
		{`{ value(key: """ block { string } """) { found } }`, 2, false, false},
		{`{ unterminated(key: "abc`, 1, false, false},
	} {
		got := scanQuery(c.q)
		if got.selections != c.selections || got.introspection != c.introspection || got.mutation("") != c.mutation {
			t.Errorf("%q: %+v, want %d selections, introspection %v, mutation %v", c.q, got, c.selections, c.introspection, c.mutation)
		}
	}
	// A document's mutation runs only when it is the operation chosen:
	// a query beside it does not get a mutation's time or skip the query
	// bound.
	sc := scanQuery(`query A($query: String) { status { ready } } mutation B { submit(tx: "00") { accepted { id } } }`)
	if sc.mutation("A") || !sc.mutation("B") || sc.mutation("C") || len(sc.ops) != 2 || sc.ops[0].name != "A" || sc.ops[1].name != "B" {
		t.Fatalf("operations %+v", sc.ops)
	}
}

// FuzzScanQuery: the scan never panics, and never counts more selections
// than the document has names.
func FuzzScanQuery(f *testing.F) {
	for _, q := range []string{`{ a: status { ready } }`, `query Q($x: String = "\"") { value(key: $x) { found } }`, `mutation`, `"""`, `{ ... on Query { __schema { types { name } } } }`} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		sc := scanQuery(q)
		if sc.selections > len(q) {
			t.Fatalf("%d selections in %d bytes", sc.selections, len(q))
		}
		_ = sc.mutation("")
	})
}
