//! A TCP proxy on 127.0.0.1 in front of a real server that a test can cut and
//! restore: the server goes away for the one daemon that connects through
//! the proxy, while every other test keeps using the same server.
//!
//! Cutting drops every open connection and refuses new ones at once, which
//! is what a daemon sees when its database host stops or the network
//! between them fails.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct Proxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: AbortHandle,
}

struct Inner {
    target: SocketAddr,
    up: AtomicBool,
    connections: Mutex<Vec<AbortHandle>>,
}

impl Proxy {
    /// Starts forwarding a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let inner = Arc::new(Inner {
            target,
            up: AtomicBool::new(true),
            connections: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept(listener, inner.clone())).abort_handle();
        Proxy {
            addr,
            inner,
            accept,
        }
    }

    /// Where to connect instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.inner.up.store(false, Ordering::SeqCst);
        for connection in self.inner.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    pub fn restore(&self) {
        self.inner.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn accept(listener: TcpListener, inner: Arc<Inner>) {
    while let Ok((mut client, _)) = listener.accept().await {
        if !inner.up.load(Ordering::SeqCst) {
            // Accepted only to be closed: the client sees its connection end.
            drop(client);
            continue;
        }
        let target = inner.target;
        let task = tokio::spawn(async move {
            if let Ok(mut server) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
        let mut connections = inner.connections.lock().unwrap();
        connections.retain(|c| !c.is_finished());
        connections.push(task.abort_handle());
    }
}
