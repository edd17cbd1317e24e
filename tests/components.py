"""Component plugins written in WAT for the tests: the canonical ABI by hand.

``component_wat(bad)`` answers each line with one event whose type is the line
itself (so the harness reads it like an echo event), except a line starting
with "B", where it runs ``bad`` (core WAT that must end by returning the
address of a result, or never return).

Memory layout of the core module: the result at 256 (a discriminant byte, then
the list's or error's pointer and length), events from 1024 (88 bytes each:
kind, six option<string>, the data list), the bump allocator from 64 KiB.
"""

from __future__ import annotations

EVENT_TYPE = """(record
     (field "kind" string) (field "timestamp" (option string)) (field "player-name" (option string))
     (field "player-id" (option string)) (field "world-id" (option string))
     (field "world-name" (option string)) (field "instance-id" (option string))
     (field "data" (list (tuple string string))))"""
ERROR_TYPE = """(record (field "message" string) (field "code" (option string)))"""
EXPORT_RESULT = "(result (list $event) (error $error))"
EVENT_SIZE = 88

GOOD_ANSWER = """
      (i32.store8 (i32.const 256) (i32.const 0))
      (i32.store (i32.const 260) (i32.const 1024))
      (i32.store (i32.const 264) (i32.const 1))
      (i32.store (i32.const 1024) (local.get $ptr))
      (i32.store (i32.const 1028) (local.get $len))
      (i32.const 256)"""


def component_wat(bad: str = "unreachable", *, core_extra: str = "", core_imports: str = "",
                  component_head: str = "", instantiate_with: str = "",
                  export_result: str = EXPORT_RESULT, export_param: str = "string") -> str:
    return f"""(component
  (type $event' {EVENT_TYPE})
  (export $event "event" (type $event'))
  (type $error' {ERROR_TYPE})
  (export $error "plugin-error" (type $error'))
  {component_head}
  (core module $m
    {core_imports}
    (memory (export "memory") 2)
    (global $bump (mut i32) (i32.const 65536))
    (func $realloc (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7)) (i32.const -8)))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.shr_u (local.get 3) (i32.const 16)) (i32.const 1))))))
      (local.get $p))
    {core_extra}
    (func (export "parse") (param $ptr i32) (param $len i32) (result i32)
      (if (i32.and (i32.gt_u (local.get $len) (i32.const 0))
                   (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 66)))
        (then {bad}))
      {GOOD_ANSWER}))
  (core instance $i (instantiate $m {instantiate_with}))
  (func (export "parse-line") (param "line" {export_param}) (result {export_result})
    (canon lift (core func $i "parse") (memory (core memory $i "memory"))
                (realloc (core func $i "realloc")))))
"""


def answering_events(count: int, kind: str = "", kind_at: int = 2048) -> str:
    """Core WAT for ``bad``: ``count`` events (each of type ``kind``, stored at ``kind_at``),
    growing memory to hold them."""
    grow = f"(drop (memory.grow (i32.const {count * EVENT_SIZE // 65536 + 2})))"
    fill = ""
    if kind:
        fill = f"""
        (local.set $len (i32.const 0))
        (block $done (loop $each
          (br_if $done (i32.ge_u (local.get $len) (i32.const {count})))
          (i32.store (i32.add (i32.const 131072) (i32.mul (local.get $len) (i32.const {EVENT_SIZE})))
                     (i32.const {kind_at}))
          (i32.store (i32.add (i32.const 131076) (i32.mul (local.get $len) (i32.const {EVENT_SIZE})))
                     (i32.const {len(kind.encode())}))
          (local.set $len (i32.add (local.get $len) (i32.const 1)))
          (br $each)))"""
    return f"""{grow}{fill}
        (i32.store8 (i32.const 256) (i32.const 0))
        (i32.store (i32.const 260) (i32.const 131072))
        (i32.store (i32.const 264) (i32.const {count}))
        (return (i32.const 256))"""


def wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def host_find_wat(pattern: bytes) -> str:
    """A component importing the host interface (canon lower, by hand): each line's event
    type is group 1 of ``regex-find-submatch(line, pattern)``; no event when nothing matched."""
    return HOST_FIND_WAT.replace("PATTERN_LEN", str(len(pattern))).replace("PATTERN", wat_bytes(pattern))


HOST_FIND_WAT = r"""(component
  (import "vrclog:plugin/host@1.0.0" (instance $host
    (export "regex-find-submatch" (func (param "text" string) (param "pattern" string)
                                        (result (option (list string)))))))
  (type $event' (record
     (field "kind" string) (field "timestamp" (option string)) (field "player-name" (option string))
     (field "player-id" (option string)) (field "world-id" (option string))
     (field "world-name" (option string)) (field "instance-id" (option string))
     (field "data" (list (tuple string string)))))
  (export $event "event" (type $event'))
  (type $error' (record (field "message" string) (field "code" (option string))))
  (export $error "plugin-error" (type $error'))
  (core module $mem
    (memory (export "memory") 2)
    (global $bump (mut i32) (i32.const 65536))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7)) (i32.const -8)))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (local.get $p)))
  (core instance $mi (instantiate $mem))
  (core func $find (canon lower (func $host "regex-find-submatch")
                     (memory (core memory $mi "memory")) (realloc (core func $mi "realloc"))))
  (core module $m
    (import "env" "memory" (memory 1))
    (import "env" "find" (func $find (param i32 i32 i32 i32 i32)))
    (data (i32.const 2048) "PATTERN")
    (func (export "parse") (param $ptr i32) (param $len i32) (result i32)
      (call $find (local.get $ptr) (local.get $len) (i32.const 2048) (i32.const PATTERN_LEN) (i32.const 512))
      (i32.store8 (i32.const 256) (i32.const 0))
      (i32.store (i32.const 260) (i32.const 1024))
      (if (i32.eqz (i32.load8_u (i32.const 512)))
        (then (i32.store (i32.const 264) (i32.const 0)) (return (i32.const 256))))
      (i32.store (i32.const 264) (i32.const 1))
      (i32.store (i32.const 1024) (i32.load (i32.add (i32.load (i32.const 516)) (i32.const 8))))
      (i32.store (i32.const 1028) (i32.load (i32.add (i32.load (i32.const 516)) (i32.const 12))))
      (i32.const 256)))
  (core instance $i (instantiate $m (with "env" (instance
    (export "memory" (memory $mi "memory")) (export "find" (func $find))))))
  (func (export "parse-line") (param "line" string) (result (result (list $event) (error $error)))
    (canon lift (core func $i "parse") (memory (core memory $mi "memory"))
                (realloc (core func $mi "realloc")))))
"""
