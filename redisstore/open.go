package redisstore

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Open connects to the Redis named by rawURL and returns a Store for hub (see
// New). Accepted URL forms:
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
// error naming the address it tried and how to fix it. The Store's Close
// closes the client.
func Open(ctx context.Context, rawURL, hub string, opts Options) (*Store, error) {
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
		return nil, fmt.Errorf("cannot reach Redis at %s: %v — start redis-server there, pass the right --redis-url, or run `durablewasm up` for the embedded one", addr, err)
	}
	s, err := New(ctx, client, hub, opts)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// newClient builds a client for rawURL and returns it with a description of
// the address(es) it connects to.
func newClient(rawURL string, poolSize int) (redis.UniversalClient, string, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, "", fmt.Errorf("invalid Redis URL %q: expected redis://host:port, rediss://, unix:///path or redis+cluster://host1:port,host2:port", rawURL)
	}
	switch strings.ToLower(scheme) {
	case "redis+cluster", "rediss+cluster":
		co, err := parseClusterURL(strings.TrimSuffix(strings.ToLower(scheme), "+cluster"), rest)
		if err != nil {
			return nil, "", fmt.Errorf("invalid Redis Cluster URL %q: %w (expected redis+cluster://host1:port,host2:port/)", rawURL, err)
		}
		if co.PoolSize == 0 {
			co.PoolSize = poolSize
		}
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
			return nil, "", fmt.Errorf("invalid Redis URL %q: %w", rawURL, err)
		}
		if ro.PoolSize == 0 {
			ro.PoolSize = poolSize
		}
		return redis.NewClient(ro), ro.Addr, nil
	default:
		return nil, "", fmt.Errorf("invalid Redis URL %q: unknown scheme %q; accepted are redis://, rediss://, unix:// and redis+cluster://", rawURL, scheme)
	}
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
