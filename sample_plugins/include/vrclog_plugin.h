/* vrclog_plugin.h - helpers for writing vrclog plugins in C (ABI v1 or v2).
 *
 * Choose the ABI before including this header (docs/plugin-abi.md says which):
 *
 *   #define VRCLOG_ABI_VERSION 2   // the line's raw bytes, any length up to the line limit
 *   #include "vrclog_plugin.h"
 *
 * Version 2 (recommended): the host calls alloc(len), writes the line's UTF-8
 * bytes there (no JSON, no line ending) and calls parse_line(ptr, len).
 * Version 1 (the default here, as vrclog-go plugins are): the host writes
 * {"line": "..."} at 0x10000..0x12000; build with --global-base=0x12000 (see the
 * Makefile) so that data, stack and heap all live above that input region.
 * vrclog_input_line() gives the line either way, so parse_line reads the same.
 *
 * VRCLOG_PREFILTER(json) declares which lines can match at all; the host
 * never makes an instance for the others (section 2c of the contract):
 *
 *   VRCLOG_PREFILTER("{\"substrings\":[\"[MyWorld] \"]}");
 *
 * VRCLOG_TYPES(json) declares the event types it can emit (`vrclog plugin info`
 * shows them, `plugin check` holds the plugin to them, and a misspelt type in
 * --fail-on or --include-types becomes a usage error):
 *
 *   VRCLOG_TYPES("{\"types\":[\"myworld_score\"]}");
 *
 * The heap is a bump allocator that is never reset: every line runs in a fresh
 * instance, so nothing needs freeing.
 */
#ifndef VRCLOG_PLUGIN_H
#define VRCLOG_PLUGIN_H

#include <stdint.h>
#include <stddef.h>

#ifndef VRCLOG_ABI_VERSION
#define VRCLOG_ABI_VERSION 1
#endif
#if VRCLOG_ABI_VERSION != 1 && VRCLOG_ABI_VERSION != 2
#error "VRCLOG_ABI_VERSION must be 1 or 2"
#endif

#define VRCLOG_EXPORT(name) __attribute__((export_name(name)))

/* The custom section "vrclog.prefilter" holding JSON (a C string literal).  A
 * section(...) attribute would make a data segment, not a custom section:
 * top-level assembly makes a real one (checked with zig cc 0.17.1).  The
 * literal is stringified into the assembler's .ascii, which undoes the same
 * escapes C does, so the section holds exactly the literal's text. */
#define VRCLOG_PREFILTER(json) \
    __asm__(".section .custom_section.vrclog.prefilter,\"\",@\n.ascii " #json "\n.text\n")
#define VRCLOG_TYPES(json) \
    __asm__(".section .custom_section.vrclog.types,\"\",@\n.ascii " #json "\n.text\n")
#define VRCLOG_IMPORT(name) __attribute__((import_module("env"), import_name(name)))

VRCLOG_IMPORT("regex_match")
int32_t vrclog_regex_match(const char *s, int32_t slen, const char *re, int32_t relen);
VRCLOG_IMPORT("regex_find_submatch")
int32_t vrclog_regex_find_submatch(const char *s, int32_t slen, const char *re, int32_t relen,
                                   char *out, int32_t out_max);
VRCLOG_IMPORT("log")
void vrclog_log(int32_t level, const char *msg, int32_t len);
VRCLOG_IMPORT("now_ms")
int64_t vrclog_now_ms(void);

/* ---- memory ---------------------------------------------------------- */
extern unsigned char __heap_base;
static uintptr_t vrclog_heap_top = 0;

static void *vrclog_alloc(size_t size) {
    if (vrclog_heap_top == 0) vrclog_heap_top = (uintptr_t)&__heap_base;
    uintptr_t p = (vrclog_heap_top + 7u) & ~(uintptr_t)7u;
    uintptr_t end = p + size;
    size_t have = __builtin_wasm_memory_size(0) * 65536u;
    if (end > have) {
        size_t pages = (end - have + 65535u) / 65536u;
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return 0;
    }
    vrclog_heap_top = end;
    return (void *)p;
}

VRCLOG_EXPORT("abi_version") int32_t abi_version(void) { return VRCLOG_ABI_VERSION; }
VRCLOG_EXPORT("alloc") int32_t alloc(int32_t size) { return (int32_t)(uintptr_t)vrclog_alloc((size_t)size); }
VRCLOG_EXPORT("free") void free_(int32_t ptr, int32_t len) { (void)ptr; (void)len; }

static size_t vrclog_strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
static int vrclog_memeq(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) if (a[i] != b[i]) return 0;
    return 1;
}
/* Index of needle in hay, or -1. */
static long vrclog_find(const char *hay, size_t hlen, const char *needle) {
    size_t n = vrclog_strlen(needle);
    if (n > hlen) return -1;
    for (size_t i = 0; i + n <= hlen; i++) if (vrclog_memeq(hay + i, needle, n)) return (long)i;
    return -1;
}

/* ---- input: decode the "line" string of {"line": "..."} ---------------- */
static int vrclog_hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
static uint32_t vrclog_u4(const char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) { int h = vrclog_hex(p[i]); if (h < 0) return 0xFFFD; v = v * 16 + (uint32_t)h; }
    return v;
}
static size_t vrclog_put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) { o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F)); return 3; }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}
/* Decodes the JSON string starting at in[*pos] (its opening quote) into a
 * fresh NUL-terminated buffer; advances *pos past the closing quote. */
