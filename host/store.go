package host

import (
	"context"
	"errors"
	"hash/fnv"
	"time"

	"github.com/durablewasm/durablewasm/abi"
)

// Sentinel errors returned by store implementations (client.Store,
// worker.Store). Callers test them with
// errors.Is; implementations wrap them with the operation and instance.
var (
	// ErrInstanceNotFound: no instance with that id exists in the hub.
	ErrInstanceNotFound = errors.New("instance not found")
	// ErrInstanceExists: CreateInstance found a non-terminal instance with
	// that id (or any instance, when replacing terminal ones is not allowed).
	ErrInstanceExists = errors.New("instance already exists")
	// ErrInstanceFinished: the instance is in a terminal state and cannot
	// accept the message.
	ErrInstanceFinished = errors.New("instance is finished")
	// ErrStaleEpoch: the caller no longer owns the partition (its lease epoch
	// is not the current one). Nothing was written.
	ErrStaleEpoch = errors.New("partition lease lost (stale epoch)")
	// ErrStateChanged: a commit's ExpectFresh did not hold (the instance
	// was terminated, purged or replaced before its first step); nothing
	// was written.
	ErrStateChanged = errors.New("instance changed before its first step")
	// ErrModuleNotFound: no module with that digest, or no app of that name.
	ErrModuleNotFound = errors.New("module not found")
	// ErrFunctionNotFound: no deployed app registers a function of that name.
	ErrFunctionNotFound = errors.New("function not found")
	// ErrNotFailed: the operation (rewind) needs a Failed instance.
	ErrNotFailed = errors.New("instance is not in the Failed state")
	// ErrNotFinished: purging a Pending, Running or Suspended instance
	// without force.
	ErrNotFinished = errors.New("instance has not finished")
	// ErrBadToken: a continuation token that this store did not issue.
	ErrBadToken = errors.New("invalid continuation token")
	// ErrModuleInUse: removing a module that an app points at or that
	// non-finished instances run on, or an app whose module such instances
	// run on.
	ErrModuleInUse = errors.New("module is in use")
	// ErrDeadLetterNotFound: no dead letter with that partition and id.
	ErrDeadLetterNotFound = errors.New("dead letter not found")
	// ErrInvalidInput wraps every rejection of caller input (bad id, bad
	// JSON, unknown function, a bad query); the message says what was wrong
	// and what is accepted.
	ErrInvalidInput = errors.New("invalid input")
	// ErrPayloadTooLarge: an input or event data is over the payload limit
	// of the module that would receive it (its deploy setting, else 1 MiB).
	// The message names the payload, its size and the limit. Nothing was
	// written.
	ErrPayloadTooLarge = errors.New("payload too large")
)

// ErrIdempotencyKeyReused: an idempotency key was used again within its TTL
// on the same instance for another operation, or with other arguments, than
// the operation it was first recorded for. Nothing was written. A key may only
// be reused to retry the very same operation; use a new key for a new one.
var ErrIdempotencyKeyReused = errors.New("idempotency key already used for another operation")

// IdempotencyTTL is how long a store remembers an applied idempotency key
// (when Idempotency.TTL is zero): a retry with the same key within it returns
// the first outcome instead of applying the operation again.
const IdempotencyTTL = 24 * time.Hour

// Idempotency makes one client operation apply at most once however often it
// is retried. The store records Key in the same atomic script that applies
// the operation, in the slot of the instance it changes, for TTL; a later
// call with the same Key for the same instance and Fingerprint writes nothing
// and reports the first outcome (Replay.Replayed), and one with another
// Fingerprint fails with ErrIdempotencyKeyReused naming the first Operation.
// Keys are scoped to the target instance: the same key used for two
// different instances makes two independent records. Only applied operations
// are recorded: a refused one (not found, finished, exists, …) writes
// nothing, so its retry is evaluated afresh.
type Idempotency struct {
	// Key is the caller's (or the client's generated) idempotency key.
	Key string
	// Operation names the operation for error messages ("raise-event",
	// "start-new", "terminate", …).
	Operation string
	// Fingerprint identifies the operation and its arguments (timestamps
	// and generated ids excluded); any text, compared for equality.
	Fingerprint string
	// TTL is how long the record is kept; zero means IdempotencyTTL.
	TTL time.Duration
}

