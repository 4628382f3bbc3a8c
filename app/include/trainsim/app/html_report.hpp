#pragma once
// The report as one self-contained HTML page: inline CSS and SVG, no script,
// no font or file fetched from anywhere, so it opens offline, prints, and can
// be mailed as one file.
//
// Every number printed on the page is read from the JSON report (formatted,
// never recomputed), so the page and `--report` cannot disagree. The
// simulation is read only for geometry the report does not carry: where each
// pipeline op and flow of replica 0 of every rank sat in time (the
// timeline), drawn from the executed schedule and, when the simulation ran
// with `record`, its transfers.
//
// The page is assembled from small pieces (HtmlPage, html_table,
// stacked_bar_svg) that know nothing of a simulation, so another report (a
// plan's ranked layouts) can build its own page from the same pieces and the
// same style sheet.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainsim/app/report.hpp"

namespace trainsim::app {

// One part of a stacked bar: its label (legend and tooltip), its length in
// the bar's unit, the text shown for it (already formatted from the report)
// and a CSS class that gives its colour (see the style sheet in
// html_report.cpp: part-0 .. part-9).
struct BarPart {
  std::string label;
  double value = 0;
  std::string shown;
  std::string css_class;
};

// One labelled row of a bar chart.
struct BarRow {
  std::string label;       // left of the bar
  std::vector<BarPart> parts;
  std::string total_text;  // right of the bars
};

struct BarChart {
  std::string id;           // the SVG element's id
  std::vector<BarRow> rows;
  double scale_max = 0;     // the value at the right end of the bars
  double marker = -1;       // a vertical line at this value (e.g. capacity); < 0: none
  std::string marker_text;  // its label
  std::string unit;         // axis unit, e.g. "GiB"
  bool legend = true;       // a legend of the first row's parts under the chart
};

// Horizontal stacked bars, one row each, its total right of the bars, and
// (with `legend`) a legend of the first row's parts.
std::string stacked_bar_svg(const BarChart& chart);

// A table; cells are HTML (escape text with xml_escape, schedule_study.hpp). `numeric` columns are
// right-aligned.
std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       const std::vector<bool>& numeric = {}, const std::string& css_class = "");

// A page being assembled: a title, headline figures, then sections in order.
class HtmlPage {
 public:
  explicit HtmlPage(std::string title, std::string subtitle = "");
  // A headline figure: a big value and a caption under it.
  void figure(const std::string& value, const std::string& caption);
  // A section with an id (anchors, tests) and a heading; `body` is HTML.
  void section(const std::string& id, const std::string& heading, const std::string& body);
  // The whole document.
  std::string str() const;

 private:
  std::string title_, subtitle_, figures_, sections_, toc_;
};

// The page of a simulated scenario (`trainsim simulate --html`): headline
// figures, step timeline of every pipeline rank, time breakdown of the rank
// that ends the step, memory per GPU by part for every rank against the
// GPU's capacity, whole-run cost, the critical GPU, group and link, every
// operation of each layer kind, the calibration and the assumptions.
// `report` is make_report(sim).
std::string simulate_html(const nlohmann::json& report, const Simulation& sim);

}  // namespace trainsim::app
