//! The actix-web peer: the routes of the `hello` example on actix-web with one worker.
#![deny(missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::Bytes;

#[cfg(feature = "count-allocs")]
#[path = "../../servers/src/alloc.rs"]
pub mod alloc;

const HELLO: &str = "Hello, World!";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// The chunk size of `/stream` (as `rgi_examples::hello::STREAM_CHUNK`).
const STREAM_CHUNK: usize = 64 * 1024;
/// The largest `/stream?bytes=N` (as `rgi_examples::hello::STREAM_MAX`).
const STREAM_MAX: u64 = 16 << 30;

/// The command line: `peer-actix <addr>`; runs until killed.
pub fn main() -> std::process::ExitCode {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: peer-actix <addr>");
        return std::process::ExitCode::from(2);
    };
    let addr = match addr.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("bad address {addr:?}: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    match serve(addr) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("peer-actix: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Serves on `addr` with one worker until the process is killed.
pub fn serve(addr: SocketAddr) -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| {
            App::new()
                .route("/", web::get().to(hello))
                .route("/echo", web::post().to(echo))
                .route("/stream", web::get().to(stream))
                .default_service(web::to(not_found))
        })
        .workers(1)
        // Idle keep-alive connections stay open for the memory scenario.
        .keep_alive(Duration::from_secs(120))
        .backlog(4096)
        .bind(addr)?;
        println!("peer actix listening on http://{addr}");
        server.run().await
    })
}

async fn hello() -> HttpResponse {
    HttpResponse::Ok().content_type(TEXT_PLAIN).body(HELLO)
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type(TEXT_PLAIN)
        .body("Not Found")
}

/// Streams the request body back, as the other peers do.
async fn echo(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(value) = req.headers().get(header::CONTENT_TYPE) {
        response.insert_header((header::CONTENT_TYPE, value.clone()));
    }
    response.streaming(payload)
}

/// `bytes=N` out of a query string (as `rgi_examples::hello::stream_length`).
fn stream_length(query: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "bytes")
        .and_then(|(_, value)| value.parse::<u64>().ok())
        .filter(|n| *n <= STREAM_MAX)
}

async fn stream(req: HttpRequest) -> HttpResponse {
    let Some(length) = stream_length(req.query_string()) else {
        return HttpResponse::BadRequest()
            .content_type(TEXT_PLAIN)
            .body("expected /stream?bytes=N\n");
    };
    let chunk = Bytes::from(vec![b'x'; STREAM_CHUNK]);
    let chunks = futures_util::stream::unfold(length, move |remaining| {
        let chunk = chunk.clone();
        async move {
            if remaining == 0 {
                return None;
            }
            let n = remaining.min(STREAM_CHUNK as u64);
            // `n` is at most STREAM_CHUNK, so the cast is lossless.
            Some((
                Ok::<_, Infallible>(chunk.slice(..n as usize)),
                remaining - n,
            ))
        }
    });
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .no_chunking(length)
        .streaming(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_length_matches_hello() {
        assert_eq!(stream_length("bytes=10"), Some(10));
        assert_eq!(stream_length("a=1&bytes=0"), Some(0));
        assert_eq!(stream_length("bytes=x"), None);
        assert_eq!(stream_length("bytes=17179869185"), None);
    }
}
