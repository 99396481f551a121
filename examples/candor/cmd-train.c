/*
 * cmd-train.c — `candor train`: fit the intent model from labelled mail
 * and write the model file (format: lib/model.c; version 1).
 *
 * Inputs, any mix of:
 *   --labels FILE   a TSV with a header line and the columns `file` and
 *                   `intent` (the corpus labels.tsv format; other columns are
 *                   ignored); files are relative to --base, default the
 *                   directory of FILE
 *   --maildir DIR   a directory whose subfolders are named after the intents:
 *                   DIR/<intent>/ or maildir++ DIR/.<intent>/ (with cur/ and new/,
 *                   or plain files)
 *   --texts FILE    plain labelled texts, one per line: intent TAB text
 * The held-out report (5-fold cross-validation, calibration, reliability) is
 * printed on standard output as one JSON object.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "commands.h"

static const char help[] =
"Usage: candor train [OPTION]... --output MODEL\n"
"\n"
"Train the intent model and write it to MODEL (written atomically). Give the\n"
"labelled mail with any of:\n"
"      --labels FILE   TSV with a header line and columns file, intent and,\n"
"                      optionally, urgency and sentiment (the corpus labels.tsv\n"
"                      format; with those the model learns them too); repeatable\n"
"      --base DIR      directory the `file` column is relative to (default:\n"
"                      the directory of the labels file)\n"
"      --maildir DIR   subfolders named after the intents (DIR/refund/ or\n"
"                      DIR/.refund/, maildir or plain files); repeatable\n"
"      --texts FILE    plain texts, one per line: intent TAB text; repeatable\n"
"Other options:\n"
"  -o, --output MODEL  the model file to write (required)\n"
"      --config FILE   configuration (its rules are part of the calibration)\n"
"      --quiet         do not print the report\n"
"      --help          show this help and exit\n"
"\n"
"Prints a JSON report: held-out (5-fold) accuracy and macro-F1, the fitted\n"
"temperature and rule scale, and a reliability table.\n"
"Exit status: 0 trained, 1 some message could not be read (the rest was used),\n"
"2 bad usage, configuration or no data.\n";

static const char *const intents[] = {
    "complaint", "refund", "cancellation", "billing", "order_status",
    "technical_support", "account_change", "sales_inquiry", "praise", "general_question",
};

static bool is_intent(const char *s)
{
    for (size_t i = 0; i < sizeof intents / sizeof intents[0]; i++)
        if (strcmp(s, intents[i]) == 0)
            return true;
    return false;
}

static int add_file(struct candor_trainer *tr, struct candor_ctx *ctx, const char *path,
                    const char *label, const char *urgency, const char *sentiment, size_t *count)
{
    struct candor_message *msg = NULL;
    if (candor_message_parse_file(&msg, ctx, path) != CANDOR_OK) {
        cli_error("%s: %s", path, candor_errmsg());
        return EXIT_PROBLEM;
    }
    candor_status_t st = (urgency || sentiment)
        ? candor_trainer_add_labels(tr, msg, label, urgency, sentiment)
        : candor_trainer_add(tr, msg, label);
    candor_message_free(msg);
    if (st != CANDOR_OK) {
        cli_error("%s: %s", path, candor_errmsg());
        return EXIT_PROBLEM;
    }
    (*count)++;
    return EXIT_OK;
}

/* Split LINE at tabs in place; returns the number of fields (at most MAX). */
static size_t split_tabs(char *line, char **f, size_t max)
{
    size_t n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') {
            *p = '\0';
            f[n++] = p + 1;
        }
    return n;
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static int add_labels(struct candor_trainer *tr, struct candor_ctx *ctx, const char *path,
                      const char *base, size_t *count)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    char dir[4096];
    if (base) {
        snprintf(dir, sizeof dir, "%s", base);
    } else {
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    }
    char *line = NULL;
    size_t cap = 0;
    long fcol = -1, icol = -1, ucol = -1, scol = -1;
    int status = EXIT_OK;
    size_t lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        chomp(line);
        char *fld[64];
        size_t n = split_tabs(line, fld, 64);
        if (fcol < 0) {
            for (size_t i = 0; i < n; i++) {
                if (strcmp(fld[i], "file") == 0)
                    fcol = (long)i;
                if (strcmp(fld[i], "intent") == 0)
                    icol = (long)i;
                if (strcmp(fld[i], "urgency") == 0)
                    ucol = (long)i;
                if (strcmp(fld[i], "sentiment") == 0)
                    scol = (long)i;
            }
            if (fcol < 0 || icol < 0) {
                cli_error("%s:1: header needs the columns file and intent", path);
                status = EXIT_USAGE;
                break;
            }
            continue;
        }
        if (!*line)
            continue;
        if ((size_t)fcol >= n || (size_t)icol >= n || !is_intent(fld[icol])) {
            cli_error("%s:%zu: missing file or unknown intent", path, lineno);
            status = EXIT_PROBLEM;
            continue;
        }
        char p[8192];
        if (fld[fcol][0] == '/')
            snprintf(p, sizeof p, "%s", fld[fcol]);
        else
            snprintf(p, sizeof p, "%s/%s", dir, fld[fcol]);
        const char *urg = ucol >= 0 && (size_t)ucol < n && *fld[ucol] ? fld[ucol] : NULL;
        const char *sen = scol >= 0 && (size_t)scol < n && *fld[scol] ? fld[scol] : NULL;
        if (add_file(tr, ctx, p, fld[icol], urg, sen, count) != EXIT_OK)
            status = EXIT_PROBLEM;
    }
    free(line);
    fclose(f);
    return status;
}

