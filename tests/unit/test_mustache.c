/*
 * test_mustache: the Mustache engine against a table of cases written from
 * the spec's rules (interpolation, sections, inverted, partials, comments,
 * delimiters), compile errors with their line and column, the output cap,
 * the partial nesting bound, and the official mustache/spec JSON files
 * from Debian's r-cran-whisker, the one package that ships them (make test
 * installs it; NASHRA_MUSTACHE_SPECS=DIR points elsewhere).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/mustache.h"

#define SPEC_DIR_DEFAULT "/usr/lib/R/site-library/whisker/specs"

struct mcase {
    const char *name;
    const char *tpl;
    const char *data;     /* JSON text; NULL for {} */
    const char *partials; /* JSON object name -> source; NULL for none */
    const char *want;
};

static const struct mcase interpolation_cases[] = {
    {"no tags", "Hello from {Mustache}!\n", NULL, NULL, "Hello from {Mustache}!\n"},
    {"basic", "Hello, {{subject}}!", "{\"subject\":\"world\"}", NULL, "Hello, world!"},
    {"html escaping", "{{x}}", "{\"x\":\"& \\\" < > '\"}", NULL, "&amp; &quot; &lt; &gt; &#39;"},
    {"triple mustache raw", "{{{x}}}", "{\"x\":\"& \\\" < > '\"}", NULL, "& \" < > '"},
    {"ampersand raw", "{{&x}}", "{\"x\":\"<b>\"}", NULL, "<b>"},
    {"integer", "{{n}} {{{n}}} {{&n}}", "{\"n\":85}", NULL, "85 85 85"},
    {"big negative integer", "{{n}}", "{\"n\":-9007199254740993}", NULL, "-9007199254740993"},
    {"decimal", "{{d}} {{{d}}}", "{\"d\":1.21}", NULL, "1.21 1.21"},
    {"decimal shortest form", "{{a}}|{{b}}|{{c}}", "{\"a\":0.1,\"b\":3.0,\"c\":1e300}", NULL,
     "0.1|3|1e+300"},
    {"booleans", "{{t}}/{{f}}", "{\"t\":true,\"f\":false}", NULL, "true/false"},
    {"null", "({{n}})", "{\"n\":null}", NULL, "()"},
    {"context miss", "({{nope}}{{{nope}}}{{&nope}})", "{}", NULL, "()"},
    {"object and array render empty", "({{o}}{{a}})", "{\"o\":{\"x\":1},\"a\":[1]}", NULL, "()"},
    {"dotted", "{{a.b.c}}", "{\"a\":{\"b\":{\"c\":\"deep\"}}}", NULL, "deep"},
    {"dotted raw", "{{{p.n}}} {{&p.n}} {{p.n}}", "{\"p\":{\"n\":\"<b>\"}}", NULL,
     "<b> <b> &lt;b&gt;"},
    {"dotted broken chain", "({{a.b.c}})", "{\"a\":{\"b\":{}}}", NULL, "()"},
    {"dotted broken chain resolution", "({{a.b.c}})", "{\"a\":{\"b\":{}},\"c\":\"ERROR\"}", NULL,
     "()"},
    {"dotted initial resolution", "{{#a}}{{b.c}}{{/a}}",
     "{\"a\":{\"b\":{\"c\":\"in\"}},\"b\":{\"c\":\"out\"}}", NULL, "in"},
    {"dotted first part shadows", "({{#a}}{{b.c}}{{/a}})",
     "{\"a\":{\"b\":{}},\"b\":{\"c\":\"ERROR\"}}", NULL, "()"},
    {"dotted through a string", "({{a.length}})", "{\"a\":\"str\"}", NULL, "()"},
    {"dotted name is not one key", "({{a.b}})", "{\"a.b\":\"x\"}", NULL, "()"},
    {"padding inside tags", "|{{ s }}|{{{ s }}}|{{& s }}|", "{\"s\":\"x\"}", NULL, "|x|x|x|"},
    {"surrounding whitespace kept", " | {{s}} | ", "{\"s\":\"x\"}", NULL, " | x | "},
    {"variables are never standalone", "  {{s}}\n", "{\"s\":\"---\"}", NULL, "  ---\n"},
    {"implicit iterator on root", "Hello, {{.}}!", "\"world\"", NULL, "Hello, world!"},
    {"utf-8 passes through", "سلام {{name}}", "{\"name\":\"عالم\"}", NULL, "سلام عالم"},
    {"root null data", "[{{.}}{{x}}]", "null", NULL, "[]"},
};

