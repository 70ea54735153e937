//! `rtnode fixed`: the floor of the benchmark. A server that does the least an HTTP/1.1
//! server on tokio can do for the bench's requests: one current-thread runtime per
//! thread, its own `SO_REUSEPORT` listener, read a request head and its
//! `Content-Length` body, write a fixed answer of the size of a cached one. No parser
//! beyond that, no lookup, no allocation per request. Whatever a request costs here is
//! the kernel's loopback TCP and the runtime's polling, which every proxy on this
//! machine pays as well.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves until killed.
pub fn run(listen: std::net::SocketAddr, threads: usize, body_bytes: usize) -> anyhow::Result<()> {
    let body = "x".repeat(body_bytes);
    let answer: &'static [u8] = Box::leak(
        format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\r\n{body}", body.len())
            .into_bytes()
            .into_boxed_slice(),
    );
    let mut handles = vec![];
    for _ in 0..threads.max(1) {
        handles.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let sock = tokio::net::TcpSocket::new_v4()?;
                sock.set_reuseaddr(true)?;
                sock.set_reuseport(true)?;
                sock.bind(listen)?;
                let l = sock.listen(1024)?;
                loop {
                    let (tcp, _) = l.accept().await?;
                    tcp.set_nodelay(true)?;
                    tokio::spawn(connection(tcp, answer));
                }
            })
        }));
    }
    for h in handles {
        h.join().map_err(|_| anyhow::anyhow!("a thread panicked"))??;
    }
    Ok(())
}

/// One connection: requests one after the other (no pipelining, as wrk sends them).
async fn connection(mut tcp: tokio::net::TcpStream, answer: &'static [u8]) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut have = 0;
    loop {
        // The head, then as much body as Content-Length says.
        let need = loop {
            if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4 + content_length(&buf[..end]);
            }
            if have == buf.len() {
                return;
            }
            match tcp.read(&mut buf[have..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        };
        if need > buf.len() {
            return;
        }
        while have < need {
            match tcp.read(&mut buf[have..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        }
        if tcp.write_all(answer).await.is_err() {
            return;
        }
        buf.copy_within(need..have, 0);
        have -= need;
    }
}

fn content_length(head: &[u8]) -> usize {
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
            return std::str::from_utf8(&line[15..]).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        }
    }
    0
}
