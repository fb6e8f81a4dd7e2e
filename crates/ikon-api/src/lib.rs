//! API dialects: parse, authenticate, translate to one service operation, translate back.
