//! The two layers: [`DeadlineLayer`] (the end-to-end deadline: bounds a whole request and
//! publishes the bound to inner layers) and [`AttemptTimeoutLayer`] (bounds one call).

use std::time::Duration;

use seawall_classify::ConfigError;
use tower_layer::Layer;

use crate::service::Readiness;
use crate::{AttemptTimeout, Deadline};

/// Applies [`Deadline`] to a service: each request must finish within `budget`, retries,
/// backoff sleeps and queueing included.
///
/// The deadline is written onto the request ([`HasDeadline::set_deadline`](crate::HasDeadline::set_deadline)) so that every
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

/// The longest attempt timeout accepted: anything longer is a configuration mistake.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

pub(crate) fn check_duration(
    layer: &'static str,
    field: &'static str,
    value: Duration,
) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::new(layer, field, "must be greater than zero"));
    }
    if value > MAX_TIMEOUT {
        return Err(ConfigError::new(
            layer,
            field,
            format!("is {value:?}, longer than the maximum of 365 days"),
        ));
    }
    Ok(())
}

/// Applies [`AttemptTimeout`] to a service: each call gets at most `timeout`, or less when the
/// request's deadline ([`HasDeadline`](crate::HasDeadline)) comes sooner.
///
/// ```
/// use std::time::Duration;
/// use seawall_classify::{cause_ref, WithDeadline};
/// use seawall_timeout::{error::Elapsed, AttemptTimeoutLayer};
/// use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), seawall_classify::BoxError> {
/// let mut slow = ServiceBuilder::new()
///     .layer(AttemptTimeoutLayer::try_new(Duration::from_millis(100))?)
///     .service(service_fn(|_req: WithDeadline<()>| async {
///         tokio::time::sleep(Duration::from_secs(10)).await;
///         Ok::<_, std::io::Error>("too late")
///     }));
///
/// let err = slow.ready().await?.call(WithDeadline::new(())).await.unwrap_err();
/// assert!(cause_ref::<Elapsed>(&err).is_some());
/// assert_eq!(err.kind(), Some(seawall_classify::FailureKind::Timeout));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AttemptTimeoutLayer {
    timeout: Duration,
    include_readiness: bool,
}

impl AttemptTimeoutLayer {
    /// A layer bounding each attempt by `timeout`. Fails when `timeout` is zero or longer
    /// than [`MAX_TIMEOUT`].
    pub fn try_new(timeout: Duration) -> Result<Self, ConfigError> {
        check_duration("attempt timeout", "timeout", timeout)?;
        Ok(AttemptTimeoutLayer {
            timeout,
            include_readiness: false,
        })
    }

    /// Counts the wait for the inner service's readiness against the timeout (default: no).
    ///
    /// tower's `Timeout` starts its clock when the request is sent, so a service that is not
    /// ready (a pool with no free connection, say) can keep a caller waiting without bound.
    /// With this set, the clock starts at the first `poll_ready` and, if the inner service is
    /// still not ready when the timeout passes, the service reports ready anyway and the call
    /// fails at once with [`Elapsed`](crate::error::Elapsed), without reaching the inner
    /// service. `poll_ready` itself never fails because of the timeout, so the service stays
    /// usable.
    #[must_use]
    pub fn include_readiness(mut self, include: bool) -> Self {
        self.include_readiness = include;
        self
    }

    /// The attempt timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl<S> Layer<S> for AttemptTimeoutLayer {
    type Service = AttemptTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AttemptTimeout {
            inner,
            timeout: self.timeout,
            include_readiness: self.include_readiness,
            readiness: Readiness::Idle,
        }
    }
}
