//! A TCP relay that delays every byte by half a round trip in each direction, so the batch
//! comparison can be measured as over a network, not only over loopback where the reads are
//! CPU-bound. Data is delayed, not throttled: a chunk read at t leaves at t + delay, whatever
//! else is in flight (a pipe with latency, like a real link).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub struct LatencyRelay {
    addr: SocketAddr,
    // Dropping the runtime stops the relay and closes its connections.
    _runtime: tokio::runtime::Runtime,
}

impl LatencyRelay {
    /// Listens on 127.0.0.1 and relays to `upstream`, adding `rtt` to every round trip.
    pub fn start(upstream: SocketAddr, rtt: Duration) -> Result<LatencyRelay> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the latency relay's runtime")?;
        let listener = runtime
            .block_on(TcpListener::bind(("127.0.0.1", 0)))
            .context("binding the latency relay")?;
        let addr = listener.local_addr()?;
        let one_way = rtt / 2;
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::spawn(delayed(client_read, server_write, one_way));
                        tokio::spawn(delayed(server_read, client_write, one_way));
                    }
                });
            }
        });
        Ok(LatencyRelay {
            addr,
            _runtime: runtime,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Copies `from` to `to`, each chunk leaving `delay` after it arrived.
async fn delayed(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
