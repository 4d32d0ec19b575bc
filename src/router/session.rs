//! The session a statement runs in, as the router sees it: whoever speaks
//! to clients converts its own session messages into this.

use std::collections::BTreeMap;

/// Who runs a statement and where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Session {
    /// The authenticated client user; statements run as this user.
    pub user: String,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    /// Engine session properties the client set, on top of the configured ones.
    pub properties: BTreeMap<String, String>,
    /// The client's time zone, when it sent one (IANA id or offset); the
    /// configured one otherwise.
    pub time_zone: Option<String>,
    /// Client details passed to the engine as they came (Trino's
    /// `X-Trino-Source`, `-Client-Tags`, `-Client-Info`, `-Trace-Token`,
    /// `-Role`), as (header name, value).
    pub client: Vec<(String, String)>,
}

/// A change to the session that a statement asked for (`USE`,
/// `SET SESSION`, `RESET SESSION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Catalog(String),
    Schema(String),
    SetProperty(String, String),
    ClearProperty(String),
}

impl Session {
    /// A session of `user` with no catalog, schema or properties.
    pub fn of(user: &str) -> Session {
        Session { user: user.to_string(), ..Default::default() }
    }

    /// Applies `changes`; true if there were any.
    pub fn apply(&mut self, changes: &[Change]) -> bool {
        for c in changes {
            match c {
                Change::Catalog(c) => self.catalog = Some(c.clone()),
                Change::Schema(s) => self.schema = Some(s.clone()),
                Change::SetProperty(k, v) => {
                    self.properties.insert(k.clone(), v.clone());
                }
                Change::ClearProperty(k) => {
                    self.properties.remove(k);
                }
            }
        }
        !changes.is_empty()
    }

    /// The same user with neither catalog nor schema: checks of a
    /// half-set catalog and schema pair must not fail on the other half.
    pub fn without_namespace(&self) -> Session {
        Session { catalog: None, schema: None, ..self.clone() }
    }

    /// Whether the client sent state an answer may depend on beyond the
    /// user and the text (roles, prepared statements): neither the cache
    /// nor the datasets answer then.
    pub fn has_client_state(&self) -> bool {
        self.client.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("x-trino-role") || k.eq_ignore_ascii_case("x-trino-prepared-statement")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_in_order() {
        let mut s = Session::of("alice");
        assert!(!s.apply(&[]));
        assert!(s.apply(&[
            Change::Catalog("tpch".into()),
            Change::Schema("tiny".into()),
            Change::SetProperty("a".into(), "1".into()),
            Change::SetProperty("a".into(), "2".into()),
        ]));
        assert_eq!((s.catalog.as_deref(), s.schema.as_deref()), (Some("tpch"), Some("tiny")));
        assert_eq!(s.properties.get("a").map(String::as_str), Some("2"));
        s.apply(&[Change::ClearProperty("a".into())]);
        assert!(s.properties.is_empty());
        assert_eq!(s.without_namespace(), Session::of("alice"));
    }
}
