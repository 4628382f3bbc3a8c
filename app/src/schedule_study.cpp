#include "trainsim/app/schedule_study.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "trainsim/common/units.hpp"

namespace trainsim::app {

using Json = nlohmann::json;
using model::ChunkOpType;
using model::ChunkRef;
using model::Schedule;
using model::ScheduleKind;
using model::ScheduleOp;

namespace {

// One unit of the user's durations is one millisecond of engine time.
Time to_time(double units) { return Time::ms(units); }
// Exact for whole and half units (a division, not a multiplication by 1e-9).
double to_units(Time t) { return static_cast<double>(t.count_ps()) / 1e9; }

struct KindName {
  ScheduleKind kind;
  const char* name;
};
constexpr std::array<KindName, 6> kKindNames{{{ScheduleKind::GPipe, "gpipe"},
                                               {ScheduleKind::OneFOneB, "1f1b"},
                                               {ScheduleKind::Interleaved, "interleaved"},
                                               {ScheduleKind::ZB1P, "zb1p"},
                                               {ScheduleKind::DualPipe, "dualpipe"},
                                               {ScheduleKind::DualPipeV, "dualpipev"}}};

const char* display_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::GPipe: return "GPipe";
    case ScheduleKind::OneFOneB: return "1F1B";
    case ScheduleKind::Interleaved: return "Interleaved 1F1B";
    case ScheduleKind::ZB1P: return "ZB1P (ZB-H1)";
    case ScheduleKind::DualPipe: return "DualPipe";
    case ScheduleKind::DualPipeV: return "DualPipeV";
  }
  return "?";
}

void check_duration(const char* name, double v) {
  if (!std::isfinite(v) || v < 0.0)
    throw std::invalid_argument(fmt::format("--{} must be a finite number >= 0, got {}", name, v));
  // Time holds int64 picoseconds: keep every single duration far inside it.
  if (v > 1e6) throw std::invalid_argument(fmt::format("--{} must be <= 1e6 units, got {}", name, v));
}

// The published bubble of `kind` at these durations (input units).
BubbleFormula formula_of(const StudyParams& p, int stages) {
  const double pp = p.ranks;
  const double fb = p.fb.value_or(p.f + p.b);
  BubbleFormula out;
  const std::string p2p_note = p.p2p > 0.0 ? " The formula assumes zero transfer time; --p2p is not zero here." : "";
  switch (p.kind) {
    case ScheduleKind::GPipe:
      out.name = "(PP-1)(F+B)";
      out.bubble = (pp - 1.0) * (p.f + p.b);
      out.note = "GPipe (Huang et al. 2019): all forwards, then all backwards; every rank idles (PP-1)(F+B)." +
                 p2p_note;
      break;
    case ScheduleKind::OneFOneB:
      out.name = "(PP-1)(F+B)";
      out.bubble = (pp - 1.0) * (p.f + p.b);
      out.note = "DeepSeek-V3 report Table 2 / DualPipe README; exact on every rank with zero transfer time." +
                 p2p_note;
      break;
    case ScheduleKind::Interleaved:
      out.name = "(PP-1)(f+b)";
      out.bubble = (pp - 1.0) * (p.f + p.b);
      out.note = fmt::format(
          "Megatron-LM interleaved 1F1B (Narayanan et al. 2021): (PP-1)(F+B)/v with F, B of a whole rank's "
          "layers, i.e. (PP-1)(f+b) with f, b of one of the v={} chunks; holds when micro-batches are a "
          "multiple of PP.{}",
          p.virtual_stages, p2p_note);
      break;
    case ScheduleKind::ZB1P:
      out.name = "(PP-1)(F+B-2W)";
      out.bubble = (pp - 1.0) * (p.f + p.b - 2.0 * p.w);
      out.note = fmt::format(
          "DeepSeek-V3 report Table 2 / DualPipe README (ZB-H1, Qi et al. 2023). Exact on every rank when "
          "W <= min(F, B-W) (here W = {}, F = {}, B-W = {}{}); otherwise every rank idles "
          "(PP-1)(F + (B-W) - min(W, F, B-W)) and the formula undercounts.{}",
          p.w, p.f, p.b - p.w, p.w <= std::min(p.f, p.b - p.w) ? ", so it applies" : ", so it does not", p2p_note);
      break;
    case ScheduleKind::DualPipe:
    case ScheduleKind::DualPipeV: {
      const double PP = stages;  // pipeline stages: = devices for DualPipe, 2 x devices for DualPipeV
      out.name = p.kind == ScheduleKind::DualPipe ? "(PP/2-1)(F&B+B-3W)" : "(PP/2-1)(F&B+B-3W), PP = 2 x devices";
      out.bubble = (PP / 2.0 - 1.0) * (fb + p.b - 3.0 * p.w);
      const bool exact_case = std::abs((p.b - p.w) - p.f) <= 1e-12 * std::max(1.0, p.f) && p.w <= fb - p.f;
      out.note = fmt::format(
          "DeepSeek-V3 report Table 2 / DualPipe README. It is the bubble of the {} only when B-W equals F and "
          "W <= F&B-F (here B-W = {}, F = {}, W = {}, F&B-F = {}{}); the other ranks idle less (more when "
          "F&B > F+B); otherwise the simulated bubble, not the formula, is the truth.{}",
          p.kind == ScheduleKind::DualPipe ? "central ranks" : "two deepest devices", p.b - p.w, p.f, p.w, fb - p.f,
          exact_case ? ", so it applies" : ", so it does not", p2p_note);
      break;
    }
  }
  return out;
}

