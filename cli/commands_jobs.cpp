#include "cli/commands_jobs.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "cli/command_support.hpp"
#include "cli/control_client.hpp"
#include "cli/output.hpp"
#include "common/atomic_file.hpp"
#include "common/file_descriptor.hpp"
#include "common/npy.hpp"

namespace p2pd::cli {
namespace {

constexpr std::size_t kPieceBytes = std::size_t{1} << 20;
constexpr mode_t kNewFileMode = 0644;
constexpr std::chrono::milliseconds kLongPoll{10000};
// Seconds of --timeout granted per 64 MiB moved, on top of --timeout.
constexpr double kSecondsPer64MiB = 1.0;

std::chrono::milliseconds time_for_bytes(std::uint64_t bytes) {
  return std::chrono::milliseconds(
      static_cast<std::int64_t>(static_cast<double>(bytes) / (64.0 * 1024 * 1024) * kSecondsPer64MiB * 1000));
}

bool is_finished(const std::string& state) {
  return state == "done" || state == "failed" || state == "cancelled";
}

std::uint32_t shards_done(const proto::JobReply& job) {
  return static_cast<std::uint32_t>(
      std::count_if(job.shards().begin(), job.shards().end(), [](const auto& s) { return s.state() == "done"; }));
}

Json job_json(const proto::JobReply& j) {
  Json out;
  out["job_id"] = j.job_id();
  out["kind"] = j.kind();
  out["state"] = j.state();
  out["submitted_at"] = j.submitted_at();
  out["submitter"] = j.submitter();
  out["a"] = Json{{"rows", j.a_rows()}, {"cols", j.a_cols()}};
  out["b"] = Json{{"rows", j.b_rows()}, {"cols", j.b_cols()}};
  out["max_attempts"] = j.max_attempts();
  out["shards_done"] = shards_done(j);
  out["shards"] = Json::array();
  for (const auto& s : j.shards()) {
    out["shards"].push_back(Json{{"index", s.index()},
                                 {"state", s.state()},
                                 {"peer", s.peer().empty() ? Json(nullptr) : Json(s.peer())},
                                 {"attempts", s.attempts()},
                                 {"row_begin", s.row_begin()},
                                 {"row_end", s.row_end()},
                                 {"last_error", s.last_error().empty() ? Json(nullptr) : Json(s.last_error())}});
  }
  out["error"] = j.has_error() ? Json(j.error()) : Json(nullptr);
  return out;
}

void print_job_text(const proto::JobReply& j) {
  TextTable table;
  table.row("job", j.job_id());
  table.row("state", j.state());
  table.row("kind", fmt::format("{} ({}x{} by {}x{})", j.kind(), j.a_rows(), j.a_cols(), j.b_rows(), j.b_cols()));
  table.row("shards", fmt::format("{} of {} done", shards_done(j), j.shards_size()));
  if (!j.submitter().empty()) table.row("submitter", j.submitter());
  if (j.has_error()) table.row("error", j.error());
  fmt::print("{}", table.render());
  ColumnTable shards({"SHARD", "ROWS", "STATE", "PEER", "ATTEMPTS", "LAST ERROR"});
  for (const auto& s : j.shards()) {
    shards.row({std::to_string(s.index()), fmt::format("{}..{}", s.row_begin(), s.row_end()), s.state(),
                s.peer().empty() ? "-" : short_id(s.peer()), std::to_string(s.attempts()),
                s.last_error().empty() ? "-" : s.last_error()});
  }
  fmt::print("\n{}", shards.render());
}

// "[#######-------]  5/8 shards  running" on stderr, redrawn in place.
class ProgressBar {
 public:
  ProgressBar() : m_enabled(::isatty(STDERR_FILENO) == 1) {}
  ~ProgressBar() { finish(); }
  void show(const proto::JobReply& job) {
    if (!m_enabled) return;
    constexpr int kWidth = 30;
    const auto total = std::max(1, job.shards_size());
    const auto done = static_cast<int>(shards_done(job));
    const int filled = done * kWidth / total;
    fmt::print(stderr, "\r[{}{}] {}/{} shards  {:<9}", std::string(static_cast<std::size_t>(filled), '#'),
               std::string(static_cast<std::size_t>(kWidth - filled), '-'), done, job.shards_size(), job.state());
    std::fflush(stderr);
    m_drawn = true;
  }
  void finish() {
    if (m_drawn) fmt::print(stderr, "\n");
    m_drawn = false;
  }

