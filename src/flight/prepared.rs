//! Prepared-statement handles: signed and stateless, so any replica serves
//! them; closing one is remembered by the replica that closed it.

use super::error::Error;
use super::proto::{Kind, PreparedStatementHandle};
use super::signing::{Signer, now_secs};
use crate::router::Session;

/// Issues and checks handles.
#[derive(Debug)]
pub(super) struct Handles {
    signer: Signer,
    /// Lifetime of a handle.
    ttl_secs: i64,
    /// Ids of closed statements, so their handles (and bound versions) are
    /// refused afterwards. Bounded; entries expire after a day.
    closed: moka::sync::Cache<Vec<u8>, ()>,
}

/// A verified handle.
#[derive(Debug)]
pub(super) struct Prepared {
    pub session: Session,
    pub sql: String,
    pub parameters: Vec<String>,
    handle: PreparedStatementHandle,
}

impl Handles {
    pub fn new(signer: Signer, ttl_secs: i64) -> Self {
        let closed = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(std::time::Duration::from_secs(86_400))
            .build();
        Handles { signer, ttl_secs, closed }
    }

    /// A new handle for `sql` in `session`.
    pub fn issue(&self, session: &Session, sql: String) -> Vec<u8> {
        let handle = PreparedStatementHandle {
            sql,
            session: Some(session.into()),
            parameters: Vec::new(),
            id: rand::random::<[u8; 16]>().to_vec(),
            expires_at: now_secs() + self.ttl_secs,
        };
        self.signer.sign(Kind::Prepared, &handle)
    }

    /// The handle, if it verifies, is `user`'s, and is neither expired nor closed.
    pub fn verify(&self, bytes: &[u8], user: &str) -> Result<Prepared, Error> {
        let h: PreparedStatementHandle = self.signer.verify(Kind::Prepared, bytes)?;
        let owner =
            h.session.as_ref().ok_or_else(|| Error::Malformed("prepared statement handle has no session".into()))?;
        if owner.user != user {
            return Err(Error::NotYours("prepared statement"));
        }
        if h.expires_at < now_secs() {
            return Err(Error::HandleGone("handle has expired"));
        }
        if self.closed.contains_key(&h.id) {
            return Err(Error::HandleGone("was closed"));
        }
        Ok(Prepared { session: Session::from(owner), sql: h.sql.clone(), parameters: h.parameters.clone(), handle: h })
    }

    /// The same statement with `parameters` bound: a new handle sharing the id.
    pub fn rebind(&self, p: Prepared, parameters: Vec<String>) -> Vec<u8> {
        self.signer.sign(Kind::Prepared, &PreparedStatementHandle { parameters, ..p.handle })
    }

    /// Refuses the statement's handles on this replica from now on.
    pub fn close(&self, p: Prepared) {
        if !p.handle.id.is_empty() {
            self.closed.insert(p.handle.id, ());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_per_user_and_closed_with_their_bound_versions() {
        let handles = Handles::new(Signer::new(None), 60);
        let bytes = handles.issue(&Session::of("alice"), "SELECT ?".into());
        let p = handles.verify(&bytes, "alice").unwrap();
        assert_eq!((p.sql.as_str(), p.parameters.len()), ("SELECT ?", 0));
        assert!(matches!(handles.verify(&bytes, "bob"), Err(Error::NotYours(_))));
        let bound = handles.rebind(p, vec!["1".into()]);
        assert_eq!(handles.verify(&bound, "alice").unwrap().parameters, vec!["1".to_string()]);
        handles.close(handles.verify(&bytes, "alice").unwrap());
        assert!(matches!(handles.verify(&bound, "alice"), Err(Error::HandleGone(_))));
        let expired = Handles::new(Signer::new(None), -1);
        let bytes = expired.issue(&Session::of("alice"), "SELECT 1".into());
        assert!(matches!(expired.verify(&bytes, "alice"), Err(Error::HandleGone(_))));
    }
}
