/*
 * fuzz-html.c — libFuzzer target: HTML to text, then quote and signature
 * splitting of the result. The input is made valid UTF-8 first, as the
 * message parser does before it calls candor__html_to_text().
 */
#include "fuzz-common.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *html = candor__utf8_sanitize((const char *)data, size, NULL);
    if (!html)
        return 0;
    bool truncated = false;
    const size_t max_out = 64u << 10;
    char *text = candor__html_to_text(html, strlen(html), CANDOR_DEFAULT_MAX_HTML_DEPTH,
                                      max_out, &truncated);
    free(html);
    if (!text)
        return 0;
    fuzz_check_utf8(text, "html_to_text output is UTF-8");
    char *new_text = NULL, *quoted = NULL, *signature = NULL;
    if (candor__text_split(text, &new_text, &quoted, &signature)) {
        fuzz_check_utf8(new_text, "split new_text is UTF-8");
        fuzz_check_utf8(quoted, "split quoted is UTF-8");
        fuzz_check_utf8(signature, "split signature is UTF-8");
    }
    free(new_text);
    free(quoted);
    free(signature);
    free(text);
    return 0;
}
