//! Trino 476's SQL lexer, re-implemented so that every reading Flightdeck
//! makes of a statement (cache key, tables, writes, parameters, ...) sees the
//! same tokens Trino's parser sees.
//!
//! The rules are those of `SqlBase.g4` in `io.trino:trino-grammar:476`
//! (checked against the generated lexer in that jar). Trino feeds the lexer
//! with `CharStreams.fromString(sql)`, so it works on code points, and the
//! grammar is declared `caseInsensitive`: `[A-Z]` and every literal also
//! match lower case (ASCII only). The ANTLR lexer takes the longest match and,
//! on a tie, the rule declared first; when a longer rule fails half-way (an
//! unterminated string, say) it falls back to the last complete match and
//! carries on from there. Everything below follows from that:
//!
//! - whitespace is exactly space, tab, `\n` and `\r`; form feed, vertical tab,
//!   NBSP, BOM and other Unicode spaces are unrecognized characters;
//! - `--` comments run to the first `\r` or `\n`; `/* */` comments do not nest
//!   and end at the first `*/`;
//! - an unterminated `'`, `"` or `` ` `` is a one-character unrecognized token
//!   and lexing resumes right after it; an unterminated `/*` is the symbols `/`
//!   and `*`; an unterminated `U&'` is the word `U`, then `&` (unrecognized),
//!   then `'`; an unterminated `X'` is the word `X` then `'`;
//! - unquoted words are ASCII only (`[A-Za-z_][A-Za-z0-9_]*`); any other
//!   letter is an unrecognized character.
//!
//! Lines and columns follow ANTLR: only `\n` starts a line (a lone `\r` is an
//! ordinary column), and columns count code points, 1-based, as Trino prints
//! them in `line L:C`.

/// What kind of token (Trino's lexer rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An unquoted word: `IDENTIFIER` or a keyword (`[A-Za-z_][A-Za-z0-9_]*`).
    Word,
    /// `"..."`, with `""` standing for one quote.
    QuotedIdentifier,
    /// `` `...` ``, with ``` `` ``` standing for one backquote (Trino's parser
    /// rejects these, but its lexer reads them).
    BackquotedIdentifier,
    /// A digit followed by letters, digits or `_`, such as `1abc` (rejected by
    /// Trino's parser, read by its lexer).
    DigitIdentifier,
    /// `'...'`, with `''` standing for one quote; may span lines.
    String,
    /// `U&'...'` (either case of `U`), with `''` standing for one quote.
    UnicodeString,
    /// `$$...$$`, ending at the first `$$` (Trino 476's `DOLLAR_STRING`).
    DollarString,
    /// `X'...'` (either case of `X`); ends at the next quote, no escapes.
    Binary,
    /// Decimal with optional `_` between digits (`1_000`), or `0x`, `0o`, `0b`.
    Integer,
    /// `1.`, `1.5`, `.5`, `1_000.5`.
    Decimal,
    /// A number with an exponent: `1e10`, `1.5E-3`, `.5e2` (no `_`).
    Double,
    /// `?`.
    Parameter,
    /// Operators and punctuation, longest match: `<=`, `>=`, `<>`, `!=`, `||`,
    /// `->`, `=>`, `{-`, `-}`, and single characters among `.(),[]:|^${}=<>+-*/%;`.
    Symbol,
    /// Anything Trino's lexer does not accept (its `UNRECOGNIZED` rule): one
    /// character, such as the opening quote of an unterminated string, a
    /// non-ASCII letter outside quotes, `&`, `!`, `@`, `#`, `\` or a form feed.
    Unrecognized,
}

/// One token of a statement, as byte offsets into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

impl Token {
    /// The token's text, verbatim.
    pub fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.start..self.end]
    }
}

/// The statement's tokens in order; comments and whitespace are dropped.
pub fn tokens(sql: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut no_close = usize::MAX;
    while pos < sql.len() {
        let (kind, end) = scan(sql, pos, &mut no_close);
        if let Some(kind) = kind {
            out.push(Token { kind, start: pos, end });
        }
        pos = end;
    }
    out
}

/// Every token's text verbatim, joined by one space. Two statements with the
/// same canonical text give Trino's parser the same tokens. Nothing else
/// changes: no case folding, and a trailing `;` stays (Trino rejects it).
pub fn canonical(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for t in tokens(sql) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(t.text(sql));
    }
    out
}

/// Whether a word's text is `keyword`, ignoring ASCII case (as Trino's
/// case-insensitive grammar does; unquoted words are ASCII only).
pub fn is_keyword(token_text: &str, keyword: &str) -> bool {
    token_text.eq_ignore_ascii_case(keyword)
}

/// Trino's error position for a byte offset: the line counts `\n` only (a lone
/// `\r` does not start a line), the column counts code points from 1, as Trino
/// reports `line L:C`. An offset past the end is taken as the end; one inside
/// a character as that character.
pub fn line_col(sql: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(sql.len());
    while !sql.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &sql[..offset];
    let line = 1 + before.bytes().filter(|&b| b == b'\n').count();
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let column = 1 + sql[line_start..offset].chars().count();
    (saturate(line), saturate(column))
}

