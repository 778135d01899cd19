package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/durablewasm/durablewasm/host"
)

// wireApp is the stored JSON form of a host.AppRecord (field names are read
// by scriptPutModule: functions[].name).
type wireApp struct {
	Name       string         `json:"name"`
	Digest     string         `json:"digest"`
	Functions  []wireFunction `json:"functions"`
	DeployedAt string         `json:"deployedAt"` // unix ns
}

type wireFunction struct {
	Name string `json:"name"`
	Kind int    `json:"kind"`
}

func (w *wireApp) record() *host.AppRecord {
	r := &host.AppRecord{Name: w.Name, Digest: w.Digest, DeployedAt: parseNS(w.DeployedAt)}
	for _, f := range w.Functions {
		r.Functions = append(r.Functions, host.FunctionInfo{Name: f.Name, Kind: f.Kind})
	}
	return r
}

// PutModule stores wasm under digest (written once: an existing module with
// that digest is kept), points app at digest with the given functions, and
// maps each function name to app, in one script. Function names the app no
// longer registers are unmapped. If a function name is registered by another
// app, nothing is written and the error names the function and both apps.
// The digest is taken as given (the caller computes it).
func (s *Store) PutModule(ctx context.Context, app string, digest string, wasm []byte, functions []host.FunctionInfo) error {
	if app == "" || digest == "" {
		return fmt.Errorf("put module: app name and digest must not be empty (app %q, digest %q)", app, digest)
	}
	w := wireApp{Name: app, Digest: digest, Functions: []wireFunction{}, DeployedAt: strconv.FormatInt(time.Now().UnixNano(), 10)}
	seen := map[string]bool{}
	args := []interface{}{app, wasm, ""}
	for _, f := range functions {
		if f.Name == "" {
			return fmt.Errorf("put module %s for app %s: a function has an empty name", digest, app)
		}
		if seen[f.Name] {
			return fmt.Errorf("put module %s for app %s: function %s is registered twice", digest, app, f.Name)
		}
		seen[f.Name] = true
		w.Functions = append(w.Functions, wireFunction{Name: f.Name, Kind: f.Kind})
		args = append(args, f.Name)
	}
	rec, _ := json.Marshal(w)
	args[2] = string(rec)
	res, err := scriptPutModule.Run(ctx, s.rdb, []string{s.hk.module(digest), s.hk.apps(), s.hk.funcs(), s.hk.modules()}, args...).StringSlice()
	if err != nil {
		return fmt.Errorf("put module %s for app %s: %w", digest, app, err)
	}
	if len(res) == 3 && res[0] == "conflict" {
		return fmt.Errorf("put module %s for app %s: function %s is already registered by app %s; rename it or delete app %s first", digest, app, res[1], res[2], res[2])
	}
	return nil
}

// GetModule returns the bytes of the module with that digest, or
// host.ErrModuleNotFound.
func (s *Store) GetModule(ctx context.Context, digest string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.hk.module(digest)).Bytes()
	if isNil(err) {
		return nil, fmt.Errorf("get module %s: %w", digest, host.ErrModuleNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get module %s: %w", digest, err)
	}
	return b, nil
}

// GetApp returns an app record, or host.ErrModuleNotFound.
func (s *Store) GetApp(ctx context.Context, app string) (*host.AppRecord, error) {
	raw, err := s.rdb.HGet(ctx, s.hk.apps(), app).Result()
	if isNil(err) {
		return nil, fmt.Errorf("get app %s: %w", app, host.ErrModuleNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get app %s: %w", app, err)
	}
	var w wireApp
	if err := json.Unmarshal([]byte(raw), &w); err != nil {
		return nil, fmt.Errorf("get app %s: decode record: %w", app, err)
	}
	return w.record(), nil
}

// ListApps returns all apps sorted by name.
func (s *Store) ListApps(ctx context.Context) ([]host.AppRecord, error) {
	all, err := s.rdb.HGetAll(ctx, s.hk.apps()).Result()
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	out := make([]host.AppRecord, 0, len(all))
	for name, raw := range all {
		var w wireApp
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			return nil, fmt.Errorf("list apps: decode record of %s: %w", name, err)
		}
		out = append(out, *w.record())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// FindFunction returns the app that registers a function of that name and
// the function's info, or host.ErrFunctionNotFound.
func (s *Store) FindFunction(ctx context.Context, name string) (*host.AppRecord, host.FunctionInfo, error) {
	// One round trip: the function's app and that app's record (both hub
	// keys share the hub's hash slot).
	res, err := scriptFindFunction.Run(ctx, s.rdb, []string{s.hk.funcs(), s.hk.apps()}, name).StringSlice()
	if isNil(err) {
		return nil, host.FunctionInfo{}, fmt.Errorf("find function %s: %w", name, host.ErrFunctionNotFound)
	}
	if err != nil {
		return nil, host.FunctionInfo{}, fmt.Errorf("find function %s: %w", name, err)
	}
	app := res[0]
	if len(res) < 2 {
		return nil, host.FunctionInfo{}, fmt.Errorf("find function %s: get app %s: %w", name, app, host.ErrModuleNotFound)
	}
	var w wireApp
	if err := json.Unmarshal([]byte(res[1]), &w); err != nil {
		return nil, host.FunctionInfo{}, fmt.Errorf("find function %s: get app %s: decode record: %w", name, app, err)
	}
	rec := w.record()
	for _, f := range rec.Functions {
		if f.Name == name {
			return rec, f, nil
		}
	}
	return nil, host.FunctionInfo{}, fmt.Errorf("find function %s: app %s no longer registers it: %w", name, app, host.ErrFunctionNotFound)
}
