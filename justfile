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

# Load benchmark: release build of the server, real PostgreSQL and Redis on loopback, wrk as the
# load generator (installed when missing); table on stdout, JSON in target/bench/report.json.
# See docs/BENCHMARKS.md. Extra arguments go to auth-bench (e.g. `just bench --duration 20`).
bench *ARGS:
    command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
    cargo build --release -p auth-bench -p auth-http
    cargo run --release -q -p auth-bench -- --server-bin auth-http {{ARGS}}
