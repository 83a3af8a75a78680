/*
 * protocol/lex.c - MySQL/MariaDB lexer (see lex.h).
 *
 * Mirrors the server's lexical decisions where they matter for safety: what
 * ends a string, what is a comment, and that executable comments run. Where
 * the server's behaviour depends on its version or on sql_mode, we refuse
 * (LEX_ERROR) instead of guessing. Must never read past <len>.
 */
#include "protocol/lex.h"

#include <string.h>

struct lex_kwent {
    const char *s;
    uint8_t     len;
    uint16_t    kw;
};

/* The keywords, upper case; found through lex_kw_hash. */
static const struct lex_kwent lex_kwtab[] = {
    {"AS", 2, LEX_KW_AS},
    {"BY", 2, LEX_KW_BY},
    {"DO", 2, LEX_KW_DO},
    {"IN", 2, LEX_KW_IN},
    {"IS", 2, LEX_KW_IS},
    {"ON", 2, LEX_KW_ON},
    {"OR", 2, LEX_KW_OR},
    {"TO", 2, LEX_KW_TO},
    {"ALL", 3, LEX_KW_ALL},
    {"AND", 3, LEX_KW_AND},
    {"ANY", 3, LEX_KW_ANY},
    {"DIV", 3, LEX_KW_DIV},
    {"END", 3, LEX_KW_END},
    {"FOR", 3, LEX_KW_FOR},
    {"KEY", 3, LEX_KW_KEY},
    {"MOD", 3, LEX_KW_MOD},
    {"NOT", 3, LEX_KW_NOT},
    {"ROW", 3, LEX_KW_ROW},
    {"SET", 3, LEX_KW_SET},
    {"USE", 3, LEX_KW_USE},
    {"XOR", 3, LEX_KW_XOR},
    {"CASE", 4, LEX_KW_CASE},
    {"DESC", 4, LEX_KW_DESC},
    {"DUAL", 4, LEX_KW_DUAL},
    {"ELSE", 4, LEX_KW_ELSE},
    {"FROM", 4, LEX_KW_FROM},
    {"FULL", 4, LEX_KW_FULL},
    {"INTO", 4, LEX_KW_INTO},
    {"JOIN", 4, LEX_KW_JOIN},
    {"LEFT", 4, LEX_KW_LEFT},
    {"LIKE", 4, LEX_KW_LIKE},
    {"LOCK", 4, LEX_KW_LOCK},
    {"MODE", 4, LEX_KW_MODE},
    {"NULL", 4, LEX_KW_NULL},
    {"SHOW", 4, LEX_KW_SHOW},
    {"SOME", 4, LEX_KW_SOME},
    {"THEN", 4, LEX_KW_THEN},
    {"TRUE", 4, LEX_KW_TRUE},
    {"WHEN", 4, LEX_KW_WHEN},
    {"WITH", 4, LEX_KW_WITH},
    {"WORK", 4, LEX_KW_WORK},
    {"BEGIN", 5, LEX_KW_BEGIN},
    {"CROSS", 5, LEX_KW_CROSS},
    {"FALSE", 5, LEX_KW_FALSE},
    {"FORCE", 5, LEX_KW_FORCE},
    {"GROUP", 5, LEX_KW_GROUP},
    {"INDEX", 5, LEX_KW_INDEX},
    {"INNER", 5, LEX_KW_INNER},
    {"LIMIT", 5, LEX_KW_LIMIT},
    {"LOCAL", 5, LEX_KW_LOCAL},
    {"NAMES", 5, LEX_KW_NAMES},
    {"ORDER", 5, LEX_KW_ORDER},
    {"OUTER", 5, LEX_KW_OUTER},
    {"RIGHT", 5, LEX_KW_RIGHT},
    {"RLIKE", 5, LEX_KW_RLIKE},
    {"SHARE", 5, LEX_KW_SHARE},
    {"START", 5, LEX_KW_START},
    {"TABLE", 5, LEX_KW_TABLE},
    {"UNION", 5, LEX_KW_UNION},
    {"USING", 5, LEX_KW_USING},
    {"VALUE", 5, LEX_KW_VALUE},
    {"WHERE", 5, LEX_KW_WHERE},
    {"BINARY", 6, LEX_KW_BINARY},
    {"COMMIT", 6, LEX_KW_COMMIT},
    {"DELETE", 6, LEX_KW_DELETE},
    {"ESCAPE", 6, LEX_KW_ESCAPE},
    {"EXCEPT", 6, LEX_KW_EXCEPT},
    {"EXISTS", 6, LEX_KW_EXISTS},
    {"GLOBAL", 6, LEX_KW_GLOBAL},
    {"HAVING", 6, LEX_KW_HAVING},
    {"IGNORE", 6, LEX_KW_IGNORE},
    {"INSERT", 6, LEX_KW_INSERT},
    {"MEMBER", 6, LEX_KW_MEMBER},
    {"OFFSET", 6, LEX_KW_OFFSET},
    {"REGEXP", 6, LEX_KW_REGEXP},
    {"SELECT", 6, LEX_KW_SELECT},
    {"SOUNDS", 6, LEX_KW_SOUNDS},
    {"UPDATE", 6, LEX_KW_UPDATE},
    {"VALUES", 6, LEX_KW_VALUES},
    {"WINDOW", 6, LEX_KW_WINDOW},
    {"BETWEEN", 7, LEX_KW_BETWEEN},
    {"CHARSET", 7, LEX_KW_CHARSET},
    {"COLLATE", 7, LEX_KW_COLLATE},
    {"DEFAULT", 7, LEX_KW_DEFAULT},
    {"EXPLAIN", 7, LEX_KW_EXPLAIN},
    {"LATERAL", 7, LEX_KW_LATERAL},
    {"NATURAL", 7, LEX_KW_NATURAL},
    {"OUTFILE", 7, LEX_KW_OUTFILE},
    {"PERSIST", 7, LEX_KW_PERSIST},
    {"RELEASE", 7, LEX_KW_RELEASE},
    {"REPLACE", 7, LEX_KW_REPLACE},
    {"SESSION", 7, LEX_KW_SESSION},
    {"DESCRIBE", 8, LEX_KW_DESCRIBE},
    {"DISTINCT", 8, LEX_KW_DISTINCT},
    {"DUMPFILE", 8, LEX_KW_DUMPFILE},
    {"INTERVAL", 8, LEX_KW_INTERVAL},
    {"ROLLBACK", 8, LEX_KW_ROLLBACK},
    {"CHARACTER", 9, LEX_KW_CHARACTER},
    {"DUPLICATE", 9, LEX_KW_DUPLICATE},
    {"INTERSECT", 9, LEX_KW_INTERSECT},
    {"PARTITION", 9, LEX_KW_PARTITION},
    {"PROCEDURE", 9, LEX_KW_PROCEDURE},
    {"RECURSIVE", 9, LEX_KW_RECURSIVE},
    {"RETURNING", 9, LEX_KW_RETURNING},
    {"SAVEPOINT", 9, LEX_KW_SAVEPOINT},
    {"JSON_TABLE", 10, LEX_KW_JSON_TABLE},
    {"TRANSACTION", 11, LEX_KW_TRANSACTION},
    {"PERSIST_ONLY", 12, LEX_KW_PERSIST_ONLY},
    {"STRAIGHT_JOIN", 13, LEX_KW_STRAIGHT_JOIN},
    {"SQL_CALC_FOUND_ROWS", 19, LEX_KW_SQL_CALC_FOUND_ROWS},
};

