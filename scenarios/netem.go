package scenarios

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/rustorium/rustorium/netem"
)

// EndpointBroker names the broker among the endpoints of Network.Links: the
// nodes' connections to it carry the broker impairment.
const EndpointBroker = "broker"

// Netem converts i into the emulator's impairment. The scenario's single
// Correlation ties both delays and Bernoulli losses, as in netem.
func (i Impairment) Netem() netem.Impairment {
	return netem.Impairment{
		Delay:        i.Delay.Std(),
		Jitter:       i.Jitter.Std(),
		Distribution: netem.Distribution(i.Distribution),
		Correlation:  i.Correlation.Fraction(),
		Loss:         i.Loss.Fraction(),
		LossModel:    netem.LossModel(i.LossModel),
		LossBurst:    float64(i.LossBurst),
		Duplicate:    i.Duplicate.Fraction(),
		Corrupt:      i.Corrupt.Fraction(),
		Reorder:      i.Reorder.Fraction(),
		ReorderGap:   i.ReorderGap,
		Rate:         i.Rate.BitsPerSecond(),
		Queue:        i.Queue,
		MTU:          i.MTU,
	}
}

// NetemLinks returns every directed link of the network among endpoints, for
// netem.Network.SetLinks: between each ordered pair of distinct endpoints
// the impairment n.Path(from, to), and both ways between each endpoint and
// EndpointBroker n.BrokerPath() (endpoints may name EndpointBroker or not).
// Set them at the start and with the network in force after each timeline
// change (Scenario.NetworkAt).
func (n Network) NetemLinks(endpoints []string) []netem.LinkImpairment {
	var out []netem.LinkImpairment
	broker := n.BrokerPath().Netem()
	for _, a := range endpoints {
		if a == EndpointBroker {
			continue
		}
		for _, b := range endpoints {
			if a != b && b != EndpointBroker {
				out = append(out, netem.LinkImpairment{From: a, To: b, Impairment: n.Path(a, b).Netem()})
			}
		}
		out = append(out,
			netem.LinkImpairment{From: a, To: EndpointBroker, Impairment: broker},
			netem.LinkImpairment{From: EndpointBroker, To: a, Impairment: broker})
	}
	return out
}

// netemProblem checks i as the emulator will (netem.Impairment.Validate,
// the one set of impairment rules): ok, or the scenario field at fault (its
// YAML name; "" for the whole impairment) and what is wrong with its value
// as the file writes it, such as `90% is too high for gilbert-elliott
// bursts of 4 packets (the mean loss must be below 4/5)`.
func netemProblem(i Impairment) (field, msg string, ok bool) {
	err := i.Netem().Validate()
	if err == nil {
		return "", "", true
	}
	ie, isIE := errors.AsType[*netem.ImpairmentError](err)
	if !isIE {
		return "", err.Error(), false
	}
	f, found := reflect.TypeFor[Impairment]().FieldByName(ie.Field)
	if !found {
		return "", err.Error(), false
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name, fmt.Sprintf("%v %s", reflect.ValueOf(i).FieldByIndex(f.Index).Interface(), ie.Reason), false
}
