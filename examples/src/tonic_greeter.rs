//! The `tonic_greeter` example: the canonical gRPC "helloworld" service, written with tonic and
//! served by rgi-server through [`rgi_tower::TowerApp`].
//!
//! | Call | Answer |
//! |---|---|
//! | `helloworld.Greeter/SayHello` `{ name }` | `{ message: "Hello {name}" }`; an empty name is `INVALID_ARGUMENT` |
//! | `helloworld.Greeter/SayHelloStream` `{ name, count }` | `count` replies `Hello {name} #1` ... `#count`, streamed one message at a time; an empty name or a count over [`MAX_STREAM_COUNT`] is `INVALID_ARGUMENT` |
//! | any other path | gRPC status `UNIMPLEMENTED` |
//!
//! The service definition is `examples/proto/helloworld.proto`; the Rust code generated from it
//! (prost messages, tonic client and server) is checked in as `examples/proto/helloworld.rs`, so
//! building the example needs neither `protoc` nor a code generator. After changing the
//! `.proto`, regenerate it with `cargo run --manifest-path examples/proto/regen/Cargo.toml`
//! (a test fails while the two disagree).
//!
//! gRPC runs over HTTP/2; rgi-server speaks cleartext HTTP/2 with prior knowledge (h2c) on its
//! plain ports, which is what gRPC clients use for `http://` targets, and sends the response
//! trailers (`grpc-status`, `grpc-message`) that gRPC depends on (`HTTP-TRAIL-4`).
//!
//! Run it, then call it with any gRPC client, for example
//! [grpcurl](https://github.com/fullstorydev/grpcurl) (the server has no reflection service,
//! so grpcurl reads the `.proto`):
//!
//! ```text
//! cargo run --release -p rgi-examples --bin tonic_greeter -- --bind 127.0.0.1:50051
//! grpcurl -plaintext -import-path examples/proto -proto helloworld.proto \
//!     -d '{"name": "RGI"}' 127.0.0.1:50051 helloworld.Greeter/SayHello
//! grpcurl -plaintext -import-path examples/proto -proto helloworld.proto \
//!     -d '{"name": "RGI", "count": 3}' 127.0.0.1:50051 helloworld.Greeter/SayHelloStream
//! ```
//!
//! or with the tonic client generated from the same `.proto` ([`proto::greeter_client`]).
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     rgi_server::run(rgi_examples::tonic_greeter::app())
//! }
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use rgi_tower::TowerApp;
use tonic::{Request, Response, Status};

use proto::greeter_server::{Greeter, GreeterServer};
use proto::{HelloReply, HelloRequest, HelloStreamRequest};

/// The code generated from `examples/proto/helloworld.proto`: messages, client and server.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/proto/helloworld.rs"));
}

/// The most replies one `SayHelloStream` call may ask for.
pub const MAX_STREAM_COUNT: u32 = 10_000;

/// The `tonic_greeter` application: [`GreeterService`] behind tonic's generated server, as an
/// RGI app.
pub fn app() -> TowerApp<GreeterServer<GreeterService>> {
    TowerApp::new(GreeterServer::new(GreeterService))
}

/// The implementation of `helloworld.Greeter`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GreeterService;

#[tonic::async_trait]
impl Greeter for GreeterService {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = checked_name(request.into_inner().name)?;
        Ok(Response::new(HelloReply {
            message: format!("Hello {name}"),
        }))
    }

    type SayHelloStreamStream = Greetings;

    async fn say_hello_stream(
        &self,
        request: Request<HelloStreamRequest>,
    ) -> Result<Response<Greetings>, Status> {
        let HelloStreamRequest { name, count } = request.into_inner();
        let name = checked_name(name)?;
        if count > MAX_STREAM_COUNT {
            return Err(Status::invalid_argument(format!(
                "count must be at most {MAX_STREAM_COUNT}"
            )));
        }
        Ok(Response::new(Greetings {
            name,
            sent: 0,
            count,
        }))
    }
}

fn checked_name(name: String) -> Result<String, Status> {
    if name.is_empty() {
        Err(Status::invalid_argument("name must not be empty"))
    } else {
        Ok(name)
    }
}

/// The replies of `SayHelloStream`, made one at a time as the transport asks for them.
#[derive(Debug)]
pub struct Greetings {
    name: String,
    sent: u32,
    count: u32,
}

impl Stream for Greetings {
    type Item = Result<HelloReply, Status>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.sent >= self.count {
            return Poll::Ready(None);
        }
        self.sent += 1;
        let message = format!("Hello {} #{}", self.name, self.sent);
        Poll::Ready(Some(Ok(HelloReply { message })))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.count - self.sent).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn say_hello_greets_by_name_and_rejects_an_empty_name() {
        let reply = GreeterService
            .say_hello(Request::new(HelloRequest { name: "RGI".into() }))
            .await
            .unwrap();
        assert_eq!(reply.into_inner().message, "Hello RGI");
        let status = GreeterService
            .say_hello(Request::new(HelloRequest {
                name: String::new(),
            }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn greetings_count_up_and_end() {
        let mut greetings = Greetings {
            name: "x".into(),
            sent: 0,
            count: 2,
        };
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut next = || match Pin::new(&mut greetings).poll_next(&mut cx) {
            Poll::Ready(item) => item.map(|reply| reply.unwrap().message),
            Poll::Pending => panic!("never pending"),
        };
        assert_eq!(next().as_deref(), Some("Hello x #1"));
        assert_eq!(next().as_deref(), Some("Hello x #2"));
        assert_eq!(next(), None);
    }
}