std::string num(double v) {
  if (v == 0.0) return "0";  // no "-0"
  return fmt::format("{:.6g}", v);
}

std::string mb_token(const ChunkRef& c, bool with_stage) {
  std::string t = fmt::format("{}{}", c.microbatch, c.direction == 0 ? 'a' : 'b');
  if (with_stage) t += fmt::format("@{}", c.stage);
  return t;
}

Json chunk_json(const ChunkRef& c) {
  Json j;
  j["microbatch"] = c.microbatch;
  j["direction"] = c.direction;
  j["stage"] = c.stage;
  return j;
}

}  // namespace

std::optional<ScheduleKind> parse_schedule_kind(std::string_view name) {
  std::string s;
  for (char c : name) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "zb-h1" || s == "zbh1") s = "zb1p";
  for (const auto& kn : kKindNames)
    if (s == kn.name) return kn.kind;
  return std::nullopt;
}

const char* schedule_kind_cli_name(ScheduleKind kind) {
  for (const auto& kn : kKindNames)
    if (kn.kind == kind) return kn.name;
  return "?";
}

std::string schedule_kind_cli_names() {
  std::string out;
  for (const auto& kn : kKindNames) {
    if (!out.empty()) out += ", ";
    out += kn.name;
  }
  return out;
}

std::string op_token(const Schedule& s, const ScheduleOp& op) {
  const bool st = s.stages > s.ranks;
  switch (op.type) {
    case ChunkOpType::F: return "F" + mb_token(op.fwd, st);
    case ChunkOpType::B: return "B" + mb_token(op.bwd, st);
    case ChunkOpType::BW: return "BW" + mb_token(op.bwd, st);
    case ChunkOpType::W: return "W" + mb_token(op.bwd, st);
    case ChunkOpType::FB: return "F" + mb_token(op.fwd, st) + "+BW" + mb_token(op.bwd, st);
  }
  return "?";
}

std::string rank_sequence(const Schedule& s, int rank) {
  std::string out;
  for (const auto& op : s.per_rank.at(static_cast<std::size_t>(rank))) {
    if (!out.empty()) out += ' ';
    out += op_token(s, op);
  }
  return out;
}

