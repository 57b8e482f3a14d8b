#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/npy.hpp"
#include "tests/support/temp_dir.hpp"

using namespace p2pd;
using namespace p2pd::npy;

namespace {

constexpr std::string_view kGoodDict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

// A whole file: preamble for `major`, the dict as given (no padding added,
// so tests control every byte), then `data_bytes` zero bytes.
std::string npy_bytes(std::string_view dict, int major = 1, std::size_t data_bytes = 24) {
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  const int len_bytes = major == 1 ? 2 : 4;
  for (int i = 0; i < len_bytes; ++i) out.push_back(static_cast<char>((dict.size() >> (8 * i)) & 0xff));
  out += dict;
  out.append(data_bytes, '\0');
  return out;
}

std::span<const std::uint8_t> as_bytes(const std::string& text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

Result<NpyHeader> parse(const std::string& file, std::uint64_t max_bytes = kDefaultMaxBytes) {
  return parse_header(as_bytes(file), file.size(), max_bytes);
}

// The message of an expected failure, checked to be one bounded line.
std::string error_of(const Result<NpyHeader>& result) {
  REQUIRE_FALSE(result);
  const std::string& message = result.error().message;
  CHECK(message.find('\n') == std::string::npos);
  CHECK(message.size() < 400);
  CHECK_FALSE(message.empty());
  CHECK(message.back() != '.');
  return message;
}

std::string dict_with_shape(std::string_view shape) {
  return "{'descr': '<f4', 'fortran_order': False, 'shape': " + std::string(shape) + ", }";
}

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

}  // namespace

TEST_CASE("npy round trip of odd shapes", "[unit][npy]") {
  test::TempDir dir;
  for (const auto& [rows, cols] : {std::pair<std::uint64_t, std::uint64_t>{1, 1}, {7, 13}, {600, 300}}) {
    INFO(rows << "x" << cols);
    std::vector<float> data(rows * cols);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i) * 0.5f - 3.25f;
    const auto path = dir.path() / "m.npy";
    REQUIRE(write_matrix(path, rows, cols, data));

    const auto header = read_header(path);
    REQUIRE(header);
    CHECK(header->rows == rows);
    CHECK(header->cols == cols);
    CHECK(header->header_bytes == 128);
    CHECK(header->data_bytes() == rows * cols * 4);
    CHECK(std::filesystem::file_size(path) == header->header_bytes + header->data_bytes());

    NpyHeader out{};
    const auto read = read_matrix(path, &out);
    REQUIRE(read);
    CHECK(*read == data);
    CHECK(out.rows == rows);
    CHECK(out.cols == cols);
  }
  CHECK_FALSE(std::filesystem::exists(dir.path() / "m.npy.tmp"));
}

TEST_CASE("npy write_matrix refuses mismatched data and bad shapes", "[unit][npy]") {
  test::TempDir dir;
  const std::vector<float> six(6, 1.0f);
  CHECK_FALSE(write_matrix(dir.path() / "a.npy", 2, 2, six));
  CHECK_FALSE(write_matrix(dir.path() / "a.npy", 0, 6, six));
  CHECK_FALSE(write_matrix(dir.path() / "a.npy", kMaxDim + 1, 1, six));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "a.npy"));
}

TEST_CASE("npy header_for is 64-byte aligned and parses back", "[unit][npy]") {
  for (const auto& [rows, cols] : {std::pair<std::uint64_t, std::uint64_t>{1, 1},
                                   {2, 3},
                                   {7, 13},
                                   {600, 300},
                                   {12345, 1},
                                   {1, 12345},
                                   {kMaxDim, 1},
                                   {1, kMaxDim},
                                   {kMaxDim, kMaxDim}}) {
    INFO(rows << "x" << cols);
    const std::string header = header_for(rows, cols);
    CHECK(header.size() % 64 == 0);
    CHECK(header.back() == '\n');
    CHECK(header.substr(6, 2) == std::string("\x01\x00", 2));
    const auto parsed = parse_header(as_bytes(header), header.size() + rows * cols * 4, UINT64_MAX);
    REQUIRE(parsed);
    CHECK(parsed->rows == rows);
    CHECK(parsed->cols == cols);
    CHECK(parsed->header_bytes == header.size());
  }
  // Every dict length lands on a boundary, including the one where NumPy adds
  // a whole line of padding because the text is already aligned.
  for (std::uint64_t cols = 1; cols < 10'000'000'000ULL; cols = cols * 10 + 7) {
    CHECK(header_for(1, cols).size() % 64 == 0);
  }
}

