//! Whether the real third-party data (`../shared/data`) is beside the repository.

/// `true` when `../shared/data` is there. A plain clone has none: the test says it is skipped and
/// why, and returns; CI sets `TAPIO_REQUIRE_SHARED_DATA`, and there a missing directory fails.
pub fn shared_data(test: &str) -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.is_dir() {
        return true;
    }
    if std::env::var_os("TAPIO_REQUIRE_SHARED_DATA").is_some() {
        panic!("{test}: {} is missing", dir.display());
    }
    eprintln!(
        "skipped {test}: ../shared/data (the real third-party data) is not beside the repository"
    );
    false
}
