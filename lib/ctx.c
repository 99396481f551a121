/*
 * ctx.c — candor_init() and the context: options, the data directory, the
 * configuration's general part (mailbox identity, state, sendmail, limits,
 * daemon settings), then each module's section, in mail-flow order.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include "ctx.h"
#include "config.h"
#include "store-db.h"

#ifndef CANDOR_DATADIR
#define CANDOR_DATADIR "/usr/local/share/candor"
#endif

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void init_deps(void) { xmlInitParser(); }

candor_status_t candor_init(void)
{
    pthread_once(&init_once, init_deps);
    return CANDOR_OK;
}

int candor_version_number(void) { return CANDOR_VERSION_NUMBER; }
const char *candor_version_string(void) { return CANDOR_VERSION_STRING; }

/* The size of each version of candor_ctx_options_t (0: unknown). */
static size_t options_size(unsigned int version)
{
    switch (version) {
    case 1: return offsetof(candor_ctx_options_t, max_config_bytes);
    case 2: return offsetof(candor_ctx_options_t, flags);
    case 3: return sizeof(candor_ctx_options_t);
    default: return 0;
    }
}

candor_status_t candor_ctx_options_init(candor_ctx_options_t *opts, unsigned int version)
{
    size_t size = options_size(version);
    if (!opts || !size)
        return candor__fail(CANDOR_EINVAL, "ctx options: unknown version %u", version);
    /* only the fields a caller of VERSION has */
    candor_ctx_options_t init = CANDOR_CTX_OPTIONS_INIT;
    init.version = version;
    memcpy(opts, &init, size);
    return CANDOR_OK;
}

candor_status_t candor_envelope_init(candor_envelope_t *env, unsigned int version)
{
    if (!env || version != CANDOR_ENVELOPE_VERSION)
        return candor__fail(CANDOR_EINVAL, "envelope: unknown version %u", version);
    candor_envelope_t init = CANDOR_ENVELOPE_INIT;
    *env = init;
    return CANDOR_OK;
}

static bool file_exists(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, R_OK) == 0;
}

/* The directory with the shipped data: $CANDOR_DATADIR, the installed
 * data directory, else (running from a build tree) the source tree's. */
static char *find_data_dir(void)
{
    const char *env = getenv("CANDOR_DATADIR");
    if (env && *env)
        return candor__strdup(env);
    if (file_exists(CANDOR_DATADIR, "candor.rng"))
        return candor__strdup(CANDOR_DATADIR);
#ifdef CANDOR_SRC_DATADIR
    if (file_exists(CANDOR_SRC_DATADIR, "candor.rng"))
        return candor__strdup(CANDOR_SRC_DATADIR);
#endif
    return candor__strdup(CANDOR_DATADIR);
}

static char *join(const char *dir, const char *name)
{
    struct candor_buf b = CANDOR_BUF_INIT;
    candor__buf_printf(&b, "%s/%s", dir, name);
    return candor__buf_steal(&b);
}

static size_t pick(size_t opt, size_t dflt) { return opt ? opt : dflt; }

/* The <limits> attributes and their fields (candor_ctx_limit() also
 * answers "max-config-bytes", which is not an attribute). */
static const struct { const char *name; size_t off; } limit_map[] = {
    { "max-message-bytes", offsetof(struct candor_limits, max_message_bytes) },
    { "max-header-bytes", offsetof(struct candor_limits, max_header_bytes) },
    { "max-headers", offsetof(struct candor_limits, max_headers) },
    { "max-mime-depth", offsetof(struct candor_limits, max_mime_depth) },
    { "max-mime-parts", offsetof(struct candor_limits, max_mime_parts) },
    { "max-line-bytes", offsetof(struct candor_limits, max_line_bytes) },
    { "max-decoded-bytes", offsetof(struct candor_limits, max_decoded_bytes) },
    { "max-text-bytes", offsetof(struct candor_limits, max_text_bytes) },
    { "max-html-depth", offsetof(struct candor_limits, max_html_depth) },
};

/* <limits name="value" .../>: attributes override the defaults; options
 * override both. */
