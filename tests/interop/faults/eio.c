/* An LD_PRELOAD shim that makes writes and syncs fail with EIO, as a failing disk does, on
 * files whose path contains $CLOUDFILM_EIO_PATH, while the file $CLOUDFILM_EIO_SWITCH exists.
 * Everything else (other files, reads) goes through untouched. Built by the tests with gcc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int failing(int fd) {
    const char *part = getenv("CLOUDFILM_EIO_PATH");
    const char *flag = getenv("CLOUDFILM_EIO_SWITCH");
    struct stat st;
    if (!part || !flag || stat(flag, &st) != 0) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strstr(path, part) != NULL;
}

#define REAL(name) static __typeof__(name) *real_##name; \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)
#define FAIL_IF(fd) if (failing(fd)) { errno = EIO; return -1; }

ssize_t write(int fd, const void *buf, size_t count) {
    REAL(write); FAIL_IF(fd); return real_write(fd, buf, count);
}
ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    REAL(pwrite); FAIL_IF(fd); return real_pwrite(fd, buf, count, offset);
}
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    REAL(pwrite64); FAIL_IF(fd); return real_pwrite64(fd, buf, count, offset);
}
ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    REAL(writev); FAIL_IF(fd); return real_writev(fd, iov, iovcnt);
}
int fsync(int fd) {
    REAL(fsync); FAIL_IF(fd); return real_fsync(fd);
}
int fdatasync(int fd) {
    REAL(fdatasync); FAIL_IF(fd); return real_fdatasync(fd);
}
int syncfs(int fd) {
    REAL(syncfs); FAIL_IF(fd); return real_syncfs(fd);
}
