// HTTP-RESP-1: the response body is an http_body::Body of Bytes frames, not an arbitrary type.
use std::convert::Infallible;

use rgi::http::Response;
use rgi::{App, Request};

struct Text;

impl App for Text {
    type Body = Vec<u8>;
    type Error = Infallible;

    async fn call(&self, _req: Request) -> Result<Response<Vec<u8>>, Infallible> {
        Ok(Response::new(b"hi".to_vec()))
    }
}

fn main() {}
