package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Open connects to the Redis named by rawURL and returns a Store for hub (see
// New: the hub is created when it does not exist). Accepted URL forms:
//
//	redis://[user:password@]host:port[/db][?options]    single node
//	rediss://...                                         single node over TLS
//	unix://[user:password@]/path/to/socket[?db=N]        Unix socket
//	redis+cluster://[user:password@]host1:port,host2:port[/][?options]
//	rediss+cluster://...                                 Redis Cluster (TLS)
//
// Options in the query string are go-redis' (redis.ParseURL,
// redis.ParseClusterURL). The pool size is opts.PoolSize unless the URL sets
// pool_size. Open pings the server and, when it cannot be reached, returns an
// error naming the address it tried and how to fix it (IsUnavailable reports
// whether waiting may help). No error of Open contains the URL's password:
// URLs are shown through RedactURL. The Store's Close closes the client.
func Open(ctx context.Context, rawURL, hub string, opts Options) (*Store, error) {
	return open(ctx, rawURL, hub, opts, New)
}

// OpenExisting is Open for a task hub that must already exist: it writes
// nothing (no hub metadata, no streams, no consumer groups). When the hub does
// not exist it returns a *HubNotFoundError (errors.Is(err, ErrHubNotFound))
// that lists the hubs that do exist. Read-only tools use it, so that a typo
// in a hub name is reported instead of creating an empty hub.
func OpenExisting(ctx context.Context, rawURL, hub string, opts Options) (*Store, error) {
	return open(ctx, rawURL, hub, opts, NewExisting)
}

func open(ctx context.Context, rawURL, hub string, opts Options,
	newStore func(context.Context, redis.UniversalClient, string, Options) (*Store, error)) (*Store, error) {
	if err := checkHubNameText(hub); err != nil {
		return nil, err
	}
	if err := ValidateHubName(hub); err != nil {
		return nil, err
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	client, addr, err := newClient(rawURL, o.PoolSize)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		_ = client.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to Redis at %s: %w", addr, ctx.Err())
		}
		return nil, pingError(addr, rawURL, err)
	}
	s, err := newStore(ctx, client, hub, opts)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// pingError explains why the first PING failed: a server that is still
// loading its data, refused credentials, or no server at all.
func pingError(addr, rawURL string, err error) error {
	msg := scrubSecret(err.Error(), rawURL)
	switch {
	case redis.IsLoadingError(err):
		return &unavailableError{fmt.Errorf("Redis at %s is still loading its data set (%s); try again when it has finished", addr, msg), err}
	case redis.IsAuthError(err) || redis.IsPermissionError(err) || strings.HasPrefix(err.Error(), "NOAUTH"):
		return fmt.Errorf("Redis at %s refused the credentials of the URL (%s): check the user and password in --redis-url", addr, msg)
	case isUnavailableErr(err):
		return &unavailableError{fmt.Errorf("cannot reach Redis at %s: %s — start redis-server there, pass the right --redis-url, or run `durablewasm up` for the embedded one", addr, msg), err}
	}
	return fmt.Errorf("Redis at %s answered PING with an error: %s", addr, msg)
}

// unavailableError is a connection failure that waiting may cure: nothing
// listens yet, the server is loading, a cluster is not ready.
type unavailableError struct {
	msg   error
	cause error
}

func (e *unavailableError) Error() string { return e.msg.Error() }
func (e *unavailableError) Unwrap() error { return e.cause }

// IsUnavailable reports whether err (from Open or OpenExisting, or any Redis
// command) means that Redis could not be reached or is not ready yet: the
// connection was refused, reset or timed out, or the server answered LOADING,
// MASTERDOWN, CLUSTERDOWN or TRYAGAIN. Waiting and retrying may then
// succeed; for any other error (a malformed URL, refused credentials, an
// invalid hub name, a canceled context) it will not.
func IsUnavailable(err error) bool {
	var ue *unavailableError
	if errors.As(err, &ue) {
		return true
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	return isUnavailableErr(err)
}

func isUnavailableErr(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ENOENT) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if redis.IsLoadingError(err) || redis.IsMasterDownError(err) || redis.IsClusterDownError(err) || redis.IsTryAgainError(err) {
		return true
	}
	s := err.Error()
	for _, p := range []string{"LOADING ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ", "connection refused", "i/o timeout", "connection reset"} {
		if strings.HasPrefix(s, p) || strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// checkHubNameText refuses hub names that are not printable UTF-8 text
// before ValidateHubName applies the letters-and-digits rule, so that the
// error says plainly what is wrong with such a name.
func checkHubNameText(hub string) error {
	const rule = "a task hub name must be 3-45 characters, start with a letter, and contain only letters and digits (A-Z, a-z, 0-9; no '{', '}', ':' or other punctuation)"
	if !utf8.ValidString(hub) {
		return fmt.Errorf("invalid task hub name %q: it is not valid UTF-8; %s", hub, rule)
	}
	for i, r := range hub {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return fmt.Errorf("invalid task hub name %q: it has the control character %U at byte %d; %s", hub, r, i+1, rule)
		}
		if r == '{' || r == '}' || r == ':' {
			return fmt.Errorf("invalid task hub name %q: %q at byte %d is not allowed (it would change the Redis key layout); %s", hub, r, i+1, rule)
		}
	}
	return nil
}

// NewExisting is New for a task hub that must already exist: it reads the
// hub's partition count and writes nothing (no metadata, streams or consumer
// groups; a worker started with New creates the groups). When the hub does
// not exist it returns a *HubNotFoundError listing the hubs that exist.
// The caller keeps ownership of client.
func NewExisting(ctx context.Context, client redis.UniversalClient, hub string, opts Options) (*Store, error) {
	if err := checkHubNameText(hub); err != nil {
		return nil, err
	}
	s, err := newStore(client, hub, opts)
	if err != nil {
		return nil, err
	}
	meta := s.hk.meta()
	v, err := client.HGet(ctx, meta, "partitions").Result()
	if errors.Is(err, redis.Nil) {
		hubs, lerr := ListHubs(ctx, client)
		if lerr != nil {
			return nil, fmt.Errorf("task hub %s: %w (and listing the existing hubs failed: %v)", hub, ErrHubNotFound, lerr)
		}
		return nil, &HubNotFoundError{Hub: hub, Existing: hubs}
	}
	if err != nil {
		return nil, fmt.Errorf("task hub %s: read metadata: %w", hub, err)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxPartitions {
		return nil, fmt.Errorf("task hub %s: stored partition count %q in %s is invalid", hub, v, meta)
	}
	s.n = n
	s.parts = make([]partKeys, n)
	for p := range s.parts {
		s.parts[p] = newPartKeys(hub, p)
	}
	preloadScripts(ctx, client)
	return s, nil
}

// ErrHubNotFound is matched (errors.Is) by the *HubNotFoundError of
// OpenExisting and NewExisting.
var ErrHubNotFound = errors.New("no such task hub")

// HubNotFoundError says that a task hub does not exist and which ones do.
// Its message is, for example, `no task hub "TypoHub" in this Redis;
// existing hubs: DurableFunctionsHub`. Hub names are case-sensitive; when an
// existing hub differs only in case, the message says so.
type HubNotFoundError struct {
	Hub      string   // the name asked for
	Existing []string // the hubs that exist, sorted
}

// Error implements error.
func (e *HubNotFoundError) Error() string {
	if len(e.Existing) == 0 {
		return fmt.Sprintf("no task hub %q in this Redis; it has no task hubs yet (a hub is created by `durablewasm deploy`, `serve` or `up`)", e.Hub)
	}
	msg := fmt.Sprintf("no task hub %q in this Redis; existing hubs: %s", e.Hub, strings.Join(e.Existing, ", "))
	for _, h := range e.Existing {
		if strings.EqualFold(h, e.Hub) {
			msg += fmt.Sprintf(" (task hub names are case-sensitive: did you mean %q?)", h)
			break
		}
	}
	return msg
}

// Is makes errors.Is(err, ErrHubNotFound) true.
func (e *HubNotFoundError) Is(target error) bool { return target == ErrHubNotFound }

// newClient builds a client for rawURL and returns it with a description of
// the address(es) it connects to.
func newClient(rawURL string, poolSize int) (redis.UniversalClient, string, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, "", fmt.Errorf("invalid Redis URL %q: expected redis://host:port, rediss://, unix:///path or redis+cluster://host1:port,host2:port", RedactURL(rawURL))
	}
	switch strings.ToLower(scheme) {
	case "redis+cluster", "rediss+cluster":
		co, err := parseClusterURL(strings.TrimSuffix(strings.ToLower(scheme), "+cluster"), rest)
		if err != nil {
			return nil, "", fmt.Errorf("invalid Redis Cluster URL %q: %s (expected redis+cluster://host1:port,host2:port/)", RedactURL(rawURL), scrubSecret(err.Error(), rawURL))
		}
		if co.PoolSize == 0 {
			co.PoolSize = poolSize
		}
		co.ReadBufferSize, co.WriteBufferSize = connBuffer(co.ReadBufferSize), connBuffer(co.WriteBufferSize)
		// go-redis reloads the slot map on MOVED/ASK, but not when a
		// crashed master refuses connections: with its default of 60 s,
		// the partitions of a master that failed over stayed unreachable
		// that long (TestClusterForcedFailoverDefaultClient). One CLUSTER
		// SLOTS every 2 s bounds it.
		if co.ClusterStateReloadInterval == 0 {
			co.ClusterStateReloadInterval = ClusterStateReloadInterval
		}
		return redis.NewClusterClient(co), strings.Join(co.Addrs, ","), nil
	case "redis", "rediss", "unix":
		ro, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, "", fmt.Errorf("invalid Redis URL %q: %s", RedactURL(rawURL), scrubSecret(err.Error(), rawURL))
		}
		if ro.PoolSize == 0 {
			ro.PoolSize = poolSize
		}
		ro.ReadBufferSize, ro.WriteBufferSize = connBuffer(ro.ReadBufferSize), connBuffer(ro.WriteBufferSize)
		return redis.NewClient(ro), ro.Addr, nil
	default:
		return nil, "", fmt.Errorf("invalid Redis URL %q: unknown scheme %q; accepted are redis://, rediss://, unix:// and redis+cluster://", RedactURL(rawURL), scheme)
	}
}

// connBufferSize is the read and write buffer of each connection unless
// the URL sets one. go-redis' default of 32 KiB each, over the hundred
// connections a worker holds (a blocking read per partition stream among
// them), was 12 MiB of a worker's heap; larger replies read through the
// buffer all the same.
const connBufferSize = 8 << 10

// connBuffer is n, or connBufferSize when n is not set.
func connBuffer(n int) int {
	if n == 0 {
		return connBufferSize
	}
	return n
}

// parseClusterURL turns "user:pw@h1:p1,h2:p2/?q" into go-redis cluster
// options via redis.ParseClusterURL ("redis://user:pw@h1:p1?addr=h2:p2&q").
func parseClusterURL(scheme, rest string) (*redis.ClusterOptions, error) {
	hostpart, query, _ := strings.Cut(rest, "?")
	hostpart = strings.TrimSuffix(hostpart, "/")
	if strings.Contains(hostpart, "/") {
		return nil, fmt.Errorf("a cluster URL has no path or database number")
	}
	userinfo := ""
	if i := strings.LastIndex(hostpart, "@"); i >= 0 {
		userinfo, hostpart = hostpart[:i+1], hostpart[i+1:]
	}
	var hosts []string
	for _, h := range strings.Split(hostpart, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("no host:port given")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	u := scheme + "://" + userinfo + hosts[0]
	if enc := q.Encode(); enc != "" {
		u += "?" + enc
	}
	return redis.ParseClusterURL(u)
}

// redacted replaces a password in RedactURL's output.
const redacted = "xxxxx"

// RedactURL returns rawURL with its credentials masked, for messages and
// logs: "redis://user:secret@host:6379/0" becomes
// "redis://user:xxxxx@host:6379/0" (as net/url's URL.Redacted does), a
// userinfo without a colon ("redis://secret@host") is masked whole, since
// it may be a password, and so are the values of query parameters whose name
// contains "pass", "secret" or "token". It works on every form Open accepts
// (cluster URLs with several hosts, unix:// sockets) and on text that is not
// a URL at all, so it never fails; it never shortens anything but secrets.
func RedactURL(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	prefix := ""
	if ok {
		prefix = scheme + "://"
	} else {
		rest = rawURL
	}
	authority, query, hasQuery := strings.Cut(rest, "?")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo := authority[:at]
		if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
			userinfo = user + ":" + redacted
		} else if userinfo != "" {
			userinfo = redacted
		}
		authority = userinfo + authority[at:]
	}
	out := prefix + authority
	if hasQuery {
		parts := strings.Split(query, "&")
		for i, kv := range parts {
			k, _, hasVal := strings.Cut(kv, "=")
			lk := strings.ToLower(k)
			if hasVal && (strings.Contains(lk, "pass") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") || strings.Contains(lk, "pwd")) {
				parts[i] = k + "=" + redacted
			}
		}
		out += "?" + strings.Join(parts, "&")
	}
	return out
}

