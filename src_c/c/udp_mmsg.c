/* udp_mmsg.c - a plain C sendmmsg/recvmmsg loop, the yardstick of
 * `netlab bench udp`. Not part of netlab's install: the benchmarks compile it
 * with gcc when they run (see tests/benchmarks/test_bench_net.py).
 *
 *   udp_mmsg SIZE SECONDS [NAP_US [RCVBUF]]
 *       one process, two threads: a sender thread pushes SIZE-byte datagrams
 *       (64 per sendmmsg) to a receiver thread (64 per recvmmsg) on 127.0.0.1
 *       for SECONDS; prints "sent N received M seconds S".
 *       The receiver drains, then naps NAP_US microseconds (default 100, the
 *       algorithm of netlab's receiver); NAP_US 0 blocks in recvmmsg instead.
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
    double last = now();
    for (;;) {
        /* Drain without blocking; nap when the queue is short or empty; block
         * (0.1 s timeout) after 20 ms without a datagram, and stop on silence
         * once the sender is done. */
        int idle = now() - last > 0.02;
        int r = recvmmsg(rx, m, BATCH, nap_us > 0 && !idle ? MSG_DONTWAIT : MSG_WAITFORONE, NULL);
        if (r > 0) {
            received += r;
            last = now();
            if (r < BATCH && nap_us > 0) nanosleep(&nap, NULL);
        } else if (done && (idle || nap_us == 0)) {
            break;
        } else if (nap_us > 0 && !idle) {
            nanosleep(&nap, NULL);
        }
    }
    pthread_join(t, NULL);
    printf("sent %lld received %lld seconds %.3f\n", sent, received, seconds);
    (void)start;
    free(bufs);
    return 0;
}