static const struct mcase section_cases[] = {
    {"truthy", "{{#b}}yes{{/b}}", "{\"b\":true}", NULL, "yes"},
    {"false", "({{#b}}yes{{/b}})", "{\"b\":false}", NULL, "()"},
    {"null", "({{#b}}yes{{/b}})", "{\"b\":null}", NULL, "()"},
    {"missing", "({{#b}}yes{{/b}})", "{}", NULL, "()"},
    {"empty list", "({{#l}}yes{{/l}})", "{\"l\":[]}", NULL, "()"},
    {"empty string is truthy", "{{#s}}[{{.}}]{{/s}}", "{\"s\":\"\"}", NULL, "[]"},
    {"zero is truthy", "{{#n}}<{{.}}>{{/n}}", "{\"n\":0}", NULL, "<0>"},
    {"empty object is truthy", "{{#o}}x{{/o}}", "{\"o\":{}}", NULL, "x"},
    {"object context", "{{#c}}{{name}}{{/c}}", "{\"c\":{\"name\":\"joe\"}}", NULL, "joe"},
    {"falls back to outer context", "{{#a}}{{x}}-{{y}}{{/a}}", "{\"a\":{\"x\":1},\"y\":2}", NULL,
     "1-2"},
    {"deeply nested",
     "{{#a}}{{one}}{{#b}}{{one}}{{two}}{{#c}}{{one}}{{two}}{{three}}{{/c}}{{/b}}{{/a}}",
     "{\"a\":{\"one\":1},\"b\":{\"two\":2},\"c\":{\"three\":3}}", NULL, "112123"},
    {"list", "{{#l}}{{n}},{{/l}}", "{\"l\":[{\"n\":1},{\"n\":2},{\"n\":3}]}", NULL, "1,2,3,"},
    {"implicit iterator strings", "{{#l}}({{.}}){{/l}}", "{\"l\":[\"a\",\"<b>\"]}", NULL,
     "(a)(&lt;b&gt;)"},
    {"implicit iterator numbers", "{{#l}}({{.}}){{/l}}", "{\"l\":[1,2.5,-3]}", NULL,
     "(1)(2.5)(-3)"},
    {"list of lists", "{{#l}}[{{#.}}{{.}}{{/.}}]{{/l}}", "{\"l\":[[1,2],[3],[]]}", NULL,
     "[12][3][]"},
    {"doubled", "{{#b}}a{{/b}}-{{#b}}b{{/b}}", "{\"b\":true}", NULL, "a-b"},
    {"nested truthy", "| A {{#b}}B {{#b}}C{{/b}} D{{/b}} E |", "{\"b\":true}", NULL,
     "| A B C D E |"},
    {"nested falsey", "| A {{#b}}B {{#b}}C{{/b}} D{{/b}} E |", "{\"b\":false}", NULL, "| A  E |"},
    {"dotted truthy", "{{#a.b}}yes{{/a.b}}", "{\"a\":{\"b\":true}}", NULL, "yes"},
    {"dotted broken chain", "({{#a.b.c}}yes{{/a.b.c}})", "{\"a\":{}}", NULL, "()"},
    {"scalar pushed as context", "{{#n}}{{.}}{{/n}}", "{\"n\":\"str\"}", NULL, "str"},
    {"list items shadow the outside", "{{#l}}{{x}}{{/l}}", "{\"l\":[{\"x\":1},{}],\"x\":\"o\"}",
     NULL, "1o"},
    {"standalone lines", "|\n{{#b}}\n|x\n{{/b}}\n|\n", "{\"b\":true}", NULL, "|\n|x\n|\n"},
    {"indented standalone lines", "|\n  {{#b}}\n|x\n\t {{/b}}  \n|\n", "{\"b\":true}", NULL,
     "|\n|x\n|\n"},
    {"standalone crlf", "|\r\n{{#b}}\r\n{{/b}}\r\n|", "{\"b\":true}", NULL, "|\r\n|"},
    {"standalone without previous line", "  {{#b}}\n#{{/b}}\n/", "{\"b\":true}", NULL, "#\n/"},
    {"standalone without newline", "#{{#b}}\n/\n  {{/b}}", "{\"b\":true}", NULL, "#\n/\n"},
    {"inline sections are not standalone", " {{#b}}YES{{/b}}\n {{#b}}GOOD{{/b}}\n", "{\"b\":true}",
     NULL, " YES\n GOOD\n"},
    {"two tags on a line are not standalone", "{{#b}}{{/b}}\n|", "{\"b\":true}", NULL, "\n|"},
    {"padding inside section tags", "|{{# b }}={{/ b }}|", "{\"b\":true}", NULL, "|=|"},
    {"falsey standalone removes its lines", "a\n{{#b}}\nhidden\n{{/b}}\nz\n", "{\"b\":false}", NULL,
     "a\nz\n"},
};

