// The trace recorder (daemon/trace): events come back as recorded, the ring
// stays within its capacity keeping the newest, and a torn tail is cut off.
#include <catch2/catch.hpp>

#include <fstream>

#include "daemon/trace/event_record.hpp"
#include "daemon/trace/recorder.hpp"
#include "tests/support/temp_dir.hpp"

using namespace p2pd;
using namespace p2pd::trace;

namespace {

TraceEvent event_of(std::string what, std::string job = {}) {
  TraceEvent e;
  e.host = "aaaa";
  e.lamport = 7;
  e.hlc = {1'700'000'000'000, 3};
  e.vc.set("aaaa", 2);
  e.vc.set("bbbb", 5);
  e.kind = EventKind::send;
  e.msg_id = "aaaa:12";
  e.job_id = std::move(job);
  e.what = std::move(what);
  e.wall_ms = 1'700'000'000'001;
  return e;
}

std::uint64_t dir_bytes(const std::filesystem::path& dir) {
  std::uint64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) total += entry.file_size();
  return total;
}

}  // namespace

TEST_CASE("the trace recorder gives back what it recorded, by job and after a seq", "[unit][trace]") {
  test::TempDir dir;
  auto recorder = Recorder::open(dir.path() / "traces", 1 << 20);
  REQUIRE(recorder);
  CHECK((*recorder)->record(event_of("joined")) == 1);
  CHECK((*recorder)->record(event_of("shard 0 sent", "job1")) == 2);
  CHECK((*recorder)->record(event_of("a\nmulti-line\nthing")) == 3);
  auto all = (*recorder)->events("", 0, 100);
  REQUIRE(all);
  REQUIRE(all->size() == 3);
  const auto& e = (*all)[1];
  CHECK(e.seq == 2);
  CHECK(e.host == "aaaa");
  CHECK(e.lamport == 7);
  CHECK(e.hlc == clocks::HlcTimestamp{1'700'000'000'000, 3});
  CHECK(e.vc.get("bbbb") == 5);
  CHECK(e.kind == EventKind::send);
  CHECK(e.msg_id == "aaaa:12");
  CHECK(e.job_id == "job1");
  CHECK(e.what == "shard 0 sent");
  CHECK(e.wall_ms == 1'700'000'000'001);
  CHECK((*all)[2].what.find('\n') == std::string::npos);  // one line
  auto job = (*recorder)->events("job1", 0, 100);
  REQUIRE(job);
  CHECK(job->size() == 1);
  auto after = (*recorder)->events("", 2, 100);
  REQUIRE(after);
  REQUIRE(after->size() == 1);
  CHECK(after->front().seq == 3);
  auto newest = (*recorder)->events("", 0, 2);
  REQUIRE(newest);
  REQUIRE(newest->size() == 2);
  CHECK(newest->front().seq == 2);
}

TEST_CASE("the trace ring stays within its capacity and keeps the newest events across restarts", "[unit][trace]") {
  test::TempDir dir;
  constexpr std::uint64_t kCapacity = Recorder::kMinCapacityBytes;
  {
    auto recorder = Recorder::open(dir.path() / "traces", kCapacity);
    REQUIRE(recorder);
    for (int i = 0; i < 5000; ++i) (*recorder)->record(event_of("event " + std::to_string(i)));
    REQUIRE((*recorder)->flush());
    CHECK(dir_bytes(dir.path() / "traces") <= kCapacity);
    auto kept = (*recorder)->events("", 0, 100000);
    REQUIRE(kept);
    REQUIRE(kept->size() > 100);
    CHECK(kept->back().what == "event 4999");
    for (std::size_t i = 1; i < kept->size(); ++i) REQUIRE((*kept)[i].seq == (*kept)[i - 1].seq + 1);
  }
  auto reopened = Recorder::open(dir.path() / "traces", kCapacity);
  REQUIRE(reopened);
  CHECK((*reopened)->last_seq() == 5000);
  CHECK((*reopened)->record(event_of("after the restart")) == 5001);
  auto kept = (*reopened)->events("", 4990, 100);
  REQUIRE(kept);
  REQUIRE(kept->size() == 11);
  CHECK(kept->back().what == "after the restart");
}

TEST_CASE("a torn trace record from a crash is cut off on open", "[unit][trace]") {
  test::TempDir dir;
  {
    auto recorder = Recorder::open(dir.path() / "traces", 1 << 20);
    REQUIRE(recorder);
    (*recorder)->record(event_of("one"));
    (*recorder)->record(event_of("two"));
  }
  const auto segment = dir.path() / "traces" / "events.0";
  const auto whole = std::filesystem::file_size(segment);
  std::filesystem::resize_file(segment, whole - 5);  // the last record half-written
  { std::ofstream(dir.path() / "traces" / "events.1", std::ios::binary) << "garbage that is no record"; }
  auto recorder = Recorder::open(dir.path() / "traces", 1 << 20);
  REQUIRE(recorder);
  auto kept = (*recorder)->events("", 0, 100);
  REQUIRE(kept);
  REQUIRE(kept->size() == 1);
  CHECK(kept->front().what == "one");
  CHECK((*recorder)->last_seq() == 1);
  CHECK(std::filesystem::file_size(dir.path() / "traces" / "events.1") == 0);
  CHECK_FALSE(Recorder::open(dir.path() / "small", 1000));
}

TEST_CASE("a trace record from a peer is refused unless its ids are printable ASCII and its text UTF-8",
          "[unit][trace]") {
  using p2pd::trace::from_record;
  p2pd::trace::TraceEventRecord good;
  good.set_host("1de138c7de43a1de138c7de43a1de138c7de43a");
  good.set_kind(1);
  good.set_msg_id("m-1");
  good.set_what("vote granted \xC3\xA9");  // é: UTF-8 is fine
  REQUIRE(from_record(good));

  auto with = [&](auto change) {
    auto record = good;
    change(record);
    return from_record(record).has_value();
  };
  // The fuzzer's finding: a host that p2pctl cut to 12 bytes mid-character.
  CHECK_FALSE(with([](auto& r) { r.set_host("aaaaaaaaaaa\xC4\x80"); }));
  CHECK_FALSE(with([](auto& r) { r.set_host("has space"); }));
  CHECK_FALSE(with([](auto& r) { r.set_msg_id(std::string("m\0", 2)); }));
  CHECK_FALSE(with([](auto& r) { r.set_job_id("j\n"); }));
  CHECK_FALSE(with([](auto& r) {
    auto* entry = r.add_vc();
    entry->set_node("\xFF");
    entry->set_value(1);
  }));
  CHECK_FALSE(with([](auto& r) { r.set_what("cut \xC3"); }));
  CHECK_FALSE(with([](auto& r) { r.set_what("overlong \xC0\xAF"); }));
  CHECK_FALSE(with([](auto& r) { r.set_what("surrogate \xED\xA0\x80"); }));
  CHECK_FALSE(with([](auto& r) { r.set_what("too high \xF4\x90\x80\x80"); }));
  CHECK(with([](auto& r) { r.set_what("emoji \xF0\x9F\x98\x80"); }));
}
