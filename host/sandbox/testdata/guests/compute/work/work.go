// Package work is the CPU-bound workload of the compute test guest, shared
// with the native benchmark it is compared against (BenchmarkCompute): a
// few milliseconds of ordinary Go of one kind.
package work

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// The kinds of work Run does.
const (
	Mixed   = iota // all of the below
	Strings        // string building and formatting, map inserts and lookups
	Sort           // sorting strings and integers
	Hash           // SHA-256 and FNV-1a
	Sieve          // a tight integer loop (sieve of Eratosthenes)
	Kinds          // the number of kinds
)

// Names are the kinds' names, indexed by kind.
var Names = [Kinds]string{"mixed", "strings", "sort", "hash", "sieve"}

// Run does n rounds of work of kind for seed and returns a checksum.
func Run(kind int, seed uint64, n int) uint64 {
	var sum uint64
	for i := 0; i < n; i++ {
		sum = sum*31 + once(kind, seed+uint64(i))
	}
	return sum
}

const keys = 4000

func once(kind int, seed uint64) uint64 {
	x := seed | 1
	next := func() uint64 { // xorshift64
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return x
	}
	switch kind {
	case Strings:
		var s uint64
		for r := 0; r < 3; r++ {
			s += uint64(len(count(next)))
		}
		return s
	case Sort:
		names := make([]string, 0, keys)
		vals := make([]uint64, keys*4)
		for i := range vals {
			vals[i] = next()
		}
		for i := 0; i < keys; i++ {
			names = append(names, strconv.FormatUint(vals[i], 36))
		}
		slices.Sort(names)
		slices.Sort(vals)
		return vals[len(vals)/2] ^ uint64(len(names[0]))
	case Hash:
		buf := make([]byte, 64<<10)
		for i := range buf {
			buf[i] = byte(next())
		}
		h := sha256.Sum256(buf)
		f := fnv.New64a()
		for r := 0; r < 4; r++ {
			f.Write(buf)
		}
		return binary.LittleEndian.Uint64(h[:]) ^ f.Sum64()
	case Sieve:
		const n = 1 << 20
		composite := make([]bool, n)
		primes := uint64(0)
		for i := 2; i < n; i++ {
			if composite[i] {
				continue
			}
			primes += uint64(i)
			for j := i * 2; j < n; j += i {
				composite[j] = true
			}
		}
		return primes ^ seed
	}
	counts := count(next)
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	slices.Sort(names)
	vals := make([]uint64, len(names))
	for i, k := range names {
		vals[i] = uint64(counts[k])*next() ^ uint64(len(k))
	}
	slices.Sort(vals)
	h := sha256.New()
	f := fnv.New64a()
	var buf [8]byte
	for i, k := range names {
		h.Write([]byte(k))
		binary.LittleEndian.PutUint64(buf[:], vals[i])
		h.Write(buf[:])
		f.Write([]byte(k))
	}
	d := h.Sum(nil)
	return binary.LittleEndian.Uint64(d) ^ f.Sum64()
}

// count builds keys strings and counts them in a map.
func count(next func() uint64) map[string]int {
	counts := make(map[string]int, keys/2)
	var b strings.Builder
	for i := 0; i < keys; i++ {
		b.Reset()
		b.WriteString("key-")
		b.WriteString(strconv.FormatUint(next()%(keys/2), 36))
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(i % 7))
		counts[b.String()]++
	}
	return counts
}
