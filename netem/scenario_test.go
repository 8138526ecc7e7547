package netem

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rustorium/rustorium/scenarios"
)

// TestFromScenarioCoversEveryField fails when scenarios.Impairment gains a
// field that FromScenario does not carry over.
func TestFromScenarioCoversEveryField(t *testing.T) {
	typ := reflect.TypeFor[scenarios.Impairment]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		var s scenarios.Impairment
		v := reflect.ValueOf(&s).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString("x")
		case reflect.Int, reflect.Int64:
			v.SetInt(3)
		case reflect.Uint64:
			v.SetUint(3)
		case reflect.Float64:
			v.SetFloat(3)
		default:
			t.Fatalf("field %s has kind %s: teach this test", f.Name, v.Kind())
		}
		if FromScenario(s).IsZero() {
			t.Errorf("scenarios.Impairment.%s is not carried over by FromScenario", f.Name)
		}
	}
}

func TestSetScenario(t *testing.T) {
	sc, err := scenarios.Load("../scenarios/lossy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nw := New(Options{Seed: sc.Seed})
	defer nw.Close()
	eps := []string{scenarios.EndpointClients, "node-1"}
	if err := nw.SetScenario(sc.NetworkAt(0), eps); err != nil {
		t.Fatal(err)
	}
	want := Impairment{Delay: 5 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.02, LossModel: GilbertElliott, LossBurst: 5}
	if got := nw.Link("clients", "node-1"); got != want {
		t.Errorf("clients→node-1 = %+v, want %+v", got, want)
	}
	want = Impairment{Delay: 5 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.01, Reorder: 0.01, ReorderGap: 5}
	if got := nw.Link("node-1", "clients"); got != want {
		t.Errorf("node-1→clients = %+v, want %+v", got, want)
	}
	broker := Impairment{Delay: 500 * time.Microsecond, Loss: 0.001}
	if got := nw.Link("node-1", EndpointBroker); got != broker {
		t.Errorf("node-1→broker = %+v, want %+v", got, broker)
	}
	if got := nw.Link(EndpointBroker, "node-1"); got != broker {
		t.Errorf("broker→node-1 = %+v, want %+v", got, broker)
	}
	// The loss storm of the timeline at 15s.
	if err := nw.SetScenario(sc.NetworkAt(scenarios.Duration(15*time.Second)), eps); err != nil {
		t.Fatal(err)
	}
	want = Impairment{Delay: 5 * time.Millisecond, Jitter: 500 * time.Microsecond, Loss: 0.1, LossModel: GilbertElliott}
	if got := nw.Link("clients", "node-1"); got != want {
		t.Errorf("clients→node-1 at 15s = %+v, want %+v", got, want)
	}
	// A bad impairment changes nothing and names the link.
	bad := scenarios.Network{Links: []scenarios.Link{{From: "node-1", To: "clients", Impairment: scenarios.Impairment{Loss: 90, LossModel: scenarios.LossGilbertElliott}}}}
	err = nw.SetScenario(bad, eps)
	var ie *ImpairmentError
	if !errors.As(err, &ie) || ie.Link != "node-1→clients" {
		t.Errorf("bad scenario network: %v", err)
	}
	if got := nw.Link("clients", "node-1"); got.Loss != 0.1 {
		t.Errorf("a failed SetScenario changed clients→node-1 to %+v", got)
	}
}
