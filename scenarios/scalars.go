package scenarios

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rustorium/rustorium/node/consensus"
)

// The scalar types below parse themselves from text (YAML scalars, JSON
// strings) and format back to the same canonical text, so a resolved scenario
// reads like the file that produced it. Their parse errors are plain messages;
// the decoder adds the file, line and field.

// Duration is a Go duration ("250ms", "5s", "1m30s"). Negative durations are
// rejected when parsing.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText formats d as a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (want a Go duration such as 250ms, 5s, 1m30s)", s)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	*d = Duration(v)
	return nil
}

// Rate is an event rate, stored per second. It is written "N/s" (also /ms,
// /m or /min, /h); N may carry a k (×1000) or M (×1000000) suffix, so
// "2k/s" = "2000/s".
type Rate float64

// PerSecond returns the rate in events per second.
func (r Rate) PerSecond() float64 { return float64(r) }

// Interval returns the time between two events at this rate, or 0 for a zero
// rate.
func (r Rate) Interval() time.Duration {
	if r <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / float64(r))
}

func (r Rate) String() string { return strconv.FormatFloat(float64(r), 'f', -1, 64) + "/s" }

// MarshalText formats r as "N/s".
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

var rateRE = regexp.MustCompile(`^([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kM]?)\s*/\s*(s|sec|ms|m|min|h)$`)

// UnmarshalText parses "N/s".
func (r *Rate) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	m := rateRE.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf("%q is not a rate (want N/s)", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Errorf("%q is not a rate (want N/s)", s)
	}
	switch m[2] {
	case "k":
		v *= 1e3
	case "M":
		v *= 1e6
	}
	switch m[3] {
	case "ms":
		v *= 1000
	case "m", "min":
		v /= 60
	case "h":
		v /= 3600
	}
	if math.IsInf(v, 0) || v > 1e12 {
		return fmt.Errorf("%q is too large a rate", s)
	}
	*r = Rate(v)
	return nil
}

// Percent is a percentage written "N%" with 0 ≤ N ≤ 100; the value holds N
// (so 0.1% is Percent(0.1)).
type Percent float64

// Fraction returns p/100, the probability in [0, 1].
func (p Percent) Fraction() float64 { return float64(p) / 100 }

func (p Percent) String() string { return strconv.FormatFloat(float64(p), 'f', -1, 64) + "%" }

// MarshalText formats p as "N%".
func (p Percent) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

var percentRE = regexp.MustCompile(`^([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*%$`)

// UnmarshalText parses "N%".
func (p *Percent) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	m := percentRE.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf("%q is not a percentage (want N%%, such as 0.1%%)", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 100 {
		return fmt.Errorf("%q is not a percentage between 0%% and 100%%", s)
	}
	*p = Percent(v)
	return nil
}

// Bandwidth is a link rate in bits per second, written like tc: "bit",
// "kbit", "mbit", "gbit", "tbit" (powers of 1000) or "kibit", "mibit",
// "gibit", "tibit" (powers of 1024), optionally followed by "/s". tc's byte
// units ("mbps" = megabytes/s) are refused as too easy to misread.
type Bandwidth uint64

// BitsPerSecond returns the bandwidth in bits per second.
func (b Bandwidth) BitsPerSecond() uint64 { return uint64(b) }

// BytesPerSecond returns the bandwidth in bytes per second.
func (b Bandwidth) BytesPerSecond() float64 { return float64(b) / 8 }

var bandwidthUnits = []struct {
	name string
	mult uint64
}{
	{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3},
	{"tibit", 1 << 40}, {"gibit", 1 << 30}, {"mibit", 1 << 20}, {"kibit", 1 << 10},
	{"bit", 1},
}

func (b Bandwidth) String() string {
	v := uint64(b)
	if v == 0 {
		return "0bit"
	}
	for _, u := range bandwidthUnits[:4] {
		if v%u.mult == 0 {
			return strconv.FormatUint(v/u.mult, 10) + u.name
		}
	}
	return strconv.FormatUint(v, 10) + "bit"
}

// MarshalText formats b with the largest SI unit that divides it.
func (b Bandwidth) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

var bandwidthRE = regexp.MustCompile(`^([0-9]*\.?[0-9]+)\s*([a-zA-Z]+)(/s)?$`)

