//! `natter.chat.v1.ChatService`: saves take the WebSocket path (stored, then delivered
//! live, idempotent), reads are authorized like subscriptions.

use natter_chat::Limits;
use natter_core::store::Backend;
use natter_proto::chat::v1 as pb;
use natter_proto::chat::v1::chat_service_client::ChatServiceClient;

use crate::harness::{Cluster, User, connect, next, subscribe};

fn authed<T>(message: T, user: &User) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {}", user.token).parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

async fn saved_messages_are_delivered_live_and_read_back(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(Limits::default()).await;
    let (alice, mallory) = (cluster.user("alice").await, cluster.user("mallory").await);
    let room = cluster.room(&alice, &[]).await;
    let mut socket = connect(&replica, Some(&alice)).await;
    subscribe(&mut socket, &room, None).await;
    let url = replica
        .url
        .replace("ws://", "http://")
        .trim_end_matches("/ws")
        .to_owned();
    let mut client = ChatServiceClient::connect(url).await.unwrap();
    let save = || pb::SaveMessageRequest {
        room_id: room.clone(),
        client_id: "tool-1".into(),
        body: "from a tool".into(),
        ..Default::default()
    };
    let first = client
        .save_message(authed(save(), &alice))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .save_message(authed(save(), &alice))
        .await
        .unwrap()
        .into_inner();
    assert!(first.created && !again.created);
    assert_eq!(
        first.message.as_ref().unwrap().seq,
        again.message.as_ref().unwrap().seq
    );
    let live = next(&mut socket).await;
    assert_eq!(
        (live["type"].as_str(), live["body"].as_str()),
        (Some("message"), Some("from a tool"))
    );
    let read = natter_proto::common::v1::HistoryRequest {
        room_id: room.clone(),
        before: None,
        thread: None,
        after: Some(0),
        limit: 0,
    };
    let page = client
        .get_messages(authed(read.clone(), &alice))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.messages.len(), 1);
    let hidden = client
        .get_messages(authed(read, &mallory))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), tonic::Code::NotFound);
    let anonymous = client
        .get_messages(natter_proto::common::v1::HistoryRequest::default())
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
}

mod postgres {
    #[tokio::test]
    async fn saved_messages_are_delivered_live_and_read_back() {
        super::saved_messages_are_delivered_live_and_read_back(super::Backend::Postgres).await
    }
}

mod sqlite {
    #[tokio::test]
    async fn saved_messages_are_delivered_live_and_read_back() {
        super::saved_messages_are_delivered_live_and_read_back(super::Backend::Sqlite).await
    }
}
