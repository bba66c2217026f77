// Linux interfaces that `import Glibc` does not bring in (epoll, eventfd, signalfd,
// inotify) and the _GNU_SOURCE ones it hides.
#ifndef CLINUX_SHIM_H
#define CLINUX_SHIM_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <signal.h>
#include <time.h>
#include <pthread.h>

extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

static inline int clinux_sock_nonblock_cloexec(void) { return SOCK_NONBLOCK | SOCK_CLOEXEC; }
static inline uint32_t clinux_epollin(void) { return EPOLLIN; }
static inline uint32_t clinux_epollout(void) { return EPOLLOUT; }
static inline uint32_t clinux_epollerr(void) { return EPOLLERR; }
static inline uint32_t clinux_epollhup(void) { return EPOLLHUP; }
static inline uint32_t clinux_epollrdhup(void) { return EPOLLRDHUP; }
#endif
