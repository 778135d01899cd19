// Package host is the runtime's data model and the contracts its parts
// share: instances, control messages, activity items, timers, commits,
// module settings, the sentinel errors stores return, the rules for names,
// and the failure types the host gives. The runtime itself is in its
// subpackages, one concern each:
//
//	host/replay   the replay state machine of one orchestration generation (pure)
//	host/decide   a step's decisions: state + step result + environment → Commit (pure)
//	host/sandbox  the wazero engine and guest instances: compile, instantiate, host functions, limits
//	host/worker   the worker loops: leases, partitions, batches, activities, quarantine
//	host/client   the client API the CLI, the HTTP API and embedders use
//	host/httpapi  the Durable Functions HTTP API over the client
//	host/dfjson   the Durable Functions JSON of statuses and histories (CLI and HTTP)
//
// Import rules (checked by TestImportRules): host imports only abi;
// host/replay only abi; host/decide host, replay and abi, and nothing that
// does I/O; host/sandbox knows nothing of workers, clients or decisions;
// host/worker and host/client do not import each other; host/httpapi uses
// the client and dfjson only; nothing under host imports redisstore, go-redis or cmd.
// Each consumer of storage declares the narrow interface it needs
// (client.Store, worker.Store); redisstore.Store implements both.
package host