static int add_texts(struct candor_trainer *tr, const char *path, size_t *count)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int status = EXIT_OK;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        chomp(line);
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        if (lineno == 1 && !is_intent(line))
            continue;   /* a header line */
        if (!is_intent(line)) {
            cli_error("%s:%zu: unknown intent", path, lineno);
            status = EXIT_PROBLEM;
            continue;
        }
        if (candor_trainer_add_text(tr, NULL, tab + 1, line) != CANDOR_OK) {
            cli_error("%s:%zu: %s", path, lineno, candor_errmsg());
            status = EXIT_PROBLEM;
            continue;
        }
        (*count)++;
    }
    free(line);
    fclose(f);
    return status;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file under DIR (one level, and its cur/ and new/), sorted. */
static int add_dir_files(struct candor_trainer *tr, struct candor_ctx *ctx, const char *dir,
                         const char *label, size_t *count, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return EXIT_OK;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 1000000) {
        if (e->d_name[0] == '.')
            continue;
        char **nv = realloc(names, (n + 1) * sizeof *nv);
        if (!nv)
            break;
        names = nv;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int status = EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (depth == 0 && (strcmp(names[i], "cur") == 0 || strcmp(names[i], "new") == 0))
                add_dir_files(tr, ctx, p, label, count, 1);
        } else if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (add_file(tr, ctx, p, label, NULL, NULL, count) != EXIT_OK)
                status = EXIT_PROBLEM;
        }
        free(names[i]);
    }
    free(names);
    return status;
}

static int add_maildir(struct candor_trainer *tr, struct candor_ctx *ctx, const char *dir,
                       size_t *count)
{
    int status = EXIT_OK;
    size_t before = *count;
    for (size_t i = 0; i < sizeof intents / sizeof intents[0]; i++) {
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, intents[i]);
        if (add_dir_files(tr, ctx, p, intents[i], count, 0) != EXIT_OK)
            status = EXIT_PROBLEM;
        snprintf(p, sizeof p, "%s/.%s", dir, intents[i]);
        if (add_dir_files(tr, ctx, p, intents[i], count, 0) != EXIT_OK)
            status = EXIT_PROBLEM;
    }
    if (*count == before)
        cli_error("%s: no subfolder named after an intent", dir);
    return status;
}

enum { OPT_LABELS = OPT_FIRST_FREE, OPT_BASE, OPT_MAILDIR, OPT_TEXTS, OPT_QUIET };

int cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        { "labels", required_argument, NULL, OPT_LABELS },
        { "base", required_argument, NULL, OPT_BASE },
        { "maildir", required_argument, NULL, OPT_MAILDIR },
        { "texts", required_argument, NULL, OPT_TEXTS },
        { "output", required_argument, NULL, 'o' },
        { "quiet", no_argument, NULL, OPT_QUIET },
        { NULL, 0, NULL, 0 }
    };
    struct cli_common co = {0};
    const char *labels[64], *maildirs[64], *texts[64];
    size_t nl = 0, nm = 0, nt = 0;
    const char *base = NULL, *output = NULL;
    bool quiet = false;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_LABELS:
            if (nl == 64)
                return cli_usage_error("too many --labels");
            labels[nl++] = optarg;
            continue;
        case OPT_MAILDIR:
            if (nm == 64)
                return cli_usage_error("too many --maildir");
            maildirs[nm++] = optarg;
            continue;
        case OPT_TEXTS:
            if (nt == 64)
                return cli_usage_error("too many --texts");
            texts[nt++] = optarg;
            continue;
        case OPT_BASE: base = optarg; continue;
        case 'o': output = optarg; continue;
        case OPT_QUIET: quiet = true; continue;
        }
        int r = cli_common_option(&co, c, optarg, help);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0)
            return cli_usage_error("unknown option");
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument %s", argv[optind]);
    if (!output)
        return cli_usage_error("no --output MODEL given");
    if (nl + nm + nt == 0)
        return cli_usage_error("no training data (--labels, --maildir or --texts)");

    /* The model being replaced is not needed to train a new one. */
    co.model = "/dev/null/no-model";
    candor_status_t st;
    struct candor_ctx *ctx = cli_ctx(&co, &st);
    if (!ctx)
        return cli_exit_for(st);
    struct candor_trainer *tr = NULL;
    if (candor_trainer_new(&tr, ctx) != CANDOR_OK) {
        cli_error("%s", candor_errmsg());
        candor_ctx_free(ctx);
        return EXIT_PROBLEM;
    }
    int status = EXIT_OK;
    size_t count = 0;
    for (size_t i = 0; i < nl && status != EXIT_USAGE; i++) {
        int r = add_labels(tr, ctx, labels[i], base, &count);
        if (r != EXIT_OK)
            status = r;
    }
    for (size_t i = 0; i < nm && status != EXIT_USAGE; i++)
        if (add_maildir(tr, ctx, maildirs[i], &count) != EXIT_OK)
            status = EXIT_PROBLEM;
    for (size_t i = 0; i < nt && status != EXIT_USAGE; i++) {
        int r = add_texts(tr, texts[i], &count);
        if (r != EXIT_OK)
            status = r;
    }
    if (status != EXIT_USAGE && count == 0) {
        cli_error("no training data could be read");
        status = EXIT_USAGE;
    }
    if (status != EXIT_USAGE) {
        if (candor_trainer_save(tr, output) != CANDOR_OK) {
            cli_error("%s: %s", output, candor_errmsg());
            status = EXIT_USAGE;
        } else if (!quiet) {
            char *rep = NULL;
            if (candor_trainer_report(tr, &rep) == CANDOR_OK) {
                cli_put_line(rep);
                candor_free(rep);
            }
        }
    }
    candor_trainer_free(tr);
    candor_ctx_free(ctx);
    return status;
}