static char *vrclog_json_string(const char *in, size_t len, size_t *pos, size_t *out_len) {
    size_t i = *pos;
    if (i >= len || in[i] != '"') return 0;
    i++;
    char *out = vrclog_alloc(len - i + 1);
    if (!out) return 0;
    size_t o = 0;
    while (i < len && in[i] != '"') {
        char c = in[i++];
        if (c != '\\') { out[o++] = c; continue; }
        if (i >= len) break;
        char e = in[i++];
        switch (e) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u': {
            if (i + 4 > len) { i = len; break; }
            uint32_t cp = vrclog_u4(in + i); i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= len && in[i] == '\\' && in[i + 1] == 'u') {
                uint32_t lo = vrclog_u4(in + i + 2);
                if (lo >= 0xDC00 && lo < 0xE000) { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); i += 6; }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
            o += vrclog_put_utf8(out + o, cp);
            break;
        }
        default: out[o++] = e; /* \" \\ \/ */
        }
    }
    out[o] = 0;
    *out_len = o;
    *pos = i + 1;
    return out;
}

#if VRCLOG_ABI_VERSION == 1
/* The line, from the input JSON {"line": "..."}: decoded into a fresh
 * NUL-terminated buffer.  Returns 0 if the input does not look like that. */
static char *vrclog_input_line(const char *in, int32_t len, size_t *out_len) {
    long k = vrclog_find(in, (size_t)len, "\"line\"");
    if (k < 0) return 0;
    size_t i = (size_t)k + 6;
    while (i < (size_t)len && (in[i] == ' ' || in[i] == ':')) i++;
    return vrclog_json_string(in, (size_t)len, &i, out_len);
}
#else
/* The line itself: ABI v2 hands over its raw UTF-8 bytes (not NUL-terminated;
 * use *out_len).  Never 0, even for an empty line. */
static char *vrclog_input_line(const char *in, int32_t len, size_t *out_len) {
    static char empty[1];
    *out_len = (size_t)len;
    return len ? (char *)in : empty;
}
#endif

/* Runs regex_find_submatch and decodes up to max strings of the resulting
 * JSON array into out[].  Returns how many were decoded (0 = no match). */
static int vrclog_submatches(const char *s, size_t slen, const char *re, char **out, int max) {
    static char small[4096];
    char *buf = small;
    size_t cap = sizeof small;
    int32_t relen = (int32_t)vrclog_strlen(re);
    int32_t n = vrclog_regex_find_submatch(s, (int32_t)slen, re, relen, buf, (int32_t)cap);
    if (n == -1) {  /* did not fit: JSON escapes take at most 6 bytes a byte, per group */
        cap = 6 * slen * (size_t)(max > 0 ? max : 1) + 64;
        buf = vrclog_alloc(cap);
        if (!buf) return 0;
        n = vrclog_regex_find_submatch(s, (int32_t)slen, re, relen, buf, (int32_t)cap);
    }
    if (n <= 0 || (size_t)n > cap) return 0;
    size_t i = 0, l;
    int k = 0;
    while (i < (size_t)n && k < max) {
        while (i < (size_t)n && buf[i] != '"') i++;
        if (i >= (size_t)n) break;
        out[k] = vrclog_json_string(buf, (size_t)n, &i, &l);
        if (!out[k]) break;
        k++;
    }
    return k;
}

