//! The server-side record of one exchange: its disconnect notifier and early hints.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use http::HeaderMap;
use rgi::ext::{EarlyHintsError, SendEarlyHints};
use rgi::{Disconnect, DisconnectNotifier, Outcome};

/// What the test client knows about one exchange while it runs.
pub(crate) struct Exchange {
    notifier: Mutex<Option<DisconnectNotifier>>,
    disconnect: Disconnect,
    head_sent: AtomicBool,
    hints: Mutex<Vec<HeaderMap>>,
}

impl Exchange {
    pub(crate) fn new() -> Arc<Self> {
        let (disconnect, notifier) = Disconnect::pair();
        Arc::new(Self {
            notifier: Mutex::new(Some(notifier)),
            disconnect,
            head_sent: AtomicBool::new(false),
            hints: Mutex::new(Vec::new()),
        })
    }

    /// The request's signal (a clone goes into the request's extensions).
    pub(crate) fn disconnect(&self) -> &Disconnect {
        &self.disconnect
    }

    /// Settles the signal; later calls do nothing (`HTTP-DISC-3`).
    pub(crate) fn settle(&self, outcome: Outcome) {
        let notifier = self
            .notifier
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(notifier) = notifier {
            match outcome {
                Outcome::Completed => notifier.completed(),
                Outcome::ClientGone => notifier.client_gone(),
                _ => notifier.aborted(),
            }
        }
    }

    pub(crate) fn mark_head_sent(&self) {
        self.head_sent.store(true, Ordering::SeqCst);
    }

    pub(crate) fn early_hints(&self) -> Vec<HeaderMap> {
        self.hints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The test client's `103 Early Hints` sender: records each hint (`HTTP-INTERIM-4`, `-5`).
pub(crate) struct HintsRecorder(pub(crate) Arc<Exchange>);

impl SendEarlyHints for HintsRecorder {
    fn send_early_hints(
        &self,
        headers: HeaderMap,
    ) -> Pin<Box<dyn Future<Output = Result<(), EarlyHintsError>> + Send>> {
        let exchange = &self.0;
        let result = if exchange.head_sent.load(Ordering::SeqCst) {
            Err(EarlyHintsError::HeadSent)
        } else if exchange.disconnect.outcome().is_some() {
            Err(EarlyHintsError::ClientGone)
        } else {
            exchange
                .hints
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(headers);
            Ok(())
        };
        Box::pin(std::future::ready(result))
    }
}
