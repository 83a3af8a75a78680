/*
 * tests/unit/test_lex.c - lexer, table-driven: input -> token types and
 * texts ("I:select" = LEX_IDENT with text "select"), or the error and its
 * offset.
 */
#include "protocol/lex.h"

#include <stdio.h>
#include <string.h>

#include "check.h"

static char type_char(enum lex_type t)
{
    switch (t) {
    case LEX_IDENT:   return 'I';
    case LEX_QIDENT:  return 'Q';
    case LEX_STRING:  return 'S';
    case LEX_INTEGER: return 'N';
    case LEX_DECIMAL: return 'D';
    case LEX_HEX:     return 'X';
    case LEX_BIT:     return 'B';
    case LEX_PARAM:   return 'P';
    case LEX_USERVAR: return 'U';
    case LEX_SYSVAR:  return 'V';
    case LEX_OP:      return 'O';
    case LEX_END:     return 'E';
    default:          return '!';
    }
}

/* Renders the tokens of <in> as "T:text T:text ..." or "ERR@off". */
static void render(const char *in, size_t len, char *out, size_t cap)
{
    struct lex lx;
    struct lex_token t;
    size_t o = 0;
    out[0] = 0;
    lex_init(&lx, in, len);
    for (;;) {
        int r = lex_next(&lx, &t);
        if (r < 0) {
            snprintf(out + o, cap - o, "%sERR%u@%u", o ? " " : "", t.op, t.off);
            return;
        }
        if (r == 0)
            return;
        o += (size_t)snprintf(out + o, cap - o, "%s%c:%.*s", o ? " " : "", type_char(t.type),
                              (int)t.len, in + t.off);
        if (o >= cap)
            return;
    }
}

