# SecureAuth tasks. Each recipe is a thin alias of a cargo command.

# Run the server (development profile; reads .env if present).
run:
    cargo run --release -p auth-http -- serve

# Run every test (needs PostgreSQL and Redis on loopback; see README).
test:
    cargo test --workspace

# Format check and clippy with warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Apply database migrations and exit.
migrate:
    cargo run --release -p auth-http -- migrate

# Load benchmark: not built yet.
bench:
    @echo "the load benchmark is not built yet" && exit 1
