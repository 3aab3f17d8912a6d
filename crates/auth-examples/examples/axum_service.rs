//! The core inside an axum service, on the in-process kit, with a mailer that prints the codes
//! (the one piece of the embedder's own code a real deployment replaces with its mail
//! service).
//!
//! ```text
//! cargo run -p auth-examples --example axum_service            # listens on 127.0.0.1:3000
//! curl -si localhost:3000/signup -H 'content-type: application/json' \
//!      -d '{"email":"ada@example.com","password":"lantern orchard 1843 velvet"}'
//! curl -si localhost:3000/verify -H 'content-type: application/json' \
//!      -d '{"email":"ada@example.com","code":"<the code printed by the server>"}'
//! curl -si localhost:3000/login  -H 'content-type: application/json' \
//!      -d '{"email":"ada@example.com","password":"lantern orchard 1843 velvet"}'
//! curl -si localhost:3000/me -H 'authorization: Bearer <token>'
//! curl -si -X POST localhost:3000/logout -H 'authorization: Bearer <token>'
//! ```
//! `BIND_ADDR` sets another address.

use std::net::SocketAddr;
use std::sync::Arc;

use auth_core::{
    async_trait, AuthConfig, AuthService, EmailAddress, MailMessage, Mailer, MailerError, OtpSecret,
};
use auth_memory::InProcessKit;
use rand::RngCore;

/// Prints what would be mailed (codes included: a development stand-in for a mail service).
#[derive(Debug)]
struct PrintMailer;

#[async_trait]
impl Mailer for PrintMailer {
    async fn send(&self, to: &EmailAddress, message: &MailMessage) -> Result<(), MailerError> {
        match message {
            MailMessage::VerifyEmail { code, .. } | MailMessage::VerifyEmailAgain { code, .. } => {
                println!("mail to {to}: verification code {}", code.expose());
            }
            MailMessage::ResetPassword { code, .. } => {
                println!("mail to {to}: reset code {}", code.expose());
            }
            notice => println!("mail to {to}: {notice:?}"),
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kit = InProcessKit::new(Arc::new(PrintMailer))?;
    let mut key = vec![0u8; OtpSecret::MIN_LEN];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let secret = OtpSecret::new(key.into_boxed_slice().into())?;
    let service = AuthService::new(kit.auth_ports(), AuthConfig::default(), secret);

    let addr = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = auth_examples::router(Arc::new(service));
    // ConnectInfo: the peer address the core budgets requests on.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
