//! Client sessions (catalog, schema, Trino session properties), kept by the
//! client in a signed cookie so that any replica can serve it and the server
//! holds no per-client state.
//!
//! SetSessionOptions, `USE` and `SET SESSION` answer with `set-cookie`;
//! clients with cookie support (the JDBC driver always; ADBC with
//! `adbc.flight.sql.rpc.with_cookie_middleware=true`) send it back.

use std::collections::HashMap;

use base64::Engine;
use tonic::metadata::{MetadataMap, MetadataValue};

use super::proto::session_option_value::OptionValue;
use super::proto::{self, Kind, SessionContext};
use super::signing::{Signer, now_secs};
use crate::router::{OptionError, Session};

/// The cookie's name.
pub const COOKIE: &str = "flightdeck_session";

/// The session in the request's cookie, if it verifies and is `user`'s.
/// A stale or foreign cookie is ignored: the client gets the defaults.
pub fn from_cookie(signer: &Signer, md: &MetadataMap, user: &str) -> Option<Session> {
    let value = md
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
    match signer.verify::<proto::SessionCookie>(Kind::Session, &bytes) {
        Ok(c) if c.expires_at < now_secs() => None,
        Ok(proto::SessionCookie { session: Some(ctx), .. }) if ctx.user == user => Some(Session::from(&ctx)),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!(error = %e, "ignoring session cookie");
            None
        }
    }
}

/// A `set-cookie` value carrying `session`, honoured for `ttl_secs`.
pub fn set_cookie(signer: &Signer, session: &Session, ttl_secs: i64) -> MetadataValue<tonic::metadata::Ascii> {
    let cookie = proto::SessionCookie { session: Some(session.into()), expires_at: now_secs() + ttl_secs };
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signer.sign(Kind::Session, &cookie));
    MetadataValue::try_from(format!("{COOKIE}={value}; Path=/; Max-Age={ttl_secs}; HttpOnly")).expect("base64 is ASCII")
}

/// A `set-cookie` value that ends the session.
pub fn clear_cookie() -> MetadataValue<tonic::metadata::Ascii> {
    MetadataValue::from_static("flightdeck_session=; Path=/; Max-Age=0")
}

impl From<&SessionContext> for Session {
    fn from(ctx: &SessionContext) -> Self {
        Session {
            user: ctx.user.clone(),
            catalog: ctx.catalog.clone(),
            schema: ctx.schema.clone(),
            properties: ctx.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
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

    #[test]
    fn cookie_round_trip_is_per_user() {
        let signer = Signer::new(None);
        let mut ctx = Session::of("alice");
        ctx.catalog = Some("tpch".into());
        ctx.properties.insert("a".into(), "1".into());
        let header = set_cookie(&signer, &ctx, 60);
        let cookie = header.to_str().unwrap().split(';').next().unwrap().to_string();
        let mut md = MetadataMap::new();
        md.insert("cookie", format!("other=1; {cookie}").parse().unwrap());
        assert_eq!(from_cookie(&signer, &md, "alice"), Some(ctx.clone()));
        assert_eq!(from_cookie(&signer, &md, "bob"), None, "another user's cookie is ignored");
        assert_eq!(from_cookie(&Signer::new(None), &md, "alice"), None, "a cookie of another secret is ignored");
        let mut expired = MetadataMap::new();
        let header = set_cookie(&signer, &ctx, -1);
        expired.insert("cookie", header.to_str().unwrap().split(';').next().unwrap().parse().unwrap());
        assert_eq!(from_cookie(&signer, &expired, "alice"), None, "an expired cookie is ignored");
    }
}
