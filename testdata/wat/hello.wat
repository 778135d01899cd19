;; hello.wat: a durablewasm ABI v1 guest written by hand, without any SDK,
;; from abi/README.md alone.
;;
;;   orchestrator "WatHello": calls activity "WatEcho" with "a", then with "b",
;;                            and completes with the second result.
;;   activity "WatEcho":      returns its input unchanged.
;;
;; Rebuild with:  wat2wasm testdata/wat/hello.wat -o testdata/wat/hello.wasm
;;
;; Memory layout (one 64 KiB page to start with, grown on demand):
;;      16  "WatHello"            (8 bytes)
;;      32  "WatEcho"             (7 bytes)
;;      48  "\"a\""               (3 bytes)
;;      56  "\"b\""               (3 bytes)
;;      64  failure JSON "table full"        (69 bytes)
;;     160  failure JSON "host call failed"  (63 bytes)
;;     240  "WatEcho ran"         (11 bytes, activity log line)
;;    1024  orchestration table: 64 slots of 32 bytes
;;            +0 used (0/1)  +4 handle  +8 step  +12 task A  +16 task B
;;    3072  poll scratch: one i32 task id
;;    4096  task_result buffer, 256 bytes
;;    8192  heap: bump allocator, reset by durablewasm_alloc and by resume
;;
;; Execution model used here: an orchestration is a state machine whose step
;; counter lives in its slot. start and resume simply run the machine from
;; that counter until it has to wait (poll returns PollNone: return StatusOK,
;; the orchestration is parked) or until it completes. Nothing runs between
;; export calls, so no coroutines are needed. On a cold replay the host starts
;; a fresh handle and the machine re-issues the same calls in the same order,
;; which is all determinism requires.
(module
  ;; ---- host imports (module "durablewasm") --------------------------------
  (import "durablewasm" "register"
    (func $register (param $kind i32) (param $name_ptr i32) (param $name_len i32)))
  (import "durablewasm" "schedule_activity"
    (func $schedule_activity (param $h i32) (param $name_ptr i32) (param $name_len i32)
                             (param $in_ptr i32) (param $in_len i32) (result i32)))
  (import "durablewasm" "poll"
    (func $poll (param $h i32) (param $ids_ptr i32) (param $count i32) (result i32)))
  (import "durablewasm" "task_result"
    (func $task_result (param $h i32) (param $task i32) (param $buf_ptr i32) (param $buf_cap i32) (result i64)))
  (import "durablewasm" "complete"
    (func $complete (param $h i32) (param $status i32) (param $ptr i32) (param $len i32) (result i32)))
  (import "durablewasm" "log"
    (func $log (param $h i32) (param $level i32) (param $ptr i32) (param $len i32)))

  (memory (export "memory") 1)

  (data (i32.const 16) "WatHello")
  (data (i32.const 32) "WatEcho")
  (data (i32.const 48) "\"a\"")
  (data (i32.const 56) "\"b\"")
  (data (i32.const 64) "{\"message\":\"WAT guest: orchestration table full\",\"type\":\"GuestError\"}")
  (data (i32.const 160) "{\"message\":\"WAT guest: a host call failed\",\"type\":\"GuestError\"}")
  (data (i32.const 240) "WatEcho ran")

  ;; constants of abi/README.md
  (global $SLOTS i32 (i32.const 1024))
  (global $NSLOTS i32 (i32.const 64))
  (global $POLLBUF i32 (i32.const 3072))
  (global $RESBUF i32 (i32.const 4096))
  (global $RESCAP i32 (i32.const 256))
  (global $HEAP i32 (i32.const 8192))

  (global $top (mut i32) (i32.const 8192))  ;; bump pointer
  (global $cur (mut i32) (i32.const 0))     ;; frame decoder cursor
  (global $end (mut i32) (i32.const 0))     ;; frame decoder end
  (global $fptr (mut i32) (i32.const 0))    ;; last decoded frame
  (global $flen (mut i32) (i32.const 0))
  (global $rptr (mut i32) (i32.const 0))    ;; last fetched task result
  (global $rlen (mut i32) (i32.const 0))

  ;; ---- memory -----------------------------------------------------------------

  ;; bump returns n bytes (8-aligned) from the heap, growing memory as needed;
  ;; it traps when memory cannot grow (a trap poisons the instance).
  (func $bump (param $n i32) (result i32)
    (local $p i32) (local $need i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7))
                              (i32.const -8)))
    (if (i32.lt_u (global.get $top) (local.get $p)) (then unreachable)) ;; overflow
    (local.set $need (i32.shr_u (i32.add (global.get $top) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then unreachable))))
    (local.get $p))

  ;; $eq compares two byte strings.
  (func $eq (param $a i32) (param $an i32) (param $b i32) (param $bn i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $an) (local.get $bn)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $an)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; ---- frames: u32 little-endian length, then that many bytes --------------

  (func $frames_begin (param $ptr i32) (param $len i32)
    (global.set $cur (local.get $ptr))
    (global.set $end (i32.add (local.get $ptr) (local.get $len))))

  ;; $next_frame decodes one frame into $fptr/$flen; 0 when malformed.
  (func $next_frame (result i32)
    (local $len i32)
    (if (i32.lt_u (i32.sub (global.get $end) (global.get $cur)) (i32.const 4))
      (then (return (i32.const 0))))
    (local.set $len (i32.load (global.get $cur)))  ;; wasm loads are little-endian
    (global.set $cur (i32.add (global.get $cur) (i32.const 4)))
    (if (i32.gt_u (local.get $len) (i32.sub (global.get $end) (global.get $cur)))
      (then (return (i32.const 0))))
    (global.set $fptr (global.get $cur))
    (global.set $flen (local.get $len))
    (global.set $cur (i32.add (global.get $cur) (local.get $len)))
    (i32.const 1))

  ;; ---- the orchestration table -------------------------------------------------

  (func $slot_of (param $h i32) (result i32)  ;; slot address of handle, or 0
    (local $i i32) (local $s i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (global.get $NSLOTS)))
        (local.set $s (i32.add (global.get $SLOTS) (i32.shl (local.get $i) (i32.const 5))))
        (if (i32.and (i32.load (local.get $s))
                     (i32.eq (i32.load offset=4 (local.get $s)) (local.get $h)))
          (then (return (local.get $s))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func $free_slot (result i32)  ;; address of an unused slot, or 0
    (local $i i32) (local $s i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (global.get $NSLOTS)))
        (local.set $s (i32.add (global.get $SLOTS) (i32.shl (local.get $i) (i32.const 5))))
        (if (i32.eqz (i32.load (local.get $s))) (then (return (local.get $s))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; ---- orchestration helpers ------------------------------------------------

  ;; $fetch reads a resolved task's result into $rptr/$rlen and returns its
  ;; result kind (1 ok, 2 failed), or a negative host error code. It tries the
  ;; 256-byte buffer first and, if the payload is larger, asks again with a
  ;; heap buffer of exactly the announced size.
  (func $fetch (param $h i32) (param $task i32) (result i32)
    (local $r i64) (local $n i32) (local $p i32)
    (local.set $r (call $task_result (local.get $h) (local.get $task)
                                     (global.get $RESBUF) (global.get $RESCAP)))
    (if (i64.lt_s (local.get $r) (i64.const 0)) (then (return (i32.wrap_i64 (local.get $r)))))
    (local.set $n (i32.wrap_i64 (local.get $r)))  ;; low 32 bits: payload length
    (local.set $p (global.get $RESBUF))
    (if (i32.gt_u (local.get $n) (global.get $RESCAP))
      (then
        (local.set $p (call $bump (local.get $n)))
        (local.set $r (call $task_result (local.get $h) (local.get $task) (local.get $p) (local.get $n)))
        (if (i64.lt_s (local.get $r) (i64.const 0)) (then (return (i32.wrap_i64 (local.get $r)))))))
    (global.set $rptr (local.get $p))
    (global.set $rlen (local.get $n))
    (i32.wrap_i64 (i64.shr_u (local.get $r) (i64.const 32))))  ;; high 32 bits: result kind

  ;; $await checks one task: 0 = not resolved yet (park), 1 = ok, 2 = failed
  ;; (result in $rptr/$rlen), negative = host error code.
  (func $await (param $h i32) (param $task i32) (result i32)
    (local $p i32) (local $k i32)
    (i32.store (global.get $POLLBUF) (local.get $task))
    (local.set $p (call $poll (local.get $h) (global.get $POLLBUF) (i32.const 1)))
    (if (i32.eq (local.get $p) (i32.const -1)) (then (return (i32.const 0))))  ;; PollNone
    (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (local.get $p))))  ;; error code
    (local.set $k (call $fetch (local.get $h) (local.get $task)))
    (local.get $k))  ;; 0 (ResultPending) cannot follow a resolved poll; treated as "park"

  ;; $stop ends the orchestration in $s after a host error code: on
  ;; nondeterminism (-3) or a limit (-6) the host has already failed it, so the
  ;; guest just forgets it; otherwise it reports a failure.
  (func $stop (param $s i32) (param $code i32)
    (if (i32.and (i32.ne (local.get $code) (i32.const -3)) (i32.ne (local.get $code) (i32.const -6)))
      (then (drop (call $complete (i32.load offset=4 (local.get $s)) (i32.const 2)
                                  (i32.const 160) (i32.const 63)))))
    (i32.store (local.get $s) (i32.const 0)))

  ;; $run drives the orchestration in slot $s until it parks or finishes.
  ;; It always returns StatusOK (0).
  (func $run (param $s i32) (result i32)
    (local $h i32) (local $id i32) (local $k i32)
    (local.set $h (i32.load offset=4 (local.get $s)))
    (loop $again
      ;; step 0: schedule WatEcho("a")
      (if (i32.eqz (i32.load offset=8 (local.get $s)))
        (then
          (local.set $id (call $schedule_activity (local.get $h)
                            (i32.const 32) (i32.const 7) (i32.const 48) (i32.const 3)))
          (if (i32.lt_s (local.get $id) (i32.const 0))
            (then (call $stop (local.get $s) (local.get $id)) (return (i32.const 0))))
          (i32.store offset=12 (local.get $s) (local.get $id))
          (i32.store offset=8 (local.get $s) (i32.const 1))
          (br $again)))
      ;; step 1: await task A, then schedule WatEcho("b")
      (if (i32.eq (i32.load offset=8 (local.get $s)) (i32.const 1))
        (then
          (local.set $k (call $await (local.get $h) (i32.load offset=12 (local.get $s))))
          (if (i32.eqz (local.get $k)) (then (return (i32.const 0))))  ;; parked
          (if (i32.lt_s (local.get $k) (i32.const 0))
            (then (call $stop (local.get $s) (local.get $k)) (return (i32.const 0))))
          (if (i32.eq (local.get $k) (i32.const 2))  ;; activity failed: fail with its details
            (then
              (drop (call $complete (local.get $h) (i32.const 2) (global.get $rptr) (global.get $rlen)))
              (i32.store (local.get $s) (i32.const 0))
              (return (i32.const 0))))
          (local.set $id (call $schedule_activity (local.get $h)
                            (i32.const 32) (i32.const 7) (i32.const 56) (i32.const 3)))
          (if (i32.lt_s (local.get $id) (i32.const 0))
            (then (call $stop (local.get $s) (local.get $id)) (return (i32.const 0))))
          (i32.store offset=16 (local.get $s) (local.get $id))
          (i32.store offset=8 (local.get $s) (i32.const 2))
          (br $again)))
      ;; step 2: await task B and complete with its result (or failure)
      (local.set $k (call $await (local.get $h) (i32.load offset=16 (local.get $s))))
      (if (i32.eqz (local.get $k)) (then (return (i32.const 0))))  ;; parked
      (if (i32.lt_s (local.get $k) (i32.const 0))
        (then (call $stop (local.get $s) (local.get $k)) (return (i32.const 0))))
      ;; result kind 1 (ok) -> CompleteOK 1; kind 2 (failed) -> CompleteFailed 2
      (drop (call $complete (local.get $h) (local.get $k) (global.get $rptr) (global.get $rlen)))
      (i32.store (local.get $s) (i32.const 0)))
    (i32.const 0))

  ;; ---- exports --------------------------------------------------------------

  (func (export "_initialize")
    (global.set $top (global.get $HEAP)))

  (func (export "durablewasm_abi_version") (result i32)
    (i32.const 1))

  ;; The host holds at most one allocation at a time (the request it passes
  ;; to the next start or activity_run call), so each alloc restarts the heap.
  (func (export "durablewasm_alloc") (param $size i32) (result i32)
    (global.set $top (global.get $HEAP))
    (call $bump (local.get $size)))

  (func (export "durablewasm_list_functions") (result i32)
    (call $register (i32.const 1) (i32.const 16) (i32.const 8))  ;; orchestrator WatHello
    (call $register (i32.const 2) (i32.const 32) (i32.const 7))  ;; activity WatEcho
    (i32.const 0))

  (func (export "durablewasm_orchestrator_start")
        (param $h i32) (param $ptr i32) (param $len i32) (result i32)
    (local $name i32) (local $nlen i32) (local $s i32)
    ;; StartRequest = frames [instance id, name, input]
    (call $frames_begin (local.get $ptr) (local.get $len))
    (if (i32.eqz (call $next_frame)) (then (return (i32.const 4))))  ;; instance id
    (if (i32.eqz (call $next_frame)) (then (return (i32.const 4))))  ;; name
    (local.set $name (global.get $fptr))
    (local.set $nlen (global.get $flen))
    (if (i32.eqz (call $next_frame)) (then (return (i32.const 4))))  ;; input (unused)
    (if (i32.ne (global.get $cur) (global.get $end)) (then (return (i32.const 4))))
    (if (i32.eqz (call $eq (local.get $name) (local.get $nlen) (i32.const 16) (i32.const 8)))
      (then (return (i32.const 1))))  ;; StatusUnknownFunction
    (if (call $slot_of (local.get $h)) (then (return (i32.const 4))))  ;; handle already in use
    (local.set $s (call $free_slot))
    (if (i32.eqz (local.get $s))
      (then
        (drop (call $complete (local.get $h) (i32.const 2) (i32.const 64) (i32.const 69)))
        (return (i32.const 0))))
    (i32.store (local.get $s) (i32.const 1))
    (i32.store offset=4 (local.get $s) (local.get $h))
    (i32.store offset=8 (local.get $s) (i32.const 0))
    (call $run (local.get $s)))

  (func (export "durablewasm_orchestrator_resume") (param $h i32) (result i32)
    (local $s i32)
    (local.set $s (call $slot_of (local.get $h)))
    (if (i32.eqz (local.get $s)) (then (return (i32.const 2))))  ;; StatusUnknownHandle
    (global.set $top (global.get $HEAP))
    (call $run (local.get $s)))

  (func (export "durablewasm_orchestrator_drop") (param $h i32) (result i32)
    (local $s i32)
    (local.set $s (call $slot_of (local.get $h)))
    (if (local.get $s) (then (i32.store (local.get $s) (i32.const 0))))
    (i32.const 0))

  (func (export "durablewasm_activity_run")
        (param $h i32) (param $ptr i32) (param $len i32) (result i32)
    (local $name i32) (local $nlen i32) (local $in i32) (local $inlen i32)
    ;; ActivityRequest = frames [instance id, name, input, task id as decimal]
    (call $frames_begin (local.get $ptr) (local.get $len))
    (if (i32.eqz (call $next_frame)) (then (return (i32.const 4))))  ;; instance id
    (if (i32.eqz (call $next_frame)) (then (return (i32.const 4))))  ;; name
    (local.set $name (global.get $fptr))
    (local.set $nlen (global.get $flen))
    (if (i32.eqz (call $next_frame)) (then (return (i32.const 4))))  ;; input
    (local.set $in (global.get $fptr))
    (local.set $inlen (global.get $flen))
    (if (i32.eqz (call $next_frame)) (then (return (i32.const 4))))  ;; task id (unused)
    (if (i32.ne (global.get $cur) (global.get $end)) (then (return (i32.const 4))))
    (if (i32.eqz (call $eq (local.get $name) (local.get $nlen) (i32.const 32) (i32.const 7)))
      (then (return (i32.const 1))))  ;; StatusUnknownFunction
    (call $log (local.get $h) (i32.const 1) (i32.const 240) (i32.const 11))
    ;; the request memory stays valid for this whole call: echo it directly
    (drop (call $complete (local.get $h) (i32.const 1) (local.get $in) (local.get $inlen)))
    (i32.const 0))
)
