package reports

// Calibration names the calibration a simulated run priced its operations
// with (rustorium simulate --calib): the file and the machine measured.
type Calibration struct {
	File      string `json:"file"`
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go_version"`
	Quick     bool   `json:"quick,omitempty"`
}

// Simulation is what a simulated run adds: how the cluster was modelled,
// how busy each resource was over the measured phase, and the bottleneck.
type Simulation struct {
	// Host is "dedicated" (every node and broker machine its own cores and
	// disk) or "shared" (everything on one machine of the calibration's
	// cores, as rustorium run on it).
	Host         string `json:"host"`
	CoresPerNode int    `json:"cores_per_node"`
	Brokers      int    `json:"brokers"`
	// Finality is "consensus" (the node's own Finality tracker, signatures
	// included) or "count" (its honest-vote equivalent, for large
	// clusters).
	Finality string `json:"finality"`
	// VirtualS is the simulated time, warmup and drain included; Events
	// the discrete events run; WallS the wall-clock seconds it took (the
	// one field that differs between two runs of the same inputs).
	VirtualS float64 `json:"virtual_s"`
	Events   uint64  `json:"events"`
	WallS    float64 `json:"wall_s"`
	// Blocks and BlockMeanTxs: blocks published and their mean size.
	Blocks       int64   `json:"blocks"`
	BlockMeanTxs float64 `json:"block_mean_txs"`
	// Utilisation is, per resource (node-N, node-N disk, broker-N, …, or
	// host), the share of its capacity each operation used over the
	// measured phase, and "total".
	Utilisation map[string]map[string]float64 `json:"utilisation"`
	// Bottleneck is the resource with the highest total utilisation.
	Bottleneck *Bottleneck `json:"bottleneck,omitempty"`
}

// Bottleneck names the busiest resource of a simulated run.
type Bottleneck struct {
	Resource    string  `json:"resource"`
	Utilisation float64 `json:"utilisation"`
	// Operation is the operation that used most of it.
	Operation string `json:"operation"`
}
