// Command compute is a benchmark guest without the SDK: its export
// "compute" runs the CPU-bound workload of package work, which
// BenchmarkCompute also runs natively, to compare the guest's compute speed
// (compiled, instrumented or not) with native Go's.
package main

import "github.com/durablewasm/durablewasm/host/sandbox/testdata/guests/compute/work"

//go:wasmexport compute
func compute(kind int32, seed uint64, n int32) uint64 {
	return work.Run(int(kind), seed, int(n))
}

func main() {}
