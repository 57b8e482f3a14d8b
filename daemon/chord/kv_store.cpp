#include "daemon/chord/kv_store.hpp"

namespace p2pd::chord {

Result<void> KvStore::make_room(const NodeId& key, std::size_t new_size) const {
  if (new_size > kMaxValueBytes) {
    return make_error(ErrorCode::invalid_argument, "value of {} bytes is over the limit of {} bytes", new_size,
                      kMaxValueBytes);
  }
  const auto it = m_items.find(key);
  const std::size_t old_size = it == m_items.end() ? 0 : it->second.value.size();
  if (it == m_items.end() && m_items.size() >= m_limits.max_items) {
    return make_error(ErrorCode::unavailable, "store full: {} keys held", m_items.size());
  }
  if (m_bytes - old_size + new_size > m_limits.max_bytes) {
    return make_error(ErrorCode::unavailable, "store full: {} of {} bytes used", m_bytes, m_limits.max_bytes);
  }
  return {};
}

void KvStore::set(const NodeId& key, std::string value, std::uint64_t version, std::uint64_t now) {
  auto& item = m_items[key];
  m_bytes = m_bytes - item.value.size() + value.size();
  item.value = std::move(value);
  item.version = version;
  item.confirmed_at = now;
}

Result<std::uint64_t> KvStore::write(const NodeId& key, std::string value, std::uint64_t now) {
  if (auto room = make_room(key, value.size()); !room) return room.error();
  const auto it = m_items.find(key);
  if (it != m_items.end() && it->second.version == kMaxVersion) {
    return make_error(ErrorCode::unavailable, "the key has reached its last version");
  }
  const std::uint64_t version = it == m_items.end() ? 1 : it->second.version + 1;
  set(key, std::move(value), version, now);
  return version;
}

Result<std::uint64_t> KvStore::merge(const NodeId& key, std::string value, std::uint64_t version, std::uint64_t now) {
  // 0 means "number it for me", and the last version would pin the key for
  // good: neither is a version a peer may hand us.
  if (version == 0 || version == kMaxVersion) return make_error(ErrorCode::invalid_argument, "invalid version");
  const auto it = m_items.find(key);
  if (it != m_items.end() && it->second.version >= version) {
    it->second.confirmed_at = now;
    return it->second.version;
  }
  if (auto room = make_room(key, value.size()); !room) return room.error();
  set(key, std::move(value), version, now);
  return version;
}

const StoredValue* KvStore::find(const NodeId& key) const {
  const auto it = m_items.find(key);
  return it == m_items.end() ? nullptr : &it->second;
}

bool KvStore::lacks(const KeyVersion& item) const {
  const auto* held = find(item.key);
  return held == nullptr || held->version < item.version;
}

void KvStore::confirm(const NodeId& key, std::uint64_t now) {
  if (auto it = m_items.find(key); it != m_items.end()) it->second.confirmed_at = now;
}

void KvStore::erase(const NodeId& key) {
  if (auto it = m_items.find(key); it != m_items.end()) {
    m_bytes -= it->second.value.size();
    m_items.erase(it);
  }
}

std::vector<KeyVersion> KvStore::in_range(const NodeId& from, const NodeId& to) const {
  std::vector<KeyVersion> out;
  for (const auto& [key, item] : m_items) {
    if (in_half_open_interval(key, from, to)) out.push_back(KeyVersion{key, item.version});
  }
  return out;
}

std::vector<KeyVersion> KvStore::all() const {
  std::vector<KeyVersion> out;
  out.reserve(m_items.size());
  for (const auto& [key, item] : m_items) out.push_back(KeyVersion{key, item.version});
  return out;
}

}  // namespace p2pd::chord
