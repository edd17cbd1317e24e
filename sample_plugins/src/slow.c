/* slow: loops forever on every line, to exercise timeouts and Ctrl-C. */
#include "vrclog_plugin.h"

VRCLOG_EXPORT("parse_line") int64_t parse_line(int32_t ptr, int32_t len) {
    volatile int32_t spin = ptr + len;
    for (;;) spin++;
    return 0;
}
