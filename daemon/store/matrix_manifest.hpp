#pragma once
// A float32 matrix in the blob store: row-major rows cut into chunks of
// whole rows of about kChunkTargetBytes, so that a shard (a block of rows)
// fetches only the chunks that hold its rows (DESIGN.md, "Data flow of a
// job", step 3), and every chunk fits in one peer message.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "daemon/store/blob_id.hpp"

namespace p2pd::store {

inline constexpr std::uint64_t kChunkTargetBytes = std::uint64_t{1} << 20;
// The job table's bound on a dimension; a row is then at most 256 KiB.
inline constexpr std::uint64_t kMaxMatrixDim = 65536;

// Rows per chunk for a matrix of `cols` columns (at least one).
std::uint64_t chunk_rows_for(std::uint64_t cols);

struct MatrixManifest {
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
  std::uint64_t chunk_rows = 0;
  std::vector<BlobId> chunks;

  [[nodiscard]] std::uint64_t row_bytes() const { return cols * sizeof(float); }
  // The rows chunk `i` holds: [first_row(i), first_row(i) + rows_in(i)).
  [[nodiscard]] std::uint64_t first_row(std::size_t i) const { return i * chunk_rows; }
  [[nodiscard]] std::uint64_t rows_in(std::size_t i) const;
  // The chunk holding `row`.
  [[nodiscard]] std::size_t chunk_of(std::uint64_t row) const { return static_cast<std::size_t>(row / chunk_rows); }
};

std::string encode_manifest(const MatrixManifest& manifest);
// Validates everything: dimensions within kMaxMatrixDim, chunk_rows as
// chunk_rows_for(cols) would make it, the chunk count matching the rows.
Result<MatrixManifest> decode_manifest(std::string_view bytes);

}  // namespace p2pd::store
