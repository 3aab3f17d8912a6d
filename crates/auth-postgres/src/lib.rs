//! PostgreSQL UserRepository adapter for SecureAuth (Diesel + diesel-async).
