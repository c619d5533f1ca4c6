//! Reads a socket may ask for beside its subscriptions — a room's pins, a message's
//! earlier texts, the threads one follows — and moving one's read marker in a thread;
//! each answered on the asking connection only, through the messages' owner (the same
//! authorization as the JSON API and gRPC).

use natter_core::events;
use natter_core::messaging::MessageError;

use crate::error::ChatError;
use crate::protocol::{ClientFrame, Edit, Followed, ServerFrame};
use crate::service::{Chat, message_frame};

/// A refusal and what it is about (a room).
type Refusal = (ChatError, Option<String>);

fn about(error: MessageError, room: &str) -> Refusal {
    (error.into(), Some(room.to_owned()))
}

impl Chat {
    /// The answer to a read frame of `user`'s.
    pub(crate) async fn answer(
        &self,
        user: &str,
        read: ClientFrame,
    ) -> Result<ServerFrame, Refusal> {
        Ok(match read {
            ClientFrame::Pins { room_id } => {
                let pins = self.messages.pins(user, &room_id).await;
                let pins = pins.map_err(|e| about(e, &room_id))?;
                let messages = pins.iter().map(|m| message_frame(&events::message(m)));
                ServerFrame::Pins {
                    messages: messages.collect(),
                    room_id,
                }
            }
            ClientFrame::Edits { room_id, seq } => {
                let edits = self.messages.edits(user, &room_id, seq).await;
                let edits = edits.map_err(|e| about(e, &room_id))?;
                let edits = edits.iter().map(|e| {
                    let wire = events::edit(e);
                    Edit {
                        body: wire.body,
                        html: wire.html,
                        written_at: wire.written_at,
                    }
                });
                ServerFrame::Edits {
                    edits: edits.collect(),
                    room_id,
                    seq,
                }
            }
            ClientFrame::Threads { limit } => {
                let threads = self.messages.followed_threads(user, limit).await;
                let threads = threads.map_err(|e| (ChatError::from(e), None))?;
                let threads = threads.into_iter().map(|t| Followed {
                    room_id: t.room_id,
                    root: t.root_seq,
                    root_body: t.root_body,
                    replies: t.replies,
                    last_reply_at: t.last_reply_at,
                    unread: t.unread,
                });
                ServerFrame::Threads {
                    threads: threads.collect(),
                }
            }
            ClientFrame::ReadThread { room_id, root, seq } => {
                let read = self.read_thread(user, &room_id, root, seq).await;
                read.map_err(|e| (e, Some(room_id.clone())))?;
                ServerFrame::ThreadReadMarker { room_id, root, seq }
            }
            other => {
                let unexpected = ChatError::BadFrame(format!("not a read: {other:?}"));
                return Err((unexpected, None));
            }
        })
    }
}
