/*
 * ctx.h — struct candor_ctx: everything loaded once and then shared
 * read-only between threads. Owned by ctx.c; each module owns its part
 * and loads it from its section of the XML configuration.
 */
#ifndef CANDOR_CTX_H
#define CANDOR_CTX_H

#include "internal.h"

struct _xmlNode;
struct candor_rules;
struct candor_model;
struct candor_triage_conf;
struct candor_autoreply_conf;
struct candor_ack_conf;
struct candor_eta_conf;
struct candor_canned_conf;

struct candor_limits {
    size_t max_message_bytes;
    size_t max_header_bytes;
    size_t max_headers;
    size_t max_mime_depth;
    size_t max_mime_parts;
    size_t max_line_bytes;
    size_t max_decoded_bytes;
    size_t max_text_bytes;
    size_t max_html_depth;
    size_t max_config_bytes;    /* not a <limits> attribute: read before the config */
};

struct candor_ctx {
    struct candor_limits limits;

    char *config_path;          /* the file that was loaded */
    char *data_dir;             /* where shipped data (model, schema) was found */
    char *model_path;
    char *state_path;           /* NULL: none configured */
    char *sendmail;             /* NULL: none configured */

    struct candor_strv addresses;   /* our addresses, normalised (candor__addr_normalize) */
    char *first_address;            /* as configured, for From and X-Loop */
    char *trusted_authserv;         /* NULL: trust none */
    char *team_name;                /* who answers, e.g. "Northwind Support" */

    /* <daemon> settings as name/value pairs (strings) */
    struct candor_strv setting_names;
    struct candor_strv setting_values;

    bool parse_only;            /* CANDOR_CTX_PARSE_ONLY: no rules, no model */
    struct candor_rules *rules;              /* rules.c (NULL when parse_only) */
    struct candor_model *model;              /* model.c */
    struct candor_triage_conf *triage;       /* triage.c */
    struct candor_autoreply_conf *autoreply; /* autoreply.c */
    struct candor_ack_conf *ack;             /* ack.c */
    struct candor_eta_conf *eta;             /* eta.c */
    struct candor_canned_conf *canned;       /* canned.c */

    candor_log_fn_t log_fn;
    void *log_data;
};

/* ---- configuration helpers for module loaders (config.c) ---- */
/* First element child of NODE named NAME, or NULL. NODE may be NULL. */
CANDOR_HIDDEN struct _xmlNode *candor__config_child(struct _xmlNode *node, const char *name);
/* Next element sibling after CUR with the same name as CUR, or NULL. */
CANDOR_HIDDEN struct _xmlNode *candor__config_next(struct _xmlNode *cur);
/* Text content (trimmed, new string, free()) or NULL when absent/OOM. */
CANDOR_HIDDEN char *candor__config_text(struct _xmlNode *node);
/* Attribute value (new string, free()) or NULL. */
CANDOR_HIDDEN char *candor__config_attr(struct _xmlNode *node, const char *name);
/* Attribute as a number; DFLT when absent; false (and ECONFIG set) if not a number. */
CANDOR_HIDDEN bool candor__config_attr_double(struct _xmlNode *node, const char *name,
                                              double dflt, double *out, const char *file);
/* Fail with CANDOR_ECONFIG, "FILE:LINE: what" for NODE. */
CANDOR_HIDDEN candor_status_t candor__config_fail(const char *file, struct _xmlNode *node,
                                                  const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Resolve a path from the config relative to the config file's directory
 * (absolute paths returned as they are). New string. */
CANDOR_HIDDEN char *candor__config_path(const struct candor_ctx *ctx, const char *path);

/* ---- module loaders, called by ctx.c in this order with their section
 * (which may be NULL when the config has none: use defaults) ---- */
CANDOR_HIDDEN candor_status_t candor__rules_load(struct candor_ctx *ctx, struct _xmlNode *section);
CANDOR_HIDDEN void candor__rules_free(struct candor_rules *rules);
CANDOR_HIDDEN candor_status_t candor__model_load_ctx(struct candor_ctx *ctx, struct _xmlNode *section);
CANDOR_HIDDEN void candor__model_free(struct candor_model *model);
CANDOR_HIDDEN candor_status_t candor__triage_load(struct candor_ctx *ctx, struct _xmlNode *section);
CANDOR_HIDDEN void candor__triage_conf_free(struct candor_triage_conf *conf);
CANDOR_HIDDEN candor_status_t candor__autoreply_load(struct candor_ctx *ctx, struct _xmlNode *section);
CANDOR_HIDDEN void candor__autoreply_conf_free(struct candor_autoreply_conf *conf);
CANDOR_HIDDEN candor_status_t candor__ack_load(struct candor_ctx *ctx, struct _xmlNode *section);
CANDOR_HIDDEN void candor__ack_conf_free(struct candor_ack_conf *conf);
CANDOR_HIDDEN candor_status_t candor__eta_load(struct candor_ctx *ctx, struct _xmlNode *section);
CANDOR_HIDDEN void candor__eta_conf_free(struct candor_eta_conf *conf);
CANDOR_HIDDEN candor_status_t candor__canned_load(struct candor_ctx *ctx, struct _xmlNode *section);
CANDOR_HIDDEN void candor__canned_conf_free(struct candor_canned_conf *conf);

#endif
