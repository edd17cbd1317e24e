/* echo: one event for every line, with three fields - the plugin that shows
 * what each event costs the host (decoding, validation, timestamps, output).
 *
 *   2024.01.15 23:59:59 Log  -  anything  ->  {"type": "line",
 *       "timestamp": "2024-01-15T23:59:59", "data": {"text": "<the whole line>"}}
 *
 * Lines without a VRChat timestamp get no timestamp.  ABI v2 (echo_v1.wasm is the
 * same source built as v1: it decodes the input JSON and escapes the line again),
 * freestanding (no libc, no imports), and no regex: the per-line work is the host's.
 */
#ifndef VRCLOG_ABI_VERSION
#define VRCLOG_ABI_VERSION 2
#endif
#include "vrclog_plugin.h"

VRCLOG_EXPORT("parse_line") int64_t parse_line(int32_t ptr, int32_t len) {
    size_t n;
    const char *line = vrclog_input_line((const char *)(uintptr_t)ptr, len, &n);
    vrclog_out w = {0, 0, 0};
    vrclog_out_str(&w, "{\"ok\":true,\"events\":[{\"type\":\"line\"");
    vrclog_out_vrchat_timestamp(&w, line, n);
    vrclog_out_str(&w, ",\"data\":{\"text\":");
    vrclog_out_json_n(&w, line, n);
    vrclog_out_str(&w, "}}]}");
    return vrclog_result(&w);
}