StudyResult run_study(const StudyParams& params) {
  StudyParams p = params;
  if (p.ranks < 1) throw std::invalid_argument(fmt::format("--ranks must be >= 1, got {}", p.ranks));
  if (p.microbatches < 1)
    throw std::invalid_argument(fmt::format("--microbatches must be >= 1, got {}", p.microbatches));
  if (p.virtual_stages < 0)
    throw std::invalid_argument(fmt::format("--virtual-stages must be >= 1, got {}", p.virtual_stages));
  if (p.virtual_stages == 0) p.virtual_stages = p.kind == ScheduleKind::Interleaved ? 2 : 1;
  if (p.kind != ScheduleKind::Interleaved && p.virtual_stages != 1)
    throw std::invalid_argument(fmt::format("--virtual-stages applies to the interleaved schedule only (got {} for {})",
                                            p.virtual_stages, schedule_kind_cli_name(p.kind)));
  // Bounds that keep the op lists and the drawing to a sane size.
  constexpr std::int64_t kMaxOps = 4'000'000;
  if (p.ranks > 4096 || p.microbatches > 1'000'000 || p.virtual_stages > 1024 ||
      static_cast<std::int64_t>(p.ranks) * p.virtual_stages * p.microbatches * 3 > kMaxOps)
    throw std::invalid_argument(fmt::format(
        "schedule too large to study: {} ranks x {} virtual stages x {} micro-batches (at most {} ops)", p.ranks,
        p.virtual_stages, p.microbatches, kMaxOps));
  check_duration("f", p.f);
  check_duration("b", p.b);
  check_duration("w", p.w);
  if (p.fb) check_duration("fb", *p.fb);
  check_duration("p2p", p.p2p);
  if (p.b < p.w)
    throw std::invalid_argument(fmt::format(
        "--b (full backward, {}) must be >= --w (its weight-gradient part, {}): the input backward is b - w", p.b,
        p.w));
  if (!p.fb) p.fb = p.f + p.b;

  StudyResult r;
  r.schedule = model::make_schedule(p.kind, p.ranks, p.microbatches, p.virtual_stages);

  const Time tf = to_time(p.f), tb = to_time(p.b), tw = to_time(p.w), tfb = to_time(*p.fb), tc = to_time(p.p2p);
  const Time tbin = tb - tw;
  model::ExecCosts costs;
  costs.duration = [=](const ScheduleOp& op, int) {
    switch (op.type) {
      case ChunkOpType::F: return tf;
      case ChunkOpType::B: return tbin;
      case ChunkOpType::BW: return tb;
      case ChunkOpType::W: return tw;
      case ChunkOpType::FB: return tfb;
    }
    return Time::zero();
  };
  if (tc > Time::zero()) costs.p2p = [tc](int, int, bool) { return tc; };
  r.exec = model::execute(r.schedule, costs);
  r.formula = formula_of(p, r.schedule.stages);
  r.params = p;
  return r;
}

Json study_json(const StudyResult& r) {
  const auto& p = r.params;
  const auto& s = r.schedule;
  Json j;
  j["kind"] = schedule_kind_cli_name(p.kind);
  j["ranks"] = s.ranks;
  j["stages"] = s.stages;
  j["microbatches"] = s.microbatches;
  j["virtual_stages"] = p.virtual_stages;
  j["durations"] = {{"f", p.f}, {"b", p.b}, {"w", p.w}, {"fb", p.fb.value_or(p.f + p.b)}, {"p2p", p.p2p}};
  j["makespan"] = to_units(r.exec.makespan);
  Json bubble = Json::array(), busy = Json::array(), peak = Json::array(), stash = Json::array();
  for (std::size_t k = 0; k < r.exec.bubble_per_rank.size(); ++k) {
    bubble.push_back(to_units(r.exec.bubble_per_rank[k]));
    busy.push_back(to_units(r.exec.busy_per_rank[k]));
    peak.push_back(r.exec.peak_activations_per_rank[k]);
    stash.push_back(k < r.exec.peak_deferred_weight_per_rank.size() ? r.exec.peak_deferred_weight_per_rank[k] : 0);
  }
  j["bubble_per_rank"] = bubble;
  j["busy_per_rank"] = busy;
  j["peak_activations_per_rank"] = peak;
  j["peak_deferred_weight_per_rank"] = stash;
  Json f;
  f["name"] = r.formula.name;
  f["bubble"] = r.formula.bubble ? Json(*r.formula.bubble) : Json(nullptr);
  f["note"] = r.formula.note;
  j["formula"] = f;
  Json ranks_ops = Json::array();
  for (std::size_t rank = 0; rank < s.per_rank.size(); ++rank) {
    Json ops = Json::array();
    for (std::size_t i = 0; i < s.per_rank[rank].size(); ++i) {
      const ScheduleOp& op = s.per_rank[rank][i];
      const auto& t = r.exec.timeline[rank][i];
      Json o;
      o["type"] = model::to_string(op.type);
      o["text"] = op_token(s, op);
      if (op.type == ChunkOpType::FB) {
        o["forward"] = chunk_json(op.fwd);
        o["backward"] = chunk_json(op.bwd);
      } else {
        const ChunkRef& c = op.type == ChunkOpType::F ? op.fwd : op.bwd;
        o["microbatch"] = c.microbatch;
        o["direction"] = c.direction;
        o["stage"] = c.stage;
      }
      o["phase"] = op.phase;
      o["start"] = to_units(t.start);
      o["end"] = to_units(t.end);
      ops.push_back(std::move(o));
    }
    ranks_ops.push_back(std::move(ops));
  }
  j["ranks_ops"] = std::move(ranks_ops);
  return j;
}

