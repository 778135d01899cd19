package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/host"
)

// Idempotency keys of client operations.
//
// Every mutating Client operation — StartNew, RaiseEvent, Terminate,
// Suspend, Resume, Rewind, Restart, PurgeInstance — carries an idempotency
// key: the caller's, passed in the context with WithIdempotencyKey, or one
// the client generates for the call. The store records the key in the
// script that applies the operation (IdempotentStore), so a retry with the
// same key is applied at most once and returns the first outcome. The
// client retries failures that leave the outcome unknown (see RetryPolicy)
// with the same key; when it gives up, the error is a *MaybeAppliedError
// (errors.Is(err, ErrMaybeApplied)) whose message names the key to retry
// with.

// MaxIdempotencyKeyLength is the longest idempotency key accepted, in bytes.
const MaxIdempotencyKeyLength = 255

// GeneratedIdempotencyTTL is how long the store keeps the record of a key
// the client generated (a caller's key is kept IdempotencyTTL, 24 h). It
// covers the client's own retries and a prompt retry by the caller with the
// key a *MaybeAppliedError names, without keeping a record a day for every
// operation of a high-rate caller (a record is about 200 bytes).
const GeneratedIdempotencyTTL = 10 * time.Minute

type idempotencyKeyCtx struct{}

// WithIdempotencyKey returns a copy of ctx that makes the next mutating
// Client operation called with it (StartNew, RaiseEvent, Terminate,
// Suspend, Resume, Rewind, Restart, PurgeInstance) use key as its
// idempotency key: applied at most once for key within IdempotencyTTL (24 h)
// however often it is called, later calls with the same key and arguments
// returning the first outcome, and the same key with another operation or
// other arguments on the same instance failing with ErrIdempotencyKeyReused.
// Keys are scoped to the instance the operation targets. StartNew without
// an InstanceID, and Restart with a new id, derive the new instance's id
// from the key, so that their retries target the same instance. key must be
// 1–255 bytes of printable ASCII without spaces (a UUID is a good key); the
// operation checks it (ErrInvalidInput). An empty key means none: the
// client generates one for the call. The CLI flag --idempotency-key and the
// HTTP header Idempotency-Key set it.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyCtx{}, key)
}

// IdempotencyKeyFrom returns the idempotency key ctx carries
// (WithIdempotencyKey), "" when none.
func IdempotencyKeyFrom(ctx context.Context) string {
	k, _ := ctx.Value(idempotencyKeyCtx{}).(string)
	return k
}

// ValidateIdempotencyKey checks a caller's idempotency key: 1 to
// MaxIdempotencyKeyLength bytes, each a printable ASCII character other than
// space ('!' to '~'). The error says what is wrong and what is accepted.
func ValidateIdempotencyKey(key string) error {
	const rule = "use 1-255 printable ASCII characters without spaces, e.g. a UUID"
	if key == "" {
		return fmt.Errorf("invalid idempotency key: it is empty; %s", rule)
	}
	if len(key) > MaxIdempotencyKeyLength {
		return fmt.Errorf("invalid idempotency key: it is %d bytes long; %s", len(key), rule)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < '!' || c > '~' {
			return fmt.Errorf("invalid idempotency key %s: byte %d (%q) is not accepted; %s", host.ShortQuote(key), i+1, c, rule)
		}
	}
	return nil
}

// ErrMaybeApplied: a mutating client operation failed in a way that leaves
// its outcome unknown (the connection failed or timed out after the request
// may have reached Redis) and the client's own retries did not settle it.
// The operation may have been applied. The error is a *MaybeAppliedError
// naming the idempotency key: calling the operation again with that key
// (WithIdempotencyKey) applies it at most once.
var ErrMaybeApplied = errors.New("the operation may have been applied")

// MaybeAppliedError is the error of an operation that may have been applied
// (errors.Is(err, ErrMaybeApplied)); errors.Is and errors.As also see the
// last failure, Err.
type MaybeAppliedError struct {
	// Operation is what was attempted, e.g. "raise event Approval on x1".
	Operation string
	// Key is the idempotency key the attempts used ("" when the store does
	// not record keys); Generated reports that the client made it up.
	Key       string
	Generated bool
	// Attempts is how many times the operation was sent.
	Attempts int
	// Err is the last failure.
	Err error
}

// Error says that the operation may have been applied, why, and how to
// retry it safely.
func (e *MaybeAppliedError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %v after %d attempt(s): %v; this store does not record idempotency keys, so check the instance before retrying",
			e.Operation, ErrMaybeApplied, e.Attempts, e.Err)
	}
	gen, within := "", ttlText(host.IdempotencyTTL)
	if e.Generated {
		gen, within = " (generated by the client)", ttlText(GeneratedIdempotencyTTL)
	}
	return fmt.Sprintf("%s: %v after %d attempt(s): %v; retry it with idempotency key %q%s — Go: WithIdempotencyKey, CLI: --idempotency-key, HTTP: the host.Idempotency-Key header — and it is applied at most once (a retry within %s returns the first outcome)",
		e.Operation, ErrMaybeApplied, e.Attempts, e.Err, e.Key, gen, within)
}

// ttlText renders d as "24 hours", "10 minutes", or d.String().
func ttlText(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + " minutes"
	}
	return d.String()
}