static const struct mcase inverted_cases[] = {
    {"false", "{{^b}}no{{/b}}", "{\"b\":false}", NULL, "no"},
    {"true", "({{^b}}no{{/b}})", "{\"b\":true}", NULL, "()"},
    {"null and missing", "{{^n}}1{{/n}}{{^m}}2{{/m}}", "{\"n\":null}", NULL, "12"},
    {"empty list", "{{^l}}none{{/l}}", "{\"l\":[]}", NULL, "none"},
    {"full list", "({{^l}}none{{/l}})", "{\"l\":[0]}", NULL, "()"},
    {"empty string is truthy", "({{^s}}no{{/s}})", "{\"s\":\"\"}", NULL, "()"},
    {"context is not pushed", "{{^b}}{{x}}{{/b}}", "{\"b\":false,\"x\":\"outer\"}", NULL, "outer"},
    {"with a section", "{{#l}}{{.}}{{/l}}{{^l}}none{{/l}}", "{\"l\":[]}", NULL, "none"},
    {"dotted falsey", "{{^a.b}}no{{/a.b}}", "{\"a\":{\"b\":false}}", NULL, "no"},
    {"dotted broken chain", "{{^a.b.c}}no{{/a.b.c}}", "{}", NULL, "no"},
    {"standalone lines", "|\n{{^b}}\n|x\n{{/b}}\n|\n", "{\"b\":false}", NULL, "|\n|x\n|\n"},
    {"standalone crlf", "|\r\n{{^b}}\r\n{{/b}}\r\n|", "{\"b\":false}", NULL, "|\r\n|"},
    {"standalone without newline", "^{{^b}}\n/\n  {{/b}}", "{\"b\":false}", NULL, "^\n/\n"},
};

