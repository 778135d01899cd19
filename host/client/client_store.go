package client

import (
	"context"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
)

// Store is what a Client needs from durable storage: creating,
// reading, messaging, querying and purging instances, modules and apps,
// and dead letters. It is declared here, beside its consumer;
// redisstore.Store implements it.
type Store interface {
	host.StoreReader
	// CreateInstance creates st (normally Pending) and enqueues start on its
	// partition's control stream. An existing terminal instance is replaced
	// (its history and pending messages are discarded). ErrInstanceExists if
	// a non-terminal one exists.
	CreateInstance(ctx context.Context, st host.InstanceState, start host.ControlMessage) error
	// GetHistory returns the instance's current-generation history in order,
	// or ErrInstanceNotFound.
	GetHistory(ctx context.Context, instanceID string) ([]abi.HistoryEvent, error)
	// SendToInstance enqueues msg for msg.InstanceID if the instance exists
	// and is not terminal: ErrInstanceNotFound / ErrInstanceFinished
	// otherwise.
	SendToInstance(ctx context.Context, msg host.ControlMessage) error
	// RewindInstance enqueues msg (an ExecutionRewound event) for a Failed
	// instance: ErrInstanceNotFound, or ErrNotFailed naming the status.
	RewindInstance(ctx context.Context, msg host.ControlMessage) error
	// QueryInstances returns one page of the instances matching q, using the
	// created-time and status indexes (never a scan of the hub).
	// ErrBadToken for a token it did not issue.
	QueryInstances(ctx context.Context, q host.InstanceQuery) (*host.InstancePage, error)
	// PurgeInstance removes everything an instance owns: state, history,
	// index entries and pending timers. Without force a Pending, Running or
	// Suspended instance is refused with ErrNotFinished. ErrInstanceNotFound
	// if it does not exist.
	PurgeInstance(ctx context.Context, instanceID string, force bool) error
	// PurgeInstances removes up to max instances matching q (q.PageSize and
	// q.ContinuationToken are ignored), finished ones only unless force, in
	// batches; calling it again continues where it stopped. progress, if not
	// nil, is called after each batch with the running totals.
	PurgeInstances(ctx context.Context, q host.InstanceQuery, force bool, max int, progress func(host.PurgeResult)) (host.PurgeResult, error)
	// DeleteHub removes every key of the task hub, on every node of a
	// cluster, and returns how many keys it removed.
	DeleteHub(ctx context.Context) (int64, error)
	// PutModule stores a module's bytes under its digest (idempotent) and
	// points app at it, recording its functions.
	PutModule(ctx context.Context, app string, digest string, wasm []byte, functions []host.FunctionInfo) error
	// PutModuleSettings records the settings of the module with that digest
	// (replacing earlier ones).
	PutModuleSettings(ctx context.Context, digest string, settings host.AppSettings) error
	// GetApp returns an app record, or ErrModuleNotFound.
	GetApp(ctx context.Context, app string) (*host.AppRecord, error)
	// ListApps returns all apps, sorted by name.
	ListApps(ctx context.Context) ([]host.AppRecord, error)
	// FindFunction returns the app that registers a function of that name,
	// or ErrFunctionNotFound.
	FindFunction(ctx context.Context, name string) (*host.AppRecord, host.FunctionInfo, error)
	// ListModules returns every stored module, sorted by digest.
	ListModules(ctx context.Context) ([]host.StoredModule, error)
	// CountDigestInstances returns how many non-finished (Pending, Running,
	// Suspended, ContinuedAsNew) instances run on the module with that
	// digest, from an index (not a scan of the instances).
	CountDigestInstances(ctx context.Context, digest string) (int64, error)
	// DigestInstances returns the ids of up to max (<= 0: all) non-finished
	// instances on the module with that digest, sorted.
	DigestInstances(ctx context.Context, digest string, max int) ([]string, error)
	// RemoveApp removes app's record and its function→app mappings, provided
	// the app still points at digest (ErrModuleInUse if it was redeployed
	// meanwhile; ErrModuleNotFound if there is no such app). With dropModule
	// the module's bytes and settings are removed too unless another app
	// points at digest; the result reports whether they were. It does not
	// look at instances: the caller checks CountDigestInstances first.
	RemoveApp(ctx context.Context, app, digest string, dropModule bool) (moduleRemoved bool, err error)
	// RemoveModule removes a module's bytes and settings: ErrModuleInUse
	// (naming the app) if an app points at it, ErrModuleNotFound if it is not
	// stored. It does not look at instances: the caller checks
	// CountDigestInstances first.
	RemoveModule(ctx context.Context, digest string) error
	// ListDeadLetters returns up to max (<= 0: 1000) dead letters of all
	// partitions, oldest first.
	ListDeadLetters(ctx context.Context, max int) ([]host.DeadLetter, error)
	// DeleteDeadLetter removes one dead letter; ErrDeadLetterNotFound if
	// partition p has none with that id.
	DeleteDeadLetter(ctx context.Context, p int, id string) error
	// RequeueDeadLetter puts a quarantined control message back on its
	// partition's control stream and removes the dead letter, atomically:
	// ErrDeadLetterNotFound, or ErrInvalidInput for another kind.
	RequeueDeadLetter(ctx context.Context, p int, id string) error
}