static void test_table(void)
{
    static const struct {
        const char *in;
        const char *out;
    } v[] = {
        {"", ""},
        {"   \t\n", ""},
        {"SELECT 1", "I:SELECT N:1"},
        {"a.b", "I:a O:. I:b"},
        {"t.1e5", "I:t O:. I:1e5"},
        {"1abc", "I:1abc"},
        {"1e5", "D:1e5"},
        {"1.5e-3", "D:1.5e-3"},
        {"1e", "I:1e"},
        {"1e1OR 1", "D:1e1 I:OR N:1"},           /* as MariaDB reads it */
        {"12e3x", "D:12e3 I:x"},
        {"2e+3AND 0", "D:2e+3 I:AND N:0"},
        {"1eOR", "I:1eOR"},
        {"0OR 1", "I:0OR N:1"},
        {".5", "D:.5"},
        {"5.", "D:5."},
        {"1.5abc", "D:1.5 I:abc"},
        {"0x1F", "X:0x1F"},
        {"0x1G", "I:0x1G"},
        {"0x", "I:0x"},
        {"0b101", "B:0b101"},
        {"0b2", "I:0b2"},
        {"X'0a'", "X:X'0a'"},
        {"x''", "X:x''"},
        {"X'0'", "ERR7@0"},
        {"X'zz'", "ERR7@0"},
        {"b'01'", "B:b'01'"},
        {"B'2'", "ERR7@0"},
        {"N'abc'", "S:N'abc'"},
        {"_utf8mb4'x'", "I:_utf8mb4 S:'x'"},
        {"'a''b'", "S:'a''b'"},
        {"'a\\'b'", "S:'a\\'b'"},
        {"\"a\"\"b\"", "S:\"a\"\"b\""},
        {"'a\\\\' b", "S:'a\\\\' I:b"},
        {"'abc", "ERR1@0"},
        {"'abc\\'", "ERR1@0"},
        {"`a``b`", "Q:`a``b`"},
        {"`a\\`", "Q:`a\\`"},
        {"`abc", "ERR2@0"},
        {"a -- c\nb", "I:a I:b"},
        {"a --c", "I:a O:- O:- I:c"},
        {"a--", "I:a"},                 /* the server sees the NUL after it */
        {"a -- ", "I:a"},
        {"a --\tx\nb", "I:a I:b"},
        {"a --\x7f x\nb", "I:a I:b"},          /* DEL is a control character */
        {"a --\x01x\nb", "I:a I:b"},
        {"a --\xa0x", "I:a ERR6@4"},          /* a comment in latin1 only */
        {"a --\xc3\xa9", "I:a O:- O:- I:\xc3\xa9"},
        {"a # c\r b\nc", "I:a I:c"},          /* only \n ends it */
        {"a # c\nb", "I:a I:b"},
        {"a /* c */ b", "I:a I:b"},
        {"a /*+ hint */ b", "I:a I:b"},
        {"a /* c", "I:a ERR3@2"},
        {"a /*", "I:a ERR3@2"},
        {"a /*! b */ c", "I:a I:b I:c"},
        {"a /*!50699 b */ c", "I:a I:b I:c"},
        {"a /*!40101 b */ c", "I:a I:b I:c"},
        {"a /*!50700 b */ c", "I:a ERR4@2"},       /* MariaDB skips 50700-99999 */
        {"a /*!99999 b */ c", "I:a ERR4@2"},
        {"a /*M!50700 b */ c", "I:a I:b I:c"},     /* ... but not after M! */
        {"a /*!101100 b */ c", "I:a I:b I:c"},
        {"a /*!101101 b */ c", "I:a ERR4@2"},
        {"a /*!1234 b */", "I:a ERR4@2"},
        {"a /*!050700 b */ c", "I:a ERR4@2"},      /* by value: still 5.7 */
        {"a /*!099999 b */ c", "I:a ERR4@2"},
        {"a /*M!050700 b */ c", "I:a I:b I:c"},
        {"a /*!05000 b */ c", "I:a I:b I:c"},      /* 5000: runs */
        {"a /*!040101 b */ c", "I:a I:b I:c"},
        {"a /*!1234567 b */", "I:a ERR4@2"},
        {"a /*M! b */ c", "I:a I:b I:c"},
        {"a /*M!100500 b */", "I:a I:b"},
        {"a /*M b */ c", "I:a I:c"},
        {"a /*! b", "I:a I:b ERR3@2"},
        {"/*! a /* b */ */", "I:a ERR5@6"},
        {"/*! a # b */", "I:a ERR5@6"},
        {"/*! 'x*/y' */", "S:'x*/y'"},
        {"a */ b", "I:a O:* O:/ I:b"},
        {"a<=>b", "I:a O:<=> I:b"},
        {"a<>b!=c<=d>=e", "I:a O:<> I:b O:!= I:c O:<= I:d O:>= I:e"},
        {"@a:=1", "U:@a O::= N:1"},
        {"a||b&&c", "I:a O:|| I:b O:&& I:c"},
        {"a<<b>>c", "I:a O:<< I:b O:>> I:c"},
        {"j->'$.a' j->>'$.b'", "I:j O:-> S:'$.a' I:j O:->> S:'$.b'"},
        {"?,?", "P:? O:, P:?"},
        {"@a @`b c` @'d' @a.b", "U:@a U:@`b c` U:@'d' U:@a.b"},
        {"@@version @@session.sql_mode @@GLOBAL.x", "V:@@version V:@@session.sql_mode V:@@GLOBAL.x"},
        {"@ x", "O:@ I:x"},
        {"a;b", "I:a O:; I:b"},
        {"$a a$b", "I:$a I:a$b"},
        {"注文 ünï", "I:注文 I:ünï"},
        {"-5", "O:- N:5"},
        {"a\\Nb", "I:a O:\\ I:Nb"},
    };
    char got[512];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        render(v[i].in, strlen(v[i].in), got, sizeof(got));
        int same = strcmp(got, v[i].out) == 0;
        if (!same)
            fprintf(stderr, "lex(\"%s\"): got \"%s\", want \"%s\"\n", v[i].in, got, v[i].out);
        CHECK(same);
    }
out:
    return;
}

/* Like render(), but a keyword prints as K:, a charset introducer as C:. */
static void render_kw(const char *in, char *out, size_t cap)
{
    struct lex lx;
    struct lex_token t;
    size_t o = 0;
    out[0] = 0;
    lex_init(&lx, in, strlen(in));
    for (;;) {
        int r = lex_next(&lx, &t);
        if (r < 0) {
            snprintf(out + o, cap - o, "%sERR%u@%u", o ? " " : "", t.op, t.off);
            return;
        }
        if (r == 0)
            return;
        char c = type_char(t.type);
        if (t.type == LEX_IDENT && t.op != LEX_KW_NONE)
            c = 'K';
        if (t.type == LEX_IDENT && (t.flags & LEX_F_INTRO))
            c = 'C';
        o += (size_t)snprintf(out + o, cap - o, "%s%c:%.*s", o ? " " : "", c, (int)t.len,
                              in + t.off);
        if (o >= cap)
            return;
    }
}

/* Issue 8, lexical classes: the token split and keyword-or-identifier
 * decision of sql_lex.cc (MY_LEX_IDENT_SEP, MY_LEX_IDENT_START,
 * MY_LEX_NUMBER_IDENT, MY_LEX_REAL_OR_POINT, UNDERSCORE_CHARSET). */