TEST_CASE("npy header_for matches what np.save writes byte for byte", "[unit][npy]") {
  std::string expected("\x93NUMPY\x01\x00v\x00", 10);
  expected += "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  expected.resize(127, ' ');
  expected += '\n';
  REQUIRE(expected.size() == 128);
  CHECK(header_for(2, 3) == expected);

  const auto parsed = parse(expected + std::string(24, '\0'));
  REQUIRE(parsed);
  CHECK(parsed->rows == 2);
  CHECK(parsed->cols == 3);
  CHECK(parsed->header_bytes == 128);
  CHECK(parsed->data_bytes() == 24);
}

TEST_CASE("npy versions 2.0 and 3.0 and header variants are accepted", "[unit][npy]") {
  for (int major : {1, 2, 3}) {
    INFO("version " << major);
    const auto parsed = parse(npy_bytes(kGoodDict, major));
    REQUIRE(parsed);
    CHECK(parsed->rows == 2);
    CHECK(parsed->cols == 3);
    CHECK(parsed->header_bytes == (major == 1 ? 10 : 12) + kGoodDict.size());
  }
  for (const char* dict : {
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
           "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",
           "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3),}",
           "{'fortran_order':False,'shape':(2,3,),'descr':'<f4'}",
           "  {'descr': '<f4',\n 'fortran_order': False,\n 'shape': (2, 3), }          \n",
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\t\r\n",
       }) {
    INFO(dict);
    const auto parsed = parse(npy_bytes(dict));
    REQUIRE(parsed);
    CHECK(parsed->rows == 2);
    CHECK(parsed->cols == 3);
  }
}

TEST_CASE("npy rejects bad preambles", "[unit][npy]") {
  const std::string good = npy_bytes(kGoodDict);

  std::string wrong_magic = good;
  wrong_magic[1] = 'X';
  CHECK_THAT(error_of(parse(wrong_magic)), Catch::Contains("not a .npy file"));
  CHECK_THAT(error_of(parse("PK\x03\x04 a zip file")), Catch::Contains("not a .npy file"));

  std::string unknown_version = good;
  unknown_version[6] = 4;
  CHECK_THAT(error_of(parse(unknown_version)), Catch::Contains("unsupported .npy version 4.0"));
  unknown_version[6] = 1;
  unknown_version[7] = 1;
  CHECK_THAT(error_of(parse(unknown_version)), Catch::Contains("unsupported .npy version 1.1"));

  std::string oversize = npy_bytes(kGoodDict, 2);
  oversize[8] = 0x01;
  oversize[9] = 0x00;
  oversize[10] = 0x01;  // 65537
  CHECK_THAT(error_of(parse(oversize)), Catch::Contains("exceeds the limit"));
  oversize[11] = static_cast<char>(0xff);  // about 4 GiB, must not be allocated or trusted
  CHECK_THAT(error_of(parse(oversize)), Catch::Contains("exceeds the limit"));

  CHECK_THAT(error_of(parse(good.substr(0, 4))), Catch::Contains("truncated header"));
  CHECK_THAT(error_of(parse(good.substr(0, 9))), Catch::Contains("truncated header"));
  CHECK_THAT(error_of(parse(good.substr(0, 40))), Catch::Contains("truncated header"));
  CHECK_THAT(error_of(parse("")), Catch::Contains("empty"));

  // A caller that reads too little is told so, not told the file is bad.
  const auto short_prefix = parse_header(as_bytes(good).first(20), good.size());
  REQUIRE_FALSE(short_prefix);
  CHECK(short_prefix.error().code == ErrorCode::invalid_argument);
}

