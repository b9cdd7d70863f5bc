/*
 * auxv: what the loader told the program in its auxiliary vector, as getauxval(3) and
 * dl_iterate_phdr(3) see it. Prints only what is the same on Linux and in kvmbox for the same
 * file run by its absolute path: no addresses, just whether they point where they must. Run it
 * with its absolute path as argv[0]. Exits 0.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

extern char _start[];

static int object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    const char *name = info->dlpi_name;
    if (strstr(name, "vdso")) return 0; /* Linux gives a vDSO; kvmbox does not (yet) */
    const char *slash = strrchr(name, '/');
    printf("object: %s, %d headers\n", slash ? slash + 1 : name[0] ? name : "(program)", info->dlpi_phnum);
    return 0;
}

int main(int argc, char **argv)
{

    const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)getauxval(AT_PHDR);
    unsigned long phnum = getauxval(AT_PHNUM);
    int loads = 0;
    for (unsigned long i = 0; phdr && i < phnum; i++) loads += phdr[i].p_type == PT_LOAD;
    printf("AT_PAGESZ=%lu AT_PHENT=%lu AT_PHNUM=%lu (PT_LOAD: %d)\n", getauxval(AT_PAGESZ), getauxval(AT_PHENT), phnum, loads);
    printf("AT_ENTRY is _start: %d\n", getauxval(AT_ENTRY) == (unsigned long)_start);
    printf("AT_BASE set: %d\n", getauxval(AT_BASE) != 0);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("AT_EXECFN is argv[0]: %d\n", execfn && strcmp(execfn, argv[0]) == 0);
    const unsigned char *random = (const unsigned char *)getauxval(AT_RANDOM);
    int nonzero = 0;
    for (int i = 0; random && i < 16; i++) nonzero |= random[i];
    printf("AT_RANDOM: %d\n", random != NULL && nonzero != 0);
    printf("AT_PLATFORM: %s\n", (const char *)getauxval(AT_PLATFORM));
    /* The strings lie one after another at rising addresses: argv, the environment, AT_EXECFN
     * (libuv's process title is written over them). */
    extern char **environ;
    const char *next = argv[0];
    int inOrder = 1;
    for (int i = 0; i < argc; i++) { inOrder &= argv[i] == next; next = argv[i] + strlen(argv[i]) + 1; }
    for (char **e = environ; *e; e++) { inOrder &= *e == next; next = *e + strlen(*e) + 1; }
    inOrder &= execfn == next;
    printf("strings in order: %d\n", inOrder);
    dl_iterate_phdr(object, NULL);
    return 0;
}
