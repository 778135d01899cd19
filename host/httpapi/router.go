package httpapi

import (
	"net/http"
	"net/url"
	"strings"
)

// base is a group of path prefixes a route is served under.
type base int

const (
	// baseManagement: /runtime/webhooks/durabletask and /durabletask.
	baseManagement base = iota
	// baseStarter: the root and /api (the HTTP-trigger starters of the
	// Durable Functions samples).
	baseStarter
)

// prefixes lists the path segments of each base's prefixes; literals are
// matched case-insensitively.
var prefixes = map[base][][]string{
	baseManagement: {{"runtime", "webhooks", "durabletask"}, {"durabletask"}},
	baseStarter:    {{}, {"api"}},
}

// route is one entry of the route table.
type route struct {
	// name identifies the route in logs and tests.
	name   string
	method string
	base   base
	// pattern is the path after the prefix: literal segments (matched
	// case-insensitively) and {param} segments (one non-empty decoded
	// segment each).
	pattern string
	handle  func(s *Server, w http.ResponseWriter, r *http.Request, a *args)
}

// params are the values of a matched route's {param} segments, decoded.
type params map[string]string

// args are a matched request's path parameters and parsed query.
type args struct {
	path params
	q    query
}

// routes is the route table, in matching order. Anything else is 404.
var routes = []route{
	{"start", http.MethodPost, baseManagement, "orchestrators/{functionName}", (*Server).handleStart},
	{"startWithID", http.MethodPost, baseManagement, "orchestrators/{functionName}/{instanceId}", (*Server).handleStart},
	{"list", http.MethodGet, baseManagement, "instances", (*Server).handleList},
	{"purgeByFilter", http.MethodDelete, baseManagement, "instances", (*Server).handlePurgeByFilter},
	{"status", http.MethodGet, baseManagement, "instances/{instanceId}", (*Server).handleStatus},
	{"purge", http.MethodDelete, baseManagement, "instances/{instanceId}", (*Server).handlePurge},
	{"terminate", http.MethodPost, baseManagement, "instances/{instanceId}/terminate", (*Server).handleTerminate},
	{"suspend", http.MethodPost, baseManagement, "instances/{instanceId}/suspend", (*Server).handleSuspend},
	{"resume", http.MethodPost, baseManagement, "instances/{instanceId}/resume", (*Server).handleResume},
	{"rewind", http.MethodPost, baseManagement, "instances/{instanceId}/rewind", (*Server).handleRewind},
	{"restart", http.MethodPost, baseManagement, "instances/{instanceId}/restart", (*Server).handleRestart},
	{"managementPayload", http.MethodGet, baseManagement, "instances/{instanceId}/managementPayload", (*Server).handleManagementPayload},
	{"raiseEvent", http.MethodPost, baseManagement, "instances/{instanceId}/raiseEvent/{eventName}", (*Server).handleRaiseEvent},
	{"binding", http.MethodGet, baseManagement, "binding", (*Server).handleBinding},
	{"httpStart", http.MethodPost, baseStarter, "orchestrators/{functionName}", (*Server).handleHTTPStart},
	{"httpStartAndWait", http.MethodPost, baseStarter, "orchestrators/{functionName}/wait", (*Server).handleHTTPStartAndWait},
}

// splitPath splits an escaped URL path into decoded segments, ignoring
// leading and trailing slashes. ok is false when an escape is invalid.
// Empty segments inside the path are kept (and match no route).
func splitPath(escaped string) (segs []string, ok bool) {
	escaped = strings.Trim(escaped, "/")
	if escaped == "" {
		return nil, true
	}
	raw := strings.Split(escaped, "/")
	segs = make([]string, len(raw))
	for i, s := range raw {
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		segs[i] = d
	}
	return segs, true
}

// match finds the route for method and path segments. rpc reports a match
// under the local-RPC prefix.
func match(method string, segs []string) (rt *route, p params, rpc bool) {
	for i := range routes {
		r := &routes[i]
		if r.method != method {
			continue
		}
		pat := strings.Split(r.pattern, "/")
		for pi, pre := range prefixes[r.base] {
			if len(segs) != len(pre)+len(pat) || !literalsMatch(pre, segs) {
				continue
			}
			if p, ok := matchPattern(pat, segs[len(pre):]); ok {
				return r, p, r.base == baseManagement && pi == 1
			}
		}
	}
	return nil, nil, false
}

// literalsMatch reports whether segs starts with the literals lits, compared
// case-insensitively.
func literalsMatch(lits, segs []string) bool {
	for i, l := range lits {
		if !strings.EqualFold(l, segs[i]) {
			return false
		}
	}
	return true
}

// matchPattern matches segs (same length as pat) against pat.
func matchPattern(pat, segs []string) (params, bool) {
	var p params
	for i, ps := range pat {
		if strings.HasPrefix(ps, "{") {
			if segs[i] == "" {
				return nil, false
			}
			if p == nil {
				p = params{}
			}
			p[strings.Trim(ps, "{}")] = segs[i]
			continue
		}
		if !strings.EqualFold(ps, segs[i]) {
			return nil, false
		}
	}
	return p, true
}
