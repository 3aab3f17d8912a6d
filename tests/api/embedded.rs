//! The embedded profile keeps users across restarts.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn users_survive_a_restart_on_sqlite() {
    let mut app = TestApp::spawn(Profile::Embedded).await;
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    app.restart().await;
    // The in-memory sessions are gone with the process; the account is not.
    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    let token = app.token(&email, PASSWORD).await;
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    app.cleanup().await;
}