 private:
  bool m_enabled;
  bool m_drawn = false;
};

// Follows the job until it is finished, one long poll per change (each
// within --timeout); the wait itself has no limit.
Result<proto::JobReply> wait_for(ControlClient& client, const std::string& id, std::chrono::milliseconds timeout) {
  ProgressBar bar;
  const auto poll = std::clamp(timeout / 2, std::chrono::milliseconds(1), kLongPoll);
  auto job = client.job(id);
  while (job) {
    bar.show(*job);
    if (is_finished(job->state())) return job;
    job = client.job_change(job->job_id(), job->state(), shards_done(*job), poll);
  }
  return job;
}

// Writes the job's output to `path` as .npy: streamed, replaced atomically.
Result<Json> write_result(ControlClient& client, const std::string& id, const std::string& path) {
  // The stream may take a while for a large result: its deadline grows with the size.
  auto job = client.job(id);
  if (!job) return job.error();
  const std::uint64_t result_bytes = job->a_rows() * job->b_cols() * sizeof(float);
  auto writer = AtomicFileWriter::create(path, kNewFileMode);
  if (!writer) return writer.error();
  std::uint64_t expected = 0;
  std::uint64_t received = 0;
  auto streamed = client.result(
      id,
      [&](const proto::ResultHeader& header) -> Result<void> {
        if (header.rows() == 0 || header.cols() == 0 || header.rows() > npy::kMaxDim || header.cols() > npy::kMaxDim) {
          return make_error(ErrorCode::corrupt, "p2pd announced a {}x{} result", header.rows(), header.cols());
        }
        expected = header.rows() * header.cols() * sizeof(float);
        const std::string npy_header = npy::header_for(header.rows(), header.cols());
        return writer->append(npy_header);
      },
      [&](const std::string& data) -> Result<void> {
        received += data.size();
        if (received > expected) return make_error(ErrorCode::corrupt, "p2pd sent more data than the result holds");
        return writer->append(data);
      },
      time_for_bytes(result_bytes));
  if (!streamed) return streamed.error();
  if (received != expected) {
    return make_error(ErrorCode::corrupt, "the result ended after {} of {} bytes", received, expected);
  }
  if (auto committed = writer->commit(); !committed) return committed.error();
  return Json{{"path", path}, {"bytes", writer->written()}};
}

// Streams a matrix's data (after its header) in pieces of kPieceBytes.
class NpyReader {
 public:
  static Result<NpyReader> open(const std::string& path, const npy::NpyHeader& header) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(ErrorCode::io, "cannot open {}: {}", path, std::strerror(errno));
    return NpyReader(path, fd, header);
  }
  NpyReader(NpyReader&& other) noexcept
      : m_path(std::move(other.m_path)), m_fd(other.m_fd), m_offset(other.m_offset), m_left(other.m_left) {
    other.m_fd = -1;
  }
  NpyReader& operator=(NpyReader&&) = delete;
  ~NpyReader() {
    if (m_fd >= 0) ::close(m_fd);
  }
  [[nodiscard]] bool done() const { return m_left == 0; }
  // Reads the next piece into `piece`, reusing its memory: a fresh 1 MiB
  // string per piece is a memset and 256 page faults each time.
  Result<void> next(std::string& piece) {
    piece.resize(static_cast<std::size_t>(std::min<std::uint64_t>(m_left, kPieceBytes)));
    std::size_t got = 0;
    while (got < piece.size()) {
      const ssize_t n = ::pread(m_fd, piece.data() + got, piece.size() - got, static_cast<off_t>(m_offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return make_error(ErrorCode::io, "cannot read {}: {}", m_path, std::strerror(errno));
      if (n == 0) return make_error(ErrorCode::corrupt, "{} was truncated while it was being sent", m_path);
      got += static_cast<std::size_t>(n);
    }
    m_offset += got;
    m_left -= got;
    return {};
  }

 private:
  NpyReader(std::string path, int fd, const npy::NpyHeader& header)
      : m_path(std::move(path)), m_fd(fd), m_offset(header.header_bytes), m_left(header.data_bytes()) {}
  std::string m_path;
  int m_fd;
  std::uint64_t m_offset;
  std::uint64_t m_left;
};

Result<std::uint32_t> parse_shards(const std::string& text) {
  std::uint32_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size() || n == 0 || n > 4096) {
    return make_error(ErrorCode::invalid_argument, "submit: --shards must be a whole number from 1 to 4096, got '{}'",
                      text);
  }
  return n;
}

// Ends a wait: the job as JSON or text; exit 1 unless it is done.
int report_finished(const CliArgs& args, const proto::JobReply& job, Json extra = Json::object()) {
  if (args.global.json) {
    Json out = job_json(job);
    for (auto& [key, value] : extra.items()) out[key] = value;
    print_json(out);
  } else {
    print_job_text(job);
    if (extra.contains("path")) {
      fmt::print("\nwrote {} ({} bytes)\n", extra["path"].get<std::string>(), extra["bytes"].get<std::uint64_t>());
    }
  }
  if (job.state() == "done") return 0;
  return fail(job.state() == "failed"
                  ? make_error(ErrorCode::unavailable, "job {} failed: {}", job.job_id(), job.error())
                  : make_error(ErrorCode::unavailable, "job {} was cancelled", job.job_id()));
}

}  // namespace

int cmd_submit(const CliArgs& args) {
  auto parsed = parse_arguments({.command = "submit",
                                 .positionals = {"KIND"},
                                 .required = 1,
                                 .value_options = {"--a", "--b", "--out", "--shards"},
                                 .flag_options = {"--wait"}},
                                args);
  if (!parsed) return 2;
  if (parsed->positionals[0] != "gemm") {
    return usage_error(fmt::format("submit: unknown job kind '{}' (known: gemm)", parsed->positionals[0]));
  }
  const std::string* a_path = parsed->option("--a");
  const std::string* b_path = parsed->option("--b");
  if (a_path == nullptr || b_path == nullptr) return usage_error("submit gemm: --a A.npy and --b B.npy are required");
  std::uint32_t shards = 0;
  if (const std::string* text = parsed->option("--shards")) {
    auto n = parse_shards(*text);
    if (!n) return usage_error(n.error().message);
    shards = *n;
  }
  // Every check the daemon will make, made here first: nothing is sent for
  // an input that would be refused.
  auto a = npy::read_header(*a_path);
  if (!a) return fail(a.error());
  auto b = npy::read_header(*b_path);
  if (!b) return fail(b.error());
  if (a->cols != b->rows) {
    return fail(make_error(ErrorCode::invalid_argument, "A is {}x{} and B is {}x{}: A's columns must equal B's rows",
                           a->rows, a->cols, b->rows, b->cols));
  }
  constexpr std::uint64_t kMaxDim = 65536;  // the pool's job table limit
  for (auto dim : {a->rows, a->cols, b->cols}) {
    if (dim > kMaxDim) {
      return fail(
          make_error(ErrorCode::invalid_argument, "a dimension of {} is over the pool's limit of {}", dim, kMaxDim));
    }
  }
  if (shards > a->rows) {
    return fail(
        make_error(ErrorCode::invalid_argument, "{} shards asked for, but A has only {} rows", shards, a->rows));
  }
  auto a_reader = NpyReader::open(*a_path, *a);
  if (!a_reader) return fail(a_reader.error());
  auto b_reader = NpyReader::open(*b_path, *b);
  if (!b_reader) return fail(b_reader.error());

  proto::SubmitHeader header;
  header.set_kind("gemm");
  header.set_a_rows(a->rows);
  header.set_a_cols(a->cols);
  header.set_b_rows(b->rows);
  header.set_b_cols(b->cols);
  header.set_shards(shards);
  std::string user = std::getenv("USER") != nullptr ? std::getenv("USER") : "";
  if (user.empty()) {
    if (const passwd* entry = ::getpwuid(::geteuid()); entry != nullptr) user = entry->pw_name;
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  header.set_submitter(fmt::format("{}@{}", user.empty() ? "?" : user, host));

  ControlClient client(args.global);
  auto submitted = client.submit(
      header,
      [&](std::string& piece) -> Result<bool> {
        NpyReader& reader = a_reader->done() ? *b_reader : *a_reader;
        if (reader.done()) return false;
        if (auto read = reader.next(piece); !read) return read.error();
        return true;
      },
      time_for_bytes(a->data_bytes() + b->data_bytes()));
  if (!submitted) return fail(submitted.error());

  const std::string* out = parsed->option("--out");
  if (!parsed->flag("--wait") && out == nullptr) {
    if (args.global.json) {
      print_json(Json{{"job_id", submitted->job_id()}, {"shards", submitted->shards()}});
    } else {
      fmt::print("{}\n", submitted->job_id());
    }
    return 0;
  }
  if (!args.global.json && ::isatty(STDERR_FILENO) == 1) {
    fmt::print(stderr, "job {} submitted ({} shards)\n", submitted->job_id(), submitted->shards());
  }
  auto job = wait_for(client, submitted->job_id(), args.global.timeout);
  if (!job) return fail(job.error());
  Json extra = Json::object();
  if (out != nullptr && job->state() == "done") {
    auto written = write_result(client, job->job_id(), *out);
    if (!written) return fail(written.error());
    extra = *written;
  }
  return report_finished(args, *job, extra);
}

int cmd_jobs(const CliArgs& args) {
  if (!parse_arguments({.command = "jobs"}, args)) return 2;
  return show(
      args, ControlClient(args.global).jobs(),
      +[](const proto::JobsReply& r) {
        Json out;
        out["jobs"] = Json::array();
        for (const auto& j : r.jobs()) {
          out["jobs"].push_back(Json{{"job_id", j.job_id()},
                                     {"kind", j.kind()},
                                     {"state", j.state()},
                                     {"submitted_at", j.submitted_at()},
                                     {"shards_done", j.shards_done()},
                                     {"shards_total", j.shards_total()}});
        }
        return out;
      },
      +[](const proto::JobsReply& r) {
        if (r.jobs().empty()) {
          fmt::print("no jobs\n");
          return;
        }
        ColumnTable table({"JOB", "KIND", "STATE", "SHARDS", "SUBMITTED"});
        for (const auto& j : r.jobs()) {
          const auto when = static_cast<std::time_t>(j.submitted_at());
          std::tm tm{};
          ::gmtime_r(&when, &tm);
          table.row({j.job_id(), j.kind(), j.state(), fmt::format("{}/{}", j.shards_done(), j.shards_total()),
                     fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                 tm.tm_hour, tm.tm_min, tm.tm_sec)});
        }
        fmt::print("{}", table.render());
      });
}

int cmd_job(const CliArgs& args) {
  auto parsed = parse_arguments({.command = "job", .positionals = {"ID"}, .required = 1}, args);
  if (!parsed) return 2;
  return show(args, ControlClient(args.global).job(parsed->positionals[0]), job_json, print_job_text);
}

int cmd_wait(const CliArgs& args) {
  auto parsed = parse_arguments({.command = "wait", .positionals = {"ID"}, .required = 1}, args);
  if (!parsed) return 2;
  ControlClient client(args.global);
  auto job = wait_for(client, parsed->positionals[0], args.global.timeout);
  if (!job) return fail(job.error());
  return report_finished(args, *job);
}

int cmd_cancel(const CliArgs& args) {
  auto parsed = parse_arguments({.command = "cancel", .positionals = {"ID"}, .required = 1}, args);
  if (!parsed) return 2;
  return show(
      args, ControlClient(args.global).cancel(parsed->positionals[0]),
      +[](const proto::CancelReply& r) {
        return Json{{"job_id", r.job_id()}, {"state", r.state()}};
      },
      +[](const proto::CancelReply& r) { fmt::print("job {} is {}\n", r.job_id(), r.state()); });
}

int cmd_result(const CliArgs& args) {
  auto parsed =
      parse_arguments({.command = "result", .positionals = {"ID"}, .required = 1, .value_options = {"--out"}}, args);
  if (!parsed) return 2;
  const std::string* out = parsed->option("--out");
  if (out == nullptr) return usage_error("result: --out FILE is required (the output is a .npy matrix)");
  ControlClient client(args.global);
  auto written = write_result(client, parsed->positionals[0], *out);
  if (!written) return fail(written.error());
  if (args.global.json) {
    print_json(*written);
  } else {
    fmt::print("wrote {} ({} bytes)\n", (*written)["path"].get<std::string>(),
               (*written)["bytes"].get<std::uint64_t>());
  }
  return 0;
}

}  // namespace p2pd::cli
