package scenarios

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Endpoint names used by links and partitions.
const (
	EndpointClients = "clients" // the load generator's clients
	EndpointAny     = "*"       // any endpoint (links only)
)

// NodeName returns the name of the i-th node (1-based): "node-i".
func NodeName(i int) string { return "node-" + strconv.Itoa(i) }

// NodeNames returns node-1 … node-N for the cluster.
func (c Cluster) NodeNames() []string {
	names := make([]string, 0, max(c.Nodes, 0))
	for i := 1; i <= c.Nodes; i++ {
		names = append(names, NodeName(i))
	}
	return names
}

// HasNode reports whether name is one of the cluster's nodes.
func (c Cluster) HasNode(name string) bool {
	rest, ok := strings.CutPrefix(name, "node-")
	if !ok {
		return false
	}
	i, err := strconv.Atoi(rest)
	return err == nil && i >= 1 && i <= c.Nodes && NodeName(i) == name
}

// BrokerTarget is the timeline target of `kill: broker`: the run's broker,
// stopped and (with restart_after) started again on its log and address.
const BrokerTarget = "broker"

// FillsDisks reports whether the timeline fills a node's disk.
func (s *Scenario) FillsDisks() bool {
	for _, e := range s.Timeline {
		if e.DiskFull != "" {
			return true
		}
	}
	return false
}

// KillsBroker reports whether the timeline stops the broker.
func (s *Scenario) KillsBroker() bool {
	for _, e := range s.Timeline {
		if e.Kill == BrokerTarget {
			return true
		}
	}
	return false
}

// LeaderTarget parses a timeline target of the form "leader(S)": the node
// that leads shard S when the event happens. ok is false for anything else
// (a node name).
func LeaderTarget(name string) (shard int, ok bool) {
	rest, ok := strings.CutPrefix(name, "leader(")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, ")")
	if !ok {
		return 0, false
	}
	s, err := strconv.Atoi(rest)
	if err != nil || s < 0 || strconv.Itoa(s) != rest {
		return 0, false
	}
	return s, true
}

// Overlay returns i with every non-zero field of o laid over it.
func (i Impairment) Overlay(o Impairment) Impairment {
	dst, src := reflect.ValueOf(&i).Elem(), reflect.ValueOf(o)
	for k := range src.NumField() {
		if f := src.Field(k); !f.IsZero() {
			dst.Field(k).Set(f)
		}
	}
	return i
}

// Path returns the impairment of packets sent from endpoint from to endpoint
// to: the default with every matching link laid over it in order.
func (n Network) Path(from, to string) Impairment {
	var imp Impairment
	if n.Default != nil {
		imp = *n.Default
	}
	for _, l := range n.Links {
		if (l.From == from || l.From == EndpointAny) && (l.To == to || l.To == EndpointAny) {
			imp = imp.Overlay(l.Impairment)
		}
	}
	return imp
}

// BrokerPath returns the impairment of the nodes' broker connections.
func (n Network) BrokerPath() Impairment {
	if n.Broker == nil {
		return Impairment{}
	}
	return *n.Broker
}

// Apply returns a copy of n changed by a timeline network event: a given
// default or broker impairment replaces the current one; each given link
// replaces the link with the same from and to, or is appended.
func (n Network) Apply(change *Network) Network {
	out := n.clone()
	if change == nil {
		return out
	}
	if change.Default != nil {
		out.Default = clonePtr(change.Default)
	}
	if change.Broker != nil {
		out.Broker = clonePtr(change.Broker)
	}
	for _, l := range change.Links {
		replaced := false
		for i := range out.Links {
			if out.Links[i].From == l.From && out.Links[i].To == l.To {
				out.Links[i] = l
				replaced = true
			}
		}
		if !replaced {
			out.Links = append(out.Links, l)
		}
	}
	return out
}

func (n Network) clone() Network {
	return Network{Default: clonePtr(n.Default), Links: append([]Link(nil), n.Links...), Broker: clonePtr(n.Broker)}
}

// NetworkAt returns the network in force at time t from the start of
// measuring: the scenario's network with every timeline network event at or
// before t applied in time order.
func (s *Scenario) NetworkAt(t Duration) Network {
	net := s.Network.clone()
	for _, a := range s.Schedule() {
		if a.At > t {
			break
		}
		if a.Op == OpNetwork {
			net = net.Apply(a.Network)
		}
	}
	return net
}

// Op is a primitive timeline action.
type Op string

