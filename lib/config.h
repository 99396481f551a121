/* config.h — reading the XML configuration (config.c). */
#ifndef CANDOR_CONFIG_H
#define CANDOR_CONFIG_H
#include "internal.h"

/* Read, parse and (when SCHEMA_PATH is not NULL) validate PATH; PATH is
 * refused (ECONFIG, "PATH:0: ...") when larger than MAX_BYTES (0:
 * CANDOR_DEFAULT_MAX_CONFIG_BYTES). *DOC is an xmlDocPtr;
 * free with candor__config_doc_free(). */
CANDOR_HIDDEN candor_status_t candor__config_read(const char *path, const char *schema_path,
                                                  size_t max_bytes, void **doc);
CANDOR_HIDDEN void candor__config_doc_free(void *doc);
#endif
