/*
 * faultfs: make the N-th file-system operation under one directory fail, for fault-injection tests.
 *
 * Loaded with LD_PRELOAD, it sits in front of the C library for every library in the process
 * (Python, numpy, OpenCV's libjpeg/libpng/libtiff, FFmpeg inside PyAV), so a store writer is hit
 * wherever it writes, not only where its Python code calls os.write. Operations on paths under
 * $FAULTFS_DIR are counted, in the order they happen, by kind:
 *
 *   write   write, pwrite, writev, pwritev, fwrite, fputs, fputc, putc
 *   fsync   fsync, fdatasync
 *   rename  rename, renameat, renameat2 (either path under the directory)
 *   close   close, fclose of a file opened for writing (it is closed all the same, as the kernel does)
 *   create  open/openat/creat with O_CREAT, fopen for writing, mkdir/mkdirat
 *
 * The operation numbered $FAULTFS_AT (1-based, counting only the kinds in $FAULTFS_OPS, a
 * comma-separated list, default all) fails with errno $FAULTFS_ERRNO (default ENOSPC) and
 * does nothing. With $FAULTFS_STICKY=1 every later counted operation fails too (a disk that
 * stays full, or a file system remounted read-only). With $FAULTFS_PARTIAL=1 a failing write
 * of more than one byte first writes half of its bytes and returns that short count (as a
 * filling disk does), then the next counted operation fails.
 *
 * The process can also drive it through ctypes: faultfs_arm(n, errno, sticky) makes the n-th
 * counted operation from now fail; faultfs_disarm() stops failing; faultfs_count() is the number
 * of counted operations so far; faultfs_failures() how many were failed.
 *
 * At exit, the count is written to $FAULTFS_REPORT (if set): "<operations> <failures>\n".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 65536

enum { OP_WRITE = 1, OP_FSYNC = 2, OP_RENAME = 4, OP_CLOSE = 8, OP_CREATE = 16 };

static char g_dir[PATH_MAX];
static size_t g_dir_len;
static int g_ops = OP_WRITE | OP_FSYNC | OP_RENAME | OP_CLOSE | OP_CREATE;
static long g_at;          /* fail the operation with this count (0: none) */
static int g_errno = ENOSPC;
static int g_sticky;
static int g_partial;
static int g_partial_pending; /* a short write happened: fail the next operation */
static long g_count;
static long g_failures;
/* descriptors of files under the directory: 1 opened read-only, 2 opened for writing */
static unsigned char g_tracked[MAX_FD];

/* the real functions */
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static size_t (*real_fwrite)(const void *, size_t, size_t, FILE *);
static int (*real_fputs)(const char *, FILE *);
static int (*real_fputc)(int, FILE *);
static int (*real_putc)(int, FILE *);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_close)(int);
static int (*real_fclose)(FILE *);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);
static int (*real_creat64)(const char *, mode_t);
static FILE *(*real_fopen)(const char *, const char *);
static FILE *(*real_fopen64)(const char *, const char *);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);

#define LOAD(name) real_##name = dlsym(RTLD_NEXT, #name)

static void report(void) {
    const char *path = getenv("FAULTFS_REPORT");
    if (!path || !real_open) return;
    char line[64];
    int n = snprintf(line, sizeof line, "%ld %ld\n", __atomic_load_n(&g_count, __ATOMIC_SEQ_CST),
                     __atomic_load_n(&g_failures, __ATOMIC_SEQ_CST));
    int fd = real_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (real_write(fd, line, (size_t)n) < 0) { /* nothing to do */ }
        real_close(fd);
    }
}