TEST_CASE("npy rejects data of the wrong size", "[unit][npy]") {
  const std::string header = header_for(600, 300);
  const std::string truncated = header + std::string(1234, '\0');
  const auto message = error_of(parse(truncated));
  CHECK_THAT(message, Catch::Contains("truncated"));
  CHECK_THAT(message, Catch::Contains("600x300 float32 (720000 bytes of data)"));
  CHECK_THAT(message, Catch::Contains("1234"));
  CHECK_THAT(error_of(parse(header)), Catch::Contains("truncated"));

  const std::string trailing = npy_bytes(kGoodDict, 1, 25);
  CHECK_THAT(error_of(parse(trailing)), Catch::Contains("trailing data"));
}

TEST_CASE("npy rejects other dtypes and Fortran order", "[unit][npy]") {
  for (const char* descr : {"<f8", ">f4", "|u1", "=f4", "f4", "<i4", "<f2"}) {
    INFO(descr);
    const std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (2, 3), }";
    const auto message = error_of(parse(npy_bytes(dict)));
    CHECK_THAT(message, Catch::Contains(std::string("dtype '") + descr + "' is not float32 little-endian ('<f4')"));
  }
  CHECK_THAT(error_of(parse(npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }"))),
             Catch::Contains("'descr'"));
  CHECK_THAT(error_of(parse(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"))),
             Catch::Contains("Fortran-order arrays are not supported"));
  CHECK_THAT(error_of(parse(npy_bytes("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }"))),
             Catch::Contains("True or False"));
}

TEST_CASE("npy rejects shapes that are not positive 2-d and bounded", "[unit][npy]") {
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("(5,)"), 1, 20))), Catch::Contains("shape (5,) is 1-d"));
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("()"), 1, 4))), Catch::Contains("shape () is 0-d"));
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("(2, 3, 4)"), 1, 96))),
             Catch::Contains("shape (2, 3, 4) is 3-d"));
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("(0, 3)"), 1, 0))),
             Catch::Contains("shape (0, 3) has a zero dimension"));
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("(3, 0)"), 1, 0))), Catch::Contains("zero dimension"));
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("(99999999999, 99999999999)")))),
             Catch::Contains("shape (99999999999, 99999999999) exceeds the limit"));
  // Digits far past 2^64 saturate instead of wrapping to something small.
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("(18446744073709551616000, 1)")))),
             Catch::Contains("exceeds the limit"));
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("(1048577, 1)"), 1, 1048577 * 4))),
             Catch::Contains("exceeds the limit"));
  // Within the per-dimension cap but over the byte budget.
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("(1048576, 1048576)")))),
             Catch::Contains("over the limit of 4294967296"));
  CHECK_THAT(error_of(parse(npy_bytes(kGoodDict), 23)), Catch::Contains("over the limit of 23"));
  CHECK(parse(npy_bytes(kGoodDict), 24));
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("(-2, 3)")))), Catch::Contains("non-negative integer"));
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("(6)")))), Catch::Contains("',' or ')'"));
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("[2, 3]")))), Catch::Contains("a tuple"));
  CHECK_THAT(error_of(parse(npy_bytes(dict_with_shape("(2.0, 3)")))), Catch::Contains("',' or ')'"));
}