// scrubSecret removes the secrets of rawURL from msg (a message of a parser
// or a server that may quote the URL): the URL itself is replaced by its
// redacted form and the password, raw and percent-decoded, by xxxxx.
func scrubSecret(msg, rawURL string) string {
	msg = strings.ReplaceAll(msg, rawURL, RedactURL(rawURL))
	for _, secret := range urlSecrets(rawURL) {
		msg = strings.ReplaceAll(msg, secret, redacted)
	}
	return msg
}

// urlSecrets returns the secrets RedactURL masks in rawURL (each at least 3
// bytes long, so that masking them cannot garble a message), raw and
// percent-decoded.
func urlSecrets(rawURL string) []string {
	var out []string
	add := func(v string) {
		if len(v) < 3 || v == redacted {
			return
		}
		out = append(out, v)
		if d, err := url.PathUnescape(v); err == nil && d != v && len(d) >= 3 {
			out = append(out, d)
		}
	}
	_, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		rest = rawURL
	}
	authority, query, _ := strings.Cut(rest, "?")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo := authority[:at]
		if _, pass, hasPass := strings.Cut(userinfo, ":"); hasPass {
			add(pass)
		} else {
			add(userinfo)
		}
	}
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		lk := strings.ToLower(k)
		if strings.Contains(lk, "pass") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") || strings.Contains(lk, "pwd") {
			add(v)
		}
	}
	return out
}
