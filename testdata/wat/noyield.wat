;; Fixture of host/instrument_test.go: no sched_yield import (not instrumentable).
(module
  (func (export "f") (loop)))