static const struct mcase partial_cases[] = {
    {"basic", "\"{{>text}}\"", NULL, "{\"text\":\"from partial\"}", "\"from partial\""},
    {"failed lookup", "\"{{>text}}\"", NULL, "{}", "\"\""},
    {"empty partial", "\"{{>text}}\"", NULL, "{\"text\":\"\"}", "\"\""},
    {"context", "{{>p}}", "{\"text\":\"content\"}", "{\"p\":\"*{{text}}*\"}", "*content*"},
    {"in a section", "{{#l}}{{>p}}{{/l}}", "{\"l\":[{\"x\":1},{\"x\":2}]}", "{\"p\":\"<{{x}}>\"}",
     "<1><2>"},
    {"recursion", "{{>node}}", "{\"content\":\"X\",\"nodes\":[{\"content\":\"Y\",\"nodes\":[]}]}",
     "{\"node\":\"{{content}}<{{#nodes}}{{>node}}{{/nodes}}>\"}", "X<Y<>>"},
    {"surrounding whitespace", "| {{>p}} |", NULL, "{\"p\":\"\\t|\\t\"}", "| \t|\t |"},
    {"inline is not indented", "  {{data}}  {{> p}}\n", "{\"data\":\"|\"}", "{\"p\":\">\\n>\"}",
     "  |  >\n>\n"},
    {"standalone crlf", "|\r\n{{>p}}\r\n|", NULL, "{\"p\":\">\"}", "|\r\n>|"},
    {"standalone without previous line", "  {{>p}}\n>", NULL, "{\"p\":\">\\n>\"}", "  >\n  >>"},
    {"standalone without newline", ">\n  {{>p}}", NULL, "{\"p\":\">\\n>\"}", ">\n  >\n  >"},
    {"standalone indentation", "\\\n {{>p}}\n/\n", "{\"content\":\"<\\n->\"}",
     "{\"p\":\"|\\n{{{content}}}\\n|\\n\"}", "\\\n |\n <\n->\n |\n/\n"},
    {"nested indentation adds up", "  {{>a}}\n", NULL,
     "{\"a\":\"A\\n  {{>b}}\\n\",\"b\":\"B1\\nB2\\n\"}", "  A\n    B1\n    B2\n"},
    {"same partial, two indents", "{{>p}}\n  {{>p}}\n\t{{>p}}\n", NULL, "{\"p\":\"x\\ny\\n\"}",
     "x\ny\n  x\n  y\n\tx\n\ty\n"},
    {"standalone tags inside an indented partial", "  {{>p}}\n", "{\"b\":true}",
     "{\"p\":\"{{#b}}\\nyes\\n{{/b}}\\n\"}", "  yes\n"},
    {"padding inside the tag", "|{{> p }}|", NULL, "{\"p\":\"[]\"}", "|[]|"},
    {"delimiters do not leak into partials", "{{=| |=}}|>p|", "{\"x\":\"ok\"}", "{\"p\":\"{{x}}\"}",
     "ok"},
    {"delimiters do not leak out of partials", "[ {{>p}} ]\n[ .{{v}}.  .|v|. ]\n",
     "{\"v\":\"yes\"}", "{\"p\":\".{{v}}. {{=| |=}} .|v|.\"}",
     "[ .yes.  .yes. ]\n[ .yes.  .|v|. ]\n"},
};

static const struct mcase comment_cases[] = {
    {"inline", "12345{{! Comment Block! }}67890", NULL, NULL, "1234567890"},
    {"multiline", "12345{{!\n  This is a\n  multi-line comment...\n}}67890\n", NULL, NULL,
     "1234567890\n"},
    {"standalone", "Begin.\n{{! Comment Block! }}\nEnd.\n", NULL, NULL, "Begin.\nEnd.\n"},
    {"indented standalone", "Begin.\n    {{! Indented Comment Block! }}\nEnd.\n", NULL, NULL,
     "Begin.\nEnd.\n"},
    {"standalone crlf", "|\r\n{{! Standalone Comment }}\r\n|", NULL, NULL, "|\r\n|"},
    {"standalone without previous line", "  {{! I'm Still Standalone }}\n!", NULL, NULL, "!"},
    {"standalone without newline", "!\n  {{! I'm Still Standalone }}", NULL, NULL, "!\n"},
    {"multiline standalone", "Begin.\n{{!\nSomething's going on here...\n}}\nEnd.\n", NULL, NULL,
     "Begin.\nEnd.\n"},
    {"indented inline", "  12 {{! 34 }}\n", NULL, NULL, "  12 \n"},
    {"surrounding whitespace", "12345 {{! Comment Block! }} 67890", NULL, NULL, "12345  67890"},
    {"a comment ends at the first closing delimiter", "a{{! {{x}} }}b", NULL, NULL, "a }}b"},
};

