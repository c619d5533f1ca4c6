//! `natter.chat.v1.ChatService` over tonic: the same send path as the WebSocket (stored,
//! acknowledged, delivered live) and history reads, for services and tools.

use natter_core::messaging::Post;
use natter_core::policy::Action;
use natter_core::store::HistoryOrder;
use natter_core::token::AccessClaims;
use natter_proto::chat::v1 as pb;
use natter_proto::chat::v1::chat_service_server::{ChatService, ChatServiceServer};
use tonic::{Request, Response, Status};

use crate::Chat;
use crate::service::Refusal;

/// The gRPC face of [`Chat`].
#[derive(Debug, Clone)]
pub struct ChatGrpc {
    chat: Chat,
}

/// The tonic service for `chat`.
pub fn grpc_service(chat: &Chat) -> ChatServiceServer<ChatGrpc> {
    ChatServiceServer::new(ChatGrpc { chat: chat.clone() })
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        match refusal.code {
            "not_found" => Status::not_found(refusal.message),
            "forbidden" => Status::permission_denied(refusal.message),
            "unauthenticated" => Status::unauthenticated(refusal.message),
            "unavailable" => Status::unavailable(refusal.message),
            "internal" => Status::internal(refusal.message),
            _ => Status::invalid_argument(refusal.message),
        }
    }
}

impl ChatGrpc {
    /// The end user: the verified bearer token in the request's metadata.
    async fn caller<T>(&self, request: &Request<T>) -> Result<AccessClaims, Status> {
        natter_core::grpc::caller(&self.chat.verifier, request).await
    }
}

#[tonic::async_trait]
impl ChatService for ChatGrpc {
    async fn save_message(
        &self,
        request: Request<pb::SaveMessageRequest>,
    ) -> Result<Response<pb::SaveMessageResponse>, Status> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let post = Post {
            user: &me.sub,
            room: &req.room_id,
            client_id: &req.client_id,
            body: &req.body,
        };
        let posted = self.chat.send(post).await?;
        Ok(Response::new(pb::SaveMessageResponse {
            message: Some(natter_core::events::message(&posted.message)),
            created: posted.created,
        }))
    }

    async fn get_messages(
        &self,
        request: Request<natter_core::events::pb::HistoryRequest>,
    ) -> Result<Response<pb::GetMessagesResponse>, Status> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        self.chat
            .check(&me.sub, &req.room_id, Action::ReadHistory)
            .await?;
        let limit = match req.limit {
            0 => 50,
            n @ 1..=100 => n,
            _ => return Err(Status::invalid_argument("limit must be 1 to 100")),
        };
        let (order, cursor) = match (req.before, req.after) {
            (Some(_), Some(_)) => {
                return Err(Status::invalid_argument("give before or after, not both"));
            }
            (before, None) => (HistoryOrder::NewestFirst, before),
            (None, after) => (HistoryOrder::OldestFirst, after),
        };
        let messages = self
            .chat
            .store
            .history(&req.room_id, order, cursor, limit)
            .await
            .map_err(|_| Status::unavailable("temporarily unavailable, retry"))?;
        Ok(Response::new(pb::GetMessagesResponse {
            messages: messages.iter().map(natter_core::events::message).collect(),
        }))
    }
}
