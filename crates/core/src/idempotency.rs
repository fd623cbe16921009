//! Whether a request is safe to repeat after its connection was lost mid-flight.

/// Decides whether a request is idempotent: safe to send again when the connection was lost
/// after it was sent (a [`Disconnect`](crate::FailureKind::Disconnect)), since it may have
/// run. seawall-classify's `ClassifyLayer` asks it once per call, before the call.
///
/// Closures `Fn(&Req) -> bool` implement it:
///
/// ```
/// use seawall_core::Idempotency;
///
/// struct Query { sql: &'static str }
/// let reads_are_safe = |q: &Query| q.sql.trim_start().starts_with("SELECT");
/// assert!(reads_are_safe.is_idempotent(&Query { sql: "SELECT 1" }));
/// assert!(!reads_are_safe.is_idempotent(&Query { sql: "INSERT INTO t VALUES (1)" }));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot tell whether a `{Req}` may be sent again",
    label = "no idempotency policy for `{Req}`",
    note = "`HttpIdempotency` reads an `http::Request`'s method: send `http::Request<Bytes>` (with `seawall::http::Reqwest` for reqwest), or set `.idempotency(AssumeIdempotent)`, `AssumeNotIdempotent` or a closure `|request: &{Req}| -> bool`"
)]
pub trait Idempotency<Req> {
    /// `true` when `request` may be sent again after a lost connection.
    fn is_idempotent(&self, request: &Req) -> bool;
}

// Not recommended in errors: a type that is no policy for a request (`HttpIdempotency` for a
// request that is not an `http::Request`) is reported as such, not as "not a closure".
#[diagnostic::do_not_recommend]
impl<Req, F: Fn(&Req) -> bool> Idempotency<Req> for F {
    fn is_idempotent(&self, request: &Req) -> bool {
        self(request)
    }
}

/// Every request is idempotent: lost connections are retried (reads, upserts, keyed writes).
#[derive(Debug, Clone, Copy, Default)]
pub struct AssumeIdempotent;

impl<Req> Idempotency<Req> for AssumeIdempotent {
    fn is_idempotent(&self, _request: &Req) -> bool {
        true
    }
}

/// No request is idempotent: a lost connection is never retried. The safe default of
/// seawall-classify's `ClassifyLayer::new`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssumeNotIdempotent;

impl<Req> Idempotency<Req> for AssumeNotIdempotent {
    fn is_idempotent(&self, _request: &Req) -> bool {
        false
    }
}

/// HTTP requests by method (feature `http`): `GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT` and
/// `DELETE` are idempotent (RFC 9110 §9.2.2), and so is any request carrying an
/// `Idempotency-Key` header, since the server deduplicates it.
///
/// ```
/// use seawall_core::{HttpIdempotency, Idempotency};
///
/// let get = http::Request::get("/items/1").body(()).unwrap();
/// let post = http::Request::post("/items").body(()).unwrap();
/// let keyed = http::Request::post("/items").header("idempotency-key", "k1").body(()).unwrap();
/// assert!(HttpIdempotency.is_idempotent(&get));
/// assert!(!HttpIdempotency.is_idempotent(&post));
/// assert!(HttpIdempotency.is_idempotent(&keyed));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpIdempotency;

impl<B> Idempotency<http::Request<B>> for HttpIdempotency {
    fn is_idempotent(&self, request: &http::Request<B>) -> bool {
        use http::Method;
        matches!(
            *request.method(),
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        ) || request.headers().contains_key("idempotency-key")
    }
}
