#include "daemon/store/blob_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "common/file_descriptor.hpp"
#include "common/log.hpp"

namespace p2pd::store {
namespace {

Result<void> write_whole(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(ErrorCode::io, "cannot write {}: {}", path.string(), std::strerror(errno));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<std::optional<std::string>> read_whole(const std::filesystem::path& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return make_error(ErrorCode::io, "cannot open {}: {}", path.string(), std::strerror(errno));
  }
  const off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size < 0 || static_cast<std::uint64_t>(size) > kMaxBlobBytes) {
    return make_error(ErrorCode::corrupt, "{} is not a blob (size {})", path.string(), size);
  }
  std::string data(static_cast<std::size_t>(size), '\0');
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pread(fd.get(), data.data() + done, data.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(ErrorCode::io, "cannot read {}: {}", path.string(), std::strerror(errno));
    if (n == 0) break;  // shrank under us: the hash check will say so
    done += static_cast<std::size_t>(n);
  }
  data.resize(done);
  return std::optional<std::string>(std::move(data));
}

}  // namespace

Result<std::unique_ptr<BlobStore>> BlobStore::open(const std::filesystem::path& dir, std::uint64_t capacity_bytes,
                                                   std::uint64_t memory_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir / "tmp", ec);
  if (ec) return make_error(ErrorCode::io, "cannot create {}: {}", (dir / "tmp").string(), ec.message());
  std::unique_ptr<BlobStore> store(new BlobStore(dir, capacity_bytes, memory_bytes));
  store->index_existing();
  return store;
}

std::filesystem::path BlobStore::path_of(const BlobId& id) const {
  const std::string hex = id.hex();
  return m_dir / hex.substr(0, 2) / hex;
}

void BlobStore::index_existing() {
  std::error_code ec;
  // Temporary files are writes a crash interrupted.
  std::filesystem::remove_all(m_dir / "tmp", ec);
  std::filesystem::create_directories(m_dir / "tmp", ec);
  for (auto it = std::filesystem::recursive_directory_iterator(m_dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const auto id = BlobId::from_hex(it->path().filename().string());
    const auto size = it->file_size(ec);
    if (!id || ec || size > kMaxBlobBytes || it->path() != path_of(*id)) continue;
    Entry entry{size, 0, false};
    touch(*id, m_index.emplace(*id, entry).first->second);
    m_bytes += size;
  }
  if (!m_index.empty()) {
    log::info(log::Category::store, "{} blobs ({} MiB) in {}", m_index.size(), m_bytes >> 20, m_dir.string());
  }
}

void BlobStore::touch(const BlobId& id, Entry& entry) {
  if (entry.last_used != 0) m_lru.erase(entry.last_used);
  entry.last_used = ++m_clock;
  m_lru.emplace(entry.last_used, id);
}

void BlobStore::remember(const BlobId& id, std::shared_ptr<const std::string> data) {
  if (auto it = m_memory.find(id); it != m_memory.end()) {
    m_memory_lru.erase(it->second.second);
    it->second.second = ++m_clock;
    m_memory_lru.emplace(it->second.second, id);
    return;
  }
  if (data == nullptr || data->size() > m_memory_capacity) return;
  while (m_memory_bytes + data->size() > m_memory_capacity && !m_memory_lru.empty()) {
    auto oldest = m_memory.find(m_memory_lru.begin()->second);
    m_memory_bytes -= oldest->second.first->size();
    m_memory.erase(oldest);
    m_memory_lru.erase(m_memory_lru.begin());
  }
  m_memory_bytes += data->size();
  m_memory.emplace(id, std::pair{std::move(data), ++m_clock});
  m_memory_lru.emplace(m_clock, id);
}

void BlobStore::forget(const BlobId& id) {
  if (auto it = m_memory.find(id); it != m_memory.end()) {
    m_memory_bytes -= it->second.first->size();
    m_memory_lru.erase(it->second.second);
    m_memory.erase(it);
  }
  auto it = m_index.find(id);
  if (it == m_index.end()) return;
  m_lru.erase(it->second.last_used);
  m_bytes -= it->second.bytes;
  m_index.erase(it);
}

std::vector<BlobId> BlobStore::pick_evictions(std::uint64_t incoming, const BlobId& keep) {
  std::vector<BlobId> victims;
  for (auto it = m_lru.begin(); it != m_lru.end() && m_bytes + incoming > m_capacity;) {
    const BlobId id = it->second;
    ++it;
    if (id == keep) continue;
    victims.push_back(id);
    forget(id);
    ++m_evicted;
  }
  return victims;
}

namespace {

Result<void> check_size(std::size_t bytes) {
  if (bytes > kMaxBlobBytes) {
    return make_error(ErrorCode::invalid_argument, "a blob of {} bytes is over the limit of {}", bytes, kMaxBlobBytes);
  }
  return {};
}

}  // namespace

Result<void> BlobStore::put(const BlobId& id, std::string_view data) {
  if (auto sized = check_size(data.size()); !sized) return sized;
  return put(id, std::make_shared<const std::string>(data));
}

Result<void> BlobStore::put(const BlobId& id, std::shared_ptr<const std::string> data) {
  if (auto sized = check_size(data->size()); !sized) return sized;
  if (BlobId::of(*data) != id) return make_error(ErrorCode::corrupt, "data does not hash to blob {}", id.hex());
  const std::string_view bytes(*data);
  return write(id, bytes, std::move(data));
}

Result<BlobId> BlobStore::put(std::string_view data) {
  if (auto sized = check_size(data.size()); !sized) return sized.error();
  return put(std::make_shared<const std::string>(data));
}

Result<BlobId> BlobStore::put(std::shared_ptr<const std::string> data) {
  if (auto sized = check_size(data->size()); !sized) return sized.error();
  const BlobId id = BlobId::of(*data);
  const std::string_view bytes(*data);
  if (auto written = write(id, bytes, std::move(data)); !written) return written.error();
  return id;
}

Result<BlobId> BlobStore::put_on_disk(std::string_view data) {
  if (auto sized = check_size(data.size()); !sized) return sized.error();
  const BlobId id = BlobId::of(data);
  if (auto written = write(id, data, nullptr); !written) return written.error();
  return id;
}

Result<void> BlobStore::write(const BlobId& id, std::string_view data, std::shared_ptr<const std::string> memory) {
  if (data.size() > m_capacity) {
    return make_error(ErrorCode::unavailable, "a blob of {} bytes does not fit in the store ({} bytes)", data.size(),
                      m_capacity);
  }
  std::filesystem::path temp;
  {
    std::lock_guard lock(m_mutex);
    if (auto it = m_index.find(id); it != m_index.end() && it->second.verified) {
      touch(id, it->second);
      if (memory != nullptr) remember(id, std::move(memory));
      return {};
    }
    temp = m_dir / "tmp" / fmt::format("{}.{}", id.hex(), ++m_temp_counter);
  }
  const auto final_path = path_of(id);
  {
    std::error_code ec;
    std::filesystem::create_directories(final_path.parent_path(), ec);
    if (ec) return make_error(ErrorCode::io, "cannot create {}: {}", final_path.parent_path().string(), ec.message());
    FileDescriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) return make_error(ErrorCode::io, "cannot create {}: {}", temp.string(), std::strerror(errno));
    if (auto written = write_whole(fd.get(), data, temp); !written) {
      std::filesystem::remove(temp, ec);
      return written.error();
    }
  }
  std::vector<BlobId> victims;
  {
    std::lock_guard lock(m_mutex);
    if (std::rename(temp.c_str(), final_path.c_str()) != 0) {
      const int err = errno;
      std::error_code ec;
      std::filesystem::remove(temp, ec);
      return make_error(ErrorCode::io, "cannot rename into {}: {}", final_path.string(), std::strerror(err));
    }
    forget(id);  // an unverified copy found at start, now replaced
    Entry entry{data.size(), 0, true};
    touch(id, m_index.emplace(id, entry).first->second);
    m_bytes += data.size();
    if (memory != nullptr) remember(id, std::move(memory));
    victims = pick_evictions(0, id);
    // Under the lock: a put of the same blob racing with its eviction must
    // not have its fresh file deleted after it is indexed.
    for (const auto& victim : victims) {
      std::error_code ec;
      std::filesystem::remove(path_of(victim), ec);
    }
  }
  for (const auto& victim : victims) {
    log::debug(log::Category::store, "evicted blob {} (store over {} bytes)", victim.hex(), m_capacity);
  }
  return {};
}

