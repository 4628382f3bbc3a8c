#pragma once
// `trainsim schedule`: one pipeline schedule studied by itself, with abstract
// per-chunk durations instead of a model and a GPU.
//
// Durations are plain numbers in any unit the user likes (the output uses the
// same unit). Internally one unit is one millisecond of engine time, so
// durations resolve to 1e-9 units and sums stay exact up to ~9e9 units.
//   f   forward of one chunk (for interleaved and V-shaped schedules: of one
//       stage chunk)
//   b   full backward of one chunk (input and weight gradients together)
//   w   weight-only backward of one chunk; b - w is the input-only backward
//   fb  an overlapped forward + full backward pair of two chunks; default
//       f + b (no overlap benefit)
//   p2p transfer time between neighbouring stages on different devices (a
//       pure delay on the dependency edge; 0 on the same device)
// Executor costs: F -> f, BW -> b, B -> b - w, W -> w, FB -> fb.
//
// Everything here is deterministic: the same parameters give byte-identical
// JSON, text and SVG.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainsim/model/parallel.hpp"
#include "trainsim/model/pipeline_exec.hpp"
#include "trainsim/model/schedule.hpp"

namespace trainsim::app {

struct StudyParams {
  model::ScheduleKind kind = model::ScheduleKind::OneFOneB;
  int ranks = 4;          // devices (DualPipeV runs two stages per device)
  int microbatches = 8;   // in total (DualPipe: half in each direction)
  int virtual_stages = 0; // chunks per rank for interleaved; 0 = the kind's default (2 for interleaved, else 1)
  double f = 1.0;
  double b = 2.0;
  double w = 1.0;
  std::optional<double> fb;  // default f + b
  double p2p = 0.0;
};

// The published bubble formula of a kind (DeepSeek-V3 report Table 2 and the
// DualPipe README for 1F1B, ZB1P, DualPipe, DualPipeV; Megatron-LM for
// interleaved; GPipe paper for GPipe), evaluated at the study's durations.
struct BubbleFormula {
  std::string name;              // e.g. "(PP-1)(F+B)"
  std::optional<double> bubble;  // value per rank in the input's unit; empty when none applies
  std::string note;              // where it holds
};

struct StudyResult {
  StudyParams params;  // resolved: virtual_stages and fb filled in
  model::Schedule schedule;
  model::ExecResult exec;
  BubbleFormula formula;
};

// "gpipe", "1f1b", "interleaved", "zb1p", "dualpipe", "dualpipev"
// (case-insensitive; "zb-h1" and "zbh1" accepted for zb1p). Empty when unknown.
std::optional<model::ScheduleKind> parse_schedule_kind(std::string_view name);
// The lower-case CLI name of a kind ("1f1b", "dualpipe", ...).
const char* schedule_kind_cli_name(model::ScheduleKind kind);
// All CLI names, in the order above, joined by ", ".
std::string schedule_kind_cli_names();

// Builds and executes the schedule. Throws std::invalid_argument with a
// one-line message for bad parameters (ranks < 1, micro-batches violating the
// schedule's preconditions, negative or non-finite durations, b < w, virtual
// stages given to a kind without them, a kind not generated yet).
StudyResult run_study(const StudyParams& params);

// The study as JSON: kind, ranks, stages, microbatches, virtual_stages,
// durations {f, b, w, fb, p2p}, makespan, bubble_per_rank, busy_per_rank,
// peak_activations_per_rank (micro-batch chunks held),
// peak_deferred_weight_per_rank (chunks waiting for their W), formula
// {name, bubble (null when none applies), note}, ranks_ops (per rank, in
// order: type, text (the op token), phase, start, end and either
// microbatch/direction/stage or, for FB, forward{...} and backward{...}).
// Times in the input's unit.
nlohmann::json study_json(const StudyResult& r);
// Readable summary (makespan, bubble, busy and peak per rank, formula) and
// each rank's compact op string.
std::string study_text(const StudyResult& r);
// The schedule drawn as the DualPipe figure does: ranks as rows, time to the
// right, a cell per op coloured by type (direction 1 in a darker shade of
// the same hue), micro-batch numbers in the cells, a legend.
std::string study_svg(const StudyResult& r);

// Drawing helpers shared by the schedule SVG and the HTML report
// (html_report.hpp): the fill of an op of type `t` in shade `shade` of
// `shades` (DualPipe figure colours: orange forward, green backward, blue
// weight backward; shade 0 light, shades-1 deep), the text colour readable on
// it, XML/HTML escaping of &, <, > and ", and a "nice" axis tick step (1, 2
// or 5 x 10^k) giving at most about `max_ticks` ticks over `span`.
std::string op_colour(model::ChunkOpType t, int shade, int shades);
const char* op_text_colour(int shade, int shades);
std::string xml_escape(const std::string& s);
double tick_step(double span, int max_ticks);

// Compact token of an op: "F3a" (forward, micro-batch 3, direction 0 = a,
// 1 = b), "B3a", "BW3a", "W3a", "F3a+BW1b"; when a rank holds several stages
// (interleaved, DualPipeV) the stage follows an '@': "F3a@5".
std::string op_token(const model::Schedule& s, const model::ScheduleOp& op);
// The tokens of one rank joined by single spaces.
std::string rank_sequence(const model::Schedule& s, int rank);

}  // namespace trainsim::app
