//! A TCP proxy in front of a real server that breaks connections on command.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use seawall_util::rng::AtomicSplitMix64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Added delay: `fixed`, plus up to `jitter` more, before each chunk is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delay {
    /// Always added.
    pub fixed: Duration,
    /// Up to this much more, uniformly.
    pub jitter: Duration,
}

impl Delay {
    /// A fixed delay.
    #[must_use]
    pub const fn fixed(fixed: Duration) -> Self {
        Delay {
            fixed,
            jitter: Duration::ZERO,
        }
    }
}

/// What the proxy does with traffic. Applies to new and existing connections alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Forward everything as it comes.
    #[default]
    Pass,
    /// Delay each chunk: `up` from client to server, `down` from server to client.
    Latency {
        /// Client to server.
        up: Delay,
        /// Server to client.
        down: Delay,
    },
    /// Accept connections but forward nothing: clients hang until their own timeout.
    Blackhole,
    /// Do not accept connections (the port is closed: connecting is refused, like a server
    /// that is down). Existing connections keep working unless reset.
    Refuse,
    /// Forward at most this many bytes per second in each direction.
    Bandwidth(u64),
    /// Close each connection abruptly once it has forwarded this many bytes (both directions
    /// together).
    CutAfter(u64),
}

/// Connection and byte counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyStats {
    /// Connections accepted so far.
    pub accepted: u64,
    /// Connections open now.
    pub active: u64,
    /// Bytes forwarded from clients to the server.
    pub bytes_up: u64,
    /// Bytes forwarded from the server to clients.
    pub bytes_down: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    active: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    rng: AtomicSplitMix64,
}

/// The proxy's control: what to do with traffic, and a counter that, when bumped, closes
/// every existing connection abruptly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Control {
    mode: Mode,
    resets: u64,
    shutdown: bool,
    version: u64,
}

