//! Client sessions (catalog, schema, Trino session properties), kept by the
//! client in signed cookies so that any replica can serve it and the server
//! holds no per-client state.
//!
//! SetSessionOptions, `USE` and `SET SESSION` answer with `set-cookie`;
//! clients with cookie support (the JDBC driver always; ADBC with
//! `adbc.flight.sql.rpc.with_cookie_middleware=true`) send them back.
//!
//! Each option has its own cookie and a response sets only the options it
//! changed. ADBC sets a connection's catalog and schema in two calls and,
//! under load, sends the second before it has stored the first's cookie:
//! with one cookie for the whole session, the second answer (made without
//! the catalog) replaced the first and the catalog was lost.

use std::collections::{BTreeSet, HashMap};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};

use super::proto::session_option_value::OptionValue;
use super::proto::{self, Kind, OptionCookie, SessionContext};
use super::signing::{Signer, now_secs};
use crate::router::{OptionError, Session};

/// Every session cookie's name starts with this.
const PREFIX: &str = "flightdeck_";

/// The cookie of an option: `flightdeck_catalog`, `flightdeck_schema`, or
/// `flightdeck_p_` and a property's name in URL-safe base64 (a cookie name
/// allows few characters).
fn cookie_name(option: &str, property: bool) -> String {
    if property { format!("{PREFIX}p_{}", URL_SAFE_NO_PAD.encode(option)) } else { format!("{PREFIX}{option}") }
}

/// The request's session cookies as (name, value) pairs.
fn cookies(md: &MetadataMap) -> impl Iterator<Item = (&str, &str)> {
    md.get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(|(name, _)| name.starts_with(PREFIX))
}

/// `base` (the user with the configured defaults) with the options of the
/// request's cookies applied. A cookie that is stale, another user's,
/// signed with another secret or under another option's name is ignored.
pub fn from_cookies(signer: &Signer, md: &MetadataMap, mut base: Session) -> Session {
    for (name, value) in cookies(md) {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(value.trim()) else { continue };
        let c = match signer.verify::<OptionCookie>(Kind::Session, &bytes) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "ignoring session cookie");
                continue;
            }
        };
        if c.expires_at < now_secs() || c.user != base.user || cookie_name(&c.option, c.property) != name {
            continue;
        }
        match (c.property, c.option.as_str(), c.value) {
            (false, "catalog", value) => base.catalog = value,
            (false, "schema", value) => base.schema = value,
            (true, option, Some(value)) => {
                base.properties.insert(option.to_string(), value);
            }
            _ => {}
        }
    }
    base
}

/// The `set-cookie` values that take a client from `before` to `after`:
/// one per option that changed. A cleared catalog or schema is kept as
/// cleared (over the configured default); a cleared property is deleted.
pub fn set_cookies(signer: &Signer, before: &Session, after: &Session, ttl_secs: i64) -> Vec<MetadataValue<Ascii>> {
    let cookie = |option: &str, property: bool, value: Option<&String>| {
        let c = OptionCookie {
            user: after.user.clone(),
            option: option.to_string(),
            property,
            value: value.cloned(),
            expires_at: now_secs() + ttl_secs,
        };
        let signed = URL_SAFE_NO_PAD.encode(signer.sign(Kind::Session, &c));
        let name = cookie_name(option, property);
        MetadataValue::try_from(format!("{name}={signed}; Path=/; Max-Age={ttl_secs}; HttpOnly"))
            .expect("base64 is ASCII")
    };
    let mut out = Vec::new();
    if before.catalog != after.catalog {
        out.push(cookie("catalog", false, after.catalog.as_ref()));
    }
    if before.schema != after.schema {
        out.push(cookie("schema", false, after.schema.as_ref()));
    }
    let names: BTreeSet<&String> = before.properties.keys().chain(after.properties.keys()).collect();
    for name in names {
        match (before.properties.get(name), after.properties.get(name)) {
            (a, b) if a == b => {}
            (_, Some(v)) => out.push(cookie(name, true, Some(v))),
            (_, None) => out.push(deleted(&cookie_name(name, true))),
        }
    }
    out
}

/// The `set-cookie` values that end the session: every session cookie the
/// request carried, deleted.
pub fn clear_cookies(md: &MetadataMap) -> Vec<MetadataValue<Ascii>> {
    let names: BTreeSet<&str> = cookies(md).map(|(name, _)| name).collect();
    names.into_iter().map(deleted).collect()
}

fn deleted(name: &str) -> MetadataValue<Ascii> {
    MetadataValue::try_from(format!("{name}=; Path=/; Max-Age=0")).expect("cookie names are ASCII")
}

impl From<&SessionContext> for Session {
    fn from(ctx: &SessionContext) -> Self {
        Session {
            user: ctx.user.clone(),
            catalog: ctx.catalog.clone(),
            schema: ctx.schema.clone(),
            properties: ctx.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            ..Default::default()
        }
    }
}

