/* WASI behaviours checked by cli/tests/all/wasi_c.rs, one per first
 * argument. Built with clang --target=wasm32-wasi against wasi-libc by the
 * test. Each case prints what the test compares; a case that detects a
 * problem itself prints "FAIL: ..." and exits 1. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("FAIL: %s (line %d, errno %d: %s)\n", #cond, __LINE__,  \
                   errno, strerror(errno));                                \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

/* argv and environ, one per line, bracketed so spaces show. */
static int echo(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        printf("arg %d [%s]\n", i, argv[i]);
    for (char **e = environ; *e; e++)
        printf("env [%s]\n", *e);
    return 0;
}

static int stdio_case(void) {
    fputs("to stdout\n", stdout);
    fputs("to stderr\n", stderr);
    return 0;
}

/* stdin to stdout, upper-cased, with a byte count on stderr. */
static int cat(void) {
    char buf[4096];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        for (size_t i = 0; i < n; i++)
            if (buf[i] >= 'a' && buf[i] <= 'z')
                buf[i] -= 32;
        fwrite(buf, 1, n, stdout);
        total += n;
    }
    fprintf(stderr, "read %zu bytes\n", total);
    return 0;
}

/* File operations inside the preopen `dir`. */
static int files(const char *dir) {
    char path[256], path2[256], sub[256];
    snprintf(path, sizeof path, "%s/created.txt", dir);
    snprintf(path2, sizeof path2, "%s/renamed.txt", dir);
    snprintf(sub, sizeof sub, "%s/subdir", dir);

    /* create + write */
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "hello, world", 12) == 12);
    /* seek + read back */
    CHECK(lseek(fd, 7, SEEK_SET) == 7);
    char buf[32] = {0};
    CHECK(read(fd, buf, sizeof buf) == 5);
    CHECK(memcmp(buf, "world", 5) == 0);
    /* overwrite in the middle, check size */
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(write(fd, "HELLO", 5) == 5);
    CHECK(lseek(fd, 0, SEEK_END) == 12);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 12 && S_ISREG(st.st_mode));
    CHECK(close(fd) == 0);
    /* O_EXCL on an existing file */
    CHECK(open(path, O_CREAT | O_EXCL | O_WRONLY, 0644) < 0 && errno == EEXIST);
    /* stdio on the same file, append */
    FILE *f = fopen(path, "a");
    CHECK(f != NULL);
    CHECK(fprintf(f, "!\n") == 2);
    CHECK(fclose(f) == 0);
    /* rename */
    CHECK(rename(path, path2) == 0);
    CHECK(access(path, F_OK) < 0 && errno == ENOENT);
    f = fopen(path2, "r");
    CHECK(f != NULL);
    CHECK(fgets(buf, sizeof buf, f) != NULL);
    CHECK(strcmp(buf, "HELLO, world!\n") == 0);
    fclose(f);
    /* directory + readdir */
    CHECK(mkdir(sub, 0755) == 0);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int seen_file = 0, seen_dir = 0, seen_other = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, "renamed.txt") == 0)
            seen_file++;
        else if (strcmp(e->d_name, "subdir") == 0)
            seen_dir++;
        else if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
                 strcmp(e->d_name, "given.txt"))
            seen_other++;
    }
    closedir(d);
    CHECK(seen_file == 1 && seen_dir == 1 && seen_other == 0);
    /* a file the host put there */
    char given[256];
    snprintf(given, sizeof given, "%s/given.txt", dir);
    f = fopen(given, "r");
    CHECK(f != NULL);
    CHECK(fgets(buf, sizeof buf, f) != NULL && strcmp(buf, "from the host\n") == 0);
    fclose(f);
    /* unlink + rmdir */
    CHECK(rmdir(sub) == 0);
    CHECK(unlink(path2) == 0);
    CHECK(access(path2, F_OK) < 0 && errno == ENOENT);
    /* leave one file for the host to check */
    f = fopen(given, "w");
    CHECK(f != NULL && fputs("from the guest\n", f) >= 0 && fclose(f) == 0);
    puts("files ok");
    return 0;
}

/* Each path must fail to open (read or create); print its errno. */
static int escape(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        errno = 0;
        int fd = open(argv[i], O_RDONLY);
        int e1 = errno;
        if (fd >= 0) {
            printf("%s: OPENED\n", argv[i]);
            close(fd);
            continue;
        }
        errno = 0;
        fd = open(argv[i], O_CREAT | O_WRONLY, 0644);
        int e2 = errno;
        if (fd >= 0) {
            printf("%s: CREATED\n", argv[i]);
            close(fd);
            continue;
        }
        printf("%s: %s / %s\n", argv[i], strerror(e1), strerror(e2));
    }
    return 0;
}

/* 1 MiB on stdout: 16384 lines of 64 bytes. */
static int bigout(void) {
    char line[65];
    for (int i = 0; i < 16384; i++) {
        snprintf(line, sizeof line, "%08d", i);
        memset(line + 8, 'a' + i % 26, 55);
        line[63] = '\n';
        line[64] = 0;
        fputs(line, stdout);
    }
    return 0;
}

/* Grow linear memory well past 64 MiB and use all of it. */
static int grow(void) {
    size_t n = 100u << 20;
    unsigned char *p = malloc(n);
    CHECK(p != NULL);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 7);
    uint32_t sum = 0;
    for (size_t i = 0; i < n; i += 4096)
        sum += p[i] + p[n - 1 - i];
    printf("grew to %zu MiB, checksum %u\n", (size_t)__builtin_wasm_memory_size(0) * 65536 >> 20, sum);
    return 0;
}

/* Print a line, then loop forever (for --timeout and --fuel). */
static int spin(void) {
    puts("spinning");
    fflush(stdout);
    volatile unsigned n = 0;
    for (;;)
        n++;
}

/* Print a line, then sleep in the host (poll_oneoff) for argv[2] seconds. */
static int sleep_case(const char *seconds) {
    puts("sleeping");
    fflush(stdout);
    sleep((unsigned)atoi(seconds));
    puts("woke up");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: cases CASE [ARGS]\n");
        return 64;
    }
    const char *c = argv[1];
    if (!strcmp(c, "echo")) return echo(argc, argv);
    if (!strcmp(c, "stdio")) return stdio_case();
    if (!strcmp(c, "cat")) return cat();
    if (!strcmp(c, "exit")) exit(atoi(argv[2]));
    if (!strcmp(c, "return")) return atoi(argv[2]);
    if (!strcmp(c, "files")) return files(argv[2]);
    if (!strcmp(c, "escape")) return escape(argc, argv);
    if (!strcmp(c, "bigout")) return bigout();
    if (!strcmp(c, "grow")) return grow();
    if (!strcmp(c, "trap")) __builtin_trap();
    if (!strcmp(c, "spin")) return spin();
    if (!strcmp(c, "sleep")) return sleep_case(argv[2]);
    fprintf(stderr, "unknown case %s\n", c);
    return 64;
}
