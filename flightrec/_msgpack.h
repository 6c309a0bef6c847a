/* flightrec/_msgpack.h: MessagePack's integer forms and container/str headers, each in its
 * smallest form as msgspec writes it, for the C helpers that write MessagePack themselves
 * (_fastpath.c: an event's fields; _redact_native.c: the fused walk; _paging.c: pages).
 * Each writes at ``p``, where the caller has made room (at most 9 bytes), and returns the
 * number of bytes written. */
#ifndef FLIGHTREC_MSGPACK_H
#define FLIGHTREC_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

/* v as n big-endian bytes */
static inline size_t
mp_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
    }
    return (size_t)n;
}

static inline size_t
mp_uint(unsigned char *p, uint64_t x)
{
    if (x < 128) {
        p[0] = (unsigned char)x;
        return 1;
    }
    int n = x < 256 ? 1 : x < 65536 ? 2 : x < 4294967296ULL ? 4 : 8;
    p[0] = (unsigned char)(n == 1 ? 0xcc : n == 2 ? 0xcd : n == 4 ? 0xce : 0xcf);
    return 1 + mp_be(p + 1, x, n);
}

static inline size_t
mp_int(unsigned char *p, int64_t x)
{
    if (x >= 0) {
        return mp_uint(p, (uint64_t)x);
    }
    if (x >= -32) {
        p[0] = (unsigned char)(int8_t)x; /* negative fixint */
        return 1;
    }
    int n = x >= -128 ? 1 : x >= -32768 ? 2 : x >= -2147483648LL ? 4 : 8;
    p[0] = (unsigned char)(n == 1 ? 0xd0 : n == 2 ? 0xd1 : n == 4 ? 0xd2 : 0xd3);
    return 1 + mp_be(p + 1, (uint64_t)x, n);
}

/* A header for n items or bytes: the fix form up to fix_max, else the 8- (if c8), 16- or
 * 32-bit length form. */
static inline size_t
mp_head(unsigned char *p, uint64_t n, unsigned char fix, uint64_t fix_max, unsigned char c8, unsigned char c16,
        unsigned char c32)
{
    if (n <= fix_max) {
        p[0] = (unsigned char)(fix | n);
        return 1;
    }
    int w = c8 && n < 256 ? 1 : n < 65536 ? 2 : 4;
    p[0] = w == 1 ? c8 : w == 2 ? c16 : c32;
    return 1 + mp_be(p + 1, n, w);
}

#define MP_STR_HEAD(p, n) mp_head((p), (n), 0xa0, 31, 0xd9, 0xda, 0xdb)
#define MP_MAP_HEAD(p, n) mp_head((p), (n), 0x80, 15, 0, 0xde, 0xdf)
#define MP_ARRAY_HEAD(p, n) mp_head((p), (n), 0x90, 15, 0, 0xdc, 0xdd)

#endif
