//! Hard limits for untrusted input.

/// Hard limits for untrusted input. Each is checked before bytes are
/// buffered or allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame (one top-level msgpack value) accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Largest inflated size of a compressed frame's entries, in bytes.
    pub max_decompressed_bytes: usize,
    /// Deepest msgpack nesting accepted anywhere in a frame.
    pub max_depth: usize,
}

impl Default for Limits {
    /// 16 MiB frames (twice Fluentd's default 8 MiB chunk), 64 MiB inflated,
    /// 64 levels of nesting.
    fn default() -> Self {
        Limits {
            max_frame_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_depth: 64,
        }
    }
}
