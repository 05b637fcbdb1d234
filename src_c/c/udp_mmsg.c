/* udp_mmsg.c - a plain C sendmmsg/recvmmsg loop, the yardstick of
 * `netlab bench udp`. Not part of netlab's install: the benchmarks compile it
 * with gcc when they run (see tests/benchmarks/test_bench_net.py).
 *
 *   udp_mmsg SIZE SECONDS [NAP_US [RCVBUF]]
 *       one process, two threads: a sender thread pushes SIZE-byte datagrams
 *       (64 per sendmmsg) to a receiver thread (64 per recvmmsg) on 127.0.0.1
 *       for SECONDS; prints "sent N received M seconds S".
 *       The receiver drains, then naps NAP_US microseconds when napping pays
 *       (default 100, the algorithm of netlab's receiver, see
 *       netlab/_pynetio.py udp_recv); NAP_US 0 always blocks in recvmmsg.
 *       RCVBUF asks for that receive buffer (SO_RCVBUFFORCE as root).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static int size;
static double seconds;
static volatile int done;
static long long sent, received;
static int tx, rx;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void setup(struct mmsghdr *m, struct iovec *iov, char *bufs) {
    memset(m, 0, sizeof(struct mmsghdr) * BATCH);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs + (size_t)i * (size_t)size;
        iov[i].iov_len = (size_t)size;
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
}

static void *sender(void *arg) {
    (void)arg;
    struct mmsghdr m[BATCH];
    struct iovec iov[BATCH];
    char *bufs = calloc(BATCH, (size_t)size);
    setup(m, iov, bufs);
    double end = now() + seconds;
    while (now() < end) {
        int r = sendmmsg(tx, m, BATCH, 0);
        if (r > 0) sent += r;
    }
    done = 1;
    free(bufs);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: udp_mmsg SIZE SECONDS [NAP_US [RCVBUF]]\n");
        return 2;
    }
    size = atoi(argv[1]);
    seconds = atof(argv[2]);
    long nap_us = argc > 3 ? atol(argv[3]) : 100;
    int rcvbuf = argc > 4 ? atoi(argv[4]) : 0;
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rx = socket(AF_INET, SOCK_DGRAM, 0);
    tx = socket(AF_INET, SOCK_DGRAM, 0);
    if (bind(rx, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    getsockname(rx, (struct sockaddr *)&a, &alen);
    connect(tx, (struct sockaddr *)&a, sizeof a);
    struct timeval tv = {0, 100000};
    setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (rcvbuf > 0 && setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timespec nap = {0, nap_us * 1000};

    struct mmsghdr m[BATCH];
    struct iovec iov[BATCH];
    char *bufs = calloc(BATCH, (size_t)(size > 2048 ? size : 2048));
    setup(m, iov, bufs);
    pthread_t t;
    double start = now();
    pthread_create(&t, NULL, sender, NULL);
    /* netlab's receiver: drain each wake-up; nap next when a blocking wake-up
     * brought fewer than 16 datagrams, block next when a nap did. Blocking
     * times out after 0.1 s; silence then, with the sender done, ends the run. */
    int napping = 0;
    long long wake = 0;
    for (;;) {
        int r = recvmmsg(rx, m, BATCH, napping ? MSG_DONTWAIT : MSG_WAITFORONE, NULL);
        if (r <= 0) {
            if (!napping && done) break;
            napping = 0;
            wake = 0;
            continue;
        }
        received += r;
        wake += r;
        if (r < BATCH) {
            if (nap_us > 0) napping = napping ? wake >= 16 : wake < 16;
            wake = 0;
            if (napping) nanosleep(&nap, NULL);
        }
    }
    pthread_join(t, NULL);
    printf("sent %lld received %lld seconds %.3f\n", sent, received, seconds);
    (void)start;
    free(bufs);
    return 0;
}