// Replay is the outcome of an idempotent Store operation.
type Replay struct {
	// Replayed is set when the operation had already been applied with the
	// same key: nothing was written by this call.
	Replayed bool
	// ExecutionID is, for CreateInstanceOnce, the execution id of the
	// instance the (first) application created.
	ExecutionID string
}

// IdempotentStore is an optional Store capability (redisstore has it): the
// client's mutating operations with an idempotency key. Each method is its
// Store counterpart (same checks, errors and writes) made exactly-once by
// idem as described at Idempotency; a replay returns a nil error even if the
// instance has since changed (finished, been purged).
type IdempotentStore interface {
	// CreateInstanceOnce is CreateInstance with idem; the record lives with
	// st.InstanceID.
	CreateInstanceOnce(ctx context.Context, st InstanceState, start ControlMessage, idem Idempotency) (Replay, error)
	// SendToInstanceOnce is SendToInstance with idem; the record lives with
	// msg.InstanceID.
	SendToInstanceOnce(ctx context.Context, msg ControlMessage, idem Idempotency) (Replay, error)
	// RewindInstanceOnce is RewindInstance with idem.
	RewindInstanceOnce(ctx context.Context, msg ControlMessage, idem Idempotency) (Replay, error)
	// PurgeInstanceOnce is PurgeInstance with idem; the record outlives the
	// purged instance, so a retry after a lost reply succeeds instead of
	// reporting ErrInstanceNotFound.
	PurgeInstanceOnce(ctx context.Context, instanceID string, force bool, idem Idempotency) (Replay, error)
}

// PartitionFor returns the partition (0..n-1) of an instance id. It is a stable
// FNV-1a hash, identical in every process, so any worker or client finds the
// same partition for the same id.
func PartitionFor(instanceID string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(instanceID))
	return int(h.Sum32() % uint32(n))
}

// ControlMessage is one message on a partition's control stream: an event for
// one instance (ExecutionStarted, TaskCompleted, TimerFired, EventRaised,
// ExecutionTerminated, …).
type ControlMessage struct {
	// ID is the stream entry id, set by the store when the message is read.
	ID string
	// InstanceID is the target instance.
	InstanceID string
	// ExecutionID is the target generation; "" matches any. A message for an
	// older generation (before a ContinueAsNew) is dropped by the worker.
	ExecutionID string
	// MessageID is a unique id used to de-duplicate deliveries between
	// partitions; "" when the message is never redelivered.
	MessageID string
	// Event is the event the message carries.
	Event abi.HistoryEvent
	// Fresh, on the start message of a new instance, is what its creator
	// stored besides the event's fields, so that the owner can run the
	// first step without reading the instance back (Commit.ExpectFresh
	// checks that it is still that instance). nil otherwise.
	Fresh *FreshInstance
}

// FreshInstance is the part of a new instance's state that its start event
// does not carry.
type FreshInstance struct {
	App, Digest string
	CreatedAt   time.Time
	// Depth is InstanceState.Depth.
	Depth int
}

// ActivityItem is one activity work item on a partition's activity stream.
type ActivityItem struct {
	// ID is the stream entry id, set by the store when the item is read.
	ID string
	// Partition is the partition of the orchestration instance (and of the
	// stream holding the item).
	Partition int
	// InstanceID and ExecutionID identify the orchestration generation.
	InstanceID  string
	ExecutionID string
	// TaskID is the EventID of the TaskScheduled event.
	TaskID int32
	// Name and Input (JSON text) of the activity.
	Name  string
	Input string
	// Digest is the module digest the orchestration runs on; the activity runs
	// on the same module.
	Digest string
	// Deliveries is how many times the item has been delivered, counting this
	// delivery (1 on the first read).
	Deliveries int64
}

// TimerItem is a durable timer: at FireAt the store moves Message into the
// partition's control stream.
type TimerItem struct {
	FireAt  time.Time
	Message ControlMessage
}