static void test_server_tokens(void)
{
    static const struct {
        const char *in;
        const char *out;
    } v[] = {
        /* a word after a qualifier dot is an identifier, never a keyword */
        {"o.ORDER", "I:o O:. I:ORDER"},
        {"t.where t.CASE t.limit", "I:t O:. I:where I:t O:. I:CASE I:t O:. I:limit"},
        {"db.t.into", "I:db O:. I:t O:. I:into"},
        {"`t`.having", "Q:`t` O:. I:having"},
        {"t .lock", "I:t O:. I:lock"},                   /* only the dot must touch it */
        {"t . where", "I:t O:. K:where"},
        {"t. where", "I:t O:. K:where"},
        {"t./**/where", "I:t O:. K:where"},
        {"t/**/.returning", "I:t O:. I:returning"},
        /* ... and so is a word right before a dot and an identifier byte */
        {"where.t", "I:where O:. I:t"},
        {"OR.5", "I:OR O:. I:5"},
        {"x OR .5", "I:x K:OR D:.5"},
        {"AND.x", "I:AND O:. I:x"},
        {"AND .x", "K:AND O:. I:x"},
        /* numbers glued to words */
        {"AND1", "I:AND1"},
        {"42OR", "I:42OR"},
        {"1.5e1AND 1", "D:1.5e1 K:AND N:1"},
        {"0x1fOR", "I:0x1fOR"},
        {"0x1f OR", "X:0x1f K:OR"},
        {".1OR", "D:.1 K:OR"},
        {"1.OR", "D:1. K:OR"},
        {"1e+OR", "I:1e O:+ K:OR"},
        {"1e1OR", "D:1e1 K:OR"},
        {"1.5eOR", "ERR8@0"},
        {"1.e", "ERR8@0"},
        {".5e+", "ERR8@0"},
        {"t.5", "I:t O:. I:5"},
        {"t.5e1", "I:t O:. I:5e1"},
        {"t .5", "I:t D:.5"},
        {"`t`.5", "Q:`t` D:.5"},
        {"`t`.5x", "Q:`t` D:.5 I:x"},
        {"(1).5", "O:( N:1 O:) D:.5"},
        {"1..2", "N:1 ERR8@1"},
        {"a..b", "I:a ERR8@1"},
        {"?a", "ERR8@0"},                 /* no placeholder before a word */
        {"?,?1", "P:? O:, ERR8@2"},
        {"@@ x", "ERR8@0"},
        {"@@global. x", "V:@@global O:. I:x"},
        /* introducers: only names of MariaDB character sets */
        {"_utf16'a'", "C:_utf16 S:'a'"},
        {"_UTF8MB4 'a'", "C:_UTF8MB4 S:'a'"},
        {"_foo 'a'", "I:_foo S:'a'"},
        {"_latin1.x", "I:_latin1 O:. I:x"},
        {"_filename'a'", "C:_filename S:'a'"},
    };
    char got[512];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        render_kw(v[i].in, got, sizeof(got));
        int same = strcmp(got, v[i].out) == 0;
        if (!same)
            fprintf(stderr, "lex(\"%s\"): got \"%s\", want \"%s\"\n", v[i].in, got, v[i].out);
        CHECK(same);
    }
    /* malformed UTF-8 in a bare word: the server ends the word there */
    render_kw("a x\xff OR 1", got, sizeof(got));
    CHECK_STREQ(got, "I:a ERR8@2");
    render_kw("x\xc3", got, sizeof(got));
    CHECK_STREQ(got, "ERR8@0");
    render_kw("\xc0\x80", got, sizeof(got));           /* overlong */
    CHECK_STREQ(got, "ERR8@0");
    render_kw("\xed\xa0\x80", got, sizeof(got));       /* surrogate */
    CHECK_STREQ(got, "ERR8@0");
    render_kw("\xf4\x90\x80\x80", got, sizeof(got));   /* above U+10FFFF */
    CHECK_STREQ(got, "ERR8@0");
    render_kw("t.\xc3\xa9\xf0\x9f\x98\x80 '\xff'", got, sizeof(got));
    CHECK_STREQ(got, "I:t O:. I:\xc3\xa9\xf0\x9f\x98\x80 S:'\xff'");
    /* a non-ASCII byte in an unquoted @variable */
    render_kw("@a\xc3\xa9 x", got, sizeof(got));
    CHECK_STREQ(got, "ERR8@2");
out:
    return;
}

