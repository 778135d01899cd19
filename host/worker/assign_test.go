package worker

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestAssignmentIsBalanced: with W live workers and P partitions every
// worker owns ⌊P/W⌋ or ⌈P/W⌉, whatever the ids (W 1..64, P 1..1,024), and
// the assignment does not depend on the order of the live list.
func TestAssignmentIsBalanced(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 150; trial++ {
		w := 1 + r.IntN(64)
		n := 1 + r.IntN(1024)
		if trial < 40 {
			w, n = 2, 16 // the report: two workers, 16 partitions
		}
		live := workerIDs(r, w)
		got := assignPartitions(live, n)
		counts := map[string]int{}
		for p, owner := range got {
			if owner == "" {
				t.Fatalf("W=%d P=%d: partition %d has no owner", w, n, p)
			}
			counts[owner]++
		}
		for _, id := range live {
			if c := counts[id]; c != n/w && c != (n+w-1)/w {
				t.Fatalf("W=%d P=%d: worker %s owns %d partitions, want %d or %d", w, n, id, c, n/w, (n+w-1)/w)
			}
		}
		shuffled := append([]string(nil), live...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again := assignPartitions(shuffled, n)
		for p := range got {
			if got[p] != again[p] {
				t.Fatalf("W=%d P=%d: the assignment depends on the order of the live list", w, n)
			}
		}
	}
}

// TestAssignmentMovesLittle: a join moves at most about P/(W+1) partitions
// (those the new worker takes, plus a few the capacities push on), and a
// leave moves the leaver's partitions and a few more.
func TestAssignmentMovesLittle(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	worst := 0.0
	for trial := 0; trial < 200; trial++ {
		w := 1 + r.IntN(32)
		n := 16 + r.IntN(1009)
		live := workerIDs(r, w+1)
		before := assignPartitions(live[:w], n)
		after := assignPartitions(live, n)
		moved := 0
		for p := range before {
			if before[p] != after[p] {
				moved++
			}
		}
		must := n / (w + 1)
		if moved > 2*((n+w)/(w+1))+w {
			t.Fatalf("W=%d→%d P=%d: a join moved %d partitions; the new worker takes about %d", w, w+1, n, moved, must)
		}
		if must > 0 {
			worst = max(worst, float64(moved)/float64(must))
		}
	}
	t.Logf("figures: a join moved at most %.2f× the partitions the new worker takes", worst)
}

func workerIDs(r *rand.Rand, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("host-%d-%d-%06x", r.IntN(100), 1000+r.IntN(60000), r.IntN(1<<24))
	}
	return ids
}