#define LEX_KW_MAXLEN 19
/* Open-addressing hash of lex_kwtab (index + 1; 0 = empty), generated
 * with LEX_KW_HASH below; regenerate both when the keyword list changes
 * (test_lex checks every keyword is found). */
#define LEX_KW_HASH(s, n, up0, up1, uplast) \
    ((unsigned)((n) * 7 + (up0) * 31 + (up1) * 17 + (uplast)) & 255u)
static const uint8_t lex_kw_hash[256] = {
      0,   0,  86,   0,  42,  43, 106, 103,   0, 104,  78,  19,   0,   0,   0,   0,
      0,   0,  81,   0,   0,   0,   0,   0,  15,  57,  17,   6,  69,   0,   0,   0,
     14,  45,  76,  61,  92,   0,   0,   0,  20,   0,   0,   0,   0,   0,   0,  41,
     23,   0,   0,  44,   0,   0,   0,   0,  60,  30,  51,  79, 107,  56,  54,   0,
     65,  87,   0,   0,   0,   0, 110,   0,  35,  24, 109,   0,   9,  66,   2,  21,
     93,   0,   0,   0,   0,  26,  84,   0,   0,   0,  63,   0,   0,   0,  37,  95,
      0,   4,  55,   7,  73,  99,  10,   0,   0,   0,  82,   0,   0,   0,  31,   0,
     28,   0,   0,   0,   0,   0,  98,   0,  52,   0,  48,  11,  70,   0,  46,  34,
     12,  47,   0,  72,  49,   0,   0,  27,   0,  96,   0,   0,   0,   0, 101,   0,
      0,   0,   0,   0,   0,   0,   0,   0, 100,  18,   0,   0,   0,   0,   0,  29,
      0,  94,   0,   0,   0,   0, 102,   0,   0,   0,   0,  53,  88,  36,   0,   0,
     68,  67,  85,  97,   0,  74,   0,   0,   0,  62,   0,   5,  39,   0,   0,   0,
      0,   0,   0,   1,   0,   0,  40,   0,   8,  25,  77,  89,   0,   0,   0,  22,
      0,   0,  83,   0,   0,   0,   0,   0,   3,   0,  32,  64,   0,   0,   0,   0,
      0,   0,  13,  50,  80,  58,   0,   0,   0,   0,  59,  16,   0,   0,   0,   0,
      0, 105, 108,  33,   0,   0,   0,   0,   0,  90,  91,   0,   0,  71,  75,  38,
};

