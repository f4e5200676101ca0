//! A one-shot hand-off between a request and the store's writer: the request holds a [`Ticket`]
//! and answers once the writer settles it through the matching [`Completer`].
//!
//! It is a plain `Future`, so tokio servers `.await` it; the may server polls it from a coroutine
//! with a waker that unparks that coroutine (see `server::may`), so neither side needs the
//! other's runtime. A completer dropped without settling (a writer that died) settles as
//! [`Ack::Saturated`]: the request answers 503 and Didit retries, never a hang and never a 200.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// The final answer for a verified delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ack {
    /// New, and kept as the store promises (queued, committed or confirmed).
    Accepted,
    /// Already kept before: answer 200, do nothing.
    Duplicate,
    /// Not kept: answer 503 with `Retry-After` so that Didit retries.
    Saturated,
}

#[derive(Debug, Default)]
struct Slot {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    done: Option<Ack>,
    waker: Option<Waker>,
}

/// The request's side.
#[derive(Debug)]
pub(crate) struct Ticket(Arc<Slot>);

/// The writer's side.
#[derive(Debug)]
pub(crate) struct Completer(Option<Arc<Slot>>);

/// A connected pair.
pub(crate) fn ticket() -> (Ticket, Completer) {
    let slot = Arc::new(Slot::default());
    (Ticket(Arc::clone(&slot)), Completer(Some(slot)))
}

impl Completer {
    /// Settles the ticket and wakes its request.
    pub(crate) fn complete(mut self, ack: Ack) {
        if let Some(slot) = self.0.take() {
            settle(&slot, ack);
        }
    }
}

fn settle(slot: &Slot, ack: Ack) {
    let waker = {
        let mut st = slot.state.lock().unwrap_or_else(|p| p.into_inner());
        st.done = Some(ack);
        st.waker.take()
    };
    // Wake outside the lock: the woken task may poll at once on another thread.
    if let Some(w) = waker {
        w.wake();
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            settle(&slot, Ack::Saturated);
        }
    }
}

impl Future for Ticket {
    type Output = Ack;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ack> {
        let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        match st.done {
            Some(ack) => Poll::Ready(ack),
            None => {
                match &mut st.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    w => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on(t: Ticket) -> Ack {
        // A thread-parking waker: enough for a test, and it exercises the wake path.
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut t = std::pin::pin!(t);
        loop {
            if let Poll::Ready(a) = t.as_mut().poll(&mut cx) {
                return a;
            }
            std::thread::park();
        }
    }

    #[test]
    fn settles_across_threads() {
        let (t, c) = ticket();
        let h = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            c.complete(Ack::Duplicate);
        });
        assert_eq!(block_on(t), Ack::Duplicate);
        h.join().expect("writer thread");
    }

    #[test]
    fn a_dropped_completer_refuses() {
        let (t, c) = ticket();
        drop(c);
        assert_eq!(block_on(t), Ack::Saturated);
    }
}
