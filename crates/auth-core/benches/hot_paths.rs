//! Criterion micro-benchmarks of the core hot paths (issue 7):
//!
//! - session token generation (256 bits from the OS CSPRNG) and its SHA-256, as at login;
//! - parsing a presented bearer token and hashing it, as on every authenticated request;
//! - the OTP HMAC-SHA256 (signup, verify, reset), and generating a code.
//!
//! Run with `cargo bench -p auth-core` (results in `target/criterion/`).

use std::hint::black_box;

use auth_core::{
    EmailAddress, OsRandom, OtpCode, OtpPurpose, OtpSecret, RandomSource, SessionToken,
};
use criterion::{criterion_group, criterion_main, Criterion};
use secrecy::SecretBox;

fn session_tokens(c: &mut Criterion) {
    let rng = OsRandom;
    let mut group = c.benchmark_group("session_token");
    group.bench_function("generate", |b| b.iter(|| black_box(rng.session_token())));
    group.bench_function("generate_and_sha256", |b| {
        b.iter(|| black_box(rng.session_token().hash()))
    });
    let token = rng.session_token();
    let presented = token.expose();
    group.bench_function("parse_bearer_and_sha256", |b| {
        b.iter(|| SessionToken::parse(black_box(&presented)).map(|t| t.hash()))
    });
    let hash = token.hash();
    group.bench_function("token_hash_to_hex", |b| {
        b.iter(|| black_box(&hash).to_hex())
    });
    group.finish();
}

fn otp(c: &mut Criterion) {
    let rng = OsRandom;
    let Ok(secret) = OtpSecret::new(SecretBox::new(Box::new([7u8; 32]) as Box<[u8]>)) else {
        return;
    };
    let Ok(email) = EmailAddress::parse("ada@example.com") else {
        return;
    };
    let Ok(code) = OtpCode::parse("123456") else {
        return;
    };
    let mut group = c.benchmark_group("otp");
    group.bench_function("hmac_sha256", |b| {
        b.iter(|| secret.mac(OtpPurpose::VerifyEmail, black_box(&email), black_box(&code)))
    });
    let stored = secret.mac(OtpPurpose::VerifyEmail, &email, &code);
    group.bench_function("hmac_and_ct_compare", |b| {
        b.iter(|| {
            secret
                .mac(OtpPurpose::VerifyEmail, black_box(&email), black_box(&code))
                .ct_eq(&stored)
        })
    });
    group.bench_function("generate_code", |b| b.iter(|| black_box(rng.otp_code())));
    group.finish();
}

criterion_group!(benches, session_tokens, otp);
criterion_main!(benches);