/* Byte classes, one lookup instead of a chain of comparisons. */
#define LEX_C_IDENT  1      /* may appear in an unquoted identifier */
#define LEX_C_DIGIT  2
#define LEX_C_SPACE  4      /* what the server's ctype calls space */
#define LEX_C_SKIP   8      /* may start whitespace or a comment */
#define LEX_C_HEX    16
#define LEX_C_HIGH   32     /* a byte >= 0x80 (part of a UTF-8 character) */
#define LEX_C_AIDENT 64     /* an ASCII identifier byte (the hot loop's test) */
static const uint8_t lex_class[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0, 12, 12, 12, 12, 12,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    12,  0,  0,  8, 65,  0,  0,  0,  0,  0,  8,  0,  0,  8,  0,  8,
    83, 83, 83, 83, 83, 83, 83, 83, 83, 83,  0,  0,  0,  0,  0,  0,
     0, 81, 81, 81, 81, 81, 81, 65, 65, 65, 65, 65, 65, 65, 65, 65,
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65,  0,  0,  0,  0, 65,
     0, 81, 81, 81, 81, 81, 81, 65, 65, 65, 65, 65, 65, 65, 65, 65,
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65,  0,  0,  0,  0,  0,
    33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33,
    33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33,
    33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33,
    33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33,
    33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33,
    33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33,
    33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33,
    33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33,
};

static inline unsigned char lex_up(unsigned char c)
{
    return (c >= 'a' && c <= 'z') ? (unsigned char)(c - 32) : c;
}

enum lex_kw lex_keyword(const char *s, size_t len)
{
    if (len < 2 || len > LEX_KW_MAXLEN)
        return LEX_KW_NONE;
    unsigned char u0 = lex_up((unsigned char)s[0]), u1 = lex_up((unsigned char)s[1]);
    unsigned char ul = lex_up((unsigned char)s[len - 1]);
    for (unsigned h = LEX_KW_HASH(s, len, u0, u1, ul); lex_kw_hash[h]; h = (h + 1) & 255u) {
        const struct lex_kwent *e = &lex_kwtab[lex_kw_hash[h] - 1];
        if (e->len != len || (unsigned char)e->s[0] != u0 || (unsigned char)e->s[1] != u1)
            continue;
        size_t j = 2;
        while (j < len && lex_up((unsigned char)s[j]) == (unsigned char)e->s[j])
            j++;
        if (j == len)
            return (enum lex_kw)e->kw;
    }
    return LEX_KW_NONE;
}

const char *lex_kw_name(enum lex_kw kw)
{
    for (size_t i = 0; i < sizeof(lex_kwtab) / sizeof(lex_kwtab[0]); i++)
        if (lex_kwtab[i].kw == kw)
            return lex_kwtab[i].s;
    return NULL;
}

