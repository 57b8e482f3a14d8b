#include "daemon/raft/storage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/crc.hpp>

#include "common/atomic_file.hpp"

namespace p2pd::raft {
namespace {

constexpr std::size_t kHeaderBytes = 8;
constexpr std::size_t kFixedPayloadBytes = 17;  // term, index, kind
constexpr std::size_t kHardStateBytes = 8 + 1 + NodeId::kBytes;

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_u64(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

std::uint32_t crc32_of(const char* data, std::size_t size) {
  boost::crc_32_type crc;
  crc.process_bytes(data, size);
  return crc.checksum();
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
    if (s.size() != kHardStateBytes + 4 ||
        crc32_of(s.data(), kHardStateBytes) != get_u64(s.data() + kHardStateBytes, 4)) {
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
  }

  // The log: records until the first bad one.
  struct stat st {};
  if (::fstat(m_log_fd, &st) != 0) return errno_error("cannot stat", m_dir / "log");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::string header(kHeaderBytes, '\0');
  std::string payload;
  std::uint64_t offset = 0;
  std::optional<std::string> problem;
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
    if (e.index != m_loaded.log.size() + 1 || kind > static_cast<std::uint8_t>(Entry::Kind::config) ||
        (!m_loaded.log.empty() && e.term < m_loaded.log.back().term)) {
      problem = "a record out of sequence";
      break;
    }
    e.kind = static_cast<Entry::Kind>(kind);
    e.data = payload.substr(kFixedPayloadBytes);
    m_offsets.push_back(offset);
    m_loaded.log.push_back(std::move(e));
    offset += kHeaderBytes + length;
  }
  m_end = offset;
  if (problem) {
    m_loaded.warning = fmt::format("{}: {} at byte {} after {} good entries; cut the log there ({} bytes dropped)",
                                   (m_dir / "log").string(), *problem, offset, m_loaded.log.size(), size - offset);
    if (::ftruncate(m_log_fd, static_cast<off_t>(offset)) != 0 || ::fsync(m_log_fd) != 0)
      return errno_error("cannot truncate", m_dir / "log");
  }
  return {};
}

Result<void> RaftStorage::truncate_log(Index from) {
  if (from == 0 || from > m_offsets.size()) return {};
  m_end = m_offsets[from - 1];
  m_offsets.resize(from - 1);
  if (::ftruncate(m_log_fd, static_cast<off_t>(m_end)) != 0) return errno_error("cannot truncate", m_dir / "log");
  return {};
}

Result<void> RaftStorage::append(const std::vector<Entry>& entries) {
  std::string buffer;
  for (const auto& e : entries) {
    if (e.index != m_offsets.size() + 1) {
      return make_error(ErrorCode::internal, "raft log append of index {} after {}", e.index, m_offsets.size());
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
    put_u32(s, crc32_of(s.data(), s.size()));
    if (auto saved = write_file_atomically(m_dir / "hard_state", s, 0600); !saved) return saved.error();
  }
  return {};
}

}  // namespace p2pd::raft
