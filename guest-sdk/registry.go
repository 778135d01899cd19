package durable

import (
	"fmt"
	"sort"
	"sync"
)

// Registrar is anything functions can be registered with: the package-level
// DefaultRegistry (served by the Wasm exports), a *Registry, or a
// durabletest.Env. Sample and library code can take a Registrar so that the
// same registration runs in a guest and in a native test.
type Registrar interface {
	RegisterOrchestrator(name string, fn func(ctx *OrchestrationContext) (any, error))
	RegisterActivity(name string, fn func(ctx *ActivityContext) (any, error))
}

// Registry is a set of named orchestrators and activities. The zero value is
// not usable; create one with NewRegistry. It is safe for concurrent use.
type Registry struct {
	mu            sync.RWMutex
	orchestrators map[string]func(*OrchestrationContext) (any, error)
	activities    map[string]func(*ActivityContext) (any, error)
}

var _ Registrar = (*Registry)(nil)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		orchestrators: map[string]func(*OrchestrationContext) (any, error){},
		activities:    map[string]func(*ActivityContext) (any, error){},
	}
}

// DefaultRegistry holds the functions served by the Wasm exports of a guest
// module. RegisterOrchestrator and RegisterActivity add to it.
var DefaultRegistry = NewRegistry()

// RegisterOrchestrator adds an orchestrator to DefaultRegistry; see
// (*Registry).RegisterOrchestrator. Call it from an init function.
func RegisterOrchestrator(name string, fn func(ctx *OrchestrationContext) (any, error)) {
	DefaultRegistry.RegisterOrchestrator(name, fn)
}

// RegisterActivity adds an activity to DefaultRegistry; see
// (*Registry).RegisterActivity. Call it from an init function.
func RegisterActivity(name string, fn func(ctx *ActivityContext) (any, error)) {
	DefaultRegistry.RegisterActivity(name, fn)
}

// RegisterOrchestrator registers fn as the orchestrator called name. The
// value fn returns is the orchestration's output, encoded with json.Marshal
// (nil becomes null); a non-nil error fails the orchestration with a failure
// of type "OrchestratorError" carrying err.Error(). A panic fails it with type
// "Panic" and the goroutine's stack. It panics if name is empty, fn is nil or
// an orchestrator of that name is already registered.
func (r *Registry) RegisterOrchestrator(name string, fn func(ctx *OrchestrationContext) (any, error)) {
	if name == "" || fn == nil {
		panic("durable: RegisterOrchestrator needs a name and a function")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.orchestrators[name]; dup {
		panic(fmt.Sprintf("durable: orchestrator %q registered twice", name))
	}
	r.orchestrators[name] = fn
}

// RegisterActivity registers fn as the activity called name. The value fn
// returns is the activity's result, encoded with json.Marshal (nil becomes
// null); a non-nil error fails the activity with type "ActivityError"; a panic
// fails it with type "Panic". It panics if name is empty, fn is nil or an
// activity of that name is already registered.
func (r *Registry) RegisterActivity(name string, fn func(ctx *ActivityContext) (any, error)) {
	if name == "" || fn == nil {
		panic("durable: RegisterActivity needs a name and a function")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.activities[name]; dup {
		panic(fmt.Sprintf("durable: activity %q registered twice", name))
	}
	r.activities[name] = fn
}

// Orchestrator returns the orchestrator registered as name, or nil.
func (r *Registry) Orchestrator(name string) func(*OrchestrationContext) (any, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.orchestrators[name]
}

// Activity returns the activity registered as name, or nil.
func (r *Registry) Activity(name string) func(*ActivityContext) (any, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.activities[name]
}

// Function is one registered function, as reported by Functions.
type Function struct {
	// Kind is abi.KindOrchestrator or abi.KindActivity.
	Kind int32
	// Name is the registered name.
	Name string
}

// Functions lists the registered functions sorted by name, an orchestrator
// before an activity of the same name.
func (r *Registry) Functions() []Function {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Function, 0, len(r.orchestrators)+len(r.activities))
	for n := range r.orchestrators {
		out = append(out, Function{Kind: kindOrchestrator, Name: n})
	}
	for n := range r.activities {
		out = append(out, Function{Kind: kindActivity, Name: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// lookups returns the bridge lookup functions for r.
func (r *Registry) lookups() (orch, act func(string) any) {
	orch = func(name string) any {
		if fn := r.Orchestrator(name); fn != nil {
			return fn
		}
		return nil
	}
	act = func(name string) any {
		if fn := r.Activity(name); fn != nil {
			return fn
		}
		return nil
	}
	return orch, act
}
