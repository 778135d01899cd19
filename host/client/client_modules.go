package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// Module management, migration and dead letters: the client side of
// `durablewasm modules`, `durablewasm migrate` and `durablewasm
// dead-letters`.

// AppSummary describes one deployed app.
type AppSummary struct {
	Name          string    `json:"name"`
	Digest        string    `json:"digest"`
	Orchestrators int       `json:"orchestrators"`
	Activities    int       `json:"activities"`
	DeployedAt    time.Time `json:"deployedAt"`
}

// ModuleSummary describes one stored module.
type ModuleSummary struct {
	Digest   string    `json:"digest"`
	Size     int64     `json:"size"`
	StoredAt time.Time `json:"storedAt,omitzero"`
	// Apps are the apps pointing at it (their current module).
	Apps []string `json:"apps"`
	// Running is how many non-finished instances run on it.
	Running int64 `json:"running"`
}

// ModulesOverview is what `durablewasm modules list` shows.
type ModulesOverview struct {
	Apps    []AppSummary    `json:"apps"`
	Modules []ModuleSummary `json:"modules"`
}

// ListModules returns every app and every stored module, with the apps
// pointing at each module and the number of non-finished instances on it.
func (c *Client) ListModules(ctx context.Context) (*ModulesOverview, error) {
	apps, err := c.store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	mods, err := c.store.ListModules(ctx)
	if err != nil {
		return nil, err
	}
	out := &ModulesOverview{Apps: []AppSummary{}, Modules: []ModuleSummary{}}
	users := map[string][]string{}
	for _, a := range apps {
		s := AppSummary{Name: a.Name, Digest: a.Digest, DeployedAt: a.DeployedAt}
		for _, f := range a.Functions {
			if f.Kind == abi.KindOrchestrator {
				s.Orchestrators++
			} else {
				s.Activities++
			}
		}
		out.Apps = append(out.Apps, s)
		users[a.Digest] = append(users[a.Digest], a.Name)
	}
	for _, m := range mods {
		n, err := c.store.CountDigestInstances(ctx, m.Digest)
		if err != nil {
			return nil, err
		}
		apps := users[m.Digest]
		if apps == nil {
			apps = []string{}
		}
		out.Modules = append(out.Modules, ModuleSummary{Digest: m.Digest, Size: m.Size, StoredAt: m.StoredAt, Apps: apps, Running: n})
	}
	return out, nil
}

// ModuleDetails is what `durablewasm modules show` shows.
type ModuleDetails struct {
	// App is set when the module was named by an app.
	App      string    `json:"app,omitempty"`
	Digest   string    `json:"digest"`
	Size     int64     `json:"size"`
	StoredAt time.Time `json:"storedAt,omitzero"`
	Apps     []string  `json:"apps"`
	// Functions are the module's functions, known when an app points at it
	// (nil otherwise: the store keeps functions in app records).
	Functions []host.FunctionInfo `json:"functions"`
	Settings  host.AppSettings    `json:"settings"`
	// Instances counts the instances on the module by status: the
	// non-finished ones always (from the digest index); the finished ones
	// only when asked to scan (FinishedCounted).
	Instances       map[abi.RuntimeStatus]int64 `json:"instances"`
	FinishedCounted bool                        `json:"finishedCounted"`
}

// ResolveModule resolves APP|DIGEST: an app name (its current module), a
// full digest, or an unambiguous prefix of one ("sha256:" may be left out)
// of at least 8 hex digits. It returns the app record (nil for a digest)
// and the stored module. ErrModuleNotFound when nothing matches,
// ErrInvalidInput when a prefix is ambiguous.
func (c *Client) ResolveModule(ctx context.Context, ref string) (*host.AppRecord, *host.StoredModule, error) {
	mods, err := c.store.ListModules(ctx)
	if err != nil {
		return nil, nil, err
	}
	find := func(d string) *host.StoredModule {
		for i := range mods {
			if mods[i].Digest == d {
				return &mods[i]
			}
		}
		return nil
	}
	if app, err := c.store.GetApp(ctx, ref); err == nil {
		m := find(app.Digest)
		if m == nil {
			return nil, nil, fmt.Errorf("app %s points at module %s, which is not stored: %w", ref, app.Digest, host.ErrModuleNotFound)
		}
		return app, m, nil
	} else if !errors.Is(err, host.ErrModuleNotFound) {
		return nil, nil, err
	}
	if m := find(ref); m != nil {
		return nil, m, nil
	}
	hexPart := strings.TrimPrefix(ref, "sha256:")
	if len(hexPart) >= 8 {
		var hits []*host.StoredModule
		for i := range mods {
			if strings.HasPrefix(strings.TrimPrefix(mods[i].Digest, "sha256:"), hexPart) {
				hits = append(hits, &mods[i])
			}
		}
		if len(hits) == 1 {
			return nil, hits[0], nil
		}
		if len(hits) > 1 {
			return nil, nil, fmt.Errorf("%w: %q matches %d modules; give more digits", host.ErrInvalidInput, ref, len(hits))
		}
	}
	return nil, nil, fmt.Errorf("no app or stored module %q (see `durablewasm modules list`): %w", ref, host.ErrModuleNotFound)
}

