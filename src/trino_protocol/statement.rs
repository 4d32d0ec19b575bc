//! The statements Trino's protocol keeps in the client's session rather
//! than on the server: `PREPARE`, `EXECUTE`, `EXECUTE IMMEDIATE` and
//! `DEALLOCATE PREPARE`. They are read here, so that what a prepared
//! statement runs goes through the router like any other text.

use crate::sql::lexer::{Token, TokenKind, is_keyword, tokens};

/// What the client's text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Front {
    /// `PREPARE name FROM statement`.
    Prepare { name: String, sql: String },
    /// `EXECUTE name [USING ...]`: the statement kept under `name`.
    Execute { name: String, args: Vec<String> },
    /// `EXECUTE IMMEDIATE 'statement' [USING ...]`; `at` is where the
    /// statement's text starts, inside the quotes.
    Immediate { sql: String, args: Vec<String>, at: usize },
    /// `DEALLOCATE PREPARE name`.
    Deallocate { name: String },
    /// `CALL system.runtime.kill_query('id', ...)` (Superset's Stop button):
    /// the id may be one of Flightdeck's.
    Kill { id: String, message: Option<String> },
    /// Anything else: run as written.
    Plain,
}

/// Reads the statement forms above; other text is [`Front::Plain`].
pub fn read(sql: &str) -> Result<Front, String> {
    let t = tokens(sql);
    let word = |i: usize, k: &str| t.get(i).is_some_and(|x| x.kind == TokenKind::Word && is_keyword(x.text(sql), k));
    if word(0, "prepare") {
        let name = name(sql, t.get(1)).ok_or("PREPARE needs a statement name")?;
        if !word(2, "from") || t.len() < 4 {
            return Err("expected PREPARE name FROM statement".into());
        }
        return Ok(Front::Prepare { name, sql: sql[t[3].start..].trim_end().to_string() });
    }
    if word(0, "deallocate") && word(1, "prepare") {
        let name = name(sql, t.get(2)).ok_or("DEALLOCATE PREPARE needs a statement name")?;
        if t.len() > 3 {
            return Err("expected DEALLOCATE PREPARE name".into());
        }
        return Ok(Front::Deallocate { name });
    }
    if word(0, "call") {
        return Ok(kill(sql, &t).unwrap_or(Front::Plain));
    }
    if !word(0, "execute") {
        return Ok(Front::Plain);
    }
    if word(1, "immediate") {
        let (text, at) = match t.get(2) {
            Some(x) if x.kind == TokenKind::String => (unquote(x.text(sql)), x.start + 1),
            _ => return Err("EXECUTE IMMEDIATE needs the statement as a string literal".into()),
        };
        let args = using(sql, &t, 3)?;
        return Ok(Front::Immediate { sql: text, args, at });
    }
    let name = name(sql, t.get(1)).ok_or("EXECUTE needs a statement name")?;
    let args = using(sql, &t, 2)?;
    Ok(Front::Execute { name, args })
}

/// `CALL system.runtime.kill_query(...)`: the query id and message, by
/// name (`query_id =>`, `message =>`) or by position.
fn kill(sql: &str, t: &[Token]) -> Option<Front> {
    let path: Vec<String> = t[1..].iter().take(5).map(|x| x.text(sql).to_ascii_lowercase()).collect();
    if path != ["system", ".", "runtime", ".", "kill_query"] {
        return None;
    }
    let strings: Vec<(Option<String>, String)> = t
        .iter()
        .enumerate()
        .filter(|(_, x)| x.kind == TokenKind::String)
        .map(|(i, x)| {
            let named = (i >= 2 && t[i - 1].text(sql) == "=>").then(|| t[i - 2].text(sql).to_ascii_lowercase());
            (named, unquote(x.text(sql)))
        })
        .collect();
    let by_name = |n: &str| strings.iter().find(|(k, _)| k.as_deref() == Some(n)).map(|(_, v)| v.clone());
    let id = by_name("query_id").or_else(|| strings.first().filter(|(k, _)| k.is_none()).map(|(_, v)| v.clone()))?;
    let message = by_name("message").or_else(|| strings.get(1).filter(|(k, _)| k.is_none()).map(|(_, v)| v.clone()));
    Some(Front::Kill { id, message })
}

/// An identifier token's name: unquoted as written, quoted without quotes.
fn name(sql: &str, t: Option<&Token>) -> Option<String> {
    let t = t?;
    match t.kind {
        TokenKind::Word => Some(t.text(sql).to_string()),
        TokenKind::QuotedIdentifier => {
            let s = t.text(sql);
            Some(s[1..s.len() - 1].replace("\"\"", "\""))
        }
        _ => None,
    }
}

/// Whether `sql` is `DESCRIBE INPUT name` or `DESCRIBE OUTPUT name`, which
/// Trino answers from the prepared statements the client sends.
pub fn describes_prepared(sql: &str) -> bool {
    let t = tokens(sql);
    let word = |i: usize, k: &str| t.get(i).is_some_and(|x| x.kind == TokenKind::Word && is_keyword(x.text(sql), k));
    word(0, "describe") && (word(1, "input") || word(1, "output"))
}

