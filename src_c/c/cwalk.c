/*
 * cwalk: the plain C baseline of `netlab bench parse`.
 *
 * It runs exactly the stats walk of the compiled core (src_c/walk.h: framing,
 * link/IP/transport decoding, per-protocol/port/flow counters) over an
 * mmap'ed capture, with no Python anywhere, and prints one JSON line:
 *   {"packets": N, "seconds": BEST, "flows": F, "error": null|"..."}
 * The bench compiles it at run time (gcc -O3 -I src_c); it is not installed.
 *
 * usage: cwalk FILE [REPEATS]
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "walk.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: cwalk FILE [REPEATS]\n");
        return 2;
    }
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    if (repeats < 1) repeats = 1;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size == 0) { fprintf(stderr, "%s: empty\n", argv[1]); return 1; }
    /* MAP_POPULATE: map every page before the clock starts, as the bench's
     * Python process has them mapped already after its first pass. */
    const uint8_t *buf = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (buf == MAP_FAILED) { perror("mmap"); return 1; }
    double best = 1e300;
    uint64_t packets = 0;
    size_t flows = 0;
    const char *error = NULL;
    static nl_reader r;
    for (int i = 0; i < repeats; i++) {
        /* Timed like the Cython stats path: table setup, the walk, teardown. */
        nl_agg g;
        double t0 = now();
        if (nl_agg_init(&g) < 0) { fprintf(stderr, "out of memory\n"); return 1; }
        int rc = nl_reader_init(&r, buf, (size_t)st.st_size);
        if (rc == 0) rc = nl_agg_run(&g, &r, 0);
        packets = g.packets;
        flows = g.n;
        error = rc < 0 ? r.err : NULL;
        nl_agg_free(&g);
        nl_reader_free(&r); /* the interface table; the error text stays in r.err */
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("{\"packets\": %llu, \"seconds\": %.9f, \"flows\": %zu, \"error\": %s%s%s}\n",
           (unsigned long long)packets, best, flows, error ? "\"" : "", error ? error : "null",
           error ? "\"" : "");
    return 0;
}
