#include "trainsim/app/output_set.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "trainsim/common/error.hpp"

namespace trainsim::app {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& option, const std::string& path, const std::string& why) {
  throw InputError(option, "", fmt::format("\"{}\" ({})", path, why), "a writable file path in an existing directory");
}

// The same file under two spellings (./r.json, r.json) is the same output.
std::string identity(const std::string& path) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? path : p.lexically_normal().string();
}

void check_path(const std::string& option, const std::string& path) {
  if (path.empty()) fail(option, path, "an empty path");
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail(option, path, "a directory");
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec))
    fail(option, path, fmt::format("directory \"{}\" does not exist", dir.string()));
  const fs::file_status st = fs::status(path, ec);
  if (fs::exists(st) && !fs::is_regular_file(st)) fail(option, path, "not a regular file");
}

}  // namespace

OutputSet::~OutputSet() { remove_temporaries(); }

void OutputSet::add(const std::string& option, const std::string& path, bool given) {
  if (!given) return;
  entries_.push_back({option, path, "", "", false});
}

bool OutputSet::wanted(const std::string& option) const {
  for (const auto& e : entries_)
    if (e.option == option) return true;
  return false;
}

OutputSet::Entry* OutputSet::find(const std::string& option) {
  for (auto& e : entries_)
    if (e.option == option) return &e;
  return nullptr;
}

void OutputSet::prepare() {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    check_path(e.option, e.path);
    for (std::size_t j = 0; j < i; ++j)
      if (identity(entries_[j].path) == identity(e.path))
        fail(e.option, e.path, fmt::format("the file {} writes too", entries_[j].option));
  }
  // Creating the temporaries proves each directory writable (also for root,
  // whom access() would not stop, and on file systems such as /proc).
  for (auto& e : entries_) {
    e.tmp = fmt::format("{}.{}.tmp", e.path, ::getpid());
    std::ofstream probe(e.tmp, std::ios::binary | std::ios::trunc);
    if (!probe) {
      const std::string why = std::strerror(errno);
      e.tmp.clear();
      fail(e.option, e.path, fmt::format("cannot create a file there: {}", why));
    }
  }
  prepared_ = true;
}

void OutputSet::set(const std::string& option, std::string text) {
  if (Entry* e = find(option)) {
    e->text = std::move(text);
    e->has_text = true;
  }
}

void OutputSet::commit() {
  if (!prepared_) prepare();
  for (auto& e : entries_) {
    if (!e.has_text) throw std::logic_error("OutputSet: no contents for " + e.option);
    std::ofstream out(e.tmp, std::ios::binary | std::ios::trunc);
    out << e.text;
    out.flush();
    if (!out) fail(e.option, e.path, "the write failed (disk full?)");
  }
  for (auto& e : entries_) {
    std::error_code ec;
    fs::rename(e.tmp, e.path, ec);
    if (ec) fail(e.option, e.path, "cannot replace it: " + ec.message());
    e.tmp.clear();
  }
}

void OutputSet::remove_temporaries() noexcept {
  for (auto& e : entries_) {
    if (e.tmp.empty()) continue;
    std::error_code ec;
    fs::remove(e.tmp, ec);
    e.tmp.clear();
  }
}

}  // namespace trainsim::app
