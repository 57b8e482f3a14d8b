#include "common/npy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>

#include "common/atomic_file.hpp"
#include "common/file_descriptor.hpp"
#include "common/one_line.hpp"

namespace p2pd::npy {
namespace {

// Data bytes are copied as they are: on a big-endian host '<f4' would need
// swapping, and we have no such host to test it on.
static_assert(std::endian::native == std::endian::little, "the .npy codec assumes a little-endian host");

constexpr std::string_view kMagic{"\x93NUMPY", 6};
constexpr std::size_t kVersionEnd = 8;  // magic + major + minor
// How much of a hostile header an error quotes: enough to recognise it, not
// enough to flood a log.
constexpr std::size_t kExcerptChars = 40;
// NumPy caps arrays at 64 dimensions; a longer tuple is garbage, not a shape.
constexpr std::size_t kMaxShapeDims = 64;
// np.save leaves room for the first axis to grow in place to this many digits.
constexpr std::size_t kGrowthAxisMaxDigits = 21;
constexpr std::size_t kArrayAlign = 64;

// Everything outside printable ASCII becomes \xNN, so a header can neither
// break the one-line rule nor smuggle terminal escapes; long text is cut.
std::string printable(std::string_view text, std::size_t max_chars = kExcerptChars) {
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < max_chars; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte >= 0x7f) {
      out += fmt::format("\\x{:02x}", byte);
    } else {
      out.push_back(text[i]);
    }
  }
  if (text.size() > max_chars) out += "...";
  return out;
}

struct Dim {
  std::uint64_t value = 0;  // saturates at UINT64_MAX; the limits reject it anyway
  std::string text;         // as written, for messages
};

std::string shape_string(const std::vector<Dim>& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += printable(shape[i].text, 24);
  }
  if (shape.size() == 1) out += ",";
  out += ")";
  return out;
}

struct HeaderDict {
  std::optional<std::string> descr;
  std::optional<bool> fortran_order;
  std::optional<std::vector<Dim>> shape;
};

// The header is a Python dict literal. NumPy reads it with ast.literal_eval;
// we accept only the tiny subset np.save writes (and hand-written variants
// of it), which is all a float32 matrix needs.
class DictParser {
 public:
  explicit DictParser(std::string_view text) : m_text(text) {}

  Result<HeaderDict> parse() {
    HeaderDict dict;
    skip_space();
    if (!eat('{')) return unexpected("'{' opening the header dict");
    skip_space();
    if (eat('}')) return finish(dict);
    for (;;) {
      auto key = parse_string("a quoted key");
      if (!key) return key.error();
      skip_space();
      if (!eat(':')) return unexpected(fmt::format("':' after the key '{}'", printable(*key)));
      skip_space();
      if (auto parsed = parse_value(*key, dict); !parsed) return parsed.error();
      skip_space();
      if (eat(',')) {
        skip_space();
        if (eat('}')) return finish(dict);
        continue;
      }
      if (eat('}')) return finish(dict);
      return unexpected(fmt::format("',' or '}}' after the value of '{}'", printable(*key)));
    }
  }

 private:
  Result<HeaderDict> finish(HeaderDict& dict) {
    // np.save pads with spaces and ends with '\n'; others may not pad at all.
    skip_space();
    if (m_pos != m_text.size()) return unexpected("only padding after the header dict");
    return std::move(dict);
  }

  Result<void> parse_value(const std::string& key, HeaderDict& dict) {
    const auto duplicate = [&] {
      return make_error(ErrorCode::corrupt, "duplicate key '{}' in the .npy header dict", printable(key));
    };
    if (key == "descr") {
      if (dict.descr) return duplicate();
      auto descr = parse_string("a quoted dtype string for 'descr'");
      if (!descr) return descr.error();
      dict.descr = std::move(*descr);
    } else if (key == "fortran_order") {
      if (dict.fortran_order) return duplicate();
      auto order = parse_bool();
      if (!order) return order.error();
      dict.fortran_order = *order;
    } else if (key == "shape") {
      if (dict.shape) return duplicate();
      auto shape = parse_shape();
      if (!shape) return shape.error();
      dict.shape = std::move(*shape);
    } else {
      return make_error(ErrorCode::corrupt,
                        "unexpected key '{}' in the .npy header dict (expected 'descr', 'fortran_order', 'shape')",
                        printable(key));
    }
    return {};
  }

