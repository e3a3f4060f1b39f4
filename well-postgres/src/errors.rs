//! What went wrong talking to PostgreSQL, in words a job's owner can act
//! on, and whether asking again may help: a server that is down, starting
//! or out of connections may serve the next attempt; credentials it
//! refuses or privileges the well's role lacks will not change until an
//! operator acts.

use aquifer_well::CreateError;

/// A failure of `doing` (a phrase: "create the role aq_7") against the
/// cluster at `endpoint` (`host:port`, never with credentials).
#[must_use]
pub fn describe(endpoint: &str, doing: &str, e: &sqlx::Error) -> CreateError {
    let db = match e {
        sqlx::Error::Database(db) => db,
        sqlx::Error::PoolTimedOut => {
            return CreateError::retryable(format!(
                "cannot {doing}: no connection to PostgreSQL at {endpoint} in time (is it up and reachable?)"
            ));
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => {
            return CreateError::retryable(format!(
                "cannot {doing}: PostgreSQL at {endpoint} is unreachable: {e}"
            ));
        }
        // A configuration sqlx refuses, a row that does not decode: the
        // same next time.
        _ => return CreateError::fatal(format!("cannot {doing} at {endpoint}: {e}")),
    };
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let said = format!("{code}: {}", db.message());
    let class = code.get(..2).unwrap_or_default();
    match (class, code.as_str()) {
        ("28", _) => CreateError::fatal(format!(
            "cannot {doing}: PostgreSQL at {endpoint} refused the well's credentials ({said}); an operator must fix the well's admin_url"
        )),
        (_, "42501") => CreateError::fatal(format!(
            "cannot {doing}: the well's PostgreSQL role lacks a privilege ({said}); it needs CREATEROLE and CREATEDB (docs/wells.md, \"postgres\")"
        )),
        (_, "3D000") => CreateError::fatal(format!(
            "cannot {doing}: the database of the well's admin_url does not exist at {endpoint} ({said})"
        )),
        // Connection trouble, insufficient resources (too many
        // connections, a full disk), a server shutting down or starting,
        // a conflict with a concurrent transaction, an object in use, an
        // I/O error on the server.
        ("08" | "53" | "57" | "40" | "55" | "58", _) => CreateError::retryable(format!(
            "cannot {doing} for now: PostgreSQL at {endpoint} said {said}"
        )),
        _ => CreateError::fatal(format!(
            "cannot {doing}: PostgreSQL at {endpoint} said {said}"
        )),
    }
}

/// The same, for a destruction, which has only a reason.
#[must_use]
pub fn reason(endpoint: &str, doing: &str, e: &sqlx::Error) -> String {
    describe(endpoint, doing, e).reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_may_pass_later() {
        let io = sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        let e = describe("db1:5432", "create the role aq_1", &io);
        assert!(e.retryable);
        assert!(
            e.reason.contains("db1:5432") && e.reason.contains("refused"),
            "{e}"
        );
        let e = describe("db1:5432", "connect", &sqlx::Error::PoolTimedOut);
        assert!(e.retryable && e.reason.contains("reachable"), "{e}");
        let e = describe("db1:5432", "connect", &sqlx::Error::RowNotFound);
        assert!(!e.retryable, "{e}");
    }
}
