package main

import (
	"context"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
)

// controlEntries counts the entries of every control stream of the default hub.
func controlEntries(t *testing.T, m *miniredis.Miniredis) int {
	t.Helper()
	n := 0
	for _, k := range m.Keys() {
		if strings.HasPrefix(k, "dw:{DurableFunctionsHub:") && strings.HasSuffix(k, "}:ctl") {
			s, err := m.Stream(k)
			if err != nil {
				t.Fatal(err)
			}
			n += len(s)
		}
	}
	return n
}

// TestIdempotencyKeyFlag: a command run again with the same
// --idempotency-key is applied once; a bad key is a usage error.
func TestIdempotencyKeyFlag(t *testing.T) {
	m := miniredis.RunT(t)
	url := "redis://" + m.Addr()
	ctx := context.Background()
	deploySamples(t, url)
	// No worker runs: what is queued stays in the control streams.
	for i := 0; i < 2; i++ {
		if out, errs, code := runCLI(ctx, "start-new", "--function-name", "Counter", "--id", "c1", "--input", "0",
			"--idempotency-key", "start-c1", "--redis-url", url); code != 0 {
			t.Fatalf("start-new #%d: %d %s %s", i+1, code, out, errs)
		}
	}
	for i := 0; i < 3; i++ {
		if _, errs, code := runCLI(ctx, "raise-event", "--id", "c1", "--event-name", "operation", "--event-data", "incr",
			"--idempotency-key", "incr-1", "--redis-url", url); code != 0 {
			t.Fatalf("raise-event #%d: %d %s", i+1, code, errs)
		}
	}
	if n := controlEntries(t, m); n != 2 {
		t.Fatalf("%d control messages queued, want 2 (one start, one event)", n)
	}
	if _, errs, code := runCLI(ctx, "raise-event", "--id", "c1", "--event-name", "operation", "--event-data", "decr",
		"--idempotency-key", "incr-1", "--redis-url", url); code != 1 || !strings.Contains(errs, "already used") {
		t.Fatalf("the key with other data: %d %s", code, errs)
	}
	if _, errs, code := runCLI(ctx, "raise-event", "--id", "c1", "--event-name", "operation", "--event-data", "incr",
		"--idempotency-key", "has space", "--redis-url", url); code != 2 || !strings.Contains(errs, "--idempotency-key") {
		t.Fatalf("a bad key: %d %s", code, errs)
	}
	if n := controlEntries(t, m); n != 2 {
		t.Fatalf("%d control messages queued after refused commands, want 2", n)
	}
}
