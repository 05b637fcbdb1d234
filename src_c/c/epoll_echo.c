/* epoll_echo.c - a plain C epoll echo server (RFC 862 over TCP), the yardstick
 * of `netlab bench echo`. Not part of netlab's install: the benchmarks compile
 * it with gcc when they run (see tests/benchmarks/test_bench_net.py).
 *
 *   epoll_echo PORT        listen on 127.0.0.1:PORT (0: the OS picks), one thread,
 *                          level-triggered epoll; prints "port N" once listening;
 *                          stops on SIGTERM or SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int one = 1;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1024) < 0) {
        perror("epoll_echo: bind/listen");
        return 1;
    }
    getsockname(ls, (struct sockaddr *)&a, &alen);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);

    static char buf[65536];
    struct epoll_event events[256];
    while (!stop) {
        int n = epoll_wait(ep, events, 256, 200);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                close(fd);               /* closing also removes it from the epoll set */
                continue;
            }
            ssize_t off = 0;
            while (off < r) {            /* echo it all; the clients wait for it anyway */
                ssize_t w = write(fd, buf + off, (size_t)(r - off));
                if (w < 0) {
                    if (errno == EAGAIN || errno == EINTR) continue;
                    close(fd);
                    break;
                }
                off += w;
            }
        }
    }
    close(ep);
    close(ls);
    return 0;
}
