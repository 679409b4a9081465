//! The `tonic_greeter` binary (tonic's generated `Greeter` server in `rgi_tower::TowerApp` on
//! rgi-server) called over h2c by tonic's own client, and by a raw hyper HTTP/2 client that
//! looks at the trailers on the wire.

mod support;

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderValue, Request, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use rgi_examples::tonic_greeter::proto::greeter_client::GreeterClient;
use rgi_examples::tonic_greeter::proto::{HelloReply, HelloRequest, HelloStreamRequest};
use support::{ServerOptions, TestServer};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const TONIC_GREETER: &str = env!("CARGO_BIN_EXE_tonic_greeter");
/// Upper bound for one call: only stops a broken server from hanging the suite.
const BOUND: Duration = Duration::from_secs(20);

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(BOUND, future)
        .await
        .expect("the step finishes within the bound")
}

async fn client(server: &TestServer) -> GreeterClient<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://{}", server.addr())).unwrap();
    let channel = within(endpoint.connect()).await.expect("h2c connects");
    GreeterClient::new(channel)
}

/// HTTP-TRAIL-4, HTTP-REQ-2, HTTP-REQ-4, HTTP-BODY-1: a unary `SayHello` from tonic's client
/// over h2c gets `Hello {name}`; tonic reads the reply's `grpc-status` from the HTTP/2
/// trailers, so a call that succeeds proves they arrived.
#[tokio::test]
async fn unary_say_hello_over_h2c() {
    let server = ServerOptions::new(TONIC_GREETER).start();
    let mut client = client(&server).await;
    let reply = within(client.say_hello(HelloRequest { name: "RGI".into() }))
        .await
        .expect("the call succeeds");
    assert_eq!(reply.into_inner().message, "Hello RGI");
    server.assert_no_panic();
}

/// HTTP-TRAIL-4, HTTP-FRAME-12: the server-streaming `SayHelloStream` delivers every reply,
/// in order, and ends with an OK status from the trailers (tonic turns a stream that ends
/// without `grpc-status` into an error).
#[tokio::test]
async fn server_streaming_say_hello_stream() {
    let server = ServerOptions::new(TONIC_GREETER).start();
    let mut client = client(&server).await;
    let mut stream = within(client.say_hello_stream(HelloStreamRequest {
        name: "stream".into(),
        count: 50,
    }))
    .await
    .expect("the call starts")
    .into_inner();
    let mut messages = Vec::new();
    while let Some(reply) = within(stream.message()).await.expect("no error status") {
        messages.push(reply.message);
    }
    let expected: Vec<String> = (1..=50).map(|i| format!("Hello stream #{i}")).collect();
    assert_eq!(messages, expected);
    let trailers = within(stream.trailers()).await.expect("trailers read");
    assert!(trailers.is_some(), "the stream ended with trailers");
}

/// HTTP-TRAIL-4: an error status travels in the trailers too — an empty name is
/// `INVALID_ARGUMENT` for the unary and the streaming call, with its message.
#[tokio::test]
async fn invalid_argument_status_for_an_empty_name() {
    let server = ServerOptions::new(TONIC_GREETER).start();
    let mut client = client(&server).await;
    let status = within(client.say_hello(HelloRequest::default()))
        .await
        .expect_err("an empty name is rejected");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "name must not be empty");

    let status = within(client.say_hello_stream(HelloStreamRequest {
        name: "x".into(),
        count: u32::MAX,
    }))
    .await
    .expect_err("an oversized count is rejected");
    assert_eq!(status.code(), Code::InvalidArgument);
}

/// A gRPC message: the 5-byte length prefix (not compressed) and the protobuf encoding.
fn grpc_frame(message: &impl prost::Message) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + encoded.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(encoded.len()).unwrap());
    frame.put_slice(&encoded);
    frame.freeze()
}

/// Sends one gRPC call with a raw hyper HTTP/2 client (prior knowledge) and returns the
/// response status, headers, body and trailers.
async fn raw_call(
    server: &TestServer,
    path: &str,
    message: Bytes,
) -> (http::response::Parts, Bytes, http::HeaderMap) {
    let stream = within(tokio::net::TcpStream::connect(server.addr()))
        .await
        .expect("connects");
    let (mut sender, connection) = within(hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(stream),
    ))
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let request = Request::post(format!("http://{}{path}", server.addr()))
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, HeaderValue::from_static("trailers"))
        .body(Full::new(message))
        .unwrap();
    let response = within(sender.send_request(request))
        .await
        .expect("a response");
    let (parts, body) = response.into_parts();
    let collected = within(body.collect()).await.expect("the body ends cleanly");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    (parts, collected.to_bytes(), trailers)
}