const char *lex_err_str(enum lex_err err)
{
    switch (err) {
    case LEX_ERR_NONE:         return "no error";
    case LEX_ERR_STRING:       return "unterminated quoted string";
    case LEX_ERR_IDENT:        return "unterminated `quoted identifier`";
    case LEX_ERR_COMMENT:      return "unterminated comment";
    case LEX_ERR_EXEC_VERSION: return "executable comment with a version the backend may skip";
    case LEX_ERR_EXEC_NESTED:  return "comment inside an executable comment";
    case LEX_ERR_NUL:          return "NUL byte outside a string";
    case LEX_ERR_HEX:          return "malformed hex or bit literal";
    case LEX_ERR_TOKEN:        return "token read differently by the server";
    }
    return "unknown error";
}

/* The character sets of MariaDB 10.11 (SHOW CHARACTER SET, plus the
 * utf8 alias and the internal filename set): "_name" before a string is
 * an introducer (scan_ident_middle: get_charset_by_csname). Any other
 * _word is an identifier to the server. */
static int lex_charset_name(const char *s, size_t len)
{
    static const char *const cs[] = {
        "armscii8", "ascii", "big5", "binary", "cp1250", "cp1251", "cp1256", "cp1257",
        "cp850", "cp852", "cp866", "cp932", "dec8", "eucjpms", "euckr", "gb2312", "gbk",
        "geostd8", "greek", "hebrew", "hp8", "keybcs2", "koi8r", "koi8u", "latin1",
        "latin2", "latin5", "latin7", "macce", "macroman", "sjis", "swe7", "tis620",
        "ucs2", "ujis", "utf16", "utf16le", "utf32", "utf8", "utf8mb3", "utf8mb4",
        "filename",
    };
    for (size_t k = 0; k < sizeof(cs) / sizeof(cs[0]); k++) {
        size_t l = strlen(cs[k]), j = 0;
        if (l != len)
            continue;
        while (j < l && (s[j] | 0x20) == cs[k][j])
            j++;
        if (j == l)
            return 1;
    }
    return 0;
}

void lex_init(struct lex *lx, const char *buf, size_t len)
{
    memset(lx, 0, sizeof(*lx));
    lx->buf = buf;
    lx->len = len;
    lx->prev_type = LEX_END;
}

void lex_set_modes(struct lex *lx, unsigned modes)
{
    lx->pipes_concat = (modes & LEX_MODE_PIPES_AS_CONCAT) != 0;
}

static inline int lex_is_digit(unsigned char c)
{
    return lex_class[c] & LEX_C_DIGIT;
}

static inline int lex_is_hex(unsigned char c)
{
    return lex_class[c] & LEX_C_HEX;
}

static inline int lex_is_ident(unsigned char c)
{
    return lex_class[c] & LEX_C_IDENT;
}

static int lex_fail(struct lex *lx, struct lex_token *tok, enum lex_err err, size_t off)
{
    if (!lx->failed) {
        lx->failed = 1;
        lx->err = (uint16_t)err;
        lx->err_off = off;
    }
    tok->type = LEX_ERROR;
    tok->op = lx->err;
    tok->off = (uint32_t)lx->err_off;
    tok->len = 0;
    tok->flags = 0;
    return -1;
}

/* Returns the offset just past the quote closing the string or identifier
 * opened by the quote <q> at <start>, or 0 when it is not closed. Backslash
 * escapes a byte in strings, not in `identifiers`; a doubled quote stands
 * for itself in both. */
static size_t lex_scan_quoted(const struct lex *lx, size_t start, char q)
{
    size_t p = start + 1;
    while (p < lx->len) {
        char c = lx->buf[p];
        if (c == '\\' && q != '`') {
            p += 2;
            continue;
        }
        if (c == q) {
            if (p + 1 < lx->len && lx->buf[p + 1] == q) {
                p += 2;
                continue;
            }
            return p + 1;
        }
        p++;
    }
    return 0;
}

/* Skips whitespace and comments, entering and leaving executable comments.
 * Returns 1 when something was skipped, 0 when nothing was, -1 on error
 * (already reported through lex_fail into <tok>). */
