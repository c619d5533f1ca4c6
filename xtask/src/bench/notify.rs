//! `cargo xtask bench notify`: what deciding who is due a notification costs per message
//! in one room of 10,000 distinct members (1,000 of them with a push subscription, 100 at
//! level `all`), on SQLite and PostgreSQL, beside the send itself in the same room. The
//! send's own statement does no notification work (the push worker queues afterwards):
//! the figures show the send's time, and the worker's statement for one message of each
//! kind, with the rows it queued.

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use natter_core::store::{
    Channel, Level, NewMessage, NewUser, PushSubscription, Role, RoomKind, Store,
};

use super::load::quantile;
use crate::servers::Servers;

#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// Members of the room, each a distinct user.
    #[arg(long, default_value_t = 10_000)]
    members: usize,
    /// Members with a push subscription.
    #[arg(long, default_value_t = 1_000)]
    subscribed: usize,
    /// Members at level `all`.
    #[arg(long, default_value_t = 100)]
    loud: usize,
    /// Messages of each kind.
    #[arg(long, default_value_t = 100)]
    messages: usize,
}

pub fn run(
    servers: &Servers,
    runtime: &tokio::runtime::Runtime,
    args: &NotifyArgs,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sqlite = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("notify.db").display()
    );
    let database = format!("natter_notify_{}", std::process::id());
    super::history::psql(
        &servers.database_url,
        &format!("CREATE DATABASE {database}"),
    )?;
    let postgres = match servers.database_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => anyhow::bail!("DATABASE_URL must end in /<database>"),
    };
    println!(
        "one room of {} members ({} with a push subscription, {} at level all), {} messages of each kind",
        args.members, args.subscribed, args.loud, args.messages
    );
    println!(
        "| store | message | send p50 / p99 | who is due p50 / p99 | ratio to the send (p50) | pushes queued per message |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for (name, url) in [("sqlite", sqlite), ("postgres", postgres)] {
        runtime.block_on(one(name, &url, args))?;
    }
    Ok(())
}

async fn one(name: &str, url: &str, args: &NotifyArgs) -> anyhow::Result<()> {
    let store = Store::connect(url, 16).await.context("connecting")?;
    store.migrate().await?;
    let owner = user(&store, "owner").await?;
    let room = store.create_room(RoomKind::Group, "big", &owner).await?.id;
    let mut named = Vec::new();
    for i in 0..args.members {
        let member = user(&store, &format!("m{i}")).await?;
        store.add_member(&room, &member, Role::Member).await?;
        if i < args.subscribed {
            let sub = PushSubscription {
                endpoint: format!("https://push.invalid/{i}"),
                user_id: member.clone(),
                p256dh: String::new(),
                auth: String::new(),
            };
            store.save_push_subscription(&sub, 0).await?;
        }
        if i < args.loud {
            store.set_level(&room, &member, Some(Level::All)).await?;
        }
        if i == 0 {
            named.push((member, "m0".to_owned()));
        }
    }
    // As a database in use would have: statistics of the tables just filled.
    store.analyze().await?;
    let mut cursor = 0;
    for kind in ["plain", "mention", "@room"] {
        let (mut sends, mut decides, mut queued) = (Vec::new(), Vec::new(), 0);
        for n in 0..args.messages {
            let client_id = format!("{kind}-{n}");
            let new = NewMessage {
                mentions: if kind == "mention" { &named } else { &[] },
                mentions_room: kind == "@room",
                ..NewMessage::text(
                    &room,
                    &owner,
                    &client_id,
                    "hello",
                    natter_core::time::now_ms(),
                )
            };
            let started = Instant::now();
            let seq = store.post_message(new).await?.message.seq;
            sends.push(started.elapsed());
            let before = outbox(&store, &room).await?;
            let started = Instant::now();
            // Due far ahead: queued, never sent.
            store
                .produce(Channel::Push, &room, (cursor, seq), 0, i64::MAX)
                .await?;
            decides.push(started.elapsed());
            queued += outbox(&store, &room).await? - before;
            cursor = seq;
        }
        sends.sort();
        decides.sort();
        let ms = |sorted: &[std::time::Duration], q: f64| {
            quantile(sorted, q).unwrap_or_default().as_secs_f64() * 1e3
        };
        let (send50, send99) = (ms(&sends, 0.5), ms(&sends, 0.99));
        let (due50, due99) = (ms(&decides, 0.5), ms(&decides, 0.99));
        println!(
            "| {name} | {kind} | {send50:.2} / {send99:.2} ms | {due50:.2} / {due99:.2} ms | {:.2}× | {} |",
            due50 / send50,
            queued / args.messages as i64
        );
    }
    store.close().await;
    Ok(())
}

async fn user(store: &Store, name: &str) -> anyhow::Result<String> {
    let new = NewUser {
        username: name,
        email: None,
        password_hash: "$argon2id$bench",
    };
    Ok(store.create_user(new).await?.id)
}

/// Pushes queued in `room` so far.
async fn outbox(store: &Store, room: &str) -> anyhow::Result<i64> {
    Ok(store.pushes_queued(room).await?)
}
