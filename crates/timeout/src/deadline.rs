//! The end-to-end deadline: bounds a whole request, and publishes the bound to inner layers.

use std::task::{Context, Poll};
use std::time::Duration;

use seawall_classify::{BoxError, ConfigError, Error, HasDeadline, call_instant};
use tower_layer::Layer;
use tower_service::Service;

use crate::attempt::check_duration;
use crate::future::{Bound, ResponseFuture};

/// Applies [`Deadline`] to a service: each request must finish within `budget`, retries,
/// backoff sleeps and queueing included.
///
/// The deadline is written onto the request ([`HasDeadline::set_deadline`]) so that every
/// layer inside can bound its own waiting by it. A deadline already on the request (set by an
/// outer layer, or from a client's header) is kept when it is earlier.
///
/// What the layers inside see is the instant this layer gives up at: the deadline less its
/// [`margin`](Self::margin). So an attempt timeout inside ends a hung call at that instant
/// with [`DeadlineExceeded`](seawall_classify::DeadlineExceeded), through every layer between
/// (a circuit breaker counts it as a timeout, an adaptive limit as a drop), and a limit's
/// queue refuses a call it could not admit in time; the answer still reaches the caller
/// before its deadline. Whatever is still running when this layer's own timer fires is cut,
/// and the layers it passed record it as a timeout too (see [`seawall_classify::cut`]): a
/// caller's deadline shorter than the attempt timeout never hides a hung dependency.
///
/// ```
/// use std::time::Duration;
/// use seawall_classify::{cause_ref, DeadlineExceeded, HasDeadline, WithDeadline};
/// use seawall_timeout::DeadlineLayer;
/// use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), seawall_classify::BoxError> {
/// let mut service = ServiceBuilder::new()
///     .layer(DeadlineLayer::try_new(Duration::from_secs(2))?)
///     .service(service_fn(|req: WithDeadline<&'static str>| async move {
///         // Inner code sees the time it has left, e.g. for `SET statement_timeout`.
///         let left = req.remaining().expect("the deadline layer set it");
///         assert!(left <= Duration::from_secs(2));
///         tokio::time::sleep(Duration::from_secs(5)).await;
///         Ok::<_, std::io::Error>(())
///     }));
///
/// let err = service.ready().await?.call(WithDeadline::new("query")).await.unwrap_err();
/// assert!(cause_ref::<DeadlineExceeded>(&err).is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    budget: Duration,
    margin: Duration,
}

/// How much earlier than the deadline a request is given up by default: timer granularity
/// (tokio's timer fires on the first millisecond tick at or after its instant), waking the
/// task, and the work on the way out must fit before the deadline, so that an answer never
/// reaches its caller after it.
pub const DEFAULT_MARGIN: Duration = Duration::from_millis(5);

impl DeadlineLayer {
    /// A layer giving each request `budget` end to end. Fails when `budget` is zero or
    /// longer than [`MAX_TIMEOUT`](crate::MAX_TIMEOUT).
    ///
    /// The request is given up [`DEFAULT_MARGIN`] before its deadline (at most an eighth of
    /// the time it has left), so that the error reaches the caller in time; see
    /// [`margin`](Self::margin).
    pub fn try_new(budget: Duration) -> Result<Self, ConfigError> {
        check_duration("deadline", "budget", budget)?;
        Ok(DeadlineLayer {
            budget,
            margin: DEFAULT_MARGIN,
        })
    }

    /// How much earlier than the deadline the request is given up (at most an eighth of the
    /// time it has left when it starts). Zero gives up at the deadline itself, whose error
    /// then reaches the caller a timer tick or more after it.
    #[must_use]
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The end-to-end budget.
    #[must_use]
    pub fn budget(&self) -> Duration {
        self.budget
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            budget: self.budget,
            margin: self.margin,
            roomy: self.margin.checked_mul(8).is_some_and(|m| m <= self.budget),
        }
    }
}

/// Sets and enforces an end-to-end deadline; see [`DeadlineLayer`].
///
/// The budget starts when the request is handed over (`call`), not while waiting for
/// readiness, like tower's `Timeout`. A request whose deadline has already passed fails at
/// once with [`DeadlineExceeded`](seawall_classify::DeadlineExceeded), without reaching the
/// inner service.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    budget: Duration,
    margin: Duration,
    // The budget holds eight margins: a call whose deadline is the budget's own keeps the
    // whole margin without another instant addition.
    roomy: bool,
}

impl<S> Deadline<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for Deadline<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
    Req: HasDeadline,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, mut request: Req) -> Self::Future {
        // The clock, or the instant an enclosing layer read for this call.
        let now = call_instant::get();
        let cap = now + self.budget;
        // An earlier deadline on the request (the caller's) is kept.
        let until = match request.deadline() {
            Some(deadline) if deadline <= cap => deadline,
            _ => cap,
        };
        if until <= now {
            return ResponseFuture::expired(Bound::Deadline);
        }
        // The margin, or an eighth of the time left when that is less. Compared as instants
        // first: with any usual deadline the whole margin fits, and an addition is half the
        // work of the subtraction the eighth needs.
        let early = if self.roomy && until == cap {
            self.margin
        } else {
            match now.checked_add(self.margin.saturating_mul(8)) {
                Some(roomy) if roomy <= until => self.margin,
                _ => self.margin.min((until - now) / 8),
            }
        };
        // The layers inside are given the instant this layer gives up at, not the deadline
        // itself: their own bounds (the attempt timeout, the limit's queue) end the call then,
        // as an outcome they and the layers between record, before this layer's timer would
        // cut it unseen. (What is still running when the timer fires is cut too, see `cut`.)
        let give_up = until - early;
        request.set_deadline(give_up);
        // The layers inside read this instant rather than the clock again (see `clock`).
        let future = call_instant::lend(now, || self.inner.call(request));
        ResponseFuture::running(future, give_up, Bound::Deadline)
    }
}
