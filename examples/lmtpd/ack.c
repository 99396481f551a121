/*
 * ack.c — acknowledgements leave through the sendmail command:
 *   CMD ARGS... -f <> -i -- RECIPIENT   (message on stdin, LF line ends)
 * The null envelope sender (RFC 3834 section 3.3) keeps bounces of an
 * acknowledgement from coming back to us. No shell: the command is split on
 * blanks. The child gets sendmail-timeout seconds, then SIGKILL; it reads
 * the complete message from an anonymous file and outlives a crash of the
 * daemon. The MTA offers no way to ask whether it already has a message,
 * so an acknowledgement whose hand-over a crash interrupted is taken as
 * sent (marker below): at most once, never twice.
 *
 * At start-up the acknowledgements the store lists as pending (recorded,
 * never marked sent: a crash or a sendmail failure) are handed over once,
 * oldest first, and marked sent after sendmail exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include "lmtpd.h"

bool lmtpd_sendmail(const struct lmtpd_conf *conf, const char *recipient, const char *message)
{
    if (!conf->sendmail_argv || !recipient || !*recipient || recipient[0] == '-')
        return false;
    /* The whole message goes into an anonymous file first and becomes
     * sendmail's stdin: sendmail never sees a half-written message, even if
     * this process dies while handing it over (a pipe would give it an
     * early EOF, and sendmail -i would queue the truncated text). */
    int mfd = memfd_create("candor-ack", MFD_CLOEXEC);
    if (mfd < 0) {
        lmtpd_log("-: sendmail: memfd: %s", strerror(errno));
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
                ssize_t w = write(mfd, parts[j] + off, lens[j] - off);
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
    if (!ok || lseek(mfd, 0, SEEK_SET) != 0) {
        close(mfd);
        return false;
    }
    size_t n = 0;
    while (conf->sendmail_argv[n])
        n++;
    char **argv = calloc(n + 6, sizeof *argv);
    if (!argv) {
        close(mfd);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        argv[i] = conf->sendmail_argv[i];
    argv[n] = "-f";
    argv[n + 1] = "<>";
    argv[n + 2] = "-i";
    argv[n + 3] = "--";
    argv[n + 4] = (char *)recipient;
    pid_t pid = fork();
    if (pid == 0) {
        /* Only async-signal-safe calls until exec. sendmail outlives this
         * process if it is killed meanwhile: it has the whole message, so it
         * finishes queueing it (see the hand-over marker below). */
        if (dup2(mfd, 0) < 0)
            _exit(127);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(mfd);
    free(argv);
    if (pid < 0) {
        lmtpd_log("-: sendmail: fork: %s", strerror(errno));
        return false;
    }
    int status = 0;
    long waited_ms = 0, limit_ms = conf->sendmail_timeout * 1000;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return false;
        if (waited_ms >= limit_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            lmtpd_log("-: sendmail: timed out after %ld s", conf->sendmail_timeout);
            return false;
        }
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        waited_ms += 2;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        lmtpd_log("-: sendmail %s: exited with status %d", conf->sendmail_argv[0],
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return false;
    }
    return true;
}

/* The hand-over marker: written (and committed) before sendmail runs,
 * cleared when sendmail fails. A pending acknowledgement whose marker is
 * still set was being handed over when the daemon died; sendmail had the
 * complete message (from an anonymous file, not a pipe) and is not killed
 * with the daemon, so it finishes queueing it: the acknowledgement is marked
 * sent, not sent again. Never twice; lost only if that sendmail failed. */
static void marker_key(char *buf, size_t size, const char *ticket)
{
    snprintf(buf, size, "ack-handover:%s", ticket);
}

bool lmtpd_handover_begin(struct candor_store *store, const char *ticket)
{
    char key[256];
    marker_key(key, sizeof key, ticket);
    lmtpd_store_write_begin();
    candor_status_t st = candor_store_delivery_record(store, key, NULL, "started", 1, 0, 0);
    lmtpd_store_write_end();
    if (st != CANDOR_OK)
        lmtpd_log("-: ack ticket=%s: cannot mark the hand-over: %s", ticket, candor_errmsg());
    return st == CANDOR_OK;
}

void lmtpd_handover_failed(struct candor_store *store, const char *ticket)
{
    char key[256];
    marker_key(key, sizeof key, ticket);
    lmtpd_store_write_begin();
    candor_store_delivery_record(store, key, NULL, "failed", 0, 0, 0);
    lmtpd_store_write_end();
}

static bool handover_interrupted(struct candor_store *store, const char *ticket)
{
    char key[256], *path = NULL;
    int started = 0;
    marker_key(key, sizeof key, ticket);
    bool r = candor_store_delivery_find(store, key, 0, 0, &started, &path) == CANDOR_OK && started;
    candor_free(path);
    return r;
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
        if (handover_interrupted(store, ticket)) {
            lmtpd_store_write_begin();
            candor_store_ack_sent(store, ticket, 0);
            lmtpd_store_write_end();
            lmtpd_log("-: pending ack ticket=%s to=<%s> not sent again: its hand-over to sendmail "
                      "was under way when the daemon stopped (sendmail had the whole message)", ticket, to);
            continue;
        }
        if (!lmtpd_handover_begin(store, ticket)) {
            lmtpd_log("-: pending ack ticket=%s still pending", ticket);
            continue;
        }
        if (lmtpd_sendmail(conf, to, json_object_get_string(m))) {
            lmtpd_store_write_begin();
            if (candor_store_ack_sent(store, ticket, 0) == CANDOR_OK)
                sent++;
            lmtpd_store_write_end();
            lmtpd_log("-: pending ack ticket=%s sent to=<%s>", ticket, to);
        } else {
            lmtpd_handover_failed(store, ticket);
            lmtpd_log("-: pending ack ticket=%s still pending", ticket);
        }
    }
    if (n)
        lmtpd_log("-: pending acknowledgements: %zu of %zu handed over", sent, n);
    json_object_put(arr);
    candor_store_free(store);
}