static const struct mcase delimiter_cases[] = {
    {"pair", "{{=<% %>=}}(<%text%>)", "{\"text\":\"Hey!\"}", NULL, "(Hey!)"},
    {"special characters", "({{=[ ]=}}[text])", "{\"text\":\"It worked!\"}", NULL, "(It worked!)"},
    {"sections", "[\n{{#s}}\n  {{d}}\n  |d|\n{{/s}}\n{{= | | =}}\n|#s|\n  {{d}}\n  |d|\n|/s|\n]\n",
     "{\"s\":true,\"d\":\"I got interpolated.\"}", NULL,
     "[\n  I got interpolated.\n  |d|\n  {{d}}\n  I got interpolated.\n]\n"},
    {"inverted sections", "{{=| |=}}|^s|no|/s|{{x}}", "{\"s\":false}", NULL, "no{{x}}"},
    {"surrounding whitespace", "| {{=@ @=}} |", NULL, NULL, "|  |"},
    {"outlying whitespace inline", " | {{=@ @=}}\n", NULL, NULL, " | \n"},
    {"standalone", "Begin.\n{{=@ @=}}\nEnd.\n", NULL, NULL, "Begin.\nEnd.\n"},
    {"indented standalone", "Begin.\n  {{=@ @=}}\nEnd.\n", NULL, NULL, "Begin.\nEnd.\n"},
    {"standalone crlf", "|\r\n{{= @ @ =}}\r\n|", NULL, NULL, "|\r\n|"},
    {"standalone without previous line", "  {{=@ @=}}\n=", NULL, NULL, "="},
    {"standalone without newline", "=\n  {{=@ @=}}", NULL, NULL, "=\n"},
    {"pair with padding", "|{{= @   @ =}}|", NULL, NULL, "||"},
    {"triple and ampersand with custom delimiters", "{{=<% %>=}}<%{x}%> <%&x%> <%x%>",
     "{\"x\":\"<\"}", NULL, "< < &lt;"},
    {"back to the default", "{{=<% %>=}}<%x%><%={{ }}=%>{{x}}", "{\"x\":1}", NULL, "11"},
    {"long asymmetric delimiters", "{{=<<< >>>=}}<<<x>>> {{x}}", "{\"x\":1}", NULL, "1 {{x}}"},
    {"one-character delimiters", "{{=| |=}}|x||{x}|", "{\"x\":\"&\"}", NULL, "&amp;&"},
};

static const char *tbl_partial(void *arg, const char *name, size_t *len)
{
    const json_t *p = json_object_get((const json_t *)arg, name);
    if (!json_is_string(p))
        return NULL;
    *len = json_string_length(p);
    return json_string_value(p);
}

/* Renders one case; returns 0 when the output matches, printing it if not. */
static int run_case(const char *group, const struct mcase *c)
{
    struct diag d = {0};
    json_error_t je;
    json_t *data = c->data ? json_loads(c->data, JSON_DECODE_ANY, &je) : json_object();
    json_t *parts = c->partials ? json_loads(c->partials, 0, &je) : json_object();
    assert_non_null(data);
    assert_non_null(parts);
    struct mustache *t = mustache_compile(c->tpl, strlen(c->tpl), &d);
    int bad = 1;
    struct buf out;
    buf_init(&out, 1 << 20);
    if (!t)
        fprintf(stderr, "%s/%s: compile: %d:%d %s\n", group, c->name, d.line, d.col, d.msg);
    else if (mustache_render(t, data, c->partials ? tbl_partial : NULL, parts, &out) < 0)
        fprintf(stderr, "%s/%s: render failed\n", group, c->name);
    else if (strcmp(buf_str(&out), c->want) != 0)
        fprintf(stderr, "%s/%s:\n want [%s]\n got  [%s]\n", group, c->name, c->want, buf_str(&out));
    else
        bad = 0;
    buf_free(&out);
    mustache_free(t);
    json_decref(data);
    json_decref(parts);
    return bad;
}

static void run_table(const char *group, const struct mcase *cases, size_t n)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += run_case(group, &cases[i]);
    assert_int_equal(failed, 0);
}

#define RUN_TABLE(tbl) run_table(#tbl, tbl, sizeof tbl / sizeof tbl[0])

static void test_interpolation(void **state)
{
    (void)state;
    RUN_TABLE(interpolation_cases);
}

static void test_sections(void **state)
{
    (void)state;
    RUN_TABLE(section_cases);
}

static void test_inverted(void **state)
{
    (void)state;
    RUN_TABLE(inverted_cases);
}

static void test_partials(void **state)
{
    (void)state;
    RUN_TABLE(partial_cases);
}

static void test_comments(void **state)
{
    (void)state;
    RUN_TABLE(comment_cases);
}

static void test_delimiters(void **state)
{
    (void)state;
    RUN_TABLE(delimiter_cases);
}

/* ---- compile errors ------------------------------------------------------ */

struct ecase {
    const char *tpl;
    int line, col;
    const char *msg; /* a substring of the message */
};

