//! The rooms one connection subscribes to, each with the seq it expects next. Most
//! connections have one room: it is kept inline, so a delivery's lookup reads the
//! connection and the room id the hub shares, not a table of its own (each a cache miss
//! on a busy replica: the lookup was ~4 % of its CPU, docs/latency.md), and the socket
//! holds no table.

use std::collections::HashMap;
use std::sync::Arc;

/// Room → next expected seq.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    first: Option<(Arc<str>, i64)>,
    /// Every other room (never the first's).
    rest: HashMap<Arc<str>, i64>,
}

impl Subscriptions {
    pub(super) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    pub(super) fn contains_key(&self, room: &str) -> bool {
        self.get_key_value(room).is_some()
    }

    pub(super) fn get(&self, room: &str) -> Option<&i64> {
        self.get_key_value(room).map(|(_, next)| next)
    }

    /// The room's id as kept (the hub's shared copy) and its next seq.
    pub(super) fn get_key_value(&self, room: &str) -> Option<(&Arc<str>, &i64)> {
        match &self.first {
            Some((first, next)) if **first == *room => Some((first, next)),
            _ if self.rest.is_empty() => None,
            _ => self.rest.get_key_value(room),
        }
    }

    pub(super) fn get_mut(&mut self, room: &str) -> Option<&mut i64> {
        match &mut self.first {
            Some((first, next)) if **first == *room => Some(next),
            _ if self.rest.is_empty() => None,
            _ => self.rest.get_mut(room),
        }
    }

    /// Sets `room`'s next seq; the one it replaces, if subscribed.
    pub(super) fn insert(&mut self, room: Arc<str>, next: i64) -> Option<i64> {
        if let Some(kept) = self.get_mut(&room) {
            return Some(std::mem::replace(kept, next));
        }
        match self.first {
            None => self.first = Some((room, next)),
            Some(_) => {
                self.rest.insert(room, next);
            }
        }
        None
    }

    /// Ends the subscription of `room`; its next seq, if subscribed.
    pub(super) fn remove(&mut self, room: &str) -> Option<i64> {
        match &self.first {
            Some((first, _)) if **first == *room => self.first.take().map(|(_, next)| next),
            _ => self.rest.remove(room),
        }
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.first
            .iter()
            .map(|(room, _)| room)
            .chain(self.rest.keys())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_found_inline_or_in_the_map_and_each_once() {
        let mut subscriptions = Subscriptions::default();
        assert_eq!(subscriptions.insert(Arc::from("a"), 1), None);
        assert_eq!(subscriptions.insert(Arc::from("b"), 5), None);
        assert_eq!(subscriptions.insert(Arc::from("a"), 2), Some(1));
        assert_eq!(subscriptions.len(), 2);
        *subscriptions.get_mut("b").unwrap() += 1;
        assert_eq!(
            (subscriptions.get("a"), subscriptions.get("b")),
            (Some(&2), Some(&6))
        );
        // The inline room gone, a new one takes its place and the map's stays found.
        assert_eq!(subscriptions.remove("a"), Some(2));
        assert!(!subscriptions.contains_key("a"));
        assert_eq!(subscriptions.get("b"), Some(&6));
        assert_eq!(subscriptions.insert(Arc::from("c"), 9), None);
        assert_eq!(subscriptions.insert(Arc::from("b"), 7), Some(6));
        let mut rooms: Vec<&str> = subscriptions.keys().map(|room| &**room).collect();
        rooms.sort_unstable();
        assert_eq!(rooms, ["b", "c"]);
        assert_eq!(subscriptions.len(), 2);
        assert_eq!(subscriptions.remove("b"), Some(7));
        assert_eq!(subscriptions.remove("b"), None);
        assert_eq!(subscriptions.len(), 1);
    }
}