  // Python string literal without escapes: np.save never writes any, and a
  // descr or key that needs one is not one we accept.
  Result<std::string> parse_string(std::string_view what) {
    if (at_end() || (peek() != '\'' && peek() != '"')) return unexpected(what);
    const char quote = peek();
    const std::size_t start = m_pos + 1;
    for (std::size_t i = start; i < m_text.size(); ++i) {
      const char c = m_text[i];
      if (c == quote) {
        m_pos = i + 1;
        return std::string(m_text.substr(start, i - start));
      }
      if (c == '\\' || c == '\n') break;
    }
    return unexpected(fmt::format("{} (a plain string literal closed on the same line)", what));
  }

  Result<bool> parse_bool() {
    std::size_t end = m_pos;
    while (end < m_text.size() && is_identifier_char(m_text[end])) ++end;
    const std::string_view word = m_text.substr(m_pos, end - m_pos);
    if (word == "True" || word == "False") {
      m_pos = end;
      return word == "True";
    }
    return unexpected("True or False for 'fortran_order'");
  }

  Result<std::vector<Dim>> parse_shape() {
    if (!eat('(')) return unexpected("a tuple '(...)' for 'shape'");
    std::vector<Dim> shape;
    skip_space();
    if (eat(')')) return shape;
    for (;;) {
      if (shape.size() == kMaxShapeDims) {
        return make_error(ErrorCode::corrupt, "shape has more than {} dimensions", kMaxShapeDims);
      }
      auto dim = parse_dim();
      if (!dim) return dim.error();
      shape.push_back(std::move(*dim));
      skip_space();
      if (eat(',')) {
        skip_space();
        if (eat(')')) return shape;
        continue;
      }
      // "(5)" is the integer 5 in Python, not a tuple, so only a comma may
      // follow a lone element.
      if (shape.size() > 1 && eat(')')) return shape;
      return unexpected("',' or ')' in the 'shape' tuple");
    }
  }

  Result<Dim> parse_dim() {
    if (!at_end() && peek() == '-') {
      return unexpected("a non-negative integer in 'shape'");
    }
    Dim dim;
    const std::size_t start = m_pos;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      const auto digit = static_cast<std::uint64_t>(peek() - '0');
      dim.value = dim.value > (UINT64_MAX - digit) / 10 ? UINT64_MAX : dim.value * 10 + digit;
      ++m_pos;
    }
    if (m_pos == start) return unexpected("an integer in 'shape'");
    dim.text = std::string(m_text.substr(start, m_pos - start));
    return dim;
  }

  static bool is_identifier_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  [[nodiscard]] bool at_end() const { return m_pos >= m_text.size(); }
  [[nodiscard]] char peek() const { return m_text[m_pos]; }
  bool eat(char c) {
    if (at_end() || peek() != c) return false;
    ++m_pos;
    return true;
  }
  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++m_pos;
  }

  [[nodiscard]] Error unexpected(std::string_view expected) const {
    if (at_end()) return make_error(ErrorCode::corrupt, "bad .npy header: expected {} but the header ended", expected);
    return make_error(ErrorCode::corrupt, "bad .npy header: expected {} at byte {} of the dict but found '{}'",
                      expected, m_pos, printable(m_text.substr(m_pos)));
  }

  std::string_view m_text;
  std::size_t m_pos = 0;
};

Error with_path(const std::filesystem::path& path, const Error& error) {
  return Error{error.code, fmt::format("{}: {}", one_line(path.string()), error.message)};
}

Error os_error(const std::filesystem::path& path, std::string_view what) {
  const int err = errno;
  const ErrorCode code = err == ENOENT || err == ENOTDIR ? ErrorCode::not_found
                         : err == EACCES || err == EPERM ? ErrorCode::permission_denied
                                                         : ErrorCode::io;
  return make_error(code, "{}: {}: {}", one_line(path.string()), what, std::strerror(err));
}

// Reads exactly `size` bytes at `offset`; a short read means the file shrank
// under us, which is an error rather than a partial matrix.
Result<void> read_at(int fd, const std::filesystem::path& path, std::uint64_t offset, char* out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error(path, "cannot read");
    }
    if (n == 0) return make_error(ErrorCode::io, "{}: the file shrank while being read", one_line(path.string()));
    done += static_cast<std::size_t>(n);
  }
  return {};
}

struct OpenedNpy {
  std::unique_ptr<FileDescriptor> fd;
  NpyHeader header;
};

