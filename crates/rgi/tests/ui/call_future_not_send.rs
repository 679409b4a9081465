// CORE-APP-2: the future of a call must be Send (servers run it on any worker thread).
use std::convert::Infallible;
use std::rc::Rc;

use rgi::http::Response;
use rgi::{App, Body, Request};

struct Local;

async fn yield_now() {}

impl App for Local {
    type Body = Body;
    type Error = Infallible;

    async fn call(&self, _req: Request) -> Result<Response<Body>, Infallible> {
        let held = Rc::new(1);
        yield_now().await;
        Ok(Response::new(Body::from(held.to_string())))
    }
}

fn main() {}
