//! The response future of [`Chaos`](crate::Chaos).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use seawall_classify::{BoxError, Class, Error};
use tokio::time::{Sleep, sleep};

use crate::error::InjectedFault;

pin_project! {
    /// The response future of [`Chaos`].
    pub struct ResponseFuture<F, T> {
        #[pin]
        pub(crate) state: State<F, T>,
    }
}

pin_project! {
    #[project = StateProj]
    pub(crate) enum State<F, T> {
        Calling { #[pin] inner: F, delay: Option<Duration> },
        Delaying { response: Option<T>, #[pin] sleep: Sleep },
        Failed { class: Option<Class> },
        Hanging,
    }
}

impl<F, T> fmt::Debug for ResponseFuture<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F, T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError> + 'static,
{
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Calling { inner, delay } => {
                    let result = ready!(inner.poll(cx));
                    match (result, *delay) {
                        (Ok(response), Some(delay)) => this.state.set(State::Delaying {
                            response: Some(response),
                            sleep: sleep(delay),
                        }),
                        (result, _) => return Poll::Ready(result.map_err(Error::from_inner)),
                    }
                }
                StateProj::Delaying { response, sleep } => {
                    ready!(sleep.poll(cx));
                    let response = response.take().expect("response kept while delaying");
                    return Poll::Ready(Ok(response));
                }
                StateProj::Failed { class } => {
                    let class = class.take().expect("polled after completion");
                    return Poll::Ready(Err(Error::new(class, InjectedFault { class })));
                }
                StateProj::Hanging => return Poll::Pending,
            }
        }
    }
}
