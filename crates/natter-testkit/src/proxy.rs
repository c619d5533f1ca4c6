//! A TCP proxy whose line can be cut and restored: dependency outages injected at an
//! exact step of a test (Redis, PostgreSQL, Vault behind it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to `target` whose line can be cut (open connections are dropped and new
/// ones closed at once) and restored.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    /// Starts proxying to `target` (host:port).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let open = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0);
        let proxy = Self { addr, open, cut };
        let (target, this) = (target.to_owned(), proxy.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !this.open.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let (target, mut cut) = (target.clone(), this.cut.subscribe());
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        proxy
    }

    /// `http://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts the line (`false`) or restores it (`true`).
    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
        if !open {
            self.cut.send_modify(|n| *n += 1);
        }
    }
}