// ShowModule describes an app's current module or a stored module (see
// ResolveModule). With scanFinished it also counts the finished instances
// on it, by paging through every finished instance of the hub (there is no
// digest index of finished instances).
func (c *Client) ShowModule(ctx context.Context, ref string, scanFinished bool) (*ModuleDetails, error) {
	app, m, err := c.ResolveModule(ctx, ref)
	if err != nil {
		return nil, err
	}
	d := &ModuleDetails{Digest: m.Digest, Size: m.Size, StoredAt: m.StoredAt, Apps: []string{}, Instances: map[abi.RuntimeStatus]int64{}}
	if app != nil {
		d.App = app.Name
	}
	apps, err := c.store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		if a.Digest == m.Digest {
			d.Apps = append(d.Apps, a.Name)
			if d.Functions == nil {
				d.Functions = append([]host.FunctionInfo{}, a.Functions...)
			}
		}
	}
	st, err := c.store.GetModuleSettings(ctx, m.Digest)
	if err != nil {
		return nil, err
	}
	d.Settings = *st
	ids, err := c.store.DigestInstances(ctx, m.Digest, 0)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		inst, err := c.store.GetInstance(ctx, id)
		if errors.Is(err, host.ErrInstanceNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if inst.Digest == m.Digest && !inst.Status.Terminal() {
			d.Instances[inst.Status]++
		}
	}
	if scanFinished {
		var q host.InstanceQuery
		for _, s := range abi.AllStatuses {
			if s.Terminal() {
				q.Statuses = append(q.Statuses, s)
			}
		}
		q.PageSize = 1000
		for {
			page, err := c.store.QueryInstances(ctx, q)
			if err != nil {
				return nil, err
			}
			for _, inst := range page.Instances {
				if inst.Digest == m.Digest {
					d.Instances[inst.Status]++
				}
			}
			if page.ContinuationToken == "" {
				break
			}
			q.ContinuationToken = page.ContinuationToken
		}
		d.FinishedCounted = true
	}
	return d, nil
}

// RemoveResult reports a removal.
type RemoveResult struct {
	// App is the removed app ("" when a digest was removed).
	App    string `json:"app,omitempty"`
	Digest string `json:"digest"`
	// ModuleRemoved reports whether the module's bytes and settings were
	// removed (an app's module is kept while another app points at it, or
	// with keepModule).
	ModuleRemoved bool `json:"moduleRemoved"`
}