// Unwrap returns ErrMaybeApplied and the last failure.
func (e *MaybeAppliedError) Unwrap() []error { return []error{ErrMaybeApplied, e.Err} }

// RetryPolicy is how a Client retries a mutating operation whose attempt
// failed without a definite answer (a network error, a connection refused
// or reset, a timeout) or was refused by a Redis that is not ready (LOADING,
// CLUSTERDOWN, TRYAGAIN, MASTERDOWN, READONLY, MOVED/ASK during a failover,
// BUSY): with the same idempotency key, so a retry never applies twice.
// Zero fields take the defaults.
type RetryPolicy struct {
	// Attempts is the most times an operation is sent (default 6; 1 never
	// retries).
	Attempts int
	// Backoff is the wait before the first retry (default 100 ms); each
	// further wait doubles, up to MaxBackoff (default 2 s), with ±20 %
	// jitter. The defaults wait about 3 s in all.
	Backoff    time.Duration
	MaxBackoff time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 6
	}
	if p.Backoff <= 0 {
		p.Backoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 2 * time.Second
	}
	if p.MaxBackoff < p.Backoff {
		p.MaxBackoff = p.Backoff
	}
	return p
}

// SetRetryPolicy sets how the client retries mutating operations whose
// outcome is unknown (see RetryPolicy; the zero value restores the
// defaults). Call it before using the client concurrently.
func (c *Client) SetRetryPolicy(p RetryPolicy) { c.retry = p.withDefaults() }

// opKey is the idempotency key of one operation call.
type opKey struct {
	key       string
	generated bool
}

// idempotencyKey returns the key ctx carries, validated, or a generated one.
func idempotencyKey(ctx context.Context) (opKey, error) {
	if k := IdempotencyKeyFrom(ctx); k != "" {
		if err := ValidateIdempotencyKey(k); err != nil {
			return opKey{}, fmt.Errorf("%w: %v", host.ErrInvalidInput, err)
		}
		return opKey{key: k}, nil
	}
	return opKey{key: host.NewInstanceID(), generated: true}, nil
}

// derivedID is the id of the instance created by operation op (with
// scope, e.g. the restarted instance) under a caller's key: the same for
// every retry with that key. A generated key gets a random id.
func (k opKey) derivedID(op, scope string) string {
	if k.generated {
		return host.NewInstanceID()
	}
	h := sha256.Sum256([]byte(fingerprint(op, scope, k.key)))
	return hex.EncodeToString(h[:16])
}

// fingerprint encodes an operation and its arguments unambiguously (each
// part length-prefixed) and hashes it (128 bits: it is compared, never
// trusted).
func fingerprint(op string, parts ...string) string {
	var b strings.Builder
	b.WriteString(op)
	for _, p := range parts {
		b.WriteString("|")
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteString(":")
		b.WriteString(p)
	}
	h := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(h[:16])
}

// applyOnce runs a mutating operation with key: once(store, idem) when the
// store records idempotency keys, retrying ambiguous failures per the
// client's RetryPolicy; plain() once otherwise. what names the operation in
// errors. An ambiguous failure the retries did not settle is returned as a
// *MaybeAppliedError; any other error as the store returned it. With
// plainRetries, plain() recognises its own retry (a create with the same
// execution id), so a generated key is not recorded.
func (c *Client) applyOnce(ctx context.Context, what string, k opKey, op, fp string, plainRetries bool,
	once func(context.Context, host.IdempotentStore, host.Idempotency) (host.Replay, error), plain func(context.Context) error) (host.Replay, error) {
	is, ok := c.store.(host.IdempotentStore)
	if !ok {
		err := plain(ctx)
		if err != nil && ambiguous(err) {
			return host.Replay{}, &MaybeAppliedError{Operation: what, Attempts: 1, Err: err}
		}
		return host.Replay{}, err
	}
	p := c.retry.withDefaults()
	if k.generated && plainRetries {
		// The plain operation recognises its own retry (a create with the
		// same execution id answers "dup"): a key nobody else can send
		// again needs no record.
		once = func(ctx context.Context, _ host.IdempotentStore, _ host.Idempotency) (host.Replay, error) {
			return host.Replay{}, plain(ctx)
		}
	}
	idem := host.Idempotency{Key: k.key, Operation: op, Fingerprint: fp}
	if k.generated {
		idem.TTL = GeneratedIdempotencyTTL
	}
	wait := p.Backoff
	for attempt := 1; ; attempt++ {
		r, err := once(ctx, is, idem)
		if err == nil || !ambiguous(err) {
			return r, err
		}
		if attempt >= p.Attempts || ctx.Err() != nil {
			return host.Replay{}, &MaybeAppliedError{Operation: what, Key: k.key, Generated: k.generated, Attempts: attempt, Err: err}
		}
		d := time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return host.Replay{}, &MaybeAppliedError{Operation: what, Key: k.key, Generated: k.generated, Attempts: attempt,
				Err: fmt.Errorf("%w (and then the context ended: %v)", err, ctx.Err())}
		case <-t.C:
		}
		wait = min(2*wait, p.MaxBackoff)
	}
}

// ambiguous reports whether err leaves a store write's outcome unknown, so
// that it is retried with the same idempotency key (host.Unavailable). The
// host's sentinel errors and other Redis replies are definite answers.
func ambiguous(err error) bool { return host.Unavailable(err) }
