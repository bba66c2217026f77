// Linux interfaces that `import Glibc` does not bring in (epoll, eventfd, signalfd,
// inotify, ptrace) and the _GNU_SOURCE ones it hides.
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
#include <malloc.h>
#include <sys/ptrace.h>

/// Large buffers (request bodies) in their own mappings, returned to the system when
/// freed, and at most `arenas` malloc arenas: a long-running server's RSS then follows
/// its load instead of its peak.
static inline void clinux_tune_malloc(int mmap_threshold, int arenas) {
    mallopt(M_MMAP_THRESHOLD, mmap_threshold);
    mallopt(M_TRIM_THRESHOLD, mmap_threshold);
    mallopt(M_ARENA_MAX, arenas);
}

extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

static inline int clinux_sock_nonblock_cloexec(void) { return SOCK_NONBLOCK | SOCK_CLOEXEC; }
static inline uint32_t clinux_epollin(void) { return EPOLLIN; }
static inline uint32_t clinux_epollout(void) { return EPOLLOUT; }
static inline uint32_t clinux_epollerr(void) { return EPOLLERR; }
static inline uint32_t clinux_epollhup(void) { return EPOLLHUP; }
static inline uint32_t clinux_epollrdhup(void) { return EPOLLRDHUP; }
extern int sched_getaffinity(pid_t pid, size_t cpusetsize, void *mask);

/// CPUs this process may run on (its affinity mask, up to 1024 CPUs); -1 on failure.
/// (`CPU_COUNT` is a macro behind _GNU_SOURCE, out of Swift's reach.)
static inline int clinux_affinity_cpu_count(void) {
    uint64_t mask[16] = {0};
    if (sched_getaffinity(0, sizeof(mask), mask) != 0) return -1;
    int count = 0;
    for (int i = 0; i < 16; i++) count += __builtin_popcountll(mask[i]);
    return count;
}

/// Returns free heap memory to the system.
static inline void clinux_malloc_trim(void) { malloc_trim(0); }

extern int pthread_setname_np(pthread_t thread, const char *name);

/// Names the calling thread (at most 15 bytes; `/proc/PID/task/TID/comm`); 0 or an errno.
static inline int clinux_name_thread(const char *name) { return pthread_setname_np(pthread_self(), name); }

/// ptrace(2) with the arguments each request takes (the libc function is variadic, out of
/// Swift's reach). The tests stop one thread of a child process from outside with these;
/// the server never calls them. Each returns 0, or -1 with errno set.
static inline long clinux_ptrace_seize(pid_t tid) { return ptrace(PTRACE_SEIZE, tid, 0, 0); }
static inline long clinux_ptrace_interrupt(pid_t tid) { return ptrace(PTRACE_INTERRUPT, tid, 0, 0); }
static inline long clinux_ptrace_detach(pid_t tid) { return ptrace(PTRACE_DETACH, tid, 0, 0); }
#endif
