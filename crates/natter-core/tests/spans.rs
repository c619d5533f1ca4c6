//! A batch's span is a child of its first caller's span and follows from the span of each
//! other caller it serves, so that a request's trace leads to the batch that did its work
//! in another task (and a lone request's trace holds it whole). Alone in its binary: a
//! scoped subscriber in a test binary whose other tests emit the same spans on other
//! threads without one loses spans to tracing's shared interest cache.

use std::sync::{Arc, Mutex};

use natter_core::coalesce::{Batch, Coalescer};
use tokio::sync::Semaphore;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Doubles numbers, each batch once a permit is given.
struct Doubling(Arc<Semaphore>);

impl Batch for Doubling {
    type Key = ();
    type Request = u32;
    type Answer = u32;

    async fn run(&self, (): &(), requests: Vec<u32>) -> Vec<u32> {
        self.0.acquire().await.unwrap().forget();
        requests.into_iter().map(|n| n * 2).collect()
    }
}

/// Records, by name, each batch span's explicit parent ("" for none) and which span
/// follows from which.
#[derive(Clone, Default)]
struct Links {
    batches: Arc<Mutex<Vec<&'static str>>>,
    follows: Arc<Mutex<Vec<(&'static str, &'static str)>>>,
}

impl<S> tracing_subscriber::Layer<S> for Links
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        cx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name() == "batch" {
            let parent = attrs.parent().and_then(|id| cx.span(id));
            let parent = parent.map_or("", |span| span.name());
            self.batches.lock().unwrap().push(parent);
        }
    }

    fn on_follows_from(
        &self,
        span: &tracing::span::Id,
        follows: &tracing::span::Id,
        cx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let name = |id| cx.span(id).map_or("", |span| span.name());
        self.follows
            .lock()
            .unwrap()
            .push((name(span), name(follows)));
    }
}

#[tokio::test]
async fn the_batch_span_is_its_first_callers_child_and_follows_from_the_others() {
    let links = Links::default();
    let subscriber = tracing_subscriber::registry().with(links.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let go = Arc::new(Semaphore::new(0));
    let coalescer = Coalescer::new(Doubling(go.clone()), 4);
    let ask = |n, name| {
        let coalescer = coalescer.clone();
        let span = match name {
            "lone" => tracing::info_span!("lone"),
            "second" => tracing::info_span!("second"),
            _ => tracing::info_span!("third"),
        };
        async move { coalescer.ask((), n).await }.instrument(span)
    };
    // The lone caller's batch runs (waiting for its permit) while two more ask: they
    // share the next batch.
    let lone = tokio::spawn(ask(1, "lone"));
    while links.batches.lock().unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
    let (second, third) = (
        tokio::spawn(ask(2, "second")),
        tokio::spawn(ask(3, "third")),
    );
    tokio::task::yield_now().await;
    go.add_permits(2);
    assert_eq!(lone.await.unwrap(), Some(2));
    assert_eq!(second.await.unwrap(), Some(4));
    assert_eq!(third.await.unwrap(), Some(6));
    let parents = links.batches.lock().unwrap().clone();
    assert_eq!(parents, ["lone", "second"]);
    let follows = links.follows.lock().unwrap().clone();
    assert_eq!(follows, [("batch", "third")]);
}
