#pragma once
// The values this node holds for the ring's key-value store, as owner or
// replica: a bounded map from key id to (value, version). Pure data; who
// should hold what is decided by the Overlay.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/node_id.hpp"
#include "common/result.hpp"
#include "daemon/chord/messages.hpp"

namespace p2pd::chord {

struct StoreLimits {
  std::size_t max_items = 1 << 18;
  std::size_t max_bytes = std::size_t{256} << 20;  // values only
};

struct StoredValue {
  std::string value;
  std::uint64_t version = 0;
  std::uint64_t confirmed_at = 0;  // tick this copy was last known to be wanted here
};

class KvStore {
 public:
  static constexpr std::uint64_t kMaxVersion = ~std::uint64_t{0};

  explicit KvStore(StoreLimits limits) : m_limits(limits) {}

  // A client's write: stored as the next version of the key.
  Result<std::uint64_t> write(const NodeId& key, std::string value, std::uint64_t now);
  // A copy from another holder: kept only if newer than ours. Returns the
  // version held afterwards.
  Result<std::uint64_t> merge(const NodeId& key, std::string value, std::uint64_t version, std::uint64_t now);

  [[nodiscard]] const StoredValue* find(const NodeId& key) const;
  // True when an offer of `item` brings something new to this store.
  [[nodiscard]] bool lacks(const KeyVersion& item) const;
  void confirm(const NodeId& key, std::uint64_t now);
  void erase(const NodeId& key);

  // Keys in (from, to] (the whole ring when from == to), in key order.
  [[nodiscard]] std::vector<KeyVersion> in_range(const NodeId& from, const NodeId& to) const;
  [[nodiscard]] std::vector<KeyVersion> all() const;

  [[nodiscard]] std::size_t size() const { return m_items.size(); }
  [[nodiscard]] std::size_t bytes() const { return m_bytes; }

 private:
  Result<void> make_room(const NodeId& key, std::size_t new_size) const;
  void set(const NodeId& key, std::string value, std::uint64_t version, std::uint64_t now);

  StoreLimits m_limits;
  std::map<NodeId, StoredValue> m_items;
  std::size_t m_bytes = 0;
};

}  // namespace p2pd::chord
