#include "common/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/file_descriptor.hpp"

namespace p2pd {
namespace {

Error os_error(std::string_view what, const std::filesystem::path& path) {
  const int err = errno;
  return make_error(err == EACCES || err == EPERM ? ErrorCode::permission_denied : ErrorCode::io, "{} {}: {}", what,
                    path.string(), std::strerror(err));
}

}  // namespace

Result<void> write_file_atomically(const std::filesystem::path& path, std::span<const char> data, mode_t mode) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  {
    FileDescriptor fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (fd.get() < 0) return os_error("cannot create", tmp);
    std::size_t written = 0;
    while (written < data.size()) {
      const ssize_t n = ::write(fd.get(), data.data() + written, data.size() - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        auto err = os_error("cannot write", tmp);
        ::unlink(tmp.c_str());
        return err;
      }
      written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) {
      auto err = os_error("cannot fsync", tmp);
      ::unlink(tmp.c_str());
      return err;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto err = os_error("cannot rename onto", path);
    ::unlink(tmp.c_str());
    return err;
  }
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  FileDescriptor dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || ::fsync(dir_fd.get()) != 0) return os_error("cannot fsync directory", dir);
  return {};
}

Result<AtomicFileWriter> AtomicFileWriter::create(const std::filesystem::path& path, mode_t mode) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return os_error("cannot create", tmp);
  return AtomicFileWriter(path, tmp, fd);
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : m_path(std::move(other.m_path)),
      m_tmp(std::move(other.m_tmp)),
      m_fd(other.m_fd),
      m_written(other.m_written),
      m_writeback_from(other.m_writeback_from) {
  other.m_fd = -1;
  other.m_tmp.clear();
}

AtomicFileWriter::~AtomicFileWriter() {
  if (m_fd >= 0) ::close(m_fd);
  if (!m_tmp.empty()) ::unlink(m_tmp.c_str());
}

Result<void> AtomicFileWriter::append(std::span<const char> data) {
  if (m_fd < 0) return make_error(ErrorCode::internal, "{} is already closed", m_tmp.string());
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(m_fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error("cannot write", m_tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  m_written += data.size();
  // Start writing back what is written so far, without waiting for it:
  // commit()'s fsync then has little left to do, instead of a whole large
  // file at the end (the technique of RocksDB's bytes_per_sync). Advice
  // only; a file system without it just leaves everything to the fsync.
  if (m_written - m_writeback_from >= kWritebackStep) {
    (void)::sync_file_range(m_fd, static_cast<off_t>(m_writeback_from),
                            static_cast<off_t>(m_written - m_writeback_from), SYNC_FILE_RANGE_WRITE);
    m_writeback_from = m_written;
  }
  return {};
}

Result<void> AtomicFileWriter::commit() {
  if (m_fd < 0) return make_error(ErrorCode::internal, "{} is already closed", m_tmp.string());
  if (::fsync(m_fd) != 0) return os_error("cannot fsync", m_tmp);
  ::close(m_fd);
  m_fd = -1;
  if (::rename(m_tmp.c_str(), m_path.c_str()) != 0) return os_error("cannot rename onto", m_path);
  m_tmp.clear();
  const auto dir = m_path.has_parent_path() ? m_path.parent_path() : std::filesystem::path(".");
  FileDescriptor dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || ::fsync(dir_fd.get()) != 0) return os_error("cannot fsync directory", dir);
  return {};
}

Result<std::string> read_small_file(const std::filesystem::path& path, std::size_t max_bytes) {
  // O_NONBLOCK: a FIFO planted at the path must not hang start-up; the
  // S_ISREG check below then refuses it.
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ENOENT) return make_error(ErrorCode::not_found, "{} does not exist", path.string());
    return os_error("cannot open", path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return os_error("cannot stat", path);
  if (!S_ISREG(st.st_mode)) return make_error(ErrorCode::invalid_argument, "{} is not a regular file", path.string());
  std::string out;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error("cannot read", path);
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      return make_error(ErrorCode::corrupt, "{} is larger than {} bytes", path.string(), max_bytes);
    }
    out.append(buffer, static_cast<std::size_t>(n));
  }
  return out;
}

Result<void> create_directories(const std::filesystem::path& path, mode_t mode) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return {};
  if (path.has_parent_path() && path.parent_path() != path) {
    if (auto parent = create_directories(path.parent_path(), 0755); !parent) return parent;
  }
  if (::mkdir(path.c_str(), mode) != 0) {
    if (errno != EEXIST) return os_error("cannot create directory", path);
  } else if (::chmod(path.c_str(), mode) != 0) {  // exactly `mode`, whatever the umask
    return os_error("cannot set the mode of", path);
  }
  if (!std::filesystem::is_directory(path, ec)) {
    return make_error(ErrorCode::already_exists, "{} exists and is not a directory", path.string());
  }
  return {};
}

}  // namespace p2pd
