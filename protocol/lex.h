/*
 * protocol/lex.h - MySQL/MariaDB lexer.
 *
 * Splits statement text into tokens by the server's lexical rules so that the
 * analyzer sees what the server will parse: quoted strings (backslash escapes
 * and doubled quotes), backtick identifiers, the three comment forms,
 * executable comments (whose content is lexed as SQL, never skipped), hex,
 * bit and national literals, numbers, multi-character operators, '?' and
 * @variables. Tokens are offsets into the caller's buffer, never pointers.
 * Nothing here allocates, blocks or logs.
 *
 * Assumed server: MariaDB >= 10.11 with a sql_mode without ANSI_QUOTES and
 * NO_BACKSLASH_ESCAPES (the analyzer rejects SETs that would turn them on);
 * PIPES_AS_CONCAT is followed when the caller says so (lex_set_modes()).
 */
#ifndef SHARDWIRE_PROTOCOL_LEX_H
#define SHARDWIRE_PROTOCOL_LEX_H

#include <stddef.h>
#include <stdint.h>

/* Versioned executable comments up to this server version (10.11.0) are
 * lexed as SQL; a newer version might be skipped by the backend, so it is an
 * error rather than a guess. */
#define LEX_EXEC_VERSION_MAX 101100

enum lex_type {
    LEX_END,        /* end of input: off = len, len = 0 */
    LEX_IDENT,      /* bare word: keyword (<kw> != LEX_KW_NONE) or identifier */
    LEX_QIDENT,     /* `quoted identifier`, backticks included */
    LEX_STRING,     /* '...' or "..." (LEX_F_DQUOTE), N'...' (LEX_F_NATIONAL) */
    LEX_INTEGER,    /* 123 (digits only) */
    LEX_DECIMAL,    /* 1.5, .5, 1e3, 1.5E-3 */
    LEX_HEX,        /* X'0A' or 0x0a */
    LEX_BIT,        /* B'01' or 0b01 */
    LEX_PARAM,      /* ? */
    LEX_USERVAR,    /* @name, @'name', @`name` */
    LEX_SYSVAR,     /* @@name, @@scope.name */
    LEX_OP,         /* operator or punctuation, see <op> */
    LEX_ERROR,      /* lexical error at <off>: see <err> */
};

/* Multi-character operators; a single-character one is its ASCII code. */
enum lex_op {
    LEX_OP_NSEQ = 256,  /* <=> */
    LEX_OP_NE,          /* <> or != */
    LEX_OP_LE,          /* <= */
    LEX_OP_GE,          /* >= */
    LEX_OP_ASSIGN,      /* := */
    LEX_OP_OROR,        /* || */
    LEX_OP_ANDAND,      /* && */
    LEX_OP_SHL,         /* << */
    LEX_OP_SHR,         /* >> */
    LEX_OP_ARROW,       /* -> */
    LEX_OP_ARROW2,      /* ->> */
    LEX_OP_CONCAT,      /* || under sql_mode PIPES_AS_CONCAT (MYSQL_CONCAT_SYM) */
};

/* sql_mode bits the lexer follows (lex_set_modes()). */
#define LEX_MODE_PIPES_AS_CONCAT 0x1u  /* || is concatenation, not OR */

enum lex_err {
    LEX_ERR_NONE,
    LEX_ERR_STRING,       /* unterminated quoted string */
    LEX_ERR_IDENT,        /* unterminated `identifier` */
    LEX_ERR_COMMENT,      /* unterminated comment */
    LEX_ERR_EXEC_VERSION, /* executable comment whose version may be skipped */
    LEX_ERR_EXEC_NESTED,  /* a comment inside an executable comment */
    LEX_ERR_NUL,          /* NUL byte outside a string, or "--" before 0xa0 */
    LEX_ERR_HEX,          /* malformed X'..' or B'..' literal */
    LEX_ERR_TOKEN,        /* a token the server reads in a way we do not
                             mirror: "..", 1.5e without exponent digits,
                             a non-ASCII byte in an unquoted @variable */
};

