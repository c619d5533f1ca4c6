//! Starts the real auth server (JSON and gRPC on one port, as in standalone mode) on
//! 127.0.0.1:0 over a fresh database.

use std::net::SocketAddr;
use std::sync::Arc;

use natter_auth::Auth;
use natter_core::config::Config;
use natter_core::kv::Kv;
use natter_core::secrets::Secrets;
use natter_core::shutdown::{Shutdown, ShutdownTrigger};
use natter_core::store::Backend;
use natter_core::token::KeySet;
use natter_testkit::TestStore;

use crate::api::{Api, GrpcApi, JsonApi};

/// Which face of the service a scenario talks to.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    /// tonic client, PostgreSQL + Redis.
    Grpc,
    /// reqwest client, SQLite + memory.
    Json,
}

/// A running server and a client for it.
pub struct Server {
    pub api: Box<dyn Api>,
    /// JSON and gRPC both (read by the traces binary only).
    #[allow(dead_code)]
    pub addr: SocketAddr,
    pub auth: Auth,
    pub keys: KeySet,
    pub config: Config,
    pub kv: Arc<dyn Kv>,
    pub test_store: Arc<TestStore>,
    _stop: ShutdownTrigger,
}

impl Transport {
    fn backend(self) -> Backend {
        match self {
            Self::Grpc => Backend::Postgres,
            Self::Json => Backend::Sqlite,
        }
    }

    /// A server with the test defaults.
    pub async fn start(self) -> Server {
        self.start_with(|_| {}).await
    }

    /// A server whose config `tweak` adjusts.
    pub async fn start_with(self, tweak: impl FnOnce(&mut Config)) -> Server {
        let mut config = natter_testkit::config();
        config.trust_forwarded_for = true;
        tweak(&mut config);
        let backend = self.backend();
        let test_store = Arc::new(natter_testkit::store(backend).await);
        let kv = natter_testkit::kv_for(backend).await;
        let keys = Secrets::generate().jwt_keys;
        self.start_on(config, test_store, kv, keys).await
    }

    /// A second server over the same database and key-value store, with another config.
    pub async fn restart(self, previous: &Server, tweak: impl FnOnce(&mut Config)) -> Server {
        let mut config = previous.config.clone();
        tweak(&mut config);
        self.start_on(
            config,
            previous.test_store.clone(),
            previous.kv.clone(),
            previous.keys.clone(),
        )
        .await
    }

    async fn start_on(
        self,
        config: Config,
        test_store: Arc<TestStore>,
        kv: Arc<dyn Kv>,
        keys: KeySet,
    ) -> Server {
        let handles = natter_auth::Handles {
            store: test_store.store.clone(),
            kv: kv.clone(),
            broker: Arc::new(natter_core::broker::MemoryBroker::default()),
        };
        let auth = natter_auth::assemble(&config, handles, &keys)
            .await
            .expect("assemble auth");
        let router = natter_auth::routes(auth.clone(), config.trust_forwarded_for).merge(
            tonic::service::Routes::new(natter_auth::grpc_service(auth.clone())).into_axum_router(),
        );
        // Request spans and metrics, as every service has them.
        let router = natter_core::http::observe(router, &natter_core::http::Metrics::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, shutdown) = Shutdown::new();
        tokio::spawn(natter_core::http::serve(listener, router, shutdown));
        let api: Box<dyn Api> = match self {
            Self::Grpc => Box::new(GrpcApi::connect(addr).await),
            Self::Json => Box::new(JsonApi::new(addr)),
        };
        Server {
            api,
            addr,
            auth,
            keys,
            config,
            kv,
            test_store,
            _stop: stop,
        }
    }
}
