// CORE-APP-2: an application is shared by concurrent calls, so it must be Send + Sync.
use std::cell::Cell;
use std::convert::Infallible;

use rgi::http::Response;
use rgi::{App, Body, Request};

struct Visits {
    count: Cell<u64>,
}

impl Visits {
    fn visit(&self) -> u64 {
        self.count.set(self.count.get() + 1);
        self.count.get()
    }
}

impl App for Visits {
    type Body = Body;
    type Error = Infallible;

    async fn call(&self, _req: Request) -> Result<Response<Body>, Infallible> {
        Ok(Response::new(Body::empty()))
    }
}

fn main() {
    let visits = Visits { count: Cell::new(0) };
    visits.visit();
}
