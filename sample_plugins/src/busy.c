/* busy: spends a fixed amount of pure compute per line (about 200 us on a
 * typical core) and emits one event, to measure how --jobs scales. */
#include "vrclog_plugin.h"

VRCLOG_EXPORT("parse_line") int64_t parse_line(int32_t ptr, int32_t len) {
    const unsigned char *in = (const unsigned char *)(uintptr_t)ptr;
    uint32_t h = 2166136261u;
    for (int round = 0; round < 400; round++)
        for (int32_t i = 0; i < len && i < 256; i++) h = (h ^ in[i]) * 16777619u;
    static const char hexd[] = "0123456789abcdef";
    char hex[9];
    for (int i = 0; i < 8; i++) hex[i] = hexd[(h >> (28 - 4 * i)) & 15];
    hex[8] = 0;
    vrclog_out w = {0, 0, 0};
    vrclog_out_str(&w, "{\"ok\":true,\"events\":[{\"type\":\"busy\",\"data\":{\"hash\":\"");
    vrclog_out_str(&w, hex);
    vrclog_out_str(&w, "\"}}]}");
    return vrclog_result(&w);
}