__attribute__((constructor)) static void faultfs_init(void) {
    LOAD(write); LOAD(pwrite); LOAD(pwrite64); LOAD(writev); LOAD(pwritev); LOAD(fwrite); LOAD(fputs);
    LOAD(fputc); LOAD(putc); LOAD(fsync); LOAD(fdatasync); LOAD(rename); LOAD(renameat);
    LOAD(renameat2); LOAD(close); LOAD(fclose); LOAD(open); LOAD(open64); LOAD(openat); LOAD(openat64);
    LOAD(creat); LOAD(creat64); LOAD(fopen); LOAD(fopen64); LOAD(mkdir); LOAD(mkdirat);
    const char *dir = getenv("FAULTFS_DIR");
    if (dir && dir[0] == '/' && strlen(dir) < sizeof g_dir - 2) {
        strcpy(g_dir, dir);
        g_dir_len = strlen(g_dir);
        while (g_dir_len > 1 && g_dir[g_dir_len - 1] == '/') g_dir[--g_dir_len] = 0;
    }
    const char *s;
    if ((s = getenv("FAULTFS_AT"))) g_at = atol(s);
    if ((s = getenv("FAULTFS_ERRNO"))) g_errno = atoi(s);
    if ((s = getenv("FAULTFS_STICKY"))) g_sticky = atoi(s);
    if ((s = getenv("FAULTFS_PARTIAL"))) g_partial = atoi(s);
    if ((s = getenv("FAULTFS_OPS"))) {
        g_ops = 0;
        if (strstr(s, "write")) g_ops |= OP_WRITE;
        if (strstr(s, "fsync")) g_ops |= OP_FSYNC;
        if (strstr(s, "rename")) g_ops |= OP_RENAME;
        if (strstr(s, "close")) g_ops |= OP_CLOSE;
        if (strstr(s, "create")) g_ops |= OP_CREATE;
    }
    atexit(report);
}

/* -- the control interface (ctypes) -------------------------------------------------------- */
void faultfs_arm(long n, int err, int sticky) {
    __atomic_store_n(&g_errno, err, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_sticky, sticky, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_partial_pending, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_at, __atomic_load_n(&g_count, __ATOMIC_SEQ_CST) + n, __ATOMIC_SEQ_CST);
}
void faultfs_disarm(void) {
    __atomic_store_n(&g_at, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_partial_pending, 0, __ATOMIC_SEQ_CST);
}
long faultfs_count(void) { return __atomic_load_n(&g_count, __ATOMIC_SEQ_CST); }
long faultfs_failures(void) { return __atomic_load_n(&g_failures, __ATOMIC_SEQ_CST); }

/* -- deciding ------------------------------------------------------------------------------- */
static int under_dir(const char *abs) {
    return g_dir_len && strncmp(abs, g_dir, g_dir_len) == 0 && (abs[g_dir_len] == '/' || abs[g_dir_len] == 0);
}

/* the absolute form of ``path`` relative to directory fd ``dirfd`` (AT_FDCWD: the working directory) */
static int absolute(int dirfd, const char *path, char *out) {
    if (!path) return 0;
    if (path[0] == '/') {
        snprintf(out, PATH_MAX, "%s", path);
        return 1;
    }
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base)) return 0;
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n <= 0) return 0;
        base[n] = 0;
    }
    if (snprintf(out, PATH_MAX, "%s/%s", base, path) >= PATH_MAX) return 0;
    return 1;
}

static int path_under(int dirfd, const char *path) {
    char abs[PATH_MAX];
    return g_dir_len && absolute(dirfd, path, abs) && under_dir(abs);
}

static int fd_tracked(int fd) { return fd >= 0 && fd < MAX_FD && g_tracked[fd]; }

static void track(int fd, int writable) {
    if (fd < 0 || fd >= MAX_FD || !g_dir_len) return;
    char link[64], abs[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, abs, sizeof abs - 1);
    if (n <= 0) return;
    abs[n] = 0;
    g_tracked[fd] = under_dir(abs) ? (unsigned char)(writable ? 2 : 1) : 0;
}

static int fd_writable(int fd) { return fd >= 0 && fd < MAX_FD && g_tracked[fd] == 2; }

