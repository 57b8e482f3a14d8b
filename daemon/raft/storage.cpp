#include "daemon/raft/storage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/atomic_file.hpp"
#include "common/byte_codec.hpp"

namespace p2pd::raft {
namespace {

constexpr std::size_t kHeaderBytes = 8;
constexpr std::size_t kFixedPayloadBytes = 17;  // term, index, kind
// term, vote flag, vote, commit. Files written before the commit index was
// kept lack the last field: they load with commit 0.
constexpr std::size_t kHardStateBytes = 8 + 1 + NodeId::kBytes + 8;
constexpr std::size_t kOldHardStateBytes = 8 + 1 + NodeId::kBytes;
constexpr std::size_t kMaxVoters = 4096;

std::uint64_t get_u64(const char* p, int bytes) {
  return get_le(p, bytes);
}

std::string encode_record(const Entry& e) {
  std::string payload;
  put_u64(payload, e.term);
  put_u64(payload, e.index);
  payload.push_back(static_cast<char>(e.kind));
  payload += e.data;
  std::string out;
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  put_u32(out, crc32_of(payload.data(), payload.size()));
  return out + payload;
}

Error errno_error(const char* what, const std::filesystem::path& path) {
  return make_error(ErrorCode::io, "{} {}: {}", what, path.string(), std::strerror(errno));
}

}  // namespace

Result<std::unique_ptr<RaftStorage>> RaftStorage::open(const std::filesystem::path& dir) {
  if (auto made = create_directories(dir, 0700); !made) return made.error();
  std::unique_ptr<RaftStorage> storage(new RaftStorage());
  storage->m_dir = dir;
  const auto log_path = dir / "log";
  storage->m_log_fd = ::open(log_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (storage->m_log_fd < 0) return errno_error("cannot open", log_path);
  if (auto loaded = storage->load(); !loaded) return loaded.error();
  return storage;
}

RaftStorage::~RaftStorage() {
  if (m_log_fd >= 0) ::close(m_log_fd);
}

Result<void> RaftStorage::load() {
  // The hard state: absent on a new node.
  const auto hard_path = m_dir / "hard_state";
  if (std::filesystem::exists(hard_path)) {
    auto text = read_small_file(hard_path, 4096);
    if (!text) return text.error();
    const std::string& s = *text;
    const std::size_t body = s.size() >= 4 ? s.size() - 4 : 0;
    if ((body != kHardStateBytes && body != kOldHardStateBytes) ||
        crc32_of(s.data(), body) != get_u64(s.data() + body, 4)) {
      // Written atomically, so a bad one is not a torn write but damage:
      // refuse rather than forget a vote (which could elect two leaders).
      return make_error(ErrorCode::corrupt, "{} is damaged (size or checksum); restore it or remove the state dir",
                        hard_path.string());
    }
    m_loaded.hard_state.term = get_u64(s.data(), 8);
    if (s[8] != 0) {
      NodeId::Bytes bytes{};
      std::memcpy(bytes.data(), s.data() + 9, NodeId::kBytes);
      m_loaded.hard_state.voted_for = NodeId(bytes);
    }
    if (body == kHardStateBytes) m_loaded.hard_state.commit = get_u64(s.data() + kOldHardStateBytes, 8);
  }
  if (auto snapshot = load_snapshot(); !snapshot) return snapshot.error();
  const Snapshot& snap = m_loaded.snapshot;

  // The log: records until the first bad one.
  struct stat st {};
  if (::fstat(m_log_fd, &st) != 0) return errno_error("cannot stat", m_dir / "log");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::string header(kHeaderBytes, '\0');
  std::string payload;
  std::uint64_t offset = 0;
  std::optional<std::string> problem;
  Term last_term = 0;
  while (offset < size) {
    if (size - offset < kHeaderBytes) {
      problem = "a torn record header";
      break;
    }
    if (::pread(m_log_fd, header.data(), kHeaderBytes, static_cast<off_t>(offset)) !=
        static_cast<ssize_t>(kHeaderBytes))
      return errno_error("cannot read", m_dir / "log");
    const auto length = static_cast<std::uint32_t>(get_u64(header.data(), 4));
    const auto crc = static_cast<std::uint32_t>(get_u64(header.data() + 4, 4));
    if (length < kFixedPayloadBytes || length > kMaxRecordBytes) {
      problem = "a record of impossible length";
      break;
    }
    if (size - offset - kHeaderBytes < length) {
      problem = "a torn record";
      break;
    }
    payload.resize(length);
    if (::pread(m_log_fd, payload.data(), length, static_cast<off_t>(offset + kHeaderBytes)) !=
        static_cast<ssize_t>(length))
      return errno_error("cannot read", m_dir / "log");
    if (crc32_of(payload.data(), length) != crc) {
      problem = "a record that fails its checksum";
      break;
    }
    Entry e;
    e.term = get_u64(payload.data(), 8);
    e.index = get_u64(payload.data() + 8, 8);
    const auto kind = static_cast<std::uint8_t>(payload[16]);
    if (kind > static_cast<std::uint8_t>(Entry::Kind::config) || e.index == 0) {
      problem = "a record of unknown kind";
      break;
    }
    e.kind = static_cast<Entry::Kind>(kind);
    e.data = payload.substr(kFixedPayloadBytes);
    if (m_offsets.empty()) {
      if (e.index > snap.index + 1) {
        problem = fmt::format("a gap after the snapshot (index {}, log from {})", snap.index, e.index);
        break;
      }
      m_first_index = e.index;
    } else if (e.index != m_first_index + m_offsets.size() || e.term < last_term) {
      problem = "a record out of sequence";
      break;
    }
    if (e.index == snap.index && e.term != snap.term) {
      // A crash between installing a leader's snapshot and cutting the
      // disagreeing log: what follows is not the snapshot's history.
      problem = "a record that disagrees with the snapshot";
      break;
    }
    last_term = e.term;
    m_offsets.push_back(offset);
    if (e.index > snap.index) m_loaded.log.push_back(std::move(e));
    offset += kHeaderBytes + length;
  }
  m_end = offset;
  if (problem) {
    m_loaded.warning = fmt::format("{}: {} at byte {} after {} good records; cut the log there ({} bytes dropped)",
                                   (m_dir / "log").string(), *problem, offset, m_offsets.size(), size - offset);
    if (::ftruncate(m_log_fd, static_cast<off_t>(offset)) != 0 || ::fsync(m_log_fd) != 0)
      return errno_error("cannot truncate", m_dir / "log");
  }
  return {};
}

Result<void> RaftStorage::load_snapshot() {
  const auto path = m_dir / "snapshot";
  if (!std::filesystem::exists(path)) return {};
  auto text = read_small_file(path, kMaxSnapshotFileBytes);
  if (!text) return text.error();
  const std::string& s = *text;
  // index, term, voter count, voters, data length, data, CRC-32.
  auto damaged = [&] {
    return make_error(ErrorCode::corrupt,
                      "{} is damaged (size or checksum); restore it or remove the state dir to rejoin as a new node",
                      path.string());
  };
  if (s.size() < 8 + 8 + 4 + 8 + 4 || crc32_of(s.data(), s.size() - 4) != get_u64(s.data() + s.size() - 4, 4)) {
    return damaged();
  }
  Snapshot snap;
  snap.index = get_u64(s.data(), 8);
  snap.term = get_u64(s.data() + 8, 8);
  const std::uint64_t voters = get_u64(s.data() + 16, 4);
  std::size_t at = 20;
  if (voters == 0 || voters > kMaxVoters || s.size() - 4 - at < voters * NodeId::kBytes + 8) return damaged();
  for (std::uint64_t v = 0; v < voters; ++v, at += NodeId::kBytes) {
    NodeId::Bytes bytes{};
    std::memcpy(bytes.data(), s.data() + at, NodeId::kBytes);
    snap.voters.emplace_back(bytes);
  }
  const std::uint64_t data_size = get_u64(s.data() + at, 8);
  at += 8;
  if (snap.index == 0 || data_size != s.size() - 4 - at) return damaged();
  snap.data = s.substr(at, data_size);
  m_loaded.snapshot = std::move(snap);
  return {};
}

Result<void> RaftStorage::save_snapshot(const Snapshot& snapshot) {
  std::string s;
  put_u64(s, snapshot.index);
  put_u64(s, snapshot.term);
  put_u32(s, static_cast<std::uint32_t>(snapshot.voters.size()));
  for (const auto& id : snapshot.voters) s.append(reinterpret_cast<const char*>(id.bytes().data()), NodeId::kBytes);
  put_u64(s, snapshot.data.size());
  s += snapshot.data;
  put_u32(s, crc32_of(s.data(), s.size()));
  if (s.size() > kMaxSnapshotFileBytes) {
    return make_error(ErrorCode::invalid_argument, "raft snapshot of {} bytes is over the limit", s.size());
  }
  return write_file_atomically(m_dir / "snapshot", s, 0600);
}

Result<void> RaftStorage::drop_log_through(Index index) {
  // The records after `index` move, as they are, to a new file that
  // replaces the log atomically.
  const Index last = m_first_index + m_offsets.size() - 1;
  std::string kept;
  if (!m_offsets.empty() && index < last) {
    const std::uint64_t from = index < m_first_index ? 0 : m_offsets[index + 1 - m_first_index];
    kept.resize(m_end - from);
    if (::pread(m_log_fd, kept.data(), kept.size(), static_cast<off_t>(from)) != static_cast<ssize_t>(kept.size()))
      return errno_error("cannot read", m_dir / "log");
  }
  const auto path = m_dir / "log";
  if (auto written = write_file_atomically(path, kept, 0600); !written) return written.error();
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return errno_error("cannot open", path);
  ::close(m_log_fd);
  m_log_fd = fd;
  if (!m_offsets.empty() && index < last && index >= m_first_index) {
    const std::uint64_t shift = m_offsets[index + 1 - m_first_index];
    m_offsets.erase(m_offsets.begin(), m_offsets.begin() + static_cast<std::ptrdiff_t>(index + 1 - m_first_index));
    for (auto& o : m_offsets) o -= shift;
    m_first_index = index + 1;
  } else if (m_offsets.empty() || index >= last) {
    m_offsets.clear();
    m_first_index = index + 1;
  }
  m_end = kept.size();
  return {};
}

Result<void> RaftStorage::truncate_log(Index from) {
  if (from == 0 || from >= m_first_index + m_offsets.size()) return {};
  if (from <= m_first_index) {
    m_end = 0;
    m_offsets.clear();
    m_first_index = from;
  } else {
    m_end = m_offsets[from - m_first_index];
    m_offsets.resize(from - m_first_index);
  }
  if (::ftruncate(m_log_fd, static_cast<off_t>(m_end)) != 0) return errno_error("cannot truncate", m_dir / "log");
  return {};
}

Result<void> RaftStorage::append(const std::vector<Entry>& entries) {
  std::string buffer;
  for (const auto& e : entries) {
    if (m_offsets.empty() && buffer.empty()) m_first_index = e.index;  // continues the snapshot
    if (e.index != m_first_index + m_offsets.size()) {
      return make_error(ErrorCode::internal, "raft log append of index {} after {}", e.index,
                        m_first_index + m_offsets.size() - 1);
    }
    if (e.data.size() + kFixedPayloadBytes > kMaxRecordBytes) {
      return make_error(ErrorCode::invalid_argument, "raft entry of {} bytes is over the limit", e.data.size());
    }
    m_offsets.push_back(m_end + buffer.size());
    buffer += encode_record(e);
  }
  std::size_t written = 0;
  while (written < buffer.size()) {
    const ssize_t n =
        ::pwrite(m_log_fd, buffer.data() + written, buffer.size() - written, static_cast<off_t>(m_end + written));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_error("cannot write", m_dir / "log");
    written += static_cast<std::size_t>(n);
  }
  m_end += buffer.size();
  return {};
}

Result<void> RaftStorage::save(const Ready& ready) {
  if (ready.snapshot) {
    // The snapshot first: once it is durable the entries it covers may go.
    if (auto saved = save_snapshot(*ready.snapshot); !saved) return saved.error();
    if (ready.truncate_from) {
      if (auto cut = truncate_log(*ready.truncate_from); !cut) return cut.error();
    }
    if (auto dropped = drop_log_through(ready.snapshot->index); !dropped) return dropped.error();
  }
  const bool log_changed = ready.truncate_from || !ready.append.empty();
  if (ready.truncate_from) {
    if (auto cut = truncate_log(*ready.truncate_from); !cut) return cut.error();
  }
  if (!ready.append.empty()) {
    // A follower's appends may start inside what we hold (after a
    // truncation the core reports separately): cut to the first one.
    if (auto cut = truncate_log(ready.append.front().index); !cut) return cut.error();
    if (auto added = append(ready.append); !added) return added.error();
  }
  if (log_changed && ::fdatasync(m_log_fd) != 0) return errno_error("cannot sync", m_dir / "log");
  if (ready.hard_state) {
    std::string s;
    put_u64(s, ready.hard_state->term);
    s.push_back(ready.hard_state->voted_for ? 1 : 0);
    NodeId::Bytes vote{};
    if (ready.hard_state->voted_for) vote = ready.hard_state->voted_for->bytes();
    s.append(reinterpret_cast<const char*>(vote.data()), vote.size());
    put_u64(s, ready.hard_state->commit);
    put_u32(s, crc32_of(s.data(), s.size()));
    if (auto saved = write_file_atomically(m_dir / "hard_state", s, 0600); !saved) return saved.error();
  }
  return {};
}

}  // namespace p2pd::raft
