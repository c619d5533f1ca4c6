//! A batch's span follows from the span of each caller it serves, so that a request's
//! trace leads to the batch that did its work in another task. Alone in its binary: a
//! scoped subscriber in a test binary whose other tests emit the same spans on other
//! threads without one loses spans to tracing's shared interest cache.

use std::sync::{Arc, Mutex};

use natter_core::coalesce::{Batch, Coalescer};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Doubles numbers.
struct Doubling;

impl Batch for Doubling {
    type Key = ();
    type Request = u32;
    type Answer = u32;

    async fn run(&self, (): &(), requests: Vec<u32>) -> Vec<u32> {
        requests.into_iter().map(|n| n * 2).collect()
    }
}

/// Records which span follows from which, by name.
#[derive(Clone, Default)]
struct Follows(Arc<Mutex<Vec<(&'static str, &'static str)>>>);

impl<S> tracing_subscriber::Layer<S> for Follows
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_follows_from(
        &self,
        span: &tracing::span::Id,
        follows: &tracing::span::Id,
        cx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let name = |id| cx.span(id).map_or("", |span| span.name());
        self.0.lock().unwrap().push((name(span), name(follows)));
    }
}

#[tokio::test]
async fn the_batch_span_follows_from_each_callers_span() {
    let follows = Follows::default();
    let subscriber = tracing_subscriber::registry().with(follows.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let coalescer = Coalescer::new(Doubling, 4);
    let caller = tracing::info_span!("caller");
    assert_eq!(coalescer.ask((), 2).instrument(caller).await, Some(4));
    assert_eq!(*follows.0.lock().unwrap(), [("batch", "caller")]);
}
