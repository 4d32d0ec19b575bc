//! Client sessions (catalog, schema, Trino session properties), kept by the
//! client in a signed cookie so that any replica can serve it and the server
//! holds no per-client state.
//!
//! SetSessionOptions, `USE` and `SET SESSION` answer with `set-cookie`;
//! clients with cookie support (the JDBC driver always; ADBC with
//! `adbc.flight.sql.rpc.with_cookie_middleware=true`) send it back.

use base64::Engine;
use tonic::metadata::{MetadataMap, MetadataValue};

use super::proto::session_option_value::OptionValue;
use super::proto::{self, Kind, SessionContext};
use super::signing::{Signer, now_secs};
use crate::router::Router;
use crate::trino::SessionUpdate;

/// The cookie's name.
pub const COOKIE: &str = "flightdeck_session";

/// The session in the request's cookie, if it verifies and is `user`'s.
/// A stale or foreign cookie is ignored: the client gets the defaults.
pub fn from_cookie(signer: &Signer, md: &MetadataMap, user: &str) -> Option<SessionContext> {
    let value = md
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
    match signer.verify::<proto::SessionCookie>(Kind::Session, &bytes) {
        Ok(c) if c.expires_at < now_secs() => None,
        Ok(proto::SessionCookie { session: Some(ctx), .. }) if ctx.user == user => Some(ctx),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!(error = %e, "ignoring session cookie");
            None
        }
    }
}

/// A `set-cookie` value carrying `ctx`, honoured for `ttl_secs`.
pub fn set_cookie(signer: &Signer, ctx: &SessionContext, ttl_secs: i64) -> MetadataValue<tonic::metadata::Ascii> {
    let cookie = proto::SessionCookie { session: Some(ctx.clone()), expires_at: now_secs() + ttl_secs };
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signer.sign(Kind::Session, &cookie));
    MetadataValue::try_from(format!("{COOKIE}={value}; Path=/; Max-Age={ttl_secs}; HttpOnly")).expect("base64 is ASCII")
}

/// A `set-cookie` value that ends the session.
pub fn clear_cookie() -> MetadataValue<tonic::metadata::Ascii> {
    MetadataValue::from_static("flightdeck_session=; Path=/; Max-Age=0")
}

/// Applies what Trino asked for (`USE`, `SET SESSION`, `RESET SESSION`);
/// true if anything changed.
pub fn apply(ctx: &mut SessionContext, updates: &[SessionUpdate]) -> bool {
    for u in updates {
        match u {
            SessionUpdate::Catalog(c) => ctx.catalog = Some(c.clone()),
            SessionUpdate::Schema(s) => ctx.schema = Some(s.clone()),
            SessionUpdate::SetProperty(k, v) => {
                ctx.properties.insert(k.clone(), v.clone());
            }
            SessionUpdate::ClearProperty(k) => {
                ctx.properties.remove(k);
            }
        }
    }
    !updates.is_empty()
}

/// Applies SetSessionOptions: `catalog` and `schema` are checked against
/// what the user may see, other names are Trino session properties,
/// checked by Trino on a trivial query. Returns the new session and the
/// options refused.
pub(super) async fn set_options(
    router: &Router,
    mut ctx: SessionContext,
    req: proto::SetSessionOptionsRequest,
) -> (SessionContext, std::collections::HashMap<String, proto::set_session_options_result::Error>) {
    use proto::set_session_options_result::{Error, ErrorValue};
    let mut errors = std::collections::HashMap::new();
    let mut refuse = |name: &str, v: ErrorValue| {
        errors.insert(name.to_string(), Error { value: v as i32 });
    };
    // Options are applied catalog first, schema next. Clients may also set
    // them one call at a time, in any order: setting the catalog leaves the
    // schema as it is, and checks run without the session's catalog and
    // schema so a half-set pair does not fail them.
    let mut options: Vec<_> = req.session_options.into_iter().collect();
    options.sort_by_key(|(name, _)| match name.as_str() {
        "catalog" => 0,
        "schema" => 1,
        _ => 2,
    });
    tracing::debug!(user = %ctx.user, options = ?options.iter().map(|(k, _)| k).collect::<Vec<_>>(), "SetSessionOptions");
    for (name, value) in options {
        let text = match value.option_value {
            None => None,
            Some(OptionValue::StringValue(s)) => Some(s),
            Some(OptionValue::BoolValue(b)) => Some(b.to_string()),
            Some(OptionValue::Int64Value(i)) => Some(i.to_string()),
            Some(OptionValue::DoubleValue(d)) => Some(d.to_string()),
            Some(OptionValue::StringListValue(_)) => {
                refuse(&name, ErrorValue::InvalidValue);
                continue;
            }
        };
        match (name.as_str(), text) {
            ("catalog", Some(c)) => match router
                .execute(
                    &SessionContext { catalog: None, schema: None, ..ctx.clone() },
                    &format!("SHOW SCHEMAS FROM \"{}\"", c.replace('"', "\"\"")),
                )
                .await
            {
                Ok(_) => {
                    ctx.catalog = Some(c);
                }
                Err(e) => {
                    tracing::info!(error = %e, "SetSessionOptions: catalog refused");
                    refuse(&name, ErrorValue::InvalidValue);
                }
            },
            ("catalog", None) => ctx.catalog = None,
            ("schema", Some(s)) => ctx.schema = Some(s),
            ("schema", None) => ctx.schema = None,
            (property, Some(v)) => {
                let mut probe = ctx.clone();
                probe.properties.insert(property.to_string(), v.clone());
                match router.execute(&SessionContext { catalog: None, schema: None, ..probe.clone() }, "SELECT 1").await
                {
                    Ok(_) => ctx = probe,
                    Err(e) => {
                        tracing::info!(error = %e, "SetSessionOptions: property refused");
                        let invalid_name =
                            matches!(&e, crate::trino::Error::Query(q) if q.message.contains("does not exist"));
                        refuse(&name, if invalid_name { ErrorValue::InvalidName } else { ErrorValue::InvalidValue });
                    }
                }
            }
            (property, None) => {
                ctx.properties.remove(property);
            }
        }
    }
    (ctx, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trip_is_per_user() {
        let signer = Signer::new(None);
        let mut ctx = SessionContext { user: "alice".into(), ..Default::default() };
        assert!(apply(
            &mut ctx,
            &[SessionUpdate::Catalog("tpch".into()), SessionUpdate::SetProperty("a".into(), "1".into())]
        ));
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
        apply(&mut ctx, &[SessionUpdate::ClearProperty("a".into())]);
        assert!(ctx.properties.is_empty());
    }
}
