package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// want is an expected status code and response shape.
type want struct {
	code  int
	shape shape
}

// routeSpec is how the route-table test calls one route.
type routeSpec struct {
	query, body, contentType string
	// states maps an instance id of the fake store (or "-" for routes
	// without an instance) to the expected response.
	states map[string]want
}

// routeSpecs has an entry for every route of the router (checked).
// States: missing (not found), done (Completed), run (Running), failed.
var routeSpecs = map[string]routeSpec{
	"start": {states: map[string]want{"-": {202, shCheckStatus}}},
	"startWithID": {states: map[string]want{"missing": {202, shCheckStatus}, "done": {202, shCheckStatus},
		"run": {409, shMessage}}},
	"list":          {states: map[string]want{"-": {200, shList}}},
	"purgeByFilter": {query: "createdTimeFrom=2000-01-01T00:00:00Z", states: map[string]want{"-": {200, shPurge}}},
	"status": {states: map[string]want{"missing": {404, shEmpty}, "done": {200, shStatus}, "run": {202, shStatus},
		"failed": {200, shStatus}}},
	"purge":     {states: map[string]want{"missing": {404, shEmpty}, "done": {200, shPurge}, "run": {412, shString}}},
	"terminate": {query: "reason=bye", states: map[string]want{"missing": {404, shEmpty}, "done": {410, shEmpty}, "run": {202, shEmpty}}},
	"suspend":   {states: map[string]want{"missing": {404, shEmpty}, "done": {410, shEmpty}, "run": {202, shEmpty}}},
	"resume":    {states: map[string]want{"missing": {404, shEmpty}, "done": {410, shEmpty}, "run": {202, shEmpty}}},
	"rewind": {states: map[string]want{"missing": {404, shString}, "done": {412, shString}, "run": {412, shString},
		"failed": {202, shEmpty}}},
	"restart": {states: map[string]want{"missing": {400, shException}, "done": {202, shCheckStatus},
		"run": {202, shCheckStatus}}},
	"managementPayload": {states: map[string]want{"missing": {404, shEmpty}, "done": {200, shManagement}}},
	"raiseEvent": {body: `{"approved":true}`, contentType: "application/json", states: map[string]want{
		"missing": {404, shEmpty}, "done": {410, shEmpty}, "run": {202, shEmpty}}},
	"binding":          {states: map[string]want{"-": {200, shBinding}}},
	"httpStart":        {states: map[string]want{"-": {202, shCheckStatus}}},
	"httpStartAndWait": {query: "timeout=0&retryInterval=0", states: map[string]want{"-": {202, shCheckStatus}}},
}

// routePrefix renders a prefix of the router's table as a path.
func routePrefix(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	return "/" + strings.Join(segs, "/")
}

// routePath fills a route's pattern for instance id.
func routePath(pattern, id string) string {
	r := strings.NewReplacer("{functionName}", "Hello", "{instanceId}", id, "{eventName}", "Approval")
	return "/" + r.Replace(pattern)
}

// TestEveryRoute calls every route of the router's table under every prefix
// with each instance state, and checks the auth rule (no key, wrong key, key
// as header and as code, loopback-disabled mode on and off loopback), the
// status code, the headers and the JSON shape and key order.
func TestEveryRoute(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range routes {
		spec, ok := routeSpecs[rt.name]
		if !ok {
			t.Errorf("route %s (%s %s) has no entry in routeSpecs", rt.name, rt.method, rt.pattern)
			continue
		}
		seen[rt.name] = true
		for _, pre := range prefixes[rt.base] {
			for id, exp := range spec.states {
				path := routePrefix(pre) + routePath(rt.pattern, id)
				name := rt.method + " " + path
				t.Run(name, func(t *testing.T) {
					hdr := map[string]string{}
					if spec.contentType != "" {
						hdr["Content-Type"] = spec.contentType
					}
					target := path
					if spec.query != "" {
						target += "?" + spec.query
					}
					call := func(mod func(*Options), target string, hdr map[string]string, local string) (*fakeStore, *responseOf) {
						s, f := newTestServer(t, mod)
						w := serve(s, request{method: rt.method, target: target, body: spec.body, header: hdr, localAddr: local})
						return f, &responseOf{w, testOrigin + target}
					}
					with := func(k, v string) map[string]string {
						m := map[string]string{k: v}
						for a, b := range hdr {
							m[a] = b
						}
						return m
					}
					// Auth: no key, wrong key: 401 with an empty body.
					for _, h := range []map[string]string{hdr, with("x-functions-key", "wrong-key-0123456789")} {
						_, r := call(nil, target, h, "")
						if r.w.Code != 401 {
							t.Fatalf("without a valid key: %d, want 401", r.w.Code)
						}
						checkShape(t, r.w, shEmpty, r.url)
					}
					_, r := call(nil, addQuery(target, "code=wrong-key-0123456789"), hdr, "")
					if r.w.Code != 401 {
						t.Fatalf("wrong code: %d, want 401", r.w.Code)
					}
					// Good key as header, as code, and auth disabled on loopback.
					runs := []struct {
						what, target string
						hdr          map[string]string
						mod          func(*Options)
					}{
						{"header key", target, with("x-functions-key", testKey), nil},
						{"code", addQuery(target, "code="+testKey), hdr, nil},
						{"auth disabled", target, hdr, func(o *Options) { o.Keys, o.DisableAuth = nil, true }},
					}
					for _, run := range runs {
						_, r := call(run.mod, run.target, run.hdr, "")
						if r.w.Code != exp.code {
							t.Fatalf("%s: %d, want %d: %s", run.what, r.w.Code, exp.code, r.w.Body)
						}
						checkShape(t, r.w, exp.shape, r.url)
						if exp.shape == shCheckStatus && strings.Contains(run.target, "code=") &&
							!strings.Contains(r.w.Header().Get("Location"), "&code="+testKey) {
							t.Fatalf("%s: the code is not passed through: %s", run.what, r.w.Header().Get("Location"))
						}
					}
					// Auth disabled, but the request arrived on a non-loopback address.
					_, r = call(func(o *Options) { o.Keys, o.DisableAuth = nil, true }, target, hdr, "192.0.2.10:7071")
					if r.w.Code != 401 {
						t.Fatalf("auth disabled, non-loopback: %d, want 401", r.w.Code)
					}
				})
			}
		}
	}
	for name := range routeSpecs {
		if !seen[name] {
			t.Errorf("routeSpecs has %s, which is not a route", name)
		}
	}
}

type responseOf struct {
	w   *httptest.ResponseRecorder
	url string
}

func addQuery(target, kv string) string {
	if strings.Contains(target, "?") {
		return target + "&" + kv
	}
	return target + "?" + kv
}