static const struct ecase error_cases[] = {
    {"a\n  {{#sec}}\nb", 2, 3, "unclosed section 'sec'"},
    {"{{#a}}\n x {{/b}}", 2, 4, "does not match section 'a' (1:1)"},
    {"{{#a}}{{#b}}{{/a}}{{/b}}", 1, 13, "does not match section 'b'"},
    {"x{{/a}}", 1, 2, "without an open section"},
    {"ab\ncd {{name", 2, 4, "unclosed tag"},
    {"{{{x}}", 1, 1, "unclosed tag"},
    {"ok\n\n   {{!never closed", 3, 4, "unclosed tag"},
    {"{{=<%=}}", 1, 1, "bad set-delimiter"},
    {"x {{=a b c=}}", 1, 3, "bad set-delimiter"},
    {"{{= =}}", 1, 1, "bad set-delimiter"},
    {"{{=aaaaaaaaaaaaaaaaa b=}}", 1, 1, "bad set-delimiter"},
    {"{{=<% %>=}}\n<%#a%>", 2, 1, "unclosed section 'a'"},
    {"{{=<% %>=}}\n{{x}} <%x", 2, 7, "unclosed tag (no '%>')"},
    {"{{}}", 1, 1, "empty tag"},
    {"a {{ }}", 1, 3, "empty tag"},
    {"{{#}}{{/}}", 1, 1, "empty tag"},
    {"{{a b}}", 1, 1, "space inside a tag name"},
    {"{{> a b}}", 1, 1, "space inside a tag name"},
    {"{{a..b}}", 1, 1, "bad dotted name"},
    {"{{.a}}", 1, 1, "bad dotted name"},
    {"{{a.}}", 1, 1, "bad dotted name"},
    {"سلام {{#x}}", 1, 6, "unclosed section"},
};

static void test_compile_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        const struct ecase *e = &error_cases[i];
        struct diag d = {0};
        struct mustache *t = mustache_compile(e->tpl, strlen(e->tpl), &d);
        if (t || d.line != e->line || d.col != e->col || !strstr(d.msg, e->msg))
            fprintf(stderr, "case %zu [%s]: got %s %d:%d %s\n", i, e->tpl, t ? "template" : "NULL",
                    d.line, d.col, d.msg);
        assert_null(t);
        assert_int_equal(d.line, e->line);
        assert_int_equal(d.col, e->col);
        assert_non_null(strstr(d.msg, e->msg));
    }
    /* No diag wanted: still NULL, no crash. */
    assert_null(mustache_compile("{{#a}}", 6, NULL));
}

