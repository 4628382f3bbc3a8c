// The HTML page of a report (html_report.hpp). Layout: a style sheet (screen
// and print), headline figures, then one section per question a reader asks:
// where does the step go (timeline), what is the critical rank made of
// (breakdown), does it fit (memory), what does the run cost, what bounded the
// cluster, what does each layer kind do, and on which calibration and
// assumptions all of it rests. Charts are inline SVG scaled to the page width
// (viewBox), so they read on a laptop screen and on A4 alike.
#include "trainsim/app/html_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "trainsim/app/schedule_study.hpp"

namespace trainsim::app {

using model::ChunkOpType;
using nlohmann::json;

namespace {

// Screen: cards on a light grey page, up to 1280 px wide. Print: A4
// landscape, no cards, colours kept, sections not split when avoidable.
constexpr const char* kStyle = R"css(
*{box-sizing:border-box;-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0;background:#f4f4f1;color:#1b1b1b;font:14px/1.45 "DejaVu Sans",Helvetica,Arial,sans-serif}
main{max-width:1280px;margin:0 auto;padding:12px 20px 28px}
h1{font-size:22px;margin:6px 0 0}h2{font-size:17px;margin:0 0 8px}h3{font-size:14px;margin:12px 0 4px}
.subtitle{color:#555;margin:2px 0 8px}
nav a{color:#2f5d9a;margin-right:12px;text-decoration:none;font-size:13px}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px;margin:10px 0}
.figure{background:#fff;border:1px solid #d6d6d0;border-radius:6px;padding:8px 12px}
.figure .value{font-size:21px;font-weight:600}.figure .caption{color:#555;font-size:12px}
section{background:#fff;border:1px solid #d6d6d0;border-radius:6px;padding:12px 16px;margin:12px 0;overflow-x:auto}
p{margin:4px 0 8px}.note{color:#555;font-size:12.5px}
svg.chart{display:block;width:100%;height:auto}
svg text{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif}
table{border-collapse:collapse;font-size:12.5px;margin:4px 0 8px}
th,td{padding:2px 8px;border-bottom:1px solid #e6e6e2;text-align:left;vertical-align:top}
th{background:#f0f0ec;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td.n{white-space:nowrap}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:4px 24px}.grid2>*{min-width:0;overflow-x:auto}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12.5px;margin:6px 0}
.swatch{display:inline-block;width:14px;height:11px;margin-right:5px;border:1px solid #333;vertical-align:-1px}
.critical{font-weight:700}.bad{color:#b00020;font-weight:700}.good{color:#1b7a2f;font-weight:700}
pre{font-size:11.5px;background:#f7f7f4;padding:8px;overflow:auto}
.part-0{fill:#f4b13e;background:#f4b13e}.part-1{fill:#d62728;background:#d62728}
.part-2{fill:#9467bd;background:#9467bd}.part-3{fill:#8c564b;background:#8c564b}
.part-4{fill:#555555;background:#555555}.part-5{fill:#17becf;background:#17becf}
.part-6{fill:#d9d9d9;background:#d9d9d9}.part-7{fill:#2f73c4;background:#2f73c4}
.part-8{fill:#bcbd22;background:#bcbd22}.part-9{fill:#7fd35a;background:#7fd35a}
.idle-key{background:repeating-linear-gradient(135deg,#fff 0 2px,#bdbdbd 2px 3px)}
@page{size:A4 landscape;margin:10mm}
@media print{body{background:#fff;font-size:10pt}main{max-width:none;padding:0}nav{display:none}
section{border:none;padding:0;margin:8px 0 14px}.figure{border-color:#999}
.figures{grid-template-columns:repeat(7,1fr)}svg.chart,tr,.figures,.legend{break-inside:avoid}h2,h3{break-after:avoid}}
)css";

std::string fixed(double v, int decimals) {
  if (std::abs(v) < 0.5 * std::pow(10.0, -decimals)) v = 0.0;  // no "-0.000"
  return fmt::format("{:.{}f}", v, decimals);
}

// Whole number with thousands separators: 2526380.4 -> "2,526,380".
std::string grouped(double v) {
  const std::string digits = fmt::format("{:.0f}", std::abs(v));
  std::string o;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) o += ',';
    o += digits[i];
  }
  return (v < 0 && digits != "0" ? "-" : "") + o;
}

double num(const json& j, const char* key) { return j.at(key).get<double>(); }
std::string text(const json& j, const char* key) { return xml_escape(j.at(key).get<std::string>()); }

// A scalar of the report exactly as the JSON holds it (strings unquoted).
std::string scalar(const json& v) {
  if (v.is_string()) return xml_escape(v.get<std::string>());
  if (v.is_number_float()) return fmt::format("{:.6g}", v.get<double>());
  return xml_escape(v.dump());
}

std::string swatch(const std::string& css_class, const std::string& fill, const std::string& label) {
  const std::string style = fill.empty() ? "" : fmt::format(" style=\"background:{}\"", fill);
  return fmt::format("<span><i class=\"swatch {}\"{}></i>{}</span>", css_class, style, label);
}

}  // namespace

// ---------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------

std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       const std::vector<bool>& numeric, const std::string& css_class) {
  auto is_num = [&](std::size_t c) { return c < numeric.size() && numeric[c]; };
  std::string o = css_class.empty() ? "<table>" : fmt::format("<table class=\"{}\">", css_class);
  o += "<thead><tr>";
  for (std::size_t c = 0; c < header.size(); ++c) o += fmt::format("<th{}>{}</th>", is_num(c) ? " class=\"n\"" : "", header[c]);
  o += "</tr></thead><tbody>\n";
  for (const auto& row : rows) {
    o += "<tr>";
    for (std::size_t c = 0; c < row.size(); ++c) o += fmt::format("<td{}>{}</td>", is_num(c) ? " class=\"n\"" : "", row[c]);
    o += "</tr>\n";
  }
  return o + "</tbody></table>\n";
}

namespace {

// Geometry of a bar chart (viewBox units).
struct BarLayout {
  double width = 1000, left = 150, right = 200, top = 8, pitch = 24, bar_h = 17;
  double x(double v, double max) const { return left + (max > 0 ? v / max : 0) * (width - left - right); }
};

void bar_axis(const BarChart& c, const BarLayout& l, double y, std::string& o) {
  const double step = tick_step(c.scale_max, 8);
  o += "<g class=\"axis\" font-size=\"11\" fill=\"#444\">\n";
  for (int i = 0; i * step <= c.scale_max * (1 + 1e-9); ++i) {
    const double x = l.x(i * step, c.scale_max);
    o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#999\"/>", x, y, y + 4);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:g}</text>\n", x, y + 15, i * step);
  }
  o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-weight=\"bold\">{} \xE2\x86\x92</text></g>\n",
                   l.left - 8, y + 15, xml_escape(c.unit));
}

}  // namespace

std::string stacked_bar_svg(const BarChart& c) {
  BarLayout l;
  if (c.marker >= 0) l.top = 22;
  const double plot_bottom = l.top + l.pitch * static_cast<double>(c.rows.size());
  const double height = plot_bottom + 26;
  std::string o = fmt::format(
      "<svg id=\"{0}\" class=\"chart bars\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {1:.0f} {2:.0f}\" "
      "width=\"{1:.0f}\" height=\"{2:.0f}\" role=\"img\">\n",
      xml_escape(c.id), l.width, height);
  for (std::size_t i = 0; i < c.rows.size(); ++i) {
    const BarRow& row = c.rows[i];
    const double y = l.top + l.pitch * static_cast<double>(i);
    o += fmt::format("<g class=\"bar-row\"><text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\" text-anchor=\"end\">{}</text>\n",
                     l.left - 8, y + l.bar_h - 4, row.label);
    double at = 0;
    for (const BarPart& p : row.parts) {
      if (p.value <= 0) continue;
      o += fmt::format("<rect class=\"bar-part {}\" x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\">"
                       "<title>{}: {}</title></rect>\n",
                       p.css_class, l.x(at, c.scale_max), y, l.x(at + p.value, c.scale_max) - l.x(at, c.scale_max),
                       l.bar_h, xml_escape(p.label), p.shown);
      at += p.value;
    }
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\">{}</text></g>\n",
                     l.x(c.scale_max, c.scale_max) + 8, y + l.bar_h - 4, row.total_text);
  }
  if (c.marker >= 0) {
    const double x = l.x(c.marker, c.scale_max);
    o += fmt::format("<g class=\"marker\"><line x1=\"{0:.2f}\" y1=\"{1:.1f}\" x2=\"{0:.2f}\" y2=\"{2:.1f}\" "
                     "stroke=\"#b00020\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>"
                     "<text x=\"{0:.2f}\" y=\"14\" font-size=\"12\" text-anchor=\"middle\" fill=\"#b00020\">{3}</text></g>\n",
                     x, l.top - 4, plot_bottom, c.marker_text);
  }
  bar_axis(c, l, plot_bottom, o);
  o += "</svg>\n";
  if (!c.legend || c.rows.empty()) return o;
  o += "<div class=\"legend\">";
  for (const BarPart& p : c.rows.front().parts) o += swatch(p.css_class, "", xml_escape(p.label));
  return o + "</div>\n";
}

HtmlPage::HtmlPage(std::string title, std::string subtitle) : title_(std::move(title)), subtitle_(std::move(subtitle)) {}

void HtmlPage::figure(const std::string& value, const std::string& caption) {
  figures_ += fmt::format("<div class=\"figure\"><div class=\"value\">{}</div><div class=\"caption\">{}</div></div>\n",
                          value, caption);
}

void HtmlPage::section(const std::string& id, const std::string& heading, const std::string& body) {
  toc_ += fmt::format("<a href=\"#{}\">{}</a>", id, heading);
  sections_ += fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n{}</section>\n", id, heading, body);
}

std::string HtmlPage::str() const {
  // The policy forbids every fetch: the page cannot reach the network even
  // if a later edit adds a link to a resource by mistake.
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"generator\" content=\"trainsim\">\n<title>{0}</title>\n<style>{1}</style></head>\n<body><main>\n"
      "<header><h1>{0}</h1><p class=\"subtitle\">{2}</p><nav>{3}</nav></header>\n"
      "<div class=\"figures\">\n{4}</div>\n{5}"
      "<footer class=\"note\">Made by trainsim. Every number on this page is a number of the JSON report "
      "(<code>--report</code>), rounded for reading.</footer>\n</main></body></html>\n",
      title_, kStyle, subtitle_, toc_, figures_, sections_);
}

// ---------------------------------------------------------------------------
// The timeline: every pipeline rank's replica 0 over one step
// ---------------------------------------------------------------------------

namespace {

struct TimelineLayout {
  double width = 1200, left = 112, right = 14, top = 8, band = 20, lane = 4, pitch = 36;
  double step_s = 1;
  double x(double s) const { return left + s / step_s * (width - left - right); }
  double px_per_s() const { return (width - left - right) / step_s; }
  double y(int rank) const { return top + pitch * rank; }
};

double secs(Time t) { return t.to_seconds(); }

// Stretches [start, end) in seconds merged when closer than `tol`.
using Stretches = std::vector<std::pair<double, double>>;
Stretches merge(Stretches s, double tol) {
  std::sort(s.begin(), s.end());
  Stretches out;
  for (const auto& [a, b] : s) {
    if (!out.empty() && a <= out.back().second + tol) out.back().second = std::max(out.back().second, b);
    else out.emplace_back(a, b);
  }
  return out;
}

// One <g> of rects (a title for all of them: thousands of flows would
// otherwise make the page megabytes).
void stretch_rects(const Stretches& s, const TimelineLayout& l, double y, double h, const std::string& cls,
                   const std::string& title, std::string& o) {
  if (s.empty()) return;
  o += fmt::format("<g class=\"{}\"><title>{}</title>", cls, title);
  for (const auto& [a, b] : s)
    o += fmt::format("<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\"/>", l.x(a), y,
                     std::max(0.6, l.x(b) - l.x(a)), h);
  o += "</g>\n";
}

// Shade of a chunk as the schedule SVG shades it: DualPipe's direction, or
// the chunk's position among the stages its rank holds.
int shade_of(const model::Schedule& s, const model::ChunkRef& c, int rank) {
  if (s.directions() == 2) return c.direction;
  const auto st = s.stages_of_rank(rank);
  const auto it = std::find(st.begin(), st.end(), c.stage);
  return it == st.end() ? 0 : static_cast<int>(it - st.begin());
}

int shade_count(const model::Schedule& s) {
  if (s.directions() == 2) return 2;
  int n = 1;
  for (int r = 0; r < s.ranks; ++r) n = std::max(n, static_cast<int>(s.stages_of_rank(r).size()));
  return n;
}

void cell_number(double cx, double w, double y, const TimelineLayout& l, int mb, const char* colour, std::string& o) {
  if (w < 11) return;
  o += fmt::format("<text x=\"{:.2f}\" y=\"{:.1f}\" font-size=\"9.5\" text-anchor=\"middle\" fill=\"{}\">{}</text>",
                   cx, y + l.band / 2 + 3.5, colour, mb);
}

// The chunk ops of one rank as the cluster execution ran them.
void rank_ops(const Simulation& sim, int rank, const TimelineLayout& l, std::string& o) {
  const model::StepResult& st = sim.step;
  const model::Schedule& s = st.schedule;
  const int shades = shade_count(s);
  const double y = l.y(rank);
  const auto& ops = s.per_rank[static_cast<std::size_t>(rank)];
  for (const auto& t : st.exec.timeline[static_cast<std::size_t>(rank)]) {
    const model::ScheduleOp& op = ops[static_cast<std::size_t>(t.index)];
    const bool fb = op.type == ChunkOpType::FB;
    const model::ChunkRef& main = op.type == ChunkOpType::F ? op.fwd : op.bwd;
    const int sh = shade_of(s, main, rank);
    const double x0 = l.x(secs(t.start)), w = l.x(secs(t.end)) - x0;
    o += fmt::format("<g class=\"op op-{}\"><title>rank {}: {} [{}]</title>", model::to_string(op.type), rank,
                     xml_escape(model::describe(op)), xml_escape(op.phase));
    o += fmt::format("<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" fill=\"{}\"/>", x0, y, w, l.band,
                     op_colour(fb ? ChunkOpType::BW : op.type, sh, shades));
    double wf = 0;
    if (fb) {  // forward part drawn left, in proportion of the two chunks' times
      const auto& fs = st.stages[static_cast<std::size_t>(op.fwd.stage)];
      const auto& bs = st.stages[static_cast<std::size_t>(op.bwd.stage)];
      const double f = secs(fs.forward), b = secs(bs.backward_full);
      wf = f + b > 0 ? w * f / (f + b) : w / 2;
      const int fsh = shade_of(s, op.fwd, rank);
      o += fmt::format("<rect class=\"fb-forward\" x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" fill=\"{}\"/>",
                       x0, y, wf, l.band, op_colour(ChunkOpType::F, fsh, shades));
      cell_number(x0 + wf / 2, wf, y, l, op.fwd.microbatch, op_text_colour(fsh, shades), o);
    }
    cell_number(x0 + wf + (w - wf) / 2, w - wf, y, l, main.microbatch, op_text_colour(sh, shades), o);
    o += "</g>\n";
  }
}

const char* flow_class(model::CommKind k) {
  switch (k) {
    case model::CommKind::None: return "flow flow-p2p part-4";
    case model::CommKind::EpDispatch: return "flow flow-ep-dispatch part-1";
    case model::CommKind::EpCombine: return "flow flow-ep-combine part-2";
    case model::CommKind::TpAllReduce:
    case model::CommKind::TpAllGather:
    case model::CommKind::TpReduceScatter: return "flow flow-tp part-3";
    default: return "flow flow-dp part-5";
  }
}

bool is_dp(model::CommKind k) {
  return k == model::CommKind::DpReduceScatter || k == model::CommKind::DpAllGather || k == model::CommKind::DpAllReduce;
}

// With a recorded simulation: the tail (gradient synchronisation after the
// rank's last op, to its last data-parallel flow) on the chunk band, and
// the rank's flows on two thin lanes under it (pipeline transfers;
// collectives, with the data-parallel ones ZeRO-3 or overlap_grad_reduce
// run during the pipeline), merged where closer than a pixel.
void rank_flows(const Simulation& sim, int rank, const TimelineLayout& l, std::string& o) {
  const double tol = 1.0 / l.px_per_s();
  const auto& ops = sim.step.exec.timeline[static_cast<std::size_t>(rank)];
  const double pipeline_end = ops.empty() ? 0.0 : secs(ops.back().end);
  Stretches tail;
  std::vector<std::pair<std::string, Stretches>> lanes;
  for (const auto& t : sim.step.transfers) {
    if (t.rank != rank) continue;
    if (is_dp(t.kind) && secs(t.end) > pipeline_end) tail.emplace_back(std::max(secs(t.start), pipeline_end), secs(t.end));
    const std::string cls = flow_class(t.kind);
    auto it = std::find_if(lanes.begin(), lanes.end(), [&](const auto& p) { return p.first == cls; });
    if (it == lanes.end()) it = lanes.insert(lanes.end(), {cls, {}});
    it->second.emplace_back(secs(t.start), secs(t.end));
  }
  const double y = l.y(rank);
  stretch_rects(merge(tail, 1e9), l, y, l.band, "tail part-7", "data-parallel gradient synchronisation", o);
  std::sort(lanes.begin(), lanes.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [cls, s] : lanes) {
    const bool p2p = cls.find("p2p") != std::string::npos;
    const double ly = y + l.band + 1.5 + (p2p ? 0 : l.lane + 1);
    stretch_rects(merge(s, tol), l, ly, l.lane, cls, p2p ? "pipeline transfers" : "collective flows", o);
  }
}

void timeline_axis(const TimelineLayout& l, int ranks, std::string& o) {
  const double y = l.y(ranks) - 6;
  const double step = tick_step(l.step_s, 12);
  o += "<g class=\"axis\" font-size=\"11\" fill=\"#444\">\n";
  for (int i = 0; i * step <= l.step_s * (1 + 1e-9); ++i) {
    const double x = l.x(i * step);
    o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#bbb\" stroke-width=\"0.6\"/>",
                     x, l.top, y + 4);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:g}</text>\n", x, y + 16, i * step);
  }
  o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-weight=\"bold\">time (s) \xE2\x86\x92</text></g>\n",
                   l.left - 8, y + 16);
}

std::string timeline_svg(const json& report, const Simulation& sim) {
  TimelineLayout l;
  l.step_s = std::max(num(report, "step_time_s"), 1e-12);
  const int ranks = sim.step.schedule.ranks;
  const int critical = report.at("breakdown").at("rank").get<int>();
  const double height = l.y(ranks) + 18;
  std::string o = fmt::format(
      "<svg id=\"timeline\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {0:.0f} {1:.0f}\" "
      "width=\"{0:.0f}\" height=\"{1:.0f}\" role=\"img\">\n"
      "<defs><pattern id=\"idle-hatch\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\" "
      "patternTransform=\"rotate(45)\"><rect width=\"4\" height=\"4\" fill=\"#fff\"/>"
      "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"4\" stroke=\"#bdbdbd\" stroke-width=\"1.2\"/></pattern></defs>\n",
      l.width, height);
  timeline_axis(l, ranks, o);
  for (int r = 0; r < ranks; ++r) {
    const double y = l.y(r);
    o += fmt::format("<g class=\"rank\" id=\"rank-{}\"><text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\" text-anchor=\"end\"{}>"
                     "{}rank {}</text>\n",
                     r, l.left - 8, y + l.band - 5, r == critical ? " class=\"critical\" font-weight=\"bold\"" : "",
                     r == critical ? "\xE2\x96\xB6 " : "", r);
    o += fmt::format("<rect class=\"idle\" x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" fill=\"url(#idle-hatch)\" "
                     "stroke=\"#999\" stroke-width=\"0.5\"><title>idle</title></rect>\n",
                     l.x(0), y, l.x(l.step_s) - l.x(0), l.band);
    o += "<g class=\"ops\" stroke=\"#222\" stroke-width=\"0.35\">\n";
    rank_ops(sim, r, l, o);
    o += "</g>\n";
    rank_flows(sim, r, l, o);
    o += "</g>\n";
  }
  return o + "</svg>\n";
}

std::string timeline_legend(const Simulation& sim) {
  const model::Schedule& s = sim.step.schedule;
  const int shades = shade_count(s);
  bool present[5] = {};
  for (const auto& ops : s.per_rank)
    for (const auto& op : ops) present[static_cast<int>(op.type)] = true;
  const std::pair<ChunkOpType, const char*> items[] = {{ChunkOpType::F, "forward"},
                                                       {ChunkOpType::BW, "backward (input and weights)"},
                                                       {ChunkOpType::B, "backward for input"},
                                                       {ChunkOpType::W, "backward for weights"},
                                                       {ChunkOpType::FB, "overlapped forward &amp; backward pair"}};
  std::string o = "<div class=\"legend\">";
  for (const auto& [t, name] : items)
    if (present[static_cast<int>(t)]) {
      const ChunkOpType fill = t == ChunkOpType::FB ? ChunkOpType::BW : t;
      std::string keys;
      if (t == ChunkOpType::FB) keys += fmt::format("<i class=\"swatch\" style=\"background:{}\"></i>", op_colour(ChunkOpType::F, 0, shades));
      o += "<span>" + keys + fmt::format("<i class=\"swatch\" style=\"background:{}\"></i>{}</span>", op_colour(fill, 0, shades), name);
    }
  o += swatch("idle-key", "", "idle: pipeline bubble or waiting");
  // Flow kinds that occur, in the order of flow_class's colours.
  const std::pair<model::CommKind, const char*> flows[] = {
      {model::CommKind::None, "pipeline transfer (upper lane)"}, {model::CommKind::EpDispatch, "EP dispatch"},
      {model::CommKind::EpCombine, "EP combine"}, {model::CommKind::TpAllReduce, "TP collective"},
      {model::CommKind::DpReduceScatter, "DP collective"}};
  for (const auto& [kind, name] : flows) {
    const std::string cls = flow_class(kind);
    const bool present = std::any_of(sim.step.transfers.begin(), sim.step.transfers.end(),
                                     [&](const auto& t) { return flow_class(t.kind) == cls; });
    if (present) o += swatch(cls.substr(cls.rfind(' ') + 1), "", name);
    if (present && kind == model::CommKind::DpReduceScatter) o += swatch("part-7", "", "data-parallel gradient sync");
  }
  return o + "</div>\n";
}

}  // namespace

// ---------------------------------------------------------------------------
// Sections of the simulate page
// ---------------------------------------------------------------------------

namespace {

std::string layers_text(const json& layers) {
  std::string o;  // runs of equal kinds: "moe x4, head"
  for (std::size_t i = 0; i < layers.size();) {
    std::size_t j = i;
    while (j < layers.size() && layers[j] == layers[i]) ++j;
    o += (o.empty() ? "" : ", ") + xml_escape(layers[i].get<std::string>());
    if (j - i > 1) o += fmt::format(" \xC3\x97{}", j - i);
    i = j;
  }
  return o;
}

std::string stages_table(const json& pipe) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : pipe.at("stages"))
    rows.push_back({fmt::format("{}", s.at("stage").get<int>()), layers_text(s.at("layers")),
                    fixed(num(s, "forward_ms"), 2), fixed(num(s, "backward_input_ms"), 2),
                    fixed(num(s, "backward_weight_ms"), 2), fixed(num(s, "backward_full_ms"), 2),
                    fixed(num(s, "params_per_gpu") / 1e9, 3), fixed(num(s, "activations_gib_per_microbatch"), 3)});
  return html_table({"stage", "layers", "forward ms", "backward input ms", "backward weight ms", "backward ms",
                     "params per GPU (10<sup>9</sup>)", "activations GiB / micro-batch"},
                    rows, {true, false, true, true, true, true, true, true});
}

std::string timeline_section(const json& r, const Simulation& sim) {
  const json& pipe = r.at("pipeline");
  std::string o = fmt::format(
      "<p>One optimizer step of replica 0 of every pipeline rank, as the cluster execution ran it: schedule "
      "<b>{}</b>, {} micro-batches, step time <b>{} s</b>, pipeline makespan {} s. The rank marked \xE2\x96\xB6 "
      "ends the step (rank {}). Cell numbers: micro-batch ids{}.</p>\n",
      text(pipe, "schedule"), pipe.at("microbatches_per_step").get<int>(), fixed(num(r, "step_time_s"), 3),
      fixed(num(pipe, "makespan_s"), 3), r.at("breakdown").at("rank").get<int>(),
      sim.step.schedule.directions() == 2 ? " per direction; lighter: direction 0, deeper: direction 1" : "");
  o += timeline_svg(r, sim) + timeline_legend(sim);
  if (sim.step.transfers.empty())
    o += "<p class=\"note\">Transfers and the gradient-sync tail are drawn only from a recorded simulation.</p>\n";
  return o;
}

std::string stages_section(const json& r) {
  const json& pipe = r.at("pipeline");
  std::string o = "<p>The layers of each stage and its chunks' times for one micro-batch, each chunk simulated "
                  "alone.</p>\n" + stages_table(pipe);
  std::string row;
  for (const auto& b : pipe.at("bubble_per_rank_s")) row += (row.empty() ? "" : ", ") + fixed(b.get<double>(), 3);
  o += fmt::format("<p class=\"note\">Bubble per rank (s): {}. Pipeline transfers in all: {} s.</p>\n", row,
                   fixed(num(pipe, "p2p_transfer_s"), 4));
  std::vector<std::vector<std::string>> pairs;
  for (const auto& p : pipe.at("overlapped_pairs"))
    pairs.push_back({fmt::format("{}", p.at("forward_stage").get<int>()), fmt::format("{}", p.at("backward_stage").get<int>()),
                     fixed(num(p, "duration_ms"), 2), fixed(num(p, "compute_busy_ms"), 2), fixed(num(p, "comm_busy_ms"), 2)});
  if (!pairs.empty())
    o += "<h3>Overlapped forward &amp; backward pairs (each simulated alone)</h3>\n" +
         html_table({"forward stage", "backward stage", "ms", "compute stream busy ms", "communication stream busy ms"},
                    pairs, {true, true, true, true, true}, "pairs-table");
  return o;
}

std::string breakdown_section(const json& r) {
  const json& b = r.at("breakdown");
  const json& e = b.at("exposed_communication_s");
  const std::pair<const char*, double> parts[] = {
      {"compute", num(b, "compute_s")},         {"exposed EP dispatch", num(e, "ep_dispatch")},
      {"exposed EP combine", num(e, "ep_combine")}, {"exposed TP", num(e, "tensor_parallel")},
      {"exposed pipeline transfers", num(e, "pipeline_p2p")}, {"data-parallel sync", num(e, "data_parallel")},
      {"pipeline bubble", num(b, "pipeline_bubble_s")}, {"optimizer", num(b, "optimizer_s")},
      {"other", num(b, "other_s")}};
  const char* classes[] = {"part-0", "part-1", "part-2", "part-3", "part-4", "part-5", "part-6", "part-7", "part-8"};
  BarChart c{.id = "breakdown", .rows = {}, .scale_max = num(r, "step_time_s"), .marker = -1, .marker_text = "", .unit = "s"};
  c.legend = false;  // the table under the bar is its legend
  BarRow row{.label = fmt::format("rank {}", b.at("rank").get<int>()), .parts = {},
             .total_text = fixed(num(r, "step_time_s"), 3) + " s"};
  std::vector<std::string> head, secs;
  for (std::size_t i = 0; i < std::size(parts); ++i) {
    row.parts.push_back({parts[i].first, parts[i].second, fixed(parts[i].second, 3) + " s", classes[i]});
    head.push_back(swatch(classes[i], "", parts[i].first));
    secs.push_back(fixed(parts[i].second, 3));
  }
  head.push_back("step time");
  secs.push_back("<b>" + fixed(num(r, "step_time_s"), 3) + "</b>");
  c.rows.push_back(std::move(row));
  return fmt::format("<p>Pipeline rank {}: {}.</p>\n", b.at("rank").get<int>(), text(b, "note")) + stacked_bar_svg(c) +
         html_table(head, {secs}, std::vector<bool>(head.size(), true), "breakdown-table");
}

std::string memory_section(const json& r) {
  const json& m = r.at("memory");
  const std::pair<const char*, const char*> parts[] = {{"weights", "weights_gib"}, {"gradients", "gradients_gib"},
                                                      {"optimizer states", "optimizer_gib"},
                                                      {"activations", "activations_gib"}, {"transient", "transient_gib"}};
  const char* classes[] = {"part-7", "part-5", "part-2", "part-0", "part-1"};
  const double cap = num(m, "capacity_gib");
  BarChart c{.id = "memory", .rows = {}, .scale_max = std::max(cap, num(m, "peak_gib_per_gpu")) * 1.04, .marker = cap,
             .marker_text = "capacity " + fixed(cap, 1) + " GiB", .unit = "GiB"};
  for (const auto& pr : m.at("per_rank")) {
    BarRow row{.label = fmt::format("rank {}", pr.at("rank").get<int>()), .parts = {},
               .total_text = fmt::format("{} GiB, {} micro-batches", fixed(num(pr, "total_gib"), 1),
                                         pr.at("activation_microbatches_in_flight").get<int>())};
    for (std::size_t i = 0; i < std::size(parts); ++i)
      row.parts.push_back({parts[i].first, num(pr, parts[i].second), fixed(num(pr, parts[i].second), 2) + " GiB", classes[i]});
    c.rows.push_back(std::move(row));
  }
  const bool fits = m.at("fits").get<bool>();
  return fmt::format("<p>Peak <b>{} GiB</b> of {} GiB per GPU on rank {}: <span class=\"{}\">{}</span>. "
                     "Weights {}, gradients {}, optimizer {}, activations {} ({} micro-batches in flight), transient {} GiB.</p>\n",
                     fixed(num(m, "peak_gib_per_gpu"), 1), fixed(cap, 1), m.at("rank").get<int>(), fits ? "good" : "bad",
                     fits ? "fits" : "does not fit", fixed(num(m, "weights_gib"), 1), fixed(num(m, "gradients_gib"), 1),
                     fixed(num(m, "optimizer_gib"), 1), fixed(num(m, "activations_gib"), 1),
                     m.at("activation_microbatches_in_flight").get<int>(), fixed(num(m, "transient_gib"), 1)) +
         stacked_bar_svg(c);
}

std::string cost_section(const json& r) {
  const json& sc = r.at("scenario");
  const std::vector<std::vector<std::string>> rows = {
      {"GPUs", grouped(num(r, "gpus"))},
      {"training tokens", fixed(num(sc.at("training"), "tokens") / 1e12, 3) + " T"},
      {"tokens per step", grouped(num(r, "tokens_per_step"))},
      {"step time", fixed(num(r, "step_time_s"), 3) + " s"},
      {"throughput", grouped(num(r, "tokens_per_second")) + " tokens/s"},
      {"throughput per GPU", grouped(num(r, "tokens_per_second_per_gpu")) + " tokens/s"},
      {"model TFLOPS per GPU", fixed(num(r, "model_tflops_per_gpu"), 1)},
      {"executed TFLOPS per GPU (with recompute)", fixed(num(r, "executed_tflops_per_gpu"), 1)},
      {"MFU (of BF16 peak)", fixed(100 * num(r, "mfu"), 1) + " %"},
      {"GPU-hours per trillion tokens", grouped(num(r, "gpu_hours_per_trillion_tokens"))},
      {"whole run, GPU-hours", grouped(num(r, "total_gpu_hours"))},
      {"whole run, wall clock", fixed(num(r, "wall_clock_days"), 1) + " days"},
      {"price per GPU-hour", "$" + fixed(num(sc.at("cost"), "usd_per_gpu_hour"), 2)},
      {"whole run, cost", "<b>$" + grouped(num(r, "total_cost_usd")) + "</b>"}};
  return html_table({"", ""}, rows, {false, true}, "cost-table");
}

std::string cluster_section(const json& r) {
  const json& c = r.at("cluster_simulation");
  const json& g = c.at("critical_gpu");
  std::vector<std::vector<std::string>> rows = {
      {"fidelity", text(c, "fidelity") + " &mdash; " + text(c, "fidelity_reason")},
      {"simulated GPUs", fmt::format("{} of {}", c.at("simulated_gpus").get<int>(), r.at("gpus").get<int>())},
      {"events, flows, collectives", fmt::format("{}, {}, {}", grouped(num(c, "events")), grouped(num(c, "flows")),
                                                 grouped(num(c, "collectives")))},
      {"critical GPU", fmt::format("GPU {} (node {}, pipeline rank {}, replica {}): {}", g.at("gpu").get<int>(),
                                   g.at("node").get<int>(), g.at("pipeline_rank").get<int>(), g.at("replica").get<int>(),
                                   text(g, "note"))}};
  if (c.contains("critical_group")) {
    const json& cg = c.at("critical_group");
    const json& slow = cg.at("slowest_member");
    rows.push_back({"critical group",
                    fmt::format("{} group {} ({} members): {} collectives, {} s in all, {} s waiting for {}", text(cg, "kind"),
                                cg.at("group").get<int>(), cg.at("members").size(), cg.at("collectives").get<int>(),
                                fixed(num(cg, "total_s"), 3), fixed(num(cg, "waiting_for_last_member_s"), 3),
                                slow.is_null() ? std::string("no member") : fmt::format("GPU {}", slow.get<int>()))});
  }
  if (c.contains("critical_link"))
    rows.push_back({"critical link", fmt::format("{}: bounded flows for {} s in all", text(c.at("critical_link"), "link"),
                                                 fixed(num(c.at("critical_link"), "bounded_s"), 3))});
  return html_table({"", ""}, rows, {}, "cluster-table");
}

// One layer kind: its time by pass and kind, then every op.
std::string layer_kind_tables(const std::string& kind, const json& lk) {
  std::vector<std::vector<std::string>> by;
  for (const auto& [k, v] : lk.at("ms_by_pass_and_kind").items()) by.push_back({xml_escape(k), fixed(v.get<double>(), 3)});
  std::vector<std::vector<std::string>> ops;
  for (const auto& op : lk.at("ops")) {
    std::string work;
    if (op.contains("flops")) work = fixed(num(op, "flops") / 1e9, 1) + " GFLOP";
    else if (op.contains("comm_bytes")) work = fixed(num(op, "comm_bytes") / 1e6, 2) + " MB sent";
    else if (op.contains("hbm_bytes")) work = fixed(num(op, "hbm_bytes") / 1e6, 2) + " MB HBM";
    ops.push_back({text(op, "name") + (op.value("recompute", false) ? " (recompute)" : ""), text(op, "pass"),
                   text(op, "kind"), fixed(num(op, "ms"), 3), work,
                   op.contains("achieved_tflops") ? fixed(num(op, "achieved_tflops"), 0) : ""});
  }
  return fmt::format("<div class=\"layer-kind\" id=\"layer-{}\"><h3>{}</h3>\n", xml_escape(kind), xml_escape(kind)) +
         html_table({"pass.kind", "ms per micro-batch"}, by, {false, true}) +
         html_table({"op", "pass", "kind", "ms", "work", "TFLOPS"}, ops, {false, false, false, true, true, true},
                    "ops-table") +
         "</div>\n";
}

std::string operations_section(const json& r) {
  std::string o = "<p>Every operation of one layer of each kind for one micro-batch, as timed by the calibration "
                  "(compute) and by its group alone on the fabric (communication).</p>\n<div class=\"grid2\">\n";
  for (const auto& [kind, lk] : r.at("pipeline").at("layer_kinds").items()) o += layer_kind_tables(kind, lk);
  return o + "</div>\n";
}

// Scalars of a JSON object, flattened to "a.b" keys down to `depth` levels;
// arrays are summarised by their length.
void facts(const json& j, const std::string& prefix, int depth, std::vector<std::vector<std::string>>& rows) {
  for (const auto& [k, v] : j.items()) {
    const std::string key = prefix.empty() ? k : prefix + "." + k;
    if (v.is_object() && depth > 0) facts(v, key, depth - 1, rows);
    else if (v.is_array()) rows.push_back({xml_escape(key), fmt::format("{} entries", v.size())});
    else if (!v.is_object()) rows.push_back({xml_escape(key), scalar(v)});
  }
}

std::string calibration_section(const json& r) {
  std::vector<std::vector<std::string>> rows;
  facts(r.at("calibration"), "", 2, rows);
  return html_table({"key", "value"}, rows, {}, "calibration-table");
}

std::string assumptions_section(const json& r) {
  std::string o = "<ul>\n";
  for (const auto& a : r.at("assumptions")) o += "<li>" + xml_escape(a.get<std::string>()) + "</li>\n";
  o += "</ul>\n<details><summary>The resolved scenario</summary><pre>" + xml_escape(r.at("scenario").dump(2)) +
       "</pre></details>\n";
  return o;
}

}  // namespace

std::string simulate_html(const json& r, const Simulation& sim) {
  const json& m = r.at("memory");
  HtmlPage page("trainsim: " + text(r, "scenario_name"),
                fmt::format("{} GPUs ({}), {}, schedule {}", r.at("gpus").get<int>(),
                            xml_escape(r.at("scenario").at("cluster").at("gpu").at("name").get<std::string>()),
                            text(r.at("scenario").at("model"), "name"), text(r.at("pipeline"), "schedule")));
  page.figure(fixed(num(r, "step_time_s"), 3) + " s", "step time");
  page.figure(grouped(num(r, "tokens_per_second_per_gpu")), "tokens/s per GPU");
  page.figure(fixed(100 * num(r, "mfu"), 1) + " %", "MFU (BF16 peak)");
  page.figure(grouped(num(r, "gpu_hours_per_trillion_tokens")), "GPU-hours per 10<sup>12</sup> tokens");
  page.figure(fixed(num(r, "wall_clock_days"), 1) + " days", "whole run, wall clock");
  page.figure("$" + fixed(num(r, "total_cost_usd") / 1e6, 2) + "M", "whole run, cost");
  page.figure(fixed(num(m, "peak_gib_per_gpu"), 1) + " / " + fixed(num(m, "capacity_gib"), 1),
              std::string("GiB per GPU, ") + (m.at("fits").get<bool>() ? "fits" : "<span class=\"bad\">does not fit</span>"));
  page.section("timeline-section", "Step timeline", timeline_section(r, sim));
  page.section("breakdown-section", "Where the step goes", breakdown_section(r));
  page.section("memory-section", "Memory per GPU", memory_section(r));
  page.section("cost-section", "Whole-run cost", cost_section(r));
  page.section("stages-section", "Pipeline stages", stages_section(r));
  page.section("cluster-section", "What bounded the cluster", cluster_section(r));
  page.section("operations-section", "Operations by layer kind", operations_section(r));
  page.section("calibration-section", "Calibration", calibration_section(r));
  page.section("assumptions-section", "Assumptions", assumptions_section(r));
  return page.str();
}

}  // namespace trainsim::app
