#pragma once
// All-or-nothing output files for a command. A command declares every file
// it may write before it does any work (add + prepare): each path is checked
// (not empty, not a directory, in an existing directory, creatable) and no
// two options name the same file; a temporary file is created next to each
// one. Once every output is built, commit() writes all the temporaries and
// only then renames them over their targets. Any failure before that point,
// an exception or a failed write, leaves no output and no temporary behind
// (the destructor removes them).
//
//   OutputSet out;
//   out.add("--report", report_path, report_given);
//   out.prepare();                      // before the run: InputError if unusable
//   ... run ...
//   out.set("--report", text);          // every wanted output
//   out.commit();
#include <string>
#include <vector>

namespace trainsim::app {

class OutputSet {
 public:
  OutputSet() = default;
  OutputSet(const OutputSet&) = delete;
  OutputSet& operator=(const OutputSet&) = delete;
  ~OutputSet();

  // Declares the output of `option`. `given` is whether the option was on the
  // command line (an empty path that was given is an error, not "no output").
  void add(const std::string& option, const std::string& path, bool given);
  // True when `option` was given (its output must be set before commit).
  bool wanted(const std::string& option) const;
  // Checks every path and creates the temporaries; InputError naming the
  // option and path on the first problem.
  void prepare();
  // The full contents of the output of `option` (ignored when not wanted).
  void set(const std::string& option, std::string text);
  // Writes every temporary, then renames each over its target.
  void commit();

 private:
  struct Entry {
    std::string option, path, tmp, text;
    bool has_text = false;
  };
  Entry* find(const std::string& option);
  void remove_temporaries() noexcept;

  std::vector<Entry> entries_;
  bool prepared_ = false;
};

}  // namespace trainsim::app
