// Package sim is rustorium simulate: a scenario run in virtual time on a
// seeded discrete-event scheduler (sim/des), with the node's own
// deterministic protocol code (consensus.Cutter, consensus.Finality,
// ordering.ShardOf, loadgen's pacers and keys) and every operation priced
// from a calibration (package calib). Nodes are sets of cores, broker
// machines and disks are servers, links follow the scenario's network, and
// the timeline's events act at their times. The embedded broker is
// modelled as kfake's one request loop (embedded.go). Transactions move one
// at a time (tx mode) or, for open loops at high rates, in cohorts
// (cohort.go; scenario simulation.mode). Run gives the same result for the
// same scenario, seed and calibration; RunSweep runs a scenario's sweep and
// fits the Universal Scalability Law; Compare puts a simulation beside a
// real run (make validate-sim). See docs/DESIGN.md, Simulation.
package sim