std::string study_text(const StudyResult& r) {
  const auto& p = r.params;
  const auto& s = r.schedule;
  std::string out;
  out += fmt::format("{} schedule: {} ranks, {} stages, {} micro-batches", display_name(p.kind), s.ranks, s.stages,
                     s.microbatches);
  if (s.directions() == 2) out += fmt::format(" ({} per direction)", s.microbatches_per_direction());
  if (p.kind == ScheduleKind::Interleaved) out += fmt::format(", {} virtual stages per rank", p.virtual_stages);
  out += "\n";
  out += fmt::format("durations: f={} b={} w={} fb={} p2p={} (input backward b-w={})\n", num(p.f), num(p.b),
                     num(p.w), num(p.fb.value_or(p.f + p.b)), num(p.p2p), num(p.b - p.w));
  out += fmt::format("makespan: {}\n", num(to_units(r.exec.makespan)));
  out += fmt::format("formula {}: {}\n  {}\n", r.formula.name, r.formula.bubble ? num(*r.formula.bubble) : "n/a",
                     r.formula.note);
  out += fmt::format("{:>6} {:>12} {:>12} {:>10} {:>10}\n", "rank", "busy", "bubble", "peak act.", "peak W");
  for (std::size_t k = 0; k < r.exec.busy_per_rank.size(); ++k)
    out += fmt::format("{:>6} {:>12} {:>12} {:>10} {:>10}\n", k, num(to_units(r.exec.busy_per_rank[k])),
                       num(to_units(r.exec.bubble_per_rank[k])), r.exec.peak_activations_per_rank[k],
                       k < r.exec.peak_deferred_weight_per_rank.size() ? r.exec.peak_deferred_weight_per_rank[k] : 0);
  out += "(peak act.: micro-batch chunks whose forward is done and input backward is not; peak W: chunks "
         "whose B is done and deferred W is not)\n";
  out += "ops (F3a = forward of micro-batch 3 in direction a, b the reverse direction; B input backward, "
         "W weight backward, BW full backward, F..+BW.. an overlapped pair";
  if (s.stages > s.ranks) out += "; @s = stage s";
  out += "):\n";
  for (int k = 0; k < s.ranks; ++k) out += fmt::format("rank {}: {}\n", k, rank_sequence(s, k));
  return out;
}

// ---------------------------------------------------------------------------
// SVG
// ---------------------------------------------------------------------------
namespace {

struct Rgb {
  int r, g, b;
};


// Colours of the DualPipe figure: orange forward, green backward, blue
// weight backward; the input-only backward is a paler yellow-green so it
// differs from the full backward. Each has a light shade (direction 0, or a
// rank's first model chunk) and a deeper one (direction 1, or its last chunk).
struct Palette {
  Rgb light, deep;
};

Palette palette(ChunkOpType t) {
  switch (t) {
    case ChunkOpType::F: return {{0xF4, 0xB1, 0x3E}, {0xC9, 0x7A, 0x0A}};
    case ChunkOpType::BW:
    case ChunkOpType::FB: return {{0x7F, 0xD3, 0x5A}, {0x3E, 0x94, 0x2A}};
    case ChunkOpType::B: return {{0xC6, 0xEA, 0x86}, {0x83, 0xA8, 0x33}};
    case ChunkOpType::W: return {{0x7D, 0xBD, 0xF8}, {0x2F, 0x73, 0xC4}};
  }
  return {{0x80, 0x80, 0x80}, {0x40, 0x40, 0x40}};
}

// Shade k of n, from 0 (light) to 1 (deep).
double depth(int k, int n) { return n <= 1 ? 0.0 : static_cast<double>(k) / static_cast<double>(n - 1); }

}  // namespace