/// A TCP proxy between clients and a real server (PostgreSQL, Redis...), whose behaviour a
/// test switches at run time. Dropping it, or [`shutdown`](Self::shutdown), stops every task
/// and closes every socket.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use std::time::Duration;
/// use seawall_chaos::proxy::{Delay, Mode, Proxy};
///
/// let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await?;
/// let addr = proxy.addr(); // point the client here
/// proxy.set_mode(Mode::Latency { up: Delay::fixed(Duration::from_millis(50)), down: Delay::default() });
/// proxy.down(); // refuse new connections and reset existing ones: a server restart begins
/// proxy.up(); // and ends
/// proxy.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    control: watch::Sender<Control>,
    applied: watch::Receiver<u64>,
    counters: Arc<Counters>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("mode", &self.mode())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free loopback port.
    pub async fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), upstream).await
    }

    /// Starts a proxy to `upstream` listening on `listen`.
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (control, watcher) = watch::channel(Control::default());
        let (applied_tx, applied) = watch::channel(0);
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(serve(
            listener,
            addr,
            upstream,
            watcher,
            applied_tx,
            counters.clone(),
        ));
        Ok(Proxy {
            addr,
            upstream,
            control,
            applied,
            counters,
            task: Some(task),
        })
    }

    /// The address clients connect to.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current mode.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.control.borrow().mode
    }

    /// Switches the mode, for new and existing connections.
    pub fn set_mode(&self, mode: Mode) {
        tracing::debug!(target: "seawall::chaos", ?mode, "proxy mode");
        self.update(|control| control.mode = mode);
    }

    fn update(&self, change: impl FnOnce(&mut Control)) {
        self.control.send_modify(|control| {
            change(control);
            control.version += 1;
        });
    }

    /// Waits until the last change of mode is in force for new connections (the port is
    /// closed after `Refuse` or `down()`, listening again after `up()`).
    pub async fn settled(&self) {
        let wanted = self.control.borrow().version;
        let mut applied = self.applied.clone();
        let _ = applied.wait_for(|version| *version >= wanted).await;
    }

    /// Closes every existing connection abruptly (TCP reset); new ones are served as the mode
    /// says.
    pub fn reset(&self) {
        self.update(|control| control.resets += 1);
    }

    /// The server goes down: existing connections are reset and new ones refused.
    pub fn down(&self) {
        self.update(|control| {
            control.mode = Mode::Refuse;
            control.resets += 1;
        });
    }

    /// The server is back: connections are accepted and forwarded again.
    pub fn up(&self) {
        self.set_mode(Mode::Pass);
    }

    /// Connection and byte counts so far.
    #[must_use]
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            active: self.counters.active.load(Ordering::Relaxed),
            bytes_up: self.counters.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.counters.bytes_down.load(Ordering::Relaxed),
        }
    }

    /// Stops listening, closes every connection, and waits until every task has ended.
    pub async fn shutdown(mut self) {
        self.control.send_modify(|control| control.shutdown = true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.control.send_modify(|control| control.shutdown = true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts connections while the mode allows it, re-binding the same port after `Refuse`.
async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut control: watch::Receiver<Control>,
    applied: watch::Sender<u64>,
    counters: Arc<Counters>,
) {
    let mut connections = JoinSet::new();
    let mut listener = Some(listener);
    loop {
        let current = *control.borrow_and_update();
        if current.shutdown {
            break;
        }
        match (&listener, current.mode) {
            (Some(_), Mode::Refuse) => listener = None,
            (None, mode) if mode != Mode::Refuse => match TcpListener::bind(addr).await {
                Ok(bound) => listener = Some(bound),
                Err(error) => {
                    tracing::warn!(target: "seawall::chaos", %error, "proxy cannot listen again");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ => {}
        }
        applied.send_replace(current.version);
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        tokio::select! {
            changed = control.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            accepted = async {
                match &listener {
                    Some(listener) => listener.accept().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Ok((client, _)) = accepted {
                    counters.accepted.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(connection(client, upstream, control.clone(), counters.clone()));
                }
            }
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// One client connection: connects upstream and forwards both ways until either side
/// closes, a reset is ordered, or the byte cut-off is reached.
async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut control: watch::Receiver<Control>,
    counters: Arc<Counters>,
) {
    counters.active.fetch_add(1, Ordering::Relaxed);
    let resets = control.borrow_and_update().resets;
    if let Ok(server) = TcpStream::connect(upstream).await {
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        // Abrupt close: a dropped socket sends RST rather than FIN.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let forwarded = Arc::new(AtomicU64::new(0));
        let up = pump(
            client_read,
            server_write,
            Direction::Up,
            control.clone(),
            counters.clone(),
            forwarded.clone(),
        );
        let down = pump(
            server_read,
            client_write,
            Direction::Down,
            control.clone(),
            counters.clone(),
            forwarded,
        );
        let reset = async {
            loop {
                if control.changed().await.is_err() {
                    return;
                }
                let now = *control.borrow_and_update();
                if now.resets != resets || now.shutdown {
                    return;
                }
            }
        };
        // Whichever ends first ends the connection; the halves are dropped, with RST.
        tokio::select! {
            _ = up => {}
            _ = down => {}
            _ = reset => {}
        }
    }
    counters.active.fetch_sub(1, Ordering::Relaxed);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// Copies one direction, applying the mode to every chunk.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    mut control: watch::Receiver<Control>,
    counters: Arc<Counters>,
    forwarded: Arc<AtomicU64>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        // Forward nothing while blackholed; resume when the mode changes.
        while control.borrow().mode == Mode::Blackhole {
            if control.changed().await.is_err() {
                return;
            }
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        // A chunk read just as the mode turned to blackhole is held, not dropped: dropping it
        // would corrupt the stream once traffic flows again.
        while control.borrow().mode == Mode::Blackhole {
            if control.changed().await.is_err() {
                return;
            }
        }
        let mode = control.borrow().mode;
        match mode {
            Mode::Latency { up, down } => {
                let delay = if direction == Direction::Up { up } else { down };
                tokio::time::sleep(delay.fixed + jitter(&counters, delay.jitter)).await;
            }
            Mode::Bandwidth(rate) if rate > 0 => {
                tokio::time::sleep(Duration::from_secs_f64(read as f64 / rate as f64)).await;
            }
            Mode::CutAfter(limit) => {
                let total = forwarded.fetch_add(read as u64, Ordering::Relaxed) + read as u64;
                if total > limit {
                    let allowed = (limit + read as u64).saturating_sub(total) as usize;
                    let _ = to.write_all(&buffer[..allowed]).await;
                    return;
                }
            }
            _ => {}
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
        let counter = match direction {
            Direction::Up => &counters.bytes_up,
            Direction::Down => &counters.bytes_down,
        };
        counter.fetch_add(read as u64, Ordering::Relaxed);
    }
}

fn jitter(counters: &Counters, max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    max.mul_f64(counters.rng.next_f64())
}
