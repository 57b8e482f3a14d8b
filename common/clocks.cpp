#include "common/clocks.hpp"

#include <algorithm>
#include <limits>

namespace p2pd::clocks {

void VectorClock::tick(std::string_view node) {
  auto it = m_entries.find(node);
  if (it == m_entries.end()) {
    m_entries.emplace(std::string(node), 1);
  } else {
    ++it->second;
  }
}

void VectorClock::merge(const VectorClock& other) {
  for (const auto& [node, value] : other.m_entries) {
    auto it = m_entries.find(node);
    if (it == m_entries.end()) {
      m_entries.emplace(node, value);
    } else {
      it->second = std::max(it->second, value);
    }
  }
}

std::uint64_t VectorClock::get(std::string_view node) const {
  auto it = m_entries.find(node);
  return it == m_entries.end() ? 0 : it->second;
}

void VectorClock::set(std::string_view node, std::uint64_t value) {
  if (value == 0) {
    if (auto it = m_entries.find(node); it != m_entries.end()) m_entries.erase(it);
    return;
  }
  auto it = m_entries.find(node);
  if (it == m_entries.end()) {
    m_entries.emplace(std::string(node), value);
  } else {
    it->second = value;
  }
}

CausalOrder VectorClock::compare(const VectorClock& other) const {
  bool less = false;     // some entry of this is smaller
  bool greater = false;  // some entry of this is larger
  // Both maps are sorted: one merge-like walk covers every node in either.
  auto a = m_entries.begin();
  auto b = other.m_entries.begin();
  while (a != m_entries.end() || b != other.m_entries.end()) {
    if (b == other.m_entries.end() || (a != m_entries.end() && a->first < b->first)) {
      greater = true;  // a's node is absent (0) in other
      ++a;
    } else if (a == m_entries.end() || b->first < a->first) {
      less = true;
      ++b;
    } else {
      if (a->second < b->second) less = true;
      if (a->second > b->second) greater = true;
      ++a;
      ++b;
    }
  }
  if (less && greater) return CausalOrder::concurrent;
  if (less) return CausalOrder::before;
  if (greater) return CausalOrder::after;
  return CausalOrder::equal;
}

namespace {

// c never wraps: past its maximum, l moves on by a millisecond instead (a
// billion events in one millisecond do not happen; a bug must not wrap).
HlcTimestamp bump(HlcTimestamp t) {
  if (t.c == std::numeric_limits<std::uint32_t>::max()) return {t.l + 1, 0};
  return {t.l, t.c + 1};
}

}  // namespace

HlcTimestamp HybridClock::now() {
  const std::uint64_t pt = m_physical();
  // Figure 5, "send or local event": l' = max(l, pt); c counts when l stays.
  if (pt > m_last.l) {
    m_last = {pt, 0};
  } else {
    m_last = bump(m_last);
  }
  return m_last;
}

HybridClock::Received HybridClock::receive(HlcTimestamp remote) {
  const std::uint64_t pt = m_physical();
  if (remote.l > pt && remote.l - pt > m_max_offset_ms) return {now(), false};
  // Figure 5, "receive event of message m".
  const std::uint64_t l = std::max({m_last.l, remote.l, pt});
  HlcTimestamp next;
  if (l == m_last.l && l == remote.l) {
    next = bump({l, std::max(m_last.c, remote.c)});
  } else if (l == m_last.l) {
    next = bump(m_last);
  } else if (l == remote.l) {
    next = bump(remote);
  } else {
    next = {l, 0};
  }
  m_last = next;
  return {m_last, true};
}

}  // namespace p2pd::clocks
