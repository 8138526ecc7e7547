package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rustorium/rustorium/netem"
)

// TestNetemCoversEveryField fails when Impairment gains a field that Netem
// does not carry over, or netem.Impairment one that has no scenario field of
// the same Go name (netemProblem names the scenario field by it).
func TestNetemCoversEveryField(t *testing.T) {
	typ := reflect.TypeFor[Impairment]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		var s Impairment
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
		if s.Netem().IsZero() {
			t.Errorf("Impairment.%s is not carried over by Netem", f.Name)
		}
	}
	nt := reflect.TypeFor[netem.Impairment]()
	for i := range nt.NumField() {
		if _, ok := typ.FieldByName(nt.Field(i).Name); !ok {
			t.Errorf("netem.Impairment.%s has no scenario field of that name", nt.Field(i).Name)
		}
	}
}

func TestNetemLinks(t *testing.T) {
	sc, err := Load("lossy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nw := netem.New(netem.Options{Seed: sc.Seed})
	defer nw.Close()
	eps := []string{EndpointClients, "node-1", EndpointBroker}
	if err := nw.SetLinks(sc.NetworkAt(0).NetemLinks(eps)); err != nil {
		t.Fatal(err)
	}
	want := netem.Impairment{Delay: 5 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.02, LossModel: netem.GilbertElliott, LossBurst: 5}
	if got := nw.Link("clients", "node-1"); got != want {
		t.Errorf("clients→node-1 = %+v, want %+v", got, want)
	}
	want = netem.Impairment{Delay: 5 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.01, Reorder: 0.01, ReorderGap: 5}
	if got := nw.Link("node-1", "clients"); got != want {
		t.Errorf("node-1→clients = %+v, want %+v", got, want)
	}
	broker := netem.Impairment{Delay: 500 * time.Microsecond, Loss: 0.001}
	for _, l := range [][2]string{{"node-1", EndpointBroker}, {EndpointBroker, "node-1"}, {"clients", EndpointBroker}} {
		if got := nw.Link(l[0], l[1]); got != broker {
			t.Errorf("%s→%s = %+v, want %+v", l[0], l[1], got, broker)
		}
	}
	// The loss storm of the timeline at 15s.
	if err := nw.SetLinks(sc.NetworkAt(Duration(15 * time.Second)).NetemLinks(eps)); err != nil {
		t.Fatal(err)
	}
	want = netem.Impairment{Delay: 5 * time.Millisecond, Jitter: 500 * time.Microsecond, Loss: 0.1, LossModel: netem.GilbertElliott}
	if got := nw.Link("clients", "node-1"); got != want {
		t.Errorf("clients→node-1 at 15s = %+v, want %+v", got, want)
	}
}

// TestImpairmentRulesAreNetems: an impairment netem refuses fails at load,
// with the file, the line and the field.
func TestImpairmentRulesAreNetems(t *testing.T) {
	base := "cluster: {nodes: 2}\nworkload: [{kind: put, rate: 1/s}]\n"
	cases := []struct {
		name, yaml string
		line       int
		field, msg string
	}{
		{"gilbert-elliott 90%", "network:\n  links:\n    - {from: clients, to: node-1, loss: 90%, loss_model: gilbert-elliott}\n",
			5, "network.links[0].loss", "90% is too high for gilbert-elliott bursts of 4 packets (the mean loss must be below 4/5)"},
		{"burst", "network:\n  default:\n    loss: 50%\n    loss_model: gilbert-elliott\n    loss_burst: 1\n",
			5, "network.default.loss", "50% is too high for gilbert-elliott bursts of 1 packets (the mean loss must be below 1/2)"},
		{"negative burst", "network:\n  broker:\n    loss: 1%\n    loss_model: gilbert-elliott\n    loss_burst: -2\n",
			7, "network.broker.loss_burst", "-2 is not a burst length ≥ 1"},
		{"timeline", "duration: 20s\ntimeline:\n  - at: 1s\n    network:\n      default: {delay: 1ms, loss: 85%, loss_model: gilbert-elliott}\n",
			7, "timeline[0].network.default.loss", "85% is too high"},
		{"mtu", "network:\n  default: {mtu: 10}\n", 4, "network.default.mtu", "10 is out of range (68..65535)"},
		{"reorder gap", "network:\n  default: {delay: 1ms, reorder: 1%, reorder_gap: -1}\n", 4, "network.default.reorder_gap", "-1 is negative"},
		// Each impairment valid, their overlay not: the link's loss with the
		// default's gilbert-elliott bursts of 1.
		{"together", "network:\n  default: {loss: 1%, loss_model: gilbert-elliott, loss_burst: 1}\n  links:\n    - {from: node-2, to: '*', loss: 60%}\n",
			3, "network", "the path node-2→clients (default and links together): loss: 60% is too high"},
		{"together later", "duration: 20s\nnetwork:\n  default: {loss: 1%, loss_model: gilbert-elliott, loss_burst: 1}\ntimeline:\n  - at: 2s\n    network:\n      links: [{from: clients, to: node-1, loss: 70%}]\n",
			8, "timeline[0].network", "the path clients→node-1 (default and links together): loss: 70%"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "n.yaml")
			if err := os.WriteFile(path, []byte(base+c.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			e := errorOf(t, err)
			if e.File != path || e.Line != c.line || e.Field != c.field || !strings.Contains(e.Msg, c.msg) || !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v; want %s:%d: %s: …%s…", err, path, c.line, c.field, c.msg)
			}
		})
	}
}

func TestOverlay(t *testing.T) {
	base := Impairment{Delay: Duration(time.Millisecond), Loss: 1, LossModel: LossBernoulli, MTU: 1500}
	got := base.Overlay(Impairment{Loss: 5, Rate: 8000, ReorderGap: 3})
	want := Impairment{Delay: Duration(time.Millisecond), Loss: 5, LossModel: LossBernoulli, MTU: 1500, Rate: 8000, ReorderGap: 3}
	if got != want {
		t.Errorf("overlay = %+v, want %+v", got, want)
	}
	if got := base.Overlay(Impairment{}); got != base {
		t.Errorf("an empty overlay changed %+v to %+v", base, got)
	}
}
