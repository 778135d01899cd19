;; Fixture of host/instrument_test.go: no global, type () -> () missing.
(module
  (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
  (func (export "f") (result i32) (loop) (i32.const 7)))
