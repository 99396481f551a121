/*
 * config.c — the XML configuration: read (bounded size), parse with
 * libxml2 (no network, no entities from outside), validate against the
 * RELAX NG schema shipped beside the default configuration, and helpers
 * with which each module reads its own section. Errors are
 * "file:line: what is wrong".
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>
#include <libxml/xmlversion.h>
#include "ctx.h"
#include "config.h"

xmlNodePtr candor__config_child(xmlNodePtr node, const char *name)
{
    if (!node)
        return NULL;
    for (xmlNodePtr c = node->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

xmlNodePtr candor__config_next(xmlNodePtr cur)
{
    if (!cur)
        return NULL;
    for (xmlNodePtr c = cur->next; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, (const char *)cur->name) == 0)
            return c;
    return NULL;
}

char *candor__config_text(xmlNodePtr node)
{
    if (!node)
        return NULL;
    xmlChar *t = xmlNodeGetContent(node);
    if (!t)
        return NULL;
    const char *s = (const char *)t;
    while (candor__is_space((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && candor__is_space((unsigned char)s[n - 1]))
        n--;
    char *r = candor__strndup(s, n);
    xmlFree(t);
    return r;
}

char *candor__config_attr(xmlNodePtr node, const char *name)
{
    if (!node)
        return NULL;
    xmlChar *v = xmlGetProp(node, (const xmlChar *)name);
    if (!v)
        return NULL;
    char *r = candor__strdup((const char *)v);
    xmlFree(v);
    return r;
}

bool candor__config_attr_double(xmlNodePtr node, const char *name, double dflt, double *out,
                                const char *file)
{
    char *v = candor__config_attr(node, name);
    if (!v) {
        *out = dflt;
        return true;
    }
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    bool ok = end != v && *end == '\0' && errno == 0;
    if (!ok)
        candor__config_fail(file, node, "attribute %s=\"%.40s\" is not a number", name, v);
    free(v);
    *out = d;
    return ok;
}

candor_status_t candor__config_fail(const char *file, xmlNodePtr node, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return candor__fail(CANDOR_ECONFIG, "%s:%ld: %s", file ? file : "(config)",
                        node ? (long)xmlGetLineNo(node) : 0L, what);
}

char *candor__config_path(const struct candor_ctx *ctx, const char *path)
{
    if (!path)
        return NULL;
    if (path[0] == '/' || !ctx->config_path)
        return candor__strdup(path);
    const char *slash = strrchr(ctx->config_path, '/');
    if (!slash)
        return candor__strdup(path);
    struct candor_buf b = CANDOR_BUF_INIT;
    candor__buf_append(&b, ctx->config_path, (size_t)(slash - ctx->config_path) + 1);
    candor__buf_puts(&b, path);
    return candor__buf_steal(&b);
}

/* Collects the first structured error of a validation. */
struct first_error {
    char msg[400];
    long line;
    bool set;
};

#if LIBXML_VERSION >= 21200
static void collect_error(void *data, const xmlError *err)
#else
static void collect_error(void *data, xmlErrorPtr err)
#endif
{
    struct first_error *fe = data;
    if (fe->set || !err)
        return;
    fe->set = true;
    fe->line = err->line;
    if (!fe->line && err->node)
        fe->line = xmlGetLineNo((xmlNodePtr)err->node);
    snprintf(fe->msg, sizeof fe->msg, "%s", err->message ? err->message : "invalid");
    size_t n = strlen(fe->msg);
    while (n && (fe->msg[n - 1] == '\n' || fe->msg[n - 1] == ' '))
        fe->msg[--n] = '\0';
}