static void test_nesting_limit(void **state)
{
    (void)state;
    struct buf src;
    buf_init(&src, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(buf_puts(&src, "{{#a}}"), 0);
    assert_int_equal(buf_puts(&src, "x"), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(buf_puts(&src, "{{/a}}"), 0);
    struct diag d = {0};
    struct mustache *t = mustache_compile(src.data, src.len, &d);
    assert_non_null(t);
    struct buf out;
    buf_init(&out, 0);
    json_t *data = json_pack("{s:b}", "a", 1);
    assert_int_equal(mustache_render(t, data, NULL, NULL, &out), 0);
    assert_string_equal(buf_str(&out), "x");
    mustache_free(t);
    buf_reset(&src);
    for (int i = 0; i < 101; i++)
        assert_int_equal(buf_puts(&src, "{{#a}}"), 0);
    assert_null(mustache_compile(src.data, src.len, &d));
    assert_int_equal(d.line, 1);
    assert_int_equal(d.col, 601);
    assert_non_null(strstr(d.msg, "nested too deeply"));
    json_decref(data);
    buf_free(&out);
    buf_free(&src);
}

/* ---- rendering: reuse, cap, partial bounds -------------------------------- */

static int render_str(const char *tpl, const char *data, const char *partials, size_t cap,
                      struct buf *out)
{
    json_t *d = json_loads(data, JSON_DECODE_ANY, NULL);
    json_t *p = partials ? json_loads(partials, 0, NULL) : NULL;
    assert_non_null(d);
    struct mustache *t = mustache_compile(tpl, strlen(tpl), NULL);
    assert_non_null(t);
    buf_init(out, cap);
    int r = mustache_render(t, d, p ? tbl_partial : NULL, p, out);
    mustache_free(t);
    json_decref(d);
    json_decref(p);
    return r;
}

static void test_render_many(void **state)
{
    (void)state;
    const char *tpl = "{{#posts}}<li>{{>item}}</li>{{/posts}}";
    json_t *parts = json_pack("{s:s}", "item", "{{title}}");
    struct mustache *t = mustache_compile(tpl, strlen(tpl), NULL);
    assert_non_null(t);
    struct buf out;
    buf_init(&out, 0);
    for (int i = 0; i < 3; i++) {
        json_t *data = json_pack("{s:[{s:i},{s:s}]}", "posts", "title", i, "title", "b&");
        buf_reset(&out);
        assert_int_equal(mustache_render(t, data, tbl_partial, parts, &out), 0);
        char want[64];
        snprintf(want, sizeof want, "<li>%d</li><li>b&amp;</li>", i);
        assert_string_equal(buf_str(&out), want);
        json_decref(data);
    }
    /* Partials NULL: a partial tag renders nothing. */
    json_t *one = json_pack("{s:[i]}", "posts", 1);
    buf_reset(&out);
    assert_int_equal(mustache_render(t, one, NULL, NULL, &out), 0);
    assert_string_equal(buf_str(&out), "<li></li>");
    json_decref(one);
    buf_free(&out);
    mustache_free(t);
    json_decref(parts);
}

static void test_output_cap(void **state)
{
    (void)state;
    struct buf out;
    /* Exactly at the cap is fine; one byte over fails. */
    assert_int_equal(render_str("ab{{x}}", "{\"x\":\"cdef\"}", NULL, 6, &out), 0);
    assert_string_equal(buf_str(&out), "abcdef");
    buf_free(&out);
    assert_int_equal(render_str("ab{{x}}", "{\"x\":\"cdefg\"}", NULL, 6, &out), -1);
    buf_free(&out);
    /* Escaping grows the text past the cap: 10 '&' are 50 bytes. */
    assert_int_equal(render_str("{{x}}", "{\"x\":\"&&&&&&&&&&\"}", NULL, 50, &out), 0);
    buf_free(&out);
    assert_int_equal(render_str("{{x}}", "{\"x\":\"&&&&&&&&&&\"}", NULL, 49, &out), -1);
    buf_free(&out);
    assert_int_equal(render_str("{{{x}}}", "{\"x\":\"&&&&&&&&&&\"}", NULL, 10, &out), 0);
    buf_free(&out);
    /* Literal text, a list, and a partial: each stops the render. */
    assert_int_equal(render_str("0123456789x", "{}", NULL, 10, &out), -1);
    buf_free(&out);
    assert_int_equal(render_str("{{#l}}{{.}}{{/l}}", "{\"l\":[1,2,3,4]}", NULL, 3, &out), -1);
    assert_true(out.len <= 3);
    buf_free(&out);
    assert_int_equal(render_str("{{>p}}", "{}", "{\"p\":\"0123456789\"}", 9, &out), -1);
    buf_free(&out);
}

/* node = "{{n}}{{#kids}}({{>node}}){{/kids}}" over a chain `depth` deep. */
static int render_chain(int depth, struct buf *out)
{
    json_t *node = json_pack("{s:i,s:[]}", "n", depth, "kids");
    for (int i = depth - 1; i >= 1; i--)
        node = json_pack("{s:i,s:[o]}", "n", i, "kids", node);
    json_t *parts = json_pack("{s:s}", "node", "{{n}}{{#kids}}({{>node}}){{/kids}}");
    struct mustache *t = mustache_compile("{{>node}}", 9, NULL);
    assert_non_null(t);
    buf_init(out, 0);
    int r = mustache_render(t, node, tbl_partial, parts, out);
    mustache_free(t);
    json_decref(node);
    json_decref(parts);
    return r;
}

static void test_partial_depth(void **state)
{
    (void)state;
    struct buf out;
    assert_int_equal(render_chain(16, &out), 0);
    assert_string_equal(buf_str(&out), "1(2(3(4(5(6(7(8(9(10(11(12(13(14(15(16)))))))))))))))");
    buf_free(&out);
    assert_int_equal(render_chain(17, &out), -1);
    buf_free(&out);
    /* A partial that includes itself unconditionally stops at the bound. */
    assert_int_equal(render_str("{{>self}}", "{}", "{\"self\":\"x{{>self}}\"}", 0, &out), -1);
    buf_free(&out);
}

static void test_partial_compile_error(void **state)
{
    (void)state;
    struct buf out;
    assert_int_equal(render_str("a{{>p}}", "{}", "{\"p\":\"{{#open}}\"}", 0, &out), -1);
    buf_free(&out);
    /* A bad partial that is never reached does no harm. */
    assert_int_equal(render_str("a{{#no}}{{>p}}{{/no}}", "{}", "{\"p\":\"{{#open}}\"}", 0, &out),
                     0);
    assert_string_equal(buf_str(&out), "a");
    buf_free(&out);
}

/* Reals keep their '.' under a locale whose decimal point is ','. */
static void test_real_locale(void **state)
{
    (void)state;
    if (!setlocale(LC_ALL, "fr_FR.UTF-8") && !setlocale(LC_ALL, "de_DE.UTF-8")) {
        fprintf(stderr, "no fr_FR/de_DE locale: skipped\n");
        skip();
    }
    struct buf out;
    int r = render_str("{{a}} {{b}}", "{\"a\":1.25,\"b\":-0.5}", NULL, 0, &out);
    setlocale(LC_ALL, "C");
    assert_int_equal(r, 0);
    assert_string_equal(buf_str(&out), "1.25 -0.5");
    buf_free(&out);
}

/* ---- the official spec files, when installed ----------------------------- */

static int spec_file(const char *dir, const char *name, int *ntests)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        fprintf(stderr, "%s: %s\n", path, je.text);
        return 1;
    }
    int failed = 0;
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(root, "tests"), i, tc)
    {
        const char *tpl = json_string_value(json_object_get(tc, "template"));
        const char *want = json_string_value(json_object_get(tc, "expected"));
        json_t *parts = json_object_get(tc, "partials");
        assert_non_null(tpl);
        assert_non_null(want);
        struct diag d = {0};
        struct mustache *t = mustache_compile(tpl, strlen(tpl), &d);
        struct buf out;
        buf_init(&out, 1 << 20);
        int ok = t &&
                 mustache_render(t, json_object_get(tc, "data"), tbl_partial, parts, &out) == 0 &&
                 strcmp(buf_str(&out), want) == 0;
        if (!ok) {
            fprintf(stderr, "spec %s / %s: %s\n want [%s]\n got  [%s]\n", name,
                    json_string_value(json_object_get(tc, "name")), t ? "" : d.msg, want,
                    buf_str(&out));
            failed++;
        }
        (*ntests)++;
        buf_free(&out);
        mustache_free(t);
    }
    json_decref(root);
    return failed;
}

