//! Content-addressed chunk store: a disk is a versioned manifest of fixed-size chunks named by
//! their BLAKE3 hash; all-zero chunks are never stored; chunks are write-once and shared by
//! every image, snapshot and instance disk that holds them.
