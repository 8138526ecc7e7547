package api

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/rustorium/rustorium/node/p2p"
)

// FuzzWireJSON: the JSON forms a client decodes never panic, and whatever
// decodes stands for the same message once encoded again.
func FuzzWireJSON(f *testing.F) {
	f.Add([]byte(`{"id":"` + hex64 + `","shard":1,"height":2,"index":3,"root":"` + hex64 + `","status":"failed","reason":"r","proof":"00ff"}`))
	f.Add([]byte(`{"found":true,"root":"` + hex64 + `","value":"6869","proof":""}`))
	f.Add([]byte(`{"id":"` + hex64 + `","shard":0,"offset":-1}`))
	f.Add([]byte(`{"status":"ok","root":"zz"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Receipt
		if json.Unmarshal(b, &r) == nil {
			if c, err := r.P2P(); err == nil {
				again := ReceiptOf(c)
				if c2, err := again.P2P(); err != nil || !reflect.DeepEqual(normal(c), normal(c2)) {
					t.Fatalf("receipt %+v → %+v → %+v (%v)", r, c, c2, err)
				}
			}
		}
		var v Value
		if json.Unmarshal(b, &v) == nil {
			if pv, err := v.P2P(); err == nil {
				again := ValueOf(pv)
				if pv2, err := again.P2P(); err != nil || pv2.Found != pv.Found || pv2.Root != pv.Root || string(pv2.Value) != string(pv.Value) || string(pv2.Proof) != string(pv.Proof) {
					t.Fatalf("value %+v → %+v → %+v (%v)", v, pv, pv2, err)
				}
			}
		}
		var a Accepted
		if json.Unmarshal(b, &a) == nil {
			if pa, err := a.P2P(); err == nil {
				again := AcceptedOf(pa)
				if pa2, err := again.P2P(); err != nil || pa2 != pa {
					t.Fatalf("accepted %+v → %+v → %+v (%v)", a, pa, pa2, err)
				}
			}
		}
	})
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// normal makes an empty proof compare equal to a nil one.
func normal(c p2p.Committed) p2p.Committed {
	if len(c.Proof) == 0 {
		c.Proof = nil
	}
	return c
}
