/*
 * exitcode: checks that the exit status reaches the host, by each exit path.
 *
 * Usage: exitcode [N [_exit|exit]]. With no mode, returns N from main (libc's
 * exit path: atexit handlers, stdio flush, then exit_group). With "_exit",
 * calls _exit(N) directly (no libc clean-up). With "exit", calls exit(N).
 * The host sees N & 0xff. No argument means status 0.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int status = argc > 1 ? atoi(argv[1]) : 0;
    if (argc > 2 && strcmp(argv[2], "_exit") == 0)
        _exit(status);
    if (argc > 2 && strcmp(argv[2], "exit") == 0)
        exit(status);
    return status;
}
