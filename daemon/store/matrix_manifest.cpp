#include "daemon/store/matrix_manifest.hpp"

#include <algorithm>

#include "proto/store.pb.h"

namespace p2pd::store {

std::uint64_t chunk_rows_for(std::uint64_t cols) {
  const std::uint64_t row_bytes = std::max<std::uint64_t>(1, cols) * sizeof(float);
  return std::max<std::uint64_t>(1, kChunkTargetBytes / row_bytes);
}

std::uint64_t MatrixManifest::rows_in(std::size_t i) const {
  const std::uint64_t first = first_row(i);
  return first >= rows ? 0 : std::min(chunk_rows, rows - first);
}

std::string encode_manifest(const MatrixManifest& manifest) {
  MatrixManifestRecord record;
  record.set_format(1);
  record.set_rows(manifest.rows);
  record.set_cols(manifest.cols);
  record.set_chunk_rows(manifest.chunk_rows);
  for (const auto& chunk : manifest.chunks) record.add_chunks(std::string(chunk.bytes()));
  return record.SerializeAsString();
}

Result<MatrixManifest> decode_manifest(std::string_view bytes) {
  MatrixManifestRecord record;
  if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return make_error(ErrorCode::corrupt, "a matrix manifest does not parse");
  }
  if (record.format() != 1)
    return make_error(ErrorCode::corrupt, "matrix manifest format {} is unknown", record.format());
  MatrixManifest manifest;
  manifest.rows = record.rows();
  manifest.cols = record.cols();
  manifest.chunk_rows = record.chunk_rows();
  if (manifest.rows == 0 || manifest.cols == 0 || manifest.rows > kMaxMatrixDim || manifest.cols > kMaxMatrixDim) {
    return make_error(ErrorCode::corrupt, "a matrix manifest says {}x{}", manifest.rows, manifest.cols);
  }
  if (manifest.chunk_rows != chunk_rows_for(manifest.cols)) {
    return make_error(ErrorCode::corrupt, "a matrix manifest has {} rows per chunk, expected {}", manifest.chunk_rows,
                      chunk_rows_for(manifest.cols));
  }
  const std::uint64_t expected = (manifest.rows + manifest.chunk_rows - 1) / manifest.chunk_rows;
  if (static_cast<std::uint64_t>(record.chunks_size()) != expected) {
    return make_error(ErrorCode::corrupt, "a matrix manifest names {} chunks, expected {}", record.chunks_size(),
                      expected);
  }
  manifest.chunks.reserve(expected);
  for (const auto& chunk : record.chunks()) {
    auto id = BlobId::from_bytes(chunk);
    if (!id) return make_error(ErrorCode::corrupt, "a matrix manifest has a chunk id of {} bytes", chunk.size());
    manifest.chunks.push_back(*id);
  }
  return manifest;
}

}  // namespace p2pd::store