Result<OpenedNpy> open_npy(const std::filesystem::path& path, std::uint64_t max_bytes) {
  // O_NONBLOCK so that a FIFO given by mistake cannot hang us in open();
  // fstat below then rejects it.
  auto fd = std::make_unique<FileDescriptor>(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd->get() < 0) return os_error(path, "cannot open");
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return os_error(path, "cannot stat");
  if (S_ISDIR(st.st_mode)) {
    return make_error(ErrorCode::invalid_argument, "{}: is a directory, not a .npy file", one_line(path.string()));
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::invalid_argument, "{}: is not a regular file", one_line(path.string()));
  }
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size == 0) {
    return make_error(ErrorCode::corrupt, "{}: empty file, not a .npy file", one_line(path.string()));
  }
  std::vector<std::uint8_t> prefix(static_cast<std::size_t>(std::min<std::uint64_t>(file_size, kMaxPrefixBytes)));
  if (auto read = read_at(fd->get(), path, 0, reinterpret_cast<char*>(prefix.data()), prefix.size()); !read) {
    return read.error();
  }
  auto header = parse_header(prefix, file_size, max_bytes);
  if (!header) return with_path(path, header.error());
  return OpenedNpy{std::move(fd), *header};
}

void append_le(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

}  // namespace

Result<NpyHeader> parse_header(std::span<const std::uint8_t> prefix, std::uint64_t file_size, std::uint64_t max_bytes) {
  if (prefix.size() > file_size) {
    return make_error(ErrorCode::invalid_argument, "a prefix of {} bytes cannot come from a file of {} bytes",
                      prefix.size(), file_size);
  }
  const std::string_view bytes(reinterpret_cast<const char*>(prefix.data()), prefix.size());
  // Tells a truncated file (the client's fault) from a caller that passed
  // too short a prefix (our bug).
  const auto need = [&](std::uint64_t n, std::string_view what) -> Result<void> {
    if (bytes.size() >= n) return {};
    if (file_size < n) {
      return make_error(ErrorCode::corrupt, "truncated header: {} needs {} bytes but the file has {}", what, n,
                        file_size);
    }
    return make_error(ErrorCode::invalid_argument, "only the first {} bytes were given but the header needs {}",
                      bytes.size(), n);
  };

  if (file_size == 0) return make_error(ErrorCode::corrupt, "empty file, not a .npy file");
  const std::string_view start = bytes.substr(0, kMagic.size());
  if (start != kMagic.substr(0, start.size())) {
    return make_error(ErrorCode::corrupt, "not a .npy file: it starts with '{}' instead of '\\x93NUMPY'",
                      printable(bytes.substr(0, 8)));
  }
  if (auto ok = need(kVersionEnd, "the magic and version"); !ok) return ok.error();

  const auto major = static_cast<unsigned>(prefix[6]);
  const auto minor = static_cast<unsigned>(prefix[7]);
  if (major < 1 || major > 3 || minor != 0) {
    return make_error(ErrorCode::corrupt, "unsupported .npy version {}.{} (supported: 1.0, 2.0, 3.0)", major, minor);
  }
  // 1.0 has a u16 header length; 2.0 widened it to u32; 3.0 only changed the
  // header's encoding to utf-8, which our ASCII-only grammar does not notice.
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  const std::size_t preamble = kVersionEnd + len_bytes;
  if (auto ok = need(preamble, "the header length field"); !ok) return ok.error();
  std::uint64_t header_len = 0;
  for (std::size_t i = 0; i < len_bytes; ++i) header_len |= std::uint64_t{prefix[kVersionEnd + i]} << (8 * i);
  if (header_len > kMaxHeaderLen) {
    return make_error(ErrorCode::corrupt, ".npy header length {} exceeds the limit of {} bytes", header_len,
                      kMaxHeaderLen);
  }
  const std::uint64_t header_bytes = preamble + header_len;
  if (auto ok = need(header_bytes, fmt::format("a declared header length of {}", header_len)); !ok) return ok.error();

  auto dict = DictParser(bytes.substr(preamble, header_len)).parse();
  if (!dict) return dict.error();
  for (const auto& [present, key] :
       {std::pair{dict->descr.has_value(), "descr"}, std::pair{dict->fortran_order.has_value(), "fortran_order"},
        std::pair{dict->shape.has_value(), "shape"}}) {
    if (!present) return make_error(ErrorCode::corrupt, "the .npy header dict has no '{}' key", key);
  }
  // '=f4' and 'f4' mean native order, which is the writer's machine, not
  // ours; only an explicit '<f4' says little-endian.
  if (*dict->descr != "<f4") {
    return make_error(ErrorCode::invalid_argument, "dtype '{}' is not float32 little-endian ('<f4')",
                      printable(*dict->descr));
  }
  if (*dict->fortran_order) {
    return make_error(ErrorCode::invalid_argument, "Fortran-order arrays are not supported; save with C order");
  }
  const auto& shape = *dict->shape;
  const std::string shape_text = shape_string(shape);
  if (shape.size() != 2) {
    return make_error(ErrorCode::invalid_argument, "shape {} is {}-d; only 2-d matrices are supported", shape_text,
                      shape.size());
  }
  if (shape[0].value == 0 || shape[1].value == 0) {
    return make_error(ErrorCode::invalid_argument, "shape {} has a zero dimension; empty matrices are not supported",
                      shape_text);
  }
  if (shape[0].value > kMaxDim || shape[1].value > kMaxDim) {
    return make_error(ErrorCode::invalid_argument, "shape {} exceeds the limit of {} rows or columns", shape_text,
                      kMaxDim);
  }
  // Both dimensions are at most 2^20 here, so the product is at most 2^42.
  NpyHeader header{shape[0].value, shape[1].value, static_cast<std::size_t>(header_bytes)};
  const std::uint64_t data_bytes = header.data_bytes();
  if (data_bytes > max_bytes) {
    return make_error(ErrorCode::invalid_argument, "shape {} needs {} bytes of float32 data, over the limit of {}",
                      shape_text, data_bytes, max_bytes);
  }
  const std::uint64_t have = file_size - header_bytes;
  if (have < data_bytes) {
    return make_error(ErrorCode::corrupt,
                      "truncated: header says {}x{} float32 ({} bytes of data) but the file has {} bytes of data",
                      header.rows, header.cols, data_bytes, have);
  }
  if (have > data_bytes) {
    return make_error(ErrorCode::corrupt,
                      "trailing data: header says {}x{} float32 ({} bytes of data) but the file has {} bytes of data",
                      header.rows, header.cols, data_bytes, have);
  }
  return header;
}