// UnmarshalText parses a tc-style bandwidth such as "10mbit".
func (b *Bandwidth) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	m := bandwidthRE.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf("%q is not a bandwidth (want N followed by bit, kbit, mbit or gbit, such as 10mbit)", s)
	}
	unit := strings.ToLower(m[2])
	if strings.HasSuffix(unit, "bps") {
		return fmt.Errorf("%q is ambiguous (tc reads %s as bytes per second); write the rate in bits, such as 10mbit", s, m[2])
	}
	var mult uint64
	for _, u := range bandwidthUnits {
		if unit == u.name {
			mult = u.mult
		}
	}
	if mult == 0 {
		return fmt.Errorf("%q has unknown unit %q (want bit, kbit, mbit, gbit, tbit, kibit, mibit, gibit or tibit)", s, m[2])
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return fmt.Errorf("%q is not a bandwidth", s)
	}
	bits := v * float64(mult)
	if bits >= 1<<63 {
		return fmt.Errorf("%q is too large a bandwidth", s)
	}
	*b = Bandwidth(math.Round(bits))
	return nil
}

// KeyDist is how a workload picks keys (or accounts) from its key space:
// "uniform", "sequential" (each key in turn, wrapping) or "zipf(s)" with
// exponent s > 1 (larger s = more skew).
type KeyDist struct {
	Kind string  // "uniform", "sequential" or "zipf"
	S    float64 // zipf exponent, > 1; zero for the other kinds
}

// Key distribution kinds.
const (
	KeysUniform    = "uniform"
	KeysSequential = "sequential"
	KeysZipf       = "zipf"
)

func (k KeyDist) String() string {
	if k.Kind == KeysZipf {
		return "zipf(" + strconv.FormatFloat(k.S, 'f', -1, 64) + ")"
	}
	return k.Kind
}

// IsZero reports whether k is unset.
func (k KeyDist) IsZero() bool { return k.Kind == "" }

// MarshalText formats k as written in a scenario.
func (k KeyDist) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

var zipfRE = regexp.MustCompile(`^zipf\(\s*([0-9]*\.?[0-9]+)\s*\)$`)

// UnmarshalText parses "uniform", "sequential" or "zipf(s)".
func (k *KeyDist) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	switch s {
	case KeysUniform, KeysSequential:
		*k = KeyDist{Kind: s}
		return nil
	}
	m := zipfRE.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf("%q is not a key distribution (want uniform, sequential or zipf(s))", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || !(v > 1) || v > 100 {
		return fmt.Errorf("%q: the zipf exponent must be > 1 and ≤ 100", s)
	}
	*k = KeyDist{Kind: KeysZipf, S: v}
	return nil
}

// Broker says which Kafka-protocol broker the cluster orders through: the
// embedded in-process broker (written "embedded"; the zero value) or a list of
// host:port bootstrap addresses of a real Kafka or Redpanda cluster (written
// as a YAML list, or as one comma-separated string).
type Broker struct {
	Addrs []string // empty: embedded
}

// BrokerEmbedded is how the embedded broker is written.
const BrokerEmbedded = "embedded"

// Embedded reports whether b is the embedded in-process broker.
func (b Broker) Embedded() bool { return len(b.Addrs) == 0 }

func (b Broker) String() string {
	if b.Embedded() {
		return BrokerEmbedded
	}
	return strings.Join(b.Addrs, ",")
}

// MarshalJSON writes "embedded" or the list of addresses.
func (b Broker) MarshalJSON() ([]byte, error) {
	if b.Embedded() {
		return json.Marshal(BrokerEmbedded)
	}
	return json.Marshal(b.Addrs)
}

// UnmarshalJSON reads "embedded", "h:p,h:p" or ["h:p", ...].
func (b *Broker) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		return b.parseString(s)
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("broker: want %q or a list of host:port", BrokerEmbedded)
	}
	return b.setAddrs(list)
}

// MarshalYAML writes "embedded" or the list of addresses.
func (b Broker) MarshalYAML() (any, error) {
	if b.Embedded() {
		return BrokerEmbedded, nil
	}
	return b.Addrs, nil
}

