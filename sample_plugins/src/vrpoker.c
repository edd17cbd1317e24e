/* vrpoker: events from the VRPoker world's log lines.
 *
 *   [VRPoker] Game started with N players -> vrpoker_game_start {player_count}
 *   [VRPoker] Player NAME wins with HAND   -> vrpoker_winner {player, hand}
 *   [VRPoker] Round N begins              -> vrpoker_round {round}
 *   [VRPoker] anything else               -> vrpoker_event {message}
 *
 * ABI v2 with a prefilter; the same source builds the ABI v1 vrpoker_v1.wasm.
 * The timestamp comes from the VRChat line prefix "2024.01.15 23:59:59" and is
 * written without an offset; the host completes it with the local offset,
 * since VRChat writes local time and a sandboxed plugin cannot know the zone.
 */
#ifndef VRCLOG_ABI_VERSION
#define VRCLOG_ABI_VERSION 2  /* vrpoker_v1.wasm is built from this file with -DVRCLOG_ABI_VERSION=1 */
#endif
#include "vrclog_plugin.h"

/* Only lines containing the tag can give events: the host makes no instance
 * for the others (about 98 % of a VRChat log). */
VRCLOG_PREFILTER("{\"substrings\":[\"[VRPoker]\"]}");
VRCLOG_TYPES("{\"types\":[\"vrpoker_event\",\"vrpoker_game_start\",\"vrpoker_winner\",\"vrpoker_round\"]}");

static const char TAG[] = "[VRPoker] ";

static void field(vrclog_out *w, const char *key, const char *value, int first) {
    if (!first) vrclog_out_str(w, ",");
    vrclog_out_json(w, key);
    vrclog_out_str(w, ":");
    vrclog_out_json(w, value);
}

VRCLOG_EXPORT("parse_line") int64_t parse_line(int32_t ptr, int32_t len) {
    size_t n;
    char *line = vrclog_input_line((const char *)(uintptr_t)ptr, len, &n);
    if (!line) {
        static const char bad[] = "{\"ok\":false,\"error\":\"input is not {\\\"line\\\": ...}\",\"code\":\"bad_input\"}";
        return ((int64_t)(sizeof(bad) - 1) << 32) | (int64_t)(uint32_t)(uintptr_t)bad;
    }
    /* The prefilter lets through "[VRPoker]" anywhere; events need the tag and a space
     * (and a v1 host without prefilters sends every line). */
    if (vrclog_find(line, n, TAG) < 0) return vrclog_no_events();

    char *m[3];
    vrclog_out w = {0, 0, 0};
    vrclog_out_str(&w, "{\"ok\":true,\"events\":[{\"type\":");
    /* Each regex is tried only where its literal text is in the line: a host call costs
     * ~3-5 us, a search here a fraction of that (one regex call a line instead of 2.25). */
    if (vrclog_find(line, n, "[VRPoker] Game started with ") >= 0 &&
        vrclog_submatches(line, n, "\\[VRPoker\\] Game started with (\\d+) players", m, 2) == 2) {
        vrclog_out_json(&w, "vrpoker_game_start");
        vrclog_out_str(&w, ",\"data\":{");
        field(&w, "player_count", m[1], 1);
    } else if (vrclog_find(line, n, " wins with ") >= 0 && vrclog_find(line, n, "[VRPoker] Player ") >= 0 &&
               vrclog_submatches(line, n, "\\[VRPoker\\] Player (.+?) wins with (.+?)\\s*$", m, 3) == 3) {
        vrclog_out_json(&w, "vrpoker_winner");
        vrclog_out_str(&w, ",\"data\":{");
        field(&w, "player", m[1], 1);
        field(&w, "hand", m[2], 0);
    } else if (vrclog_find(line, n, "[VRPoker] Round ") >= 0 &&
               vrclog_submatches(line, n, "\\[VRPoker\\] Round (\\d+) begins", m, 2) == 2) {
        vrclog_out_json(&w, "vrpoker_round");
        vrclog_out_str(&w, ",\"data\":{");
        field(&w, "round", m[1], 1);
    } else {
        long k = vrclog_find(line, n, TAG);
        const char *msg = line + k + (long)(sizeof(TAG) - 1);
        size_t mlen = n - (size_t)k - (sizeof(TAG) - 1);
        while (mlen && (msg[mlen - 1] == ' ' || msg[mlen - 1] == '\r')) mlen--;
        vrclog_out_json(&w, "vrpoker_event");
        vrclog_out_str(&w, ",\"data\":{");
        vrclog_out_json(&w, "message");
        vrclog_out_str(&w, ":");
        vrclog_out_json_n(&w, msg, mlen);
    }
    vrclog_out_str(&w, "}");
    vrclog_out_vrchat_timestamp(&w, line, n);  /* VRChat's local time */
    vrclog_out_str(&w, "}]}");
    return vrclog_result(&w);
}
