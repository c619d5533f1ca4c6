//! A running auth + website server over a fresh database, and signed-in users.

use std::sync::Arc;

use natter_auth::{Auth, Client};
use natter_core::broker::MemoryBroker;
use natter_core::outbox::{Outbox, OutboxParts};
use natter_core::secrets::Secrets;
use natter_core::shutdown::{Shutdown, ShutdownTrigger};
use natter_core::store::{Backend, Store};
use natter_testkit::TestStore;
use natter_website::{Website, WriteLimiter};
use serde_json::Value;
use std::time::Duration;

pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub auth: Auth,
    pub broker: Arc<MemoryBroker>,
    pub test_store: TestStore,
    _stop: ShutdownTrigger,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub token: String,
}

/// A response's status and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Server {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, 1_000_000).await
    }

    /// A server allowing `write_limit` writes per user per minute.
    pub async fn start_with(backend: Backend, write_limit: u32) -> Self {
        let config = natter_testkit::config();
        let test_store = natter_testkit::store(backend).await;
        let kv = natter_testkit::kv_for(backend).await;
        let keys = Secrets::generate().jwt_keys;
        let store = test_store.store.clone();
        let broker = Arc::new(MemoryBroker::default());
        let handles = natter_auth::Handles {
            store: store.clone(),
            kv: kv.clone(),
            broker: broker.clone(),
        };
        let auth = natter_auth::assemble(&config, handles, &keys)
            .await
            .unwrap();
        let limiter = WriteLimiter::new(kv.clone(), write_limit, Duration::from_secs(60));
        let (stop, shutdown) = Shutdown::new();
        let parts = OutboxParts::new(broker.clone(), "website", shutdown.clone());
        let website = Website::new(
            store,
            Outbox::start(parts),
            auth.verifier().clone(),
            limiter,
        );
        let router = natter_auth::routes(auth.clone(), false)
            .merge(natter_website::routes(
                website.clone(),
                natter_auth::openapi(),
            ))
            .merge(
                tonic::service::Routes::new(natter_website::grpc_service(&website))
                    .into_axum_router(),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(natter_core::http::serve(listener, router, shutdown));
        Self {
            base,
            http: reqwest::Client::new(),
            auth,
            broker,
            test_store,
            _stop: stop,
        }
    }

    pub fn store(&self) -> &Store {
        &self.test_store.store
    }

    /// Registers and logs in a user whose name starts with `base`.
    pub async fn user(&self, base: &str) -> User {
        let name = format!("{base}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let registered = self
            .auth
            .register(&name, "correct horse", None)
            .await
            .unwrap();
        let outcome = self
            .auth
            .login(&name, "correct horse", &Client::default())
            .await
            .unwrap();
        User {
            id: registered.user.id,
            name,
            token: outcome.access_token,
        }
    }

    /// Sends `method path` with an optional JSON body as `user` (or signed out).
    pub async fn call(
        &self,
        user: Option<&User>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(user) = user {
            request = request.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status >= 400 {
            let code = body["error"]["code"].as_str();
            assert!(
                code.is_some_and(|c| !c.is_empty()),
                "error body for {status}: {body}"
            );
        }
        Reply { status, body }
    }
}