// UnmarshalYAML reads "embedded", "h:p,h:p" or a list of host:port. A bad
// address is reported at its own line.
func (b *Broker) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if err := b.parseString(n.Value); err != nil {
			return &Error{Line: n.Line, Msg: err.Error(), Err: ErrValue}
		}
		return nil
	case yaml.SequenceNode:
		addrs := make([]string, 0, len(n.Content))
		for i, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return &Error{Line: c.Line, Field: fmt.Sprintf("[%d]", i), Msg: "want a host:port string", Err: ErrType}
			}
			if err := checkHostPort(c.Value); err != nil {
				return &Error{Line: c.Line, Field: fmt.Sprintf("[%d]", i), Msg: err.Error(), Err: ErrValue}
			}
			addrs = append(addrs, strings.TrimSpace(c.Value))
		}
		if len(addrs) == 0 {
			return &Error{Line: n.Line, Msg: "empty broker list (write embedded for the in-process broker)", Err: ErrValue}
		}
		b.Addrs = addrs
		return nil
	}
	return &Error{Line: n.Line, Msg: fmt.Sprintf("want %q or a list of host:port", BrokerEmbedded), Err: ErrType}
}

func (b *Broker) parseString(s string) error {
	s = strings.TrimSpace(s)
	if s == BrokerEmbedded {
		b.Addrs = nil
		return nil
	}
	if s == "" {
		return fmt.Errorf("empty broker (want %q or host:port)", BrokerEmbedded)
	}
	return b.setAddrs(strings.Split(s, ","))
}

func (b *Broker) setAddrs(list []string) error {
	addrs := make([]string, 0, len(list))
	for _, a := range list {
		a = strings.TrimSpace(a)
		if err := checkHostPort(a); err != nil {
			return err
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("empty broker list (write %s for the in-process broker)", BrokerEmbedded)
	}
	b.Addrs = addrs
	return nil
}

func checkHostPort(a string) error {
	a = strings.TrimSpace(a)
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port", a)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q has a bad port", a)
	}
	return nil
}

// Threshold is the bound of an SLO as written: a duration for latency
// metrics ("250ms"), a whole number for counts ("0"), a rate for throughput
// ("900/s"). Its meaning depends on the metric, so it is kept as text and
// checked by Validate; SLO.Bounds gives its value.
type Threshold string

// IsZero reports whether t is unset.
func (t Threshold) IsZero() bool { return t == "" }

// MarshalText returns t as written.
func (t Threshold) MarshalText() ([]byte, error) { return []byte(t), nil }

// UnmarshalText keeps the text; Validate checks it against the metric.
func (t *Threshold) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return fmt.Errorf("empty threshold")
	}
	*t = Threshold(s)
	return nil
}

// enumError builds the message for a value outside an enum.
func enumError(s, what string, values []string) error {
	var want string
	switch len(values) {
	case 1:
		want = values[0]
	default:
		want = strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
	}
	return fmt.Errorf("%q is not a %s (want %s)", s, what, want)
}

func parseEnum(b []byte, what string, values []string) (string, error) {
	s := strings.TrimSpace(string(b))
	for _, v := range values {
		if s == v {
			return s, nil
		}
	}
	return "", enumError(s, what, values)
}

// Kind is what a workload does: transfer (move balance between accounts),
// put (write a key), get (read a key with its proof) or query (read an
// account from the account view, over any client: balance, nonce and their
// proof).
type Kind string

// Workload kinds.
const (
	KindTransfer Kind = "transfer"
	KindPut      Kind = "put"
	KindGet      Kind = "get"
	KindQuery    Kind = "query"
)

var kindValues = []string{"transfer", "put", "get", "query"}

// UnmarshalText accepts one of the workload kinds.
func (k *Kind) UnmarshalText(b []byte) error {
	s, err := parseEnum(b, "workload kind", kindValues)
	*k = Kind(s)
	return err
}

// Client is the protocol a workload's clients speak to the node.
type Client string

// Client protocols.
const (
	ClientQUIC    Client = "quic"
	ClientREST    Client = "rest"
	ClientGraphQL Client = "graphql"
	ClientWS      Client = "ws"
)

var clientValues = []string{"quic", "rest", "graphql", "ws"}

// UnmarshalText accepts one of the client protocols.
func (c *Client) UnmarshalText(b []byte) error {
	s, err := parseEnum(b, "client", clientValues)
	*c = Client(s)
	return err
}

// ClusterMode is how the harness runs a scenario's nodes.
type ClusterMode string

// Cluster modes.
const (
	// ClusterInProcess runs every node in the harness's process (a kill is
	// a graceful Close).
	ClusterInProcess ClusterMode = "inprocess"
	// ClusterProcess runs every node as a `rustorium node` OS process (a
	// kill is SIGKILL, a pause SIGSTOP).
	ClusterProcess ClusterMode = "process"
)

var clusterModeValues = []string{"inprocess", "process"}

