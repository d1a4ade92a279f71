/* An LD_PRELOAD shim that makes writes and syncs fail with EIO, as a failing disk does, on
 * files whose path contains $CLOUDFILM_EIO_PATH, while the file $CLOUDFILM_EIO_SWITCH exists;
 * when that file starts with "sync", only fsync, fdatasync and syncfs fail (the writes land in
 * the page cache, their flush to the disk fails). Everything else (other files, reads) goes
 * through untouched. Built by the tests with gcc. */
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

static int failing(int fd, int is_sync) {
    const char *part = getenv("CLOUDFILM_EIO_PATH");
    const char *flag = getenv("CLOUDFILM_EIO_SWITCH");
    if (!part || !flag) return 0;
    FILE *f = fopen(flag, "r");
    if (!f) return 0;
    char mode[5] = {0};
    size_t got = fread(mode, 1, 4, f);
    fclose(f);
    if (got == 4 && strcmp(mode, "sync") == 0 && !is_sync) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strstr(path, part) != NULL;
}

#define REAL(name) static __typeof__(name) *real_##name; \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)
#define FAIL_IF(fd) if (failing(fd, 0)) { errno = EIO; return -1; }
#define FAIL_SYNC_IF(fd) if (failing(fd, 1)) { errno = EIO; return -1; }

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
    REAL(fsync); FAIL_SYNC_IF(fd); return real_fsync(fd);
}
int fdatasync(int fd) {
    REAL(fdatasync); FAIL_SYNC_IF(fd); return real_fdatasync(fd);
}
int syncfs(int fd) {
    REAL(syncfs); FAIL_SYNC_IF(fd); return real_syncfs(fd);
}
