//! The whole lifecycle against the in-process kit, on `futures::executor::block_on` (no Tokio):
//! signup → verify → login → authenticate → change password → logout everywhere → forgot →
//! reset → login with the new password. Prints each step.
//!
//! ```text
//! cargo run -p auth-examples --example lifecycle
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    match auth_examples::run_lifecycle(|step| println!("ok  {step}")) {
        Ok(steps) => {
            println!("done: {} steps", steps.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
