package worker

import (
	"hash/fnv"
	"sort"
)

// assignPartitions returns the owner of each of n partitions among the live
// workers (live[i] ids, in any order; the result is the same for every
// order, so every worker computes the same assignment from the same live
// set).
//
// Every worker owns ⌊n/W⌋ or ⌈n/W⌉ partitions: the n mod W workers ranked
// first by a hash of their id may own one more. Within those capacities each
// partition goes to the worker that scores it highest (rendezvous hashing
// with bounded loads): the (partition, worker) pairs are taken in descending
// order of a well-mixed score, and a pair is kept when the partition has no
// owner yet and the worker has room. A join or a leave moves about n/W
// partitions, the ones whose preferred worker changed and the few that the
// capacities push on. The score is splitmix64 over the worker id's FNV hash
// and the partition: FNV's high bits barely depend on a trailing partition
// number, which put every partition on one worker half the time.
func assignPartitions(live []string, n int) []string {
	out := make([]string, n)
	w := len(live)
	if w == 0 || n == 0 {
		return out
	}
	ids := append([]string(nil), live...)
	sort.Strings(ids)
	seeds := make([]uint64, w)
	for i, id := range ids {
		h := fnv.New64a()
		h.Write([]byte(id))
		seeds[i] = mix64(h.Sum64())
	}
	// Capacities: ⌊n/w⌋ each, one more for the first n mod w by rank.
	rank, rankKey := make([]int, w), make([]uint64, w)
	for i := range rank {
		rank[i], rankKey[i] = i, mix64(seeds[i]^0xd1b54a32d192ed03)
	}
	sort.Slice(rank, func(a, b int) bool {
		if ka, kb := rankKey[rank[a]], rankKey[rank[b]]; ka != kb {
			return ka > kb
		}
		return ids[rank[a]] < ids[rank[b]]
	})
	room := make([]int, w)
	for k, i := range rank {
		room[i] = n / w
		if k < n%w {
			room[i]++
		}
	}
	type pair struct {
		score uint64
		p, i  int
	}
	pairs := make([]pair, 0, n*w)
	for p := 0; p < n; p++ {
		for i := range ids {
			pairs = append(pairs, pair{mix64(seeds[i] ^ (uint64(p)+1)*0x9e3779b97f4a7c15), p, i})
		}
	}
	sort.Slice(pairs, func(a, b int) bool {
		if pairs[a].score != pairs[b].score {
			return pairs[a].score > pairs[b].score
		}
		if pairs[a].p != pairs[b].p {
			return pairs[a].p < pairs[b].p
		}
		return pairs[a].i < pairs[b].i
	})
	left := n
	for _, pr := range pairs {
		if out[pr.p] != "" || room[pr.i] == 0 {
			continue
		}
		out[pr.p], room[pr.i] = ids[pr.i], room[pr.i]-1
		if left--; left == 0 {
			break
		}
	}
	return out
}

// mix64 is splitmix64's finalizer: every input bit affects every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
