//go:build wasip1

package durable

import (
	"unsafe"

	"github.com/durablewasm/durablewasm/abi"
)

// wasmRuntime serves the exports of this Wasm instance from DefaultRegistry;
// nil until the first export that runs a function (see wasmRT).
var wasmRuntime *rt

// wasmRT returns wasmRuntime, creating it on first use: after every init
// function ran, so that the runtime reads the StepDeadline a guest set in
// one. Exports are never called concurrently, so it needs no lock.
func wasmRT() *rt {
	if wasmRuntime == nil {
		orch, act := DefaultRegistry.lookups()
		wasmRuntime = newRuntime(wasmHost{}, orch, act, 0)
	}
	return wasmRuntime
}

// allocBuf is the buffer last returned by durablewasm_alloc. Holding it in a
// global keeps it alive until the next export call.
var allocBuf []byte

// maxKeptAlloc is the largest alloc buffer kept for reuse after it was read.
const maxKeptAlloc = 64 << 10

//go:wasmexport durablewasm_abi_version
func exportABIVersion() int32 { return abi.Version }

//go:wasmexport durablewasm_alloc
func exportAlloc(size int32) uint32 {
	if size < 0 {
		return 0
	}
	n := int(size)
	if n == 0 {
		n = 1
	}
	if cap(allocBuf) < n {
		allocBuf = make([]byte, n)
	}
	allocBuf = allocBuf[:cap(allocBuf)]
	return uint32(uintptr(unsafe.Pointer(&allocBuf[0])))
}

// request returns the bytes the host wrote at ptr/n, which must lie in the
// buffer of the last durablewasm_alloc. It returns ok=false otherwise. The
// result is a view; callers copy it.
func request(ptr, n uint32) (b []byte, ok bool) {
	if n == 0 {
		return nil, true
	}
	if len(allocBuf) == 0 {
		return nil, false
	}
	base := uint32(uintptr(unsafe.Pointer(&allocBuf[0])))
	if ptr < base || uint64(ptr-base)+uint64(n) > uint64(len(allocBuf)) {
		return nil, false
	}
	return allocBuf[ptr-base : ptr-base+n], true
}

// releaseAlloc drops a large alloc buffer once its contents were copied.
func releaseAlloc() {
	if cap(allocBuf) > maxKeptAlloc {
		allocBuf = nil
	}
}

//go:wasmexport durablewasm_list_functions
func exportListFunctions() int32 {
	for _, f := range DefaultRegistry.Functions() {
		hostRegister(f.Kind, f.Name)
	}
	return abi.StatusOK
}

//go:wasmexport durablewasm_orchestrator_start
func exportOrchestratorStart(handle int32, ptr, n uint32) int32 {
	b, ok := request(ptr, n)
	if !ok {
		return abi.StatusBadRequest
	}
	st := wasmRT().Start(handle, b) // copies what it keeps
	releaseAlloc()
	return st
}

//go:wasmexport durablewasm_orchestrator_resume
func exportOrchestratorResume(handle int32) int32 { return wasmRT().Resume(handle) }

//go:wasmexport durablewasm_orchestrator_drop
func exportOrchestratorDrop(handle int32) int32 { return wasmRT().Drop(handle) }

//go:wasmexport durablewasm_activity_run
func exportActivityRun(handle int32, ptr, n uint32) int32 {
	b, ok := request(ptr, n)
	if !ok {
		return abi.StatusBadRequest
	}
	st := wasmRT().RunActivity(handle, b) // copies what it keeps
	releaseAlloc()
	return st
}

//go:wasmexport durablewasm_activity_resume
func exportActivityResume(handle int32) int32 { return wasmRT().ResumeActivity(handle) }

//go:wasmexport durablewasm_activity_drop
func exportActivityDrop(handle int32) int32 { return wasmRT().DropActivity(handle) }
