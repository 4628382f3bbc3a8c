#include "trainsim/app/fabric_study.hpp"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "trainsim/common/error.hpp"
#include "trainsim/common/json_reader.hpp"

namespace trainsim::app {

FabricStudy load_fabric(const std::string& scenario_file) {
  const Json root = parse_json_file(scenario_file);
  JsonObject top(root, scenario_file, "");
  JsonObject cluster = top.object("cluster");
  return fabric_study(hw::parse_cluster(cluster), scenario_file);
}

FabricStudy fabric_study(const hw::ClusterSpec& cluster, const std::string& file) {
  return FabricStudy{file, cluster, hw::Topology::build(cluster)};
}

namespace {

Json switches_per_plane(const hw::Topology& t) {
  Json j = Json::object();
  j["leaf"] = t.switches_per_plane(0);
  if (t.tiers() == 2) {
    j["spine"] = t.switches_per_plane(1);
  } else {
    j["aggregation"] = t.switches_per_plane(1);
    j["core"] = t.switches_per_plane(2);
  }
  return j;
}

// A cable failed by itself: dead while both its ends are alive switches or
// (for a NIC) an alive leaf.
bool failed_alone(const hw::Topology& t, int cable) {
  const hw::Cable& c = t.cables()[static_cast<std::size_t>(cable)];
  return !t.cable_alive(cable) && t.vertex_alive(c.lower) && t.vertex_alive(c.upper);
}

void add_faults(const FabricStudy& s, Json& j) {
  const hw::Topology& t = s.topology;
  Json failed = {{"switches", Json::array()}, {"links", Json::array()}, {"nics", Json::array()}};
  Json degraded = Json::array();
  for (int v = 0; v < t.vertex_count(); ++v)
    if (t.vertex_tier(v) >= 0 && !t.vertex_alive(v)) failed["switches"].push_back(t.vertex_name(v));
  const double nominal = s.cluster.network.nic_bandwidth.value();
  std::vector<std::string> names;
  for (int c = 0; c < t.cable_count(); ++c) {
    const bool nic = c < t.gpu_count();
    if (nic && !t.cable_alive(c)) failed["nics"].push_back(c);
    const double factor = t.cable_capacity(c).value() / nominal;
    const bool degraded_here = t.cable_alive(c) && factor < 1.0 - 1e-12;
    if ((nic || !failed_alone(t, c)) && !degraded_here) continue;
    if (names.empty()) names = t.cable_names();
    if (!degraded_here) {
      failed["links"].push_back(names[static_cast<std::size_t>(c)]);
    } else if (nic) {
      degraded.push_back({{"nic", c}, {"bandwidth_factor", factor}});
    } else {
      degraded.push_back({{"link", names[static_cast<std::size_t>(c)]}, {"bandwidth_factor", factor}});
    }
  }
  j["failed"] = failed;
  j["degraded"] = degraded;
}

}  // namespace

Json fabric_json(const FabricStudy& s) {
  const hw::Topology& t = s.topology;
  const hw::NetworkSpec& n = s.cluster.network;
  Json j = Json::object();
  j["file"] = s.file;
  j["topology"] = hw::to_string(n.topology);
  j["tiers"] = n.tiers;
  j["planes"] = t.planes();
  j["switch_radix"] = n.switch_radix;
  j["oversubscription"] = n.oversubscription;
  j["leaf_down_ports"] = hw::leaf_down_ports(n);
  j["leaf_up_ports"] = n.switch_radix - hw::leaf_down_ports(n);
  j["endpoints"] = t.gpu_count();
  j["nodes"] = t.node_count();
  j["gpus_per_node"] = t.gpus_per_node();
  j["switches"] = t.switch_count();
  j["switches_per_plane"] = switches_per_plane(t);
  j["switch_links"] = t.inter_switch_cable_count();
  j["nic_links"] = t.gpu_count();
  j["nic_Gbps"] = n.nic_bandwidth.value() * 8.0 / 1e9;
  j["bisection_GBps"] = t.bisection_bandwidth().value() / 1e9;
  add_faults(s, j);
  return j;
}

std::string fabric_text(const Json& r) {
  std::string per_plane;
  for (const char* tier : {"leaf", "spine", "aggregation", "core"})
    if (r["switches_per_plane"].contains(tier))
      per_plane += fmt::format("{}{} {}", per_plane.empty() ? "" : ", ", r["switches_per_plane"][tier].get<int>(), tier);
  std::string out = fmt::format(
      "fabric of {}\n"
      "topology            {}, {} tiers, {} plane(s), radix {}, oversubscription {}:1 ({} down / {} up leaf ports)\n"
      "endpoints           {} ({} nodes x {} GPUs), one {} Gb/s NIC each\n"
      "switches            {} ({} per plane)\n"
      "switch links        {}\n"
      "NIC links           {}\n"
      "bisection           {:.1f} GB/s per direction\n",
      r["file"].get<std::string>(), r["topology"].get<std::string>(), r["tiers"].get<int>(), r["planes"].get<int>(),
      r["switch_radix"].get<int>(), r["oversubscription"].get<double>(), r["leaf_down_ports"].get<int>(),
      r["leaf_up_ports"].get<int>(), r["endpoints"].get<int>(), r["nodes"].get<int>(), r["gpus_per_node"].get<int>(),
      r["nic_Gbps"].get<double>(), r["switches"].get<int>(), per_plane, r["switch_links"].get<int>(),
      r["nic_links"].get<int>(), r["bisection_GBps"].get<double>());
  const Json& f = r["failed"];
  out += fmt::format("failed              {} switch(es), {} link(s), {} NIC(s)\n", f["switches"].size(),
                     f["links"].size(), f["nics"].size());
  out += fmt::format("degraded            {} link(s) or NIC(s)\n", r["degraded"].size());
  for (const auto& name : f["switches"]) out += fmt::format("  down      switch {}\n", name.get<std::string>());
  for (const auto& name : f["links"]) out += fmt::format("  down      link {}\n", name.get<std::string>());
  for (const auto& gpu : f["nics"]) out += fmt::format("  down      nic {}\n", gpu.get<int>());
  for (const auto& d : r["degraded"])
    out += fmt::format("  degraded  {} {} x{}\n", d.contains("nic") ? "nic" : "link",
                       d.contains("nic") ? std::to_string(d["nic"].get<int>()) : d["link"].get<std::string>(),
                       d["bandwidth_factor"].get<double>());
  return out;
}

std::string fabric_names(const FabricStudy& s) {
  const hw::Topology& t = s.topology;
  std::string out;
  for (int v = 0; v < t.vertex_count(); ++v)
    if (t.vertex_tier(v) >= 0)
      out += fmt::format("switch {}{}\n", t.vertex_name(v), t.vertex_alive(v) ? "" : " down");
  const auto names = t.cable_names();
  const double nominal = s.cluster.network.nic_bandwidth.value();
  for (int c = 0; c < t.cable_count(); ++c) {
    const double cap = t.cable_capacity(c).value();
    std::string state = !t.cable_alive(c) ? " down" : "";
    if (t.cable_alive(c) && cap < nominal * (1.0 - 1e-12)) state = fmt::format(" x{}", cap / nominal);
    out += fmt::format("link {}{}\n", names[static_cast<std::size_t>(c)], state);
  }
  return out;
}

std::string fabric_dot(const FabricStudy& s) {
  const hw::Topology& t = s.topology;
  if (t.vertex_count() > kMaxDotVertices)
    throw InputError(s.file, "/cluster", fmt::format("a fabric of {} vertices", t.vertex_count()),
                     fmt::format("at most {} vertices for --dot (GPUs, NVSwitches and switches)", kMaxDotVertices));
  std::string out = "graph fabric {\n  node [shape=box, fontsize=10];\n";
  for (int v = 0; v < t.vertex_count(); ++v) {
    const bool gpu = t.vertex_kind(v) == hw::VertexKind::Gpu;
    out += fmt::format("  \"{}\" [shape={}{}];\n", t.vertex_name(v), gpu ? "ellipse" : "box",
                       t.vertex_alive(v) ? "" : ", color=red, style=dashed");
  }
  for (int g = 0; g < t.gpu_count(); ++g)  // NVLink: GPU -- its NVSwitch
    out += fmt::format("  \"{}\" -- \"{}\" [color=green];\n", t.vertex_name(g),
                       t.vertex_name(t.gpu_count() + t.node_of(g)));
  const double nominal = s.cluster.network.nic_bandwidth.value();
  for (int c = 0; c < t.cable_count(); ++c) {
    const hw::Cable& cb = t.cables()[static_cast<std::size_t>(c)];
    const double factor = t.cable_capacity(c).value() / nominal;
    std::string style = !t.cable_alive(c) ? " [color=red, style=dashed]"
                        : factor < 1.0 - 1e-12 ? fmt::format(" [color=orange, label=\"x{}\"]", factor)
                                               : "";
    out += fmt::format("  \"{}\" -- \"{}\"{};\n", t.vertex_name(cb.lower), t.vertex_name(cb.upper), style);
  }
  return out + "}\n";
}

}  // namespace trainsim::app
