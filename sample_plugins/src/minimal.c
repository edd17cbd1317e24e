/* minimal: the smallest valid plugin; it never matches. */
#include "vrclog_plugin.h"

VRCLOG_EXPORT("parse_line") int64_t parse_line(int32_t ptr, int32_t len) {
    (void)ptr; (void)len;
    return vrclog_no_events();
}
