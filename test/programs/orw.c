/*
 * orw: open-read-write, the sandbox's first file-system path.
 *
 * Checks open(2), read(2) in a loop (a 4 KiB buffer, so files larger than
 * one read exercise the file offset), write(2) to stdout (partial writes are
 * retried) and close(2). Usage: orw <path>. Prints the file to stdout and
 * exits 0; on any error prints "orw: <path>: <strerror>" to stderr and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *path)
{
    fprintf(stderr, "orw: %s: %s\n", path, strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: orw <path>\n");
        return 2;
    }
    const char *path = argv[1];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return fail(path);

    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(path);
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(STDOUT_FILENO, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return fail("<stdout>");
            }
            off += w;
        }
    }
    if (close(fd) < 0)
        return fail(path);
    return 0;
}
