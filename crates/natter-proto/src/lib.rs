//! gRPC messages, clients and servers generated from the workspace's `proto/` files.

/// Every `.proto` file under `proto/`, as an encoded `FileDescriptorSet`: what gRPC
/// server reflection serves.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/natter_descriptor.bin"));

/// `natter.common.v1`: the shapes every service shares (a stored message, a history
/// request) and the room-event envelope between replicas.
pub mod common {
    /// Version 1 of the shared shapes.
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("natter.common.v1");
    }
}

/// `natter.auth.v1`: accounts, passwords and tokens.
pub mod auth {
    /// Version 1 of the auth API.
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("natter.auth.v1");
    }
}

/// `natter.website.v1`: rooms, members, history and profiles.
pub mod website {
    /// Version 1 of the website API.
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("natter.website.v1");
    }
}

/// `natter.chat.v1`: storing and reading messages over gRPC.
pub mod chat {
    /// Version 1 of the chat API.
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("natter.chat.v1");
    }
}
