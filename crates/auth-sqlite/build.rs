//! `embed_migrations!` only tracks the files it saw; a new migration directory must also
//! trigger a rebuild, or the binary silently ships without it.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
