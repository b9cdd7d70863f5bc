/*
 * hello: the smallest end-to-end check of program start-up.
 *
 * Checks that the loader passed argc, argv and envp correctly and that
 * stdout works: prints "hello, world", then every argv[i] as
 * "argv[i]=...", then "argc=N", then "env FOO=<value>" when FOO is set.
 * Exit status is atoi(argv[1]) when argv[1] is a decimal number, else 0,
 * so tests can also check that the exit status reaches the host.
 * Exits 120 if envp is missing (a NULL envp means the initial stack is wrong).
 */
#include <stdio.h>
#include <stdlib.h>

static int is_number(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

int main(int argc, char **argv, char **envp)
{
    printf("hello, world\n");
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    printf("argc=%d\n", argc);
    if (envp == NULL) {
        fprintf(stderr, "hello: envp is NULL\n");
        return 120;
    }
    const char *foo = getenv("FOO");
    if (foo != NULL)
        printf("env FOO=%s\n", foo);
    if (argc > 1 && is_number(argv[1]))
        return atoi(argv[1]);
    return 0;
}
