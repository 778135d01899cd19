;; Test module for host/instrument_test.go (the loop-interrupt rewriter).
;; Regenerate loops.wasm with: wat2wasm loops.wat -o loops.wasm
(module
  ;; The rewriter calls the module's own sched_yield import to leave native code.
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
  (global $g (mut i32) (i32.const 42))
  (global $h i64 (i64.const 7))
  (memory (export "memory") 1)
  ;; sum returns 1 + 2 + ... + n, with a loop and a nested block.
  (func (export "sum") (param $n i32) (result i32) (local $i i32) (local $s i32)
    block $done
      loop $next
        local.get $i
        local.get $n
        i32.ge_u
        br_if $done
        local.get $i
        i32.const 1
        i32.add
        local.tee $i
        local.get $s
        i32.add
        local.set $s
        br $next
      end
    end
    local.get $s)
  ;; spin never returns.
  (func (export "spin") (local $x i64)
    loop $forever
      local.get $x
      i64.const 1
      i64.add
      local.set $x
      i32.const 0
      local.get $x
      i64.store offset=8
      br $forever
    end)
  ;; g reads the module's own first global.
  (func (export "g") (result i32) global.get $g)
  ;; misc exercises immediates the rewriter must step over.
  (func (export "misc") (param $k i32) (result i32)
    block $a
      block $b
        local.get $k
        br_table $a $b $a
      end
      i32.const 0
      i32.const 1
      i32.const 16
      memory.fill
      f64.const 1.5
      f32.const 2.5
      drop
      drop
    end
    i32.const 0
    i32.const 8
    i32.const 4
    memory.copy
    i32.const 3
    i32.extend8_s
    memory.size
    i32.add
    i32.const 0
    i32.load offset=4 align=4
    i32.add))
