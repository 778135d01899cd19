package benchwork

import "testing"

func TestComputeIsDeterministic(t *testing.T) {
	if a, b := Compute(3), Compute(3); a != b {
		t.Fatalf("Compute(3) gave %d then %d", a, b)
	}
	if Compute(3) == Compute(4) {
		t.Fatal("Compute(3) == Compute(4)")
	}
}

func BenchmarkCompute(b *testing.B) {
	for b.Loop() {
		Compute(Iterations)
	}
}
