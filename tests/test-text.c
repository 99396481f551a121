/* test-text.c — text.c: HTML to text, format=flowed, and the split of a
 * reply into new text, quoted history and signature. Table-driven; the
 * longer inputs are fixtures in tests/data/text/. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "internal.h"
#include "text.h"

static void check_str(const char *row, const char *what, const char *got, const char *want)
{
    if ((got || want) && (!got || !want || strcmp(got, want) != 0))
        fprintf(stderr, "row %s, %s:\n  got  [%s]\n  want [%s]\n", row, what,
                got ? got : "(null)", want ? want : "(null)");
    if (want) {
        CU_ASSERT_TRUE(got && strcmp(got, want) == 0);
    } else {
        CU_ASSERT_PTR_NULL(got);
    }
}

static void test_html(void)
{
    static const struct { const char *name, *html, *text; } rows[] = {
        { "paragraphs", "<p>Hello</p><p>World</p>", "Hello\n\nWorld" },
        { "br", "a<br>b<br/><br>c", "a\nb\n\nc" },
        { "script and style dropped",
          "<html><head><style>p{color:red}</style><title>T</title></head>"
          "<body><script>alert(1)</script><p>Text</p></body></html>", "Text" },
        { "entities", "<p>caf&eacute; &amp; &lt;tag&gt; &#8364;5&nbsp;x</p>",
          "caf\xc3\xa9 & <tag> \xe2\x82\xac" "5 x" },
        { "whitespace collapsed", "<div>  a \n\t b  </div><div>c</div>", "a b\nc" },
        { "link keeps its text", "<p>See <a href=\"https://x.example/\">our page</a>.</p>",
          "See our page." },
        { "list items", "<ul><li>one</li><li>two</li></ul>", "- one\n- two" },
        { "table cells", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>",
          "a b\nc" },
        { "blockquote quoted", "<div>Yes</div><blockquote><div>old</div><div>text</div></blockquote>",
          "Yes\n\n> old\n> text" },
        { "pre kept", "<pre>a  b\n c</pre>", "a  b\n c" },
        { "unclosed tags", "<div><p>a<b>b<i>c", "abc" },
        { "empty", "", "" },
        { "comment", "a<!-- hidden -->b", "ab" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        bool trunc = true;
        char *t = candor__html_to_text(rows[i].html, strlen(rows[i].html), 256, 1 << 20, &trunc);
        check_str(rows[i].name, "text", t, rows[i].text);
        CU_ASSERT_FALSE(trunc);
        free(t);
    }
}

static void test_html_limits(void)
{
    /* 5000 nested divs: bounded depth, no crash, text still there */
    struct candor_buf b = CANDOR_BUF_INIT;
    for (int i = 0; i < 5000; i++)
        candor__buf_puts(&b, "<div>");
    candor__buf_puts(&b, "deep");
    candor__buf_puts(&b, "<p>shallow</p>");
    bool trunc = false;
    char *t = candor__html_to_text(b.data, b.len, 50, 1 << 20, &trunc);
    CU_ASSERT_PTR_NOT_NULL(t);
    CU_ASSERT_TRUE(trunc);
    free(t);
    /* output size limit */
    b.len = 0;
    for (int i = 0; i < 10000; i++)
        candor__buf_puts(&b, "<p>words words words</p>");
    t = candor__html_to_text(b.data, b.len, 256, 1000, &trunc);
    CU_ASSERT_PTR_NOT_NULL(t);
    CU_ASSERT_TRUE(trunc);
    CU_ASSERT_TRUE(t && strlen(t) <= 1000);
    free(t);
    candor__buf_free(&b);
}

