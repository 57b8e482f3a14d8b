#pragma once
// The node's identity: an Ed25519 key pair created on first start and kept in
// the state dir. The node id is the SHA-1 of the raw public key (DESIGN.md,
// "Security stance": ids derive from keys, so they cannot be chosen).

#include <filesystem>
#include <string>
#include <vector>

#include "common/node_id.hpp"
#include "common/result.hpp"

namespace p2pd::node {

struct NodeIdentity {
  NodeId id;
  std::vector<std::uint8_t> public_key;  // 32 bytes, raw Ed25519
  std::string private_key_pem;           // PKCS#8; stays in this process
  bool created = false;                  // true when this start made the key
};

inline constexpr const char* kNodeKeyFile = "node_key.pem";

// Loads `state_dir`/node_key.pem, or creates it (mode 0600) when absent. A key
// file that exists but cannot be parsed is an error, never silently replaced:
// replacing it would change the node's id.
Result<NodeIdentity> load_or_create_identity(const std::filesystem::path& state_dir);

}  // namespace p2pd::node
