//! `bench chat`'s people, made through Natter's public gRPC API as users would: distinct
//! users (registered with a session), public rooms each created by its first member and
//! joined by the others, and one big room everyone joins.

use futures::StreamExt;
use natter_proto::auth::v1 as auth_pb;
use natter_proto::auth::v1::auth_service_client::AuthServiceClient;
use natter_proto::website::v1 as pb;
use natter_proto::website::v1::website_service_client::WebsiteServiceClient;
use tonic::transport::Channel;

use super::swarm::Member;

const PASSWORD: &str = "bench-password-1";
/// Requests in flight while setting up.
const PARALLEL: usize = 16;

/// Who takes part and where.
pub struct People {
    /// One per user: their token and their room.
    pub members: Vec<Member>,
    /// The room everyone is a member of.
    pub big_room: String,
}

/// `rooms` rooms of `size` distinct users each (user `i` is in room `i % rooms`), and
/// a big room of all of them, through the auth service at `auth` and the website at
/// `website` (the same address in standalone mode).
pub async fn make(auth: &str, website: &str, rooms: usize, size: usize) -> anyhow::Result<People> {
    let channel = Channel::from_shared(auth.to_owned())?.connect().await?;
    let sites = Channel::from_shared(website.to_owned())?.connect().await?;
    let tag = format!("{:x}", std::process::id() ^ super::unique());
    let tokens = futures::stream::iter(0..rooms * size)
        .map(|i| register(channel.clone(), format!("b{tag}u{i}")))
        .buffered(PARALLEL)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<String>>>()?;
    let mut room_ids = Vec::with_capacity(rooms + 1);
    for owner in tokens.iter().take(rooms).chain(tokens.first()) {
        room_ids.push(create_room(sites.clone(), owner).await?);
    }
    let big_room = room_ids.pop().expect("the big room");
    let joins = tokens.iter().enumerate().flat_map(|(i, token)| {
        let own = (i >= rooms).then(|| (token.clone(), room_ids[i % rooms].clone()));
        let big = (i > 0).then(|| (token.clone(), big_room.clone()));
        own.into_iter().chain(big)
    });
    let joined = futures::stream::iter(joins)
        .map(|(token, room)| join(sites.clone(), token, room))
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await;
    joined.into_iter().collect::<anyhow::Result<()>>()?;
    let members = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| Member {
            token,
            room: room_ids[i % rooms].clone(),
            server: 0,
        })
        .collect();
    Ok(People { members, big_room })
}

/// The same shape for the bare server, which checks nothing.
pub fn unchecked(rooms: usize, size: usize) -> People {
    let members = (0..rooms * size)
        .map(|i| Member {
            token: format!("user-{i}"),
            room: format!("room-{}", i % rooms),
            server: 0,
        })
        .collect();
    People {
        members,
        big_room: "big-room".into(),
    }
}

async fn register(channel: Channel, username: String) -> anyhow::Result<String> {
    let request = auth_pb::RegisterRequest {
        username,
        password: PASSWORD.into(),
        open_session: true,
        ..Default::default()
    };
    let registered = AuthServiceClient::new(channel).register(request).await?;
    let session = registered.into_inner().session;
    Ok(session
        .ok_or_else(|| anyhow::anyhow!("no session"))?
        .access_token)
}

fn authed<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let bearer = format!("Bearer {token}").parse()?;
    request.metadata_mut().insert("authorization", bearer);
    Ok(request)
}

async fn create_room(channel: Channel, token: &str) -> anyhow::Result<String> {
    let create = pb::CreateRoomRequest {
        kind: pb::RoomKind::Public.into(),
        name: format!("bench {}", super::unique()),
    };
    let room = WebsiteServiceClient::new(channel)
        .create_room(authed(create, token)?)
        .await?;
    Ok(room.into_inner().id)
}

async fn join(channel: Channel, token: String, room_id: String) -> anyhow::Result<()> {
    let request = authed(pb::RoomRequest { room_id }, &token)?;
    WebsiteServiceClient::new(channel)
        .join_room(request)
        .await?;
    Ok(())
}