std::string op_colour(ChunkOpType t, int shade, int shades) {
  const Palette pal = palette(t);
  const double d = depth(shade, shades);
  auto mix = [d](int a, int b) { return static_cast<int>(std::lround(a + (b - a) * d)); };
  return fmt::format("#{:02x}{:02x}{:02x}", mix(pal.light.r, pal.deep.r), mix(pal.light.g, pal.deep.g),
                     mix(pal.light.b, pal.deep.b));
}

const char* op_text_colour(int shade, int shades) { return depth(shade, shades) >= 0.5 ? "#ffffff" : "#000000"; }

namespace {

std::string f2(double v) {
  if (std::abs(v) < 0.005) return "0.00";  // no "-0.00"
  return fmt::format("{:.2f}", v);
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

// A "nice" tick step (1, 2 or 5 x 10^k) giving at most ~max_ticks ticks.
double tick_step(double span, int max_ticks) {
  if (span <= 0.0) return 1.0;
  const double raw = span / max_ticks;
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10.0 * p;
}

std::string study_svg(const StudyResult& r) {
  const auto& p = r.params;
  const auto& s = r.schedule;
  const double makespan = to_units(r.exec.makespan);

  // Shading: DualPipe's two directions; otherwise the position of a chunk's
  // stage among the stages its rank holds (DualPipeV's down and up legs of
  // the V, interleaved's virtual chunks).
  const bool by_direction = s.directions() == 2;
  int shades = by_direction ? 2 : 1;
  std::vector<std::vector<int>> rank_stages(static_cast<std::size_t>(s.ranks));
  if (!by_direction)
    for (int k = 0; k < s.ranks; ++k) {
      rank_stages[static_cast<std::size_t>(k)] = s.stages_of_rank(k);
      shades = std::max(shades, static_cast<int>(rank_stages[static_cast<std::size_t>(k)].size()));
    }
  auto shade_of = [&](const ChunkRef& c, int rank) {
    if (by_direction) return c.direction;
    const auto& st = rank_stages[static_cast<std::size_t>(rank)];
    const auto it = std::find(st.begin(), st.end(), c.stage);
    return it == st.end() ? 0 : static_cast<int>(it - st.begin());
  };

  // Layout (pixels).
  const double left = 100.0, top = 44.0, row_h = 28.0, right = 20.0;
  // Pixels per unit of time: ~1600 px wide, at least 16 px a unit (room for
  // two-digit numbers) unless that makes the drawing wider than 6000 px.
  const double px =
      makespan > 0.0 ? std::min(48.0, std::max(1600.0 / makespan, std::min(16.0, 6000.0 / makespan))) : 48.0;
  const double plot_w = std::max(makespan * px, 200.0);
  const double plot_h = row_h * s.ranks;
  const double axis_y = top + plot_h;
  const double legend_y = axis_y + 44.0;

  // Which op types occur, in the legend's order.
  std::array<bool, 5> present{};
  for (const auto& ops : s.per_rank)
    for (const auto& op : ops) present[static_cast<std::size_t>(op.type)] = true;
  const std::array<std::pair<ChunkOpType, const char*>, 5> legend_items{{{ChunkOpType::F, "Forward"},
                                                                         {ChunkOpType::BW, "Backward"},
                                                                         {ChunkOpType::B, "Backward for input"},
                                                                         {ChunkOpType::W, "Backward for weights"},
                                                                         {ChunkOpType::FB,
                                                                          "Overlapped forward & backward"}}};
  const double height = legend_y + 56.0;
  const double sw = 22.0, sh = 20.0;
  const int legend_shades = std::min(shades, 4);
  std::string shade_note;
  if (by_direction)
    shade_note = "lighter cells, black numbers: direction 0 (from Device 0); darker cells, white numbers: "
                 "direction 1 (from the last device)";
  else if (p.kind == ScheduleKind::DualPipeV)
    shade_note = "lighter cells, black numbers: the down leg of the V (stages 0..PP-1); darker cells, white "
                 "numbers: the up leg (stages PP..2PP-1)";
  else if (shades > 1)
    shade_note = fmt::format("shade: the rank's model chunk, lightest = chunk 0, darkest = chunk {}", shades - 1);
  // Widths of the legend row and of the note under it (estimated from the
  // character count), so the drawing is wide enough for them.
  double legend_w = 0.0;
  for (const auto& [type, name] : legend_items) {
    if (!present[static_cast<std::size_t>(type)]) continue;
    legend_w += legend_shades * (type == ChunkOpType::FB ? sw * 1.6 : sw) + 8.0 +
                7.6 * static_cast<double>(std::string(name).size()) + 26.0;
  }
  const double note_w = 6.8 * static_cast<double>(shade_note.size() + 48);
  const double width = left + std::max({plot_w, legend_w, note_w}) + right;

  std::string o;
  o += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\">\n",
      f2(width), f2(height));
  o += fmt::format("<rect class=\"background\" x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n",
                   f2(width), f2(height));
  // Title.
  std::string title = fmt::format("{}: {} devices, {} stages, {} micro-batches", display_name(p.kind), s.ranks,
                                  s.stages, s.microbatches);
  if (p.kind == ScheduleKind::Interleaved) title += fmt::format(", v={}", p.virtual_stages);
  title += fmt::format("  |  F={} B={} W={} F&amp;B={} p2p={}  |  makespan {}", num(p.f), num(p.b), num(p.w),
                       num(p.fb.value_or(p.f + p.b)), num(p.p2p), num(makespan));
  o += fmt::format("<text x=\"{}\" y=\"24.00\" font-size=\"16\" font-weight=\"bold\">{}</text>\n", f2(left), title);

  // Rows: label, white background, light unit grid.
  o += "<g class=\"rows\">\n";
  for (int k = 0; k < s.ranks; ++k) {
    const double y = top + row_h * k;
    o += fmt::format(
        "<text x=\"{}\" y=\"{}\" font-size=\"15\" font-weight=\"bold\" text-anchor=\"end\">Device {}</text>\n",
        f2(left - 8.0), f2(y + row_h / 2.0 + 5.0), k);
  }
  o += "</g>\n";
  const double units_step = tick_step(makespan, 20);
  if (makespan > 0.0 && makespan <= 2000.0 && px >= 6.0) {
    // Faint vertical lines every unit of time, as the figure's empty cells.
    o += "<g class=\"grid\" stroke=\"#d0d0d0\" stroke-width=\"0.5\">\n";
    for (int u = 1; u < static_cast<int>(std::ceil(makespan)); ++u)
      o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\n", f2(left + u * px), f2(top),
                       f2(axis_y));
    for (int k = 1; k < s.ranks; ++k)
      o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\"/>\n", f2(left), f2(top + row_h * k),
                       f2(left + makespan * px));
    o += "</g>\n";
  }

  // Ops: one rect of class "op" each; an FB gets a second rect for its
  // forward part (width in proportion F : B, as the figure draws it).
  const double fwd_share = (p.f + p.b) > 0.0 ? p.f / (p.f + p.b) : 0.5;
  o += "<g class=\"ops\" stroke=\"#000000\" stroke-width=\"1\">\n";
  for (int k = 0; k < s.ranks; ++k) {
    const double y = top + row_h * k;
    const auto& ops = s.per_rank[static_cast<std::size_t>(k)];
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const ScheduleOp& op = ops[i];
      const auto& t = r.exec.timeline[static_cast<std::size_t>(k)][i];
      const double x0 = left + to_units(t.start) * px;
      const double w = (to_units(t.end) - to_units(t.start)) * px;
      const bool fwd_only = op.type == ChunkOpType::F;
      const ChunkRef& main_chunk = fwd_only ? op.fwd : op.bwd;
      const int shade = shade_of(main_chunk, k);
      const ChunkOpType fill_type = op.type == ChunkOpType::FB ? ChunkOpType::BW : op.type;
      o += fmt::format("<g><title>rank {}: {} [{}] {} - {}</title>\n", k, xml_escape(model::describe(op)),
                       xml_escape(op.phase), num(to_units(t.start)), num(to_units(t.end)));
      o += fmt::format("<rect class=\"op\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\n", f2(x0),
                       f2(y), f2(w), f2(row_h), op_colour(fill_type, shade, shades));
      auto text_at = [&](double cx, double cw, int number, int sh) {
        const std::string txt = std::to_string(number);
        const double fs = std::clamp((cw - 2.0) / (0.62 * static_cast<double>(txt.size())), 5.0, 15.0);
        o += fmt::format(
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"middle\" stroke=\"none\" fill=\"{}\">{}</text>\n",
            f2(cx), f2(y + row_h / 2.0 + fs * 0.36), f2(fs), op_text_colour(sh, shades), txt);
      };
      if (op.type == ChunkOpType::FB) {
        const int fshade = shade_of(op.fwd, k);
        const double wf = w * fwd_share;
        o += fmt::format("<rect class=\"fb-forward\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\n",
                         f2(x0), f2(y), f2(wf), f2(row_h), op_colour(ChunkOpType::F, fshade, shades));
        text_at(x0 + wf / 2.0, wf, op.fwd.microbatch, fshade);
        text_at(x0 + wf + (w - wf) / 2.0, w - wf, op.bwd.microbatch, shade);
      } else {
        text_at(x0 + w / 2.0, w, main_chunk.microbatch, shade);
      }
      o += "</g>\n";
    }
  }
  o += "</g>\n";
  // Frame of the plot.
  o += fmt::format(
      "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#000000\" "
      "stroke-width=\"1.5\"/>\n",
      f2(left), f2(top), f2(makespan * px), f2(plot_h));

  // Time axis: ticks and "Time ->".
  o += "<g class=\"axis\" font-size=\"11\" fill=\"#404040\">\n";
  if (makespan > 0.0) {
    for (int i = 0;; ++i) {
      const double u = i * units_step;
      if (u > makespan + 1e-9) break;
      const double x = left + u * px;
      o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#404040\"/>\n", f2(x), f2(axis_y),
                       f2(axis_y + 4.0));
      o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", f2(x), f2(axis_y + 16.0),
                       num(u));
    }
  }
  o += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"15\" font-weight=\"bold\" fill=\"#000000\" "
                   "text-anchor=\"end\">Time \xE2\x86\x92</text>\n",
                   f2(left - 8.0), f2(axis_y + 16.0));
  o += "</g>\n";

  // Legend: for each op type present, a swatch per shade and its name.
  o += "<g class=\"legend\" font-size=\"14\">\n";
  double lx = left;
  for (const auto& [type, name] : legend_items) {
    if (!present[static_cast<std::size_t>(type)]) continue;
    for (int k = 0; k < legend_shades; ++k) {
      const int shade = legend_shades == shades ? k : (k * (shades - 1)) / (legend_shades - 1);
      if (type == ChunkOpType::FB) {
        o += fmt::format(
            "<rect class=\"legend-swatch\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
            "stroke=\"#000000\"/>\n",
            f2(lx), f2(legend_y), f2(sw * 1.6), f2(sh), op_colour(ChunkOpType::BW, shade, shades));
        o += fmt::format(
            "<rect class=\"legend-swatch\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
            "stroke=\"#000000\"/>\n",
            f2(lx), f2(legend_y), f2(sw * 1.6 * fwd_share), f2(sh), op_colour(ChunkOpType::F, shade, shades));
        lx += sw * 1.6;
      } else {
        o += fmt::format(
            "<rect class=\"legend-swatch\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
            "stroke=\"#000000\"/>\n",
            f2(lx), f2(legend_y), f2(sw), f2(sh), op_colour(type, shade, shades));
        lx += sw;
      }
    }
    o += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", f2(lx + 8.0), f2(legend_y + 15.0), xml_escape(name));
    lx += 8.0 + 7.6 * static_cast<double>(std::string(name).size()) + 26.0;
  }
  o += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"13\" fill=\"#404040\">{}Numbers: micro-batch ids"
                   "{}.</text>\n",
                   f2(left), f2(legend_y + 42.0), shade_note.empty() ? "" : xml_escape(shade_note) + ". ",
                   by_direction ? " (counted per direction)" : "");
  o += "</g>\n";
  o += "</svg>\n";
  return o;
}

}  // namespace trainsim::app