static candor_status_t load_limits(struct candor_ctx *ctx, xmlNodePtr node,
                                   const candor_ctx_options_t *o)
{
    struct candor_limits *l = &ctx->limits;
    l->max_message_bytes = CANDOR_DEFAULT_MAX_MESSAGE_BYTES;
    l->max_header_bytes = CANDOR_DEFAULT_MAX_HEADER_BYTES;
    l->max_headers = CANDOR_DEFAULT_MAX_HEADERS;
    l->max_mime_depth = CANDOR_DEFAULT_MAX_MIME_DEPTH;
    l->max_mime_parts = CANDOR_DEFAULT_MAX_MIME_PARTS;
    l->max_line_bytes = CANDOR_DEFAULT_MAX_LINE_BYTES;
    l->max_decoded_bytes = CANDOR_DEFAULT_MAX_DECODED_BYTES;
    l->max_text_bytes = CANDOR_DEFAULT_MAX_TEXT_BYTES;
    l->max_html_depth = CANDOR_DEFAULT_MAX_HTML_DEPTH;
    for (size_t i = 0; node && i < sizeof limit_map / sizeof limit_map[0]; i++) {
        double d;
        if (!candor__config_attr_double(node, limit_map[i].name, -1, &d, ctx->config_path))
            return CANDOR_ECONFIG;
        /* (double)SIZE_MAX rounds up to 2^64: "<" keeps the cast defined */
        if (d >= 1 && d < (double)SIZE_MAX)
            *(size_t *)((char *)l + limit_map[i].off) = (size_t)d;
        else if (d >= 1)
            return candor__config_fail(ctx->config_path, node, "%s is too large",
                                       limit_map[i].name);
        else if (d != -1)
            return candor__config_fail(ctx->config_path, node, "%s must be at least 1",
                                       limit_map[i].name);
    }
    l->max_message_bytes = pick(o->max_message_bytes, l->max_message_bytes);
    l->max_header_bytes = pick(o->max_header_bytes, l->max_header_bytes);
    l->max_headers = pick(o->max_headers, l->max_headers);
    l->max_mime_depth = pick(o->max_mime_depth, l->max_mime_depth);
    l->max_mime_parts = pick(o->max_mime_parts, l->max_mime_parts);
    l->max_line_bytes = pick(o->max_line_bytes, l->max_line_bytes);
    l->max_decoded_bytes = pick(o->max_decoded_bytes, l->max_decoded_bytes);
    l->max_text_bytes = pick(o->max_text_bytes, l->max_text_bytes);
    l->max_html_depth = pick(o->max_html_depth, l->max_html_depth);
    return CANDOR_OK;
}