static int lex_skip(struct lex *lx, struct lex_token *tok)
{
    const char *b = lx->buf;
    size_t n = lx->len;
    int skipped = 0;

    while (lx->pos < n) {
        size_t p = lx->pos;
        unsigned char c = (unsigned char)b[p];
        if (!(lex_class[c] & LEX_C_SKIP))
            break;
        if (lex_class[c] & LEX_C_SPACE) {
            lx->pos++;
            skipped = 1;
            continue;
        }
        /* "--" starts a comment before a space or control character
         * (0x7f too) or at the end, as the server's ctype says; in latin1
         * 0xa0 would also count, so that byte is refused there */
        if (c == '-' && p + 2 < n && b[p + 1] == '-' && (unsigned char)b[p + 2] == 0xa0)
            return lex_fail(lx, tok, LEX_ERR_NUL, p + 2);
        if (c == '#' || (c == '-' && p + 1 < n && b[p + 1] == '-' &&
                         (p + 2 == n || (unsigned char)b[p + 2] <= ' ' ||
                          (unsigned char)b[p + 2] == 0x7f))) {
            /* The server would let such a comment run past the closing
             * star-slash of an executable comment; refuse the ambiguity. */
            if (lx->in_exec)
                return lex_fail(lx, tok, LEX_ERR_EXEC_NESTED, p);
            while (p < n && b[p] != '\n') {
                if (b[p] == '\0')
                    return lex_fail(lx, tok, LEX_ERR_NUL, p);
                p++;
            }
            lx->pos = p;
            skipped = 1;
            continue;
        }
        if (c == '/' && p + 1 < n && b[p + 1] == '*') {
            if (lx->in_exec)
                return lex_fail(lx, tok, LEX_ERR_EXEC_NESTED, p);
            size_t q = p + 2;
            int exec = 0;
            if (q < n && b[q] == '!') {
                exec = 1;
                q++;
            } else if (q + 1 < n && b[q] == 'M' && b[q + 1] == '!') {
                exec = 2;       /* MariaDB-only executable comment */
                q += 2;
            }
            if (exec) {
                size_t d = q;
                unsigned long version = 0;
                while (d < n && lex_is_digit((unsigned char)b[d]) && d - q < 8) {
                    version = version * 10 + (unsigned long)(b[d] - '0');
                    d++;
                }
                size_t ndig = d - q;
                /* As sql_lex.cc (lex_one_token, MY_LEX_LONG_COMMENT) reads
                 * them: a version is exactly 5 digits plus an optional 6th,
                 * taken by value (leading zeros count for nothing); the
                 * comment runs when version <= MYSQL_VERSION_ID and the
                 * version is not a MySQL 5.7+ one (50700-99999) unless
                 * written with M!. So version 050700 is skipped like 50700.
                 * With 1-4 digits there is no version (the digits are SQL),
                 * with 7+ the 7th digit is SQL: both refused as ambiguous,
                 * and so is whatever some backend might skip. */
                int ok = ndig == 0 ||
                         ((ndig == 5 || ndig == 6) && version <= LEX_EXEC_VERSION_MAX &&
                          (version < 50700 || version > 99999 || exec == 2));
                if (!ok)
                    return lex_fail(lx, tok, LEX_ERR_EXEC_VERSION, p);
                lx->in_exec = 1;
                lx->exec_off = p;
                lx->pos = d;
                skipped = 1;
                continue;
            }
            /* Ordinary comment, including optimizer hints (MariaDB ignores
             * them as comments). */
            while (q + 1 < n && !(b[q] == '*' && b[q + 1] == '/')) {
                if (b[q] == '\0')
                    return lex_fail(lx, tok, LEX_ERR_NUL, q);
                q++;
            }
            if (q + 1 >= n)
                return lex_fail(lx, tok, LEX_ERR_COMMENT, p);
            lx->pos = q + 2;
            skipped = 1;
            continue;
        }
        if (lx->in_exec && c == '*' && p + 1 < n && b[p + 1] == '/') {
            lx->in_exec = 0;
            lx->pos = p + 2;
            skipped = 1;
            continue;
        }
        break;
    }
    return skipped;
}

/* The end of the identifier bytes from <p>; sets <*hi> when one of them
 * is not ASCII (the ASCII loop is the hot one). */