TEST_CASE("npy rejects malformed header dicts", "[unit][npy]") {
  CHECK_THAT(error_of(parse(npy_bytes("{'descr': '<f4', 'shape': (2, 3), }"))),
             Catch::Contains("no 'fortran_order' key"));
  CHECK_THAT(error_of(parse(npy_bytes("{}"))), Catch::Contains("no 'descr' key"));
  CHECK_THAT(error_of(parse(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'shape': (2, 3)}"))),
             Catch::Contains("duplicate key 'shape'"));
  CHECK_THAT(error_of(parse(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}"))),
             Catch::Contains("unexpected key 'extra'"));
  CHECK_THAT(error_of(parse(npy_bytes("this is not a dict at all"))), Catch::Contains("found 'this is not"));
  CHECK_THAT(error_of(parse(npy_bytes("{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}"))),
             Catch::Contains("',' or '}'"));
  CHECK_THAT(error_of(parse(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} junk"))),
             Catch::Contains("only padding"));
  CHECK_THAT(error_of(parse(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)"))),
             Catch::Contains("header ended"));
  CHECK_THAT(error_of(parse(npy_bytes("{'descr: '<f4'}"))), Catch::Contains("expected"));
  CHECK_THAT(error_of(parse(npy_bytes("{'de\\x63r': '<f4'}"))), Catch::Contains("plain string literal"));

  // Whatever a hostile header holds, the message quotes a short, printable
  // excerpt of it.
  const std::string hostile = "\x1b[31m\n" + std::string(5000, 'A') + "\xff";
  const auto message = error_of(parse(npy_bytes(hostile)));
  CHECK(message.find('\x1b') == std::string::npos);
  CHECK_THAT(message, Catch::Contains("\\x1b[31m\\x0a"));
  CHECK_THAT(message, Catch::Contains("..."));
}

TEST_CASE("npy read_header names the path in every error", "[unit][npy]") {
  test::TempDir dir;
  const auto missing = dir.path() / "missing.npy";
  const auto r_missing = read_header(missing);
  REQUIRE_FALSE(r_missing);
  CHECK(r_missing.error().code == ErrorCode::not_found);
  CHECK_THAT(r_missing.error().message, Catch::Contains(missing.string()));

  const auto r_dir = read_header(dir.path());
  REQUIRE_FALSE(r_dir);
  CHECK_THAT(r_dir.error().message, Catch::Contains(dir.path().string()));
  CHECK_THAT(r_dir.error().message, Catch::Contains("directory"));

  const auto empty = dir.path() / "empty.npy";
  write_bytes(empty, "");
  const auto r_empty = read_header(empty);
  REQUIRE_FALSE(r_empty);
  CHECK_THAT(r_empty.error().message, Catch::Contains(empty.string()));
  CHECK_THAT(r_empty.error().message, Catch::Contains("empty"));

  const auto text = dir.path() / "notes.txt";
  write_bytes(text, "hello, world\n");
  const auto r_text = read_header(text);
  REQUIRE_FALSE(r_text);
  CHECK_THAT(r_text.error().message, Catch::Contains(text.string()));
  CHECK_THAT(r_text.error().message, Catch::Contains("not a .npy file"));

  const auto bad = dir.path() / "bad.npy";
  write_bytes(bad, npy_bytes(kGoodDict, 1, 7));
  const auto r_bad = read_matrix(bad);
  REQUIRE_FALSE(r_bad);
  CHECK_THAT(r_bad.error().message, Catch::Contains(bad.string()));
  CHECK_THAT(r_bad.error().message, Catch::Contains("truncated"));

  for (const auto& result : {r_missing, r_dir, r_empty, r_text}) {
    CHECK(result.error().message.find('\n') == std::string::npos);
  }
}

TEST_CASE("npy parsing survives every flipped or truncated header byte", "[unit][npy]") {
  const std::string good = header_for(7, 13) + std::string(7 * 13 * 4, '\0');
  REQUIRE(parse(good));
  const std::size_t header_bytes = parse(good)->header_bytes;
  int accepted = 0;
  for (std::size_t i = 0; i < header_bytes; ++i) {
    for (const std::uint8_t mask : {0x01, 0x02, 0x10, 0x20, 0x80, 0xff}) {
      std::string mutated = good;
      mutated[i] = static_cast<char>(static_cast<std::uint8_t>(mutated[i]) ^ mask);
      const auto result = parse(mutated);
      if (result) {
        ++accepted;
        // Anything accepted must still describe exactly this file.
        CHECK(result->header_bytes + result->data_bytes() == mutated.size());
      } else {
        CHECK(result.error().message.find('\n') == std::string::npos);
        CHECK(result.error().message.size() < 400);
      }
    }
    for (const std::uint8_t replacement : {'\0', '\n', '(', ')', '\'', ',', '}', '9', '-', 'A'}) {
      std::string mutated = good;
      mutated[i] = static_cast<char>(replacement);
      (void)parse(mutated);
    }
    const std::string truncated = good.substr(0, i);
    const auto result = parse(truncated);
    CHECK_FALSE(result);
    // A truncated header cut out of a longer file: the prefix is all there is.
    (void)parse_header(as_bytes(truncated), good.size());
  }
  // Flipping a padding space to something else, or the rows digit to another
  // digit with the data still 364 bytes, can leave a valid file; most flips
  // must not.
  CHECK(accepted < static_cast<int>(header_bytes));
}
