#pragma once
// Lowercase hex, the only spelling of ids and keys on the product's outside
// (CONTRACT.md).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace p2pd {

std::string to_hex(std::span<const std::uint8_t> bytes);

// Accepts upper- and lowercase digits; nullopt on odd length or a non-hex character.
std::optional<std::vector<std::uint8_t>> from_hex(std::string_view text);

bool is_hex(std::string_view text);

}  // namespace p2pd