// RemoveModule removes an app (see ResolveModule: an app name) or a stored
// module (a digest).
//
// An app is refused with ErrModuleInUse while non-finished instances run on
// its current module; otherwise its record and function mappings are
// removed (new instances of its orchestrators can no longer start) and,
// unless keepModule or another app points at it, the module too. Instances
// still running on older modules of the app are not counted: they keep
// running on those (see `modules list`).
//
// A digest is refused with ErrModuleInUse while an app points at it or
// non-finished instances run on it.
//
// The instance check and the removal are two steps: an instance started in
// between (on an app being removed) finds its module gone and cannot run.
func (c *Client) RemoveModule(ctx context.Context, ref string, keepModule bool) (*RemoveResult, error) {
	app, m, err := c.ResolveModule(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("remove %s: %w", ref, err)
	}
	running, err := c.store.CountDigestInstances(ctx, m.Digest)
	if err != nil {
		return nil, fmt.Errorf("remove %s: %w", ref, err)
	}
	if app != nil {
		if running > 0 {
			return nil, fmt.Errorf("remove app %s: %w: %d non-finished instance(s) run on its module %s; wait for them to finish, terminate them, or deploy a new version and move them with `durablewasm migrate --app %s`",
				app.Name, host.ErrModuleInUse, running, m.Digest, app.Name)
		}
		c.forgetFunctions()
		removed, err := c.store.RemoveApp(ctx, app.Name, app.Digest, !keepModule)
		if err != nil {
			return nil, err
		}
		return &RemoveResult{App: app.Name, Digest: m.Digest, ModuleRemoved: removed}, nil
	}
	apps, err := c.store.ListApps(ctx)
	if err != nil {
		return nil, fmt.Errorf("remove %s: %w", ref, err)
	}
	var users []string
	for _, a := range apps {
		if a.Digest == m.Digest {
			users = append(users, a.Name)
		}
	}
	if len(users) > 0 || running > 0 {
		var why []string
		if len(users) > 0 {
			why = append(why, fmt.Sprintf("app(s) %s point at it (deploy another version, or remove the app with `durablewasm modules remove %s`)", strings.Join(users, ", "), users[0]))
		}
		if running > 0 {
			why = append(why, fmt.Sprintf("%d non-finished instance(s) run on it (wait for them, terminate them, or move them with `durablewasm migrate --app APP`)", running))
		}
		return nil, fmt.Errorf("remove module %s: %w: %s", m.Digest, host.ErrModuleInUse, strings.Join(why, "; "))
	}
	if err := c.store.RemoveModule(ctx, m.Digest); err != nil {
		return nil, err
	}
	return &RemoveResult{Digest: m.Digest, ModuleRemoved: true}, nil
}

// Migrate asks the worker owning instanceID to move it to the module
// toDigest: the worker drops its warm state, replays the history on the new
// module and records the move in history (a GenericEvent named
// MigrateEventName). If the new module does not replay the history (the
// orchestrator changed incompatibly), the instance fails with a
// nondeterminism failure (code DW100x). Errors: ErrModuleNotFound (no such
// stored module), ErrInstanceNotFound, ErrInstanceFinished.
func (c *Client) Migrate(ctx context.Context, instanceID, toDigest string) error {
	if _, err := c.store.GetModule(ctx, toDigest); err != nil {
		return fmt.Errorf("migrate %s: %w", instanceID, err)
	}
	return c.sendMigrate(ctx, instanceID, toDigest)
}

func (c *Client) sendMigrate(ctx context.Context, instanceID, toDigest string) error {
	in, _ := json.Marshal(toDigest)
	return c.send(ctx, instanceID, abi.HistoryEvent{Type: abi.EventGenericEvent, Name: host.MigrateEventName, Input: string(in)}, "migrate")
}

// MigrateOptions select the instances MigrateApp moves.
type MigrateOptions struct {
	// App is the app whose instances move (required).
	App string
	// To is the target digest (or a prefix, see ResolveModule); "" means
	// the app's current module.
	To string
	// InstanceIDs limits the move to these instances; empty means every
	// non-finished instance of the app that runs on another module.
	InstanceIDs []string
	// DryRun reports what would move without sending anything.
	DryRun bool
}

// MigratedInstance is one instance MigrateApp considered.
type MigratedInstance struct {
	InstanceID string            `json:"instanceId"`
	Name       string            `json:"name"`
	Status     abi.RuntimeStatus `json:"status"`
	From       string            `json:"from"`
	// Skipped says why the instance was not moved ("" when it was, or
	// would be in a dry run).
	Skipped string `json:"skipped,omitempty"`
}

// MigrateResult reports a migration.
type MigrateResult struct {
	App       string             `json:"app"`
	To        string             `json:"to"`
	DryRun    bool               `json:"dryRun"`
	Instances []MigratedInstance `json:"instances"`
}