/* The schema is shipped data: it has the default cap, whatever the option. */
static candor_status_t validate(const char *file, xmlDocPtr doc, const char *schema_path)
{
    char *data;
    size_t len;
    candor_status_t st = candor__read_file(schema_path, CANDOR_DEFAULT_MAX_CONFIG_BYTES, &data,
                                           &len);
    if (st != CANDOR_OK)
        return candor__fail(CANDOR_ECONFIG, "%s: schema: %s", file, candor_errmsg());
    xmlRelaxNGParserCtxtPtr pc = xmlRelaxNGNewMemParserCtxt(data, (int)len);
    struct first_error fe = {0};
    xmlRelaxNGPtr schema = NULL;
    if (pc) {
        xmlRelaxNGSetParserStructuredErrors(pc, collect_error, &fe);
        schema = xmlRelaxNGParse(pc);
        xmlRelaxNGFreeParserCtxt(pc);
    }
    free(data);
    if (!schema)
        return candor__fail(CANDOR_ECONFIG, "%s:%ld: schema does not load: %s", schema_path,
                            fe.line, fe.set ? fe.msg : "unknown error");
    xmlRelaxNGValidCtxtPtr vc = xmlRelaxNGNewValidCtxt(schema);
    if (!vc) {
        xmlRelaxNGFree(schema);
        return candor__fail(CANDOR_ENOMEM, "%s: out of memory", file);
    }
    memset(&fe, 0, sizeof fe);
    xmlRelaxNGSetValidStructuredErrors(vc, collect_error, &fe);
    int r = xmlRelaxNGValidateDoc(vc, doc);
    xmlRelaxNGFreeValidCtxt(vc);
    xmlRelaxNGFree(schema);
    if (r != 0)
        return candor__fail(CANDOR_ECONFIG, "%s:%ld: %s", file, fe.line,
                            fe.set ? fe.msg : "does not match the schema");
    return CANDOR_OK;
}

candor_status_t candor__config_read(const char *path, const char *schema_path,
                                    size_t max_bytes, void **docp)
{
    *docp = NULL;
    if (!max_bytes)
        max_bytes = CANDOR_DEFAULT_MAX_CONFIG_BYTES;
    /* libxml2 takes the length as an int */
    if (max_bytes > (size_t)INT_MAX)
        max_bytes = (size_t)INT_MAX;
    char *data;
    size_t len;
    candor_status_t st = candor__read_file(path, max_bytes, &data, &len);
    if (st == CANDOR_ELIMIT)
        return candor__fail(CANDOR_ECONFIG, "%s:0: configuration larger than %zu bytes "
                            "(max_config_bytes)", path, max_bytes);
    if (st != CANDOR_OK)
        return candor__fail(CANDOR_ECONFIG, "%s:0: cannot read: %s", path, candor_errmsg());
    xmlParserCtxtPtr pc = xmlNewParserCtxt();
    if (!pc) {
        free(data);
        return candor__fail(CANDOR_ENOMEM, "%s: out of memory", path);
    }
    /* Always UTF-8, whatever the XML declaration says: libxml2 (2.9)
     * reports a failed charset conversion on stderr through its global
     * handler, which a library must not touch, and UTF-8 is Candor's only
     * encoding anyway (invalid bytes are then a parse error, file:line). */
    xmlDocPtr doc = xmlCtxtReadMemory(pc, data, (int)len, path, "UTF-8",
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                      XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC);
    free(data);
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(pc);
        char msg[300] = "not well-formed XML";
        long line = 0;
        if (e) {
            line = e->line;
            if (e->message) {
                snprintf(msg, sizeof msg, "%s", e->message);
                size_t n = strlen(msg);
                while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
                    msg[--n] = '\0';
            }
        }
        xmlFreeParserCtxt(pc);
        return candor__fail(CANDOR_ECONFIG, "%s:%ld: %s", path, line, msg);
    }
    xmlFreeParserCtxt(pc);
    if (schema_path) {
        st = validate(path, doc, schema_path);
        if (st != CANDOR_OK) {
            xmlFreeDoc(doc);
            return st;
        }
    }
    *docp = doc;
    return CANDOR_OK;
}

void candor__config_doc_free(void *doc)
{
    if (doc)
        xmlFreeDoc(doc);
}
