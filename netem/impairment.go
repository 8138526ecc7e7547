package netem

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"
)

// Errors returned by this package. Impairment problems come as
// *ImpairmentError, which matches ErrInvalidImpairment with errors.Is.
var (
	// ErrInvalidImpairment is matched by every *ImpairmentError.
	ErrInvalidImpairment = errors.New("netem: invalid impairment")
	// ErrEndpoint reports an empty endpoint name.
	ErrEndpoint = errors.New("netem: endpoint name is empty")
	// ErrClosed is returned by a send that needs the Network's delivery
	// scheduler after the Network was closed. It matches net.ErrClosed.
	ErrClosed = fmt.Errorf("netem: network closed: %w", net.ErrClosed)
)

// ImpairmentError names the field of an Impairment that is wrong and why.
// Its Reason does not repeat the value and states bounds without units of
// probability (fractions such as 4/5), so a caller that writes the field
// otherwise (a scenario file's percentages) can word it with its own value.
type ImpairmentError struct {
	Link   string // "from→to", or "" when validated on its own
	Field  string // the Impairment field, such as "Loss"
	Value  string // the field's value as Go prints it
	Reason string // such as "is not a probability in [0, 1]"
}

func (e *ImpairmentError) Error() string {
	if e.Link != "" {
		return fmt.Sprintf("netem: link %s: %s: %s %s", e.Link, e.Field, e.Value, e.Reason)
	}
	return fmt.Sprintf("netem: %s: %s %s", e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidImpairment) true.
func (e *ImpairmentError) Is(target error) bool { return target == ErrInvalidImpairment }

// Distribution is the shape of the delay jitter, after tc netem's tables.
type Distribution string

// Distributions. Each turns a uniform draw u into t = Q(u) and the delay
// into Delay + Jitter·t.
const (
	// Uniform spreads delays evenly over Delay ± Jitter (the default).
	Uniform Distribution = "uniform"
	// Normal has standard deviation Jitter, cut at ±4 Jitter as tc's table.
	Normal Distribution = "normal"
	// Pareto is tc's heavy tail: a Pareto(α=3) draw, centred and scaled by
	// 4/3, so t lies in [-2/3, 4] with mean 0 and a median of -0.32.
	Pareto Distribution = "pareto"
	// ParetoNormal is tc's mix: ¼ of the normal plus ¾ of the pareto value at
	// the same quantile.
	ParetoNormal Distribution = "paretonormal"
)

// LossModel is how losses are spread over packets.
type LossModel string

// Loss models.
const (
	// Bernoulli loses each packet with probability Loss (the default); with
	// Correlation the decisions form a Markov chain that keeps the mean rate.
	Bernoulli LossModel = "bernoulli"
	// GilbertElliott is the two-state (simple Gilbert) burst model: in the bad
	// state every packet is lost, in the good state none. The transition
	// probabilities are chosen so that the mean loss rate is Loss and a burst
	// lasts LossBurst packets on average.
	GilbertElliott LossModel = "gilbert-elliott"
)

// Defaults of the Impairment fields whose zero value means "the usual".
const (
	DefaultLossBurst = 4    // packets, for GilbertElliott
	DefaultQueue     = 1000 // packets behind the rate limit, as tc's limit
)

// Impairment is what the emulated network does to the traffic going one way
// on a link, after tc netem. The zero value passes traffic unchanged, without
// a copy or a goroutine hop.
//
// Probabilities are fractions in [0, 1]. Every random decision is drawn from
// the link's own random streams (one per kind of decision), so enabling
// jitter does not change which packets are lost.
//
// On a wrapped net.Conn (a byte stream, as TCP) the stream is cut into
// segments of MTU-40 bytes (1460 without an MTU). Segments keep their order:
// a segment is never delivered before the one written before it. Loss and
// corruption delay a segment by Options.Retransmit (TCP resends it);
// Duplicate, Reorder and MTU drops do not apply (TCP hides them); Queue does
// not drop, Write blocks instead (see Options.StreamBuffer).
type Impairment struct {
	// Delay is added to every packet (at most 24h). 0 means none.
	Delay time.Duration
	// Jitter varies the delay: the half-width for Uniform, the standard
	// deviation for Normal, the scale for the pareto shapes. Delays below
	// zero become zero. Like tc, jitter reorders packets.
	Jitter time.Duration
	// Distribution is the shape of the jitter. "" means Uniform.
	Distribution Distribution
	// Correlation in [0, 1] ties each delay and each Bernoulli loss decision
	// to the previous one. Unlike tc's, it keeps the configured spread and
	// loss rate: delays follow a Gaussian AR(1) copula with coefficient
	// Correlation, and a packet after a loss is lost with probability
	// Correlation + (1-Correlation)·Loss. 0 means independent decisions.
	Correlation float64
	// Loss is the mean share of packets dropped.
	Loss float64
	// LossModel spreads the losses. "" means Bernoulli.
	LossModel LossModel
	// LossBurst is the mean loss burst length in packets for
	// GilbertElliott (≥ 1; Loss must stay below LossBurst/(LossBurst+1)).
	// 0 means DefaultLossBurst. Ignored by Bernoulli.
	LossBurst float64
	// Duplicate is the share of packets sent twice. As in tc, the copy goes
	// through the link again (its own loss, corruption, delay), and a
	// duplicated packet that is also "lost" is sent once.
	Duplicate float64
	// Corrupt is the share of packets with one random bit flipped.
	Corrupt float64
	// Reorder is the share of reordering candidates sent at once instead of
	// after Delay, so that they overtake the packets in flight. Needs Delay.
	Reorder float64
	// ReorderGap makes only every ReorderGap-th packet a reordering
	// candidate, as tc's gap: after a reordered packet, ReorderGap-1 packets
	// are delayed normally. 0 means 1 (every packet is a candidate).
	ReorderGap int
	// Rate limits the bandwidth in bits per second of payload (UDP payload,
	// stream bytes; headers are not counted). Packets are serialized at Rate,
	// then delayed. 0 means unlimited.
	Rate uint64
	// Queue is how many packets may wait behind the rate limit; more are
	// tail-dropped. 0 means DefaultQueue. Ignored without Rate.
	Queue int
	// MTU is the largest IP packet in bytes (68..65535): a datagram whose
	// payload plus 28 bytes of IPv4+UDP headers (48 for IPv6) exceeds it is
	// dropped. 0 means no limit.
	MTU int
}

// maxDelay bounds Delay and Jitter, far beyond any network, so that times
// cannot overflow.
const maxDelay = 24 * time.Hour

// IsZero reports whether i leaves traffic unchanged.
func (i Impairment) IsZero() bool { return i == Impairment{} }

// Validate reports the first invalid field of i as an *ImpairmentError.
// These are the only rules of an impairment; a scenario's validator calls
// Validate too.
func (i Impairment) Validate() error {
	if err := i.validateTimes(); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		p    float64
	}{{"Correlation", i.Correlation}, {"Loss", i.Loss}, {"Duplicate", i.Duplicate}, {"Corrupt", i.Corrupt}, {"Reorder", i.Reorder}} {
		if math.IsNaN(f.p) || f.p < 0 || f.p > 1 {
			return bad(f.name, f.p, "is not a probability in [0, 1]")
		}
	}
	if err := i.validateLoss(); err != nil {
		return err
	}
	switch {
	case i.Reorder > 0 && i.Delay == 0:
		return bad("Reorder", i.Reorder, "needs a delay (reordered packets skip the delay)")
	case i.ReorderGap < 0:
		return bad("ReorderGap", i.ReorderGap, "is negative")
	case i.Queue < 0:
		return bad("Queue", i.Queue, "is negative")
	case i.MTU != 0 && (i.MTU < 68 || i.MTU > 65535):
		return bad("MTU", i.MTU, "is out of range (68..65535)")
	}
	return nil
}

