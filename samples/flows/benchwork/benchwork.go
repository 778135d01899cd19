// Package benchwork is the compute of the benchmark's cpu workload: plain Go
// with no assembly and no build tags, so that the samples guest (its
// activity Bench_Compute, compiled to WebAssembly) and go-workflows' activity
// in bench/ (compiled natively) run the same code.
package benchwork

import "slices"

// Iterations is the input the benchmark passes to Compute: about 5 ms of
// work natively on the benchmark machine (2.1 GHz AMD EPYC, go1.26).
const Iterations = 190

// blockLen is the number of values one iteration generates and sorts.
const blockLen = 512

// Compute runs iterations rounds of the same work: generate blockLen
// pseudo-random 32-bit values (xorshift32, seeded by the round), sort them
// and fold the sorted values into an FNV-1a hash. It returns the hash, which
// depends only on iterations.
func Compute(iterations int) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	block := make([]uint32, blockLen)
	for r := 0; r < iterations; r++ {
		x := uint32(r)*2654435761 + 1
		for i := range block {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			block[i] = x
		}
		slices.Sort(block)
		for _, v := range block {
			for k := 0; k < 4; k++ {
				h ^= uint64(byte(v >> (8 * k)))
				h *= prime
			}
		}
	}
	return h
}