// OutboxMessage is a message for an instance in another partition, delivered
// after the commit that produced it (at least once, de-duplicated by
// Message.MessageID on arrival).
type OutboxMessage struct {
	// Partition is the target partition.
	Partition int
	// Message is the message; Message.MessageID must be set.
	Message ControlMessage
	// Create, when set, makes delivery create the target instance (Pending)
	// if no non-terminal instance exists, like CreateInstance; used for
	// sub-orchestrations.
	Create *InstanceState
}

// InstanceState is the queryable state of an orchestration instance.
type InstanceState struct {
	InstanceID  string
	Name        string
	ExecutionID string
	Status      abi.RuntimeStatus
	// Input, Output and CustomStatus are JSON text; "" means null.
	Input        string
	Output       string
	CustomStatus string
	// Failure is set when Status is Failed.
	Failure *abi.FailureDetails
	// CreatedAt and UpdatedAt are UTC times.
	CreatedAt time.Time
	UpdatedAt time.Time
	// App and Digest name the deployed module the instance runs on.
	App    string
	Digest string
	// ParentInstanceID and ParentTaskID are set for sub-orchestrations.
	ParentInstanceID string
	ParentTaskID     int32
	// HistoryLength is the number of events in the current generation's
	// history.
	HistoryLength int64
	// Depth is how deep the instance nests: 0 for one started by a client,
	// its parent's depth + 1 for a sub-orchestration (at most
	// MaxNestingDepth).
	Depth int
}

// Commit is the atomic result of one orchestration step: everything in it is
// applied by one script, or nothing is.
type Commit struct {
	// Partition and Epoch fence the write: the store refuses it with
	// ErrStaleEpoch unless Epoch is the partition's current lease epoch.
	Partition int
	Epoch     int64
	// CommitID identifies the step. Applying a commit whose id is the
	// instance's last applied commit id is a no-op that reports success, so a
	// retried script never applies twice.
	CommitID string
	// State is the instance's new state (written whole).
	State InstanceState
	// NewEvents are appended to the history. With ResetHistory the history is
	// replaced by NewEvents (ContinueAsNew, rewind).
	NewEvents    []abi.HistoryEvent
	ResetHistory bool
	// ExpectFresh, when set, is the ExecutionID of a Pending instance
	// without history that the step assumed without reading it (from its
	// start message's Fresh); the store refuses the commit with
	// ErrStateChanged unless the stored instance is still exactly that.
	ExpectFresh string
	// Acks are the ids of the consumed control messages.
	Acks []string
	// Activities are enqueued on the partition's activity stream.
	Activities []ActivityItem
	// Timers are added to the partition's timer set.
	Timers []TimerItem
	// Local messages are appended to this partition's control stream.
	Local []ControlMessage
	// Outbox messages go to other partitions; the store records them in this
	// partition's outbox in the same script.
	Outbox []OutboxMessage
}

// LoadedInstance is one result of Store.LoadInstances.
type LoadedInstance struct {
	State   *InstanceState
	History []abi.HistoryEvent
	Err     error
}

// InstanceQuery selects instances. Zero fields do not filter.
type InstanceQuery struct {
	// CreatedFrom and CreatedTo bound the created time (inclusive). Zero
	// means unbounded.
	CreatedFrom time.Time
	CreatedTo   time.Time
	// Statuses keeps instances in any of these statuses; empty keeps all.
	Statuses []abi.RuntimeStatus
	// InstanceIDPrefix keeps ids starting with it.
	InstanceIDPrefix string
	// PageSize is the most instances returned (default 100, at most 1000).
	PageSize int
	// ContinuationToken resumes after the last instance of a previous page;
	// "" starts at the beginning.
	ContinuationToken string
}

// InstancePage is one page of a query: instances ordered by created time,
// then id, across all partitions. ContinuationToken is "" on the last page.
// Paging is stable under concurrent writes: an instance that matches the
// query through all pages appears exactly once.
type InstancePage struct {
	Instances         []InstanceState
	ContinuationToken string
}

// PurgeResult reports a purge.
type PurgeResult struct {
	// Deleted is the number of instances removed.
	Deleted int
	// Skipped is the number of matching instances left because they have not
	// finished (purges without force).
	Skipped int
}

