/*
 * big-output: checks the integrity of a large stream on stdout.
 *
 * Writes SIZE bytes (default 1 MiB; optional argv[1] overrides it) to stdout
 * in write(2) calls of at most 4 KiB. The byte at stream offset i is
 * (i % 251): 251 is prime, so 4096-byte chunks do not line up with the
 * pattern and any dropped, duplicated or reordered chunk changes the output.
 * Partial writes are retried. Exits 0, or 1 if a write fails.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK 4096

int main(int argc, char **argv)
{
    unsigned long total = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024UL * 1024UL;
    static unsigned char buf[CHUNK];
    unsigned long pos = 0;

    while (pos < total) {
        size_t len = total - pos < CHUNK ? (size_t)(total - pos) : CHUNK;
        for (size_t j = 0; j < len; j++)
            buf[j] = (unsigned char)((pos + j) % 251);
        for (size_t off = 0; off < len;) {
            ssize_t w = write(STDOUT_FILENO, buf + off, len - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                fprintf(stderr, "big-output: write at offset %lu: %s\n", pos + off, strerror(errno));
                return 1;
            }
            off += (size_t)w;
        }
        pos += len;
    }
    return 0;
}