static candor_status_t load_general(struct candor_ctx *ctx, xmlNodePtr root,
                                    const candor_ctx_options_t *o)
{
    xmlNodePtr mb = candor__config_child(root, "mailbox");
    if (o->n_addresses) {
        for (size_t i = 0; i < o->n_addresses; i++) {
            if (!o->addresses[i] || !strchr(o->addresses[i], '@'))
                return candor__fail(CANDOR_EINVAL, "address \"%.80s\": not local@domain",
                                    o->addresses[i] ? o->addresses[i] : "(null)");
            if (!candor__strv_push_owned(&ctx->addresses, candor__addr_normalize(o->addresses[i])))
                return candor__fail(CANDOR_ENOMEM, "out of memory");
        }
        ctx->first_address = candor__strdup(o->addresses[0]);
    } else {
        for (xmlNodePtr a = candor__config_child(mb, "address"); a; a = candor__config_next(a)) {
            char *v = candor__config_text(a);
            if (!v || !strchr(v, '@')) {
                free(v);
                return candor__config_fail(ctx->config_path, a, "address: not local@domain");
            }
            if (!ctx->first_address)
                ctx->first_address = candor__strdup(v);
            bool ok = candor__strv_push_owned(&ctx->addresses, candor__addr_normalize(v));
            free(v);
            if (!ok)
                return candor__fail(CANDOR_ENOMEM, "out of memory");
        }
    }
    if (o->trusted_authserv)
        ctx->trusted_authserv = candor__strdup(o->trusted_authserv);
    else
        ctx->trusted_authserv = candor__config_text(candor__config_child(mb, "trusted-authserv"));
    ctx->team_name = candor__config_text(candor__config_child(mb, "team"));

    char *state = candor__config_attr(candor__config_child(root, "state"), "path");
    if (state) {
        /* a PostgreSQL connection string is no file name: kept as given */
        ctx->state_path = candor__db_is_pg(state) ? candor__strdup(state)
                                                  : candor__config_path(ctx, state);
        free(state);
    }
    ctx->sendmail = candor__config_attr(candor__config_child(root, "sendmail"), "command");

    xmlNodePtr d = candor__config_child(root, "daemon");
    for (xmlAttrPtr a = d ? d->properties : NULL; a; a = a->next) {
        xmlChar *v = xmlNodeGetContent((xmlNodePtr)a);
        bool ok = candor__strv_push(&ctx->setting_names, (const char *)a->name) &&
                  candor__strv_push(&ctx->setting_values, v ? (const char *)v : "");
        xmlFree(v);
        if (!ok)
            return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    return load_limits(ctx, candor__config_child(root, "limits"), o);
}

candor_status_t candor_ctx_new(struct candor_ctx **out, const candor_ctx_options_t *opts)
{
    if (!out)
        return candor__fail(CANDOR_EINVAL, "ctx_new: no output pointer");
    *out = NULL;
    /* an older caller's struct is shorter: read only what it has; the
     * fields it lacks keep their defaults */
    candor_ctx_options_t all = CANDOR_CTX_OPTIONS_INIT;
    if (opts) {
        size_t size = options_size(opts->version);
        if (!size)
            return candor__fail(CANDOR_EINVAL, "ctx options: unknown version %u", opts->version);
        memcpy(&all, opts, size);
    }
    const candor_ctx_options_t *o = &all;
    candor_init();

    struct candor_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    ctx->log_fn = o->log_fn;
    ctx->log_data = o->log_data;
    ctx->data_dir = find_data_dir();
    const char *cfg = o->config_path;
    if (!cfg || !*cfg)
        cfg = getenv("CANDOR_CONFIG");
    ctx->config_path = (cfg && *cfg) ? candor__strdup(cfg) : join(ctx->data_dir, "candor.xml");
    char *schema = join(ctx->data_dir, "candor.rng");
    if (!ctx->data_dir || !ctx->config_path || !schema) {
        free(schema);
        candor_ctx_free(ctx);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }

    void *docp = NULL;
    ctx->limits.max_config_bytes = pick(o->max_config_bytes, CANDOR_DEFAULT_MAX_CONFIG_BYTES);
    candor_status_t st = candor__config_read(ctx->config_path, schema,
                                             ctx->limits.max_config_bytes, &docp);
    free(schema);
    if (st != CANDOR_OK) {
        candor_ctx_free(ctx);
        return st;
    }
    xmlDocPtr doc = docp;
    xmlNodePtr root = xmlDocGetRootElement(doc);

    st = load_general(ctx, root, o);
    if (st == CANDOR_OK) {
        if (o->model_path) {
            ctx->model_path = candor__strdup(o->model_path);
        } else {
            char *m = candor__config_attr(candor__config_child(root, "model"), "path");
            ctx->model_path = m ? candor__config_path(ctx, m) : join(ctx->data_dir, "model.txt");
            free(m);
        }
    }
    ctx->parse_only = (o->flags & CANDOR_CTX_PARSE_ONLY) != 0;
    if (st == CANDOR_OK && !ctx->parse_only)
        st = candor__rules_load(ctx, candor__config_child(root, "rules"));
    if (st == CANDOR_OK && !ctx->parse_only)
        st = candor__model_load_ctx(ctx, candor__config_child(root, "model"));
    if (st == CANDOR_OK)
        st = candor__triage_load(ctx, candor__config_child(root, "triage"));
    if (st == CANDOR_OK)
        st = candor__autoreply_load(ctx, candor__config_child(root, "autoreply"));
    if (st == CANDOR_OK)
        st = candor__eta_load(ctx, candor__config_child(root, "eta"));
    if (st == CANDOR_OK)
        st = candor__ack_load(ctx, candor__config_child(root, "ack"));
    if (st == CANDOR_OK)
        st = candor__canned_load(ctx, candor__config_child(root, "canned"));
    candor__config_doc_free(doc);
    if (st != CANDOR_OK) {
        candor_ctx_free(ctx);
        return st;
    }
    candor__log(ctx, CANDOR_LOG_DEBUG, "loaded %s", ctx->config_path);
    *out = ctx;
    return CANDOR_OK;
}

void candor_ctx_free(struct candor_ctx *ctx)
{
    if (!ctx)
        return;
    candor__canned_conf_free(ctx->canned);
    candor__ack_conf_free(ctx->ack);
    candor__eta_conf_free(ctx->eta);
    candor__autoreply_conf_free(ctx->autoreply);
    candor__triage_conf_free(ctx->triage);
    candor__model_free(ctx->model);
    candor__rules_free(ctx->rules);
    candor__strv_free(&ctx->setting_names);
    candor__strv_free(&ctx->setting_values);
    candor__strv_free(&ctx->addresses);
    free(ctx->first_address);
    free(ctx->trusted_authserv);
    free(ctx->team_name);
    free(ctx->state_path);
    free(ctx->sendmail);
    free(ctx->model_path);
    free(ctx->config_path);
    free(ctx->data_dir);
    free(ctx);
}

const char *candor_ctx_state_path(const struct candor_ctx *ctx) { return ctx ? ctx->state_path : NULL; }
const char *candor_ctx_sendmail(const struct candor_ctx *ctx) { return ctx ? ctx->sendmail : NULL; }
const char *candor_ctx_config_path(const struct candor_ctx *ctx) { return ctx ? ctx->config_path : NULL; }

/* A setting's name: '-' and '_' are the same letter. */
static bool same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (!(*a == *b || ((*a == '-' || *a == '_') && (*b == '-' || *b == '_'))))
            return false;
    return !*a && !*b;
}

const char *candor_ctx_setting_str(const struct candor_ctx *ctx, const char *name)
{
    if (!ctx || !name)
        return NULL;
    for (size_t i = 0; i < ctx->setting_names.n; i++)
        if (same_name(ctx->setting_names.v[i], name))
            return ctx->setting_values.v[i];
    return NULL;
}

size_t candor_ctx_limit(const struct candor_ctx *ctx, const char *name)
{
    if (!ctx || !name)
        return 0;
    if (same_name("max-config-bytes", name))
        return ctx->limits.max_config_bytes;
    for (size_t i = 0; i < sizeof limit_map / sizeof limit_map[0]; i++)
        if (same_name(limit_map[i].name, name))
            return *(const size_t *)((const char *)&ctx->limits + limit_map[i].off);
    return 0;
}

long candor_ctx_setting_int(const struct candor_ctx *ctx, const char *name, long dflt)
{
    const char *v = candor_ctx_setting_str(ctx, name);
    if (!v || !*v)
        return dflt;
    char *end;
    long r = strtol(v, &end, 10);
    return *end ? dflt : r;
}