static size_t lex_ident_end(const struct lex *lx, size_t p, unsigned *hi)
{
    const unsigned char *b = (const unsigned char *)lx->buf;
    size_t n = lx->len;
    while (p < n && (lex_class[b[p]] & LEX_C_AIDENT))
        p++;
    if (p < n && (lex_class[b[p]] & LEX_C_HIGH)) {
        *hi = 0x80;
        while (p < n && (lex_class[b[p]] & LEX_C_IDENT))
            p++;
    }
    return p;
}

/* Whether <s>/<n> is well-formed UTF-8 (utf8mb4: no overlong forms, no
 * surrogates, nothing above U+10FFFF). The server's scan_ident_*() end a
 * word at the first byte my_charlen() rejects and return that byte as a
 * token of its own, so a word with one is refused rather than read. */
static int lex_utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return 0;
        }
        if (i + len > n || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return 0;
        i += len;
    }
    return 1;
}

int lex_next(struct lex *lx, struct lex_token *tok)
{
    if (lx->failed)
        return lex_fail(lx, tok, (enum lex_err)lx->err, lx->err_off);

    int sk = lex_skip(lx, tok);
    if (sk < 0)
        return -1;

    const char *b = lx->buf;
    size_t n = lx->len;
    size_t p = lx->pos;

    tok->off = (uint32_t)p;
    tok->flags = (uint8_t)((sk ? LEX_F_SPACE : 0) | (lx->in_exec ? LEX_F_EXEC : 0));
    tok->op = 0;

    if (p >= n) {
        if (lx->in_exec)
            return lex_fail(lx, tok, LEX_ERR_COMMENT, lx->exec_off);
        tok->type = LEX_END;
        tok->len = 0;
        lx->prev_type = LEX_END;
        return 0;
    }

    unsigned char c = (unsigned char)b[p];
    unsigned char c1 = p + 1 < n ? (unsigned char)b[p + 1] : 0;
    size_t e;
    enum lex_type type;
    unsigned hi = 0;          /* OR of a bare word's bytes: 0x80 set if non-ASCII */

    if (c == '\0')
        return lex_fail(lx, tok, LEX_ERR_NUL, p);

    /* A word right after a qualifying dot is an identifier even when it
     * starts with a digit (t.1e5 is column "1e5" of t). */
    if (lx->prev_type == LEX_OP && lx->prev_op == '.' && !(tok->flags & LEX_F_SPACE) &&
        lex_is_ident(c)) {
        e = lex_ident_end(lx, p, &hi);
        type = LEX_IDENT;
        goto done;
    }

    if ((c == 'x' || c == 'X' || c == 'b' || c == 'B') && c1 == '\'') {
        int hex = (c == 'x' || c == 'X');
        size_t q = p + 2;
        while (q < n && b[q] != '\'') {
            unsigned char d = (unsigned char)b[q];
            if (hex ? !lex_is_hex(d) : (d != '0' && d != '1'))
                return lex_fail(lx, tok, LEX_ERR_HEX, p);
            q++;
        }
        if (q >= n)
            return lex_fail(lx, tok, LEX_ERR_STRING, p);
        if (hex && (q - (p + 2)) % 2)
            return lex_fail(lx, tok, LEX_ERR_HEX, p);
        e = q + 1;
        type = hex ? LEX_HEX : LEX_BIT;
        goto done;
    }
    if ((c == 'n' || c == 'N') && c1 == '\'') {
        e = lex_scan_quoted(lx, p + 1, '\'');
        if (!e)
            return lex_fail(lx, tok, LEX_ERR_STRING, p);
        tok->flags |= LEX_F_NATIONAL;
        type = LEX_STRING;
        goto done;
    }
    /* '.' and a digit start a number (MY_LEX_REAL_OR_POINT) unless the dot
     * comes right after a bare word: then sql_lex.cc has already chosen
     * MY_LEX_IDENT_SEP, and the digits start an identifier (t.5 is column
     * "5" of t, but `t`.5 and t .5 are t followed by the number .5). */
    if (lex_is_digit(c) || (c == '.' && lex_is_digit(c1) &&
                            !(lx->prev_type == LEX_IDENT && lx->prev_end == p))) {
        size_t q = p;
        if (c == '0' && (c1 == 'x' || c1 == 'b')) {
            int hex = c1 == 'x';
            q = p + 2;
            while (q < n && (hex ? lex_is_hex((unsigned char)b[q]) : (b[q] == '0' || b[q] == '1')))
                q++;
            if (q > p + 2 && (q == n || !lex_is_ident((unsigned char)b[q]))) {
                e = q;
                type = hex ? LEX_HEX : LEX_BIT;
                goto done;
            }
            /* 0x, 0xg, 0b2: an identifier, as the server reads it */
            e = lex_ident_end(lx, p, &hi);
            type = LEX_IDENT;
            goto done;
        }
        q = p;
        while (q < n && lex_is_digit((unsigned char)b[q]))
            q++;
        type = LEX_INTEGER;
        /* 1..2: the integer 1, then "..", which only stored programs use */
        if (q < n && b[q] == '.' && !(q + 1 < n && b[q + 1] == '.')) {
            type = LEX_DECIMAL;
            q++;
            while (q < n && lex_is_digit((unsigned char)b[q]))
                q++;
        }
        if (q < n && (b[q] == 'e' || b[q] == 'E')) {
            size_t r = q + 1;
            if (r < n && (b[r] == '+' || b[r] == '-'))
                r++;
            if (r < n && lex_is_digit((unsigned char)b[r])) {
                while (r < n && lex_is_digit((unsigned char)b[r]))
                    r++;
                q = r;
                type = LEX_DECIMAL;
            } else if (type == LEX_DECIMAL) {
                /* 1.5e, 1.5e+x: the server returns a one-byte token
                 * (MY_LEX_REAL -> MY_LEX_CHAR); refuse */
                return lex_fail(lx, tok, LEX_ERR_TOKEN, p);
            }
        }
        if (type == LEX_INTEGER && q < n && lex_is_ident((unsigned char)b[q])) {
            /* 1abc, 1e, 12e5x: the server reads a word */
            e = lex_ident_end(lx, p, &hi);
            type = LEX_IDENT;
            goto done;
        }
        /* A float ends after its exponent's digits even before a letter:
         * the server reads 1e1OR 1 as 1e1 OR 1 (found by probing MariaDB:
         * reading it as one word hid an OR from the analyzer). */
        e = q;
        goto done;
    }
    if (lex_is_ident(c)) {
        e = lex_ident_end(lx, p, &hi);
        type = LEX_IDENT;
        goto done;
    }

    switch (c) {
    case '\'':
    case '"':
        e = lex_scan_quoted(lx, p, (char)c);
        if (!e)
            return lex_fail(lx, tok, LEX_ERR_STRING, p);
        if (c == '"')
            tok->flags |= LEX_F_DQUOTE;
        type = LEX_STRING;
        goto done;
    case '`':
        e = lex_scan_quoted(lx, p, '`');
        if (!e)
            return lex_fail(lx, tok, LEX_ERR_IDENT, p);
        type = LEX_QIDENT;
        goto done;
    case '?':
        /* MY_LEX_PLACEHOLDER: before an identifier byte it is no marker */
        if (p + 1 < n && lex_is_ident(c1))
            return lex_fail(lx, tok, LEX_ERR_TOKEN, p);
        e = p + 1;
        type = LEX_PARAM;
        goto done;
    case '.':
        if (c1 == '.')       /* DOT_DOT_SYM (FOR i IN 1..10 in stored programs) */
            return lex_fail(lx, tok, LEX_ERR_TOKEN, p);
        break;
    case '@':
        if (c1 == '@') {
            size_t q = p + 2;
            for (int part = 0; part < 2; part++) {
                if (q < n && b[q] == '`') {
                    size_t r = lex_scan_quoted(lx, q, '`');
                    if (!r)
                        return lex_fail(lx, tok, LEX_ERR_IDENT, q);
                    q = r;
                } else {
                    q = lex_ident_end(lx, q, &hi);
                }
                if (part == 0 && q + 1 < n && b[q] == '.' &&
                    (lex_is_ident((unsigned char)b[q + 1]) || b[q + 1] == '`'))
                    q++;
                else
                    break;
            }
            /* scan_ident_sysvar: an empty name is ABORT_SYM */
            if (q == p + 2)
                return lex_fail(lx, tok, LEX_ERR_TOKEN, p);
            e = q;
            type = LEX_SYSVAR;
            goto done;
        }
        if (c1 == '\'' || c1 == '"' || c1 == '`') {
            e = lex_scan_quoted(lx, p + 1, (char)c1);
            if (!e)
                return lex_fail(lx, tok, c1 == '`' ? LEX_ERR_IDENT : LEX_ERR_STRING, p + 1);
            type = LEX_USERVAR;
            goto done;
        }
        if (p + 1 < n && (lex_is_ident(c1) || c1 == '.')) {
            e = p + 1;
            while (e < n && (lex_is_ident((unsigned char)b[e]) || b[e] == '.')) {
                /* the server scans @name with my_isalnum (MY_LEX_HOSTNAME),
                 * which need not agree with us on non-ASCII bytes */
                if ((unsigned char)b[e] >= 0x80)
                    return lex_fail(lx, tok, LEX_ERR_TOKEN, e);
                e++;
            }
            type = LEX_USERVAR;
            goto done;
        }
        break;
    case '<':
        if (c1 == '=' && p + 2 < n && b[p + 2] == '>') {
            tok->op = LEX_OP_NSEQ;
            e = p + 3;
        } else if (c1 == '=') {
            tok->op = LEX_OP_LE;
            e = p + 2;
        } else if (c1 == '>') {
            tok->op = LEX_OP_NE;
            e = p + 2;
        } else if (c1 == '<') {
            tok->op = LEX_OP_SHL;
            e = p + 2;
        } else {
            break;
        }
        type = LEX_OP;
        goto done;
    case '>':
        if (c1 == '=')
            tok->op = LEX_OP_GE;
        else if (c1 == '>')
            tok->op = LEX_OP_SHR;
        else
            break;
        e = p + 2;
        type = LEX_OP;
        goto done;
    case '!':
        if (c1 != '=')
            break;
        tok->op = LEX_OP_NE;
        e = p + 2;
        type = LEX_OP;
        goto done;
    case ':':
        if (c1 != '=')
            break;
        tok->op = LEX_OP_ASSIGN;
        e = p + 2;
        type = LEX_OP;
        goto done;
    case '|':
        if (c1 != '|')
            break;
        /* sql_lex.cc: OR_OR_SYM, or MYSQL_CONCAT_SYM under PIPES_AS_CONCAT */
        tok->op = lx->pipes_concat ? LEX_OP_CONCAT : LEX_OP_OROR;
        e = p + 2;
        type = LEX_OP;
        goto done;
    case '&':
        if (c1 != '&')
            break;
        tok->op = LEX_OP_ANDAND;
        e = p + 2;
        type = LEX_OP;
        goto done;
    case '-':
        if (c1 != '>')
            break;
        if (p + 2 < n && b[p + 2] == '>') {
            tok->op = LEX_OP_ARROW2;
            e = p + 3;
        } else {
            tok->op = LEX_OP_ARROW;
            e = p + 2;
        }
        type = LEX_OP;
        goto done;
    default:
        break;
    }
    /* any other byte: a one-character operator or punctuation */
    tok->op = c;
    e = p + 1;
    type = LEX_OP;

done:
    tok->type = (uint8_t)type;
    tok->len = (uint32_t)(e - p);
    if (type == LEX_IDENT) {
        if ((hi & 0x80) && !lex_utf8_ok((const unsigned char *)b + p, e - p))
            return lex_fail(lx, tok, LEX_ERR_TOKEN, p);
        /* sql_lex.cc: a word right after a '.' is read in MY_LEX_IDENT_START
         * and a word right before '.' and an identifier byte goes to
         * MY_LEX_IDENT_SEP; neither looks the word up as a keyword (or as a
         * charset introducer): t.where, where.t and OR.5 are identifiers */
        if ((lx->prev_type == LEX_OP && lx->prev_op == '.' && lx->prev_end == p) ||
            (e + 1 < n && b[e] == '.' && lex_is_ident((unsigned char)b[e + 1]))) {
            tok->flags |= LEX_F_QUALIFIED;
            tok->op = LEX_KW_NONE;
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
            tok->op = (uint16_t)lex_keyword(b + p, e - p);   /* keywords start with a letter */
        } else {
            tok->op = LEX_KW_NONE;
            if (c == '_' && lex_charset_name(b + p + 1, e - p - 1))
                tok->flags |= LEX_F_INTRO;
        }
    }
    lx->pos = e;
    lx->prev_end = e;
    lx->prev_type = (uint8_t)type;
    lx->prev_op = tok->op;
    return 1;
}