// AppSettings are a module's sandbox limits and activity capabilities, set at
// deploy and pinned to its digest. Zero fields take the worker's defaults.
type AppSettings struct {
	// StepTimeout bounds one orchestration step; ActivityTimeout one
	// activity execution.
	StepTimeout     time.Duration `json:"stepTimeout,omitempty"`
	ActivityTimeout time.Duration `json:"activityTimeout,omitempty"`
	// MemoryLimitBytes caps each instance's linear memory (at most the
	// engine's limit).
	MemoryLimitBytes uint64 `json:"memoryLimitBytes,omitempty"`
	// MaxPayloadBytes bounds inputs, outputs, event data and custom status;
	// MaxHistoryEvents a generation's history.
	MaxPayloadBytes  int `json:"maxPayloadBytes,omitempty"`
	MaxHistoryEvents int `json:"maxHistoryEvents,omitempty"`
	// Config are configuration values activities read by key.
	Config map[string]string `json:"config,omitempty"`
	// HTTPAllow lists the hosts ("example.com", "example.com:8443",
	// "*.example.com") activities may call with outbound HTTP; empty means
	// none. HTTPTimeout bounds one request (default 30 s).
	HTTPAllow   []string      `json:"httpAllow,omitempty"`
	HTTPTimeout time.Duration `json:"httpTimeout,omitempty"`
}

// AppRecord describes a deployed app: a name pointing at a module digest.
type AppRecord struct {
	Name      string
	Digest    string
	Functions []FunctionInfo
	// DeployedAt is when the app was last pointed at Digest.
	DeployedAt time.Time
}

// FunctionInfo names one function a module registers.
type FunctionInfo struct {
	Name string
	// Kind is abi.KindOrchestrator or abi.KindActivity.
	Kind int
}

// FinishNotifier is an optional Store capability: announcing instances that
// reach a terminal status, so that waiters need not poll often.
type FinishNotifier interface {
	// NotifyFinished returns a channel that receives a value after
	// instanceID may have reached a terminal status, and also whenever the
	// notifications behind it are (re)established, so that a completion
	// announced before cannot be missed by a caller that reads the status
	// on every receive. Best effort: a notification can be lost while
	// notifications do not work or spurious, so callers keep polling at a
	// slower pace. It does not wait for the network. release frees the
	// channel.
	NotifyFinished(ctx context.Context, instanceID string) (ch <-chan struct{}, release func(), err error)
}

// StoreReader is what both the client and the workers read: instances and
// modules.
type StoreReader interface {
	// GetInstance returns an instance's state, or ErrInstanceNotFound.
	GetInstance(ctx context.Context, instanceID string) (*InstanceState, error)
	// GetModuleSettings returns the settings recorded for digest; zero
	// settings when none were recorded.
	GetModuleSettings(ctx context.Context, digest string) (*AppSettings, error)
	// GetModule returns the bytes of the module with that digest, or
	// ErrModuleNotFound.
	GetModule(ctx context.Context, digest string) ([]byte, error)
}

// StoredModule is one module stored in the hub.
type StoredModule struct {
	Digest string
	// Size is the module's size in bytes.
	Size int64
	// StoredAt is when it was first stored (zero if unknown: stored by an
	// older version).
	StoredAt time.Time
}

// DeadLetter is one entry of a partition's dead-letter stream: an activity
// work item given up after too many deliveries (Kind "activity"), or a
// stream entry that could not be decoded (Kind "undecodable").
type DeadLetter struct {
	// Partition and ID locate the dead letter (ID is its entry id in the
	// dead-letter stream); Time is when it was recorded.
	Partition int
	ID        string
	Time      time.Time
	Kind      string
	Reason    string
	// Source and EntryID are the stream and entry id it came from; Raw is
	// the entry's stored value.
	Source  string
	EntryID string
	Raw     string
	// The activity item, for Kind "activity".
	InstanceID  string
	ExecutionID string
	TaskID      int32
	Activity    string
	Input       string
	Deliveries  int64
	// Event is the event type of a quarantined control message (Kind
	// "control"), e.g. "ExecutionStarted".
	Event string
}

// Dead-letter kinds.
const (
	DeadLetterActivity    = "activity"
	DeadLetterUndecodable = "undecodable"
	// DeadLetterControl is a control message quarantined after its step or
	// commit kept failing (Worker: QuarantineAfter attempts).
	DeadLetterControl = "control"
)