/// HTTP-TRAIL-4, HTTP-TRAIL-6, HTTP-RESP-1: on the wire, a successful `SayHello` is a `200`
/// with `content-type: application/grpc`, one length-prefixed reply, and `grpc-status: 0` in
/// the HTTP/2 trailers (not in the head).
#[tokio::test]
async fn raw_h2_response_carries_grpc_status_0_in_trailers() {
    let server = ServerOptions::new(TONIC_GREETER).start();
    let (parts, mut body, trailers) = raw_call(
        &server,
        "/helloworld.Greeter/SayHello",
        grpc_frame(&HelloRequest {
            name: "wire".into(),
        }),
    )
    .await;
    assert_eq!(parts.status, http::StatusCode::OK);
    assert_eq!(parts.version, http::Version::HTTP_2);
    assert_eq!(parts.headers[header::CONTENT_TYPE], "application/grpc");
    assert!(
        parts.headers.get("grpc-status").is_none(),
        "{:?}",
        parts.headers
    );
    assert_eq!(
        trailers.get("grpc-status").map(HeaderValue::as_bytes),
        Some(&b"0"[..])
    );

    assert_eq!(body.get_u8(), 0, "not compressed");
    let length = body.get_u32() as usize;
    assert_eq!(length, body.len());
    let reply = HelloReply::decode(body).expect("a HelloReply");
    assert_eq!(reply.message, "Hello wire");
}

/// HTTP-TRAIL-4: the error case on the wire: `grpc-status: 3` (`INVALID_ARGUMENT`) and its
/// `grpc-message` arrive as HTTP/2 trailers after an empty body.
#[tokio::test]
async fn raw_h2_error_status_is_non_zero_in_trailers() {
    let server = ServerOptions::new(TONIC_GREETER).start();
    let (parts, body, trailers) = raw_call(
        &server,
        "/helloworld.Greeter/SayHello",
        grpc_frame(&HelloRequest::default()),
    )
    .await;
    assert_eq!(parts.status, http::StatusCode::OK);
    assert!(body.is_empty());
    let status = trailers
        .get("grpc-status")
        .or_else(|| parts.headers.get("grpc-status"))
        .expect("a grpc-status");
    assert_eq!(status, "3");
    // tonic sends an error without messages as a trailers-only response (the status in the
    // head); either way the status is not 0 and the message is there.
    let message = trailers
        .get("grpc-message")
        .or_else(|| parts.headers.get("grpc-message"))
        .expect("a grpc-message");
    // gRPC percent-encodes `grpc-message` on the wire.
    assert_eq!(message, "name%20must%20not%20be%20empty");
}

/// The code checked in as `examples/proto/helloworld.rs` was generated from the current
/// `helloworld.proto`: its header records the `.proto`'s FNV-1a hash (regenerate with
/// `cargo run --manifest-path examples/proto/regen/Cargo.toml` when this fails).
/// HTTP-TRAIL-6 is what the service's clients rely on; this keeps its definition honest.
#[test]
fn generated_code_matches_the_proto() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let proto = std::fs::read(format!("{dir}/helloworld.proto")).unwrap();
    let generated = std::fs::read_to_string(format!("{dir}/helloworld.rs")).unwrap();
    let hash = proto.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let expected = format!("// helloworld.proto FNV-1a 64: {hash:016x}\n");
    assert!(
        generated.lines().nth(1).map(|line| format!("{line}\n")) == Some(expected.clone()),
        "helloworld.rs is stale: expected the header line {expected:?}; regenerate it"
    );
}

/// A stock gRPC client from another language: Python's `grpcio` (the C core; Debian's
/// `python3-grpcio`, installed by `scripts/install-test-deps.sh`), with the messages encoded by
/// hand so that no generated code is needed.
const PYTHON_CLIENT: &str = r#"
import sys, grpc

def encode(name, count=None):
    data = name.encode()
    out = (b"\x0a" + bytes([len(data)]) + data) if data else b""
    if count is not None:
        out += b"\x10" + bytes([count])
    return out

def decode(data):
    assert data[0] == 0x0a and data[1] < 128, data
    return data[2:2 + data[1]].decode()

channel = grpc.insecure_channel(sys.argv[1])
grpc.channel_ready_future(channel).result(timeout=20)
say = channel.unary_unary("/helloworld.Greeter/SayHello",
                          request_serializer=bytes, response_deserializer=decode)
print("unary:", say(encode("Python"), timeout=20))
stream = channel.unary_stream("/helloworld.Greeter/SayHelloStream",
                              request_serializer=bytes, response_deserializer=decode)
for reply in stream(encode("py", 3), timeout=20):
    print("stream:", reply)
try:
    say(encode(""), timeout=20)
    print("empty: OK")
except grpc.RpcError as error:
    print("empty:", error.code().name)
"#;

/// HTTP-TRAIL-4, HTTP-REQ-2: Python's `grpcio` calls `Greeter` through rgi-server over h2c —
/// unary, server streaming, and an error status — exactly as it would call any gRPC server.
#[tokio::test]
async fn python_grpcio_client_calls_the_greeter() {
    let server = ServerOptions::new(TONIC_GREETER).start();
    // Debian's interpreter, where `python3-grpcio` is installed (another `python3` may come
    // first on PATH).
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let addr = server.addr().to_string();
    let output = within(
        tokio::process::Command::new(python)
            .args(["-c", PYTHON_CLIENT, &addr])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'grpc'"),
        "Python's grpcio is missing: run scripts/install-test-deps.sh (package python3-grpcio)"
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "unary: Hello Python",
            "stream: Hello py #1",
            "stream: Hello py #2",
            "stream: Hello py #3",
            "empty: INVALID_ARGUMENT",
        ],
        "{stderr}"
    );
    server.assert_no_panic();
}