/* NUL bytes: inside strings they are data, elsewhere an error. */
static void test_nul(void)
{
    char got[128];
    render("'a\0b'", 5, got, sizeof(got));
    CHECK_STREQ(got, "S:'a\0b'");       /* printed up to the NUL */
    render("a \0 b", 5, got, sizeof(got));
    CHECK_STREQ(got, "I:a ERR6@2");
    render("a /* \0 */", 9, got, sizeof(got));
    CHECK_STREQ(got, "I:a ERR6@5");
    render("a -- \0\n", 7, got, sizeof(got));
    CHECK_STREQ(got, "I:a ERR6@5");
    /* the length bounds the input: a cut string is unterminated */
    render("'abc'", 4, got, sizeof(got));
    CHECK_STREQ(got, "ERR1@0");
out:
    return;
}

static void test_keywords(void)
{
    CHECK_EQ(lex_keyword("select", 6), LEX_KW_SELECT);
    CHECK_EQ(lex_keyword("SeLeCt", 6), LEX_KW_SELECT);
    CHECK_EQ(lex_keyword("sql_calc_found_rows", 19), LEX_KW_SQL_CALC_FOUND_ROWS);
    CHECK_EQ(lex_keyword("selec", 5), LEX_KW_NONE);
    CHECK_EQ(lex_keyword("selectx", 7), LEX_KW_NONE);
    CHECK_EQ(lex_keyword("userid", 6), LEX_KW_NONE);
    CHECK_EQ(lex_keyword("a", 1), LEX_KW_NONE);
    CHECK_EQ(lex_keyword("", 0), LEX_KW_NONE);
    /* every keyword finds itself in either case (the hash table is
     * consistent with the keyword list) */
    CHECK(lex_kw_name(LEX_KW_NONE) == NULL);
    for (int kw = 1; kw < LEX_KW_COUNT_; kw++) {
        const char *name = lex_kw_name((enum lex_kw)kw);
        char lower[32];
        CHECK(name != NULL);
        CHECK_EQ(lex_keyword(name, strlen(name)), kw);
        size_t l = strlen(name);
        CHECK(l < sizeof(lower));
        for (size_t j = 0; j <= l; j++)
            lower[j] = (char)(name[j] >= 'A' && name[j] <= 'Z' ? name[j] + 32 : name[j]);
        CHECK_EQ(lex_keyword(lower, l), kw);
        lower[l - 1] = '#';
        CHECK_EQ(lex_keyword(lower, l), LEX_KW_NONE);
    }
    /* flags: exec and space */
    struct lex lx;
    struct lex_token t;
    lex_init(&lx, "a/*!b*/ c", 9);
    CHECK_EQ(lex_next(&lx, &t), 1);
    CHECK_EQ(t.flags & (LEX_F_EXEC | LEX_F_SPACE), 0);
    CHECK_EQ(lex_next(&lx, &t), 1);
    CHECK_EQ(t.flags & LEX_F_EXEC, LEX_F_EXEC);
    CHECK_EQ(lex_next(&lx, &t), 1);
    CHECK_EQ(t.flags & (LEX_F_EXEC | LEX_F_SPACE), LEX_F_SPACE);
    CHECK_EQ(lex_next(&lx, &t), 0);
    CHECK_EQ(t.type, LEX_END);
    CHECK_EQ(lex_next(&lx, &t), 0);
    /* errors are sticky */
    lex_init(&lx, "'x", 2);
    CHECK_EQ(lex_next(&lx, &t), -1);
    CHECK_EQ(lex_next(&lx, &t), -1);
    CHECK_EQ(t.op, LEX_ERR_STRING);
    CHECK(strlen(lex_err_str(LEX_ERR_STRING)) > 0);
out:
    return;
}

/* sql_mode PIPES_AS_CONCAT: || is MYSQL_CONCAT_SYM, everything else as before */
static void test_pipes_mode(void)
{
    struct lex lx;
    struct lex_token t;
    static const char sql[] = "a || b|c OR '||'";
    static const unsigned want_plain[] = {LEX_OP_OROR, '|'};
    static const unsigned want_pipes[] = {LEX_OP_CONCAT, '|'};
    for (int mode = 0; mode < 2; mode++) {
        const unsigned *want = mode ? want_pipes : want_plain;
        int n_ops = 0, n = 0;
        lex_init(&lx, sql, sizeof(sql) - 1);
        lex_set_modes(&lx, mode ? LEX_MODE_PIPES_AS_CONCAT : 0);
        while (lex_next(&lx, &t) > 0) {
            n++;
            if (t.type == LEX_OP) {
                CHECK(n_ops < 2);
                CHECK_EQ(t.op, want[n_ops]);
                n_ops++;
            }
        }
        CHECK_EQ(n, 7);   /* a || b | c OR '||' */
        CHECK_EQ(n_ops, 2);
    }
out:
    return;
}

int main(void)
{
    RUN(test_table);
    RUN(test_pipes_mode);
    RUN(test_server_tokens);
    RUN(test_nul);
    RUN(test_keywords);
    return check_exit();
}