// bad returns the *ImpairmentError of field with value v.
func bad(field string, v any, format string, args ...any) error {
	return &ImpairmentError{Field: field, Value: fmt.Sprint(v), Reason: fmt.Sprintf(format, args...)}
}

// validateTimes checks Delay, Jitter and Distribution.
func (i Impairment) validateTimes() error {
	switch {
	case i.Delay < 0 || i.Delay > maxDelay:
		return bad("Delay", i.Delay, "is out of range (0..%v)", maxDelay)
	case i.Jitter < 0 || i.Jitter > maxDelay:
		return bad("Jitter", i.Jitter, "is out of range (0..%v)", maxDelay)
	}
	switch i.Distribution {
	case "", Uniform, Normal, Pareto, ParetoNormal:
		return nil
	}
	return bad("Distribution", strconv.Quote(string(i.Distribution)), "is not one of uniform, normal, pareto, paretonormal")
}

// validateLoss checks LossModel and, for GilbertElliott, LossBurst and the
// bound it sets on Loss.
func (i Impairment) validateLoss() error {
	switch i.LossModel {
	case "", Bernoulli:
		return nil
	case GilbertElliott:
		b := i.lossBurst()
		if math.IsNaN(b) || math.IsInf(b, 0) || b < 1 {
			return bad("LossBurst", i.LossBurst, "is not a burst length ≥ 1")
		}
		if i.Loss >= b/(b+1) {
			return bad("Loss", i.Loss, "is too high for gilbert-elliott bursts of %v packets (the mean loss must be below %v/%v)", b, b, b+1)
		}
		return nil
	}
	return bad("LossModel", strconv.Quote(string(i.LossModel)), "is not one of bernoulli, gilbert-elliott")
}

func (i Impairment) lossBurst() float64 {
	if i.LossBurst == 0 {
		return DefaultLossBurst
	}
	return i.LossBurst
}

// quantile returns the standardized jitter value t for a uniform draw u in
// [0, 1] (see Distribution).
func quantile(d Distribution, u float64) float64 {
	switch d {
	case Normal:
		return normalQ(u)
	case Pareto:
		return paretoQ(u)
	case ParetoNormal:
		return (normalQ(u) + 3*paretoQ(u)) / 4
	default:
		return 2*u - 1
	}
}

// tc's tables store t·8192 in an int16, so values are cut at ±4.
const tableMax = 4

func normalQ(u float64) float64 {
	t := math.Sqrt2 * math.Erfinv(2*u-1)
	if math.IsNaN(t) {
		return 0
	}
	return max(-tableMax, min(tableMax, t))
}

func paretoQ(u float64) float64 {
	t := (math.Pow(1-u, -1.0/3) - 1.5) * 4 / 3
	if math.IsNaN(t) {
		return 0
	}
	return min(tableMax, t)
}