Result<NpyHeader> read_header(const std::filesystem::path& path, std::uint64_t max_bytes) {
  auto opened = open_npy(path, max_bytes);
  if (!opened) return opened.error();
  return opened->header;
}

Result<std::vector<float>> read_matrix(const std::filesystem::path& path, NpyHeader* header_out,
                                       std::uint64_t max_bytes) {
  auto opened = open_npy(path, max_bytes);
  if (!opened) return opened.error();
  const NpyHeader& header = opened->header;
  std::vector<float> data(static_cast<std::size_t>(header.rows * header.cols));
  if (auto read = read_at(opened->fd->get(), path, header.header_bytes, reinterpret_cast<char*>(data.data()),
                          static_cast<std::size_t>(header.data_bytes()));
      !read) {
    return read.error();
  }
  if (header_out != nullptr) *header_out = header;
  return data;
}

std::string header_for(std::uint64_t rows, std::uint64_t cols) {
  // Byte for byte what np.save writes: keys sorted, a trailing ", ", room
  // for the first axis to grow, then spaces and '\n' to a 64-byte boundary
  // (a whole extra 64 when already aligned, as NumPy does).
  std::string dict = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", rows, cols);
  const std::size_t digits = fmt::formatted_size("{}", rows);
  if (digits < kGrowthAxisMaxDigits) dict.append(kGrowthAxisMaxDigits - digits, ' ');
  const std::size_t preamble = kVersionEnd + 2;
  const std::size_t unpadded = dict.size() + 1;  // + '\n'
  dict.append(kArrayAlign - (preamble + unpadded) % kArrayAlign, ' ');
  dict.push_back('\n');

  std::string out(kMagic);
  out.push_back('\x01');
  out.push_back('\x00');
  append_le(out, dict.size(), 2);
  out += dict;
  return out;
}

Result<void> write_matrix(const std::filesystem::path& path, std::uint64_t rows, std::uint64_t cols,
                          std::span<const float> data) {
  if (rows == 0 || cols == 0 || rows > kMaxDim || cols > kMaxDim) {
    return make_error(ErrorCode::invalid_argument, "cannot write a {}x{} matrix: each dimension must be 1 to {}", rows,
                      cols, kMaxDim);
  }
  if (data.size() != rows * cols) {
    return make_error(ErrorCode::invalid_argument, "cannot write a {}x{} matrix from {} values", rows, cols,
                      data.size());
  }
  std::string bytes = header_for(rows, cols);
  const std::size_t header_size = bytes.size();
  bytes.resize(header_size + data.size_bytes());
  std::memcpy(bytes.data() + header_size, data.data(), data.size_bytes());
  return write_file_atomically(path, std::span<const char>(bytes.data(), bytes.size()), 0644);
}

}  // namespace p2pd::npy
