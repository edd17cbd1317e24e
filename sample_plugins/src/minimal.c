/* minimal: the smallest valid plugin; it never matches.  Built freestanding
 * (no libc, no imports), so a fresh instance costs the least it can. */
#include "vrclog_plugin.h"

VRCLOG_EXPORT("parse_line") int64_t parse_line(int32_t ptr, int32_t len) {
    (void)ptr; (void)len;
    return vrclog_no_events();
}
