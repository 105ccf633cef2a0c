//! Stable pseudonyms for the names and addresses of a capture (`tapio redact --names`).