/// The byte offset of a Trino position (inverse of [`line_col`]); `None` when
/// out of range. The column just past a line's last character is the `\n`
/// ending it, or the end of the text (where Trino places `<EOF>`).
pub fn offset_of(sql: &str, line: u32, column: u32) -> Option<usize> {
    if line == 0 || column == 0 {
        return None;
    }
    let mut start = 0;
    for _ in 1..line {
        start += sql[start..].find('\n')? + 1;
    }
    let end = sql[start..].find('\n').map_or(sql.len(), |p| start + p);
    let mut skip = column - 1;
    for (i, _) in sql[start..end].char_indices() {
        if skip == 0 {
            return Some(start + i);
        }
        skip -= 1;
    }
    (skip == 0).then_some(end)
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reads one token (or run of whitespace, or comment: `None`) at byte `i`,
/// which is a character boundary below `sql.len()`; returns where it ends.
/// `no_close` is where no `*/` follows any more, once known: without it,
/// text full of unterminated `/*` would take quadratic time.
fn scan(sql: &str, i: usize, no_close: &mut usize) -> (Option<TokenKind>, usize) {
    use TokenKind::*;
    let b = sql.as_bytes();
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    let symbol = |end: usize| (Some(Symbol), end);
    match b[i] {
        b' ' | b'\t' | b'\n' | b'\r' => {
            let mut j = i + 1;
            while matches!(at(j), b' ' | b'\t' | b'\n' | b'\r') {
                j += 1;
            }
            (None, j)
        }
        b'-' => match at(i + 1) {
            // `'--' ~[\r\n]* '\r'? '\n'?`: a lone `\r` ends it too.
            b'-' => {
                let j = b[i..].iter().position(|&c| c == b'\r' || c == b'\n').map_or(b.len(), |p| i + p);
                (None, j)
            }
            b'>' | b'}' => symbol(i + 2),
            _ => symbol(i + 1),
        },
        // `'/*' .*? '*/'`: no nesting; unterminated, it is just `/`.
        b'/' if at(i + 1) == b'*' => match (i + 2 < *no_close).then(|| find(b, i + 2, b"*/")).flatten() {
            Some(k) => (None, k + 2),
            None => {
                *no_close = i + 2;
                symbol(i + 1)
            }
        },
        b'$' if at(i + 1) == b'$' => match find(b, i + 2, b"$$") {
            Some(k) => (Some(DollarString), k + 2),
            None => symbol(i + 1),
        },
        b'\'' => quoted(b, i, String),
        b'"' => quoted(b, i, QuotedIdentifier),
        b'`' => quoted(b, i, BackquotedIdentifier),
        b'U' | b'u' if at(i + 1) == b'&' && at(i + 2) == b'\'' => match quoted_end(b, i + 2) {
            Some(end) => (Some(UnicodeString), end),
            None => (Some(Word), word_end(b, i)),
        },
        b'X' | b'x' if at(i + 1) == b'\'' => match b[i + 2..].iter().position(|&c| c == b'\'') {
            Some(p) => (Some(Binary), i + 2 + p + 1),
            None => (Some(Word), word_end(b, i)),
        },
        b'A'..=b'Z' | b'a'..=b'z' | b'_' => (Some(Word), word_end(b, i)),
        b'0'..=b'9' => number(b, i),
        b'.' if at(i + 1).is_ascii_digit() => number(b, i),
        b'?' => (Some(Parameter), i + 1),
        b'|' if at(i + 1) == b'|' => symbol(i + 2),
        b'{' if at(i + 1) == b'-' => symbol(i + 2),
        b'=' if at(i + 1) == b'>' => symbol(i + 2),
        b'<' if matches!(at(i + 1), b'=' | b'>') => symbol(i + 2),
        b'>' if at(i + 1) == b'=' => symbol(i + 2),
        b'!' if at(i + 1) == b'=' => symbol(i + 2),
        b'.' | b'(' | b')' | b',' | b'[' | b']' | b':' | b'|' | b'^' | b'$' | b'{' | b'}' | b'=' | b'<' | b'>'
        | b'+' | b'/' | b'*' | b'%' | b';' => symbol(i + 1),
        _ => {
            let len = sql[i..].chars().next().map_or(1, char::len_utf8);
            (Some(Unrecognized), i + len)
        }
    }
}

/// The first occurrence of `needle` at or after `from`.
fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| from + p)
}

/// A quoted token at `i`; unterminated, only its opening quote is read (as
/// `UNRECOGNIZED`), exactly as Trino's lexer falls back.
fn quoted(b: &[u8], i: usize, kind: TokenKind) -> (Option<TokenKind>, usize) {
    match quoted_end(b, i) {
        Some(end) => (Some(kind), end),
        None => (Some(TokenKind::Unrecognized), i + 1),
    }
}

