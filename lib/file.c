/*
 * file.c — bounded whole-file reads and atomic, durable writes
 * (temporary file, fsync, rename, fsync of the directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

candor_status_t candor__read_file_into(const char *path, size_t max, char **buf, size_t *cap,
                                       size_t *len)
{
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return candor__fail(CANDOR_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return candor__fail(CANDOR_EIO, "%s: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return candor__fail(CANDOR_EIO, "%s: is a directory", path);
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
        close(fd);
        return candor__fail(CANDOR_ELIMIT, "%s: %lld bytes, over the limit of %zu",
                            path, (long long)st.st_size, max);
    }
    /* +2: room for the NUL and for the read() that sees end of file, so a
     * file of the size fstat gave is read without growing the buffer. */
    size_t want = S_ISREG(st.st_mode) ? (size_t)st.st_size + 2 : 65536;
    if (*cap < want || !*buf) {
        char *nb = realloc(*buf, want);
        if (!nb) {
            close(fd);
            return candor__fail(CANDOR_ENOMEM, "%s: out of memory", path);
        }
        *buf = nb;
        *cap = want;
    }
    size_t n = 0;
    for (;;) {
        if (n == *cap - 1) {
            if (*cap - 1 >= max + 1) {
                close(fd);
                return candor__fail(CANDOR_ELIMIT, "%s: over the limit of %zu bytes", path, max);
            }
            size_t ncap = *cap * 2;
            char *nb = realloc(*buf, ncap);
            if (!nb) {
                close(fd);
                return candor__fail(CANDOR_ENOMEM, "%s: out of memory", path);
            }
            *buf = nb;
            *cap = ncap;
        }
        ssize_t r = read(fd, *buf + n, *cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return candor__fail(CANDOR_EIO, "%s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            close(fd);
            return candor__fail(CANDOR_ELIMIT, "%s: over the limit of %zu bytes", path, max);
        }
    }
    close(fd);
    (*buf)[n] = '\0';
    *len = n;
    return CANDOR_OK;
}

candor_status_t candor__read_file(const char *path, size_t max, char **data, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0;
    *data = NULL;
    candor_status_t st = candor__read_file_into(path, max, &buf, &cap, len);
    if (st != CANDOR_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    return CANDOR_OK;
}

candor_status_t candor__write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return candor__fail(CANDOR_EINVAL, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return candor__fail(CANDOR_EIO, "%s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return candor__fail(e == ENOSPC ? CANDOR_ETEMPFAIL : CANDOR_EIO, "%s: write: %s",
                                tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return candor__fail(CANDOR_EIO, "%s: fsync: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return candor__fail(CANDOR_EIO, "%s: rename: %s", path, strerror(e));
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        strcpy(dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return CANDOR_OK;
}
