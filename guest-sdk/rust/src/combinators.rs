//! join_all and select over tasks (or any futures), polled by the SDK's
//! executor. They are deterministic: children are polled in order, and the
//! host's `poll` reports resolved tasks in resolution order (ABI 10.3), so a
//! replay picks the same winner.

use crate::error::Result;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Waits for every future; resolves to their outputs in order.
pub fn join_all<F: Future + Unpin>(futures: Vec<F>) -> JoinAll<F> {
    let n = futures.len();
    JoinAll { futures: futures.into_iter().map(Some).collect(), outputs: (0..n).map(|_| None).collect() }
}

/// Waits for every task; resolves to all outputs, or to the first error (in
/// order of the vector) once all have finished.
pub async fn try_join_all<T, F: Future<Output = Result<T>> + Unpin>(futures: Vec<F>) -> Result<Vec<T>> {
    join_all(futures).await.into_iter().collect()
}

/// The future of [`join_all`].
pub struct JoinAll<F: Future> {
    futures: Vec<Option<F>>,
    outputs: Vec<Option<F::Output>>,
}

impl<F: Future + Unpin> Unpin for JoinAll<F> {}

impl<F: Future + Unpin> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut pending = false;
        for (slot, out) in this.futures.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(f) = slot {
                match Pin::new(f).poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            return Poll::Pending;
        }
        Poll::Ready(this.outputs.iter_mut().map(|o| o.take().expect("joined output")).collect())
    }
}

/// Waits for the first of the futures to finish; resolves to its index and
/// output (and the futures not finished, which may be awaited later).
pub fn select<F: Future + Unpin>(futures: Vec<F>) -> Select<F> {
    Select { futures: Some(futures) }
}

/// The future of [`select`].
pub struct Select<F> {
    futures: Option<Vec<F>>,
}

impl<F: Future + Unpin> Future for Select<F> {
    type Output = (usize, F::Output, Vec<F>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let futures = self.futures.as_mut().expect("select polled after completion");
        for i in 0..futures.len() {
            if let Poll::Ready(v) = Pin::new(&mut futures[i]).poll(cx) {
                let mut rest = self.futures.take().unwrap();
                rest.remove(i);
                return Poll::Ready((i, v, rest));
            }
        }
        Poll::Pending
    }
}

/// One of two values.
#[derive(Debug, Clone, PartialEq)]
pub enum Either<A, B> {
    /// The first future finished first.
    Left(A),
    /// The second future finished first.
    Right(B),
}

/// Waits for the first of two futures of different types.
pub fn select2<A: Future + Unpin, B: Future + Unpin>(a: A, b: B) -> Select2<A, B> {
    Select2 { a, b }
}

/// The future of [`select2`].
pub struct Select2<A, B> {
    a: A,
    b: B,
}

impl<A: Future + Unpin, B: Future + Unpin> Future for Select2<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = Pin::new(&mut self.a).poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = Pin::new(&mut self.b).poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    }
}
