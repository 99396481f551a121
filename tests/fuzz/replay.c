/*
 * replay.c — a main() for the fuzz targets without libFuzzer, so the
 * default test suite (gcc, ASan+UBSan, valgrind) replays the kept corpus
 * and every crash ever found (tests/data/fuzz/<target>/) through exactly
 * the code the fuzzer runs. Arguments: files or directories (not
 * recursive). Each input is read into an exact-size buffer (no NUL after
 * it, so ASan sees over-reads). A broken invariant aborts (test failure).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned ran;

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: out of memory on %s\n", path);
        return 1;
    }
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return 1;
    }
    memcpy(exact, buf, len);
    free(buf);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    /* The library never writes to stderr (nor do its dependencies on its
     * behalf): catch it on every input. */
    fflush(stderr);
    int saved = dup(2);
    FILE *err = tmpfile();
    if (saved < 0 || !err || dup2(fileno(err), 2) < 0) {
        fprintf(stderr, "replay: cannot capture stderr\n");
        free(exact);
        return 1;
    }
    LLVMFuzzerTestOneInput(exact, len);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    free(exact);
    ran++;
    fseek(err, 0, SEEK_END);
    long n = ftell(err);
#ifdef FUZZ_ALLOW_STDERR
    n = 0;   /* a program that logs to stderr by design (candor-lmtpd) */
#endif
    int bad = 0;
    if (n > 0) {
        char out[2048];
        rewind(err);
        size_t got = fread(out, 1, sizeof out - 1, err);
        out[got] = '\0';
        fprintf(stderr, "replay: %s: %ld bytes written to stderr during the call:\n%s\n",
                path, n, out);
        bad = 1;
    }
    fclose(err);
    return bad;
}

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;   /* an absent corpus directory is no failure */
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    DIR *d = opendir(path);
    if (!d)
        return 1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        size_t l = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(l);
        if (!names[n])
            break;
        snprintf(names[n], l, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        bad |= run_file(names[i]);
        free(names[i]);
    }
    free(names);
    return bad;
}

int main(int argc, char **argv)
{
    int bad = 0;
    for (int i = 1; i < argc; i++)
        bad |= run_path(argv[i]);
    /* One test (the replay), however many inputs it ran. */
    printf("replayed %u inputs\n%d passed, %d failed\n", ran, bad ? 0 : 1, bad ? 1 : 0);
    return bad;
}
