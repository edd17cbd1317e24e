/* trap: traps (unreachable) on every line. */
#include "vrclog_plugin.h"

VRCLOG_EXPORT("parse_line") int64_t parse_line(int32_t ptr, int32_t len) {
    (void)ptr; (void)len;
    __builtin_trap();
}
