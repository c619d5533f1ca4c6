//! `natter.chat.v1.ChatService` over tonic: the same send path as the WebSocket (stored,
//! acknowledged, delivered live) and history reads, for services and tools.

use natter_core::messaging::{HistoryQuery, Post};
use natter_core::token::AccessClaims;
use natter_proto::chat::v1 as pb;
use natter_proto::chat::v1::chat_service_server::{ChatService, ChatServiceServer};
use tonic::{Request, Response, Status};

use crate::Chat;
use crate::error::ChatError;

/// The gRPC face of [`Chat`].
#[derive(Debug, Clone)]
pub struct ChatGrpc {
    chat: Chat,
}

/// The tonic service for `chat`.
pub fn grpc_service(chat: &Chat) -> ChatServiceServer<ChatGrpc> {
    ChatServiceServer::new(ChatGrpc { chat: chat.clone() })
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
            reply_to: req.reply_to,
            thread_root: req.thread_root,
            also_to_room: req.also_to_room,
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
        let query = HistoryQuery::of(&req);
        let page = self
            .chat
            .messages
            .history(&me.sub, &req.room_id, query)
            .await
            .map_err(ChatError::from)?;
        Ok(Response::new(pb::GetMessagesResponse {
            messages: page.to_wire(),
        }))
    }
}