/* count one operation of ``kind`` on ``path`` (NULL: a file descriptor's); 1 when it must fail
   (errno is then set). FAULTFS_VERBOSE prints each failure on stderr, with the path if known. */
static int fail_now_at(int kind, const char *path) {
    if (!(g_ops & kind)) return 0;
    long n = __atomic_add_fetch(&g_count, 1, __ATOMIC_SEQ_CST);
    long at = __atomic_load_n(&g_at, __ATOMIC_SEQ_CST);
    int fail = __atomic_exchange_n(&g_partial_pending, 0, __ATOMIC_SEQ_CST) ||
               (at > 0 && (n == at || (g_sticky && n > at)));
    if (fail) {
        __atomic_add_fetch(&g_failures, 1, __ATOMIC_SEQ_CST);
        if (getenv("FAULTFS_VERBOSE")) {
            static const char *names[] = {"", "write", "fsync", "", "rename", "", "", "", "close", "", "", "", "", "", "",
                                          "", "create"};
            char line[512];
            int len = snprintf(line, sizeof line, "faultfs: operation %ld (%s) fails%s%s\n", n, names[kind],
                               path ? ": " : "", path ? path : "");
            real_write(2, line, len < (int)sizeof line ? (size_t)len : sizeof line - 1);
        }
        errno = g_errno;
    }
    return fail;
}

static int fail_now(int kind) { return fail_now_at(kind, NULL); }

/* a failing write: with FAULTFS_PARTIAL, half the bytes first (a short count), the failure next */
static int short_write_instead(size_t count) {
    if (g_partial && count > 1) {
        __atomic_store_n(&g_partial_pending, 1, __ATOMIC_SEQ_CST);
        return 1;
    }
    return 0;
}

