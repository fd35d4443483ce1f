#include "nn/summary.h"

#include <cstdio>

namespace sg::nn {

Summary summarize(const Module& model, const Shape& input) {
  Summary s;
  s.output = model.describe(input, &s.layers);
  for (const LayerInfo& l : s.layers) {
    s.parameters += l.parameters;
    s.macs += l.macs;
  }
  return s;
}

namespace {
// 5288548 -> "5,288,548"
std::string grouped(int64_t v) {
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}
}  // namespace

std::string format_summary(const Summary& s, const std::string& title) {
  std::string out = title + "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-28s %-28s %-22s %12s %16s\n", "layer", "kind", "output", "params", "FLOPs");
  out += line;
  out += std::string(110, '-') + "\n";
  for (const LayerInfo& l : s.layers) {
    std::snprintf(line, sizeof line, "%-28s %-28s %-22s %12s %16s\n", l.name.c_str(), l.kind.c_str(),
                  l.output.str().c_str(), grouped(l.parameters).c_str(), grouped(2 * l.macs).c_str());
    out += line;
  }
  out += std::string(110, '-') + "\n";
  std::snprintf(line, sizeof line, "layers: %zu   output: %s\n", s.layers.size(), s.output.str().c_str());
  out += line;
  std::snprintf(line, sizeof line, "parameters: %s (%.2f M)\n", grouped(s.parameters).c_str(),
                double(s.parameters) / 1e6);
  out += line;
  std::snprintf(line, sizeof line, "FLOPs: %s (%.3f GFLOPs = 2 x %.3f GMACs; conv, SE and linear layers)\n",
                grouped(s.flops()).c_str(), double(s.flops()) / 1e9, double(s.macs) / 1e9);
  out += line;
  return out;
}

}  // namespace sg::nn
