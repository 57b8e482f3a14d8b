#include "daemon/node/blob_transfer.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstring>
#include <new>

#include "common/log.hpp"
#include "proto/peer.pb.h"

namespace p2pd::node {

using store::BlobId;
using store::MatrixManifest;

BlobTransfer::BlobTransfer(NodeId self, store::BlobStore& store, store::MatrixCache& matrices, net::PeerClient& peers,
                           boost::asio::io_context& io, boost::asio::thread_pool& blocking, Locate locate)
    : m_self(self),
      m_store(store),
      m_matrices(matrices),
      m_peers(peers),
      m_io(io),
      m_blocking(blocking),
      m_locate(std::move(locate)) {}

template <class T>
void BlobTransfer::off_thread(std::function<T()> work, std::function<void(T)> then) {
  boost::asio::post(m_blocking, [this, work = std::move(work), then = std::move(then)]() mutable {
    auto result = std::make_shared<T>(work());
    boost::asio::post(m_io, [then = std::move(then), result]() mutable { then(std::move(*result)); });
  });
}

// --- single blobs ---------------------------------------------------------

void BlobTransfer::fetch(const BlobId& id, std::function<void(Result<Bytes>)> done) {
  off_thread<Result<Bytes>>([this, id] { return m_store.get_shared(id); },
                            [this, id, done = std::move(done)](Result<Bytes> local) mutable {
                              if (local && *local != nullptr) return done(std::move(*local));
                              if (!local)
                                log::warn(log::Category::store, "reading blob {}: {}", id.hex(), local.error().message);
                              fetch_remote(id, std::move(done));
                            });
}

void BlobTransfer::fetch_remote(const BlobId& id, std::function<void(Result<Bytes>)> done) {
  m_locate(id.ring_key(), [this, id, done = std::move(done)](Result<std::vector<chord::Peer>> holders) mutable {
    if (!holders) {
      return done(make_error(ErrorCode::unavailable, "cannot find the holders of blob {}: {}", id.hex(),
                             holders.error().message));
    }
    try_holder(id, std::make_shared<std::vector<chord::Peer>>(std::move(*holders)), 0, "no holder has it",
               std::move(done));
  });
}

void BlobTransfer::try_holder(const BlobId& id, std::shared_ptr<std::vector<chord::Peer>> holders, std::size_t next,
                              std::string last_error, std::function<void(Result<Bytes>)> done) {
  while (next < holders->size() && (*holders)[next].id == m_self) ++next;
  if (next >= holders->size()) {
    return done(make_error(ErrorCode::not_found, "blob {} is not available ({})", id.hex(), last_error));
  }
  const chord::Peer holder = (*holders)[next];
  auto addr = parse_host_port(holder.addr, false);
  if (!addr) return try_holder(id, holders, next + 1, "a holder has a bad address", std::move(done));
  m_peers.blob_get(
      *addr, std::string(id.bytes()), kCallTimeout,
      [this, id, holders, next, holder, done = std::move(done)](Result<proto::BlobGetReply> reply) mutable {
        if (!reply) return try_holder(id, holders, next + 1, reply.error().message, std::move(done));
        if (!reply->found()) {
          return try_holder(id, holders, next + 1, holder.addr + " does not hold it", std::move(done));
        }
        Bytes data = std::make_shared<const std::string>(std::move(*reply->mutable_data()));
        // Checked (hashed) and cached in one step, off the io thread.
        off_thread<Result<void>>(
            [this, id, data] { return m_store.put(id, data); },
            [this, id, holders, next, holder, data, done = std::move(done)](Result<void> kept) mutable {
              const bool bad = !kept && (kept.error().code == ErrorCode::corrupt ||
                                         kept.error().code == ErrorCode::invalid_argument);
              if (bad) {
                log::warn(log::Category::store, "{} sent a blob that is not {}: {}", holder.addr, id.hex(),
                          kept.error().message);
                return try_holder(id, holders, next + 1, "a holder sent damaged data", std::move(done));
              }
              if (!kept) {
                log::debug(log::Category::store, "blob {} fetched but not cached: {}", id.hex(), kept.error().message);
              }
              done(std::move(data));
            });
      });
}

void BlobTransfer::store(std::string data, std::function<void(Result<BlobId>)> done) {
  auto shared = std::make_shared<const std::string>(std::move(data));
  off_thread<Result<BlobId>>([this, shared] { return m_store.put(shared); },
                             [this, shared, done = std::move(done)](Result<BlobId> id) mutable {
                               if (!id) return done(id.error());
                               replicate(*id, SharedBytes{shared, *shared}, std::move(done));
                             });
}

void BlobTransfer::store_in_matrix(SharedBytes chunk, std::function<void(Result<BlobId>)> done) {
  off_thread<Result<BlobId>>([this, chunk] { return m_store.put_on_disk(chunk.bytes); },
                             [this, chunk, done = std::move(done)](Result<BlobId> id) mutable {
                               if (!id) return done(id.error());
                               replicate(*id, std::move(chunk), std::move(done));
                             });
}

void BlobTransfer::replicate(const BlobId& id, SharedBytes data, std::function<void(Result<BlobId>)> done) {
  m_locate(id.ring_key(), [this, id, data, done = std::move(done)](Result<std::vector<chord::Peer>> holders) mutable {
    if (!holders) {
      return done(make_error(ErrorCode::unavailable, "cannot find the holders of blob {}: {}", id.hex(),
                             holders.error().message));
    }
    struct Tally {
      std::size_t waiting = 0;
      std::size_t copies = 0;
      std::size_t required = 0;
      std::string last_error;
      std::function<void(Result<BlobId>)> done;
    };
    auto tally = std::make_shared<Tally>();
    tally->required = std::min<std::size_t>(2, holders->size());
    tally->done = std::move(done);
    std::vector<HostPort> targets;
    for (const auto& holder : *holders) {
      if (holder.id == m_self) {
        ++tally->copies;
      } else if (auto addr = parse_host_port(holder.addr, false)) {
        targets.push_back(*addr);
      }
    }
    if (targets.empty()) {
      if (tally->copies >= tally->required) return tally->done(id);
      return tally->done(make_error(ErrorCode::unavailable, "no holder of blob {} can be reached", id.hex()));
    }
    tally->waiting = targets.size();
    proto::BlobPut put;
    put.set_id(std::string(id.bytes()));
    put.set_data(std::string(data.bytes));
    for (const auto& target : targets) {
      m_peers.blob_put(target, put, kCallTimeout, [id, tally, target](Result<void> stored) {
        if (stored) {
          ++tally->copies;
        } else {
          tally->last_error = stored.error().message;
        }
        if (--tally->waiting > 0) return;
        if (tally->copies >= tally->required) return tally->done(id);
        tally->done(make_error(ErrorCode::unavailable, "blob {} reached {} of {} holders: {}", id.hex(), tally->copies,
                               tally->required, tally->last_error));
      });
    }
  });
}

// --- matrices ---------------------------------------------------------------

void BlobTransfer::fetch_manifest(const BlobId& id, std::function<void(Result<MatrixManifest>)> done) {
  fetch(id, [done = std::move(done)](Result<Bytes> bytes) {
    if (!bytes) return done(bytes.error());
    done(store::decode_manifest(**bytes));
  });
}

namespace {

struct RowsFetch {
  MatrixRows rows;
  std::shared_ptr<FloatBuffer> values;  // being filled; rows.storage once complete
  std::size_t next_chunk = 0;
  std::size_t last_chunk = 0;  // inclusive
  std::size_t in_flight = 0;
  std::size_t remaining = 0;
  bool failed = false;
  std::function<void(Result<MatrixRows>)> done;
};

// Copies the rows of chunk `i` that fall in [rows.begin, rows.end).
Result<void> place_chunk(const MatrixRows& rows, FloatBuffer& values, std::size_t i, const std::string& bytes) {
  const auto& m = rows.manifest;
  const std::uint64_t first = m.first_row(i);
  const std::uint64_t count = m.rows_in(i);
  if (bytes.size() != count * m.row_bytes()) {
    return make_error(ErrorCode::corrupt, "chunk {} holds {} bytes, expected {}", i, bytes.size(),
                      count * m.row_bytes());
  }
  const std::uint64_t from = std::max(first, rows.begin);
  const std::uint64_t to = std::min(first + count, rows.end);
  std::memcpy(values.data() + (from - rows.begin) * m.cols, bytes.data() + (from - first) * m.row_bytes(),
              (to - from) * m.row_bytes());
  return {};
}

// Rows [begin, end) of a cached whole matrix, as a view into it.
MatrixRows view_of(const store::CachedMatrix& matrix, std::uint64_t begin, std::uint64_t end) {
  MatrixRows rows;
  rows.manifest = matrix.manifest;
  rows.begin = begin;
  rows.end = end;
  rows.storage = matrix.values;
  rows.values = matrix.values->span().subspan(begin * matrix.manifest.cols, (end - begin) * matrix.manifest.cols);
  return rows;
}

}  // namespace

void BlobTransfer::fetch_rows(const BlobId& manifest_id, std::uint64_t begin, std::uint64_t end,
                              std::function<void(Result<MatrixRows>)> done) {
  auto outside = [](std::uint64_t b, std::uint64_t e, std::uint64_t rows) {
    return make_error(ErrorCode::invalid_argument, "rows {}..{} are outside a matrix of {} rows", b, e, rows);
  };
  if (auto cached = m_matrices.find(manifest_id)) {
    const std::uint64_t last = end == 0 ? cached->manifest.rows : end;
    // Answered later, like every fetch: callers need not expect reentrance.
    Result<MatrixRows> rows = (begin >= last || last > cached->manifest.rows)
                                  ? Result<MatrixRows>(outside(begin, last, cached->manifest.rows))
                                  : Result<MatrixRows>(view_of(*cached, begin, last));
    return boost::asio::post(m_io,
                             [done = std::move(done), rows = std::move(rows)]() mutable { done(std::move(rows)); });
  }
  fetch_manifest(manifest_id, [this, manifest_id, begin, end, outside,
                               done = std::move(done)](Result<MatrixManifest> manifest) mutable {
    if (!manifest) return done(manifest.error());
    if (end == 0) end = manifest->rows;
    if (begin >= end || end > manifest->rows) return done(outside(begin, end, manifest->rows));
    auto state = std::make_shared<RowsFetch>();
    state->rows.begin = begin;
    state->rows.end = end;
    try {
      state->values = std::make_shared<FloatBuffer>((end - begin) * manifest->cols);
    } catch (const std::bad_alloc&) {
      return done(
          make_error(ErrorCode::unavailable, "not enough memory for {}x{} floats", end - begin, manifest->cols));
    }
    state->rows.manifest = std::move(*manifest);
    state->next_chunk = state->rows.manifest.chunk_of(begin);
    state->last_chunk = state->rows.manifest.chunk_of(end - 1);
    state->remaining = state->last_chunk - state->next_chunk + 1;
    state->done = std::move(done);
    auto pump = std::make_shared<std::function<void()>>();
    *pump = [this, manifest_id, state, weak = std::weak_ptr(pump)]() {
      auto self = weak.lock();
      while (!state->failed && state->in_flight < kWindow && state->next_chunk <= state->last_chunk) {
        const std::size_t i = state->next_chunk++;
        ++state->in_flight;
        fetch(state->rows.manifest.chunks[i], [this, manifest_id, state, i, self](Result<Bytes> bytes) {
          --state->in_flight;
          if (state->failed) return;
          Result<void> placed =
              bytes ? place_chunk(state->rows, *state->values, i, **bytes) : Result<void>(bytes.error());
          if (!placed) {
            state->failed = true;
            return state->done(placed.error());
          }
          if (--state->remaining > 0) return (*self)();
          MatrixRows& rows = state->rows;
          rows.storage = std::move(state->values);
          rows.values = rows.storage->span();
          // Every chunk was checked against its id: a whole matrix is kept
          // for the next step that reads it (the leader verifying, or a
          // worker's next shard of the same job).
          if (rows.begin == 0 && rows.end == rows.manifest.rows) {
            m_matrices.insert(manifest_id, store::CachedMatrix{rows.manifest, rows.storage});
          }
          state->done(std::move(rows));
        });
      }
    };
    (*pump)();
  });
}

void BlobTransfer::fetch_rows_all(std::vector<RowsRequest> requests,
                                  std::function<void(Result<std::vector<MatrixRows>>)> done) {
  struct Join {
    std::vector<MatrixRows> rows;
    std::optional<Error> error;
    std::size_t waiting = 0;
    std::function<void(Result<std::vector<MatrixRows>>)> done;
  };
  auto join = std::make_shared<Join>();
  join->rows.resize(requests.size());
  join->waiting = requests.size();
  join->done = std::move(done);
  if (requests.empty()) return join->done(std::move(join->rows));
  for (std::size_t i = 0; i < requests.size(); ++i) {
    fetch_rows(requests[i].manifest_id, requests[i].begin, requests[i].end, [join, i](Result<MatrixRows> rows) {
      if (rows) {
        join->rows[i] = std::move(*rows);
      } else if (!join->error) {
        join->error = rows.error();
      }
      if (--join->waiting > 0) return;
      if (join->error) return join->done(*join->error);
      join->done(std::move(join->rows));
    });
  }
}

void BlobTransfer::store_matrix(std::shared_ptr<const FloatBuffer> values, std::uint64_t rows, std::uint64_t cols,
                                std::function<void(Result<BlobId>)> done) {
  struct MatrixStore {
    std::shared_ptr<const FloatBuffer> values;
    MatrixManifest manifest;
    std::size_t next_chunk = 0;
    std::size_t in_flight = 0;
    std::size_t remaining = 0;
    bool failed = false;
    std::function<void(Result<BlobId>)> done;
  };
  if (rows == 0 || cols == 0 || values->size() != rows * cols) {
    return done(make_error(ErrorCode::invalid_argument, "a {}x{} matrix needs {} values, got {}", rows, cols,
                           rows * cols, values->size()));
  }
  auto state = std::make_shared<MatrixStore>();
  state->values = std::move(values);
  state->manifest.rows = rows;
  state->manifest.cols = cols;
  state->manifest.chunk_rows = store::chunk_rows_for(cols);
  const std::size_t chunks =
      static_cast<std::size_t>((rows + state->manifest.chunk_rows - 1) / state->manifest.chunk_rows);
  state->manifest.chunks.resize(chunks);
  state->remaining = chunks;
  state->done = std::move(done);
  auto pump = std::make_shared<std::function<void()>>();
  *pump = [this, state, weak = std::weak_ptr(pump)]() {
    auto self = weak.lock();
    const auto& m = state->manifest;
    while (!state->failed && state->in_flight < kWindow && state->next_chunk < m.chunks.size()) {
      const std::size_t i = state->next_chunk++;
      ++state->in_flight;
      const std::string_view bytes(state->values->bytes() + m.first_row(i) * m.row_bytes(),
                                   m.rows_in(i) * m.row_bytes());
      store_in_matrix(SharedBytes{state->values, bytes}, [this, state, i, self](Result<BlobId> id) {
        --state->in_flight;
        if (state->failed) return;
        if (!id) {
          state->failed = true;
          return state->done(id.error());
        }
        state->manifest.chunks[i] = *id;
        if (--state->remaining == 0) {
          return store(store::encode_manifest(state->manifest), [this, state](Result<BlobId> manifest_id) {
            if (manifest_id) m_matrices.insert(*manifest_id, store::CachedMatrix{state->manifest, state->values});
            state->values.reset();
            state->done(std::move(manifest_id));
          });
        }
        (*self)();
      });
    }
  };
  (*pump)();
}

}  // namespace p2pd::node
