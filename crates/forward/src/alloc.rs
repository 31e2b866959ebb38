//! Room for large transient buffers: frames being read and inflated
//! batches.

/// Buffers from this size on are large.
pub(crate) const LARGE: usize = 1 << 20;

/// glibc serves a request larger than this with its own `mmap(2)` and gives
/// it back with `munmap(2)` when it is freed, whatever its dynamic
/// threshold says (`DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit, mallopt(3)).
const ALWAYS_MAPPED: usize = 32 << 20;

/// The capacity to allocate for a transient buffer that will hold up to
/// `bytes`.
///
/// A large one is asked for with more than 32 MiB of room.
/// Otherwise glibc raises its mmap threshold to the size of the first such
/// buffer freed and serves the next ones from its per-thread heaps, which
/// keep what is freed: under a flood of large frames and compressed
/// batches that held two to three times the memory actually in use. Only
/// pages written become resident, so the room beyond `bytes` costs address
/// space, not memory.
pub fn transient_capacity(bytes: usize) -> usize {
    if bytes >= LARGE {
        bytes.max(ALWAYS_MAPPED + 4096)
    } else {
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_large_buffers_get_mapped_room() {
        assert_eq!(transient_capacity(64 << 10), 64 << 10);
        assert!(transient_capacity(LARGE) > ALWAYS_MAPPED);
        assert!(transient_capacity(16 << 20) > ALWAYS_MAPPED);
        assert_eq!(transient_capacity(64 << 20), 64 << 20);
    }
}
