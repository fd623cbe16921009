//! The shared server the workers call, counting the calls in flight at once.

use super::*;

/// A TCP server counting the calls it is serving at once, each held for a while: what every
/// process's calls reach, so that the fleet's in-flight count is observed in one place.
#[derive(Debug)]
pub struct CountingServer {
    addr: SocketAddr,
    current: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    served: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingServer {
    /// Starts one on a free loopback port, holding each call for `hold`.
    pub async fn start(hold: Duration) -> io::Result<CountingServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let current = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicU64::new(0));
        let task = {
            let (current, most, served) = (current.clone(), most.clone(), served.clone());
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let (current, most, served) = (current.clone(), most.clone(), served.clone());
                    tokio::spawn(async move {
                        let mut byte = [0];
                        if stream.read_exact(&mut byte).await.is_err() {
                            return;
                        }
                        let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(hold).await;
                        current.fetch_sub(1, Ordering::SeqCst);
                        served.fetch_add(1, Ordering::Relaxed);
                        let _ = stream.write_all(&byte).await;
                    });
                }
            })
        };
        Ok(CountingServer {
            addr,
            current,
            most,
            served,
            task,
        })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Calls being served now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::SeqCst)
    }

    /// The most calls it served at once.
    pub fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    /// Calls served.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for CountingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
