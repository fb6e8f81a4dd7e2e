//! NBD protocol constants and wire helpers, from the NBD protocol document
//! (`doc/proto.md` of the NetworkBlockDevice/nbd project): handshake magics, options,
//! replies, transmission flags, commands, structured reply types and error values.
//! All integers on the wire are big-endian.

/// `NBDMAGIC`, first 8 bytes the server sends (proto.md "Newstyle negotiation").
pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`: newstyle magic, also prefixes every client option.
pub const IHAVEOPT: u64 = 0x4948_4156_454F_5054;
/// Magic of every option reply.
pub const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// Magic of a transmission request.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// Magic of a simple reply.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// Magic of a structured reply chunk.
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

/// Handshake flag: fixed newstyle.
pub const FLAG_FIXED_NEWSTYLE: u16 = 1;
/// Handshake flag: no 124 zero bytes after NBD_OPT_EXPORT_NAME.
pub const FLAG_NO_ZEROES: u16 = 2;
/// Client flag: fixed newstyle.
pub const FLAG_C_FIXED_NEWSTYLE: u32 = 1;
/// Client flag: no zeroes.
pub const FLAG_C_NO_ZEROES: u32 = 2;

/// Options (proto.md "Option types").
pub mod opt {
    /// Select an export and enter transmission (old style, no error reply possible).
    pub const EXPORT_NAME: u32 = 1;
    /// End negotiation.
    pub const ABORT: u32 = 2;
    /// List exports.
    pub const LIST: u32 = 3;
    /// Upgrade to TLS.
    pub const STARTTLS: u32 = 5;
    /// Describe an export.
    pub const INFO: u32 = 6;
    /// Describe an export and enter transmission.
    pub const GO: u32 = 7;
    /// Use structured replies.
    pub const STRUCTURED_REPLY: u32 = 8;
    /// List metadata contexts.
    pub const LIST_META_CONTEXT: u32 = 9;
    /// Select metadata contexts.
    pub const SET_META_CONTEXT: u32 = 10;
}

/// Option reply types (proto.md "Option reply types").
pub mod rep {
    /// Done.
    pub const ACK: u32 = 1;
    /// An export (NBD_OPT_LIST).
    pub const SERVER: u32 = 2;
    /// Export information.
    pub const INFO: u32 = 3;
    /// A metadata context.
    pub const META_CONTEXT: u32 = 4;
    /// Error bit.
    const ERR: u32 = 1 << 31;
    /// Unsupported option.
    pub const ERR_UNSUP: u32 = ERR | 1;
    /// Forbidden by policy.
    pub const ERR_POLICY: u32 = ERR | 2;
    /// Invalid option data.
    pub const ERR_INVALID: u32 = ERR | 3;
    /// Unknown export.
    pub const ERR_UNKNOWN: u32 = ERR | 6;
    /// TLS is required before this option (NBD_REP_ERR_TLS_REQD).
    pub const ERR_TLS_REQD: u32 = ERR | 5;
    /// Request too big.
    pub const ERR_TOO_BIG: u32 = ERR | 9;
}

/// Information types in NBD_REP_INFO.
pub mod info {
    /// Size and transmission flags.
    pub const EXPORT: u16 = 0;
    /// Block size constraints.
    pub const BLOCK_SIZE: u16 = 3;
}

/// Transmission flags (proto.md "Transmission flags").
pub mod tflag {
    /// Flags field is valid.
    pub const HAS_FLAGS: u16 = 1;
    /// Read-only export.
    pub const READ_ONLY: u16 = 1 << 1;
    /// Supports NBD_CMD_FLUSH.
    pub const SEND_FLUSH: u16 = 1 << 2;
    /// Supports NBD_CMD_FLAG_FUA.
    pub const SEND_FUA: u16 = 1 << 3;
    /// Supports NBD_CMD_TRIM.
    pub const SEND_TRIM: u16 = 1 << 5;
    /// Supports NBD_CMD_WRITE_ZEROES.
    pub const SEND_WRITE_ZEROES: u16 = 1 << 6;
    /// Several connections see each other's flushed writes.
    pub const CAN_MULTI_CONN: u16 = 1 << 8;
}

/// Commands.
pub mod cmd {
    /// Read.
    pub const READ: u16 = 0;
    /// Write.
    pub const WRITE: u16 = 1;
    /// Disconnect.
    pub const DISC: u16 = 2;
    /// Flush.
    pub const FLUSH: u16 = 3;
    /// Trim (discard).
    pub const TRIM: u16 = 4;
    /// Write zeroes.
    pub const WRITE_ZEROES: u16 = 6;
    /// Block status.
    pub const BLOCK_STATUS: u16 = 7;
}

/// Command flags.
pub mod cflag {
    /// Force unit access (durable before the reply).
    pub const FUA: u16 = 1;
    /// Block status: one descriptor only.
    pub const REQ_ONE: u16 = 1 << 3;
}

/// Structured reply types and flags.
pub mod reply {
    /// Last chunk of a reply.
    pub const FLAG_DONE: u16 = 1;
    /// No payload.
    pub const NONE: u16 = 0;
    /// Data at an offset.
    pub const OFFSET_DATA: u16 = 1;
    /// Block status descriptors.
    pub const BLOCK_STATUS: u16 = 5;
    /// Error with message.
    pub const ERROR: u16 = (1 << 15) | 1;
}

/// Error values (POSIX numbers, proto.md "Error values").
pub mod errno {
    /// Not permitted.
    pub const EPERM: u32 = 1;
    /// I/O error.
    pub const EIO: u32 = 5;
    /// Invalid argument.
    pub const EINVAL: u32 = 22;
    /// No space (write past the end).
    pub const ENOSPC: u32 = 28;
    /// Not supported.
    pub const ENOTSUP: u32 = 95;
}

/// The only metadata context served.
pub const BASE_ALLOCATION: &str = "base:allocation";
/// Context id given to base:allocation.
pub const BASE_ALLOCATION_ID: u32 = 1;
/// base:allocation state bit: unallocated.
pub const STATE_HOLE: u32 = 1;
/// base:allocation state bit: reads as zeros.
pub const STATE_ZERO: u32 = 2;

/// Largest read or write payload accepted (advertised as the maximum block size).
pub const MAX_PAYLOAD: u32 = 32 << 20;
/// Largest option payload accepted.
pub const MAX_OPTION: u32 = 64 << 10;

/// A cursor over option data that never reads past the end.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts at the beginning of `data`.
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    /// Next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let b = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(b)
    }

    /// Next big-endian u16.
    pub fn u16(&mut self) -> Option<u16> {
        self.bytes(2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_be_bytes)
    }

    /// Next big-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    }

    /// A u32-length-prefixed string.
    pub fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.u32()?).ok()?;
        String::from_utf8(self.bytes(n)?.to_vec()).ok()
    }

    /// Whether everything was consumed.
    pub fn done(&self) -> bool {
        self.pos == self.data.len()
    }
}
