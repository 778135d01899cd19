package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/worker"
)

// moduleRunning returns how many non-finished instances `modules list`
// reports on digest.
func moduleRunning(t *testing.T, e *env, digest string) int64 {
	t.Helper()
	ov, err := e.client.ListModules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ov.Modules {
		if m.Digest == digest {
			return m.Running
		}
	}
	t.Fatalf("module %s not listed: %+v", digest, ov.Modules)
	return 0
}

func appDigest(t *testing.T, e *env, app string) string {
	t.Helper()
	rec, err := e.store.GetApp(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Digest
}

// TestVersions is issue 5's scenario: 50 instances of an app wait for an
// event; a changed version of the app is deployed; the 50 finish on their
// old module with the old behaviour while new instances run the new one.
// The old module cannot be removed while they run, and can once they have
// finished.
func TestVersions(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url)
		e.deploy("versioned", buildGuest(t, "testdata/guests/version_v1"))
		v1 := appDigest(t, e, "versioned")
		e.worker(worker.Options{})
		const n = 50
		for i := 0; i < n; i++ {
			e.start("Versioned", fmt.Sprintf("old-%02d", i), "")
		}
		for i := 0; i < n; i++ {
			e.waitStatus(fmt.Sprintf("old-%02d", i), abi.StatusRunning, 20*time.Second)
		}

		e.deploy("versioned", buildGuest(t, "testdata/guests/version_v2"))
		v2 := appDigest(t, e, "versioned")
		if v2 == v1 {
			t.Fatal("v1 and v2 have the same digest")
		}
		for i := 0; i < 5; i++ {
			e.start("Versioned", fmt.Sprintf("new-%d", i), "")
		}
		if got := moduleRunning(t, e, v1); got != n {
			t.Errorf("v1 runs %d instances, want %d", got, n)
		}
		if got := moduleRunning(t, e, v2); got != 5 {
			t.Errorf("v2 runs %d instances, want 5", got)
		}
		_, err := e.client.RemoveModule(ctx, v1, false)
		if !errors.Is(err, host.ErrModuleInUse) || !strings.Contains(err.Error(), "50 non-finished") {
			t.Errorf("removing v1 while its instances run: %v", err)
		}
		if _, err := e.client.RemoveModule(ctx, "versioned", false); !errors.Is(err, host.ErrModuleInUse) {
			t.Errorf("removing the app while its instances run: %v", err)
		}

		ids := []string{}
		for i := 0; i < n; i++ {
			ids = append(ids, fmt.Sprintf("old-%02d", i))
		}
		for i := 0; i < 5; i++ {
			ids = append(ids, fmt.Sprintf("new-%d", i))
		}
		for _, id := range ids {
			if err := e.client.RaiseEvent(ctx, id, "go", ""); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range ids {
			st := e.wait(id, 30*time.Second)
			want, digest := `"v1/v1"`, v1
			if strings.HasPrefix(id, "new-") {
				want, digest = `"v2/v2"`, v2
			}
			if st.Status != abi.StatusCompleted || st.Output != want || st.Digest != digest {
				t.Errorf("%s: %s %s on %s (failure %v), want %s on %s", id, st.Status, st.Output, st.Digest, st.Failure, want, digest)
			}
		}
		if got := moduleRunning(t, e, v1); got != 0 {
			t.Errorf("v1 still runs %d instances", got)
		}
		if res, err := e.client.RemoveModule(ctx, v1[:len("sha256:")+12], false); err != nil || !res.ModuleRemoved || res.Digest != v1 {
			t.Errorf("removing finished v1 by prefix: %+v, %v", res, err)
		}
		if _, err := e.store.GetModule(ctx, v1); !errors.Is(err, host.ErrModuleNotFound) {
			t.Errorf("v1 still stored: %v", err)
		}
	})
}

// TestMigrate moves waiting v1 instances to v2 with MigrateApp: the moved
// ones finish with v2's behaviour and record the move in history, the one
// left out finishes on v1.
func TestMigrate(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url)
		e.deploy("versioned", buildGuest(t, "testdata/guests/version_v1"))
		v1 := appDigest(t, e, "versioned")
		e.worker(worker.Options{})
		for _, id := range []string{"m1", "m2", "m3", "stay"} {
			e.start("Versioned", id, "")
		}
		for _, id := range []string{"m1", "m2", "m3", "stay"} {
			e.waitStatus(id, abi.StatusRunning, 20*time.Second)
		}
		e.deploy("versioned", buildGuest(t, "testdata/guests/version_v2"))
		v2 := appDigest(t, e, "versioned")

		dry, err := e.client.MigrateApp(ctx, client.MigrateOptions{App: "versioned", DryRun: true})
		if err != nil || len(dry.Instances) != 4 || dry.To != v2 {
			t.Fatalf("dry run: %+v, %v", dry, err)
		}
		if st, _ := e.client.GetStatus(ctx, "m1"); st.Digest != v1 {
			t.Fatalf("dry run moved m1 to %s", st.Digest)
		}
		res, err := e.client.MigrateApp(ctx, client.MigrateOptions{App: "versioned", InstanceIDs: []string{"m1", "m2", "nope"}})
		if err != nil || len(res.Instances) != 3 || res.Instances[2].Skipped != "not found" || res.Instances[0].Skipped != "" {
			t.Fatalf("migrate: %+v, %v", res, err)
		}
		// Migrate (one instance) to an explicit digest.
		if err := e.client.Migrate(ctx, "m3", v2); err != nil {
			t.Fatal(err)
		}
		if err := e.client.Migrate(ctx, "m3", "sha256:none"); !errors.Is(err, host.ErrModuleNotFound) {
			t.Errorf("migrate to a missing module: %v", err)
		}
		for _, id := range []string{"m1", "m2", "m3"} {
			deadline := time.Now().Add(20 * time.Second)
			for {
				st, _ := e.client.GetStatus(ctx, id)
				if st.Digest == v2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s never moved to v2: %+v", id, st)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		for _, id := range []string{"m1", "m2", "m3", "stay"} {
			if err := e.client.RaiseEvent(ctx, id, "go", ""); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"m1", "m2", "m3"} {
			st := e.wait(id, 20*time.Second)
			if st.Status != abi.StatusCompleted || st.Output != `"v2/v2"` || st.Digest != v2 {
				t.Errorf("%s: %s %s on %s %v", id, st.Status, st.Output, st.Digest, st.Failure)
			}
			h, _ := e.client.GetHistory(ctx, id)
			found := false
			for _, ev := range h {
				if ev.Type == abi.EventGenericEvent && ev.Name == host.MigrateEventName && strings.Contains(ev.Input, v1) && strings.Contains(ev.Input, v2) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: history does not record the migration: %+v", id, h)
			}
		}
		if st := e.wait("stay", 20*time.Second); st.Output != `"v1/v1"` || st.Digest != v1 {
			t.Errorf("stay: %s on %s", st.Output, st.Digest)
		}
		// Finished instances are not migrated.
		res, err = e.client.MigrateApp(ctx, client.MigrateOptions{App: "versioned", To: v1, InstanceIDs: []string{"m1"}})
		if err != nil || len(res.Instances) != 1 || !strings.HasPrefix(res.Instances[0].Skipped, "finished") {
			t.Errorf("migrating a finished instance: %+v, %v", res, err)
		}
	})
}
