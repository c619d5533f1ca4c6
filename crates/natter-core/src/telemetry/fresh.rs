//! A per-layer filter that is asked about every span and event, working around
//! tokio-rs/tracing#2519: when a callsite's interest is cached as `always`, per-layer
//! filters read a stale thread-local verdict left by the previous `enabled` check, and a
//! library that checks `tracing::enabled!` without emitting anything (sqlx does after
//! every query) makes the next span vanish from the filtered layers (seen: the span of a
//! password check after a user lookup missing from the exported trace).

use tracing::Metadata;
use tracing::span;
use tracing::subscriber::Interest;
use tracing_subscriber::layer::{Context, Filter};

/// `F`, with its `always` interests lowered to `sometimes`.
#[derive(Debug)]
pub(super) struct Fresh<F>(pub(super) F);

impl<S, F: Filter<S>> Filter<S> for Fresh<F> {
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        self.0.enabled(meta, cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        match self.0.callsite_enabled(meta) {
            never if never.is_never() => never,
            _ => Interest::sometimes(),
        }
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, cx: &Context<'_, S>) -> bool {
        self.0.event_enabled(event, cx)
    }

    fn max_level_hint(&self) -> Option<tracing_subscriber::filter::LevelFilter> {
        self.0.max_level_hint()
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        self.0.on_record(id, values, ctx);
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_exit(id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        self.0.on_close(id, ctx);
    }
}