static void test_unflow(void)
{
    static const struct { const char *name, *in; bool delsp; const char *out; } rows[] = {
        { "soft breaks joined", "Hello \nworld.\nNext", false, "Hello world.\nNext" },
        { "delsp", "Hel \nlo", true, "Hello" },
        { "quote depth kept", "> a \n> b\n>> c \n>> d", false, "> a b\n>> c d" },
        { "depth change ends paragraph", "> a \nb", false, "> a \nb" },
        { "space stuffing", " From here\n >not quote", false, "From here\n>not quote" },
        { "signature separator not flowed", "text\n-- \nsig", false, "text\n-- \nsig" },
        { "crlf", "a \r\nb\r\nc", false, "a b\nc" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *o = candor__text_unflow(rows[i].in, rows[i].delsp);
        check_str(rows[i].name, "unflow", o, rows[i].out);
        free(o);
    }
}

static void test_split(void)
{
    static const struct {
        const char *name, *text, *new_text, *quoted, *sig;
    } rows[] = {
        { "plain", "Hello\nthere", "Hello\nthere", "", NULL },
        { "gmail english",
          "Still broken.\n\nOn Tue, Feb 5, 2019 at 2:03 PM Support <help@x.example> wrote:\n"
          "> Please restart.\n>\n> Bye",
          "Still broken.",
          "On Tue, Feb 5, 2019 at 2:03 PM Support <help@x.example> wrote:\n> Please restart.\n>\n> Bye",
          NULL },
        { "gmail wrapped attribution",
          "Thanks\n\nOn Tue, Feb 5, 2019 at 2:03 PM Customer Support Team <\nhelp@x.example> wrote:\n\n> old",
          "Thanks", NULL, NULL },
        { "french",
          "Toujours rien.\n\nLe mar. 5 f\xc3\xa9vr. 2019 \xc3\xa0 14:03, Support <s@x.example> a \xc3\xa9" "crit :\n> Bonjour",
          "Toujours rien.", NULL, NULL },
        { "german",
          "Immer noch kaputt.\n\nAm 05.02.2019 um 14:03 schrieb Support <s@x.example>:\n\n> Hallo",
          "Immer noch kaputt.", NULL, NULL },
        { "spanish",
          "Sigue sin funcionar.\n\nEl mar, 5 feb 2019 a las 14:03, Soporte (<s@x.example>) escribi\xc3\xb3:\n> Hola",
          "Sigue sin funcionar.", NULL, NULL },
        { "outlook original message",
          "Any news?\n\n-----Original Message-----\nFrom: Support\nSent: Monday\nTo: me\nSubject: x\n\nold text",
          "Any news?", NULL, NULL },
        { "outlook from/sent block",
          "Please call me.\n\n________________________________\nFrom: Support <s@x.example>\nSent: Monday, February 4, 2019 2:03 PM\nTo: Me\nSubject: RE: x\n\nold",
          "Please call me.", NULL, NULL },
        { "outlook french",
          "Merci.\n\nDe : Support <s@x.example>\nEnvoy\xc3\xa9 : lundi 4 f\xc3\xa9vrier 2019 14:03\n\xc3\x80 : Moi\nObjet : x\n\nancien",
          "Merci.", NULL, NULL },
        { "outlook german",
          "Danke.\n\nVon: Support <s@x.example>\nGesendet: Montag, 4. Februar 2019 14:03\nAn: Ich\nBetreff: x\n\nalt",
          "Danke.", NULL, NULL },
        { "outlook spanish",
          "Gracias.\n\nDe: Soporte <s@x.example>\nEnviado: lunes, 4 de febrero de 2019 14:03\nPara: Yo\nAsunto: x\n\nviejo",
          "Gracias.", NULL, NULL },
        { "message d'origine",
          "Merci\n\n-----Message d'origine-----\nDe : x", "Merci", NULL, NULL },
        { "signature dash dash space",
          "Refund please.\n\n-- \nJane Doe\nACME Corp", "Refund please.", "", "--\nJane Doe\nACME Corp" },
        { "sent from my iphone", "Where is it?\n\nSent from my iPhone", "Where is it?", "",
          "Sent from my iPhone" },
        { "envoye de mon", "O\xc3\xb9 est-il ?\n\nEnvoy\xc3\xa9 de mon iPhone", "O\xc3\xb9 est-il ?", "",
          "Envoy\xc3\xa9 de mon iPhone" },
        { "von meinem", "Wo ist es?\n\nVon meinem iPhone gesendet", "Wo ist es?", "",
          "Von meinem iPhone gesendet" },
        { "enviado desde mi", "\xc2\xbf" "D\xc3\xb3nde est\xc3\xa1?\n\nEnviado desde mi iPhone",
          "\xc2\xbf" "D\xc3\xb3nde est\xc3\xa1?", "", "Enviado desde mi iPhone" },
        { "signature then quote",
          "New.\n-- \nSig\n\nOn Mon, Feb 4, 2019, Bob <b@x.example> wrote:\n> old",
          "New.", NULL, "--\nSig" },
        { "inline reply keeps answers",
          "On Mon, Feb 4, 2019 at 1:00 PM Bob <b@x.example> wrote:\n> Question one?\nAnswer one.\n> Question two?\nAnswer two.",
          "Answer one.\nAnswer two.", NULL, NULL },
        { "apple mail",
          "Ok.\n\n> On 5 Feb 2019, at 14:03, Support <s@x.example> wrote:\n> \n> Hi",
          "Ok.", NULL, NULL },
        { "wrote inside a sentence is text",
          "I wrote: the app crashes when I log in.", "I wrote: the app crashes when I log in.", "", NULL },
        { "begin forwarded", "See below.\n\nBegin forwarded message:\n\nFrom: x",
          "See below.", NULL, NULL },
        { "empty", "", "", "", NULL },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *n = NULL, *q = NULL, *s = NULL;
        CU_ASSERT_TRUE_FATAL(candor__text_split(rows[i].text, &n, &q, &s));
        check_str(rows[i].name, "new_text", n, rows[i].new_text);
        if (rows[i].quoted) {
            check_str(rows[i].name, "quoted", q, rows[i].quoted);
        } else {
            CU_ASSERT_TRUE(q && *q);
        }
        if (rows[i].sig || strcmp(rows[i].name, "plain") == 0)
            check_str(rows[i].name, "signature", s, rows[i].sig);
        free(n);
        free(q);
        free(s);
    }
}

/* tests/data/text/<case>.txt or .html -> new text == <case>.new */
static void test_fixtures(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", test_data_path("text"));
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        bool html = l > 5 && strcmp(e->d_name + l - 5, ".html") == 0;
        bool txt = l > 4 && strcmp(e->d_name + l - 4, ".txt") == 0;
        if (!html && !txt)
            continue;
        char path[2048], want_path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(want_path, sizeof want_path, "%s/%.*s.new", dir, (int)(l - (html ? 5 : 4)), e->d_name);
        size_t len = 0, wlen = 0;
        char *raw = test_read(path, &len), *want = test_read(want_path, &wlen);
        if (!raw || !want) {
            free(raw);
            free(want);
            continue;
        }
        char *text = html ? candor__html_to_text(raw, len, 256, 1 << 20, NULL) : candor__strndup(raw, len);
        char *w = candor__strndup(want, wlen);
        char *nt = NULL, *q = NULL, *sig = NULL;
        CU_ASSERT_TRUE(text && candor__text_split(text, &nt, &q, &sig));
        check_str(e->d_name, "new_text", nt, w);
        free(nt);
        free(q);
        free(sig);
        free(text);
        free(w);
        free(raw);
        free(want);
        n++;
    }
    closedir(d);
    CU_ASSERT_TRUE(n >= 4);
}

static const struct test_case cases[] = {
    { "fixtures", test_fixtures },
    { "html", test_html },
    { "html_limits", test_html_limits },
    { "unflow", test_unflow },
    { "split", test_split },
    { NULL, NULL },
};

int main(void) { return test_main("text", cases); }