/* -- writes --------------------------------------------------------------------------------- */
ssize_t write(int fd, const void *buf, size_t count) {
    if (fd_tracked(fd) && fail_now(OP_WRITE)) {
        if (short_write_instead(count)) return real_write(fd, buf, count / 2);
        return -1;
    }
    return real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    if (fd_tracked(fd) && fail_now(OP_WRITE)) {
        if (short_write_instead(count)) return real_pwrite(fd, buf, count / 2, offset);
        return -1;
    }
    return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    if (fd_tracked(fd) && fail_now(OP_WRITE)) {
        if (short_write_instead(count)) return real_pwrite64(fd, buf, count / 2, offset);
        return -1;
    }
    return real_pwrite64(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    if (fd_tracked(fd) && fail_now(OP_WRITE)) return -1;
    return real_writev(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
    if (fd_tracked(fd) && fail_now(OP_WRITE)) return -1;
    return real_pwritev(fd, iov, iovcnt, offset);
}

static int stream_tracked(FILE *stream) { return stream && fd_tracked(fileno(stream)); }

size_t fwrite(const void *ptr, size_t size, size_t nmemb, FILE *stream) {
    if (stream_tracked(stream) && fail_now(OP_WRITE)) {
        if (short_write_instead(nmemb) && size) return real_fwrite(ptr, size, nmemb / 2, stream);
        return 0;
    }
    return real_fwrite(ptr, size, nmemb, stream);
}

int fputs(const char *s, FILE *stream) {
    if (stream_tracked(stream) && fail_now(OP_WRITE)) return EOF;
    return real_fputs(s, stream);
}

int fputc(int c, FILE *stream) {
    if (stream_tracked(stream) && fail_now(OP_WRITE)) return EOF;
    return real_fputc(c, stream);
}

int putc(int c, FILE *stream) {
    if (stream_tracked(stream) && fail_now(OP_WRITE)) return EOF;
    return real_putc(c, stream);
}

/* -- syncs, renames, closes ----------------------------------------------------------------- */
int fsync(int fd) {
    if (fd_tracked(fd) && fail_now(OP_FSYNC)) return -1;
    return real_fsync(fd);
}

int fdatasync(int fd) {
    if (fd_tracked(fd) && fail_now(OP_FSYNC)) return -1;
    return real_fdatasync(fd);
}

int rename(const char *from, const char *to) {
    if ((path_under(AT_FDCWD, from) || path_under(AT_FDCWD, to)) && fail_now_at(OP_RENAME, to)) return -1;
    return real_rename(from, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to) {
    if ((path_under(fromfd, from) || path_under(tofd, to)) && fail_now_at(OP_RENAME, to)) return -1;
    return real_renameat(fromfd, from, tofd, to);
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned int flags) {
    if ((path_under(fromfd, from) || path_under(tofd, to)) && fail_now_at(OP_RENAME, to)) return -1;
    return real_renameat2(fromfd, from, tofd, to, flags);
}

int close(int fd) {
    int tracked = fd_writable(fd);
    if (fd_tracked(fd)) g_tracked[fd] = 0;
    if (tracked && fail_now(OP_CLOSE)) {
        int saved = errno;
        real_close(fd); /* the descriptor is released even when close reports an error */
        errno = saved;
        return -1;
    }
    return real_close(fd);
}

int fclose(FILE *stream) {
    int fd = stream ? fileno(stream) : -1;
    int tracked = fd_writable(fd);
    if (fd_tracked(fd)) g_tracked[fd] = 0;
    if (tracked && fail_now(OP_CLOSE)) {
        int saved = errno;
        real_fclose(stream);
        errno = saved;
        return EOF;
    }
    return real_fclose(stream);
}

/* -- opens and creations -------------------------------------------------------------------- */
static int open_common(int dirfd, const char *path, int flags, mode_t mode,
                       int (*real)(int, const char *, int, ...), int (*real_plain)(const char *, int, ...)) {
    if ((flags & O_CREAT) && path_under(dirfd, path) && fail_now_at(OP_CREATE, path)) return -1;
    int fd = real ? real(dirfd, path, flags, mode) : real_plain(path, flags, mode);
    if (fd >= 0) track(fd, (flags & O_ACCMODE) != O_RDONLY);
    return fd;
}

/* the mode argument of a variadic open, present only when ``flags`` create a file */
#define OPEN_MODE(flags, mode)                 \
    mode_t mode = 0;                           \
    if ((flags) & (O_CREAT | O_TMPFILE)) {     \
        va_list ap;                            \
        va_start(ap, flags);                   \
        mode = va_arg(ap, mode_t);             \
        va_end(ap);                            \
    }

int open(const char *path, int flags, ...) {
    OPEN_MODE(flags, mode);
    return open_common(AT_FDCWD, path, flags, mode, NULL, real_open);
}

int open64(const char *path, int flags, ...) {
    OPEN_MODE(flags, mode);
    return open_common(AT_FDCWD, path, flags, mode, NULL, real_open64);
}

int openat(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags, mode);
    return open_common(dirfd, path, flags, mode, real_openat, NULL);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags, mode);
    return open_common(dirfd, path, flags, mode, real_openat64, NULL);
}

int creat(const char *path, mode_t mode) {
    return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int creat64(const char *path, mode_t mode) {
    return open64(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

static FILE *fopen_common(const char *path, const char *mode, FILE *(*real)(const char *, const char *)) {
    int writing = mode && (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'));
    if (writing && path_under(AT_FDCWD, path) && fail_now_at(OP_CREATE, path)) return NULL;
    FILE *f = real(path, mode);
    if (f) track(fileno(f), writing);
    return f;
}

FILE *fopen(const char *path, const char *mode) { return fopen_common(path, mode, real_fopen); }
FILE *fopen64(const char *path, const char *mode) { return fopen_common(path, mode, real_fopen64); }

int mkdir(const char *path, mode_t mode) {
    if (path_under(AT_FDCWD, path) && fail_now_at(OP_CREATE, path)) return -1;
    return real_mkdir(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode) {
    if (path_under(dirfd, path) && fail_now_at(OP_CREATE, path)) return -1;
    return real_mkdirat(dirfd, path, mode);
}