Result<std::optional<std::string>> BlobStore::get(const BlobId& id) {
  auto shared = get_shared(id);
  if (!shared) return shared.error();
  if (*shared == nullptr) return std::optional<std::string>();
  return std::optional<std::string>(**shared);
}

Result<std::shared_ptr<const std::string>> BlobStore::get_shared(const BlobId& id) {
  bool verified = false;
  {
    std::lock_guard lock(m_mutex);
    auto it = m_index.find(id);
    if (it == m_index.end()) return std::shared_ptr<const std::string>();
    touch(id, it->second);
    verified = it->second.verified;
    if (auto cached = m_memory.find(id); cached != m_memory.end()) {
      auto data = cached->second.first;
      remember(id, data);  // most recently used now
      return data;
    }
  }
  auto read = read_whole(path_of(id));
  if (!read) return read.error();
  std::lock_guard lock(m_mutex);
  if (!*read) {  // deleted under us (evicted)
    forget(id);
    return std::shared_ptr<const std::string>();
  }
  if (auto it = m_index.find(id); it != m_index.end() && it->second.verified) verified = true;  // re-put meanwhile
  if (!verified) {
    if (BlobId::of(**read) != id) {
      log::warn(log::Category::store, "blob {} on disk is damaged; deleted (its other holders still have it)",
                id.hex());
      forget(id);
      std::error_code ec;
      std::filesystem::remove(path_of(id), ec);
      return std::shared_ptr<const std::string>();
    }
    if (auto it = m_index.find(id); it != m_index.end()) it->second.verified = true;
  }
  auto data = std::make_shared<const std::string>(std::move(**read));
  remember(id, data);
  return data;
}

bool BlobStore::contains(const BlobId& id) const {
  std::lock_guard lock(m_mutex);
  return m_index.contains(id);
}

BlobStoreStats BlobStore::stats() const {
  std::lock_guard lock(m_mutex);
  return BlobStoreStats{m_index.size(), m_bytes, m_capacity, m_evicted, m_memory_bytes};
}

}  // namespace p2pd::store
