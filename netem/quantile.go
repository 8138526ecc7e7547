package netem

// JitterQuantile returns the standardized jitter t for a uniform draw u in
// [0, 1] under distribution d: the delay of a packet is Delay + t·Jitter.
// It is the emulator's own shaping (tc's tables, cut at ±4), exported for
// the simulator (package sim), which draws delays the same way.
func JitterQuantile(d Distribution, u float64) float64 { return quantile(d, u) }