/// Moves an error position in the text of an `EXECUTE IMMEDIATE` to the
/// whole statement, as Trino counts it: `inner` starts at byte `at` of
/// `outer`, and each of its quotes is two there.
pub fn outer_position(outer: &str, inner: &str, at: usize, line: u32, column: u32) -> Option<(u32, u32)> {
    use crate::sql::lexer::{line_col, offset_of};
    let offset = offset_of(inner, line, column)?;
    let mut pos = at;
    for (i, c) in inner.char_indices() {
        if i >= offset {
            break;
        }
        pos += if c == '\'' { 2 } else { c.len_utf8() };
    }
    Some(line_col(outer, pos))
}

fn unquote(s: &str) -> String {
    s[1..s.len() - 1].replace("''", "'")
}

/// The expressions after `USING` (from token `at`), each parenthesized so
/// that it binds as one value wherever its marker stands.
fn using(sql: &str, t: &[Token], at: usize) -> Result<Vec<String>, String> {
    let Some(first) = t.get(at) else { return Ok(Vec::new()) };
    if !(first.kind == TokenKind::Word && is_keyword(first.text(sql), "using")) {
        return Err(format!("expected USING, found `{}`", first.text(sql)));
    }
    let mut args = Vec::new();
    let (mut depth, mut start) = (0i32, None::<usize>);
    let mut end = 0;
    for x in &t[at + 1..] {
        let text = x.text(sql);
        if x.kind == TokenKind::Symbol {
            match text {
                "(" | "[" => depth += 1,
                ")" | "]" => depth -= 1,
                "," if depth == 0 => {
                    let s = start.ok_or("an empty value in USING")?;
                    args.push(format!("({})", &sql[s..end]));
                    start = None;
                    continue;
                }
                _ => {}
            }
        }
        start.get_or_insert(x.start);
        end = x.end;
    }
    match start {
        Some(s) => args.push(format!("({})", &sql[s..end])),
        None => return Err("USING needs at least one value".into()),
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_session_statements() {
        assert_eq!(
            read("PREPARE q1 FROM\r\nSELECT ? , 'a,b'  ").unwrap(),
            Front::Prepare { name: "q1".into(), sql: "SELECT ? , 'a,b'".into() }
        );
        assert_eq!(
            read("/* c */ execute \"my q\" USING 1, 'x,y', f(2, 3), ARRAY[1,2] -- end").unwrap(),
            Front::Execute {
                name: "my q".into(),
                args: vec!["(1)".into(), "('x,y')".into(), "(f(2, 3))".into(), "(ARRAY[1,2])".into()]
            }
        );
        assert_eq!(
            read("EXECUTE IMMEDIATE 'SELECT ''a'' || ?' USING DATE '2024-01-01'").unwrap(),
            Front::Immediate { sql: "SELECT 'a' || ?".into(), args: vec!["(DATE '2024-01-01')".into()], at: 19 }
        );
        assert_eq!(read("EXECUTE q").unwrap(), Front::Execute { name: "q".into(), args: vec![] });
        assert_eq!(read("DEALLOCATE PREPARE q").unwrap(), Front::Deallocate { name: "q".into() });
        assert_eq!(read("SELECT 'EXECUTE q'").unwrap(), Front::Plain);
        assert!(read("EXECUTE q USING").is_err());
        assert!(read("EXECUTE q USING 1,").is_err());
        assert!(read("EXECUTE IMMEDIATE q").is_err());
        assert!(read("PREPARE q SELECT 1").is_err());
        assert!(describes_prepared("describe OUTPUT q") && describes_prepared("DESCRIBE INPUT q"));
        assert_eq!(
            read("CALL system.runtime.kill_query(query_id => '20261127_1', message => 'Query cancelled by Superset')")
                .unwrap(),
            Front::Kill { id: "20261127_1".into(), message: Some("Query cancelled by Superset".into()) }
        );
        assert_eq!(
            read("call System.Runtime.Kill_Query('q2')").unwrap(),
            Front::Kill { id: "q2".into(), message: None }
        );
        assert_eq!(read("CALL system.runtime.other('q2')").unwrap(), Front::Plain);
        assert!(!describes_prepared("DESCRIBE tpch.tiny.nation"));
    }

    #[test]
    fn positions_inside_execute_immediate_count_in_the_whole_statement() {
        let outer = "EXECUTE IMMEDIATE 'SELECT ''a'', nope\nFROM t' USING 1";
        let Front::Immediate { sql, at, .. } = read(outer).unwrap() else { panic!() };
        // `nope` is at 1:13 of the statement, after a doubled quote pair.
        assert_eq!(outer_position(outer, &sql, at, 1, 13), Some((1, 34)));
        assert_eq!(&outer[33..37], "nope");
        assert_eq!(outer_position(outer, &sql, at, 2, 6), Some((2, 6)));
        assert_eq!(outer_position(outer, &sql, at, 9, 1), None);
    }
}
