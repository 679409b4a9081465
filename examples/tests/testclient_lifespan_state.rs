//! The `lifespan_state` example, tested in-process with rgi-test's TestClient.

use http::StatusCode;
use rgi_examples::lifespan_state::Startup;
use rgi_test::{Lint, TestClient};

/// LIFE-START-1, LIFE-STATE-1, LIFE-SHUT-1: the resource opened at startup is shared by every
/// request and closed by the one shutdown.
#[tokio::test]
async fn shared_resource_lives_from_startup_to_shutdown() {
    let client = TestClient::start(Startup).await.unwrap();
    let database = client.app().database().clone();
    assert!(database.is_open());
    for expected in 1..=3 {
        let mut response = client.get("/").send().await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.text().await.unwrap(),
            format!("visits: {expected}")
        );
    }
    assert_eq!(
        client.get("/other").send().await.status(),
        StatusCode::NOT_FOUND
    );
    client.shutdown().await;
    assert!(!database.is_open());
}

/// LIFE-START-4, EXT-CAP-7: started through a linted lifespan, the app passes with no
/// violation.
#[tokio::test]
async fn passes_lint() {
    let lifespan = Lint::lifespan(Startup);
    let report = lifespan.report();
    let client = TestClient::start(lifespan).await.unwrap();
    let mut response = client.get("/").send().await;
    assert_eq!(response.text().await.unwrap(), "visits: 1");
    client.shutdown().await;
    report.assert_clean();
}