// UnmarshalText accepts one of the cluster modes.
func (m *ClusterMode) UnmarshalText(b []byte) error {
	s, err := parseEnum(b, "cluster mode", clusterModeValues)
	*m = ClusterMode(s)
	return err
}

// BlockHold is which in-flight blocks hold a shard's block open
// (cluster.block.hold; consensus.Hold): "shard", its own previous block,
// or "leader", any block its leader published.
type BlockHold string

// UnmarshalText accepts one of the hold policies.
func (h *BlockHold) UnmarshalText(b []byte) error {
	s, err := parseEnum(b, "block hold", consensus.HoldValues)
	*h = BlockHold(s)
	return err
}

// Arrival is how an open-loop workload spaces its sends: evenly (constant)
// or as a Poisson process with the same mean rate.
type Arrival string

// Arrival processes.
const (
	ArrivalConstant Arrival = "constant"
	ArrivalPoisson  Arrival = "poisson"
)

var arrivalValues = []string{"constant", "poisson"}

// UnmarshalText accepts one of the arrival processes.
func (a *Arrival) UnmarshalText(b []byte) error {
	s, err := parseEnum(b, "arrival process", arrivalValues)
	*a = Arrival(s)
	return err
}

// SimMode is how the simulator moves transactions: one at a time or in
// cohorts.
type SimMode string

// Simulation modes.
const (
	SimAuto   SimMode = "auto"
	SimTx     SimMode = "tx"
	SimCohort SimMode = "cohort"
)

var simModeValues = []string{"auto", "tx", "cohort"}

// UnmarshalText accepts one of the simulation modes.
func (m *SimMode) UnmarshalText(b []byte) error {
	s, err := parseEnum(b, "simulation mode", simModeValues)
	*m = SimMode(s)
	return err
}

// Distribution is the shape of the delay jitter, as in tc netem.
type Distribution string

// Delay distributions.
const (
	DistUniform      Distribution = "uniform"
	DistNormal       Distribution = "normal"
	DistPareto       Distribution = "pareto"
	DistParetoNormal Distribution = "paretonormal"
)

var distributionValues = []string{"uniform", "normal", "pareto", "paretonormal"}

// UnmarshalText accepts one of the delay distributions.
func (d *Distribution) UnmarshalText(b []byte) error {
	s, err := parseEnum(b, "delay distribution", distributionValues)
	*d = Distribution(s)
	return err
}

// LossModel is how losses are spread: independently (bernoulli) or in bursts
// (gilbert-elliott, a two-state Markov chain).
type LossModel string

// Loss models.
const (
	LossBernoulli      LossModel = "bernoulli"
	LossGilbertElliott LossModel = "gilbert-elliott"
)

var lossModelValues = []string{"bernoulli", "gilbert-elliott"}

// UnmarshalText accepts one of the loss models.
func (l *LossModel) UnmarshalText(b []byte) error {
	s, err := parseEnum(b, "loss model", lossModelValues)
	*l = LossModel(s)
	return err
}

// Format is a report output format.
type Format string

// Report formats.
const (
	FormatJSON Format = "json"
	FormatMD   Format = "md"
	FormatHTML Format = "html"
	FormatHGRM Format = "hgrm"
	FormatHLog Format = "hlog"
)

var formatValues = []string{"json", "md", "html", "hgrm", "hlog"}

// UnmarshalText accepts one of the report formats.
func (f *Format) UnmarshalText(b []byte) error {
	s, err := parseEnum(b, "report format", formatValues)
	*f = Format(s)
	return err
}

// Profile is a profile captured over the measured phase: one of Go's, or
// perf, a CPU profile by Linux perf's cpu-clock sampling (when perf is
// installed), which neither misses the kernel's share nor samples on the
// scheduler tick as Go's cpu profile does.
type Profile string

// Profiles.
const (
	ProfileCPU       Profile = "cpu"
	ProfileHeap      Profile = "heap"
	ProfileAllocs    Profile = "allocs"
	ProfileMutex     Profile = "mutex"
	ProfileBlock     Profile = "block"
	ProfileTrace     Profile = "trace"
	ProfileGoroutine Profile = "goroutine"
	ProfilePerf      Profile = "perf"
)

var profileValues = []string{"cpu", "heap", "allocs", "mutex", "block", "trace", "goroutine", "perf"}

// UnmarshalText accepts one of the profiles.
func (p *Profile) UnmarshalText(b []byte) error {
	s, err := parseEnum(b, "profile", profileValues)
	*p = Profile(s)
	return err
}