// MigrateApp moves the non-finished instances of an app to its current
// module or to o.To (which must be stored), sending each a migration
// message (see Migrate). Without o.InstanceIDs it finds them through the
// digest index of every stored module other than the target, so the cost is
// proportional to the instances running on those modules. Instances of other
// apps, finished ones and ones already on the target are reported as
// skipped. The move happens when the owning worker processes the message:
// follow it with get-runtime-status or get-history.
func (c *Client) MigrateApp(ctx context.Context, o MigrateOptions) (*MigrateResult, error) {
	app, err := c.store.GetApp(ctx, o.App)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	to := app.Digest
	if o.To != "" {
		_, m, err := c.ResolveModule(ctx, o.To)
		if err != nil {
			return nil, fmt.Errorf("migrate: --to: %w", err)
		}
		to = m.Digest
	}
	if _, err := c.store.GetModule(ctx, to); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	res := &MigrateResult{App: o.App, To: to, DryRun: o.DryRun, Instances: []MigratedInstance{}}
	ids := o.InstanceIDs
	if len(ids) == 0 {
		mods, err := c.store.ListModules(ctx)
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		seen := map[string]bool{}
		for _, m := range mods {
			if m.Digest == to {
				continue
			}
			on, err := c.store.DigestInstances(ctx, m.Digest, 0)
			if err != nil {
				return nil, fmt.Errorf("migrate: %w", err)
			}
			for _, id := range on {
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
		sort.Strings(ids)
	}
	for _, id := range ids {
		st, err := c.store.GetInstance(ctx, id)
		if err != nil {
			if errors.Is(err, host.ErrInstanceNotFound) {
				res.Instances = append(res.Instances, MigratedInstance{InstanceID: id, Skipped: "not found"})
				continue
			}
			return res, fmt.Errorf("migrate: %w", err)
		}
		mi := MigratedInstance{InstanceID: id, Name: st.Name, Status: st.Status, From: st.Digest}
		switch {
		case st.App != o.App:
			if len(o.InstanceIDs) == 0 {
				continue // another app's instance on a shared module
			}
			mi.Skipped = "belongs to app " + st.App
		case st.Status.Terminal():
			mi.Skipped = "finished (" + string(st.Status) + ")"
		case st.Digest == to:
			mi.Skipped = "already on the target module"
		case !o.DryRun:
			if err := c.sendMigrate(ctx, id, to); err != nil {
				if errors.Is(err, host.ErrInstanceFinished) || errors.Is(err, host.ErrInstanceNotFound) {
					mi.Skipped = "finished meanwhile"
				} else {
					return res, fmt.Errorf("migrate: %w", err)
				}
			}
		}
		res.Instances = append(res.Instances, mi)
	}
	return res, nil
}

// ListDeadLetters returns up to max (<= 0: 1000) dead letters, oldest first.
func (c *Client) ListDeadLetters(ctx context.Context, max int) ([]host.DeadLetter, error) {
	dl, err := c.store.ListDeadLetters(ctx, max)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return dl, nil
}

// FindDeadLetter returns the dead letter with stream entry id id (in any
// partition, or in partition p when id is given as "p/id").
// ErrDeadLetterNotFound if there is none.
func (c *Client) FindDeadLetter(ctx context.Context, id string) (*host.DeadLetter, error) {
	all, err := c.store.ListDeadLetters(ctx, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("find dead letter %s: %w", id, err)
	}
	for i := range all {
		d := &all[i]
		if d.ID == id || fmt.Sprintf("%d/%s", d.Partition, d.ID) == id {
			return d, nil
		}
	}
	return nil, fmt.Errorf("find dead letter %s: %w", id, host.ErrDeadLetterNotFound)
}

// ReplayOutcome says what ReplayDeadLetter did.
type ReplayOutcome string

// Replay outcomes.
const (
	// ReplayRewound: the instance was Failed; it was rewound (the failed
	// activity runs again) and the dead letter removed.
	ReplayRewound ReplayOutcome = "rewound"
	// ReplayStale: the instance went on past the failure (it handled it,
	// or finished otherwise, or is gone); the dead letter was left.
	ReplayStale ReplayOutcome = "stale"
	// ReplayRemoved: stale, and removed because force was given.
	ReplayRemoved ReplayOutcome = "removed"
	// ReplayRequeued: a quarantined control message was put back on its
	// partition's control stream (after rewinding the instance it had
	// failed, when it had).
	ReplayRequeued ReplayOutcome = "requeued"
)

// ReplayDeadLetter re-runs a dead letter. A quarantined control message
// (Kind DeadLetterControl) is put back on its stream (ReplayRequeued); the
// instance it failed (code DW3001) is rewound first, and a completion that
// the rewind re-issues anyway (an activity's, a timer's, a
// sub-orchestration's) is not put back, so nothing runs twice. A
// dead-lettered activity: if its instance is
// Failed it is rewound (Rewind re-runs the failed activity, keeping every
// other result) and the dead letter is removed. If the instance continued
// past the failure (it is not Failed, or is gone), the activity cannot be
// re-run meaningfully: the dead letter is left (ReplayStale) unless force
// removes it (ReplayRemoved). Undecodable entries can only be removed with
// force. detail explains the outcome.
func (c *Client) ReplayDeadLetter(ctx context.Context, d *host.DeadLetter, force bool) (ReplayOutcome, string, error) {
	stale := func(why string) (ReplayOutcome, string, error) {
		if !force {
			return ReplayStale, why + "; the dead letter was kept (remove it with --force)", nil
		}
		if err := c.store.DeleteDeadLetter(ctx, d.Partition, d.ID); err != nil {
			return "", "", err
		}
		return ReplayRemoved, why + "; the dead letter was removed", nil
	}
	if d.Kind == host.DeadLetterControl {
		return c.replayControl(ctx, d, stale)
	}
	if d.Kind != host.DeadLetterActivity || d.InstanceID == "" {
		return stale("the entry could not be decoded (" + d.Reason + "), so there is nothing to re-run")
	}
	st, err := c.store.GetInstance(ctx, d.InstanceID)
	if errors.Is(err, host.ErrInstanceNotFound) {
		return stale(fmt.Sprintf("instance %s no longer exists", d.InstanceID))
	}
	if err != nil {
		return "", "", err
	}
	if st.Status != abi.StatusFailed || (d.ExecutionID != "" && st.ExecutionID != d.ExecutionID) {
		return stale(fmt.Sprintf("instance %s continued past the failure (it is %s)", d.InstanceID, st.Status))
	}
	if err := c.Rewind(ctx, d.InstanceID, fmt.Sprintf("replay of dead-lettered activity %s (task %d)", d.Activity, d.TaskID)); err != nil {
		return "", "", err
	}
	if err := c.store.DeleteDeadLetter(ctx, d.Partition, d.ID); err != nil && !errors.Is(err, host.ErrDeadLetterNotFound) {
		return "", "", err
	}
	return ReplayRewound, fmt.Sprintf("instance %s was Failed; it was rewound, so activity %s runs again", d.InstanceID, d.Activity), nil
}

// replayControl replays a quarantined control message (see ReplayDeadLetter).
func (c *Client) replayControl(ctx context.Context, d *host.DeadLetter, stale func(string) (ReplayOutcome, string, error)) (ReplayOutcome, string, error) {
	st, err := c.store.GetInstance(ctx, d.InstanceID)
	switch {
	case errors.Is(err, host.ErrInstanceNotFound) || host.ValidateInstanceID(d.InstanceID) != nil:
		st = nil
	case err != nil:
		return "", "", err
	}
	rewound := false
	if st != nil && st.Status.Terminal() {
		if st.Status != abi.StatusFailed || st.Failure == nil || st.Failure.Code != replay.CodeQuarantined {
			return stale(fmt.Sprintf("instance %s finished otherwise (it is %s), so the message would be dropped", d.InstanceID, st.Status))
		}
		if err := c.Rewind(ctx, d.InstanceID, "replay of quarantined message "+fmt.Sprintf("%d/%s", d.Partition, d.ID)); err != nil {
			return "", "", err
		}
		rewound = true
	}
	switch abi.EventType(d.Event) {
	case abi.EventTaskCompleted, abi.EventTaskFailed, abi.EventTimerFired,
		abi.EventSubOrchestrationInstanceCompleted, abi.EventSubOrchestrationInstanceFailed:
		if rewound {
			if err := c.store.DeleteDeadLetter(ctx, d.Partition, d.ID); err != nil && !errors.Is(err, host.ErrDeadLetterNotFound) {
				return "", "", err
			}
			return ReplayRewound, fmt.Sprintf("instance %s was rewound; the rewind re-issues the work whose %s was quarantined", d.InstanceID, d.Event), nil
		}
	}
	if err := c.store.RequeueDeadLetter(ctx, d.Partition, d.ID); err != nil {
		return "", "", err
	}
	detail := fmt.Sprintf("the %s message for %s is back on partition %d's control stream", d.Event, d.InstanceID, d.Partition)
	if rewound {
		detail = fmt.Sprintf("instance %s was rewound and ", d.InstanceID) + detail
	}
	return ReplayRequeued, detail, nil
}

// RemoveDeadLetter drops a dead letter for good (ErrDeadLetterNotFound if
// it is gone). A quarantined message's instance stays as it is.
func (c *Client) RemoveDeadLetter(ctx context.Context, d *host.DeadLetter) error {
	if err := c.store.DeleteDeadLetter(ctx, d.Partition, d.ID); err != nil {
		return fmt.Errorf("remove dead letter %d/%s: %w", d.Partition, d.ID, err)
	}
	return nil
}
