/* A vrclog plugin (ABI v2, with a prefilter) - start here.
 *
 * Turns lines like
 *   2024.01.15 23:59:59 Log        -  [MyWorld] Score 42 by Alice
 * into {"type": "myworld_score", "timestamp": "2024-01-15T23:59:59",
 *       "data": {"score": "42", "player": "Alice"}}.
 *
 * Build: make            (builds NAME.wasm; see README.md)
 * Check: vrclog plugin check NAME.wasm --sample my.log
 * Guide: docs/plugin-abi.md in the vrclog repository.
 */
#define VRCLOG_ABI_VERSION 2  /* the line's raw bytes, whole (1: vrclog-go's JSON input) */
#include "vrclog_plugin.h"

/* Lines without this text never reach parse_line (no instance is made for them).
 * Keep it true to parse_line: every line that can give an event must contain it;
 * `vrclog plugin check --sample` reports a line where that is not so. */
VRCLOG_PREFILTER("{\"substrings\":[\"[MyWorld] \"]}");
VRCLOG_TYPES("{\"types\":[\"myworld_score\"]}");

VRCLOG_EXPORT("parse_line") int64_t parse_line(int32_t ptr, int32_t len) {
    size_t n;
    char *line = vrclog_input_line((const char *)(uintptr_t)ptr, len, &n);
    if (!line) return vrclog_no_events();

    /* The prefilter found "[MyWorld] " somewhere; hosts that ignore prefilters
     * (vrclog-go, --no-prefilter) send every line, so test again cheaply. */
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
