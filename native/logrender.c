/* logrender.c: json-file lines -> the body of `docker logs`, for servin._native (see
   servin_native.h). servin/runtime/logfile.py calls it, and parses with json what it leaves. */
#include <stdint.h>
#include <string.h>

#include "servin_native.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *s, const char *e, uint32_t *v)
{
    if (e - s < 4) return -1;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)s[i]);
        if (h < 0) return -1;
        x = x << 4 | (uint32_t)h;
    }
    *v = x;
    return 0;
}

/* the end of a JSON string body starting at s (just after the opening quote), or NULL */
static const char *str_end(const char *s, const char *e)
{
    while (s < e) {
        if (*s == '\\') { s += 2; continue; }
        if (*s == '"') return s;
        s++;
    }
    return NULL;
}

/* unescape [s, e) to o; returns the end of the output, NULL for a bad escape (-1: skip the line) */
static char *unescape(const char *s, const char *e, char *o, int *skip)
{
    while (s < e) {
        char c = *s++;
        if (c != '\\') { *o++ = c; continue; }
        if (s >= e) return NULL;
        c = *s++;
        switch (c) {
        case '"': case '\\': case '/': *o++ = c; break;
        case 'b': *o++ = 8; break;
        case 'f': *o++ = 12; break;
        case 'n': *o++ = 10; break;
        case 'r': *o++ = 13; break;
        case 't': *o++ = 9; break;
        case 'u': {
            uint32_t cp, lo;
            if (hex4(s, e, &cp)) return NULL;
            s += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && e - s >= 6 && s[0] == '\\' && s[1] == 'u' && !hex4(s + 2, e, &lo)
                && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            } else if (cp >= 0xDC80 && cp <= 0xDCFF) {  /* surrogateescape: the byte itself */
                *o++ = (char)(cp & 0xFF);
                break;
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                *skip = 1;
                return o;
            }
            if (cp < 0x80) *o++ = (char)cp;
            else if (cp < 0x800) { *o++ = (char)(0xC0 | cp >> 6); *o++ = (char)(0x80 | (cp & 0x3F)); }
            else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | cp >> 12); *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | cp >> 18); *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
                *o++ = (char)(0x80 | (cp >> 6 & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: return NULL;
        }
    }
    return o;
}

static const char *ws(const char *s, const char *e)
{
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\r')) s++;
    return s;
}

/* one line [s, e) (without its newline): 1 rendered or skipped, 0 not in the simple shape */
static int render_line(const char *s, const char *e, char **po, int flags)
{
    const char *log = NULL, *log_end = NULL, *stream = NULL, *stream_end = NULL, *tm = NULL, *tm_end = NULL;
    s = ws(s, e);
    if (s >= e || *s++ != '{') return 0;
    for (;;) {
        s = ws(s, e);
        if (s < e && *s == '}') break;
        if (s >= e || *s++ != '"') return 0;
        const char *k = s, *ke = str_end(s, e);
        if (!ke) return 0;
        s = ws(ke + 1, e);
        if (s >= e || *s++ != ':') return 0;
        s = ws(s, e);
        if (s >= e || *s++ != '"') return 0;  /* only string values (Docker's attrs object: json) */
        const char *v = s, *ve = str_end(s, e);
        if (!ve) return 0;
        size_t kl = (size_t)(ke - k);
        if (kl == 3 && !memcmp(k, "log", 3)) { log = v; log_end = ve; }
        else if (kl == 6 && !memcmp(k, "stream", 6)) { stream = v; stream_end = ve; }
        else if (kl == 4 && !memcmp(k, "time", 4)) { tm = v; tm_end = ve; }
        s = ws(ve + 1, e);
        if (s < e && *s == ',') { s++; continue; }
        if (s < e && *s == '}') break;
        return 0;
    }
    if (!log || !stream || !tm) return 0;
    int kind;
    if (stream_end - stream == 6 && !memcmp(stream, "stdout", 6)) kind = 1;
    else if (stream_end - stream == 6 && !memcmp(stream, "stderr", 6)) kind = 2;
    else return 1;  /* neither: not shown */
    if (!(flags & kind)) return 1;
    char *o = *po, *start = o + ((flags & 4) ? 0 : 8), *p = start;
    int skip = 0;
    if (flags & 8) {
        char *q = unescape(tm, tm_end, p, &skip);
        if (!q) return 0;
        p = q;
        *p++ = ' ';
    }
    char *q = unescape(log, log_end, p, &skip);
    if (!q) return 0;
    if (skip) return 1;
    if (!(flags & 4)) {
        uint32_t len = (uint32_t)(q - start);
        o[0] = (char)kind; o[1] = o[2] = o[3] = 0;
        o[4] = (char)(len >> 24); o[5] = (char)(len >> 16); o[6] = (char)(len >> 8); o[7] = (char)len;
    }
    *po = q;
    return 1;
}

size_t servin_render_log(const char *in, size_t n, char *out, size_t cap, size_t *outlen, int flags,
                                int *stopped)
{
    const char *s = in, *end = in + n;
    char *o = out, *oend = out + cap;
    *stopped = 0;
    if (!memchr(in, '\n', n)) { *stopped = 2; *outlen = 0; return 0; }
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl) break;
        /* worst case out: header + the line itself (unescaping never grows it) */
        if ((size_t)(oend - o) < (size_t)(nl - s) + 16) break;
        if (!render_line(s, nl, &o, flags)) { *stopped = 1; break; }
        s = nl + 1;
    }
    *outlen = (size_t)(o - out);
    return (size_t)(s - in);
}
