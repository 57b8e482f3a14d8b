// Log lines as JSON: whatever bytes a message holds (a peer's address, an
// error text), the record stays valid JSON in UTF-8.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "common/log.hpp"

using p2pd::log::json_string_body;

TEST_CASE("log: a JSON string body escapes what JSON needs and keeps UTF-8", "[unit][log]") {
  CHECK(json_string_body(R"(say "hi" \ bye)") == R"(say \"hi\" \\ bye)");
  CHECK(json_string_body(std::string("a\tb\x01\x7f", 5)) == R"(a\u0009b\u0001\u007f)");
  CHECK(json_string_body("é 😀 ✓") == "é 😀 ✓");  // 2, 4 and 3-byte sequences stay
}

TEST_CASE("log: bytes that are not UTF-8 become U+FFFD, so the record still parses", "[unit][log]") {
  const std::string bad[] = {
      std::string("\xff"),              // never in UTF-8
      std::string("\xe2\x82"),          // a sequence cut short
      std::string("\xc0\x80"),          // an overlong NUL
      std::string("\xed\xa0\x80"),      // a UTF-16 surrogate
      std::string("\xf4\x90\x80\x80"),  // past U+10FFFF
      std::string("\x80"),              // a lone continuation byte
  };
  for (const auto& bytes : bad) {
    const std::string body = json_string_body("x" + bytes + "y");
    INFO(body);
    CHECK(body.starts_with("x\\ufffd"));
    CHECK(body.ends_with("y"));
    const auto parsed = nlohmann::json::parse("\"" + body + "\"", nullptr, false);
    REQUIRE(parsed.is_string());
  }
}