/* Keywords the analyzer acts on; every other word is LEX_KW_NONE. */
enum lex_kw {
    LEX_KW_NONE,
    LEX_KW_AS,
    LEX_KW_BY,
    LEX_KW_DO,
    LEX_KW_IN,
    LEX_KW_IS,
    LEX_KW_ON,
    LEX_KW_OR,
    LEX_KW_TO,
    LEX_KW_ALL,
    LEX_KW_AND,
    LEX_KW_ANY,
    LEX_KW_DIV,
    LEX_KW_END,
    LEX_KW_FOR,
    LEX_KW_KEY,
    LEX_KW_MOD,
    LEX_KW_NOT,
    LEX_KW_ROW,
    LEX_KW_SET,
    LEX_KW_USE,
    LEX_KW_XOR,
    LEX_KW_CASE,
    LEX_KW_DESC,
    LEX_KW_DUAL,
    LEX_KW_ELSE,
    LEX_KW_FROM,
    LEX_KW_FULL,
    LEX_KW_INTO,
    LEX_KW_JOIN,
    LEX_KW_LEFT,
    LEX_KW_LIKE,
    LEX_KW_LOCK,
    LEX_KW_MODE,
    LEX_KW_NULL,
    LEX_KW_SHOW,
    LEX_KW_SOME,
    LEX_KW_THEN,
    LEX_KW_TRUE,
    LEX_KW_WHEN,
    LEX_KW_WITH,
    LEX_KW_WORK,
    LEX_KW_BEGIN,
    LEX_KW_CROSS,
    LEX_KW_FALSE,
    LEX_KW_FORCE,
    LEX_KW_GROUP,
    LEX_KW_INDEX,
    LEX_KW_INNER,
    LEX_KW_LIMIT,
    LEX_KW_LOCAL,
    LEX_KW_NAMES,
    LEX_KW_ORDER,
    LEX_KW_OUTER,
    LEX_KW_RIGHT,
    LEX_KW_RLIKE,
    LEX_KW_SHARE,
    LEX_KW_START,
    LEX_KW_TABLE,
    LEX_KW_UNION,
    LEX_KW_USING,
    LEX_KW_VALUE,
    LEX_KW_WHERE,
    LEX_KW_BINARY,
    LEX_KW_COMMIT,
    LEX_KW_DELETE,
    LEX_KW_ESCAPE,
    LEX_KW_EXCEPT,
    LEX_KW_EXISTS,
    LEX_KW_GLOBAL,
    LEX_KW_HAVING,
    LEX_KW_IGNORE,
    LEX_KW_INSERT,
    LEX_KW_MEMBER,
    LEX_KW_OFFSET,
    LEX_KW_REGEXP,
    LEX_KW_SELECT,
    LEX_KW_SOUNDS,
    LEX_KW_UPDATE,
    LEX_KW_VALUES,
    LEX_KW_WINDOW,
    LEX_KW_BETWEEN,
    LEX_KW_CHARSET,
    LEX_KW_COLLATE,
    LEX_KW_DEFAULT,
    LEX_KW_EXPLAIN,
    LEX_KW_LATERAL,
    LEX_KW_NATURAL,
    LEX_KW_OUTFILE,
    LEX_KW_PERSIST,
    LEX_KW_RELEASE,
    LEX_KW_REPLACE,
    LEX_KW_SESSION,
    LEX_KW_DESCRIBE,
    LEX_KW_DISTINCT,
    LEX_KW_DUMPFILE,
    LEX_KW_INTERVAL,
    LEX_KW_ROLLBACK,
    LEX_KW_CHARACTER,
    LEX_KW_DUPLICATE,
    LEX_KW_INTERSECT,
    LEX_KW_PARTITION,
    LEX_KW_PROCEDURE,
    LEX_KW_RECURSIVE,
    LEX_KW_RETURNING,
    LEX_KW_SAVEPOINT,
    LEX_KW_JSON_TABLE,
    LEX_KW_TRANSACTION,
    LEX_KW_PERSIST_ONLY,
    LEX_KW_STRAIGHT_JOIN,
    LEX_KW_SQL_CALC_FOUND_ROWS,
    LEX_KW_COUNT_,
};

#define LEX_F_DQUOTE    0x01  /* STRING: "double-quoted" */
#define LEX_F_NATIONAL  0x02  /* STRING: N'...' */
#define LEX_F_EXEC      0x04  /* token came from inside an executable comment */
#define LEX_F_SPACE     0x08  /* whitespace or a comment precedes the token */
#define LEX_F_INTRO     0x10  /* IDENT: a _charset introducer (UNDERSCORE_CHARSET):
                                 '_' and the name of a MariaDB character set */
#define LEX_F_QUALIFIED 0x20  /* IDENT: written right after a '.', or right
                                 before '.' and an identifier character: never
                                 a keyword (<op> is LEX_KW_NONE) */

struct lex_token {
    uint32_t off;       /* first byte, prefix (N, X, @) included */
    uint32_t len;       /* bytes, quotes and prefix included */
    uint8_t  type;      /* enum lex_type */
    uint8_t  flags;     /* LEX_F_* */
    uint16_t op;        /* LEX_OP: enum lex_op or ASCII; LEX_IDENT: enum lex_kw;
                           LEX_ERROR: enum lex_err */
};

/* always: pos <= len; in_exec is set between an executable comment's opening
 * and its closing star-slash. */
struct lex {
    const char *buf;
    size_t      len;
    size_t      pos;
    size_t      exec_off;     /* where the open executable comment started */
    size_t      prev_end;     /* offset just past the previous token */
    uint8_t     prev_type;    /* type of the previous token (LEX_END at start) */
    uint16_t    prev_op;
    uint16_t    err;          /* enum lex_err once failed */
    size_t      err_off;
    unsigned    in_exec:1;
    unsigned    failed:1;     /* sticky: every later lex_next() repeats the error */
    unsigned    pipes_concat:1; /* LEX_MODE_PIPES_AS_CONCAT */
};

/* Starts lexing <buf>/<len> (borrowed: must outlive the lex; len < 4 GiB)
 * with the default sql_mode reading (no LEX_MODE_* bit set). */
void lex_init(struct lex *lx, const char *buf, size_t len);

/* Makes <lx> read by the sql_mode bits <modes> (LEX_MODE_*), from the next
 * token on. */
void lex_set_modes(struct lex *lx, unsigned modes);

/*
 * Stores the next token in <*tok>. Returns 1 for a token, 0 at the end of
 * the input (<*tok> is LEX_END), or -1 on a lexical error (<*tok> is
 * LEX_ERROR with <op> = enum lex_err and <off> where the bad construct
 * starts); after an error every further call returns -1 again.
 */
int lex_next(struct lex *lx, struct lex_token *tok);

/* The keyword of the word <s>/<len> (case-insensitive), or LEX_KW_NONE. */
enum lex_kw lex_keyword(const char *s, size_t len);

/* The upper-case spelling of <kw>, or NULL for LEX_KW_NONE and unknowns. */
const char *lex_kw_name(enum lex_kw kw);

/* A static English description of <err>. */
const char *lex_err_str(enum lex_err err);

/* Whether <c> may appear in an unquoted identifier (bytes >= 0x80 may:
 * they are parts of multi-byte UTF-8 characters). */
static inline int lex_is_ident_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '$' || c >= 0x80;
}

#endif
