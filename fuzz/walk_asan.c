/*
 * walk_asan: replay and mutate captures through the C walk of the packet core
 * (src_c/walk.h) under AddressSanitizer and UndefinedBehaviorSanitizer.
 *
 * Each input is copied into a heap block of exactly its size, so reading one
 * byte past the end is a reported error, not a silent read of the next byte.
 * Every input runs through the reader + stats path (checksums on) and through
 * the frame decoder for every link type; then ITERATIONS mutations of it
 * (byte overwrites, bit flips, truncation; a fixed-seed xorshift, so a run is
 * reproducible) run the same way.
 *
 *   gcc -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
 *       -I src_c fuzz/walk_asan.c -o /tmp/walk_asan
 *   /tmp/walk_asan 2000 tests/data/*.pcap* tests/data/fuzz/*
 *
 * tests/test_decode_asan.py does exactly this when gcc is available.
 */
#include "walk.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const int LINKTYPES[] = {0, 1, 6, 7, 9, 10, 11, 12, 14, 50, 51, 101, 104, 105, 107, 108,
                                 109, 113, 117, 123, 127, 129, 163, 192, 204, 205, 219, 226, 228,
                                 229, 239, 242, 258, 276, 9999};

static uint64_t run(const uint8_t *data, size_t n) {
    uint8_t *buf = (uint8_t *)malloc(n ? n : 1);
    uint64_t packets = 0;
    if (!buf) { fprintf(stderr, "out of memory\n"); exit(1); }
    memcpy(buf, data, n);
    static nl_reader r;
    if (nl_reader_init(&r, buf, n) == 0) {
        nl_agg g;
        if (nl_agg_init(&g) < 0) { fprintf(stderr, "out of memory\n"); exit(1); }
        nl_agg_run(&g, &r, 1);
        packets = g.packets;
        nl_agg_free(&g);
    }
    nl_reader_free(&r);
    nl_pkt k;
    for (size_t i = 0; i < sizeof LINKTYPES / sizeof LINKTYPES[0]; i++) {
        size_t m = n < 65535 ? n : 65535;
        nl_decode(buf, (uint32_t)m, LINKTYPES[i], 1, &k);
    }
    free(buf);
    return packets;
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    size_t cap = 4096, len = 0;
    uint8_t *b = (uint8_t *)malloc(cap);
    size_t got;
    while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) b = (uint8_t *)realloc(b, cap *= 2);
    }
    fclose(f);
    if (!b) { fprintf(stderr, "out of memory\n"); exit(1); }
    *n = len;
    return b;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: walk_asan ITERATIONS FILE...\n");
        return 2;
    }
    long iterations = atol(argv[1]);
    uint64_t runs = 0, packets = 0;
    for (int a = 2; a < argc; a++) {
        size_t n;
        uint8_t *orig = slurp(argv[a], &n);
        uint8_t *work = (uint8_t *)malloc(n ? n : 1);
        packets += run(orig, n);
        runs++;
        for (long it = 0; it < iterations; it++) {
            memcpy(work, orig, n);
            size_t len = n;
            int edits = 1 + (int)(next_rand() % 8);
            for (int e = 0; e < edits && len; e++) {
                size_t pos = next_rand() % len;
                switch (next_rand() % 4) {
                case 0: work[pos] = (uint8_t)next_rand(); break;
                case 1: work[pos] ^= (uint8_t)(1u << (next_rand() % 8)); break;
                case 2: work[pos] = (uint8_t)(next_rand() % 2 ? 0xFF : 0x00); break;
                default: len = pos + 1; break; /* truncate */
                }
            }
            packets += run(work, len);
            runs++;
        }
        free(work);
        free(orig);
    }
    printf("{\"runs\": %llu, \"packets\": %llu}\n", (unsigned long long)runs,
           (unsigned long long)packets);
    return 0;
}
