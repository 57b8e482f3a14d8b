// Log lines as JSON: whatever bytes a message holds (a peer's address, an
// error text), the record stays valid JSON in UTF-8.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "common/log.hpp"
#include "common/log_limiter.hpp"

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

TEST_CASE("log: a limiter writes a burst per window and counts what it held back", "[unit][log]") {
  using namespace std::chrono_literals;
  p2pd::log::Limiter limiter(2, 60s);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  CHECK(limiter.admit(t0) == std::optional<std::size_t>(0));
  CHECK(limiter.admit(t0 + 1s) == std::optional<std::size_t>(0));
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(limiter.admit(t0 + 2s).has_value());
  CHECK_FALSE(limiter.admit(t0 + 59s).has_value());
  // A new window: the first line written says how many were held back.
  CHECK(limiter.admit(t0 + 60s) == std::optional<std::size_t>(1001));
  CHECK(limiter.admit(t0 + 61s) == std::optional<std::size_t>(0));
  CHECK_FALSE(limiter.admit(t0 + 62s).has_value());
}

TEST_CASE("log: a line after held-back ones says how many", "[unit][log]") {
  CHECK(p2pd::log::held_back_note(0).empty());
  CHECK(p2pd::log::held_back_note(7) == " (7 more like it held back)");
}
