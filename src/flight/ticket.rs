//! DoGet tickets: the router's [`Ticket`] signed into a protobuf message,
//! and checked on the way back.

use super::error::Error;
use super::proto::{self, Kind, StatementTicket};
use super::signing::{Signer, now_secs};
use crate::router::{Outcome, Route, Ticket};

/// How long a ticket may be redeemed after it was issued.
const LIFETIME_SECS: i64 = 3600;

/// The signed ticket bytes.
pub(super) fn sign(signer: &Signer, t: &Ticket) -> Vec<u8> {
    let route = match t.route {
        Route::Cache => proto::Route::Cache,
        Route::Trino => proto::Route::Trino,
    };
    let ticket = StatementTicket {
        sql: t.sql.clone(),
        session: Some((&t.session).into()),
        registry_key: t.parked.map(|k| k.to_vec()).unwrap_or_default(),
        expires_at: now_secs() + LIFETIME_SECS,
        cache_status: t.cache.as_str().to_string(),
        result: t.result.clone(),
        run_once: t.run_once,
        parameters: t.parameters.clone(),
        route: route as i32,
    };
    signer.sign(Kind::Ticket, &ticket)
}

/// A ticket this server signed, checked: not expired, and `user`'s.
pub(super) fn verify(signer: &Signer, handle: &[u8], user: &str) -> Result<Ticket, Error> {
    let t: StatementTicket = signer.verify(Kind::Ticket, handle)?;
    if t.expires_at < now_secs() {
        return Err(Error::TicketExpired);
    }
    let session = t.session.as_ref().ok_or_else(|| Error::Malformed("ticket has no session".into()))?;
    if session.user != user {
        return Err(Error::NotYours("ticket"));
    }
    let route = match proto::Route::try_from(t.route) {
        Ok(proto::Route::Cache) => Route::Cache,
        _ => Route::Trino,
    };
    let cache = match t.cache_status.as_str() {
        "hit" => Outcome::Hit,
        "stale" => Outcome::Stale,
        "miss" => Outcome::Miss,
        _ => Outcome::Bypass,
    };
    Ok(Ticket {
        session: session.into(),
        sql: t.sql,
        parameters: t.parameters,
        route,
        cache,
        parked: t.registry_key.as_slice().try_into().ok(),
        result: t.result,
        run_once: t.run_once,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Session;

    fn ticket() -> Ticket {
        Ticket {
            sql: "SELECT ?".into(),
            parameters: vec!["1".into()],
            session: Session::of("alice"),
            route: Route::Cache,
            cache: Outcome::Stale,
            parked: Some([7; 16]),
            result: vec![1, 2, 3],
            run_once: true,
        }
    }

    #[test]
    fn a_ticket_round_trips_for_its_user_only() {
        let signer = Signer::new(None);
        let bytes = sign(&signer, &ticket());
        assert_eq!(verify(&signer, &bytes, "alice").unwrap(), ticket());
        assert!(matches!(verify(&signer, &bytes, "bob"), Err(Error::NotYours(_))));
        assert!(matches!(verify(&Signer::new(None), &bytes, "alice"), Err(Error::Sign(_))));
        let trino = Ticket { route: Route::Trino, cache: Outcome::Bypass, parked: None, ..ticket() };
        assert_eq!(verify(&signer, &sign(&signer, &trino), "alice").unwrap(), trino);
    }
}
