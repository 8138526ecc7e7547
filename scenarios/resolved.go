package scenarios

// Resolved returns a deep copy of s with every default filled in: the form
// recorded in result.json, serialisable with encoding/json (durations, rates
// and percentages appear as they are written in scenario files).
func (s *Scenario) Resolved() *Scenario {
	c := s.Clone()
	c.EnsureDefaults()
	return c
}

// Clone returns a deep copy of s.
func (s *Scenario) Clone() *Scenario {
	c := *s
	c.lines = make(map[string]int, len(s.lines))
	for k, v := range s.lines {
		c.lines[k] = v
	}
	c.Cluster.Broker.Addrs = cloneSlice(s.Cluster.Broker.Addrs)
	if s.Cluster.Storage.Sync != nil {
		v := *s.Cluster.Storage.Sync
		c.Cluster.Storage.Sync = &v
	}
	c.Network = s.Network.clone()
	c.Workload = cloneSlice(s.Workload)
	for i := range c.Workload {
		w := &c.Workload[i]
		w.Ramp = clonePtr(w.Ramp)
		w.MaxRate = clonePtr(w.MaxRate)
		w.VerifyProofs = clonePtr(w.VerifyProofs)
	}
	c.Simulation = clonePtr(s.Simulation)
	c.Timeline = cloneSlice(s.Timeline)
	for i := range c.Timeline {
		e := &c.Timeline[i]
		if e.Network != nil {
			n := e.Network.clone()
			e.Network = &n
		}
		if e.Partition != nil {
			groups := make([][]string, len(e.Partition))
			for j, g := range e.Partition {
				groups[j] = cloneSlice(g)
			}
			e.Partition = groups
		}
	}
	c.SLO = cloneSlice(s.SLO)
	c.Report.Formats = cloneSlice(s.Report.Formats)
	c.Report.Profile = cloneSlice(s.Report.Profile)
	return &c
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