/* ---- output: a growable JSON writer ----------------------------------- */
typedef struct { char *buf; size_t len, cap; } vrclog_out;

static void vrclog_out_raw(vrclog_out *w, const char *s, size_t n) {
    if (w->len + n > w->cap) {
        size_t cap = (w->cap ? w->cap * 2 : 1024);
        while (cap < w->len + n) cap *= 2;
        char *nb = vrclog_alloc(cap);
        if (!nb) return;
        for (size_t i = 0; i < w->len; i++) nb[i] = w->buf[i];
        w->buf = nb; w->cap = cap;
    }
    for (size_t i = 0; i < n; i++) w->buf[w->len++] = s[i];
}
static void vrclog_out_str(vrclog_out *w, const char *s) { vrclog_out_raw(w, s, vrclog_strlen(s)); }
/* Writes s[0..n) as a quoted, escaped JSON string. */
static void vrclog_out_json_n(vrclog_out *w, const char *s, size_t n) {
    static const char hexd[] = "0123456789abcdef";
    vrclog_out_raw(w, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; vrclog_out_raw(w, e, 2); }
        else if (c == '\n') vrclog_out_raw(w, "\\n", 2);
        else if (c == '\t') vrclog_out_raw(w, "\\t", 2);
        else if (c == '\r') vrclog_out_raw(w, "\\r", 2);
        else if (c < 0x20) { char e[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]}; vrclog_out_raw(w, e, 6); }
        else vrclog_out_raw(w, (const char *)&c, 1);
    }
    vrclog_out_raw(w, "\"", 1);
}
static void vrclog_out_json(vrclog_out *w, const char *s) { vrclog_out_json_n(w, s, vrclog_strlen(s)); }

static int64_t vrclog_result(vrclog_out *w) {
    return ((int64_t)w->len << 32) | (int64_t)(uint32_t)(uintptr_t)w->buf;
}
static int vrclog_digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}
/* Whether the line starts with a VRChat timestamp "2024.01.15 23:59:59". */
static int vrclog_has_vrchat_timestamp(const char *l, size_t n) {
    return n >= 19 && vrclog_digits(l, 4) && l[4] == '.' && vrclog_digits(l + 5, 2) && l[7] == '.' &&
           vrclog_digits(l + 8, 2) && l[10] == ' ' && vrclog_digits(l + 11, 2) && l[13] == ':' &&
           vrclog_digits(l + 14, 2) && l[16] == ':' && vrclog_digits(l + 17, 2);
}
/* Appends ,"timestamp":"YYYY-MM-DDTHH:MM:SS" from a VRChat line's prefix
 * "2024.01.15 23:59:59" (local time: the host adds the local offset).
 * Writes nothing if the line has no such prefix.  Plain C, no regex host
 * call: it runs on every event. */
static void vrclog_out_vrchat_timestamp(vrclog_out *w, const char *line, size_t n) {
    if (!vrclog_has_vrchat_timestamp(line, n)) return;
    char stamp[19];
    for (int i = 0; i < 19; i++) stamp[i] = line[i];
    stamp[4] = stamp[7] = '-';
    stamp[10] = 'T';
    vrclog_out_str(w, ",\"timestamp\":\"");
    vrclog_out_raw(w, stamp, 19);
    vrclog_out_str(w, "\"");
}

/* {"ok":true,"events":[]} : the line did not match. */
static int64_t vrclog_no_events(void) {
    static const char s[] = "{\"ok\":true,\"events\":[]}";
    return ((int64_t)(sizeof(s) - 1) << 32) | (int64_t)(uint32_t)(uintptr_t)s;
}

#endif
