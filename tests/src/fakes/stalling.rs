//! Fake of alert receivers that misbehave below HTTP's status codes, for
//! the attacks on the dispatcher's sending (a slow receiver must delay
//! only its own channel): raw HTTP/1.1 on 127.0.0.1, each request read
//! whole and kept (its path and `webhook-id`), then answered as told
//! ([`Stall`]): held unanswered until the test releases it, a body
//! trickled byte by byte, or a body far too large to read, counting what
//! it managed to write before the daemon hung up.
//!
//! It checks no signature (the webhook fake does): what it tests is how
//! long, and how much, the daemon spends on one answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How every request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Read, never answered until [`StallingReceiver::release`]; then the
    /// held ones are hung up on unanswered and later ones answered 204 at
    /// once.
    Hold,
    /// 200 and a 1,000-byte body, one byte every `every`.
    Trickle { every: Duration },
    /// 200 and a body of `bytes`, written as fast as the daemon reads it.
    Huge { bytes: u64 },
}

/// A request read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub path: String,
    /// Its `webhook-id` (empty without one).
    pub id: String,
    /// Whether it was answered (204 after a release; a status line for the
    /// others): a held one hung up on is not.
    pub answered: bool,
}

#[derive(Debug, Default)]
struct State {
    asked: Vec<Asked>,
    /// For each huge answer ended, the body bytes written before the
    /// daemon hung up (all of them if it read everything).
    written: Vec<u64>,
}

/// The receiver; dropping it stops accepting (connections held end when
/// the daemon hangs up or the test ends).
pub struct StallingReceiver {
    url: String,
    state: Arc<Mutex<State>>,
    released: watch::Sender<bool>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for StallingReceiver {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl StallingReceiver {
    pub async fn start(stall: Stall) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let state = Arc::new(Mutex::new(State::default()));
        let (released, _) = watch::channel(false);
        let accepting = {
            let state = state.clone();
            let released = released.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let connection = Connection {
                        state: state.clone(),
                        released: released.subscribe(),
                        stall,
                    };
                    tokio::spawn(connection.serve(stream));
                }
            })
        };
        Self {
            url,
            state,
            released,
            accepting,
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("stalling receiver lock")
    }

    /// Every request read so far, in order.
    pub fn asked(&self) -> Vec<Asked> {
        self.lock().asked.clone()
    }

    /// Body bytes written per huge answer ended.
    pub fn written(&self) -> Vec<u64> {
        self.lock().written.clone()
    }

    /// Hangs up on the requests held and answers the next at once.
    pub fn release(&self) {
        self.released.send_replace(true);
    }
}

struct Connection {
    state: Arc<Mutex<State>>,
    released: watch::Receiver<bool>,
    stall: Stall,
}

impl Connection {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("stalling receiver lock")
    }

    /// Serves the requests of one connection (the daemon keeps them
    /// alive) until one is hung up on or the daemon closes it.
    async fn serve(mut self, mut stream: TcpStream) {
        while let Some((path, id)) = read_request(&mut stream).await {
            let held = self.stall == Stall::Hold && !*self.released.borrow();
            self.lock().asked.push(Asked {
                path,
                id,
                answered: !held,
            });
            let answered = match self.stall {
                Stall::Hold if held => {
                    // Hung up on, unanswered, once released.
                    let _ = self.released.wait_for(|r| *r).await;
                    return;
                }
                Stall::Hold => stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await,
                Stall::Trickle { every } => trickle(&mut stream, every).await,
                Stall::Huge { bytes } => {
                    let written = huge(&mut stream, bytes).await;
                    self.lock().written.push(written);
                    if written < bytes {
                        return;
                    }
                    Ok(())
                }
            };
            if answered.is_err() {
                return;
            }
        }
    }
}

/// One request: its path and `webhook-id`, its body read and dropped;
/// `None` when the connection ends.
async fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let mut id = String::new();
    let mut length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "webhook-id" => id = value.trim().to_owned(),
            "content-length" => length = value.trim().parse().ok()?,
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((path, id))
}

/// 200 with a 1,000-byte body sent a byte per `every`.
async fn trickle(stream: &mut TcpStream, every: Duration) -> std::io::Result<()> {
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        .await?;
    for _ in 0..1_000 {
        tokio::time::sleep(every).await;
        stream.write_all(b"x").await?;
    }
    Ok(())
}

/// 200 with a body of `bytes`; how many were written before the daemon
/// hung up.
async fn huge(stream: &mut TcpStream, bytes: u64) -> u64 {
    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {bytes}\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return 0;
    }
    let chunk = vec![b'x'; 64 * 1024];
    let mut written = 0u64;
    while written < bytes {
        let n = usize::try_from((bytes - written).min(chunk.len() as u64)).unwrap_or(chunk.len());
        if stream.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        written += n as u64;
    }
    written
}