/// The end of the longest `q ( ~q | q q )* q` starting at `open` (`q` being
/// the byte there), if any. In `'a''` that is `'a'`: the doubled quote only
/// counts when something closes after it.
fn quoted_end(b: &[u8], open: usize) -> Option<usize> {
    let q = b[open];
    let mut last = None;
    let mut j = open + 1;
    while j < b.len() {
        if b[j] == q {
            last = Some(j + 1);
            if b.get(j + 1) != Some(&q) {
                break;
            }
            j += 2;
        } else {
            j += 1;
        }
    }
    last
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn word_end(b: &[u8], i: usize) -> usize {
    b[i + 1..].iter().position(|&c| !is_word_byte(c)).map_or(b.len(), |p| i + 1 + p)
}

/// `DIGIT ('_'? DIGIT)*` from `i`, if a digit is there.
fn decimal_integer(b: &[u8], i: usize) -> Option<usize> {
    radix_digits(b, i, |c| c.is_ascii_digit(), false)
}

/// `('_'? D)+` from `i` (or `D ('_'? D)*` when `!leading_underscore`).
fn radix_digits(b: &[u8], i: usize, digit: impl Fn(u8) -> bool, leading_underscore: bool) -> Option<usize> {
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    let mut j = i;
    loop {
        if at(j) == b'_' && (leading_underscore || j > i) && digit(at(j + 1)) {
            j += 2;
        } else if digit(at(j)) {
            j += 1;
        } else {
            break;
        }
    }
    (j > i).then_some(j)
}

/// A number (or digit identifier) at `i`, which holds a digit, or a `.`
/// followed by one: the longest of Trino's numeric rules, the first declared
/// on a tie (`INTEGER_VALUE`, `DECIMAL_VALUE`, `DOUBLE_VALUE`, `DIGIT_IDENTIFIER`).
fn number(b: &[u8], i: usize) -> (Option<TokenKind>, usize) {
    use TokenKind::*;
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    let digits = |k: usize| b[k..].iter().position(|c| !c.is_ascii_digit()).map_or(b.len(), |p| k + p);
    let exponent = |k: usize| {
        if !matches!(at(k), b'e' | b'E') {
            return None;
        }
        let k = if matches!(at(k + 1), b'+' | b'-') { k + 2 } else { k + 1 };
        let end = digits(k);
        (end > k).then_some(end)
    };
    let mut best: Option<(TokenKind, usize)> = None;
    let mut consider = |kind: TokenKind, end: Option<usize>| {
        let Some(end) = end else { return };
        if best.is_none_or(|(_, e)| end > e) {
            best = Some((kind, end));
        }
    };
    if b[i] == b'.' {
        // DECIMAL_VALUE '.' DECIMAL_INTEGER; DOUBLE_VALUE '.' DIGIT+ EXPONENT.
        consider(Decimal, decimal_integer(b, i + 1));
        consider(Double, exponent(digits(i + 1)));
    } else {
        let int = decimal_integer(b, i);
        consider(Integer, int);
        if b[i] == b'0' {
            let radix: Option<fn(u8) -> bool> = match at(i + 1) {
                b'x' | b'X' => Some(|c| c.is_ascii_hexdigit()),
                b'o' | b'O' => Some(|c| matches!(c, b'0'..=b'7')),
                b'b' | b'B' => Some(|c| matches!(c, b'0' | b'1')),
                _ => None,
            };
            if let Some(radix) = radix {
                consider(Integer, radix_digits(b, i + 2, radix, true));
            }
        }
        if let Some(int) = int.filter(|&e| at(e) == b'.') {
            consider(Decimal, Some(decimal_integer(b, int + 1).unwrap_or(int + 1)));
        }
        let mut j = digits(i);
        if at(j) == b'.' {
            j = digits(j + 1);
        }
        consider(Double, exponent(j));
        let run = word_end(b, i);
        consider(DigitIdentifier, (run - i >= 2).then_some(run));
    }
    let (kind, end) = best.expect("a digit always lexes");
    (Some(kind), end)
}

#[cfg(test)]
mod tests {
    use super::TokenKind::*;
    use super::*;

    fn lex(sql: &str) -> Vec<(TokenKind, &str)> {
        tokens(sql).iter().map(|t| (t.kind, t.text(sql))).collect()
    }

    fn texts(sql: &str) -> Vec<&str> {
        tokens(sql).iter().map(|t| t.text(sql)).collect()
    }

    // `SELECT name FROM tpch.tiny.nation ORDER BY name --x\rLIMIT 2` returns
    // two rows in Trino 476, as with `\n` and `\r\n`.
    #[test]
    fn line_comment_ends_at_cr_or_lf() {
        let sql = "SELECT name FROM tpch.tiny.nation ORDER BY name --x\rLIMIT 2";
        assert_eq!(texts(sql)[11..], ["LIMIT", "2"]);
        assert_eq!(texts("a --x\nb"), ["a", "b"]);
        assert_eq!(texts("a --x\r\nb"), ["a", "b"]);
        assert_eq!(texts("a --x\n\rb"), ["a", "b"]);
        assert_eq!(texts("a --x"), ["a"]);
        assert_eq!(texts("a --"), ["a"]);
        assert_eq!(texts("a---b\nc"), ["a", "c"]);
        assert_eq!(texts("a -->b\nc"), ["a", "c"]);
        // `'--'` is a string, `"a--b"` an identifier, `-` `-` two minuses.
        assert_eq!(
            lex("'--' \"a--b\" - -1"),
            [(String, "'--'"), (QuotedIdentifier, "\"a--b\""), (Symbol, "-"), (Symbol, "-"), (Integer, "1")]
        );
        // `{-` is a symbol, so `{--x` is `{-` `-` `x`, not a comment.
        assert_eq!(texts("{--x"), ["{-", "-", "x"]);
    }

    // Trino: `SELECT 1 /* /* */ AS a` answers column `a`;
    // `SELECT 1 /* /* */ AS a */` fails at 1:24 on `*`;
    // `SELECT 1 /* x` and `SELECT 1 /*/ AS a` fail at 1:11 on `*`;
    // `SELECT 1 /**/ AS a` answers column `a`.
    #[test]
    fn block_comments_do_not_nest() {
        assert_eq!(texts("SELECT 1 /* /* */ AS a"), ["SELECT", "1", "AS", "a"]);
        assert_eq!(texts("SELECT 1 /* /* */ AS a */"), ["SELECT", "1", "AS", "a", "*", "/"]);
        assert_eq!(lex("SELECT 1 /* x"), [(Word, "SELECT"), (Integer, "1"), (Symbol, "/"), (Symbol, "*"), (Word, "x")]);
        assert_eq!(texts("SELECT 1 /*/ AS a"), ["SELECT", "1", "/", "*", "/", "AS", "a"]);
        assert_eq!(texts("SELECT 1 /**/ AS a"), ["SELECT", "1", "AS", "a"]);
        assert_eq!(texts("a/*\n--*/b"), ["a", "b"]);
        assert_eq!(texts("a/***/b"), ["a", "b"]);
        assert_eq!(texts("a */ b"), ["a", "*", "/", "b"]);
    }

    // Trino: `SELECT\t1` and `SELECT\r1` answer 1; `SELECT<c>1` fails at 1:7
    // with "mismatched input '<c>'" for form feed, vertical tab, NBSP, U+2028
    // and NUL; a leading BOM fails at 1:1.
    #[test]
    fn whitespace_is_space_tab_cr_lf_only() {
        assert_eq!(texts("SELECT\t1\r2\n3 4"), ["SELECT", "1", "2", "3", "4"]);
        for c in ['\x0c', '\x0b', '\u{a0}', '\u{2028}', '\0', '\u{feff}', '\u{3000}'] {
            let sql = format!("SELECT{c}1");
            assert_eq!(lex(&sql), [(Word, "SELECT"), (Unrecognized, &sql[6..6 + c.len_utf8()]), (Integer, "1")]);
        }
        assert!(tokens(" \t\r\n").is_empty());
    }

    // Trino: `SELECT 'it''s\nmulti\r\nline'` answers "it's\nmulti\r\nline";
    // `SELECT 'abc` fails at 1:8 on `'`, `SELECT 'abc''` at 1:13 on `'`,
    // `SELECT "abc` at 1:8 on `"`.
    #[test]
    fn strings_and_unterminated_quotes() {
        assert_eq!(lex("'it''s\nmulti\r\nline'"), [(String, "'it''s\nmulti\r\nline'")]);
        assert_eq!(lex("''''"), [(String, "''''")]);
        assert_eq!(lex("'abc"), [(Unrecognized, "'"), (Word, "abc")]);
        assert_eq!(lex("'abc''"), [(String, "'abc'"), (Unrecognized, "'")]);
        assert_eq!(lex("'a''b"), [(String, "'a'"), (Unrecognized, "'"), (Word, "b")]);
        assert_eq!(lex("\"abc"), [(Unrecognized, "\""), (Word, "abc")]);
        assert_eq!(lex("`a``"), [(BackquotedIdentifier, "`a`"), (Unrecognized, "`")]);
        assert_eq!(lex("'é' '😀'"), [(String, "'é'"), (String, "'😀'")]);
    }

    // Trino: `SELECT U&'\0041', u&'\0041', '\0041'` answers A, A, \0041;
    // `SELECT U&'a''b'` answers a'b.
    #[test]
    fn unicode_strings() {
        assert_eq!(lex("U&'\\0041' u&'\\0041'"), [(UnicodeString, "U&'\\0041'"), (UnicodeString, "u&'\\0041'")]);
        assert_eq!(lex("U&'a''b'"), [(UnicodeString, "U&'a''b'")]);
        assert_eq!(lex("U&'x"), [(Word, "U"), (Unrecognized, "&"), (Unrecognized, "'"), (Word, "x")]);
        assert_eq!(lex("U &'x'"), [(Word, "U"), (Unrecognized, "&"), (String, "'x'")]);
        assert_eq!(lex("aU&'x'"), [(Word, "aU"), (Unrecognized, "&"), (String, "'x'")]);
        assert_eq!(lex("U&'x' UESCAPE '!'"), [(UnicodeString, "U&'x'"), (Word, "UESCAPE"), (String, "'!'")]);
    }

    // Trino: `SELECT X'41', x'4a', '41'` answers binary 41, 4a and the string
    // '41'; `SELECT X'4''1'` fails at 1:12 on `'1'` (no escape inside X'').
    #[test]
    fn binary_literals() {
        assert_eq!(lex("X'41' x'4a' '41'"), [(Binary, "X'41'"), (Binary, "x'4a'"), (String, "'41'")]);
        assert_eq!(lex("X'4''1'"), [(Binary, "X'4'"), (String, "'1'")]);
        assert_eq!(lex("X'41"), [(Word, "X"), (Unrecognized, "'"), (Integer, "41")]);
        assert_eq!(lex("EX'41'"), [(Word, "EX"), (String, "'41'")]);
    }

    // Trino: `SELECT 1 AS "a""b", 2 AS "a--b"` answers columns a"b and a--b;
    // `SELECT 1 AS \`a\`` fails: backquoted identifiers are not supported.
    #[test]
    fn quoted_identifiers() {
        assert_eq!(lex("\"a\"\"b\" \"a--b\""), [(QuotedIdentifier, "\"a\"\"b\""), (QuotedIdentifier, "\"a--b\"")]);
        assert_eq!(lex("`a``b` `x y`"), [(BackquotedIdentifier, "`a``b`"), (BackquotedIdentifier, "`x y`")]);
        assert_eq!(lex("\"\""), [(QuotedIdentifier, "\"\"")]);
    }

    // Trino: `SELECT 1abc`, `SELECT 1__0`, `SELECT 0x1G`, `SELECT 1_0e5` fail
    // at 1:8: identifiers must not start with a digit.
    #[test]
    fn digit_identifiers() {
        for s in ["1abc", "1__0", "0x1G", "1_0e5", "1_", "0x", "0b102", "0o78", "1e", "123_abc"] {
            assert_eq!(lex(s), [(DigitIdentifier, s)], "{s}");
        }
    }

    // Trino: `SELECT 1_000, 0x1F, 0X_1f, 0o17, 0b101, 0B1_0` answers
    // 1000, 31, 31, 15, 5, 2; `SELECT 1., .5, 1.5, 1_000.5, 1.5_0` answers
    // 1, 0.5, 1.5, 1000.5, 1.50; `SELECT 1e10, 1E-3, .5e2, 1.e1, 1.5E+2`
    // answers doubles 1e10, 0.001, 50, 10, 150.
    #[test]
    fn numbers() {
        for s in ["1", "1_000", "0x1F", "0X_1f", "0o17", "0b101", "0B1_0", "007"] {
            assert_eq!(lex(s), [(Integer, s)], "{s}");
        }
        for s in ["1.", ".5", "1.5", "1_000.5", "1.5_0", ".5_5", "1_0.0_1"] {
            assert_eq!(lex(s), [(Decimal, s)], "{s}");
        }
        for s in ["1e10", "1E-3", ".5e2", "1.e1", "1.5E+2", "12e+5"] {
            assert_eq!(lex(s), [(Double, s)], "{s}");
        }
        assert_eq!(lex("1.5e"), [(Decimal, "1.5"), (Word, "e")]);
        assert_eq!(lex("1e-3x"), [(Double, "1e-3"), (Word, "x")]);
        assert_eq!(lex("1e+"), [(DigitIdentifier, "1e"), (Symbol, "+")]);
        assert_eq!(lex("1_000.5e3"), [(Decimal, "1_000.5"), (Word, "e3")]);
        assert_eq!(lex("1._5"), [(Decimal, "1."), (Word, "_5")]);
        assert_eq!(lex("1..2"), [(Decimal, "1."), (Decimal, ".2")]);
        assert_eq!(lex("1.x"), [(Decimal, "1."), (Word, "x")]);
        assert_eq!(lex(".e5"), [(Symbol, "."), (Word, "e5")]);
        assert_eq!(lex("a.b"), [(Word, "a"), (Symbol, "."), (Word, "b")]);
        assert_eq!(lex("t.1"), [(Word, "t"), (Decimal, ".1")]);
        assert_eq!(lex("1__"), [(DigitIdentifier, "1__")]);
        assert_eq!(lex("0x_"), [(DigitIdentifier, "0x_")]);
        assert_eq!(lex("1e5_"), [(DigitIdentifier, "1e5_")]);
    }

    // Trino: `SELECT 1 != 2, 1 <> 2, 1 <= 2, 1 >= 2, 'a' || 'b'` answers
    // true, true, true, false, ab; `x -> x + 1` is a lambda; `SELECT 1::integer`
    // fails at 1:9 on `:` (no `::`); `SELECT 1 {-` fails on `{-`.
    #[test]
    fn symbols() {
        let all = "<= >= <> != || -> => {- -} ( ) , . [ ] : | ^ $ { } = < > + - * / % ;";
        assert!(tokens(all).iter().all(|t| t.kind == Symbol));
        assert_eq!(texts(all), all.split(' ').collect::<Vec<_>>());
        assert_eq!(texts("a<=>b"), ["a", "<=", ">", "b"]);
        assert_eq!(texts("|||"), ["||", "|"]);
        assert_eq!(texts("1::int"), ["1", ":", ":", "int"]);
        assert_eq!(texts("<>="), ["<>", "="]);
        assert_eq!(texts("<-1"), ["<", "-", "1"]);
        assert_eq!(lex("? ?"), [(Parameter, "?"), (Parameter, "?")]);
        for c in ["!", "&", "@", "#", "\\", "~", "\u{7f}"] {
            assert_eq!(lex(c), [(Unrecognized, c)], "{c}");
        }
        assert_eq!(lex("SELECT 1;"), [(Word, "SELECT"), (Integer, "1"), (Symbol, ";")]);
    }

    // Trino: `SELECT $$abc$$, ...` fails at 1:8 naming the whole `$$abc$$` (a
    // token, though 476 takes it only where a function body goes);
    // `SELECT $$a` fails at 1:8 on `$`.
    #[test]
    fn dollar_strings() {
        assert_eq!(
            lex("$$abc$$ $$it's$$ $$$$"),
            [(DollarString, "$$abc$$"), (DollarString, "$$it's$$"), (DollarString, "$$$$")]
        );
        assert_eq!(lex("$$a$$$"), [(DollarString, "$$a$$"), (Symbol, "$")]);
        assert_eq!(lex("$$a"), [(Symbol, "$"), (Symbol, "$"), (Word, "a")]);
        assert_eq!(lex("$$$"), [(Symbol, "$"), (Symbol, "$"), (Symbol, "$")]);
        assert_eq!(lex("$$ -- $$"), [(DollarString, "$$ -- $$")]);
    }

    // Trino: `SELECT 1 AS é` fails at 1:13 on `é`; `SELECT é` at 1:8;
    // `select 1 as skip` is a syntax error (SKIP is a reserved word), but the
    // lexer reads a word either way.
    #[test]
    fn words_are_ascii() {
        assert_eq!(lex("_a1 Foo foo"), [(Word, "_a1"), (Word, "Foo"), (Word, "foo")]);
        assert_eq!(lex("é"), [(Unrecognized, "é")]);
        assert_eq!(lex("aé1"), [(Word, "a"), (Unrecognized, "é"), (Integer, "1")]);
        assert_eq!(lex("😀x"), [(Unrecognized, "😀"), (Word, "x")]);
        assert_eq!(lex("\u{212a}"), [(Unrecognized, "\u{212a}")]); // Kelvin sign: not `K`.
        assert!(is_keyword("select", "SELECT") && is_keyword("SeLeCt", "select"));
        assert!(!is_keyword("\"select\"", "select") && !is_keyword("selects", "select"));
    }

    // Each unterminated `/*` must not rescan the rest of the text.
    #[test]
    fn linear_time_on_unterminated_openers() {
        for unit in ["/*", "'", "\"", "$$", "U&'", "X'", "--", "1e", "'a''"] {
            let sql = unit.repeat(200_000);
            assert!(tokens(&sql).len() <= sql.len());
        }
    }

    #[test]
    fn canonical_keeps_text_and_semicolons() {
        assert_eq!(canonical(" SELECT  a,\n\tB -- c\nFROM /* x */ T;"), "SELECT a , B FROM T ;");
        assert_eq!(canonical("select 'A  B' AS Foo"), "select 'A  B' AS Foo");
        assert_ne!(canonical("SELECT 1 AS Foo"), canonical("SELECT 1 AS foo"));
        assert_ne!(canonical("SELECT 1"), canonical("SELECT 1;"));
        assert_ne!(canonical("SELECT U&'\\0041'"), canonical("SELECT '\\0041'"));
        assert_ne!(canonical("SELECT X'41'"), canonical("SELECT '41'"));
        assert_eq!(canonical("SELECT\r\n1\r\n"), canonical("SELECT\t1"));
        assert_ne!(canonical("SELECT 'a\r\nb'"), canonical("SELECT 'a\nb'"));
        assert_eq!(canonical(""), "");
    }

    // Trino: `SELECT 'é', 'x' FRO t`, `SELECT '😀', 'x' FRO t` and
    // `SELECT 'x', 'x' FRO t` all fail at 1:21 (code points), `SELECT '中文',
    // 'x' FRO t` at 1:22; `SELECT 1\rFRO t` at 1:14 (a lone `\r` is a column);
    // `SELECT 1\r\nFRO t` at 2:5; `SELECT 1\n\rFRO t` at 2:6;
    // `SELECT\t1\tFRO t` at 1:14 (a tab is one column); `SELECT 1 /* a\nb\r\nc
    // */ FRO t` at 3:10; `SELECT 'a\nb' FRO t` at 2:8; `SELECT 1 FROM` at 1:14
    // (`<EOF>`), `SELECT 1 FROM\n` at 2:1, `SELECT 1 FROM\r` at 1:15.
    #[test]
    fn trino_positions() {
        let cases: &[(&str, (u32, u32))] = &[
            ("SELECT 'é', 'x' FRO t", (1, 21)),
            ("SELECT '😀', 'x' FRO t", (1, 21)),
            ("SELECT '中文', 'x' FRO t", (1, 22)),
            ("SELECT 1\rFRO t", (1, 14)),
            ("SELECT 1\r\nFRO t", (2, 5)),
            ("SELECT 1\n\rFRO t", (2, 6)),
            ("SELECT\t1\tFRO t", (1, 14)),
            ("SELECT 1 /* a\nb\r\nc */ FRO t", (3, 10)),
            ("SELECT 'a\nb' FRO t", (2, 8)),
        ];
        for &(sql, pos) in cases {
            let t = *tokens(sql).last().unwrap();
            assert_eq!(t.text(sql), "t");
            assert_eq!(line_col(sql, t.start), pos, "{sql:?}");
            assert_eq!(offset_of(sql, pos.0, pos.1), Some(t.start), "{sql:?}");
        }
        for (sql, pos) in [("SELECT 1 FROM", (1, 14)), ("SELECT 1 FROM\n", (2, 1)), ("SELECT 1 FROM\r", (1, 15))] {
            assert_eq!(line_col(sql, sql.len()), pos);
            assert_eq!(offset_of(sql, pos.0, pos.1), Some(sql.len()));
        }
        assert_eq!(line_col("é", 1), (1, 1)); // inside a character: that character
        assert_eq!(line_col("ab", 99), (1, 3));
        for (l, c) in [(0, 1), (1, 0), (1, 4), (3, 1)] {
            assert_eq!(offset_of("ab\n", l, c), None, "{l}:{c}");
        }
        assert_eq!(offset_of("ab\n", 2, 1), Some(3));
    }

    // Token sequences Trino 476's own generated lexer produced (run from the
    // trino-grammar-476 jar) for inputs where the longest-match fallback is
    // easy to get wrong.
    #[test]
    fn matches_trino_lexer() {
        let cases: &[(&str, &[(TokenKind, &str)])] = &[
            ("U&'a", &[(Word, "U"), (Unrecognized, "&"), (Unrecognized, "'"), (Word, "a")]),
            ("x'a'b'", &[(Binary, "x'a'"), (Word, "b"), (Unrecognized, "'")]),
            ("'a''''", &[(String, "'a'''"), (Unrecognized, "'")]),
            ("/*/", &[(Symbol, "/"), (Symbol, "*"), (Symbol, "/")]),
            ("-->", &[]),
            ("-}", &[(Symbol, "-}")]),
            ("0x1g", &[(DigitIdentifier, "0x1g")]),
            ("0b12", &[(DigitIdentifier, "0b12")]),
            ("1e5e", &[(DigitIdentifier, "1e5e")]),
            ("1.5e5e", &[(Double, "1.5e5"), (Word, "e")]),
            ("1.5_e5", &[(Decimal, "1.5"), (Word, "_e5")]),
            (".5_", &[(Decimal, ".5"), (Word, "_")]),
            ("1_.5", &[(DigitIdentifier, "1_"), (Decimal, ".5")]),
            ("$", &[(Symbol, "$")]),
            ("{-}", &[(Symbol, "{-"), (Symbol, "}")]),
            ("!==", &[(Symbol, "!="), (Symbol, "=")]),
        ];
        for (sql, want) in cases {
            assert_eq!(lex(sql), *want, "{sql:?}");
        }
    }

    /// xorshift64*: deterministic, no crates.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.below(xs.len())]
        }
    }

    const POOL: &[&str] = &[
        "SELECT",
        "from",
        "Foo",
        "_x1",
        "LIMIT",
        "a",
        "'a''b'",
        "'--x'",
        "'/* */'",
        "''",
        "'it''s\nx\r\ny'",
        "'é😀'",
        "\"a\"\"b\"",
        "\"x -- y\"",
        "\"\"",
        "`b``q`",
        "U&'\\0041'",
        "u&'a''b'",
        "X'41'",
        "x''",
        "$$a'b$$",
        "$$$$",
        "1",
        "1_000",
        "0x1F",
        "0b1_0",
        "1.",
        ".5",
        "1.5",
        "1e10",
        "1E-3",
        ".5e2",
        "1abc",
        "?",
        "<=",
        ">=",
        "<>",
        "!=",
        "||",
        "->",
        "=>",
        "{-",
        "-}",
        "(",
        ")",
        ",",
        ".",
        "[",
        "]",
        ":",
        "|",
        "^",
        "$",
        "{",
        "}",
        "=",
        "<",
        ">",
        "+",
        "-",
        "*",
        "/",
        "%",
        ";",
        "é",
        "\u{a0}",
        "&",
        "#",
    ];
    const GAPS: &[&str] = &[
        " ", "\t", "\n", "\r", "\r\n", "--c\n", "--c\r", "--c\r\n", "--\n", "/* c */", "/**/", "/* -- */", "/*\n*/",
        "/*/ */",
    ];
    /// Tokens nothing can stick to, so they need no gap around them.
    const LONE: &[&str] = &["(", ")", ",", ";", "?"];

    fn gap(rng: &mut Rng, prev: &str, next: &str) -> std::string::String {
        let lone = LONE.contains(&prev) || LONE.contains(&next);
        let n = rng.below(3) + usize::from(!lone);
        let mut s = std::string::String::new();
        for _ in 0..n {
            s.push_str(rng.pick(GAPS));
        }
        // `-` or `{` followed by `--` would make `---` or `{-`.
        if (prev.ends_with('-') || prev.ends_with('{')) && s.starts_with('-') {
            s.insert(0, ' ');
        }
        s
    }

    fn statement(rng: &mut Rng, toks: &[&str]) -> std::string::String {
        let mut s = std::string::String::new();
        if rng.below(2) == 0 {
            s.push_str(&gap(rng, "(", toks[0]));
        }
        for (i, t) in toks.iter().enumerate() {
            s.push_str(t);
            if let Some(next) = toks.get(i + 1) {
                s.push_str(&gap(rng, t, next));
            }
        }
        if rng.below(2) == 0 {
            s.push_str(&gap(rng, toks[toks.len() - 1], "("));
            if rng.below(2) == 0 {
                s.push_str(" --end");
            }
        }
        s
    }

    #[test]
    fn generated_statements() {
        for seed in 1..3000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let n = 1 + rng.below(12);
            let toks: Vec<&str> = (0..n).map(|_| rng.pick(POOL)).collect();
            let sql = statement(&mut rng, &toks);
            assert_eq!(texts(&sql), toks, "{sql:?}");

            let canon = canonical(&sql);
            assert_eq!(canonical(&canon), canon);
            assert_eq!(lex(&canon), lex(&sql), "{sql:?}");

            // Other comments and whitespace between the same tokens.
            let other = statement(&mut rng, &toks);
            assert_eq!(canonical(&other), canon, "{sql:?} vs {other:?}");

            // A gap inside a literal or quoted identifier is part of it.
            for t in tokens(&sql).iter().filter(|t| matches!(t.kind, String | QuotedIdentifier | UnicodeString)) {
                let inside = sql[..t.end - 1].to_string() + rng.pick(GAPS) + &sql[t.end - 1..];
                assert_ne!(canonical(&inside), canon, "{inside:?}");
            }

            for (o, _) in sql.char_indices().chain([(sql.len(), ' ')]) {
                let (l, c) = line_col(&sql, o);
                assert_eq!(offset_of(&sql, l, c), Some(o), "{sql:?} at {o}");
            }
        }
    }

    /// Random text, heavy on the characters the rules turn on: no panic, and
    /// the tokens tile the text with only comments and whitespace between.
    #[test]
    fn random_text_never_panics() {
        let chars = [
            '\'', '"', '`', '*', '/', '-', '\r', '\n', ' ', '\t', '$', '&', 'U', 'u', 'X', 'x', 'e', 'E', '0', '1',
            '9', '.', '_', '+', '?', '{', '}', '<', '>', '=', '!', '|', 'é', '😀', '\u{a0}', '\0', 'b', 'o',
        ];
        for seed in 1..20000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let len = rng.below(24);
            let sql: std::string::String = (0..len).map(|_| chars[rng.below(chars.len())]).collect();
            let toks = tokens(&sql);
            let mut pos = 0;
            for t in &toks {
                assert!(t.start >= pos && t.end > t.start, "{sql:?}");
                assert!(tokens(&sql[pos..t.start]).is_empty(), "{sql:?}: gap {:?}", &sql[pos..t.start]);
                assert_eq!(lex(t.text(&sql)), [(t.kind, t.text(&sql))], "{sql:?}");
                pos = t.end;
            }
            assert!(tokens(&sql[pos..]).is_empty(), "{sql:?}");
            let canon = canonical(&sql);
            assert_eq!(lex(&canon), lex(&sql), "{sql:?}");
            for o in 0..=sql.len() + 1 {
                let (l, c) = line_col(&sql, o);
                let back = offset_of(&sql, l, c).unwrap();
                assert!(back <= o && sql.is_char_boundary(back), "{sql:?} at {o}");
            }
        }
    }
}