static void test_official_spec(void **state)
{
    (void)state;
    const char *dir = getenv("NASHRA_MUSTACHE_SPECS");
    if (!dir)
        dir = SPEC_DIR_DEFAULT;
    char probe[512];
    snprintf(probe, sizeof probe, "%s/interpolation.json", dir);
    FILE *fp = fopen(probe, "r");
    if (!fp) /* make test installs them (r-cran-whisker): missing is a failure */
        fail_msg("the official Mustache spec is not in %s (apt-get install r-cran-whisker, or "
                 "set NASHRA_MUSTACHE_SPECS)",
                 dir);
    fclose(fp);
    static const char *const files[] = {"comments", "delimiters", "interpolation",
                                        "inverted", "partials",   "sections"};
    int failed = 0, ntests = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        failed += spec_file(dir, files[i], &ntests);
    assert_int_equal(failed, 0);
    assert_true(ntests >= 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interpolation),  cmocka_unit_test(test_sections),
        cmocka_unit_test(test_inverted),       cmocka_unit_test(test_partials),
        cmocka_unit_test(test_comments),       cmocka_unit_test(test_delimiters),
        cmocka_unit_test(test_compile_errors), cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_render_many),    cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_partial_depth),  cmocka_unit_test(test_partial_compile_error),
        cmocka_unit_test(test_real_locale),    cmocka_unit_test(test_official_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
