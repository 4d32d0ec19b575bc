//! DoGet tickets: the router's [`Ticket`] signed into a protobuf message,
//! and checked on the way back.

use arrow_flight::sql::{Any, ProstMessageExt, TicketStatementQuery};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo};
use prost::Message;

use super::error::Error;
use super::proto::{self, Kind, StatementTicket};
use super::signing::{Signer, now_secs};
use crate::router::{Outcome, Plan, Route, Ticket};

/// How long a ticket may be redeemed after it was issued.
const LIFETIME_SECS: i64 = 3600;

/// The signed ticket bytes.
pub(super) fn sign(signer: &Signer, t: &Ticket) -> Vec<u8> {
    let route = match t.route {
        Route::Cache => proto::Route::Cache,
        Route::Trino => proto::Route::Trino,
        Route::Local => proto::Route::Local,
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

/// GetFlightInfo's answer for a plan: its schema, row count when known,
/// and one endpoint whose ticket is the signed plan ticket.
pub(super) fn flight_info(signer: &Signer, plan: &Plan, descriptor: FlightDescriptor) -> Result<FlightInfo, Error> {
    let ticket = TicketStatementQuery { statement_handle: sign(signer, &plan.ticket).into() };
    let endpoint = FlightEndpoint::new().with_ticket(arrow_flight::Ticket::new(ticket.as_any().encode_to_vec()));
    let mut info = FlightInfo::new()
        .try_with_schema(&plan.schema)
        .map_err(|e| Error::Internal(format!("cannot encode schema: {e}")))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor)
        .with_ordered(true);
    if let Some(rows) = plan.rows {
        info = info.with_total_records(rows as i64);
    }
    Ok(info)
}

/// The statement ticket of a FlightInfo this server issued to `user`;
/// `None` for a ticket of another kind (a metadata command).
pub(super) fn of_flight_info(signer: &Signer, info: &FlightInfo, user: &str) -> Result<Option<Ticket>, Error> {
    let ticket = info
        .endpoint
        .first()
        .and_then(|e| e.ticket.as_ref())
        .ok_or_else(|| Error::Malformed("FlightInfo has no ticket".into()))?;
    let any = Any::decode(ticket.ticket.clone()).map_err(|e| Error::malformed("ticket", e))?;
    match any.unpack::<TicketStatementQuery>().map_err(|e| Error::malformed("ticket", e))? {
        Some(tq) => verify(signer, &tq.statement_handle, user).map(Some),
        None => Ok(None),
    }
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
        Ok(proto::Route::Local) => Route::Local,
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
