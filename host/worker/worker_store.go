package worker

import (
	"context"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
)

// Store is what a Worker needs from durable storage: partition leases
// and the worker registry, the control and activity streams, loading
// instances, commits, the outbox, timers and dead letters. It is declared
// here, beside its consumer; redisstore.Store implements it.
type Store interface {
	host.StoreReader
	// Partitions returns the hub's fixed partition count.
	Partitions() int
	// AcquireLease takes partition p for owner if it is free or expired, or
	// renews it if owner already holds it. It returns the epoch of the lease
	// (increased on every change of owner) and whether owner holds it.
	AcquireLease(ctx context.Context, p int, owner string, ttl time.Duration) (epoch int64, ok bool, err error)
	// RenewLease extends owner's lease of p at epoch; false if it is lost.
	RenewLease(ctx context.Context, p int, owner string, epoch int64, ttl time.Duration) (bool, error)
	// ReleaseLease gives p up if owner holds it at epoch.
	ReleaseLease(ctx context.Context, p int, owner string, epoch int64) error
	// Heartbeat records that worker is alive for ttl and returns the ids of
	// all live workers, sorted.
	Heartbeat(ctx context.Context, worker string, ttl time.Duration) ([]string, error)
	// LeaveWorkers removes worker from the live set and the alive set.
	LeaveWorkers(ctx context.Context, worker string) error
	// Alive records that worker (whatever it runs) is alive for ttl and
	// returns the ids of all alive workers, sorted.
	Alive(ctx context.Context, worker string, ttl time.Duration) ([]string, error)
	// ReclaimActivities moves to consumer up to max activity items of
	// partition p held by consumers of workers not in live (idle at least
	// minIdle), and removes such consumers once they hold nothing.
	ReclaimActivities(ctx context.Context, p int, consumer string, live []string, minIdle time.Duration, max int) ([]host.ActivityItem, error)
	// CompleteActivities is CompleteActivity for several items in one round
	// trip (results[i] is items[i]'s); one error per item.
	CompleteActivities(ctx context.Context, items []host.ActivityItem, results []host.ControlMessage) []error
	// TouchActivity resets the idle time of item while consumer holds it,
	// so that it is not claimed after the visibility timeout while it runs.
	TouchActivity(ctx context.Context, item host.ActivityItem, consumer string) error
	// ReadControl returns up to max new messages of partition p for consumer,
	// blocking up to block when there are none (0 means do not block).
	ReadControl(ctx context.Context, p int, consumer string, max int, block time.Duration) ([]host.ControlMessage, error)
	// ClaimControl moves every pending (delivered, unacknowledged) message of
	// partition p to consumer and returns them in stream order. The new owner
	// of a partition calls it before ReadControl.
	ClaimControl(ctx context.Context, p int, consumer string) ([]host.ControlMessage, error)
	// AckControl acknowledges and deletes messages that were consumed without a
	// commit (e.g. for unknown instances); fenced like Commit.
	AckControl(ctx context.Context, p int, epoch int64, ids []string) error
	// LoadInstance returns an instance's state and its current-generation
	// history; ErrInstanceNotFound if it does not exist.
	LoadInstance(ctx context.Context, instanceID string) (*host.InstanceState, []abi.HistoryEvent, error)
	// LoadInstances is LoadInstance for several instances of one partition
	// in one round trip; result i is for ids[i], each read atomically. An
	// error of the call as a whole is returned as err; an instance's own
	// (ErrInstanceNotFound, undecodable history) in its result.
	LoadInstances(ctx context.Context, ids []string) ([]host.LoadedInstance, error)
	// Commit applies commits, each atomically, pipelined in one round trip.
	// The result has one error per commit (nil on success); the error return
	// is for failures of the round trip itself.
	Commit(ctx context.Context, commits []host.Commit) ([]error, error)
	// DeliverOutbox delivers partition p's undelivered outbox messages to
	// their target partitions (de-duplicated by MessageID) and removes them
	// from the outbox. It returns how many it delivered.
	DeliverOutbox(ctx context.Context, p int, epoch int64) (int, error)
	// FireDueTimers moves up to max timers of partition p due at or before
	// now into its control stream, atomically, and returns how many it moved
	// and the fire time of the earliest remaining timer (zero if none).
	FireDueTimers(ctx context.Context, p int, epoch int64, now time.Time, max int) (int, time.Time, error)
	// ReadActivities returns up to max new activity items of partition p,
	// blocking up to block when there are none.
	ReadActivities(ctx context.Context, p int, consumer string, max int, block time.Duration) ([]host.ActivityItem, error)
	// ClaimActivities moves up to max activity items of partition p that were
	// delivered at least minIdle ago without completing to consumer (their
	// worker is presumed dead) and returns them.
	ClaimActivities(ctx context.Context, p int, consumer string, minIdle time.Duration, max int) ([]host.ActivityItem, error)
	// CompleteActivity atomically posts result to the item's partition's
	// control stream and acknowledges and deletes the item. Completing an
	// item that is no longer pending is a no-op (another worker finished it).
	CompleteActivity(ctx context.Context, item host.ActivityItem, result host.ControlMessage) error
	// DeadLetterActivity gives up on an activity work item, atomically:
	// it posts result (the failure the orchestration sees) to the item's
	// partition's control stream, records a dead letter with reason and the
	// item's instance, activity name, input and delivery count in the
	// partition's dead-letter stream, and acknowledges and deletes the item.
	// An item that is no longer pending is left alone (another worker
	// finished it) and nil is returned.
	DeadLetterActivity(ctx context.Context, item host.ActivityItem, reason string, result host.ControlMessage) error
	// QuarantineControl parks control messages of partition p whose step or
	// commit kept failing in the partition's dead-letter stream (Kind
	// "control", with reason and the message as stored) and acks and
	// deletes them, atomically and fenced by epoch (ErrStaleEpoch). It
	// returns the dead letters' ids ("" for a message already gone).
	QuarantineControl(ctx context.Context, p int, epoch int64, msgs []host.ControlMessage, reason string) ([]string, error)
}
