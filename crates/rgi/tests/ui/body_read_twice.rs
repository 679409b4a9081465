// HTTP-BODY: the request body is consumed at most once.
use rgi::Body;

async fn read(body: Body) {
    let first = body.collect().await;
    let second = body.collect().await;
    drop((first, second));
}

fn main() {
    drop(read(Body::empty()));
}
