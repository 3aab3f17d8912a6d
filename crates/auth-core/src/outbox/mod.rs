//! The mail outbox: no mail server in the request path.
//!
//! [`MailQueue`] is the [`Mailer`] the service is given: `send` seals the message
//! ([`MailSeal`]) and stores it in the [`OutboxStore`] (a table of the user database), and the
//! request answers. A [`Courier`] on every instance claims due messages under a lease, sends
//! them with the real [`Mailer`] (SMTP), retries transient failures with exponential backoff
//! and jitter, gives up on permanent refusals and suppresses the address for a while. Code
//! mails past the code's lifetime are dropped, never sent late; a new reset or login code
//! replaces an unsent older one (verification codes do not replace each other: each carries
//! the password of its own signup, see [`AuthService`](crate::AuthService)).
//!
//! The courier only decides; running it in a loop (and waking it when a message is queued) is
//! the application's part, since this crate has no runtime:
//! ```
//! # use std::sync::Arc;
//! # use auth_core::outbox::Courier;
//! async fn run(courier: Arc<Courier>) {
//!     loop {
//!         match courier.deliver_due().await {
//!             Ok(report) if report.claimed > 0 => continue,
//!             _ => { /* sleep a second, or until the queue's hook wakes you */ break }
//!         }
//!     }
//! }
//! ```

mod courier;
mod queue;
mod seal;
#[cfg(test)]
mod tests;

pub use courier::{Courier, CourierPolicy, DeliveryReport};
pub use queue::{EnqueueHook, MailQueue};
pub use seal::{Letter, MailSeal, SealError};

#[cfg(doc)]
use crate::ports::{Mailer, OutboxStore};
