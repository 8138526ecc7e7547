package netem

import (
	"fmt"

	"github.com/rustorium/rustorium/scenarios"
)

// EndpointBroker names the broker in links set from a scenario.
const EndpointBroker = "broker"

// FromScenario converts a scenario file's impairment. The scenario's single
// Correlation ties both delays and Bernoulli losses, as here.
func FromScenario(s scenarios.Impairment) Impairment {
	return Impairment{
		Delay:        s.Delay.Std(),
		Jitter:       s.Jitter.Std(),
		Distribution: Distribution(s.Distribution),
		Correlation:  s.Correlation.Fraction(),
		Loss:         s.Loss.Fraction(),
		LossModel:    LossModel(s.LossModel),
		LossBurst:    float64(s.LossBurst),
		Duplicate:    s.Duplicate.Fraction(),
		Corrupt:      s.Corrupt.Fraction(),
		Reorder:      s.Reorder.Fraction(),
		ReorderGap:   s.ReorderGap,
		Rate:         s.Rate.BitsPerSecond(),
		Queue:        s.Queue,
		MTU:          s.MTU,
	}
}

// SetScenario sets every link of a scenario's network: between each ordered
// pair of distinct endpoints the impairment sn.Path(from, to), and both ways
// between each endpoint and EndpointBroker sn.BrokerPath(). Call it at the
// start and with the network in force after each timeline change
// (Scenario.NetworkAt). It checks every impairment before changing any link.
func (n *Network) SetScenario(sn scenarios.Network, endpoints []string) error {
	type set struct {
		from, to string
		imp      Impairment
	}
	var sets []set
	broker := FromScenario(sn.BrokerPath())
	for _, a := range endpoints {
		if a == "" {
			return ErrEndpoint
		}
		for _, b := range endpoints {
			if a != b {
				sets = append(sets, set{a, b, FromScenario(sn.Path(a, b))})
			}
		}
		if a != EndpointBroker {
			sets = append(sets, set{a, EndpointBroker, broker}, set{EndpointBroker, a, broker})
		}
	}
	for _, s := range sets {
		if err := s.imp.Validate(); err != nil {
			err.(*ImpairmentError).Link = s.from + "→" + s.to
			return fmt.Errorf("netem: scenario network: %w", err)
		}
	}
	for _, s := range sets {
		if err := n.SetLink(s.from, s.to, s.imp); err != nil {
			return err
		}
	}
	return nil
}
