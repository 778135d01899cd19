;; Fixture of host/instrument_test.go: no global and no export section.
(module
  (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
  (func (loop)))