// Timeline actions.
const (
	OpNetwork   Op = "network"   // apply Action.Network
	OpKill      Op = "kill"      // stop Action.Node
	OpRestart   Op = "restart"   // start Action.Node again
	OpPartition Op = "partition" // split Action.Groups
	OpHeal      Op = "heal"      // end the partition of event Action.Event
	OpPause     Op = "pause"     // stall Action.Node
	OpResume    Op = "resume"    // let Action.Node run again
	OpFlood     Op = "flood"     // open Action.Conns connections to Action.Node's API
	OpUnflood   Op = "unflood"   // close the flood of event Action.Event
	OpDiskFull  Op = "disk_full" // fail Action.Node's store writes
	OpDiskFree  Op = "disk_free" // let them succeed again
)

// Floods: the connections a flood opens by default, and at most.
const (
	DefaultFloodConns = 5000
	MaxFloodConns     = 100_000
)

// Action is one primitive step of the timeline at an absolute time from the
// start of measuring.
type Action struct {
	At      Duration
	Op      Op
	Node    string     // kill, restart, pause, resume
	Groups  [][]string // partition, heal
	Network *Network   // network
	Conns   int        // flood
	Event   int        // index of the timeline event it comes from
}

func (a Action) String() string {
	switch a.Op {
	case OpNetwork:
		return "network change"
	case OpPartition, OpHeal:
		parts := make([]string, len(a.Groups))
		for i, g := range a.Groups {
			parts[i] = "[" + strings.Join(g, " ") + "]"
		}
		return fmt.Sprintf("%s %s", a.Op, strings.Join(parts, " | "))
	}
	return fmt.Sprintf("%s %s", a.Op, a.Node)
}

// Schedule expands the timeline into primitive actions sorted by time (ties
// keep timeline order): a kill with restart_after becomes kill + restart, a
// partition with heal_after becomes partition + heal, a pause becomes pause +
// resume, a flood flood + unflood, a full disk disk_full + disk_free.
func (s *Scenario) Schedule() []Action {
	var out []Action
	for i, e := range s.Timeline {
		switch {
		case e.Network != nil:
			out = append(out, Action{At: e.At, Op: OpNetwork, Network: e.Network, Event: i})
		case e.Kill != "":
			out = append(out, Action{At: e.At, Op: OpKill, Node: e.Kill, Event: i})
			if e.RestartAfter > 0 {
				out = append(out, Action{At: e.At + e.RestartAfter, Op: OpRestart, Node: e.Kill, Event: i})
			}
		case len(e.Partition) > 0:
			out = append(out, Action{At: e.At, Op: OpPartition, Groups: e.Partition, Event: i})
			if e.HealAfter > 0 {
				out = append(out, Action{At: e.At + e.HealAfter, Op: OpHeal, Groups: e.Partition, Event: i})
			}
		case e.Pause != "":
			out = append(out, Action{At: e.At, Op: OpPause, Node: e.Pause, Event: i})
			out = append(out, Action{At: e.At + e.For, Op: OpResume, Node: e.Pause, Event: i})
		case e.Flood != "":
			conns := e.Conns
			if conns == 0 {
				conns = DefaultFloodConns
			}
			out = append(out, Action{At: e.At, Op: OpFlood, Node: e.Flood, Conns: conns, Event: i})
			out = append(out, Action{At: e.At + e.For, Op: OpUnflood, Node: e.Flood, Event: i})
		case e.DiskFull != "":
			out = append(out, Action{At: e.At, Op: OpDiskFull, Node: e.DiskFull, Event: i})
			out = append(out, Action{At: e.At + e.For, Op: OpDiskFree, Node: e.DiskFull, Event: i})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].At < out[b].At })
	return out
}

// String describes the event as the report lists it, such as "kill node-2".
func (e Event) String() string {
	switch {
	case e.Network != nil:
		return "network change"
	case e.Kill != "":
		if e.RestartAfter > 0 {
			return fmt.Sprintf("kill %s, restart after %s", e.Kill, e.RestartAfter)
		}
		return "kill " + e.Kill
	case len(e.Partition) > 0:
		a := Action{Op: OpPartition, Groups: e.Partition}.String()
		if e.HealAfter > 0 {
			a += fmt.Sprintf(", heal after %s", e.HealAfter)
		}
		return a
	case e.Pause != "":
		return fmt.Sprintf("pause %s for %s", e.Pause, e.For)
	case e.Flood != "":
		conns := e.Conns
		if conns == 0 {
			conns = DefaultFloodConns
		}
		return fmt.Sprintf("flood %s's API with %d connections for %s", e.Flood, conns, e.For)
	case e.DiskFull != "":
		return fmt.Sprintf("fill %s's disk for %s", e.DiskFull, e.For)
	}
	return "nothing"
}
