// Package cpuclock reads this process's CPU time, for measurements that
// must not be stretched by other processes' load as wall time is on a
// shared machine: the calibration's and the node bound's operation costs,
// and the CPU a benchmark's operation costs.
package cpuclock
