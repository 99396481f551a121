/*
 * ack.c — acknowledgements leave through the sendmail command:
 *   CMD ARGS... -f <> -i -- RECIPIENT   (message on stdin, LF line ends)
 * The null envelope sender (RFC 3834 section 3.3) keeps bounces of an
 * acknowledgement from coming back to us. No shell: the command is split on
 * blanks. The child gets sendmail-timeout seconds, then SIGKILL.
 *
 * At start-up the acknowledgements the store lists as pending (recorded,
 * never marked sent: a crash or a sendmail failure) are handed over once,
 * oldest first, and marked sent after sendmail exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include "lmtpd.h"

extern char **environ;

bool lmtpd_sendmail(const struct lmtpd_conf *conf, const char *recipient, const char *message)
{
    if (!conf->sendmail_argv || !recipient || !*recipient || recipient[0] == '-')
        return false;
    size_t n = 0;
    while (conf->sendmail_argv[n])
        n++;
    char **argv = calloc(n + 6, sizeof *argv);
    if (!argv)
        return false;
    for (size_t i = 0; i < n; i++)
        argv[i] = conf->sendmail_argv[i];
    argv[n] = "-f";
    argv[n + 1] = "<>";
    argv[n + 2] = "-i";
    argv[n + 3] = "--";
    argv[n + 4] = (char *)recipient;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        free(argv);
        return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[0], 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[0]);
    free(argv);
    if (rc != 0) {
        close(pfd[1]);
        lmtpd_log("-: sendmail: cannot run %s: %s", conf->sendmail_argv[0], strerror(rc));
        return false;
    }
    bool ok = true;
    for (const char *p = message; *p && ok;) {
        /* CRLF -> LF: the local submission convention */
        const char *e = strstr(p, "\r\n");
        size_t k = e ? (size_t)(e - p) : strlen(p);
        const char *parts[2] = { p, "\n" };
        size_t lens[2] = { k, e ? 1 : 0 };
        for (int j = 0; j < 2 && ok; j++) {
            size_t off = 0;
            while (off < lens[j]) {
                ssize_t w = write(pfd[1], parts[j] + off, lens[j] - off);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    ok = false;
                    break;
                }
                off += (size_t)w;
            }
        }
        p = e ? e + 2 : p + k;
    }
    close(pfd[1]);
    int status = 0;
    long waited_ms = 0, limit_ms = conf->sendmail_timeout * 1000;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            ok = false;
            break;
        }
        if (waited_ms >= limit_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            lmtpd_log("-: sendmail: timed out after %ld s", conf->sendmail_timeout);
            return false;
        }
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        waited_ms += 5;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        lmtpd_log("-: sendmail: exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return false;
    }
    return ok;
}

void lmtpd_retry_pending(struct lmtpd_conf *conf)
{
    if (lmtpd.opts.no_ack)
        return;
    struct candor_store *store = NULL;
    if (candor_store_open(&store, conf->ctx, conf->state, 0) != CANDOR_OK) {
        lmtpd_log("-: pending acknowledgements: cannot open the state: %s", candor_errmsg());
        return;
    }
    char *json = NULL;
    if (candor_store_pending_acks(store, &json) != CANDOR_OK || !json) {
        lmtpd_log("-: pending acknowledgements: %s", candor_errmsg());
        candor_store_free(store);
        return;
    }
    struct json_object *arr = json_tokener_parse(json);
    candor_free(json);
    size_t n = arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
    size_t sent = 0;
    for (size_t i = 0; i < n && !atomic_load(&lmtpd.draining); i++) {
        struct json_object *o = json_object_array_get_idx(arr, i), *t, *r, *m;
        if (!json_object_object_get_ex(o, "ticket", &t) ||
            !json_object_object_get_ex(o, "recipient", &r) ||
            !json_object_object_get_ex(o, "message", &m) ||
            !json_object_is_type(m, json_type_string))
            continue;
        const char *ticket = json_object_get_string(t), *to = json_object_get_string(r);
        if (lmtpd_sendmail(conf, to, json_object_get_string(m))) {
            lmtpd_store_write_begin();
            if (candor_store_ack_sent(store, ticket, 0) == CANDOR_OK)
                sent++;
            lmtpd_store_write_end();
            lmtpd_log("-: pending ack ticket=%s sent to=<%s>", ticket, to);
        } else {
            lmtpd_log("-: pending ack ticket=%s still pending", ticket);
        }
    }
    if (n)
        lmtpd_log("-: pending acknowledgements: %zu of %zu handed over", sent, n);
    json_object_put(arr);
    candor_store_free(store);
}
