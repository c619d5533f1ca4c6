//! Who is online in a room, across replicas: each replica counts its own users'
//! subscriptions, announces joins and leaves on the broker, re-announces everything it
//! holds every [`SYNC_EVERY`], and forgets another replica's users when that replica has
//! been silent for [`FORGET_AFTER`] (it crashed).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How often a replica re-announces the users it holds.
pub const SYNC_EVERY: Duration = Duration::from_secs(30);
/// How long another replica's users stay online without being re-announced.
pub const FORGET_AFTER: Duration = Duration::from_secs(90);

type Users<T> = HashMap<Arc<str>, T>;
/// Per user, the replicas that announced them and until when they count.
type Announced = Users<HashMap<Arc<str>, Instant>>;

/// Presence state of one replica. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    /// This replica: room → user → open subscriptions.
    local: Arc<Mutex<HashMap<Arc<str>, Users<usize>>>>,
    /// Other replicas: room → user → replica → until when.
    remote: Arc<Mutex<HashMap<Arc<str>, Announced>>>,
}

/// What replicas tell each other on the presence topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Announcement {
    /// A user came online or went offline in a room on `node`.
    Change {
        /// The announcing replica.
        node: String,
        /// The room.
        room_id: String,
        /// The user.
        user_id: String,
        /// Online or not.
        online: bool,
    },
    /// Everyone online on `node`, by room.
    Sync {
        /// The announcing replica.
        node: String,
        /// Room id → user ids.
        rooms: HashMap<String, Vec<String>>,
    },
}

impl Presence {
    /// Counts one more subscription of `user` to `room`; true when the user just came
    /// online on this replica.
    pub fn join(&self, room: &str, user: &str) -> bool {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let count = local
            .entry(Arc::from(room))
            .or_default()
            .entry(Arc::from(user))
            .or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Counts one subscription less; true when the user just went offline on this
    /// replica.
    pub fn leave(&self, room: &str, user: &str) -> bool {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let Some(users) = local.get_mut(room) else {
            return false;
        };
        let Some(count) = users.get_mut(user) else {
            return false;
        };
        *count -= 1;
        if *count > 0 {
            return false;
        }
        users.remove(user);
        if users.is_empty() {
            local.remove(room);
        }
        true
    }

    /// Everyone online in `room` on any replica, sorted.
    pub fn online(&self, room: &str) -> Vec<String> {
        let mut users = BTreeSet::new();
        let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(here) = local.get(room) {
            users.extend(here.keys().map(|u| u.to_string()));
        }
        drop(local);
        let now = Instant::now();
        let remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(there) = remote.get(room) {
            let live = there
                .iter()
                .filter(|(_, nodes)| nodes.values().any(|until| *until > now));
            users.extend(live.map(|(user, _)| user.to_string()));
        }
        users.into_iter().collect()
    }

    /// Whether `user` is online in `room` on any replica.
    pub fn is_online(&self, room: &str, user: &str) -> bool {
        self.online(room).iter().any(|u| u == user)
    }

    /// This replica's users by room, for a [`Announcement::Sync`].
    pub fn snapshot(&self) -> HashMap<String, Vec<String>> {
        let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local
            .iter()
            .map(|(room, users)| {
                (
                    room.to_string(),
                    users.keys().map(|u| u.to_string()).collect(),
                )
            })
            .collect()
    }

    /// Records another replica's announcement.
    pub fn apply(&self, announcement: &Announcement) {
        let until = Instant::now() + FORGET_AFTER;
        let mut remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        match announcement {
            Announcement::Change {
                node,
                room_id,
                user_id,
                online,
            } => {
                let nodes = remote
                    .entry(Arc::from(room_id.as_str()))
                    .or_default()
                    .entry(Arc::from(user_id.as_str()))
                    .or_default();
                if *online {
                    nodes.insert(Arc::from(node.as_str()), until);
                } else {
                    nodes.remove(node.as_str());
                }
            }
            Announcement::Sync { node, rooms } => {
                for (room, users) in rooms {
                    let room = remote.entry(Arc::from(room.as_str())).or_default();
                    for user in users {
                        room.entry(Arc::from(user.as_str()))
                            .or_default()
                            .insert(Arc::from(node.as_str()), until);
                    }
                }
            }
        }
        remote.retain(|_, users| {
            users.retain(|_, nodes| {
                nodes.retain(|_, until| *until > Instant::now());
                !nodes.is_empty()
            });
            !users.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_subscriptions_are_counted_per_user() {
        let presence = Presence::default();
        assert!(presence.join("r", "alice"), "first subscription: online");
        assert!(!presence.join("r", "alice"), "second tab: no change");
        assert!(!presence.leave("r", "alice"));
        assert!(presence.leave("r", "alice"), "last one gone: offline");
        assert!(presence.online("r").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn other_replicas_users_are_forgotten_when_they_fall_silent() {
        let presence = Presence::default();
        presence.join("r", "alice");
        let change = Announcement::Change {
            node: "n2".into(),
            room_id: "r".into(),
            user_id: "bob".into(),
            online: true,
        };
        presence.apply(&change);
        assert_eq!(presence.online("r"), ["alice", "bob"]);
        tokio::time::advance(FORGET_AFTER / 2).await;
        let sync = Announcement::Sync {
            node: "n2".into(),
            rooms: HashMap::from([("r".to_owned(), vec!["bob".to_owned()])]),
        };
        presence.apply(&sync);
        tokio::time::advance(FORGET_AFTER / 2 + Duration::from_secs(1)).await;
        assert!(presence.is_online("r", "bob"), "re-announced in time");
        tokio::time::advance(FORGET_AFTER).await;
        assert_eq!(presence.online("r"), ["alice"], "n2 fell silent");
        let leave = Announcement::Change {
            node: "n2".into(),
            room_id: "r".into(),
            user_id: "bob".into(),
            online: false,
        };
        presence.apply(&leave);
        assert_eq!(presence.online("r"), ["alice"]);
    }
}
