//! The attempt timeout: bounds one call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use seawall_classify::{BoxError, ConfigError, Error, HasDeadline, call_instant};
use tokio::time::{Instant, Sleep, sleep_until};
use tower_layer::Layer;
use tower_service::Service;

use crate::future::{Bound, ResponseFuture};

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
/// request's deadline ([`HasDeadline`]) comes sooner.
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

/// Bounds each call by an attempt timeout and by the request's deadline, whichever is
/// sooner, with one timer per call. See [`AttemptTimeoutLayer`].
#[derive(Debug)]
pub struct AttemptTimeout<S> {
    inner: S,
    timeout: Duration,
    include_readiness: bool,
    readiness: Readiness,
}

/// The readiness wait, when it counts against the timeout.
#[derive(Debug)]
enum Readiness {
    Idle,
    Waiting {
        started: Instant,
        // Only allocated when the inner service is not ready at once.
        sleep: Option<Pin<Box<Sleep>>>,
    },
    Ready {
        started: Instant,
    },
    TimedOut,
}

impl<S: Clone> Clone for AttemptTimeout<S> {
    fn clone(&self) -> Self {
        // A clone starts its own readiness wait: it never inherits this one's.
        AttemptTimeout {
            inner: self.inner.clone(),
            timeout: self.timeout,
            include_readiness: self.include_readiness,
            readiness: Readiness::Idle,
        }
    }
}

impl<S> AttemptTimeout<S> {
    /// When the clock of the coming call started, or `None` if readiness already timed out.
    /// Out of line: only services that count readiness pay for it.
    #[inline(never)]
    fn take_readiness(&mut self) -> Option<Instant> {
        match std::mem::replace(&mut self.readiness, Readiness::Idle) {
            Readiness::TimedOut => None,
            Readiness::Ready { started } | Readiness::Waiting { started, .. } => Some(started),
            Readiness::Idle => Some(Instant::now()),
        }
    }

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

impl<S, Req> Service<Req> for AttemptTimeout<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
    Req: HasDeadline,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.include_readiness {
            return self.inner.poll_ready(cx).map_err(Error::from_inner);
        }
        let started = match &self.readiness {
            Readiness::Idle => Instant::now(),
            Readiness::Waiting { started, .. } | Readiness::Ready { started } => *started,
            Readiness::TimedOut => return Poll::Ready(Ok(())),
        };
        match self.inner.poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                self.readiness = Readiness::Ready { started };
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => {
                self.readiness = Readiness::Idle;
                Poll::Ready(Err(Error::from_inner(error)))
            }
            Poll::Pending => {
                let sleep = match &mut self.readiness {
                    Readiness::Waiting {
                        sleep: Some(sleep), ..
                    } => sleep,
                    _ => {
                        self.readiness = Readiness::Waiting {
                            started,
                            sleep: Some(Box::pin(sleep_until(started + self.timeout))),
                        };
                        match &mut self.readiness {
                            Readiness::Waiting {
                                sleep: Some(sleep), ..
                            } => sleep,
                            _ => unreachable!("just set"),
                        }
                    }
                };
                if sleep.as_mut().poll(cx).is_ready() {
                    // Report ready so the caller hands over its request, then fail that call
                    // without touching the inner service.
                    self.readiness = Readiness::TimedOut;
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // The instant an enclosing layer read for this call, or the clock (see `clock`).
        let now = call_instant::get();
        let started = if self.include_readiness {
            match self.take_readiness() {
                Some(started) => started,
                None => return ResponseFuture::expired(Bound::Attempt(self.timeout)),
            }
        } else {
            now
        };
        let own = started + self.timeout;
        let (until, bound) = match request.deadline() {
            Some(deadline) if deadline < own => (deadline, Bound::Deadline),
            _ => (own, Bound::Attempt(self.timeout)),
        };
        if bound == Bound::Deadline && until <= now {
            return ResponseFuture::expired(bound);
        }
        ResponseFuture::running(self.inner.call(request), until, bound)
    }
}