impl From<&Session> for SessionContext {
    fn from(s: &Session) -> Self {
        SessionContext {
            user: s.user.clone(),
            catalog: s.catalog.clone(),
            schema: s.schema.clone(),
            properties: s.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// Options refused, by name, as SetSessionOptions reports them.
pub(super) type Refused = HashMap<String, proto::set_session_options_result::Error>;

/// SetSessionOptions' values as text (`None` clears an option), and the
/// options refused outright because no text stands for them.
pub(super) fn requested_options(req: proto::SetSessionOptionsRequest) -> (Vec<(String, Option<String>)>, Refused) {
    let mut refused = HashMap::new();
    let mut options = Vec::new();
    for (name, value) in req.session_options {
        let text = match value.option_value {
            None => None,
            Some(OptionValue::StringValue(s)) => Some(s),
            Some(OptionValue::BoolValue(b)) => Some(b.to_string()),
            Some(OptionValue::Int64Value(i)) => Some(i.to_string()),
            Some(OptionValue::DoubleValue(d)) => Some(d.to_string()),
            Some(OptionValue::StringListValue(_)) => {
                refused.insert(name, refusal(OptionError::InvalidValue));
                continue;
            }
        };
        options.push((name, text));
    }
    (options, refused)
}

/// The Flight form of a refused option.
pub(super) fn refusal(why: OptionError) -> proto::set_session_options_result::Error {
    use proto::set_session_options_result::{Error, ErrorValue};
    let value = match why {
        OptionError::InvalidName => ErrorValue::InvalidName,
        OptionError::InvalidValue => ErrorValue::InvalidValue,
    };
    Error { value: value as i32 }
}

/// GetSessionOptions' answer: catalog, schema and properties as text.
pub(super) fn current_options(session: &Session) -> proto::GetSessionOptionsResult {
    let text = |v: &str| proto::SessionOptionValue { option_value: Some(OptionValue::StringValue(v.to_string())) };
    let mut options = HashMap::new();
    if let Some(c) = &session.catalog {
        options.insert("catalog".to_string(), text(c));
    }
    if let Some(s) = &session.schema {
        options.insert("schema".to_string(), text(s));
    }
    for (k, v) in &session.properties {
        options.insert(k.clone(), text(v));
    }
    proto::GetSessionOptionsResult { session_options: options }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cookie jar as clients keep one: by name, the last value wins, an
    /// empty value deletes.
    fn keep(jar: &mut std::collections::BTreeMap<String, String>, headers: &[MetadataValue<Ascii>]) {
        for h in headers {
            let (name, value) = h.to_str().unwrap().split(';').next().unwrap().split_once('=').unwrap();
            if value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
    }

    fn request(jar: &std::collections::BTreeMap<String, String>) -> MetadataMap {
        let mut md = MetadataMap::new();
        let line: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        md.insert("cookie", format!("other=1; {}", line.join("; ")).parse().unwrap());
        md
    }

    fn alice() -> Session {
        Session::of("alice")
    }

    #[test]
    fn cookies_round_trip_per_user() {
        let signer = Signer::new(None);
        let mut s = alice();
        s.catalog = Some("tpch".into());
        s.properties.insert("query_max_run_time".into(), "1h".into());
        s.properties.insert("odd name;=".into(), "x".into());
        let mut jar = Default::default();
        keep(&mut jar, &set_cookies(&signer, &alice(), &s, 60));
        assert_eq!(jar.len(), 3, "{jar:?}");
        let md = request(&jar);
        assert_eq!(from_cookies(&signer, &md, alice()), s);
        assert_eq!(from_cookies(&signer, &md, Session::of("bob")), Session::of("bob"), "another user's cookies");
        assert_eq!(from_cookies(&Signer::new(None), &md, alice()), alice(), "cookies of another secret");
        let mut stale = Default::default();
        keep(&mut stale, &set_cookies(&signer, &alice(), &s, -1));
        assert_eq!(from_cookies(&signer, &request(&stale), alice()), alice(), "expired cookies");
    }

    #[test]
    fn a_cookie_under_another_options_name_is_ignored() {
        let signer = Signer::new(None);
        let mut s = alice();
        s.catalog = Some("system".into());
        let mut jar = std::collections::BTreeMap::new();
        keep(&mut jar, &set_cookies(&signer, &alice(), &s, 60));
        let value = jar.remove("flightdeck_catalog").unwrap();
        jar.insert("flightdeck_schema".into(), value);
        assert_eq!(from_cookies(&signer, &request(&jar), alice()), alice());
    }

    #[test]
    fn options_set_by_overlapping_calls_are_all_kept() {
        // Both calls leave before either answer's cookie is stored, and the
        // answers are stored in the opposite order.
        let signer = Signer::new(None);
        let mut with_catalog = alice();
        with_catalog.catalog = Some("tpch".into());
        let mut with_schema = alice();
        with_schema.schema = Some("tiny".into());
        let first = set_cookies(&signer, &alice(), &with_catalog, 60);
        let second = set_cookies(&signer, &alice(), &with_schema, 60);
        let mut jar = Default::default();
        keep(&mut jar, &second);
        keep(&mut jar, &first);
        let got = from_cookies(&signer, &request(&jar), alice());
        assert_eq!((got.catalog.as_deref(), got.schema.as_deref()), (Some("tpch"), Some("tiny")));
    }

    #[test]
    fn cleared_options_stay_cleared() {
        let signer = Signer::new(None);
        let mut defaults = alice();
        defaults.catalog = Some("tpch".into());
        defaults.schema = Some("tiny".into());
        let mut set = defaults.clone();
        set.properties.insert("a".into(), "1".into());
        let mut jar = Default::default();
        keep(&mut jar, &set_cookies(&signer, &defaults, &set, 60));
        let mut cleared = set.clone();
        cleared.catalog = None;
        cleared.properties.clear();
        keep(&mut jar, &set_cookies(&signer, &set, &cleared, 60));
        assert_eq!(from_cookies(&signer, &request(&jar), defaults.clone()), cleared, "over the defaults");
        assert!(!jar.keys().any(|k| k.starts_with("flightdeck_p_")), "a cleared property's cookie is deleted");
        let closed = clear_cookies(&request(&jar));
        keep(&mut jar, &closed);
        assert!(jar.is_empty(), "{jar:?}");
    }
}
