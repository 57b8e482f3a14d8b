#pragma once
// Text from users and peers ends up in error lines and logs. Escaping control
// characters keeps every error one line (CONTRACT.md) and stops anyone from
// forging log lines with embedded newlines.

#include <string>
#include <string_view>

namespace p2pd {

// Control characters and DEL become \xNN; the rest is kept as is.
std::string one_line(std::string_view text);

// Well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool is_valid_utf8(std::string_view text);

// `text` cut to at most `max` bytes without splitting a UTF-8 sequence
// (proto3 refuses string fields that are not UTF-8, JSON output too).
std::string cut_utf8(std::string text, std::size_t max);

}  // namespace p2pd
