/* A vrclog plugin (ABI v1) - start here.
 *
 * Turns lines like
 *   2024.01.15 23:59:59 Log        -  [MyWorld] Score 42 by Alice
 * into {"type": "myworld_score", "timestamp": "2024-01-15T23:59:59",
 *       "data": {"score": "42", "player": "Alice"}}.
 *
 * Build: make            (needs the PyPI package ziglang: pip install ziglang)
 * Check: vrclog plugin check plugin.wasm --sample my.log
 * Guide: docs/plugin-abi.md in the vrclog repository.
 */
#include "vrclog_plugin.h"

VRCLOG_EXPORT("parse_line") int64_t parse_line(int32_t ptr, int32_t len) {
    size_t n;
    char *line = vrclog_input_line((const char *)(uintptr_t)ptr, len, &n);
    if (!line) return vrclog_no_events();

    /* Cheap test first: most lines are not ours. */
    if (vrclog_find(line, n, "[MyWorld] ") < 0) return vrclog_no_events();

    /* m[0] is the whole match, m[1..] the groups (RE2 syntax). */
    char *m[3];
    if (vrclog_submatches(line, n, "\\[MyWorld\\] Score (\\d+) by (.+?)\\s*$", m, 3) != 3)
        return vrclog_no_events();

    vrclog_out w = {0, 0, 0};
    vrclog_out_str(&w, "{\"ok\":true,\"events\":[{\"type\":\"myworld_score\",\"data\":{\"score\":");
    vrclog_out_json(&w, m[1]);          /* vrclog_out_json quotes and escapes */
    vrclog_out_str(&w, ",\"player\":");
    vrclog_out_json(&w, m[2]);
    vrclog_out_str(&w, "}");

    vrclog_out_vrchat_timestamp(&w, line, n);  /* VRChat's local time */
    vrclog_out_str(&w, "}]}");
    return vrclog_result(&w);
}
